//! Send queues: order, multi-producer stress, tags, bounded policies, close.

mod common;

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::DropLog;
use lwmq::internals::queue::{
    Notify, PostError, Priority, Producer, QueueConfigError, Scheduler, SendQueueKind as K,
};
use lwmq::Timeout;

const LONG: Timeout = Timeout::after(Duration::from_secs(60));

const MULTI_KINDS: [K; 6] = [
    K::MultiProducerUnbounded,
    K::MultiProducerUnboundedTagged,
    K::MultiProducerBoundedDiscardOldest(64),
    K::MultiProducerBoundedDiscardNewest(64),
    K::MultiProducerBoundedDiscardOldestTagged(64),
    K::MultiProducerBoundedDiscardNewestTagged(64),
];

fn one_queue<T: Send>(kind: K) -> (Scheduler<T>, Producer<T>) {
    let mut s = Scheduler::new();
    let (_, p) = s.add_queue(kind, Priority::Normal).unwrap();
    (s, p)
}

fn drain<T: Send>(s: &mut Scheduler<T>) -> Vec<T> {
    std::iter::from_fn(|| s.take_next()).collect()
}

#[test]
fn single_producer_order_every_kind() {
    for kind in MULTI_KINDS.into_iter().chain([K::MonoProducerUnbounded]) {
        let (mut s, p) = one_queue::<u32>(kind);
        let n = kind.capacity().unwrap_or(1000) as u32;
        for i in 0..n {
            p.post(i, Timeout::ZERO).unwrap();
        }
        assert_eq!(p.len(), n as usize);
        assert!(!s.is_empty());
        assert_eq!(drain(&mut s), (0..n).collect::<Vec<_>>(), "{kind:?}");
        assert!(s.is_empty());
    }
}

#[test]
fn mono_producer_on_another_thread() {
    let notify = Arc::new(Notify::new());
    let bell = notify.clone();
    let mut s = Scheduler::<u64>::with_doorbell(move || bell.notify_one());
    let (_, p) = s
        .add_queue(K::MonoProducerUnbounded, Priority::Normal)
        .unwrap();
    let n = 100_000;
    let t = thread::spawn(move || {
        for i in 0..n {
            p.post(i, Timeout::ZERO).unwrap();
        }
    });
    for expect in 0..n {
        let got = notify
            .wait_for(LONG, || s.take_next())
            .expect("item within 60 s");
        assert_eq!(got, expect);
    }
    t.join().unwrap();
    assert!(s.take_next().is_none());
}

/// 3 producers × 20,000 items, consumer sleeping on the doorbell: every
/// item exactly once and per-producer FIFO. Bounded queues post with a long
/// timeout, so they wait for room instead of discarding.
#[test]
fn multi_producer_stress_every_kind() {
    const PRODUCERS: u64 = 3;
    const PER: u64 = 20_000;
    for kind in MULTI_KINDS {
        let notify = Arc::new(Notify::new());
        let bell = notify.clone();
        let mut s = Scheduler::<u64>::with_doorbell(move || bell.notify_one());
        let (id, p) = s.add_queue(kind, Priority::Normal).unwrap();
        let Producer::Multi(p) = p else {
            panic!("multi kind")
        };
        let threads: Vec<_> = (0..PRODUCERS)
            .map(|t| {
                let p = p.clone();
                thread::spawn(move || {
                    for i in 0..PER {
                        p.post((t << 32) | i, LONG).unwrap();
                    }
                })
            })
            .collect();
        let mut next = [0u64; PRODUCERS as usize];
        for _ in 0..PRODUCERS * PER {
            let v = notify
                .wait_for(LONG, || s.take_next())
                .expect("item within 60 s");
            let (t, i) = ((v >> 32) as usize, v & 0xffff_ffff);
            assert_eq!(i, next[t], "{kind:?}: producer {t} out of order");
            next[t] += 1;
        }
        for t in threads {
            t.join().unwrap();
        }
        assert!(s.take_next().is_none());
        assert_eq!(s.discarded(id), Some(0));
    }
}

#[test]
fn tags_latest_value_wins() {
    for kind in [
        K::MultiProducerUnboundedTagged,
        K::MultiProducerBoundedDiscardOldestTagged(8),
        K::MultiProducerBoundedDiscardNewestTagged(8),
    ] {
        let log = DropLog::new(10_010);
        let (mut s, p) = one_queue(kind);
        // ids: 10_000.. for the bystanders, 0..10_000 for the tag-7 updates.
        p.post(log.item(10_000), Timeout::ZERO).unwrap(); // untagged
        p.post_tagged(log.item(10_001), 5, Timeout::ZERO).unwrap();
        for i in 0..10_000 {
            p.post_tagged(log.item(i), 7, Timeout::ZERO).unwrap();
            if i == 5_000 {
                p.post(log.item(10_002), Timeout::ZERO).unwrap();
            }
        }
        p.post(log.item(10_003), Timeout::ZERO).unwrap();
        assert_eq!(p.len(), 5);
        for i in 0..9_999 {
            assert_eq!(log.drops(i), 1, "replaced item {i} dropped once");
        }
        assert_eq!(log.drops(9_999), 0);
        let ids: Vec<usize> = drain(&mut s).into_iter().map(|t| t.id).collect();
        assert_eq!(ids, [10_000, 10_001, 10_002, 9_999, 10_003], "{kind:?}");
        assert_eq!(p.discarded(), 0, "replacements are not discards");
        // Taking an item removes its tag entry.
        p.post_tagged(log.item(10_004), 7, Timeout::ZERO).unwrap();
        assert_eq!(s.take_next().unwrap().id, 10_004);
        p.post_tagged(log.item(10_005), 7, Timeout::ZERO).unwrap();
        p.post_tagged(log.item(10_006), 7, Timeout::ZERO).unwrap();
        p.post_tagged(log.item(10_007), 8, Timeout::ZERO).unwrap();
        let ids: Vec<usize> = drain(&mut s).into_iter().map(|t| t.id).collect();
        assert_eq!(ids, [10_006, 10_007]);
        // Leave two in the queue for the drop check.
        p.post_tagged(log.item(10_008), 9, Timeout::ZERO).unwrap();
        p.post(log.item(10_009), Timeout::ZERO).unwrap();
        drop(s);
        drop(p);
        log.assert_all_dropped_once();
    }
}

#[test]
fn tag_on_untagged_queue_is_refused() {
    for kind in [
        K::MonoProducerUnbounded,
        K::MultiProducerUnbounded,
        K::MultiProducerBoundedDiscardOldest(4),
    ] {
        let (_s, p) = one_queue::<u32>(kind);
        assert_eq!(
            p.post_tagged(1, 3, Timeout::ZERO),
            Err(PostError::TagUnsupported(1))
        );
        p.post_tagged(2, 0, Timeout::ZERO).unwrap();
    }
}

#[test]
fn zero_capacity_is_refused() {
    let mut s = Scheduler::<u32>::new();
    let err = s
        .add_queue(K::MultiProducerBoundedDiscardNewest(0), Priority::Normal)
        .unwrap_err();
    assert_eq!(err, QueueConfigError::ZeroCapacity);
}

#[test]
fn bounded_discard_oldest_keeps_newest() {
    for kind in [
        K::MultiProducerBoundedDiscardOldest(3),
        K::MultiProducerBoundedDiscardOldestTagged(3),
    ] {
        let log = DropLog::new(5);
        let (mut s, p) = one_queue(kind);
        for i in 0..5 {
            p.post(log.item(i), Timeout::ZERO).unwrap();
        }
        assert_eq!(p.discarded(), 2);
        assert_eq!((log.drops(0), log.drops(1)), (1, 1));
        let ids: Vec<usize> = drain(&mut s).into_iter().map(|t| t.id).collect();
        assert_eq!(ids, [2, 3, 4], "{kind:?}");
        log.assert_all_dropped_once();
    }
}

#[test]
fn bounded_discard_newest_refuses_new() {
    for kind in [
        K::MultiProducerBoundedDiscardNewest(3),
        K::MultiProducerBoundedDiscardNewestTagged(3),
    ] {
        let log = DropLog::new(6);
        let (mut s, p) = one_queue(kind);
        for i in 0..3 {
            p.post(log.item(i), Timeout::ZERO).unwrap();
        }
        let Err(PostError::Full(back)) = p.post(log.item(3), Timeout::ZERO) else {
            panic!("expected Full");
        };
        assert_eq!(back.id, 3);
        let Err(PostError::Full(back2)) =
            p.post(log.item(4), Timeout::after(Duration::from_millis(20)))
        else {
            panic!("expected Full after the timeout");
        };
        assert_eq!(back2.id, 4);
        assert_eq!(p.discarded(), 2);
        drop((back, back2));
        let ids: Vec<usize> = drain(&mut s).into_iter().map(|t| t.id).collect();
        assert_eq!(ids, [0, 1, 2], "{kind:?}");
        p.post(log.item(5), Timeout::ZERO).unwrap();
        drop(s);
        drop(p);
        log.assert_all_dropped_once();
    }
}

/// A post waiting for room is unblocked by the consumer taking one item,
/// and then nothing is discarded.
#[test]
fn bounded_post_waits_for_room() {
    for kind in [
        K::MultiProducerBoundedDiscardOldest(2),
        K::MultiProducerBoundedDiscardNewest(2),
        K::MultiProducerBoundedDiscardOldestTagged(2),
        K::MultiProducerBoundedDiscardNewestTagged(2),
    ] {
        let (mut s, p) = one_queue::<u32>(kind);
        let Producer::Multi(p) = p else { panic!() };
        p.post(0, Timeout::ZERO).unwrap();
        p.post(1, Timeout::ZERO).unwrap();
        let poster = {
            let p = p.clone();
            thread::spawn(move || p.post(2, LONG))
        };
        // Give the poster time to go to sleep; the test holds either way.
        thread::sleep(Duration::from_millis(20));
        assert_eq!(s.take_next(), Some(0));
        poster
            .join()
            .unwrap()
            .expect("post succeeds once there is room");
        assert_eq!(drain(&mut s), [1, 2], "{kind:?}");
        assert_eq!(p.discarded(), 0);
    }
}

#[test]
fn close_wakes_waiting_poster_and_lingers() {
    for kind in [
        K::MultiProducerBoundedDiscardNewest(1),
        K::MultiProducerBoundedDiscardOldestTagged(1),
    ] {
        let (mut s, p) = one_queue::<u32>(kind);
        let Producer::Multi(p) = p else { panic!() };
        p.post(0, Timeout::ZERO).unwrap();
        let poster = {
            let p = p.clone();
            thread::spawn(move || p.post(1, Timeout::INFINITE))
        };
        thread::sleep(Duration::from_millis(20));
        s.close();
        assert_eq!(poster.join().unwrap(), Err(PostError::Closed(1)));
        assert_eq!(p.post(2, Timeout::ZERO), Err(PostError::Closed(2)));
        assert_eq!(s.take_next(), Some(0), "queued items can still be drained");
    }
}

#[test]
fn close_every_kind_then_drain_and_drop() {
    let log = DropLog::new(7 * 100);
    let mut s = Scheduler::new();
    let mut producers = Vec::new();
    for kind in MULTI_KINDS.into_iter().chain([K::MonoProducerUnbounded]) {
        producers.push(s.add_queue(kind, Priority::Normal).unwrap().1);
    }
    for (q, p) in producers.iter().enumerate() {
        for i in 0..64 {
            p.post(log.item(q * 100 + i), Timeout::ZERO).unwrap();
        }
    }
    s.close();
    for (q, p) in producers.iter().enumerate() {
        let e = p.post(log.item(q * 100 + 64), Timeout::ZERO).unwrap_err();
        assert!(e.is_closed());
    }
    assert_eq!(s.drain_and_drop(), 7 * 64);
    assert!(s.is_empty());
    drop(producers);
    drop(s);
    for q in 0..7 {
        for i in 0..=64 {
            assert_eq!(log.drops(q * 100 + i), 1);
        }
    }
}

#[test]
fn dropping_scheduler_closes_queues_and_drops_items_once() {
    let log = DropLog::new(7 * 300 + 7);
    let mut s = Scheduler::new();
    let mut producers = Vec::new();
    for kind in MULTI_KINDS.into_iter().chain([K::MonoProducerUnbounded]) {
        producers.push(s.add_queue(kind, Priority::Normal).unwrap().1);
    }
    let mut next = 0;
    for p in &producers {
        for _ in 0..300 {
            // Bounded queues discard (oldest) or refuse (newest) past 64.
            let _ = p.post(log.item(next), Timeout::ZERO);
            next += 1;
        }
    }
    for _ in 0..10 {
        s.take_next();
    }
    drop(s);
    for (q, p) in producers.iter().enumerate() {
        let refused = p.post(log.item(7 * 300 + q), Timeout::ZERO);
        assert!(refused.is_err_and(|e| e.is_closed()));
    }
    drop(producers);
    log.assert_all_dropped_once();
}

#[test]
fn handles_are_send_and_multi_handles_sync() {
    fn send<T: Send>() {}
    fn sync<T: Send + Sync + Clone>() {}
    send::<lwmq::internals::queue::MonoProducer<String>>();
    send::<Producer<String>>();
    send::<Scheduler<String>>();
    sync::<lwmq::internals::queue::MultiProducer<String>>();
    sync::<lwmq::internals::queue::Receiver<String>>();
    send::<lwmq::internals::queue::MonoReceiver<String>>();
    send::<lwmq::internals::queue::ReceiveProducer<String>>();
}
