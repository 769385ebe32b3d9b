//! `lwmq-msg-peer`: a test peer over a messaging channel, for the
//! multi-process tests of the channel layer.
//!
//! ```text
//! lwmq-msg-peer send URI server|client COUNT SIZE   (COUNT 0 = forever)
//! lwmq-msg-peer recv URI server|client COUNT        (COUNT 0 = forever)
//! lwmq-msg-peer idle URI server|client SECONDS      (connect, then block in receive)
//! ```
//!
//! Each message has one frame holding a checked payload
//! (`lwmq_harness::fill`) whose `run` is unique per sender process. The
//! receiver prints `RUN <run> <first seq>` when a new run starts, `BAD ...`
//! for any corrupted payload, duplicate or reordering within a run, and
//! after COUNT messages `DONE received=.. bad=.. dup=.. gaps=.. runs=..`.
//! Both print `OPEN <role>` once the channel is open.

use std::io::Write;
use std::time::Duration;

use lwmq::channel::{Channel, Priority, ReceiveQueueKind, SendQueueKind};
use lwmq::message::{Message, Timestamp};
use lwmq::{Directions, Role, Timeout};

fn fail(msg: impl AsRef<str>) -> ! {
    eprintln!("lwmq-msg-peer: {}", msg.as_ref());
    std::process::exit(2);
}

fn say(line: String) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn main() {
    lwmq_harness::init_logging();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 4 {
        fail("usage: send|recv URI server|client COUNT [SIZE]");
    }
    let role = match args[2].as_str() {
        "server" => Role::Server,
        "client" => Role::Client,
        r => fail(format!("bad role {r}")),
    };
    let count: u64 = args[3].parse().unwrap_or_else(|_| fail("bad COUNT"));
    match args[0].as_str() {
        "send" => {
            let size: usize = args
                .get(4)
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| fail("bad SIZE"));
            send(&args[1], role, count, size.max(lwmq_harness::HEADER));
        }
        "recv" => recv(&args[1], role, count),
        "idle" => idle(&args[1], role, count),
        c => fail(format!("unknown command {c}")),
    }
}

fn send(uri: &str, role: Role, count: u64, size: usize) {
    let mut ch = Channel::new();
    ch.add_transport(uri, 64 * 1024, 8, 0, Directions::Send)
        .unwrap_or_else(|e| fail(e.to_string()));
    let q = ch
        .add_send_queue(SendQueueKind::MonoProducerUnbounded, Priority::Normal)
        .unwrap_or_else(|e| fail(e.to_string()));
    ch.open(role, None).unwrap_or_else(|e| fail(e.to_string()));
    say(format!(
        "OPEN {}",
        if role == Role::Server {
            "server"
        } else {
            "client"
        }
    ));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let run = (u64::from(std::process::id()) << 32) ^ nanos;
    let mut buf = vec![0u8; size];
    let mut seq = 0u64;
    while count == 0 || seq < count {
        // Keep the queue short: a stream, not a memory test.
        while q.len() > 10_000 {
            std::thread::sleep(Duration::from_millis(1));
        }
        lwmq_harness::fill(&mut buf, run, seq);
        let mut m = Message::new();
        m.push_copy(&buf, Timestamp::None)
            .unwrap_or_else(|e| fail(e.to_string()));
        q.post(m, Timeout::INFINITE)
            .unwrap_or_else(|e| fail(e.to_string()));
        seq += 1;
    }
    ch.flush(Timeout::after(Duration::from_secs(60)))
        .unwrap_or_else(|e| fail(format!("flush: {e}")));
    say(format!("SENT {seq}"));
    let _ = ch.close(Timeout::after(Duration::from_secs(5)));
}

fn recv(uri: &str, role: Role, count: u64) {
    let mut ch = Channel::new();
    ch.add_transport(uri, 64 * 1024, 0, 8, Directions::Receive)
        .unwrap_or_else(|e| fail(e.to_string()));
    ch.open(role, Some(ReceiveQueueKind::MonoConsumerUnbounded))
        .unwrap_or_else(|e| fail(e.to_string()));
    say(format!(
        "OPEN {}",
        if role == Role::Server {
            "server"
        } else {
            "client"
        }
    ));
    let (mut received, mut bad, mut dup, mut gaps, mut runs) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut current: Option<(u64, u64)> = None;
    while count == 0 || received < count {
        let r = match ch.receive(Timeout::INFINITE) {
            Ok(r) => r,
            Err(e) => fail(e.to_string()),
        };
        received += 1;
        let checked = (r.frame_count == 1)
            .then(|| r.message.frame(0))
            .flatten()
            .and_then(|f| lwmq_harness::check(f.data()));
        let Some((run, seq)) = checked else {
            bad += 1;
            say(format!("BAD corrupt payload #{received}"));
            continue;
        };
        match current {
            Some((r0, last)) if r0 == run => {
                if seq <= last {
                    dup += 1;
                    say(format!("BAD duplicate or reordered seq {seq} after {last}"));
                } else if seq != last + 1 {
                    gaps += 1;
                    say(format!("BAD gap: seq {seq} after {last}"));
                }
                current = Some((run, seq.max(last)));
            }
            _ => {
                runs += 1;
                current = Some((run, seq));
                say(format!("RUN {run} {seq}"));
            }
        }
    }
    say(format!(
        "DONE received={received} bad={bad} dup={dup} gaps={gaps} runs={runs}"
    ));
    let _ = ch.close(Timeout::ZERO);
}

/// Opens a send+receive channel, prints `CONNECTED` once the peer is there,
/// then blocks in `receive` (as an idle application would) for `seconds`.
fn idle(uri: &str, role: Role, seconds: u64) {
    let mut ch = Channel::new();
    let t = ch
        .add_transport(uri, 64 * 1024, 4, 4, Directions::SendReceive)
        .unwrap_or_else(|e| fail(e.to_string()));
    let _q = ch
        .add_send_queue(SendQueueKind::MonoProducerUnbounded, Priority::Normal)
        .unwrap_or_else(|e| fail(e.to_string()));
    ch.open(role, Some(ReceiveQueueKind::MonoConsumerUnbounded))
        .unwrap_or_else(|e| fail(e.to_string()));
    let connected = (0..6000).any(|_| {
        let up = ch
            .transport(t)
            .is_ok_and(|t| t.state() == lwmq::ConnectionState::Connected);
        if !up {
            std::thread::sleep(Duration::from_millis(10));
        }
        up
    });
    if !connected {
        fail("never connected");
    }
    say("CONNECTED".into());
    let end = std::time::Instant::now() + Duration::from_secs(seconds);
    while std::time::Instant::now() < end {
        let _ = ch.receive(Timeout::after(Duration::from_secs(1)));
    }
    say("IDLE-DONE".into());
    let _ = ch.close(Timeout::ZERO);
}
