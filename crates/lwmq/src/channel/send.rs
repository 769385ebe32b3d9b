//! The send path: the sender state (scheduler + claimed send sides), the
//! pump that clubs queued messages into transport buffers, the ownership
//! protocol that lets a posting thread pump by itself, and the posting
//! handles.
//!
//! # Who pumps
//!
//! The sender state is owned by one thread at a time through the `state`
//! word (bits `RUNNING` and `DIRTY`). A post pushes the message into its
//! queue, then does one `fetch_or(RUNNING | DIRTY)`:
//!
//! * if `RUNNING` was clear, the posting thread now owns the sender and
//!   pumps (encodes and commits) itself: no hand-off, no wake-up;
//! * otherwise the owner will see `DIRTY` before it lets go (it releases
//!   with a compare-exchange `RUNNING -> 0` that fails while `DIRTY` is set,
//!   and pumps again), so the message is never stranded.
//!
//! All of these are read-modify-writes of one word, so they are totally
//! ordered and each reads the latest value: the owner's `fetch_and(!DIRTY)`
//! synchronises with the poster's `fetch_or` and sees the pushed message.
//!
//! An owner that ends with work it cannot do now (no peer, or the ring is
//! full) wakes the service thread, which waits on the transport and pumps
//! again; see `docs/messaging.md`.
//!
//! # The bias
//!
//! Any locked instruction on a post waits for the previous post's stores
//! into the ring to reach the other core (x86 drains the store buffer
//! first): a cross-core round trip per message when the peer keeps up. So
//! a mono queue whose direct post found everything clean may keep the
//! sender *biased* to it: `RUNNING | BIASED` stay set on its behalf, and
//! its next posts own the sender with plain loads and stores (its slot's
//! `busy` flag, a compiler fence, and a re-check of `bias_holder`).
//!
//! Anybody else who wants the sender (another queue's post, the service
//! thread, flush, close) revokes the bias: it clears `bias_holder`, runs
//! the heavy side of the asymmetric barrier ([`barrier::heavy`], a
//! `membarrier` that makes every running thread of the process execute a
//! full fence), then waits for the holder's `busy` flag to drop. After the
//! barrier either the holder sees the cleared `bias_holder` (and posts the
//! ordinary way), or the revoker sees `busy` (and waits for that post to
//! end): the two can never both go on. The revoker then owns the sender as
//! if it had won `RUNNING` itself. Grants and revocations happen under the
//! `bias` mutex; the holder never waits on it while `busy`.

use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use crate::message::{Message, MessageError};
use crate::queue::{Notify, Scheduler};
use crate::sys::barrier;
use crate::timeout::{Deadline, Timeout};
use crate::transport::{RawBuf, SendSide, TransportError};
use crate::wire::{self, BufferWriter, SharedBytesMut, TryPushError};

/// What a post hands the send path: a [`Message`], or the bytes of a
/// one-frame message that becomes one only if it must wait in a queue
/// ([`Copied`], `MonoQueue::post_copy`). A direct post encodes either
/// straight into the transport buffer.
pub(crate) trait Outgoing {
    /// The checks of [`check`], with the same answers.
    fn check(&self, shared: &SendShared) -> Result<(), Refused>;
    /// Appends it to `w` whole, or leaves `w` unchanged.
    fn encode(&self, w: &mut BufferWriter<'_>) -> Result<(), TryPushError>;
    /// The message, for a queue or an error.
    fn into_message(self) -> Message;
    /// Its payload, if it is one frame without timestamp.
    fn simple_payload(&self) -> Option<&[u8]>;
}

impl Outgoing for Message {
    #[inline(always)]
    fn check(&self, shared: &SendShared) -> Result<(), Refused> {
        check(shared, self)
    }

    #[inline(always)]
    fn encode(&self, w: &mut BufferWriter<'_>) -> Result<(), TryPushError> {
        w.try_push(self)
    }

    #[inline(always)]
    fn into_message(self) -> Message {
        self
    }

    #[inline]
    fn simple_payload(&self) -> Option<&[u8]> {
        match self.single_frame() {
            Some((data, None)) => Some(data),
            _ => None,
        }
    }
}

/// The payload of a one-frame message without timestamp, borrowed from the
/// caller: copied once, into the transport buffer, when the post goes
/// straight there; made into a [`Message`] (copied) only when it is queued
/// or refused.
pub(crate) struct Copied<'a>(pub(crate) &'a [u8]);

impl Outgoing for Copied<'_> {
    #[inline]
    fn check(&self, shared: &SendShared) -> Result<(), Refused> {
        let size = shared.buffer_size.load(Ordering::Acquire);
        let len = self.0.len();
        // One frame of at most `u32::MAX` bytes that fits an empty buffer
        // passes every rule of `check` (no external frame to acquire).
        if size != 0 && len <= u32::MAX as usize && wire::single_frame_encoded_len(len) <= size {
            return Ok(());
        }
        // Refused: `check` says why, in the same words as for a message.
        check(shared, &Message::from(crate::message::Frame::copy(self.0)))
    }

    #[inline(always)]
    fn encode(&self, w: &mut BufferWriter<'_>) -> Result<(), TryPushError> {
        w.push_simple(self.0)
    }

    #[inline]
    fn into_message(self) -> Message {
        Message::from(crate::message::Frame::copy(self.0))
    }

    #[inline(always)]
    fn simple_payload(&self) -> Option<&[u8]> {
        Some(self.0)
    }
}

/// The longest a direct post waits for a stream transport to take a
/// large payload from the caller's memory ([`TxSide::send_through`],
/// decision 163: the peer's credit, then room in the socket), and never
/// past the post's timeout. Longer than a loopback peer takes to free a
/// buffer of large messages (about 0.1-0.3 ms here), short enough that a
/// post never waits long on a peer that is not reading: past it the
/// payload is copied and queued, as before.
pub(crate) const THROUGH_WAIT: Duration = Duration::from_millis(2);

use super::error::{InvalidMessage, PostError};

const RUNNING: usize = 1;
const DIRTY: usize = 2;
/// `RUNNING` is held on behalf of the bias holder (a mono queue).
const BIASED: usize = 4;

/// How long the service thread waits on a transport before it lets go of
/// the sender, so that `flush` and `close` can take it.
pub(crate) const WAIT_SLICE: Duration = Duration::from_millis(20);

/// How long the service thread lets a bias holder that is still posting
/// go on before it looks again (see `SendShared::let_holder_post`).
const HOLDER_GRACE: Duration = Duration::from_micros(50);

/// The longest such interval is 1 ns per byte of a transport buffer,
/// within these bounds. A buffer is kept open only while the peer still
/// has two or more full buffers to work through, which takes it longer
/// than that (a buffer of 64-byte messages: about 1.5 ns per byte at the
/// 10-15 M msg/s measured here), so the peer does not wait for the last
/// buffer of a burst; and the sleeps of a long stream stay few (measured:
/// a 200 µs bound cost a third of the 64 B throughput on 2 cores).
const HOLDER_GRACE_BOUNDS: (Duration, Duration) =
    (Duration::from_micros(50), Duration::from_millis(1));

/// Counters shared by the send and receive paths.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) messages_sent: AtomicU64,
    pub(crate) buffers_sent: AtomicU64,
    pub(crate) messages_received: AtomicU64,
    pub(crate) buffers_received: AtomicU64,
    pub(crate) decode_errors: AtomicU64,
    pub(crate) dropped_unencodable: AtomicU64,
    pub(crate) bias_grants: AtomicU64,
    pub(crate) bias_revocations: AtomicU64,
    pub(crate) messages_lost: AtomicU64,
}

impl Counters {
    /// Adds `n` to a counter written by one thread at a time (the sender's
    /// owner, or the holder of the only receive side's lock): a plain load
    /// and store instead of a locked read-modify-write. The hand-over of
    /// ownership (or of the lock) orders successive writers.
    /// Logs and counts a message dropped because it cannot be encoded. It
    /// was checked at post time, so only an external frame whose owner
    /// changed its length gets here.
    #[cold]
    fn drop_unencodable(&self, e: TryPushError) {
        log::warn!("lwmq: dropping a message that cannot be encoded: {e}");
        self.dropped_unencodable.fetch_add(1, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn bump_single_writer(counter: &AtomicU64, n: u64) {
        counter.store(
            counter.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }
}

/// The result of one pump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pump {
    /// Every queue and backlog is empty.
    Idle,
    /// Something is left that needs a peer or room in a ring.
    Blocked,
    /// Only partly filled buffers are left, kept open while their peers
    /// are busy; the service thread sends them ([`Sender::pump`] with
    /// `force`).
    Open,
}

/// A buffer is kept open (not sent yet) only while the peer still has at
/// least this many sent buffers to work through, so that it never waits
/// for one.
const KEEP_OPEN_OUTSTANDING: u64 = 2;

/// One claimed send side of a sending transport.
pub(crate) struct TxSide {
    pub(crate) side: Box<dyn SendSide>,
    /// Messages already taken from the queues for this transport but not
    /// yet encoded: at most one "carry" message when the ring was full, or,
    /// with fan-out, what this transport missed while another one sent.
    pub(crate) backlog: VecDeque<Message>,
    connected: bool,
    full: bool,
    /// The buffer of the writer currently out (at most one per side).
    current: Option<RawBuf>,
    /// An acquired buffer kept open to take more messages:
    /// `(buffer, bytes used, messages)`.
    open: Option<(RawBuf, usize, u32)>,
    /// The smallest payload of a one-frame message that the transport
    /// writes from the caller's memory (its buffer at least
    /// [`SendSide::send_parts_from`]); `usize::MAX` if it never does.
    pub(crate) through_from: usize,
}

impl TxSide {
    pub(crate) fn new(side: Box<dyn SendSide>) -> Self {
        TxSide {
            through_from: side.send_parts_from().map_or(usize::MAX, through_payload),
            side,
            backlog: VecDeque::new(),
            connected: false,
            full: false,
            current: None,
            open: None,
        }
    }

    /// A writer over the open buffer, or over a fresh buffer.
    fn acquire_writer<'a>(&mut self) -> Option<BufferWriter<'a>> {
        let (raw, w) = match self.open.take() {
            Some((raw, pos, count)) => (raw, resume(raw, pos, count)),
            None => {
                let raw = self.side.acquire(Timeout::ZERO).ok()?;
                (raw, writer(raw))
            }
        };
        if w.is_none() {
            let _ = self.side.abort(raw.id);
        } else {
            self.current = Some(raw);
        }
        w
    }

    /// [`Self::acquire_writer`], waiting up to `timeout` for a fresh
    /// buffer when none is open. `Err(true)` if the wait timed out.
    fn acquire_writer_wait<'a>(&mut self, timeout: Timeout) -> Result<BufferWriter<'a>, bool> {
        if self.open.is_some() {
            return self.acquire_writer().ok_or(false);
        }
        let raw = match self.side.acquire(timeout) {
            Ok(raw) => raw,
            Err(TransportError::Timeout) => return Err(true),
            Err(_) => return Err(false),
        };
        match writer(raw) {
            Some(w) => {
                self.current = Some(raw);
                Ok(w)
            }
            None => {
                let _ = self.side.abort(raw.id);
                Err(false)
            }
        }
    }

    /// Sends the one-frame message `payload` as a buffer of its own that
    /// the transport writes straight from the caller's memory
    /// ([`SendSide::send_parts`]: a stream transport that can take it
    /// within `wait`, capped at [`THROUGH_WAIT`]), after the buffer kept
    /// open (which goes first). False if the transport declined: nothing
    /// was sent but the open buffer.
    fn send_through(&mut self, payload: &[u8], wait: Timeout, c: &Counters) -> bool {
        if self.open.is_some() {
            if let Some(w) = self.acquire_writer() {
                self.commit(w, c);
            }
        }
        let wait = match wait.duration() {
            Some(d) if d < THROUGH_WAIT => wait,
            _ => Timeout::after(THROUGH_WAIT),
        };
        let (prefix, n) = wire::single_message_prefix(payload.len());
        match self.side.send_parts(&[&prefix[..n], payload], wait) {
            Ok(sent) => {
                if sent {
                    // Only the sender's owner sends.
                    Counters::bump_single_writer(&c.messages_sent, 1);
                    Counters::bump_single_writer(&c.buffers_sent, 1);
                }
                sent
            }
            // Checked at post time to fit an empty buffer: not reached.
            Err(e) => {
                log::warn!("lwmq: sending a message from the caller's memory failed: {e}");
                false
            }
        }
    }

    /// True if the transport would rather write the one-frame message
    /// `payload` from the caller's memory than have it copied in
    /// ([`Self::through_from`]).
    #[inline(always)]
    fn takes_through(&self, payload: &[u8]) -> bool {
        payload.len() >= self.through_from
    }

    /// Gives the buffer of the current writer back unsent.
    fn abort_current(&mut self) {
        if let Some(raw) = self.current.take() {
            let _ = self.side.abort(raw.id);
        }
    }

    /// Keeps the buffer of writer `w` open for more messages.
    fn keep_open(&mut self, w: &BufferWriter<'_>) {
        if let Some(raw) = self.current.take() {
            let (pos, count) = w.state();
            self.open = Some((raw, pos, count));
        }
    }

    /// Sends the buffer of `w`, or keeps it open if it has messages, `force`
    /// is off and the peer is busy enough not to miss it. True if kept.
    fn finish_writer(&mut self, w: BufferWriter<'_>, c: &Counters, force: bool) -> bool {
        if !force && !w.is_empty() && self.side.outstanding() >= KEEP_OPEN_OUTSTANDING {
            self.keep_open(&w);
            return true;
        }
        self.commit(w, c);
        false
    }

    fn commit(&mut self, w: BufferWriter<'_>, c: &Counters) {
        let n = u64::from(w.message_count());
        if n == 0 {
            self.abort_current();
            return;
        }
        let len = w.finish();
        let Some(raw) = self.current.take() else {
            return;
        };
        match self.side.commit(raw.id, len, false) {
            Ok(()) => {
                // Only the sender's owner commits.
                Counters::bump_single_writer(&c.messages_sent, n);
                Counters::bump_single_writer(&c.buffers_sent, 1);
            }
            Err(e @ TransportError::BufferLost(_)) => {
                // Filled (or kept open) in the shared memory of a
                // connection that ended: lost with it, never copied out
                // (the old peer could have written into it). At most one
                // buffer per side per connection gets here.
                c.messages_lost.fetch_add(n, Ordering::Relaxed);
                log::warn!("lwmq: {n} messages lost with their connection: {e}");
            }
            Err(e) => log::warn!("lwmq: committing a buffer of {n} messages failed: {e}"),
        }
    }

    /// The buffer of `full` (if any) has no room for `m`: sends it and
    /// puts `m` into a fresh buffer, returned; if the ring has no free
    /// buffer, keeps `m` in the backlog and marks the side full.
    fn roll_over<'a, M: Outgoing>(
        &mut self,
        full: Option<BufferWriter<'_>>,
        m: M,
        c: &Counters,
    ) -> Option<BufferWriter<'a>> {
        if let Some(w) = full {
            self.commit(w, c);
        }
        let Some(mut fresh) = self.acquire_writer() else {
            self.full = true;
            self.backlog.push_back(m.into_message());
            return None;
        };
        if let Err(e) = m.encode(&mut fresh) {
            c.drop_unencodable(e);
        }
        Some(fresh)
    }

    /// Encodes the backlog into as many buffers as the ring takes now.
    fn ship_backlog(&mut self, c: &Counters) {
        while !self.backlog.is_empty() {
            let Some(mut w) = self.acquire_writer() else {
                self.full = true;
                return;
            };
            while let Some(m) = self.backlog.front() {
                match w.try_push(m) {
                    Ok(()) => drop(self.backlog.pop_front()),
                    Err(TryPushError::Full { .. }) if !w.is_empty() => break,
                    Err(e) => {
                        c.drop_unencodable(e);
                        drop(self.backlog.pop_front());
                    }
                }
            }
            self.commit(w, c);
        }
    }
}

/// The smallest payload whose one-frame message, as a buffer of its own,
/// takes at least `buffer` bytes.
fn through_payload(buffer: usize) -> usize {
    let mut len = buffer.saturating_sub(wire::SINGLE_PREFIX_MAX);
    while wire::single_frame_encoded_len(len) < buffer {
        len += 1;
    }
    len
}

/// The acquired transport buffer `raw` as the encoder's destination.
fn dest<'a>(raw: RawBuf) -> SharedBytesMut<'a> {
    // SAFETY: the send side guarantees `raw.len` writable bytes at
    // `raw.ptr`, mapped until the buffer is committed or aborted (in the
    // connection's shared section, or in private staging memory). Every
    // writer made over them is finished (or dropped) before its side's
    // `commit`/`abort` is called, and the side is owned by the sender
    // state, which only the current owner touches: nothing else in this
    // process reads or writes these bytes meanwhile. The peer may (a
    // hostile one could scribble over a slot it can see); the writer only
    // stores into the buffer and never reads it back, so that changes
    // nothing but what the peer receives.
    unsafe { SharedBytesMut::new(raw.ptr, raw.len) }
}

/// A writer over a whole acquired buffer.
fn writer<'a>(raw: RawBuf) -> Option<BufferWriter<'a>> {
    BufferWriter::new_in(dest(raw)).ok()
}

/// A writer resuming a buffer that a writer filled up to `pos` with
/// `count` messages. (An open buffer is never committed or aborted behind
/// the writer's back, so it is still acquired.)
fn resume<'a>(raw: RawBuf, pos: usize, count: u32) -> Option<BufferWriter<'a>> {
    BufferWriter::resume_in(dest(raw), pos, count)
}

/// The sender state, owned by one thread at a time.
pub(crate) struct Sender {
    pub(crate) scheduler: Scheduler<Message>,
    pub(crate) sides: Vec<TxSide>,
}

impl Sender {
    fn outcome(&self) -> Pump {
        if !self.scheduler.is_empty() || self.sides.iter().any(|s| !s.backlog.is_empty()) {
            Pump::Blocked
        } else if self.sides.iter().any(|s| s.open.is_some()) {
            Pump::Open
        } else {
            Pump::Idle
        }
    }

    /// The one sending transport, if a message may go straight into it
    /// now because that is what a pump would do with it: one transport,
    /// connected, nothing queued or held back anywhere (so no order or
    /// priority is skipped).
    fn direct_side(&mut self) -> Option<&mut TxSide> {
        let [side] = self.sides.as_mut_slice() else {
            return None;
        };
        (side.backlog.is_empty() && self.scheduler.is_empty() && side.side.is_connected())
            .then_some(side)
    }

    /// Sends `m` at once, bypassing the queues, if that is what a pump would
    /// do with it ([`Self::direct_side`]) and the ring has room. Gives the
    /// message back otherwise.
    ///
    /// `Ok(true)`: sent into a buffer kept open ([`Pump::Open`]).
    ///
    /// A one-frame payload the transport would rather write from the
    /// caller's memory ([`TxSide::takes_through`]) is offered to it first
    /// ([`TxSide::send_through`], waiting up to `wait`).
    fn send_now<M: Outgoing>(&mut self, m: M, c: &Counters, wait: Timeout) -> Result<bool, M> {
        let Some(side) = self.direct_side() else {
            return Err(m);
        };
        // (Shared memory never writes from the caller's: one comparison.)
        if side.through_from != usize::MAX
            && m.simple_payload()
                .is_some_and(|p| side.takes_through(p) && side.send_through(p, wait, c))
        {
            return Ok(false);
        }
        let Some(mut w) = side.acquire_writer() else {
            return Err(m);
        };
        match m.encode(&mut w) {
            Ok(()) => Ok(side.finish_writer(w, c, false)),
            // The open buffer is full: send it and start the next one with
            // `m`; if the ring has no free buffer, `m` waits in the backlog
            // for the service thread (woken as for an open buffer).
            Err(TryPushError::Full { .. }) if !w.is_empty() => {
                match side.roll_over(Some(w), m, c) {
                    Some(fresh) => Ok(side.finish_writer(fresh, c, false)),
                    None => Ok(true),
                }
            }
            Err(_) => {
                // Not encodable (the pump logs and counts it).
                if w.is_empty() {
                    side.abort_current();
                } else {
                    side.keep_open(&w);
                }
                Err(m)
            }
        }
    }

    /// [`Self::send_now`] for a run of one-frame payloads
    /// (`MonoQueue::post_copies`): encodes them in order into the one
    /// transport's buffers while they are at most `max_len` bytes (and not
    /// for the transport to write from their memory,
    /// [`TxSide::takes_through`]) and the ring has room,
    /// then sends the last buffer or keeps it open, once for the run.
    /// Returns how many it took (each consumed from `payloads`) and
    /// whether a buffer was kept open; takes none without a
    /// [`Self::direct_side`] with a free buffer.
    fn send_run<'p, I: Iterator<Item = &'p [u8]>>(
        &mut self,
        payloads: &mut std::iter::Peekable<I>,
        c: &Counters,
        max_len: usize,
    ) -> (usize, bool) {
        let Some(side) = self.direct_side() else {
            return (0, false);
        };
        // One bound for both (a payload the transport writes from this
        // memory is left to `post_copy`, which hands it over).
        let max_len = max_len.min(side.through_from.saturating_sub(1));
        let Some(mut w) = side.acquire_writer() else {
            return (0, false);
        };
        let mut n = 0;
        while let Some(&p) = payloads.peek() {
            if p.len() > max_len {
                break;
            }
            match w.push_simple(p) {
                Ok(()) => {
                    payloads.next();
                    n += 1;
                }
                // Full: send it, go on in a fresh buffer if the ring has
                // one (else the rest takes the ordinary path).
                Err(TryPushError::Full { .. }) if !w.is_empty() => {
                    side.commit(w, c);
                    match side.acquire_writer() {
                        Some(fresh) => w = fresh,
                        None => return (n, false),
                    }
                }
                // Not for a payload within the bound; the ordinary path
                // says why.
                Err(_) => break,
            }
        }
        if w.is_empty() {
            side.abort_current();
            return (n, false);
        }
        (n, side.finish_writer(w, c, false))
    }

    /// For a loan of `len` payload bytes ([`super::Loan`]): a writer of the
    /// one sending transport with a one-frame message of `len` bytes
    /// reserved after what it holds, and the payload's range. Applies when
    /// a post would go straight into the transport: one transport,
    /// connected, nothing queued or held back once queued messages are
    /// pumped (so the loan is ordered after everything posted before it).
    /// Waits up to `timeout` for a free buffer.
    ///
    /// `Ok(None)`: the in-place path does not apply (the caller falls back
    /// to a private buffer); `Err(())`: no buffer came free in time.
    pub(crate) fn loan_writer<'a>(
        &mut self,
        len: usize,
        timeout: Timeout,
        c: &Counters,
    ) -> Result<Option<(BufferWriter<'a>, usize, usize)>, ()> {
        if !self.scheduler.is_empty() {
            self.pump(c, true);
        }
        let Some(side) = self.direct_side() else {
            return Ok(None);
        };
        let mut w = match side.acquire_writer_wait(timeout) {
            Ok(w) => w,
            Err(true) => return Err(()),
            Err(false) => return Ok(None),
        };
        if let Some((start, end)) = w.reserve_single(len) {
            return Ok(Some((w, start, end)));
        }
        // The open buffer has no room left: send it, take a fresh one.
        side.commit(w, c);
        let mut w = match side.acquire_writer_wait(timeout) {
            Ok(w) => w,
            Err(true) => return Err(()),
            Err(false) => return Ok(None),
        };
        match w.reserve_single(len) {
            Some((start, end)) => Ok(Some((w, start, end))),
            None => {
                // Cannot happen (the loan checked that the message fits an
                // empty buffer); give the buffer back and fall back.
                side.abort_current();
                Ok(None)
            }
        }
    }

    /// Ends a loan taken with [`Self::loan_writer`]: with `end`, counts the
    /// reserved message and sends the buffer or keeps it open as a post
    /// would (true if kept open); without, leaves the buffer as it was
    /// (kept open if it holds messages, given back if not).
    pub(crate) fn end_loan(
        &mut self,
        mut w: BufferWriter<'_>,
        end: Option<usize>,
        c: &Counters,
    ) -> bool {
        let [side] = self.sides.as_mut_slice() else {
            return false;
        };
        match end {
            Some(end) => {
                w.commit_reserved(end);
                side.finish_writer(w, c, false)
            }
            None if w.is_empty() => {
                side.abort_current();
                false
            }
            None => {
                side.keep_open(&w);
                true
            }
        }
    }

    /// Encodes queued messages into every connected sending transport and
    /// commits each buffer when it is full or nothing more is queued; with
    /// one transport whose peer is busy, the last buffer may be kept open
    /// for the next posts instead ([`Pump::Open`]) unless `force`.
    pub(crate) fn pump(&mut self, c: &Counters, force: bool) -> Pump {
        let mut any_connected = false;
        for s in &mut self.sides {
            s.connected = s.side.is_connected();
            s.full = false;
            any_connected |= s.connected;
            if s.open.is_some() && !s.connected {
                // Its peer went away (the commit reports the loss) or it
                // is not the only transport: send it now.
                if let Some(w) = s.acquire_writer() {
                    s.commit(w, c);
                }
            }
            if s.connected && !s.backlog.is_empty() {
                s.ship_backlog(c);
            }
        }
        // No peer anywhere: messages stay in the queues, where tags,
        // priorities and discard policies keep applying. A full ring
        // paces every transport (the slowest connected peer sets the pace).
        if !any_connected || self.sides.iter().any(|s| s.full) {
            return self.outcome();
        }
        if let [side] = self.sides.as_mut_slice() {
            Self::fill_one(&mut self.scheduler, side, c, force);
        } else {
            let mut w: Vec<_> = self.sides.iter().map(|_| None).collect();
            self.fill(&mut w, c);
        }
        // Posters blocked at a high-water mark: once per pump, and only if
        // something was taken.
        self.scheduler.wake_posters();
        self.outcome()
    }

    /// [`Self::fill`] for one connected transport: no sharing, no backlog
    /// unless the ring fills.
    fn fill_one(scheduler: &mut Scheduler<Message>, side: &mut TxSide, c: &Counters, force: bool) {
        let Some(mut w) = side.acquire_writer() else {
            side.full = true;
            return;
        };
        while let Some(m) = scheduler.take_next() {
            match w.try_push(&m) {
                Ok(()) => {}
                Err(TryPushError::Full { .. }) if !w.is_empty() => {
                    match side.roll_over(Some(w), m, c) {
                        Some(fresh) => w = fresh,
                        None => return,
                    }
                }
                Err(e) => c.drop_unencodable(e),
            }
        }
        side.finish_writer(w, c, force);
    }

    fn fill<'a>(&mut self, writers: &mut [Option<BufferWriter<'a>>], c: &Counters) {
        for (s, w) in self.sides.iter_mut().zip(writers.iter_mut()) {
            if s.connected {
                *w = s.acquire_writer();
                s.full = w.is_none();
            }
        }
        if self.sides.iter().any(|s| s.full) {
            self.close_writers(writers, c);
            return;
        }
        let last = self.sides.len() - 1;
        'take: while let Some(mut message) = self.scheduler.take_next() {
            // `i` indexes both the sides and their writers.
            #[allow(clippy::needless_range_loop)]
            for i in 0..=last {
                let m = if i == last {
                    std::mem::take(&mut message)
                } else {
                    message.share()
                };
                let side = &mut self.sides[i];
                if !side.connected {
                    side.backlog.push_back(m);
                    continue;
                }
                let Some(w) = writers[i].as_mut() else {
                    side.backlog.push_back(m);
                    continue;
                };
                match w.try_push(&m) {
                    Ok(()) => {}
                    Err(TryPushError::Full { .. }) => {
                        writers[i] = side.roll_over(writers[i].take(), m, c);
                    }
                    Err(e @ TryPushError::Invalid(_)) => c.drop_unencodable(e),
                }
            }
            if self.sides.iter().any(|s| s.full) {
                break 'take;
            }
        }
        self.close_writers(writers, c);
    }

    fn close_writers(&mut self, writers: &mut [Option<BufferWriter<'_>>], c: &Counters) {
        for (s, w) in self.sides.iter_mut().zip(writers.iter_mut()) {
            if let Some(w) = w.take() {
                s.commit(w, c);
            }
        }
    }

    /// Sleeps until the first blocked transport has a peer or room, for at
    /// most `slice`.
    pub(crate) fn wait_progress(&mut self, slice: Duration) {
        let queued = !self.scheduler.is_empty();
        let start = Instant::now();
        for s in &mut self.sides {
            if s.full {
                if let Ok(raw) = s.side.acquire(Timeout::after(slice)) {
                    let _ = s.side.abort(raw.id);
                }
                return;
            }
        }
        for s in &mut self.sides {
            if !s.side.is_connected() && (queued || !s.backlog.is_empty()) {
                // With nothing staged, a disconnected side's flush sleeps
                // until a connection is published (or the slice ends).
                let _ = s.side.flush(Timeout::after(slice));
                if start.elapsed() < Duration::from_millis(1) && !s.side.is_connected() {
                    std::thread::sleep(Duration::from_millis(2));
                }
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(1).min(slice));
    }

    /// Waits until every connected transport's buffers were taken by its
    /// peer. Disconnected transports have nothing in flight we can wait for.
    pub(crate) fn flush_sides(&mut self, deadline: Deadline) -> Result<(), TransportError> {
        for s in &mut self.sides {
            if !s.side.is_connected() {
                continue;
            }
            let t = match deadline.remaining() {
                None => Timeout::INFINITE,
                Some(d) => Timeout::after(d),
            };
            match s.side.flush(t) {
                Ok(()) | Err(TransportError::Disconnected(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Drops everything still queued (close).
    /// Returns how many messages were dropped: still queued, in a
    /// transport's backlog (counted per transport that missed it), or in a
    /// buffer kept open and not sent.
    pub(crate) fn drop_all(&mut self) -> u64 {
        self.scheduler.close();
        let mut lost = self.scheduler.drain_and_drop() as u64;
        for s in &mut self.sides {
            lost += s.backlog.len() as u64;
            s.backlog.clear();
            if let Some((raw, _, count)) = s.open.take() {
                lost += u64::from(count);
                let _ = s.side.abort(raw.id);
            }
        }
        lost
    }
}

/// A mono queue's claim on the bias (see the module documentation).
#[derive(Debug)]
pub(crate) struct BiasSlot {
    /// Non-zero, unique within the channel.
    id: u64,
    /// Set by the queue's posting thread while it uses the sender through
    /// the bias; only that thread writes it.
    busy: AtomicBool,
    /// Posts made through the bias (written by the posting thread only):
    /// the service thread leaves a holder that is still posting alone.
    posts: AtomicU64,
}

/// The sender, borrowed by the thread that owns it (`RUNNING`, or the bias
/// holder inside its post).
pub(crate) struct Owned<'a> {
    shared: &'a SendShared,
}

impl Deref for Owned<'_> {
    type Target = Sender;
    fn deref(&self) -> &Sender {
        // SAFETY: an `Owned` exists only in the thread that owns the sender
        // (see `SendShared::owned`), so no other reference to it is live.
        unsafe { &*self.shared.sender.get() }
    }
}

impl DerefMut for Owned<'_> {
    fn deref_mut(&mut self) -> &mut Sender {
        // SAFETY: as in `deref`; `&mut self` makes this borrow unique
        // within the owning thread too.
        unsafe { &mut *self.shared.sender.get() }
    }
}

/// State shared by the channel, its send queues and its helper threads.
pub(crate) struct SendShared {
    state: AtomicUsize,
    /// Touched only by the owner of the sender: whoever set `RUNNING`, or
    /// the bias holder while its `busy` flag is up.
    sender: UnsafeCell<Sender>,
    /// Id of the [`BiasSlot`] holding the bias; 0: none.
    bias_holder: AtomicU64,
    /// The holder's slot; `Some` exactly while `BIASED` is set.
    bias: Mutex<Option<Arc<BiasSlot>>>,
    next_bias_id: AtomicU64,
    /// 0 until the channel opens; then the transports' buffer size.
    pub(crate) buffer_size: AtomicUsize,
    /// Set when the service thread has work; with `service` to sleep on.
    pending: AtomicBool,
    pub(crate) service: Notify,
    /// Threads (flush, close) waiting to own the sender; the service thread
    /// stands back while this is non-zero.
    wanted: AtomicUsize,
    pub(crate) stop: AtomicBool,
    /// Set when the channel starts closing (posts then fail `Closed`
    /// rather than `NotOpen`).
    pub(crate) closed: AtomicBool,
    pub(crate) counters: Counters,
    /// Depth views of the send queues, for statistics (pushed when a queue
    /// is made; never locked by the data path).
    pub(crate) probes: Mutex<Vec<crate::queue::DepthProbe>>,
}

// SAFETY: the only field that is not `Sync` is `sender`, and it is touched
// only by the thread that owns it (module documentation): `RUNNING` and
// the bias hand it from thread to thread with release/acquire pairs.
unsafe impl Sync for SendShared {}

impl SendShared {
    pub(crate) fn new(scheduler: Scheduler<Message>) -> Self {
        SendShared {
            state: AtomicUsize::new(0),
            sender: UnsafeCell::new(Sender {
                scheduler,
                sides: Vec::new(),
            }),
            bias_holder: AtomicU64::new(0),
            bias: Mutex::new(None),
            next_bias_id: AtomicU64::new(1),
            buffer_size: AtomicUsize::new(0),
            pending: AtomicBool::new(false),
            service: Notify::new(),
            wanted: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            counters: Counters::default(),
            probes: Mutex::new(Vec::new()),
        }
    }

    /// The sender, for the thread that owns it.
    ///
    /// # Safety
    /// The caller owns the sender (it set `RUNNING`, or took it over from
    /// the bias) and keeps owning it while the result lives.
    unsafe fn owned(&self) -> Owned<'_> {
        Owned { shared: self }
    }

    /// Tries to become the owner; true on success. Either way `DIRTY` is set,
    /// so a current owner pumps once more before it lets go. A bias is
    /// revoked and its ownership taken over.
    fn try_own(&self) -> bool {
        // SYNC POINT (acq_rel): publishes the caller's queue push to the
        // owner that clears DIRTY; acquires the previous owner's work.
        let prev = self.state.fetch_or(RUNNING | DIRTY, Ordering::AcqRel);
        prev & RUNNING == 0 || (prev & BIASED != 0 && self.revoke_bias())
    }

    /// The holder's slot, locked (grants and revocations happen under it).
    fn bias_slot(&self) -> MutexGuard<'_, Option<Arc<BiasSlot>>> {
        self.bias.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new mono queue's bias slot.
    pub(crate) fn new_bias_slot(&self) -> Arc<BiasSlot> {
        Arc::new(BiasSlot {
            id: self.next_bias_id.fetch_add(1, Ordering::Relaxed),
            busy: AtomicBool::new(false),
            posts: AtomicU64::new(0),
        })
    }

    /// Ends the bias, if one is still held, and takes its `RUNNING` over;
    /// true if the caller now owns the sender. Otherwise somebody revoked
    /// it first and owns the sender (and will see the caller's `DIRTY`).
    #[cold]
    fn revoke_bias(&self) -> bool {
        let mut holder = self.bias_slot();
        let Some(slot) = holder.take() else {
            return false;
        };
        self.bias_holder.store(0, Ordering::Relaxed);
        // SYNC POINT (asymmetric, heavy side): after this, a post by the
        // holder either sees `bias_holder == 0` or has its `busy` visible.
        barrier::heavy();
        let mut spins = 0u32;
        // SYNC POINT (acquire): pairs with the holder's release of `busy`;
        // its last post's work on the sender is visible from here.
        while slot.busy.load(Ordering::Acquire) {
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        self.state.fetch_and(!BIASED, Ordering::AcqRel);
        // Written under the `bias` lock only.
        Counters::bump_single_writer(&self.counters.bias_revocations, 1);
        true
    }

    /// Called by the holder of `slot` while it owns the sender through the
    /// bias: turns the bias into plain ownership (`RUNNING` stays set).
    /// False if a revoker is at work, which then owns the sender once
    /// `busy` drops.
    fn unbias_self(&self, slot: &BiasSlot) -> bool {
        // Never wait for the lock here: a revoker holds it while it waits
        // for our `busy` to drop.
        let mut holder = match self.bias.try_lock() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => return false,
        };
        if holder.as_ref().is_none_or(|s| s.id != slot.id) {
            return false;
        }
        *holder = None;
        self.bias_holder.store(0, Ordering::Relaxed);
        self.state.fetch_and(!BIASED, Ordering::AcqRel);
        true
    }

    /// Called by an owner whose direct post left everything clean: keeps
    /// the sender biased to `slot` instead of letting go. False if a post
    /// arrived meanwhile (`DIRTY`); the caller then releases as usual.
    fn grant_bias(&self, slot: &Arc<BiasSlot>) -> bool {
        if !barrier::register() {
            // Without the asymmetric barrier a revoker could not stop the
            // holder safely.
            return false;
        }
        let mut holder = self.bias_slot();
        self.bias_holder.store(slot.id, Ordering::Relaxed);
        // SYNC POINT (acq_rel): a revoker's `fetch_or` that sees `BIASED`
        // also sees the slot (it takes the `bias` lock after us).
        if self
            .state
            .compare_exchange(
                RUNNING,
                RUNNING | BIASED,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
        {
            *holder = Some(Arc::clone(slot));
            // Written under the `bias` lock only.
            Counters::bump_single_writer(&self.counters.bias_grants, 1);
            return true;
        }
        self.bias_holder.store(0, Ordering::Relaxed);
        false
    }

    /// Enters the bias held by `slot`: raises its `busy` flag and returns
    /// the sender, owned by this thread until the caller drops `busy`
    /// (with release ordering) or makes the ownership plain with
    /// `unbias_self`. `None`, with `busy` down, if the bias is not
    /// `slot`'s.
    #[inline]
    fn enter_bias(&self, slot: &BiasSlot) -> Option<Owned<'_>> {
        if self.bias_holder.load(Ordering::Relaxed) != slot.id {
            return None;
        }
        slot.busy.store(true, Ordering::Relaxed);
        // SYNC POINT (asymmetric, light side): see `revoke_bias`.
        barrier::light();
        if self.bias_holder.load(Ordering::Relaxed) != slot.id {
            slot.busy.store(false, Ordering::Release);
            return None;
        }
        // SAFETY: the bias is ours and no revoker can proceed while `busy`
        // is up (the barrier above), so this thread owns the sender until
        // `busy` drops or `unbias_self` makes the ownership plain.
        Some(unsafe { self.owned() })
    }

    /// A post through the bias held by `slot`: `Ok` if sent. `Err` gives
    /// the message back for the ordinary path; `Some(owned)` with it if the
    /// caller now owns the sender (the bias is over).
    #[inline]
    fn post_biased<M: Outgoing>(
        &self,
        slot: &BiasSlot,
        message: M,
        wait: Timeout,
    ) -> Result<(), (M, Option<Owned<'_>>)> {
        let Some(mut owned) = self.enter_bias(slot) else {
            return Err((message, None));
        };
        let result = owned.send_now(message, &self.counters, wait);
        match result {
            Ok(open) => {
                slot.busy.store(false, Ordering::Release);
                Counters::bump_single_writer(&slot.posts, 1);
                if open {
                    self.wake_service();
                }
                Ok(())
            }
            Err(m) => {
                let plain = self.unbias_self(slot);
                slot.busy.store(false, Ordering::Release);
                Err((m, plain.then_some(owned)))
            }
        }
    }

    /// Posts a run of `payloads` through the bias held by `slot`
    /// ([`Sender::send_run`]) of at most `max_len` bytes each; returns how
    /// many (0 if the bias is not held, or nothing could go straight into
    /// the transport).
    pub(crate) fn post_run_biased<'p, I: Iterator<Item = &'p [u8]>>(
        &self,
        slot: &BiasSlot,
        payloads: &mut std::iter::Peekable<I>,
        max_len: usize,
    ) -> usize {
        let Some(mut owned) = self.enter_bias(slot) else {
            return 0;
        };
        let (n, open) = owned.send_run(payloads, &self.counters, max_len);
        slot.busy.store(false, Ordering::Release);
        Counters::bump_single_writer(&slot.posts, n as u64);
        if open {
            self.wake_service();
        }
        n
    }

    /// Owns the sender for a loan by `slot`'s queue, as plain ownership
    /// (`RUNNING`, no bias: a loan may last, and a revoker would spin on a
    /// biased owner meanwhile). `None` if another thread owns it.
    pub(crate) fn own_for_loan(&self, slot: &BiasSlot) -> Option<Owned<'_>> {
        if self.bias_holder.load(Ordering::Relaxed) == slot.id {
            slot.busy.store(true, Ordering::Relaxed);
            // SYNC POINT (asymmetric, light side): see `revoke_bias`.
            barrier::light();
            let plain =
                self.bias_holder.load(Ordering::Relaxed) == slot.id && self.unbias_self(slot);
            slot.busy.store(false, Ordering::Release);
            // SAFETY: `unbias_self` turned the bias into plain ownership
            // (`RUNNING` stays set for this thread).
            return plain.then(|| unsafe { self.owned() });
        }
        if self.state.load(Ordering::Relaxed) & RUNNING != 0
            || self.state.fetch_or(RUNNING, Ordering::AcqRel) & RUNNING != 0
        {
            return None;
        }
        // SAFETY: the fetch_or above set RUNNING for this thread.
        Some(unsafe { self.owned() })
    }

    /// Lets go of the sender after a loan, as a direct post does: keeps it
    /// biased to `slot` if nothing arrived meanwhile, else releases (and
    /// pumps what others queued). `open`: a buffer was kept open.
    pub(crate) fn end_loan_ownership(&self, guard: Owned<'_>, slot: &Arc<BiasSlot>, open: bool) {
        // Written by the queue's posting thread only: the service thread
        // leaves a queue that keeps loaning alone, as one that keeps posting.
        Counters::bump_single_writer(&slot.posts, 1);
        if self.grant_bias(slot) {
            if open {
                self.wake_service();
            }
        } else {
            self.release_if_clean(guard, open);
        }
    }

    /// Lets go of the sender after a loan that was not written in place:
    /// pumps what is queued and wakes the service thread for whatever
    /// still needs a peer or room.
    pub(crate) fn release_after_pump(&self, guard: Owned<'_>) {
        self.pump_and_release(guard, false);
    }

    /// Gives the bias up if `slot` holds it (its queue is going away), and
    /// lets go of the sender.
    pub(crate) fn drop_bias(&self, slot: &BiasSlot) {
        if self.bias_holder.load(Ordering::Relaxed) != slot.id {
            return;
        }
        // Only this thread raises `busy` for `slot`, so no barrier is
        // needed: nobody can be inside a post through this bias.
        if self.unbias_self(slot) {
            // SAFETY: `unbias_self` turned the bias into our ownership.
            self.pump_and_release(unsafe { self.owned() }, false);
        }
    }

    /// Called by the owner: pumps until it can let go with nothing new
    /// (`DIRTY` clear), then lets go; wakes the service thread if work is
    /// left that needs a peer or room.
    fn pump_and_release(&self, mut guard: Owned<'_>, force: bool) {
        loop {
            // SYNC POINT (acq_rel): pairs with `try_own`'s fetch_or.
            self.state.fetch_and(!DIRTY, Ordering::AcqRel);
            let out = guard.pump(&self.counters, force);
            if self
                .state
                .compare_exchange(RUNNING, 0, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                // `guard` is not used again: the sender is no longer ours.
                if out != Pump::Idle {
                    self.wake_service();
                }
                return;
            }
        }
    }

    /// Lets go without pumping again only if nothing arrived meanwhile.
    fn release(&self, guard: Owned<'_>) {
        self.pump_and_release(guard, true);
    }

    pub(crate) fn wake_service(&self) {
        // Already pending: the service thread has not taken the work yet
        // and will see the caller's state once it owns the sender.
        if self.pending.load(Ordering::Acquire) {
            return;
        }
        self.pending.store(true, Ordering::Release);
        self.service.notify_one();
    }

    /// Posts `message`: straight into the transport if this thread can own
    /// the sender and nothing is queued ([`Sender::send_now`]), else through
    /// `enqueue` and a pump (or the current owner's next pass).
    ///
    /// Owning here sets only `RUNNING`, so a poster that queued meanwhile
    /// (and saw `RUNNING`) leaves `DIRTY` behind, and the release
    /// (`RUNNING -> 0`, failing while `DIRTY` is set) pumps for it.
    ///
    /// With `bias` (a mono queue's slot), a clean direct post keeps the
    /// sender biased to that queue, and the queue's next posts go through
    /// [`Self::post_biased`] first.
    #[inline]
    pub(crate) fn post_direct<M: Outgoing>(
        &self,
        message: M,
        bias: Option<&Arc<BiasSlot>>,
        wait: Timeout,
        enqueue: impl FnOnce(Message) -> Result<(), PostError>,
    ) -> Result<(), PostError> {
        let message = match bias {
            None => message,
            Some(slot) => match self.post_biased(slot, message, wait) {
                Ok(()) => return Ok(()),
                Err((m, None)) => m,
                Err((m, Some(owned))) => {
                    let queued = enqueue(m.into_message());
                    self.pump_and_release(owned, false);
                    return queued;
                }
            },
        };
        // Owned by another thread (the service thread waiting for room, say):
        // queue without trying, one locked instruction (in `kick`) instead
        // of two.
        // SYNC POINT (acquire): the previous owner's work, as in `try_own`.
        if self.state.load(Ordering::Relaxed) & RUNNING != 0
            || self.state.fetch_or(RUNNING, Ordering::AcqRel) & RUNNING != 0
        {
            enqueue(message.into_message())?;
            self.kick();
            return Ok(());
        }
        // SAFETY: the fetch_or above set RUNNING for this thread.
        let mut guard = unsafe { self.owned() };
        match guard.send_now(message, &self.counters, wait) {
            Ok(open) if bias.is_some_and(|slot| self.grant_bias(slot)) => {
                if open {
                    self.wake_service();
                }
                Ok(())
            }
            Ok(open) => {
                self.release_if_clean(guard, open);
                Ok(())
            }
            Err(m) => {
                let queued = enqueue(m.into_message());
                // Pumps at least once: ours, and whatever others queued.
                self.pump_and_release(guard, false);
                queued
            }
        }
    }

    /// Lets go of the sender if no post arrived since it was taken; pumps
    /// first otherwise.
    /// `open`: a buffer was kept open, so the service thread must look.
    fn release_if_clean(&self, guard: Owned<'_>, open: bool) {
        if self
            .state
            .compare_exchange(RUNNING, 0, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            // `guard` is not used again: the sender is no longer ours.
            if open {
                self.wake_service();
            }
        } else {
            self.pump_and_release(guard, false);
        }
    }

    /// After a post: pump on this thread if nobody else is.
    #[inline]
    pub(crate) fn kick(&self) {
        if self.try_own() {
            // SAFETY: `try_own` made this thread the owner.
            self.pump_and_release(unsafe { self.owned() }, false);
        }
    }

    /// [`Self::with_owner`] without a deadline: for the channel's own
    /// set-up and tear-down (adding queues, opening, closing).
    pub(crate) fn exclusive<R>(&self, f: impl FnOnce(&mut Sender) -> R) -> R {
        // A deadline that never passes: this returns only once owning.
        while !self.wait_to_own(Deadline::NEVER) {}
        self.run_owned(f)
    }

    /// Runs `f` as the owner of the sender, waiting for the current owner
    /// to let go. Returns `None` if the deadline passed first.
    pub(crate) fn with_owner<R>(
        &self,
        deadline: Deadline,
        f: impl FnOnce(&mut Sender) -> R,
    ) -> Option<R> {
        self.wait_to_own(deadline).then(|| self.run_owned(f))
    }

    /// Waits until this thread owns the sender (the service thread stands
    /// back meanwhile); false if `deadline` passed first.
    fn wait_to_own(&self, deadline: Deadline) -> bool {
        self.wanted.fetch_add(1, Ordering::AcqRel);
        let owned = loop {
            if self.try_own() {
                break true;
            }
            if deadline.passed() {
                break false;
            }
            std::thread::sleep(Duration::from_micros(200));
        };
        self.wanted.fetch_sub(1, Ordering::AcqRel);
        owned
    }

    /// Runs `f` on the sender and lets go. The caller owns the sender
    /// ([`Self::wait_to_own`] returned true).
    fn run_owned<R>(&self, f: impl FnOnce(&mut Sender) -> R) -> R {
        // SAFETY: the caller owns the sender (see above).
        let mut guard = unsafe { self.owned() };
        let r = f(&mut guard);
        self.release(guard);
        r
    }

    /// Waits while the bias holder keeps posting: looks at its count of
    /// posts after [`HOLDER_GRACE`], then at doubling intervals up to the
    /// bound of [`HOLDER_GRACE_BOUNDS`], and returns once it did not move
    /// (or there is no bias, or the channel stops or is wanted). So the
    /// last buffer of a burst waits at most one wake-up plus one such
    /// interval for the service thread.
    fn let_holder_post(&self) {
        let mut seen = None;
        let mut grace = HOLDER_GRACE;
        let (low, high) = HOLDER_GRACE_BOUNDS;
        let bytes = self.buffer_size.load(Ordering::Relaxed) as u64;
        let max = Duration::from_nanos(bytes).clamp(low, high);
        loop {
            let posts = {
                let holder = self.bias_slot();
                match holder.as_ref() {
                    Some(slot) => slot.posts.load(Ordering::Relaxed),
                    None => return,
                }
            };
            if seen == Some(posts)
                || self.stop.load(Ordering::Acquire)
                || self.wanted.load(Ordering::Acquire) > 0
            {
                return;
            }
            seen = Some(posts);
            std::thread::sleep(grace);
            grace = (grace * 2).min(max);
        }
    }

    /// The service thread's loop: sleeps until an owner left work behind,
    /// then pumps, waiting on the transport in slices, until everything is
    /// sent or the channel stops.
    pub(crate) fn service_loop(&self) {
        loop {
            self.service.wait_for(Timeout::INFINITE, || {
                (self.pending.swap(false, Ordering::AcqRel) || self.stop.load(Ordering::Acquire))
                    .then_some(())
            });
            if self.stop.load(Ordering::Acquire) {
                return;
            }
            if self.wanted.load(Ordering::Acquire) > 0 {
                // flush/close want the sender; they finish the job or
                // leave it pending for us.
                std::thread::sleep(Duration::from_millis(1));
                self.pending.store(true, Ordering::Release);
                continue;
            }
            // A buffer kept open by a bias holder that is still posting
            // fills up and goes out by itself: revoking now would only
            // make it win the bias back.
            self.let_holder_post();
            if !self.try_own() {
                // The owner wakes us again if it leaves work behind.
                continue;
            }
            // SAFETY: `try_own` made this thread the owner.
            let mut guard = unsafe { self.owned() };
            // The service thread sends open buffers: it runs when a poster
            // left one, some time after (a wake-up), not in a poster's way.
            if guard.pump(&self.counters, true) == Pump::Blocked
                && !self.stop.load(Ordering::Acquire)
            {
                guard.wait_progress(WAIT_SLICE);
            }
            self.pump_and_release(guard, true);
        }
    }
}

/// Why [`check`] refused a message (the message itself stays with the
/// caller until it is put into the [`PostError`]).
pub(crate) enum Refused {
    NotOpen,
    Closed,
    Invalid(InvalidMessage),
    Acquire(MessageError),
}

impl Refused {
    #[cold]
    pub(crate) fn into_error(self, message: Message) -> PostError {
        match self {
            Refused::NotOpen => PostError::NotOpen(message),
            Refused::Closed => PostError::Closed(message),
            Refused::Invalid(error) => PostError::Invalid { error, message },
            Refused::Acquire(error) => PostError::Acquire { error, message },
        }
    }
}

/// Checks a message at post time: the channel is open, the message meets
/// its own rules ([`Message::validate`]: 1..=65,535 frames, none over
/// `u32::MAX` bytes), fits an empty buffer after encoding, and its external
/// frames' acquire hooks succeed. Borrows it, so that the common case
/// moves nothing.
#[inline]
pub(crate) fn check(shared: &SendShared, message: &Message) -> Result<(), Refused> {
    let size = shared.buffer_size.load(Ordering::Acquire);
    if size == 0 {
        return Err(if shared.closed.load(Ordering::Acquire) {
            Refused::Closed
        } else {
            Refused::NotOpen
        });
    }
    if let Err(e) = message.validate() {
        return Err(invalid(e));
    }
    if let Err(e) = wire::fits_in_empty_buffer(message, size) {
        return Err(Refused::Invalid(InvalidMessage::TooLarge {
            encoded: e.encoded,
            limit: e.limit,
        }));
    }
    message.acquire_external().map_err(Refused::Acquire)
}

/// The post's words for a rule [`Message::validate`] found broken.
#[cold]
fn invalid(e: MessageError) -> Refused {
    Refused::Invalid(match e {
        MessageError::NoFrames => InvalidMessage::NoFrames,
        MessageError::TooManyFrames { count, max } => InvalidMessage::TooManyFrames { count, max },
        MessageError::FrameTooLarge { index, len, max } => {
            InvalidMessage::FrameTooLarge { index, len, max }
        }
        // `validate` runs no hook; were it to, this is the hook's error.
        e @ MessageError::Acquire { .. } => return Refused::Acquire(e),
    })
}

#[cfg(test)]
mod tests {
    use super::through_payload;
    use crate::wire::single_frame_encoded_len;

    /// The payload bound is exact: the smallest length whose buffer
    /// reaches the transport's threshold.
    #[test]
    fn through_payload_is_the_smallest_payload_reaching_the_threshold() {
        for buffer in [1, 9, 10, 137, 138, 16_384, 32_768, 65_536, 1 << 20, 1 << 30] {
            let l = through_payload(buffer);
            assert!(single_frame_encoded_len(l) >= buffer, "{buffer}: {l}");
            assert!(
                l == 0 || single_frame_encoded_len(l - 1) < buffer,
                "{buffer}: {l}"
            );
        }
    }
}
