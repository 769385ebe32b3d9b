//! The receive path.
//!
//! Each receiving transport's receive side sits behind a mutex that works
//! as a try-own flag: whoever holds it drains that transport. A buffer is
//! validated whole, all its messages are decoded into the receive queue in
//! one batch (one wake-up per buffer), and the buffer is returned.
//!
//! * **Inline.** [`Channel::receive`](super::Channel::receive) finding the
//!   receive queue empty drains the transports itself (`try_lock`, then a
//!   non-blocking receive); with a single receiving transport, a waiting
//!   `receive` sleeps in the transport itself. No helper thread, no hand-off.
//! * **Background.** One receive thread per receiving transport drains
//!   only while no application thread has been receiving inline for a
//!   tick (`active` is zero and `epoch` did not move); otherwise it stays
//!   away from the receive side and sleeps for a tick. It keeps the
//!   transport flowing (and bounded receive queues discarding) while the
//!   application is busy elsewhere, and serves [`Receiver`] handles.
//!
//! A buffer that fails validation is dropped whole (none of its messages
//! are delivered), logged and counted: a message is delivered whole or not
//! at all, and a corrupt buffer says nothing trustworthy about its parts.
//!
//! [`Receiver`]: crate::queue::Receiver

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, TryLockError};
use std::time::Duration;

use crate::message::Message;
use crate::queue::{ReceiveConsumer, ReceiveProducer};
use crate::timeout::Timeout;
use crate::transport::{BufferId, ReceiveSide, TransportError};
use crate::wire;

use super::lent::Lent;
use super::send::Counters;

/// How long the receive thread waits in the transport before it re-checks
/// whether an application thread wants the receive side (closing also
/// wakes it through the transport).
const BG_WAIT: Duration = Duration::from_millis(50);

/// How long the receive thread stays away after it saw an application
/// thread receiving inline.
const BG_BACKOFF: Duration = Duration::from_millis(20);

/// How many messages an inline receive decodes ahead of the one it returns.
const TAKE_AHEAD: u32 = 31;

/// A receive side and the messages of its held buffer not yet taken.
struct SideState {
    side: Box<dyn ReceiveSide>,
    /// Offset of the next message of the held buffer.
    pos: usize,
    /// Messages of the held (validated) buffer not yet taken; 0: no
    /// buffer held.
    left: u32,
    /// The held buffer (valid while `left > 0`).
    held: (*const u8, usize),
    /// Its id, for `dispose`.
    held_id: BufferId,
}

// SAFETY: `held` points into the transport's mapping, which lives as long
// as the receive side (owned by this struct); it is only dereferenced by
// the thread holding the side's lock, as the side itself is.
unsafe impl Send for SideState {}

/// One receiving transport.
pub(crate) struct RxSide {
    side: Mutex<SideState>,
    descriptor: String,
}

impl RxSide {
    /// The side, if no other thread holds it.
    fn try_own(&self) -> Result<std::sync::MutexGuard<'_, SideState>, Drain> {
        match self.side.try_lock() {
            Ok(g) => Ok(g),
            Err(TryLockError::Poisoned(e)) => Ok(e.into_inner()),
            Err(TryLockError::WouldBlock) => Err(Drain::Busy),
        }
    }
}

/// The result of one drain attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Drain {
    /// A buffer was taken (its messages, if valid, are queued).
    Got,
    /// Nothing arrived within the wait.
    Empty,
    /// Another thread owns the receive side.
    Busy,
    /// The transport stopped.
    Stopped,
}

/// The receive state shared by the channel and its receive threads.
pub(crate) struct RxShared {
    pub(crate) sides: Vec<RxSide>,
    producer: Mutex<ReceiveProducer<Message>>,
    /// Application threads inside an inline receive.
    active: AtomicUsize,
    /// Bumped by every inline receive, so that the receive thread sees one
    /// that started and ended within its tick.
    epoch: AtomicUsize,
    pub(crate) stop: AtomicBool,
}

impl RxShared {
    pub(crate) fn new(producer: ReceiveProducer<Message>) -> Self {
        RxShared {
            sides: Vec::new(),
            producer: Mutex::new(producer),
            active: AtomicUsize::new(0),
            epoch: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        }
    }

    pub(crate) fn add_side(&mut self, side: Box<dyn ReceiveSide>, descriptor: String) {
        self.sides.push(RxSide {
            side: Mutex::new(SideState {
                side,
                pos: 0,
                left: 0,
                held: (std::ptr::null(), 0),
                held_id: BufferId(0),
            }),
            descriptor,
        });
    }

    /// Marks an application thread as receiving inline until the guard
    /// drops.
    pub(crate) fn enter(&self) -> ActiveGuard<'_> {
        self.epoch.fetch_add(1, Ordering::Relaxed);
        self.active.fetch_add(1, Ordering::AcqRel);
        ActiveGuard(self)
    }

    /// Notes that an application thread took a message from the queue, so
    /// that the receive thread leaves the transport to it (the
    /// application drains inline once the queue is empty). A plain load
    /// and store, no locked instruction: only a change matters.
    #[inline]
    pub(crate) fn touch(&self) {
        let e = self.epoch.load(Ordering::Relaxed);
        self.epoch.store(e.wrapping_add(1), Ordering::Relaxed);
    }

    /// Takes one buffer from side `i` if nobody else owns it, waiting up to
    /// `wait` for one, and queues its messages (what is left of the held
    /// buffer first, if a receiver took some of it already).
    pub(crate) fn drain(&self, i: usize, wait: Timeout, c: &Counters) -> Drain {
        let rx = &self.sides[i];
        let mut st = match rx.try_own() {
            Ok(st) => st,
            Err(busy) => return busy,
        };
        let buf = match Self::next_buffer(rx, &mut st, wait, c, self.sides.len() == 1) {
            Ok(buf) => buf,
            Err(d) => return d,
        };
        let producer = self.producer.lock().unwrap_or_else(|e| e.into_inner());
        let st = &mut *st;
        let messages = std::iter::from_fn(|| {
            st.left = st.left.checked_sub(1)?;
            match wire::decode_at(buf, st.pos) {
                Ok((m, next)) => {
                    st.pos = next;
                    Some(m)
                }
                // Changed since validation: drop the rest.
                Err(_) => {
                    st.left = 0;
                    None
                }
            }
        });
        // A closed queue (the application closed its receiver) drops the
        // rest.
        producer.push_batch(messages);
        drop(producer);
        st.left = 0;
        let id = st.held_id;
        let _ = st.side.dispose(id, false);
        Drain::Got
    }

    /// The held buffer if messages of it are left, else the next buffer
    /// (validated whole, counted). `Err(Drain::Got)` after a corrupt or
    /// empty buffer (disposed).
    fn next_buffer<'b>(
        rx: &RxSide,
        st: &mut SideState,
        wait: Timeout,
        c: &Counters,
        single: bool,
    ) -> Result<&'b [u8], Drain> {
        if st.left > 0 {
            // SAFETY: as below, when the buffer was received: it is still
            // held (not disposed), and we hold the side's lock.
            return Ok(unsafe { std::slice::from_raw_parts(st.held.0, st.held.1) });
        }
        let raw = match st.side.receive(wait) {
            Ok(raw) => raw,
            Err(TransportError::Timeout) => {
                st.left = 0;
                return Err(Drain::Empty);
            }
            Err(TransportError::NotOpen(_)) => {
                st.left = 0;
                return Err(Drain::Stopped);
            }
            Err(e) => {
                st.left = 0;
                log::warn!("lwmq: {}: receive failed: {e}", rx.descriptor);
                std::thread::sleep(Duration::from_millis(10));
                return Err(Drain::Empty);
            }
        };
        // SAFETY: the receive side guarantees `raw.len` readable bytes at
        // `raw.ptr` until `dispose(raw.id)`; this side holds one buffer at
        // a time (it receives again only after disposing). The slice is used only while the side's
        // lock is held and before `dispose` (callers dispose after their
        // last use, under the lock). A hostile peer can change the bytes'
        // values but not the mapping's bounds, and the decoder validates
        // every value.
        let buf = unsafe { std::slice::from_raw_parts(raw.ptr.cast_const(), raw.len) };
        // With one receiving transport, its lock (held) makes this thread
        // the counters' only writer.
        let count = |counter: &std::sync::atomic::AtomicU64, n: u32| {
            if single {
                Counters::bump_single_writer(counter, u64::from(n));
            } else {
                counter.fetch_add(u64::from(n), Ordering::Relaxed);
            }
        };
        count(&c.buffers_received, 1);
        match wire::validate_buffer(buf) {
            Err(e) => {
                c.decode_errors.fetch_add(1, Ordering::Relaxed);
                log::warn!(
                    "lwmq: {}: dropped a corrupt buffer of {} bytes: {e}",
                    rx.descriptor,
                    buf.len()
                );
                let _ = st.side.dispose(raw.id, false);
                Err(Drain::Got)
            }
            Ok(0) => {
                let _ = st.side.dispose(raw.id, false);
                Err(Drain::Got)
            }
            Ok(n) => {
                count(&c.messages_received, n);
                st.pos = wire::BUFFER_HEADER_LEN;
                st.left = n;
                st.held = (raw.ptr.cast_const(), raw.len);
                st.held_id = raw.id;
                Ok(buf)
            }
        }
    }

    /// Takes one message for a mono-consumer receive queue fed by one
    /// transport: from the queue if anything is there (checked under the
    /// side's lock, as every push happens under it, so order is kept),
    /// else straight from the held buffer or the next one (waiting up to
    /// `wait`), without going through the queue.
    pub(crate) fn take_one(
        &self,
        consumer: &mut ReceiveConsumer<Message>,
        local: &mut VecDeque<Message>,
        wait: Timeout,
        c: &Counters,
    ) -> Result<Message, Drain> {
        let rx = &self.sides[0];
        let mut st = rx.try_own()?;
        if let Ok(m) = consumer.receive(Timeout::ZERO) {
            return Ok(m);
        }
        let buf = Self::next_buffer(rx, &mut st, wait, c, self.sides.len() == 1)?;
        let got = match wire::decode_at(buf, st.pos) {
            Ok((m, next)) => {
                st.pos = next;
                st.left -= 1;
                Ok(m)
            }
            Err(_) => {
                st.left = 0;
                Err(Drain::Got)
            }
        };
        // Decode a few more ahead for the caller's next receives: one lock
        // and one queue check per batch instead of per message.
        let mut ahead = st.left.min(TAKE_AHEAD);
        while ahead > 0 {
            match wire::decode_at(buf, st.pos) {
                Ok((m, next)) => {
                    st.pos = next;
                    st.left -= 1;
                    local.push_back(m);
                }
                // Changed since validation: drop the rest.
                Err(_) => st.left = 0,
            }
            ahead = ahead.saturating_sub(1).min(st.left);
        }
        if st.left == 0 {
            let id = st.held_id;
            let _ = st.side.dispose(id, false);
        }
        got
    }

    /// [`Self::take_one`] without copying: lends the next message of the
    /// held buffer (or of the next one, waiting up to `wait`) to `f`, read
    /// in place while this thread holds the side. A message already in the
    /// queue is older: it is returned instead, and `f` is left unused.
    pub(crate) fn lend_one<R, F: FnOnce(Lent<'_>) -> R>(
        &self,
        consumer: &mut ReceiveConsumer<Message>,
        wait: Timeout,
        c: &Counters,
        f: &mut Option<F>,
    ) -> Result<Lending<R>, Drain> {
        let rx = &self.sides[0];
        let mut st = rx.try_own()?;
        if let Ok(m) = consumer.receive(Timeout::ZERO) {
            return Ok(Lending::Queued(m));
        }
        let buf = Self::next_buffer(rx, &mut st, wait, c, self.sides.len() == 1)?;
        // Hands the buffer back once its last message was taken, also if
        // `f` panics (else it would stay out for good, counting against the limit).
        let st = DisposeWhenDone(&mut st);
        match wire::RawMessage::at(buf, st.0.pos) {
            Ok((message, next)) => {
                st.0.pos = next;
                st.0.left -= 1;
                let f = f.take().ok_or(Drain::Got)?;
                Ok(Lending::Lent(f(Lent::wire(message))))
            }
            // Changed since validation: drop the rest.
            Err(_) => {
                st.0.left = 0;
                Err(Drain::Got)
            }
        }
    }

    /// The loop of the receive thread of side `i`.
    pub(crate) fn receive_loop(&self, i: usize, c: &Counters) {
        let mut seen = self.epoch.load(Ordering::Relaxed);
        while !self.stop.load(Ordering::Acquire) {
            let epoch = self.epoch.load(Ordering::Relaxed);
            if self.active.load(Ordering::Acquire) > 0 || epoch != seen {
                seen = epoch;
                std::thread::sleep(BG_BACKOFF);
                continue;
            }
            match self.drain(i, Timeout::after(BG_WAIT), c) {
                Drain::Stopped => return,
                Drain::Busy => std::thread::sleep(BG_BACKOFF),
                Drain::Got | Drain::Empty => {}
            }
        }
    }
}

/// What [`RxShared::lend_one`] got.
pub(crate) enum Lending<R> {
    /// The closure's result for a message lent in place.
    Lent(R),
    /// An older message from the receive queue (the closure did not run).
    Queued(Message),
}

/// Disposes the held buffer on drop if none of its messages are left.
struct DisposeWhenDone<'a>(&'a mut SideState);

impl Drop for DisposeWhenDone<'_> {
    fn drop(&mut self) {
        if self.0.left == 0 {
            let _ = self.0.side.dispose(self.0.held_id, false);
        }
    }
}

/// See [`RxShared::enter`].
pub(crate) struct ActiveGuard<'a>(&'a RxShared);

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::AcqRel);
    }
}
