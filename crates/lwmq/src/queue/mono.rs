//! Mono-producer unbounded flavour: a single-producer, single-consumer
//! linked list of fixed-size blocks.
//!
//! Why hand-rolled: crossbeam has no unbounded SPSC queue, and its MPMC
//! `SegQueue` pays a locked compare-and-swap per push. Here a push is a
//! plain slot write plus one `Release` store of the producer's counter (no
//! locked instruction on x86); see the `bench_ns_per_post` test for the
//! measured difference.
//!
//! Layout: blocks of [`BLOCK_CAP`] slots chained by `next`. Item number
//! `pos` lives in slot `pos % BLOCK_CAP` of the `pos / BLOCK_CAP`-th block.
//! The producer owns `tail` (count of published items) and the newest
//! block; the consumer owns `head` (count of taken items) and the oldest
//! block, which it frees once it moves past it. Each side's state sits on
//! its own cache line; the only shared traffic is the consumer reading
//! `tail` when its cached copy runs out.
//!
//! Single-producer/single-consumer is enforced by the handles: [`Producer`]
//! is `Send` but neither `Sync` nor `Clone`; [`Consumer::pop`] takes
//! `&mut self` and the consumer is not `Clone`.

use std::cell::Cell;
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::ptr;

use crossbeam_utils::CachePadded;

use super::sync::{Arc, AtomicBool, AtomicPtr, AtomicUsize, Ordering, UnsafeCell};

/// Slots per block (a power of two so `%` is a mask); tiny under loom so
/// the model crosses block boundaries.
const BLOCK_CAP: usize = if cfg!(loom) { 2 } else { 64 };

struct Block<T> {
    slots: [UnsafeCell<MaybeUninit<T>>; BLOCK_CAP],
    next: AtomicPtr<Block<T>>,
}

impl<T> Block<T> {
    fn alloc() -> *mut Block<T> {
        Box::into_raw(Box::new(Block {
            slots: std::array::from_fn(|_| UnsafeCell::new(MaybeUninit::uninit())),
            next: AtomicPtr::new(ptr::null_mut()),
        }))
    }
}

struct ProducerEnd<T> {
    /// Number of items published. Written only by the producer.
    tail: AtomicUsize,
    /// The block holding slot `tail`'s predecessor (or slot 0). Producer-only.
    block: UnsafeCell<*mut Block<T>>,
}

struct ConsumerEnd<T> {
    /// Number of items taken. Written only by the consumer; read by `len`.
    head: AtomicUsize,
    /// The block holding item `head` (or its predecessor when `head` is the
    /// first slot of a block not yet entered). Consumer-only.
    block: UnsafeCell<*mut Block<T>>,
    /// Last value of `tail` the consumer read. Consumer-only.
    cached_tail: UnsafeCell<usize>,
}

struct Shared<T> {
    prod: CachePadded<ProducerEnd<T>>,
    cons: CachePadded<ConsumerEnd<T>>,
    closed: AtomicBool,
}

// SAFETY: items of type `T` are moved from the producer's thread to the
// consumer's, hence `T: Send`. The `UnsafeCell`s are each accessed by one
// side only: `prod.block` by the single `Producer` (not `Sync`, not `Clone`,
// so only one thread can use it at a time), `cons.*` by the single
// `Consumer` through `&mut self`, and both by `Drop`, which has exclusive
// access. Slots are handed over through the `tail` release/acquire pair.
unsafe impl<T: Send> Send for Shared<T> {}
// SAFETY: see the `Send` impl; shared references only reach the atomics
// and the side-owned cells described there.
unsafe impl<T: Send> Sync for Shared<T> {}

/// Creates an empty queue.
pub(crate) fn queue<T>() -> (Producer<T>, Consumer<T>) {
    let first = Block::alloc();
    let shared = Arc::new(Shared {
        prod: CachePadded::new(ProducerEnd {
            tail: AtomicUsize::new(0),
            block: UnsafeCell::new(first),
        }),
        cons: CachePadded::new(ConsumerEnd {
            head: AtomicUsize::new(0),
            block: UnsafeCell::new(first),
            cached_tail: UnsafeCell::new(0),
        }),
        closed: AtomicBool::new(false),
    });
    (
        Producer {
            shared: shared.clone(),
            cached_head: Cell::new(0),
            _not_sync: PhantomData,
        },
        Consumer { shared },
    )
}

/// The posting end. `Send`, not `Sync`, not `Clone`.
pub(crate) struct Producer<T> {
    shared: Arc<Shared<T>>,
    /// The consumer's `head` as this producer last read it: a lower bound,
    /// so `tail - cached_head` is an upper bound of the queued count that
    /// costs no load of the consumer's cache line.
    cached_head: Cell<usize>,
    _not_sync: PhantomData<Cell<()>>,
}

impl<T> Producer<T> {
    /// Appends `item`, or gives it back if the queue is closed.
    #[inline(always)]
    pub(crate) fn push(&self, item: T) -> Result<(), T> {
        let s = &*self.shared;
        if s.closed.load(Ordering::Relaxed) {
            return Err(item);
        }
        // Only this producer writes `tail`, so a relaxed load reads our own
        // last store.
        let pos = s.prod.tail.load(Ordering::Relaxed);
        let off = pos % BLOCK_CAP;
        // SAFETY: `prod.block` is accessed only by the single producer
        // (see `Shared`'s `Send` impl), and always holds a live block: the
        // consumer frees a block only after the producer has linked a
        // successor, and the producer never returns to an older block.
        let mut block = s.prod.block.with(|p| unsafe { *p });
        if off == 0 && pos != 0 {
            let next = Block::alloc();
            // SAFETY: `block` is live (see above). The consumer reads `next`
            // only after it has seen `tail > pos`, which our release store
            // below publishes.
            unsafe { (*block).next.store(next, Ordering::Release) };
            // SAFETY: producer-only cell (see above).
            s.prod.block.with_mut(|p| unsafe { *p = next });
            block = next;
        }
        // SAFETY: slot `off` of the current block is item `pos`, which is
        // not yet published (`tail == pos`), so the consumer does not read
        // it and no one else writes it; it is uninitialised (never written,
        // since each position is written once).
        unsafe { (*block).slots[off].with_mut(|slot| (*slot).write(item)) };
        // SYNC POINT (release): publishes the slot write and the block link;
        // pairs with the acquire load of `tail` in `Consumer::pop`.
        s.prod.tail.store(pos + 1, Ordering::Release);
        Ok(())
    }

    /// Number of queued items (exact from the producer's point of view
    /// except for concurrent pops).
    pub(crate) fn len(&self) -> usize {
        self.shared.len()
    }

    /// A depth view for statistics (two atomic loads per look).
    pub(crate) fn probe(&self) -> super::DepthProbe
    where
        T: Send + 'static,
    {
        let shared = Arc::clone(&self.shared);
        super::DepthProbe::new(move || (shared.len(), 0))
    }

    /// True if fewer than `mark` items are queued. Reads only the
    /// producer's own line while its last look at the consumer's `head`
    /// still proves it; loads `head` again only near the mark.
    #[inline]
    pub(crate) fn below(&self, mark: usize) -> bool {
        let tail = self.shared.prod.tail.load(Ordering::Relaxed);
        if tail.wrapping_sub(self.cached_head.get()) < mark {
            return true;
        }
        // SYNC POINT (acquire): pairs with the consumer's release store of
        // `head` in `pop`; only a count, no slot is read through it.
        let head = self.shared.cons.head.load(Ordering::Acquire);
        self.cached_head.set(head);
        tail.wrapping_sub(head) < mark
    }

    /// Closes the queue: further pushes fail.
    pub(crate) fn close(&self) {
        self.shared.closed.store(true, Ordering::Release);
    }

    /// True once closed by either side.
    pub(crate) fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }
}

/// The taking end: one consumer (`pop` takes `&mut self`, not `Clone`).
pub(crate) struct Consumer<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Consumer<T> {
    /// Takes the oldest item, if any.
    #[inline]
    pub(crate) fn pop(&mut self) -> Option<T> {
        let s = &*self.shared;
        let pos = s.cons.head.load(Ordering::Relaxed);
        // SAFETY: consumer-only cell; `&mut self` makes this the only access.
        let cached = s.cons.cached_tail.with(|p| unsafe { *p });
        if pos == cached {
            // SYNC POINT (acquire): pairs with the release store in `push`;
            // makes the slots below `tail` and the block links visible.
            let tail = s.prod.tail.load(Ordering::Acquire);
            // SAFETY: consumer-only cell, as above.
            s.cons.cached_tail.with_mut(|p| unsafe { *p = tail });
            if tail == pos {
                return None;
            }
        }
        let off = pos % BLOCK_CAP;
        // SAFETY: consumer-only cell, as above; it holds a live block (only
        // this consumer frees blocks, and it moves to the successor first).
        let mut block = s.cons.block.with(|p| unsafe { *p });
        if off == 0 && pos != 0 {
            // SAFETY: `block` is live. Item `pos` (first slot of the next
            // block) is published, so the producer linked `next` before its
            // release store of `tail`, which we acquired.
            let next = unsafe { (*block).next.load(Ordering::Acquire) };
            debug_assert!(!next.is_null());
            // SAFETY: every item of `block` has been taken, and the producer
            // has moved on to `next` or later and never touches `block`
            // again; it came from `Box::into_raw` in `Block::alloc`.
            drop(unsafe { Box::from_raw(block) });
            // SAFETY: consumer-only cell, as above.
            s.cons.block.with_mut(|p| unsafe { *p = next });
            block = next;
        }
        // SAFETY: item `pos` is published (pos < tail, acquired above) and
        // not yet taken, so slot `off` holds an initialised value that the
        // producer will not touch again; advancing `head` below marks it
        // moved out, so it is read exactly once.
        let item = unsafe { (*block).slots[off].with(|slot| ptr::read(slot).assume_init()) };
        s.cons.head.store(pos + 1, Ordering::Release);
        Some(item)
    }

    /// Number of queued items.
    pub(crate) fn len(&self) -> usize {
        self.shared.len()
    }

    /// True if nothing is queued (exact for the consumer: only it removes).
    pub(crate) fn is_empty(&self) -> bool {
        self.shared.len() == 0
    }

    /// Closes the queue: further pushes fail; queued items can still be popped.
    pub(crate) fn close(&self) {
        self.shared.closed.store(true, Ordering::Release);
    }

    /// True once closed by either side.
    pub(crate) fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }
}

impl<T> Shared<T> {
    fn len(&self) -> usize {
        // `head` first: it only grows and never passes `tail`, so the
        // difference cannot underflow.
        let head = self.cons.head.load(Ordering::Acquire);
        let tail = self.prod.tail.load(Ordering::Acquire);
        tail.saturating_sub(head)
    }
}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        let tail = self.prod.tail.load(Ordering::Relaxed);
        let mut pos = self.cons.head.load(Ordering::Relaxed);
        // SAFETY: `drop` has exclusive access to every cell.
        let mut block = self.cons.block.with(|p| unsafe { *p });
        while pos != tail {
            let off = pos % BLOCK_CAP;
            if off == 0 && pos != 0 {
                // SAFETY: `block` is live and fully consumed; its successor
                // exists because item `pos` was published. Exclusive access.
                let next = unsafe { (*block).next.load(Ordering::Relaxed) };
                // SAFETY: allocated by `Block::alloc`, no other reference.
                drop(unsafe { Box::from_raw(block) });
                block = next;
            }
            // SAFETY: items in `head..tail` are initialised and untaken.
            unsafe {
                (*block).slots[off].with_mut(|slot| ptr::drop_in_place((*slot).as_mut_ptr()))
            };
            pos += 1;
        }
        while !block.is_null() {
            // SAFETY: `block` is live; exclusive access.
            let next = unsafe { (*block).next.load(Ordering::Relaxed) };
            // SAFETY: allocated by `Block::alloc`; its items were dropped or
            // taken above, and `MaybeUninit` slots drop nothing themselves.
            drop(unsafe { Box::from_raw(block) });
            block = next;
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn fifo_across_blocks_and_drop_with_items() {
        let (p, mut c) = queue::<Box<usize>>();
        for round in 0..3 {
            for i in 0..(BLOCK_CAP * 3 + 5) {
                p.push(Box::new(round * 1000 + i)).unwrap();
            }
            for i in 0..(BLOCK_CAP * 2 + 1) {
                assert_eq!(*c.pop().unwrap(), round * 1000 + i);
            }
            while c.pop().is_some() {}
        }
        for i in 0..(BLOCK_CAP + 3) {
            p.push(Box::new(i)).unwrap();
        }
        assert_eq!(c.len(), BLOCK_CAP + 3);
        c.pop();
        drop(c);
        drop(p); // remaining boxes freed here (checked by miri / leak tools)
    }

    #[test]
    fn spsc_threads() {
        let (p, mut c) = queue::<u64>();
        let n = 200_000u64;
        let t = std::thread::spawn(move || {
            for i in 0..n {
                p.push(i).unwrap();
            }
        });
        let mut expect = 0;
        while expect < n {
            match c.pop() {
                Some(v) => {
                    assert_eq!(v, expect);
                    expect += 1;
                }
                None => std::thread::yield_now(),
            }
        }
        t.join().unwrap();
        assert!(c.pop().is_none());
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;

    #[test]
    fn loom_spsc_handover() {
        loom::model(|| {
            let (p, mut c) = queue::<usize>();
            let t = loom::thread::spawn(move || {
                for i in 0..3 {
                    p.push(i).unwrap();
                }
            });
            let mut got = Vec::new();
            while got.len() < 3 {
                match c.pop() {
                    Some(v) => got.push(v),
                    None => loom::thread::yield_now(),
                }
            }
            t.join().unwrap();
            assert_eq!(got, vec![0, 1, 2]);
        });
    }
}
