//! The `tcp://` handshake on both sides, and the admission of new
//! connections on a server.
//!
//! ```text
//! client                                          server
//!   connect ─────────────────────────────────────> accept: allow-list, busy, admission
//!   GREETING + HELLO ────────────────────────────> greeting and HELLO checked
//!                <──────────────────── GREETING + HELLO  (or GREETING + REFUSE)
//!   server's HELLO checked
//!   ACCEPT (credit: first grant) ────────────────> connection published
//!   connection published            <──────────── CREDIT (first grant), staged DATA
//! ```
//!
//! Both sides check the other's HELLO with [`proto::check_peer_hello`] and
//! the other's address with the allow-list; every refusal goes to the peer
//! as a REFUSE with the reason and a text, and is recorded on this side, so
//! both can read why. As with `ipc://`, a refusal of this side's own
//! attempt or of the pairing a server was setting up (a HELLO that does
//! not match, a broken handshake, the peer's REFUSE) is sticky: it is the
//! state until a connection succeeds; a server turning away a third party
//! (`Busy`, no room, an address outside the allow-list) records an event
//! only, so that nobody on the network can set a server's state. A server refuses after writing its REFUSE by shutting
//! its sending half and keeping the socket a short while to read (and
//! drop) what the client had sent: closing at once with unread bytes would
//! make the kernel send a reset, which may destroy the REFUSE before the
//! client reads it.
//!
//! A server holds at most [`MAX_PENDING`] handshakes in progress, at most
//! [`MAX_PENDING_PER_ADDR`] per peer address, each with the
//! [`super::HANDSHAKE_TIMEOUT`] deadline from `accept`.
//! A newcomer from an address at its budget displaces that address's
//! oldest handshake still waiting for its HELLO; with the table full, the
//! address holding most gives up its oldest such handshake. A handshake
//! whose HELLO was answered (at most one at a time: others are refused
//! `Busy`) is never displaced. A peer that never finishes (silent, slow-loris, garbage)
//! therefore holds a slot for 2 s at most and can never keep another
//! address out. While a peer is connected, newcomers are refused `Busy`
//! at once.

use std::io::Read;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::OwnedFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags};
use rustix::io::Errno;
use rustix::net::SendFlags;

use super::conn::Conn;
use super::proto::{self, Handshake, Hello, ProtoError, GREETING_LEN};
use super::{lock, CurRx, Inner, HANDSHAKE_TIMEOUT, HEARTBEATS_PER_TIMEOUT, LIMITS};
use crate::transport::{ChannelKind, DisconnectReason, Refusal, RefusalReason};

/// Handshakes in progress on a server, in all.
pub(super) const MAX_PENDING: usize = 16;
/// Handshakes in progress from one peer address.
pub(super) const MAX_PENDING_PER_ADDR: usize = 4;
/// Largest handshake input kept: a greeting and one handshake frame.
const MAX_INPUT: usize = GREETING_LEN + proto::HEADER_LEN + proto::MAX_HANDSHAKE_BODY;

/// This side's HELLO.
pub(super) fn own_hello(inner: &Inner, kind: ChannelKind) -> Hello {
    let c = &inner.config;
    Hello {
        kind,
        directions: c.directions(),
        features: 0,
        buffer_size: c.buffer_size() as u64,
        send_buffers: c.send_buffers(),
        receive_buffers: c.receive_buffers(),
        heartbeat_ms: inner.heartbeat_ms.load(Ordering::Relaxed) as u32,
        pid: std::process::id(),
    }
}

/// Writes small handshake bytes; a socket that cannot take ~1 KiB at once
/// on a fresh connection is treated as gone.
pub(super) fn send_all(sock: &TcpStream, mut bytes: &[u8]) -> bool {
    let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
    while !bytes.is_empty() {
        match rustix::net::send(sock, bytes, SendFlags::NOSIGNAL) {
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::INTR) => {}
            Err(Errno::AGAIN) if Instant::now() < deadline => {
                let mut p = [PollFd::new(sock, PollFlags::OUT)];
                let _ = crate::sys::socket::poll(&mut p, Some(Duration::from_millis(10)));
            }
            Err(_) => return false,
        }
    }
    true
}

/// The refusal frame (with a greeting first if none was sent yet).
fn refuse_bytes(reason: RefusalReason, text: &str, with_greeting: bool) -> Vec<u8> {
    let mut out = Vec::new();
    if with_greeting {
        out.extend_from_slice(&proto::greeting());
    }
    out.extend_from_slice(
        &Handshake::Refuse {
            reason,
            text: text.to_owned(),
        }
        .encode(),
    );
    out
}

/// The refusal a malformed greeting or handshake frame earns.
fn proto_refusal(e: &ProtoError, peer: &str) -> (RefusalReason, String) {
    let reason = match e {
        ProtoError::Version(_) => RefusalReason::Version,
        _ => RefusalReason::Protocol,
    };
    (reason, format!("{peer}: {e}"))
}

/// Heartbeat settings of a connection: this side's timeout, and the
/// interval both sides need (a fifth of the stricter timeout).
fn heartbeats(own_ms: u32, peer_ms: u32) -> (Option<Duration>, Option<Duration>) {
    let timeout = (own_ms > 0).then(|| Duration::from_millis(own_ms.into()));
    let strict = [own_ms, peer_ms].into_iter().filter(|&m| m > 0).min();
    let interval = strict.map(|m| Duration::from_millis(m.into()) / HEARTBEATS_PER_TIMEOUT);
    (timeout, interval)
}

/// Makes the connection object and attaches the receive half: the first
/// grant is every receive buffer free now (those the application still
/// holds from an earlier connection come back as credits when disposed).
fn attach(
    inner: &Inner,
    sock: TcpStream,
    peer: SocketAddr,
    own: &Hello,
    peer_hello: &Hello,
    leftover: Vec<u8>,
) -> (Arc<Conn>, u64) {
    let (timeout, interval) = heartbeats(own.heartbeat_ms, peer_hello.heartbeat_ms);
    let id = inner.generation.load(Ordering::Acquire) + 1;
    let conn = Arc::new(Conn::new(
        id,
        sock,
        peer,
        peer_hello.pid,
        leftover,
        inner.config.buffer_size(),
        timeout,
        interval,
        inner.config.receive_buffers(),
        peer_hello.receive_buffers,
        inner.now_ns(),
    ));
    let mut rx = lock(&inner.rx);
    let first = (rx.free.len() + (inner.config.receive_buffers() as usize - rx.total)) as u64;
    conn.granted.store(first, Ordering::Release);
    rx.cur = Some(CurRx {
        conn: Arc::clone(&conn),
        outstanding: 0,
        flush_pending: None,
    });
    (conn, first)
}

/// Undoes [`attach`] for a connection that never went live.
fn detach_rx(inner: &Inner, conn: &Arc<Conn>) {
    let mut rx = lock(&inner.rx);
    if rx.cur.as_ref().is_some_and(|c| Arc::ptr_eq(&c.conn, conn)) {
        rx.cur = None;
    }
}

/// Registers and publishes an attached connection; `first_credit` is the
/// peer's first grant. `Err` if epoll refused it.
fn go_live(
    inner: &Inner,
    conn: &Arc<Conn>,
    first_credit: u64,
    own_grant: Option<u64>,
) -> Result<(), String> {
    conn.register(inner)
        .map_err(|e| format!("epoll_ctl(ADD) failed: {e}"))?;
    let mut tx = lock(&inner.tx);
    tx.attach(Arc::clone(conn), first_credit);
    if let Some(g) = own_grant {
        // The server's first grant; the client's went in its ACCEPT.
        tx.push_ctrl(&proto::control(proto::FrameType::Credit, g as u16));
    }
    tx.try_write(inner);
    drop(tx);
    inner.publish(Arc::clone(conn));
    Ok(())
}

// ----- server -----

/// Where a server-side handshake stands.
#[derive(Debug)]
pub(super) enum Stage {
    /// Waiting for the client's greeting and HELLO.
    AwaitHello,
    /// Our HELLO went out; waiting for ACCEPT.
    AwaitAccept(Hello),
}

/// A handshake in progress on a server.
#[derive(Debug)]
pub(super) struct Pending {
    pub(super) key: u64,
    pub(super) sock: TcpStream,
    pub(super) peer: SocketAddr,
    pub(super) accepted: Instant,
    pub(super) deadline: Instant,
    /// Bytes received after the greeting.
    buf: Vec<u8>,
    /// The version in the peer's greeting, once read.
    version: Option<u8>,
    pub(super) stage: Stage,
}

/// What a step of a server handshake ended with.
pub(super) enum Step {
    /// Still in progress.
    Continue(Pending),
    /// Refused (by us: linger on the socket; by the peer: close).
    Refused(TcpStream, bool),
    /// The peer went away.
    Gone,
    /// The connection is live.
    Live(Arc<Conn>),
}

/// What to do with a newcomer.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Admission {
    /// There is room.
    Admit,
    /// Room once handshake `i` is dropped.
    Evict(usize, String),
    /// No room: refuse the newcomer `Busy` with this reason.
    Refuse(String),
}

/// A handshake in progress as [`admission`] sees it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ticket {
    pub(super) ip: IpAddr,
    pub(super) accepted: Instant,
    /// Still waiting for its HELLO (one that has our HELLO is about to go
    /// live and is never displaced).
    pub(super) evictable: bool,
}

/// Admission of a connection from `ip` given the handshakes in progress.
pub(super) fn admission(pending: &[Ticket], ip: IpAddr) -> Admission {
    let of = |a: IpAddr| pending.iter().filter(|p| p.ip == a).count();
    let oldest_of = |a: IpAddr| {
        pending
            .iter()
            .enumerate()
            .filter(|(_, p)| p.ip == a && p.evictable)
            .min_by_key(|(_, p)| p.accepted)
            .map(|(i, _)| i)
    };
    let mine = of(ip);
    if mine >= MAX_PENDING_PER_ADDR {
        let why = format!(
            "{ip} already has {mine} handshakes in progress (at most {MAX_PENDING_PER_ADDR} per address)"
        );
        return match oldest_of(ip) {
            Some(i) => Admission::Evict(i, why),
            None => Admission::Refuse(why),
        };
    }
    if pending.len() < MAX_PENDING {
        return Admission::Admit;
    }
    let why = format!(
        "{MAX_PENDING} handshakes in progress (the address holding most gives up its oldest)"
    );
    let heaviest = pending
        .iter()
        .filter(|p| p.evictable)
        .map(|p| p.ip)
        .max_by_key(|&a| {
            (
                of(a),
                std::cmp::Reverse(oldest_of(a).map(|i| pending[i].accepted)),
            )
        });
    match heaviest.and_then(oldest_of) {
        Some(i) => Admission::Evict(i, why),
        None => Admission::Refuse(why),
    }
}

impl Pending {
    pub(super) fn new(key: u64, sock: TcpStream, peer: SocketAddr) -> Self {
        let now = Instant::now();
        Self {
            key,
            sock,
            peer,
            accepted: now,
            deadline: now + HANDSHAKE_TIMEOUT,
            buf: Vec::new(),
            version: None,
            stage: Stage::AwaitHello,
        }
    }

    /// Refuses the pairing with this peer: tells it, records it here as
    /// the state (sticky until a connection succeeds) and an event.
    fn refuse(self, inner: &Inner, reason: RefusalReason, detail: String) -> Step {
        self.send_refusal(inner, reason, detail, true)
    }

    /// Refuses a third party (a client turned away `Busy`): an event only.
    fn refuse_third_party(self, inner: &Inner, reason: RefusalReason, detail: String) -> Step {
        self.send_refusal(inner, reason, detail, false)
    }

    fn send_refusal(
        self,
        inner: &Inner,
        reason: RefusalReason,
        detail: String,
        sticky: bool,
    ) -> Step {
        let greeted = matches!(self.stage, Stage::AwaitAccept(_));
        send_all(&self.sock, &refuse_bytes(reason, &detail, !greeted));
        inner.refused(
            Refusal {
                reason,
                detail,
                by_peer: false,
            },
            sticky,
        );
        Step::Refused(self.sock, true)
    }

    /// Reads what arrived and advances. `busy`: the server has a peer, or
    /// another client is past its HELLO.
    pub(super) fn step(mut self, inner: &Inner, kind: ChannelKind, busy: bool) -> Step {
        let mut chunk = [0u8; 2048];
        loop {
            match (&self.sock).read(&mut chunk) {
                Ok(0) => return Step::Gone,
                Ok(n) => {
                    if self.buf.len() + n > MAX_INPUT + 2048 {
                        // More than a greeting and a handshake frame before
                        // we answered: not a client of ours.
                        let detail =
                            format!("{} sent more than a handshake before any answer", self.peer);
                        return self.refuse(inner, RefusalReason::Protocol, detail);
                    }
                    self.buf.extend_from_slice(&chunk[..n]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return Step::Gone,
            }
        }
        let peer = self.peer.to_string();
        let version = match self.version {
            Some(v) => v,
            None => {
                let Some(g) = self.buf.first_chunk::<GREETING_LEN>() else {
                    return Step::Continue(self);
                };
                match proto::check_greeting(g) {
                    // A client speaks first, so it cannot be refusing us:
                    // another version is refused at once.
                    Ok(v) if v != proto::VERSION => {
                        let (reason, detail) = proto_refusal(&ProtoError::Version(v), &peer);
                        return self.refuse(inner, reason, detail);
                    }
                    Ok(v) => {
                        self.buf.drain(..GREETING_LEN);
                        self.version = Some(v);
                        v
                    }
                    Err(e) => {
                        let (reason, detail) = proto_refusal(&e, &peer);
                        return self.refuse(inner, reason, detail);
                    }
                }
            }
        };
        let msg = match proto::parse_handshake(&self.buf, version) {
            Ok(None) => return Step::Continue(self),
            Ok(Some(m)) => m,
            Err(e) => {
                let (reason, detail) = proto_refusal(&e, &peer);
                return self.refuse(inner, reason, detail);
            }
        };
        let (msg, used) = msg;
        let own = own_hello(inner, kind);
        match (std::mem::replace(&mut self.stage, Stage::AwaitHello), msg) {
            (_, Handshake::Refuse { reason, text }) => {
                inner.refused(
                    Refusal {
                        reason,
                        detail: text,
                        by_peer: true,
                    },
                    true,
                );
                Step::Refused(self.sock, false)
            }
            (Stage::AwaitHello, Handshake::Hello(h)) => {
                if busy {
                    let d = format!("server already has a peer; {peer} (pid {}) refused", h.pid);
                    return self.refuse_third_party(inner, RefusalReason::Busy, d);
                }
                if let Err((reason, detail)) =
                    proto::check_peer_hello(&own, &h, LIMITS.max_send_buffers)
                {
                    return self.refuse(
                        inner,
                        reason,
                        format!("server {}: {detail}", inner.descriptor),
                    );
                }
                self.buf.drain(..used);
                let mut out = proto::greeting().to_vec();
                out.extend_from_slice(&Handshake::Hello(own).encode());
                if !send_all(&self.sock, &out) {
                    return Step::Gone;
                }
                self.stage = Stage::AwaitAccept(h);
                Step::Continue(self)
            }
            (Stage::AwaitAccept(h), Handshake::Accept { credit, .. }) => {
                let leftover = self.buf[used..].to_vec();
                if u64::from(credit) > u64::from(h.receive_buffers) {
                    self.stage = Stage::AwaitAccept(h);
                    let d = format!(
                        "{peer} granted {credit} credits with {} receive buffers",
                        h.receive_buffers
                    );
                    return self.refuse(inner, RefusalReason::Protocol, d);
                }
                // The handshake's epoll registration makes way for the
                // connection's.
                let _ = rustix::event::epoll::delete(&inner.epoll, &self.sock);
                let (conn, first) = attach(inner, self.sock, self.peer, &own, &h, leftover);
                match go_live(inner, &conn, u64::from(credit), Some(first)) {
                    Ok(()) => Step::Live(conn),
                    Err(e) => {
                        detach_rx(inner, &conn);
                        conn.kill(inner, DisconnectReason::SocketError(e));
                        Step::Gone
                    }
                }
            }
            (stage, other) => {
                self.stage = stage;
                let d = format!("{peer}: unexpected handshake message {other:?}");
                self.refuse(inner, RefusalReason::Protocol, d)
            }
        }
    }
}

/// Refuses a connection at `accept` (allow-list, busy, no room): greeting
/// and REFUSE, recorded here as an event (a third party: never the state).
pub(super) fn refuse_third_party(
    inner: &Inner,
    sock: &TcpStream,
    reason: RefusalReason,
    detail: String,
) {
    send_all(sock, &refuse_bytes(reason, &detail, true));
    inner.refused(
        Refusal {
            reason,
            detail,
            by_peer: false,
        },
        false,
    );
}

// ----- client -----

/// Why a connection attempt did not produce a connection.
pub(super) enum ClientFail {
    /// Nobody answered or the server went away: not worth a log line.
    Quiet,
    /// Something worth recording (resolution, unexpected errors).
    Note(String),
    /// Refused by either side.
    Refused(Refusal),
}

/// Connects to one address within `deadline`, checking `stop` between
/// slices of at most 100 ms.
fn connect_one(
    addr: SocketAddr,
    deadline: Instant,
    stop: &dyn Fn() -> bool,
) -> Result<TcpStream, Errno> {
    let family = match addr {
        SocketAddr::V4(_) => rustix::net::AddressFamily::INET,
        SocketAddr::V6(_) => rustix::net::AddressFamily::INET6,
    };
    let fd: OwnedFd = rustix::net::socket_with(
        family,
        rustix::net::SocketType::STREAM,
        rustix::net::SocketFlags::CLOEXEC | rustix::net::SocketFlags::NONBLOCK,
        None,
    )?;
    match rustix::net::connect(&fd, &addr) {
        Ok(()) => {}
        Err(Errno::INPROGRESS) | Err(Errno::INTR) => loop {
            if stop() {
                return Err(Errno::CANCELED);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Errno::TIMEDOUT);
            }
            let mut p = [PollFd::new(&fd, PollFlags::OUT)];
            let _ = crate::sys::socket::poll(&mut p, Some(left.min(Duration::from_millis(100))));
            if p[0].revents().is_empty() {
                continue;
            }
            match rustix::net::sockopt::socket_error(&fd)? {
                Ok(()) => break,
                Err(e) => return Err(e),
            }
        },
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from(fd))
}

/// Resolves the descriptor's host (a host name is looked up on every
/// attempt, so a moved server is found).
pub(super) fn resolve(inner: &Inner) -> Result<Vec<SocketAddr>, String> {
    let a = &inner.addr;
    match a.host().ip() {
        Some(ip) => Ok(vec![SocketAddr::new(ip, a.port())]),
        None => {
            use std::net::ToSocketAddrs;
            let host = a.host().to_string();
            (host.as_str(), a.port())
                .to_socket_addrs()
                .map(|i| i.collect())
                .map_err(|e| format!("cannot resolve host {host}: {e}"))
        }
    }
}

/// One connection attempt of a client: connect, handshake, publish.
pub(super) fn client_attempt(inner: &Inner, kind: ChannelKind) -> Result<Arc<Conn>, ClientFail> {
    inner.stats.attempts.fetch_add(1, Ordering::Relaxed);
    let addrs = resolve(inner).map_err(ClientFail::Note)?;
    let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
    let stop = || inner.stopping();
    let mut last = None;
    let mut sock = None;
    for a in addrs {
        match connect_one(a, deadline, &stop) {
            Ok(s) => {
                sock = Some((s, a));
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let Some((sock, peer)) = sock else {
        return Err(match last {
            None => ClientFail::Note("the host name resolved to no address".into()),
            Some(Errno::CONNREFUSED | Errno::CANCELED | Errno::TIMEDOUT) => ClientFail::Quiet,
            Some(e) => ClientFail::Note(format!("connect failed: {e}")),
        });
    };
    let _ = sock.set_nodelay(true);
    let ours = |reason, detail: String| {
        ClientFail::Refused(Refusal {
            reason,
            detail,
            by_peer: false,
        })
    };
    let allow = lock(&inner.link).allow.clone();
    if !allow.allows(peer.ip()) {
        let d = format!("client does not accept server {peer} (allow-list: {allow})");
        send_all(&sock, &refuse_bytes(RefusalReason::AccessDenied, &d, true));
        return Err(ours(RefusalReason::AccessDenied, d));
    }
    let own = own_hello(inner, kind);
    let mut out = proto::greeting().to_vec();
    out.extend_from_slice(&Handshake::Hello(own).encode());
    // A server that refuses at once may have closed already: read on.
    send_all(&sock, &out);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 2048];
    let (msg, used, version) = loop {
        if inner.stopping() {
            return Err(ClientFail::Quiet);
        }
        if let Some(g) = buf.first_chunk::<GREETING_LEN>() {
            let version = match proto::check_greeting(g) {
                Ok(v) => v,
                Err(e) => {
                    let (r, d) = proto_refusal(&e, &peer.to_string());
                    send_all(&sock, &refuse_bytes(r, &d, false));
                    return Err(ours(r, d));
                }
            };
            match proto::parse_handshake(&buf[GREETING_LEN..], version) {
                Ok(Some((m, used))) => break (m, used, version),
                Ok(None) => {}
                Err(e) => {
                    let (r, d) = proto_refusal(&e, &peer.to_string());
                    send_all(&sock, &refuse_bytes(r, &d, false));
                    return Err(ours(r, d));
                }
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ours(
                RefusalReason::Protocol,
                format!("server {peer} did not answer the handshake within {HANDSHAKE_TIMEOUT:?}"),
            ));
        }
        let mut p = [PollFd::new(&sock, PollFlags::IN)];
        let _ = crate::sys::socket::poll(&mut p, Some(left.min(Duration::from_millis(100))));
        match (&sock).read(&mut chunk) {
            Ok(0) => return Err(ClientFail::Quiet),
            Ok(n) if buf.len() + n <= MAX_INPUT + 2048 => buf.extend_from_slice(&chunk[..n]),
            Ok(_) => {
                let d = format!("server {peer} sent more than a handshake");
                return Err(ours(RefusalReason::Protocol, d));
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                ) => {}
            Err(_) => return Err(ClientFail::Quiet),
        }
    };
    let _ = version;
    let h = match msg {
        Handshake::Hello(h) => h,
        Handshake::Refuse { reason, text } => {
            return Err(ClientFail::Refused(Refusal {
                reason,
                detail: text,
                by_peer: true,
            }))
        }
        other => {
            let d = format!("server {peer} sent {other:?} instead of its HELLO");
            send_all(&sock, &refuse_bytes(RefusalReason::Protocol, &d, false));
            return Err(ours(RefusalReason::Protocol, d));
        }
    };
    if let Err((r, d)) = proto::check_peer_hello(&own, &h, LIMITS.max_send_buffers) {
        let d = format!("client {}: {d}", inner.descriptor);
        send_all(&sock, &refuse_bytes(r, &d, false));
        return Err(ours(r, d));
    }
    let leftover = buf[GREETING_LEN + used..].to_vec();
    let (conn, first) = attach(inner, sock, peer, &own, &h, leftover);
    let accept = Handshake::Accept {
        features: own.features & h.features,
        credit: first as u16,
    };
    if !send_all(&conn.sock, &accept.encode()) {
        detach_rx(inner, &conn);
        return Err(ClientFail::Quiet);
    }
    match go_live(inner, &conn, 0, None) {
        Ok(()) => Ok(conn),
        Err(e) => {
            detach_rx(inner, &conn);
            conn.kill(inner, DisconnectReason::SocketError(e.clone()));
            Err(ClientFail::Note(e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_interval_is_a_fifth_of_the_stricter_timeout() {
        assert_eq!(
            heartbeats(5000, 5000),
            (Some(Duration::from_secs(5)), Some(Duration::from_secs(1)))
        );
        assert_eq!(
            heartbeats(0, 1000),
            (None, Some(Duration::from_millis(200)))
        );
        assert_eq!(
            heartbeats(1000, 0),
            (
                Some(Duration::from_secs(1)),
                Some(Duration::from_millis(200))
            )
        );
        assert_eq!(heartbeats(0, 0), (None, None));
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_address_at_its_budget_displaces_its_own_oldest() {
        let t = Instant::now();
        let at = |ms| t + Duration::from_millis(ms);
        let tk = |a: &str, ms, evictable| Ticket {
            ip: ip(a),
            accepted: at(ms),
            evictable,
        };
        let mut p = vec![tk("10.0.0.2", 0, true), tk("10.0.0.1", 1, false)];
        p.extend((2..5).map(|i| tk("10.0.0.1", i, true)));
        match admission(&p, ip("10.0.0.1")) {
            Admission::Evict(i, why) => {
                assert_eq!(i, 2, "the oldest that has no HELLO answered yet");
                assert!(why.contains("per address"), "{why}");
            }
            a => panic!("{a:?}"),
        }
        assert_eq!(admission(&p, ip("10.0.0.3")), Admission::Admit);
        let only_answered = vec![tk("10.0.0.1", 0, false); MAX_PENDING_PER_ADDR];
        assert!(matches!(
            admission(&only_answered, ip("10.0.0.1")),
            Admission::Refuse(_)
        ));
    }

    #[test]
    fn a_full_table_takes_from_the_address_holding_most() {
        let t = Instant::now();
        let at = |ms| t + Duration::from_millis(ms);
        let mut p = Vec::new();
        for (n, host) in [
            (4, "10.0.0.1"),
            (4, "10.0.0.2"),
            (4, "10.0.0.3"),
            (3, "10.0.0.4"),
            (1, "10.0.0.5"),
        ] {
            for i in 0..n {
                p.push(Ticket {
                    ip: ip(host),
                    accepted: at(p.len() as u64 * 10 + i),
                    evictable: true,
                });
            }
        }
        assert_eq!(p.len(), MAX_PENDING);
        match admission(&p, ip("10.0.0.9")) {
            Admission::Evict(i, _) => {
                assert_eq!(p[i].ip, ip("10.0.0.1"), "the oldest of the heaviest");
                assert_eq!(i, 0);
            }
            a => panic!("{a:?}"),
        }
    }
}
