//! Builds the C samples of `examples/c/` with their Makefile, four ways
//! each (C11 and C++20, each with and without `-fshort-wchar`, warnings as
//! errors), then runs them in pairs as real processes with scripted stdin
//! and checks what each printed: MiniChat against itself across the
//! variants and against `lwmq chat`, MiniChatEx's latency, thr send ↔ thr
//! recv (count verified), and RawChannels (several buffers in flight)
//! against itself and against `lwmq chat --raw`.
//!
//! The RawChannels run tests are the `raw_sample_*` functions: the sample
//! holds several buffers from `LmqRawChannelGetBuffer` at once, which the
//! raw-channel work of issue 11 (point 3) provides.
//!
//! Every pair uses its own address (`ipc://lwmq-samples/<pid>/<test>`), so
//! the tests run in parallel. No test depends on timing: each process
//! ends by itself once the conversation is over; the deadline only turns
//! a hang into a failure.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(180);

fn samples() -> Option<&'static Path> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        if !common::have("make") || !common::have("cc") || !common::have("c++") {
            eprintln!("skipped: make, cc or c++ not found");
            return None;
        }
        let out = common::out_dir("samples");
        let o = Command::new("make")
            .arg("-C")
            .arg(common::repo().join("examples/c"))
            .arg(format!("LIBDIR={}", common::lib_dir().display()))
            .arg(format!("OUT={}", out.display()))
            .arg("-B")
            .output()
            .expect("make runs");
        assert!(
            o.status.success(),
            "building the samples failed:\n{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        Some(out)
    })
    .as_deref()
}

fn address(test: &str) -> String {
    format!("ipc://lwmq-samples/{}/{test}", std::process::id())
}

fn spawn(mut cmd: Command, stdin: &str) -> Child {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).unwrap();
    drop(input); // end of stdin: the program says goodbye after these lines
    child
}

/// Waits for both; kills both if either outlives the deadline.
fn wait_pair(mut a: Child, mut b: Child) -> (Output, Output) {
    let start = Instant::now();
    loop {
        let done_a = a.try_wait().unwrap().is_some();
        let done_b = b.try_wait().unwrap().is_some();
        if done_a && done_b {
            break;
        }
        if start.elapsed() > DEADLINE {
            let _ = a.kill();
            let _ = b.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (a.wait_with_output().unwrap(), b.wait_with_output().unwrap())
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}--- stderr\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn assert_said(o: &Output, lines: &[&str]) {
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", text(o));
    for l in lines {
        assert!(out.contains(l), "missing {l:?} in\n{}", text(o));
    }
}

/// The four builds of every sample (`examples/c/Makefile`).
const VARIANTS: [&str; 4] = ["c11", "c11-short-wchar", "cpp20", "cpp20-short-wchar"];
const PROGRAMS: [&str; 4] = ["minichat", "minichat_ex", "rawchannels", "thr"];

fn sample(dir: &Path, variant: &str, name: &str) -> Command {
    Command::new(dir.join(variant).join(name))
}

#[test]
fn every_sample_builds_as_c11_and_cpp20_in_both_wchar_modes() {
    let Some(dir) = samples() else { return };
    for v in VARIANTS {
        for p in PROGRAMS {
            let exe = dir.join(v).join(p);
            assert!(exe.exists(), "{} was not built", exe.display());
        }
    }
}

/// Two MiniChats, of two builds, talk; one is SERVER, the other CLIENT.
fn minichat_pair(test: &str, (va, na): (&str, &str), (vb, nb): (&str, &str)) -> (Output, Output) {
    let dir = samples().expect("samples built");
    let addr = address(test);
    let mut a = sample(dir, va, na);
    a.arg(&addr);
    let mut b = sample(dir, vb, nb);
    b.arg(&addr);
    let (a, b) = wait_pair(
        spawn(a, "first line\n\nsecond line\n"),
        spawn(b, "hello from b\n"),
    );
    // One SERVER and one CLIENT, whichever started first.
    let roles = format!(
        "{}{}",
        String::from_utf8_lossy(&a.stderr),
        String::from_utf8_lossy(&b.stderr)
    );
    assert!(
        roles.contains("SERVER") && roles.contains("CLIENT"),
        "{roles}"
    );
    (a, b)
}

#[test]
fn minichat_c11_talks_to_minichat_cpp20_short_wchar() {
    if samples().is_none() {
        return;
    }
    let (a, b) = minichat_pair(
        "minichat-1",
        ("c11", "minichat"),
        ("cpp20-short-wchar", "minichat"),
    );
    assert_said(
        &a,
        &["* peer joined", "peer: hello from b\n", "* peer left"],
    );
    assert_said(
        &b,
        &[
            "* peer joined",
            "peer: first line\n",
            "peer: second line\n",
            "* peer left",
        ],
    );
}

#[test]
fn minichat_cpp20_talks_to_minichat_c11_short_wchar() {
    if samples().is_none() {
        return;
    }
    let (a, b) = minichat_pair(
        "minichat-2",
        ("cpp20", "minichat"),
        ("c11-short-wchar", "minichat"),
    );
    assert_said(&a, &["peer: hello from b\n", "* peer left"]);
    assert_said(&b, &["peer: first line\n", "peer: second line\n"]);
}

#[test]
fn minichat_ex_prints_latency() {
    if samples().is_none() {
        return;
    }
    let (a, b) = minichat_pair(
        "minichat-ex",
        ("cpp20-short-wchar", "minichat_ex"),
        ("c11", "minichat_ex"),
    );
    assert_said(&a, &["peer: hello from b (", " us)\n"]);
    assert_said(&b, &["peer: first line (", "peer: second line (", " us)\n"]);
}

fn thr(dir: &Path, size: u32, count: u32) {
    let addr = address(&format!("thr-{size}"));
    let mut recv = sample(dir, "cpp20", "thr");
    recv.args(["recv", &addr, &size.to_string(), &count.to_string()]);
    let mut send = sample(dir, "c11", "thr");
    send.args(["send", &addr, &size.to_string(), &count.to_string()]);
    let (r, s) = wait_pair(spawn(recv, ""), spawn(send, ""));
    let n = count.to_string();
    assert_said(
        &r,
        &[
            &format!("received: {n} messages of {size} B"),
            "msg/s",
            "Gbit/s",
            "latency: ",
        ],
    );
    assert_said(
        &s,
        &[
            &format!("sent: {n} messages of {size} B"),
            &format!("receiver: done {n}"),
            "msg/s",
        ],
    );
}

#[test]
fn thr_small_messages_counted() {
    let Some(dir) = samples() else { return };
    thr(dir, 64, 50_000);
}

#[test]
fn thr_large_messages_counted() {
    let Some(dir) = samples() else { return };
    thr(dir, 640_000, 200);
}

/// `lwmq chat` from the CLI: in the same target directory when the whole
/// workspace is built (`cargo test --workspace`).
fn lwmq_cli() -> Option<PathBuf> {
    let p = common::lib_dir().join("lwmq");
    if p.exists() {
        Some(p)
    } else {
        eprintln!(
            "skipped: {} not built (run `cargo test --workspace`)",
            p.display()
        );
        None
    }
}

#[test]
fn minichat_ex_talks_to_lwmq_chat_with_latency() {
    let Some(dir) = samples() else { return };
    let Some(cli) = lwmq_cli() else { return };
    let addr = address("chat-ex");
    let mut a = sample(dir, "c11-short-wchar", "minichat_ex");
    a.arg(&addr);
    let mut b = Command::new(cli);
    b.args(["chat", &addr, "--latency"]);
    let (a, b) = wait_pair(spawn(a, "from C\n"), spawn(b, "from Rust\n"));
    assert_said(&a, &["* peer joined", "peer: from Rust (", "* peer left"]);
    assert_said(&b, &["* peer joined", "peer: from C (", "* peer left"]);
}

#[test]
fn minichat_talks_to_lwmq_chat() {
    let Some(dir) = samples() else { return };
    let Some(cli) = lwmq_cli() else { return };
    let addr = address("chat");
    let mut a = sample(dir, "cpp20", "minichat");
    a.arg(&addr);
    let mut b = Command::new(cli);
    b.args(["chat", &addr]);
    let (a, b) = wait_pair(spawn(a, "from C++\n"), spawn(b, "from Rust\n"));
    assert_said(&a, &["* peer joined", "peer: from Rust\n", "* peer left"]);
    assert_said(&b, &["* peer joined", "peer: from C++\n", "* peer left"]);
}

/// The most buffers a RawChannels run held at once while sending.
fn most_sending(o: &Output) -> usize {
    let err = String::from_utf8_lossy(&o.stderr);
    err.split("at most ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no buffer count in\n{}", text(o)))
}

#[test]
fn raw_sample_rawchannels_talk_with_several_buffers_in_flight() {
    let Some(dir) = samples() else { return };
    let addr = address("raw");
    let mut a = sample(dir, "c11", "rawchannels");
    a.arg(&addr);
    let mut b = sample(dir, "cpp20-short-wchar", "rawchannels");
    b.arg(&addr);
    let (a, b) = wait_pair(
        spawn(a, "raw one\nraw two\nraw three\n"),
        spawn(b, "raw back\n"),
    );
    assert_said(&a, &["* peer joined", "peer: raw back (", "* peer left"]);
    assert_said(
        &b,
        &[
            "peer: raw one (",
            "peer: raw two (",
            "peer: raw three (",
            "* peer left",
        ],
    );
    let out = String::from_utf8_lossy(&b.stdout);
    let (one, two, three) = (
        out.find("raw one"),
        out.find("raw two"),
        out.find("raw three"),
    );
    assert!(one < two && two < three, "out of order:\n{out}");
    // The three lines were written to stdin at once: read in one chunk,
    // they were held in three buffers before any was sent.
    assert!(most_sending(&a) >= 3, "{}", text(&a));
}

#[test]
fn raw_sample_rawchannels_talk_to_lwmq_chat_raw() {
    let Some(dir) = samples() else { return };
    let Some(cli) = lwmq_cli() else { return };
    let addr = address("chat-raw");
    let mut a = sample(dir, "cpp20", "rawchannels");
    a.arg(&addr);
    let mut b = Command::new(cli);
    b.args(["chat", &addr, "--raw"]);
    let (a, b) = wait_pair(
        spawn(a, "raw from C\nand more\n"),
        spawn(b, "raw from Rust\n"),
    );
    assert_said(&a, &["peer: raw from Rust (", "* peer left"]);
    assert_said(&b, &["peer: raw from C", "peer: and more", "* peer left"]);
}
