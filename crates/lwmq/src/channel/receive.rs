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

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, TryLockError};
use std::time::Duration;

use crate::message::Message;
use crate::queue::ReceiveProducer;
use crate::timeout::Timeout;
use crate::transport::{ReceiveSide, TransportError};
use crate::wire::{self, BufferReader};

use super::send::Counters;

/// How long the receive thread waits in the transport before it re-checks
/// whether an application thread wants the receive side (closing also
/// wakes it through the transport).
const BG_WAIT: Duration = Duration::from_millis(10);

/// How long the receive thread stays away after it saw an application
/// thread receiving inline.
const BG_BACKOFF: Duration = Duration::from_millis(2);

/// One receiving transport.
pub(crate) struct RxSide {
    side: Mutex<Box<dyn ReceiveSide>>,
    descriptor: String,
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
            side: Mutex::new(side),
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
    /// `wait` for one, and queues its messages.
    pub(crate) fn drain(&self, i: usize, wait: Timeout, c: &Counters) -> Drain {
        let rx = &self.sides[i];
        let mut side = match rx.side.try_lock() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => return Drain::Busy,
        };
        let raw = match side.receive(wait) {
            Ok(raw) => raw,
            Err(TransportError::Timeout) => return Drain::Empty,
            Err(TransportError::NotOpen(_)) => return Drain::Stopped,
            Err(e) => {
                log::warn!("lwmq: {}: receive failed: {e}", rx.descriptor);
                drop(side);
                std::thread::sleep(Duration::from_millis(10));
                return Drain::Empty;
            }
        };
        // SAFETY: the receive side guarantees `raw.len` readable bytes at
        // `raw.ptr` until `dispose`, which is called below after the last
        // use of `buf`; the side is held (locked) throughout. A hostile
        // peer can change the bytes' values but not the mapping's bounds,
        // and the decoder validates every value.
        let buf = unsafe { std::slice::from_raw_parts(raw.ptr.cast_const(), raw.len) };
        c.buffers_received.fetch_add(1, Ordering::Relaxed);
        match wire::validate_buffer(buf) {
            Err(e) => {
                c.decode_errors.fetch_add(1, Ordering::Relaxed);
                log::warn!(
                    "lwmq: {}: dropped a corrupt buffer of {} bytes: {e}",
                    rx.descriptor,
                    buf.len()
                );
            }
            Ok(_) => {
                if let Ok(mut reader) = BufferReader::new(buf) {
                    let producer = self.producer.lock().unwrap_or_else(|e| e.into_inner());
                    let messages =
                        std::iter::from_fn(|| reader.next_raw()?.ok().map(|m| m.to_message()));
                    // A closed queue (the application closed its receiver)
                    // drops the rest.
                    let n = producer.push_batch(messages);
                    c.messages_received.fetch_add(n as u64, Ordering::Relaxed);
                }
            }
        }
        side.dispose(false);
        Drain::Got
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

/// See [`RxShared::enter`].
pub(crate) struct ActiveGuard<'a>(&'a RxShared);

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::AcqRel);
    }
}
