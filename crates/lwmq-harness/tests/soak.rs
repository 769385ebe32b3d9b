//! Short versions of the crash soak and the load soak (`lwmq-soak`, see
//! docs/reliability.md for the full runs). They check correctness and
//! flatness only, never speed: every wait inside the soak is a generous
//! liveness bound.

use std::process::Command;

fn soak(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_lwmq-soak"))
        .args(args)
        .output()
        .expect("run lwmq-soak");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!("{stdout}");
    assert!(
        out.status.success() && stdout.contains("RESULT ok"),
        "lwmq-soak {args:?} failed: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn line<'a>(out: &'a str, prefix: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix} line in {out}"))
}

fn field(line: &str, key: &str) -> String {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in {line}"))
        .to_string()
}

fn num(line: &str, key: &str) -> u64 {
    field(line, key).parse().unwrap()
}

/// 12 `kill -9` cycles, alternating a sender and a receiver, during two
/// full-rate streams: nothing corrupted, duplicated or reordered (the soak
/// fails otherwise), and each survivor's descriptors and threads are the
/// same after the last cycle as after the third.
#[test]
fn crash_soak_short() {
    let out = soak(&["crash", "--cycles", "12"]);
    let loss = line(&out, "LOSS");
    assert_eq!(num(loss, "sender_kills"), 6);
    assert_eq!(num(loss, "receiver_kills"), 6);
    assert_eq!(num(line(&out, "CRASH"), "bad"), 0);
    let flat = line(&out, "FLAT");
    for key in ["fds", "threads"] {
        for v in flat
            .split_whitespace()
            .filter_map(|kv| kv.strip_prefix(&format!("{key}=")))
        {
            let (a, b) = v.split_once("->").unwrap();
            assert_eq!(a, b, "{key} changed: {flat}");
        }
    }
}

/// 15 s at full rate into bounded queues with a very slow consumer: both
/// queues discard, every message is accounted for exactly, nothing is
/// corrupted or reordered, and the receiver never stalls.
#[test]
fn load_soak_short() {
    let out = soak(&[
        "load",
        "--seconds",
        "15",
        "--send-queue",
        "500",
        "--recv-queue",
        "500",
        "--every",
        "100",
        "--sleep-us",
        "50000",
    ]);
    let l = line(&out, "LOAD");
    let posted = num(l, "posted");
    let delivered = num(l, "delivered");
    let sd = num(l, "send_discards");
    let rd = num(l, "receive_discards");
    assert_eq!(posted, delivered + 1 + sd + rd, "{l}");
    assert!(delivered > 0, "{l}");
    // At most ~2000 messages a second are consumed; the sender posts far
    // more, so the bounded queues must have discarded.
    assert!(sd + rd > 0, "{l}");
    assert_eq!(num(l, "bad"), 0);
    assert_eq!(num(l, "decode_errors"), 0);
}
