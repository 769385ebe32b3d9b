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
//!
//! Files: this one holds the transport object and the state its threads
//! share ([`Inner`]); `service` the service thread (rendezvous, handshakes,
//! liveness); `section` the shared section's header; `sender` and
//! `receiver` the data path; `logging` the log rate limiter and the
//! escaping of peer text.

pub(crate) mod logging;
pub mod proto;
mod receiver;
mod section;
mod sender;
mod service;

use logging::{LogClass, LogLimiter, Verdict};
pub use receiver::IpcReceiver;
pub use sender::IpcSender;
use service::Service;

use std::collections::VecDeque;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;
use rustix::io::Errno;

use super::{
    AccessPolicy, AsyncArm, BufferLimits, ChannelKind, ConnectionLog, DisconnectReason, PeerInfo,
    ReceiveSide, Refusal, Role, SendSide, Transport, TransportConfig, TransportControl,
    TransportError, TransportStats,
};
use crate::descriptor::IpcAddress;
use crate::ring::{self, Fences, Producer, RingLayout, Violation};
use crate::sys::shm::Mapping;
use crate::sys::socket::{self, PeerCred};
use crate::sys::SysError;
use crate::timeout::Deadline;

/// Buffer limits of the `ipc://` transport.
pub const LIMITS: BufferLimits = BufferLimits {
    max_buffer_size: 1 << 30,
    max_send_buffers: 4096,
    max_receive_buffers: 4096,
    max_total_buffers: 4096,
    max_inline_data_size: crate::message::MAX_INLINE_FRAME_SIZE as u32,
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
    /// Why the data path dropped the connection (set once, by
    /// [`Inner::violation`]), for the `Disconnected` event.
    violation: OnceLock<String>,
    /// The peer's readiness eventfd, when both sides offered
    /// [`proto::FEATURE_READINESS`]: written after a publication while the
    /// peer's async flag is set (see `ring.rs`).
    peer_ready: Option<Arc<OwnedFd>>,
    /// This transport's own readiness eventfd, written when the connection
    /// dies so that async waiters re-check.
    local_ready: Arc<OwnedFd>,
}

impl Conn {
    fn kill(&self) {
        self.dead.store(true, Ordering::SeqCst);
        for l in [self.tx, self.rx].into_iter().flatten() {
            // Local sleepers re-check `dead` on waking.
            ring::wake_local(&self.map, &l);
        }
        ring::signal_readiness(&self.local_ready);
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
    conn: Option<Arc<Conn>>,
    last_error: Option<String>,
    staged: VecDeque<Staged>,
    policy: AccessPolicy,
    log_limiter: LogLimiter<LogClass>,
}

#[derive(Debug)]
struct Inner {
    descriptor: String,
    addr: IpcAddress,
    name: Vec<u8>,
    config: TransportConfig,
    link: Mutex<Link>,
    link_cv: Condvar,
    /// State, generation, peer and events, as callers see them. Written
    /// with `link` held (the order is always `link`, then the log).
    log: Arc<ConnectionLog>,
    /// Bumped on every connection change; read by the data path on every
    /// call, so it lives on its own line.
    generation: CachePadded<AtomicU64>,
    /// `link.staged.len()`, readable without the lock (written under it).
    staged_len: AtomicUsize,
    stats: Stats,
    retry_ms: AtomicU64,
    spin_ns: AtomicU64,
    wake_fd: OwnedFd,
    /// The readiness eventfd of this side (see `ring.rs` and
    /// `Transport::readiness_fd`): passed to every peer in the handshake,
    /// written by the peer while an async waiter of this process is
    /// armed, and locally on connection changes and interrupts.
    ready_fd: Arc<OwnedFd>,
    stopping: AtomicBool,
    tx_claimed: AtomicBool,
    rx_claimed: AtomicBool,
    /// Set by `interrupt_receive`: the next (or current) wait of the
    /// receive side returns early, and clears it.
    rx_interrupt: AtomicBool,
    /// The access policy as it was at `start` (it cannot change after),
    /// for statistics queries, which must not take `link`.
    started_policy: OnceLock<AccessPolicy>,
    /// Set by the send side when a publication woke the sleeping peer;
    /// taken by the receive side's next wait, which then yields its CPU
    /// once first (the woken peer is often queued on this CPU, and its
    /// answer is what the wait is for). A hint: relaxed, no ordering.
    woke_peer: AtomicBool,
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
        let ready_fd = rustix::event::eventfd(
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
                    conn: None,
                    last_error: None,
                    staged: VecDeque::new(),
                    policy: AccessPolicy::same_user(),
                    log_limiter: LogLimiter::new(logging::LOG_WINDOW, logging::LOG_CLASSES),
                }),
                link_cv: Condvar::new(),
                log: Arc::new(ConnectionLog::new()),
                generation: CachePadded::new(AtomicU64::new(0)),
                staged_len: AtomicUsize::new(0),
                stats: Stats::default(),
                retry_ms: AtomicU64::new(DEFAULT_RETRY.as_millis() as u64),
                spin_ns: AtomicU64::new(DEFAULT_SPIN.as_nanos() as u64),
                wake_fd,
                ready_fd: Arc::new(ready_fd),
                stopping: AtomicBool::new(false),
                tx_claimed: AtomicBool::new(false),
                rx_claimed: AtomicBool::new(false),
                rx_interrupt: AtomicBool::new(false),
                started_policy: OnceLock::new(),
                woke_peer: AtomicBool::new(false),
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
        let _ = inner.started_policy.set(link.policy.clone());
        inner.log.started(role);
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
        inner.log.closed();
        inner.generation.fetch_add(1, Ordering::AcqRel);
        inner.link_cv.notify_all();
        ring::signal_readiness(&inner.ready_fd);
    }

    fn connection_log(&self) -> &Arc<ConnectionLog> {
        &self.inner.log
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
            TransportControl::SetHeartbeatTimeout(_) | TransportControl::SetPeerAllowList(_) => {
                return Err(TransportError::Control {
                    descriptor: inner.descriptor.clone(),
                    what: "heartbeats and peer allow-lists apply to tcp:// only (an ipc:// peer's death is seen at once, and peers are chosen by user with Endpoint::access)".into(),
                });
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
        Ok(Box::new(IpcSender::new(Arc::clone(inner))))
    }

    fn claim_receiver(&self) -> Result<Box<dyn ReceiveSide>, TransportError> {
        let inner = &self.inner;
        inner.claim(
            inner.config.directions().receives(),
            &inner.rx_claimed,
            "receive",
        )?;
        Ok(Box::new(IpcReceiver::new(Arc::clone(inner))))
    }

    fn interrupt_receive(&self) {
        let inner = &self.inner;
        inner.rx_interrupt.store(true, Ordering::SeqCst);
        // Under the link lock: a receiver about to wait for a connection
        // checks the flag under it (`wait_link_change`), so it either sees
        // the flag or is already waiting when this notifies.
        let link = lock(&inner.link);
        if let Some(c) = &link.conn {
            if let Some(l) = c.rx {
                ring::wake_local(&c.map, &l);
            }
        }
        inner.link_cv.notify_all();
        drop(link);
        ring::signal_readiness(&inner.ready_fd);
    }

    fn readiness_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.inner.ready_fd.as_fd())
    }

    fn set_async_waiter(&self, side: ring::AsyncWaiter, armed: bool) -> AsyncArm {
        let link = lock(&self.inner.link);
        let Some(c) = &link.conn else {
            // `establish` writes the readiness fd (under this lock) when
            // a connection comes.
            return AsyncArm::Signalled;
        };
        if c.dead.load(Ordering::Acquire) {
            // `kill` wrote it; the next change is `establish`.
            return AsyncArm::Signalled;
        }
        let ring = match side {
            ring::AsyncWaiter::Consumer => c.rx,
            ring::AsyncWaiter::Producer => c.tx,
        };
        match (ring, &c.peer_ready) {
            (Some(l), Some(_)) => {
                ring::set_async_waiter(&c.map, &l, side, armed, c.fences);
                AsyncArm::Signalled
            }
            // A peer without the readiness feature never writes it.
            _ => AsyncArm::Unsupported,
        }
    }

    fn queue_depth(&self) -> u64 {
        self.inner.staged_len.load(Ordering::Relaxed) as u64
    }

    fn stat_admits(&self, uid: u32, gid: u32) -> bool {
        let own = socket::own_ids().0;
        self.inner
            .started_policy
            .get()
            .is_some_and(|p| p.allows(own, uid, gid))
    }
}

/// The peer's credentials as the connection log reports them.
fn peer_info(c: &PeerCred) -> PeerInfo {
    PeerInfo::local(c.pid, c.uid, c.gid)
}

impl Drop for IpcTransport {
    fn drop(&mut self) {
        self.stop();
        // Unreachable now (no strong reference is left): the stat socket
        // stops with the process's last transport.
        super::stat::released();
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

    /// Records `text` as the last error and logs it at `warn`, unless its
    /// class already logged a line within the window (see [`logging`]):
    /// a peer that repeats an event in a loop, with a new pid each time or
    /// alternating two events, cannot flood the log.
    fn note(&self, link: &mut Link, class: LogClass, text: String) {
        match link.log_limiter.check(class, Instant::now()) {
            Verdict::Log { held_back: 0 } => {
                log::warn!("lwmq {}: {}", self.descriptor, text);
            }
            Verdict::Log { held_back } => log::warn!(
                "lwmq {}: {} ({held_back} similar lines held back by the rate limit)",
                self.descriptor,
                text
            ),
            Verdict::HoldBack => {}
        }
        link.last_error = Some(text);
    }

    /// Records a refusal: counted, noted (rate-limited log line and
    /// `last_error`) and logged as an event. `sticky`: it refused this
    /// side's own attempt, or the pairing a server was setting up, and
    /// becomes the state until a connection succeeds; a server's refusal
    /// of a third party (`Busy`, a user the policy does not admit) is not
    /// (see [`super::events`]).
    fn refused(&self, link: &mut Link, refusal: Refusal, sticky: bool) {
        self.stats.refusals.fetch_add(1, Ordering::Relaxed);
        let class = LogClass::Refusal {
            code: refusal.reason.code(),
            by_peer: refusal.by_peer,
        };
        self.note(link, class, format!("connection refused: {refusal}"));
        self.log.refused(refusal, sticky && link.conn.is_none());
    }

    /// Called from the data path when the peer broke the ring protocol.
    fn violation(&self, conn: &Arc<Conn>, v: &Violation) {
        if conn.dead.swap(true, Ordering::SeqCst) {
            return;
        }
        self.stats.violations.fetch_add(1, Ordering::Relaxed);
        let _ = conn.violation.set(format!("shared memory: {v}"));
        let mut link = lock(&self.link);
        self.note(
            &mut link,
            LogClass::Violation,
            format!(
                "dropping connection to {}: peer broke the shared-memory protocol: {v}",
                conn.peer.pid_text()
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
            "lwmq {}: connected to {}",
            self.descriptor,
            conn.peer.pid_text()
        );
        let peer = peer_info(&conn.peer);
        link.conn = Some(conn);
        self.log.connected(peer);
        self.stats.connections.fetch_add(1, Ordering::Relaxed);
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.link_cv.notify_all();
        // Async waiters re-check (and arm on the new rings).
        ring::signal_readiness(&self.ready_fd);
    }

    /// Forgets the current connection. A connection the data path dropped
    /// ([`Self::violation`]) ends for that reason, whatever `why` says.
    fn disconnect(&self, conn: &Arc<Conn>, why: DisconnectReason, role: Role) {
        conn.kill();
        let why = match conn.violation.get() {
            Some(v) => DisconnectReason::Violation(v.clone()),
            None => why,
        };
        let mut link = lock(&self.link);
        if link.conn.as_ref().is_some_and(|c| Arc::ptr_eq(c, conn)) {
            link.conn = None;
            log::info!(
                "lwmq {}: disconnected from {}: {why}",
                self.descriptor,
                conn.peer.pid_text()
            );
            self.log.disconnected(why, role);
            self.stats.disconnections.fetch_add(1, Ordering::Relaxed);
            self.generation.fetch_add(1, Ordering::AcqRel);
            self.link_cv.notify_all();
            // Async waiters woken by `kill` may have looked before the
            // state changed: once more, now that it says disconnected.
            ring::signal_readiness(&self.ready_fd);
        }
    }

    /// Waits for a connection change, at most `slice` or until `deadline`.
    fn wait_link_change(&self, seen: u64, deadline: Deadline) {
        let link = lock(&self.link);
        if self.generation.load(Ordering::Acquire) != seen
            || self.stopping.load(Ordering::Acquire)
            || self.rx_interrupt.load(Ordering::SeqCst)
        {
            return;
        }
        let _ = self
            .link_cv
            .wait_timeout(link, deadline.slice(Duration::from_millis(100)));
    }
}
