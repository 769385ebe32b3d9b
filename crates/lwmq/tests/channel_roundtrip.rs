//! Round trips through a messaging channel: frame counts and kinds, empty
//! frames, timestamps, shared references, external release hooks.

mod channel_common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use channel_common::*;
use lwmq::channel::InvalidMessage;
use lwmq::message::{Frame, Message, NtTime, Timestamp};
use lwmq::{CloseError, PostError, Role, Timeout};

use channel_common::mono_pair as pair;

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
    one.push(Frame::copy(b"x"));
    sent.push(one);
    let mut two = Message::new();
    two.push(Frame::copy(b"first"));
    two.push(Frame::copy(&[7u8; 300]));
    sent.push(two);
    let mut many = Message::new();
    for i in 0..1000u32 {
        many.push(Frame::copy(&i.to_le_bytes()[..(i % 5) as usize]));
    }
    sent.push(many);
    let mut empty = Message::new();
    empty.push(Frame::copy(b""));
    empty.push(Frame::copy(b"").with_timestamp(Timestamp::At(NtTime::from_ticks(1))));
    sent.push(empty);
    // Every kind, every timestamp flavour.
    let mut kinds = Message::new();
    kinds.push(Frame::copy(b"inline").with_timestamp(Timestamp::Now));
    kinds.push(Frame::copy(&vec![1u8; 5000]).with_timestamp(Timestamp::PreciseNow));
    kinds.push(
        Frame::from(bytes::Bytes::from(vec![2u8; 70]))
            .with_timestamp(Timestamp::At(NtTime::from_ticks(u64::MAX))),
    );
    kinds.push(Frame::from(STATIC).with_timestamp(Timestamp::At(NtTime::from_ticks(0))));
    kinds.push(Frame::with_hooks(vec![3u8; 1234], |_| Ok(()), |_| {}));
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

fn hooked(h: &Hooks, data: Vec<u8>) -> Frame {
    let (a, r) = (h.acquired.clone(), h.released.clone());
    Frame::with_hooks(
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
    m.push(hooked(&h, vec![9u8; 4000]));
    m.push(Frame::copy(b"tail"));
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
    m.push(hooked(&h, vec![1u8; 10_000]));
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
        m.push(hooked(&h, vec![5u8; 100]));
        qa.post(m, Timeout::INFINITE).unwrap();
    }
    assert_eq!(h.acquired.load(Ordering::SeqCst), 10);
    assert_eq!(h.released.load(Ordering::SeqCst), 0);
    assert_eq!(a.close(Timeout::ZERO), Err(CloseError::Unsent { lost: 10 }));
    assert_eq!(h.released.load(Ordering::SeqCst), 10);
    // Posting after close gives the message back, saying "closed".
    let mut m = Message::new();
    m.push(hooked(&h, vec![5u8; 100]));
    let e = qa.post(m, Timeout::INFINITE).unwrap_err();
    assert!(matches!(e, PostError::Closed(_)), "{e:?}");
    drop(e);
    assert_eq!(h.released.load(Ordering::SeqCst), 11);
}

#[test]
fn a_message_breaking_its_limits_is_refused_at_post_and_given_back() {
    let ((_a, qa), _b) = pair("limits", 1 << 20);
    // `push` took 65,536 frames without complaint; the post refuses them.
    let mut m = Message::new();
    for _ in 0..=lwmq::message::MAX_FRAMES {
        m.push(b"");
    }
    let e = qa.post(m, Timeout::ZERO).unwrap_err();
    assert!(
        e.to_string().contains("65536 frames") && e.to_string().contains("at most 65535"),
        "{e}"
    );
    let PostError::Invalid { message, error } = e else {
        panic!("not Invalid: {e:?}");
    };
    assert_eq!(
        error,
        InvalidMessage::TooManyFrames {
            count: lwmq::message::MAX_FRAMES + 1,
            max: lwmq::message::MAX_FRAMES
        }
    );
    // The message came back whole.
    assert_eq!(message.frame_count(), lwmq::message::MAX_FRAMES + 1);
    // Zeroed memory is mapped lazily: this costs address space, not RAM.
    let huge = bytes::Bytes::from(vec![0u8; lwmq::message::MAX_FRAME_SIZE + 1]);
    let mut m = Message::from(b"head");
    m.push(huge.clone());
    let e = qa.post(m, Timeout::ZERO).unwrap_err();
    assert!(matches!(
        &e,
        PostError::Invalid {
            error: InvalidMessage::FrameTooLarge { index: 1, .. },
            ..
        }
    ));
    let back = e.into_message();
    assert_eq!(back.frame(1).unwrap().data().as_ptr(), huge.as_ptr());
}

#[test]
fn received_frames_come_out_as_bytes_without_a_copy() {
    let ((_a, qa), (mut b, _qb)) = pair("bytes", 1 << 20);
    let m = Message::from_frames([
        Frame::copy(b"small header"),
        Frame::from(vec![1u8; 3000]),
        Frame::from(vec![2u8; 70_000]),
    ]);
    qa.post(m, Timeout::INFINITE).unwrap();
    let got = recv(&mut b);
    assert_eq!(got.frame_count(), 3);
    for i in 1..3 {
        let bytes = got.frame_bytes(i).unwrap();
        assert_eq!(
            bytes.as_ptr(),
            got.frame(i).unwrap().data().as_ptr(),
            "frame {i} was copied"
        );
    }
    let ptrs: Vec<_> = (0..3)
        .map(|i| got.frame(i).unwrap().data().as_ptr())
        .collect();
    // The two large frames share the message's one allocation.
    assert_eq!(ptrs[1].wrapping_add(3000), ptrs[2]);
    let frames: Vec<bytes::Bytes> = got.into_frames().map(Frame::into_bytes).collect();
    assert_eq!(&frames[0][..], b"small header");
    assert_eq!(frames[1].as_ptr(), ptrs[1]);
    assert_eq!(frames[2].as_ptr(), ptrs[2]);
    assert_eq!(frames[2].len(), 70_000);
}
