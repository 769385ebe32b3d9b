//! A stream of typed records between two processes (cargo feature `serde`).
//!
//! One process receives, the other sends; each record is a serde value
//! encoded into a one-frame message with `Message::encode` and read back
//! with `Message::decode` (`lwmq::codec`). Start the receiver first or
//! second, as you like: the sender's transport is a client that retries
//! until the receiving server is there.
//!
//! ```text
//! cargo run -p lwmq --features serde --example records -- receive ipc://lwmq-example/records 10000
//! cargo run -p lwmq --features serde --example records -- send    ipc://lwmq-example/records 10000
//! ```
//!
//! The receiver checks that the records arrive complete and in order, and
//! prints a summary; both exit with status 0 on success and 1 (with the
//! reason on stderr) on failure. `tests/example_records.rs` runs the pair.

use std::error::Error;
use std::time::Duration;

use lwmq::{Channel, Endpoint, Message, Priority, QueueOptions, Role, Timeout};
use serde::{Deserialize, Serialize};

/// One record of the stream. Small readings encode into the message's
/// inline frame (no allocation); the periodic snapshots are larger.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Reading {
    seq: u64,
    sensor: String,
    celsius: f64,
    kind: Kind,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
enum Kind {
    /// A single sample.
    Sample,
    /// A burst of raw samples.
    Snapshot { samples: Vec<i16> },
}

/// Record `seq`, as the sender makes it and the receiver expects it.
fn reading(seq: u64) -> Reading {
    Reading {
        seq,
        sensor: format!("sensor-{}", seq % 4),
        celsius: 20.0 + (seq % 100) as f64 / 10.0,
        kind: if seq % 100 == 99 {
            Kind::Snapshot {
                samples: (0..2000)
                    .map(|i| (i as i16).wrapping_mul(seq as i16))
                    .collect(),
            }
        } else {
            Kind::Sample
        },
    }
}

/// How long either side waits for its peer before giving up.
const PATIENCE: Duration = Duration::from_secs(30);

/// Transport buffers of 64 KiB: a snapshot (about 4 KiB) fits, and many
/// samples club into one buffer.
const BUFFER_SIZE: usize = 64 * 1024;

fn send(address: &str, count: u64) -> Result<(), Box<dyn Error>> {
    let endpoint = Endpoint::new(address)?
        .buffer_size(BUFFER_SIZE)
        .send_buffers(4)
        .receive_buffers(0);
    let mut builder = Channel::builder().transport(endpoint)?;
    // The default high-water mark paces the sender to the receiver.
    let queue = builder.mono_queue(QueueOptions::new(Priority::Normal))?;
    let channel = builder.open(Role::Client)?;
    for seq in 0..count {
        queue.post(Message::encode(&reading(seq))?, Timeout::NEVER)?;
    }
    // Everything posted reaches the receiver before the channel goes.
    channel.flush(PATIENCE)?;
    channel.close(PATIENCE)?;
    eprintln!("sent {count} records");
    Ok(())
}

fn receive(address: &str, count: u64) -> Result<(), Box<dyn Error>> {
    let endpoint = Endpoint::new(address)?
        .buffer_size(BUFFER_SIZE)
        .send_buffers(0)
        .receive_buffers(4);
    let mut channel = Channel::builder().transport(endpoint)?.open(Role::Server)?;
    let mut snapshots = 0;
    let mut bytes = 0;
    for expected in 0..count {
        let message = channel.receive(PATIENCE)?;
        bytes += message.payload_size();
        let got: Reading = message.decode()?;
        if got != reading(expected) {
            return Err(format!("record {expected}: got {got:?}").into());
        }
        if let Kind::Snapshot { .. } = got.kind {
            snapshots += 1;
        }
    }
    println!("received {count} records in order ({snapshots} snapshots, {bytes} bytes encoded)");
    channel.close(Timeout::ZERO)?;
    Ok(())
}

/// `records send|receive ADDRESS COUNT`.
pub fn run(args: &[String]) -> Result<(), Box<dyn Error>> {
    let [mode, address, count] = args else {
        return Err("usage: records send|receive ipc://ADDRESS COUNT".into());
    };
    let count: u64 = count.parse().map_err(|e| format!("COUNT {count:?}: {e}"))?;
    match mode.as_str() {
        "send" => send(address, count),
        "receive" => receive(address, count),
        other => Err(format!("unknown mode {other:?}: send or receive").into()),
    }
}

#[allow(dead_code)] // Included by the test, which has its own `main`.
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = run(&args) {
        eprintln!("records: {e}");
        std::process::exit(1);
    }
}
