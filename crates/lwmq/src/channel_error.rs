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
    /// A transport failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
}

impl From<crate::descriptor::DescriptorError> for ChannelError {
    fn from(e: crate::descriptor::DescriptorError) -> Self {
        ChannelError::Transport(e.into())
    }
}
