//! The read path of a `tcp://` connection: bytes from the socket through
//! the frame parser into receive buffers, and what each frame does.
//!
//! A read goes straight into the receive buffer of the DATA frame in
//! progress when at least [`DIRECT_MIN`] bytes of it are missing (a
//! `readv` of that buffer's rest and the spill buffer, so whatever follows
//! it is read in the same call); otherwise into the 64 KiB spill buffer,
//! from which the parser copies small payloads and reads headers. A
//! buffer of tiny frames is therefore read a spill at a time, and a large
//! payload lands where the application will read it.
//!
//! Whoever reads holds [`Conn::reader`] (see `conn.rs`). Events are
//! collected while the parser runs ([`Batch`]) and applied after each read:
//! received buffers go to the ready queue (one lock), credits to the send
//! half (one lock, then whatever they allow is written at once), a FLUSH is
//! answered when every buffer received before it has been disposed of.
//!
//! What the peer cannot do: send a DATA frame without a credit (checked
//! before a buffer is handed to the parser: `received < granted`), grant
//! more credits than its receive buffers, answer a FLUSH never sent, or
//! break a framing rule (`proto.rs`). Each ends the connection with the
//! reason logged and counted as a violation.

use std::io::IoSliceMut;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use rustix::io::Errno;

use super::conn::{Conn, Reader};
use super::proto::{self, FrameError, FrameSink, FrameType};
use super::{lock, Inner, Ready};
use crate::transport::DisconnectReason;

/// Smallest rest of a payload read straight into its buffer.
pub(super) const DIRECT_MIN: usize = 4096;

/// When a read pass stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Goal {
    /// After the first read that completed a DATA frame (a waiting
    /// receiver has what it wants), or when the socket is empty.
    FirstData,
    /// When the socket is empty.
    Drain,
}

/// What a read pass found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ReadOutcome {
    /// The socket has nothing more for now; `delivered` DATA frames.
    Empty { delivered: usize },
    /// Stopped after delivering (the goal was met).
    Delivered,
    /// The connection ended (the reason was recorded by `kill`).
    Dead,
}

/// Events of one read, applied after the parser ran.
struct Batch<'a> {
    conn: &'a Conn,
    inner: &'a Inner,
    ready: Vec<Ready>,
    credits: u64,
    flush: Option<u32>,
    flushed: Vec<u32>,
}

impl FrameSink for Batch<'_> {
    fn data_buffer(&mut self) -> Result<Vec<u8>, FrameError> {
        let c = self.conn;
        let r = c.received.load(Ordering::Acquire);
        let g = c.granted.load(Ordering::Acquire);
        if r >= g {
            return Err(FrameError::Peer(format!(
                "peer sent a buffer without credit ({g} granted, {r} received before it)"
            )));
        }
        c.received.store(r + 1, Ordering::Release);
        // With a credit there is always a buffer: every grant is a free one.
        let mut rx = lock(&self.inner.rx);
        match rx.free.pop() {
            Some(b) => Ok(b),
            None if rx.total < self.inner.config.receive_buffers() as usize => {
                rx.total += 1;
                Ok(vec![0; self.inner.config.buffer_size()])
            }
            None => Err(FrameError::Peer(
                "peer sent more buffers than there are receive buffers".into(),
            )),
        }
    }

    fn data(&mut self, buf: Vec<u8>, len: usize, erase: bool) {
        self.ready.push(Ready {
            buf,
            len,
            erase,
            conn_id: self.conn.id,
        });
    }

    fn credit(&mut self, n: u16) -> Result<(), FrameError> {
        self.credits += u64::from(n);
        Ok(())
    }

    fn flush(&mut self, token: u32) {
        // A later FLUSH supersedes an earlier one still unanswered.
        self.flush = Some(token);
    }

    fn flushed(&mut self, token: u32) -> Result<(), FrameError> {
        self.flushed.push(token);
        Ok(())
    }
}

impl Reader {
    /// Reads until `goal` (see [`Goal`]). Never blocks: the socket is
    /// non-blocking. On a violation, EOF or error the connection is killed.
    pub(super) fn read(&mut self, conn: &Arc<Conn>, inner: &Inner, goal: Goal) -> ReadOutcome {
        if conn.is_dead() {
            return ReadOutcome::Dead;
        }
        let mut total_delivered = 0;
        if !self.leftover.is_empty() {
            let left = std::mem::take(&mut self.leftover);
            match self.parse(conn, inner, &left, 0) {
                Ok(n) => total_delivered += n,
                Err(()) => return ReadOutcome::Dead,
            }
        }
        loop {
            let spill_len = self.spill.len();
            let r = match self.parser.direct_target() {
                Some(t) if t.len() >= DIRECT_MIN => {
                    let tlen = t.len();
                    let mut iov = [IoSliceMut::new(t), IoSliceMut::new(&mut self.spill)];
                    rustix::io::readv(&conn.sock, &mut iov)
                        .map(|n| (n.min(tlen), n.saturating_sub(tlen)))
                }
                _ => rustix::io::read(&conn.sock, &mut self.spill[..spill_len]).map(|n| (0, n)),
            };
            match r {
                Ok((0, 0)) => {
                    conn.kill(inner, DisconnectReason::PeerLeft);
                    return ReadOutcome::Dead;
                }
                Ok((direct, spilled)) => {
                    conn.last_rx.store(inner.now_ns(), Ordering::Release);
                    let spill = std::mem::take(&mut self.spill);
                    let got = self.parse(conn, inner, &spill[..spilled], direct);
                    self.spill = spill;
                    match got {
                        Ok(n) => total_delivered += n,
                        Err(()) => return ReadOutcome::Dead,
                    }
                    if goal == Goal::FirstData && total_delivered > 0 {
                        return ReadOutcome::Delivered;
                    }
                }
                Err(Errno::INTR) => {}
                Err(Errno::AGAIN) => {
                    return ReadOutcome::Empty {
                        delivered: total_delivered,
                    }
                }
                Err(e) => {
                    conn.kill(inner, super::conn::io_failure(e));
                    return ReadOutcome::Dead;
                }
            }
        }
    }

    /// Runs the parser over `direct` bytes already in the payload buffer
    /// and then `spilled`, and applies what it found. `Err` after a
    /// violation (the connection is killed).
    fn parse(
        &mut self,
        conn: &Arc<Conn>,
        inner: &Inner,
        spilled: &[u8],
        direct: usize,
    ) -> Result<usize, ()> {
        let mut b = Batch {
            conn,
            inner,
            ready: Vec::new(),
            credits: 0,
            flush: None,
            flushed: Vec::new(),
        };
        if direct > 0 {
            self.parser.advance_direct(direct, &mut b);
        }
        let parsed = self.parser.feed(spilled, &mut b);
        let delivered = b.ready.len();
        let outcome = apply(b, conn, inner);
        match (parsed, outcome) {
            (Ok(()), Ok(())) => Ok(delivered),
            (Err(e), _) => {
                inner.violation(conn, &e.to_string());
                Err(())
            }
            (_, Err(why)) => {
                inner.violation(conn, &why);
                Err(())
            }
        }
    }
}

/// Applies the events of one read (also those before a violation: the
/// buffers received whole before it are good).
fn apply(b: Batch<'_>, conn: &Arc<Conn>, inner: &Inner) -> Result<(), String> {
    let Batch {
        ready,
        credits,
        flush,
        flushed,
        ..
    } = b;
    let mut answer = None;
    if !ready.is_empty() || flush.is_some() {
        let mut rx = lock(&inner.rx);
        let n = ready.len() as u64;
        rx.ready.extend(ready);
        if let Some(cur) = rx.cur.as_mut().filter(|c| Arc::ptr_eq(&c.conn, conn)) {
            cur.outstanding += n;
            if let Some(t) = flush {
                if cur.outstanding == 0 {
                    answer = Some(t);
                } else {
                    cur.flush_pending = Some(t);
                }
            }
        }
        drop(rx);
        if n > 0 {
            inner.notify_rx_data();
        }
    }
    if credits > 0 || !flushed.is_empty() || answer.is_some() {
        let mut tx = lock(&inner.tx);
        if tx.live().is_some_and(|c| Arc::ptr_eq(c, conn)) {
            if credits > 0 {
                tx.add_credits(conn, credits)?;
            }
            for t in flushed {
                tx.flushed(t)?;
            }
            if let Some(t) = answer {
                tx.take_unsent_credits(conn);
                tx.push_ctrl(&proto::token_frame(FrameType::Flushed, t));
            }
            tx.try_write(inner);
        }
        drop(tx);
        inner.notify_tx_room();
    }
    Ok(())
}
