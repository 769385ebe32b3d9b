//! Runs the `records` example (`examples/records.rs`) as two processes: a
//! receiving server and a sending client, each this test binary started
//! again with the example's arguments (the example's code is compiled in
//! here, so no cargo call is needed to build it). Passes when both exit
//! with status 0 and the receiver reports every record in order.
//!
//! No timing is asserted: the bound below only keeps a broken run from
//! hanging the test suite.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "../examples/records.rs"]
mod records;

/// The example's arguments, for a child started by the test.
const ARGS_VAR: &str = "LWMQ_EXAMPLE_RECORDS_ARGS";

/// A generous liveness bound for the pair.
const LIVENESS: Duration = Duration::from_secs(120);

const COUNT: u64 = 3000;

fn main() {
    if let Ok(args) = std::env::var(ARGS_VAR) {
        let args: Vec<String> = args.split(' ').map(str::to_owned).collect();
        if let Err(e) = records::run(&args) {
            eprintln!("records {}: {e}", args[0]);
            std::process::exit(1);
        }
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        println!("records_example_runs_as_two_processes: test");
        return;
    }
    records_example_runs_as_two_processes();
    println!("test records_example_runs_as_two_processes ... ok");
}

fn start(args: &str) -> Child {
    Command::new(std::env::current_exe().expect("own path"))
        .env(ARGS_VAR, args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start a records process")
}

/// Waits for `child` until `deadline`; kills it past that.
fn finish(mut child: Child, deadline: Instant, what: &str) -> String {
    loop {
        match child.try_wait().expect("wait for a records process") {
            Some(_) => break,
            None if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the {what} did not finish within {LIVENESS:?}");
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    let out = child.wait_with_output().expect("collect the output");
    assert!(out.status.success(), "the {what} failed: {}", out.status);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn records_example_runs_as_two_processes() {
    let address = format!("ipc://lwmq-test/{}/records", std::process::id());
    let deadline = Instant::now() + LIVENESS;
    // The sender first: its client transport retries until the server is
    // there, so the start order does not matter.
    let sender = start(&format!("send {address} {COUNT}"));
    let receiver = start(&format!("receive {address} {COUNT}"));
    let received = finish(receiver, deadline, "receiver");
    finish(sender, deadline, "sender");
    assert!(
        received.contains(&format!("received {COUNT} records in order (30 snapshots")),
        "receiver said: {received}"
    );
}
