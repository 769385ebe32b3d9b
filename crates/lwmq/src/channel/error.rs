//! The errors of posting and receiving: one enum per operation; a failed
//! post gives the message back.

use std::fmt;

use crate::message::{Message, MessageError};

/// Why [`SendQueue::post`](super::SendQueue::post) did not queue a message.
/// Every variant hands the message back ([`PostError::into_message`]);
/// dropping the error drops the message (running release hooks).
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum PostError {
    /// A bounded discard-newest queue was full and the timeout was zero.
    #[error("send queue is full: the message was refused; post with a non-zero timeout to wait for room, enlarge the queue, or use a discard-oldest queue")]
    Full(Message),
    /// A bounded discard-newest queue stayed full for the whole timeout.
    #[error("send queue stayed full for the whole timeout: the message was refused; the peer is not draining fast enough")]
    Timeout(Message),
    /// The channel is closing or closed.
    #[error("the channel is closing or closed: nothing more can be posted")]
    Closed(Message),
    /// The channel is not open yet.
    #[error("the channel is not open (rule: open the channel before posting)")]
    NotOpen(Message),
    /// A non-zero tag on an untagged queue.
    #[error(
        "this send queue is not tagged: post with tag 0, or add the queue with a *Tagged kind"
    )]
    TagUnsupported(Message),
    /// The message breaks a rule of its own ([`Message::validate`]): no
    /// frames, too many frames, or a frame too large.
    #[error("the message cannot be posted: {error}")]
    Invalid {
        /// The message.
        message: Message,
        /// The rule it breaks.
        error: MessageError,
    },
    /// The encoded message does not fit in an empty transport buffer.
    #[error("the message encodes to {encoded} bytes but a transport buffer holds at most {limit} bytes of messages (BufferSizeBytes minus the 8-byte buffer header); use larger buffers or split the message")]
    TooLarge {
        /// The message.
        message: Message,
        /// Its encoded size.
        encoded: usize,
        /// Room in an empty buffer.
        limit: usize,
    },
    /// The acquire hook of an external frame failed.
    #[error("{error}")]
    Acquire {
        /// The message.
        message: Message,
        /// The hook's failure.
        error: MessageError,
    },
}

impl PostError {
    /// The message that was not posted.
    pub fn into_message(self) -> Message {
        match self {
            PostError::Full(m)
            | PostError::Timeout(m)
            | PostError::Closed(m)
            | PostError::NotOpen(m)
            | PostError::TagUnsupported(m)
            | PostError::Invalid { message: m, .. }
            | PostError::TooLarge { message: m, .. }
            | PostError::Acquire { message: m, .. } => m,
        }
    }

    pub(crate) fn from_queue(e: crate::queue::PostError<Message>) -> Self {
        use crate::queue::PostError as Q;
        match e {
            Q::Full(m) => PostError::Full(m),
            Q::Timeout(m) => PostError::Timeout(m),
            Q::Closed(m) => PostError::Closed(m),
            Q::TagUnsupported(m) => PostError::TagUnsupported(m),
        }
    }
}

impl fmt::Debug for PostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PostError::Full(_) => f.write_str("Full(..)"),
            PostError::Timeout(_) => f.write_str("Timeout(..)"),
            PostError::Closed(_) => f.write_str("Closed(..)"),
            PostError::NotOpen(_) => f.write_str("NotOpen(..)"),
            PostError::TagUnsupported(_) => f.write_str("TagUnsupported(..)"),
            PostError::Invalid { error, .. } => f
                .debug_struct("Invalid")
                .field("error", error)
                .finish_non_exhaustive(),
            PostError::TooLarge { encoded, limit, .. } => f
                .debug_struct("TooLarge")
                .field("encoded", encoded)
                .field("limit", limit)
                .finish_non_exhaustive(),
            PostError::Acquire { error, .. } => f
                .debug_struct("Acquire")
                .field("error", error)
                .finish_non_exhaustive(),
        }
    }
}

/// Why [`Channel::receive`](super::Channel::receive) returned no message.
#[derive(thiserror::Error, Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReceiveError {
    /// Nothing arrived within the timeout (or nothing was queued on a poll).
    #[error("no message arrived within the timeout; poll again or wait longer")]
    Timeout,
    /// The channel was closed and every received message was taken.
    #[error("the channel is closed and its receive queue is empty")]
    Closed,
    /// The channel is not open yet.
    #[error("the channel is not open (rule: open the channel before receiving)")]
    NotOpen,
    /// No transport of the channel receives.
    #[error("the channel has no receive queue (rule: receiving needs a transport created with RECEIVE or SENDRECEIVE)")]
    NoReceiveQueue,
}
