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
        let tx = client.sender(ct).unwrap();
        for i in 0..4u8 {
            let mut b = tx.get_buffer(Timeout::ZERO).unwrap();
            b.write(0, &[i, i, i]).unwrap();
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
    let rx = server.receiver(st).unwrap();
    for i in 0..4u8 {
        let b = rx
            .receive_buffer(Timeout::after(Duration::from_secs(30)))
            .unwrap();
        assert_eq!(b.to_vec(), [i, i, i]);
    }
    // Stream both ways.
    std::thread::scope(|s| {
        s.spawn(|| {
            let tx = server.sender(st).unwrap();
            for i in 0..10_000u32 {
                let mut b = tx.get_buffer(Timeout::INFINITE).unwrap();
                b.write(0, &i.to_le_bytes()).unwrap();
                b.send(4).unwrap();
            }
            tx.flush(Timeout::after(Duration::from_secs(60))).unwrap();
        });
        let crx = client.receiver(ct).unwrap();
        for i in 0..10_000u32 {
            let b = crx
                .receive_buffer(Timeout::after(Duration::from_secs(60)))
                .unwrap();
            let mut got = [0u8; 4];
            b.read(0, &mut got).unwrap();
            assert_eq!(u32::from_le_bytes(got), i);
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

#[test]
fn control_codes_are_checked() {
    use lwmq::{AccessPolicy, TransportControl};
    let mut ch = RawChannel::new();
    let t = ch
        .add_transport(&unique("ctl"), 1024, 1, 1, Directions::SendReceive)
        .unwrap();
    let tr = ch.transport(t).unwrap();
    for bad in [Duration::ZERO, Duration::from_secs(86401)] {
        let e = tr
            .control(TransportControl::SetClientConnectionRetryInterval(bad))
            .unwrap_err();
        assert!(e.to_string().contains("rule: 1 ms ..= 24 h"), "{e}");
    }
    let e = tr
        .control(TransportControl::SetSpinDuration(Duration::from_secs(1)))
        .unwrap_err();
    assert!(e.to_string().contains("at most 100 ms"), "{e}");
    tr.control(TransportControl::SetAccessPolicy(
        AccessPolicy::same_user().allow_root(),
    ))
    .unwrap();
    ch.open(Role::Server).unwrap();
    let tr = ch.transport(t).unwrap();
    let e = tr
        .control(TransportControl::SetAccessPolicy(AccessPolicy::any_user()))
        .unwrap_err();
    assert!(e.to_string().contains("before the channel opens"), "{e}");
    // The retry interval may change at any time.
    tr.control(TransportControl::SetClientConnectionRetryInterval(
        Duration::from_millis(5),
    ))
    .unwrap();
}

#[test]
fn send_length_beyond_buffer_is_refused_and_buffer_kept() {
    let mut ch = RawChannel::new();
    let t = ch
        .add_transport(&unique("len"), 128, 2, 0, Directions::Send)
        .unwrap();
    ch.open(Role::Client).unwrap();
    let tx = ch.sender(t).unwrap();
    let b = tx.get_buffer(Timeout::ZERO).unwrap();
    assert_eq!(b.len(), 128);
    let e = b.send(129).unwrap_err();
    assert!(
        matches!(
            e.error(),
            TransportError::LengthTooLarge {
                len: 129,
                size: 128
            }
        ),
        "{e}"
    );
    // The failed send gave the buffer back; dropping it aborts it: all
    // MaxPendingSendBuffers are still available.
    let b = e.into_buffer().expect("given back");
    assert_eq!(b.len(), 128);
    drop(b);
    for _ in 0..2 {
        let b = tx.get_buffer(Timeout::ZERO).unwrap();
        b.send(1).unwrap();
    }
    assert!(matches!(
        tx.get_buffer(Timeout::ZERO),
        Err(TransportError::Timeout)
    ));
    assert_eq!(ch.transport(t).unwrap().pending_send(), 2);
}

/// The retry-interval control code governs how often a client tries: with a
/// very long interval a client that found no server stays unconnected even
/// after the server appears; shortening it lets it connect.
#[test]
fn retry_interval_control_code_governs_reconnection() {
    use lwmq::TransportControl;
    let uri = unique("retry");
    let mut client = RawChannel::new();
    let ct = client
        .add_transport(&uri, 1024, 1, 1, Directions::SendReceive)
        .unwrap();
    client
        .transport(ct)
        .unwrap()
        .control(TransportControl::SetClientConnectionRetryInterval(
            Duration::from_secs(3600),
        ))
        .unwrap();
    client.open(Role::Client).unwrap();
    // Its first attempt finds nobody.
    let attempts = || client.transport(ct).unwrap().stats().connect_attempts;
    for _ in 0..3000 {
        if attempts() >= 1 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(attempts(), 1);
    let mut server = RawChannel::new();
    server
        .add_transport(&uri, 1024, 1, 1, Directions::SendReceive)
        .unwrap();
    server.open(Role::Server).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    // No retry within the hour-long interval, so still not connected.
    assert_eq!(attempts(), 1);
    assert_eq!(
        client.transport(ct).unwrap().state(),
        ConnectionState::Connecting
    );
    client
        .transport(ct)
        .unwrap()
        .control(TransportControl::SetClientConnectionRetryInterval(
            Duration::from_millis(10),
        ))
        .unwrap();
    wait_state(&client, |s| *s == ConnectionState::Connected);
    assert_eq!(client.transport(ct).unwrap().stats().connections, 1);
}

#[test]
fn buffer_limits_query() {
    let l = lwmq::transport::query_limits("ipc://x:1").unwrap();
    assert_eq!(l.max_total_buffers, 4096);
    assert_eq!(l.max_buffer_size, 1 << 30);
    assert_eq!(l.max_inline_data_size, lwmq::MAX_INLINE_DATA_SIZE);
    assert!(lwmq::transport::query_limits("ipc://").is_err());
}
