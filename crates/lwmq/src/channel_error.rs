//! Errors of channel operations.

use crate::transport::TransportError;

/// Why a channel operation failed; each variant names the rule.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelError {
    /// `open` with no transport.
    #[error("the channel has no transport (rule: add at least one transport before opening)")]
    NoTransport,
    /// `add_transport` after `open`.
    #[error("transports can only be added before the channel is opened")]
    AddTransportAfterOpen,
    /// Buffer sizes differ.
    #[error("BufferSizeBytes {new} differs from the channel's {existing} (rule: every transport of a channel uses the same buffer size)")]
    BufferSizeMismatch {
        /// Size of the transports already added.
        existing: usize,
        /// Size given now.
        new: usize,
    },
    /// `open` twice.
    #[error("the channel is already open")]
    AlreadyOpen,
    /// An operation that needs an open channel.
    #[error("the channel is not open (rule: open it first)")]
    NotOpen,
    /// The channel was closed.
    #[error("the channel is closed")]
    Closed,
    /// No transport with that index.
    #[error("no transport #{0} on this channel")]
    UnknownTransport(usize),
    /// `add_send_queue` after `open`.
    #[error("send queues can only be added before the channel is opened")]
    AddSendQueueAfterOpen,
    /// A bounded queue kind with capacity 0.
    #[error("the {which} queue kind is bounded with capacity 0 (rule: a bounded queue holds at least 1 message; use an unbounded kind for no limit)")]
    ZeroCapacity {
        /// `send` or `receive`.
        which: &'static str,
    },
    /// `open` with a sending transport but no send queue.
    #[error("a transport sends but the channel has no send queue (rule: add at least one send queue when some transport sends)")]
    NoSendQueue,
    /// `open` with send queues but no sending transport.
    #[error("the channel has send queues but no transport sends (rule: send queues need a transport created with SEND or SENDRECEIVE)")]
    SendQueueWithoutSendingTransport,
    /// `open` without a receive queue kind although a transport receives.
    #[error("a transport receives but no receive queue kind was given (rule: the receive queue type is required iff some transport receives)")]
    ReceiveQueueMissing,
    /// `open` with a receive queue kind although no transport receives.
    #[error("a receive queue kind was given but no transport receives (rule: the receive queue type must be NA when no transport receives)")]
    ReceiveQueueWithoutReceivingTransport,
    /// `flush` or `close` ran out of time.
    #[error("timed out before every queued message was sent and taken by the peer (the sending goes on)")]
    Timeout,
    /// A helper thread could not be started.
    #[error("could not start the channel's service thread: {0}")]
    Spawn(String),
    /// The operation needs a receiving channel.
    #[error("the channel has no receive queue (no transport receives)")]
    NoReceiveQueue,
    /// A transport failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
}

impl From<crate::descriptor::DescriptorError> for ChannelError {
    fn from(e: crate::descriptor::DescriptorError) -> Self {
        ChannelError::Transport(e.into())
    }
}
