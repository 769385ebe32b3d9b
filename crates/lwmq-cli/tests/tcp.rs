//! Every `lwmq` command that takes a descriptor, over `tcp://` on
//! 127.0.0.1: two real processes, verified payloads, JSON shape and exit
//! codes (no timing assertions).

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn lwmq() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lwmq"))
}

fn last_json(o: &Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&o.stdout);
    let last = text.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}"))
}

/// A port that was free a moment ago.
fn uri() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("tcp://127.0.0.1:{}", l.local_addr().unwrap().port())
}

fn pair(cmd: &str, a: &str, b: &str, size: &str, count: &str) -> (Output, Output) {
    pair_with(cmd, a, b, size, count, &[], &[])
}

/// [`pair`] with extra arguments for each side (`xa` for `a`, `xb` for
/// `b`).
fn pair_with(
    cmd: &str,
    a: &str,
    b: &str,
    size: &str,
    count: &str,
    xa: &[&str],
    xb: &[&str],
) -> (Output, Output) {
    let u = uri();
    let first = lwmq()
        .args([cmd, a, &u, size, count, "--role", "server", "--json"])
        .args(xa)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let second = lwmq()
        .args([cmd, b, &u, size, count, "--role", "client", "--json"])
        .args(xb)
        .output()
        .unwrap();
    let first = first.wait_with_output().unwrap();
    assert!(
        first.status.success(),
        "{cmd} {a} {u} {size} {count} (server): {}\nthe client said: {}",
        String::from_utf8_lossy(&first.stderr),
        String::from_utf8_lossy(&second.stderr)
    );
    assert!(
        second.status.success(),
        "{cmd} {b} {u} {size} {count} (client): {}",
        String::from_utf8_lossy(&second.stderr)
    );
    (first, second)
}

#[test]
fn thr_and_raw_thr_verify_every_payload_over_tcp() {
    for cmd in ["thr", "raw-thr"] {
        for (size, count) in [("64", "20000"), ("6400", "2000"), ("640000", "50")] {
            let (recv, _) = pair(cmd, "recv", "send", size, count);
            let v = last_json(&recv);
            assert_eq!(v["verified"], true, "{cmd} {size}: {v}");
            assert_eq!(v["messages"], count.parse::<u64>().unwrap());
        }
    }
}

/// The sender's and receiver's other modes of `thr` (built messages,
/// batches of `post_copies`, `receive_batch_with`, lent receives), mixed
/// with each other: every payload verified, in order.
#[test]
fn thr_modes_verify_every_payload_over_tcp() {
    let modes: [(&[&str], &[&str]); 4] = [
        (&["--batch"], &["--batch"]),
        (&["--batch"], &["--message"]),
        (&[], &["--batch"]),
        (&["--lend"], &["--batch"]),
    ];
    for (recv_args, send_args) in modes {
        for (size, count) in [("64", "20000"), ("6400", "2000"), ("640000", "20")] {
            let (recv, _) = pair_with("thr", "recv", "send", size, count, recv_args, send_args);
            let v = last_json(&recv);
            assert_eq!(
                v["verified"], true,
                "{recv_args:?} {send_args:?} {size}: {v}"
            );
            assert_eq!(v["messages"], count.parse::<u64>().unwrap());
        }
    }
}

#[test]
fn lat_and_raw_lat_report_percentiles_over_tcp() {
    for cmd in ["lat", "raw-lat"] {
        let (_, ping) = pair(cmd, "pong", "ping", "64", "2000");
        let v = last_json(&ping);
        assert_eq!(v["round_trips"], 2000, "{cmd}: {v}");
        assert!(v["p50_ns"].as_f64().is_some_and(|x| x > 0.0), "{v}");
    }
}

#[test]
fn chat_between_two_processes_over_tcp() {
    let u = uri();
    let mut a = lwmq()
        .args(["chat", &u])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut b = lwmq()
        .args(["chat", &u])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    a.stdin.take().unwrap().write_all(b"from a\n").unwrap();
    b.stdin.take().unwrap().write_all(b"from b\n").unwrap();
    let a = a.wait_with_output().unwrap();
    let b = b.wait_with_output().unwrap();
    let (ao, bo) = (
        String::from_utf8_lossy(&a.stdout),
        String::from_utf8_lossy(&b.stdout),
    );
    assert!(a.status.success() && b.status.success(), "{ao} {bo}");
    assert!(ao.contains("peer: from b"), "{ao}");
    assert!(bo.contains("peer: from a"), "{bo}");
}

#[test]
fn demo_runs_over_tcp() {
    let o = lwmq()
        .args(["demo", "--quick", "--json", "--scheme", "tcp"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v = last_json(&o);
    assert_eq!(v["raw_thr_64"]["verified"], true, "{v}");
    assert_eq!(v["raw_thr_640000"]["verified"], true, "{v}");
    assert!(v["raw_lat_64"]["p50_ns"].as_f64().is_some());
}
