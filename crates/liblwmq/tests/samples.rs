//! Builds the C samples of `examples/c/` with their Makefile, then runs
//! them in pairs as real processes with scripted stdin and checks what
//! each printed: minichat ↔ minichat(_ex), rawchannels ↔ rawchannels,
//! thr send ↔ thr recv (count verified), and minichat ↔ `lwmq chat`.
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
        if !common::have("make") || !common::have("cc") {
            eprintln!("skipped: make or cc not found");
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

fn sample(dir: &Path, name: &str) -> Command {
    Command::new(dir.join(name))
}

#[test]
fn minichat_talks_to_minichat() {
    let Some(dir) = samples() else { return };
    let addr = address("minichat");
    let mut a = sample(dir, "minichat");
    a.arg(&addr);
    let mut b = sample(dir, "minichat");
    b.arg(&addr);
    let (a, b) = wait_pair(
        spawn(a, "first line\n\nsecond line\n"),
        spawn(b, "hello from b\n"),
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
}

#[test]
fn minichat_ex_prints_latency() {
    let Some(dir) = samples() else { return };
    let addr = address("minichat-ex");
    let mut a = sample(dir, "minichat_ex");
    a.arg(&addr);
    let mut b = sample(dir, "minichat_ex");
    b.arg(&addr);
    let (a, b) = wait_pair(spawn(a, "ping\n"), spawn(b, "pong\n"));
    assert_said(&a, &["peer: pong (", " us)\n"]);
    assert_said(&b, &["peer: ping (", " us)\n"]);
}

#[test]
fn rawchannels_talk() {
    let Some(dir) = samples() else { return };
    let addr = address("raw");
    let mut a = sample(dir, "rawchannels");
    a.arg(&addr);
    let mut b = sample(dir, "rawchannels");
    b.arg(&addr);
    let (a, b) = wait_pair(spawn(a, "raw one\nraw two\n"), spawn(b, "raw back\n"));
    assert_said(&a, &["* peer joined", "peer: raw back (", "* peer left"]);
    assert_said(&b, &["peer: raw one (", "peer: raw two (", "* peer left"]);
}

fn thr(dir: &Path, size: u32, count: u32) {
    let addr = address(&format!("thr-{size}"));
    let mut recv = sample(dir, "thr");
    recv.args(["recv", &addr, &size.to_string(), &count.to_string()]);
    let mut send = sample(dir, "thr");
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
fn minichat_talks_to_lwmq_chat() {
    let Some(dir) = samples() else { return };
    let Some(cli) = lwmq_cli() else { return };
    let addr = address("chat");
    let mut a = sample(dir, "minichat_ex");
    a.arg(&addr);
    let mut b = Command::new(cli);
    b.args(["chat", &addr, "--latency"]);
    let (a, b) = wait_pair(spawn(a, "from C\n"), spawn(b, "from Rust\n"));
    assert_said(&a, &["* peer joined", "peer: from Rust (", "* peer left"]);
    assert_said(&b, &["* peer joined", "peer: from C (", "* peer left"]);
}

#[test]
fn rawchannels_talk_to_lwmq_chat_raw() {
    let Some(dir) = samples() else { return };
    let Some(cli) = lwmq_cli() else { return };
    let addr = address("chat-raw");
    let mut a = sample(dir, "rawchannels");
    a.arg(&addr);
    let mut b = Command::new(cli);
    b.args(["chat", &addr, "--raw"]);
    let (a, b) = wait_pair(spawn(a, "raw from C\n"), spawn(b, "raw from Rust\n"));
    assert_said(&a, &["peer: raw from Rust (", "* peer left"]);
    assert_said(&b, &["peer: raw from C", "* peer left"]);
}
