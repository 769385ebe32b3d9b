//! The errors of the messaging channel, one per operation: opening
//! ([`OpenError`], which gives the builder back), posting ([`PostError`],
//! which gives the message back), receiving ([`ReceiveError`]), flushing
//! ([`FlushError`]) and closing ([`CloseError`]).

use std::fmt;

use super::ChannelBuilder;
use crate::message::{Message, MessageError};
use crate::transport::{ConfigError, Refusal, TransportError, TransportId};

/// Why [`ChannelBuilder::open`] failed. The builder comes back with it
/// ([`OpenError::into_builder`]), unchanged and not started, so that the
/// caller can change something and open again: typically a server whose
/// address is taken ([`OpenError::is_address_in_use`]) opens as a client.
#[must_use = "an OpenError holds the builder; open again with it or drop it"]
pub struct OpenError {
    kind: OpenErrorKind,
    builder: Box<ChannelBuilder>,
}

/// What [`OpenError`] is about; each variant names the rule or the failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenErrorKind {
    /// No transport was added.
    #[error(
        "the channel has no transport (rule: add at least one with ChannelBuilder::transport)"
    )]
    NoTransport,
    /// A transport sends but no queue was created.
    #[error("a transport sends (it has send buffers) but the channel has no queue to post to (rule: create a queue with ChannelBuilder::mono_queue or multi_queue, or give every transport 0 send buffers)")]
    NoQueue,
    /// Queues were created but no transport sends.
    #[error("the channel has queues but no transport sends (rule: give a transport send buffers, or do not create queues)")]
    QueueWithoutSender,
    /// A receive queue was given but no transport receives.
    #[error("a receive queue was given but no transport receives (rule: give a transport receive buffers, or do not call ChannelBuilder::receive_queue)")]
    ReceiveQueueWithoutReceiver,
    /// An endpoint or queue setting breaks a rule (an endpoint may have
    /// been changed after it was added).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A server's address is taken by another live server.
    #[error("{descriptor}: address in use: another server is listening on it (open as Role::Client to connect to it)")]
    AddressInUse {
        /// The transport.
        descriptor: String,
    },
    /// A transport could not start (a system call failed).
    #[error(transparent)]
    Transport(TransportError),
    /// A helper thread could not be started.
    #[error("could not start the channel's helper thread: {0}")]
    Spawn(String),
}

impl OpenError {
    pub(crate) fn new(kind: impl Into<OpenErrorKind>, builder: ChannelBuilder) -> Self {
        OpenError {
            kind: kind.into(),
            builder: Box::new(builder),
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> &OpenErrorKind {
        &self.kind
    }

    /// True if a server found its address taken: open the returned builder
    /// as [`Role::Client`](crate::Role::Client) to connect to that server.
    pub fn is_address_in_use(&self) -> bool {
        matches!(self.kind, OpenErrorKind::AddressInUse { .. })
    }

    /// The builder, to open again.
    pub fn into_builder(self) -> ChannelBuilder {
        *self.builder
    }

    /// The failure and the builder.
    pub fn into_parts(self) -> (OpenErrorKind, ChannelBuilder) {
        (self.kind, *self.builder)
    }
}

impl From<TransportError> for OpenErrorKind {
    fn from(e: TransportError) -> Self {
        match e {
            TransportError::AddressInUse(descriptor) => OpenErrorKind::AddressInUse { descriptor },
            TransportError::Config(c) => OpenErrorKind::Config(c),
            e => OpenErrorKind::Transport(e),
        }
    }
}

impl fmt::Debug for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenError")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.kind.fmt(f)
    }
}

impl std::error::Error for OpenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.kind)
    }
}

/// A message a post refused because it can never be sent as it is: it
/// breaks a rule of its own (the first three variants, the rules
/// [`Message::validate`] checks), or it is too large for this channel's
/// transport buffers ([`InvalidMessage::TooLarge`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidMessage {
    /// The message has no frames.
    #[error("a message must have at least one frame; push a frame before posting it")]
    NoFrames,
    /// More frames than a message may hold.
    #[error("the message has {count} frames but a message holds at most {max}; split the data over several messages or fewer, larger frames")]
    TooManyFrames {
        /// Its frames.
        count: usize,
        /// The limit, [`MAX_FRAMES`](crate::message::MAX_FRAMES).
        max: usize,
    },
    /// A frame is larger than the per-frame limit.
    #[error("frame {index} holds {len} bytes but a frame holds at most {max}; split the data over several frames")]
    FrameTooLarge {
        /// Index of the frame in the message.
        index: usize,
        /// Its length.
        len: usize,
        /// The limit, [`MAX_FRAME_SIZE`](crate::message::MAX_FRAME_SIZE).
        max: usize,
    },
    /// The encoded message does not fit an empty transport buffer.
    #[error("the message encodes to {encoded} bytes but a transport buffer holds at most {limit} bytes of messages (buffer_size minus the 8-byte buffer header); use larger buffers or split the message")]
    TooLarge {
        /// Its encoded size.
        encoded: usize,
        /// Room in an empty buffer.
        limit: usize,
    },
}

/// Why a post did not queue a message. Every variant hands the message
/// back ([`PostError::into_message`]); dropping the error drops the message
/// (running the release hooks of its external frames).
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum PostError {
    /// The queue stayed at its limit for the whole timeout: its high-water
    /// mark (the default: the poster waits for the peer to catch up, then
    /// gets the message back) or a discard-newest capacity.
    #[error("send queue is full: it stayed at its limit for the whole timeout (the peer is not taking messages as fast as they are posted); post with a longer timeout, raise the limit, or drop the message")]
    Full(Message),
    /// The channel was closed or dropped.
    #[error("the channel is closed: nothing more can be posted")]
    Closed(Message),
    /// The queue's channel is not open yet (a queue taken from a builder
    /// before [`ChannelBuilder::open`]).
    #[error("the channel is not open yet: post after ChannelBuilder::open")]
    NotOpen(Message),
    /// A non-zero tag on a queue that is not tagged.
    #[error("this queue is not tagged: post with tag 0, or create it with QueueOptions::tagged")]
    TagUnsupported(Message),
    /// The message can never be sent as it is.
    #[error("{error}")]
    Invalid {
        /// The rule it breaks.
        error: InvalidMessage,
        /// The message.
        message: Message,
    },
    /// The acquire hook of an external frame failed (it runs at post time).
    #[error("{error}")]
    Acquire {
        /// The hook's failure.
        error: MessageError,
        /// The message.
        message: Message,
    },
}

impl PostError {
    /// The message that was not posted.
    pub fn into_message(self) -> Message {
        match self {
            PostError::Full(m)
            | PostError::Closed(m)
            | PostError::NotOpen(m)
            | PostError::TagUnsupported(m)
            | PostError::Invalid { message: m, .. }
            | PostError::Acquire { message: m, .. } => m,
        }
    }

    /// True for [`PostError::Closed`].
    pub fn is_closed(&self) -> bool {
        matches!(self, PostError::Closed(_))
    }

    pub(crate) fn from_queue(e: crate::queue::PostError<Message>) -> Self {
        use crate::queue::PostError as Q;
        match e {
            Q::Full(m) => PostError::Full(m),
            Q::Closed(m) => PostError::Closed(m),
            Q::TagUnsupported(m) => PostError::TagUnsupported(m),
        }
    }
}

/// Why [`MonoQueue::post_copies`](super::MonoQueue::post_copies) stopped:
/// the first payload's post failed with `error` (which holds that payload
/// as a message), after `posted` payloads before it were posted. The
/// payloads after it were not looked at.
#[derive(Debug, thiserror::Error)]
#[error("posted {posted} messages of the batch, then: {error}")]
#[non_exhaustive]
pub struct PostBatchError {
    /// How many payloads were posted before the failure (in order, from
    /// the first).
    pub posted: usize,
    /// The failed post's error; [`PostError::into_message`] gives the
    /// message back.
    pub error: PostError,
}

impl fmt::Debug for PostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PostError::Full(_) => f.write_str("Full(..)"),
            PostError::Closed(_) => f.write_str("Closed(..)"),
            PostError::NotOpen(_) => f.write_str("NotOpen(..)"),
            PostError::TagUnsupported(_) => f.write_str("TagUnsupported(..)"),
            PostError::Invalid { error, .. } => f
                .debug_struct("Invalid")
                .field("error", error)
                .finish_non_exhaustive(),
            PostError::Acquire { error, .. } => f
                .debug_struct("Acquire")
                .field("error", error)
                .finish_non_exhaustive(),
        }
    }
}

/// Why a receive returned no message.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReceiveError {
    /// Nothing arrived within the timeout (or nothing was ready on a
    /// `try_` call), and no refusal explains it: a peer is connected but
    /// sent nothing, or the transports are still listening or connecting
    /// (see [`Channel::wait_connected`](super::Channel::wait_connected)).
    #[error("no message arrived within the timeout (if no peer is connected, the transport is still listening or connecting; a refused connection would be reported as such)")]
    Timeout,
    /// Nothing arrived, no receiving transport is connected, and this one
    /// was refused: nothing will arrive until the cause is removed (the
    /// transport keeps retrying). Returned instead of `Timeout`.
    #[error("no message arrived: transport #{} cannot connect: {refusal} (it keeps retrying, but nothing will arrive until this cause is removed)", transport.0)]
    Refused {
        /// The refused receiving transport (the first one, if several).
        transport: TransportId,
        /// Its latest refusal.
        refusal: Refusal,
    },
    /// [`Interrupter::interrupt`](super::Interrupter::interrupt) ended the
    /// wait (or was called since the last receive).
    #[error("the receive was interrupted (Interrupter::interrupt)")]
    Interrupted,
    /// The channel is closed and every message it received was taken.
    #[error("the channel is closed and every received message was taken")]
    Closed,
    /// No transport of the channel receives.
    #[error(
        "the channel does not receive (rule: receiving needs a transport with receive buffers)"
    )]
    NotReceiving,
    /// An async receive (feature `async`) was waiting on a connection that
    /// ended (the peer closed or died) with nothing left to receive, and
    /// no receiving transport is connected now. The transport keeps
    /// listening or reconnecting: receive again to wait for the next peer.
    #[error("{transport}: the connection ended while an async receive waited, and nothing is left to receive (receive again to wait for the next peer)")]
    Disconnected {
        /// The receiving transport whose connection ended.
        transport: TransportId,
    },
    /// The async runtime could not wait for the channel (feature `async`):
    /// registering its readiness descriptor with the reactor failed, or
    /// no descriptor was left to create it.
    #[error("the async runtime could not wait for the channel: {0}")]
    Async(String),
}

/// Why [`Channel::flush`](super::Channel::flush) returned before everything
/// was sent.
#[derive(thiserror::Error, Debug)]
#[non_exhaustive]
pub enum FlushError {
    /// Messages were still queued, or buffers not yet taken by the peer,
    /// when the timeout ended. The sending goes on.
    #[error("timed out before every queued message was sent and taken by the peer (the sending goes on)")]
    Timeout,
    /// A transport failed while flushing.
    #[error(transparent)]
    Transport(TransportError),
    /// The async runtime could not wait for the channel (feature `async`;
    /// see [`ReceiveError::Async`]).
    #[error("the async runtime could not wait for the channel: {0}")]
    Async(String),
}

/// What [`Channel::close`](super::Channel::close) could not do within its
/// linger. The channel is closed either way.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseError {
    /// The linger ended with messages still queued: they were dropped
    /// (external frames released) and are lost.
    #[error("{lost} messages were still queued when the linger ended and were dropped (close with a longer linger, or check that a peer is connected)")]
    Unsent {
        /// Messages dropped.
        lost: u64,
    },
    /// Every message was handed to the transports, but a peer had not
    /// taken all of it when the linger ended; what it had not taken is
    /// lost with the connection.
    #[error(
        "every message was sent, but the peer had not taken all of them when the linger ended"
    )]
    Untaken,
}
