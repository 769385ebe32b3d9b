//! The service thread of an `ipc://` transport: the server's listening
//! socket and handshakes in progress, or the client's retry timer, and the
//! connected socket of the current peer (whose hang-up is the crash signal).
//! It sleeps in `poll` and never touches the rings.
//!
//! Any local user can connect to the server's abstract socket, as often as
//! it likes, so the server's loop bounds the work of one turn: at most
//! [`ACCEPT_BATCH`] connections are accepted per wake-up, and between two
//! batches the loop services the wake-up descriptor (so `stop` is seen),
//! the live connection (so a dead peer is noticed) and the handshakes in
//! progress (so an honest client's HELLO is answered). A flood of
//! connections therefore slows each of those by one batch at most; it can
//! no longer keep the thread in `accept` for as long as it lasts.
//!
//! Handshakes in progress are bounded ([`MAX_PENDING`] in all,
//! [`MAX_PENDING_PER_UID`] per user) and admitted by [`admission`]: a user
//! at its budget makes room by dropping its own oldest handshake still
//! waiting for a HELLO; a full table drops the oldest such handshake of the
//! user holding the most. A handshake whose client has received its
//! section (waiting for READY) is never dropped to make room.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags};
use rustix::io::Errno;

use super::logging::LogClass;
use super::proto::{self, Accept, Hello, Message, SectionLayout};
use super::section::{check_section_header, fences_for, own_features, write_section_header};
use super::{lock, Conn, Inner, HANDSHAKE_TIMEOUT, LIMITS, MAX_PENDING};
use crate::sys::shm;
use crate::sys::socket::{self, PeerCred};
use crate::transport::{ChannelKind, DisconnectReason, Refusal, RefusalReason, Role};

/// Connections accepted per turn of the server's loop.
pub(super) const ACCEPT_BATCH: usize = 16;
/// Longest a client waits in `connect` for room in a full accept queue.
const CONNECT_WAIT: Duration = Duration::from_millis(100);
/// Handshakes in progress one user may hold on a server.
pub(super) const MAX_PENDING_PER_UID: usize = 4;

pub(super) struct Service {
    inner: Arc<Inner>,
    kind: ChannelKind,
    own_uid: u32,
}

enum Stage {
    AwaitHello,
    AwaitReady(Arc<Conn>),
}

struct Pending {
    fd: OwnedFd,
    cred: PeerCred,
    accepted: Instant,
    deadline: Instant,
    stage: Stage,
}

impl Pending {
    fn ticket(&self) -> Ticket {
        Ticket {
            uid: self.cred.uid,
            awaiting_hello: matches!(self.stage, Stage::AwaitHello),
            accepted: self.accepted,
        }
    }
}

/// A handshake in progress as [`admission`] sees it.
#[derive(Debug, Clone, Copy)]
struct Ticket {
    uid: u32,
    /// Still waiting for the HELLO: no section was made for it yet.
    awaiting_hello: bool,
    accepted: Instant,
}

/// What to do with a new connection from a user the policy allows.
#[derive(Debug, PartialEq, Eq)]
enum Admission {
    /// There is room.
    Admit,
    /// There is room once handshake `i` (one still waiting for its HELLO)
    /// is dropped.
    Evict(usize, String),
    /// No room: refuse the newcomer `Busy` with this detail.
    Refuse(String),
}

/// Decides whether a connection from `uid` may start a handshake, given
/// those in progress. `busy`: the server already has a peer (a newcomer
/// will be refused after its HELLO anyway, so it never displaces anyone).
fn admission(tickets: &[Ticket], uid: u32, busy: bool) -> Admission {
    let oldest_awaiting = |of: &dyn Fn(&Ticket) -> bool| {
        tickets
            .iter()
            .enumerate()
            .filter(|(_, t)| t.awaiting_hello && of(t))
            .min_by_key(|(_, t)| t.accepted)
            .map(|(i, _)| i)
    };
    let of_uid = |u: u32| tickets.iter().filter(|t| t.uid == u).count();
    let mine = of_uid(uid);
    if mine >= MAX_PENDING_PER_UID {
        let why = format!(
            "uid {uid} already has {mine} handshakes in progress (at most {MAX_PENDING_PER_UID} per user)"
        );
        return match oldest_awaiting(&|t| t.uid == uid) {
            Some(i) => Admission::Evict(i, why),
            None => Admission::Refuse(why),
        };
    }
    if tickets.len() < MAX_PENDING {
        return Admission::Admit;
    }
    let why = format!("{MAX_PENDING} handshakes in progress");
    if busy {
        return Admission::Refuse(format!("server has a peer and {why}"));
    }
    // Full: the user holding the most gives one up, its oldest.
    let most = tickets
        .iter()
        .filter(|t| t.awaiting_hello)
        .map(|t| of_uid(t.uid))
        .max();
    match most {
        Some(most) => match oldest_awaiting(&|t| of_uid(t.uid) == most) {
            Some(i) => Admission::Evict(i, why),
            None => Admission::Refuse(why),
        },
        None => Admission::Refuse(why),
    }
}

/// What happened on a connected socket.
enum SocketEvent {
    Nothing,
    Closed(DisconnectReason),
}

fn check_connected_socket(fd: &OwnedFd, revents: PollFlags) -> SocketEvent {
    if revents.is_empty() {
        return SocketEvent::Nothing;
    }
    let mut buf = [0u8; 64];
    match socket::recv(fd, &mut buf) {
        Ok(r) if r.len == 0 => SocketEvent::Closed(DisconnectReason::PeerLeft),
        Ok(_) => SocketEvent::Closed(DisconnectReason::Violation(
            "it sent data on the socket after the handshake".into(),
        )),
        Err(e) if e.errno == Errno::AGAIN => {
            if revents.intersects(PollFlags::HUP | PollFlags::ERR) {
                SocketEvent::Closed(DisconnectReason::PeerLeft)
            } else {
                SocketEvent::Nothing
            }
        }
        Err(e) => SocketEvent::Closed(DisconnectReason::SocketError(e.to_string())),
    }
}

impl Service {
    pub(super) fn new(inner: Arc<Inner>, kind: ChannelKind) -> Self {
        Self {
            inner,
            kind,
            own_uid: socket::own_ids().0,
        }
    }

    fn stopping(&self) -> bool {
        self.inner.stopping.load(Ordering::Acquire)
    }

    fn drain_wake(&self) {
        let mut b = [0u8; 8];
        let _ = rustix::io::read(&self.inner.wake_fd, &mut b);
    }

    fn hello(&self) -> Hello {
        let c = &self.inner.config;
        Hello {
            kind: self.kind,
            directions: c.directions(),
            buffer_size: c.buffer_size() as u64,
            send_buffers: c.send_buffers(),
            receive_buffers: c.receive_buffers(),
            pid: std::process::id(),
            port: self.inner.addr.port().unwrap_or(0),
            address: self.inner.addr.address().to_owned(),
            features: own_features(),
        }
    }

    fn policy_allows(&self, cred: &PeerCred) -> bool {
        lock(&self.inner.link)
            .policy
            .allows(self.own_uid, cred.uid, cred.gid)
    }

    /// Refuses the pairing with this peer: sends the reason and records
    /// it as the state (sticky until a connection succeeds) and an event.
    fn refuse(&self, fd: &OwnedFd, reason: RefusalReason, detail: String) {
        self.send_refusal(fd, reason, detail, true);
    }

    /// Refuses a third party (a client turned away `Busy`, a user the
    /// access policy does not admit): nothing about this side's own
    /// connection is wrong, so it is an event only, never the state. Any
    /// local user can connect, so this must not let one set the state.
    fn refuse_third_party(&self, fd: &OwnedFd, reason: RefusalReason, detail: String) {
        self.send_refusal(fd, reason, detail, false);
    }

    fn send_refusal(&self, fd: &OwnedFd, reason: RefusalReason, detail: String, sticky: bool) {
        let msg = Message::Refuse {
            reason,
            text: detail.clone(),
        };
        let _ = socket::send(fd, &msg.encode(), None);
        let mut link = lock(&self.inner.link);
        self.inner.refused(
            &mut link,
            Refusal {
                reason,
                detail,
                by_peer: false,
            },
            sticky,
        );
    }

    // ----- server -----

    pub(super) fn run_server(self, listener: OwnedFd) {
        let mut active: Option<(OwnedFd, Arc<Conn>)> = None;
        let mut pending: Vec<Pending> = Vec::new();
        while !self.stopping() {
            if let Some((_, c)) = &active {
                if c.dead.load(Ordering::Acquire) {
                    let (fd, c) = active.take().expect("checked");
                    socket::shutdown(&fd);
                    // Only the data path kills a live connection: the
                    // violation it recorded is the reason.
                    self.inner.disconnect(
                        &c,
                        DisconnectReason::Violation("dropped by this side".into()),
                        Role::Server,
                    );
                }
            }
            let now = Instant::now();
            let timeout = pending
                .iter()
                .map(|p| p.deadline.saturating_duration_since(now))
                .min();
            let (wake_ev, listen_ev, active_ev, pend_ev) = {
                let mut fds = Vec::with_capacity(3 + pending.len());
                fds.push(PollFd::new(&self.inner.wake_fd, PollFlags::IN));
                fds.push(PollFd::new(&listener, PollFlags::IN));
                if let Some((fd, _)) = &active {
                    fds.push(PollFd::new(fd, PollFlags::IN));
                }
                for p in &pending {
                    fds.push(PollFd::new(&p.fd, PollFlags::IN));
                }
                if let Err(e) = socket::poll(&mut fds, timeout) {
                    log::error!("lwmq {}: {e}", self.inner.descriptor);
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
                let ev: Vec<PollFlags> = fds.iter().map(|f| f.revents()).collect();
                let a = usize::from(active.is_some());
                (
                    ev[0],
                    ev[1],
                    if a == 1 { ev[2] } else { PollFlags::empty() },
                    ev[2 + a..].to_vec(),
                )
            };
            if !wake_ev.is_empty() {
                self.drain_wake();
            }
            if let Some((fd, _)) = &active {
                if let SocketEvent::Closed(why) = check_connected_socket(fd, active_ev) {
                    let (_fd, c) = active.take().expect("checked");
                    self.inner.disconnect(&c, why, Role::Server);
                }
            }
            // Progress handshakes (in reverse so removal keeps indices).
            for i in (0..pending.len()).rev() {
                if pend_ev[i].is_empty() {
                    continue;
                }
                let p = pending.swap_remove(i);
                if let Some(p) = self.server_step(p, &mut active, &pending) {
                    pending.push(p);
                }
            }
            let now = Instant::now();
            pending.retain(|p| {
                let keep = p.deadline > now;
                if !keep {
                    let mut link = lock(&self.inner.link);
                    self.inner.note(
                        &mut link,
                        LogClass::HandshakeTimeout,
                        format!(
                            "handshake with {} timed out; connection closed",
                            p.cred.pid_text()
                        ),
                    );
                }
                keep
            });
            if !listen_ev.is_empty() {
                // Bounded: more waiting connections keep the listener
                // readable, so the next turn comes at once, after the
                // wake-up, the live connection and the handshakes.
                self.accept_batch(&listener, &mut pending, active.is_some());
            }
        }
        if let Some((fd, c)) = active {
            socket::shutdown(&fd);
            self.inner
                .disconnect(&c, DisconnectReason::Closed, Role::Server);
        }
    }

    /// Accepts up to [`ACCEPT_BATCH`] connections: checks each one's
    /// credentials against the policy and admits it to the handshakes in
    /// progress, or refuses it with a reason it can read.
    fn accept_batch(&self, listener: &OwnedFd, pending: &mut Vec<Pending>, busy: bool) {
        for _ in 0..ACCEPT_BATCH {
            let fd = match socket::accept(listener) {
                Ok(Some(fd)) => fd,
                Ok(None) => return,
                Err(e) => {
                    let mut link = lock(&self.inner.link);
                    self.inner.note(&mut link, LogClass::Accept, e.to_string());
                    // EMFILE and friends: back off instead of spinning.
                    std::thread::sleep(Duration::from_millis(10));
                    return;
                }
            };
            let cred = match socket::peer_cred(&fd) {
                Ok(c) => c,
                Err(e) => {
                    // Without credentials the policy cannot be applied.
                    self.refuse_third_party(
                        &fd,
                        RefusalReason::AccessDenied,
                        format!("the server could not read the client's credentials: {e}"),
                    );
                    continue;
                }
            };
            if !self.policy_allows(&cred) {
                self.refuse_third_party(
                    &fd,
                    RefusalReason::AccessDenied,
                    format!(
                        "server (uid {}) does not accept uid {} gid {} ({}); set an access policy that allows it",
                        self.own_uid,
                        cred.uid,
                        cred.gid,
                        cred.pid_text()
                    ),
                );
                continue;
            }
            let tickets: Vec<Ticket> = pending.iter().map(Pending::ticket).collect();
            match admission(&tickets, cred.uid, busy) {
                Admission::Admit => {}
                Admission::Evict(i, why) => {
                    let old = pending.remove(i);
                    self.refuse_third_party(
                        &old.fd,
                        RefusalReason::Busy,
                        format!(
                            "handshake with {} dropped before its HELLO to make room: {why}",
                            old.cred.pid_text()
                        ),
                    );
                }
                Admission::Refuse(why) => {
                    self.refuse_third_party(
                        &fd,
                        RefusalReason::Busy,
                        format!("{} refused: {why}", cred.pid_text()),
                    );
                    continue;
                }
            }
            let now = Instant::now();
            pending.push(Pending {
                fd,
                cred,
                accepted: now,
                deadline: now + HANDSHAKE_TIMEOUT,
                stage: Stage::AwaitHello,
            });
        }
    }

    /// Advances one handshake; returns it if it is still in progress.
    fn server_step(
        &self,
        p: Pending,
        active: &mut Option<(OwnedFd, Arc<Conn>)>,
        others: &[Pending],
    ) -> Option<Pending> {
        let mut buf = [0u8; proto::MAX_MESSAGE];
        let r = match socket::recv(&p.fd, &mut buf) {
            Ok(r) => r,
            Err(e) if e.errno == Errno::AGAIN => return Some(p),
            Err(_) => return None,
        };
        if r.len == 0 {
            return None; // the peer went away mid-handshake
        }
        let msg = if r.truncated {
            Err(proto::ProtoError::BadField("message length"))
        } else {
            Message::decode(&buf[..r.len])
        };
        // The client's readiness eventfd travels with its HELLO.
        let client_ready = r.fd;
        let Pending {
            fd,
            cred,
            accepted,
            deadline,
            stage,
        } = p;
        match (stage, msg) {
            (Stage::AwaitHello, Ok(Message::Hello(h))) => {
                let busy = active.is_some()
                    || others
                        .iter()
                        .any(|o| matches!(o.stage, Stage::AwaitReady(_)));
                if busy {
                    self.refuse_third_party(
                        &fd,
                        RefusalReason::Busy,
                        format!("server already has a peer; {} refused", cred.pid_text()),
                    );
                    return None;
                }
                if let Err((reason, detail)) = self.check_hello(&h) {
                    self.refuse(&fd, reason, detail);
                    return None;
                }
                let peer_ready = match self.peer_readiness(h.features, client_ready) {
                    Ok(p) => p,
                    Err(detail) => {
                        self.refuse(&fd, RefusalReason::Protocol, detail);
                        return None;
                    }
                };
                match self.create_section(&h, &fd, cred, peer_ready) {
                    Ok(conn) => Some(Pending {
                        fd,
                        cred,
                        accepted,
                        deadline,
                        stage: Stage::AwaitReady(conn),
                    }),
                    Err(detail) => {
                        self.refuse(&fd, RefusalReason::Resources, detail);
                        None
                    }
                }
            }
            (Stage::AwaitReady(conn), Ok(Message::Ready)) => {
                self.inner.establish(Arc::clone(&conn));
                *active = Some((fd, conn));
                None
            }
            (_, Ok(Message::Refuse { reason, text })) => {
                let mut link = lock(&self.inner.link);
                self.inner.refused(
                    &mut link,
                    Refusal {
                        reason,
                        detail: text,
                        by_peer: true,
                    },
                    true,
                );
                None
            }
            // A statistics query on the rendezvous: this user passed the
            // access policy at accept; answered and closed at once, never
            // a handshake in progress (docs/ipc-protocol.md).
            (Stage::AwaitHello, Ok(Message::Stat)) => {
                crate::transport::stat::answer(&fd, &cred);
                None
            }
            (_, Ok(other)) => {
                self.refuse(
                    &fd,
                    RefusalReason::Protocol,
                    format!("unexpected handshake message {other:?}"),
                );
                None
            }
            (_, Err(e)) => {
                let reason = match e {
                    proto::ProtoError::Version(_) => RefusalReason::Version,
                    _ => RefusalReason::Protocol,
                };
                self.refuse(&fd, reason, format!("{}: {e}", cred.pid_text()));
                None
            }
        }
    }

    fn check_hello(&self, h: &Hello) -> Result<(), (RefusalReason, String)> {
        let c = &self.inner.config;
        if h.kind != self.kind {
            return Err((
                RefusalReason::ChannelKind,
                format!(
                    "server channel is {:?}, client channel is {:?}",
                    self.kind, h.kind
                ),
            ));
        }
        let port = self.inner.addr.port().unwrap_or(0);
        if h.address != self.inner.addr.address() || h.port != port {
            return Err((
                RefusalReason::Address,
                format!(
                    "server serves {}, client asked for another address",
                    self.inner.addr
                ),
            ));
        }
        if h.buffer_size != c.buffer_size() as u64 {
            return Err((
                RefusalReason::BufferSize,
                format!(
                    "server buffer size {} bytes, client buffer size {} bytes (rule: both sides use the same buffer size)",
                    c.buffer_size(),
                    h.buffer_size
                ),
            ));
        }
        let d = c.directions();
        if h.directions.sends() != d.receives() || h.directions.receives() != d.sends() {
            return Err((
                RefusalReason::Directions,
                format!(
                    "server {}, client {} (rule: what one side sends the other must receive)",
                    d, h.directions
                ),
            ));
        }
        let max = LIMITS.max_send_buffers;
        if h.send_buffers > max || h.receive_buffers > max {
            return Err((RefusalReason::Protocol, "buffer counts out of range".into()));
        }
        Ok(())
    }

    /// The peer's readiness eventfd, checked, if the readiness feature is
    /// used on this connection (the peer offered it, and so do we).
    fn peer_readiness(
        &self,
        features: u16,
        fd: Option<OwnedFd>,
    ) -> Result<Option<Arc<OwnedFd>>, String> {
        if features & own_features() & proto::FEATURE_READINESS == 0 {
            return Ok(None);
        }
        let fd = fd.ok_or_else(|| {
            "peer offered the readiness feature but passed no readiness descriptor (rule: an eventfd travels with HELLO and ACCEPT)".to_owned()
        })?;
        socket::check_readiness_fd(&fd)?;
        Ok(Some(Arc::new(fd)))
    }

    fn create_section(
        &self,
        h: &Hello,
        fd: &OwnedFd,
        cred: PeerCred,
        peer_ready: Option<Arc<OwnedFd>>,
    ) -> Result<Arc<Conn>, String> {
        let c = &self.inner.config;
        let c2s = h.send_buffers + c.receive_buffers();
        let s2c = c.send_buffers() + h.receive_buffers;
        let layout = SectionLayout::compute(h.buffer_size, c2s, s2c).ok_or_else(|| {
            format!(
                "section for {c2s}+{s2c} buffers of {} bytes is too large",
                h.buffer_size
            )
        })?;
        // Short enough for `memfd_create` whatever the address's length.
        let name = self.inner.addr.section_name();
        let (memfd, map) = shm::create(&name, layout.len).map_err(|e| e.to_string())?;
        write_section_header(&map, &layout);
        let features = h.features & own_features();
        let accept = Message::Accept(Accept {
            section_len: layout.len as u64,
            c2s_capacity: c2s,
            s2c_capacity: s2c,
            buffer_size: h.buffer_size,
            features,
        });
        // The memfd, then (with the readiness feature) our eventfd.
        let ready = self.inner.ready_fd.as_fd();
        let attach = [memfd.as_fd(), ready];
        let n = if features & proto::FEATURE_READINESS != 0 {
            2
        } else {
            1
        };
        socket::send_fds(fd, &accept.encode(), &attach[..n]).map_err(|e| e.to_string())?;
        let d = c.directions();
        Ok(Arc::new(Conn {
            map: Arc::new(map),
            tx: d.sends().then_some(layout.s2c),
            rx: d.receives().then_some(layout.c2s),
            dead: AtomicBool::new(false),
            peer: cred,
            fences: fences_for(features),
            violation: OnceLock::new(),
            peer_ready,
            local_ready: Arc::clone(&self.inner.ready_fd),
        }))
    }

    // ----- client -----

    pub(super) fn run_client(self) {
        let mut active: Option<(OwnedFd, Arc<Conn>)> = None;
        let mut next_attempt = Instant::now();
        while !self.stopping() {
            if let Some((_, c)) = &active {
                if c.dead.load(Ordering::Acquire) {
                    let (fd, c) = active.take().expect("checked");
                    socket::shutdown(&fd);
                    self.inner.disconnect(
                        &c,
                        DisconnectReason::Violation("dropped by this side".into()),
                        Role::Client,
                    );
                    next_attempt = Instant::now() + self.retry();
                }
            }
            if active.is_none() && Instant::now() >= next_attempt {
                active = self.try_connect();
                next_attempt = Instant::now() + self.retry();
                continue;
            }
            let timeout = match active {
                Some(_) => None,
                None => Some(next_attempt.saturating_duration_since(Instant::now())),
            };
            let (wake_ev, active_ev) = {
                let mut fds = Vec::with_capacity(2);
                fds.push(PollFd::new(&self.inner.wake_fd, PollFlags::IN));
                if let Some((fd, _)) = &active {
                    fds.push(PollFd::new(fd, PollFlags::IN));
                }
                if let Err(e) = socket::poll(&mut fds, timeout) {
                    log::error!("lwmq {}: {e}", self.inner.descriptor);
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
                (
                    fds[0].revents(),
                    fds.get(1).map_or(PollFlags::empty(), |f| f.revents()),
                )
            };
            if !wake_ev.is_empty() {
                self.drain_wake();
                // The retry interval may have changed.
                if active.is_none() {
                    next_attempt = next_attempt.min(Instant::now() + self.retry());
                }
            }
            if let Some((fd, _)) = &active {
                if let SocketEvent::Closed(why) = check_connected_socket(fd, active_ev) {
                    let (_fd, c) = active.take().expect("checked");
                    self.inner.disconnect(&c, why, Role::Client);
                    // The server may be restarting: try again at once.
                    next_attempt = Instant::now();
                }
            }
        }
        if let Some((fd, c)) = active {
            socket::shutdown(&fd);
            self.inner
                .disconnect(&c, DisconnectReason::Closed, Role::Client);
        }
    }

    fn retry(&self) -> Duration {
        Duration::from_millis(self.inner.retry_ms.load(Ordering::Relaxed))
    }

    /// One connection attempt; `Some` on success.
    fn try_connect(&self) -> Option<(OwnedFd, Arc<Conn>)> {
        self.inner.stats.attempts.fetch_add(1, Ordering::Relaxed);
        // Wait (briefly) for room if the server's accept queue is full: an
        // accept flood then delays this client instead of making every
        // attempt fail (see `socket::connect_waiting`). Bounded so that
        // `stop` is never held up longer than that.
        let wait = self.retry().min(CONNECT_WAIT);
        let fd = match socket::connect_waiting(&self.inner.name, wait) {
            Ok(fd) => fd,
            Err(e) => {
                // Nobody listening (yet): the normal case before the server
                // starts. Anything else is worth a log line.
                if !matches!(e.errno, Errno::CONNREFUSED | Errno::NOENT | Errno::AGAIN) {
                    let mut link = lock(&self.inner.link);
                    self.inner.note(&mut link, LogClass::Connect, e.to_string());
                }
                // The state stays as it is: `Connecting`, or a refusal
                // seen earlier, which is sticky until a connection.
                return None;
            }
        };
        match self.client_handshake(&fd) {
            Ok(conn) => {
                self.inner.establish(Arc::clone(&conn));
                Some((fd, conn))
            }
            Err(Some(refusal)) => {
                let mut link = lock(&self.inner.link);
                self.inner.refused(&mut link, refusal, true);
                None
            }
            // The server went away mid-handshake: nothing to report, and
            // the state stays as it is.
            Err(None) => None,
        }
    }

    /// The client half of the handshake. `Err(None)`: the server went away
    /// (not worth reporting); `Err(Some)`: refused by either side.
    fn client_handshake(&self, fd: &OwnedFd) -> Result<Arc<Conn>, Option<Refusal>> {
        let ours = |reason, detail| {
            Some(Refusal {
                reason,
                detail,
                by_peer: false,
            })
        };
        let deny = |detail: String| {
            let _ = socket::send(
                fd,
                &Message::Refuse {
                    reason: RefusalReason::AccessDenied,
                    text: detail.clone(),
                }
                .encode(),
                None,
            );
            ours(RefusalReason::AccessDenied, detail)
        };
        let cred = socket::peer_cred(fd).map_err(|e| {
            // Without credentials the policy cannot be applied.
            deny(format!(
                "the client could not read the server's credentials: {e}"
            ))
        })?;
        if !self.policy_allows(&cred) {
            return Err(deny(format!(
                "client (uid {}) does not accept a server of uid {} gid {} ({}); set an access policy that allows it",
                self.own_uid,
                cred.uid,
                cred.gid,
                cred.pid_text()
            )));
        }
        // A server that refuses before reading (access denied, busy) may
        // already have sent its REFUSE and closed: the send then fails, but
        // the REFUSE is still queued for us, so read on instead of giving up.
        let hello = self.hello();
        let ready =
            (hello.features & proto::FEATURE_READINESS != 0).then(|| self.inner.ready_fd.as_fd());
        let _ = socket::send(fd, &Message::Hello(hello).encode(), ready);
        let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
        let mut buf = [0u8; proto::MAX_MESSAGE];
        let r = loop {
            if self.stopping() {
                return Err(None);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ours(
                    RefusalReason::Protocol,
                    format!("server ({}) did not answer the handshake", cred.pid_text()),
                ));
            }
            match socket::wait(fd.as_fd(), Some(left.min(Duration::from_millis(100)))) {
                Ok(socket::Readiness::TimedOut) => continue,
                Ok(_) => {}
                Err(_) => return Err(None),
            }
            match socket::recv(fd, &mut buf) {
                Ok(r) => break r,
                Err(e) if e.errno == Errno::AGAIN => continue,
                // The server closed with our HELLO unread: the kernel reports
                // the reset once (clearing it), and a REFUSE sent before the
                // close is still queued behind it.
                Err(e) if e.errno == Errno::CONNRESET => continue,
                Err(_) => return Err(None),
            }
        };
        if r.len == 0 {
            return Err(None);
        }
        let msg = Message::decode(&buf[..r.len]);
        let accept = match msg {
            Ok(Message::Accept(a)) => a,
            Ok(Message::Refuse { reason, text }) => {
                return Err(Some(Refusal {
                    reason,
                    detail: text,
                    by_peer: true,
                }))
            }
            Ok(other) => {
                return Err(ours(
                    RefusalReason::Protocol,
                    format!("unexpected handshake message {other:?}"),
                ))
            }
            Err(e) => return Err(ours(RefusalReason::Protocol, e.to_string())),
        };
        // Tell the server why we give up, and report it here too.
        let refuse = |reason: RefusalReason, detail: String| {
            let _ = socket::send(
                fd,
                &Message::Refuse {
                    reason,
                    text: detail.clone(),
                }
                .encode(),
                None,
            );
            ours(reason, detail)
        };
        let fail = |detail: String| refuse(RefusalReason::Protocol, detail);
        let c = &self.inner.config;
        let d = c.directions();
        let max_cap = LIMITS.max_total_buffers * 2;
        if accept.features & !own_features() != 0
            || accept.buffer_size != c.buffer_size() as u64
            || accept.c2s_capacity > max_cap
            || accept.s2c_capacity > max_cap
            || (d.sends() && accept.c2s_capacity < c.send_buffers())
            || (d.receives() && accept.s2c_capacity < c.receive_buffers())
        {
            return Err(fail(format!(
                "server sent inconsistent section parameters {accept:?}"
            )));
        }
        let layout =
            SectionLayout::compute(accept.buffer_size, accept.c2s_capacity, accept.s2c_capacity)
                .filter(|l| l.len as u64 == accept.section_len)
                .ok_or_else(|| {
                    fail(format!(
                        "server announced a section of {} bytes that does not match its parameters",
                        accept.section_len
                    ))
                })?;
        // Running out of descriptors or memory here is this process's
        // condition, not the server's fault: refuse with `Resources`.
        let short_of_resources = |detail: String| refuse(RefusalReason::Resources, detail);
        let memfd = match r.fd {
            Some(memfd) => memfd,
            None if r.fds_dropped => {
                return Err(short_of_resources(
                    "the section descriptor could not be received: no free descriptor in this process (MSG_CTRUNC)".into(),
                ))
            }
            None => return Err(fail("server sent no section descriptor".into())),
        };
        let map = shm::open(&memfd, layout.len).map_err(|e| match e {
            shm::OpenSectionError::Sys(s)
                if matches!(s.errno, Errno::NOMEM | Errno::MFILE | Errno::NFILE) =>
            {
                short_of_resources(s.to_string())
            }
            e => fail(e.to_string()),
        })?;
        drop(memfd);
        if !check_section_header(&map, &layout) {
            return Err(fail("section header does not match the handshake".into()));
        }
        let peer_ready = self
            .peer_readiness(accept.features, r.second)
            .map_err(fail)?;
        socket::send(fd, &Message::Ready.encode(), None).map_err(|_| None)?;
        Ok(Arc::new(Conn {
            map: Arc::new(map),
            tx: d.sends().then_some(layout.c2s),
            rx: d.receives().then_some(layout.s2c),
            dead: AtomicBool::new(false),
            peer: cred,
            fences: fences_for(accept.features),
            violation: OnceLock::new(),
            peer_ready,
            local_ready: Arc::clone(&self.inner.ready_fd),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(uid: u32, awaiting_hello: bool, base: Instant, ms: u64) -> Ticket {
        Ticket {
            uid,
            awaiting_hello,
            accepted: base + Duration::from_millis(ms),
        }
    }

    #[test]
    fn room_is_admitted() {
        let b = Instant::now();
        assert_eq!(admission(&[], 1, false), Admission::Admit);
        let some: Vec<Ticket> = (0..3).map(|i| t(1, true, b, i)).collect();
        assert_eq!(admission(&some, 1, false), Admission::Admit);
        assert_eq!(admission(&some, 2, true), Admission::Admit);
    }

    /// A user at its budget displaces its own oldest handshake still
    /// waiting for a HELLO, never another user's and never one that has
    /// its section.
    #[test]
    fn a_user_at_its_budget_gives_up_its_own_oldest() {
        let b = Instant::now();
        let mut v = vec![t(2, true, b, 0)];
        v.push(t(1, false, b, 1)); // has its section
        v.extend((2..5).map(|i| t(1, true, b, i)));
        assert!(matches!(admission(&v, 1, false), Admission::Evict(2, _)));
        assert!(matches!(admission(&v, 1, true), Admission::Evict(2, _)));
        // Only sectioned ones left for that user: refuse the newcomer.
        let v: Vec<Ticket> = (0..4).map(|i| t(1, i != 0, b, i)).collect();
        let only_ready = vec![t(1, false, b, 0); MAX_PENDING_PER_UID];
        assert!(matches!(admission(&v, 1, false), Admission::Evict(1, _)));
        match admission(&only_ready, 1, false) {
            Admission::Refuse(why) => assert!(why.contains("per user"), "{why}"),
            a => panic!("{a:?}"),
        }
    }

    /// A full table: the user holding the most gives up its oldest
    /// HELLO-less handshake; a sectioned one is never chosen, even if it
    /// is the oldest of all (the old code dropped `pending[0]`).
    #[test]
    fn a_full_table_takes_from_the_heaviest_user_never_a_sectioned_one() {
        let b = Instant::now();
        // uid 9: the oldest, and sectioned. uids 1..=3: 4, 4, 4 (uid 3's
        // are the oldest among the awaiting); uid 4: 3.
        let mut v = vec![t(9, false, b, 0)];
        for (uid, start) in [(3, 1), (1, 10), (2, 20)] {
            v.extend((0..4).map(|i| t(uid, true, b, start + i)));
        }
        v.extend((0..3).map(|i| t(4, true, b, 30 + i)));
        assert_eq!(v.len(), MAX_PENDING);
        match admission(&v, 5, false) {
            Admission::Evict(i, _) => {
                assert_eq!(v[i].uid, 3);
                assert!(v[i].awaiting_hello);
                assert_eq!(v[i].accepted, b + Duration::from_millis(1));
            }
            a => panic!("{a:?}"),
        }
        // With a peer connected nobody is displaced.
        assert!(matches!(admission(&v, 5, true), Admission::Refuse(_)));
    }
}

/// A client that offers the readiness feature but passes something else
/// than an eventfd (here a memfd: a regular file the server would write
/// into) is refused `Protocol`, naming the rule; nothing is mapped.
#[cfg(test)]
mod readiness_tests {
    use super::*;
    use crate::descriptor::IpcAddress;
    use crate::transport::ipc::IpcTransport;
    use crate::transport::{Transport, TransportConfig};

    #[test]
    fn a_readiness_descriptor_that_is_not_an_eventfd_is_refused() {
        let addr = IpcAddress::parse(&format!(
            "ipc://lwmq-test/readiness-fd/{}",
            std::process::id()
        ))
        .unwrap();
        let config = TransportConfig::new("t", 256, 2, 2, &LIMITS).unwrap();
        let server = IpcTransport::new(addr.clone(), config).unwrap();
        server.start(Role::Server, ChannelKind::Messaging).unwrap();
        let fd = socket::connect_waiting(&addr.rendezvous_name(), Duration::from_secs(5)).unwrap();
        let hello = Hello {
            kind: ChannelKind::Messaging,
            directions: config.directions(),
            buffer_size: 256,
            send_buffers: 2,
            receive_buffers: 2,
            pid: std::process::id(),
            port: 0,
            address: addr.address().to_owned(),
            features: proto::FEATURE_READINESS,
        };
        let (not_an_eventfd, _map) = shm::create("not-an-eventfd", 4096).unwrap();
        socket::send(
            &fd,
            &Message::Hello(hello).encode(),
            Some(not_an_eventfd.as_fd()),
        )
        .unwrap();
        let _ = socket::wait(fd.as_fd(), Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; proto::MAX_MESSAGE];
        let r = socket::recv(&fd, &mut buf).unwrap();
        assert!(r.fd.is_none(), "no section sent");
        match Message::decode(&buf[..r.len]).unwrap() {
            Message::Refuse { reason, text } => {
                assert_eq!(reason, RefusalReason::Protocol);
                assert!(text.contains("not an eventfd"), "{text}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        server.stop();
    }
}
