//! lwmq: LwMQ messaging for Linux.
//!
//! Brokerless, peer-to-peer channels between processes, whose centrepiece is
//! the `ipc://address[:port]` shared-memory transport.
//!
//! Layers, bottom up (each a module):
//! - [`sys`]: the Linux facilities (memfd, futex, abstract Unix sockets);
//! - [`ring`]: the shared-memory slot ring, validating everything it reads;
//! - [`transport`]: the transport interface, the registry by scheme, and the
//!   `ipc://` provider ([`transport::ipc`]);
//! - [`raw`]: raw channels (direct buffer access);
//! - [`message`], [`wire`], [`queue`]: messages and frames, their encoding
//!   into transport buffers, and the send/receive queues;
//! - [`channel`]: messaging channels built on all of the above.
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[allow(unsafe_code)]
pub mod channel;
pub mod channel_error;
#[cfg(feature = "serde")]
pub mod codec;
pub mod descriptor;
pub mod message;
#[allow(unsafe_code)]
pub mod queue;
#[allow(unsafe_code)]
pub mod raw;
#[allow(unsafe_code)]
pub mod ring;
#[allow(unsafe_code)]
pub mod sys;
pub mod timeout;
#[allow(unsafe_code)]
pub mod transport;
mod transports;
pub mod wire;

pub use channel::{Channel, ChannelStats, Lent, PostError, ReceiveError, Received, SendQueue};
pub use channel_error::ChannelError;
pub use descriptor::{DescriptorError, IpcAddress};
pub use raw::{
    BufferRangeError, RawChannel, RawReceiver, RawSender, ReceivedBuffer, SendBuffer, SendError,
    TransportId,
};
pub use timeout::Timeout;
pub use transport::{
    AccessPolicy, BufferLimits, ConnectionState, Directions, Role, Transport, TransportControl,
    TransportError, TransportStats,
};

/// Largest frame payload a message stores inline, without a heap allocation.
pub const MAX_INLINE_DATA_SIZE: u32 = message::MAX_INLINE_FRAME_SIZE as u32;
