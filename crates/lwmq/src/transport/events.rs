//! What a transport's connection did, as values: its current
//! [`ConnectionState`], the number of connections it has established (its
//! *generation*), the current peer, and a bounded log of
//! [`ConnectionEvent`]s that readers follow with a cursor ([`Events`]).
//!
//! Every transport embeds one [`ConnectionLog`] and reports to it (the
//! `ipc://` transport from its service thread, the `tcp://` one from its
//! I/O thread and from the application thread that finds the connection
//! dead): `started`,
//! `connected`, `disconnected`, `refused`, `closed`. Nothing else writes
//! it, so the state, the generation and the events always agree.
//!
//! # The log
//!
//! The last [`ConnectionLog::CAPACITY`] events are kept, each with its
//! sequence number (the count of events before it). A cursor remembers the
//! sequence number of the next event it wants:
//!
//! * nothing new: [`Events::try_next`] is one atomic load of the number of
//!   events recorded (`published`), compared with the cursor's;
//! * something new: it takes the lock and clones the event;
//! * the event it wants was already overwritten: it returns
//!   [`ConnectionEvent::Lagged`] with the number it missed and moves to the
//!   oldest event kept. A slow reader never holds the transport up and the
//!   log never grows: a peer that provokes refusals in a loop costs each
//!   reader a `Lagged`, not memory.
//!
//! [`Events::next`] sleeps on the log's condition variable (notified on
//! every event and state change), never polls. A cursor over several logs
//! (a channel's) registers a `Signal` in each of them: one condition
//! variable that all of them notify.
//!
//! # Sticky refusal
//!
//! A refusal of this side's own connection attempt (or of the pairing a
//! server was setting up) puts the state at [`ConnectionState::Refused`]
//! and keeps it there, updated to the latest refusal on each retry, until
//! a connection succeeds (or the transport closes): a caller polling the
//! state between retries sees the refusal, not `Connecting`. A refusal of a
//! *third party* (a server turning away a second client as `Busy`, or a
//! user the access policy does not admit) is only an event.

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::Duration;

use super::{ConnectionState, Refusal, Role};
use crate::timeout::{Deadline, Timeout};

/// Who the peer of a connection is, as the kernel reported it when the
/// connection was made: `SO_PEERCRED` for `ipc://` (process, user, group),
/// the peer's socket address for `tcp://` (a network peer has no process
/// or user the kernel vouches for: those are `None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct PeerInfo {
    /// Process id as seen from this process's pid namespace; `None` when
    /// the peer lives in a pid namespace this process cannot see, and for
    /// `tcp://` (the pid a peer states in its handshake is its claim,
    /// shown in log lines only).
    pub pid: Option<u32>,
    /// Effective user id (`ipc://`); `None` for `tcp://`.
    pub uid: Option<u32>,
    /// Effective group id (`ipc://`); `None` for `tcp://`.
    pub gid: Option<u32>,
    /// The peer's address and port (`tcp://`); `None` for `ipc://`.
    pub addr: Option<SocketAddr>,
}

impl PeerInfo {
    /// A local peer as `SO_PEERCRED` reported it.
    pub(crate) fn local(pid: Option<u32>, uid: u32, gid: u32) -> Self {
        PeerInfo {
            pid,
            uid: Some(uid),
            gid: Some(gid),
            addr: None,
        }
    }

    /// A network peer at `addr`.
    pub(crate) fn network(addr: SocketAddr) -> Self {
        PeerInfo {
            pid: None,
            uid: None,
            gid: None,
            addr: Some(addr),
        }
    }
}

impl fmt::Display for PeerInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        if let Some(a) = self.addr {
            write!(f, "{a}")?;
            sep = " ";
        }
        match self.pid {
            Some(p) => write!(f, "{sep}pid {p}")?,
            None if self.addr.is_none() => write!(f, "{sep}unknown pid (another pid namespace)")?,
            None => {}
        }
        if let Some(u) = self.uid {
            write!(f, " uid {u}")?;
        }
        if let Some(g) = self.gid {
            write!(f, " gid {g}")?;
        }
        Ok(())
    }
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The peer closed its end: it closed its channel, exited, or was
    /// killed (the kernel closes a dead process's socket, so a crash shows
    /// as this at once). For `tcp://`: the peer's kernel closed the
    /// connection (FIN) or reset it (RST, which is how a socket with
    /// unread data is closed, e.g. when its process is killed).
    PeerLeft,
    /// The peer broke the protocol after the handshake (the shared-memory
    /// rules, or it wrote to the socket); this side dropped the
    /// connection. The text names the rule.
    Violation(String),
    /// The connection's socket failed; the text is the error.
    SocketError(String),
    /// `tcp://`: nothing came from the peer for the heartbeat timeout
    /// (this duration): its host or the network is gone, or the process
    /// is stopped. The peer's heartbeats would have kept an idle
    /// connection alive.
    Silent(Duration),
    /// This side's transport stopped (its channel closed).
    Closed,
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PeerLeft => f.write_str("the peer closed the connection, exited or was killed"),
            Self::Violation(v) => write!(f, "the peer broke the protocol: {v}"),
            Self::SocketError(e) => write!(f, "the connection failed: {e}"),
            Self::Silent(d) => write!(
                f,
                "the peer sent nothing for {d:?} (heartbeat timeout): its host or the network is gone, or it is stopped"
            ),
            Self::Closed => f.write_str("this side closed the transport"),
        }
    }
}

/// Something that happened to a transport's connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionEvent {
    /// A connection was established.
    Connected {
        /// Who the peer is.
        peer: PeerInfo,
        /// Connections this transport has established so far, this one
        /// included (1 for the first). A restarted peer shows as a
        /// `Disconnected` followed by a `Connected` with a new pid and a
        /// larger generation.
        generation: u64,
    },
    /// The connection ended. Buffers the peer had not taken yet are lost
    /// with it; queued messages wait for the next peer.
    Disconnected {
        /// Who the peer was.
        peer: PeerInfo,
        /// The generation of the connection that ended.
        generation: u64,
        /// Why it ended.
        reason: DisconnectReason,
    },
    /// A connection attempt was refused, by this side or by the other
    /// ([`Refusal::by_peer`]); the detail gives both sides' values. On a
    /// server this includes third parties turned away (a second client,
    /// a user the access policy does not admit), which leave its state
    /// alone.
    Refused(Refusal),
    /// This cursor fell behind the log: `missed` events were overwritten
    /// before it read them. It continues with the oldest event kept; the
    /// current state (`TransportView::state`) is still exact.
    Lagged {
        /// Events lost to this cursor.
        missed: u64,
    },
}

impl fmt::Display for ConnectionEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connected { peer, generation } => {
                write!(f, "connected to {peer} (connection {generation})")
            }
            Self::Disconnected {
                peer,
                generation,
                reason,
            } => write!(
                f,
                "disconnected from {peer} (connection {generation}): {reason}"
            ),
            Self::Refused(r) => write!(f, "connection refused: {r}"),
            Self::Lagged { missed } => {
                write!(
                    f,
                    "{missed} connection events missed (the reader fell behind)"
                )
            }
        }
    }
}

/// The state as one byte, for checks that must not take the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Kind {
    Idle = 0,
    Listening = 1,
    Connecting = 2,
    Connected = 3,
    Refused = 4,
    Closed = 5,
}

impl Kind {
    fn of(s: &ConnectionState) -> Self {
        match s {
            ConnectionState::Idle => Self::Idle,
            ConnectionState::Listening => Self::Listening,
            ConnectionState::Connecting => Self::Connecting,
            ConnectionState::Connected => Self::Connected,
            ConnectionState::Refused(_) => Self::Refused,
            ConnectionState::Closed => Self::Closed,
        }
    }
}

/// A condition variable several logs notify, so that one thread can wait
/// for a change in any of them (a channel's cursor, `wait_connected`).
#[derive(Debug, Default)]
pub(crate) struct Signal {
    count: Mutex<u64>,
    cv: Condvar,
}

impl Signal {
    /// The number of notifications so far. Read it *before* checking the
    /// logs: a change after the check then shows as a different count.
    pub(crate) fn count(&self) -> u64 {
        *relock(&self.count)
    }

    fn notify(&self) {
        *relock(&self.count) += 1;
        self.cv.notify_all();
    }

    /// Sleeps until the count differs from `seen` or `deadline` passes;
    /// false if it passed without a change.
    pub(crate) fn wait_past(&self, seen: u64, deadline: Deadline) -> bool {
        let mut g = relock(&self.count);
        loop {
            if *g != seen {
                return true;
            }
            g = match deadline.remaining() {
                None => self.cv.wait(g).unwrap_or_else(|e| e.into_inner()),
                Some(left) if left.is_zero() => return false,
                Some(left) => {
                    self.cv
                        .wait_timeout(g, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }
}

fn relock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update below leaves the record consistent before anything that
    // could panic, so a poisoned lock holds a usable record.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug)]
struct Record {
    state: ConnectionState,
    peer: Option<PeerInfo>,
    /// The last events, oldest first; `events[i]` has sequence number
    /// `first + i`.
    events: VecDeque<ConnectionEvent>,
    first: u64,
    /// Cursors and waiters over several logs; dead ones are dropped when
    /// the list is next touched.
    watchers: Vec<Weak<Signal>>,
}

/// The connection record of one transport: state, generation, peer and
/// the log of events (see the [module documentation](self)).
#[derive(Debug)]
pub struct ConnectionLog {
    record: Mutex<Record>,
    changed: Condvar,
    /// Events recorded so far (the sequence number of the next one).
    /// Written under the lock, read without it by `try_next`.
    published: AtomicU64,
    /// `Kind` of the state, written under the lock.
    kind: AtomicU8,
    /// Connections established so far.
    generation: AtomicU64,
}

impl Default for ConnectionLog {
    fn default() -> Self {
        Self::new()
    }
}

impl ConnectionLog {
    /// Events kept; a cursor further behind gets
    /// [`ConnectionEvent::Lagged`].
    pub const CAPACITY: usize = 64;

    /// A log in state [`ConnectionState::Idle`], with no events.
    pub(crate) fn new() -> Self {
        ConnectionLog {
            record: Mutex::new(Record {
                state: ConnectionState::Idle,
                peer: None,
                events: VecDeque::with_capacity(Self::CAPACITY),
                first: 0,
                watchers: Vec::new(),
            }),
            changed: Condvar::new(),
            published: AtomicU64::new(0),
            kind: AtomicU8::new(Kind::Idle as u8),
            generation: AtomicU64::new(0),
        }
    }

    // ----- reading -----

    /// Where the connection stands. A refusal stays the state until a
    /// connection succeeds (see the [module documentation](self)).
    pub fn state(&self) -> ConnectionState {
        relock(&self.record).state.clone()
    }

    /// True if a peer is connected now (one atomic load).
    pub fn is_connected(&self) -> bool {
        self.kind.load(Ordering::Acquire) == Kind::Connected as u8
    }

    /// True once the transport has stopped for good (one atomic load).
    pub fn is_closed(&self) -> bool {
        self.kind.load(Ordering::Acquire) == Kind::Closed as u8
    }

    /// The refusal the state holds, if the state is
    /// [`ConnectionState::Refused`] (one atomic load when it is not).
    pub fn refusal(&self) -> Option<Refusal> {
        if self.kind.load(Ordering::Acquire) != Kind::Refused as u8 {
            return None;
        }
        match &relock(&self.record).state {
            ConnectionState::Refused(r) => Some(r.clone()),
            _ => None,
        }
    }

    /// Connections established so far (0 before the first; a restarted
    /// peer makes it grow by one).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The connected peer, if any.
    pub fn peer(&self) -> Option<PeerInfo> {
        relock(&self.record).peer
    }

    /// A cursor over the events, starting at the oldest one still kept (so
    /// what happened since the channel opened is seen, up to
    /// [`Self::CAPACITY`] events); [`Events::skip_history`] starts from
    /// now instead. The cursor holds the log, not the channel: it can be
    /// kept while the channel is used, or moved to another thread.
    #[must_use]
    pub fn events(self: &Arc<Self>) -> Events {
        let next = relock(&self.record).first;
        Events {
            log: Arc::clone(self),
            next,
        }
    }

    /// Registers `signal` to be notified on every event and state change.
    pub(crate) fn watch(&self, signal: &Arc<Signal>) {
        let mut r = relock(&self.record);
        r.watchers.retain(|w| w.strong_count() > 0);
        r.watchers.push(Arc::downgrade(signal));
    }

    // ----- recording (the transport's side) -----

    /// The transport started in `role`: listening or connecting.
    pub(crate) fn started(&self, role: Role) {
        self.update(|r| {
            r.state = match role {
                Role::Server => ConnectionState::Listening,
                Role::Client => ConnectionState::Connecting,
            };
            None
        });
    }

    /// A connection to `peer` was established; returns its generation.
    pub(crate) fn connected(&self, peer: PeerInfo) -> u64 {
        let mut generation = 0;
        self.update(|r| {
            // Under the record's lock: the count and the event agree.
            generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
            r.state = ConnectionState::Connected;
            r.peer = Some(peer);
            Some(ConnectionEvent::Connected { peer, generation })
        });
        generation
    }

    /// The current connection ended; back to listening (server) or
    /// connecting (client), unless the transport closed meanwhile.
    pub(crate) fn disconnected(&self, reason: DisconnectReason, role: Role) {
        self.update(|r| {
            let peer = r.peer.take()?;
            let generation = self.generation();
            if r.state != ConnectionState::Closed {
                r.state = match role {
                    Role::Server => ConnectionState::Listening,
                    Role::Client => ConnectionState::Connecting,
                };
            }
            Some(ConnectionEvent::Disconnected {
                peer,
                generation,
                reason,
            })
        });
    }

    /// A connection attempt was refused. `sticky`: it was this side's own
    /// attempt (or the pairing a server was setting up), so unless a peer
    /// is connected the state becomes `Refused` with it; otherwise (a third
    /// party turned away) it is only an event.
    pub(crate) fn refused(&self, refusal: Refusal, sticky: bool) {
        self.update(|r| {
            if sticky
                && !matches!(
                    r.state,
                    ConnectionState::Connected | ConnectionState::Closed
                )
            {
                r.state = ConnectionState::Refused(refusal.clone());
            }
            Some(ConnectionEvent::Refused(refusal))
        });
    }

    /// The transport stopped for good.
    pub(crate) fn closed(&self) {
        self.update(|r| {
            r.state = ConnectionState::Closed;
            r.peer = None;
            None
        });
    }

    /// Applies `f` to the record, appends the event it returns (dropping
    /// the oldest beyond the capacity), publishes state and count, and
    /// wakes every waiter.
    fn update(&self, f: impl FnOnce(&mut Record) -> Option<ConnectionEvent>) {
        let watchers: Vec<Arc<Signal>> = {
            let mut r = relock(&self.record);
            let event = f(&mut r);
            if let Some(event) = event {
                if r.events.len() == Self::CAPACITY {
                    r.events.pop_front();
                    r.first += 1;
                }
                r.events.push_back(event);
                // SYNC POINT: pairs with the Acquire load in `try_next`;
                // the event is in place before the count says so.
                self.published
                    .store(r.first + r.events.len() as u64, Ordering::Release);
            }
            self.kind.store(Kind::of(&r.state) as u8, Ordering::Release);
            r.watchers.retain(|w| w.strong_count() > 0);
            r.watchers.iter().filter_map(Weak::upgrade).collect()
        };
        self.changed.notify_all();
        // Outside the record's lock: a waiter holding its signal's lock
        // never waits for the record's, nor the other way round.
        for s in watchers {
            s.notify();
        }
    }
}

/// A cursor over one transport's connection log: each event once, in
/// order. Create it once and keep it; a new cursor starts over at the
/// oldest event kept. It shares the log (an `Arc`), so it does not borrow
/// the channel; once the transport is closed, [`Events::next`] returns at
/// once.
#[derive(Debug)]
pub struct Events {
    log: Arc<ConnectionLog>,
    next: u64,
}

impl Events {
    /// Moves past every event recorded so far: only later ones are
    /// returned.
    pub fn skip_history(&mut self) -> &mut Self {
        self.next = self.log.published.load(Ordering::Acquire);
        self
    }

    /// The next event if there is one, without waiting. When nothing
    /// happened this is one atomic load.
    pub fn try_next(&mut self) -> Option<ConnectionEvent> {
        // SYNC POINT: pairs with the Release store in `update`.
        if self.log.published.load(Ordering::Acquire) == self.next {
            return None;
        }
        take(&mut self.next, &relock(&self.log.record))
    }

    /// The next event, waiting up to `timeout` for one (asleep, woken by
    /// the transport). `None` if none came, or at once if the transport is
    /// closed and every event was read.
    pub fn next(&mut self, timeout: impl Into<Timeout>) -> Option<ConnectionEvent> {
        let deadline = timeout.into().deadline();
        let mut r = relock(&self.log.record);
        loop {
            if let Some(e) = take(&mut self.next, &r) {
                return Some(e);
            }
            if r.state == ConnectionState::Closed {
                return None;
            }
            r = match deadline.remaining() {
                None => self.log.changed.wait(r).unwrap_or_else(|e| e.into_inner()),
                Some(left) if left.is_zero() => return None,
                Some(left) => {
                    self.log
                        .changed
                        .wait_timeout(r, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }

    /// The log this cursor reads.
    pub(crate) fn log(&self) -> &ConnectionLog {
        &self.log
    }
}

/// The event a cursor at `next` wants from a locked record (moving the
/// cursor on), or `Lagged` if it was overwritten.
fn take(next: &mut u64, r: &Record) -> Option<ConnectionEvent> {
    if *next < r.first {
        let missed = r.first - *next;
        *next = r.first;
        return Some(ConnectionEvent::Lagged { missed });
    }
    let i = usize::try_from(*next - r.first).ok()?;
    let e = r.events.get(i)?.clone();
    *next += 1;
    Some(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::RefusalReason;
    use std::time::Duration;

    fn peer(pid: u32) -> PeerInfo {
        PeerInfo::local(Some(pid), 1000, 1000)
    }

    #[test]
    fn peers_show_what_is_known_of_them() {
        assert_eq!(peer(7).to_string(), "pid 7 uid 1000 gid 1000");
        assert_eq!(
            PeerInfo::local(None, 1, 2).to_string(),
            "unknown pid (another pid namespace) uid 1 gid 2"
        );
        let net = PeerInfo::network("127.0.0.1:5555".parse().unwrap());
        assert_eq!(net.to_string(), "127.0.0.1:5555");
        assert_eq!((net.pid, net.uid, net.gid), (None, None, None));
    }

    fn refusal(reason: RefusalReason, by_peer: bool) -> Refusal {
        Refusal {
            reason,
            detail: "server buffer size 1024 bytes, client buffer size 2048 bytes".into(),
            by_peer,
        }
    }

    #[test]
    fn refusal_is_sticky_until_a_connection() {
        let log = Arc::new(ConnectionLog::new());
        log.started(Role::Client);
        assert_eq!(log.state(), ConnectionState::Connecting);
        log.refused(refusal(RefusalReason::BufferSize, true), true);
        assert_eq!(
            log.refusal().map(|r| r.reason),
            Some(RefusalReason::BufferSize)
        );
        // A later refusal replaces it; nothing turns it back to connecting.
        log.refused(refusal(RefusalReason::Busy, true), true);
        assert_eq!(log.refusal().map(|r| r.reason), Some(RefusalReason::Busy));
        assert!(!log.is_connected());
        assert_eq!(log.connected(peer(7)), 1);
        assert!(log.is_connected());
        assert_eq!(log.refusal(), None);
        assert_eq!(log.peer(), Some(peer(7)));
        log.disconnected(DisconnectReason::PeerLeft, Role::Client);
        assert_eq!(log.state(), ConnectionState::Connecting);
        assert_eq!(log.peer(), None);
        assert_eq!(log.generation(), 1);
        log.closed();
        assert_eq!(log.state(), ConnectionState::Closed);
        // Nothing reopens a closed log's state.
        log.refused(refusal(RefusalReason::Busy, true), true);
        assert_eq!(log.state(), ConnectionState::Closed);
    }

    #[test]
    fn third_party_refusals_are_events_only() {
        let log = Arc::new(ConnectionLog::new());
        log.started(Role::Server);
        log.refused(refusal(RefusalReason::Busy, false), false);
        assert_eq!(log.state(), ConnectionState::Listening);
        log.connected(peer(1));
        // A refusal while connected leaves the state, sticky or not.
        log.refused(refusal(RefusalReason::Busy, false), false);
        log.refused(refusal(RefusalReason::BufferSize, false), true);
        assert_eq!(log.state(), ConnectionState::Connected);
        let mut ev = log.events();
        assert!(matches!(ev.try_next(), Some(ConnectionEvent::Refused(_))));
        assert!(matches!(
            ev.try_next(),
            Some(ConnectionEvent::Connected { generation: 1, .. })
        ));
        assert!(matches!(ev.try_next(), Some(ConnectionEvent::Refused(_))));
        assert!(matches!(ev.try_next(), Some(ConnectionEvent::Refused(_))));
        assert_eq!(ev.try_next(), None);
    }

    #[test]
    fn restart_shows_as_disconnected_then_connected_with_a_larger_generation() {
        let log = Arc::new(ConnectionLog::new());
        log.started(Role::Server);
        let mut ev = log.events();
        log.connected(peer(10));
        log.disconnected(DisconnectReason::PeerLeft, Role::Server);
        log.connected(peer(11));
        assert_eq!(
            ev.try_next(),
            Some(ConnectionEvent::Connected {
                peer: peer(10),
                generation: 1
            })
        );
        assert_eq!(
            ev.try_next(),
            Some(ConnectionEvent::Disconnected {
                peer: peer(10),
                generation: 1,
                reason: DisconnectReason::PeerLeft
            })
        );
        assert_eq!(
            ev.try_next(),
            Some(ConnectionEvent::Connected {
                peer: peer(11),
                generation: 2
            })
        );
        assert_eq!(ev.try_next(), None);
        // A disconnect without a connection records nothing.
        log.disconnected(DisconnectReason::Closed, Role::Server);
        log.disconnected(DisconnectReason::Closed, Role::Server);
        assert_eq!(
            ev.try_next().map(|e| e.to_string()),
            Some("disconnected from pid 11 uid 1000 gid 1000 (connection 2): this side closed the transport".into())
        );
        assert_eq!(ev.try_next(), None);
    }

    #[test]
    fn a_reader_that_falls_behind_gets_lagged_then_the_oldest_kept() {
        let log = Arc::new(ConnectionLog::new());
        log.started(Role::Server);
        let mut ev = log.events();
        let n = ConnectionLog::CAPACITY as u64 + 10;
        for i in 0..n {
            log.refused(
                Refusal {
                    reason: RefusalReason::Busy,
                    detail: format!("attempt {i}"),
                    by_peer: false,
                },
                false,
            );
        }
        assert_eq!(ev.try_next(), Some(ConnectionEvent::Lagged { missed: 10 }));
        let mut seen = 0;
        while let Some(e) = ev.try_next() {
            let ConnectionEvent::Refused(r) = e else {
                panic!("{e:?}")
            };
            assert_eq!(r.detail, format!("attempt {}", 10 + seen));
            seen += 1;
        }
        assert_eq!(seen, ConnectionLog::CAPACITY as u64);
        // A fresh cursor starts at the oldest kept, without a gap.
        let mut fresh = log.events();
        assert!(matches!(
            fresh.try_next(),
            Some(ConnectionEvent::Refused(_))
        ));
        fresh.skip_history();
        assert_eq!(fresh.try_next(), None);
    }

    #[test]
    fn next_sleeps_until_an_event_and_returns_none_on_timeout_or_close() {
        let log = Arc::new(ConnectionLog::new());
        log.started(Role::Client);
        let mut ev = log.events();
        assert_eq!(ev.next(Duration::from_millis(1)), None);
        let writer = {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                log.connected(peer(3));
            })
        };
        assert!(matches!(
            ev.next(Timeout::INFINITE),
            Some(ConnectionEvent::Connected { .. })
        ));
        writer.join().unwrap();
        log.closed();
        assert_eq!(ev.next(Timeout::INFINITE), None);
    }

    #[test]
    fn a_signal_hears_every_log_it_watches() {
        let a = ConnectionLog::new();
        let b = ConnectionLog::new();
        let s = Arc::new(Signal::default());
        a.watch(&s);
        b.watch(&s);
        let seen = s.count();
        b.started(Role::Server);
        assert!(s.wait_past(seen, Timeout::ZERO.deadline()));
        let seen = s.count();
        assert!(!s.wait_past(seen, Timeout::ZERO.deadline()));
        a.connected(peer(1));
        assert!(s.wait_past(seen, Timeout::INFINITE.deadline()));
        // Dropped signals are forgotten.
        drop(s);
        a.closed();
        assert!(relock(&a.record).watchers.is_empty());
    }
}
