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
//! A received buffer is read once: [`wire::BufferIndex::build`] walks its
//! structure (each header byte read once, through a [`SharedBytes`] view:
//! the sender can still write the buffer) and records where every frame
//! is; messages are then copied out of (or lent from) the recorded ranges,
//! and nothing of the structure is read again. A buffer that fails
//! validation is dropped whole before any of its messages is delivered,
//! logged and counted: a message is delivered whole or not at all, and a
//! corrupt buffer says nothing trustworthy about its parts.
//!
//! [`Receiver`]: super::Receiver

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, TryLockError};
use std::time::Duration;

use crate::message::Message;
use crate::queue::{ReceiveConsumer, ReceiveProducer};
use crate::timeout::Timeout;
use crate::transport::{BufferId, ReceiveSide, TransportError};
use crate::wire::{self, SharedBytes};

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

/// A received buffer held until its last message is taken: where it is
/// (this process's values, from the transport, never from the buffer).
#[derive(Clone, Copy)]
struct Held {
    ptr: *const u8,
    len: usize,
    /// Its id, for `dispose`.
    id: BufferId,
}

impl Held {
    const NONE: Held = Held {
        ptr: std::ptr::null(),
        len: 0,
        id: BufferId(0),
    };

    /// The held buffer's bytes, which its sender may still write.
    fn bytes(&self) -> SharedBytes<'_> {
        // SAFETY: `ptr`/`len` are the transport's `RawBuf` of the buffer
        // received last (or null and 0, an empty view). The receive side
        // keeps those bytes mapped read-write (they are in the connection's
        // shared section, which it holds) until `dispose`, and
        // `SideState::release` resets `held` before it disposes, which it
        // cannot do while this borrow of `held` lives. No `&mut` to them
        // exists in this process: the decoder and the lent views only read
        // them through `SharedBytes`. The peer may write them at any time,
        // which `SharedBytes` allows.
        unsafe { SharedBytes::new(self.ptr, self.len) }
    }
}

/// A receive side and the messages of its held buffer not yet taken.
struct SideState {
    side: Box<dyn ReceiveSide>,
    /// The held buffer (messages of it are left while `next <
    /// index.len()`).
    held: Held,
    /// Its messages, as read once when it was received.
    index: wire::BufferIndex,
    /// The next message of the held buffer to take.
    next: usize,
}

impl SideState {
    /// True if messages of the held buffer are left.
    fn holds(&self) -> bool {
        self.next < self.index.len()
    }

    /// Forgets the held buffer and gives it back to the transport.
    fn release(&mut self) {
        self.index.clear();
        self.next = 0;
        let held = std::mem::replace(&mut self.held, Held::NONE);
        if !held.ptr.is_null() {
            // Only a buffer this side holds is given back, so this cannot
            // fail; were it to, nothing is left to do but forget it.
            let _ = self.side.dispose(held.id, false);
        }
    }
}

// SAFETY: `held` points into the transport's mapping, which lives as long
// as the receive side (owned by this struct); it is only read by the
// thread holding the side's lock, as the side itself is.
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
    /// Async receives (feature `async`): an eventfd that the receive
    /// thread writes after it queued messages while `async_waiting` is
    /// set. Created by the first async receive; until then the receive
    /// thread pays one load for it.
    async_ready: std::sync::OnceLock<std::os::fd::OwnedFd>,
    /// An async receive armed and may be waiting for readiness.
    async_waiting: AtomicBool,
    /// The receive thread stands down while an async receive waits (the
    /// async receive drains inline, as an inline `receive` does); it
    /// sleeps on this until the wait is withdrawn.
    async_idle: (Mutex<()>, std::sync::Condvar),
    /// Receive threads asleep on `async_idle` (counted under its lock), so
    /// that withdrawing a wait, once per async message, makes no system
    /// call while nobody sleeps there.
    async_idle_sleepers: AtomicUsize,
}

impl RxShared {
    pub(crate) fn new(producer: ReceiveProducer<Message>) -> Self {
        RxShared {
            sides: Vec::new(),
            producer: Mutex::new(producer),
            active: AtomicUsize::new(0),
            epoch: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            async_ready: std::sync::OnceLock::new(),
            async_waiting: AtomicBool::new(false),
            async_idle: (Mutex::new(()), std::sync::Condvar::new()),
            async_idle_sleepers: AtomicUsize::new(0),
        }
    }

    /// The eventfd the receive thread writes for async receives (created
    /// on first use).
    #[cfg_attr(not(feature = "async"), allow(dead_code))]
    pub(crate) fn async_fd(&self) -> std::io::Result<std::os::fd::BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        if self.async_ready.get().is_none() {
            let fd = rustix::event::eventfd(
                0,
                rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK,
            )?;
            let _ = self.async_ready.set(fd);
        }
        Ok(self.async_ready.get().expect("set above").as_fd())
    }

    /// Declares (or withdraws) an async receive waiting for readiness. The
    /// SeqCst store pairs with the fence in [`Self::signal_async`]: either
    /// the receive thread sees the flag, or the waiter's re-check after
    /// this sees what it queued.
    #[cfg_attr(not(feature = "async"), allow(dead_code))]
    pub(crate) fn set_async_waiting(&self, waiting: bool) {
        self.async_waiting.store(waiting, Ordering::SeqCst);
        std::sync::atomic::fence(Ordering::SeqCst);
        // SYNC POINT: pairs with the fence in `stand_down_for_async`:
        // either the sleeper sees the flag cleared, or this sees it
        // counted and wakes it (under the lock, so after it is waiting).
        if !waiting && self.async_idle_sleepers.load(Ordering::Relaxed) > 0 {
            let _g = self.async_idle.0.lock().unwrap_or_else(|e| e.into_inner());
            self.async_idle.1.notify_all();
        }
    }

    /// The receive thread's pause while an async receive waits: until the
    /// wait is withdrawn (or a second passes, or the channel stops). An
    /// idle async channel thus costs no periodic wake-up of its receive
    /// thread (measured: 100 idle channels took 18% of a core with the
    /// thread's 50 ms transport waits, each ending in a `membarrier`).
    fn stand_down_for_async(&self) -> bool {
        if !self.async_waiting.load(Ordering::Acquire) {
            return false;
        }
        let g = self.async_idle.0.lock().unwrap_or_else(|e| e.into_inner());
        self.async_idle_sleepers.fetch_add(1, Ordering::Relaxed);
        std::sync::atomic::fence(Ordering::SeqCst);
        let g = if self.async_waiting.load(Ordering::Relaxed) && !self.stop.load(Ordering::Acquire)
        {
            self.async_idle
                .1
                .wait_timeout(g, Duration::from_secs(1))
                .unwrap_or_else(|e| e.into_inner())
                .0
        } else {
            g
        };
        self.async_idle_sleepers.fetch_sub(1, Ordering::Relaxed);
        drop(g);
        true
    }

    /// Wakes a receive thread standing down for an async receive (the
    /// channel stops).
    pub(crate) fn wake_stood_down(&self) {
        let _g = self.async_idle.0.lock().unwrap_or_else(|e| e.into_inner());
        self.async_idle.1.notify_all();
    }

    /// After the receive thread queued messages: wakes an async receive
    /// that may be waiting (the messages are in the queue, not in the
    /// ring, so the peer's readiness signal has already been spent).
    fn signal_async(&self) {
        if let Some(fd) = self.async_ready.get() {
            std::sync::atomic::fence(Ordering::SeqCst);
            if self.async_waiting.load(Ordering::Relaxed) {
                crate::ring::signal_readiness(fd);
            }
        }
    }

    pub(crate) fn add_side(&mut self, side: Box<dyn ReceiveSide>, descriptor: String) {
        self.sides.push(RxSide {
            side: Mutex::new(SideState {
                side,
                held: Held::NONE,
                index: wire::BufferIndex::new(),
                next: 0,
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
        if let Err(d) = Self::next_buffer(rx, &mut st, wait, c, self.sides.len() == 1) {
            return d;
        }
        let producer = self.producer.lock().unwrap_or_else(|e| e.into_inner());
        let st = &mut *st;
        let buf = st.held.bytes();
        let index = &st.index;
        // A closed queue (the application closed its receiver) drops the
        // rest.
        producer.push_batch(
            (st.next..index.len())
                .filter_map(|m| index.message(m))
                .map(|m| m.to_message(&buf)),
        );
        drop(producer);
        st.release();
        Drain::Got
    }

    /// Makes sure the side holds a buffer with messages left: the held one,
    /// else the next one received (waiting up to `wait`), read once and
    /// validated whole into the side's index, and counted. `Err(Drain::Got)`
    /// after a corrupt or empty buffer (given back at once).
    fn next_buffer(
        rx: &RxSide,
        st: &mut SideState,
        wait: Timeout,
        c: &Counters,
        single: bool,
    ) -> Result<(), Drain> {
        if st.holds() {
            return Ok(());
        }
        let raw = match st.side.receive(wait) {
            Ok(raw) => raw,
            Err(TransportError::Timeout) => return Err(Drain::Empty),
            Err(TransportError::NotOpen(_)) => return Err(Drain::Stopped),
            Err(e) => {
                log::warn!("lwmq: {}: receive failed: {e}", rx.descriptor);
                std::thread::sleep(Duration::from_millis(10));
                return Err(Drain::Empty);
            }
        };
        st.held = Held {
            ptr: raw.ptr.cast_const(),
            len: raw.len,
            id: raw.id,
        };
        st.next = 0;
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
        // The one read of the buffer's structure: from here on only the
        // index is used.
        match st.index.build(&st.held.bytes()) {
            Err(e) => {
                c.decode_errors.fetch_add(1, Ordering::Relaxed);
                log::warn!(
                    "lwmq: {}: dropped a corrupt buffer of {} bytes: {e}",
                    rx.descriptor,
                    raw.len
                );
                st.release();
                Err(Drain::Got)
            }
            Ok(0) => {
                st.release();
                Err(Drain::Got)
            }
            Ok(n) => {
                count(&c.messages_received, n);
                Ok(())
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
        Self::next_buffer(rx, &mut st, wait, c, self.sides.len() == 1)?;
        let st = &mut *st;
        let buf = st.held.bytes();
        let mut take = || {
            let i = st.next;
            st.next = i + 1;
            match st.index.message(i) {
                Some(m) => Some(m.to_message(&buf)),
                None => {
                    // Past the last message (or, never, a hole): the
                    // buffer is done.
                    st.next = st.index.len();
                    None
                }
            }
        };
        // Messages are left (`next_buffer`), so this takes one.
        let got = take().ok_or(Drain::Got);
        // Copy a few more out ahead for the caller's next receives: one
        // lock and one queue check per batch instead of per message.
        for _ in 0..TAKE_AHEAD {
            match take() {
                Some(m) => local.push_back(m),
                None => break,
            }
        }
        if !st.holds() {
            st.release();
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
        Self::next_buffer(rx, &mut st, wait, c, self.sides.len() == 1)?;
        // Hands the buffer back once its last message was taken, also if
        // `f` panics (else the same buffer would be delivered again).
        let guard = ReleaseWhenDone(&mut st);
        let st = &mut *guard.0;
        let buf = st.held.bytes();
        let i = st.next;
        st.next = i + 1;
        // Messages are left (`next_buffer`); should one be missing, the
        // buffer is done (and given back by the guard).
        let Some(message) = st.index.message(i) else {
            st.next = st.index.len();
            return Err(Drain::Got);
        };
        let f = f.take().ok_or(Drain::Got)?;
        Ok(Lending::Lent(f(Lent::in_place(buf, message))))
    }

    /// [`Self::lend_one`] for several messages: lends up to `max` to `f`
    /// in order, the rest of the held buffer, then further buffers that
    /// are ready, waiting up to `wait` only for the first. One lock of the
    /// side and one look at the queue for the whole batch. A message
    /// already in the queue is older: it is returned instead, and `f` is
    /// left unused. `Lent(n)` has `n >= 1`.
    pub(crate) fn lend_batch<F: FnMut(Lent<'_>)>(
        &self,
        consumer: &mut ReceiveConsumer<Message>,
        wait: Timeout,
        c: &Counters,
        max: usize,
        f: &mut F,
    ) -> Result<Lending<usize>, Drain> {
        let rx = &self.sides[0];
        let mut st = rx.try_own()?;
        if let Ok(m) = consumer.receive(Timeout::ZERO) {
            return Ok(Lending::Queued(m));
        }
        let mut n = 0;
        while n < max {
            let wait = if n == 0 { wait } else { Timeout::ZERO };
            match Self::next_buffer(rx, &mut st, wait, c, self.sides.len() == 1) {
                Ok(()) => {}
                Err(_) if n > 0 => break,
                Err(d) => return Err(d),
            }
            // Hands each buffer back once its last message was taken, also
            // if `f` panics (else it would be delivered again).
            let guard = ReleaseWhenDone(&mut st);
            let st = &mut *guard.0;
            let buf = st.held.bytes();
            while n < max && st.next < st.index.len() {
                let i = st.next;
                st.next = i + 1;
                let Some(message) = st.index.message(i) else {
                    st.next = st.index.len();
                    break;
                };
                f(Lent::in_place(buf, message));
                n += 1;
            }
        }
        if n == 0 {
            // Only a message missing from its index (never) ends here.
            return Err(Drain::Got);
        }
        Ok(Lending::Lent(n))
    }

    /// The loop of the receive thread of side `i`.
    pub(crate) fn receive_loop(&self, i: usize, c: &Counters) {
        let mut seen = self.epoch.load(Ordering::Relaxed);
        while !self.stop.load(Ordering::Acquire) {
            if self.stand_down_for_async() {
                continue;
            }
            let epoch = self.epoch.load(Ordering::Relaxed);
            if self.active.load(Ordering::Acquire) > 0 || epoch != seen {
                seen = epoch;
                std::thread::sleep(BG_BACKOFF);
                continue;
            }
            match self.drain(i, Timeout::after(BG_WAIT), c) {
                Drain::Stopped => return,
                Drain::Busy => std::thread::sleep(BG_BACKOFF),
                Drain::Got => self.signal_async(),
                Drain::Empty => {}
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

/// Releases the held buffer on drop if none of its messages are left.
struct ReleaseWhenDone<'a>(&'a mut SideState);

impl Drop for ReleaseWhenDone<'_> {
    fn drop(&mut self) {
        if !self.0.holds() {
            self.0.release();
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
