//! Error types, one per operation. A failed post or push hands the item back.

use std::fmt;

/// Why [`post`](super::Producer::post) did not queue an item. The item is
/// handed back in every variant; get it with [`PostError::into_inner`].
#[derive(thiserror::Error, PartialEq, Eq, Clone, Copy)]
pub enum PostError<T> {
    /// A bounded discard-newest queue was full and the timeout was zero.
    /// The item was refused (and counted in `discarded()`).
    #[error(
        "send queue is full: the item was refused; post with a non-zero timeout to wait for room, \
         enlarge the queue, or use a discard-oldest queue"
    )]
    Full(T),
    /// A bounded discard-newest queue stayed full for the whole timeout. The
    /// item was refused (and counted in `discarded()`).
    #[error(
        "send queue stayed full for the whole timeout: the item was refused; the peer is not \
         draining fast enough, so wait longer, enlarge the queue, or use a discard-oldest queue"
    )]
    Timeout(T),
    /// The queue was closed (the channel is closing or was closed), or its
    /// consumer is gone.
    #[error(
        "send queue is closed: the channel is closing or closed, so nothing more can be posted"
    )]
    Closed(T),
    /// A non-zero tag was given to a queue that is not tagged.
    #[error(
        "this send queue is not tagged: post with tag 0, or add the queue with a *Tagged kind \
         to use latest-value-wins tags"
    )]
    TagUnsupported(T),
}

impl<T> PostError<T> {
    /// A full discard-newest queue's refusal of `item`: `Full` if the post
    /// did not wait, `Timeout` if it waited in vain.
    pub(crate) fn refused_newest(item: T, timeout: crate::timeout::Timeout) -> Self {
        if timeout.is_zero() {
            PostError::Full(item)
        } else {
            PostError::Timeout(item)
        }
    }

    /// The item that was not queued.
    pub fn into_inner(self) -> T {
        match self {
            PostError::Full(t)
            | PostError::Timeout(t)
            | PostError::Closed(t)
            | PostError::TagUnsupported(t) => t,
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
            PostError::Timeout(_) => "Timeout(..)",
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
}

/// An invalid queue configuration.
#[derive(thiserror::Error, Debug, PartialEq, Eq, Clone, Copy)]
pub enum QueueConfigError {
    /// A bounded kind was given capacity 0.
    #[error("a bounded queue needs a capacity of at least 1; use an unbounded kind for no limit")]
    ZeroCapacity,
}
