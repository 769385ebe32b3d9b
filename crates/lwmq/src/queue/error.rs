//! Error types, one per operation. A failed post or push hands the item back.

use std::fmt;

/// Why [`post`](super::Producer::post) did not queue an item. The item is
/// handed back in every variant; get it with [`PostError::into_inner`].
#[derive(thiserror::Error, PartialEq, Eq, Clone, Copy)]
pub enum PostError<T> {
    /// The queue stayed full (at its capacity or its high-water mark) for
    /// the whole timeout, and its policy refuses the new item rather than
    /// dropping an old one. The item is handed back.
    #[error(
        "send queue is full: it stayed at its limit for the whole timeout and the item was \
         refused; post with a longer timeout, raise the limit, or use a discard-oldest queue"
    )]
    Full(T),
    /// The queue was closed (the channel is closing or was closed), or its
    /// consumer is gone.
    #[error(
        "send queue is closed: the channel is closing or closed, so nothing more can be posted"
    )]
    Closed(T),
    /// A non-zero tag was given to a queue that is not tagged.
    #[error(
        "this send queue is not tagged: post with tag 0, or create the queue tagged \
         to use latest-value-wins tags"
    )]
    TagUnsupported(T),
}

impl<T> PostError<T> {
    /// The item that was not queued.
    pub fn into_inner(self) -> T {
        match self {
            PostError::Full(t) | PostError::Closed(t) | PostError::TagUnsupported(t) => t,
        }
    }

    /// True for [`PostError::Closed`].
    pub fn is_closed(&self) -> bool {
        matches!(self, PostError::Closed(_))
    }
}

impl<T> fmt::Debug for PostError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Like crossbeam's `TrySendError`: no `T: Debug` bound, the item is elided.
        f.write_str(match self {
            PostError::Full(_) => "Full(..)",
            PostError::Closed(_) => "Closed(..)",
            PostError::TagUnsupported(_) => "TagUnsupported(..)",
        })
    }
}

/// Why [`ReceiveProducer::push`](super::ReceiveProducer::push) did not queue
/// an item. The item is handed back.
#[derive(thiserror::Error, PartialEq, Eq, Clone, Copy)]
pub enum PushError<T> {
    /// The receive queue was closed (or its mono consumer dropped).
    #[error("receive queue is closed: the channel is closing or its receiver is gone")]
    Closed(T),
}

impl<T> PushError<T> {
    /// The item that was not queued.
    pub fn into_inner(self) -> T {
        match self {
            PushError::Closed(t) => t,
        }
    }
}

impl<T> fmt::Debug for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Closed(..)")
    }
}

/// Why a receive returned no item.
#[derive(thiserror::Error, Debug, PartialEq, Eq, Clone, Copy)]
pub enum RecvError {
    /// Nothing arrived within the timeout (or the queue was empty on a poll).
    #[error("no message arrived within the timeout; poll again or wait longer")]
    Timeout,
    /// The queue is closed and drained: nothing more will arrive.
    #[error(
        "receive queue is closed and empty: the channel was closed, no more messages will arrive"
    )]
    Closed,
    /// [`ReceiveWaker::interrupt`](super::ReceiveWaker::interrupt) ended
    /// the wait.
    #[error("the receive was interrupted")]
    Interrupted,
}

/// An invalid queue configuration.
#[derive(thiserror::Error, Debug, PartialEq, Eq, Clone, Copy)]
pub enum QueueConfigError {
    /// A bounded kind was given capacity 0.
    #[error("a bounded queue needs a capacity of at least 1; use an unbounded kind for no limit")]
    ZeroCapacity,
    /// More than 2^32 - 1 queues on one scheduler.
    #[error("a channel holds at most 4294967295 send queues")]
    TooManyQueues,
}
