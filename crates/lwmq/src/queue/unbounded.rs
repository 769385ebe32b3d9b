//! Multi-producer unbounded flavour: crossbeam's `SegQueue` plus a closed flag.

use crossbeam_queue::SegQueue;

use super::sync::{AtomicBool, Ordering};

/// Any number of producers, one consumer at a time (the queue itself is MPMC).
pub(crate) struct Unbounded<T> {
    queue: SegQueue<T>,
    closed: AtomicBool,
}

impl<T> Unbounded<T> {
    pub(crate) fn new() -> Self {
        Unbounded {
            queue: SegQueue::new(),
            closed: AtomicBool::new(false),
        }
    }

    /// Appends `item` unless closed. A post racing with `close` may still be
    /// accepted; it is then drained or dropped with the rest.
    #[inline]
    pub(crate) fn push(&self, item: T) -> Result<(), T> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(item);
        }
        self.queue.push(item);
        Ok(())
    }

    #[inline]
    pub(crate) fn pop(&self) -> Option<T> {
        self.queue.pop()
    }

    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}
