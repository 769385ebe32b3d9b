//! `lwmq thr send|recv`: throughput through a messaging channel, every
//! payload verified. Same contract as `raw-thr` (see [`crate::raw_thr`]),
//! but each payload is a one-frame [`Message`] created per message (copied
//! frame), posted to a mono queue (NORMAL, its high-water mark about one
//! ring's worth of messages) and taken from a mono-consumer receive queue,
//! so what is measured includes message creation, posting, clubbing,
//! decoding and the receive queue.

use std::time::Instant;

use lwmq::message::{Frame, Message};
use lwmq::{Channel, ConnectionState, Endpoint, MonoQueue, Priority, QueueOptions, Role, Timeout};

use crate::failure::{emit, Failure};
use crate::peer::{Dirs, RoleArg};
use crate::raw_thr::{is_payload, pattern, stamp_payload, ThrReport};
use crate::waiting::{wait_for_peer, ConnectArgs};

/// Arguments of `lwmq thr`.
#[derive(Debug, clap::Args)]
pub struct ThrArgs {
    /// `send` or `recv`.
    #[arg(value_parser = ["send", "recv"])]
    pub side: String,
    /// The descriptor, e.g. `ipc://localhost:5555`.
    pub uri: String,
    /// Payload size in bytes (at least 16).
    pub size: usize,
    /// Number of messages.
    pub count: u64,
    /// Which role to open as; `auto` tries SERVER, then CLIENT.
    #[arg(long, value_enum, default_value_t = RoleArg::Auto)]
    pub role: RoleArg,
    /// Size of each transport buffer in bytes (default: 1 MiB, or enough for one payload if larger).
    #[arg(long)]
    pub buffer_size: Option<usize>,
    /// Send (or receive) buffer count.
    #[arg(long, default_value_t = 8)]
    pub buffers: u32,
    /// Print one JSON object as the last stdout line.
    #[arg(long)]
    pub json: bool,
    /// recv: read each message in place with `Channel::receive_with`
    /// (no copy out of the transport buffer) instead of `receive`.
    #[arg(long)]
    pub lend: bool,
    /// recv: take the messages in batches of up to 256 with
    /// `Channel::receive_batch_with`, each read in place as with `--lend`.
    /// send: post them in batches of up to 256 payloads (fewer above 4 KiB:
    /// 1 MiB of payloads at most) with `MonoQueue::post_copies`.
    #[arg(long, conflicts_with_all = ["lend", "loan", "message"])]
    pub batch: bool,
    /// How long to wait for the peer.
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// send: write each payload in place with `MonoQueue::loan` (straight
    /// into the transport buffer, no `Message`) instead of posting a
    /// copied frame.
    #[arg(long)]
    pub loan: bool,
    /// send: build each message (`Message` with a copied frame) and post
    /// it with `MonoQueue::post`, instead of `MonoQueue::post_copy` (which
    /// copies the payload straight into the transport buffer when it can).
    #[arg(long, conflicts_with = "loan")]
    pub message: bool,
}

/// A messaging channel with the one transport `ep` and, if `queue` is
/// given (the transport sends), one mono queue of those options.
pub fn open_msg_channel(
    ep: Endpoint,
    role: RoleArg,
    queue: Option<QueueOptions>,
) -> Result<(Channel, Option<MonoQueue>), Failure> {
    let mut b = Channel::builder()
        .transport(ep)
        .map_err(|e| Failure::usage(e.to_string()))?;
    let q = match queue {
        Some(options) => Some(b.mono_queue(options).map_err(runtime)?),
        None => None,
    };
    match b.open(role.first()) {
        Ok(ch) => Ok((ch, q)),
        Err(e) if e.is_address_in_use() && role == RoleArg::Auto => {
            let ch = e.into_builder().open(Role::Client).map_err(runtime)?;
            Ok((ch, q))
        }
        Err(e) => Err(runtime(e)),
    }
}

/// The channel's first (and, for these commands, only) transport.
pub fn first_view(ch: &Channel) -> Result<lwmq::TransportView<'_>, Failure> {
    ch.transports()
        .next()
        .ok_or_else(|| Failure::runtime("the channel has no transport"))
}

fn runtime(e: impl std::fmt::Display) -> Failure {
    Failure::runtime(e.to_string())
}

/// Keeps glibc's allocator from handing freed memory back to the kernel
/// after every large message: by default a freed block of 640,000 bytes at
/// the top of the heap is trimmed, so the next message's allocation faults
/// its pages in again (measured: about 30 page faults per 640,000-byte
/// message, and a third of the throughput). An application that sends large
/// copied frames would do the same (or use external frames); see
/// docs/performance.md. Process-wide; harmless for small messages.
pub fn tune_allocator() {
    // SAFETY: mallopt only changes the allocator's thresholds; it is called
    // before this process's messaging threads start, and glibc serialises
    // it with allocations anyway. A refused value (returns 0) changes
    // nothing.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
    }
}

/// Runs `lwmq thr`.
pub fn run(a: &ThrArgs) -> Result<(), Failure> {
    tune_allocator();
    if a.size < 16 {
        return Err(Failure::usage(format!(
            "SIZE {} is too small (rule: SIZE >= 16)",
            a.size
        )));
    }
    let buffer_size = a
        .buffer_size
        .unwrap_or((1 << 20).max(a.size + BUFFER_OVERHEAD + 16));
    let sending = a.side == "send";
    let dirs = if sending { Dirs::Send } else { Dirs::Receive };
    let ep = crate::peer::endpoint(&a.uri, buffer_size, a.buffers, dirs, None)?;
    let mark = queue_mark(buffer_size, a.buffers, a.size);
    let options = QueueOptions::new(Priority::Normal).high_water_mark(mark);
    let (mut ch, q) = open_msg_channel(ep, a.role, sending.then_some(options))?;
    wait_for_peer(first_view(&ch)?, a.connect.limit())?;
    let report = match q {
        Some(q) if a.loan => send_loaned(&ch, &q, a.size, a.count)?,
        Some(q) if a.batch => send_batched(&ch, &q, a.size, a.count)?,
        Some(q) => send(&ch, &q, a.size, a.count, a.message)?,
        None if a.lend => recv_lent(&mut ch, a.size, a.count)?,
        None if a.batch => recv_batch(&mut ch, a.size, a.count)?,
        None => recv(&mut ch, a.size, a.count)?,
    };
    let text = if a.json {
        format!("{}\n", report.to_json(&a.side, a.size))
    } else {
        let s = ch.stats();
        let club = if sending {
            format!(
                "thr send: {} buffers, {:.1} messages per buffer, bias granted {} and revoked {} times\n",
                s.buffers_sent, s.messages_per_buffer, s.bias_grants, s.bias_revocations
            )
        } else {
            String::new()
        };
        format!(
            "{}{club}",
            report.render(&a.side, a.size).replacen("raw-thr", "thr", 1)
        )
    };
    let _ = ch.close(std::time::Duration::from_secs(5));
    emit(&text)?;
    if report.verified == Some(false) {
        return Err(Failure::runtime("thr recv: payloads failed verification"));
    }
    Ok(())
}

/// Bytes a transport buffer spends on its own header (the messaging wire
/// format's buffer header).
const BUFFER_OVERHEAD: usize = 8;

/// The high-water mark of `thr`'s queue: about one ring's worth of
/// messages (at least 4). A larger mark only adds memory: once the ring is
/// full the peer sets the pace, and a queue of whole runs measured the
/// allocator and page faults instead of the channel (decision 32).
pub fn queue_mark(buffer_size: usize, buffers: u32, size: usize) -> usize {
    let ring = buffer_size.saturating_mul(buffers.max(1) as usize);
    (ring / size.max(1)).max(4)
}

/// Posts `count` messages, each waiting at the queue's high-water mark
/// while the peer is behind; times from the first post to the flush.
/// With `message`, each is a built [`Message`] posted with
/// [`MonoQueue::post`]; otherwise [`MonoQueue::post_copy`] posts the
/// payload (what a user sending small payloads from a buffer would use).
pub fn send(
    ch: &Channel,
    q: &MonoQueue,
    size: usize,
    count: u64,
    message: bool,
) -> Result<ThrReport, Failure> {
    let pat = pattern(size);
    let mut payload = pat.clone();
    wait_connected(ch);
    let start = Instant::now();
    for seq in 0..count {
        stamp_payload(&mut payload, seq);
        if message {
            let mut m = Message::with_capacity(1);
            m.push(Frame::copy(&payload));
            q.post(m, Timeout::NEVER).map_err(runtime)?;
        } else {
            q.post_copy(&payload, Timeout::NEVER).map_err(runtime)?;
        }
    }
    sent(ch, start, size, count)
}

/// The sender's report: flushes, then times from `start`.
fn sent(ch: &Channel, start: Instant, size: usize, count: u64) -> Result<ThrReport, Failure> {
    ch.flush(Timeout::NEVER).map_err(runtime)?;
    Ok(ThrReport {
        messages: count,
        bytes: count * size as u64,
        seconds: start.elapsed().as_secs_f64(),
        verified: None,
    })
}

/// Most messages per call of the batch modes (`--batch`).
const BATCH: usize = 256;

/// Messages per call of the batch modes for `size`-byte payloads:
/// [`BATCH`], fewer for large payloads (the sender's batch of payloads
/// stays within 1 MiB; one at least).
fn batch_len(size: usize) -> usize {
    ((1 << 20) / size.max(1)).clamp(1, BATCH)
}

/// [`send`] in batches: [`batch_len`] payloads (each the pattern with its
/// own stamps) written side by side, then posted with one
/// [`MonoQueue::post_copies`].
pub fn send_batched(
    ch: &Channel,
    q: &MonoQueue,
    size: usize,
    count: u64,
) -> Result<ThrReport, Failure> {
    let pat = pattern(size);
    let batch = batch_len(size);
    let mut block: Vec<u8> = pat.iter().copied().cycle().take(size * batch).collect();
    wait_connected(ch);
    let start = Instant::now();
    let mut seq = 0u64;
    while seq < count {
        let k = usize::try_from(count - seq).unwrap_or(batch).min(batch);
        for (i, payload) in block.chunks_exact_mut(size).take(k).enumerate() {
            stamp_payload(payload, seq + i as u64);
        }
        q.post_copies(block.chunks_exact(size).take(k), Timeout::NEVER)
            .map_err(runtime)?;
        seq += k as u64;
    }
    sent(ch, start, size, count)
}

/// Waits for every transport of `ch` to be connected, so that the time
/// measured is the transfer.
fn wait_connected(ch: &Channel) {
    while !ch
        .transports()
        .all(|t| t.state() == ConnectionState::Connected)
    {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// [`send`] through loans: each payload (pattern and stamps) is written
/// straight into the transport buffer with [`MonoQueue::loan`], then
/// posted; what a user sending large payloads would do.
pub fn send_loaned(
    ch: &Channel,
    q: &MonoQueue,
    size: usize,
    count: u64,
) -> Result<ThrReport, Failure> {
    let mut payload = pattern(size);
    wait_connected(ch);
    let start = Instant::now();
    for seq in 0..count {
        stamp_payload(&mut payload, seq);
        let mut loan = q.loan(size, Timeout::NEVER).map_err(runtime)?;
        loan.write(0, &payload).map_err(runtime)?;
        loan.post().map_err(runtime)?;
    }
    sent(ch, start, size, count)
}

/// Receives and verifies `count` messages; times first to last.
pub fn recv(ch: &mut Channel, size: usize, count: u64) -> Result<ThrReport, Failure> {
    let pat = pattern(size);
    let mut ok = true;
    let mut start = None;
    for seq in 0..count {
        let m = ch.receive(Timeout::NEVER).map_err(runtime)?;
        start.get_or_insert_with(Instant::now);
        ok &= m.frame_count() == 1 && m.frame(0).is_some_and(|f| is_payload(f.data(), &pat, seq));
    }
    Ok(finish(start, count, size, ok))
}

/// [`recv`] with [`Channel::receive_with`]: each payload is verified where
/// the peer wrote it, copied out a chunk at a time (4 KiB, which stays in
/// the first-level cache) with [`LentFrame::read`]: the lent bytes are in
/// memory the sender can still write, so they are not borrowed as a slice.
///
/// [`LentFrame::read`]: lwmq::channel::LentFrame::read
pub fn recv_lent(ch: &mut Channel, size: usize, count: u64) -> Result<ThrReport, Failure> {
    let mut expected = pattern(size);
    let mut chunk = vec![0u8; 4096];
    let mut ok = true;
    let mut start = None;
    for seq in 0..count {
        stamp_payload(&mut expected, seq);
        ok &= ch
            .receive_with(Timeout::NEVER, |m| {
                is_lent_payload(&m, &expected, &mut chunk)
            })
            .map_err(runtime)?;
        start.get_or_insert_with(Instant::now);
    }
    Ok(finish(start, count, size, ok))
}

/// [`recv_lent`] in batches: [`Channel::receive_batch_with`] lends up to
/// [`BATCH`] messages per call, each verified in place as there.
pub fn recv_batch(ch: &mut Channel, size: usize, count: u64) -> Result<ThrReport, Failure> {
    let mut expected = pattern(size);
    let mut chunk = vec![0u8; 4096];
    let mut ok = true;
    let mut start = None;
    let mut seq = 0u64;
    while seq < count {
        let max = usize::try_from(count - seq).unwrap_or(BATCH).min(BATCH);
        ch.receive_batch_with(max, Timeout::NEVER, |m| {
            start.get_or_insert_with(Instant::now);
            stamp_payload(&mut expected, seq);
            ok &= is_lent_payload(&m, &expected, &mut chunk);
            seq += 1;
        })
        .map_err(runtime)?;
    }
    Ok(finish(start, count, size, ok))
}

/// Whether lent message `m` is one frame equal to `expected`, read a chunk
/// at a time (4 KiB, which stays in the first-level cache) with
/// [`LentFrame::read`].
///
/// [`LentFrame::read`]: lwmq::channel::LentFrame::read
fn is_lent_payload(m: &lwmq::channel::Lent<'_>, expected: &[u8], chunk: &mut [u8]) -> bool {
    let size = expected.len();
    let Some(f) = m.frame(0).filter(|f| f.len() == size) else {
        return false;
    };
    let mut at = 0;
    while at < size {
        let n = f.read(at, chunk);
        if n == 0 || chunk[..n] != expected[at..at + n] {
            return false;
        }
        at += n;
    }
    m.frame_count() == 1
}

/// The receiver's report: first to last payload.
fn finish(start: Option<Instant>, count: u64, size: usize, ok: bool) -> ThrReport {
    let seconds = start.map_or(0.0, |s| s.elapsed().as_secs_f64());
    ThrReport {
        messages: count,
        bytes: count * size as u64,
        seconds,
        verified: Some(ok),
    }
}
