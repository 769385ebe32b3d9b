//! Priorities and tags between two processes.
//!
//! ```text
//! cargo run -p lwmq --example priorities_tags -- producer ipc://example/prio
//! cargo run -p lwmq --example priorities_tags -- consumer ipc://example/prio
//! ```
//!
//! The producer opens first and posts while no consumer is connected, so
//! everything waits in its queues:
//!
//! * 20 `bulk` messages on a `Priority::Lowest` queue;
//! * 100 progress updates for each of 3 jobs on a tagged
//!   `Priority::Normal` queue, tag = job number: an update replaces the
//!   one of the same job still queued (latest value wins), so 3 remain;
//! * 2 `alert` messages on a `Priority::TimeCritical` queue, posted last.
//!
//! Then it prints `ready` and waits (its close lingers) until a consumer
//! has taken everything. The consumer prints what arrives: the alerts
//! first (time-critical is always served first), then the progress and bulk
//! messages by weighted round-robin (Normal has weight 4, Lowest 1), with
//! only the last update of each job.

use std::time::Duration;

use lwmq::{Channel, Endpoint, Message, Priority, QueueOptions, Role, Timeout};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const PATIENCE: Duration = Duration::from_secs(30);
const JOBS: u64 = 3;
const UPDATES: u64 = 100;
const BULK: u64 = 20;
const ALERTS: u64 = 2;

fn producer(address: &str) -> Result<(), BoxError> {
    // Send only: this side never receives.
    let ep = Endpoint::new(address)?.receive_buffers(0);
    let mut b = Channel::builder().transport(ep)?;
    let bulk = b.mono_queue(Priority::Lowest)?;
    let progress = b.multi_queue(QueueOptions::new(Priority::Normal).tagged())?;
    let alerts = b.multi_queue(Priority::TimeCritical)?;
    let ch = b.open(Role::Server)?;
    for i in 0..BULK {
        bulk.post(Message::from(format!("bulk {i}")), Timeout::NEVER)?;
    }
    for update in 1..=UPDATES {
        for job in 1..=JOBS {
            let m = Message::from(format!("progress job {job}: {update}%"));
            progress.post_with_tag(m, job, Timeout::NEVER)?;
        }
    }
    for i in 0..ALERTS {
        alerts.post(Message::from(format!("alert {i}")), Timeout::NEVER)?;
    }
    println!(
        "producer: ready ({} bulk, {} progress, {} alerts queued)",
        bulk.len(),
        progress.len(),
        alerts.len()
    );
    // Sent when the consumer connects; close waits until it took them.
    ch.close(PATIENCE)?;
    println!("producer: done");
    Ok(())
}

fn consumer(address: &str) -> Result<(), BoxError> {
    let ep = Endpoint::new(address)?.send_buffers(0);
    let mut ch = Channel::builder().transport(ep)?.open(Role::Client)?;
    let total = ALERTS + JOBS + BULK;
    let mut got = Vec::new();
    while (got.len() as u64) < total {
        let m = ch.receive(PATIENCE)?;
        let text = String::from_utf8_lossy(m.frame(0).map_or(&[][..], |f| f.data())).into_owned();
        println!("consumer: {text}");
        got.push(text);
    }
    // Time-critical first; then only the latest update of each job.
    let alerts_first = got[..ALERTS as usize]
        .iter()
        .all(|t| t.starts_with("alert"));
    let progress: Vec<_> = got.iter().filter(|t| t.starts_with("progress")).collect();
    let latest = progress
        .iter()
        .all(|t| t.ends_with(&format!(": {UPDATES}%")));
    if !alerts_first || progress.len() as u64 != JOBS || !latest {
        return Err(format!("consumer: unexpected order or contents: {got:?}").into());
    }
    println!("consumer: alerts first, {JOBS} latest updates, {BULK} bulk");
    Ok(())
}

/// Runs the example with its command-line arguments.
pub fn run(args: &[String]) -> Result<(), BoxError> {
    match args {
        [role, address] if role == "producer" => producer(address),
        [role, address] if role == "consumer" => consumer(address),
        _ => Err("usage: priorities_tags producer|consumer ADDRESS".into()),
    }
}

#[allow(dead_code)]
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = run(&args) {
        eprintln!("priorities_tags: {e}");
        std::process::exit(1);
    }
}
