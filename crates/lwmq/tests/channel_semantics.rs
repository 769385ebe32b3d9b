//! Send-queue semantics through a live channel: priorities, tags, bounded
//! discards (send and receive side), clubbing, flush and close, fan-out.
//! Every check is on what arrives, never on timing.

mod channel_common;

use std::collections::HashMap;
use std::time::Duration;

use channel_common::*;
use lwmq::message::{Frame, Message};
use lwmq::{
    Channel, ChannelBuilder, CloseError, Endpoint, MonoQueue, PostError, Priority, QueueOptions,
    ReceiveError, ReceiveQueue, Role, Timeout,
};

const RQ: ReceiveQueue = ReceiveQueue::mono();

/// A receive-only client (the peer that arrives later).
fn receiver(uri: &str, rq: ReceiveQueue) -> Channel {
    let ep = Endpoint::new(uri)
        .unwrap()
        .buffer_size(65536)
        .send_buffers(0)
        .receive_buffers(8);
    Channel::builder()
        .transport(ep)
        .unwrap()
        .receive_queue(rq)
        .open(Role::Client)
        .unwrap()
}

/// A send-only server builder with no peer yet.
fn sender(uri: &str) -> ChannelBuilder {
    let ep = Endpoint::new(uri)
        .unwrap()
        .buffer_size(65536)
        .send_buffers(8)
        .receive_buffers(0);
    Channel::builder().transport(ep).unwrap()
}

/// [`sender`], opened as server, with one mono NORMAL queue of `options`.
fn open_sender_with(uri: &str, options: QueueOptions) -> (Channel, MonoQueue) {
    let mut b = sender(uri);
    let q = b.mono_queue(options).unwrap();
    (b.open(Role::Server).unwrap(), q)
}

/// [`open_sender_with`] an unbounded queue (tests that queue more than a
/// high-water mark's worth before the peer arrives).
fn open_sender(uri: &str) -> (Channel, MonoQueue) {
    open_sender_with(uri, QueueOptions::new(Priority::Normal).unbounded())
}

fn msg2(a: u64, b: u64) -> Message {
    let mut m = Message::new();
    let mut v = a.to_le_bytes().to_vec();
    v.extend_from_slice(&b.to_le_bytes());
    m.push(Frame::copy(&v));
    m
}

fn parts(m: &Message) -> (u64, u64) {
    let d = m.frame(0).unwrap().data();
    (
        u64::from_le_bytes(d[..8].try_into().unwrap()),
        u64::from_le_bytes(d[8..16].try_into().unwrap()),
    )
}

#[test]
fn priorities_with_prefilled_queues() {
    let uri = unique("prio");
    let mut a = sender(&uri);
    let queues: Vec<_> = Priority::ALL
        .iter()
        .map(|&p| a.multi_queue(p).unwrap())
        .collect();
    let a = a.open(Role::Server).unwrap();
    const N: u64 = 620;
    for (p, q) in queues.iter().enumerate() {
        for seq in 0..N {
            q.post(msg2(p as u64, seq), Timeout::ZERO).unwrap();
        }
    }
    let mut b = receiver(&uri, RQ);
    let mut order = Vec::new();
    for _ in 0..7 * N {
        order.push(parts(&recv(&mut b)));
    }
    // TIME_CRITICAL first, IDLE last.
    assert!(order[..N as usize].iter().all(|&(p, _)| p == 0));
    assert!(order[6 * N as usize..].iter().all(|&(p, _)| p == 6));
    // Order kept within each queue.
    let mut next: HashMap<u64, u64> = HashMap::new();
    for &(p, seq) in &order {
        let n = next.entry(p).or_default();
        assert_eq!(seq, *n, "priority {p} out of order");
        *n += 1;
    }
    // Middle shares follow the weights 16/8/4/2/1 while all five have
    // messages: in the first 310 middle messages, 160/80/40/20/10.
    let middle = &order[N as usize..N as usize + 310];
    let mut counts = [0u32; 7];
    for &(p, _) in middle {
        counts[p as usize] += 1;
    }
    assert_eq!(&counts[1..6], &[160, 80, 40, 20, 10], "{counts:?}");
    a.close(LIVENESS).unwrap();
}

#[test]
fn tags_keep_only_the_latest_update_while_the_peer_is_absent() {
    let uri = unique("tags");
    let mut a = sender(&uri);
    let q = a
        .multi_queue(QueueOptions::new(Priority::Normal).tagged())
        .unwrap();
    let a = a.open(Role::Server).unwrap();
    q.post_with_tag(msg2(1, 1), 1, Timeout::ZERO).unwrap();
    q.post(msg2(0, 0), Timeout::ZERO).unwrap();
    for v in 0..10_000 {
        q.post_with_tag(msg2(7, v), 7, Timeout::ZERO).unwrap();
    }
    q.post_with_tag(msg2(2, 2), 2, Timeout::ZERO).unwrap();
    q.post(msg2(0, 1), Timeout::ZERO).unwrap();
    let mut b = receiver(&uri, RQ);
    a.flush(LIVENESS).unwrap();
    let mut got = Vec::new();
    while let Ok(r) = b.receive(Timeout::after(Duration::from_millis(200))) {
        got.push(parts(&r));
    }
    assert_eq!(got, vec![(1, 1), (0, 0), (7, 9999), (2, 2), (0, 1)]);
}

#[test]
fn bounded_send_queues_discard_oldest_or_newest() {
    let uri = unique("sdisc");
    let mut a = sender(&uri);
    let old = a
        .multi_queue(QueueOptions::new(Priority::Highest).discard_oldest(4))
        .unwrap();
    let new = a
        .multi_queue(QueueOptions::new(Priority::Lowest).discard_newest(4))
        .unwrap();
    let a = a.open(Role::Server).unwrap();
    for v in 0..10 {
        old.post(msg2(1, v), Timeout::ZERO).unwrap();
        let r = new.post(msg2(2, v), Timeout::ZERO);
        if v < 4 {
            r.unwrap();
        } else {
            let e = r.unwrap_err();
            assert!(matches!(e, PostError::Full(_)), "{e:?}");
            assert_eq!(parts(&e.into_message()), (2, v));
        }
    }
    assert_eq!(old.discarded(), 6);
    assert_eq!(new.discarded(), 6);
    let mut b = receiver(&uri, RQ);
    a.flush(LIVENESS).unwrap();
    let mut got = Vec::new();
    while let Ok(r) = b.receive(Timeout::after(Duration::from_millis(200))) {
        got.push(parts(&r));
    }
    got.sort();
    let want: Vec<_> = (6..10)
        .map(|v| (1, v))
        .chain((0..4).map(|v| (2, v)))
        .collect();
    assert_eq!(got, want);
}

fn receive_discards(rq: ReceiveQueue, keep: std::ops::Range<u64>) {
    let uri = unique("rdisc");
    let (a, q) = open_sender(&uri);
    let mut b = receiver(&uri, rq);
    for v in 0..10 {
        q.post(numbered(v), Timeout::ZERO).unwrap();
    }
    // Flush returns once the peer's receive thread has taken (and queued
    // or discarded) every buffer.
    a.flush(LIVENESS).unwrap();
    let mut got = Vec::new();
    while let Ok(r) = b.receive(Timeout::after(Duration::from_millis(200))) {
        got.push(number(&r));
    }
    assert_eq!(got, keep.collect::<Vec<_>>());
    assert_eq!(b.stats().receive_discards, 6);
}

#[test]
fn bounded_receive_queue_discard_oldest_keeps_the_newest() {
    receive_discards(ReceiveQueue::multi_discard_oldest(4), 6..10);
}

#[test]
fn bounded_receive_queue_discard_newest_keeps_the_oldest() {
    receive_discards(ReceiveQueue::multi_discard_newest(4), 0..4);
}

#[test]
fn clubbing_packs_queued_messages_and_a_lone_message_leaves_at_once() {
    let uri = unique("club");
    let (a, q) = open_sender(&uri);
    // Load: 10,000 messages waiting when the peer arrives.
    for v in 0..10_000 {
        q.post(numbered(v), Timeout::ZERO).unwrap();
    }
    let mut b = receiver(&uri, RQ);
    for v in 0..10_000 {
        assert_eq!(number(&recv(&mut b)), v);
    }
    a.flush(LIVENESS).unwrap();
    let s = a.stats();
    assert_eq!(s.messages_sent, 10_000);
    assert!(s.messages_per_buffer > 100.0, "{s:?}");
    // Idle, then one message: it arrives without any other post.
    std::thread::sleep(Duration::from_millis(50));
    q.post(numbered(424242), Timeout::ZERO).unwrap();
    assert_eq!(number(&recv(&mut b)), 424242);
}

#[test]
fn a_buffer_kept_open_for_a_busy_peer_is_sent_when_posting_stops() {
    // Bursts posted faster than the peer takes them: the sender finds its
    // peer busy (buffers outstanding) and keeps its last buffer open for
    // more posts. When a burst ends, that buffer must still go out by
    // itself: no flush, no further post.
    let uri = unique("open");
    let (a, q) = open_sender(&uri);
    let mut b = receiver(&uri, RQ);
    let total = 20_000u64;
    for round in 0..4u64 {
        for v in 0..total / 4 {
            q.post(numbered(round * (total / 4) + v), Timeout::NEVER)
                .unwrap();
        }
        // A pause between bursts: whatever is open must not wait for the
        // next burst.
        std::thread::sleep(Duration::from_millis(20));
    }
    for v in 0..total {
        assert_eq!(number(&recv(&mut b)), v);
    }
    // Everything was sent without a flush.
    assert_eq!(a.stats().messages_sent, total);
    // And a lone message after the bursts still leaves at once.
    q.post(numbered(7), Timeout::ZERO).unwrap();
    assert_eq!(number(&recv(&mut b)), 7);
}

#[test]
fn flush_returns_once_everything_is_sent() {
    let uri = unique("flush");
    let (a, q) = open_sender(&uri);
    let mut b = receiver(&uri, RQ);
    for v in 0..5000 {
        q.post(numbered(v), Timeout::NEVER).unwrap();
    }
    a.flush(LIVENESS).unwrap();
    assert!(q.is_empty());
    assert_eq!(a.stats().messages_sent, 5000);
    for v in 0..5000 {
        assert_eq!(number(&b.try_receive().unwrap_or_else(|_| recv(&mut b))), v);
    }
}

#[test]
fn flush_without_a_peer_times_out_and_sending_goes_on() {
    let uri = unique("flusht");
    let (a, q) = open_sender(&uri);
    q.post(numbered(5), Timeout::ZERO).unwrap();
    let e = a
        .flush(Timeout::after(Duration::from_millis(50)))
        .unwrap_err();
    assert!(matches!(e, lwmq::channel::FlushError::Timeout), "{e}");
    let mut b = receiver(&uri, RQ);
    assert_eq!(number(&recv(&mut b)), 5);
}

#[test]
fn close_with_linger_delivers_pending_messages() {
    let uri = unique("linger");
    let (a, q) = open_sender(&uri);
    for v in 0..100 {
        q.post(numbered(v), Timeout::ZERO).unwrap();
    }
    let uri2 = uri.clone();
    let peer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        let mut b = receiver(&uri2, RQ);
        (0..100).map(|_| number(&recv(&mut b))).collect::<Vec<_>>()
    });
    a.close(LIVENESS).unwrap();
    assert_eq!(peer.join().unwrap(), (0..100).collect::<Vec<_>>());
    let e = q.post(numbered(1), Timeout::ZERO).unwrap_err();
    assert!(matches!(e, PostError::Closed(_)), "{e:?}");
}

#[test]
fn close_with_zero_linger_does_not_hang() {
    let uri = unique("zero");
    let (a, q) = open_sender(&uri);
    for v in 0..1000 {
        q.post(numbered(v), Timeout::ZERO).unwrap();
    }
    assert_eq!(
        a.close(Timeout::ZERO),
        Err(CloseError::Unsent { lost: 1000 })
    );
    // Dropping an open channel with a queue and a receiver does not hang
    // either (a zero linger drops at once).
    let uri = unique("drop");
    let mut b = builder(&uri, 4096, RQ).linger(Timeout::ZERO);
    let q = b.mono_queue(Priority::Normal).unwrap();
    let ch = b.open(Role::Server).unwrap();
    q.post(numbered(1), Timeout::ZERO).unwrap();
    drop(ch);
}

#[test]
fn receive_after_close_reports_closed() {
    let uri = unique("rclosed");
    let (mut ch, _q) = endpoint(&uri, Role::Server, 4096, QueueOptions::default(), RQ);
    assert_eq!(ch.try_receive().unwrap_err(), ReceiveError::Timeout);
    // A multi-consumer receiver outlives the channel: once it is closed
    // (and drained) it reports Closed.
    let uri = unique("rclosed-multi");
    let (ch, _q) = endpoint(
        &uri,
        Role::Server,
        4096,
        QueueOptions::default(),
        ReceiveQueue::multi(),
    );
    let r = ch.receiver().unwrap();
    ch.close(Timeout::ZERO).unwrap();
    assert_eq!(r.receive(Timeout::NEVER).unwrap_err(), ReceiveError::Closed);
}

#[test]
fn fan_out_delivers_every_message_to_both_peers() {
    let (u1, u2) = (unique("fan1"), unique("fan2"));
    let mut a = sender(&u1)
        .transport(
            Endpoint::new(&u2)
                .unwrap()
                .buffer_size(65536)
                .send_buffers(8)
                .receive_buffers(0),
        )
        .unwrap();
    let q = a.mono_queue(Priority::Normal).unwrap();
    let a = a.open(Role::Server).unwrap();
    let mut b1 = receiver(&u1, RQ);
    // The second peer arrives after some messages were sent to the first.
    for v in 0..3000 {
        q.post(numbered(v), Timeout::NEVER).unwrap();
    }
    let mut b2 = receiver(&u2, RQ);
    for v in 3000..6000 {
        q.post(numbered(v), Timeout::NEVER).unwrap();
    }
    a.flush(LIVENESS).unwrap();
    for b in [&mut b1, &mut b2] {
        for v in 0..6000 {
            assert_eq!(number(&recv(b)), v);
        }
    }
    assert_eq!(a.stats().messages_sent, 12_000);
}
