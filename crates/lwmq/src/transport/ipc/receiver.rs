//! The receive side of the data path: take published slots of the incoming
//! ring, up to `MaxPendingReceiveBuffers` at once, and give them back in
//! any order.
//!
//! Taken slots `[head, next)` of the ring each have an entry in `held`
//! (indexed by position modulo the capacity: no list to search or grow).
//! A buffer's id is its ring's `base` plus its position, so giving one back
//! finds its entry by subtraction; `head` moves over the prefix given back
//! (the producer only ever sees it advance in order). A slot the producer
//! published as discarded is taken and done at once, never handed out (it
//! uses up an id nobody sees). When the connection changes while buffers
//! are held, the old ring (and its mapping, which their pointers point
//! into) is kept in `retired` until each of them is given back.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::{Conn, Inner};
use crate::ring::{Consumer, Slot, WaitOutcome};
use crate::timeout::Timeout;
use crate::transport::{BufferId, RawBuf, ReceiveSide, TransportError};

/// A taken slot.
#[derive(Debug, Clone, Copy, Default)]
struct Held {
    len: usize,
    /// The producer's erase flag, read once when the slot was taken.
    erase: bool,
    /// Handed out and not yet given back (false: given back, or discarded).
    out: bool,
}

/// One ring and the slots taken from it.
#[derive(Debug)]
struct Taken {
    /// Keeps the connection (and the mapping the slots lie in) alive.
    conn: Arc<Conn>,
    cons: Consumer,
    /// One entry per slot; those of positions `[head, next)` are meaningful.
    held: Box<[Held]>,
    /// Index in `held` of position `head`.
    head_idx: usize,
    /// A buffer's id is `base + position` (wrapping).
    base: u64,
    /// Buffers handed out and not given back.
    handed_out: usize,
}

impl Taken {
    fn new(conn: Arc<Conn>, cons: Consumer, first_id: u64) -> Self {
        let cap = cons.capacity() as usize;
        let head = cons.oldest_taken();
        Self {
            conn,
            held: vec![Held::default(); cap].into_boxed_slice(),
            head_idx: (head % cap as u64) as usize,
            base: first_id.wrapping_sub(head),
            handed_out: 0,
            cons,
        }
    }

    /// Index in `held` of the slot `off` positions after `head`
    /// (`off < capacity`).
    #[inline]
    fn index(&self, off: u64) -> usize {
        let j = self.head_idx + off as usize;
        if j < self.held.len() {
            j
        } else {
            j - self.held.len()
        }
    }

    /// Records the slot `peek` just returned as taken; returns its id.
    #[inline(always)]
    fn take(&mut self, slot: &Slot) -> u64 {
        let off = self.cons.taken();
        let pos = self.cons.take();
        let i = self.index(off);
        self.held[i] = Held {
            len: slot.len,
            erase: slot.erase,
            out: !slot.discarded,
        };
        if slot.discarded {
            self.release_prefix();
        } else {
            self.handed_out += 1;
        }
        self.base.wrapping_add(pos)
    }

    /// Gives buffer `id` back (zeroing it first if asked to), then releases
    /// the prefix given back. False if `id` is not out here.
    #[inline(always)]
    fn dispose(&mut self, id: u64, erase: bool) -> bool {
        let head = self.cons.oldest_taken();
        let off = id.wrapping_sub(self.base).wrapping_sub(head);
        let taken = self.cons.taken();
        if off >= taken {
            return false;
        }
        let i = self.index(off);
        let h = self.held[i];
        if !h.out {
            return false;
        }
        self.held[i].out = false;
        self.handed_out -= 1;
        if erase || h.erase {
            self.cons.erase(head + off, h.len);
        }
        if off == 0 {
            if taken == 1 {
                // The common case: the only slot taken.
                self.head_idx = self.index(1);
                self.cons.release(1);
            } else {
                self.release_prefix();
            }
        }
        true
    }

    /// Releases the taken slots at the front that are no longer out.
    fn release_prefix(&mut self) {
        let taken = self.cons.taken();
        let mut n = 0;
        while n < taken && !self.held[self.index(n)].out {
            n += 1;
        }
        if n > 0 {
            self.head_idx = if n < self.held.len() as u64 {
                self.index(n)
            } else {
                self.head_idx
            };
            self.cons.release(n);
        }
    }
}

/// The receive side of an `ipc://` transport.
#[derive(Debug)]
pub struct IpcReceiver {
    inner: Arc<Inner>,
    gen: u64,
    current: Option<Taken>,
    /// Rings of ended connections with buffers still held.
    retired: Vec<Taken>,
    /// Buffers handed out and not yet disposed (all rings).
    out: usize,
    next_id: u64,
    received: u64,
    bytes: u64,
    spin: Duration,
}

impl IpcReceiver {
    pub(super) fn new(inner: Arc<Inner>) -> Self {
        Self {
            gen: u64::MAX,
            current: None,
            retired: Vec::new(),
            out: 0,
            next_id: 0,
            received: inner.stats.received.0.load(Ordering::Relaxed),
            bytes: inner.stats.received.1.load(Ordering::Relaxed),
            spin: Duration::ZERO,
            inner,
        }
    }

    fn sync(&mut self) {
        if let Some(conn) = self.inner.changed_since(&mut self.gen) {
            if let Some(old) = self.current.take() {
                if old.handed_out > 0 {
                    self.retired.push(old);
                }
            }
            let first_id = self.next_id;
            self.current = conn.and_then(|c| {
                c.rx.map(|l| {
                    let mut cons = Consumer::attach(Arc::clone(&c.map), l, c.fences);
                    // Async readiness: the peer's eventfd, if it passed one.
                    cons.set_peer_ready(c.peer_ready.clone());
                    Taken::new(c, cons, first_id)
                })
            });
            self.spin = self.inner.spin();
        }
    }

    /// Counts a buffer handed out and describes it.
    #[inline(always)]
    fn hand_out(&mut self, id: u64, slot: &Slot) -> RawBuf {
        self.next_id = id.wrapping_add(1);
        self.out += 1;
        self.received += 1;
        self.bytes += slot.len as u64;
        let s = &self.inner.stats;
        s.received.0.store(self.received, Ordering::Relaxed);
        s.received.1.store(self.bytes, Ordering::Relaxed);
        RawBuf {
            ptr: slot.ptr,
            len: slot.len,
            id: BufferId(id),
        }
    }

    /// [`ReceiveSide::receive`] when the fast path does not apply: the
    /// limit, a connection change, a discarded slot, a violation, or a
    /// wait. Out of line, so that the fast path stays small.
    #[inline(never)]
    fn receive_slow(&mut self, timeout: Timeout) -> Result<RawBuf, TransportError> {
        let max = self.inner.config.receive_buffers();
        if self.out >= max as usize {
            return Err(TransportError::BufferLimit {
                descriptor: self.inner.descriptor.clone(),
                dir: "receive",
                max,
                limit: "receive_buffers",
                hint: "dispose one first",
            });
        }
        let deadline = timeout.deadline();
        loop {
            if self.inner.stopping.load(Ordering::Acquire) {
                return Err(TransportError::NotOpen(self.inner.descriptor.clone()));
            }
            // `interrupt_receive`: end this wait as if it timed out.
            let interrupt = &self.inner.rx_interrupt;
            if interrupt.load(Ordering::Relaxed) && interrupt.swap(false, Ordering::SeqCst) {
                return Err(TransportError::Timeout);
            }
            self.sync();
            if let Some(t) = &mut self.current {
                if !t.conn.dead.load(Ordering::Acquire) {
                    let stop = &self.inner.rx_interrupt;
                    let woke = &self.inner.woke_peer;
                    let r = match t.cons.has_data() {
                        Ok(true) => t.cons.peek().map(Some),
                        // This side's last post woke the sleeping peer,
                        // which the kernel often queues on this CPU: let
                        // it run before waiting for its answer (measured
                        // in docs/performance.md, finding 5).
                        Ok(false)
                            if woke.load(Ordering::Relaxed)
                                && woke.swap(false, Ordering::Relaxed) =>
                        {
                            std::thread::yield_now();
                            Ok(None)
                        }
                        Ok(false) => {
                            match t.cons.wait_data_or(deadline, self.spin, &t.conn.dead, stop) {
                                Ok(WaitOutcome::TimedOut) => return Err(TransportError::Timeout),
                                Ok(_) => Ok(None),
                                Err(v) => Err(v),
                            }
                        }
                        Err(v) => Err(v),
                    };
                    match r {
                        Ok(Some(slot)) => {
                            let id = t.take(&slot);
                            if slot.discarded {
                                self.next_id = id.wrapping_add(1);
                                continue;
                            }
                            return Ok(self.hand_out(id, &slot));
                        }
                        Ok(None) => {}
                        Err(v) => {
                            let c = Arc::clone(&t.conn);
                            self.inner.violation(&c, &v);
                        }
                    }
                    continue;
                }
            }
            if deadline.passed() {
                return Err(TransportError::Timeout);
            }
            self.inner.wait_link_change(self.gen, deadline);
        }
    }
}

impl ReceiveSide for IpcReceiver {
    fn receive(&mut self, timeout: Timeout) -> Result<RawBuf, TransportError> {
        // Fast path: below the limit, same connection, alive, a slot
        // published and not discarded. No lock, no system call.
        if self.out < self.inner.config.receive_buffers() as usize
            && self.inner.generation.load(Ordering::Acquire) == self.gen
        {
            if let Some(t) = &mut self.current {
                if !t.conn.dead.load(Ordering::Acquire) && matches!(t.cons.has_data(), Ok(true)) {
                    if let Ok(slot) = t.cons.peek() {
                        if !slot.discarded {
                            let id = t.take(&slot);
                            return Ok(self.hand_out(id, &slot));
                        }
                    }
                }
            }
        }
        self.receive_slow(timeout)
    }

    fn dispose(&mut self, id: BufferId, erase: bool) -> Result<(), TransportError> {
        let in_current = self
            .current
            .as_mut()
            .is_some_and(|t| t.dispose(id.0, erase));
        let found = match in_current {
            true => true,
            false => {
                let i = self.retired.iter_mut().position(|t| t.dispose(id.0, erase));
                if let Some(i) = i {
                    if self.retired[i].handed_out == 0 {
                        self.retired.swap_remove(i);
                    }
                }
                i.is_some()
            }
        };
        if !found {
            return Err(TransportError::UnknownBuffer {
                descriptor: self.inner.descriptor.clone(),
                dir: "receive",
                id,
            });
        }
        self.out -= 1;
        Ok(())
    }
}

impl Drop for IpcReceiver {
    fn drop(&mut self) {
        self.inner.rx_claimed.store(false, Ordering::Release);
    }
}
