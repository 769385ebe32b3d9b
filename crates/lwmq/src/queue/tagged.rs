//! Tagged flavour (unbounded or bounded): "latest value wins" per tag.
//!
//! A `Mutex` around a `VecDeque` of slots with tombstones plus a
//! `HashMap<tag, sequence number>`. Replacing a tagged item turns its slot
//! into a tombstone (O(1)) and appends the new item at the tail, so the
//! replacement takes the position of the newest post, as a fresh post
//! would. Tombstones are skipped by `pop` and compacted away when they
//! outnumber live items (and exceed [`COMPACT_MIN`]), which keeps every
//! operation O(1) amortised and memory bounded by about twice the live
//! count. Untagged posts (tag 0) never touch the map.
//!
//! Everything that can run user code — dropping a replaced or discarded
//! item — happens after the lock is released. A mirror of the live count
//! in an atomic gives lock-free `len`/`is_empty`.
//!
//! Capacity (when bounded) counts live items: a replacement never needs
//! room. Waiting for room and the discard policies work as in
//! [`bounded`](super::bounded).

use std::collections::{HashMap, VecDeque};

use super::error::PostError;
use super::notify::Notify;
use super::sync::{lock, AtomicBool, AtomicU64, AtomicUsize, Mutex, Ordering};
use super::Discard;
use crate::timeout::Timeout;

/// Minimum tombstone count before a compaction.
const COMPACT_MIN: usize = 64;

struct Inner<T> {
    /// `slots[i]` holds item number `base + i`, `None` once replaced.
    slots: VecDeque<Option<(u64, T)>>,
    base: u64,
    live: usize,
    /// Tag → sequence number of its queued item. Tag 0 is never stored.
    tags: HashMap<u64, u64>,
    closed: bool,
}

impl<T> Inner<T> {
    fn push_back(&mut self, tag: u64, item: T) {
        let seq = self.base + self.slots.len() as u64;
        if tag != 0 {
            self.tags.insert(tag, seq);
        }
        self.slots.push_back(Some((tag, item)));
        self.live += 1;
        let tombstones = self.slots.len() - self.live;
        if tombstones > COMPACT_MIN && tombstones > self.live {
            self.compact();
        }
    }

    fn pop_front(&mut self) -> Option<T> {
        while let Some(slot) = self.slots.pop_front() {
            self.base += 1;
            if let Some((tag, item)) = slot {
                if tag != 0 {
                    self.tags.remove(&tag);
                }
                self.live -= 1;
                return Some(item);
            }
        }
        None
    }

    /// Removes and returns the queued item with `tag`, if any.
    fn remove_tag(&mut self, tag: u64) -> Option<T> {
        let seq = self.tags.remove(&tag)?;
        let slot = self.slots.get_mut((seq - self.base) as usize)?;
        let (_, item) = slot.take()?;
        self.live -= 1;
        Some(item)
    }

    fn compact(&mut self) {
        let old = std::mem::take(&mut self.slots);
        self.slots.reserve(self.live);
        for (tag, item) in old.into_iter().flatten() {
            if tag != 0 {
                self.tags.insert(tag, self.base + self.slots.len() as u64);
            }
            self.slots.push_back(Some((tag, item)));
        }
    }
}

/// Result of one insertion attempt under the lock.
enum Insert<T> {
    /// Queued. `displaced` is the item replaced by tag or discarded as the
    /// oldest (`discarded` tells which), to be dropped after unlocking.
    Done {
        displaced: Option<T>,
        discarded: bool,
    },
    Full(T),
    Closed(T),
}

pub(crate) struct Tagged<T> {
    inner: Mutex<Inner<T>>,
    capacity: Option<usize>,
    policy: Discard,
    live: AtomicUsize,
    discarded: AtomicU64,
    /// Posters waiting for room (bounded only).
    room: Notify,
    closed: AtomicBool,
}

impl<T> Tagged<T> {
    /// `capacity`: `None` for unbounded, else non-zero (checked by the caller).
    pub(crate) fn new(capacity: Option<usize>, policy: Discard) -> Self {
        Tagged {
            inner: Mutex::new(Inner {
                slots: VecDeque::new(),
                base: 0,
                live: 0,
                tags: HashMap::new(),
                closed: false,
            }),
            capacity,
            policy,
            live: AtomicUsize::new(0),
            discarded: AtomicU64::new(0),
            room: Notify::new(),
            closed: AtomicBool::new(false),
        }
    }

    fn try_insert(&self, item: T, tag: u64, discard_oldest: bool) -> Insert<T> {
        let mut inner = lock(&self.inner);
        if inner.closed {
            return Insert::Closed(item);
        }
        let mut displaced = if tag != 0 {
            inner.remove_tag(tag)
        } else {
            None
        };
        let mut discarded = false;
        if displaced.is_none() {
            if let Some(cap) = self.capacity {
                if inner.live >= cap {
                    if !discard_oldest {
                        return Insert::Full(item);
                    }
                    displaced = inner.pop_front();
                    discarded = displaced.is_some();
                }
            }
        }
        inner.push_back(tag, item);
        self.live.store(inner.live, Ordering::Relaxed);
        Insert::Done {
            displaced,
            discarded,
        }
    }

    fn finish(&self, displaced: Option<T>, discarded: bool) {
        if discarded {
            self.discarded.fetch_add(1, Ordering::Relaxed);
        }
        drop(displaced); // after the lock: may run user code
    }

    /// Queues `item`, replacing the queued item with the same non-zero tag.
    pub(crate) fn post(&self, item: T, tag: u64, timeout: Timeout) -> Result<(), PostError<T>> {
        let item = match self.try_post(item, tag) {
            Err(PostError::Full(item)) => item,
            other => return other,
        };
        let item = if timeout.is_zero() {
            item
        } else {
            let mut pending = Some(item);
            let outcome = self.room.wait_for(timeout, || {
                match self.try_insert(pending.take()?, tag, false) {
                    Insert::Done {
                        displaced,
                        discarded,
                    } => Some(Ok((displaced, discarded))),
                    Insert::Closed(item) => Some(Err(PostError::Closed(item))),
                    Insert::Full(item) => {
                        pending = Some(item);
                        None
                    }
                }
            });
            match (outcome, pending) {
                (Some(Ok((displaced, discarded))), _) => {
                    self.finish(displaced, discarded);
                    return Ok(());
                }
                (Some(Err(e)), _) => return Err(e),
                (None, Some(item)) => item,
                (None, None) => unreachable!("a failed attempt always puts the item back"),
            }
        };
        match self.policy {
            // Never `Full`: discard-oldest always makes room.
            Discard::Oldest => self.settle(self.try_insert(item, tag, true)),
            Discard::Newest => {
                self.discarded.fetch_add(1, Ordering::Relaxed);
                Err(PostError::Full(item))
            }
            Discard::Refuse => Err(PostError::Full(item)),
        }
    }

    /// Queues `item` (replacing a queued item with the same non-zero tag)
    /// if there is room, never discarding: `Full` hands it back at
    /// capacity (not counted as a discard).
    pub(crate) fn try_post(&self, item: T, tag: u64) -> Result<(), PostError<T>> {
        self.settle(self.try_insert(item, tag, false))
    }

    /// The outcome of an insertion as a post's result (a displaced item
    /// dropped here, after the lock).
    fn settle(&self, insert: Insert<T>) -> Result<(), PostError<T>> {
        match insert {
            Insert::Done {
                displaced,
                discarded,
            } => {
                self.finish(displaced, discarded);
                Ok(())
            }
            Insert::Closed(item) => Err(PostError::Closed(item)),
            Insert::Full(item) => Err(PostError::Full(item)),
        }
    }

    /// True if a post would not wait: unbounded, below capacity, or closed.
    #[cfg_attr(not(feature = "async"), allow(dead_code))]
    pub(crate) fn has_room(&self) -> bool {
        self.capacity.is_none_or(|cap| self.len() < cap) || self.is_closed()
    }

    /// Where posters wait for room.
    #[cfg_attr(not(feature = "async"), allow(dead_code))]
    pub(crate) fn room(&self) -> &Notify {
        &self.room
    }

    pub(crate) fn pop(&self) -> Option<T> {
        let item = {
            let mut inner = lock(&self.inner);
            let item = inner.pop_front();
            self.live.store(inner.live, Ordering::Relaxed);
            item
        };
        if item.is_some() && self.capacity.is_some() {
            self.room.notify_one();
        }
        item
    }

    pub(crate) fn len(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// The capacity (a high-water mark when [`Self::refuses`]).
    pub(crate) fn capacity(&self) -> Option<usize> {
        self.capacity
    }

    /// True if a full queue refuses posts without counting a discard.
    pub(crate) fn refuses(&self) -> bool {
        self.policy == Discard::Refuse
    }

    pub(crate) fn discarded(&self) -> u64 {
        self.discarded.load(Ordering::Relaxed)
    }

    pub(crate) fn close(&self) {
        lock(&self.inner).closed = true;
        self.closed.store(true, Ordering::Release);
        self.room.notify_all();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}
