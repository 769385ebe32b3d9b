//! Multi-producer bounded flavour (untagged): crossbeam's `ArrayQueue`, a
//! discard policy, and a [`Notify`] on which full posters wait for room.
//!
//! A post first tries to push; if the queue is full and the timeout is not
//! zero it sleeps until the consumer takes an item (each take notifies one
//! waiting poster) or the queue closes. Still full after the timeout:
//! discard-oldest replaces the oldest item (`ArrayQueue::force_push`) and
//! drops it on the posting thread, outside any lock; discard-newest refuses
//! the new item and hands it back. Both count a discard.

use crossbeam_queue::ArrayQueue;

use super::error::PostError;
use super::notify::Notify;
use super::sync::{AtomicBool, AtomicU64, Ordering};
use super::Discard;
use crate::timeout::Timeout;

pub(crate) struct Bounded<T> {
    queue: ArrayQueue<T>,
    policy: Discard,
    closed: AtomicBool,
    discarded: AtomicU64,
    room: Notify,
}

impl<T> Bounded<T> {
    /// `capacity` must be non-zero (checked by the caller).
    pub(crate) fn new(capacity: usize, policy: Discard) -> Self {
        Bounded {
            queue: ArrayQueue::new(capacity),
            policy,
            closed: AtomicBool::new(false),
            discarded: AtomicU64::new(0),
            room: Notify::new(),
        }
    }

    pub(crate) fn post(&self, item: T, timeout: Timeout) -> Result<(), PostError<T>> {
        let item = match self.try_push(item) {
            Err(PostError::Full(item)) => item,
            other => return other,
        };
        let item = if timeout.is_zero() {
            item
        } else {
            let mut pending = Some(item);
            let outcome = self.room.wait_for(timeout, || {
                let item = pending.take()?;
                if self.is_closed() {
                    return Some(Err(PostError::Closed(item)));
                }
                match self.queue.push(item) {
                    Ok(()) => Some(Ok(())),
                    Err(item) => {
                        pending = Some(item);
                        None
                    }
                }
            });
            match (outcome, pending) {
                (Some(result), _) => return result,
                (None, Some(item)) => item,
                (None, None) => unreachable!("a failed attempt always puts the item back"),
            }
        };
        match self.policy {
            Discard::Oldest => {
                if let Some(oldest) = self.queue.force_push(item) {
                    self.discarded.fetch_add(1, Ordering::Relaxed);
                    drop(oldest); // no lock held here
                }
                Ok(())
            }
            Discard::Newest => {
                self.discarded.fetch_add(1, Ordering::Relaxed);
                Err(PostError::Full(item))
            }
            Discard::Refuse => Err(PostError::Full(item)),
        }
    }

    /// Queues `item` if there is room, never discarding: `Full` hands it
    /// back at capacity (not counted as a discard).
    pub(crate) fn try_push(&self, item: T) -> Result<(), PostError<T>> {
        if self.is_closed() {
            return Err(PostError::Closed(item));
        }
        self.queue.push(item).map_err(PostError::Full)
    }

    /// True if a post would not wait: below capacity, or closed.
    #[cfg_attr(not(feature = "async"), allow(dead_code))]
    pub(crate) fn has_room(&self) -> bool {
        self.queue.len() < self.queue.capacity() || self.is_closed()
    }

    /// Where posters wait for room.
    #[cfg_attr(not(feature = "async"), allow(dead_code))]
    pub(crate) fn room(&self) -> &Notify {
        &self.room
    }

    #[inline]
    pub(crate) fn pop(&self) -> Option<T> {
        let item = self.queue.pop();
        if item.is_some() {
            self.room.notify_one();
        }
        item
    }

    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    pub(crate) fn discarded(&self) -> u64 {
        self.discarded.load(Ordering::Relaxed)
    }

    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.room.notify_all();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}
