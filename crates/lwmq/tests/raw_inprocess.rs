//! Raw channels between two channels of one process (the transport is the
//! same as between processes; multi-process behaviour is tested in the
//! harness crate).

use std::time::Duration;

use lwmq::transport::RefusalReason;
use lwmq::{ConnectionState, Directions, RawChannel, Role, Timeout, TransportError};

fn unique(name: &str) -> String {
    format!("ipc://lwmq-test/{}/{}/{name}", std::process::id(), line!())
}

fn wait_state(ch: &RawChannel, want: impl Fn(&ConnectionState) -> bool) -> ConnectionState {
    let t = ch.transport(lwmq::TransportId(0)).unwrap();
    for _ in 0..1000 {
        let s = t.state();
        if want(&s) {
            return s;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!(
        "state never reached; last {:?} err {:?}",
        t.state(),
        t.last_error()
    );
}

#[test]
fn round_trip_both_directions_and_staging() {
    let uri = unique("rt");
    let mut client = RawChannel::new();
    let ct = client
        .add_transport(&uri, 4096, 4, 4, Directions::SendReceive)
        .unwrap();
    client.open(Role::Client).unwrap();
    // Send before the server exists: staged.
    {
        let mut tx = client.sender(ct).unwrap();
        for i in 0..4u8 {
            let mut b = tx.get_buffer(Timeout::ZERO).unwrap();
            b[..3].copy_from_slice(&[i, i, i]);
            b.send(3).unwrap();
        }
        // Staging is full (MaxPendingSendBuffers = 4).
        assert!(matches!(
            tx.get_buffer(Timeout::ZERO),
            Err(TransportError::Timeout)
        ));
    }
    let mut server = RawChannel::new();
    let st = server
        .add_transport(&uri, 4096, 4, 4, Directions::SendReceive)
        .unwrap();
    server.open(Role::Server).unwrap();
    let mut rx = server.receiver(st).unwrap();
    for i in 0..4u8 {
        let b = rx
            .receive_buffer(Timeout::after(Duration::from_secs(30)))
            .unwrap();
        assert_eq!(&b[..], &[i, i, i]);
    }
    // Stream both ways.
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut tx = server.sender(st).unwrap();
            for i in 0..10_000u32 {
                let mut b = tx.get_buffer(Timeout::INFINITE).unwrap();
                b[..4].copy_from_slice(&i.to_le_bytes());
                b.send(4).unwrap();
            }
            tx.flush(Timeout::after(Duration::from_secs(60))).unwrap();
        });
        let mut crx = client.receiver(ct).unwrap();
        for i in 0..10_000u32 {
            let b = crx
                .receive_buffer(Timeout::after(Duration::from_secs(60)))
                .unwrap();
            assert_eq!(u32::from_le_bytes(b[..4].try_into().unwrap()), i);
        }
    });
    let stats = server.transport(st).unwrap().stats();
    assert_eq!(stats.buffers_sent, 10_000);
    assert_eq!(stats.buffers_received, 4);
    assert_eq!(stats.connections, 1);
}

#[test]
fn second_server_is_refused_address_in_use() {
    let uri = unique("inuse");
    let mut a = RawChannel::new();
    a.add_transport(&uri, 1024, 1, 1, Directions::SendReceive)
        .unwrap();
    a.open(Role::Server).unwrap();
    let mut b = RawChannel::new();
    b.add_transport(&uri, 1024, 1, 1, Directions::SendReceive)
        .unwrap();
    let e = b.open(Role::Server).unwrap_err();
    assert!(e.to_string().contains("address in use"), "{e}");
    // Fall back to client on the same channel.
    b.open(Role::Client).unwrap();
    wait_state(&b, |s| *s == ConnectionState::Connected);
}

#[test]
fn buffer_size_mismatch_is_refused_on_both_sides() {
    let uri = unique("mismatch");
    let mut s = RawChannel::new();
    s.add_transport(&uri, 1024, 1, 1, Directions::SendReceive)
        .unwrap();
    s.open(Role::Server).unwrap();
    let mut c = RawChannel::new();
    c.add_transport(&uri, 2048, 1, 1, Directions::SendReceive)
        .unwrap();
    c.open(Role::Client).unwrap();
    let cs = wait_state(&c, |s| matches!(s, ConnectionState::Refused(_)));
    let ConnectionState::Refused(r) = cs else {
        unreachable!()
    };
    assert_eq!(r.reason, RefusalReason::BufferSize);
    assert!(r.by_peer);
    let ss = wait_state(&s, |s| matches!(s, ConnectionState::Refused(_)));
    let ConnectionState::Refused(r) = ss else {
        unreachable!()
    };
    assert!(!r.by_peer);
    assert!(s
        .transport(lwmq::TransportId(0))
        .unwrap()
        .last_error()
        .unwrap()
        .contains("BufferSizeBytes"));
}

#[test]
fn incompatible_directions_are_refused() {
    let uri = unique("dirs");
    let mut s = RawChannel::new();
    s.add_transport(&uri, 1024, 1, 0, Directions::Send).unwrap();
    s.open(Role::Server).unwrap();
    let mut c = RawChannel::new();
    c.add_transport(&uri, 1024, 1, 0, Directions::Send).unwrap();
    c.open(Role::Client).unwrap();
    let ConnectionState::Refused(r) = wait_state(&c, |s| matches!(s, ConnectionState::Refused(_)))
    else {
        unreachable!()
    };
    assert_eq!(r.reason, RefusalReason::Directions);
}

#[test]
fn lifecycle_rules() {
    let mut ch = RawChannel::new();
    assert!(matches!(
        ch.open(Role::Server),
        Err(lwmq::ChannelError::NoTransport)
    ));
    ch.add_transport(&unique("life"), 1024, 1, 1, Directions::SendReceive)
        .unwrap();
    assert!(matches!(
        ch.add_transport(&unique("life2"), 2048, 1, 1, Directions::SendReceive),
        Err(lwmq::ChannelError::BufferSizeMismatch { .. })
    ));
    assert!(matches!(
        ch.sender(lwmq::TransportId(0)),
        Err(lwmq::ChannelError::NotOpen)
    ));
    ch.open(Role::Server).unwrap();
    assert!(matches!(
        ch.add_transport(&unique("life3"), 1024, 1, 1, Directions::SendReceive),
        Err(lwmq::ChannelError::AddTransportAfterOpen)
    ));
    let _tx = ch.sender(lwmq::TransportId(0)).unwrap();
    assert!(matches!(
        ch.sender(lwmq::TransportId(0)),
        Err(lwmq::ChannelError::Transport(
            TransportError::SideInUse { .. }
        ))
    ));
}
