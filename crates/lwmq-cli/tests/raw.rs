//! `lwmq raw-thr`, `raw-lat` and `demo` end to end: two real processes over
//! `ipc://`, verified payloads, JSON shape and exit codes. No timing
//! assertions.

use std::process::{Command, Output, Stdio};

fn lwmq() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lwmq"))
}

fn last_json(o: &Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&o.stdout);
    let last = text.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}"))
}

fn uri(tag: &str) -> String {
    format!("ipc://lwmq-cli-test/{}/{tag}", std::process::id())
}

#[test]
fn raw_thr_pair_verifies_every_payload() {
    for (size, count, buffers) in [
        ("64", "20000", "8"),
        ("6400", "2000", "4"),
        ("640000", "50", "2"),
    ] {
        let u = uri(&format!("thr-{size}"));
        let recv = lwmq()
            .args([
                "raw-thr",
                "recv",
                &u,
                size,
                count,
                "--role",
                "server",
                "--json",
                "--buffers",
                buffers,
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let send = lwmq()
            .args([
                "raw-thr",
                "send",
                &u,
                size,
                count,
                "--role",
                "client",
                "--json",
                "--buffers",
                buffers,
            ])
            .output()
            .unwrap();
        assert!(
            send.status.success(),
            "{}",
            String::from_utf8_lossy(&send.stderr)
        );
        let r = recv.wait_with_output().unwrap();
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        let v = last_json(&r);
        assert_eq!(v["verified"], true, "{v}");
        assert_eq!(v["messages"], count.parse::<u64>().unwrap());
        assert_eq!(
            v["bytes"],
            count.parse::<u64>().unwrap() * size.parse::<u64>().unwrap()
        );
        for k in ["seconds", "msgs_per_sec", "gbit_per_sec"] {
            assert!(v[k].as_f64().is_some(), "{k} missing in {v}");
        }
        let s = last_json(&send);
        assert_eq!(s["messages"], count.parse::<u64>().unwrap());
        assert!(s.get("verified").is_none());
    }
}

#[test]
fn raw_thr_rejects_bad_arguments_with_exit_2() {
    let o = lwmq()
        .args(["raw-thr", "send", "ipc://x", "8", "10"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("SIZE >= 16"));
    let o = lwmq()
        .args(["raw-thr", "send", "ipc://x:0", "64", "10"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("1..=65535"));
    let o = lwmq()
        .args(["raw-thr", "send", "ipc://x", "64", "10", "--buffers", "0"])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = lwmq()
        .args(["raw-thr", "sideways", "ipc://x", "64", "10"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn raw_thr_second_server_fails_with_address_in_use() {
    let u = uri("inuse");
    let mut recv = lwmq()
        .args(["raw-thr", "recv", &u, "64", "10", "--role", "server"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until it listens (ls shows it).
    let mut listening = false;
    for _ in 0..3000 {
        let o = lwmq().args(["ls", "--json"]).output().unwrap();
        if String::from_utf8_lossy(&o.stdout)
            .contains(&format!("lwmq-cli-test/{}/inuse", std::process::id()))
        {
            listening = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(listening, "the server never showed up in `lwmq ls`");
    let o = lwmq()
        .args(["raw-thr", "send", &u, "64", "10", "--role", "server"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("address in use"));
    let o = lwmq()
        .args(["raw-thr", "send", &u, "64", "10", "--role", "auto"])
        .output()
        .unwrap();
    assert!(o.status.success());
    assert!(recv.wait().unwrap().success());
}

#[test]
fn raw_lat_ping_pong_reports_percentiles() {
    let u = uri("lat");
    let pong = lwmq()
        .args(["raw-lat", "pong", &u, "64", "2000", "--role", "server"])
        .spawn()
        .unwrap();
    let ping = lwmq()
        .args([
            "raw-lat", "ping", &u, "64", "2000", "--role", "client", "--json",
        ])
        .output()
        .unwrap();
    assert!(
        ping.status.success(),
        "{}",
        String::from_utf8_lossy(&ping.stderr)
    );
    let v = last_json(&ping);
    assert_eq!(v["round_trips"], 2000);
    for k in ["p50_ns", "p99_ns", "p999_ns", "max_ns"] {
        assert!(v[k].as_f64().is_some_and(|x| x > 0.0), "{k} in {v}");
    }
    assert!(v["p50_ns"].as_f64() <= v["p99_ns"].as_f64());
    assert!(pong.wait_with_output().unwrap().status.success());
}

#[test]
fn demo_quick_runs_and_prints_the_table() {
    let o = lwmq().args(["demo", "--quick", "--json"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v = last_json(&o);
    assert_eq!(v["raw_thr_64"]["verified"], true, "{v}");
    assert_eq!(v["raw_thr_640000"]["verified"], true, "{v}");
    assert!(v["raw_lat_64"]["p50_ns"].as_f64().is_some());
    assert!(v["limits"]["copy"].is_array());
}
