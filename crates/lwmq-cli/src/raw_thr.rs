//! `lwmq raw-thr send|recv`: throughput over a raw channel, every payload
//! verified.
//!
//! Each payload is a pre-generated pattern with the sequence number stamped
//! (little-endian u64) over its first and last 8 bytes, so filling costs one
//! `memcpy` and two stores, and checking one `memcmp` and two loads: the
//! tool runs at memory speed and what it measures is the transport.

use std::time::{Duration, Instant};

use lwmq::{RawChannel, Timeout, TransportId};

use crate::failure::{emit, Failure};
use crate::peer::{endpoint, first_transport, open_channel, Dirs, RoleArg};
use crate::waiting::{wait_for_peer, ConnectArgs};

/// Arguments of `lwmq raw-thr`.
#[derive(Debug, clap::Args)]
pub struct RawThrArgs {
    /// `send` or `recv`.
    #[arg(value_parser = ["send", "recv"])]
    pub side: String,
    /// The descriptor, e.g. `ipc://localhost:5555`.
    pub uri: String,
    /// Payload size in bytes (at least 16).
    pub size: usize,
    /// Number of payloads.
    pub count: u64,
    /// Which role to open as; `auto` tries SERVER, then CLIENT.
    #[arg(long, value_enum, default_value_t = RoleArg::Auto)]
    pub role: RoleArg,
    /// Size of each transport buffer in bytes (default: 64 KiB, or the payload size if larger).
    #[arg(long)]
    pub buffer_size: Option<usize>,
    /// Send (or receive) buffer count.
    #[arg(long, default_value_t = 8)]
    pub buffers: u32,
    /// Microseconds a waiting thread spins before sleeping (0 = futex only).
    #[arg(long)]
    pub spin_us: Option<u64>,
    /// Print one JSON object as the last stdout line.
    #[arg(long)]
    pub json: bool,
    /// How long to wait for the peer.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// The outcome of one side of a throughput run.
#[derive(Debug, Clone)]
pub struct ThrReport {
    /// Payloads sent or received.
    pub messages: u64,
    /// Payload bytes.
    pub bytes: u64,
    /// Elapsed seconds (first to last payload).
    pub seconds: f64,
    /// Receiver only: every payload checked out.
    pub verified: Option<bool>,
}

impl ThrReport {
    /// Payloads per second.
    pub fn msgs_per_sec(&self) -> f64 {
        self.messages as f64 / self.seconds.max(1e-9)
    }
    /// Payload gigabits per second.
    pub fn gbit_per_sec(&self) -> f64 {
        self.bytes as f64 * 8.0 / self.seconds.max(1e-9) / 1e9
    }
    /// The JSON object.
    pub fn to_json(&self, side: &str, size: usize) -> String {
        let mut o = serde_json::json!({
            "side": side,
            "size": size,
            "messages": self.messages,
            "bytes": self.bytes,
            "seconds": self.seconds,
            "msgs_per_sec": self.msgs_per_sec(),
            "gbit_per_sec": self.gbit_per_sec(),
        });
        if let Some(v) = self.verified {
            o["verified"] = v.into();
        }
        o.to_string()
    }
    /// One human line.
    pub fn render(&self, side: &str, size: usize) -> String {
        let v = match self.verified {
            Some(true) => ", every payload verified",
            Some(false) => ", VERIFICATION FAILED",
            None => "",
        };
        format!(
            "raw-thr {side}: {} payloads of {size} B in {:.4} s: {:.3} M msg/s, {:.2} Gbit/s{v}\n",
            self.messages,
            self.seconds,
            self.msgs_per_sec() / 1e6,
            self.gbit_per_sec()
        )
    }
}

/// The fixed pattern both sides generate.
pub fn pattern(size: usize) -> Vec<u8> {
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Writes payload number `seq` into `dst` (as long as `pat`, at least 16
/// bytes): the pattern, with `seq` (little-endian) in its first and last 8
/// bytes. Every measuring command, and every library's peer in
/// `lwmq-bench`, writes each payload whole this way (docs/performance.md).
pub fn fill_payload(dst: &mut [u8], pat: &[u8], seq: u64) {
    let n = pat.len();
    let s = seq.to_le_bytes();
    dst[8..n - 8].copy_from_slice(&pat[8..n - 8]);
    dst[..8].copy_from_slice(&s);
    dst[n - 8..n].copy_from_slice(&s);
}

/// Sets only the two sequence stamps of a payload that already holds the
/// pattern (what a sender that rewrites one buffer in place changes).
pub fn stamp_payload(dst: &mut [u8], seq: u64) {
    let n = dst.len();
    let s = seq.to_le_bytes();
    dst[..8].copy_from_slice(&s);
    dst[n - 8..].copy_from_slice(&s);
}

/// Whether `got` is payload number `seq` of the pattern `pat`: its length,
/// both stamps and every byte between them.
pub fn is_payload(got: &[u8], pat: &[u8], seq: u64) -> bool {
    let n = pat.len();
    let s = seq.to_le_bytes();
    got.len() == n && got[..8] == s && got[n - 8..] == s && got[8..n - 8] == pat[8..n - 8]
}

/// Runs `lwmq raw-thr`.
pub fn run(a: &RawThrArgs) -> Result<(), Failure> {
    if a.size < 16 {
        return Err(Failure::usage(format!(
            "SIZE {} is too small (rule: SIZE >= 16)",
            a.size
        )));
    }
    let buffer_size = a.buffer_size.unwrap_or(a.size.max(64 * 1024));
    if a.size > buffer_size {
        return Err(Failure::usage(format!(
            "SIZE {} exceeds --buffer-size {buffer_size} (rule: one payload per buffer)",
            a.size
        )));
    }
    let sending = a.side == "send";
    let dirs = if sending { Dirs::Send } else { Dirs::Receive };
    let spin = a.spin_us.map(Duration::from_micros);
    let ep = endpoint(&a.uri, buffer_size, a.buffers, dirs, spin)?;
    let ch = open_channel(ep, a.role)?;
    wait_for_peer(first_transport(&ch)?, a.connect.limit())?;
    let report = if sending {
        send(&ch, a.size, a.count)?
    } else {
        recv(&ch, a.size, a.count)?
    };
    let text = if a.json {
        format!("{}\n", report.to_json(&a.side, a.size))
    } else {
        report.render(&a.side, a.size)
    };
    emit(&text)?;
    if report.verified == Some(false) {
        return Err(Failure::runtime(
            "raw-thr recv: payloads failed verification",
        ));
    }
    Ok(())
}

fn runtime(e: impl std::fmt::Display) -> Failure {
    Failure::runtime(e.to_string())
}

/// Sends `count` payloads; times from the first buffer to the flush.
pub fn send(ch: &RawChannel, size: usize, count: u64) -> Result<ThrReport, Failure> {
    let tx = ch.sender(TransportId(0)).map_err(runtime)?;
    let pat = pattern(size);
    let mut start = None;
    for seq in 0..count {
        let mut b = tx.get_buffer(Timeout::NEVER).map_err(runtime)?;
        start.get_or_insert_with(Instant::now);
        let stamp = seq.to_le_bytes();
        b.write(0, &pat)
            .and_then(|()| b.write(0, &stamp))
            .and_then(|()| b.write(size - 8, &stamp))
            .map_err(runtime)?;
        b.send(size).map_err(runtime)?;
    }
    tx.flush(Timeout::NEVER).map_err(runtime)?;
    let seconds = start.map_or(0.0, |s| s.elapsed().as_secs_f64());
    Ok(ThrReport {
        messages: count,
        bytes: count * size as u64,
        seconds,
        verified: None,
    })
}

/// Receives and verifies `count` payloads; times first to last.
pub fn recv(ch: &RawChannel, size: usize, count: u64) -> Result<ThrReport, Failure> {
    let rx = ch.receiver(TransportId(0)).map_err(runtime)?;
    let pat = pattern(size);
    let mut ok = true;
    let mut start = None;
    for seq in 0..count {
        let b = rx.receive_buffer(Timeout::NEVER).map_err(runtime)?;
        start.get_or_insert_with(Instant::now);
        // SAFETY: the peer is `lwmq raw-thr send` (this tool, `send`
        // above), which writes a buffer only before sending it, so nothing
        // writes these bytes while the slice lives (it ends before `b` is
        // disposed). Checked in place, as a raw receiver would read: a copy
        // out would add a second pass over every payload to the figure.
        let got = unsafe { b.as_slice() };
        ok &= is_payload(got, &pat, seq);
    }
    let seconds = start.map_or(0.0, |s| s.elapsed().as_secs_f64());
    Ok(ThrReport {
        messages: count,
        bytes: count * size as u64,
        seconds,
        verified: Some(ok),
    })
}
