//! The life of a messaging channel: every builder rule returns its named
//! error, a failed open gives the builder back, posts before open and
//! after close or drop say so, and the channel's receive calls (batch,
//! iterators, interrupter).

mod channel_common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use channel_common::*;
use lwmq::channel::{InvalidMessage, OpenErrorKind};
use lwmq::message::{Frame, Message};
use lwmq::{
    Channel, ConfigError, Endpoint, PostError, Priority, QueueOptions, ReceiveError, ReceiveQueue,
    Role, Timeout, TransportId,
};

/// An endpoint with `s` send and `r` receive buffers of 4 KiB.
fn ep_with(s: u32, r: u32) -> Endpoint {
    Endpoint::new(unique("life"))
        .unwrap()
        .buffer_size(4096)
        .send_buffers(s)
        .receive_buffers(r)
}

fn open_err(b: lwmq::ChannelBuilder) -> lwmq::OpenError {
    match b.open(Role::Server) {
        Ok(_) => panic!("opened"),
        Err(e) => e,
    }
}

#[test]
fn open_rules_each_name_their_rule() {
    let e = open_err(Channel::builder());
    assert!(matches!(e.kind(), OpenErrorKind::NoTransport), "{e}");
    assert!(e.to_string().contains("no transport"), "{e}");

    // Sends, but no queue.
    let e = open_err(Channel::builder().transport(ep_with(4, 4)).unwrap());
    assert!(matches!(e.kind(), OpenErrorKind::NoQueue), "{e}");
    assert!(e.to_string().contains("no queue"), "{e}");

    // A queue, but nothing sends.
    let mut b = Channel::builder().transport(ep_with(0, 4)).unwrap();
    let _q = b.mono_queue(Priority::Normal).unwrap();
    let e = open_err(b);
    assert!(matches!(e.kind(), OpenErrorKind::QueueWithoutSender), "{e}");

    // A receive queue, but nothing receives.
    let mut b = Channel::builder()
        .transport(ep_with(4, 0))
        .unwrap()
        .receive_queue(ReceiveQueue::multi());
    let _q = b.mono_queue(Priority::Normal).unwrap();
    let e = open_err(b);
    assert!(
        matches!(e.kind(), OpenErrorKind::ReceiveQueueWithoutReceiver),
        "{e}"
    );

    // A bounded receive queue of capacity 0.
    let b = Channel::builder()
        .transport(ep_with(0, 4))
        .unwrap()
        .receive_queue(ReceiveQueue::multi_discard_oldest(0));
    let e = open_err(b);
    assert!(
        matches!(
            e.kind(),
            OpenErrorKind::Config(ConfigError::ZeroQueueLimit { .. })
        ),
        "{e}"
    );

    // None of these left anything started: the builder opens once fixed.
    let mut b = open_err(Channel::builder().transport(ep_with(4, 4)).unwrap()).into_builder();
    let _q = b.mono_queue(Priority::Normal).unwrap();
    let ch = b.linger(Timeout::ZERO).open(Role::Server).unwrap();
    assert!(ch.transport(TransportId(0)).is_some());
    assert!(ch.transport(TransportId(1)).is_none());
}

#[test]
fn builder_rules_each_name_their_rule() {
    let mut b = Channel::builder().transport(ep_with(4, 4)).unwrap();
    let e = b
        .add_transport(ep_with(4, 4).buffer_size(8192))
        .unwrap_err();
    assert!(
        matches!(
            e,
            ConfigError::BufferSizeMismatch {
                existing: 4096,
                new: 8192,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("same buffer_size"), "{e}");
    // Queue options a mono queue cannot take, and zero limits.
    for (options, feature) in [
        (QueueOptions::new(Priority::Normal).tagged(), "tagged"),
        (
            QueueOptions::new(Priority::Normal).discard_oldest(4),
            "discard_oldest",
        ),
        (
            QueueOptions::new(Priority::Normal).discard_newest(4),
            "discard_newest",
        ),
    ] {
        let e = b.mono_queue(options).unwrap_err();
        assert_eq!(e, ConfigError::MonoQueue { feature }, "{e}");
        assert!(e.to_string().contains("multi queue"), "{e}");
    }
    for (options, setting) in [
        (
            QueueOptions::new(Priority::Idle).high_water_mark(0),
            "high_water_mark",
        ),
        (
            QueueOptions::new(Priority::Idle).discard_newest(0),
            "discard_newest",
        ),
        (
            QueueOptions::new(Priority::Idle).discard_oldest(0),
            "discard_oldest",
        ),
    ] {
        let e = b.multi_queue(options).unwrap_err();
        assert_eq!(e, ConfigError::ZeroQueueLimit { setting }, "{e}");
    }
    // The defaults.
    let q = b.mono_queue(Priority::Normal).unwrap();
    assert_eq!(q.high_water_mark(), Some(1000));
    let u = b
        .multi_queue(QueueOptions::new(Priority::Normal).unbounded())
        .unwrap();
    assert_eq!(u.high_water_mark(), None);
    let t = b
        .multi_queue(
            QueueOptions::new(Priority::Normal)
                .high_water_mark(7)
                .tagged(),
        )
        .unwrap();
    assert_eq!((t.high_water_mark(), t.is_tagged()), (Some(7), true));
    let ch = b.linger(Timeout::ZERO).open(Role::Server).unwrap();
    assert_eq!(ch.transports().count(), 1);
}

#[test]
fn a_server_whose_address_is_taken_gets_its_builder_back_and_opens_as_client() {
    let uri = unique("in-use");
    let (_first, _q) = endpoint(
        &uri,
        Role::Server,
        4096,
        QueueOptions::default(),
        ReceiveQueue::default(),
    );
    let mut b = builder(&uri, 4096, ReceiveQueue::default());
    let q = b.mono_queue(Priority::Normal).unwrap();
    let e = b.open(Role::Server).unwrap_err();
    assert!(e.is_address_in_use(), "{e}");
    assert!(e.to_string().contains("address in use"), "{e}");
    // The same builder, queue and all, opens as a client.
    let mut b = e.into_builder();
    let q2 = b.mono_queue(Priority::Normal).unwrap();
    let ch = b.open(Role::Client).unwrap();
    wait_connected(&ch);
    q.post(numbered(1), LIVENESS).unwrap();
    q2.post(numbered(2), LIVENESS).unwrap();
    ch.flush(LIVENESS).unwrap();
    // And `open_server_or_client` does the same in one call.
    let mut b = builder(&uri, 4096, ReceiveQueue::default());
    let _q = b.mono_queue(Priority::Normal).unwrap();
    // (The first server is busy with `ch`: this third channel still opens,
    // as a client, and is refused `Busy` in the background.)
    let (_third, role) = b.open_server_or_client().unwrap();
    assert_eq!(role, Role::Client);
}

#[test]
fn posts_before_open_after_close_and_after_drop_say_why() {
    let mut b = builder(&unique("post"), 4096, ReceiveQueue::default()).linger(Timeout::ZERO);
    let q = b.mono_queue(Priority::Normal).unwrap();
    let m = b.multi_queue(Priority::Normal).unwrap();
    let e = q.post(numbered(1), Timeout::ZERO).unwrap_err();
    assert!(matches!(e, PostError::NotOpen(_)), "{e:?}");
    assert!(e.to_string().contains("not open yet"), "{e}");
    let ch = b.open(Role::Server).unwrap();
    // The checks of a message, each handing it back.
    let e = q.post(Message::new(), Timeout::ZERO).unwrap_err();
    assert!(
        matches!(
            e,
            PostError::Invalid {
                error: InvalidMessage::NoFrames,
                ..
            }
        ),
        "{e:?}"
    );
    let e = m.post_with_tag(numbered(1), 5, Timeout::ZERO).unwrap_err();
    assert!(matches!(e, PostError::TagUnsupported(_)), "{e:?}");
    let mut big = Message::new();
    big.push(Frame::copy(&[0u8; 4096]));
    let e = q.post(big, Timeout::ZERO).unwrap_err();
    assert!(
        matches!(
            e,
            PostError::Invalid {
                error: InvalidMessage::TooLarge { limit: 4088, .. },
                ..
            }
        ),
        "{e:?}"
    );
    ch.close(Timeout::ZERO).unwrap();
    // After close: "closed", never "open it first" (the bug this fixes).
    for e in [
        q.post(numbered(2), Timeout::ZERO).unwrap_err(),
        m.post(numbered(2), Timeout::NEVER).unwrap_err(),
    ] {
        assert!(matches!(e, PostError::Closed(_)), "{e:?}");
        assert!(e.to_string().contains("closed"), "{e}");
        assert_eq!(number(&e.into_message()), 2);
    }
    // After drop as well.
    let mut b = builder(&unique("drop"), 4096, ReceiveQueue::default()).linger(Timeout::ZERO);
    let q = b.mono_queue(Priority::Normal).unwrap();
    drop(b.open(Role::Server).unwrap());
    assert!(matches!(
        q.post(numbered(3), Timeout::ZERO),
        Err(PostError::Closed(_))
    ));
}

#[test]
fn priorities_order_by_importance() {
    use Priority::*;
    assert_eq!(Lowest.max(Highest), Highest);
    assert_eq!(std::cmp::max(Idle, TimeCritical), TimeCritical);
    let mut all = Priority::ALL.to_vec();
    all.sort();
    assert_eq!(
        all,
        [
            Idle,
            Lowest,
            BelowNormal,
            Normal,
            AboveNormal,
            Highest,
            TimeCritical
        ]
    );
    assert_eq!(Priority::default(), Normal);
}

#[test]
fn receive_rules() {
    // A channel that does not receive says so.
    let mut b = Channel::builder().transport(ep_with(4, 0)).unwrap();
    let _q = b.mono_queue(Priority::Normal).unwrap();
    let mut ch = b.linger(Timeout::ZERO).open(Role::Server).unwrap();
    assert_eq!(ch.try_receive().unwrap_err(), ReceiveError::NotReceiving);
    assert!(ch.receiver().is_none());
    // Nothing yet: a poll says Timeout.
    let (mut ch, _q) = endpoint(
        &unique("rx"),
        Role::Server,
        4096,
        QueueOptions::default(),
        ReceiveQueue::default(),
    );
    assert_eq!(ch.try_receive().unwrap_err(), ReceiveError::Timeout);
    assert_eq!(
        ch.receive(Duration::from_millis(20)).unwrap_err(),
        ReceiveError::Timeout
    );
}

/// A connected pair: `a` posts through `q`, `b` receives.
fn pair(rq: ReceiveQueue) -> (Channel, lwmq::MonoQueue, Channel) {
    let uri = unique("pair");
    let (a, q) = endpoint(&uri, Role::Server, 4096, QueueOptions::default(), rq);
    let (b, _) = endpoint(&uri, Role::Client, 4096, QueueOptions::default(), rq);
    wait_connected(&a);
    (a, q, b)
}

#[test]
fn batch_receive_waits_for_the_first_and_takes_what_is_ready() {
    for rq in [ReceiveQueue::mono(), ReceiveQueue::multi()] {
        let (a, q, mut b) = pair(rq);
        let mut got = Vec::new();
        assert_eq!(b.receive_batch(&mut got, 0, Timeout::NEVER).unwrap(), 0);
        for n in 0..10 {
            q.post(numbered(n), LIVENESS).unwrap();
        }
        // Once flushed, the peer has taken every buffer: all 10 are ready.
        a.flush(LIVENESS).unwrap();
        assert_eq!(b.receive_batch(&mut got, 4, LIVENESS).unwrap(), 4);
        assert_eq!(b.receive_batch(&mut got, 100, LIVENESS).unwrap(), 6);
        assert_eq!(
            got.iter().map(number).collect::<Vec<_>>(),
            (0..10).collect::<Vec<_>>()
        );
        assert_eq!(
            b.receive_batch(&mut got, 100, Timeout::ZERO).unwrap_err(),
            ReceiveError::Timeout
        );
        // The iterators.
        for n in 10..15 {
            q.post(numbered(n), LIVENESS).unwrap();
        }
        a.flush(LIVENESS).unwrap();
        let ready: Vec<u64> = b.try_iter().map(|m| number(&m)).collect();
        assert_eq!(ready, (10..15).collect::<Vec<_>>());
        q.post(numbered(15), LIVENESS).unwrap();
        assert_eq!(b.iter().next().map(|m| number(&m)), Some(15));
    }
}

#[test]
fn an_interrupter_ends_a_blocked_receive_promptly() {
    for rq in [ReceiveQueue::mono(), ReceiveQueue::multi()] {
        let (_a, q, mut b) = pair(rq);
        let stop = b.interrupter();
        // A receive blocked with no timeout, in another thread.
        let waiting = Arc::new(AtomicBool::new(false));
        let w = Arc::clone(&waiting);
        let t = std::thread::spawn(move || {
            w.store(true, Ordering::SeqCst);
            let r = b.receive(Timeout::NEVER);
            (r, b)
        });
        while !waiting.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        std::thread::sleep(Duration::from_millis(100));
        stop.interrupt();
        let (r, mut b) = t.join().unwrap();
        assert_eq!(r.unwrap_err(), ReceiveError::Interrupted);
        // One interrupt ends one receive; messages still flow afterwards.
        q.post(numbered(1), LIVENESS).unwrap();
        assert_eq!(number(&recv(&mut b)), 1);
        // An interrupt with nobody waiting ends the next receive, which
        // returns it even when a message is ready.
        stop.interrupt();
        q.post(numbered(2), LIVENESS).unwrap();
        assert_eq!(b.receive(LIVENESS).unwrap_err(), ReceiveError::Interrupted);
        assert_eq!(number(&recv(&mut b)), 2);
        // The same through `iter`, which ends, and `receive_with`.
        stop.interrupt();
        assert!(b.iter().next().is_none());
        stop.interrupt();
        assert_eq!(
            b.receive_with(LIVENESS, |_| ()).unwrap_err(),
            ReceiveError::Interrupted
        );
    }
}

#[test]
fn an_interrupter_ends_a_receive_waiting_on_several_transports_and_a_receiver() {
    let (u1, u2) = (unique("int1"), unique("int2"));
    let ep = |u: &str| Endpoint::new(u).unwrap().send_buffers(0).receive_buffers(4);
    let mut ch = Channel::builder()
        .transport(ep(&u1))
        .unwrap()
        .transport(ep(&u2))
        .unwrap()
        .receive_queue(ReceiveQueue::multi())
        .open(Role::Server)
        .unwrap();
    let stop = ch.interrupter();
    let r = ch.receiver().unwrap();
    let t = std::thread::spawn(move || r.receive(Timeout::NEVER));
    std::thread::sleep(Duration::from_millis(100));
    stop.interrupt();
    assert_eq!(t.join().unwrap().unwrap_err(), ReceiveError::Interrupted);
    let t = std::thread::spawn(move || ch.receive(Timeout::NEVER));
    std::thread::sleep(Duration::from_millis(100));
    stop.interrupt();
    assert_eq!(t.join().unwrap().unwrap_err(), ReceiveError::Interrupted);
}

#[test]
fn affinity_control() {
    let mut b = builder(&unique("aff"), 4096, ReceiveQueue::default()).linger(Timeout::ZERO);
    let _q = b.mono_queue(Priority::Normal).unwrap();
    // Before any set: the calling thread's set, which open's threads inherit.
    let inherited = b.service_thread_affinity();
    assert!(!inherited.is_empty());
    assert_eq!(b.set_service_thread_affinity(&[0]).unwrap(), inherited);
    let ch = b.open(Role::Server).unwrap();
    // Each set returns the previous one; a refused set changes nothing.
    assert_eq!(ch.set_service_thread_affinity(&[0, 1]).unwrap(), vec![0]);
    assert!(ch.set_service_thread_affinity(&[]).is_err());
    assert_eq!(ch.service_thread_affinity(), vec![0, 1]);
}
