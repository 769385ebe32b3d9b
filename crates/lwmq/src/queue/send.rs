//! Send-queue handles: the producers the application posts through, and
//! the consumer side ([`SendQueue`]) that the [`Scheduler`] owns.
//!
//! [`Scheduler`]: super::Scheduler

use std::fmt;

use super::bounded::Bounded;
use super::error::PostError;
use super::mono;
use super::notify::Notify;
use super::sync::Arc;
use super::tagged::Tagged;
use super::unbounded::Unbounded;
use super::{Discard, SendQueueKind};
use crate::timeout::Timeout;

/// Where posters wait for room below a high-water mark: one per
/// scheduler, notified by its consumer after it took items (see
/// [`Scheduler::wake_posters`](super::Scheduler::wake_posters)).
pub(crate) type Room = std::sync::Arc<Notify>;

/// Why [`MonoProducer::wait_room`] found no room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomError {
    /// At the mark for the whole timeout.
    Full,
    /// The queue closed.
    Closed,
}

impl RoomError {
    /// The post error that hands `item` back.
    #[cold]
    pub fn with<T>(self, item: T) -> PostError<T> {
        match self {
            RoomError::Full => PostError::Full(item),
            RoomError::Closed => PostError::Closed(item),
        }
    }
}

/// Waits up to `timeout` until `below()` (the queue is under its mark) or
/// `closed()`. `Ok` when there is room.
fn wait_room<T>(
    room: &Notify,
    timeout: Timeout,
    item: T,
    below: impl Fn() -> bool,
    closed: impl Fn() -> bool,
) -> Result<T, PostError<T>> {
    if closed() {
        return Err(PostError::Closed(item));
    }
    let outcome = room.wait_for(timeout, || {
        if closed() {
            Some(false)
        } else {
            below().then_some(true)
        }
    });
    match outcome {
        Some(true) => Ok(item),
        Some(false) => Err(PostError::Closed(item)),
        None => Err(PostError::Full(item)),
    }
}

/// Hook called after every successful post (see [`Scheduler::with_doorbell`]).
///
/// [`Scheduler::with_doorbell`]: super::Scheduler::with_doorbell
// Always std's `Arc`: the hook is not part of what loom models, and loom's
// `Arc` cannot hold a trait object.
pub type Doorbell = std::sync::Arc<dyn Fn() + Send + Sync>;

#[inline]
fn ring(doorbell: &Option<Doorbell>) {
    if let Some(ring) = doorbell {
        ring();
    }
}

/// The multi-producer flavours, behind one `Arc` shared by producers and
/// the consumer.
pub(crate) enum Flavor<T> {
    Unbounded(Unbounded<T>),
    Bounded(Bounded<T>),
    Tagged(Tagged<T>),
}

pub(crate) struct MultiShared<T> {
    flavor: Flavor<T>,
    doorbell: Option<Doorbell>,
    /// The high-water mark of an unbounded flavour (the tagged one keeps
    /// its mark as its capacity).
    mark: Option<usize>,
    room: Room,
}

impl<T> MultiShared<T> {
    fn close(&self) {
        match &self.flavor {
            Flavor::Unbounded(q) => q.close(),
            Flavor::Bounded(q) => q.close(),
            Flavor::Tagged(q) => q.close(),
        }
    }

    fn is_closed(&self) -> bool {
        match &self.flavor {
            Flavor::Unbounded(q) => q.is_closed(),
            Flavor::Bounded(q) => q.is_closed(),
            Flavor::Tagged(q) => q.is_closed(),
        }
    }

    fn len(&self) -> usize {
        match &self.flavor {
            Flavor::Unbounded(q) => q.len(),
            Flavor::Bounded(q) => q.len(),
            Flavor::Tagged(q) => q.len(),
        }
    }

    fn discarded(&self) -> u64 {
        match &self.flavor {
            Flavor::Unbounded(_) => 0,
            Flavor::Bounded(q) => q.discarded(),
            Flavor::Tagged(q) => q.discarded(),
        }
    }
}

/// Creates one send queue: the producer handle and the consumer side.
///
/// `mark` (unbounded kinds only; at least 1) makes the queue block a post
/// while `mark` items are queued, up to the post's timeout, then refuse it
/// ([`PostError::Full`]); posters wait on `room`. A bounded kind ignores
/// it: its capacity and discard policy apply.
pub(crate) fn send_queue<T: Send>(
    kind: SendQueueKind,
    doorbell: Option<Doorbell>,
    mark: Option<usize>,
    room: Room,
) -> (Producer<T>, SendQueue<T>) {
    let mut unbounded_mark = None;
    let flavor = match kind {
        SendQueueKind::MonoProducerUnbounded => {
            let (producer, consumer) = mono::queue();
            return (
                Producer::Mono(MonoProducer {
                    producer,
                    doorbell,
                    mark,
                    room,
                }),
                SendQueue::Mono(consumer),
            );
        }
        SendQueueKind::MultiProducerUnbounded => {
            unbounded_mark = mark;
            Flavor::Unbounded(Unbounded::new())
        }
        SendQueueKind::MultiProducerUnboundedTagged => match mark {
            Some(cap) => Flavor::Tagged(Tagged::new(Some(cap), Discard::Refuse)),
            None => Flavor::Tagged(Tagged::new(None, Discard::Oldest)),
        },
        SendQueueKind::MultiProducerBoundedDiscardOldest(cap) => {
            Flavor::Bounded(Bounded::new(cap, Discard::Oldest))
        }
        SendQueueKind::MultiProducerBoundedDiscardNewest(cap) => {
            Flavor::Bounded(Bounded::new(cap, Discard::Newest))
        }
        SendQueueKind::MultiProducerBoundedDiscardOldestTagged(cap) => {
            Flavor::Tagged(Tagged::new(Some(cap), Discard::Oldest))
        }
        SendQueueKind::MultiProducerBoundedDiscardNewestTagged(cap) => {
            Flavor::Tagged(Tagged::new(Some(cap), Discard::Newest))
        }
    };
    let shared = Arc::new(MultiShared {
        flavor,
        doorbell,
        mark: unbounded_mark,
        room,
    });
    (
        Producer::Multi(MultiProducer {
            shared: shared.clone(),
        }),
        SendQueue::Multi(shared),
    )
}

/// Posting handle of a send queue, as returned by
/// [`Scheduler::add_queue`](super::Scheduler::add_queue).
///
/// Match on it to get the concrete handle: a [`MultiProducer`] can be
/// cloned and shared between threads, a [`MonoProducer`] cannot.
#[derive(Debug)]
pub enum Producer<T> {
    /// Handle of a [`SendQueueKind::MonoProducerUnbounded`] queue.
    Mono(MonoProducer<T>),
    /// Handle of any multi-producer kind.
    Multi(MultiProducer<T>),
}

impl<T> Producer<T> {
    /// Posts `item` without a tag; see [`MultiProducer::post`] and
    /// [`MonoProducer::post`].
    pub fn post(&self, item: T, timeout: Timeout) -> Result<(), PostError<T>> {
        match self {
            Producer::Mono(p) => p.post(item, timeout),
            Producer::Multi(p) => p.post(item, timeout),
        }
    }

    /// Posts `item` with `tag`; see [`MultiProducer::post_tagged`]. A
    /// non-zero tag on an untagged queue fails with
    /// [`PostError::TagUnsupported`].
    pub fn post_tagged(&self, item: T, tag: u64, timeout: Timeout) -> Result<(), PostError<T>> {
        match self {
            Producer::Mono(p) if tag == 0 => p.post(item, timeout),
            Producer::Mono(_) => Err(PostError::TagUnsupported(item)),
            Producer::Multi(p) => p.post_tagged(item, tag, timeout),
        }
    }

    /// Number of items queued (approximate under concurrency).
    pub fn len(&self) -> usize {
        match self {
            Producer::Mono(p) => p.len(),
            Producer::Multi(p) => p.len(),
        }
    }

    /// True if nothing is queued (approximate under concurrency).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of items this queue has discarded because it was full.
    pub fn discarded(&self) -> u64 {
        match self {
            Producer::Mono(_) => 0,
            Producer::Multi(p) => p.discarded(),
        }
    }

    /// A view of this queue's depth and discards for statistics, readable
    /// from any thread without a lock.
    pub fn probe(&self) -> super::DepthProbe
    where
        T: Send + 'static,
    {
        match self {
            Producer::Mono(p) => p.producer.probe(),
            Producer::Multi(p) => {
                let shared = Arc::clone(&p.shared);
                super::DepthProbe::new(move || (shared.len(), shared.discarded()))
            }
        }
    }

    /// Closes the queue: later posts fail with [`PostError::Closed`];
    /// queued items stay for the consumer to drain.
    pub fn close(&self) {
        match self {
            Producer::Mono(p) => p.close(),
            Producer::Multi(p) => p.close(),
        }
    }
}

/// Posting handle of a mono-producer unbounded queue.
///
/// `Send` but neither `Sync` nor `Clone`: one thread posts at a time, which
/// is what lets a post be a slot write and a release store (no locked
/// instruction). Move it to another thread if needed.
///
/// ```compile_fail
/// fn shared_between_threads<T: Sync>() {}
/// shared_between_threads::<lwmq::queue::MonoProducer<u32>>();
/// ```
///
/// ```compile_fail
/// fn cloned<T: Clone>() {}
/// cloned::<lwmq::queue::MonoProducer<u32>>();
/// ```
pub struct MonoProducer<T> {
    producer: mono::Producer<T>,
    doorbell: Option<Doorbell>,
    mark: Option<usize>,
    room: Room,
}

impl<T> MonoProducer<T> {
    /// Appends `item`. Without a high-water mark it never waits and fails
    /// only if the queue is closed (or its scheduler dropped). With one, it
    /// first waits up to `timeout` while the mark is reached
    /// ([`Self::wait_room`]). Failures hand the item back.
    #[inline]
    pub fn post(&self, item: T, timeout: Timeout) -> Result<(), PostError<T>> {
        if let Err(e) = self.wait_room(timeout) {
            return Err(e.with(item));
        }
        self.push(item)
    }

    /// Appends `item` without looking at the high-water mark: for a caller
    /// that checked it with [`Self::wait_room`] (only this producer adds
    /// items, so the queue is still below it). Never waits.
    #[inline(always)]
    pub fn push(&self, item: T) -> Result<(), PostError<T>> {
        self.producer.push(item).map_err(PostError::Closed)?;
        ring(&self.doorbell);
        Ok(())
    }

    /// Returns once the queue is below its high-water mark (at once
    /// without a mark), waiting up to `timeout` for the consumer to take
    /// items: [`RoomError::Full`] if it does not, [`RoomError::Closed`] if
    /// the queue closes. A post after this cannot pass the mark: only this
    /// producer adds items. Takes no item, so that a caller's item is not
    /// moved on the common path. `Ok(true)` if it found the queue at the
    /// mark (and waited, or took the room that came).
    #[inline]
    pub fn wait_room(&self, timeout: Timeout) -> Result<bool, RoomError> {
        match self.mark {
            Some(mark) if !self.producer.below(mark) => {
                self.wait_room_slow(timeout, mark).map(|()| true)
            }
            _ => Ok(false),
        }
    }

    #[cold]
    fn wait_room_slow(&self, timeout: Timeout, mark: usize) -> Result<(), RoomError> {
        wait_room(
            &self.room,
            timeout,
            (),
            || self.producer.below(mark),
            || self.producer.is_closed(),
        )
        .map_err(|e| match e {
            PostError::Closed(()) => RoomError::Closed,
            _ => RoomError::Full,
        })
    }

    /// The high-water mark, `None` if unbounded.
    pub fn mark(&self) -> Option<usize> {
        self.mark
    }

    /// True if a post would not wait: no mark, below it, or closed.
    #[cfg_attr(not(feature = "async"), allow(dead_code))]
    pub(crate) fn has_room(&self) -> bool {
        self.mark.is_none_or(|mark| self.producer.below(mark)) || self.producer.is_closed()
    }

    /// Where posters wait for room (woken when the consumer takes items
    /// and when the queue closes); shared with the scheduler.
    #[cfg_attr(not(feature = "async"), allow(dead_code))]
    pub(crate) fn room(&self) -> &Room {
        &self.room
    }

    /// Number of items queued.
    pub fn len(&self) -> usize {
        self.producer.len()
    }

    /// True if nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Closes the queue: later posts fail with [`PostError::Closed`].
    pub fn close(&self) {
        self.producer.close();
    }

    /// True once the queue is closed.
    pub fn is_closed(&self) -> bool {
        self.producer.is_closed()
    }
}

impl<T> fmt::Debug for MonoProducer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MonoProducer")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

/// Posting handle of a multi-producer queue: `Clone`, `Send` and `Sync`.
pub struct MultiProducer<T> {
    shared: Arc<MultiShared<T>>,
}

impl<T> Clone for MultiProducer<T> {
    fn clone(&self) -> Self {
        MultiProducer {
            shared: self.shared.clone(),
        }
    }
}

impl<T> MultiProducer<T> {
    /// Posts `item` without a tag (same as `post_tagged(item, 0, timeout)`).
    #[inline]
    pub fn post(&self, item: T, timeout: Timeout) -> Result<(), PostError<T>> {
        self.post_tagged(item, 0, timeout)
    }

    /// Posts `item`.
    ///
    /// * `tag`: on a tagged queue, a non-zero tag first removes the queued
    ///   item with the same tag, if the consumer has not taken it yet
    ///   ("latest value wins"); the new item goes to the tail. The removed
    ///   item is dropped on this thread after all locks are released.
    ///   0 means no tag. A non-zero tag on an untagged queue fails with
    ///   [`PostError::TagUnsupported`].
    /// * `timeout`: only bounded queues wait. When full, the post sleeps up
    ///   to `timeout` for the consumer to make room; if still full,
    ///   discard-oldest drops the oldest queued item (counted in
    ///   [`discarded`](Self::discarded), dropped on this thread outside any
    ///   lock) and queues `item`, while discard-newest refuses `item`
    ///   (counted) with [`PostError::Full`] (zero timeout) or
    ///   [`PostError::Timeout`].
    ///
    /// Fails with [`PostError::Closed`] once the queue is closed. On
    /// success the scheduler's doorbell, if any, is rung.
    pub fn post_tagged(&self, item: T, tag: u64, timeout: Timeout) -> Result<(), PostError<T>> {
        let shared = &*self.shared;
        match &shared.flavor {
            Flavor::Tagged(q) => q.post(item, tag, timeout)?,
            _ if tag != 0 => return Err(PostError::TagUnsupported(item)),
            Flavor::Unbounded(q) => {
                let item = match shared.mark {
                    Some(mark) if q.len() >= mark => wait_room(
                        &shared.room,
                        timeout,
                        item,
                        || q.len() < mark,
                        || q.is_closed(),
                    )?,
                    _ => item,
                };
                q.push(item).map_err(PostError::Closed)?
            }
            Flavor::Bounded(q) => q.post(item, timeout)?,
        }
        ring(&self.shared.doorbell);
        Ok(())
    }

    /// Posts `item` if the queue is below its limit, never waiting and
    /// never discarding: [`PostError::Full`] at the limit (a high-water
    /// mark or a capacity, whatever the discard policy; not counted as a
    /// discard). Tags as [`Self::post_tagged`]. For async posters, which
    /// wait on [`Self::room`] instead.
    #[cfg_attr(not(feature = "async"), allow(dead_code))]
    pub(crate) fn try_post_below_limit(&self, item: T, tag: u64) -> Result<(), PostError<T>> {
        let shared = &*self.shared;
        match &shared.flavor {
            Flavor::Tagged(q) => q.try_post(item, tag)?,
            _ if tag != 0 => return Err(PostError::TagUnsupported(item)),
            Flavor::Unbounded(q) => match shared.mark {
                Some(mark) if q.len() >= mark && !q.is_closed() => {
                    return Err(PostError::Full(item))
                }
                _ => q.push(item).map_err(PostError::Closed)?,
            },
            Flavor::Bounded(q) => q.try_push(item)?,
        }
        ring(&self.shared.doorbell);
        Ok(())
    }

    /// True if a post would not wait: below the limit, or closed.
    #[cfg_attr(not(feature = "async"), allow(dead_code))]
    pub(crate) fn has_room(&self) -> bool {
        let shared = &*self.shared;
        match &shared.flavor {
            Flavor::Tagged(q) => q.has_room(),
            Flavor::Bounded(q) => q.has_room(),
            Flavor::Unbounded(q) => shared.mark.is_none_or(|mark| q.len() < mark) || q.is_closed(),
        }
    }

    /// Where posters wait for room.
    #[cfg_attr(not(feature = "async"), allow(dead_code))]
    pub(crate) fn room(&self) -> &Notify {
        let shared = &*self.shared;
        match &shared.flavor {
            Flavor::Tagged(q) => q.room(),
            Flavor::Bounded(q) => q.room(),
            Flavor::Unbounded(_) => &shared.room,
        }
    }

    /// Number of items queued (approximate under concurrency).
    pub fn len(&self) -> usize {
        self.shared.len()
    }

    /// True if nothing is queued (approximate under concurrency).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of items discarded because the queue was full (both policies).
    /// Tag replacements are not discards and are not counted.
    pub fn discarded(&self) -> u64 {
        self.shared.discarded()
    }

    /// The high-water mark given at creation, `None` if there is none.
    pub fn mark(&self) -> Option<usize> {
        match &self.shared.flavor {
            Flavor::Tagged(q) if q.refuses() => q.capacity(),
            _ => self.shared.mark,
        }
    }

    /// Closes the queue: later posts fail with [`PostError::Closed`] and
    /// posts waiting for room wake up and fail. A post racing with `close`
    /// on an unbounded queue may still be accepted.
    pub fn close(&self) {
        self.shared.close();
    }

    /// True once the queue is closed.
    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }
}

impl<T> fmt::Debug for MultiProducer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MultiProducer")
            .field("len", &self.len())
            .field("discarded", &self.discarded())
            .finish_non_exhaustive()
    }
}

/// Consumer side of one send queue (owned by the scheduler, which is the
/// single consumer: `try_take` needs `&mut self`).
pub(crate) enum SendQueue<T> {
    Mono(mono::Consumer<T>),
    Multi(Arc<MultiShared<T>>),
}

impl<T> SendQueue<T> {
    #[inline]
    pub(crate) fn try_take(&mut self) -> Option<T> {
        match self {
            SendQueue::Mono(c) => c.pop(),
            SendQueue::Multi(s) => match &s.flavor {
                Flavor::Unbounded(q) => q.pop(),
                Flavor::Bounded(q) => q.pop(),
                Flavor::Tagged(q) => q.pop(),
            },
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            SendQueue::Mono(c) => c.len(),
            SendQueue::Multi(s) => s.len(),
        }
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        match self {
            SendQueue::Mono(c) => c.is_empty(),
            SendQueue::Multi(s) => s.len() == 0,
        }
    }

    pub(crate) fn discarded(&self) -> u64 {
        match self {
            SendQueue::Mono(_) => 0,
            SendQueue::Multi(s) => s.discarded(),
        }
    }

    pub(crate) fn close(&self) {
        match self {
            SendQueue::Mono(c) => c.close(),
            SendQueue::Multi(s) => s.close(),
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        match self {
            SendQueue::Mono(c) => c.is_closed(),
            SendQueue::Multi(s) => s.is_closed(),
        }
    }
}

impl<T> Drop for SendQueue<T> {
    /// The consumer is gone: refuse further posts and wake waiting posters.
    fn drop(&mut self) {
        self.close();
    }
}
