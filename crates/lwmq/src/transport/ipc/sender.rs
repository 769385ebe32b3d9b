//! The send side of the data path: acquire a slot of the outgoing ring (or
//! a staging buffer while no peer is connected), commit or abort it, flush.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::{lock, Conn, Inner, Staged};
use crate::ring::{self, Producer, Violation, WaitOutcome};
use crate::timeout::Timeout;
use crate::transport::{RawBuf, SendSide, TransportError};

#[derive(Debug)]
enum Held {
    None,
    Ring,
    Staged(Vec<u8>),
}

/// The send side of an `ipc://` transport.
#[derive(Debug)]
pub struct IpcSender {
    inner: Arc<Inner>,
    gen: u64,
    conn: Option<Arc<Conn>>,
    prod: Option<Producer>,
    held: Held,
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
            held: Held::None,
            sent: inner.stats.sent.0.load(Ordering::Relaxed),
            bytes: inner.stats.sent.1.load(Ordering::Relaxed),
            spin: Duration::ZERO,
            inner,
        }
    }

    /// Picks up a connection change (only while nothing is held).
    fn sync(&mut self) {
        if let Some(conn) = self.inner.changed_since(&mut self.gen) {
            self.prod = conn.as_ref().and_then(|c| {
                c.tx.map(|l| Producer::attach(Arc::clone(&c.map), l, c.fences))
            });
            self.conn = conn;
            self.spin = self.inner.spin();
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

    /// Moves staged buffers into the ring while there is room. True when
    /// nothing is left staged.
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
}

impl SendSide for IpcSender {
    fn acquire(&mut self, timeout: Timeout) -> Result<RawBuf, TransportError> {
        let size = self.inner.config.buffer_size();
        match &mut self.held {
            Held::Ring => {
                let p = self.prod.as_ref().expect("held ring buffer has a producer");
                return Ok(RawBuf {
                    ptr: p.next_buf(),
                    len: size,
                });
            }
            Held::Staged(v) => {
                return Ok(RawBuf {
                    ptr: v.as_mut_ptr(),
                    len: size,
                })
            }
            Held::None => {}
        }
        // Fast path: same connection, alive, nothing staged, a slot free.
        // No lock, no reference count, no system call.
        if self.inner.generation.load(Ordering::Acquire) == self.gen
            && self.inner.staged_len.load(Ordering::Relaxed) == 0
        {
            if let (Some(conn), Some(prod)) = (&self.conn, &mut self.prod) {
                if !conn.dead.load(Ordering::Acquire) && prod.has_space() == Ok(true) {
                    self.held = Held::Ring;
                    return Ok(RawBuf {
                        ptr: prod.next_buf(),
                        len: size,
                    });
                }
            }
        }
        let deadline = timeout.deadline();
        loop {
            if self.inner.stopping.load(Ordering::Acquire) {
                return Err(TransportError::NotOpen(self.inner.descriptor.clone()));
            }
            self.sync();
            if self.live() {
                let dead = Arc::clone(self.conn.as_ref().expect("live"));
                let staged_clear = match self.drain_staged() {
                    Ok(b) => b,
                    Err(v) => {
                        self.on_violation(v);
                        continue;
                    }
                };
                let prod = self.prod.as_mut().expect("live connection with tx ring");
                match prod.has_space() {
                    Ok(true) if staged_clear => {
                        self.held = Held::Ring;
                        return Ok(RawBuf {
                            ptr: prod.next_buf(),
                            len: size,
                        });
                    }
                    Ok(_) => match prod.wait_space(deadline, self.spin, &dead.dead) {
                        Ok(WaitOutcome::TimedOut) => return Err(TransportError::Timeout),
                        Ok(_) => continue,
                        Err(v) => self.on_violation(v),
                    },
                    Err(v) => self.on_violation(v),
                }
                continue;
            }
            // No live connection: stage locally.
            let seen = self.gen;
            {
                let link = lock(&self.inner.link);
                if link.staged.len() < self.inner.config.send_buffers() as usize {
                    drop(link);
                    self.held = Held::Staged(vec![0u8; size]);
                    let Held::Staged(v) = &mut self.held else {
                        unreachable!()
                    };
                    return Ok(RawBuf {
                        ptr: v.as_mut_ptr(),
                        len: size,
                    });
                }
            }
            if deadline.passed() {
                return Err(TransportError::Timeout);
            }
            self.inner.wait_link_change(seen, deadline);
        }
    }

    fn commit(&mut self, len: usize, erase: bool) -> Result<(), TransportError> {
        let size = self.inner.config.buffer_size();
        if len > size {
            return Err(TransportError::LengthTooLarge { len, size });
        }
        match std::mem::replace(&mut self.held, Held::None) {
            Held::None => Err(TransportError::Control {
                descriptor: self.inner.descriptor.clone(),
                what: "no buffer acquired (rule: get a buffer before sending it)".into(),
            }),
            Held::Ring => {
                let prod = self.prod.as_mut().expect("held ring buffer has a producer");
                if self
                    .conn
                    .as_ref()
                    .is_some_and(|c| c.dead.load(Ordering::Acquire))
                {
                    // Not yet published: keep it for the next connection.
                    let mut data = vec![0u8; len];
                    // SAFETY: next_buf points at `size >= len` bytes that
                    // stay mapped while `prod` lives.
                    unsafe {
                        std::ptr::copy_nonoverlapping(prod.next_buf(), data.as_mut_ptr(), len)
                    };
                    self.inner.stage(Staged { data, erase });
                } else {
                    prod.publish(len, if erase { ring::FLAG_ERASE } else { 0 });
                }
                self.count(len);
                Ok(())
            }
            Held::Staged(mut data) => {
                data.truncate(len);
                self.inner.stage(Staged { data, erase });
                self.count(len);
                self.sync();
                if let Err(v) = self.drain_staged() {
                    self.on_violation(v);
                }
                Ok(())
            }
        }
    }

    fn abort(&mut self) {
        self.held = Held::None;
    }

    fn flush(&mut self, timeout: Timeout) -> Result<(), TransportError> {
        let deadline = timeout.deadline();
        loop {
            if self.inner.stopping.load(Ordering::Acquire) {
                return Err(TransportError::NotOpen(self.inner.descriptor.clone()));
            }
            if !matches!(self.held, Held::None) {
                return Err(TransportError::Control {
                    descriptor: self.inner.descriptor.clone(),
                    what: "a buffer is still acquired (rule: send or abort it before flushing)"
                        .into(),
                });
            }
            // A connection that ended: what it consumed was delivered, what
            // it did not is lost (reported once).
            if let (Some(c), Some(p)) = (&self.conn, &mut self.prod) {
                if c.dead.load(Ordering::Acquire) && lock(&self.inner.link).staged.is_empty() {
                    let drained = p.drained().unwrap_or(false);
                    self.conn = None;
                    self.prod = None;
                    self.gen = u64::MAX;
                    return if drained {
                        Ok(())
                    } else {
                        Err(TransportError::Disconnected(self.inner.descriptor.clone()))
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
            if deadline.passed() {
                return Err(TransportError::Timeout);
            }
            self.inner.wait_link_change(self.gen, deadline);
        }
    }

    fn is_connected(&mut self) -> bool {
        if matches!(self.held, Held::None) {
            self.sync();
        }
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
