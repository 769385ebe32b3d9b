//! A peer that writes into the slot the application is filling, then
//! leaves, must not get its bytes delivered to the next peer.
//!
//! The attack (issue 12, finding 1): the application (here this test
//! process, a raw server) obtains a send buffer in the shared section of a
//! connection and fills it; the peer (an `lwmq-peer hostile --mode inject`
//! process) knows which slot that is from `tail`, writes "EVIL" over its
//! start, shuts its socket down and keeps its mapping. The application then
//! sends the buffer. The former code found the connection dead and copied
//! the slot out of the dead section into the next connection, so the next,
//! honest peer received "EVILT-PAYLOAD". Now the send reports the buffer
//! lost and nothing of the dead section is ever delivered.

mod common;

use std::time::{Duration, Instant};

use common::*;
use lwmq::raw::SendError;
use lwmq::{
    Channel, ConnectionState, Endpoint, Message, Priority, RawChannel, Role, Timeout,
    TransportError, TransportId,
};

const WAIT: Timeout = Timeout::after(Duration::from_secs(30));

fn wait_state(ch: &RawChannel, want: impl Fn(&ConnectionState) -> bool) {
    let t = ch.transport(TransportId(0)).unwrap();
    let end = Instant::now() + LIVENESS;
    while !want(&t.state()) {
        assert!(Instant::now() < end, "state stuck at {}", t.state());
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Starts the attacker (`lwmq-peer hostile --mode MODE`, 4 buffers of
/// 4096 bytes), which strikes once the file `go` exists.
fn injector(uri: &str, mode: &str, go: &std::path::Path) -> Peer {
    spawn(&[
        "hostile",
        uri,
        "--mode",
        mode,
        "--buffers",
        "4",
        "--buffer-size",
        "4096",
        "--pause-file",
        go.to_str().unwrap(),
        "--seconds",
        "30",
    ])
}

#[test]
fn a_peer_that_writes_into_the_acquired_slot_then_leaves_injects_nothing() {
    let uri = unique("inject");
    let go = std::env::temp_dir().join(format!("lwmq-inject-{}", std::process::id()));
    let _ = std::fs::remove_file(&go);
    let server = raw_channel(&uri, 4096, (4, 4), |e| e, Role::Server);
    let mut attacker = injector(&uri, "inject", &go);
    attacker.expect("CONNECTED", LIVENESS);
    wait_state(&server, |s| *s == ConnectionState::Connected);
    let tx = server.sender(TransportId(0)).unwrap();

    // The application fills a buffer of the attacker's connection...
    let mut b = tx.get_buffer(WAIT).unwrap();
    b.write(0, b"LEGIT-PAYLOAD").unwrap();
    // ...the attacker overwrites it and leaves, keeping its mapping...
    std::fs::write(&go, b"go").unwrap();
    attacker.expect("STRUCK", LIVENESS);
    wait_state(&server, |s| *s != ConnectionState::Connected);
    let mut seen = [0u8; 13];
    b.read(0, &mut seen).unwrap();
    assert_eq!(&seen, b"EVILT-PAYLOAD", "the attacker did write the slot");
    // ...and the send reports the buffer lost instead of keeping it.
    match b.send(13) {
        Err(SendError::Failed(TransportError::BufferLost(_))) => {}
        other => panic!("expected BufferLost, got {other:?}"),
    }
    // The application sends again (staged: no peer now).
    let mut b = tx.get_buffer(WAIT).unwrap();
    b.write(0, b"LEGIT-PAYLOAD").unwrap();
    b.send(13).unwrap();

    // The next, honest peer gets exactly the application's bytes.
    let honest = raw_channel(&uri, 4096, (4, 4), |e| e, Role::Client);
    let rx = honest.receiver(TransportId(0)).unwrap();
    let got = rx.receive_buffer(WAIT).unwrap();
    assert_eq!(got.to_vec(), b"LEGIT-PAYLOAD");
    drop(got);
    assert!(matches!(
        rx.receive_buffer(Timeout::after(Duration::from_millis(300))),
        Err(TransportError::Timeout)
    ));
    attacker.kill9();
    let _ = std::fs::remove_file(&go);
}

/// The same attack on a messaging channel: the application holds a loan
/// (`MonoQueue::loan`, written in place in the attacker's section) when
/// the attacker overwrites the start of that slot and leaves. Posting the
/// loan then loses it (counted in `messages_lost`, never copied to the
/// next connection); the next, honest peer receives only what the
/// application posted afterwards.
#[test]
fn a_peer_that_writes_into_a_loaned_buffer_then_leaves_injects_nothing() {
    let uri = unique("inject-msg");
    let go = std::env::temp_dir().join(format!("lwmq-inject-msg-{}", std::process::id()));
    let _ = std::fs::remove_file(&go);
    let ep = |uri: &str| {
        Endpoint::new(uri)
            .unwrap()
            .buffer_size(4096)
            .send_buffers(4)
            .receive_buffers(4)
    };
    let mut b = Channel::builder().transport(ep(&uri)).unwrap();
    let q = b.mono_queue(Priority::Normal).unwrap();
    let server = b.open(Role::Server).unwrap();
    let mut attacker = injector(&uri, "inject-msg", &go);
    attacker.expect("CONNECTED", LIVENESS);
    server.wait_connected(LIVENESS).unwrap();

    // The application writes a message in place in the attacker's
    // section...
    let mut loan = q.loan(13, WAIT).unwrap();
    assert!(loan.is_in_place(), "the loan is in the shared slot");
    loan.write(0, b"LEGIT-PAYLOAD").unwrap();
    // ...the attacker overwrites the slot's start and leaves...
    std::fs::write(&go, b"go").unwrap();
    attacker.expect("STRUCK", LIVENESS);
    let t = server.transport(TransportId(0)).unwrap();
    let end = Instant::now() + LIVENESS;
    while t.state() == ConnectionState::Connected {
        assert!(Instant::now() < end, "the attacker's leaving was not seen");
        std::thread::sleep(Duration::from_millis(5));
    }
    // ...and posting the loan loses it instead of re-staging the slot.
    loan.post().unwrap();
    assert_eq!(server.stats().messages_lost, 1);
    q.post(Message::from(b"AFTER-ATTACK".to_vec()), WAIT)
        .unwrap();

    // The next, honest peer gets exactly what was posted after the attack.
    let mut hb = Channel::builder().transport(ep(&uri)).unwrap();
    let _hq = hb.mono_queue(Priority::Normal).unwrap();
    let mut honest = hb.open(Role::Client).unwrap();
    let got = honest.receive(WAIT).unwrap();
    assert_eq!(got.frame_count(), 1);
    assert_eq!(got.frame(0).unwrap().data(), b"AFTER-ATTACK");
    assert!(matches!(
        honest.receive(Timeout::after(Duration::from_millis(300))),
        Err(lwmq::ReceiveError::Timeout)
    ));
    attacker.kill9();
    let _ = std::fs::remove_file(&go);
}
