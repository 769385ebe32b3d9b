//! One live `tcp://` connection: the socket, who reads it, the liveness
//! clocks and the receive side's credit counters.
//!
//! # Who does the I/O
//!
//! Nobody owns the socket for good. Writing is done under the transport's
//! send lock (`TxState`, see `writer.rs`) by whichever thread has something
//! to send: the application thread that commits a buffer, the thread that
//! disposes of a received buffer (credits), the reader that just received
//! credits, or the I/O thread when the socket was full (`EPOLLOUT`).
//!
//! Reading is done by whoever holds [`Conn::reader`]: an application thread
//! waiting in `receive` (so that a message goes from the socket to the
//! application without a hand-off between threads), else the I/O thread.
//! [`Reader::app_mode`] says which of the two is the reader of record; the
//! I/O thread's epoll interest in `EPOLLIN` is on only in I/O mode, so that
//! it is not woken for bytes an application thread is about to read. An
//! application thread switches the mode to itself when it starts waiting;
//! it is switched back to the I/O thread when a thread needs someone to
//! read while no application thread does (a sender waiting for credits or
//! for a FLUSHED, counted in [`Conn::io_wanted`]), and by the I/O thread's
//! tick whenever the reader is free. `EPOLLRDHUP` (peer's FIN), `EPOLLHUP`
//! and `EPOLLERR` are watched in both modes.
//!
//! Lock order: `reader` → the send lock → the receive lock; [`Conn::interest`]
//! is a leaf. No thread holds the send and receive locks at once.
//!
//! # Liveness
//!
//! Every read that returns bytes stamps [`Conn::last_rx`], every write
//! [`Conn::last_tx`]. The I/O thread sends a HEARTBEAT when nothing was
//! written for one heartbeat interval and declares the peer dead when
//! nothing was read for this side's heartbeat timeout. A FIN or RST is seen
//! at once (a read returns 0 or fails; epoll reports it).

use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rustix::event::epoll;

use super::proto::FrameParser;
use super::Inner;
use crate::transport::DisconnectReason;

/// Bytes read from the socket at once into the spill buffer.
pub(super) const SPILL: usize = 64 * 1024;

/// The reading half: the frame parser and its spill buffer.
#[derive(Debug)]
pub(super) struct Reader {
    pub(super) parser: FrameParser,
    /// Bytes read ahead of the current payload (headers, small frames).
    pub(super) spill: Vec<u8>,
    /// Bytes received with the handshake that belong to the data phase.
    pub(super) leftover: Vec<u8>,
    /// An application thread is the reader of record (see the module docs).
    pub(super) app_mode: bool,
}

/// The I/O thread's epoll interest in the socket.
#[derive(Debug, Clone, Copy)]
pub(super) struct Interest {
    /// `EPOLLIN`: the I/O thread reads.
    pub(super) read: bool,
    /// `EPOLLOUT`: the socket was full with frames waiting.
    pub(super) write: bool,
}

/// A live connection (see the module docs).
#[derive(Debug)]
pub(super) struct Conn {
    /// The transport's generation when it was established; tags the
    /// buffers received on it.
    pub(super) id: u64,
    pub(super) sock: TcpStream,
    pub(super) peer: SocketAddr,
    pub(super) peer_pid: u32,
    dead: AtomicBool,
    why: Mutex<Option<DisconnectReason>>,
    pub(super) reader: Mutex<Reader>,
    interest: Mutex<Interest>,
    /// Nanoseconds since the transport's epoch of the last byte read.
    pub(super) last_rx: AtomicU64,
    /// ... and of the last write.
    pub(super) last_tx: AtomicU64,
    /// This side's silence limit (`None`: never declares the peer dead).
    pub(super) timeout: Option<Duration>,
    /// How often to send a HEARTBEAT when idle (`None`: neither side
    /// wants them).
    pub(super) interval: Option<Duration>,
    /// Receive side: credits granted to the peer so far, the first grant
    /// included (G).
    pub(super) granted: AtomicU64,
    /// Receive side: DATA frames received (R).
    pub(super) received: AtomicU64,
    /// Receive side: buffers freed and not yet granted (U).
    pub(super) unsent: AtomicU32,
    /// `MaxPendingReceiveBuffers` of this side (0 if it only sends).
    pub(super) window: u32,
    /// The peer's `MaxPendingReceiveBuffers`: the most credits it may give.
    pub(super) peer_window: u32,
    /// Threads waiting for something only a reader can bring (credits,
    /// FLUSHED).
    pub(super) io_wanted: AtomicU32,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Epoll token of the connection socket.
pub(super) const TOKEN_CONN: u64 = 2;

impl Conn {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        id: u64,
        sock: TcpStream,
        peer: SocketAddr,
        peer_pid: u32,
        leftover: Vec<u8>,
        buffer_size: usize,
        timeout: Option<Duration>,
        interval: Option<Duration>,
        window: u32,
        peer_window: u32,
        now: u64,
    ) -> Self {
        Self {
            id,
            sock,
            peer,
            peer_pid,
            dead: AtomicBool::new(false),
            why: Mutex::new(None),
            reader: Mutex::new(Reader {
                parser: FrameParser::new(buffer_size),
                spill: vec![0; SPILL],
                leftover,
                app_mode: false,
            }),
            interest: Mutex::new(Interest {
                read: true,
                write: false,
            }),
            last_rx: AtomicU64::new(now),
            last_tx: AtomicU64::new(now),
            timeout,
            interval,
            granted: AtomicU64::new(0),
            received: AtomicU64::new(0),
            unsent: AtomicU32::new(0),
            window,
            peer_window,
            io_wanted: AtomicU32::new(0),
        }
    }

    /// True once the connection was dropped (by either side or a check).
    pub(super) fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Acquire)
    }

    /// Why it died (the first reason recorded).
    pub(super) fn why(&self) -> Option<DisconnectReason> {
        lock(&self.why).clone()
    }

    /// Drops the connection: records `why` (the first one wins: it is the
    /// reason the `Disconnected` event gives), shuts the socket down
    /// (which wakes every thread polling it and tells the peer at once)
    /// and wakes the I/O thread, which cleans up. True if this call
    /// killed it.
    pub(super) fn kill(&self, inner: &Inner, why: DisconnectReason) -> bool {
        {
            let mut w = lock(&self.why);
            if self.dead.swap(true, Ordering::AcqRel) {
                return false;
            }
            *w = Some(why);
        }
        let _ = self.sock.shutdown(Shutdown::Both);
        inner.poke();
        true
    }

    /// The peer for log lines: `127.0.0.1:5555 (pid 42)`.
    pub(super) fn peer_text(&self) -> String {
        format!("{} (pid {})", self.peer, self.peer_pid)
    }

    /// Registers the socket with the I/O thread's epoll (reading in I/O
    /// mode).
    pub(super) fn register(&self, inner: &Inner) -> rustix::io::Result<()> {
        let i = lock(&self.interest);
        epoll::add(
            &inner.epoll,
            &self.sock,
            epoll::EventData::new_u64(TOKEN_CONN),
            flags(*i),
        )
    }

    /// Removes the socket from the I/O thread's epoll.
    pub(super) fn deregister(&self, inner: &Inner) {
        let _i = lock(&self.interest);
        let _ = epoll::delete(&inner.epoll, &self.sock);
    }

    /// Changes one bit of the I/O thread's interest (a no-op if unchanged;
    /// an error only means the socket was deregistered already).
    pub(super) fn set_interest(&self, inner: &Inner, f: impl FnOnce(&mut Interest)) {
        let mut i = lock(&self.interest);
        let before = (i.read, i.write);
        f(&mut i);
        if (i.read, i.write) != before && !self.is_dead() {
            let _ = epoll::modify(
                &inner.epoll,
                &self.sock,
                epoll::EventData::new_u64(TOKEN_CONN),
                flags(*i),
            );
        }
    }

    /// Makes sure someone reads the socket: if no thread holds the reader,
    /// hands reading to the I/O thread. (A thread that holds it checks
    /// [`Conn::io_wanted`] when it lets go.)
    pub(super) fn ensure_reading(&self, inner: &Inner) {
        if let Ok(mut r) = self.reader.try_lock() {
            if r.app_mode {
                r.app_mode = false;
                self.set_interest(inner, |i| i.read = true);
            }
        }
    }

    /// The receive side's credit policy: true if the freed buffers not yet
    /// granted should go to the peer now rather than with the next frame
    /// this side writes anyway. Now means: half the window is waiting, or
    /// the peer may be down to less than half of it.
    pub(super) fn credit_due(&self) -> bool {
        let u = u64::from(self.unsent.load(Ordering::Acquire));
        if u == 0 {
            return false;
        }
        let half = u64::from(self.window.div_ceil(2).max(1));
        let g = self.granted.load(Ordering::Acquire);
        let r = self.received.load(Ordering::Acquire);
        u >= half || g.saturating_sub(r) < half
    }
}

/// The reason a failed read or write of the connection gives: a reset or
/// a broken pipe is the peer's kernel closing its end (a killed process
/// with unread data resets), anything else a failure of the connection.
pub(super) fn io_failure(e: rustix::io::Errno) -> DisconnectReason {
    use rustix::io::Errno;
    match e {
        Errno::CONNRESET | Errno::PIPE | Errno::CONNABORTED => DisconnectReason::PeerLeft,
        e => DisconnectReason::SocketError(std::io::Error::from(e).to_string()),
    }
}

fn flags(i: Interest) -> epoll::EventFlags {
    let mut f = epoll::EventFlags::RDHUP;
    if i.read {
        f |= epoll::EventFlags::IN;
    }
    if i.write {
        f |= epoll::EventFlags::OUT;
    }
    f
}
