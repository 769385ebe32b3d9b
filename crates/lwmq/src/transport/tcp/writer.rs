//! The send half of a `tcp://` transport: its private buffers, the queue of
//! committed ones, control frames waiting to go out, and the writes.
//!
//! # Buffers
//!
//! The send side owns at most `MaxPendingSendBuffers` buffers of
//! `BufferSizeBytes`, allocated on first use and reused. A buffer is either
//! free, out (in the application's hands), or queued (committed and not yet
//! fully written). Once a frame is fully written the kernel holds a copy
//! and its buffer is free again (zeroed first if the sender asked to erase
//! it). So a stalled receiver can never make the sender hold more than
//! those buffers: acquire waits (up to its timeout) once they are all out
//! or queued.
//!
//! # Credits
//!
//! A DATA frame is *started* (its header made, one credit taken) only while
//! the peer's credit is above zero; a started frame stays first in line
//! until written. The peer grants one credit per receive buffer it frees,
//! so the frames in flight never exceed its receive buffers. Credits this
//! side owes the peer (`Conn::unsent`) go out as a CREDIT frame in the same
//! write as the next DATA frame, or on their own when the receive side's
//! policy says so (`Conn::credit_due`).
//!
//! # Writes
//!
//! [`TxState::try_write`] makes one `sendmsg` (with `MSG_NOSIGNAL`: a
//! closed peer never raises `SIGPIPE` in the application) of everything
//! writable, as a vector: the rest of a frame cut short by a full socket,
//! then the waiting control frames, then every frame the credits allow (up
//! to [`MAX_IOV`] pieces). Control frames only ever go between two DATA
//! frames. A full socket arms the I/O thread's `EPOLLOUT`; it is disarmed
//! when nothing writable is left.
//!
//! # A connection that ends
//!
//! A frame cut off in the middle is lost (the peer gets nothing of it).
//! Frames written whole but not yet confirmed may or may not have reached
//! the peer's application; they are not sent again (no duplicate, ever),
//! and `flush` reports the loss once ([`TxState::lost_unreported`]).
//! Frames not started stay queued for the next connection, like buffers
//! sent before the first peer exists.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use rustix::io::Errno;
use rustix::net::{SendAncillaryBuffer, SendFlags};

use super::conn::Conn;
use super::proto::{self, FrameType, Header, HEADER_LEN};
use super::Inner;

/// Most pieces in one `sendmsg` (the kernel's `UIO_MAXIOV` is 1024).
pub(super) const MAX_IOV: usize = 1024;

/// A committed buffer.
#[derive(Debug)]
pub(super) struct Outgoing {
    pub(super) buf: Vec<u8>,
    pub(super) len: usize,
    pub(super) erase: bool,
    hdr: [u8; HEADER_LEN],
    /// A credit was taken for it and its header made.
    started: bool,
    /// Bytes of header + payload written on the current connection.
    written: usize,
}

impl Outgoing {
    pub(super) fn new(buf: Vec<u8>, len: usize, erase: bool) -> Self {
        Self {
            buf,
            len,
            erase,
            hdr: [0; HEADER_LEN],
            started: false,
            written: 0,
        }
    }

    /// A frame the application began writing from its own memory
    /// (`TcpSender::send_parts`) and could not finish in time: its credit
    /// is taken and its header made, `written` bytes of header and payload
    /// are on the wire; the rest goes out from `buf` (a copy).
    pub(super) fn resumed(buf: Vec<u8>, len: usize, hdr: [u8; HEADER_LEN], written: usize) -> Self {
        Self {
            buf,
            len,
            erase: false,
            hdr,
            started: true,
            written,
        }
    }

    fn total(&self) -> usize {
        HEADER_LEN + self.len
    }
}

/// The header of a DATA frame of `len` bytes (at most the buffer size, so
/// at most 1 GiB: checked before).
fn data_header(len: usize, erase: bool) -> [u8; HEADER_LEN] {
    let flags = if erase { proto::FLAG_ERASE } else { 0 };
    Header::new(FrameType::Data, flags, 0, len as u32).encode()
}

/// What [`TxState::try_write`] ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WriteOutcome {
    /// Nothing writable is left (empty, or waiting for credits).
    Idle,
    /// The socket is full; the I/O thread takes over on `EPOLLOUT`.
    Full,
    /// No live connection.
    NoConnection,
}

/// The send half (see the module docs).
#[derive(Debug)]
pub(super) struct TxState {
    pub(super) free: Vec<Vec<u8>>,
    /// Buffers allocated so far (free, out or queued), at most the limit.
    pub(super) total: usize,
    pub(super) queue: VecDeque<Outgoing>,
    pub(super) conn: Option<Arc<Conn>>,
    ctrl: Vec<u8>,
    ctrl_off: usize,
    /// DATA frames the peer can take now.
    pub(super) credits: u64,
    /// DATA frames started on this connection.
    pub(super) sent: u64,
    /// Frames covered by the latest FLUSHED.
    pub(super) confirmed: u64,
    /// Credits the peer gave back on this connection (after its first
    /// grant): one per receive buffer it disposed of.
    returned: u64,
    /// The peer's receive buffers not in its first grant: buffers of an
    /// earlier connection it still held, whose disposal also returns a
    /// credit that stands for no frame of this connection.
    held_at_connect: u64,
    /// The FLUSH in flight: its token and the frames it covers.
    pub(super) flush_asked: Option<(u32, u64)>,
    next_token: u32,
    /// A connection ended with frames written and not confirmed; `flush`
    /// reports it once.
    pub(super) lost_unreported: bool,
    /// Frames written whole, and their bytes, since the transport was made.
    pub(super) written_frames: u64,
    /// The application is writing a frame from its own memory
    /// (`TcpSender::send_parts`): nothing else writes to the socket until
    /// it is done.
    pub(super) through: bool,
    /// The application waits for a credit to write a frame from its own
    /// memory (so the waiter reads credits in, as for a queued frame).
    pub(super) wants_credit: bool,
}

impl TxState {
    pub(super) fn new() -> Self {
        Self {
            free: Vec::new(),
            total: 0,
            queue: VecDeque::new(),
            conn: None,
            ctrl: Vec::new(),
            ctrl_off: 0,
            credits: 0,
            sent: 0,
            confirmed: 0,
            returned: 0,
            held_at_connect: 0,
            flush_asked: None,
            next_token: 0,
            lost_unreported: false,
            written_frames: 0,
            through: false,
            wants_credit: false,
        }
    }

    /// The live connection, if any.
    pub(super) fn live(&self) -> Option<&Arc<Conn>> {
        self.conn.as_ref().filter(|c| !c.is_dead())
    }

    /// Gives a buffer back to the free list, zeroed if asked.
    pub(super) fn release(&mut self, mut buf: Vec<u8>, erase: bool) {
        if erase {
            buf.fill(0);
        }
        self.free.push(buf);
    }

    /// Queues a control frame (it goes out before any DATA frame not yet
    /// started, after the one being written).
    pub(super) fn push_ctrl(&mut self, frame: &[u8]) {
        if self.ctrl_off == self.ctrl.len() {
            self.ctrl.clear();
            self.ctrl_off = 0;
        }
        self.ctrl.extend_from_slice(frame);
    }

    /// Adds the credits the receive side owes the peer as a CREDIT frame.
    pub(super) fn take_unsent_credits(&mut self, conn: &Conn) {
        let u = conn.unsent.swap(0, Ordering::AcqRel);
        if u > 0 {
            conn.granted.fetch_add(u64::from(u), Ordering::AcqRel);
            // At most `MaxPendingReceiveBuffers` (≤ 4096) are ever owed.
            self.push_ctrl(&proto::control(
                FrameType::Credit,
                u.min(u32::from(u16::MAX)) as u16,
            ));
        }
    }

    /// Sends a FLUSH for everything written so far; returns its token.
    pub(super) fn ask_flush(&mut self) -> u32 {
        self.next_token = self.next_token.wrapping_add(1);
        let t = self.next_token;
        self.flush_asked = Some((t, self.sent));
        self.push_ctrl(&proto::token_frame(FrameType::Flush, t));
        t
    }

    /// Credits from the peer. More than its receive buffers is a protocol
    /// violation (`Err` with the reason).
    pub(super) fn add_credits(&mut self, conn: &Conn, n: u64) -> Result<(), String> {
        self.credits += n;
        self.returned += n;
        let started_unwritten = self
            .queue
            .iter()
            .filter(|o| o.started && o.written == 0)
            .count();
        if self.credits + started_unwritten as u64 > u64::from(conn.peer_window) {
            return Err(format!(
                "peer granted {} credits but has only {} receive buffers",
                self.credits + started_unwritten as u64,
                conn.peer_window
            ));
        }
        Ok(())
    }

    /// Frames of this connection the peer has certainly taken: those a
    /// FLUSHED covered, or those its returned credits account for (a
    /// credit comes back when a receive buffer is disposed of; the credits
    /// of buffers it held from an earlier connection are discounted). The
    /// peer sends what it owes before it closes, so a peer that took
    /// everything and left is not reported as a loss.
    pub(super) fn taken(&self) -> u64 {
        self.confirmed
            .max(self.returned.saturating_sub(self.held_at_connect))
    }

    /// A FLUSHED from the peer: a token never sent is a violation; an older
    /// one (a flush that timed out) is ignored.
    pub(super) fn flushed(&mut self, token: u32) -> Result<(), String> {
        match self.flush_asked {
            Some((t, covers)) if t == token => {
                self.confirmed = self.confirmed.max(covers);
                self.flush_asked = None;
                Ok(())
            }
            _ if token.wrapping_sub(self.next_token) as i32 <= 0 => Ok(()),
            _ => Err(format!("peer answered FLUSH {token}, which was never sent")),
        }
    }

    /// True if progress needs something from the peer: frames wait for
    /// credits, or a FLUSH for its answer.
    pub(super) fn needs_peer(&self) -> bool {
        let starved =
            self.credits == 0 && (self.wants_credit || self.queue.iter().any(|o| !o.started));
        starved || (self.flush_asked.is_some() && self.queue.is_empty())
    }

    /// True if started frames wait for room in the socket.
    pub(super) fn waits_for_room(&self) -> bool {
        self.queue.front().is_some_and(|o| o.started) || self.ctrl_pending()
    }

    /// Committed buffers the peer has not given back yet: queued ones plus
    /// the credits it holds (an estimate: credits it still owes for
    /// buffers it freed count too).
    pub(super) fn outstanding(&self) -> u64 {
        let held_by_peer = self
            .live()
            .map_or(0, |c| u64::from(c.peer_window).saturating_sub(self.credits));
        self.queue.len() as u64 + held_by_peer
    }

    /// A new connection: per-connection counters start over.
    pub(super) fn attach(&mut self, conn: Arc<Conn>, first_credit: u64) {
        // A frame still being written from the application's memory is on
        // the old socket: it does not hold the new one back.
        self.through = false;
        self.held_at_connect = u64::from(conn.peer_window).saturating_sub(first_credit);
        self.conn = Some(conn);
        self.credits = first_credit;
        self.sent = 0;
        self.confirmed = 0;
        self.returned = 0;
        self.flush_asked = None;
        self.ctrl.clear();
        self.ctrl_off = 0;
    }

    /// The connection ended: drops the frame cut off in the middle, keeps
    /// the ones not started for the next connection. Returns how many
    /// frames were lost in the middle.
    pub(super) fn detach(&mut self, conn: &Arc<Conn>) -> u64 {
        if !self.conn.as_ref().is_some_and(|c| Arc::ptr_eq(c, conn)) {
            return 0;
        }
        self.conn = None;
        let mut cut = 0;
        if self.queue.front().is_some_and(|o| o.written > 0) {
            let o = self.queue.pop_front().expect("checked");
            self.release(o.buf, o.erase);
            cut = 1;
        }
        for o in &mut self.queue {
            o.started = false;
            o.written = 0;
        }
        if self.sent > self.taken() {
            self.lost_unreported = true;
        }
        self.credits = 0;
        self.flush_asked = None;
        self.ctrl.clear();
        self.ctrl_off = 0;
        cut
    }

    /// Writes what can be written now (see the module docs). A write error
    /// kills the connection.
    pub(super) fn try_write(&mut self, inner: &Inner) -> WriteOutcome {
        let Some(conn) = self.live().cloned() else {
            return WriteOutcome::NoConnection;
        };
        if self.through {
            // The application owns the socket's write side for now; it
            // writes what waited here once its frame is out.
            conn.set_interest(inner, |i| i.write = false);
            return WriteOutcome::Full;
        }
        loop {
            // Credits owed ride along with data about to go out.
            let will_start = self.credits > 0 && self.queue.iter().any(|o| !o.started);
            if will_start && conn.unsent.load(Ordering::Acquire) > 0 {
                self.take_unsent_credits(&conn);
            }
            self.start_frames();
            let head_partial = self.queue.front().is_some_and(|o| o.written > 0);
            let mut iov: Vec<IoSlice<'_>> = Vec::with_capacity(16);
            let mut frames = 0;
            let mut ctrl_in = false;
            for (i, o) in self.queue.iter().enumerate() {
                if i == 0 && head_partial {
                    push_frame(&mut iov, o);
                    frames = 1;
                    continue;
                }
                if !ctrl_in {
                    ctrl_in = true;
                    if self.ctrl_pending() {
                        iov.push(IoSlice::new(&self.ctrl[self.ctrl_off..]));
                    }
                }
                if !o.started || iov.len() + 2 > MAX_IOV {
                    break;
                }
                push_frame(&mut iov, o);
                frames = i + 1;
            }
            if !ctrl_in && self.ctrl_pending() {
                iov.push(IoSlice::new(&self.ctrl[self.ctrl_off..]));
            }
            if iov.is_empty() {
                drop(iov);
                conn.set_interest(inner, |i| i.write = false);
                return WriteOutcome::Idle;
            }
            let r = rustix::net::sendmsg(
                &conn.sock,
                &iov,
                &mut SendAncillaryBuffer::default(),
                SendFlags::NOSIGNAL,
            );
            drop(iov);
            match r {
                Ok(n) => {
                    conn.last_tx.store(inner.now_ns(), Ordering::Release);
                    self.consume(n, head_partial, frames, inner);
                }
                Err(Errno::INTR) => {}
                Err(Errno::AGAIN) => {
                    conn.set_interest(inner, |i| i.write = true);
                    return WriteOutcome::Full;
                }
                Err(e) => {
                    conn.kill(inner, super::conn::io_failure(e));
                    return WriteOutcome::NoConnection;
                }
            }
        }
    }

    /// Takes a credit (the caller checked there is one) for a DATA frame of
    /// `len` bytes and returns its header.
    pub(super) fn start_one(&mut self, len: usize, erase: bool) -> [u8; HEADER_LEN] {
        self.credits -= 1;
        self.sent += 1;
        data_header(len, erase)
    }

    /// True if control frames wait to go out.
    pub(super) fn ctrl_pending(&self) -> bool {
        self.ctrl_off < self.ctrl.len()
    }

    /// Starts every queued frame the credits allow.
    fn start_frames(&mut self) {
        for o in self.queue.iter_mut() {
            if o.started {
                continue;
            }
            if self.credits == 0 {
                break;
            }
            self.credits -= 1;
            self.sent += 1;
            // `len` ≤ buffer size ≤ 1 GiB, checked at commit.
            o.hdr = data_header(o.len, o.erase);
            o.started = true;
        }
    }

    /// Accounts for `n` bytes written in the order the vector was built.
    fn consume(&mut self, mut n: usize, head_partial: bool, frames: usize, inner: &Inner) {
        let mut done = 0;
        let take_frame = |o: &mut Outgoing, n: &mut usize| -> bool {
            let k = (o.total() - o.written).min(*n);
            o.written += k;
            *n -= k;
            o.written == o.total()
        };
        let mut i = 0;
        if head_partial {
            if take_frame(&mut self.queue[0], &mut n) {
                done += 1;
            }
            i = 1;
        }
        let k = (self.ctrl.len() - self.ctrl_off).min(n);
        self.ctrl_off += k;
        n -= k;
        while i < frames && n > 0 {
            if take_frame(&mut self.queue[i], &mut n) {
                done += 1;
            }
            i += 1;
        }
        for _ in 0..done {
            let o = self.queue.pop_front().expect("a written frame");
            self.written_frames += 1;
            self.release(o.buf, o.erase);
        }
        if done > 0 {
            inner.notify_tx_room();
        }
    }
}

fn push_frame<'a>(iov: &mut Vec<IoSlice<'a>>, o: &'a Outgoing) {
    if o.written < HEADER_LEN {
        iov.push(IoSlice::new(&o.hdr[o.written..]));
        iov.push(IoSlice::new(&o.buf[..o.len]));
    } else {
        iov.push(IoSlice::new(&o.buf[o.written - HEADER_LEN..o.len]));
    }
}
