//! Single-thread cost of a post and of a take, per flavour.
//!
//! Not a pass/fail test: run with
//! `cargo test --release --test queue_bench -- --ignored --nocapture`.

use std::hint::black_box;
use std::time::Instant;

use crossbeam_queue::SegQueue;
use lwmq::internals::queue::{Priority, Scheduler, SendQueueKind as K};
use lwmq::Timeout;

const N: usize = 1_000_000;
const ROUNDS: usize = 7;

/// (label, kind, high-water mark, tag of the i-th post).
type Case = (&'static str, K, Option<usize>, fn(usize) -> u64);

/// Items posted per batch before the consumer drains the queue: the steady
/// state of a channel whose sender keeps up (the queue stays small and hot
/// in cache). `N` in one batch measures a burst instead.
const BATCH: usize = 256;

/// Best of `ROUNDS` (ns per item) for posting then taking N items in
/// batches of `batch`. The take includes one `wake_posters` per batch, as
/// the channel's pump does.
fn measure(kind: K, mark: Option<usize>, batch: usize, tag: impl Fn(usize) -> u64) -> (f64, f64) {
    let mut best = (f64::MAX, f64::MAX);
    for _ in 0..ROUNDS {
        let mut s = Scheduler::<u64>::new();
        let (_, p) = s.add_queue_with_mark(kind, Priority::Normal, mark).unwrap();
        let (mut post, mut take) = (0u128, 0u128);
        for b in 0..N / batch {
            let t0 = Instant::now();
            for i in b * batch..(b + 1) * batch {
                p.post_tagged(black_box(i as u64), tag(i), Timeout::ZERO)
                    .unwrap();
            }
            let t1 = Instant::now();
            while let Some(v) = s.take_next() {
                black_box(v);
            }
            s.wake_posters();
            take += t1.elapsed().as_nanos();
            post += (t1 - t0).as_nanos();
        }
        let n = (N / batch * batch) as f64;
        best = (best.0.min(post as f64 / n), best.1.min(take as f64 / n));
    }
    best
}

#[test]
#[ignore = "timing loop; run explicitly with --release -- --ignored --nocapture"]
fn bench_ns_per_post() {
    let cases: [Case; 8] = [
        (
            "mono-producer unbounded",
            K::MonoProducerUnbounded,
            None,
            |_| 0,
        ),
        (
            "mono-producer, high-water mark N+1",
            K::MonoProducerUnbounded,
            Some(N + 1),
            |_| 0,
        ),
        (
            "multi-producer unbounded",
            K::MultiProducerUnbounded,
            None,
            |_| 0,
        ),
        (
            "multi-producer, high-water mark N+1",
            K::MultiProducerUnbounded,
            Some(N + 1),
            |_| 0,
        ),
        (
            "bounded discard-oldest (cap N)",
            K::MultiProducerBoundedDiscardOldest(N),
            None,
            |_| 0,
        ),
        (
            "tagged unbounded, tag 0",
            K::MultiProducerUnboundedTagged,
            None,
            |_| 0,
        ),
        (
            "tagged unbounded, distinct tags",
            K::MultiProducerUnboundedTagged,
            None,
            |i| i as u64 + 1,
        ),
        (
            "tagged unbounded, 16 tags (replacing)",
            K::MultiProducerUnboundedTagged,
            None,
            |i| (i % 16) as u64 + 1,
        ),
    ];
    for (label, batch) in [("steady, batches of 256", BATCH), ("burst of 1,000,000", N)] {
        println!("-- {label}");
        for (name, kind, mark, tag) in cases {
            let (post, take) = measure(kind, mark, batch, tag);
            println!("{name:40} post {post:6.2} ns   take {take:6.2} ns");
        }
    }
    // Baseline for the hand-rolled mono queue: crossbeam's SegQueue alone.
    let mut best = f64::MAX;
    for _ in 0..ROUNDS {
        let q = SegQueue::new();
        let mut post = 0u128;
        for b in 0..N / BATCH {
            let t0 = Instant::now();
            for i in b * BATCH..(b + 1) * BATCH {
                q.push(black_box(i as u64));
            }
            post += t0.elapsed().as_nanos();
            while q.pop().is_some() {}
        }
        best = best.min(post as f64 / N as f64);
    }
    println!(
        "{:40} post {best:6.2} ns",
        "baseline: raw SegQueue::push, steady"
    );
}
