//! Backpressure by default: a queue's high-water mark makes posts wait
//! while the peer is slower (or absent), gives the message back when the
//! wait ends, and lets posters go on as soon as the sender drains it.
//! No assertion depends on timing: a post that must block is checked not
//! to have returned, and released by the peer's arrival.

// A failed post gives the message back by value, as the API does.
#![allow(clippy::result_large_err)]

mod channel_common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use channel_common::*;
use lwmq::{Channel, Endpoint, PostError, Priority, QueueOptions, ReceiveQueue, Role, Timeout};

/// A send-only server with no peer yet.
fn sender(uri: &str) -> lwmq::ChannelBuilder {
    Channel::builder()
        .transport(
            Endpoint::new(uri)
                .unwrap()
                .buffer_size(4096)
                .send_buffers(2)
                .receive_buffers(0),
        )
        .unwrap()
        .linger(Timeout::ZERO)
}

/// The receive-only peer.
fn receiver(uri: &str) -> Channel {
    Channel::builder()
        .transport(
            Endpoint::new(uri)
                .unwrap()
                .buffer_size(4096)
                .send_buffers(0)
                .receive_buffers(2),
        )
        .unwrap()
        .open(Role::Client)
        .unwrap()
}

#[test]
fn a_mono_queue_blocks_at_its_mark_and_resumes_when_the_peer_drains_it() {
    const MARK: u64 = 3;
    let uri = unique("mono-mark");
    let mut b = sender(&uri);
    let q = b
        .mono_queue(QueueOptions::new(Priority::Normal).high_water_mark(MARK as usize))
        .unwrap();
    let tx = b.open(Role::Server).unwrap();
    // No peer: the first MARK posts queue, the next is refused at once
    // (`try_post`) or after its timeout, and comes back.
    for n in 0..MARK {
        q.try_post(numbered(n)).unwrap();
    }
    assert_eq!(q.len(), MARK as usize);
    let e = q.try_post(numbered(MARK)).unwrap_err();
    assert!(matches!(e, PostError::Full(_)), "{e:?}");
    assert!(e.to_string().contains("full"), "{e}");
    let e = q
        .post(e.into_message(), Duration::from_millis(30))
        .unwrap_err();
    assert_eq!(number(&e.into_message()), MARK);
    // A poster with no time limit waits; it is released when a peer
    // arrives and the sender drains the queue below the mark.
    let posted = Arc::new(AtomicU64::new(MARK));
    let p = Arc::clone(&posted);
    let poster = std::thread::spawn(move || {
        for n in MARK..MARK + 50 {
            q.post(numbered(n), Timeout::NEVER).unwrap();
            p.store(n + 1, Ordering::SeqCst);
        }
        q
    });
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        posted.load(Ordering::SeqCst),
        MARK,
        "a post passed the mark"
    );
    let mut rx = receiver(&uri);
    for n in 0..MARK + 50 {
        assert_eq!(number(&recv(&mut rx)), n);
    }
    let q = poster.join().unwrap();
    tx.flush(LIVENESS).unwrap();
    assert_eq!(q.len(), 0);
    // Every post waited its turn: nothing was dropped or refused.
    assert_eq!(tx.stats().messages_sent, MARK + 50);
}

#[test]
fn a_multi_queue_blocks_at_its_mark_too() {
    let uri = unique("multi-mark");
    let mut b = sender(&uri);
    let q = b
        .multi_queue(QueueOptions::new(Priority::Normal).high_water_mark(2))
        .unwrap();
    let tagged = b
        .multi_queue(
            QueueOptions::new(Priority::Lowest)
                .high_water_mark(2)
                .tagged(),
        )
        .unwrap();
    let tx = b.open(Role::Server).unwrap();
    q.post(numbered(0), Timeout::ZERO).unwrap();
    q.post(numbered(1), Timeout::ZERO).unwrap();
    assert!(matches!(q.try_post(numbered(2)), Err(PostError::Full(_))));
    // A refusal at the mark is not a discard.
    assert_eq!(q.discarded(), 0);
    // A tagged queue at its mark still takes a replacement (it needs no
    // room), and refuses a new tag.
    tagged
        .post_with_tag(numbered(100), 1, Timeout::ZERO)
        .unwrap();
    tagged
        .post_with_tag(numbered(200), 2, Timeout::ZERO)
        .unwrap();
    tagged
        .post_with_tag(numbered(101), 1, Timeout::ZERO)
        .unwrap();
    assert!(matches!(
        tagged.post_with_tag(numbered(300), 3, Timeout::ZERO),
        Err(PostError::Full(_))
    ));
    // Several blocked posters are all released.
    let posters: Vec<_> = (0..3)
        .map(|i| {
            let q = q.clone();
            std::thread::spawn(move || q.post(numbered(10 + i), Timeout::NEVER))
        })
        .collect();
    let mut rx = receiver(&uri);
    let mut got: Vec<u64> = (0..7).map(|_| number(&recv(&mut rx))).collect();
    for p in posters {
        p.join().unwrap().unwrap();
    }
    tx.flush(LIVENESS).unwrap();
    got.sort();
    assert_eq!(got, [0, 1, 10, 11, 12, 101, 200]);
}

#[test]
fn an_unbounded_queue_never_waits_and_a_blocked_post_ends_with_the_channel() {
    let uri = unique("unbounded");
    let mut b = sender(&uri);
    let u = b
        .mono_queue(QueueOptions::new(Priority::Normal).unbounded())
        .unwrap();
    let m = b
        .multi_queue(QueueOptions::new(Priority::Normal).high_water_mark(1))
        .unwrap();
    let tx = b.open(Role::Server).unwrap();
    for n in 0..5000 {
        u.try_post(numbered(n)).unwrap();
    }
    assert_eq!(u.high_water_mark(), None);
    // A poster blocked at the mark when the channel closes gets "closed".
    m.post(numbered(0), Timeout::ZERO).unwrap();
    let blocked = std::thread::spawn(move || m.post(numbered(1), Timeout::NEVER));
    std::thread::sleep(Duration::from_millis(50));
    let _ = tx.close(Timeout::ZERO);
    let e = blocked.join().unwrap().unwrap_err();
    assert!(matches!(e, PostError::Closed(_)), "{e:?}");
}

#[test]
fn a_receiving_peer_with_a_default_queue_keeps_a_fast_poster_in_step() {
    // Both defaults (mark 1000, mono receive queue), a poster far faster
    // than its consumer: nothing is lost, the poster is paced.
    let uri = unique("paced");
    let (a, q) = endpoint(
        &uri,
        Role::Server,
        4096,
        QueueOptions::default(),
        ReceiveQueue::default(),
    );
    let (mut b, _) = endpoint(
        &uri,
        Role::Client,
        4096,
        QueueOptions::default(),
        ReceiveQueue::default(),
    );
    let poster = std::thread::spawn(move || {
        for n in 0..20_000 {
            q.post(numbered(n), Timeout::NEVER).unwrap();
            assert!(q.len() <= 1000);
        }
        q
    });
    for n in 0..20_000 {
        if n % 1000 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(number(&recv(&mut b)), n);
    }
    let _q = poster.join().unwrap();
    a.flush(LIVENESS).unwrap();
}
