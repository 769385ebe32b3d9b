//! Send queues, their [`Scheduler`], and the receive queue of a channel.
//!
//! Building blocks for the channel layer, generic over the item type `T`
//! (the channel stores messages):
//!
//! * **Send queues**, seven kinds ([`SendQueueKind`]), posted to through a
//!   [`Producer`] and drained by the channel's sender through the
//!   [`Scheduler`], which applies the [`Priority`] policy (time-critical
//!   first, weighted round-robin 16/8/4/2/1 for the middle five, idle
//!   last; see [`Scheduler`]'s module docs).
//! * **Receive queue**, four kinds ([`ReceiveQueueKind`]), filled by the
//!   channel's receive path through a [`ReceiveProducer`] and drained by the
//!   application with a timeout.
//! * [`Notify`], the park/wake primitive the blocking operations use; the
//!   channel can reuse it for the sender's doorbell.
//!
//! One file per flavour: `mono` (SPSC block list, hand-rolled: see its
//! docs for the measurement), `unbounded` (crossbeam `SegQueue`),
//! `bounded` (crossbeam `ArrayQueue`), `tagged` (mutex + slab with
//! tombstones). `send`, `scheduler` and `receive` build the public handles
//! on top; `sync` is the std/loom switch.
//!
//! Rules every flavour keeps: the order of one queue is FIFO (per producer
//! for multi-producer queues); a failed post hands the item back; no item
//! is dropped while a lock is held (dropping may run user callbacks);
//! blocking waits park the thread (no spinning); every item is dropped
//! exactly once, whether taken, discarded, replaced by tag, or left in a
//! queue when it is dropped.

// The `pub use`s below serve lwmq's other crates through `lwmq::internals`.
#![cfg_attr(not(feature = "internals"), allow(unused_imports))]

mod bounded;
mod error;
#[allow(unsafe_code)]
mod mono;
mod notify;
mod receive;
mod scheduler;
mod send;
mod sync;
mod tagged;
mod unbounded;

pub use error::{PostError, PushError, QueueConfigError, RecvError};
pub use notify::Notify;
#[cfg(feature = "async")]
pub(crate) use notify::Registration;
pub use receive::{
    receive_queue, MonoReceiver, ReceiveConsumer, ReceiveProducer, ReceiveWaker, Receiver,
};
pub use scheduler::{QueueId, Scheduler};
pub use send::{Doorbell, MonoProducer, MultiProducer, Producer, RoomError};

/// What a bounded queue does when it stays full for a post's whole
/// timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Discard {
    /// Drops the oldest queued item (counted) and queues the new one.
    Oldest,
    /// Refuses the new item (counted as discarded).
    Newest,
    /// Refuses the new item without counting it: a high-water mark, where
    /// the poster gets the item back and decides.
    Refuse,
}

/// The kind of a send queue (`LMQ_SENDQUEUETYPE_*`). Bounded kinds carry
/// their capacity in items (at least 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SendQueueKind {
    /// One posting thread (type-enforced: [`MonoProducer`] is not `Sync`
    /// nor `Clone`); a post is a few instructions and never waits.
    MonoProducerUnbounded,
    /// Any number of posting threads; never waits.
    MultiProducerUnbounded,
    /// Like [`MultiProducerUnbounded`](Self::MultiProducerUnbounded), with
    /// "latest value wins" tags.
    MultiProducerUnboundedTagged,
    /// When full, a post waits up to its timeout for room, then drops the
    /// oldest queued item.
    MultiProducerBoundedDiscardOldest(usize),
    /// When full, a post waits up to its timeout for room, then is refused.
    MultiProducerBoundedDiscardNewest(usize),
    /// [`MultiProducerBoundedDiscardOldest`](Self::MultiProducerBoundedDiscardOldest) with tags.
    MultiProducerBoundedDiscardOldestTagged(usize),
    /// [`MultiProducerBoundedDiscardNewest`](Self::MultiProducerBoundedDiscardNewest) with tags.
    MultiProducerBoundedDiscardNewestTagged(usize),
}

impl SendQueueKind {
    /// The capacity of a bounded kind, `None` for unbounded kinds.
    pub fn capacity(self) -> Option<usize> {
        match self {
            SendQueueKind::MonoProducerUnbounded
            | SendQueueKind::MultiProducerUnbounded
            | SendQueueKind::MultiProducerUnboundedTagged => None,
            SendQueueKind::MultiProducerBoundedDiscardOldest(c)
            | SendQueueKind::MultiProducerBoundedDiscardNewest(c)
            | SendQueueKind::MultiProducerBoundedDiscardOldestTagged(c)
            | SendQueueKind::MultiProducerBoundedDiscardNewestTagged(c) => Some(c),
        }
    }

    /// True for the kinds that accept non-zero tags.
    pub fn is_tagged(self) -> bool {
        matches!(
            self,
            SendQueueKind::MultiProducerUnboundedTagged
                | SendQueueKind::MultiProducerBoundedDiscardOldestTagged(_)
                | SendQueueKind::MultiProducerBoundedDiscardNewestTagged(_)
        )
    }
}

/// The kind of a channel's receive queue (`LMQ_RECEIVEQUEUETYPE_*`).
/// Bounded kinds carry their capacity in items (at least 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReceiveQueueKind {
    /// One consumer ([`MonoReceiver`]).
    MonoConsumerUnbounded,
    /// Any number of consumers ([`Receiver`]).
    MultiConsumerUnbounded,
    /// When full, a push drops the oldest queued item.
    MultiConsumerBoundedDiscardOldest(usize),
    /// When full, a push drops the new item.
    MultiConsumerBoundedDiscardNewest(usize),
}

/// Priority of a send queue (`LMQ_SENDQUEUEPRIORITY_*`).
///
/// Ordered by importance: `Priority::TimeCritical` is the greatest and
/// `Priority::Idle` the least, so `max` picks the more urgent one. (The
/// discriminants are LwMQ's numbering, most urgent first, and play no part
/// in the order.)
///
/// ```
/// use lwmq::Priority;
/// assert_eq!(Priority::Lowest.max(Priority::Highest), Priority::Highest);
/// assert!(Priority::TimeCritical > Priority::Normal);
/// assert!(Priority::Idle < Priority::Lowest);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum Priority {
    /// Always drained first; may starve every other priority.
    TimeCritical = 0,
    /// Weighted round-robin, weight 16.
    Highest = 1,
    /// Weighted round-robin, weight 8.
    AboveNormal = 2,
    /// Weighted round-robin, weight 4.
    #[default]
    Normal = 3,
    /// Weighted round-robin, weight 2.
    BelowNormal = 4,
    /// Weighted round-robin, weight 1.
    Lowest = 5,
    /// Served only when every other queue is empty; may starve.
    Idle = 6,
}

impl Ord for Priority {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // A smaller discriminant is more urgent, hence greater.
        (*other as u8).cmp(&(*self as u8))
    }
}

impl PartialOrd for Priority {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Priority {
    /// All priorities, highest first (index = `priority as usize`).
    pub const ALL: [Priority; 7] = [
        Priority::TimeCritical,
        Priority::Highest,
        Priority::AboveNormal,
        Priority::Normal,
        Priority::BelowNormal,
        Priority::Lowest,
        Priority::Idle,
    ];

    /// Weighted-round-robin weight: while the five middle priorities all
    /// have items, out of every 31 items sent, 16 are Highest, 8
    /// AboveNormal, 4 Normal, 2 BelowNormal and 1 Lowest. `None` for
    /// TimeCritical and Idle, which are strict.
    pub const fn weight(self) -> Option<u32> {
        match self {
            Priority::TimeCritical | Priority::Idle => None,
            Priority::Highest => Some(16),
            Priority::AboveNormal => Some(8),
            Priority::Normal => Some(4),
            Priority::BelowNormal => Some(2),
            Priority::Lowest => Some(1),
        }
    }
}

/// A view of one queue's depth and discards that any thread may read at
/// any time, for statistics: loads of the queue's own counters, no lock,
/// nothing the queue's users wait for. It keeps the queue's shared part
/// alive (not its items' owner: a probe never takes or drops an item).
#[derive(Clone)]
pub struct DepthProbe(std::sync::Arc<dyn Fn() -> (usize, u64) + Send + Sync>);

impl DepthProbe {
    pub(crate) fn new(f: impl Fn() -> (usize, u64) + Send + Sync + 'static) -> Self {
        DepthProbe(std::sync::Arc::new(f))
    }

    /// Items queued now (approximate under concurrency).
    pub fn len(&self) -> usize {
        (self.0)().0
    }

    /// True if nothing is queued (approximate under concurrency).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Items the queue discarded because it was full, since it was made.
    pub fn discarded(&self) -> u64 {
        (self.0)().1
    }
}

impl std::fmt::Debug for DepthProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (len, discarded) = (self.0)();
        f.debug_struct("DepthProbe")
            .field("len", &len)
            .field("discarded", &discarded)
            .finish()
    }
}
