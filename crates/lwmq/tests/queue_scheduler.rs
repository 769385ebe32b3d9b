//! The priority policy of the scheduler.

use lwmq::internals::queue::{Priority, Producer, QueueId, Scheduler, SendQueueKind as K};
use lwmq::Timeout;

/// Items are (priority index, queue index within the test, sequence).
type Item = (usize, usize, usize);

fn fill(p: &Producer<Item>, prio: usize, q: usize, n: usize) {
    for i in 0..n {
        p.post((prio, q, i), Timeout::ZERO).unwrap();
    }
}

fn scheduler_with_all_levels(
    per_queue: usize,
) -> (Scheduler<Item>, Vec<(QueueId, Producer<Item>)>) {
    let mut s = Scheduler::new();
    let mut producers = Vec::new();
    for (i, prio) in Priority::ALL.into_iter().enumerate() {
        let (id, p) = s.add_queue(K::MultiProducerUnbounded, prio).unwrap();
        fill(&p, i, i, per_queue);
        producers.push((id, p));
    }
    (s, producers)
}

#[test]
fn weights_are_documented() {
    let w: Vec<_> = Priority::ALL.iter().map(|p| p.weight()).collect();
    assert_eq!(
        w,
        [None, Some(16), Some(8), Some(4), Some(2), Some(1), None]
    );
}

#[test]
fn time_critical_first_idle_last() {
    let n = 50;
    let (mut s, _p) = scheduler_with_all_levels(n);
    let order: Vec<Item> = std::iter::from_fn(|| s.take_next()).collect();
    assert_eq!(order.len(), 7 * n);
    assert!(
        order[..n].iter().all(|&(p, _, _)| p == 0),
        "time-critical first"
    );
    assert!(order[6 * n..].iter().all(|&(p, _, _)| p == 6), "idle last");
    assert!(order[n..6 * n]
        .iter()
        .all(|&(p, _, _)| (1..=5).contains(&p)));
    // Order within every queue is kept.
    for prio in 0..7 {
        let seq: Vec<usize> = order.iter().filter(|x| x.0 == prio).map(|x| x.2).collect();
        assert_eq!(seq, (0..n).collect::<Vec<_>>());
    }
}

#[test]
fn middle_levels_follow_weights_exactly() {
    let (mut s, producers) = scheduler_with_all_levels(0);
    for (i, (_, p)) in producers.iter().enumerate().take(6).skip(1) {
        fill(p, i, i, 2_000);
    }
    // Every window of 31 consecutive picks serves exactly 16/8/4/2/1 while
    // all five levels are non-empty.
    for window in 0..40 {
        let mut counts = [0usize; 7];
        for _ in 0..31 {
            counts[s.take_next().unwrap().0] += 1;
        }
        assert_eq!(counts, [0, 16, 8, 4, 2, 1, 0], "window {window}");
    }
}

#[test]
fn weights_among_a_subset_of_levels() {
    let mut s = Scheduler::new();
    let (_, high) = s
        .add_queue(K::MonoProducerUnbounded, Priority::Highest)
        .unwrap();
    let (_, low) = s
        .add_queue(K::MultiProducerUnboundedTagged, Priority::BelowNormal)
        .unwrap();
    fill(&high, 1, 0, 1_000);
    fill(&low, 4, 1, 1_000);
    for _ in 0..20 {
        let mut counts = [0usize; 7];
        for _ in 0..18 {
            counts[s.take_next().unwrap().0] += 1;
        }
        assert_eq!((counts[1], counts[4]), (16, 2));
    }
}

#[test]
fn time_critical_preempts_at_every_pick() {
    let (mut s, producers) = scheduler_with_all_levels(0);
    fill(&producers[3].1, 3, 3, 10);
    assert_eq!(s.take_next().unwrap().0, 3);
    fill(&producers[0].1, 0, 0, 2);
    assert_eq!(s.take_next().unwrap().0, 0);
    assert_eq!(s.take_next().unwrap().0, 0);
    assert_eq!(s.take_next().unwrap().0, 3);
    fill(&producers[6].1, 6, 6, 1);
    let rest: Vec<usize> = std::iter::from_fn(|| s.take_next()).map(|x| x.0).collect();
    assert_eq!(rest, [3, 3, 3, 3, 3, 3, 3, 3, 6]);
}

#[test]
fn equal_priority_queues_alternate() {
    let mut s = Scheduler::new();
    let kinds = [
        K::MonoProducerUnbounded,
        K::MultiProducerBoundedDiscardOldest(100),
        K::MultiProducerUnboundedTagged,
    ];
    let producers: Vec<_> = kinds
        .iter()
        .map(|&k| s.add_queue(k, Priority::Normal).unwrap().1)
        .collect();
    fill(&producers[0], 3, 0, 4);
    fill(&producers[1], 3, 1, 4);
    fill(&producers[2], 3, 2, 2);
    let order: Vec<(usize, usize)> = std::iter::from_fn(|| s.take_next())
        .map(|x| (x.1, x.2))
        .collect();
    assert_eq!(
        order,
        [
            (0, 0),
            (1, 0),
            (2, 0),
            (0, 1),
            (1, 1),
            (2, 1),
            (0, 2),
            (1, 2),
            (0, 3),
            (1, 3)
        ]
    );
}

#[test]
fn per_queue_accounting() {
    let mut s = Scheduler::<u32>::new();
    let (a, pa) = s
        .add_queue(K::MultiProducerBoundedDiscardOldest(2), Priority::Lowest)
        .unwrap();
    let (b, _pb) = s
        .add_queue(K::MonoProducerUnbounded, Priority::Idle)
        .unwrap();
    assert_eq!((a.index(), b.index(), s.queue_count()), (0, 1, 2));
    for i in 0..5 {
        pa.post(i, Timeout::ZERO).unwrap();
    }
    assert_eq!(s.discarded(a), Some(3));
    assert_eq!(s.queue_len(a), Some(2));
    assert_eq!(s.len(), 2);
    assert!(s.close_queue(b));
    assert_eq!(s.is_queue_closed(b), Some(true));
    assert_eq!(s.is_queue_closed(a), Some(false));
}

/// The exact interleaving of one period, as documented on `Scheduler`.
#[test]
fn one_period_is_interleaved() {
    let (mut s, producers) = scheduler_with_all_levels(0);
    for (i, (_, p)) in producers.iter().enumerate().take(6).skip(1) {
        fill(p, i, i, 40);
    }
    let names = ["T", "H", "A", "N", "B", "L", "I"];
    let period: String = (0..31).map(|_| names[s.take_next().unwrap().0]).collect();
    assert_eq!(period, "HAHNHAHBHAHNHAHLHAHNHAHBHAHNHAH");
}
