//! End-to-end tests of the `lwmq` binary: exit codes, output and JSON shape.
//! No timing assertions.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener};
use std::process::{Command, Output};

fn lwmq(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lwmq"))
        .args(args)
        .output()
        .expect("run lwmq")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("utf-8 stdout")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}"))
}

#[test]
fn check_accepts_valid_descriptors() {
    let o = lwmq(&["check", "IPC://co/prod/chan:5555"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("ipc://co/prod/chan:5555"), "{out}");
    assert!(out.contains("@lwmq1/5555/co/prod/chan"), "{out}");

    let o = lwmq(&["check", "ipc://co/prod/chan"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("@lwmq1/-/co/prod/chan"));
}

#[test]
fn check_rejects_each_rule_with_exit_2() {
    let long = format!("ipc://{}", "a".repeat(120));
    let cases = [
        ("ipc://", "empty-address"),
        ("ipc://:5", "empty-address"),
        ("ipc://a:b:1", "colon-in-address"),
        ("ipc://a:0", "port-out-of-range"),
        ("ipc://a:65536", "port-out-of-range"),
        (long.as_str(), "address-too-long"),
        ("udp://host:1", "unknown-scheme"),
        ("tcp://host", "port-required"),
        ("tcp://::1:5", "ipv6-needs-brackets"),
        ("tcp://a_b:5", "invalid-host"),
        ("nothing", "missing-scheme"),
    ];
    for (uri, rule) in cases {
        let o = lwmq(&["check", uri]);
        assert_eq!(o.status.code(), Some(2), "{uri}");
        let err = stderr(&o);
        assert!(
            err.starts_with("lwmq: invalid descriptor: "),
            "{uri}: {err}"
        );
        assert!(err.contains(rule), "{uri}: expected rule {rule} in {err}");
        assert!(o.stdout.is_empty(), "{uri}");
    }
    // The human wording of the rule is there too.
    assert!(stderr(&lwmq(&["check", "ipc://a:0"])).contains("rule: port in 1..=65535"));
}

#[test]
fn check_usage_errors_exit_2() {
    assert_eq!(lwmq(&["check"]).status.code(), Some(2));
    assert_eq!(lwmq(&["no-such-command"]).status.code(), Some(2));
    assert_eq!(lwmq(&["ls", "--bogus"]).status.code(), Some(2));
}

#[test]
fn check_json() {
    let o = lwmq(&["check", "--json", "ipc://co/prod/chan:5555"]);
    assert_eq!(o.status.code(), Some(0));
    let v = json(stdout(&o).trim());
    assert_eq!(v["canonical"], "ipc://co/prod/chan:5555");
    assert_eq!(v["address"], "co/prod/chan");
    assert_eq!(v["port"], 5555);
    assert_eq!(v["rendezvous"], "@lwmq1/5555/co/prod/chan");
    assert_eq!(v["hashed"], false);

    let long = format!("ipc://{}", "\u{1F600}".repeat(59));
    let v = json(stdout(&lwmq(&["check", "--json", &long])).trim());
    assert_eq!(v["port"], serde_json::Value::Null);
    assert_eq!(v["hashed"], true);

    let o = lwmq(&["check", "--json", "ipc://a:65536"]);
    assert_eq!(o.status.code(), Some(2));
    let v = json(stdout(&o).trim());
    assert_eq!(v["rule"], "port-out-of-range");
    assert!(v["error"].as_str().unwrap().contains("65536"));
}

#[test]
fn check_tcp_descriptors() {
    let o = lwmq(&["check", "TCP://127.0.0.1:5555"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("canonical   tcp://127.0.0.1:5555"), "{out}");
    assert!(out.contains("host        127.0.0.1 (ipv4)"), "{out}");
    let v = json(stdout(&lwmq(&["check", "--json", "tcp://[0:0::1]:80"])).trim());
    assert_eq!(v["canonical"], "tcp://[::1]:80");
    assert_eq!(v["scheme"], "tcp");
    assert_eq!(v["host_kind"], "ipv6");
    assert_eq!(v["port"], 80);
    let v = json(stdout(&lwmq(&["check", "--json", "tcp://localhost:80"])).trim());
    assert_eq!(v["host_kind"], "name");
    assert!(!v["resolved"].as_array().unwrap().is_empty(), "{v}");
    let o = lwmq(&["check", "--json", "tcp://h:0"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(json(stdout(&o).trim())["rule"], "port-out-of-range");
}

#[test]
fn limits_quick_json() {
    let o = lwmq(&["limits", "--quick", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let v = json(out.lines().last().expect("a line"));
    let copy = v["copy"].as_array().expect("copy array");
    let sizes: Vec<u64> = copy.iter().map(|c| c["size"].as_u64().unwrap()).collect();
    assert_eq!(sizes, [64, 6_400, 640_000]);
    for c in copy {
        assert!(c["copies_per_sec"].as_f64().unwrap() > 0.0, "{c}");
        assert!(c["gbytes_per_sec"].as_f64().unwrap() > 0.0, "{c}");
    }
    let cpus = v["cpus"].as_u64().unwrap();
    if cpus >= 2 {
        let l = &v["cacheline"];
        for key in ["min_ns", "p50_ns", "p99_ns", "p999_ns", "max_ns"] {
            assert!(l[key].as_f64().unwrap() > 0.0, "{key}: {l}");
        }
        assert!(l["samples"].as_u64().unwrap() > 0);
        assert!(l["p50_ns"].as_f64() <= l["p99_ns"].as_f64());
    }
}

#[test]
fn limits_pong_refuses_a_non_memfd_stdin() {
    let o = Command::new(env!("CARGO_BIN_EXE_lwmq"))
        .args(["limits", "--pong", &std::process::id().to_string()])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
}

#[test]
fn ls_lists_a_listening_rendezvous_socket() {
    let o = lwmq(&["ls"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("ADDRESS"));

    let pid = std::process::id();
    let address = format!("lstest-{pid}");
    let name = format!("lwmq1/-/{address}");
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let _listener = UnixListener::bind_addr(&addr).expect("bind abstract socket");

    let o = lwmq(&["ls", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = json(stdout(&o).trim());
    let found: Vec<_> = v
        .as_array()
        .expect("array")
        .iter()
        .filter(|s| s["address"] == address.as_str())
        .collect();
    assert_eq!(found.len(), 1, "{v}");
    let s = found[0];
    assert_eq!(s["pid"], pid);
    assert_eq!(s["port"], serde_json::Value::Null);
    assert_eq!(s["hashed"], false);
    assert_eq!(s["rendezvous"], format!("@{name}").as_str());

    let table = stdout(&lwmq(&["ls"]));
    let line = table
        .lines()
        .find(|l| l.starts_with(&address))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(line.contains(&pid.to_string()), "{line}");
}
