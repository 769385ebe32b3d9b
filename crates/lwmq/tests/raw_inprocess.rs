//! Raw channels between two channels of one process (the transport is the
//! same as between processes; multi-process behaviour is tested in the
//! harness crate).

use std::time::Duration;

use lwmq::transport::RefusalReason;
use lwmq::{
    ConfigError, ConnectionState, Endpoint, RawChannel, Role, Timeout, TransportError, TransportId,
};

fn unique(name: &str) -> String {
    format!("ipc://lwmq-test/{}/{}/{name}", std::process::id(), line!())
}

/// A raw channel with one transport, opened in `role`.
fn raw(uri: &str, size: usize, send: u32, receive: u32, role: Role) -> RawChannel {
    let ep = Endpoint::new(uri)
        .unwrap()
        .buffer_size(size)
        .send_buffers(send)
        .receive_buffers(receive);
    RawChannel::builder()
        .transport(ep)
        .unwrap()
        .open(role)
        .unwrap()
}

fn wait_state(ch: &RawChannel, want: impl Fn(&ConnectionState) -> bool) -> ConnectionState {
    let t = ch.transport(TransportId(0)).unwrap();
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
    let client = raw(&uri, 4096, 4, 4, Role::Client);
    let ct = TransportId(0);
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
    let server = raw(&uri, 4096, 4, 4, Role::Server);
    let st = TransportId(0);
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
    let _a = raw(&uri, 1024, 1, 1, Role::Server);
    let ep = Endpoint::new(&uri)
        .unwrap()
        .buffer_size(1024)
        .send_buffers(1)
        .receive_buffers(1);
    let e = RawChannel::builder()
        .transport(ep)
        .unwrap()
        .open(Role::Server)
        .unwrap_err();
    assert!(e.is_address_in_use(), "{e}");
    assert!(e.to_string().contains("address in use"), "{e}");
    // Fall back to client with the builder the error gave back.
    let b = e.into_builder().open(Role::Client).unwrap();
    wait_state(&b, |s| *s == ConnectionState::Connected);
}

#[test]
fn buffer_size_mismatch_is_refused_on_both_sides() {
    let uri = unique("mismatch");
    let s = raw(&uri, 1024, 1, 1, Role::Server);
    let c = raw(&uri, 2048, 1, 1, Role::Client);
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
        .transport(TransportId(0))
        .unwrap()
        .last_error()
        .unwrap()
        .contains("server buffer size 1024 bytes, client buffer size 2048 bytes"));
}

#[test]
fn incompatible_directions_are_refused() {
    let uri = unique("dirs");
    let _s = raw(&uri, 1024, 1, 0, Role::Server);
    let c = raw(&uri, 1024, 1, 0, Role::Client);
    let ConnectionState::Refused(r) = wait_state(&c, |s| matches!(s, ConnectionState::Refused(_)))
    else {
        unreachable!()
    };
    assert_eq!(r.reason, RefusalReason::Directions);
}

#[test]
fn lifecycle_rules() {
    let e = RawChannel::builder().open(Role::Server).unwrap_err();
    assert!(
        matches!(e.kind(), lwmq::channel::OpenErrorKind::NoTransport),
        "{e}"
    );
    let ep = |name: &str, size: usize| {
        Endpoint::new(unique(name))
            .unwrap()
            .buffer_size(size)
            .send_buffers(1)
            .receive_buffers(1)
    };
    let mut b = RawChannel::builder().transport(ep("life", 1024)).unwrap();
    let e = b.add_transport(ep("life2", 2048)).unwrap_err();
    assert!(
        matches!(
            e,
            ConfigError::BufferSizeMismatch {
                existing: 1024,
                new: 2048,
                ..
            }
        ),
        "{e}"
    );
    let ch = b.open(Role::Server).unwrap();
    assert!(matches!(
        ch.sender(TransportId(1)),
        Err(lwmq::raw::ClaimError::UnknownTransport(TransportId(1)))
    ));
    let _tx = ch.sender(TransportId(0)).unwrap();
    assert!(matches!(
        ch.sender(TransportId(0)),
        Err(lwmq::raw::ClaimError::Transport(
            TransportError::SideInUse { .. }
        ))
    ));
}

#[test]
fn settings_are_checked() {
    let ep = Endpoint::new(unique("ctl"))
        .unwrap()
        .buffer_size(1024)
        .send_buffers(1)
        .receive_buffers(1);
    for bad in [Duration::ZERO, Duration::from_secs(86401)] {
        let e = ep.clone().retry_interval(bad).check().unwrap_err();
        assert!(matches!(e, ConfigError::RetryInterval { .. }), "{e}");
        assert!(e.to_string().contains("retry_interval"), "{e}");
    }
    let e = ep.clone().spin(Duration::from_secs(1)).check().unwrap_err();
    assert!(matches!(e, ConfigError::Spin { .. }), "{e}");
    let ch = RawChannel::builder()
        .transport(ep.access(lwmq::AccessPolicy::same_user().allow_root()))
        .unwrap()
        .open(Role::Server)
        .unwrap();
    let tr = ch.transport(TransportId(0)).unwrap();
    // The same rules at run time; a refused value changes nothing.
    assert!(tr.set_retry_interval(Duration::ZERO).is_err());
    assert!(tr.set_spin(Duration::from_secs(1)).is_err());
    // The retry interval and the spin may change at any time.
    tr.set_retry_interval(Duration::from_millis(5)).unwrap();
    tr.set_spin(Duration::ZERO).unwrap();
}

#[test]
fn send_length_beyond_buffer_is_refused_and_buffer_kept() {
    let ch = raw(&unique("len"), 128, 2, 0, Role::Client);
    let tx = ch.sender(TransportId(0)).unwrap();
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
    // The failed send gave the buffer back; dropping it aborts it: both
    // send buffers are still available.
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
}

/// The retry-interval control code governs how often a client tries: with a
/// very long interval a client that found no server stays unconnected even
/// after the server appears; shortening it lets it connect.
#[test]
fn retry_interval_control_code_governs_reconnection() {
    let uri = unique("retry");
    let ep = Endpoint::new(&uri)
        .unwrap()
        .buffer_size(1024)
        .send_buffers(1)
        .receive_buffers(1)
        .retry_interval(Duration::from_secs(3600));
    let client = RawChannel::builder()
        .transport(ep)
        .unwrap()
        .open(Role::Client)
        .unwrap();
    let ct = TransportId(0);
    // Its first attempt finds nobody.
    let attempts = || client.transport(ct).unwrap().stats().connect_attempts;
    for _ in 0..3000 {
        if attempts() >= 1 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(attempts(), 1);
    let _server = raw(&uri, 1024, 1, 1, Role::Server);
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
        .set_retry_interval(Duration::from_millis(10))
        .unwrap();
    wait_state(&client, |s| *s == ConnectionState::Connected);
    assert_eq!(client.transport(ct).unwrap().stats().connections, 1);
}

#[test]
fn buffer_limits_query() {
    let l = lwmq::transport::query_limits("ipc://x:1").unwrap();
    assert_eq!(l.max_total_buffers, 4096);
    assert_eq!(l.max_buffer_size, 1 << 30);
    assert_eq!(
        l.max_inline_data_size as usize,
        lwmq::message::MAX_INLINE_FRAME_SIZE
    );
    assert!(lwmq::transport::query_limits("ipc://").is_err());
}
