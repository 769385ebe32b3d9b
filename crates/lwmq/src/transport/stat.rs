//! Statistics from outside the process: a registry of this process's
//! transports, the snapshot a query returns, the per-process stat socket
//! that answers queries, and the querying side (`lwmq stat`, `lwmq ls`).
//!
//! # The registry
//!
//! [`super::create`] registers every transport it makes, of any scheme, as
//! a `Weak<dyn Transport>`: a transport joins by implementing the driver
//! interface it implements anyway (its `state`, `connection_log`, `stats`,
//! `config`) plus two optional accessors with safe defaults,
//! [`Transport::queue_depth`] (staged buffers) and
//! [`Transport::stat_admits`] (whether its access policy admits another
//! user's query). Dropped transports fall out of the registry on the next
//! registration or snapshot.
//!
//! A messaging channel registers a [`ChannelProbe`] when it opens (weakly
//! too): its transports and a [`DepthProbe`](crate::queue::DepthProbe) of
//! each of its queues, so that a transport's snapshot also says how many
//! messages its channel has queued to send, queued received, and
//! discarded from its bounded queues.
//!
//! # What a snapshot costs the data path: nothing
//!
//! A snapshot reads the counters the data path already keeps (relaxed
//! atomic loads), the connection record (its own lock, which the data path
//! does not take on its steady path), the staged count (an atomic) and the
//! queues' own counters through their probes (atomic loads; a probe never
//! takes the receive path's mutex, in which the receive queue's producer
//! lives). It
//! takes no lock the data path takes and writes nothing the data path
//! reads. The registry's lock is taken only by `create` and by snapshots.
//!
//! # Where queries are answered
//!
//! * A process's **stat socket**, the abstract `SOCK_SEQPACKET` name
//!   `lwmq-stat/<pid>`, bound when its first transport is created and
//!   served by one small thread (`lwmq-stat`) while the process has
//!   transports: it reaches processes that are only clients (they bind no
//!   rendezvous). When the last transport is dropped ([`released`], called
//!   from a transport's `Drop`), the thread is woken, joined and the socket
//!   closed; the next transport starts them again. So a program that
//!   closes its channels leaves no thread behind (valgrind's leak check of
//!   the C API test sees none), and a child forked after the thread started
//!   does not join its parent's thread: it starts its own.
//! * A server's **rendezvous** answers the same STAT request in place of a
//!   HELLO (`ipc/service.rs`), so `lwmq stat ipc://ADDRESS` needs no pid.
//!
//! Both answer with the same snapshot of every transport of the process
//! ([`answer`]). The querier's credentials (`SO_PEERCRED`) decide what it
//! sees: the process's own user sees every transport; another user sees
//! the transports whose access policy admits it, and is refused
//! (`AccessDenied`) when none does. Queries are bounded: the request is
//! the 8-byte header (anything else is refused `Protocol`), a querier has
//! [`REQUEST_TIMEOUT`] to send it, the answer is at most
//! [`proto::MAX_STAT_REPLY`] bytes, and at most [`MAX_ANSWERS_PER_SECOND`]
//! answers are given per second per process (more are refused `Busy`).
//!
//! The querier checks that the stat socket of pid N is held by pid N
//! (`SO_PEERCRED`): another process squatting the name cannot pass off its
//! numbers as N's.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use rustix::io::Errno;

use super::ipc::proto::{self, Message, ProtoError};
use super::{ConnectionState, PeerInfo, RefusalReason, Transport, TransportStats};
use crate::descriptor::IpcAddress;
use crate::sys::socket::{self, PeerCred};
use crate::sys::SysError;

/// The abstract name prefix of the per-process stat sockets
/// (`lwmq-stat/<pid>`).
pub const STAT_SOCKET_PREFIX: &str = "lwmq-stat/";
/// How long a querier has to send its request once connected.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(1);
/// Most answers a process gives per second (both places together).
pub const MAX_ANSWERS_PER_SECOND: u32 = 50;

/// One transport as a query sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportSnapshot {
    /// Its descriptor.
    pub descriptor: String,
    /// Where its connection stands (with the refusal when refused).
    pub state: ConnectionState,
    /// The connected peer, if any.
    pub peer: Option<PeerInfo>,
    /// Bytes per buffer.
    pub buffer_size: u64,
    /// Send buffers (0: it does not send).
    pub send_buffers: u32,
    /// Receive buffers (0: it does not receive).
    pub receive_buffers: u32,
    /// Connections established so far.
    pub generation: u64,
    /// Its counters.
    pub stats: TransportStats,
    /// Buffers sent while no peer was connected, waiting for the next one.
    pub staged: u64,
    /// Of the messaging channel the transport belongs to (0 for a raw
    /// channel): messages waiting in its send queues, all priorities.
    pub send_queued: u64,
    /// Of its channel: messages received and waiting in the receive queue.
    pub receive_queued: u64,
    /// Of its channel: messages its bounded queues discarded because they
    /// were full (send queues with a discard limit, and the receive queue).
    pub discards: u64,
}

/// What statistics see of a messaging channel: its transports and views of
/// its queues (see [`crate::queue::DepthProbe`]). The channel owns it; the
/// registry holds it weakly.
#[derive(Debug)]
pub(crate) struct ChannelProbe {
    /// The channel's transports (their allocations' addresses, to match
    /// them with the transport registry).
    pub(crate) transports: Vec<usize>,
    pub(crate) send: Vec<crate::queue::DepthProbe>,
    pub(crate) receive: Option<crate::queue::DepthProbe>,
}

impl ChannelProbe {
    /// The address that identifies `t` to [`ChannelProbe::transports`].
    pub(crate) fn key(t: &Arc<dyn Transport>) -> usize {
        Arc::as_ptr(t).cast::<()>() as usize
    }

    /// (send queued, receive queued, discards).
    fn read(&self) -> (u64, u64, u64) {
        let mut queued = 0u64;
        let mut discards = 0u64;
        for p in &self.send {
            queued += p.len() as u64;
            discards += p.discarded();
        }
        let (rq, rd) = self
            .receive
            .as_ref()
            .map_or((0, 0), |p| (p.len() as u64, p.discarded()));
        (queued, rq, discards + rd)
    }
}

/// The messaging channels of this process, weakly.
static CHANNELS: Mutex<Vec<Weak<ChannelProbe>>> = Mutex::new(Vec::new());

/// Registers a channel's probe (called when a messaging channel opens).
pub(crate) fn register_channel(p: &Arc<ChannelProbe>) {
    let mut c = CHANNELS.lock().unwrap_or_else(|e| e.into_inner());
    c.retain(|w| w.strong_count() > 0);
    c.push(Arc::downgrade(p));
}

/// The live channel probes.
fn channel_probes() -> Vec<Arc<ChannelProbe>> {
    let mut c = CHANNELS.lock().unwrap_or_else(|e| e.into_inner());
    c.retain(|w| w.strong_count() > 0);
    c.iter().filter_map(Weak::upgrade).collect()
}

/// Every transport of one process, as one query answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSnapshot {
    /// The answering process (as it sees itself).
    pub pid: u32,
    /// Its transports that the querier may see.
    pub transports: Vec<TransportSnapshot>,
    /// Some were left out to keep the answer within its bounds.
    pub truncated: bool,
}

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StatError {
    /// Nothing listens on the name: no such process, or it has no
    /// transport (or runs another lwmq version).
    #[error("{what}: nothing answers (no lwmq transport there, or the process has ended)")]
    NotFound {
        /// The stat socket or rendezvous asked.
        what: String,
    },
    /// The process refused the query.
    #[error("{what}: query refused: {reason} ({detail})")]
    Refused {
        /// The stat socket or rendezvous asked.
        what: String,
        /// The rule.
        reason: RefusalReason,
        /// The process's text (escaped).
        detail: String,
    },
    /// The stat socket named for one pid is held by another process.
    #[error("stat socket {name}: held by {holder}, not by pid {pid} (rule: a stat socket is bound by the process it names); ignoring its answer")]
    Impostor {
        /// The name.
        name: String,
        /// The pid it names.
        pid: u32,
        /// Who holds it.
        holder: String,
    },
    /// No answer in time.
    #[error("{what}: no answer within {timeout:?}")]
    Timeout {
        /// The stat socket or rendezvous asked.
        what: String,
        /// The time given.
        timeout: Duration,
    },
    /// The answer broke the protocol.
    #[error("{what}: bad answer: {error}")]
    Protocol {
        /// The stat socket or rendezvous asked.
        what: String,
        /// The rule broken.
        error: ProtoError,
    },
    /// A system call failed.
    #[error("{what}: {source}")]
    Sys {
        /// The stat socket or rendezvous asked.
        what: String,
        /// The call.
        source: SysError,
    },
}

/// The registry: every transport made in this process, weakly.
static REGISTRY: Mutex<Vec<Weak<dyn Transport>>> = Mutex::new(Vec::new());
/// The stat socket's thread while the process has transports.
static SERVER: Mutex<Option<Running>> = Mutex::new(None);

thread_local! {
    /// Set in the stat thread (const-initialised: no allocation, no
    /// destructor).
    static IN_STAT_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// A running stat thread.
struct Running {
    /// The process that started it (a forked child must not join it).
    pid: u32,
    /// Written to stop the thread.
    wake: Arc<OwnedFd>,
    handle: std::thread::JoinHandle<()>,
}
/// The answer budget: (start of the current second, answers in it).
static BUDGET: Mutex<Option<(Instant, u32)>> = Mutex::new(None);

fn registry() -> std::sync::MutexGuard<'static, Vec<Weak<dyn Transport>>> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

fn server() -> std::sync::MutexGuard<'static, Option<Running>> {
    SERVER.lock().unwrap_or_else(|e| e.into_inner())
}

/// Registers a new transport (called by [`super::create`]) and starts the
/// stat socket if it is not running.
pub(crate) fn register(t: &Arc<dyn Transport>) {
    {
        let mut r = registry();
        r.retain(|w| w.strong_count() > 0);
        r.push(Arc::downgrade(t));
    }
    // Not under the registry lock: a stat thread being joined (see
    // `released`) may need it to finish its answer.
    let mut s = server();
    if s.as_ref().is_some_and(|r| r.pid != std::process::id()) {
        // Inherited through fork: that thread does not exist here. Its
        // handle is forgotten, never joined.
        if let Some(r) = s.take() {
            std::mem::forget(r);
        }
    }
    if s.is_none() {
        *s = start_server();
    }
}

/// A transport was dropped (every transport calls this from its `Drop`,
/// once it is no longer reachable): when no registered transport is left,
/// stops the stat thread and closes the stat socket. Called with no lock
/// of the transport held.
pub(crate) fn released() {
    let r = registry();
    if r.iter().any(|w| w.strong_count() > 0) {
        return;
    }
    // Held while joining: a `register` meanwhile waits for the old socket
    // to be closed before it binds the name again.
    let mut s = server();
    drop(r);
    let Some(running) = s.take() else {
        return;
    };
    if running.pid != std::process::id() {
        std::mem::forget(running);
        return;
    }
    let _ = rustix::io::write(&*running.wake, &1u64.to_ne_bytes());
    // The last transport may be dropped by the stat thread itself (a
    // snapshot held the last reference): it cannot join itself; it sees
    // the wake-up and ends on its own (detached).
    // (A flag of our own, not `thread::current()`: that would allocate a
    // handle for a C program's main thread, which is never freed.)
    if !IN_STAT_THREAD.get() {
        let _ = running.handle.join();
    }
}

/// The abstract name of `pid`'s stat socket.
pub fn stat_socket_name(pid: u32) -> Vec<u8> {
    format!("{STAT_SOCKET_PREFIX}{pid}").into_bytes()
}

/// A snapshot of this process's transports that a querier with `uid` and
/// `gid` may see (all of them for this process's own user), or `None` when
/// another user is admitted by none.
pub fn snapshot_for(uid: u32, gid: u32) -> Option<ProcessSnapshot> {
    let own = socket::own_ids().0;
    let live: Vec<Arc<dyn Transport>> = {
        let mut r = registry();
        r.retain(|w| w.strong_count() > 0);
        r.iter().filter_map(Weak::upgrade).collect()
    };
    let visible: Vec<&Arc<dyn Transport>> = live
        .iter()
        .filter(|t| uid == own || t.stat_admits(uid, gid))
        .collect();
    if uid != own && visible.is_empty() {
        return None;
    }
    let channels = channel_probes();
    let transports = visible
        .into_iter()
        .map(|t| {
            let mut s = snapshot_of(&**t);
            let key = ChannelProbe::key(t);
            if let Some(c) = channels.iter().find(|c| c.transports.contains(&key)) {
                (s.send_queued, s.receive_queued, s.discards) = c.read();
            }
            s
        })
        .collect();
    Some(ProcessSnapshot {
        pid: std::process::id(),
        transports,
        truncated: false,
    })
}

/// What a query shows of one transport.
fn snapshot_of(t: &dyn Transport) -> TransportSnapshot {
    let log = t.connection_log();
    let c = t.config();
    TransportSnapshot {
        descriptor: t.descriptor().to_owned(),
        state: log.state(),
        peer: log.peer(),
        buffer_size: c.buffer_size() as u64,
        send_buffers: c.send_buffers(),
        receive_buffers: c.receive_buffers(),
        generation: log.generation(),
        stats: t.stats(),
        staged: t.queue_depth(),
        send_queued: 0,
        receive_queued: 0,
        discards: 0,
    }
}

/// Takes one answer from the budget; false when the second's budget is
/// spent.
fn within_budget() -> bool {
    let mut b = BUDGET.lock().unwrap_or_else(|e| e.into_inner());
    let now = Instant::now();
    match &mut *b {
        Some((start, n)) if now.duration_since(*start) < Duration::from_secs(1) => {
            if *n >= MAX_ANSWERS_PER_SECOND {
                return false;
            }
            *n += 1;
        }
        slot => *slot = Some((now, 1)),
    }
    true
}

fn refuse(fd: &OwnedFd, reason: RefusalReason, text: String) {
    let _ = socket::send(fd, &Message::Refuse { reason, text }.encode(), None);
}

/// Answers a STAT request that arrived on `fd` from `cred` (on the stat
/// socket or a rendezvous): the snapshot this user may see, or a refusal.
pub(crate) fn answer(fd: &OwnedFd, cred: &PeerCred) {
    if !within_budget() {
        refuse(
            fd,
            RefusalReason::Busy,
            format!("stat queries are limited to {MAX_ANSWERS_PER_SECOND} per second per process; try again"),
        );
        return;
    }
    match snapshot_for(cred.uid, cred.gid) {
        Some(s) => {
            let _ = socket::send(fd, &Message::Stats(s).encode(), None);
        }
        None => refuse(
            fd,
            RefusalReason::AccessDenied,
            format!(
                "stat query from uid {} refused: this process runs as uid {} and no transport's access policy admits uid {} gid {}",
                cred.uid,
                socket::own_ids().0,
                cred.uid,
                cred.gid
            ),
        ),
    }
}

/// Binds this process's stat socket and starts its thread. A failure
/// (the name taken: another pid namespace sharing this network namespace
/// has a process with our pid; out of descriptors) leaves the process
/// without one, logged at debug: statistics are a convenience, never a
/// reason to fail a channel.
fn start_server() -> Option<Running> {
    let pid = std::process::id();
    let quiet = |what: &str, e: &dyn std::fmt::Display| {
        log::debug!("lwmq: no stat socket for this process: {what}: {e}");
    };
    let listener = socket::listen(&stat_socket_name(pid))
        .map_err(|e| quiet("bind", &e))
        .ok()?;
    let wake = rustix::event::eventfd(
        0,
        rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK,
    )
    .map_err(|e| quiet("eventfd", &e))
    .ok()?;
    let wake = Arc::new(wake);
    let w = Arc::clone(&wake);
    let handle = std::thread::Builder::new()
        .name("lwmq-stat".into())
        .spawn(move || {
            IN_STAT_THREAD.set(true);
            serve(&listener, &w);
        })
        .map_err(|e| quiet("thread", &e))
        .ok()?;
    Some(Running { pid, wake, handle })
}

/// Waits until `fd` is readable (`true`), the wake-up descriptor is
/// written (`false`), or `timeout` passes (`false`).
fn readable_unless_woken(fd: &OwnedFd, wake: &OwnedFd, timeout: Option<Duration>) -> bool {
    let mut fds = [
        rustix::event::PollFd::new(fd, rustix::event::PollFlags::IN),
        rustix::event::PollFd::new(wake, rustix::event::PollFlags::IN),
    ];
    match socket::poll(&mut fds, timeout) {
        Ok(_) => fds[1].revents().is_empty() && !fds[0].revents().is_empty(),
        // A signal: report "not readable"; the caller looks again.
        Err(_) => false,
    }
}

fn woken(wake: &OwnedFd) -> bool {
    let mut fds = [rustix::event::PollFd::new(
        wake,
        rustix::event::PollFlags::IN,
    )];
    socket::poll(&mut fds, Some(Duration::ZERO)).is_ok() && !fds[0].revents().is_empty()
}

/// The stat socket's loop: one query at a time, each bounded by
/// [`REQUEST_TIMEOUT`]; ends when `wake` is written.
fn serve(listener: &OwnedFd, wake: &OwnedFd) {
    loop {
        if woken(wake) {
            return;
        }
        if !readable_unless_woken(listener, wake, None) {
            continue;
        }
        let fd = match socket::accept(listener) {
            Ok(Some(fd)) => fd,
            Ok(None) => continue,
            Err(e) => {
                log::debug!("lwmq: stat socket: {e}");
                // Out of descriptors: back off instead of spinning.
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        serve_one(&fd, wake);
    }
}

fn serve_one(fd: &OwnedFd, wake: &OwnedFd) {
    let Ok(cred) = socket::peer_cred(fd) else {
        refuse(
            fd,
            RefusalReason::AccessDenied,
            "the querier's credentials could not be read".into(),
        );
        return;
    };
    if !readable_unless_woken(fd, wake, Some(REQUEST_TIMEOUT)) {
        return;
    }
    let mut buf = [0u8; 64];
    let r = match socket::recv(fd, &mut buf) {
        Ok(r) if r.len > 0 => r,
        _ => return,
    };
    match Message::decode(&buf[..r.len]) {
        Ok(Message::Stat) if !r.truncated => answer(fd, &cred),
        Ok(other) if !r.truncated => refuse(
            fd,
            RefusalReason::Protocol,
            format!(
                "a stat socket takes only STAT requests, not {}",
                kind_name(&other)
            ),
        ),
        Ok(_) => refuse(
            fd,
            RefusalReason::Protocol,
            "request longer than a STAT".into(),
        ),
        Err(e) => refuse(fd, RefusalReason::Protocol, e.to_string()),
    }
}

fn kind_name(m: &Message) -> &'static str {
    match m {
        Message::Hello(_) => "HELLO",
        Message::Accept(_) => "ACCEPT",
        Message::Refuse { .. } => "REFUSE",
        Message::Ready => "READY",
        Message::Stat => "STAT",
        Message::Stats(_) => "STATS",
    }
}

/// Asks process `pid` (its stat socket) for its snapshot.
pub fn query_pid(pid: u32, timeout: Duration) -> Result<ProcessSnapshot, StatError> {
    let name = stat_socket_name(pid);
    let what = format!("stat socket @{}", String::from_utf8_lossy(&name));
    query(&name, &what, Some(pid), timeout)
}

/// Asks the server of `address` (its rendezvous) for its process's
/// snapshot.
pub fn query_server(address: &IpcAddress, timeout: Duration) -> Result<ProcessSnapshot, StatError> {
    let what = format!("{address} (rendezvous)");
    query(&address.rendezvous_name(), &what, None, timeout)
}

fn query(
    name: &[u8],
    what: &str,
    pid: Option<u32>,
    timeout: Duration,
) -> Result<ProcessSnapshot, StatError> {
    let sys = |source: SysError| StatError::Sys {
        what: what.to_owned(),
        source,
    };
    let fd = match socket::connect_waiting(name, timeout.min(Duration::from_millis(500))) {
        Ok(fd) => fd,
        Err(e) if matches!(e.errno, Errno::CONNREFUSED | Errno::NOENT) => {
            return Err(StatError::NotFound {
                what: what.to_owned(),
            })
        }
        Err(e) => return Err(sys(e)),
    };
    if let Some(pid) = pid {
        let cred = socket::peer_cred(&fd).map_err(sys)?;
        if cred.pid != Some(pid) {
            return Err(StatError::Impostor {
                name: String::from_utf8_lossy(name).into_owned(),
                pid,
                holder: cred.to_string(),
            });
        }
    }
    // A server that refuses before reading (another user its policy does
    // not admit) may have sent its REFUSE and closed already: the send
    // then fails, but the REFUSE is still queued for us, so read on.
    let sent = socket::send(&fd, &Message::Stat.encode(), None);
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; proto::MAX_STAT_REPLY + 1];
    let r = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(StatError::Timeout {
                what: what.to_owned(),
                timeout,
            });
        }
        match socket::wait(fd.as_fd(), Some(left)) {
            Ok(socket::Readiness::TimedOut) => continue,
            Ok(_) => {}
            Err(e) => return Err(sys(e)),
        }
        match socket::recv(&fd, &mut buf) {
            Ok(r) => break r,
            Err(e) if e.errno == Errno::AGAIN => continue,
            // The reset of our unread request is reported once; a REFUSE
            // sent before the close may still be queued behind it.
            Err(e) if e.errno == Errno::CONNRESET => continue,
            Err(e) => return Err(sys(e)),
        }
    };
    let protocol = |error| StatError::Protocol {
        what: what.to_owned(),
        error,
    };
    if r.len == 0 {
        return Err(match sent {
            Err(e) => sys(e),
            Ok(()) => protocol(ProtoError::Truncated(0)),
        });
    }
    if r.truncated {
        return Err(protocol(ProtoError::BadField("stat message length")));
    }
    match Message::decode(&buf[..r.len]).map_err(protocol)? {
        Message::Stats(s) => Ok(s),
        Message::Refuse { reason, text } => Err(StatError::Refused {
            what: what.to_owned(),
            reason,
            detail: text,
        }),
        other => Err(protocol(ProtoError::UnexpectedType(type_of(&other)))),
    }
}

fn type_of(m: &Message) -> u8 {
    // The type byte of the message, from its own encoding.
    m.encode().get(6).copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::Refusal;

    fn sample(descriptor: &str, detail: &str) -> TransportSnapshot {
        TransportSnapshot {
            descriptor: descriptor.into(),
            state: ConnectionState::Refused(Refusal {
                reason: RefusalReason::BufferSize,
                detail: detail.into(),
                by_peer: true,
            }),
            peer: Some(PeerInfo::local(Some(42), 1000, 100)),
            buffer_size: 65536,
            send_buffers: 4,
            receive_buffers: 0,
            generation: 3,
            stats: TransportStats {
                buffers_sent: 1,
                bytes_sent: 2,
                buffers_received: 3,
                bytes_received: 4,
                connections: 5,
                reconnections: 4,
                disconnections: 6,
                refusals: 7,
                violations: 8,
                connect_attempts: 9,
            },
            staged: 10,
            send_queued: 11,
            receive_queued: 12,
            discards: 13,
        }
    }

    #[test]
    fn stats_round_trip() {
        let mut conn = sample("ipc://b", "");
        conn.state = ConnectionState::Connected;
        conn.peer = None;
        let mut v4 = sample("tcp://127.0.0.1:5555", "");
        v4.peer = Some(PeerInfo::network("127.0.0.1:40000".parse().unwrap()));
        let mut v6 = sample("tcp://[::1]:5555", "");
        v6.peer = Some(PeerInfo::network("[::1]:40001".parse().unwrap()));
        let p = ProcessSnapshot {
            pid: 77,
            transports: vec![
                sample("ipc://a:5", "server 65536, client 4096"),
                conn,
                v4,
                v6,
            ],
            truncated: false,
        };
        let m = Message::Stats(p);
        assert_eq!(Message::decode(&m.encode()).unwrap(), m);
        assert_eq!(Message::decode(&Message::Stat.encode()), Ok(Message::Stat));
    }

    #[test]
    fn stats_are_bounded_and_checked() {
        // Too many records: cut at the size bound, flagged.
        let many = ProcessSnapshot {
            pid: 1,
            transports: vec![sample(&"x".repeat(600), &"d".repeat(300)); 1000],
            truncated: false,
        };
        let bytes = Message::Stats(many).encode();
        assert!(bytes.len() <= proto::MAX_STAT_REPLY);
        let Ok(Message::Stats(back)) = Message::decode(&bytes) else {
            panic!("does not decode");
        };
        assert!(back.truncated);
        assert!(!back.transports.is_empty() && back.transports.len() < 1000);
        assert_eq!(
            back.transports[0].descriptor.len(),
            proto::MAX_STAT_DESCRIPTOR
        );
        // Every truncation of a good message is an error, never a panic.
        let good = Message::Stats(ProcessSnapshot {
            pid: 1,
            transports: vec![sample("ipc://a", "why")],
            truncated: false,
        })
        .encode();
        for n in 0..good.len() {
            assert!(Message::decode(&good[..n]).is_err(), "{n}");
        }
        let mut v = good.clone();
        v.push(0);
        assert_eq!(Message::decode(&v), Err(ProtoError::Trailing(1)));
        // A peer's text is escaped: no terminal escape reaches the screen.
        let evil = Message::Stats(ProcessSnapshot {
            pid: 1,
            transports: vec![sample("ipc://a\u{1b}[2J", "x\ny")],
            truncated: false,
        });
        let Ok(Message::Stats(s)) = Message::decode(&evil.encode()) else {
            panic!();
        };
        assert_eq!(s.transports[0].descriptor, "ipc://a\\u{1b}[2J");
        let ConnectionState::Refused(r) = &s.transports[0].state else {
            panic!();
        };
        assert_eq!(r.detail, "x\\u{a}y");
        // A bad state code and a bad record count are named.
        let mut v = good.clone();
        let state_at = 8 + 4 + 1 + 2 + 2 + "ipc://a".len();
        v[state_at] = 9;
        assert_eq!(Message::decode(&v), Err(ProtoError::BadField("stat state")));
        let mut v = good;
        v[13..15].copy_from_slice(&u16::MAX.to_le_bytes());
        assert_eq!(
            Message::decode(&v),
            Err(ProtoError::BadField("stat record count"))
        );
    }

    /// The fuzz target's seeds for the new messages stay valid as the
    /// format evolves.
    #[test]
    fn fuzz_seeds_decode() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fuzz/corpus/handshake_decode"
        );
        let stat = std::fs::read(format!("{dir}/stat")).unwrap();
        assert_eq!(Message::decode(&stat), Ok(Message::Stat));
        let stats = std::fs::read(format!("{dir}/stats")).unwrap();
        let Ok(Message::Stats(p)) = Message::decode(&stats) else {
            panic!(
                "the stats seed does not decode: {:?}",
                Message::decode(&stats)
            );
        };
        assert_eq!(p.pid, 77);
        assert_eq!(p.transports.len(), 2);
        assert!(matches!(p.transports[0].state, ConnectionState::Refused(_)));
        assert_eq!(Message::Stats(p).encode(), stats);
    }

    /// Rewrites the STATS fuzz seed in the current format:
    /// `LWMQ_WRITE_SEEDS=1 cargo test -p lwmq --lib write_stats_seed`.
    #[test]
    fn write_stats_seed() {
        if std::env::var_os("LWMQ_WRITE_SEEDS").is_none() {
            return;
        }
        let mut conn = sample("tcp://127.0.0.1:5555", "");
        conn.state = ConnectionState::Connected;
        conn.peer = Some(PeerInfo::network("127.0.0.1:40000".parse().unwrap()));
        let p = ProcessSnapshot {
            pid: 77,
            transports: vec![sample("ipc://a:5", "server 65536, client 4096"), conn],
            truncated: false,
        };
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fuzz/corpus/handshake_decode"
        );
        std::fs::write(format!("{dir}/stats"), Message::Stats(p).encode()).unwrap();
    }

    #[test]
    fn the_budget_runs_out() {
        *BUDGET.lock().unwrap() = None;
        for _ in 0..MAX_ANSWERS_PER_SECOND {
            assert!(within_budget());
        }
        assert!(!within_budget());
        *BUDGET.lock().unwrap() = None;
    }
}
