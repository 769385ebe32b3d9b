//! `Channel::receive_with`: messages lent in place from the transport
//! buffer, interleaved with ordinary receives, in every shape the wire
//! format has (one small frame, a large frame, several frames with
//! timestamps); the owned fallback; a closure that panics; a poll.

mod channel_common;

use std::panic::{catch_unwind, AssertUnwindSafe};

use channel_common::*;
use lwmq::channel::Lent;
use lwmq::message::{Frame, FrameRead, Message, MessageRead, NtTime, Timestamp};
use lwmq::{QueueOptions, ReceiveError, ReceiveQueue};
use lwmq::{Role, Timeout};

/// Message `n`: shapes rotate through one small frame, one large frame
/// (past the inline size) and three frames, the middle one timestamped.
fn shaped(n: u64) -> Message {
    let tag = n.to_le_bytes();
    let mut m = Message::new();
    match n % 3 {
        0 => {
            m.push(Frame::copy(&tag));
        }
        1 => {
            let mut big = vec![(n % 251) as u8; 300];
            big[..8].copy_from_slice(&tag);
            m.push(Frame::copy(&big));
        }
        _ => {
            m.push(Frame::copy(&tag));
            m.push(Frame::copy(b"middle").with_timestamp(Timestamp::At(NtTime::from_ticks(n))));
            m.push(Frame::copy(&[7u8; 100]));
        }
    }
    m
}

type Frames = Vec<(Vec<u8>, Option<NtTime>)>;

fn frames_of(m: &Message) -> Frames {
    m.frames()
        .map(|f| (f.data().to_vec(), f.timestamp()))
        .collect()
}

fn lent_frames(m: &Lent<'_>) -> Frames {
    m.frames().map(|f| (f.to_vec(), f.timestamp())).collect()
}

/// Checks everything a `Lent` says against the message that was posted.
fn check_lent(m: &Lent<'_>, n: u64) {
    let expected = frames_of(&shaped(n));
    assert_eq!(lent_frames(m), expected, "message {n}");
    assert_eq!(m.frame_count(), expected.len());
    assert_eq!(
        m.payload_size(),
        expected.iter().map(|(d, _)| d.len()).sum::<usize>()
    );
    for (i, (data, ts)) in expected.iter().enumerate() {
        let f = m.frame(i).unwrap();
        assert_eq!((f.len(), f.timestamp()), (data.len(), *ts));
        // Every way of reading the bytes gives the same.
        let mut whole = vec![0u8; data.len() + 3];
        assert_eq!(f.copy_to(&mut whole), data.len());
        assert_eq!(&whole[..data.len()], &data[..]);
        let mut tail = [0u8; 5];
        let from = data.len() / 2;
        let n = f.read(from, &mut tail);
        assert_eq!(&tail[..n], &data[from..(from + 5).min(data.len())]);
        assert_eq!(f.read(data.len(), &mut tail), 0);
        assert_eq!(f.as_private().is_some(), !m.is_in_place());
        // SAFETY: the sender is an lwmq channel of this test, which does
        // not touch a buffer it sent until it is given back.
        assert_eq!(unsafe { f.as_slice() }, &data[..]);
    }
    assert!(m.frame(expected.len()).is_none());
    assert_eq!(frames_of(&m.to_message()), expected);
    // The reading trait reads a lent message as it reads an owned one.
    assert_eq!(read_generic(m), read_generic(&m.to_message()));
    assert_eq!(
        m.to_vec(),
        expected
            .iter()
            .flat_map(|(d, _)| d.clone())
            .collect::<Vec<u8>>()
    );
}

/// Everything a message says, read through `MessageRead` only.
fn read_generic<M: MessageRead>(m: &M) -> (usize, usize, Frames, Vec<u8>) {
    let frames = m
        .frames()
        .map(|f| (FrameRead::to_vec(&f), f.timestamp()))
        .collect();
    (
        m.frame_count(),
        m.payload_size(),
        frames,
        MessageRead::to_vec(m),
    )
}

fn pair(rq: ReceiveQueue) -> (lwmq::Channel, lwmq::MonoQueue, lwmq::Channel) {
    let uri = unique("lend");
    let (a, q) = endpoint(&uri, Role::Server, 4096, QueueOptions::default(), rq);
    let (b, _) = endpoint(&uri, Role::Client, 4096, QueueOptions::default(), rq);
    (a, q, b)
}

#[test]
fn lent_and_received_messages_interleave_in_order() {
    const N: u64 = 3_000;
    let (_a, q, mut b) = pair(ReceiveQueue::mono());
    let poster = std::thread::spawn(move || {
        for n in 0..N {
            q.post(shaped(n), Timeout::NEVER).unwrap();
        }
        q
    });
    let mut in_place = [0u64; 2];
    for n in 0..N {
        // Runs of lent and received messages, so that lending starts both
        // on a fresh buffer and in the middle of one decoded ahead.
        if (n / 7) % 2 == 0 {
            let lent_in_place = b
                .receive_with(LIVENESS, |m| {
                    check_lent(&m, n);
                    m.is_in_place()
                })
                .unwrap();
            in_place[usize::from(lent_in_place)] += 1;
        } else {
            assert_eq!(frames_of(&recv(&mut b)), frames_of(&shaped(n)));
        }
    }
    let _q = poster.join().unwrap();
    assert_eq!(b.stats().decode_errors, 0);
    // Both kinds were lent: decoded-ahead messages first, then in place.
    assert!(in_place[0] > 0 && in_place[1] > 0, "{in_place:?}");
}

#[test]
fn a_multi_consumer_queue_lends_owned_messages() {
    let (_a, q, mut b) = pair(ReceiveQueue::multi());
    for n in 0..30 {
        q.post(shaped(n), Timeout::ZERO).unwrap();
    }
    for n in 0..30 {
        b.receive_with(LIVENESS, |m| check_lent(&m, n)).unwrap();
    }
}

#[test]
fn a_closure_that_panics_loses_only_its_own_message() {
    let (_a, q, mut b) = pair(ReceiveQueue::mono());
    for n in 0..3 {
        q.post(shaped(3 * n), Timeout::ZERO).unwrap();
    }
    b.receive_with(LIVENESS, |m| check_lent(&m, 0)).unwrap();
    let r = catch_unwind(AssertUnwindSafe(|| {
        b.receive_with(LIVENESS, |_| panic!("the application's bug"))
    }));
    assert!(r.is_err());
    // The message after the one whose closure panicked, neither lost nor
    // repeated.
    b.receive_with(LIVENESS, |m| check_lent(&m, 6)).unwrap();
    assert!(matches!(
        b.receive_with(Timeout::ZERO, |_| unreachable!("nothing was sent")),
        Err(ReceiveError::Timeout)
    ));
}

#[test]
fn receive_with_on_a_channel_that_does_not_receive_says_so() {
    let ep = lwmq::Endpoint::new(unique("norx"))
        .unwrap()
        .receive_buffers(0);
    let mut b = lwmq::Channel::builder().transport(ep).unwrap();
    let _q = b.mono_queue(lwmq::Priority::Normal).unwrap();
    let mut ch = b.linger(Timeout::ZERO).open(Role::Server).unwrap();
    let mut called = false;
    let r = ch.receive_with(Timeout::ZERO, |_| called = true);
    assert!(matches!(r, Err(ReceiveError::NotReceiving)), "{r:?}");
    assert!(!called);
}

/// A typed record lent in place decodes as the owned message does
/// (`Lent::decode`, feature "serde").
#[cfg(feature = "serde")]
#[test]
fn typed_records_decode_from_lent_messages() {
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Rec {
        n: u64,
        name: String,
        data: Vec<u8>,
    }
    let rec = |n: u64| Rec {
        n,
        name: format!("rec {n}"),
        data: vec![n as u8; (n % 5 * 200) as usize],
    };
    const N: u64 = 200;
    let (_a, q, mut b) = pair(ReceiveQueue::mono());
    for n in 0..N {
        q.post(Message::encode(&rec(n)).unwrap(), Timeout::INFINITE)
            .unwrap();
    }
    for n in 0..N {
        if n % 2 == 0 {
            let got: Rec = b.receive_with(LIVENESS, |m| m.decode().unwrap()).unwrap();
            assert_eq!(got, rec(n));
        } else {
            let got = b.receive(LIVENESS).unwrap();
            assert_eq!(got.decode::<Rec>().unwrap(), rec(n));
        }
    }
}
