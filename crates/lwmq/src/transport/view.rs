//! [`TransportView`]: a running transport as its channel shows it.

use std::sync::Arc;
use std::time::Duration;

use super::endpoint::{check_retry_interval, check_spin};
use super::{
    ConfigError, ConnectionState, Events, PeerInfo, Refusal, Transport, TransportControl,
    TransportId, TransportStats,
};
use crate::channel::ConnectError;
use crate::timeout::Timeout;

/// One transport of an open channel: its connection state, counters and
/// last error, and the settings that may change while it runs. From
/// [`Channel::transport`](crate::Channel::transport) or
/// [`Channel::transports`](crate::Channel::transports) (and the same on
/// [`RawChannel`](crate::RawChannel)).
///
/// A view only observes: nothing reachable from it stops the transport or
/// takes its buffers.
#[derive(Clone, Copy)]
pub struct TransportView<'a> {
    id: TransportId,
    transport: &'a Arc<dyn Transport>,
}

impl std::fmt::Debug for TransportView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransportView")
            .field("id", &self.id)
            .field("descriptor", &self.descriptor())
            .field("state", &self.state())
            .finish()
    }
}

impl<'a> TransportView<'a> {
    pub(crate) fn new(id: TransportId, transport: &'a Arc<dyn Transport>) -> Self {
        TransportView { id, transport }
    }

    /// Its id within the channel.
    pub fn id(&self) -> TransportId {
        self.id
    }

    /// Its descriptor, as given.
    pub fn descriptor(&self) -> &'a str {
        self.transport.descriptor()
    }

    /// Bytes per buffer.
    pub fn buffer_size(&self) -> usize {
        self.transport.config().buffer_size()
    }

    /// Send buffers (0: it does not send).
    pub fn send_buffers(&self) -> u32 {
        self.transport.config().send_buffers()
    }

    /// Receive buffers (0: it does not receive).
    pub fn receive_buffers(&self) -> u32 {
        self.transport.config().receive_buffers()
    }

    /// Where its connection stands now.
    pub fn state(&self) -> ConnectionState {
        self.transport.state()
    }

    /// Its counters.
    pub fn stats(&self) -> TransportStats {
        self.transport.stats()
    }

    /// The last error or refusal, as text, if any (also logged at `warn`).
    pub fn last_error(&self) -> Option<String> {
        self.transport.last_error()
    }

    /// Connections established so far: it grows by one with every new
    /// connection, so a consumer that remembers it between messages sees
    /// a reconnection (a restarted peer) as a change.
    pub fn generation(&self) -> u64 {
        self.transport.connection_log().generation()
    }

    /// The connected peer, if any: pid, uid and gid for `ipc://`, the
    /// socket address for `tcp://`.
    pub fn peer(&self) -> Option<PeerInfo> {
        self.transport.connection_log().peer()
    }

    /// The latest refusal while the state is `Refused`.
    pub fn refusal(&self) -> Option<Refusal> {
        self.transport.connection_log().refusal()
    }

    /// A cursor over this transport's connection events, starting with the
    /// ones still in its log (see [`Events`]).
    pub fn events(&self) -> Events {
        self.transport.connection_log().events()
    }

    /// Waits until this transport is connected: `Ok` at once if it is,
    /// [`ConnectError::Refused`] as soon as it is refused, else
    /// [`ConnectError::Timeout`] or [`ConnectError::Closed`].
    pub fn wait_connected(&self, timeout: impl Into<Timeout>) -> Result<(), ConnectError> {
        crate::channel::wait_transport(self.id, self.transport, timeout.into())
    }

    /// Changes how often a client retries (1 ms ..= 24 h); a server
    /// ignores it.
    pub fn set_retry_interval(&self, interval: Duration) -> Result<(), ConfigError> {
        check_retry_interval(self.descriptor(), interval)?;
        self.control(TransportControl::SetClientConnectionRetryInterval(interval))
    }

    /// Changes how long a waiting thread spins before it sleeps (at most
    /// 100 ms; zero sleeps at once).
    pub fn set_spin(&self, duration: Duration) -> Result<(), ConfigError> {
        check_spin(self.descriptor(), duration)?;
        self.control(TransportControl::SetSpinDuration(duration))
    }

    fn control(&self, c: TransportControl) -> Result<(), ConfigError> {
        // The value was checked against the same ranges the transport
        // applies, so it does not refuse it; were it to, the setting is
        // left as it was and nothing else changes.
        if let Err(e) = self.transport.control(c) {
            log::warn!("lwmq {}: setting refused: {e}", self.descriptor());
        }
        Ok(())
    }

    /// The transport object behind the view (for lwmq's own crates).
    #[cfg(feature = "internals")]
    #[doc(hidden)]
    pub fn driver(&self) -> &'a Arc<dyn Transport> {
        self.transport
    }
}
