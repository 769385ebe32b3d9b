//! The receive side of the data path: take published slots of the incoming
//! ring, up to `MaxPendingReceiveBuffers` at once, and give them back in
//! any order.
//!
//! Taken slots `[head, next)` of the ring are listed in `held`, oldest
//! first; disposing one marks it, and `head` moves over the marked prefix
//! (the producer only ever sees it advance in order). A slot the producer
//! published as discarded is taken and marked at once, never handed out.
//! When the connection changes while buffers are held, the old ring (and
//! its mapping, which their pointers point into) is kept in `retired`
//! until each of them is disposed.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::{Conn, Inner};
use crate::ring::{Consumer, WaitOutcome};
use crate::timeout::Timeout;
use crate::transport::{BufferId, RawBuf, ReceiveSide, TransportError};

/// A taken slot.
#[derive(Debug)]
struct Held {
    /// `None` for a discarded slot (never handed out).
    id: Option<u64>,
    len: usize,
    /// The producer's erase flag, read once when the slot was taken.
    erase: bool,
    disposed: bool,
}

/// One ring and the slots taken from it.
#[derive(Debug)]
struct Taken {
    /// Keeps the connection (and the mapping the slots lie in) alive.
    conn: Arc<Conn>,
    cons: Consumer,
    /// Slots `[cons.head, cons.next)`, oldest first.
    held: VecDeque<Held>,
}

impl Taken {
    /// Marks buffer `id` disposed (zeroing it first if asked to), then
    /// releases the disposed prefix. False if `id` is not held here.
    fn dispose(&mut self, id: u64, erase: bool) -> bool {
        let Some(i) = self.held.iter().position(|h| h.id == Some(id)) else {
            return false;
        };
        let h = &mut self.held[i];
        if h.disposed {
            return false;
        }
        h.disposed = true;
        if erase || h.erase {
            let pos = self.cons.oldest_taken() + i as u64;
            self.cons.erase(pos, self.held[i].len);
        }
        self.release_prefix();
        true
    }

    /// Releases the disposed slots at the front of `held`.
    fn release_prefix(&mut self) {
        let mut n = 0;
        while self.held.front().is_some_and(|h| h.disposed) {
            self.held.pop_front();
            n += 1;
        }
        self.cons.release(n);
    }

    fn handed_out(&self) -> usize {
        self.held
            .iter()
            .filter(|h| h.id.is_some() && !h.disposed)
            .count()
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
                if old.handed_out() > 0 {
                    self.retired.push(old);
                }
            }
            self.current = conn.and_then(|c| {
                c.rx.map(|l| Taken {
                    cons: Consumer::attach(Arc::clone(&c.map), l, c.fences),
                    conn: c,
                    held: VecDeque::new(),
                })
            });
            self.spin = self.inner.spin();
        }
    }
}

impl ReceiveSide for IpcReceiver {
    fn receive(&mut self, timeout: Timeout) -> Result<RawBuf, TransportError> {
        let max = self.inner.config.receive_buffers();
        if self.out >= max as usize {
            return Err(TransportError::BufferLimit {
                descriptor: self.inner.descriptor.clone(),
                dir: "receive",
                max,
                limit: "MaxPendingReceiveBuffers",
                hint: "dispose one first",
            });
        }
        let deadline = timeout.deadline();
        loop {
            if self.inner.stopping.load(Ordering::Acquire) {
                return Err(TransportError::NotOpen(self.inner.descriptor.clone()));
            }
            self.sync();
            if let Some(t) = &mut self.current {
                if !t.conn.dead.load(Ordering::Acquire) {
                    let r = match t.cons.has_data() {
                        Ok(true) => t.cons.peek().map(Some),
                        Ok(false) => match t.cons.wait_data(deadline, self.spin, &t.conn.dead) {
                            Ok(WaitOutcome::TimedOut) => return Err(TransportError::Timeout),
                            Ok(_) => Ok(None),
                            Err(v) => Err(v),
                        },
                        Err(v) => Err(v),
                    };
                    match r {
                        Ok(Some(slot)) => {
                            t.cons.take();
                            if slot.discarded {
                                t.held.push_back(Held {
                                    id: None,
                                    len: 0,
                                    erase: false,
                                    disposed: true,
                                });
                                t.release_prefix();
                                continue;
                            }
                            let id = self.next_id;
                            self.next_id += 1;
                            t.held.push_back(Held {
                                id: Some(id),
                                len: slot.len,
                                erase: slot.erase,
                                disposed: false,
                            });
                            self.out += 1;
                            self.received += 1;
                            self.bytes += slot.len as u64;
                            let s = &self.inner.stats;
                            s.received.0.store(self.received, Ordering::Relaxed);
                            s.received.1.store(self.bytes, Ordering::Relaxed);
                            return Ok(RawBuf {
                                ptr: slot.ptr,
                                len: slot.len,
                                id: BufferId(id),
                            });
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
                    if self.retired[i].handed_out() == 0 {
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
