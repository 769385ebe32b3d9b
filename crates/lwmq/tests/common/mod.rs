//! Helpers shared by the queue tests.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// Counts how often each numbered item is dropped.
#[derive(Clone)]
pub struct DropLog(Arc<Vec<AtomicU32>>);

impl DropLog {
    pub fn new(n: usize) -> Self {
        DropLog(Arc::new((0..n).map(|_| AtomicU32::new(0)).collect()))
    }

    /// A new tracked item with number `id`.
    pub fn item(&self, id: usize) -> Tracked {
        Tracked {
            id,
            log: self.clone(),
        }
    }

    pub fn drops(&self, id: usize) -> u32 {
        self.0[id].load(Ordering::SeqCst)
    }

    /// Asserts every item `0..n` was dropped exactly once.
    pub fn assert_all_dropped_once(&self) {
        for (id, c) in self.0.iter().enumerate() {
            assert_eq!(
                c.load(Ordering::SeqCst),
                1,
                "item {id} dropped a wrong number of times"
            );
        }
    }
}

/// An item whose `Drop` records itself in a [`DropLog`].
pub struct Tracked {
    pub id: usize,
    log: DropLog,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.log.0[self.id].fetch_add(1, Ordering::SeqCst);
    }
}

impl std::fmt::Debug for Tracked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tracked({})", self.id)
    }
}
