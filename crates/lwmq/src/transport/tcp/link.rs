//! The connection record of a `tcp://` transport, its counters and its log
//! lines, in one place (as the `ipc://` transport keeps them): every
//! change that [`ConnectionLog`](crate::transport::ConnectionLog) records
//! (connected, disconnected, refused; `started` and `closed` are in
//! `mod.rs`), `last_error` and `stats`.
//!
//! Warnings go through the same per-class rate limiter as `ipc://`'s, and
//! text from the peer is escaped before it is logged or stored.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_utils::CachePadded;

pub(super) use crate::transport::ipc::logging::LogClass;
use crate::transport::ipc::logging::{LogLimiter, Verdict, LOG_CLASSES, LOG_WINDOW};
use crate::transport::{ChannelKind, DisconnectReason, PeerInfo, Refusal, Role, TransportStats};

use super::allow::AllowList;
use super::conn::Conn;
use super::{lock, Inner};

/// Counters; the data-path pairs on lines of their own.
#[derive(Debug, Default)]
pub(super) struct Stats {
    pub(super) sent: CachePadded<(AtomicU64, AtomicU64)>,
    pub(super) received: CachePadded<(AtomicU64, AtomicU64)>,
    pub(super) connections: AtomicU64,
    pub(super) disconnections: AtomicU64,
    pub(super) refusals: AtomicU64,
    pub(super) violations: AtomicU64,
    pub(super) attempts: AtomicU64,
}

impl Stats {
    pub(super) fn snapshot(&self) -> TransportStats {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let connections = l(&self.connections);
        TransportStats {
            buffers_sent: l(&self.sent.0),
            bytes_sent: l(&self.sent.1),
            buffers_received: l(&self.received.0),
            bytes_received: l(&self.received.1),
            connections,
            reconnections: connections.saturating_sub(1),
            disconnections: l(&self.disconnections),
            refusals: l(&self.refusals),
            violations: l(&self.violations),
            connect_attempts: l(&self.attempts),
        }
    }
}

/// Where the transport stands (its state is in the connection log).
#[derive(Debug)]
pub(super) struct Link {
    pub(super) started: Option<(Role, ChannelKind)>,
    pub(super) conn: Option<Arc<Conn>>,
    pub(super) last_error: Option<String>,
    pub(super) allow: AllowList,
    /// The address the server listens on.
    pub(super) local: Option<SocketAddr>,
    log_limiter: LogLimiter<LogClass>,
}

impl Link {
    pub(super) fn new() -> Self {
        Self {
            started: None,
            conn: None,
            last_error: None,
            allow: AllowList::any(),
            local: None,
            log_limiter: LogLimiter::new(LOG_WINDOW, LOG_CLASSES),
        }
    }
}

impl Inner {
    /// Records `text` as the last error and logs it at `warn`, unless its
    /// class logged a line within the window.
    pub(super) fn note(&self, link: &mut Link, class: LogClass, text: String) {
        match link.log_limiter.check(class, Instant::now()) {
            Verdict::Log { held_back: 0 } => log::warn!("lwmq {}: {}", self.descriptor, text),
            Verdict::Log { held_back } => log::warn!(
                "lwmq {}: {} ({held_back} similar lines held back by the rate limit)",
                self.descriptor,
                text
            ),
            Verdict::HoldBack => {}
        }
        link.last_error = Some(text);
    }

    /// A refusal, by this side or by the peer: counted, noted
    /// (rate-limited log line and `last_error`) and logged as an event.
    /// `sticky`: it refused this side's own attempt, or the pairing a
    /// server was setting up, and becomes the state until a connection
    /// succeeds; a server's refusal of a third party (`Busy`, the
    /// allow-list) is not.
    pub(super) fn refused(&self, refusal: Refusal, sticky: bool) {
        self.stats.refusals.fetch_add(1, Ordering::Relaxed);
        let class = LogClass::Refusal {
            code: refusal.reason.code(),
            by_peer: refusal.by_peer,
        };
        let mut link = lock(&self.link);
        self.note(&mut link, class, format!("connection refused: {refusal}"));
        self.log.refused(refusal, sticky && link.conn.is_none());
    }

    /// Publishes a connection whose halves are attached already.
    pub(super) fn publish(&self, conn: Arc<Conn>) {
        let mut link = lock(&self.link);
        log::info!(
            "lwmq {}: connected to {}",
            self.descriptor,
            conn.peer_text()
        );
        let peer = PeerInfo::network(conn.peer);
        link.conn = Some(conn);
        self.log.connected(peer);
        self.stats.connections.fetch_add(1, Ordering::Relaxed);
        self.generation.fetch_add(1, Ordering::AcqRel);
        drop(link);
        self.wake_all();
    }

    /// Forgets `conn` (which is dead) if it is the current one, with the
    /// reason recorded by whoever killed it.
    pub(super) fn unpublish(&self, conn: &Arc<Conn>, role: Role) {
        let mut link = lock(&self.link);
        if link.conn.as_ref().is_some_and(|c| Arc::ptr_eq(c, conn)) {
            link.conn = None;
            let why = conn.why().unwrap_or(DisconnectReason::PeerLeft);
            log::info!(
                "lwmq {}: disconnected from {}: {why}",
                self.descriptor,
                conn.peer_text(),
            );
            self.log.disconnected(why, role);
            self.stats.disconnections.fetch_add(1, Ordering::Relaxed);
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
        drop(link);
        self.wake_all();
    }
}
