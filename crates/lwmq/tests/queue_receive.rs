//! The receive queue.

mod common;

use std::thread;
use std::time::Duration;

use common::DropLog;
use lwmq::internals::queue::{
    receive_queue, PushError, QueueConfigError, ReceiveConsumer, ReceiveQueueKind as K, RecvError,
};
use lwmq::Timeout;

const LONG: Timeout = Timeout::after(Duration::from_secs(60));

const KINDS: [K; 4] = [
    K::MonoConsumerUnbounded,
    K::MultiConsumerUnbounded,
    K::MultiConsumerBoundedDiscardOldest(1000),
    K::MultiConsumerBoundedDiscardNewest(1000),
];

#[test]
fn order_poll_and_timeout() {
    for kind in KINDS {
        let (p, mut c) = receive_queue::<u32>(kind).unwrap();
        assert_eq!(c.receive(Timeout::ZERO), Err(RecvError::Timeout));
        assert_eq!(
            c.receive(Timeout::after(Duration::from_millis(10))),
            Err(RecvError::Timeout)
        );
        for i in 0..500 {
            p.push(i).unwrap();
        }
        assert_eq!((p.len(), c.len()), (500, 500));
        for i in 0..500 {
            assert_eq!(c.receive(Timeout::ZERO), Ok(i), "{kind:?}");
        }
        assert!(c.is_empty());
    }
}

#[test]
fn blocked_receiver_woken_by_push() {
    for kind in KINDS {
        let (p, c) = receive_queue::<u32>(kind).unwrap();
        let receiver = thread::spawn(move || {
            let mut c = c;
            c.receive(Timeout::INFINITE)
        });
        thread::sleep(Duration::from_millis(20)); // let it sleep; holds either way
        p.push(42).unwrap();
        assert_eq!(receiver.join().unwrap(), Ok(42), "{kind:?}");
    }
}

#[test]
fn blocked_receiver_woken_by_close_after_drain() {
    for kind in KINDS {
        let (p, c) = receive_queue::<u32>(kind).unwrap();
        p.push(1).unwrap();
        let receiver = thread::spawn(move || {
            let mut c = c;
            let first = c.receive(LONG);
            (first, c.receive(Timeout::INFINITE))
        });
        thread::sleep(Duration::from_millis(20));
        p.close();
        assert_eq!(p.push(2), Err(PushError::Closed(2)));
        assert_eq!(
            receiver.join().unwrap(),
            (Ok(1), Err(RecvError::Closed)),
            "{kind:?}"
        );
    }
}

#[test]
fn dropping_producer_closes() {
    let (p, mut c) = receive_queue::<u32>(K::MonoConsumerUnbounded).unwrap();
    p.push(7).unwrap();
    drop(p);
    assert_eq!(c.receive(LONG), Ok(7));
    assert_eq!(c.receive(LONG), Err(RecvError::Closed));
}

#[test]
fn dropping_mono_receiver_closes() {
    let (p, c) = receive_queue::<u32>(K::MonoConsumerUnbounded).unwrap();
    drop(c);
    assert_eq!(p.push(1), Err(PushError::Closed(1)));
}

#[test]
fn multi_consumer_every_item_once() {
    for kind in [
        K::MultiConsumerUnbounded,
        K::MultiConsumerBoundedDiscardNewest(100_000),
    ] {
        let (p, c) = receive_queue::<u32>(kind).unwrap();
        let ReceiveConsumer::Multi(r) = c else {
            panic!()
        };
        let n = 60_000u32;
        let consumers: Vec<_> = (0..3)
            .map(|_| {
                let r = r.clone();
                thread::spawn(move || {
                    let mut got = Vec::new();
                    loop {
                        match r.receive(LONG) {
                            Ok(v) => got.push(v),
                            Err(RecvError::Closed) => return got,
                            Err(e) => panic!("stalled: {e}"),
                        }
                    }
                })
            })
            .collect();
        for i in 0..n {
            p.push(i).unwrap();
        }
        drop(p);
        let mut all = Vec::new();
        for t in consumers {
            let got = t.join().unwrap();
            assert!(
                got.windows(2).all(|w| w[0] < w[1]),
                "each consumer sees FIFO order"
            );
            all.extend(got);
        }
        all.sort_unstable();
        assert_eq!(all, (0..n).collect::<Vec<_>>(), "{kind:?}");
        assert_eq!(r.discarded(), 0);
    }
}

#[test]
fn bounded_discards_are_counted_and_dropped_once() {
    let log = DropLog::new(10);
    let (p, mut c) = receive_queue(K::MultiConsumerBoundedDiscardOldest(3)).unwrap();
    for i in 0..5 {
        p.push(log.item(i)).unwrap();
    }
    assert_eq!(p.discarded(), 2);
    assert_eq!(c.discarded(), 2);
    assert_eq!((log.drops(0), log.drops(1)), (1, 1));
    let ids: Vec<usize> = (0..3)
        .map(|_| c.receive(Timeout::ZERO).unwrap().id)
        .collect();
    assert_eq!(ids, [2, 3, 4]);

    let (p, mut c) = receive_queue(K::MultiConsumerBoundedDiscardNewest(3)).unwrap();
    for i in 5..10 {
        p.push(log.item(i)).unwrap();
    }
    assert_eq!(c.discarded(), 2);
    assert_eq!((log.drops(8), log.drops(9)), (1, 1));
    assert_eq!(c.receive(Timeout::ZERO).unwrap().id, 5);
    drop(c); // 6 and 7 still queued
    drop(p);
    log.assert_all_dropped_once();
}

#[test]
fn items_left_in_queue_dropped_once() {
    for kind in KINDS {
        let log = DropLog::new(300);
        let (p, mut c) = receive_queue(kind).unwrap();
        for i in 0..300 {
            p.push(log.item(i)).unwrap();
        }
        for _ in 0..70 {
            c.receive(Timeout::ZERO).unwrap();
        }
        drop(p);
        drop(c);
        log.assert_all_dropped_once();
    }
}

#[test]
fn zero_capacity_is_refused() {
    assert_eq!(
        receive_queue::<u8>(K::MultiConsumerBoundedDiscardOldest(0)).unwrap_err(),
        QueueConfigError::ZeroCapacity
    );
}
