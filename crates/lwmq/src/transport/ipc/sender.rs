//! The send side of the data path: hand out slots of the outgoing ring (or
//! staging buffers while no peer is connected), commit or abort them,
//! flush.
//!
//! # Buffers out at once
//!
//! Up to `MaxPendingSendBuffers` buffers are out at once, in the order
//! handed out. Each is either
//!
//! * a **ring** slot (`ring`): reserved slot `tail + i` of the current
//!   connection's ring, where `i` is its index in `ring`; or
//! * a **staged** buffer (`staged`): private memory, for a buffer obtained
//!   while no live connection could take it in order.
//!
//! Ring slots always come before staged buffers: a new buffer is a ring
//! slot only if no staged buffer is out (and nothing committed is still
//! staged), so that buffers leave in the order obtained. While ring slots
//! are out, the sender does not switch to a newer connection: their
//! positions and their mapping belong to the one they were reserved in.
//!
//! Commits go to the oldest buffer. Aborting one marks it; aborted buffers
//! at the end are simply forgotten (nothing after them depends on their
//! position), and an aborted ring slot that reaches the front while later
//! ones are still out is published as *discarded* ([`ring::FLAG_DISCARD`]:
//! no bytes, released unseen by the consumer). Aborted buffers in the
//! middle count toward the limit until then, so the ring always has room
//! for every buffer out (its capacity is at least `MaxPendingSendBuffers`).
//!
//! # A connection that dies
//!
//! A ring slot whose connection died before its commit is **lost**: the
//! commit reports [`TransportError::BufferLost`] and nothing of it is sent
//! or copied. The peer could write that memory (a hostile one knows which
//! slot is next from `tail`), so copying it to the next connection would
//! deliver the old peer's bytes to the new one. Staged buffers are private
//! memory and still go to the next connection.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::{lock, Conn, Inner, Staged};
use crate::ring::{self, Producer, Violation, WaitOutcome};
use crate::timeout::Timeout;
use crate::transport::{BufferId, RawBuf, SendSide, TransportError};

/// A ring slot out: `id << 1 | aborted`, small so that the common path
/// moves 8 bytes per buffer.
type RingOut = u64;

fn ring_id(r: RingOut) -> u64 {
    r >> 1
}

fn ring_aborted(r: RingOut) -> bool {
    r & 1 != 0
}

/// A staging buffer out: private memory of `buffer_size` bytes.
#[derive(Debug)]
struct StagedOut {
    id: u64,
    data: Vec<u8>,
    aborted: bool,
}

/// The send side of an `ipc://` transport.
#[derive(Debug)]
pub struct IpcSender {
    inner: Arc<Inner>,
    gen: u64,
    conn: Option<Arc<Conn>>,
    prod: Option<Producer>,
    /// Ring slots out, oldest first: slot `tail + i` is `ring[i]`. They
    /// come before every staged buffer out (see the module docs).
    ring: VecDeque<RingOut>,
    /// Staging buffers out, oldest first, after the ring slots.
    staged: VecDeque<StagedOut>,
    next_id: u64,
    /// `Disconnected` was reported for the current (dead) connection.
    loss_reported: bool,
    sent: u64,
    bytes: u64,
    spin: Duration,
}

impl IpcSender {
    pub(super) fn new(inner: Arc<Inner>) -> Self {
        Self {
            gen: u64::MAX,
            conn: None,
            prod: None,
            ring: VecDeque::new(),
            staged: VecDeque::new(),
            next_id: 0,
            loss_reported: false,
            sent: inner.stats.sent.0.load(Ordering::Relaxed),
            bytes: inner.stats.sent.1.load(Ordering::Relaxed),
            spin: Duration::ZERO,
            inner,
        }
    }

    /// Picks up a connection change, unless ring slots are out (they belong
    /// to the connection they were reserved in).
    fn sync(&mut self) {
        if !self.ring.is_empty() {
            return;
        }
        if let Some(conn) = self.inner.changed_since(&mut self.gen) {
            self.prod = conn.as_ref().and_then(|c| {
                c.tx.map(|l| {
                    let mut p = Producer::attach(Arc::clone(&c.map), l, c.fences);
                    // Async readiness: the peer's eventfd, if it passed one.
                    p.set_peer_ready(c.peer_ready.clone());
                    p
                })
            });
            self.conn = conn;
            self.spin = self.inner.spin();
            self.loss_reported = false;
        }
    }

    fn live(&self) -> bool {
        self.conn
            .as_ref()
            .is_some_and(|c| !c.dead.load(Ordering::Acquire))
    }

    fn count(&mut self, len: usize) {
        self.sent += 1;
        self.bytes += len as u64;
        // One writer at a time (the claim), so plain stores suffice.
        self.inner.stats.sent.0.store(self.sent, Ordering::Relaxed);
        self.inner.stats.sent.1.store(self.bytes, Ordering::Relaxed);
    }

    fn size(&self) -> usize {
        self.inner.config.buffer_size()
    }

    /// Moves staged buffers into the ring while there is room. True when
    /// nothing is left staged (false without a live connection).
    fn drain_staged(&mut self) -> Result<bool, Violation> {
        let (Some(prod), true) = (
            self.prod.as_mut(),
            self.conn
                .as_ref()
                .is_some_and(|c| !c.dead.load(Ordering::Acquire)),
        ) else {
            return Ok(false);
        };
        if self.inner.staged_len.load(Ordering::Relaxed) == 0 {
            return Ok(true);
        }
        // Never while ring slots are reserved: the staged buffers would
        // land in them. (Cannot happen: a slot is only reserved with
        // nothing staged, and only a commit of this side stages, which
        // needs every slot reserved before it gone.)
        if !self.ring.is_empty() {
            return Ok(false);
        }
        let mut link = lock(&self.inner.link);
        let mut result = Ok(true);
        while let Some(s) = link.staged.front() {
            match prod.has_space() {
                Ok(true) => {}
                Ok(false) => {
                    result = Ok(false);
                    break;
                }
                Err(v) => {
                    result = Err(v);
                    break;
                }
            }
            ring::prefill(prod, &s.data, if s.erase { ring::FLAG_ERASE } else { 0 });
            link.staged.pop_front();
        }
        self.inner
            .staged_len
            .store(link.staged.len(), Ordering::Relaxed);
        result
    }

    fn on_violation(&mut self, v: Violation) {
        if let Some(c) = &self.conn {
            self.inner.violation(c, &v);
        }
    }

    /// Buffers out, of both kinds.
    fn out_len(&self) -> usize {
        self.ring.len() + self.staged.len()
    }

    /// Hands out ring slot `tail + ring.len()` (the caller checked there is
    /// room and that no staged buffer is out).
    #[inline(always)]
    fn reserve_ring(&mut self) -> RawBuf {
        let prod = self.prod.as_ref().expect("ring slot without a producer");
        let ptr = prod.buf_at(self.ring.len() as u64);
        let id = self.next_id;
        self.next_id += 1;
        self.ring.push_back(id << 1);
        RawBuf {
            ptr,
            len: self.size(),
            id: BufferId(id),
        }
    }

    fn stage_private(&mut self) -> RawBuf {
        let mut v = vec![0u8; self.size()];
        let ptr = v.as_mut_ptr();
        let id = self.next_id;
        self.next_id += 1;
        self.staged.push_back(StagedOut {
            id,
            data: v,
            aborted: false,
        });
        RawBuf {
            ptr,
            len: self.size(),
            id: BufferId(id),
        }
    }

    fn unknown(&self, id: BufferId) -> TransportError {
        TransportError::UnknownBuffer {
            descriptor: self.inner.descriptor.clone(),
            dir: "send",
            id,
        }
    }

    /// True if the ring slots out were reserved in a connection that died
    /// (they can never be published).
    fn ring_dead(&self) -> bool {
        self.conn
            .as_ref()
            .is_none_or(|c| c.dead.load(Ordering::Acquire))
    }

    /// The oldest buffer out: `(id, aborted)`.
    fn oldest(&self) -> Option<(u64, bool)> {
        match self.ring.front() {
            Some(&r) => Some((ring_id(r), ring_aborted(r))),
            None => self.staged.front().map(|s| (s.id, s.aborted)),
        }
    }

    /// The newest buffer out: `(id, aborted)`.
    fn newest(&self) -> Option<(u64, bool)> {
        match self.staged.back() {
            Some(s) => Some((s.id, s.aborted)),
            None => self.ring.back().map(|&r| (ring_id(r), ring_aborted(r))),
        }
    }

    /// True if buffer `id` is out and not given back.
    fn is_out(&self, id: u64) -> bool {
        self.ring
            .iter()
            .any(|&r| ring_id(r) == id && !ring_aborted(r))
            || self.staged.iter().any(|s| s.id == id && !s.aborted)
    }

    /// Why a commit of `id`, which is not the oldest buffer out, is refused.
    #[cold]
    fn refuse_commit(&self, id: BufferId) -> TransportError {
        match self.oldest() {
            Some((oldest, _)) if self.is_out(id.0) => TransportError::OutOfOrder {
                descriptor: self.inner.descriptor.clone(),
                given: id,
                oldest: BufferId(oldest),
            },
            _ => self.unknown(id),
        }
    }

    /// Removes aborted entries that nothing later depends on (see
    /// [`Self::settle_aborted_slow`]); nothing to do in the common case.
    #[inline]
    fn settle_aborted(&mut self) {
        if self.oldest().is_some_and(|o| o.1) || self.newest().is_some_and(|o| o.1) {
            self.settle_aborted_slow();
        }
    }

    /// Removes aborted entries that nothing later depends on: those at the
    /// end are forgotten; those at the front are published as discarded
    /// (ring slots of a live connection) or dropped.
    #[cold]
    fn settle_aborted_slow(&mut self) {
        loop {
            if self.staged.back().is_some_and(|s| s.aborted) {
                self.staged.pop_back();
            } else if self.staged.is_empty() && self.ring.back().is_some_and(|&r| ring_aborted(r)) {
                self.ring.pop_back();
            } else {
                break;
            }
        }
        loop {
            if self.ring.front().is_some_and(|&r| ring_aborted(r)) {
                self.ring.pop_front();
                if !self.ring_dead() {
                    let prod = self.prod.as_mut().expect("ring slot without a producer");
                    prod.publish_discard();
                }
            } else if self.ring.is_empty() && self.staged.front().is_some_and(|s| s.aborted) {
                self.staged.pop_front();
            } else {
                break;
            }
        }
    }

    /// [`SendSide::acquire`] when the fast path does not apply: the limit,
    /// a connection change, staging, or a wait for room. Out of line, so
    /// that the fast path stays small.
    #[inline(never)]
    fn acquire_slow(&mut self, timeout: Timeout) -> Result<RawBuf, TransportError> {
        let max = self.inner.config.send_buffers();
        if self.out_len() >= max as usize {
            return Err(TransportError::BufferLimit {
                descriptor: self.inner.descriptor.clone(),
                dir: "send",
                max,
                limit: "send_buffers",
                hint: "send or abort one first; an aborted buffer counts until those obtained before it are sent",
            });
        }
        let deadline = timeout.deadline();
        loop {
            if self.inner.stopping.load(Ordering::Acquire) {
                return Err(TransportError::NotOpen(self.inner.descriptor.clone()));
            }
            self.sync();
            let live = self.live();
            let staged_out = self.staged.len();
            if live && staged_out == 0 {
                // A ring slot, after whatever is staged.
                let dead = Arc::clone(self.conn.as_ref().expect("live"));
                let staged_clear = match self.drain_staged() {
                    Ok(b) => b,
                    Err(v) => {
                        self.on_violation(v);
                        continue;
                    }
                };
                let need = self.ring.len() as u64 + 1;
                let prod = self.prod.as_mut().expect("live connection with tx ring");
                match prod.has_space_for(need) {
                    Ok(true) if staged_clear => return Ok(self.reserve_ring()),
                    Ok(_) => {
                        let want = if staged_clear { need } else { 1 };
                        match prod.wait_space_for(want, deadline, self.spin, &dead.dead) {
                            Ok(WaitOutcome::TimedOut) => return Err(TransportError::Timeout),
                            Ok(_) => {}
                            Err(v) => self.on_violation(v),
                        }
                    }
                    Err(v) => self.on_violation(v),
                }
                continue;
            }
            // Private memory: no live connection, or staged buffers are out
            // and this one must follow them.
            let seen = if self.ring.is_empty() {
                self.gen
            } else {
                self.inner.generation.load(Ordering::Acquire)
            };
            {
                let link = lock(&self.inner.link);
                if link.staged.len() + staged_out < self.inner.config.send_buffers() as usize {
                    drop(link);
                    return Ok(self.stage_private());
                }
            }
            if live && self.ring.is_empty() {
                // Staging is full and a live ring can take some of it.
                match self.drain_staged() {
                    Ok(true) => continue,
                    Ok(false) => {}
                    Err(v) => {
                        self.on_violation(v);
                        continue;
                    }
                }
                let dead = Arc::clone(self.conn.as_ref().expect("live"));
                let prod = self.prod.as_mut().expect("live connection with tx ring");
                match prod.wait_space(deadline, self.spin, &dead.dead) {
                    Ok(WaitOutcome::TimedOut) => return Err(TransportError::Timeout),
                    Ok(_) => {}
                    Err(v) => self.on_violation(v),
                }
                continue;
            }
            if deadline.passed() {
                return Err(TransportError::Timeout);
            }
            self.inner.wait_link_change(seen, deadline);
        }
    }
}

impl SendSide for IpcSender {
    fn acquire(&mut self, timeout: Timeout) -> Result<RawBuf, TransportError> {
        // Fast path: below the limit, same connection, alive, nothing
        // staged, a slot free. No lock, no reference count, no system call.
        if self.out_len() < self.inner.config.send_buffers() as usize
            && self.staged.is_empty()
            && self.inner.generation.load(Ordering::Acquire) == self.gen
            && self.inner.staged_len.load(Ordering::Relaxed) == 0
        {
            let need = self.ring.len() as u64 + 1;
            if let (Some(conn), Some(prod)) = (&self.conn, &mut self.prod) {
                if !conn.dead.load(Ordering::Acquire)
                    && matches!(prod.has_space_for(need), Ok(true))
                {
                    return Ok(self.reserve_ring());
                }
            }
        }
        self.acquire_slow(timeout)
    }

    fn commit(&mut self, id: BufferId, len: usize, erase: bool) -> Result<(), TransportError> {
        let is_ring = match self.ring.front() {
            Some(&r) if r == id.0 << 1 => true,
            Some(_) => return Err(self.refuse_commit(id)),
            None => match self.staged.front() {
                Some(s) if s.id == id.0 && !s.aborted => false,
                _ => return Err(self.refuse_commit(id)),
            },
        };
        let size = self.size();
        if len > size {
            return Err(TransportError::LengthTooLarge { len, size });
        }
        let flags = if erase { ring::FLAG_ERASE } else { 0 };
        let lost = if is_ring {
            self.ring.pop_front();
            // Never copied out, never published once its connection is
            // dead: the departed peer may have written into it.
            let dead = self.ring_dead();
            if !dead {
                let prod = self.prod.as_mut().expect("ring slot without a producer");
                if prod.publish(len, flags) {
                    self.inner.woke_peer.store(true, Ordering::Relaxed);
                }
                self.count(len);
            }
            dead
        } else {
            let mut data = self.staged.pop_front().expect("front checked").data;
            data.truncate(len);
            // Ring slots out come first, so none is left.
            self.inner.stage(Staged { data, erase });
            self.count(len);
            self.sync();
            if let Err(v) = self.drain_staged() {
                self.on_violation(v);
            }
            false
        };
        // Decided before anything is built: a large `Result` kept across
        // this call cost a store-forwarding stall on every commit.
        self.settle_aborted();
        if lost {
            return Err(TransportError::BufferLost(self.inner.descriptor.clone()));
        }
        Ok(())
    }

    fn abort(&mut self, id: BufferId) -> Result<(), TransportError> {
        if let Some(r) = self.ring.iter_mut().find(|r| **r == id.0 << 1) {
            *r |= 1;
        } else if let Some(s) = self.staged.iter_mut().find(|s| s.id == id.0 && !s.aborted) {
            s.aborted = true;
        } else {
            return Err(self.unknown(id));
        }
        self.settle_aborted();
        Ok(())
    }

    fn flush(&mut self, timeout: Timeout) -> Result<(), TransportError> {
        let deadline = timeout.deadline();
        loop {
            if self.inner.stopping.load(Ordering::Acquire) {
                return Err(TransportError::NotOpen(self.inner.descriptor.clone()));
            }
            // A connection that ended: what it consumed was delivered, what
            // it did not is lost (reported once).
            if let (Some(c), Some(p)) = (&self.conn, &mut self.prod) {
                if c.dead.load(Ordering::Acquire) && lock(&self.inner.link).staged.is_empty() {
                    let drained = p.drained().unwrap_or(false);
                    let report = !drained && !self.loss_reported;
                    if self.ring.is_empty() {
                        self.conn = None;
                        self.prod = None;
                        self.gen = u64::MAX;
                    } else {
                        // Its reserved slots are still out (and will be
                        // lost at their commit): keep the mapping.
                        self.loss_reported = true;
                    }
                    return if report {
                        Err(TransportError::Disconnected(self.inner.descriptor.clone()))
                    } else {
                        Ok(())
                    };
                }
            }
            self.sync();
            if self.live() {
                let conn = Arc::clone(self.conn.as_ref().expect("live"));
                match self.drain_staged() {
                    Ok(true) => {
                        let prod = self.prod.as_mut().expect("tx ring");
                        match prod.drained() {
                            Ok(true) => return Ok(()),
                            Ok(false) => {}
                            Err(v) => {
                                self.on_violation(v);
                                continue;
                            }
                        }
                        match prod.wait_drained(deadline, self.spin, &conn.dead) {
                            Ok(WaitOutcome::TimedOut) => return Err(TransportError::Timeout),
                            Ok(_) => continue,
                            Err(v) => self.on_violation(v),
                        }
                    }
                    Ok(false) => {
                        let prod = self.prod.as_mut().expect("tx ring");
                        match prod.wait_space(deadline, self.spin, &conn.dead) {
                            Ok(WaitOutcome::TimedOut) => return Err(TransportError::Timeout),
                            Ok(_) => continue,
                            Err(v) => self.on_violation(v),
                        }
                    }
                    Err(v) => self.on_violation(v),
                }
                continue;
            }
            // No peer and nothing staged for the next one: every buffer
            // sent so far has been taken (or reported lost above), so
            // there is nothing to wait for.
            if lock(&self.inner.link).staged.is_empty() {
                return Ok(());
            }
            if deadline.passed() {
                return Err(TransportError::Timeout);
            }
            let seen = if self.ring.is_empty() {
                self.gen
            } else {
                self.inner.generation.load(Ordering::Acquire)
            };
            self.inner.wait_link_change(seen, deadline);
        }
    }

    fn is_connected(&mut self) -> bool {
        self.sync();
        self.live()
    }

    fn outstanding(&mut self) -> u64 {
        match (&self.conn, &mut self.prod) {
            (Some(c), Some(p)) if !c.dead.load(Ordering::Acquire) => {
                // The count as last seen can only be too high: below 2 it
                // answers without reading the consumer's cache line (the
                // common case when the peer keeps up, e.g. ping-pong).
                if p.outstanding() < 2 {
                    return p.outstanding();
                }
                // A `head` that breaks the ring's rules is caught (and the
                // connection dropped) by the next acquire; here it only
                // means "not busy".
                p.outstanding_now().unwrap_or(0)
            }
            _ => 0,
        }
    }
}

impl Drop for IpcSender {
    fn drop(&mut self) {
        self.inner.tx_claimed.store(false, Ordering::Release);
    }
}
