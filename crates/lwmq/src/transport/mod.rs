//! The transport layer interface and the registry of transport providers.
//!
//! A *transport* moves fixed-size buffers between two processes. Everything
//! above it (raw channels, the messaging layer, the C API) talks to it only
//! through [`Transport`], [`SendSide`] and [`ReceiveSide`], so a second
//! transport (TCP, later) plugs in by implementing them and registering its
//! scheme in [`create`].
//!
//! Buffer life cycle on the send side: [`SendSide::acquire`] hands out a
//! free buffer (waiting up to a timeout), up to `MaxPendingSendBuffers` at
//! once, each with its [`BufferId`]; the caller fills them, then
//! [`SendSide::commit`] sends the oldest one or [`SendSide::abort`] gives
//! any one back. Buffers leave in the order they were acquired: committing
//! another than the oldest is refused ([`TransportError::OutOfOrder`]) and
//! changes nothing. On the receive side [`ReceiveSide::receive`] hands out
//! the next filled buffer, up to `MaxPendingReceiveBuffers` at once, and
//! [`ReceiveSide::dispose`] returns any of them, in any order. Asking for
//! more buffers than the limit is an error
//! ([`TransportError::BufferLimit`]), never a wait: only the same thread
//! could give one back. Each side is used by one thread at a time: it is
//! claimed with [`Transport::claim_sender`] / [`Transport::claim_receiver`]
//! and released when dropped.
//!
//! The memory of a buffer ([`RawBuf`]) may be shared with the peer, which
//! can write it at any time: it is reached through raw pointers only, never
//! through a `&[u8]`/`&mut [u8]` that would promise nobody else changes it.

pub mod events;
pub mod ipc;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::descriptor::{self, DescriptorError};
use crate::timeout::Timeout;

pub use events::{ConnectionEvent, ConnectionLog, DisconnectReason, Events, PeerInfo};

/// Which directions a transport carries (LwMQ's creation flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Directions {
    /// `LMQ_TRANSPORTCREATIONFLAGS_SEND`: this side only sends.
    Send,
    /// `LMQ_TRANSPORTCREATIONFLAGS_RECEIVE`: this side only receives.
    Receive,
    /// `LMQ_TRANSPORTCREATIONFLAGS_SENDRECEIVE`: both.
    SendReceive,
}

impl Directions {
    /// True if this side sends.
    pub fn sends(self) -> bool {
        matches!(self, Self::Send | Self::SendReceive)
    }
    /// True if this side receives.
    pub fn receives(self) -> bool {
        matches!(self, Self::Receive | Self::SendReceive)
    }
    /// `(MaxPendingSendBuffers, MaxPendingReceiveBuffers)` giving each
    /// direction this side uses `n` buffers and the unused one zero, as the
    /// configuration rules require.
    pub fn buffer_counts(self, n: i64) -> (i64, i64) {
        (
            if self.sends() { n } else { 0 },
            if self.receives() { n } else { 0 },
        )
    }

    /// From the two flags; `None` if neither is set.
    pub fn from_flags(send: bool, receive: bool) -> Option<Self> {
        match (send, receive) {
            (true, true) => Some(Self::SendReceive),
            (true, false) => Some(Self::Send),
            (false, true) => Some(Self::Receive),
            (false, false) => None,
        }
    }
}

impl fmt::Display for Directions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Send => "send",
            Self::Receive => "receive",
            Self::SendReceive => "send+receive",
        })
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

/// What travels in the buffers; both ends of a connection must agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelKind {
    /// `RAW_ONE_TO_ONE`: application bytes, direct buffer access.
    Raw,
    /// `ONE_TO_ONE`: LwMQ messages in the lwmq wire format.
    Messaging,
}

/// The largest buffers and counts a transport supports
/// (`LMQ_TRANSPORTBUFFERLIMITS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferLimits {
    /// Largest `BufferSizeBytes`.
    pub max_buffer_size: usize,
    /// Largest `MaxPendingSendBuffers`.
    pub max_send_buffers: u32,
    /// Largest `MaxPendingReceiveBuffers`.
    pub max_receive_buffers: u32,
    /// Largest send + receive buffer count of one transport.
    pub max_total_buffers: u32,
    /// Largest frame payload stored inline in a message (no allocation).
    pub max_inline_data_size: u32,
}

/// Buffer size, counts and directions of one transport, checked on creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransportConfig {
    buffer_size: usize,
    send_buffers: u32,
    receive_buffers: u32,
    directions: Directions,
}

/// A transport parameter that breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Buffer size zero or above the transport's limit.
    #[error("BufferSizeBytes {size} is out of range (rule: 1..={max} bytes for this transport)")]
    BufferSize {
        /// Given size.
        size: usize,
        /// Largest allowed.
        max: usize,
    },
    /// A negative buffer count (from the C API's LONG).
    #[error("{which} is negative ({value}) (rule: buffer counts are >= 0)")]
    NegativeCount {
        /// Which parameter.
        which: &'static str,
        /// Its value.
        value: i64,
    },
    /// A count for a direction the transport does not use is not zero.
    #[error("{which} is {value} but the transport does not {dir} (rule: a transport that only {only} must have zero {which})")]
    UnusedDirectionHasBuffers {
        /// Which parameter.
        which: &'static str,
        /// Its value.
        value: u32,
        /// The unused direction.
        dir: &'static str,
        /// The used one.
        only: &'static str,
    },
    /// A used direction has no buffers.
    #[error(
        "{which} is 0 but the transport {dir}s (rule: at least one buffer for each direction used)"
    )]
    UsedDirectionHasNoBuffers {
        /// Which parameter.
        which: &'static str,
        /// The direction.
        dir: &'static str,
    },
    /// Too many buffers.
    #[error("{send} send + {receive} receive buffers exceed the transport's limit (rule: at most {max_each} per direction and {max_total} in all)")]
    TooManyBuffers {
        /// Send count.
        send: u32,
        /// Receive count.
        receive: u32,
        /// Per-direction limit.
        max_each: u32,
        /// Total limit.
        max_total: u32,
    },
    /// No direction at all.
    #[error("creation flags select no direction (rule: SEND, RECEIVE or SENDRECEIVE)")]
    NoDirection,
}

impl TransportConfig {
    /// Checks the LwMQ rules for `BufferSizeBytes`, `MaxPendingSendBuffers`,
    /// `MaxPendingReceiveBuffers` and the creation flags against `limits`.
    pub fn new(
        buffer_size: usize,
        send_buffers: i64,
        receive_buffers: i64,
        directions: Directions,
        limits: &BufferLimits,
    ) -> Result<Self, ConfigError> {
        if buffer_size == 0 || buffer_size > limits.max_buffer_size {
            return Err(ConfigError::BufferSize {
                size: buffer_size,
                max: limits.max_buffer_size,
            });
        }
        let count = |which, v: i64| {
            if v < 0 {
                Err(ConfigError::NegativeCount { which, value: v })
            } else {
                Ok(u32::try_from(v).unwrap_or(u32::MAX))
            }
        };
        let send = count("MaxPendingSendBuffers", send_buffers)?;
        let receive = count("MaxPendingReceiveBuffers", receive_buffers)?;
        let check = |uses: bool, which, value: u32, dir, only| match (uses, value) {
            (false, v) if v != 0 => Err(ConfigError::UnusedDirectionHasBuffers {
                which,
                value: v,
                dir,
                only,
            }),
            (true, 0) => Err(ConfigError::UsedDirectionHasNoBuffers { which, dir }),
            _ => Ok(()),
        };
        check(
            directions.sends(),
            "MaxPendingSendBuffers",
            send,
            "send",
            "receives",
        )?;
        check(
            directions.receives(),
            "MaxPendingReceiveBuffers",
            receive,
            "receive",
            "sends",
        )?;
        if send > limits.max_send_buffers
            || receive > limits.max_receive_buffers
            || u64::from(send) + u64::from(receive) > u64::from(limits.max_total_buffers)
        {
            return Err(ConfigError::TooManyBuffers {
                send,
                receive,
                max_each: limits.max_send_buffers,
                max_total: limits.max_total_buffers,
            });
        }
        Ok(Self {
            buffer_size,
            send_buffers: send,
            receive_buffers: receive,
            directions,
        })
    }

    /// `BufferSizeBytes`.
    pub fn buffer_size(&self) -> usize {
        self.buffer_size
    }
    /// `MaxPendingSendBuffers`.
    pub fn send_buffers(&self) -> u32 {
        self.send_buffers
    }
    /// `MaxPendingReceiveBuffers`.
    pub fn receive_buffers(&self) -> u32 {
        self.receive_buffers
    }
    /// The creation flags.
    pub fn directions(&self) -> Directions {
        self.directions
    }
}

/// Where a transport's connection stands.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// `BufferSizeBytes` differ.
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
            Self::BufferSize => f.write_str("BufferSizeBytes mismatch"),
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

/// A transport control code (`LmqTransportControl`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportControl {
    /// `LMQ_TRANSPORTCONTROL_SETCLIENTCONNECTIONRETRYINTERVALMS`.
    SetClientConnectionRetryInterval(Duration),
    /// Who may connect (checked with the kernel's peer credentials).
    /// Only before the channel opens.
    SetAccessPolicy(AccessPolicy),
    /// How long a waiting thread spins before it sleeps on a futex
    /// (`Duration::ZERO` = sleep at once).
    SetSpinDuration(Duration),
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
    /// Bad parameters.
    #[error("{descriptor}: {source}")]
    Config {
        /// The transport.
        descriptor: String,
        /// The rule.
        source: ConfigError,
    },
    /// Another live server holds the address.
    #[error(
        "{0}: address in use: another server is listening on it (open as CLIENT to connect to it)"
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
    #[error("{descriptor}: all {max} {dir} buffers are already out (rule: at most {limit} at once; {hint})")]
    BufferLimit {
        /// The transport.
        descriptor: String,
        /// `send` or `receive`.
        dir: &'static str,
        /// The limit.
        max: u32,
        /// `MaxPendingSendBuffers` or `MaxPendingReceiveBuffers`.
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
    /// A control code is not valid now.
    #[error("{descriptor}: {what}")]
    Control {
        /// The transport.
        descriptor: String,
        /// What was wrong.
        what: String,
    },
}

/// A transport instance (one `LMQ_TRANSPORT`).
pub trait Transport: Send + Sync + fmt::Debug {
    /// The descriptor it was created from, canonical form.
    fn descriptor(&self) -> &str;
    /// Its buffer parameters.
    fn config(&self) -> &TransportConfig;
    /// Starts it in `role` for a channel of `kind` (channel open).
    fn start(&self, role: Role, kind: ChannelKind) -> Result<(), TransportError>;
    /// Stops it: disconnects, wakes waiters, releases everything.
    fn stop(&self);
    /// Connection state.
    fn state(&self) -> ConnectionState {
        self.connection_log().state()
    }
    /// The connection record: state, generation, peer and events. Every
    /// transport embeds one and reports its connection changes to it (see
    /// [`events`]).
    fn connection_log(&self) -> &Arc<ConnectionLog>;
    /// The last error or refusal, as text, if any.
    fn last_error(&self) -> Option<String>;
    /// Counters.
    fn stats(&self) -> TransportStats;
    /// Applies a control code.
    fn control(&self, control: TransportControl) -> Result<(), TransportError>;
    /// Buffers sent but not yet taken by the peer, plus staged ones.
    fn pending_send(&self) -> usize;
    /// Claims the send side (one user at a time).
    fn claim_sender(&self) -> Result<Box<dyn SendSide>, TransportError>;
    /// Claims the receive side (one user at a time).
    fn claim_receiver(&self) -> Result<Box<dyn ReceiveSide>, TransportError>;
}

/// Names one buffer handed out by a [`SendSide`] or [`ReceiveSide`];
/// unique for the life of the side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BufferId(pub u64);

impl fmt::Display for BufferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Memory of a buffer handed out by a side. Valid until the matching
/// commit, abort or dispose, and never longer than the side that produced
/// it. It may lie in memory the peer shares and can write: access it
/// through the raw pointer (copies), never through a reference.
#[derive(Debug, Clone, Copy)]
pub struct RawBuf {
    /// Start of the buffer.
    pub ptr: *mut u8,
    /// Its size (the transport's buffer size) or, when received, the
    /// number of bytes the sender filled.
    pub len: usize,
    /// Which buffer this is (for commit, abort, dispose).
    pub id: BufferId,
}

// SAFETY: a `RawBuf` is an address, a length and an id; holding or moving
// one grants no access by itself. Every dereference of `ptr` is `unsafe`
// code that must show the buffer is still out and who else may touch it,
// whichever thread it runs on (the side that handed it out is `Send` too).
unsafe impl Send for RawBuf {}

/// The send side of a transport (see the module docs).
pub trait SendSide: Send {
    /// A free buffer, waiting up to `timeout` for one. Each call hands out
    /// another buffer, up to `MaxPendingSendBuffers` at once (more is
    /// [`TransportError::BufferLimit`], at once).
    fn acquire(&mut self, timeout: Timeout) -> Result<RawBuf, TransportError>;
    /// Sends the first `len` bytes of buffer `id`, which must be the oldest
    /// one outstanding ([`TransportError::OutOfOrder`] otherwise, and
    /// nothing changes; so does a `len` above the buffer size). `erase`
    /// zeroes the buffer once the peer has consumed it. A buffer obtained
    /// in the shared memory of a connection that has ended since is not
    /// sent: [`TransportError::BufferLost`], and it is gone.
    fn commit(&mut self, id: BufferId, len: usize, erase: bool) -> Result<(), TransportError>;
    /// Gives buffer `id` back unsent, whichever of the outstanding ones it
    /// is; nothing of it reaches the peer.
    fn abort(&mut self, id: BufferId) -> Result<(), TransportError>;
    /// Waits until every committed buffer was taken by the peer (or
    /// timeout). Buffers still outstanding are not waited for.
    fn flush(&mut self, timeout: Timeout) -> Result<(), TransportError>;
    /// True if a peer is connected right now.
    fn is_connected(&mut self) -> bool;
    /// Committed buffers the peer has not taken yet (0 without a peer);
    /// below 2 it may be a cached upper bound, from 2 up it is re-read. A
    /// sender that sees the peer busy may keep filling its next buffer
    /// instead of sending it half empty.
    fn outstanding(&mut self) -> u64 {
        0
    }
}

/// The receive side of a transport (see the module docs).
pub trait ReceiveSide: Send {
    /// The next filled buffer, waiting up to `timeout`. Each call hands out
    /// the next buffer, up to `MaxPendingReceiveBuffers` at once (more is
    /// [`TransportError::BufferLimit`], at once).
    fn receive(&mut self, timeout: Timeout) -> Result<RawBuf, TransportError>;
    /// Returns buffer `id` (any of those held), zeroing it first if
    /// `erase`.
    fn dispose(&mut self, id: BufferId, erase: bool) -> Result<(), TransportError>;
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
pub const SCHEMES: &[&str] = &["ipc"];

/// Creates a transport from a descriptor, picking the provider by scheme
/// (case-insensitive); the provider parses the rest.
pub fn create(
    descriptor: &str,
    buffer_size: usize,
    send_buffers: i64,
    receive_buffers: i64,
    directions: Directions,
) -> Result<Arc<dyn Transport>, TransportError> {
    let limits = query_limits(descriptor)?;
    let (scheme, rest) = descriptor::split_scheme(descriptor)?;
    let config = TransportConfig::new(
        buffer_size,
        send_buffers,
        receive_buffers,
        directions,
        &limits,
    )
    .map_err(|source| TransportError::Config {
        descriptor: descriptor.to_owned(),
        source,
    })?;
    match scheme.as_str() {
        "ipc" => {
            let addr = descriptor::IpcAddress::parse_rest(descriptor, rest)?;
            Ok(Arc::new(ipc::IpcTransport::new(addr, config)?))
        }
        _ => Err(unknown_scheme(descriptor, scheme).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(size: usize, s: i64, r: i64, d: Directions) -> Result<TransportConfig, ConfigError> {
        TransportConfig::new(size, s, r, d, &ipc::LIMITS)
    }

    #[test]
    fn config_rules() {
        assert!(cfg(65536, 4, 4, Directions::SendReceive).is_ok());
        assert!(cfg(65536, 4, 0, Directions::Send).is_ok());
        assert!(cfg(65536, 0, 4, Directions::Receive).is_ok());
        assert!(matches!(
            cfg(0, 4, 4, Directions::SendReceive),
            Err(ConfigError::BufferSize { .. })
        ));
        assert!(matches!(
            cfg(65536, 4, 1, Directions::Send),
            Err(ConfigError::UnusedDirectionHasBuffers { .. })
        ));
        assert!(matches!(
            cfg(65536, 0, 1, Directions::SendReceive),
            Err(ConfigError::UsedDirectionHasNoBuffers { .. })
        ));
        assert!(matches!(
            cfg(65536, -1, 1, Directions::SendReceive),
            Err(ConfigError::NegativeCount { .. })
        ));
        assert!(matches!(
            cfg(64, 4000, 200, Directions::SendReceive),
            Err(ConfigError::TooManyBuffers { .. })
        ));
        assert!(cfg(64, 2048, 2048, Directions::SendReceive).is_ok());
        let e = cfg(65536, 4, 1, Directions::Send).unwrap_err().to_string();
        assert!(e.contains("must have zero MaxPendingReceiveBuffers"), "{e}");
    }

    #[test]
    fn registry_by_scheme() {
        assert_eq!(query_limits("IPC://a").unwrap(), ipc::LIMITS);
        assert!(matches!(
            query_limits("tcp://a:1"),
            Err(DescriptorError::UnknownScheme { .. })
        ));
        assert!(matches!(
            create("ipc://", 64, 1, 1, Directions::SendReceive),
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
