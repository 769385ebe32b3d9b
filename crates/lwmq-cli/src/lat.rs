//! `lwmq lat ping|pong`: one-way latency through a messaging channel,
//! measured as half of each round trip (one-frame messages, mono-producer
//! send queue, mono-consumer receive queue). Reports as `raw-lat` does.

use std::time::{Duration, Instant};

use lwmq::{Channel, MonoQueue, Priority, QueueOptions, Timeout};

use crate::failure::{emit, Failure};
use crate::peer::{Dirs, RoleArg};
use crate::raw_lat::{warmup_for, LatReport};
use crate::raw_thr::{fill_payload, is_payload, pattern};
use crate::thr::{first_view, open_msg_channel};
use crate::waiting::{wait_for_peer, ConnectArgs};

/// Arguments of `lwmq lat`.
#[derive(Debug, clap::Args)]
pub struct LatArgs {
    /// `ping` (measures) or `pong` (echoes).
    #[arg(value_parser = ["ping", "pong"])]
    pub side: String,
    /// The descriptor.
    pub uri: String,
    /// Payload size in bytes (at least 16).
    pub size: usize,
    /// Round trips to time (after a warm-up of COUNT/10, at least 100).
    pub count: u64,
    /// Which role to open as; `auto` tries SERVER, then CLIENT.
    #[arg(long, value_enum, default_value_t = RoleArg::Auto)]
    pub role: RoleArg,
    /// Microseconds a waiting thread spins in the transport before it
    /// sleeps on the futex (0 = futex only; default: the library's).
    #[arg(long)]
    pub spin_us: Option<u64>,
    /// Print one JSON object as the last stdout line.
    #[arg(long)]
    pub json: bool,
    /// How long to wait for the peer.
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Sleep this many microseconds before each round trip (the sparse
    /// scenario: a message after a pause; give it to both sides: it sets
    /// the warm-up); 0 = back to back.
    #[arg(long, default_value_t = 0)]
    pub pause_us: u64,
}

fn runtime(e: impl std::fmt::Display) -> Failure {
    Failure::runtime(e.to_string())
}

/// Runs `lwmq lat`.
pub fn run(a: &LatArgs) -> Result<(), Failure> {
    if a.size < 16 {
        return Err(Failure::usage(format!(
            "SIZE {} is too small (rule: SIZE >= 16)",
            a.size
        )));
    }
    let buffer_size = (64 * 1024).max(a.size + 64);
    let spin = a.spin_us.map(Duration::from_micros);
    let ep = crate::peer::endpoint(&a.uri, buffer_size, 4, Dirs::Both, spin)?;
    let (mut ch, q) = open_msg_channel(ep, a.role, Some(QueueOptions::new(Priority::Normal)))?;
    let q = q.ok_or_else(|| Failure::runtime("no send queue"))?;
    wait_for_peer(first_view(&ch)?, a.connect.limit())?;
    let pause = Duration::from_micros(a.pause_us);
    let total = a.count + warmup_for(a.count, pause);
    if a.side == "pong" {
        pong(&mut ch, &q, total)?;
        let _ = ch.close(Duration::from_secs(10));
        return Ok(());
    }
    let r = ping(&mut ch, &q, a.size, a.count, pause)?;
    let _ = ch.close(Duration::from_secs(1));
    emit(&if a.json {
        format!("{}\n", r.to_json(a.size))
    } else {
        r.render(a.size).replacen("raw-lat", "lat", 1)
    })
}

/// Echoes `total` messages, each checked whole first (its length, both
/// stamps and the pattern between them) and posted back as received.
pub fn pong(ch: &mut Channel, q: &MonoQueue, total: u64) -> Result<(), Failure> {
    let mut pat = Vec::new();
    for i in 0..total {
        let m = ch.receive(Timeout::NEVER).map_err(runtime)?;
        let ok = m.frame_count() == 1
            && m.frame(0).is_some_and(|f| {
                if pat.len() != f.len() && f.len() >= 16 {
                    pat = pattern(f.len());
                }
                is_payload(f.data(), &pat, i)
            });
        if !ok {
            return Err(Failure::runtime(format!("lat: message {i} came wrong")));
        }
        q.post(m, Timeout::NEVER).map_err(runtime)?;
    }
    Ok(())
}

/// Times `count` round trips after the warm-up, each payload written whole
/// into a buffer and posted with [`MonoQueue::post_copy`], each echo
/// checked whole; `pause` before each.
pub fn ping(
    ch: &mut Channel,
    q: &MonoQueue,
    size: usize,
    count: u64,
    pause: Duration,
) -> Result<LatReport, Failure> {
    let mut samples = Vec::with_capacity(count as usize);
    let w = warmup_for(count, pause);
    let pat = pattern(size);
    let mut payload = vec![0u8; size];
    for i in 0..w + count {
        if !pause.is_zero() {
            std::thread::sleep(pause);
        }
        let t0 = Instant::now();
        fill_payload(&mut payload, &pat, i);
        q.post_copy(&payload, Timeout::NEVER).map_err(runtime)?;
        let r = ch.receive(Timeout::NEVER).map_err(runtime)?;
        let ok = r.frame_count() == 1 && r.frame(0).is_some_and(|f| is_payload(f.data(), &pat, i));
        let rt = t0.elapsed();
        if !ok {
            return Err(Failure::runtime(format!("lat: echo {i} came back wrong")));
        }
        if i >= w {
            samples.push(rt.as_nanos() as u64);
        }
    }
    Ok(LatReport::from_round_trips(samples))
}
