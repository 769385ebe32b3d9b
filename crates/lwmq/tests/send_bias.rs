//! The sender's bias (`channel/send.rs`, "The bias"): a mono queue that
//! posts into a clean channel keeps the sender biased to it, and every
//! other thread that needs the sender takes the bias back first. These
//! tests check that the bias is granted and revoked when it should be,
//! and that with a biased mono queue, multi-queue posters, flushes and
//! the service thread all competing for the sender, every message
//! arrives exactly once and in its poster's order. Nothing here depends
//! on timing.

mod channel_common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use channel_common::*;
use lwmq::message::{Frame, Message};
use lwmq::{
    Channel, ConnectionState, Endpoint, MonoQueue, MultiQueue, Priority, Role, Timeout, TransportId,
};

/// A message from poster `source`: `(source, seq)`.
fn tagged(source: u64, seq: u64) -> Message {
    let mut v = source.to_le_bytes().to_vec();
    v.extend_from_slice(&seq.to_le_bytes());
    let mut m = Message::new();
    m.push(Frame::copy(&v));
    m
}

fn untag(m: &Message) -> (u64, u64) {
    let d = m.frame(0).unwrap().data();
    (
        u64::from_le_bytes(d[..8].try_into().unwrap()),
        u64::from_le_bytes(d[8..16].try_into().unwrap()),
    )
}

/// Whether this process may use `membarrier`; without it no bias is ever
/// granted (and the counts below stay 0).
fn bias_possible() -> bool {
    std::env::var_os("LWMQ_NO_MEMBARRIER").is_none()
}

/// A send-only server with a mono and a multi queue (both NORMAL), and a
/// receive-only client connected to it. Small buffers and rings, so that
/// rings fill and buffers are kept open while the receiver is busy.
fn pair(uri: &str) -> (Channel, MonoQueue, MultiQueue, Channel) {
    let ep = || Endpoint::new(uri).unwrap().buffer_size(4096);
    let mut b = Channel::builder()
        .transport(ep().send_buffers(4).receive_buffers(0))
        .unwrap();
    let mono = b.mono_queue(Priority::Normal).unwrap();
    let multi = b.multi_queue(Priority::Normal).unwrap();
    let tx = b.open(Role::Server).unwrap();
    let rx = Channel::builder()
        .transport(ep().send_buffers(0).receive_buffers(4))
        .unwrap()
        .open(Role::Client)
        .unwrap();
    let t = tx.transport(TransportId(0)).unwrap();
    for _ in 0..20_000 {
        if t.state() == ConnectionState::Connected {
            break;
        }
        thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(t.state(), ConnectionState::Connected, "peer never came");
    (tx, mono, multi, rx)
}

#[test]
fn a_clean_mono_post_biases_the_sender_and_flush_takes_the_bias_back() {
    let uri = unique("bias-grant");
    let (tx, mono, _multi, mut rx) = pair(&uri);
    // Each post finds the channel clean (the previous message was taken),
    // so the first one grants the bias and the second goes through it.
    for seq in 0..2 {
        mono.post(tagged(0, seq), Timeout::ZERO).unwrap();
        assert_eq!(untag(&recv(&mut rx)), (0, seq));
    }
    let before = tx.stats();
    tx.flush(LIVENESS).unwrap();
    let after = tx.stats();
    if bias_possible() {
        assert!(before.bias_grants >= 1, "no bias granted: {before:?}");
        assert!(
            after.bias_revocations >= 1,
            "flush did not take the bias back: {after:?}"
        );
    }
    // The sender still works after the revocation, through the ordinary
    // path and then a new bias.
    for seq in 2..5 {
        mono.post(tagged(0, seq), Timeout::ZERO).unwrap();
        assert_eq!(untag(&recv(&mut rx)), (0, seq));
    }
    assert!(tx.stats().bias_revocations <= tx.stats().bias_grants);
}

#[test]
fn a_biased_mono_queue_shares_the_sender_with_other_posters_flush_and_the_service_thread() {
    const MONO: u64 = 60_000;
    const MULTI: u64 = 15_000;
    const MULTI_POSTERS: u64 = 2;
    let uri = unique("bias-mixed");
    // Posts wait at the queues' high-water mark when the receiver falls
    // behind: the bias, the service thread, flushes and blocked posters
    // all meet here.
    let (tx, mono, multi, mut rx) = pair(&uri);

    let total = MONO + MULTI * MULTI_POSTERS;
    let receiver = thread::spawn(move || {
        let mut next = [0u64; 1 + MULTI_POSTERS as usize];
        for _ in 0..total {
            let (source, seq) = untag(&recv(&mut rx));
            let expected = next
                .get_mut(source as usize)
                .unwrap_or_else(|| panic!("unknown source {source}"));
            assert_eq!(
                seq, *expected,
                "source {source}: lost, repeated or reordered"
            );
            *expected += 1;
        }
        (next, rx)
    });

    let posting = Arc::new(AtomicBool::new(true));
    let mono_poster = thread::spawn(move || {
        for seq in 0..MONO {
            mono.post(tagged(0, seq), Timeout::NEVER).unwrap();
            if seq % 1024 == 0 {
                thread::yield_now();
            }
        }
        mono
    });
    let multi_posters: Vec<_> = (1..=MULTI_POSTERS)
        .map(|source| {
            let q = multi.clone();
            thread::spawn(move || {
                for seq in 0..MULTI {
                    q.post(tagged(source, seq), Timeout::NEVER).unwrap();
                    if seq % 256 == 0 {
                        thread::yield_now();
                    }
                }
            })
        })
        .collect();
    // Flushes from the channel's thread compete for the sender too; a
    // short flush timing out is fine, the sending goes on.
    let flusher = {
        let posting = Arc::clone(&posting);
        move |tx: &Channel| {
            while posting.load(Ordering::Acquire) {
                let _ = tx.flush(Timeout::after(Duration::from_micros(300)));
                thread::sleep(Duration::from_micros(500));
            }
        }
    };
    let flushing = thread::scope(|s| {
        let h = s.spawn(|| flusher(&tx));
        let mono = mono_poster.join().unwrap();
        for p in multi_posters {
            p.join().unwrap();
        }
        posting.store(false, Ordering::Release);
        h.join().unwrap();
        mono
    });
    tx.flush(LIVENESS).unwrap();
    let (next, _rx) = receiver.join().unwrap();
    assert_eq!(next, [MONO, MULTI, MULTI]);
    let s = tx.stats();
    eprintln!("{s:?}");
    assert_eq!(s.messages_sent, total, "{s:?}");
    assert!(s.bias_revocations <= s.bias_grants, "{s:?}");
    drop(flushing);
    tx.close(LIVENESS).unwrap();
}
