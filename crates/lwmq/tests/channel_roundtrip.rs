//! Round trips through a messaging channel: frame counts and kinds, empty
//! frames, timestamps, shared references, external release hooks.

mod channel_common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use channel_common::*;
use lwmq::channel::InvalidMessage;
use lwmq::message::{ExternalFrame, Message, NtTime, Timestamp};
use lwmq::{Channel, CloseError, MonoQueue, PostError, QueueOptions, ReceiveQueue, Role, Timeout};

const MONO: QueueOptions = QueueOptions::new(lwmq::Priority::Normal);
const RQ: ReceiveQueue = ReceiveQueue::mono();

fn pair(name: &str, size: usize) -> ((Channel, MonoQueue), (Channel, MonoQueue)) {
    let uri = unique(name);
    let a = endpoint(&uri, Role::Server, size, MONO, RQ);
    let b = endpoint(&uri, Role::Client, size, MONO, RQ);
    (a, b)
}

fn frames_of(m: &Message) -> Vec<(Vec<u8>, Option<NtTime>)> {
    m.frames()
        .map(|f| (f.data().to_vec(), f.timestamp()))
        .collect()
}

static STATIC: &[u8] = b"static frame bytes that are not copied";

#[test]
fn frames_of_every_count_and_kind_round_trip_exactly() {
    let ((a, qa), (mut b, _qb)) = pair("kinds", 1 << 20);
    let mut sent = Vec::new();
    // 1 frame, 2 frames, 1000 frames, empty frames.
    let mut one = Message::new();
    one.push_copy(b"x", Timestamp::None).unwrap();
    sent.push(one);
    let mut two = Message::new();
    two.push_copy(b"first", Timestamp::None).unwrap();
    two.push_copy(&[7u8; 300], Timestamp::None).unwrap();
    sent.push(two);
    let mut many = Message::new();
    for i in 0..1000u32 {
        many.push_copy(&i.to_le_bytes()[..(i % 5) as usize], Timestamp::None)
            .unwrap();
    }
    sent.push(many);
    let mut empty = Message::new();
    empty.push_copy(b"", Timestamp::None).unwrap();
    empty
        .push_copy(b"", Timestamp::At(NtTime::from_ticks(1)))
        .unwrap();
    sent.push(empty);
    // Every kind, every timestamp flavour.
    let mut kinds = Message::new();
    kinds.push_copy(b"inline", Timestamp::SystemTime).unwrap();
    kinds
        .push_copy(&vec![1u8; 5000], Timestamp::PreciseSystemTime)
        .unwrap();
    kinds
        .push_bytes(
            bytes::Bytes::from(vec![2u8; 70]),
            Timestamp::At(NtTime::from_ticks(u64::MAX)),
        )
        .unwrap();
    kinds
        .push_static(STATIC, Timestamp::At(NtTime::from_ticks(0)))
        .unwrap();
    kinds
        .push_external(ExternalFrame::from_owner(vec![3u8; 1234]), Timestamp::None)
        .unwrap();
    sent.push(kinds);

    let expected: Vec<_> = sent.iter().map(frames_of).collect();
    for m in sent {
        qa.post(m, Timeout::INFINITE).unwrap();
    }
    for want in expected {
        let got = b.receive(LIVENESS).unwrap();
        assert_eq!(got.frame_count(), want.len());
        assert_eq!(
            got.payload_size(),
            want.iter().map(|f| f.0.len()).sum::<usize>()
        );
        assert_eq!(frames_of(&got), want);
    }
    a.flush(LIVENESS).unwrap();
}

#[test]
fn both_directions() {
    let ((mut a, qa), (mut b, qb)) = pair("both", 4096);
    qa.post(numbered(1), Timeout::INFINITE).unwrap();
    qb.post(numbered(2), Timeout::INFINITE).unwrap();
    assert_eq!(number(&recv(&mut b)), 1);
    assert_eq!(number(&recv(&mut a)), 2);
}

struct Hooks {
    acquired: Arc<AtomicUsize>,
    released: Arc<AtomicUsize>,
}

fn hooked(h: &Hooks, data: Vec<u8>) -> ExternalFrame {
    let (a, r) = (h.acquired.clone(), h.released.clone());
    ExternalFrame::with_hooks(
        data,
        move |_| {
            a.fetch_add(1, Ordering::SeqCst);
            Ok(())
        },
        move |_| {
            r.fetch_add(1, Ordering::SeqCst);
        },
    )
}

fn hooks() -> Hooks {
    Hooks {
        acquired: Arc::default(),
        released: Arc::default(),
    }
}

#[test]
fn a_reference_shared_across_two_channels_reaches_both_and_releases_once() {
    let h = hooks();
    let ((a1, q1), (mut b1, _)) = pair("share1", 65536);
    let ((a2, q2), (mut b2, _)) = pair("share2", 65536);
    let mut m = Message::new();
    m.push_external(hooked(&h, vec![9u8; 4000]), Timestamp::None)
        .unwrap();
    m.push_copy(b"tail", Timestamp::None).unwrap();
    let r = m.share();
    q1.post(m, Timeout::INFINITE).unwrap();
    q2.post(r, Timeout::INFINITE).unwrap();
    for ch in [&mut b1, &mut b2] {
        let got = recv(ch);
        assert_eq!(got.frame(0).unwrap().data(), &[9u8; 4000][..]);
        assert_eq!(got.frame(1).unwrap().data(), b"tail");
    }
    a1.flush(LIVENESS).unwrap();
    a2.flush(LIVENESS).unwrap();
    assert_eq!(h.acquired.load(Ordering::SeqCst), 1);
    assert_eq!(h.released.load(Ordering::SeqCst), 1);
}

#[test]
fn release_hook_runs_once_when_a_post_fails() {
    let h = hooks();
    let ((_a, qa), _b) = pair("fail", 4096);
    let mut m = Message::new();
    m.push_external(hooked(&h, vec![1u8; 10_000]), Timestamp::None)
        .unwrap();
    let err = qa.post(m, Timeout::INFINITE).unwrap_err();
    let PostError::Invalid {
        error: InvalidMessage::TooLarge { encoded, limit },
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(*limit, 4096 - 8);
    assert!(*encoded > *limit);
    assert!(err.to_string().contains("4088"), "{err}");
    assert_eq!(h.released.load(Ordering::SeqCst), 0);
    let m = err.into_message();
    drop(m);
    assert_eq!(h.released.load(Ordering::SeqCst), 1);
    assert_eq!(h.acquired.load(Ordering::SeqCst), 0);
}

#[test]
fn release_hook_runs_once_when_the_channel_closes_with_messages_queued() {
    let h = hooks();
    let uri = unique("closeq");
    // No peer: the messages stay queued.
    let (a, qa) = endpoint(&uri, Role::Server, 65536, MONO, RQ);
    for _ in 0..10 {
        let mut m = Message::new();
        m.push_external(hooked(&h, vec![5u8; 100]), Timestamp::None)
            .unwrap();
        qa.post(m, Timeout::INFINITE).unwrap();
    }
    assert_eq!(h.acquired.load(Ordering::SeqCst), 10);
    assert_eq!(h.released.load(Ordering::SeqCst), 0);
    assert_eq!(a.close(Timeout::ZERO), Err(CloseError::Unsent { lost: 10 }));
    assert_eq!(h.released.load(Ordering::SeqCst), 10);
    // Posting after close gives the message back, saying "closed".
    let mut m = Message::new();
    m.push_external(hooked(&h, vec![5u8; 100]), Timestamp::None)
        .unwrap();
    let e = qa.post(m, Timeout::INFINITE).unwrap_err();
    assert!(matches!(e, PostError::Closed(_)), "{e:?}");
    drop(e);
    assert_eq!(h.released.load(Ordering::SeqCst), 11);
}
