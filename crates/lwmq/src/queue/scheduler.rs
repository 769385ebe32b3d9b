//! The [`Scheduler`]: a channel's set of send queues and the policy that
//! picks which queue the sender takes from next (documented on the type).

use std::fmt;

use super::error::QueueConfigError;
use super::notify::Notify;
use super::send::{send_queue, Doorbell, Producer, Room, SendQueue};
use super::{Priority, SendQueueKind};

/// Identifies a send queue within its [`Scheduler`] (assigned in order of
/// [`Scheduler::add_queue`], from 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueId(u32);

impl QueueId {
    /// The queue's index in order of creation.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

struct Level<T> {
    queues: Vec<SendQueue<T>>,
    /// Index of the queue to try first on the next take.
    cursor: usize,
}

impl<T> Level<T> {
    fn is_empty(&self) -> bool {
        self.queues.iter().all(SendQueue::is_empty)
    }

    /// Takes one item from the first non-empty queue at or after the
    /// cursor, and moves the cursor past that queue.
    fn take_round_robin(&mut self) -> Option<T> {
        let n = self.queues.len();
        for k in 0..n {
            let i = (self.cursor + k) % n;
            if let Some(item) = self.queues[i].try_take() {
                self.cursor = (i + 1) % n;
                return Some(item);
            }
        }
        None
    }
}

const MIDDLE: std::ops::RangeInclusive<usize> = 1..=5;

/// The send queues of one channel and the order in which they are drained.
///
///
/// Policy, checked in this order on every [`Scheduler::take_next`]:
///
/// 1. [`Priority::TimeCritical`] queues, whenever any is non-empty (they
///    may starve everything else).
/// 2. The five middle priorities by *smooth weighted round-robin* over the
///    levels that currently have items, with the weights of
///    [`Priority::weight`]: Highest 16, AboveNormal 8, Normal 4,
///    BelowNormal 2, Lowest 1. Each pick adds every non-empty level's
///    weight to its credit, serves the level with the most credit (ties go
///    to the higher priority) and charges it the sum of the weights added.
///    While all five stay non-empty this is periodic with period 31: every
///    31 consecutive picks serve exactly 16/8/4/2/1 items, interleaved
///    (H A H N H A H B ...) rather than in bursts. A level that runs empty
///    loses its credit, so an idle level cannot save up a burst.
/// 3. [`Priority::Idle`] queues, only when all the others are empty.
///
/// Within a level, queues are served round-robin (one item per turn,
/// skipping empty ones); within a queue, order is always kept.
///
/// The scheduler is the single consumer of its queues: `take_next` takes
/// `&mut self`, so the channel keeps it behind its sender lock.
pub struct Scheduler<T> {
    /// Indexed by `Priority as usize`.
    levels: [Level<T>; 7],
    /// Smooth-WRR credit of each middle level, indexed by `Priority as usize`.
    credit: [i64; 7],
    /// `QueueId` → (level, index in level).
    ids: Vec<(usize, usize)>,
    doorbell: Option<Doorbell>,
    /// Posters waiting below a high-water mark, shared with the queues.
    room: Room,
    /// An item was taken since the last [`Self::wake_posters`].
    took: bool,
}

impl<T: Send> Default for Scheduler<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Send> Scheduler<T> {
    /// A scheduler with no queues and no doorbell.
    pub fn new() -> Self {
        Scheduler {
            levels: std::array::from_fn(|_| Level {
                queues: Vec::new(),
                cursor: 0,
            }),
            credit: [0; 7],
            ids: Vec::new(),
            doorbell: None,
            room: std::sync::Arc::new(Notify::new()),
            took: false,
        }
    }

    /// A scheduler whose queues call `doorbell` after every successful post
    /// (including tag replacements and discard-oldest posts), on the posting
    /// thread, after all queue locks are released.
    ///
    /// This is how the sender learns that work arrived. It must be cheap and
    /// must not post to these queues. Without a doorbell a post pays only a
    /// predictable `None` check. A typical doorbell is a [`Notify`]:
    /// `move || notify.notify_one()` costs a fence and a load unless the
    /// sender is asleep.
    ///
    /// [`Notify`]: super::Notify
    pub fn with_doorbell(doorbell: impl Fn() + Send + Sync + 'static) -> Self {
        let mut s = Self::new();
        s.doorbell = Some(std::sync::Arc::new(doorbell));
        s
    }

    /// Adds a send queue of `kind` at `priority` and returns its id and its
    /// posting handle. Queues are added before the channel opens.
    ///
    /// Fails with [`QueueConfigError::ZeroCapacity`] for a bounded kind of
    /// capacity 0.
    pub fn add_queue(
        &mut self,
        kind: SendQueueKind,
        priority: Priority,
    ) -> Result<(QueueId, Producer<T>), QueueConfigError> {
        self.add_queue_with_mark(kind, priority, None)
    }

    /// [`Self::add_queue`] with a high-water mark for an unbounded kind
    /// (ignored by bounded kinds, whose capacity applies): a post waits
    /// while `mark` items are queued, up to its timeout, then is refused.
    /// Posters are woken by [`Self::wake_posters`].
    ///
    /// Fails with [`QueueConfigError::ZeroCapacity`] for a capacity or a
    /// mark of 0.
    pub fn add_queue_with_mark(
        &mut self,
        kind: SendQueueKind,
        priority: Priority,
        mark: Option<usize>,
    ) -> Result<(QueueId, Producer<T>), QueueConfigError> {
        if kind.capacity() == Some(0) || mark == Some(0) {
            return Err(QueueConfigError::ZeroCapacity);
        }
        let Ok(id) = u32::try_from(self.ids.len()) else {
            return Err(QueueConfigError::TooManyQueues);
        };
        let id = QueueId(id);
        let (producer, queue) = send_queue(kind, self.doorbell.clone(), mark, self.room.clone());
        let level = &mut self.levels[priority as usize];
        self.ids.push((priority as usize, level.queues.len()));
        level.queues.push(queue);
        Ok((id, producer))
    }

    /// Number of queues added.
    pub fn queue_count(&self) -> usize {
        self.ids.len()
    }

    /// Takes the next item according to the policy, or `None` if every
    /// queue is empty.
    pub fn take_next(&mut self) -> Option<T> {
        let item = self.take_next_inner();
        if item.is_some() {
            self.took = true;
        }
        item
    }

    /// Wakes the posters waiting for room below a high-water mark if items
    /// were taken since the last call. The consumer calls it after a batch
    /// of takes (not after each): one fence and one load when an item was
    /// taken, nothing otherwise.
    #[inline]
    pub fn wake_posters(&mut self) {
        if std::mem::take(&mut self.took) {
            self.room.notify_all();
        }
    }

    #[inline]
    fn take_next_inner(&mut self) -> Option<T> {
        if let &[(level, index)] = self.ids.as_slice() {
            // One queue: nothing to schedule.
            return self.levels[level].queues.get_mut(index)?.try_take();
        }
        if let Some(item) = self.levels[Priority::TimeCritical as usize].take_round_robin() {
            return Some(item);
        }
        // A level chosen as non-empty normally yields an item (this is the
        // only consumer); the loop covers a queue whose length was counted
        // before its item became visible.
        for _ in MIDDLE {
            let Some(level) = self.pick_middle() else {
                break;
            };
            if let Some(item) = self.levels[level].take_round_robin() {
                return Some(item);
            }
            self.credit[level] = 0;
        }
        self.levels[Priority::Idle as usize].take_round_robin()
    }

    /// One smooth-WRR step over the non-empty middle levels.
    fn pick_middle(&mut self) -> Option<usize> {
        let mut total = 0i64;
        let mut best: Option<usize> = None;
        for level in MIDDLE {
            if self.levels[level].is_empty() {
                self.credit[level] = 0;
                continue;
            }
            let weight = i64::from(Priority::ALL[level].weight().unwrap_or(0));
            self.credit[level] += weight;
            total += weight;
            if best.is_none_or(|b| self.credit[level] > self.credit[b]) {
                best = Some(level);
            }
        }
        let best = best?;
        self.credit[best] -= total;
        Some(best)
    }

    /// True if every queue is empty. Cheap (a few loads per queue) and
    /// exact for items whose post has completed; a post in progress on
    /// another thread may or may not be seen. Use it to decide "nothing
    /// more queued: ship the buffer now", and rely on the doorbell for
    /// posts that land afterwards.
    pub fn is_empty(&self) -> bool {
        if let &[(level, index)] = self.ids.as_slice() {
            return self.levels[level]
                .queues
                .get(index)
                .is_none_or(SendQueue::is_empty);
        }
        self.levels.iter().all(Level::is_empty)
    }

    /// Total number of queued items (approximate under concurrency).
    pub fn len(&self) -> usize {
        self.levels
            .iter()
            .flat_map(|l| &l.queues)
            .map(SendQueue::len)
            .sum()
    }

    fn queue(&self, id: QueueId) -> Option<&SendQueue<T>> {
        let &(level, index) = self.ids.get(id.index())?;
        self.levels[level].queues.get(index)
    }

    /// Number of items queued in queue `id` (`None` if `id` is not from this
    /// scheduler).
    pub fn queue_len(&self, id: QueueId) -> Option<usize> {
        self.queue(id).map(SendQueue::len)
    }

    /// Number of items queue `id` discarded because it was full.
    pub fn discarded(&self, id: QueueId) -> Option<u64> {
        self.queue(id).map(SendQueue::discarded)
    }

    /// Closes queue `id` (later posts fail, queued items remain). Returns
    /// false if `id` is not from this scheduler.
    pub fn close_queue(&self, id: QueueId) -> bool {
        self.queue(id).map(SendQueue::close).is_some()
    }

    /// True if queue `id` is closed.
    pub fn is_queue_closed(&self, id: QueueId) -> Option<bool> {
        self.queue(id).map(SendQueue::is_closed)
    }

    /// Closes every queue: later posts fail with
    /// [`PostError::Closed`](super::PostError::Closed), posts waiting for
    /// room wake up and fail. Queued items stay: keep calling
    /// [`take_next`](Self::take_next) to send them (linger), or call
    /// [`drain_and_drop`](Self::drain_and_drop).
    pub fn close(&self) {
        for queue in self.levels.iter().flat_map(|l| &l.queues) {
            queue.close();
        }
        // Posters waiting below a mark see the queue closed.
        self.room.notify_all();
    }

    /// Takes and drops every queued item (one at a time, outside any
    /// lock), returning how many were dropped. Does not close the queues.
    pub fn drain_and_drop(&mut self) -> usize {
        let mut dropped = 0;
        for queue in self.levels.iter_mut().flat_map(|l| &mut l.queues) {
            while let Some(item) = queue.try_take() {
                drop(item);
                dropped += 1;
            }
        }
        dropped
    }
}

impl<T> Drop for Scheduler<T> {
    /// The consumer is gone: every queue refuses further posts, and posters
    /// waiting for room wake up and fail.
    fn drop(&mut self) {
        for queue in self.levels.iter().flat_map(|l| &l.queues) {
            queue.close();
        }
        self.room.notify_all();
    }
}

impl<T> fmt::Debug for Scheduler<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scheduler")
            .field("queues", &self.ids.len())
            .field("doorbell", &self.doorbell.is_some())
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use crate::queue::Producer;
    use crate::timeout::Timeout;

    /// No lost wake-up at a high-water mark: a poster blocked at the mark
    /// (1) is released by the consumer's take and `wake_posters`, whatever
    /// the interleaving.
    #[test]
    fn loom_a_poster_at_the_mark_is_woken() {
        loom::model(|| {
            let mut s = Scheduler::<u32>::new();
            let (_, p) = s
                .add_queue_with_mark(
                    SendQueueKind::MonoProducerUnbounded,
                    Priority::Normal,
                    Some(1),
                )
                .unwrap();
            let Producer::Mono(p) = p else {
                unreachable!("a mono kind gives a mono producer")
            };
            p.post(1, Timeout::ZERO).unwrap();
            let poster = loom::thread::spawn(move || p.post(2, Timeout::INFINITE).is_ok());
            let mut got = Vec::new();
            while got.len() < 2 {
                match s.take_next() {
                    Some(v) => got.push(v),
                    None => {
                        s.wake_posters();
                        loom::thread::yield_now();
                    }
                }
            }
            s.wake_posters();
            assert!(poster.join().unwrap());
            assert_eq!(got, [1, 2]);
        });
    }
}
