//! The I/O thread of a `tcp://` transport.
//!
//! It sleeps in `epoll_wait` on: an eventfd (local requests: close, retry
//! interval), the server's listening socket, the handshakes in progress and
//! the sockets of refused peers still being drained, and the live
//! connection (`EPOLLIN` only while no application thread is its reader,
//! `EPOLLOUT` only while frames wait for room, `EPOLLRDHUP`/`EPOLLHUP`/
//! `EPOLLERR` always). Its timeout is the nearest of: a handshake
//! deadline, the client's next attempt, the connection's tick (one
//! heartbeat interval, 1 s by default).
//!
//! On each tick it takes reading back if no thread is reading (and reads
//! what arrived), declares the peer dead after the heartbeat timeout of
//! silence, sends a HEARTBEAT if nothing was written for an interval, and
//! sends credits that waited a whole tick. An idle connected pair thus
//! costs a wake-up and a small write per second and side.
//!
//! A server accepts at most [`ACCEPT_BATCH`] connections per turn, so a
//! flood of connections cannot keep the loop from the wake-up descriptor,
//! the live connection and the handshakes in progress.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::event::epoll;
use rustix::io::Errno;

use super::conn::{Conn, TOKEN_CONN};
use super::handshake::{self, Admission, ClientFail, Pending, Stage, Step};
use super::proto::{self, FrameType};
use super::reader::Goal;
use super::{lock, Inner};
use crate::descriptor::TcpAddress;
use crate::transport::{ChannelKind, DisconnectReason, RefusalReason, Role};

/// Connections accepted per turn of the server's loop.
pub(super) const ACCEPT_BATCH: usize = 16;
/// Refused sockets kept open at once to be drained.
const MAX_CLOSING: usize = 16;
/// How long a refused socket is kept to drain what the peer sent.
const CLOSING_TIME: Duration = Duration::from_secs(1);
/// Tick while connected without heartbeats.
const IDLE_TICK: Duration = Duration::from_secs(1);

const TOKEN_WAKE: u64 = 0;
const TOKEN_LISTEN: u64 = 1;
const KIND_PENDING: u64 = 1 << 32;
const KIND_CLOSING: u64 = 2 << 32;
const KIND_MASK: u64 = !0xffff_ffff;

/// Why a server could not bind.
#[derive(Debug)]
pub(super) enum BindError {
    /// Another socket listens on the address.
    InUse,
    /// A call failed.
    Sys(&'static str, Errno),
    /// The host name could not be resolved.
    Resolve(String),
}

/// Binds the server's listening socket (non-blocking; `SO_REUSEADDR`, so a
/// restarted server binds despite connections in `TIME_WAIT`, but never
/// next to another live listener: that is `EADDRINUSE`).
pub(super) fn bind(addr: &TcpAddress) -> Result<TcpListener, BindError> {
    let addrs: Vec<SocketAddr> = match addr.host().ip() {
        Some(ip) => vec![SocketAddr::new(ip, addr.port())],
        None => {
            use std::net::ToSocketAddrs;
            (addr.host().to_string().as_str(), addr.port())
                .to_socket_addrs()
                .map_err(|e| BindError::Resolve(e.to_string()))?
                .collect()
        }
    };
    let l = TcpListener::bind(&addrs[..]).map_err(|e| match e.kind() {
        std::io::ErrorKind::AddrInUse => BindError::InUse,
        _ => BindError::Sys("bind", Errno::from_io_error(&e).unwrap_or(Errno::INVAL)),
    })?;
    l.set_nonblocking(true).map_err(|e| {
        BindError::Sys(
            "fcntl(O_NONBLOCK)",
            Errno::from_io_error(&e).unwrap_or(Errno::INVAL),
        )
    })?;
    Ok(l)
}

struct Closing {
    key: u64,
    sock: TcpStream,
    deadline: Instant,
}

struct Io {
    inner: Arc<Inner>,
    role: Role,
    kind: ChannelKind,
    listener: Option<TcpListener>,
    conn: Option<Arc<Conn>>,
    pending: Vec<Pending>,
    closing: Vec<Closing>,
    next_key: u64,
    next_attempt: Instant,
    next_tick: Instant,
}

/// The I/O thread's body.
pub(super) fn run(inner: Arc<Inner>, role: Role, kind: ChannelKind, listener: Option<TcpListener>) {
    let _ = epoll::add(
        &inner.epoll,
        &inner.wake_fd,
        epoll::EventData::new_u64(TOKEN_WAKE),
        epoll::EventFlags::IN,
    );
    if let Some(l) = &listener {
        let _ = epoll::add(
            &inner.epoll,
            l,
            epoll::EventData::new_u64(TOKEN_LISTEN),
            epoll::EventFlags::IN,
        );
    }
    let now = Instant::now();
    let mut io = Io {
        inner,
        role,
        kind,
        listener,
        conn: None,
        pending: Vec::new(),
        closing: Vec::new(),
        next_key: 0,
        next_attempt: now,
        next_tick: now,
    };
    io.run();
}

impl Io {
    fn run(&mut self) {
        let mut events: Vec<epoll::Event> = Vec::with_capacity(64);
        while !self.inner.stopping() {
            if self.conn.as_ref().is_some_and(|c| c.is_dead()) {
                self.disconnect();
            }
            if self.role == Role::Client
                && self.conn.is_none()
                && Instant::now() >= self.next_attempt
            {
                self.attempt();
                continue;
            }
            let timeout = self.timeout();
            events.clear();
            let ts = timeout.map(|d| rustix::time::Timespec {
                tv_sec: d.as_secs() as i64,
                tv_nsec: i64::from(d.subsec_nanos()),
            });
            match epoll::wait(
                &self.inner.epoll,
                rustix::buffer::spare_capacity(&mut events),
                ts.as_ref(),
            ) {
                Ok(_) | Err(Errno::INTR) => {}
                Err(e) => {
                    log::error!("lwmq {}: epoll_wait failed: {e}", self.inner.descriptor);
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            let mut accept = false;
            for ev in events.drain(..) {
                let token = ev.data.u64();
                let flags = ev.flags;
                match token {
                    TOKEN_WAKE => {
                        let mut b = [0u8; 8];
                        let _ = rustix::io::read(&self.inner.wake_fd, &mut b);
                        // The retry interval may have changed.
                        if self.conn.is_none() {
                            self.next_attempt =
                                self.next_attempt.min(Instant::now() + self.retry());
                        }
                    }
                    TOKEN_LISTEN => accept = true,
                    TOKEN_CONN => self.conn_event(flags),
                    t if t & KIND_MASK == KIND_PENDING => self.pending_event(t),
                    t if t & KIND_MASK == KIND_CLOSING => self.closing_event(t),
                    _ => {}
                }
            }
            self.deadlines();
            if self.conn.is_some() && Instant::now() >= self.next_tick {
                self.tick();
            }
            if accept {
                self.accept_batch();
            }
        }
        self.shutdown();
    }

    fn retry(&self) -> Duration {
        Duration::from_millis(self.inner.retry_ms.load(Ordering::Relaxed))
    }

    fn tick_period(conn: &Conn) -> Duration {
        conn.interval.unwrap_or(IDLE_TICK).min(IDLE_TICK)
    }

    fn timeout(&self) -> Option<Duration> {
        let now = Instant::now();
        let mut t: Option<Instant> = None;
        let mut at = |i: Instant| t = Some(t.map_or(i, |t| t.min(i)));
        for p in &self.pending {
            at(p.deadline);
        }
        for c in &self.closing {
            at(c.deadline);
        }
        if self.conn.is_some() {
            at(self.next_tick);
        } else if self.role == Role::Client {
            at(self.next_attempt);
        }
        t.map(|t| t.saturating_duration_since(now))
    }

    // ----- the live connection -----

    fn conn_event(&mut self, flags: epoll::EventFlags) {
        let Some(conn) = self.conn.clone() else {
            return;
        };
        let inner = &*self.inner;
        if flags.contains(epoll::EventFlags::OUT) {
            lock(&inner.tx).try_write(inner);
        }
        let hangup = flags
            .intersects(epoll::EventFlags::RDHUP | epoll::EventFlags::HUP | epoll::EventFlags::ERR);
        if hangup {
            // Read what arrived before the end (complete buffers are good),
            // waiting for an application thread that is reading: it sees
            // the end too and returns at once.
            let mut r = lock(&conn.reader);
            r.read(&conn, inner, Goal::Drain);
            drop(r);
            inner.reader_released(&conn);
            if flags.intersects(epoll::EventFlags::HUP | epoll::EventFlags::ERR) {
                // The socket's pending error says how it ended, if it
                // failed; a hang-up without one is the peer closing.
                let why = match conn.sock.take_error() {
                    Ok(Some(e)) => match e.raw_os_error() {
                        Some(n) => super::conn::io_failure(Errno::from_raw_os_error(n)),
                        None => DisconnectReason::SocketError(e.to_string()),
                    },
                    _ => DisconnectReason::PeerLeft,
                };
                conn.kill(inner, why);
            }
        } else if flags.contains(epoll::EventFlags::IN) {
            if let Ok(mut r) = conn.reader.try_lock() {
                if !r.app_mode {
                    r.read(&conn, inner, Goal::Drain);
                }
                drop(r);
                inner.reader_released(&conn);
            }
        }
        if conn.is_dead() {
            self.disconnect();
        }
    }

    fn tick(&mut self) {
        let Some(conn) = self.conn.clone() else {
            return;
        };
        let inner = &*self.inner;
        let period = Self::tick_period(&conn);
        self.next_tick = Instant::now() + period;
        // Take reading back if nobody reads, and read what is there.
        if let Ok(mut r) = conn.reader.try_lock() {
            if r.app_mode {
                r.app_mode = false;
                conn.set_interest(inner, |i| i.read = true);
            }
            r.read(&conn, inner, Goal::Drain);
            drop(r);
            inner.reader_released(&conn);
        }
        let now = inner.now_ns();
        if let Some(t) = conn.timeout {
            let silent =
                Duration::from_nanos(now.saturating_sub(conn.last_rx.load(Ordering::Acquire)));
            if silent >= t && !conn.is_dead() {
                let why = format!(
                    "nothing received from the peer for {silent:?} (heartbeat timeout {t:?}): the peer or the network is gone"
                );
                // Once per timeout at most: not rate-limited.
                log::warn!(
                    "lwmq {}: dropping connection to {}: {why}",
                    inner.descriptor,
                    conn.peer_text()
                );
                lock(&inner.link).last_error = Some(why);
                conn.kill(inner, DisconnectReason::Silent(t));
            }
        }
        if !conn.is_dead() {
            let mut tx = lock(&inner.tx);
            let idle =
                Duration::from_nanos(now.saturating_sub(conn.last_tx.load(Ordering::Acquire)));
            if conn.interval.is_some_and(|iv| idle + iv / 10 >= iv) {
                tx.push_ctrl(&proto::control(FrameType::Heartbeat, 0));
            }
            // Credits owed for a whole tick go out now.
            tx.take_unsent_credits(&conn);
            tx.try_write(inner);
        }
        if conn.is_dead() {
            self.disconnect();
        }
    }

    /// Cleans up after the connection ended (any side, any reason).
    fn disconnect(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        let inner = &*self.inner;
        conn.deregister(inner);
        let partial = lock(&conn.reader).parser.take_partial();
        {
            let mut rx = lock(&inner.rx);
            if let Some(b) = partial {
                rx.free.push(b);
            }
            if rx.cur.as_ref().is_some_and(|c| Arc::ptr_eq(&c.conn, &conn)) {
                rx.cur = None;
            }
        }
        lock(&inner.tx).detach(&conn);
        inner.unpublish(&conn, self.role);
        // The server may be restarting: try again at once.
        self.next_attempt = Instant::now();
    }

    fn shutdown(&mut self) {
        if let Some(conn) = self.conn.clone() {
            // Drop what the peer still had in flight to us so that closing
            // sends a FIN, not a reset that could destroy what we wrote.
            if let Ok(mut r) = conn.reader.try_lock() {
                r.read(&conn, &self.inner, Goal::Drain);
            }
            // The credits owed for buffers disposed of go out before the
            // FIN: they tell the sender its frames were taken, so that a
            // receiver that took everything and closed is not a loss to it.
            super::receiver::send_owed_credits(&self.inner, &conn);
            conn.kill(&self.inner, DisconnectReason::Closed);
            self.disconnect();
        }
        self.pending.clear();
        self.closing.clear();
    }

    // ----- client -----

    fn attempt(&mut self) {
        let inner = Arc::clone(&self.inner);
        match handshake::client_attempt(&inner, self.kind) {
            Ok(conn) => {
                self.next_tick = Instant::now() + Self::tick_period(&conn);
                self.conn = Some(conn);
            }
            // Nobody answered: the state stays as it is, `Connecting` or a
            // refusal seen earlier, which is sticky until a connection.
            Err(ClientFail::Quiet) => {}
            Err(ClientFail::Note(why)) => {
                let mut link = lock(&inner.link);
                inner.note(&mut link, super::link::LogClass::Connect, why);
            }
            Err(ClientFail::Refused(r)) => inner.refused(r, true),
        }
        self.next_attempt = Instant::now() + self.retry();
    }

    // ----- server -----

    fn key(&mut self, kind: u64) -> u64 {
        self.next_key = (self.next_key + 1) & 0xffff_ffff;
        kind | self.next_key
    }

    fn busy(&self) -> bool {
        self.conn.as_ref().is_some_and(|c| !c.is_dead())
            || self
                .pending
                .iter()
                .any(|p| matches!(p.stage, Stage::AwaitAccept(_)))
    }

    fn accept_batch(&mut self) {
        let inner = Arc::clone(&self.inner);
        for _ in 0..ACCEPT_BATCH {
            let Some(l) = &self.listener else { return };
            let (sock, peer) = match l.accept() {
                Ok(x) => x,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let mut link = lock(&inner.link);
                    inner.note(
                        &mut link,
                        super::link::LogClass::Accept,
                        format!("accept failed: {e}"),
                    );
                    drop(link);
                    // EMFILE and friends: back off instead of spinning.
                    std::thread::sleep(Duration::from_millis(10));
                    return;
                }
            };
            let _ = sock.set_nonblocking(true);
            let _ = sock.set_nodelay(true);
            let allow = lock(&inner.link).allow.clone();
            if !allow.allows(peer.ip()) {
                let d = format!("server does not accept peer {peer} (allow-list: {allow})");
                handshake::refuse_third_party(&inner, &sock, RefusalReason::AccessDenied, d);
                self.linger(sock);
                continue;
            }
            if self.conn.as_ref().is_some_and(|c| !c.is_dead()) {
                let d = format!("server already has a peer; {peer} refused");
                handshake::refuse_third_party(&inner, &sock, RefusalReason::Busy, d);
                self.linger(sock);
                continue;
            }
            let tickets: Vec<_> = self
                .pending
                .iter()
                .map(|p| handshake::Ticket {
                    ip: p.peer.ip(),
                    accepted: p.accepted,
                    evictable: matches!(p.stage, Stage::AwaitHello),
                })
                .collect();
            match handshake::admission(&tickets, peer.ip()) {
                Admission::Admit => {}
                Admission::Evict(i, why) => {
                    let old = self.pending.remove(i);
                    let _ = epoll::delete(&inner.epoll, &old.sock);
                    let d = format!("handshake with {} dropped to make room: {why}", old.peer);
                    handshake::refuse_third_party(&inner, &old.sock, RefusalReason::Busy, d);
                    self.linger(old.sock);
                }
                Admission::Refuse(why) => {
                    let d = format!("{peer} refused: {why}");
                    handshake::refuse_third_party(&inner, &sock, RefusalReason::Busy, d);
                    self.linger(sock);
                    continue;
                }
            }
            let key = self.key(KIND_PENDING);
            if epoll::add(
                &inner.epoll,
                &sock,
                epoll::EventData::new_u64(key),
                epoll::EventFlags::IN,
            )
            .is_err()
            {
                continue;
            }
            self.pending.push(Pending::new(key, sock, peer));
        }
    }

    fn pending_event(&mut self, key: u64) {
        let Some(i) = self.pending.iter().position(|p| p.key == key) else {
            return;
        };
        let p = self.pending.swap_remove(i);
        let busy = self.busy();
        let inner = Arc::clone(&self.inner);
        match p.step(&inner, self.kind, busy) {
            Step::Continue(p) => self.pending.push(p),
            Step::Refused(sock, linger) => {
                let _ = epoll::delete(&inner.epoll, &sock);
                if linger {
                    self.linger(sock);
                }
            }
            Step::Gone => {}
            Step::Live(conn) => {
                self.next_tick = Instant::now() + Self::tick_period(&conn);
                self.conn = Some(conn);
            }
        }
    }

    /// Keeps a refused socket to drain what the peer sent, its sending
    /// half shut (the peer reads our REFUSE, then EOF).
    fn linger(&mut self, sock: TcpStream) {
        let _ = sock.shutdown(std::net::Shutdown::Write);
        if self.closing.len() >= MAX_CLOSING {
            return;
        }
        let key = self.key(KIND_CLOSING);
        if epoll::add(
            &self.inner.epoll,
            &sock,
            epoll::EventData::new_u64(key),
            epoll::EventFlags::IN,
        )
        .is_ok()
        {
            self.closing.push(Closing {
                key,
                sock,
                deadline: Instant::now() + CLOSING_TIME,
            });
        }
    }

    fn closing_event(&mut self, key: u64) {
        let Some(i) = self.closing.iter().position(|c| c.key == key) else {
            return;
        };
        let mut buf = [0u8; 4096];
        loop {
            match rustix::io::read(&self.closing[i].sock, &mut buf) {
                Ok(n) if n > 0 => continue,
                Err(Errno::AGAIN) => return,
                Err(Errno::INTR) => continue,
                _ => break,
            }
        }
        let c = self.closing.swap_remove(i);
        let _ = epoll::delete(&self.inner.epoll, &c.sock);
    }

    fn deadlines(&mut self) {
        let now = Instant::now();
        let inner = Arc::clone(&self.inner);
        self.pending.retain(|p| {
            let keep = p.deadline > now;
            if !keep {
                let _ = epoll::delete(&inner.epoll, &p.sock);
                let mut link = lock(&inner.link);
                inner.note(
                    &mut link,
                    super::link::LogClass::HandshakeTimeout,
                    format!(
                        "handshake with {} did not finish within {:?}; connection closed",
                        p.peer,
                        super::HANDSHAKE_TIMEOUT
                    ),
                );
            }
            keep
        });
        self.closing.retain(|c| {
            let keep = c.deadline > now;
            if !keep {
                let _ = epoll::delete(&inner.epoll, &c.sock);
            }
            keep
        });
    }
}
