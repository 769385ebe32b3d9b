//! The receive side of the data path: take the next published slot of the
//! incoming ring, dispose it.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::{Conn, Inner};
use crate::ring::{Consumer, WaitOutcome};
use crate::timeout::Timeout;
use crate::transport::{RawBuf, ReceiveSide, TransportError};

/// The receive side of an `ipc://` transport.
#[derive(Debug)]
pub struct IpcReceiver {
    inner: Arc<Inner>,
    gen: u64,
    conn: Option<Arc<Conn>>,
    cons: Option<Consumer>,
    held: Option<(*const u8, usize)>,
    received: u64,
    bytes: u64,
    spin: Duration,
}

// SAFETY: the raw pointer in `held` points into `conn`'s mapping, which the
// receiver owns an `Arc` to; moving the receiver to another thread moves the
// `Arc` with it, and the mapping itself is `Send + Sync`.
unsafe impl Send for IpcReceiver {}

impl IpcReceiver {
    pub(super) fn new(inner: Arc<Inner>) -> Self {
        Self {
            gen: u64::MAX,
            conn: None,
            cons: None,
            held: None,
            received: inner.stats.received.0.load(Ordering::Relaxed),
            bytes: inner.stats.received.1.load(Ordering::Relaxed),
            spin: Duration::ZERO,
            inner,
        }
    }

    fn sync(&mut self) {
        if let Some(conn) = self.inner.changed_since(&mut self.gen) {
            self.cons = conn.as_ref().and_then(|c| {
                c.rx.map(|l| Consumer::attach(Arc::clone(&c.map), l, c.fences))
            });
            self.conn = conn;
            self.spin = self.inner.spin();
        }
    }
}

impl ReceiveSide for IpcReceiver {
    fn receive(&mut self, timeout: Timeout) -> Result<RawBuf, TransportError> {
        if let Some((ptr, len)) = self.held {
            return Ok(RawBuf {
                ptr: ptr as *mut u8,
                len,
            });
        }
        let deadline = timeout.deadline();
        loop {
            if self.inner.stopping.load(Ordering::Acquire) {
                return Err(TransportError::NotOpen(self.inner.descriptor.clone()));
            }
            self.sync();
            if let (Some(conn), Some(cons)) = (&self.conn, &mut self.cons) {
                if !conn.dead.load(Ordering::Acquire) {
                    let r = match cons.has_data() {
                        Ok(true) => cons.peek().map(Some),
                        Ok(false) => match cons.wait_data(deadline, self.spin, &conn.dead) {
                            Ok(WaitOutcome::TimedOut) => return Err(TransportError::Timeout),
                            Ok(_) => Ok(None),
                            Err(v) => Err(v),
                        },
                        Err(v) => Err(v),
                    };
                    match r {
                        Ok(Some((ptr, len))) => {
                            self.held = Some((ptr, len));
                            self.received += 1;
                            self.bytes += len as u64;
                            let s = &self.inner.stats;
                            s.received.0.store(self.received, Ordering::Relaxed);
                            s.received.1.store(self.bytes, Ordering::Relaxed);
                            return Ok(RawBuf {
                                ptr: ptr as *mut u8,
                                len,
                            });
                        }
                        Ok(None) => {}
                        Err(v) => {
                            let c = Arc::clone(conn);
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

    fn dispose(&mut self, erase: bool) {
        if let (Some((_, len)), Some(cons)) = (self.held.take(), self.cons.as_mut()) {
            cons.release(len, erase);
        }
    }
}

impl Drop for IpcReceiver {
    fn drop(&mut self) {
        self.inner.rx_claimed.store(false, Ordering::Release);
    }
}
