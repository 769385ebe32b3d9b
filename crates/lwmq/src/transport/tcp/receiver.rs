//! The application's receive side of a `tcp://` transport.
//!
//! Received buffers wait in the ready queue in arrival order and are handed
//! out up to `MaxPendingReceiveBuffers` at once; they may be given back in
//! any order. Each one is private memory the reader filled, so a buffer
//! received whole stays good after its connection ends: it is still
//! delivered.
//!
//! A `receive` that finds nothing ready becomes the reader of the socket
//! (`conn.rs`): it reads, and if nothing is there, polls the socket itself
//! (after spinning for the transport's spin duration, 50 µs by default,
//! looking at the socket every 5 µs meanwhile), so
//! that the bytes go from the kernel to the application without waking
//! another thread. If another thread is reading, it sleeps until that one
//! delivers something or lets go.
//!
//! `interrupt_receive` ends a wait at once: the flag is checked before
//! every wait, under the lock of the condition variable a wait sleeps on,
//! and a receiver polling the socket polls the transport's wake-up eventfd
//! beside it.
//!
//! `dispose` frees the buffer and owes the peer a credit; the credit goes
//! out with the next frame this side writes, or at once when the receive
//! policy says the peer may run short (`Conn::credit_due`), or when it
//! answers a pending FLUSH (every buffer received before the FLUSH has
//! been disposed of), or when a `receive` finds the socket empty (this
//! side has caught up: the peer learns at once that it is not busy).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags};

use super::proto::{self, FrameType};
use super::reader::{Goal, ReadOutcome};
use super::{lock, Inner, Ready};
use crate::timeout::Timeout;
use crate::transport::{BufferId, RawBuf, ReceiveSide, TransportError};

/// Longest single poll of a waiting receiver before it re-checks.
const POLL_SLICE: Duration = Duration::from_millis(100);
/// Longest sleep while another thread reads.
const BUSY_SLICE: Duration = Duration::from_millis(10);
/// Polls (`receive` with a zero timeout) within this time of one that
/// found the socket empty do not read it again.
const ZERO_POLL_GAP: Duration = Duration::from_micros(50);
/// While a receiver spins, it reads the socket at most this often.
const SPIN_READ_GAP: Duration = Duration::from_micros(5);

/// A buffer handed out.
#[derive(Debug)]
struct Held {
    id: u64,
    buf: Vec<u8>,
    len: usize,
    erase: bool,
    conn_id: u64,
}

/// The receive side of a `tcp://` transport.
#[derive(Debug)]
pub struct TcpReceiver {
    inner: Arc<Inner>,
    held: Vec<Held>,
    next_id: u64,
    received: u64,
    bytes: u64,
    /// When a poll last found the socket empty.
    empty_poll: Option<Instant>,
}

impl TcpReceiver {
    pub(super) fn new(inner: Arc<Inner>) -> Self {
        Self {
            empty_poll: None,
            held: Vec::new(),
            next_id: 0,
            received: inner.stats.received.0.load(Ordering::Relaxed),
            bytes: inner.stats.received.1.load(Ordering::Relaxed),
            inner,
        }
    }

    fn hand_out(&mut self, r: Ready) -> RawBuf {
        let id = self.next_id;
        self.next_id += 1;
        self.received += 1;
        self.bytes += r.len as u64;
        let s = &self.inner.stats.received;
        s.0.store(self.received, Ordering::Relaxed);
        s.1.store(self.bytes, Ordering::Relaxed);
        let mut h = Held {
            id,
            buf: r.buf,
            len: r.len,
            erase: r.erase,
            conn_id: r.conn_id,
        };
        let raw = RawBuf {
            ptr: h.buf.as_mut_ptr(),
            len: h.len,
            id: BufferId(id),
        };
        self.held.push(h);
        raw
    }

    /// The first ready buffer and the reader epoch, under one lock.
    fn pop(&self) -> (Option<Ready>, u64) {
        let mut rx = lock(&self.inner.rx);
        (rx.ready.pop_front(), rx.reader_epoch)
    }
}

impl ReceiveSide for TcpReceiver {
    fn receive(&mut self, timeout: Timeout) -> Result<RawBuf, TransportError> {
        let inner = Arc::clone(&self.inner);
        let max = inner.config.receive_buffers();
        if self.held.len() >= max as usize {
            return Err(TransportError::BufferLimit {
                descriptor: inner.descriptor.clone(),
                dir: "receive",
                max,
                limit: "receive_buffers",
                hint: "dispose one first",
            });
        }
        let deadline = timeout.deadline();
        let spin = inner.spin();
        let mut spun = false;
        loop {
            let (ready, epoch) = self.pop();
            if let Some(r) = ready {
                return Ok(self.hand_out(r));
            }
            if inner.stopping() {
                return Err(TransportError::NotOpen(inner.descriptor.clone()));
            }
            // `interrupt_receive`: end this wait as if it timed out.
            if inner.take_rx_interrupt() {
                return Err(TransportError::Timeout);
            }
            // A caller polling in a loop (the messaging layer polls a few
            // hundred times before it waits) reads the socket once, not on
            // every poll: a system call per poll on both ends of a
            // ping-pong kept both cores busy, and the kernel's network
            // work waited for a scheduler tick (bimodal 64 B latency,
            // 6 us or 250 us).
            if timeout.is_zero() && self.empty_poll.is_some_and(|t| t.elapsed() < ZERO_POLL_GAP) {
                return Err(TransportError::Timeout);
            }
            let seen = inner.generation.load(Ordering::Acquire);
            let Some(conn) = inner.current() else {
                if deadline.passed() {
                    return Err(TransportError::Timeout);
                }
                inner.wait_link_change(seen, deadline);
                continue;
            };
            let Ok(mut r) = conn.reader.try_lock() else {
                // Another thread reads: it queues what it takes.
                if deadline.passed() {
                    return Err(TransportError::Timeout);
                }
                let rx = lock(&inner.rx);
                if rx.ready.is_empty()
                    && rx.reader_epoch == epoch
                    && !inner.stopping()
                    && !inner.rx_interrupt.load(Ordering::SeqCst)
                {
                    drop(inner.wait_rx(rx, deadline.slice(BUSY_SLICE)));
                }
                continue;
            };
            if !r.app_mode {
                r.app_mode = true;
                conn.set_interest(&inner, |i| i.read = false);
            }
            let mut out = r.read(&conn, &inner, Goal::FirstData);
            if matches!(out, ReadOutcome::Empty { delivered: 0 }) {
                // Caught up: what was disposed of goes back to the peer
                // now, so that it never waits for credits this side is
                // sitting on (and its "peer busy" estimate stays true).
                send_owed_credits(&inner, &conn);
            }
            if matches!(out, ReadOutcome::Empty { delivered: 0 }) && !spun && !spin.is_zero() {
                spun = true;
                // Looks at the socket every few microseconds, not in a
                // tight loop of system calls (see decision 105).
                let start = Instant::now();
                let mut last = start;
                while matches!(out, ReadOutcome::Empty { delivered: 0 }) {
                    let now = Instant::now();
                    if now - start >= spin {
                        break;
                    }
                    if now - last < SPIN_READ_GAP {
                        std::hint::spin_loop();
                        continue;
                    }
                    last = now;
                    out = r.read(&conn, &inner, Goal::FirstData);
                }
            }
            if matches!(out, ReadOutcome::Empty { delivered: 0 }) {
                if timeout.is_zero() {
                    self.empty_poll = Some(Instant::now());
                }
                if deadline.passed() {
                    drop(r);
                    inner.reader_released(&conn);
                    return Err(TransportError::Timeout);
                }
                let wake = inner.rx_wake();
                let mut p = [
                    PollFd::new(&conn.sock, PollFlags::IN),
                    PollFd::new(&wake, PollFlags::IN),
                ];
                let _ = crate::sys::socket::poll(&mut p, Some(deadline.slice(POLL_SLICE)));
                if !p[1].revents().is_empty() {
                    // An interrupt (the loop's check takes it), or a stale
                    // wake-up of one already taken.
                    inner.drain_rx_wake();
                }
            }
            drop(r);
            inner.reader_released(&conn);
        }
    }

    fn dispose(&mut self, id: BufferId, erase: bool) -> Result<(), TransportError> {
        let Some(i) = self.held.iter().position(|h| h.id == id.0) else {
            return Err(TransportError::UnknownBuffer {
                descriptor: self.inner.descriptor.clone(),
                dir: "receive",
                id,
            });
        };
        let mut h = self.held.swap_remove(i);
        if erase || h.erase {
            h.buf[..h.len].fill(0);
        }
        let inner = &*self.inner;
        let mut send = None;
        {
            let mut rx = lock(&inner.rx);
            rx.free.push(h.buf);
            if let Some(cur) = rx.cur.as_mut() {
                cur.conn.unsent.fetch_add(1, Ordering::AcqRel);
                let mut answer = None;
                if h.conn_id == cur.conn.id {
                    cur.outstanding = cur.outstanding.saturating_sub(1);
                    if cur.outstanding == 0 {
                        answer = cur.flush_pending.take();
                    }
                }
                if answer.is_some() || cur.conn.credit_due() {
                    send = Some((Arc::clone(&cur.conn), answer));
                }
            }
        }
        if let Some((conn, answer)) = send {
            let mut tx = lock(&inner.tx);
            if tx.live().is_some_and(|c| Arc::ptr_eq(c, &conn)) {
                tx.take_unsent_credits(&conn);
                if let Some(t) = answer {
                    tx.push_ctrl(&proto::token_frame(FrameType::Flushed, t));
                }
                tx.try_write(inner);
            }
        }
        Ok(())
    }
}

/// Sends the credits this side owes on `conn`, if any.
pub(super) fn send_owed_credits(inner: &Inner, conn: &Arc<super::conn::Conn>) {
    if conn.unsent.load(Ordering::Acquire) == 0 {
        return;
    }
    let mut tx = lock(&inner.tx);
    if tx.live().is_some_and(|c| Arc::ptr_eq(c, conn)) {
        tx.take_unsent_credits(conn);
        tx.try_write(inner);
    }
}

impl Drop for TcpReceiver {
    fn drop(&mut self) {
        // Given back as if disposed of, so the peer gets its credits.
        let ids: Vec<u64> = self.held.iter().map(|h| h.id).collect();
        for id in ids {
            let _ = self.dispose(BufferId(id), false);
        }
        self.inner.rx_claimed.store(false, Ordering::Release);
    }
}
