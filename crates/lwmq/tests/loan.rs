//! Loans (`MonoQueue::loan`): one-frame messages written in place. Order
//! with posted messages, dropped loans, the private fallback, the limits,
//! and random interleavings of posts and loans decoded exactly.

mod channel_common;

use channel_common::*;
use lwmq::channel::LoanError;
use lwmq::message::{Frame, Message};
use lwmq::{Channel, MonoQueue, Role, Timeout};
use proptest::prelude::*;

use channel_common::mono_pair as pair;

fn connected(a: &Channel, b: &Channel) {
    a.wait_connected(LIVENESS).unwrap();
    b.wait_connected(LIVENESS).unwrap();
}

/// A loan of `len` bytes in the transport's memory. Right after the
/// connection comes up the channel's thread may still own the sender (a
/// loan then falls back to private memory), so a private one is given
/// back and asked again, within the liveness bound.
fn in_place_loan(q: &MonoQueue, len: usize) -> lwmq::channel::Loan<'_> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let loan = q.loan(len, Timeout::INFINITE).unwrap();
        if loan.is_in_place() {
            return loan;
        }
        drop(loan);
        assert!(std::time::Instant::now() < deadline, "never in place");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

fn payload(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|k| (k * 7 + i * 13) as u8).collect()
}

fn loan_and_post(q: &MonoQueue, data: &[u8]) -> bool {
    let mut loan = q.loan(data.len(), Timeout::INFINITE).unwrap();
    assert_eq!(loan.len(), data.len());
    loan.write(0, data).unwrap();
    let in_place = loan.is_in_place();
    loan.post().unwrap();
    in_place
}

fn received(b: &mut Channel) -> Vec<u8> {
    let m = b.receive(LIVENESS).unwrap();
    assert_eq!(m.frame_count(), 1);
    m.frame(0).unwrap().data().to_vec()
}

#[test]
fn a_loan_is_written_in_place_and_ordered_with_posts() {
    let ((a, qa), (mut b, _qb)) = pair("loan-order", 1 << 16);
    connected(&a, &b);
    let mut want = Vec::new();
    let mut in_place = 0;
    for i in 0..200 {
        let data = payload(i, [0, 1, 63, 64, 65, 1000, 20_000][i % 7]);
        if i % 3 == 0 {
            qa.post(Message::from(Frame::copy(&data)), Timeout::INFINITE)
                .unwrap();
        } else {
            in_place += usize::from(loan_and_post(&qa, &data));
        }
        want.push(data);
    }
    for w in want {
        assert_eq!(received(&mut b), w);
    }
    // With one connected transport and the peer keeping up, loans go in
    // place (a few may fall back while the service thread sends).
    assert!(in_place > 0, "no loan was in place");
    a.flush(LIVENESS).unwrap();
}

#[test]
fn a_dropped_loan_sends_nothing_and_loses_nothing() {
    let ((a, qa), (mut b, _qb)) = pair("loan-drop", 1 << 16);
    connected(&a, &b);
    qa.post(Message::from(Frame::copy(b"before")), Timeout::INFINITE)
        .unwrap();
    {
        let mut loan = qa.loan(100, Timeout::INFINITE).unwrap();
        loan.fill(0xee);
        // Dropped unposted.
    }
    loan_and_post(&qa, b"after");
    {
        let _untouched = qa.loan(7, Timeout::INFINITE).unwrap();
    }
    a.flush(LIVENESS).unwrap();
    assert_eq!(received(&mut b), b"before");
    assert_eq!(received(&mut b), b"after");
    assert!(matches!(
        b.receive(Timeout::after(std::time::Duration::from_millis(100))),
        Err(lwmq::ReceiveError::Timeout)
    ));
    assert_eq!(a.stats().messages_sent, 2);
}

#[test]
fn a_loan_checks_its_range_and_the_limits() {
    let ((a, qa), (mut b, _qb)) = pair("loan-limits", 4096);
    connected(&a, &b);
    // 8 header + 1 count + 2 frame header + 4085 = 4096: fits exactly.
    let mut loan = qa.loan(4085, Timeout::INFINITE).unwrap();
    let e = loan.write(4000, &[0u8; 100]).unwrap_err();
    assert_eq!((e.offset, e.len, e.size), (4000, 100, 4085));
    loan.fill(3);
    loan.post().unwrap();
    assert_eq!(received(&mut b), vec![3u8; 4085]);
    match qa.loan(4086, Timeout::INFINITE) {
        Err(
            e @ LoanError::TooLarge {
                len: 4086,
                encoded: 4097,
                limit: 4096,
            },
        ) => {
            // Rust words, not C words.
            let t = e.to_string();
            assert!(
                t.contains("buffer_size") && !t.contains("BufferSizeBytes"),
                "{t}"
            );
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    drop(a);
    assert!(matches!(
        qa.loan(10, Timeout::INFINITE),
        Err(LoanError::Closed)
    ));
}

#[test]
fn a_loan_before_any_peer_is_private_and_delivered() {
    let uri = unique("loan-nopeer");
    let (a, qa) = endpoint(&uri, Role::Server, 1 << 16, MONO, RQ);
    let loan = {
        let mut l = qa.loan(300, Timeout::INFINITE).unwrap();
        l.write(0, &payload(1, 300)).unwrap();
        l
    };
    assert!(!loan.is_in_place(), "no peer: nothing to write in place");
    loan.post().unwrap();
    let (mut b, _qb) = endpoint(&uri, Role::Client, 1 << 16, MONO, RQ);
    assert_eq!(received(&mut b), payload(1, 300));
    a.flush(LIVENESS).unwrap();
}

#[test]
fn a_loan_whose_connection_dies_is_lost_not_delivered_to_the_next_peer() {
    let uri = unique("loan-dead");
    let (a, qa) = endpoint(&uri, Role::Server, 1 << 16, MONO, RQ);
    let (b, _qb) = endpoint(&uri, Role::Client, 1 << 16, MONO, RQ);
    connected(&a, &b);
    let mut loan = in_place_loan(&qa, 500);
    loan.fill(0xdd);
    // The peer leaves while the loan is out.
    drop(b);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while a
        .transports()
        .any(|t| t.state() == lwmq::ConnectionState::Connected)
    {
        assert!(std::time::Instant::now() < deadline, "disconnect not seen");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    loan.post().unwrap();
    let (mut c, _qc) = endpoint(&uri, Role::Client, 1 << 16, MONO, RQ);
    connected(&a, &c);
    loan_and_post(&qa, b"next");
    assert_eq!(received(&mut c), b"next");
    assert_eq!(a.stats().messages_lost, 1);
}

#[test]
fn a_loan_behind_a_full_ring_falls_back_and_keeps_the_order() {
    let ((a, qa), (mut b, _qb)) = pair("loan-full", 4096);
    connected(&a, &b);
    // More than the ring holds: the rest stays queued.
    let mut want = Vec::new();
    for i in 0..200 {
        let data = payload(i, 1000);
        qa.post(Message::from(Frame::copy(&data)), Timeout::INFINITE)
            .unwrap();
        want.push(data);
    }
    let data = payload(999, 1500);
    let mut loan = qa.loan(data.len(), Timeout::INFINITE).unwrap();
    loan.write(0, &data).unwrap();
    loan.post().unwrap();
    want.push(data);
    for i in 200..210 {
        let data = payload(i, 10);
        qa.post(Message::from(Frame::copy(&data)), Timeout::INFINITE)
            .unwrap();
        want.push(data);
    }
    for w in want {
        assert_eq!(received(&mut b), w);
    }
    a.flush(LIVENESS).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    /// Random interleavings of posts (every frame kind), loans posted and
    /// loans dropped arrive exactly as sent, in order.
    #[test]
    fn posts_and_loans_arrive_in_order(
        items in proptest::collection::vec((0u8..4, 0usize..3000, any::<u8>()), 1..60),
    ) {
        let ((a, qa), (mut b, _qb)) = pair("loan-prop", 1 << 14);
        connected(&a, &b);
        let mut want = Vec::new();
        for (i, (how, len, seed)) in items.iter().enumerate() {
            let data: Vec<u8> = (0..*len).map(|k| (k as u8).wrapping_mul(*seed).wrapping_add(i as u8)).collect();
            match how {
                0 => {
                    qa.post(Message::from(Frame::copy(&data)), Timeout::INFINITE).unwrap();
                    want.push(data);
                }
                1 => {
                    qa.post(Message::from(Frame::from(data.clone())), Timeout::INFINITE).unwrap();
                    want.push(data);
                }
                2 => {
                    loan_and_post(&qa, &data);
                    want.push(data);
                }
                _ => {
                    let mut l = qa.loan(data.len(), Timeout::INFINITE).unwrap();
                    l.write(0, &data).unwrap();
                    drop(l);
                }
            }
        }
        a.flush(LIVENESS).unwrap();
        for w in want {
            prop_assert_eq!(received(&mut b), w);
        }
        prop_assert!(matches!(
            b.receive(Timeout::ZERO),
            Err(lwmq::ReceiveError::Timeout)
        ));
    }
}
