//! `lwmq raw-lat ping|pong`: one-way latency over a raw channel, measured as
//! half of each round trip. `pong` echoes every buffer back; `ping` times
//! each round trip and reports percentiles.

use std::time::{Duration, Instant};

use lwmq::{RawChannel, Timeout, TransportId};

use crate::failure::{emit, Failure};
use crate::peer::{endpoint, first_transport, open_channel, Dirs, RoleArg};
use crate::raw_thr::{is_payload, pattern, stamp_payload};
use crate::waiting::{wait_for_peer, ConnectArgs};

/// Arguments of `lwmq raw-lat`.
#[derive(Debug, clap::Args)]
pub struct RawLatArgs {
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
    /// Size of each transport buffer in bytes (default: 64 KiB, or the payload size if larger).
    #[arg(long)]
    pub buffer_size: Option<usize>,
    /// Microseconds a waiting thread spins before sleeping (0 = futex only).
    #[arg(long)]
    pub spin_us: Option<u64>,
    /// Print one JSON object as the last stdout line.
    #[arg(long)]
    pub json: bool,
    /// How long to wait for the peer.
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Sleep this many microseconds before each round trip (the sparse
    /// scenario; give it to both sides: it sets the warm-up); 0 = back to
    /// back.
    #[arg(long, default_value_t = 0)]
    pub pause_us: u64,
}

/// Latency percentiles of one-way transfers, in nanoseconds.
#[derive(Debug, Clone)]
pub struct LatReport {
    /// Median.
    pub p50_ns: f64,
    /// 99th percentile.
    pub p99_ns: f64,
    /// 99.9th percentile.
    pub p999_ns: f64,
    /// Largest.
    pub max_ns: f64,
    /// Round trips timed.
    pub round_trips: u64,
}

impl LatReport {
    /// From round-trip samples in nanoseconds.
    pub fn from_round_trips(mut rt: Vec<u64>) -> Self {
        rt.sort_unstable();
        let pick = |q: f64| {
            if rt.is_empty() {
                return 0.0;
            }
            let i = ((rt.len() as f64 * q).ceil() as usize).clamp(1, rt.len()) - 1;
            rt[i] as f64 / 2.0
        };
        Self {
            p50_ns: pick(0.50),
            p99_ns: pick(0.99),
            p999_ns: pick(0.999),
            max_ns: rt.last().map_or(0.0, |m| *m as f64 / 2.0),
            round_trips: rt.len() as u64,
        }
    }
    /// The JSON object.
    pub fn to_json(&self, size: usize) -> String {
        serde_json::json!({
            "size": size,
            "p50_ns": self.p50_ns,
            "p99_ns": self.p99_ns,
            "p999_ns": self.p999_ns,
            "max_ns": self.max_ns,
            "round_trips": self.round_trips,
        })
        .to_string()
    }
    /// One human line.
    pub fn render(&self, size: usize) -> String {
        format!(
            "raw-lat: {size} B one-way (round trip / 2) over {} round trips: p50 {:.0} ns, p99 {:.0} ns, p99.9 {:.0} ns, max {:.0} ns\n",
            self.round_trips, self.p50_ns, self.p99_ns, self.p999_ns, self.max_ns
        )
    }
}

/// Runs `lwmq raw-lat`.
pub fn run(a: &RawLatArgs) -> Result<(), Failure> {
    if a.size < 16 {
        return Err(Failure::usage(format!(
            "SIZE {} is too small (rule: SIZE >= 16)",
            a.size
        )));
    }
    let buffer_size = a.buffer_size.unwrap_or(a.size.max(64 * 1024));
    if a.size > buffer_size {
        return Err(Failure::usage(format!(
            "SIZE {} exceeds --buffer-size {buffer_size}",
            a.size
        )));
    }
    let spin = a.spin_us.map(Duration::from_micros);
    let ep = endpoint(&a.uri, buffer_size, 4, Dirs::Both, spin)?;
    let ch = open_channel(ep, a.role)?;
    wait_for_peer(first_transport(&ch)?, a.connect.limit())?;
    let pause = Duration::from_micros(a.pause_us);
    let total = a.count + warmup_for(a.count, pause);
    if a.side == "pong" {
        return pong(&ch, total);
    }
    let r = ping(&ch, a.size, a.count, pause)?;
    emit(&if a.json {
        format!("{}\n", r.to_json(a.size))
    } else {
        r.render(a.size)
    })
}

/// Warm-up round trips before `count` timed ones.
pub fn warmup(count: u64) -> u64 {
    (count / 10).max(100)
}

/// Warm-up round trips before `count` timed ones with `pause` before each:
/// [`warmup`] back to back, 10 with a pause (the sparse scenario measures
/// the wake-up after each pause, and a long warm-up would only add pauses).
pub fn warmup_for(count: u64, pause: Duration) -> u64 {
    if pause.is_zero() {
        warmup(count)
    } else {
        10
    }
}

fn runtime(e: impl std::fmt::Display) -> Failure {
    Failure::runtime(e.to_string())
}

/// Echoes `total` buffers, each checked whole in place (length, both
/// stamps, the pattern) and copied into the outgoing buffer.
pub fn pong(ch: &RawChannel, total: u64) -> Result<(), Failure> {
    let rx = ch.receiver(TransportId(0)).map_err(runtime)?;
    let tx = ch.sender(TransportId(0)).map_err(runtime)?;
    let mut pat = Vec::new();
    for i in 0..total {
        let b = rx.receive_buffer(Timeout::NEVER).map_err(runtime)?;
        if pat.len() != b.len() && b.len() >= 16 {
            pat = pattern(b.len());
        }
        // SAFETY: the peer is `lwmq raw-lat ping` (this tool), which writes
        // a buffer only before sending it, so nothing writes these bytes
        // while the slice lives (it ends before `b` is disposed).
        if !is_payload(unsafe { b.as_slice() }, &pat, i) {
            return Err(Failure::runtime(format!("raw-lat: buffer {i} came wrong")));
        }
        let mut o = tx.get_buffer(Timeout::NEVER).map_err(runtime)?;
        let n = b.len().min(o.len());
        // SAFETY: both buffers are out (their guards live), `b` holds
        // `b.len()` readable bytes and `o` `o.len()` writable ones, and `n`
        // is at most both. They lie in different rings (one per direction),
        // so they do not overlap. A raw copy: no reference to either's
        // bytes, which the peer could write, is formed.
        unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), o.as_mut_ptr(), n) };
        drop(b);
        o.send(n).map_err(runtime)?;
    }
    tx.flush(Timeout::after(Duration::from_secs(10)))
        .map_err(runtime)
}

/// Times `count` round trips after the warm-up: each payload written whole
/// into the buffer, each echo checked whole in place; `pause` before each.
pub fn ping(
    ch: &RawChannel,
    size: usize,
    count: u64,
    pause: Duration,
) -> Result<LatReport, Failure> {
    let rx = ch.receiver(TransportId(0)).map_err(runtime)?;
    let tx = ch.sender(TransportId(0)).map_err(runtime)?;
    let mut samples = Vec::with_capacity(count as usize);
    let w = warmup_for(count, pause);
    let pat = pattern(size);
    let mut payload = pat.clone();
    for i in 0..w + count {
        if !pause.is_zero() {
            std::thread::sleep(pause);
        }
        let t0 = Instant::now();
        let mut o = tx.get_buffer(Timeout::NEVER).map_err(runtime)?;
        stamp_payload(&mut payload, i);
        o.write(0, &payload).map_err(runtime)?;
        o.send(size).map_err(runtime)?;
        let b = rx.receive_buffer(Timeout::NEVER).map_err(runtime)?;
        // SAFETY: the peer is `lwmq raw-lat pong` (this tool), which
        // writes a buffer only before sending it; the slice ends before
        // `b` is disposed.
        let ok = is_payload(unsafe { b.as_slice() }, &pat, i);
        let rt = t0.elapsed();
        if !ok {
            return Err(Failure::runtime(format!(
                "raw-lat: echo {i} came back wrong"
            )));
        }
        drop(b);
        if i >= w {
            samples.push(rt.as_nanos() as u64);
        }
    }
    Ok(LatReport::from_round_trips(samples))
}
