//! Loom model of the async readiness signal (`ring.rs`: `set_async_waiter`,
//! `notify_async`, and the waiting loop of `lwmq::asynk`).
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test --release --test loom_readiness`
//!
//! The model mirrors the protocol on a ring of `CAP` slots whose two ends
//! both wait *asynchronously*: instead of sleeping in a futex, a waiter
//! sets its async flag (`c_async` for the consumer, `p_async` for the
//! producer), re-checks its condition, and only then waits for its
//! readiness eventfd; after publishing its counter, each side reads the
//! other's async flag and writes the other's eventfd if it is set. The
//! eventfd is modelled by a counter under a mutex with a condition
//! variable: a write adds one and notifies, the waiter sleeps while the
//! counter is zero and then reads (zeroes) it, as `read(2)` on an eventfd
//! does. The sleep has no timeout, so a lost wake-up shows as a loom
//! deadlock.
//!
//! As in `loom_ring.rs`, the store-then-load pairs (SYNC POINT E: the
//! publisher's counter store and flag load, the waiter's flag store and
//! counter load) are stated with SeqCst fences, which loom models (it
//! treats SeqCst accesses as acquire/release). Two broken variants show
//! that the model can tell: without the fences, and with the waiter
//! checking its condition *before* setting its flag (no re-check after
//! it); loom finds the lost wake-up in both (`one_shot`: a single wait
//! that ends asleep with data published and no eventfd write).
#![cfg(loom)]

use loom::sync::atomic::{fence, AtomicU32, Ordering};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;

/// The eventfd stand-in.
struct EventFd {
    count: Mutex<u64>,
    cv: Condvar,
}

impl EventFd {
    fn new() -> Self {
        Self {
            count: Mutex::new(0),
            cv: Condvar::new(),
        }
    }

    /// `write(fd, 1)`.
    fn signal(&self) {
        *self.count.lock().unwrap() += 1;
        self.cv.notify_all();
    }

    /// Wait until readable, then `read` (clears the counter).
    fn wait_and_clear(&self) {
        let guard = self.count.lock().unwrap();
        // One waiter per eventfd, and loom's condition variable does not
        // wake spuriously: one wait suffices.
        let mut c = if *guard == 0 {
            self.cv.wait(guard).unwrap()
        } else {
            guard
        };
        *c = 0;
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// The protocol as built.
    Correct,
    /// No store-load ordering on either side.
    NoFences,
    /// The waiter checks, then sets its flag and waits without checking
    /// again.
    CheckThenArm,
}

struct Ring {
    tail: AtomicU32,
    head: AtomicU32,
    c_async: AtomicU32,
    p_async: AtomicU32,
    /// The consumer's readiness fd (written by the producer).
    consumer_fd: EventFd,
    /// The producer's readiness fd (written by the consumer).
    producer_fd: EventFd,
    variant: Variant,
}

impl Ring {
    fn new(variant: Variant) -> Self {
        Self {
            tail: AtomicU32::new(0),
            head: AtomicU32::new(0),
            c_async: AtomicU32::new(0),
            p_async: AtomicU32::new(0),
            consumer_fd: EventFd::new(),
            producer_fd: EventFd::new(),
            variant,
        }
    }

    fn fenced(&self) -> bool {
        self.variant != Variant::NoFences
    }

    /// `publish_and_wake` + `notify_async`: store the counter, then write
    /// the other side's eventfd if its async flag is set.
    fn publish(&self, counter: &AtomicU32, value: u32, flag: &AtomicU32, fd: &EventFd) {
        if self.fenced() {
            counter.swap(value, Ordering::SeqCst);
            fence(Ordering::SeqCst);
        } else {
            counter.store(value, Ordering::Release);
        }
        if flag.load(Ordering::Relaxed) != 0 {
            fd.signal();
        }
    }

    /// The async waiting loop: until `ready()`, arm the flag, re-check,
    /// wait for the eventfd; withdraw the flag once the condition held.
    fn wait(&self, flag: &AtomicU32, fd: &EventFd, ready: impl Fn() -> bool) {
        loop {
            if ready() {
                flag.store(0, Ordering::Relaxed);
                return;
            }
            if self.variant == Variant::CheckThenArm {
                flag.store(1, Ordering::SeqCst);
                fd.wait_and_clear();
                continue;
            }
            flag.store(1, Ordering::SeqCst);
            if self.fenced() {
                fence(Ordering::SeqCst);
            }
            if ready() {
                flag.store(0, Ordering::Relaxed);
                return;
            }
            fd.wait_and_clear();
        }
    }
}

/// A producer and a consumer of `items` over a ring of `cap` slots, both
/// waiting asynchronously (the producer for room, the consumer for data).
fn run(items: u32, cap: u32, variant: Variant) {
    // Every interleaving with up to three preemptions, as in
    // `loom_ring.rs` (the lost wake-ups below need fewer).
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.check(move || {
        let ring = Arc::new(Ring::new(variant));
        let r = Arc::clone(&ring);
        let producer = thread::spawn(move || {
            for i in 0..items {
                r.wait(&r.p_async, &r.producer_fd, || {
                    i - r.head.load(Ordering::Acquire) < cap
                });
                r.publish(&r.tail, i + 1, &r.c_async, &r.consumer_fd);
            }
        });
        for i in 0..items {
            ring.wait(&ring.c_async, &ring.consumer_fd, || {
                ring.tail.load(Ordering::Acquire) > i
            });
            ring.publish(&ring.head, i + 1, &ring.p_async, &ring.producer_fd);
        }
        producer.join().unwrap();
        // Both flags are withdrawn once their waits ended: a busy ring
        // pays no eventfd write afterwards.
        assert_eq!(ring.c_async.load(Ordering::Relaxed), 0);
        assert_eq!(ring.p_async.load(Ordering::Relaxed), 0);
    });
}

/// One publication against one async wait that does not block: once
/// both are done, the waiter either saw the data or its eventfd was
/// written (so a waiting executor would be woken). The broken variants
/// fail this assertion; with no blocking, loom reports it as a plain
/// panic instead of a deadlock.
fn one_shot(variant: Variant) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.check(move || {
        let ring = Arc::new(Ring::new(variant));
        let r = Arc::clone(&ring);
        let producer = thread::spawn(move || {
            r.publish(&r.tail, 1, &r.c_async, &r.consumer_fd);
        });
        let ready = || ring.tail.load(Ordering::Acquire) > 0;
        let saw = if ready() {
            true
        } else {
            ring.c_async.store(1, Ordering::SeqCst);
            if ring.fenced() {
                fence(Ordering::SeqCst);
            }
            variant != Variant::CheckThenArm && ready()
        };
        producer.join().unwrap();
        let signalled = *ring.consumer_fd.count.lock().unwrap() > 0;
        assert!(saw || signalled, "lost wake-up: asleep with data published");
    });
}

#[test]
fn async_consumer_never_misses_a_publication() {
    run(2, 2, Variant::Correct);
}

#[test]
fn async_producer_and_consumer_wake_each_other() {
    run(2, 1, Variant::Correct);
}

#[test]
fn one_wait_is_woken_or_sees_the_data() {
    one_shot(Variant::Correct);
}

#[test]
#[should_panic(expected = "lost wake-up")]
fn lost_wakeup_found_without_the_fences() {
    one_shot(Variant::NoFences);
}

#[test]
#[should_panic(expected = "lost wake-up")]
fn lost_wakeup_found_when_the_waiter_checks_before_arming() {
    one_shot(Variant::CheckThenArm);
}
