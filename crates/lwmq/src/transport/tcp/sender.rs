//! The application's send side of a `tcp://` transport.
//!
//! Buffers are private memory (`writer.rs`), so there is no "buffer of a
//! dead connection": a buffer obtained at any time is sent on whatever
//! connection is live when it is committed, or staged until one is. Up to
//! `MaxPendingSendBuffers` are out at once, each with an id; they are
//! committed strictly in the order obtained (another first is
//! [`TransportError::OutOfOrder`] and changes nothing), and a buffer given
//! back with `abort` is free again at once, wherever it was among those
//! out (no position in a shared ring to keep).
//!
//! A commit writes the frame at once, together with anything queued before
//! it, in one vectored write; only when the socket is full or the peer's
//! credits are used up does a frame wait (for the I/O thread's
//! `EPOLLOUT`, or for credits brought in by whoever reads).
//!
//! [`SendSide::send_parts`] skips the buffer: when nothing else waits to
//! be written and the peer has a credit, the frame goes to the socket from
//! the caller's memory (decision 163), the sender having first read what
//! the peer sent, as the reader of record (decision 164).

use std::collections::VecDeque;
use std::io::IoSlice;
use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard};
use std::time::Duration;

use rustix::event::{PollFd, PollFlags};
use rustix::io::Errno;
use rustix::net::{SendAncillaryBuffer, SendFlags};

use super::conn::Conn;
use super::proto::HEADER_LEN;
use super::reader::{Goal, ReadOutcome};
use super::writer::{Outgoing, TxState};
use super::{lock, Inner};
use crate::timeout::{Deadline, Timeout};
use crate::transport::{BufferId, RawBuf, SendSide, TransportError};

/// Longest single sleep of a waiting sender before it re-checks.
const WAIT_SLICE: Duration = Duration::from_millis(100);

/// The send side of a `tcp://` transport.
#[derive(Debug)]
pub struct TcpSender {
    inner: Arc<Inner>,
    /// Buffers out, oldest first.
    out: VecDeque<(u64, Vec<u8>)>,
    next_id: u64,
    sent: u64,
    bytes: u64,
}

impl TcpSender {
    pub(super) fn new(inner: Arc<Inner>) -> Self {
        Self {
            out: VecDeque::new(),
            next_id: 0,
            sent: inner.stats.sent.0.load(Ordering::Relaxed),
            bytes: inner.stats.sent.1.load(Ordering::Relaxed),
            inner,
        }
    }

    fn unknown(&self, id: BufferId) -> TransportError {
        TransportError::UnknownBuffer {
            descriptor: self.inner.descriptor.clone(),
            dir: "send",
            id,
        }
    }

    fn not_open(&self) -> TransportError {
        TransportError::NotOpen(self.inner.descriptor.clone())
    }

    /// Waits until something changes on the send half, or a slice of the
    /// time to `deadline` passes. The waiter does the I/O it waits for when
    /// nobody else is doing it (see the module docs): with frames waiting
    /// for credits (or a FLUSH unanswered) it reads the socket, with frames
    /// waiting for room it writes them as the socket drains; otherwise it
    /// sleeps until the thread that does it reports progress.
    fn wait<'a>(
        &'a self,
        tx: MutexGuard<'a, TxState>,
        deadline: Deadline,
    ) -> MutexGuard<'a, TxState> {
        let inner = &*self.inner;
        let slice = deadline.slice(WAIT_SLICE);
        let Some(conn) = tx.live().cloned() else {
            return sleep(inner, tx, slice);
        };
        if tx.needs_peer() {
            drop(tx);
            if let Ok(mut r) = conn.reader.try_lock() {
                // Read ourselves (the I/O thread stays away meanwhile).
                let was_app = r.app_mode;
                if !was_app {
                    r.app_mode = true;
                    conn.set_interest(inner, |i| i.read = false);
                }
                if let ReadOutcome::Empty { delivered: 0 } = r.read(&conn, inner, Goal::Drain) {
                    let tx = lock(&inner.tx);
                    if tx.needs_peer() && tx.live().is_some() {
                        drop(tx);
                        let mut p = [PollFd::new(&conn.sock, PollFlags::IN)];
                        let _ = crate::sys::socket::poll(&mut p, Some(slice));
                        r.read(&conn, inner, Goal::Drain);
                    }
                }
                if !was_app {
                    r.app_mode = false;
                    conn.set_interest(inner, |i| i.read = true);
                }
                drop(r);
                inner.reader_released(&conn);
                return lock(&inner.tx);
            }
            // Someone else reads: it reports credits on the condition
            // variable. Make sure it keeps reading once it lets go.
            conn.io_wanted.fetch_add(1, Ordering::SeqCst);
            conn.ensure_reading(inner);
            let tx = lock(&inner.tx);
            let tx = if tx.needs_peer() {
                sleep(inner, tx, slice)
            } else {
                tx
            };
            conn.io_wanted.fetch_sub(1, Ordering::SeqCst);
            return tx;
        }
        if tx.waits_for_room() {
            // Write ourselves as the socket drains, instead of waking the
            // I/O thread for it.
            let mut tx = tx;
            conn.set_interest(inner, |i| i.write = false);
            drop(tx);
            let mut p = [PollFd::new(&conn.sock, PollFlags::OUT)];
            let _ = crate::sys::socket::poll(&mut p, Some(slice));
            tx = lock(&inner.tx);
            // Re-arms the I/O thread if the socket is still full.
            tx.try_write(inner);
            return tx;
        }
        sleep(inner, tx, slice)
    }
}

/// Reads what the peer sent (credits, in a one-way stream) without
/// blocking, and stays the reader of record if nobody else reads: while
/// this thread keeps sending, the I/O thread is not woken for every credit
/// frame (one wake-up of another thread per message, on the core that also
/// does the sending). The I/O thread's tick takes reading back once a
/// heartbeat interval (at most a second) passes.
fn read_inline(inner: &Inner, conn: &Arc<Conn>) {
    let Ok(mut r) = conn.reader.try_lock() else {
        return;
    };
    if !r.app_mode {
        r.app_mode = true;
        conn.set_interest(inner, |i| i.read = false);
    }
    r.read(conn, inner, Goal::Drain);
    drop(r);
    inner.reader_released(conn);
}

/// Writes the frame `hdr` + `parts` to `conn`'s socket from the caller's
/// memory until it is all written, the connection ends or `deadline`
/// passes (waiting for room as the socket drains); returns the bytes
/// written. The caller set `TxState::through`, so nothing else writes to
/// the socket meanwhile.
fn write_through(
    inner: &Inner,
    conn: &Conn,
    hdr: &[u8; HEADER_LEN],
    parts: &[&[u8]],
    deadline: Deadline,
) -> usize {
    let total = HEADER_LEN + parts.iter().map(|p| p.len()).sum::<usize>();
    let mut done = 0;
    let mut iov: Vec<IoSlice<'_>> = Vec::with_capacity(parts.len() + 1);
    while done < total {
        iov.clear();
        let mut skip = done;
        for piece in std::iter::once(&hdr[..]).chain(parts.iter().copied()) {
            if skip >= piece.len() {
                skip -= piece.len();
                continue;
            }
            iov.push(IoSlice::new(&piece[skip..]));
            skip = 0;
        }
        let r = rustix::net::sendmsg(
            &conn.sock,
            &iov,
            &mut SendAncillaryBuffer::default(),
            SendFlags::NOSIGNAL,
        );
        match r {
            Ok(n) => {
                done += n;
                conn.last_tx.store(inner.now_ns(), Ordering::Release);
            }
            Err(Errno::INTR) => {}
            Err(Errno::AGAIN) => {
                if conn.is_dead() || deadline.passed() {
                    break;
                }
                let mut p = [PollFd::new(&conn.sock, PollFlags::OUT)];
                let _ = crate::sys::socket::poll(&mut p, Some(deadline.slice(WAIT_SLICE)));
            }
            Err(e) => {
                conn.kill(inner, super::conn::io_failure(e));
                break;
            }
        }
    }
    done
}

/// Sleeps on the send half's condition variable for at most `slice`.
fn sleep<'a>(
    inner: &'a Inner,
    tx: MutexGuard<'a, TxState>,
    slice: Duration,
) -> MutexGuard<'a, TxState> {
    inner.wait_tx(tx, slice)
}

impl SendSide for TcpSender {
    fn acquire(&mut self, timeout: Timeout) -> Result<RawBuf, TransportError> {
        let inner = &*self.inner;
        let max = inner.config.send_buffers();
        if self.out.len() >= max as usize {
            return Err(TransportError::BufferLimit {
                descriptor: inner.descriptor.clone(),
                dir: "send",
                max,
                limit: "send_buffers",
                hint: "send or abort one first",
            });
        }
        let deadline = timeout.deadline();
        let mut tx = lock(&inner.tx);
        let mut buf = loop {
            if inner.stopping() {
                return Err(self.not_open());
            }
            if let Some(b) = tx.free.pop() {
                break b;
            }
            if tx.total < max as usize {
                tx.total += 1;
                break vec![0; inner.config.buffer_size()];
            }
            // Every buffer is out or queued: wait for a write to free one.
            if deadline.passed() {
                return Err(TransportError::Timeout);
            }
            tx = self.wait(tx, deadline);
        };
        drop(tx);
        let id = self.next_id;
        self.next_id += 1;
        let raw = RawBuf {
            ptr: buf.as_mut_ptr(),
            len: buf.len(),
            id: BufferId(id),
        };
        self.out.push_back((id, buf));
        Ok(raw)
    }

    fn commit(&mut self, id: BufferId, len: usize, erase: bool) -> Result<(), TransportError> {
        match self.out.front() {
            Some((front, _)) if *front == id.0 => {}
            Some((oldest, _)) if self.out.iter().any(|(i, _)| *i == id.0) => {
                return Err(TransportError::OutOfOrder {
                    descriptor: self.inner.descriptor.clone(),
                    given: id,
                    oldest: BufferId(*oldest),
                })
            }
            _ => return Err(self.unknown(id)),
        }
        let size = self.inner.config.buffer_size();
        if len > size {
            return Err(TransportError::LengthTooLarge { len, size });
        }
        let (_, buf) = self.out.pop_front().expect("front checked");
        self.count_sent(len);
        let inner = &*self.inner;
        let mut tx = lock(&inner.tx);
        tx.queue.push_back(Outgoing::new(buf, len, erase));
        tx.try_write(inner);
        Ok(())
    }

    fn send_parts(&mut self, parts: &[&[u8]], wait: Timeout) -> Result<bool, TransportError> {
        let inner = Arc::clone(&self.inner);
        let inner = &*inner;
        let len = parts.iter().map(|p| p.len()).sum::<usize>();
        let size = inner.config.buffer_size();
        if len > size {
            return Err(TransportError::LengthTooLarge { len, size });
        }
        // A buffer obtained before goes first.
        if !self.out.is_empty() {
            return Ok(false);
        }
        let deadline = wait.deadline();
        if let Some(conn) = inner.current() {
            read_inline(inner, &conn);
        }
        let mut tx = lock(&inner.tx);
        let conn = loop {
            if inner.stopping() {
                return Ok(false);
            }
            let Some(conn) = tx.live().cloned() else {
                return Ok(false);
            };
            if !tx.queue.is_empty() || tx.ctrl_pending() {
                tx.try_write(inner);
            }
            if tx.queue.is_empty() && !tx.ctrl_pending() && tx.credits > 0 {
                break conn;
            }
            if deadline.passed() {
                return Ok(false);
            }
            tx.wants_credit = true;
            tx = self.wait(tx, deadline);
            tx.wants_credit = false;
        };
        let hdr = tx.start_one(len, false);
        tx.through = true;
        conn.set_interest(inner, |i| i.write = false);
        drop(tx);
        let done = write_through(inner, &conn, &hdr, parts, deadline);
        let mut tx = lock(&inner.tx);
        tx.through = false;
        self.count_sent(len);
        if done == HEADER_LEN + len {
            tx.written_frames += 1;
        } else if tx.live().is_some_and(|c| Arc::ptr_eq(c, &conn)) {
            // Out of time with the connection up: the rest goes from a
            // copy, as a frame cut short by a full socket does. Every
            // buffer is free (none out, none queued), so one is at hand.
            let mut buf = tx.free.pop().unwrap_or_else(|| {
                tx.total += 1;
                vec![0; size]
            });
            let mut at = 0;
            for p in parts {
                buf[at..at + p.len()].copy_from_slice(p);
                at += p.len();
            }
            tx.queue.push_back(Outgoing::resumed(buf, len, hdr, done));
        }
        // Otherwise the connection ended under the frame: it is lost with
        // it, as a committed frame in flight is (`flush` reports it).
        tx.try_write(inner);
        drop(tx);
        inner.notify_tx();
        Ok(true)
    }

    fn send_parts_from(&self) -> Option<usize> {
        // Half a buffer (two of them do not fit in one), at most 64 KiB
        // (a copy of that costs about as much as the `sendmsg` it would
        // share); decision 163.
        Some((self.inner.config.buffer_size() / 2).min(64 * 1024))
    }

    fn abort(&mut self, id: BufferId) -> Result<(), TransportError> {
        let Some(i) = self.out.iter().position(|(i, _)| *i == id.0) else {
            return Err(self.unknown(id));
        };
        let (_, buf) = self.out.remove(i).expect("found");
        lock(&self.inner.tx).free.push(buf);
        self.inner.notify_tx();
        Ok(())
    }

    fn flush(&mut self, timeout: Timeout) -> Result<(), TransportError> {
        let inner = &*self.inner;
        let deadline = timeout.deadline();
        let mut tx = lock(&inner.tx);
        loop {
            if inner.stopping() {
                return Err(self.not_open());
            }
            match tx.live().cloned() {
                // Dead but not yet detached: the I/O thread is settling
                // what it lost (`TxState::detach`); wait for that.
                None if tx.conn.is_some() => {}
                None => {
                    // What a connection that ended had not confirmed is
                    // lost: reported once.
                    if std::mem::take(&mut tx.lost_unreported) {
                        return Err(TransportError::Disconnected(inner.descriptor.clone()));
                    }
                    // No peer and nothing staged: nothing to wait for.
                    if tx.queue.is_empty() {
                        return Ok(());
                    }
                }
                Some(_) => {
                    if !tx.queue.is_empty() {
                        tx.try_write(inner);
                    } else if tx.taken() >= tx.sent {
                        return Ok(());
                    } else if tx.flush_asked.is_none() {
                        tx.ask_flush();
                        tx.try_write(inner);
                        continue;
                    }
                }
            }
            if deadline.passed() {
                return Err(TransportError::Timeout);
            }
            tx = self.wait(tx, deadline);
        }
    }

    fn is_connected(&mut self) -> bool {
        lock(&self.inner.tx).live().is_some()
    }

    fn outstanding(&mut self) -> u64 {
        let tx = lock(&self.inner.tx);
        if tx.live().is_none() {
            return 0;
        }
        tx.outstanding()
    }
}

impl TcpSender {
    /// Counts a buffer of `len` bytes sent.
    fn count_sent(&mut self, len: usize) {
        self.sent += 1;
        self.bytes += len as u64;
        // One writer at a time (the claim), so plain stores suffice.
        let s = &self.inner.stats.sent;
        s.0.store(self.sent, Ordering::Relaxed);
        s.1.store(self.bytes, Ordering::Relaxed);
    }
}

impl Drop for TcpSender {
    fn drop(&mut self) {
        let mut tx = lock(&self.inner.tx);
        for (_, b) in self.out.drain(..) {
            tx.free.push(b);
        }
        drop(tx);
        self.inner.tx_claimed.store(false, Ordering::Release);
    }
}
