//! The two-process examples of `crates/lwmq/examples/`, each run as two
//! real processes: this test binary re-executes itself as each side (the
//! examples' `run` is compiled in, as their `main` is in `cargo run
//! --example`).

#![allow(dead_code)]

#[path = "../examples/priorities_tags.rs"]
mod priorities_tags;
#[path = "../examples/raw_buffers.rs"]
mod raw_buffers;
#[path = "../examples/req_rep.rs"]
mod req_rep;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

/// Set in a child: the example and its arguments, tab-separated.
const CHILD: &str = "LWMQ_EXAMPLE_CHILD";

/// Generous: nothing here depends on timing, but nothing waits forever.
const LIVENESS: Duration = Duration::from_secs(60);

/// In a re-executed child: runs one side of an example and exits with its
/// status. In the ordinary test run: does nothing.
#[test]
fn child() {
    let Ok(spec) = std::env::var(CHILD) else {
        return;
    };
    let mut parts = spec.split('\t').map(str::to_owned);
    let name = parts.next().unwrap_or_default();
    let args: Vec<String> = parts.collect();
    let r = match name.as_str() {
        "req_rep" => req_rep::run(&args),
        "raw_buffers" => raw_buffers::run(&args),
        "priorities_tags" => priorities_tags::run(&args),
        other => Err(format!("unknown example {other}").into()),
    };
    match r {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("{name}: {e}");
            std::process::exit(1)
        }
    }
}

/// One side of an example, running in its own process.
struct Side {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Side {
    fn spawn(example: &str, args: &[&str]) -> Side {
        let spec = std::iter::once(example)
            .chain(args.iter().copied())
            .collect::<Vec<_>>()
            .join("\t");
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["child", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD, spec)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let (tx, lines) = channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Side {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line that holds `prefix` (the test harness's own
    /// `test child ... ` may come first on the line).
    fn expect(&mut self, prefix: &str) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(LIVENESS)
                .unwrap_or_else(|_| panic!("no {prefix:?} line; saw {:?}", self.seen));
            self.seen.push(line.clone());
            if let Some(at) = line.find(prefix) {
                return line[at..].to_owned();
            }
        }
    }

    /// Waits for the process to end; its stdout lines (the test
    /// harness's own lines left out).
    fn finish(mut self) -> Vec<String> {
        let status = wait(&mut self.child);
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
        assert!(status.success(), "{status}; saw {:?}", self.seen);
        self.seen
            .iter()
            .map(|l| l.trim_start_matches("test child ... ").to_owned())
            .filter(|l| !l.is_empty() && l != "running 1 test")
            .collect()
    }
}

/// Waits for `child`, killing it after the liveness bound.
fn wait(child: &mut Child) -> std::process::ExitStatus {
    let end = std::time::Instant::now() + LIVENESS;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if std::time::Instant::now() > end {
            let _ = child.kill();
            panic!("example process did not end");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn address(name: &str) -> String {
    format!("ipc://lwmq-examples/{}/{name}", std::process::id())
}

#[test]
fn req_rep_server_and_client() {
    let a = address("req-rep");
    // The client first: it connects in the background.
    let client = Side::spawn("req_rep", &["client", &a, "5"]);
    let mut server = Side::spawn("req_rep", &["server", &a]);
    server.expect("server: listening");
    let client = client.finish();
    assert!(
        client.contains(&"client: re: request 4".to_owned()),
        "{client:?}"
    );
    assert!(client.contains(&"client: done".to_owned()), "{client:?}");
    let server = server.finish();
    assert!(server.contains(&"server: bye".to_owned()), "{server:?}");
}

#[test]
fn raw_buffers_writer_and_reader() {
    let a = address("raw");
    let mut reader = Side::spawn("raw_buffers", &["reader", &a, "200"]);
    reader.expect("reader: listening");
    let writer = Side::spawn("raw_buffers", &["writer", &a, "200"]);
    assert!(writer.finish().contains(&"writer: sent 200".to_owned()));
    assert!(reader
        .finish()
        .contains(&"reader: received 200, all intact".to_owned()));
}

#[test]
fn priorities_and_tags_producer_and_consumer() {
    let a = address("prio");
    let mut producer = Side::spawn("priorities_tags", &["producer", &a]);
    // Everything is queued before the consumer exists.
    let ready = producer.expect("producer: ready");
    assert_eq!(
        ready,
        "producer: ready (20 bulk, 3 progress, 2 alerts queued)"
    );
    let consumer = Side::spawn("priorities_tags", &["consumer", &a]).finish();
    assert_eq!(consumer[0], "consumer: alert 0", "{consumer:?}");
    assert!(
        consumer
            .last()
            .is_some_and(|l| l.starts_with("consumer: alerts first")),
        "{consumer:?}"
    );
    producer.finish();
}
