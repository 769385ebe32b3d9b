//! The `ipc://address[:port]` shared-memory transport.
//!
//! One *service thread* per transport owns the sockets: the server's
//! listening socket and pending handshakes, or the client's retry timer, and
//! the connected socket of the current peer. It sleeps in `poll` and wakes
//! for a new peer, a hang-up (the kernel closes a dead process's socket, so
//! a crash is seen at once), a retry tick, or a local request. It never
//! touches the data path.
//!
//! The data path ([`IpcSender`], [`IpcReceiver`]) runs on the application's
//! threads and touches only the shared rings: no lock and no system call
//! while both sides are busy. It learns of connection changes through a
//! generation counter that the service thread bumps.
//!
//! Before a peer exists (and between connections) sent buffers are *staged*
//! in local memory, up to `MaxPendingSendBuffers`; the service thread copies
//! them into the fresh ring of the next connection before it publishes it.
//! Each connection gets a fresh section: nothing of a dead one is reused.

pub mod proto;

use std::collections::VecDeque;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;
use rustix::event::{PollFd, PollFlags};
use rustix::io::Errno;

use self::proto::{Accept, Hello, Message, SectionLayout};
use super::{
    AccessPolicy, BufferLimits, ChannelKind, ConnectionState, RawBuf, ReceiveSide, Refusal,
    RefusalReason, Role, SendSide, Transport, TransportConfig, TransportControl, TransportError,
    TransportStats,
};
use crate::descriptor::IpcAddress;
use crate::ring::{self, Consumer, Fences, Producer, RingLayout, Violation, WaitOutcome};
use crate::sys::shm::{self, Mapping};
use crate::sys::socket::{self, PeerCred};
use crate::sys::SysError;
use crate::timeout::{Deadline, Timeout};

/// Buffer limits of the `ipc://` transport.
pub const LIMITS: BufferLimits = BufferLimits {
    max_buffer_size: 1 << 30,
    max_send_buffers: 4096,
    max_receive_buffers: 4096,
    max_total_buffers: 4096,
    max_inline_data_size: crate::MAX_INLINE_DATA_SIZE,
};

/// Default client retry interval (the seed's 100 ms).
pub const DEFAULT_RETRY: Duration = Duration::from_millis(100);
/// Default time a waiting thread spins before it sleeps.
pub const DEFAULT_SPIN: Duration = Duration::from_micros(50);
/// Time a peer has to complete the handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);
/// Most handshakes in progress at once on a server; more are refused.
const MAX_PENDING: usize = 16;

/// Counters. The two data-path pairs sit on cache lines of their own so a
/// sender and a receiver thread of one process never share a line.
#[derive(Debug, Default)]
struct Stats {
    sent: CachePadded<(AtomicU64, AtomicU64)>,
    received: CachePadded<(AtomicU64, AtomicU64)>,
    connections: AtomicU64,
    disconnections: AtomicU64,
    refusals: AtomicU64,
    violations: AtomicU64,
    attempts: AtomicU64,
}

/// A live connection: the mapped section and our view of its rings.
#[derive(Debug)]
struct Conn {
    map: Arc<Mapping>,
    tx: Option<RingLayout>,
    rx: Option<RingLayout>,
    dead: AtomicBool,
    peer: PeerCred,
    fences: Fences,
}

impl Conn {
    fn kill(&self) {
        self.dead.store(true, Ordering::SeqCst);
        for l in [self.tx, self.rx].into_iter().flatten() {
            // Local sleepers re-check `dead` on waking.
            ring::wake_local(&self.map, &l);
        }
    }
}

#[derive(Debug)]
struct Staged {
    data: Vec<u8>,
    erase: bool,
}

#[derive(Debug)]
struct Link {
    started: Option<(Role, ChannelKind)>,
    state: ConnectionState,
    conn: Option<Arc<Conn>>,
    last_error: Option<String>,
    staged: VecDeque<Staged>,
    policy: AccessPolicy,
    last_log: Option<(String, Instant)>,
}

#[derive(Debug)]
struct Inner {
    descriptor: String,
    addr: IpcAddress,
    name: Vec<u8>,
    config: TransportConfig,
    link: Mutex<Link>,
    link_cv: Condvar,
    /// Bumped on every connection change; read by the data path on every
    /// call, so it lives on its own line.
    generation: CachePadded<AtomicU64>,
    /// `link.staged.len()`, readable without the lock (written under it).
    staged_len: AtomicUsize,
    stats: Stats,
    retry_ms: AtomicU64,
    spin_ns: AtomicU64,
    wake_fd: OwnedFd,
    stopping: AtomicBool,
    tx_claimed: AtomicBool,
    rx_claimed: AtomicBool,
}

/// An `ipc://` transport instance.
#[derive(Debug)]
pub struct IpcTransport {
    inner: Arc<Inner>,
    service: Mutex<Option<JoinHandle<()>>>,
}

fn lock(m: &Mutex<Link>) -> MutexGuard<'_, Link> {
    // A panic while holding the lock cannot leave `Link` inconsistent in a
    // way that matters more than refusing service; keep going.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl IpcTransport {
    /// Creates the transport (nothing is bound or connected until `start`).
    pub fn new(addr: IpcAddress, config: TransportConfig) -> Result<Self, TransportError> {
        let descriptor = addr.to_string();
        let wake_fd = rustix::event::eventfd(
            0,
            rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK,
        )
        .map_err(|e| TransportError::Sys {
            descriptor: descriptor.clone(),
            source: SysError::new("eventfd", e),
        })?;
        Ok(Self {
            inner: Arc::new(Inner {
                name: addr.rendezvous_name(),
                descriptor,
                addr,
                config,
                link: Mutex::new(Link {
                    started: None,
                    state: ConnectionState::Idle,
                    conn: None,
                    last_error: None,
                    staged: VecDeque::new(),
                    policy: AccessPolicy::same_user(),
                    last_log: None,
                }),
                link_cv: Condvar::new(),
                generation: CachePadded::new(AtomicU64::new(0)),
                staged_len: AtomicUsize::new(0),
                stats: Stats::default(),
                retry_ms: AtomicU64::new(DEFAULT_RETRY.as_millis() as u64),
                spin_ns: AtomicU64::new(DEFAULT_SPIN.as_nanos() as u64),
                wake_fd,
                stopping: AtomicBool::new(false),
                tx_claimed: AtomicBool::new(false),
                rx_claimed: AtomicBool::new(false),
            }),
            service: Mutex::new(None),
        })
    }

    /// The parsed address.
    pub fn address(&self) -> &IpcAddress {
        &self.inner.addr
    }

    /// The abstract socket name the server binds.
    pub fn rendezvous_name(&self) -> &[u8] {
        &self.inner.name
    }

    /// Credentials of the connected peer, if any.
    pub fn peer(&self) -> Option<PeerCred> {
        lock(&self.inner.link).conn.as_ref().map(|c| c.peer)
    }
}

impl Transport for IpcTransport {
    fn descriptor(&self) -> &str {
        &self.inner.descriptor
    }

    fn config(&self) -> &TransportConfig {
        &self.inner.config
    }

    fn start(&self, role: Role, kind: ChannelKind) -> Result<(), TransportError> {
        // Register for asymmetric barriers here rather than in the first
        // handshake: in a multi-threaded process the kernel waits for an
        // RCU grace period, which took up to 0.85 s on a loaded machine and
        // delayed the reconnect to a restarted peer by as much (crash soak).
        crate::sys::barrier::register();
        let inner = &self.inner;
        let mut link = lock(&inner.link);
        if link.started.is_some() {
            return Err(TransportError::AlreadyOpen(inner.descriptor.clone()));
        }
        if inner.stopping.load(Ordering::Acquire) {
            return Err(TransportError::NotOpen(inner.descriptor.clone()));
        }
        let listener = match role {
            Role::Server => Some(socket::listen(&inner.name).map_err(|e| {
                if e.errno == Errno::ADDRINUSE {
                    TransportError::AddressInUse(inner.descriptor.clone())
                } else {
                    TransportError::Sys {
                        descriptor: inner.descriptor.clone(),
                        source: e,
                    }
                }
            })?),
            Role::Client => None,
        };
        link.started = Some((role, kind));
        link.state = match role {
            Role::Server => ConnectionState::Listening,
            Role::Client => ConnectionState::Connecting,
        };
        drop(link);
        let me = Arc::clone(inner);
        let name = match role {
            Role::Server => "lwmq-ipc-server",
            Role::Client => "lwmq-ipc-client",
        };
        let handle = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || match listener {
                Some(l) => Service::new(me, kind).run_server(l),
                None => Service::new(me, kind).run_client(),
            })
            .map_err(|e| TransportError::Sys {
                descriptor: inner.descriptor.clone(),
                source: SysError::new(
                    "pthread_create",
                    Errno::from_io_error(&e).unwrap_or(Errno::AGAIN),
                ),
            })?;
        *self.service.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
        Ok(())
    }

    fn stop(&self) {
        let inner = &self.inner;
        inner.stopping.store(true, Ordering::SeqCst);
        inner.poke();
        let handle = self
            .service
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(h) = handle {
            let _ = h.join();
        }
        let mut link = lock(&inner.link);
        if let Some(c) = link.conn.take() {
            c.kill();
        }
        link.state = ConnectionState::Closed;
        inner.generation.fetch_add(1, Ordering::AcqRel);
        inner.link_cv.notify_all();
    }

    fn state(&self) -> ConnectionState {
        lock(&self.inner.link).state.clone()
    }

    fn last_error(&self) -> Option<String> {
        lock(&self.inner.link).last_error.clone()
    }

    fn stats(&self) -> TransportStats {
        let s = &self.inner.stats;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let connections = l(&s.connections);
        TransportStats {
            buffers_sent: l(&s.sent.0),
            bytes_sent: l(&s.sent.1),
            buffers_received: l(&s.received.0),
            bytes_received: l(&s.received.1),
            connections,
            reconnections: connections.saturating_sub(1),
            disconnections: l(&s.disconnections),
            refusals: l(&s.refusals),
            violations: l(&s.violations),
            connect_attempts: l(&s.attempts),
        }
    }

    fn control(&self, control: TransportControl) -> Result<(), TransportError> {
        let inner = &self.inner;
        match control {
            TransportControl::SetClientConnectionRetryInterval(d) => {
                if d.is_zero() || d > Duration::from_secs(86400) {
                    return Err(TransportError::Control {
                        descriptor: inner.descriptor.clone(),
                        what: format!("retry interval {d:?} is out of range (rule: 1 ms ..= 24 h)"),
                    });
                }
                inner
                    .retry_ms
                    .store(d.as_millis().max(1) as u64, Ordering::Relaxed);
                inner.poke();
            }
            TransportControl::SetSpinDuration(d) => {
                if d > Duration::from_millis(100) {
                    return Err(TransportError::Control {
                        descriptor: inner.descriptor.clone(),
                        what: format!("spin duration {d:?} is out of range (rule: at most 100 ms)"),
                    });
                }
                inner.spin_ns.store(d.as_nanos() as u64, Ordering::Relaxed);
            }
            TransportControl::SetAccessPolicy(p) => {
                let mut link = lock(&inner.link);
                if link.started.is_some() {
                    return Err(TransportError::Control {
                        descriptor: inner.descriptor.clone(),
                        what: "the access policy can only be set before the channel opens".into(),
                    });
                }
                link.policy = p;
            }
        }
        Ok(())
    }

    fn pending_send(&self) -> usize {
        let link = lock(&self.inner.link);
        link.staged.len()
    }

    fn claim_sender(&self) -> Result<Box<dyn SendSide>, TransportError> {
        let inner = &self.inner;
        inner.claim(inner.config.directions().sends(), &inner.tx_claimed, "send")?;
        Ok(Box::new(IpcSender {
            inner: Arc::clone(inner),
            gen: u64::MAX,
            conn: None,
            prod: None,
            held: Held::None,
            sent: inner.stats.sent.0.load(Ordering::Relaxed),
            bytes: inner.stats.sent.1.load(Ordering::Relaxed),
            spin: Duration::ZERO,
        }))
    }

    fn claim_receiver(&self) -> Result<Box<dyn ReceiveSide>, TransportError> {
        let inner = &self.inner;
        inner.claim(
            inner.config.directions().receives(),
            &inner.rx_claimed,
            "receive",
        )?;
        Ok(Box::new(IpcReceiver {
            inner: Arc::clone(inner),
            gen: u64::MAX,
            conn: None,
            cons: None,
            held: None,
            received: inner.stats.received.0.load(Ordering::Relaxed),
            bytes: inner.stats.received.1.load(Ordering::Relaxed),
            spin: Duration::ZERO,
        }))
    }
}

impl Drop for IpcTransport {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Inner {
    /// Wakes the service thread.
    fn poke(&self) {
        let _ = rustix::io::write(&self.wake_fd, &1u64.to_ne_bytes());
    }

    fn spin(&self) -> Duration {
        Duration::from_nanos(self.spin_ns.load(Ordering::Relaxed))
    }

    /// Claims one side of the data path for a single user.
    fn claim(
        &self,
        used: bool,
        flag: &AtomicBool,
        dir: &'static str,
    ) -> Result<(), TransportError> {
        let descriptor = self.descriptor.clone();
        if !used {
            return Err(TransportError::WrongDirection { descriptor, dir });
        }
        if flag.swap(true, Ordering::AcqRel) {
            return Err(TransportError::SideInUse { descriptor, dir });
        }
        Ok(())
    }

    /// The current connection if it changed since generation `seen`
    /// (which is updated); `None` if nothing changed. One atomic load on the
    /// data path when nothing changed.
    fn changed_since(&self, seen: &mut u64) -> Option<Option<Arc<Conn>>> {
        if self.generation.load(Ordering::Acquire) == *seen {
            return None;
        }
        let link = lock(&self.link);
        *seen = self.generation.load(Ordering::Acquire);
        Some(link.conn.clone())
    }

    /// Keeps a sent buffer for the next connection.
    fn stage(&self, staged: Staged) {
        let mut link = lock(&self.link);
        link.staged.push_back(staged);
        self.staged_len.store(link.staged.len(), Ordering::Relaxed);
    }

    /// Records and logs a problem, rate-limiting identical lines.
    fn note(&self, link: &mut Link, text: String) {
        self.note_as(link, text.clone(), text);
    }

    /// Records `text` and logs it unless the last line logged had the same
    /// `key` less than 10 s ago. The key leaves out details that change on
    /// every repeat (a refused peer's pid), so that a peer reconnecting in a
    /// loop cannot flood the log.
    fn note_as(&self, link: &mut Link, key: String, text: String) {
        let now = Instant::now();
        let repeat = link
            .last_log
            .as_ref()
            .is_some_and(|(k, at)| *k == key && now.duration_since(*at) < Duration::from_secs(10));
        if !repeat {
            log::warn!("lwmq {}: {}", self.descriptor, text);
            link.last_log = Some((key, now));
        }
        link.last_error = Some(text);
    }

    fn refused(&self, link: &mut Link, refusal: Refusal) {
        self.stats.refusals.fetch_add(1, Ordering::Relaxed);
        let key = format!(
            "refusal {} by_peer={}",
            refusal.reason.code(),
            refusal.by_peer
        );
        self.note_as(link, key, format!("connection refused: {refusal}"));
        if link.conn.is_none() {
            link.state = ConnectionState::Refused(refusal);
        }
    }

    /// Called from the data path when the peer broke the ring protocol.
    fn violation(&self, conn: &Arc<Conn>, v: &Violation) {
        if conn.dead.swap(true, Ordering::SeqCst) {
            return;
        }
        self.stats.violations.fetch_add(1, Ordering::Relaxed);
        let mut link = lock(&self.link);
        self.note(
            &mut link,
            format!(
                "dropping connection to pid {}: peer broke the shared-memory protocol: {v}",
                conn.peer.pid
            ),
        );
        drop(link);
        conn.kill();
        self.poke();
    }

    /// Publishes a new connection, first copying staged buffers into it.
    fn establish(&self, conn: Arc<Conn>) {
        let mut link = lock(&self.link);
        if let Some(tx) = conn.tx {
            let mut p = Producer::attach(Arc::clone(&conn.map), tx, conn.fences);
            while let Some(s) = link.staged.front() {
                if !ring::prefill(&mut p, &s.data, if s.erase { ring::FLAG_ERASE } else { 0 }) {
                    break;
                }
                link.staged.pop_front();
            }
            self.staged_len.store(link.staged.len(), Ordering::Relaxed);
        }
        log::info!(
            "lwmq {}: connected to pid {}",
            self.descriptor,
            conn.peer.pid
        );
        link.conn = Some(conn);
        link.state = ConnectionState::Connected;
        self.stats.connections.fetch_add(1, Ordering::Relaxed);
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.link_cv.notify_all();
    }

    /// Forgets the current connection.
    fn disconnect(&self, conn: &Arc<Conn>, why: &str, role: Role) {
        conn.kill();
        let mut link = lock(&self.link);
        if link.conn.as_ref().is_some_and(|c| Arc::ptr_eq(c, conn)) {
            link.conn = None;
            link.state = match role {
                Role::Server => ConnectionState::Listening,
                Role::Client => ConnectionState::Connecting,
            };
            log::info!(
                "lwmq {}: disconnected from pid {}: {why}",
                self.descriptor,
                conn.peer.pid
            );
            self.stats.disconnections.fetch_add(1, Ordering::Relaxed);
            self.generation.fetch_add(1, Ordering::AcqRel);
            self.link_cv.notify_all();
        }
    }

    /// Waits for a connection change, at most `slice` or until `deadline`.
    fn wait_link_change(&self, seen: u64, deadline: Deadline) {
        let link = lock(&self.link);
        if self.generation.load(Ordering::Acquire) != seen || self.stopping.load(Ordering::Acquire)
        {
            return;
        }
        let _ = self
            .link_cv
            .wait_timeout(link, deadline.slice(Duration::from_millis(100)));
    }
}

// ---------------------------------------------------------------------------
// Service thread
// ---------------------------------------------------------------------------

struct Service {
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
    deadline: Instant,
    stage: Stage,
}

/// What happened on a connected socket.
enum SocketEvent {
    Nothing,
    Closed(String),
}

fn check_connected_socket(fd: &OwnedFd, revents: PollFlags) -> SocketEvent {
    if revents.is_empty() {
        return SocketEvent::Nothing;
    }
    let mut buf = [0u8; 64];
    match socket::recv(fd, &mut buf) {
        Ok(r) if r.len == 0 => SocketEvent::Closed("peer closed the connection or exited".into()),
        Ok(_) => SocketEvent::Closed("peer sent data after the handshake (protocol error)".into()),
        Err(e) if e.errno == Errno::AGAIN => {
            if revents.intersects(PollFlags::HUP | PollFlags::ERR) {
                SocketEvent::Closed("peer hung up".into())
            } else {
                SocketEvent::Nothing
            }
        }
        Err(e) => SocketEvent::Closed(format!("peer connection failed: {e}")),
    }
}

impl Service {
    fn new(inner: Arc<Inner>, kind: ChannelKind) -> Self {
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

    fn refuse(&self, fd: &OwnedFd, reason: RefusalReason, detail: String) {
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
        );
    }

    // ----- server -----

    fn run_server(self, listener: OwnedFd) {
        let mut active: Option<(OwnedFd, Arc<Conn>)> = None;
        let mut pending: Vec<Pending> = Vec::new();
        while !self.stopping() {
            if let Some((_, c)) = &active {
                if c.dead.load(Ordering::Acquire) {
                    let (fd, c) = active.take().expect("checked");
                    socket::shutdown(&fd);
                    self.inner
                        .disconnect(&c, "connection dropped locally", Role::Server);
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
                    self.inner.disconnect(&c, &why, Role::Server);
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
                        format!(
                            "handshake with pid {} timed out; connection closed",
                            p.cred.pid
                        ),
                    );
                }
                keep
            });
            if !listen_ev.is_empty() {
                self.accept_all(&listener, &mut pending, active.is_some());
            }
        }
        if let Some((fd, c)) = active {
            socket::shutdown(&fd);
            self.inner.disconnect(&c, "transport closed", Role::Server);
        }
    }

    fn accept_all(&self, listener: &OwnedFd, pending: &mut Vec<Pending>, busy: bool) {
        loop {
            let fd = match socket::accept(listener) {
                Ok(Some(fd)) => fd,
                Ok(None) => return,
                Err(e) => {
                    let mut link = lock(&self.inner.link);
                    self.inner.note(&mut link, e.to_string());
                    // EMFILE and friends: back off instead of spinning.
                    std::thread::sleep(Duration::from_millis(10));
                    return;
                }
            };
            let cred = match socket::peer_cred(&fd) {
                Ok(c) => c,
                Err(_) => continue,
            };
            if !self.policy_allows(&cred) {
                self.refuse(
                    &fd,
                    RefusalReason::AccessDenied,
                    format!(
                        "server (uid {}) does not accept uid {} gid {} (pid {}); set an access policy that allows it",
                        self.own_uid, cred.uid, cred.gid, cred.pid
                    ),
                );
                continue;
            }
            if busy && pending.len() >= MAX_PENDING {
                self.refuse(
                    &fd,
                    RefusalReason::Busy,
                    "too many handshakes in progress".into(),
                );
                continue;
            }
            if pending.len() >= MAX_PENDING {
                // Drop the oldest half-open handshake to make room.
                pending.remove(0);
            }
            pending.push(Pending {
                fd,
                cred,
                deadline: Instant::now() + HANDSHAKE_TIMEOUT,
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
        let Pending {
            fd,
            cred,
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
                    self.refuse(
                        &fd,
                        RefusalReason::Busy,
                        format!("server already has a peer; pid {} refused", cred.pid),
                    );
                    return None;
                }
                if let Err((reason, detail)) = self.check_hello(&h) {
                    self.refuse(&fd, reason, detail);
                    return None;
                }
                match self.create_section(&h, &fd, cred) {
                    Ok(conn) => Some(Pending {
                        fd,
                        cred,
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
                );
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
                self.refuse(&fd, reason, format!("pid {}: {e}", cred.pid));
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
                    "server BufferSizeBytes {}, client BufferSizeBytes {} (rule: both sides use the same buffer size)",
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

    fn create_section(&self, h: &Hello, fd: &OwnedFd, cred: PeerCred) -> Result<Arc<Conn>, String> {
        let c = &self.inner.config;
        let c2s = h.send_buffers + c.receive_buffers();
        let s2c = c.send_buffers() + h.receive_buffers;
        let layout = SectionLayout::compute(h.buffer_size, c2s, s2c).ok_or_else(|| {
            format!(
                "section for {c2s}+{s2c} buffers of {} bytes is too large",
                h.buffer_size
            )
        })?;
        let name = format!("lwmq:{}", self.inner.descriptor);
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
        socket::send(fd, &accept.encode(), Some(memfd.as_fd())).map_err(|e| e.to_string())?;
        let d = c.directions();
        Ok(Arc::new(Conn {
            map: Arc::new(map),
            tx: d.sends().then_some(layout.s2c),
            rx: d.receives().then_some(layout.c2s),
            dead: AtomicBool::new(false),
            peer: cred,
            fences: fences_for(features),
        }))
    }

    // ----- client -----

    fn run_client(self) {
        let mut active: Option<(OwnedFd, Arc<Conn>)> = None;
        let mut next_attempt = Instant::now();
        while !self.stopping() {
            if let Some((_, c)) = &active {
                if c.dead.load(Ordering::Acquire) {
                    let (fd, c) = active.take().expect("checked");
                    socket::shutdown(&fd);
                    self.inner
                        .disconnect(&c, "connection dropped locally", Role::Client);
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
                    self.inner.disconnect(&c, &why, Role::Client);
                    // The server may be restarting: try again at once.
                    next_attempt = Instant::now();
                }
            }
        }
        if let Some((fd, c)) = active {
            socket::shutdown(&fd);
            self.inner.disconnect(&c, "transport closed", Role::Client);
        }
    }

    fn retry(&self) -> Duration {
        Duration::from_millis(self.inner.retry_ms.load(Ordering::Relaxed))
    }

    /// No server (or it vanished mid-handshake): back to `Connecting`. A
    /// refusal seen earlier stays readable as `last_error`.
    fn set_connecting(&self) {
        let mut link = lock(&self.inner.link);
        if link.conn.is_none() {
            link.state = ConnectionState::Connecting;
        }
    }

    /// One connection attempt; `Some` on success.
    fn try_connect(&self) -> Option<(OwnedFd, Arc<Conn>)> {
        self.inner.stats.attempts.fetch_add(1, Ordering::Relaxed);
        let fd = match socket::connect(&self.inner.name) {
            Ok(fd) => fd,
            Err(e) => {
                // Nobody listening (yet): the normal case before the server
                // starts. Anything else is worth a log line.
                if !matches!(e.errno, Errno::CONNREFUSED | Errno::NOENT | Errno::AGAIN) {
                    let mut link = lock(&self.inner.link);
                    self.inner.note(&mut link, e.to_string());
                }
                self.set_connecting();
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
                self.inner.refused(&mut link, refusal);
                None
            }
            Err(None) => {
                self.set_connecting();
                None
            }
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
        let cred = socket::peer_cred(fd).map_err(|_| None)?;
        if !self.policy_allows(&cred) {
            let detail = format!(
                "client (uid {}) does not accept a server of uid {} gid {} (pid {}); set an access policy that allows it",
                self.own_uid, cred.uid, cred.gid, cred.pid
            );
            let _ = socket::send(
                fd,
                &Message::Refuse {
                    reason: RefusalReason::AccessDenied,
                    text: detail.clone(),
                }
                .encode(),
                None,
            );
            return Err(ours(RefusalReason::AccessDenied, detail));
        }
        // A server that refuses before reading (access denied, busy) may
        // already have sent its REFUSE and closed: the send then fails, but
        // the REFUSE is still queued for us, so read on instead of giving up.
        let _ = socket::send(fd, &Message::Hello(self.hello()).encode(), None);
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
                    format!("server pid {} did not answer the handshake", cred.pid),
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
        socket::send(fd, &Message::Ready.encode(), None).map_err(|_| None)?;
        Ok(Arc::new(Conn {
            map: Arc::new(map),
            tx: d.sends().then_some(layout.c2s),
            rx: d.receives().then_some(layout.s2c),
            dead: AtomicBool::new(false),
            peer: cred,
            fences: fences_for(accept.features),
        }))
    }
}

/// The optional features this process offers.
fn own_features() -> u16 {
    if crate::sys::barrier::register() {
        proto::FEATURE_MEMBARRIER
    } else {
        0
    }
}

fn fences_for(features: u16) -> Fences {
    if features & proto::FEATURE_MEMBARRIER != 0 {
        Fences::Asymmetric
    } else {
        Fences::Symmetric
    }
}

fn header_words(layout: &SectionLayout) -> [u32; 6] {
    [
        proto::SECTION_MAGIC as u32,
        (proto::SECTION_MAGIC >> 32) as u32,
        u32::from(proto::VERSION),
        layout.c2s.capacity,
        layout.s2c.capacity,
        layout.c2s.buffer_size as u32,
    ]
}

fn write_section_header(map: &Mapping, layout: &SectionLayout) {
    for (i, w) in header_words(layout).iter().enumerate() {
        map.atomic_u32(i * 4).store(*w, Ordering::Relaxed);
    }
}

fn check_section_header(map: &Mapping, layout: &SectionLayout) -> bool {
    header_words(layout)
        .iter()
        .enumerate()
        .all(|(i, w)| map.atomic_u32(i * 4).load(Ordering::Relaxed) == *w)
}

// ---------------------------------------------------------------------------
// Data path
// ---------------------------------------------------------------------------

#[derive(Debug)]
enum Held {
    None,
    Ring,
    Staged(Vec<u8>),
}

/// The send side of an `ipc://` transport.
#[derive(Debug)]
pub struct IpcSender {
    inner: Arc<Inner>,
    gen: u64,
    conn: Option<Arc<Conn>>,
    prod: Option<Producer>,
    held: Held,
    sent: u64,
    bytes: u64,
    spin: Duration,
}

impl IpcSender {
    /// Picks up a connection change (only while nothing is held).
    fn sync(&mut self) {
        if let Some(conn) = self.inner.changed_since(&mut self.gen) {
            self.prod = conn.as_ref().and_then(|c| {
                c.tx.map(|l| Producer::attach(Arc::clone(&c.map), l, c.fences))
            });
            self.conn = conn;
            self.spin = self.inner.spin();
        }
    }

    fn live(&self) -> bool {
        self.conn
            .as_ref()
            .is_some_and(|c| !c.dead.load(Ordering::Acquire))
    }

    fn count(&mut self, len: usize) {
        self.sent += 1;
        self.bytes += len as u64;
        // One writer at a time (the claim), so plain stores suffice.
        self.inner.stats.sent.0.store(self.sent, Ordering::Relaxed);
        self.inner.stats.sent.1.store(self.bytes, Ordering::Relaxed);
    }

    /// Moves staged buffers into the ring while there is room. True when
    /// nothing is left staged.
    fn drain_staged(&mut self) -> Result<bool, Violation> {
        let (Some(prod), true) = (
            self.prod.as_mut(),
            self.conn
                .as_ref()
                .is_some_and(|c| !c.dead.load(Ordering::Acquire)),
        ) else {
            return Ok(false);
        };
        if self.inner.staged_len.load(Ordering::Relaxed) == 0 {
            return Ok(true);
        }
        let mut link = lock(&self.inner.link);
        let mut result = Ok(true);
        while let Some(s) = link.staged.front() {
            match prod.has_space() {
                Ok(true) => {}
                Ok(false) => {
                    result = Ok(false);
                    break;
                }
                Err(v) => {
                    result = Err(v);
                    break;
                }
            }
            ring::prefill(prod, &s.data, if s.erase { ring::FLAG_ERASE } else { 0 });
            link.staged.pop_front();
        }
        self.inner
            .staged_len
            .store(link.staged.len(), Ordering::Relaxed);
        result
    }

    fn on_violation(&mut self, v: Violation) {
        if let Some(c) = &self.conn {
            self.inner.violation(c, &v);
        }
    }
}

impl SendSide for IpcSender {
    fn acquire(&mut self, timeout: Timeout) -> Result<RawBuf, TransportError> {
        let size = self.inner.config.buffer_size();
        match &mut self.held {
            Held::Ring => {
                let p = self.prod.as_ref().expect("held ring buffer has a producer");
                return Ok(RawBuf {
                    ptr: p.next_buf(),
                    len: size,
                });
            }
            Held::Staged(v) => {
                return Ok(RawBuf {
                    ptr: v.as_mut_ptr(),
                    len: size,
                })
            }
            Held::None => {}
        }
        // Fast path: same connection, alive, nothing staged, a slot free.
        // No lock, no reference count, no system call.
        if self.inner.generation.load(Ordering::Acquire) == self.gen
            && self.inner.staged_len.load(Ordering::Relaxed) == 0
        {
            if let (Some(conn), Some(prod)) = (&self.conn, &mut self.prod) {
                if !conn.dead.load(Ordering::Acquire) && prod.has_space() == Ok(true) {
                    self.held = Held::Ring;
                    return Ok(RawBuf {
                        ptr: prod.next_buf(),
                        len: size,
                    });
                }
            }
        }
        let deadline = timeout.deadline();
        loop {
            if self.inner.stopping.load(Ordering::Acquire) {
                return Err(TransportError::NotOpen(self.inner.descriptor.clone()));
            }
            self.sync();
            if self.live() {
                let dead = Arc::clone(self.conn.as_ref().expect("live"));
                let staged_clear = match self.drain_staged() {
                    Ok(b) => b,
                    Err(v) => {
                        self.on_violation(v);
                        continue;
                    }
                };
                let prod = self.prod.as_mut().expect("live connection with tx ring");
                match prod.has_space() {
                    Ok(true) if staged_clear => {
                        self.held = Held::Ring;
                        return Ok(RawBuf {
                            ptr: prod.next_buf(),
                            len: size,
                        });
                    }
                    Ok(_) => match prod.wait_space(deadline, self.spin, &dead.dead) {
                        Ok(WaitOutcome::TimedOut) => return Err(TransportError::Timeout),
                        Ok(_) => continue,
                        Err(v) => self.on_violation(v),
                    },
                    Err(v) => self.on_violation(v),
                }
                continue;
            }
            // No live connection: stage locally.
            let seen = self.gen;
            {
                let link = lock(&self.inner.link);
                if link.staged.len() < self.inner.config.send_buffers() as usize {
                    drop(link);
                    self.held = Held::Staged(vec![0u8; size]);
                    let Held::Staged(v) = &mut self.held else {
                        unreachable!()
                    };
                    return Ok(RawBuf {
                        ptr: v.as_mut_ptr(),
                        len: size,
                    });
                }
            }
            if deadline.passed() {
                return Err(TransportError::Timeout);
            }
            self.inner.wait_link_change(seen, deadline);
        }
    }

    fn commit(&mut self, len: usize, erase: bool) -> Result<(), TransportError> {
        let size = self.inner.config.buffer_size();
        if len > size {
            return Err(TransportError::LengthTooLarge { len, size });
        }
        match std::mem::replace(&mut self.held, Held::None) {
            Held::None => Err(TransportError::Control {
                descriptor: self.inner.descriptor.clone(),
                what: "no buffer acquired (rule: get a buffer before sending it)".into(),
            }),
            Held::Ring => {
                let prod = self.prod.as_mut().expect("held ring buffer has a producer");
                if self
                    .conn
                    .as_ref()
                    .is_some_and(|c| c.dead.load(Ordering::Acquire))
                {
                    // Not yet published: keep it for the next connection.
                    let mut data = vec![0u8; len];
                    // SAFETY: next_buf points at `size >= len` bytes that
                    // stay mapped while `prod` lives.
                    unsafe {
                        std::ptr::copy_nonoverlapping(prod.next_buf(), data.as_mut_ptr(), len)
                    };
                    self.inner.stage(Staged { data, erase });
                } else {
                    prod.publish(len, if erase { ring::FLAG_ERASE } else { 0 });
                }
                self.count(len);
                Ok(())
            }
            Held::Staged(mut data) => {
                data.truncate(len);
                self.inner.stage(Staged { data, erase });
                self.count(len);
                self.sync();
                if let Err(v) = self.drain_staged() {
                    self.on_violation(v);
                }
                Ok(())
            }
        }
    }

    fn abort(&mut self) {
        self.held = Held::None;
    }

    fn flush(&mut self, timeout: Timeout) -> Result<(), TransportError> {
        let deadline = timeout.deadline();
        loop {
            if self.inner.stopping.load(Ordering::Acquire) {
                return Err(TransportError::NotOpen(self.inner.descriptor.clone()));
            }
            if !matches!(self.held, Held::None) {
                return Err(TransportError::Control {
                    descriptor: self.inner.descriptor.clone(),
                    what: "a buffer is still acquired (rule: send or abort it before flushing)"
                        .into(),
                });
            }
            // A connection that ended: what it consumed was delivered, what
            // it did not is lost (reported once).
            if let (Some(c), Some(p)) = (&self.conn, &mut self.prod) {
                if c.dead.load(Ordering::Acquire) && lock(&self.inner.link).staged.is_empty() {
                    let drained = p.drained().unwrap_or(false);
                    self.conn = None;
                    self.prod = None;
                    self.gen = u64::MAX;
                    return if drained {
                        Ok(())
                    } else {
                        Err(TransportError::Disconnected(self.inner.descriptor.clone()))
                    };
                }
            }
            self.sync();
            if self.live() {
                let conn = Arc::clone(self.conn.as_ref().expect("live"));
                match self.drain_staged() {
                    Ok(true) => {
                        let prod = self.prod.as_mut().expect("tx ring");
                        match prod.drained() {
                            Ok(true) => return Ok(()),
                            Ok(false) => {}
                            Err(v) => {
                                self.on_violation(v);
                                continue;
                            }
                        }
                        match prod.wait_drained(deadline, self.spin, &conn.dead) {
                            Ok(WaitOutcome::TimedOut) => return Err(TransportError::Timeout),
                            Ok(_) => continue,
                            Err(v) => self.on_violation(v),
                        }
                    }
                    Ok(false) => {
                        let prod = self.prod.as_mut().expect("tx ring");
                        match prod.wait_space(deadline, self.spin, &conn.dead) {
                            Ok(WaitOutcome::TimedOut) => return Err(TransportError::Timeout),
                            Ok(_) => continue,
                            Err(v) => self.on_violation(v),
                        }
                    }
                    Err(v) => self.on_violation(v),
                }
                continue;
            }
            if deadline.passed() {
                return Err(TransportError::Timeout);
            }
            self.inner.wait_link_change(self.gen, deadline);
        }
    }

    fn is_connected(&mut self) -> bool {
        if matches!(self.held, Held::None) {
            self.sync();
        }
        self.live()
    }

    fn outstanding(&mut self) -> u64 {
        match (&self.conn, &mut self.prod) {
            (Some(c), Some(p)) if !c.dead.load(Ordering::Acquire) => {
                // The count as last seen can only be too high: below 2 it
                // answers without reading the consumer's cache line (the
                // common case when the peer keeps up, e.g. ping-pong).
                if p.outstanding() < 2 {
                    return p.outstanding();
                }
                // A `head` that breaks the ring's rules is caught (and the
                // connection dropped) by the next acquire; here it only
                // means "not busy".
                p.outstanding_now().unwrap_or(0)
            }
            _ => 0,
        }
    }
}

impl Drop for IpcSender {
    fn drop(&mut self) {
        self.inner.tx_claimed.store(false, Ordering::Release);
    }
}

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
