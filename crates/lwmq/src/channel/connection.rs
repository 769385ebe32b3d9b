//! The connection as part of the channel API: waiting until every
//! transport has a peer ([`Channel::wait_connected`]), following what
//! happens to the connections between messages ([`Channel::events`]), and
//! turning a refusal into the answer of a receive that found nothing
//! ([`ReceiveError::Refused`]).
//!
//! Everything here reads the transports' [`ConnectionLog`]s (see
//! [`crate::transport::events`]); raw channels use the same functions.
//!
//! Rules:
//!
//! * a refusal is an answer, not a reason to wait longer: `wait_connected`
//!   returns [`ConnectError::Refused`] as soon as a transport's state is
//!   `Refused` (that state is sticky until a connection succeeds, so a
//!   refusal between two retries is not missed);
//! * a receive whose wait ends with nothing while no receiving transport
//!   is connected and one of them is refused returns
//!   [`ReceiveError::Refused`] instead of [`ReceiveError::Timeout`]; with
//!   no refusal (nobody listening yet, say) it stays `Timeout`;
//! * posts are not affected: a message posted while the transports are
//!   refused waits in its queue for a peer, like any message posted before
//!   a connection (docs/decisions.md).

use std::sync::Arc;

use crate::raw::RawChannel;
use crate::timeout::Timeout;
use crate::transport::EventSignal as Signal;
use crate::transport::{
    ConnectionEvent, ConnectionLog, ConnectionState, Events, Refusal, Transport, TransportId,
};

use super::{Channel, ReceiveError};

/// Why [`Channel::wait_connected`] (or [`RawChannel::wait_connected`])
/// returned without every transport connected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// A transport's connection was refused (by this side or by the peer;
    /// see [`Refusal::by_peer`]). The transport keeps retrying on its
    /// timer, but nothing changes until the cause is removed: a setting to
    /// make equal on both sides, a user to admit, or, for
    /// [`RefusalReason::Busy`](crate::transport::RefusalReason::Busy), the
    /// server's current peer to leave (see `docs/messaging.md` for serving
    /// many clients).
    #[error("transport #{}: connection refused: {refusal} (the transport keeps retrying, but it will not connect until this cause is removed)", transport.0)]
    Refused {
        /// The refused transport.
        transport: TransportId,
        /// The latest refusal.
        refusal: Refusal,
    },
    /// The timeout ran out before every transport had a peer, and none
    /// was refused.
    #[error("transport #{}: no peer within the timeout: {}", transport.0, waiting_text(state))]
    Timeout {
        /// The first transport without a peer.
        transport: TransportId,
        /// Its state (listening or connecting).
        state: ConnectionState,
    },
    /// The channel is closed (or a transport stopped for good).
    #[error("the channel is closed")]
    Closed,
    /// No transport with that id.
    #[error("no transport #{} on this channel", .0 .0)]
    UnknownTransport(TransportId),
}

fn waiting_text(state: &ConnectionState) -> String {
    match state {
        ConnectionState::Listening => {
            "it is still listening: no client has connected to this server".into()
        }
        ConnectionState::Connecting => {
            "it is still connecting: no server has accepted it (is one running at this address?)"
                .into()
        }
        s => format!("it is {s}"),
    }
}

/// Waits until every log in `logs` shows a connection (see
/// [`Channel::wait_connected`]).
pub(crate) fn wait_connected(
    logs: &[(TransportId, &ConnectionLog)],
    timeout: Timeout,
) -> Result<(), ConnectError> {
    if let Some(r) = verdict(logs) {
        return r;
    }
    let signal = Arc::new(Signal::default());
    for (_, log) in logs {
        log.watch(&signal);
    }
    let deadline = timeout.deadline();
    loop {
        // Read before checking: a change after the check moves the count.
        let seen = signal.count();
        if let Some(r) = verdict(logs) {
            return r;
        }
        if !signal.wait_past(seen, deadline) {
            return verdict(logs).unwrap_or_else(|| {
                let (transport, state) = logs
                    .iter()
                    .find(|(_, l)| !l.is_connected())
                    .map_or((TransportId(0), ConnectionState::Connecting), |(id, l)| {
                        (*id, l.state())
                    });
                Err(ConnectError::Timeout { transport, state })
            });
        }
    }
}

/// `Some` once waiting is over: closed, refused or all connected; `None`
/// to keep waiting. (A channel is open from the moment it exists, and
/// always has a transport.)
fn verdict(logs: &[(TransportId, &ConnectionLog)]) -> Option<Result<(), ConnectError>> {
    if logs.iter().any(|(_, l)| l.is_closed()) {
        return Some(Err(ConnectError::Closed));
    }
    for (id, l) in logs {
        if let Some(refusal) = l.refusal() {
            return Some(Err(ConnectError::Refused {
                transport: *id,
                refusal,
            }));
        }
    }
    logs.iter().all(|(_, l)| l.is_connected()).then_some(Ok(()))
}

/// The logs of `transports` with their ids.
fn logs(transports: &[Arc<dyn Transport>]) -> Vec<(TransportId, &ConnectionLog)> {
    transports
        .iter()
        .enumerate()
        .map(|(i, t)| (TransportId(i), &**t.connection_log()))
        .collect()
}

/// [`wait_connected`] over all of `transports`.
pub(crate) fn wait_all(
    transports: &[Arc<dyn Transport>],
    timeout: Timeout,
) -> Result<(), ConnectError> {
    wait_connected(&logs(transports), timeout)
}

/// [`wait_connected`] for one transport (`TransportView::wait_connected`).
pub(crate) fn wait_transport(
    id: TransportId,
    t: &Arc<dyn Transport>,
    timeout: Timeout,
) -> Result<(), ConnectError> {
    wait_connected(&[(id, &**t.connection_log())], timeout)
}

/// What a receive that found nothing reports: [`ReceiveError::Refused`]
/// when no receiving transport is connected and one of them is refused,
/// else [`ReceiveError::Timeout`]. One atomic load per receiving transport
/// unless one is refused.
pub(crate) fn nothing_received(transports: &[Arc<dyn Transport>]) -> ReceiveError {
    let mut refused = None;
    for (i, t) in transports.iter().enumerate() {
        if !t.config().directions().receives() {
            continue;
        }
        let log = t.connection_log();
        if log.is_connected() {
            return ReceiveError::Timeout;
        }
        if refused.is_none() {
            refused = log.refusal().map(|r| (i, r));
        }
    }
    match refused {
        Some((i, refusal)) => ReceiveError::Refused {
            transport: TransportId(i),
            refusal,
        },
        None => ReceiveError::Timeout,
    }
}

/// A cursor over the connection events of every transport of a channel
/// ([`Channel::events`], [`RawChannel::events`]): each event once, tagged
/// with its transport, in order per transport (events of different
/// transports have no common order).
///
/// Create it once and keep it: a new cursor starts over at the oldest
/// events kept ([`ChannelEvents::skip_history`] skips them). A cursor
/// that falls more than [`EVENT_LOG_CAPACITY`](crate::transport::EVENT_LOG_CAPACITY) events behind a
/// transport gets [`ConnectionEvent::Lagged`] for it. It shares the
/// transports' logs, not the channel: keep it while receiving, or move it
/// to a monitoring thread; once the channel is closed, `next` returns at
/// once.
#[derive(Debug)]
pub struct ChannelEvents {
    cursors: Vec<Events>,
    signal: Arc<Signal>,
    /// Where the next `try_next` starts looking, so that a busy transport
    /// cannot hide the others' events.
    start: usize,
}

impl ChannelEvents {
    pub(crate) fn new(transports: &[Arc<dyn Transport>]) -> Self {
        let signal = Arc::new(Signal::default());
        let cursors = transports
            .iter()
            .map(|t| {
                let log = t.connection_log();
                log.watch(&signal);
                log.events()
            })
            .collect();
        ChannelEvents {
            cursors,
            signal,
            start: 0,
        }
    }

    /// Moves past every event recorded so far: only later ones are
    /// returned.
    pub fn skip_history(&mut self) -> &mut Self {
        for c in &mut self.cursors {
            c.skip_history();
        }
        self
    }

    /// The next event of any transport, without waiting. When nothing
    /// happened this is one atomic load per transport.
    pub fn try_next(&mut self) -> Option<(TransportId, ConnectionEvent)> {
        let n = self.cursors.len();
        for k in 0..n {
            let i = (self.start + k) % n;
            if let Some(e) = self.cursors[i].try_next() {
                self.start = (i + 1) % n;
                return Some((TransportId(i), e));
            }
        }
        None
    }

    /// The next event of any transport, waiting up to `timeout` (asleep,
    /// woken by the transports). `None` if none came, or at once if every
    /// transport is closed and every event was read.
    pub fn next(&mut self, timeout: impl Into<Timeout>) -> Option<(TransportId, ConnectionEvent)> {
        let deadline = timeout.into().deadline();
        loop {
            let seen = self.signal.count();
            if let Some(e) = self.try_next() {
                return Some(e);
            }
            if self.cursors.iter().all(|c| c.log().is_closed()) {
                return None;
            }
            if !self.signal.wait_past(seen, deadline) {
                return self.try_next();
            }
        }
    }
}

impl Channel {
    /// Waits until every transport has a peer, up to `timeout`.
    ///
    /// Returns [`ConnectError::Refused`] as soon as a transport is refused
    /// (also when it already was: the refused state lasts until a
    /// connection succeeds), never a timeout for a refusal;
    /// [`ConnectError::Timeout`] names a transport still listening or
    /// connecting; [`ConnectError::Closed`] once a transport stopped for
    /// good. One transport alone: [`TransportView::wait_connected`](crate::TransportView::wait_connected).
    /// To keep waiting through a
    /// refusal that may pass (a busy server), wait on [`Self::events`]
    /// for the `Connected` event instead.
    ///
    /// ```no_run
    /// // no_run: it needs a server process at the address.
    /// # use lwmq::{Channel, ConnectError, Endpoint, Priority, Role};
    /// # use std::time::Duration;
    /// let mut b = Channel::builder()
    ///     .transport(Endpoint::new("ipc://example/orders")?.receive_buffers(0))?;
    /// let queue = b.mono_queue(Priority::Normal)?;
    /// let ch = b.open(Role::Client)?;
    /// match ch.wait_connected(Duration::from_secs(5)) {
    ///     Ok(()) => println!("connected"),
    ///     // Waiting longer would not help: say why.
    ///     Err(ConnectError::Refused { refusal, .. }) => eprintln!("refused: {refusal}"),
    ///     Err(e) => eprintln!("{e}"),
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_connected(&self, timeout: impl Into<Timeout>) -> Result<(), ConnectError> {
        wait_all(&self.transports, timeout.into())
    }

    /// A cursor over the connection events of every transport (see
    /// [`ChannelEvents`]): connected to whom, disconnected and why,
    /// refused and why. A consumer can check it between messages at the
    /// cost of one atomic load per transport; a restarted peer shows as
    /// `Disconnected` then `Connected` with a new pid and a larger
    /// generation. One transport's events alone:
    /// [`TransportView::events`](crate::TransportView::events).
    ///
    /// ```no_run
    /// // no_run: it needs a producer process at the address.
    /// # use lwmq::{Channel, ConnectionEvent, Endpoint, ReceiveError, Role};
    /// # use std::time::Duration;
    /// let mut ch = Channel::builder()
    ///     .transport(Endpoint::new("ipc://example/feed")?.send_buffers(0))?
    ///     .open(Role::Server)?;
    /// // Kept while receiving: the cursor does not borrow the channel.
    /// let mut events = ch.events();
    /// for _ in 0..1000 {
    ///     match ch.receive(Duration::from_secs(1)) {
    ///         Ok(got) => println!("{} bytes", got.payload_size()),
    ///         Err(ReceiveError::Refused { refusal, .. }) => eprintln!("cannot connect: {refusal}"),
    ///         Err(ReceiveError::Timeout) => {}
    ///         Err(e) => return Err(e.into()),
    ///     }
    ///     // Between messages: one atomic load when nothing happened.
    ///     while let Some((_, event)) = events.try_next() {
    ///         match event {
    ///             ConnectionEvent::Connected { peer, generation } => {
    ///                 println!("producer {peer}, connection {generation}: sequence restarts")
    ///             }
    ///             other => println!("{other}"),
    ///         }
    ///     }
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn events(&self) -> ChannelEvents {
        ChannelEvents::new(&self.transports)
    }

    /// The receive error for a wait that ended with nothing (see
    /// [`nothing_received`]).
    pub(super) fn nothing_received(&self) -> ReceiveError {
        nothing_received(&self.transports)
    }
}

impl RawChannel {
    /// A cursor over the connection events of every transport, as
    /// [`Channel::events`].
    #[must_use]
    pub fn events(&self) -> ChannelEvents {
        ChannelEvents::new(self.transport_list())
    }

    /// Waits until every transport has a peer, as
    /// [`Channel::wait_connected`].
    pub fn wait_connected(&self, timeout: impl Into<Timeout>) -> Result<(), ConnectError> {
        wait_all(self.transport_list(), timeout.into())
    }
}
