//! The `tcp://host:port` transport: the same channels, semantics and
//! guarantees as `ipc://`, over a TCP connection.
//!
//! One *I/O thread* per transport (`io.rs`) sleeps in `epoll` and does what
//! no application thread is around to do: the server's listening socket
//! and handshakes in progress (`handshake.rs`), the client's connection
//! attempts on its retry timer, heartbeats and the silence check, writes
//! the socket could not take at once, and reads while no application
//! thread is reading. Application threads do their own I/O on the hot
//! path: a commit writes its frame (and everything queued behind it) in
//! one vectored `sendmsg`, and a `receive` that finds nothing ready reads
//! the socket itself (`conn.rs` explains who reads when).
//!
//! Flow control is by credits (`writer.rs`, `reader.rs`): the receiver
//! grants one credit per receive buffer it frees, and the sender never has
//! more DATA frames in flight than credits. Both sides' memory is bounded
//! by their `MaxPending...Buffers`.
//!
//! Connection changes go to the transport's [`ConnectionLog`] (state,
//! generation, peer, events), from `link.rs` only: `started` and `closed`
//! here, `connected` when a handshake publishes its connection,
//! `disconnected` when the I/O thread cleans up after one (with the reason
//! the first thread that saw it die recorded), `refused` for every
//! refusal, sticky for this side's own attempts and the pairing a server
//! was setting up, an event only for third parties (`Busy`, the
//! allow-list), as `ipc://` does.
//!
//! Files: this one holds the transport object and the state its threads
//! share ([`Inner`]); `link` the connection record, counters and log lines;
//! `proto` the wire format; `conn` one connection; `writer` and `reader`
//! the two directions of the data path; `sender` and `receiver` the
//! application's sides; `handshake` the greeting and HELLO exchange;
//! `io` the I/O thread; `allow` the peer allow-list.
//!
//! No `unsafe` here: buffers are `Vec<u8>` owned by one side at a time, and
//! every system call goes through `std::net` or `rustix`.
#![deny(unsafe_code)]

pub(crate) mod allow;
mod conn;
mod handshake;
mod io;
mod link;
pub mod proto;
mod reader;
mod receiver;
mod sender;
mod writer;

pub use receiver::TcpReceiver;
pub use sender::TcpSender;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::io::Errno;

use super::{
    AccessPolicy, AsyncArm, BufferLimits, ChannelKind, ConnectionLog, DisconnectReason,
    ReceiveSide, Role, SendSide, Transport, TransportConfig, TransportControl, TransportError,
    TransportStats,
};
use crate::descriptor::TcpAddress;
use crate::sys::SysError;
use crate::timeout::Deadline;
use conn::Conn;
use link::{Link, Stats};
use writer::TxState;

/// Buffer limits of the `tcp://` transport (those of `ipc://`: the
/// application sees the same limits whichever transport it picks).
pub const LIMITS: BufferLimits = BufferLimits {
    max_buffer_size: 1 << 30,
    max_send_buffers: 4096,
    max_receive_buffers: 4096,
    max_total_buffers: 4096,
    max_inline_data_size: crate::message::MAX_INLINE_FRAME_SIZE as u32,
};

/// Default client retry interval (the `ipc://` one).
pub const DEFAULT_RETRY: Duration = Duration::from_millis(100);
/// `tcp://`: default silence after which a peer is declared dead
/// ([`Endpoint::heartbeat_timeout`](crate::Endpoint::heartbeat_timeout));
/// heartbeats go out every fifth of it (1 s) while a direction is
/// otherwise idle.
pub const DEFAULT_HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(5);
/// `tcp://`: shortest heartbeat timeout accepted (other than 0, "off").
pub const MIN_HEARTBEAT_TIMEOUT: Duration = Duration::from_millis(100);
/// `tcp://`: longest heartbeat timeout accepted.
pub const MAX_HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(3600);
/// Heartbeats per timeout: the interval is the timeout divided by this.
pub const HEARTBEATS_PER_TIMEOUT: u32 = 5;
/// Time a peer has to complete the handshake, from `accept` or `connect`.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);
/// Default time a waiting receiver polls the socket before it sleeps in
/// `poll` (decision 111 in docs/decisions.md).
pub const DEFAULT_SPIN: Duration = Duration::from_micros(50);

/// A received buffer waiting to be handed out.
#[derive(Debug)]
struct Ready {
    buf: Vec<u8>,
    len: usize,
    erase: bool,
    /// The connection it came on ([`Conn::id`]).
    conn_id: u64,
}

/// The current connection as the receive side accounts for it.
#[derive(Debug)]
struct CurRx {
    conn: Arc<Conn>,
    /// Buffers received on it and not yet disposed of.
    outstanding: u64,
    /// A FLUSH to answer once `outstanding` reaches 0.
    flush_pending: Option<u32>,
}

/// The receive half: the pool of receive buffers and those ready.
#[derive(Debug, Default)]
struct RxState {
    free: Vec<Vec<u8>>,
    /// Buffers allocated so far, at most `MaxPendingReceiveBuffers`.
    total: usize,
    ready: VecDeque<Ready>,
    cur: Option<CurRx>,
    /// Bumped each time a thread stops reading, so a waiter that found
    /// the reader busy can tell it is free now.
    reader_epoch: u64,
}

/// State shared by the transport object, its I/O thread and the sides.
#[derive(Debug)]
struct Inner {
    descriptor: String,
    addr: TcpAddress,
    config: TransportConfig,
    link: Mutex<Link>,
    link_cv: Condvar,
    /// State, generation, peer and events, as callers see them. Written
    /// with `link` held (the order is always `link`, then the log).
    log: Arc<ConnectionLog>,
    /// Bumped on every connection change (the data path's view; the
    /// log's generation counts connections only).
    generation: AtomicU64,
    stats: Stats,
    retry_ms: AtomicU64,
    /// Heartbeat timeout for the next connection, in ms (0: off).
    heartbeat_ms: AtomicU64,
    spin_ns: AtomicU64,
    epoch: Instant,
    wake_fd: OwnedFd,
    epoll: OwnedFd,
    stopping: AtomicBool,
    tx_claimed: AtomicBool,
    rx_claimed: AtomicBool,
    tx: Mutex<TxState>,
    tx_cv: Condvar,
    /// Threads sleeping on `tx_cv` (a notification without one would be a
    /// system call for nobody, on every write).
    tx_waiters: AtomicUsize,
    rx: Mutex<RxState>,
    rx_cv: Condvar,
    /// Threads sleeping on `rx_cv`.
    rx_waiters: AtomicUsize,
    /// Set by `interrupt_receive`: the next (or current) wait of the
    /// receive side returns early, and clears it.
    rx_interrupt: AtomicBool,
    /// Written by `interrupt_receive`, polled by a receiver that waits on
    /// the socket, so that the interrupt ends that wait at once.
    rx_wake_fd: OwnedFd,
    /// The readiness descriptor for async waiters (`readiness_fd`):
    /// written when buffers arrive while `rx_async` is set, when credits,
    /// FLUSHED or written frames free the send side while `tx_async` is
    /// set, on every connection change and on `interrupt_receive`.
    ready_fd: OwnedFd,
    /// An async waiter waits for received buffers.
    rx_async: AtomicBool,
    /// An async waiter waits for room to send.
    tx_async: AtomicBool,
}

/// A `tcp://` transport instance.
#[derive(Debug)]
pub struct TcpTransport {
    inner: Arc<Inner>,
    io: Mutex<Option<JoinHandle<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a lock leaves state that is at worst stale;
    // keep serving rather than poisoning every later call.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl TcpTransport {
    /// Creates the transport (nothing is bound or connected until `start`).
    pub fn new(addr: TcpAddress, config: TransportConfig) -> Result<Self, TransportError> {
        let descriptor = addr.to_string();
        let sys = |call, e| TransportError::Sys {
            descriptor: descriptor.clone(),
            source: SysError::new(call, e),
        };
        let eventfd = || {
            rustix::event::eventfd(
                0,
                rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK,
            )
            .map_err(|e| sys("eventfd", e))
        };
        let (wake_fd, rx_wake_fd, ready_fd) = (eventfd()?, eventfd()?, eventfd()?);
        let epoll = rustix::event::epoll::create(rustix::event::epoll::CreateFlags::CLOEXEC)
            .map_err(|e| sys("epoll_create1", e))?;
        Ok(Self {
            inner: Arc::new(Inner {
                link: Mutex::new(Link::new()),
                link_cv: Condvar::new(),
                log: Arc::new(ConnectionLog::new()),
                generation: AtomicU64::new(0),
                stats: Stats::default(),
                retry_ms: AtomicU64::new(DEFAULT_RETRY.as_millis() as u64),
                heartbeat_ms: AtomicU64::new(DEFAULT_HEARTBEAT_TIMEOUT.as_millis() as u64),
                spin_ns: AtomicU64::new(DEFAULT_SPIN.as_nanos() as u64),
                epoch: Instant::now(),
                wake_fd,
                epoll,
                stopping: AtomicBool::new(false),
                tx_claimed: AtomicBool::new(false),
                rx_claimed: AtomicBool::new(false),
                tx: Mutex::new(TxState::new()),
                tx_cv: Condvar::new(),
                tx_waiters: AtomicUsize::new(0),
                rx: Mutex::new(RxState::default()),
                rx_cv: Condvar::new(),
                rx_waiters: AtomicUsize::new(0),
                rx_interrupt: AtomicBool::new(false),
                rx_wake_fd,
                ready_fd,
                rx_async: AtomicBool::new(false),
                tx_async: AtomicBool::new(false),
                descriptor,
                addr,
                config,
            }),
            io: Mutex::new(None),
        })
    }

    /// The parsed address.
    pub fn address(&self) -> &TcpAddress {
        &self.inner.addr
    }

    /// The address of the connected peer, if any.
    pub fn peer(&self) -> Option<SocketAddr> {
        lock(&self.inner.link).conn.as_ref().map(|c| c.peer)
    }

    /// The local address the server listens on, once started.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        lock(&self.inner.link).local
    }
}

impl Transport for TcpTransport {
    fn descriptor(&self) -> &str {
        &self.inner.descriptor
    }

    fn config(&self) -> &TransportConfig {
        &self.inner.config
    }

    fn start(&self, role: Role, kind: ChannelKind) -> Result<(), TransportError> {
        let inner = &self.inner;
        let mut link = lock(&inner.link);
        if link.started.is_some() {
            return Err(TransportError::AlreadyOpen(inner.descriptor.clone()));
        }
        if inner.stopping.load(Ordering::Acquire) {
            return Err(TransportError::NotOpen(inner.descriptor.clone()));
        }
        let listener = match role {
            Role::Server => {
                let l = io::bind(&inner.addr).map_err(|e| match e {
                    io::BindError::InUse => TransportError::AddressInUse(inner.descriptor.clone()),
                    io::BindError::Sys(call, errno) => TransportError::Sys {
                        descriptor: inner.descriptor.clone(),
                        source: SysError::new(call, errno),
                    },
                    io::BindError::Resolve(why) => TransportError::Resolve {
                        descriptor: inner.descriptor.clone(),
                        host: inner.addr.host().to_string(),
                        why,
                    },
                })?;
                link.local = l.local_addr().ok();
                Some(l)
            }
            Role::Client => None,
        };
        link.started = Some((role, kind));
        inner.log.started(role);
        drop(link);
        let me = Arc::clone(inner);
        let name = match role {
            Role::Server => "lwmq-tcp-server",
            Role::Client => "lwmq-tcp-client",
        };
        let handle = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || io::run(me, role, kind, listener))
            .map_err(|e| TransportError::Sys {
                descriptor: inner.descriptor.clone(),
                source: SysError::new(
                    "pthread_create",
                    Errno::from_io_error(&e).unwrap_or(Errno::AGAIN),
                ),
            })?;
        *lock(&self.io) = Some(handle);
        Ok(())
    }

    fn stop(&self) {
        let inner = &self.inner;
        inner.stopping.store(true, Ordering::SeqCst);
        inner.poke();
        if let Some(h) = lock(&self.io).take() {
            let _ = h.join();
        }
        let mut link = lock(&inner.link);
        if let Some(c) = link.conn.take() {
            // Only if the I/O thread never ran to its end (it cleans up
            // its connection, with a `Disconnected` event, before it
            // returns).
            c.kill(inner, DisconnectReason::Closed);
            let role = link.started.map_or(Role::Server, |(r, _)| r);
            inner.log.disconnected(DisconnectReason::Closed, role);
        }
        inner.log.closed();
        inner.generation.fetch_add(1, Ordering::AcqRel);
        drop(link);
        inner.wake_all();
    }

    fn connection_log(&self) -> &Arc<ConnectionLog> {
        &self.inner.log
    }

    fn last_error(&self) -> Option<String> {
        lock(&self.inner.link).last_error.clone()
    }

    fn stats(&self) -> TransportStats {
        self.inner.stats.snapshot()
    }

    fn control(&self, control: TransportControl) -> Result<(), TransportError> {
        let inner = &self.inner;
        let err = |what: String| TransportError::Control {
            descriptor: inner.descriptor.clone(),
            what,
        };
        match control {
            TransportControl::SetClientConnectionRetryInterval(d) => {
                if d.is_zero() || d > Duration::from_secs(86400) {
                    return Err(err(format!(
                        "retry interval {d:?} is out of range (rule: 1 ms ..= 24 h)"
                    )));
                }
                inner
                    .retry_ms
                    .store(d.as_millis().max(1) as u64, Ordering::Relaxed);
                inner.poke();
            }
            TransportControl::SetSpinDuration(d) => {
                if d > Duration::from_millis(100) {
                    return Err(err(format!(
                        "spin duration {d:?} is out of range (rule: at most 100 ms)"
                    )));
                }
                inner.spin_ns.store(d.as_nanos() as u64, Ordering::Relaxed);
            }
            TransportControl::SetHeartbeatTimeout(d) => {
                if !d.is_zero() && !(MIN_HEARTBEAT_TIMEOUT..=MAX_HEARTBEAT_TIMEOUT).contains(&d) {
                    return Err(err(format!(
                        "heartbeat timeout {d:?} is out of range (rule: 0 (off) or {MIN_HEARTBEAT_TIMEOUT:?} ..= {MAX_HEARTBEAT_TIMEOUT:?})"
                    )));
                }
                inner
                    .heartbeat_ms
                    .store(d.as_millis() as u64, Ordering::Relaxed);
            }
            TransportControl::SetPeerAllowList(list) => {
                let mut link = lock(&inner.link);
                if link.started.is_some() {
                    return Err(err(
                        "the peer allow-list can only be set before the channel opens".into(),
                    ));
                }
                link.allow = list;
            }
            // The default policy asks for nothing a network peer could be
            // checked against; anything else cannot be enforced here.
            TransportControl::SetAccessPolicy(p) if p == AccessPolicy::same_user() => {}
            TransportControl::SetAccessPolicy(_) => {
                return Err(err(
                    "an access policy by user applies to ipc:// only; tcp:// peers are chosen by address (Endpoint::allow_peers)".into(),
                ))
            }
        }
        Ok(())
    }

    fn pending_send(&self) -> usize {
        lock(&self.inner.tx).queue.len()
    }

    fn claim_sender(&self) -> Result<Box<dyn SendSide>, TransportError> {
        let inner = &self.inner;
        inner.claim(inner.config.directions().sends(), &inner.tx_claimed, "send")?;
        Ok(Box::new(TcpSender::new(Arc::clone(inner))))
    }

    fn claim_receiver(&self) -> Result<Box<dyn ReceiveSide>, TransportError> {
        let inner = &self.inner;
        inner.claim(
            inner.config.directions().receives(),
            &inner.rx_claimed,
            "receive",
        )?;
        Ok(Box::new(TcpReceiver::new(Arc::clone(inner))))
    }

    fn interrupt_receive(&self) {
        let inner = &self.inner;
        inner.rx_interrupt.store(true, Ordering::SeqCst);
        // A receiver polling the socket wakes on the eventfd; one about to
        // sleep on a condition variable checks the flag under that
        // variable's lock, so it either sees the flag or is asleep when
        // this notifies.
        let _ = rustix::io::write(&inner.rx_wake_fd, &1u64.to_ne_bytes());
        drop(lock(&inner.rx));
        inner.rx_cv.notify_all();
        drop(lock(&inner.link));
        inner.link_cv.notify_all();
        inner.signal_ready();
    }

    fn readiness_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        Some(self.inner.ready_fd.as_fd())
    }

    fn set_async_waiter(&self, side: crate::ring::AsyncWaiter, armed: bool) -> AsyncArm {
        let inner = &self.inner;
        let flag = match side {
            crate::ring::AsyncWaiter::Consumer => &inner.rx_async,
            crate::ring::AsyncWaiter::Producer => &inner.tx_async,
        };
        // SYNC POINT: the flag before the caller's re-check (which takes
        // the receive or send lock); the thread that changes that state
        // loads the flag after releasing the same lock (`apply` in
        // reader.rs, `TxState::consume` in writer.rs), so one of the two
        // sees the other.
        flag.store(armed, Ordering::SeqCst);
        if armed {
            // Both conditions need a reader of the socket: the I/O thread,
            // unless an application thread reads now (it hands reading
            // over when it lets go, seeing the flag: `reader_released`).
            if let Some(conn) = inner.current() {
                conn.ensure_reading(inner);
            }
        }
        // With no connection, `publish` signals when one comes.
        AsyncArm::Signalled
    }
}

impl Drop for TcpTransport {
    fn drop(&mut self) {
        self.stop();
        // Last: the stat thread stops with the process's last transport.
        super::stat::released();
    }
}

impl Inner {
    /// Wakes the I/O thread.
    fn poke(&self) {
        let _ = rustix::io::write(&self.wake_fd, &1u64.to_ne_bytes());
    }

    /// Nanoseconds since the transport was made (the liveness clocks).
    fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    fn spin(&self) -> Duration {
        Duration::from_nanos(self.spin_ns.load(Ordering::Relaxed))
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Sleeps on the send half for at most `d` (a waiter counted while it
    /// sleeps: see [`Self::notify_tx`]).
    fn wait_tx<'a>(&self, g: MutexGuard<'a, TxState>, d: Duration) -> MutexGuard<'a, TxState> {
        self.tx_waiters.fetch_add(1, Ordering::SeqCst);
        let g = self
            .tx_cv
            .wait_timeout(g, d)
            .unwrap_or_else(|e| e.into_inner())
            .0;
        self.tx_waiters.fetch_sub(1, Ordering::SeqCst);
        g
    }

    /// Wakes the threads sleeping on the send half, if any. Callers change
    /// what the waiters wait for under the send lock first; a waiter
    /// counts itself under that lock before it sleeps, so none is missed.
    fn notify_tx(&self) {
        if self.tx_waiters.load(Ordering::SeqCst) > 0 {
            self.tx_cv.notify_all();
        }
    }

    /// [`Self::wait_tx`] for the receive half.
    fn wait_rx<'a>(&self, g: MutexGuard<'a, RxState>, d: Duration) -> MutexGuard<'a, RxState> {
        self.rx_waiters.fetch_add(1, Ordering::SeqCst);
        let g = self
            .rx_cv
            .wait_timeout(g, d)
            .unwrap_or_else(|e| e.into_inner())
            .0;
        self.rx_waiters.fetch_sub(1, Ordering::SeqCst);
        g
    }

    /// Takes a pending `interrupt_receive`, if any (and the wake-up it
    /// wrote): true if the receive side should return now.
    fn take_rx_interrupt(&self) -> bool {
        let i = &self.rx_interrupt;
        if i.load(Ordering::Relaxed) && i.swap(false, Ordering::SeqCst) {
            self.drain_rx_wake();
            return true;
        }
        false
    }

    /// Empties the receive side's wake-up eventfd.
    fn drain_rx_wake(&self) {
        let mut b = [0u8; 8];
        let _ = rustix::io::read(&self.rx_wake_fd, &mut b);
    }

    /// The receive side's wake-up eventfd, to poll beside the socket.
    fn rx_wake(&self) -> impl AsFd + '_ {
        self.rx_wake_fd.as_fd()
    }

    /// [`Self::notify_tx`] for the receive half.
    fn notify_rx(&self) {
        if self.rx_waiters.load(Ordering::SeqCst) > 0 {
            self.rx_cv.notify_all();
        }
    }

    /// Writes the readiness descriptor (async waiters re-check).
    fn signal_ready(&self) {
        crate::ring::signal_readiness(&self.ready_fd);
    }

    /// An async waiter is armed on either half (it needs a reader of the
    /// socket).
    fn async_armed(&self) -> bool {
        self.rx_async.load(Ordering::SeqCst) || self.tx_async.load(Ordering::SeqCst)
    }

    /// After buffers were queued as ready: wakes the threads sleeping on
    /// the receive half and an async receive waiter.
    fn notify_rx_data(&self) {
        self.notify_rx();
        if self.rx_async.load(Ordering::SeqCst) {
            self.signal_ready();
        }
    }

    /// After the send side gained room (credits, FLUSHED, frames
    /// written): wakes the threads sleeping on it and an async waiter.
    fn notify_tx_room(&self) {
        self.notify_tx();
        if self.tx_async.load(Ordering::SeqCst) {
            self.signal_ready();
        }
    }

    /// Wakes every thread waiting on the transport, and async waiters (a
    /// connection change, or the transport stopping).
    fn wake_all(&self) {
        drop(lock(&self.tx));
        self.tx_cv.notify_all();
        drop(lock(&self.rx));
        self.rx_cv.notify_all();
        drop(lock(&self.link));
        self.link_cv.notify_all();
        self.signal_ready();
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

    /// The live connection, if any.
    fn current(&self) -> Option<Arc<Conn>> {
        lock(&self.link).conn.clone().filter(|c| !c.is_dead())
    }

    /// The peer broke the protocol: counted, logged, connection dropped.
    fn violation(&self, conn: &Conn, why: &str) {
        if conn.kill(
            self,
            DisconnectReason::Violation(format!("tcp stream: {why}")),
        ) {
            self.stats.violations.fetch_add(1, Ordering::Relaxed);
            let mut link = lock(&self.link);
            self.note(
                &mut link,
                link::LogClass::Violation,
                format!(
                    "dropping connection to {}: peer broke the tcp protocol: {why}",
                    conn.peer_text()
                ),
            );
        }
    }

    /// Waits for a connection change, at most `slice` or until `deadline`.
    fn wait_link_change(&self, seen: u64, deadline: Deadline) {
        let link = lock(&self.link);
        if self.generation.load(Ordering::Acquire) != seen
            || self.stopping()
            || self.rx_interrupt.load(Ordering::SeqCst)
        {
            return;
        }
        let _ = self
            .link_cv
            .wait_timeout(link, deadline.slice(Duration::from_millis(100)));
    }

    /// A thread stops reading `conn`: hands reading to the I/O thread if
    /// somebody needs it, and wakes threads that found the reader busy.
    fn reader_released(&self, conn: &Conn) {
        if conn.io_wanted.load(Ordering::SeqCst) > 0 || self.async_armed() {
            conn.ensure_reading(self);
        }
        lock(&self.rx).reader_epoch += 1;
        self.notify_rx();
    }
}
