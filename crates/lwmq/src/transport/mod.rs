//! Transports: how a channel reaches its peer, configured by an
//! [`Endpoint`] and observed through a [`TransportView`].
//!
//! A transport moves fixed-size buffers between two processes; the scheme
//! of its descriptor picks the provider (`ipc://` or `tcp://`). Everything a
//! user configures is on [`Endpoint`] (buffer size and counts, retry
//! interval, spin, access policy; for `tcp://` the heartbeat timeout and the
//! peer allow-list), checked when it is added to a channel builder
//! ([`ConfigError`] names the rule). At run time [`TransportView`] reports
//! the connection state, counters and last error. [`query_limits`],
//! [`IpcAddress`] and [`TcpAddress`] check a descriptor without creating anything (what
//! `lwmq check` does).
//!
//! The driver interface a provider implements (`Transport`, `SendSide`,
//! `ReceiveSide`) is internal: the channels are its only users.
//!
//! Providers: `ipc` (`ipc://address[:port]`, shared memory between the
//! processes of one machine) and `tcp` (`tcp://host:port`, a TCP
//! connection between any two machines, with the same channels and
//! semantics; its settings are [`Endpoint::heartbeat_timeout`] and
//! [`Endpoint::allow_peers`]).

#[cfg_attr(not(feature = "internals"), allow(dead_code))]
mod driver;
mod endpoint;
mod events;
#[cfg_attr(not(feature = "internals"), allow(dead_code))]
pub(crate) mod ipc;
#[cfg_attr(not(feature = "internals"), allow(dead_code))]
pub(crate) mod stat;
#[cfg_attr(not(feature = "internals"), allow(dead_code))]
pub(crate) mod tcp;
mod view;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::descriptor;

pub use crate::descriptor::{
    DescriptorError, IpcAddress, TcpAddress, TcpHost, IPC_ADDRESS_MAX_UTF16, TCP_HOST_NAME_MAX,
};
pub(crate) use driver::{
    AsyncArm, ChannelKind, Directions, RawBuf, ReceiveSide, SendSide, Transport, TransportConfig,
    TransportControl,
};
pub use endpoint::Endpoint;
pub use events::{ConnectionEvent, DisconnectReason, Events, PeerInfo};
pub(crate) use events::{ConnectionLog, Signal as EventSignal};
pub use tcp::allow::{AllowList, IpNet, IpNetError};
pub use tcp::{DEFAULT_HEARTBEAT_TIMEOUT, MAX_HEARTBEAT_TIMEOUT, MIN_HEARTBEAT_TIMEOUT};
pub use view::TransportView;

/// Connection events each transport keeps for its cursors; a cursor that
/// falls further behind reads [`ConnectionEvent::Lagged`].
pub const EVENT_LOG_CAPACITY: usize = ConnectionLog::CAPACITY;

/// The driver interface, for lwmq's own crates (`lwmq::internals`).
#[cfg(feature = "internals")]
pub(crate) mod internal {
    pub use super::driver::*;

    /// Creates a transport from a descriptor and its buffer size and
    /// counts (the registry by scheme).
    pub fn create(
        descriptor: &str,
        buffer_size: usize,
        send_buffers: u32,
        receive_buffers: u32,
    ) -> Result<std::sync::Arc<dyn Transport>, super::TransportError> {
        super::create(descriptor, buffer_size, send_buffers, receive_buffers)
    }
}

/// The shortest client retry interval an [`Endpoint`] takes.
pub const MIN_RETRY_INTERVAL: Duration = Duration::from_millis(1);
/// The longest client retry interval an [`Endpoint`] takes.
pub const MAX_RETRY_INTERVAL: Duration = Duration::from_secs(86_400);
/// The longest spin before a wait sleeps that an [`Endpoint`] takes.
pub const MAX_SPIN: Duration = Duration::from_millis(100);

/// Index of a transport within its channel, in the order the transports
/// were added (from 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransportId(pub usize);

impl fmt::Display for TransportId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "transport {}", self.0)
    }
}

/// Who creates the shared resources. Traffic is symmetric either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Creates (binds, listens): `LMQ_CHANNELROLE_SERVER`.
    Server,
    /// Opens (connects, in the background): `LMQ_CHANNELROLE_CLIENT`.
    Client,
}

/// The largest buffers and counts a transport supports
/// (`LMQ_TRANSPORTBUFFERLIMITS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct BufferLimits {
    /// Largest buffer size, in bytes.
    pub max_buffer_size: usize,
    /// Largest send buffer count.
    pub max_send_buffers: u32,
    /// Largest receive buffer count.
    pub max_receive_buffers: u32,
    /// Largest send + receive buffer count of one transport.
    pub max_total_buffers: u32,
    /// Largest frame payload stored inline in a message (no allocation).
    pub max_inline_data_size: u32,
}

/// A configuration that breaks a rule, found when an [`Endpoint`] or a
/// queue is added to a channel builder, or when a setting changes at run
/// time. Each variant names the rule and the values involved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The buffer size is zero or above the transport's limit.
    #[error("{descriptor}: buffer_size {size} is out of range (rule: 1..={max} bytes for this transport)")]
    BufferSize {
        /// The transport.
        descriptor: String,
        /// The size given.
        size: usize,
        /// The largest allowed.
        max: usize,
    },
    /// Both buffer counts are zero.
    #[error("{descriptor}: send_buffers and receive_buffers are both 0 (rule: a transport sends, receives or both; give the directions it uses at least one buffer)")]
    NoBuffers {
        /// The transport.
        descriptor: String,
    },
    /// Too many buffers.
    #[error("{descriptor}: {send} send + {receive} receive buffers exceed the transport's limit (rule: at most {max_each} per direction and {max_total} in all)")]
    TooManyBuffers {
        /// The transport.
        descriptor: String,
        /// Send buffers given.
        send: u32,
        /// Receive buffers given.
        receive: u32,
        /// Per-direction limit.
        max_each: u32,
        /// Total limit.
        max_total: u32,
    },
    /// A transport's buffer size differs from the channel's.
    #[error("{descriptor}: buffer_size {new} differs from the channel's {existing} (rule: every transport of a channel uses the same buffer_size)")]
    BufferSizeMismatch {
        /// The transport.
        descriptor: String,
        /// The size of the transports already added.
        existing: usize,
        /// The size given now.
        new: usize,
    },
    /// A client retry interval out of range.
    #[error("{descriptor}: retry_interval {given:?} is out of range (rule: {min:?}..={max:?})")]
    RetryInterval {
        /// The transport.
        descriptor: String,
        /// The interval given.
        given: Duration,
        /// The shortest allowed.
        min: Duration,
        /// The longest allowed.
        max: Duration,
    },
    /// A spin duration out of range.
    #[error(
        "{descriptor}: spin {given:?} is too long (rule: at most {max:?}; zero sleeps at once)"
    )]
    Spin {
        /// The transport.
        descriptor: String,
        /// The duration given.
        given: Duration,
        /// The longest allowed.
        max: Duration,
    },
    /// A `tcp://` heartbeat timeout out of range.
    #[error("{descriptor}: heartbeat_timeout {given:?} is out of range (rule: 0 (off) or {min:?}..={max:?})")]
    HeartbeatTimeout {
        /// The transport.
        descriptor: String,
        /// The timeout given.
        given: Duration,
        /// The shortest allowed (other than 0).
        min: Duration,
        /// The longest allowed.
        max: Duration,
    },
    /// A setting the transport of this scheme does not have.
    #[error("{descriptor}: {setting} applies to {applies_to} only (rule: {why})")]
    NotForScheme {
        /// The transport.
        descriptor: String,
        /// The setting (`access`, `heartbeat_timeout`, `allow_peers`).
        setting: &'static str,
        /// The schemes that have it.
        applies_to: &'static str,
        /// Why the others do not.
        why: &'static str,
    },
    /// A queue limit of zero messages.
    #[error("{setting}(0): a queue limit of 0 messages would refuse every post (rule: at least 1; use unbounded() for no limit)")]
    ZeroQueueLimit {
        /// `high_water_mark`, `discard_oldest` or `discard_newest`, or the
        /// receive queue's kind.
        setting: &'static str,
    },
    /// A mono queue asked for a multi-producer feature.
    #[error("a mono queue cannot be {feature} (rule: tags and discard limits need a multi queue: use ChannelBuilder::multi_queue)")]
    MonoQueue {
        /// `tagged` or `discard_oldest`/`discard_newest`.
        feature: &'static str,
    },
}

impl ConfigError {
    /// The descriptor of the transport the error is about, if it is about
    /// one.
    pub fn descriptor(&self) -> Option<&str> {
        match self {
            Self::BufferSize { descriptor, .. }
            | Self::NoBuffers { descriptor }
            | Self::TooManyBuffers { descriptor, .. }
            | Self::BufferSizeMismatch { descriptor, .. }
            | Self::RetryInterval { descriptor, .. }
            | Self::Spin { descriptor, .. }
            | Self::HeartbeatTimeout { descriptor, .. }
            | Self::NotForScheme { descriptor, .. } => Some(descriptor),
            Self::ZeroQueueLimit { .. } | Self::MonoQueue { .. } => None,
        }
    }
}

/// Where a transport's connection stands.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionState {
    /// Created, not started (channel not open).
    Idle,
    /// Server: listening, no peer yet (or the last one left).
    Listening,
    /// Client: trying to reach a server on its retry timer.
    Connecting,
    /// A peer is connected; buffers flow.
    Connected,
    /// The last attempt was refused (by either side); retrying. This state
    /// is sticky: it stays, updated with the latest refusal on each retry,
    /// until a connection succeeds. A server's refusals of third parties
    /// (a second client `Busy`, a user the access policy does not admit)
    /// do not set it; they are [`ConnectionEvent`]s only.
    Refused(Refusal),
    /// Stopped (channel closed).
    Closed,
}

impl fmt::Display for ConnectionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Idle => f.write_str("idle"),
            Self::Listening => f.write_str("listening"),
            Self::Connecting => f.write_str("connecting"),
            Self::Connected => f.write_str("connected"),
            Self::Refused(r) => write!(f, "refused: {r}"),
            Self::Closed => f.write_str("closed"),
        }
    }
}

/// Why a connection was refused, by this side or by the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The rule that failed.
    pub reason: RefusalReason,
    /// Human-readable detail (both sides' values).
    pub detail: String,
    /// True if the peer refused us; false if we refused the peer.
    pub by_peer: bool,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let who = if self.by_peer {
            "peer refused us"
        } else {
            "we refused the peer"
        };
        write!(f, "{who}: {} ({})", self.reason, self.detail)
    }
}

/// The rule a refused connection broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RefusalReason {
    /// Different protocol versions.
    Version,
    /// Raw channel on one side, messaging on the other.
    ChannelKind,
    /// The buffer sizes differ.
    BufferSize,
    /// The directions do not complement each other.
    Directions,
    /// The peer's user is not allowed by the access policy.
    AccessDenied,
    /// The server already has a peer.
    Busy,
    /// Rendezvous name collision: the peer serves another address.
    Address,
    /// The peer broke the handshake protocol.
    Protocol,
    /// The section could not be created or mapped.
    Resources,
    /// A code this version does not know.
    Unknown(u16),
}

impl RefusalReason {
    /// Wire code.
    pub fn code(self) -> u16 {
        match self {
            Self::Version => 1,
            Self::ChannelKind => 2,
            Self::BufferSize => 3,
            Self::Directions => 4,
            Self::AccessDenied => 5,
            Self::Busy => 6,
            Self::Address => 7,
            Self::Protocol => 8,
            Self::Resources => 9,
            Self::Unknown(c) => c,
        }
    }
    /// From a wire code.
    pub fn from_code(c: u16) -> Self {
        match c {
            1 => Self::Version,
            2 => Self::ChannelKind,
            3 => Self::BufferSize,
            4 => Self::Directions,
            5 => Self::AccessDenied,
            6 => Self::Busy,
            7 => Self::Address,
            8 => Self::Protocol,
            9 => Self::Resources,
            c => Self::Unknown(c),
        }
    }
}

impl fmt::Display for RefusalReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Version => f.write_str("protocol version mismatch"),
            Self::ChannelKind => f.write_str("channel type mismatch (raw vs messaging)"),
            Self::BufferSize => f.write_str("buffer_size mismatch"),
            Self::Directions => f.write_str("incompatible directions"),
            Self::AccessDenied => f.write_str("access denied by policy"),
            Self::Busy => f.write_str("server already has a peer"),
            Self::Address => f.write_str("address mismatch (rendezvous name collision)"),
            Self::Protocol => f.write_str("handshake protocol error"),
            Self::Resources => f.write_str("shared section could not be set up"),
            Self::Unknown(c) => write!(f, "unknown reason {c}"),
        }
    }
}

/// Counters of one transport, cumulative since it was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransportStats {
    /// Buffers handed to the peer (or staged for it).
    pub buffers_sent: u64,
    /// Bytes in those buffers.
    pub bytes_sent: u64,
    /// Buffers received from the peer.
    pub buffers_received: u64,
    /// Bytes in those buffers.
    pub bytes_received: u64,
    /// Connections established.
    pub connections: u64,
    /// Connections established after the first (reconnections).
    pub reconnections: u64,
    /// Connections that ended (peer exit, crash, violation, close).
    pub disconnections: u64,
    /// Refused connection attempts (either side).
    pub refusals: u64,
    /// Connections dropped because the peer broke the shared-memory protocol.
    pub violations: u64,
    /// Connection attempts made by a client (each retry counts).
    pub connect_attempts: u64,
}

/// Which peer users a transport accepts. The own effective user is always
/// accepted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccessPolicy {
    any_user: bool,
    uids: Vec<u32>,
    gids: Vec<u32>,
}

impl AccessPolicy {
    /// The default: only processes of the same effective user.
    pub fn same_user() -> Self {
        Self::default()
    }
    /// Any user at all (state it only where every local user is trusted).
    pub fn any_user() -> Self {
        Self {
            any_user: true,
            ..Self::default()
        }
    }
    /// Also accept root (uid 0).
    pub fn allow_root(self) -> Self {
        self.allow_uid(0)
    }
    /// Also accept this user id.
    pub fn allow_uid(mut self, uid: u32) -> Self {
        self.uids.push(uid);
        self
    }
    /// Also accept processes whose effective group is `gid`.
    pub fn allow_gid(mut self, gid: u32) -> Self {
        self.gids.push(gid);
        self
    }
    /// Whether a peer with these ids is accepted, given our own uid.
    pub fn allows(&self, own_uid: u32, uid: u32, gid: u32) -> bool {
        self.any_user || uid == own_uid || self.uids.contains(&uid) || self.gids.contains(&gid)
    }
}

/// Why a transport operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// Bad descriptor.
    #[error(transparent)]
    Descriptor(#[from] DescriptorError),
    /// Bad parameters (the error names the transport).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Another live server holds the address.
    #[error(
        "{0}: address in use: another server is listening on it (open as a client to connect to it)"
    )]
    AddressInUse(String),
    /// A system call failed.
    #[error("{descriptor}: {source}")]
    Sys {
        /// The transport.
        descriptor: String,
        /// The call.
        source: crate::sys::SysError,
    },
    /// The wait ended before a buffer was available.
    #[error("timed out")]
    Timeout,
    /// The transport is closed (or not started).
    #[error("{0}: transport is not open")]
    NotOpen(String),
    /// The transport was already started.
    #[error("{0}: transport is already open")]
    AlreadyOpen(String),
    /// The direction is not one this transport was created for.
    #[error("{descriptor}: this transport does not {dir} (creation flags)")]
    WrongDirection {
        /// The transport.
        descriptor: String,
        /// `send` or `receive`.
        dir: &'static str,
    },
    /// Another handle already uses this side.
    #[error("{descriptor}: the {dir} side is in use by another handle (rule: one thread at a time per direction)")]
    SideInUse {
        /// The transport.
        descriptor: String,
        /// `send` or `receive`.
        dir: &'static str,
    },
    /// A length larger than the buffer.
    #[error("length {len} exceeds the buffer size {size}")]
    LengthTooLarge {
        /// Requested length.
        len: usize,
        /// Buffer size.
        size: usize,
    },
    /// The connection ended while buffers were in flight: some that were
    /// sent were not taken by the peer and are lost.
    #[error("{0}: the connection ended; the buffer was lost")]
    Disconnected(String),
    /// The buffer was acquired in the shared memory of a connection that
    /// ended before the commit; it was not sent and is gone.
    #[error("{0}: the buffer was not sent: the connection it was obtained on ended before it was sent, and nothing written into a dead connection's shared memory is ever delivered (get a new buffer and send the data again)")]
    BufferLost(String),
    /// Every buffer this side may hand out at once is out.
    #[error("{descriptor}: all {max} {dir} buffers are already out (rule: at most the endpoint's {limit}, {max}, at once; {hint})")]
    BufferLimit {
        /// The transport.
        descriptor: String,
        /// `send` or `receive`.
        dir: &'static str,
        /// The limit.
        max: u32,
        /// The [`Endpoint`] setting that sets the limit: `send_buffers` or
        /// `receive_buffers`.
        limit: &'static str,
        /// How to get one back.
        hint: &'static str,
    },
    /// A commit for another buffer than the oldest one outstanding.
    #[error("{descriptor}: buffer {given} was not sent: buffer {oldest} was obtained before it (rule: buffers are sent in the order obtained; send or abort {oldest} first)")]
    OutOfOrder {
        /// The transport.
        descriptor: String,
        /// The buffer given.
        given: BufferId,
        /// The oldest buffer outstanding.
        oldest: BufferId,
    },
    /// A buffer id that is not outstanding on this side.
    #[error("{descriptor}: buffer {id} is not out on this {dir} side (already sent, aborted or disposed, or never handed out)")]
    UnknownBuffer {
        /// The transport.
        descriptor: String,
        /// `send` or `receive`.
        dir: &'static str,
        /// The id given.
        id: BufferId,
    },
    /// The host name of a descriptor could not be resolved.
    #[error("{descriptor}: cannot resolve host {host}: {why}")]
    Resolve {
        /// The transport.
        descriptor: String,
        /// The host name.
        host: String,
        /// The resolver's answer.
        why: String,
    },
    /// A control code is not valid now.
    #[error("{descriptor}: {what}")]
    Control {
        /// The transport.
        descriptor: String,
        /// What was wrong.
        what: String,
    },
}

/// Names one buffer handed out by a raw channel's sender or receiver;
/// unique for the life of that side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BufferId(pub u64);

impl fmt::Display for BufferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// The buffer limits of the transport a descriptor selects
/// (`LmqQueryTransportBufferLimits`).
pub fn query_limits(descriptor: &str) -> Result<BufferLimits, DescriptorError> {
    let (scheme, rest) = descriptor::split_scheme(descriptor)?;
    match scheme.as_str() {
        "ipc" => {
            descriptor::IpcAddress::parse_rest(descriptor, rest)?;
            Ok(ipc::LIMITS)
        }
        "tcp" => {
            descriptor::TcpAddress::parse_rest(descriptor, rest)?;
            Ok(tcp::LIMITS)
        }
        _ => Err(unknown_scheme(descriptor, scheme)),
    }
}

fn unknown_scheme(descriptor: &str, scheme: String) -> DescriptorError {
    DescriptorError::UnknownScheme {
        descriptor: descriptor.to_owned(),
        scheme,
        known: SCHEMES.join(", "),
    }
}

/// The schemes with a registered provider.
pub const SCHEMES: &[&str] = &["ipc", "tcp"];

/// Creates a transport from a descriptor, picking the provider by scheme
/// (case-insensitive); the provider parses the rest. The directions follow
/// from the counts (0 send buffers: receive only, and so on).
pub(crate) fn create(
    descriptor: &str,
    buffer_size: usize,
    send_buffers: u32,
    receive_buffers: u32,
) -> Result<Arc<dyn Transport>, TransportError> {
    let limits = query_limits(descriptor)?;
    let (scheme, rest) = descriptor::split_scheme(descriptor)?;
    let config = TransportConfig::new(
        descriptor,
        buffer_size,
        send_buffers,
        receive_buffers,
        &limits,
    )?;
    let transport: Arc<dyn Transport> = match scheme.as_str() {
        "ipc" => {
            let addr = descriptor::IpcAddress::parse_rest(descriptor, rest)?;
            Arc::new(ipc::IpcTransport::new(addr, config)?)
        }
        "tcp" => {
            let addr = descriptor::TcpAddress::parse_rest(descriptor, rest)?;
            Arc::new(tcp::TcpTransport::new(addr, config)?)
        }
        _ => return Err(unknown_scheme(descriptor, scheme).into()),
    };
    // Every scheme joins the statistics registry here (transport/stat.rs).
    stat::register(&transport);
    Ok(transport)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(size: usize, s: u32, r: u32) -> Result<TransportConfig, ConfigError> {
        TransportConfig::new("ipc://t", size, s, r, &ipc::LIMITS)
    }

    #[test]
    fn config_rules() {
        assert_eq!(
            cfg(65536, 4, 4).unwrap().directions(),
            Directions::SendReceive
        );
        assert_eq!(cfg(65536, 4, 0).unwrap().directions(), Directions::Send);
        assert_eq!(cfg(65536, 0, 4).unwrap().directions(), Directions::Receive);
        assert!(matches!(cfg(0, 4, 4), Err(ConfigError::BufferSize { .. })));
        assert!(matches!(
            cfg(65536, 0, 0),
            Err(ConfigError::NoBuffers { .. })
        ));
        assert!(matches!(
            cfg(64, 4000, 200),
            Err(ConfigError::TooManyBuffers { .. })
        ));
        assert!(cfg(64, 2048, 2048).is_ok());
        let e = cfg(65536, 0, 0).unwrap_err().to_string();
        assert!(
            e.contains("send_buffers and receive_buffers are both 0"),
            "{e}"
        );
        let e = cfg(0, 1, 1).unwrap_err().to_string();
        assert!(e.contains("buffer_size 0 is out of range"), "{e}");
    }

    #[test]
    fn registry_by_scheme() {
        assert_eq!(query_limits("IPC://a").unwrap(), ipc::LIMITS);
        assert_eq!(query_limits("TCP://127.0.0.1:1").unwrap(), tcp::LIMITS);
        assert!(matches!(
            query_limits("udp://a:1"),
            Err(DescriptorError::UnknownScheme { .. })
        ));
        let e = query_limits("udp://a:1").unwrap_err().to_string();
        assert!(e.contains("known: ipc, tcp"), "{e}");
        assert!(matches!(
            create("tcp://h", 64, 1, 1),
            Err(TransportError::Descriptor(_))
        ));
        assert!(matches!(
            create("ipc://", 64, 1, 1),
            Err(TransportError::Descriptor(_))
        ));
    }

    #[test]
    fn policy() {
        let p = AccessPolicy::same_user();
        assert!(p.allows(1000, 1000, 5));
        assert!(!p.allows(1000, 0, 0));
        assert!(AccessPolicy::same_user().allow_root().allows(1000, 0, 0));
        assert!(AccessPolicy::same_user().allow_gid(5).allows(1000, 7, 5));
        assert!(AccessPolicy::any_user().allows(1000, 7, 7));
    }
}
