//! The receive queue: one per channel, filled by the channel's receive
//! path, drained by the application.
//!
//! * Producer ([`ReceiveProducer`]): one at a time (`Send`, not `Sync`, not
//!   `Clone`; put it behind the receive path's lock if several transports
//!   feed it). `push` never blocks: bounded kinds discard the oldest or the
//!   newest item when full, count it, and drop it on the pushing thread
//!   with no lock held. Dropping the producer closes the queue.
//! * Consumers: [`MonoReceiver`] (the one consumer; `receive` takes
//!   `&mut self`, not `Clone`) or [`Receiver`] (`Clone + Send + Sync`, any
//!   number of threads). A receive with a non-zero timeout parks the thread
//!   on a [`Notify`]: it uses no CPU, and a push or `close` wakes it. A push
//!   with nobody asleep costs a fence and a load, no syscall.
//! * Storage: the mono-consumer kind uses the same SPSC block list as the
//!   mono-producer send queue; multi-consumer kinds use crossbeam's
//!   `SegQueue` (unbounded) or `ArrayQueue` (bounded, `force_push` for
//!   discard-oldest).

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;

use crossbeam_queue::{ArrayQueue, SegQueue};

use super::error::{PushError, QueueConfigError, RecvError};
use super::mono;
use super::notify::Notify;
use super::sync::{Arc, AtomicBool, AtomicU64, Ordering};
use super::{Discard, ReceiveQueueKind};
use crate::timeout::Timeout;

/// State every flavour shares between its two ends.
#[derive(Default)]
struct Common {
    /// Receivers sleeping for an item, for `close` or for an interrupt.
    notify: Notify,
    discarded: AtomicU64,
    /// Used by the multi-consumer kinds (the mono kind has its own flag).
    closed: AtomicBool,
    /// Set by [`ReceiveWaker::interrupt`], cleared by the receive it ends.
    interrupted: AtomicBool,
}

impl Common {
    /// Takes a pending interrupt: true once per [`ReceiveWaker::interrupt`].
    #[inline]
    fn take_interrupt(&self) -> bool {
        self.interrupted.load(Ordering::Relaxed) && self.interrupted.swap(false, Ordering::AcqRel)
    }
}

/// Ends a receive that waits on a receive queue, from any thread: the
/// interrupted receive (or, if none waits, the next one) returns
/// [`RecvError::Interrupted`]. `Clone + Send + Sync`.
#[derive(Clone)]
pub struct ReceiveWaker(Arc<Common>);

impl ReceiveWaker {
    /// Interrupts one receive: the one waiting now, or the next one.
    pub fn interrupt(&self) {
        self.0.interrupted.store(true, Ordering::SeqCst);
        self.0.notify.notify_all();
    }
}

impl fmt::Debug for ReceiveWaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceiveWaker")
            .field("interrupted", &self.0.interrupted.load(Ordering::Relaxed))
            .finish()
    }
}

enum Store<T> {
    Unbounded(SegQueue<T>),
    Bounded(ArrayQueue<T>, Discard),
}

struct MultiShared<T> {
    common: Arc<Common>,
    store: Store<T>,
}

impl<T> MultiShared<T> {
    fn pop(&self) -> Option<T> {
        match &self.store {
            Store::Unbounded(q) => q.pop(),
            Store::Bounded(q, _) => q.pop(),
        }
    }

    fn len(&self) -> usize {
        match &self.store {
            Store::Unbounded(q) => q.len(),
            Store::Bounded(q, _) => q.len(),
        }
    }

    fn close(&self) {
        self.common.closed.store(true, Ordering::Release);
        self.common.notify.notify_all();
    }
}

/// Creates a receive queue of `kind`: its producer and its consumer.
///
/// Fails with [`QueueConfigError::ZeroCapacity`] for a bounded kind of
/// capacity 0.
pub fn receive_queue<T: Send>(
    kind: ReceiveQueueKind,
) -> Result<(ReceiveProducer<T>, ReceiveConsumer<T>), QueueConfigError> {
    let store = match kind {
        ReceiveQueueKind::MonoConsumerUnbounded => {
            let (producer, consumer) = mono::queue();
            let common = Arc::new(Common::default());
            return Ok((
                ReceiveProducer {
                    inner: ProducerInner::Mono(producer, common.clone()),
                    _not_sync: PhantomData,
                },
                ReceiveConsumer::Mono(MonoReceiver { consumer, common }),
            ));
        }
        ReceiveQueueKind::MultiConsumerUnbounded => Store::Unbounded(SegQueue::new()),
        ReceiveQueueKind::MultiConsumerBoundedDiscardOldest(0)
        | ReceiveQueueKind::MultiConsumerBoundedDiscardNewest(0) => {
            return Err(QueueConfigError::ZeroCapacity)
        }
        ReceiveQueueKind::MultiConsumerBoundedDiscardOldest(cap) => {
            Store::Bounded(ArrayQueue::new(cap), Discard::Oldest)
        }
        ReceiveQueueKind::MultiConsumerBoundedDiscardNewest(cap) => {
            Store::Bounded(ArrayQueue::new(cap), Discard::Newest)
        }
    };
    let shared = Arc::new(MultiShared {
        common: Arc::new(Common::default()),
        store,
    });
    Ok((
        ReceiveProducer {
            inner: ProducerInner::Multi(shared.clone()),
            _not_sync: PhantomData,
        },
        ReceiveConsumer::Multi(Receiver { shared }),
    ))
}

enum ProducerInner<T> {
    Mono(mono::Producer<T>, Arc<Common>),
    Multi(Arc<MultiShared<T>>),
}

/// The filling end of a receive queue (the channel's receive path).
///
/// `Send`, not `Sync`, not `Clone`: one producer at a time. Dropping it
/// closes the queue (receivers get the remaining items, then
/// [`RecvError::Closed`]).
///
/// ```compile_fail
/// fn shared_between_threads<T: Sync>() {}
/// shared_between_threads::<lwmq::queue::ReceiveProducer<u32>>();
/// ```
pub struct ReceiveProducer<T> {
    inner: ProducerInner<T>,
    _not_sync: PhantomData<Cell<()>>,
}

impl<T> ReceiveProducer<T> {
    /// Appends `item` and wakes one sleeping receiver, if any. Never blocks.
    ///
    /// When a bounded queue is full, discard-oldest drops the oldest item
    /// and queues `item`; discard-newest drops `item`. Either way the
    /// discard is counted and the dropped item is dropped here, with no lock
    /// held. Fails only when the queue is closed, handing `item` back.
    pub fn push(&self, item: T) -> Result<(), PushError<T>> {
        self.push_quiet(item)?;
        self.common().notify.notify_one();
        Ok(())
    }

    /// Appends every item of `items` as [`push`](Self::push) does (same
    /// discard rules), then wakes sleeping receivers once: one fence and
    /// one load for the whole batch instead of one per item. Items after
    /// the queue was found closed are dropped. Returns how many were queued
    /// or counted as discarded.
    pub fn push_batch(&self, items: impl IntoIterator<Item = T>) -> usize {
        let mut n = 0;
        for item in items {
            if self.push_quiet(item).is_err() {
                break;
            }
            n += 1;
        }
        if n > 0 {
            // Several receivers may share a multi-consumer queue.
            self.common().notify.notify_all();
        }
        n
    }

    fn common(&self) -> &Common {
        match &self.inner {
            ProducerInner::Mono(_, common) => common,
            ProducerInner::Multi(shared) => &shared.common,
        }
    }

    /// `push` without the wake-up.
    #[inline]
    fn push_quiet(&self, item: T) -> Result<(), PushError<T>> {
        match &self.inner {
            ProducerInner::Mono(producer, _) => {
                producer.push(item).map_err(PushError::Closed)?;
            }
            ProducerInner::Multi(shared) => {
                let common = &shared.common;
                if common.closed.load(Ordering::Relaxed) {
                    return Err(PushError::Closed(item));
                }
                match &shared.store {
                    Store::Unbounded(q) => q.push(item),
                    Store::Bounded(q, Discard::Oldest) => {
                        if let Some(oldest) = q.force_push(item) {
                            common.discarded.fetch_add(1, Ordering::Relaxed);
                            drop(oldest);
                        }
                    }
                    Store::Bounded(q, Discard::Newest | Discard::Refuse) => {
                        if let Err(newest) = q.push(item) {
                            common.discarded.fetch_add(1, Ordering::Relaxed);
                            drop(newest);
                            return Ok(());
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Number of queued items (approximate under concurrency).
    pub fn len(&self) -> usize {
        match &self.inner {
            ProducerInner::Mono(p, _) => p.len(),
            ProducerInner::Multi(s) => s.len(),
        }
    }

    /// True if nothing is queued (approximate under concurrency).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of items discarded because the queue was full.
    pub fn discarded(&self) -> u64 {
        match &self.inner {
            ProducerInner::Mono(..) => 0,
            ProducerInner::Multi(s) => s.common.discarded.load(Ordering::Relaxed),
        }
    }

    /// A view of this queue's depth and discards for statistics, readable
    /// from any thread without a lock (the producer itself may sit behind
    /// the receive path's mutex).
    pub fn probe(&self) -> super::DepthProbe
    where
        T: Send + 'static,
    {
        match &self.inner {
            ProducerInner::Mono(p, _) => p.probe(),
            ProducerInner::Multi(s) => {
                let shared = Arc::clone(s);
                super::DepthProbe::new(move || {
                    (
                        shared.len(),
                        shared.common.discarded.load(Ordering::Relaxed),
                    )
                })
            }
        }
    }

    /// Closes the queue: later pushes fail; receivers drain what is queued,
    /// then get [`RecvError::Closed`]; sleeping receivers wake up.
    pub fn close(&self) {
        match &self.inner {
            ProducerInner::Mono(p, common) => {
                p.close();
                common.notify.notify_all();
            }
            ProducerInner::Multi(s) => s.close(),
        }
    }
}

impl<T> Drop for ReceiveProducer<T> {
    fn drop(&mut self) {
        self.close();
    }
}

impl<T> fmt::Debug for ReceiveProducer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceiveProducer")
            .field("len", &self.len())
            .field("discarded", &self.discarded())
            .finish_non_exhaustive()
    }
}

/// The draining end of a receive queue, as created by [`receive_queue`].
#[derive(Debug)]
pub enum ReceiveConsumer<T> {
    /// For [`ReceiveQueueKind::MonoConsumerUnbounded`].
    Mono(MonoReceiver<T>),
    /// For the multi-consumer kinds.
    Multi(Receiver<T>),
}

impl<T> ReceiveConsumer<T> {
    /// Waits up to `timeout` for an item; see [`Receiver::receive`].
    #[inline]
    pub fn receive(&mut self, timeout: Timeout) -> Result<T, RecvError> {
        match self {
            ReceiveConsumer::Mono(r) => r.receive(timeout),
            ReceiveConsumer::Multi(r) => r.receive(timeout),
        }
    }

    /// Number of queued items (approximate under concurrency).
    pub fn len(&self) -> usize {
        match self {
            ReceiveConsumer::Mono(r) => r.len(),
            ReceiveConsumer::Multi(r) => r.len(),
        }
    }

    /// True if nothing is queued (approximate under concurrency).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of items discarded because the queue was full.
    pub fn discarded(&self) -> u64 {
        match self {
            ReceiveConsumer::Mono(_) => 0,
            ReceiveConsumer::Multi(r) => r.discarded(),
        }
    }

    /// Closes the queue; see [`Receiver::close`].
    pub fn close(&self) {
        match self {
            ReceiveConsumer::Mono(r) => r.close(),
            ReceiveConsumer::Multi(r) => r.close(),
        }
    }

    /// A handle that interrupts this queue's receives from any thread.
    pub fn waker(&self) -> ReceiveWaker {
        match self {
            ReceiveConsumer::Mono(r) => ReceiveWaker(r.common.clone()),
            ReceiveConsumer::Multi(r) => r.waker(),
        }
    }

    /// Takes a pending interrupt (true once per
    /// [`ReceiveWaker::interrupt`]), for a caller that waits elsewhere.
    #[inline]
    pub fn take_interrupt(&self) -> bool {
        match self {
            ReceiveConsumer::Mono(r) => r.common.take_interrupt(),
            ReceiveConsumer::Multi(r) => r.shared.common.take_interrupt(),
        }
    }
}

/// The single consumer of a mono-consumer receive queue. Not `Clone`;
/// `receive` takes `&mut self`. Dropping it closes the queue.
///
/// ```compile_fail
/// fn cloned<T: Clone>() {}
/// cloned::<lwmq::queue::MonoReceiver<u32>>();
/// ```
pub struct MonoReceiver<T> {
    consumer: mono::Consumer<T>,
    common: Arc<Common>,
}

impl<T> MonoReceiver<T> {
    /// Takes the oldest item, waiting up to `timeout` for one
    /// ([`Timeout::ZERO`] polls, [`Timeout::INFINITE`] waits until an item
    /// or `close`). Queued items are still returned after `close`; then
    /// [`RecvError::Closed`].
    #[inline]
    pub fn receive(&mut self, timeout: Timeout) -> Result<T, RecvError> {
        // The common case first, without the waiting machinery.
        if let Some(item) = self.consumer.pop() {
            return Ok(item);
        }
        if timeout.is_zero() && !self.consumer.is_closed() {
            return Err(RecvError::Timeout);
        }
        self.receive_slow(timeout)
    }

    fn receive_slow(&mut self, timeout: Timeout) -> Result<T, RecvError> {
        let consumer = &mut self.consumer;
        let common = &*self.common;
        common
            .notify
            .wait_for(timeout, || match consumer.pop() {
                Some(item) => Some(Ok(item)),
                // `close` follows the producer's last push, so once closed
                // is seen, one more pop sees everything.
                None if consumer.is_closed() => Some(consumer.pop().ok_or(RecvError::Closed)),
                None if common.take_interrupt() => Some(Err(RecvError::Interrupted)),
                None => None,
            })
            .unwrap_or(Err(RecvError::Timeout))
    }

    /// Number of queued items.
    pub fn len(&self) -> usize {
        self.consumer.len()
    }

    /// True if nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.consumer.is_empty()
    }

    /// Closes the queue: later pushes fail; queued items can still be received.
    pub fn close(&self) {
        self.consumer.close();
        self.common.notify.notify_all();
    }
}

impl<T> Drop for MonoReceiver<T> {
    fn drop(&mut self) {
        self.consumer.close();
    }
}

impl<T> fmt::Debug for MonoReceiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MonoReceiver")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

/// A consumer of a multi-consumer receive queue: `Clone + Send + Sync`.
pub struct Receiver<T> {
    shared: Arc<MultiShared<T>>,
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        Receiver {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Receiver<T> {
    /// Takes the oldest item, waiting up to `timeout` for one
    /// ([`Timeout::ZERO`] polls, [`Timeout::INFINITE`] waits until an item
    /// or `close`). Each push wakes one sleeping receiver. Queued items are
    /// still returned after `close`; then [`RecvError::Closed`].
    pub fn receive(&self, timeout: Timeout) -> Result<T, RecvError> {
        let shared = &*self.shared;
        if let Some(item) = shared.pop() {
            return Ok(item);
        }
        if timeout.is_zero() {
            // A poll: no wait to interrupt, so a pending interrupt stays.
            return match shared.common.closed.load(Ordering::Acquire) {
                true => shared.pop().ok_or(RecvError::Closed),
                false => Err(RecvError::Timeout),
            };
        }
        shared
            .common
            .notify
            .wait_for(timeout, || match shared.pop() {
                Some(item) => Some(Ok(item)),
                None if shared.common.closed.load(Ordering::Acquire) => {
                    Some(shared.pop().ok_or(RecvError::Closed))
                }
                None if shared.common.take_interrupt() => Some(Err(RecvError::Interrupted)),
                None => None,
            })
            .unwrap_or(Err(RecvError::Timeout))
    }

    /// A handle that interrupts this queue's receives from any thread.
    pub fn waker(&self) -> ReceiveWaker {
        ReceiveWaker(self.shared.common.clone())
    }

    /// Takes a pending interrupt (see [`ReceiveConsumer::take_interrupt`]).
    pub fn take_interrupt(&self) -> bool {
        self.shared.common.take_interrupt()
    }

    /// Number of queued items (approximate under concurrency).
    pub fn len(&self) -> usize {
        self.shared.len()
    }

    /// True if nothing is queued (approximate under concurrency).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of items discarded because the queue was full.
    pub fn discarded(&self) -> u64 {
        self.shared.common.discarded.load(Ordering::Relaxed)
    }

    /// Closes the queue: later pushes fail; every sleeping receiver wakes;
    /// queued items can still be received.
    pub fn close(&self) {
        self.shared.close();
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("len", &self.len())
            .field("discarded", &self.discarded())
            .finish_non_exhaustive()
    }
}
