//! The `tcp://` transport between two channels of one process: the data
//! path, flow control, staging, flush and the handshake's refusals. The
//! same behaviour between real processes is in the harness crate's
//! conformance suite; these tests run in milliseconds and under a debugger.

use std::time::Duration;

use lwmq::internals::transport::TransportControl;
use lwmq::transport::{AllowList, DisconnectReason, RefusalReason};
use lwmq::{
    ConfigError, ConnectionEvent, ConnectionState, Endpoint, RawChannel, Role, Timeout,
    TransportError, TransportId,
};

/// A `tcp://127.0.0.1:PORT` descriptor with a port that was free a moment
/// ago (the kernel hands out ephemeral ports in turn, so a clash with
/// another test is unlikely; tests that bind retry on "in use").
fn free_uri() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("tcp://127.0.0.1:{}", l.local_addr().unwrap().port())
}

fn wait_state(ch: &RawChannel, want: impl Fn(&ConnectionState) -> bool) -> ConnectionState {
    let t = ch.transport(TransportId(0)).unwrap();
    for _ in 0..3000 {
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

/// An endpoint with `n` send and `n` receive buffers of `size` bytes.
fn ep(uri: &str, size: usize, n: u32) -> Endpoint {
    Endpoint::new(uri)
        .unwrap()
        .buffer_size(size)
        .send_buffers(n)
        .receive_buffers(n)
}

/// A raw channel with one transport, opened in `role`.
fn raw(ep: Endpoint, role: Role) -> RawChannel {
    RawChannel::builder()
        .transport(ep)
        .unwrap()
        .open(role)
        .unwrap()
}

fn pair(size: usize, n: u32) -> (RawChannel, RawChannel, String) {
    let uri = free_uri();
    let server = raw(ep(&uri, size, n), Role::Server);
    let client = raw(ep(&uri, size, n), Role::Client);
    (server, client, uri)
}

const LONG: Timeout = Timeout::after(Duration::from_secs(60));

#[test]
fn round_trip_both_directions_and_staging() {
    let uri = free_uri();
    let client = raw(ep(&uri, 4096, 4), Role::Client);
    let ct = TransportId(0);
    // Sent before the server exists: staged.
    {
        let tx = client.sender(ct).unwrap();
        for i in 0..4u8 {
            let mut b = tx.get_buffer(Timeout::ZERO).unwrap();
            b.write(0, &[i, i, i]).unwrap();
            b.send(3).unwrap();
        }
        assert!(matches!(
            tx.get_buffer(Timeout::ZERO),
            Err(TransportError::Timeout)
        ));
    }
    let server = raw(ep(&uri, 4096, 4), Role::Server);
    let st = TransportId(0);
    let rx = server.receiver(st).unwrap();
    for i in 0..4u8 {
        let b = rx.receive_buffer(LONG).unwrap();
        assert_eq!(b.to_vec(), [i, i, i]);
    }
    std::thread::scope(|s| {
        s.spawn(|| {
            let tx = server.sender(st).unwrap();
            for i in 0..20_000u32 {
                let mut b = tx.get_buffer(Timeout::INFINITE).unwrap();
                b.write(0, &i.to_le_bytes()).unwrap();
                b.send(4).unwrap();
            }
            tx.flush(LONG).unwrap();
        });
        let crx = client.receiver(ct).unwrap();
        for i in 0..20_000u32 {
            let b = crx.receive_buffer(LONG).unwrap();
            let mut got = [0u8; 4];
            b.read(0, &mut got).unwrap();
            assert_eq!(u32::from_le_bytes(got), i);
        }
    });
    let t = client.transport(ct).unwrap();
    assert_eq!(t.stats().buffers_received, 20_000);
    assert_eq!(t.stats().buffers_sent, 4);
}

#[test]
fn large_buffers_arrive_whole() {
    let (server, client, _) = pair(1 << 20, 4);
    std::thread::scope(|s| {
        s.spawn(|| {
            let tx = client.sender(TransportId(0)).unwrap();
            let mut data = vec![0u8; 1 << 20];
            for i in 0..64u32 {
                data.iter_mut()
                    .enumerate()
                    .for_each(|(j, b)| *b = (j as u32 ^ i) as u8);
                let mut b = tx.get_buffer(LONG).unwrap();
                let len = (1 << 20) - i as usize * 1000;
                b.write(0, &data[..len]).unwrap();
                b.send(len).unwrap();
            }
            tx.flush(LONG).unwrap();
        });
        let rx = server.receiver(TransportId(0)).unwrap();
        for i in 0..64u32 {
            let b = rx.receive_buffer(LONG).unwrap();
            let got = b.to_vec();
            assert_eq!(got.len(), (1 << 20) - i as usize * 1000);
            assert!(got
                .iter()
                .enumerate()
                .all(|(j, b)| *b == (j as u32 ^ i) as u8));
        }
    });
}

#[test]
fn a_stalled_receiver_makes_the_sender_time_out_without_growing() {
    let (server, client, _) = pair(1024, 4);
    let tx = client.sender(TransportId(0)).unwrap();
    let mut sent = 0;
    // Credits: 4 in flight at the receiver, then 4 queued in the sender's
    // own buffers: then nothing more.
    loop {
        match tx.get_buffer(Timeout::after(Duration::from_millis(300))) {
            Ok(mut b) => {
                b.write(0, &[sent as u8]).unwrap();
                b.send(1).unwrap();
                sent += 1;
            }
            Err(TransportError::Timeout) => break,
            Err(e) => panic!("{e}"),
        }
        assert!(sent <= 8, "the sender took more than its buffers");
    }
    assert_eq!(sent, 8);
    assert_eq!(
        client
            .transport(TransportId(0))
            .unwrap()
            .driver()
            .pending_send(),
        4,
        "four wait for credits"
    );
    let rx = server.receiver(TransportId(0)).unwrap();
    for i in 0..8u8 {
        let b = rx.receive_buffer(LONG).unwrap();
        assert_eq!(b.to_vec(), [i]);
    }
    tx.flush(LONG).unwrap();
}

#[test]
fn several_buffers_out_on_both_sides_in_order() {
    let (server, client, _) = pair(64, 6);
    let tx = client.sender(TransportId(0)).unwrap();
    let mut out = Vec::new();
    for i in 0..6u8 {
        let mut b = tx.get_buffer(LONG).unwrap();
        b.write(0, &[i]).unwrap();
        out.push(b);
    }
    assert!(matches!(
        tx.get_buffer(Timeout::ZERO),
        Err(TransportError::BufferLimit { .. })
    ));
    // Abort the third, send the rest in order; sending the last first is
    // refused and gives it back.
    let last = out.pop().unwrap();
    let last = match last.send(1) {
        Err(lwmq::raw::SendError::Refused { buffer, .. }) => buffer,
        other => panic!("{other:?}"),
    };
    out.remove(2).abort();
    for b in out {
        b.send(1).unwrap();
    }
    last.send(1).unwrap();
    let rx = server.receiver(TransportId(0)).unwrap();
    let got: Vec<_> = (0..5).map(|_| rx.receive_buffer(LONG).unwrap()).collect();
    let vals: Vec<u8> = got.iter().map(|b| b.to_vec()[0]).collect();
    assert_eq!(vals, [0, 1, 3, 4, 5]);
    // Given back in any order.
    for b in got.into_iter().rev() {
        b.dispose();
    }
    tx.flush(LONG).unwrap();
}

#[test]
fn refusals_are_visible_on_both_sides() {
    let uri = free_uri();
    let server = raw(ep(&uri, 4096, 4), Role::Server);
    let client = raw(ep(&uri, 8192, 4), Role::Client);
    // `wait_connected` returns the refusal as soon as it comes.
    match client.wait_connected(LONG) {
        Err(lwmq::ConnectError::Refused { refusal, .. }) => {
            assert_eq!(refusal.reason, RefusalReason::BufferSize)
        }
        other => panic!("{other:?}"),
    }
    let s = wait_state(&client, |s| matches!(s, ConnectionState::Refused(_)));
    let ConnectionState::Refused(r) = s else {
        unreachable!()
    };
    assert_eq!(r.reason, RefusalReason::BufferSize);
    assert!(r.by_peer);
    assert!(
        r.detail.contains("4096") && r.detail.contains("8192"),
        "{}",
        r.detail
    );
    let s = wait_state(&server, |s| matches!(s, ConnectionState::Refused(_)));
    let ConnectionState::Refused(r) = s else {
        unreachable!()
    };
    assert!(!r.by_peer);
    assert_eq!(r.reason, RefusalReason::BufferSize);
    // Both logs hold the refusal as an event.
    for (ch, by_peer) in [(&client, true), (&server, false)] {
        let mut ev = ch.transport(TransportId(0)).unwrap().events();
        match ev.next(LONG) {
            Some(ConnectionEvent::Refused(r)) => {
                assert_eq!((r.reason, r.by_peer), (RefusalReason::BufferSize, by_peer))
            }
            e => panic!("{e:?}"),
        }
    }
}

#[test]
fn a_second_server_is_refused_in_use_and_busy_servers_refuse_clients() {
    let (server, _client, uri) = pair(64, 2);
    wait_state(&server, |s| *s == ConnectionState::Connected);
    let e = RawChannel::builder()
        .transport(ep(&uri, 64, 2))
        .unwrap()
        .open(Role::Server)
        .unwrap_err();
    assert!(e.is_address_in_use(), "{e}");
    assert!(e.to_string().contains("address in use"), "{e}");
    let third = raw(ep(&uri, 64, 2), Role::Client);
    let s = wait_state(&third, |s| matches!(s, ConnectionState::Refused(_)));
    let ConnectionState::Refused(r) = s else {
        unreachable!()
    };
    assert_eq!(r.reason, RefusalReason::Busy);
    // The busy server turned away a third party: an event, not its state.
    let st = server.transport(TransportId(0)).unwrap();
    assert_eq!(st.state(), ConnectionState::Connected);
    let mut ev = st.events();
    let mut busy = false;
    while let Some(e) = ev.try_next() {
        busy |= matches!(e, ConnectionEvent::Refused(r) if r.reason == RefusalReason::Busy && !r.by_peer);
    }
    assert!(busy, "no Busy event on the server");
}

#[test]
fn the_allow_list_refuses_on_both_sides_with_the_reason() {
    let uri = free_uri();
    let server = raw(
        ep(&uri, 64, 2).allow_peers(AllowList::parse(&["10.0.0.0/8"]).unwrap()),
        Role::Server,
    );
    let client = raw(ep(&uri, 64, 2), Role::Client);
    let ConnectionState::Refused(r) =
        wait_state(&client, |s| matches!(s, ConnectionState::Refused(_)))
    else {
        unreachable!()
    };
    assert_eq!(r.reason, RefusalReason::AccessDenied);
    assert!(r.detail.contains("10.0.0.0/8"), "{}", r.detail);
    let err = server
        .transport(TransportId(0))
        .unwrap()
        .last_error()
        .unwrap();
    assert!(err.contains("allow-list"), "{err}");
    // A stranger turned away is not the server's state.
    assert_eq!(
        server.transport(TransportId(0)).unwrap().state(),
        ConnectionState::Listening
    );
    // Set after open (the C API's control code): refused.
    assert!(server
        .transport(TransportId(0))
        .unwrap()
        .driver()
        .control(TransportControl::SetPeerAllowList(AllowList::any()))
        .is_err());
}

#[test]
fn reconnection_after_the_server_restarts_delivers_staged_buffers() {
    let (server, client, uri) = pair(64, 4);
    wait_state(&client, |s| *s == ConnectionState::Connected);
    let mut ev = client.transport(TransportId(0)).unwrap().events();
    let server_addr = match ev.next(LONG) {
        Some(ConnectionEvent::Connected {
            peer,
            generation: 1,
        }) => {
            assert_eq!(peer.pid, None);
            peer.addr.expect("a tcp peer has an address")
        }
        e => panic!("{e:?}"),
    };
    assert_eq!(server_addr.to_string(), uri.trim_start_matches("tcp://"));
    drop(server);
    wait_state(&client, |s| *s != ConnectionState::Connected);
    match ev.next(LONG) {
        Some(ConnectionEvent::Disconnected {
            generation: 1,
            reason,
            peer,
        }) => {
            assert_eq!(peer.addr, Some(server_addr));
            assert_eq!(reason, DisconnectReason::PeerLeft);
        }
        e => panic!("{e:?}"),
    }
    let tx = client.sender(TransportId(0)).unwrap();
    for i in 0..4u8 {
        let mut b = tx.get_buffer(LONG).unwrap();
        b.write(0, &[i]).unwrap();
        b.send(1).unwrap();
    }
    // The old listener is gone; the port is free again.
    let server = raw(ep(&uri, 64, 4), Role::Server);
    let rx = server.receiver(TransportId(0)).unwrap();
    for i in 0..4u8 {
        assert_eq!(rx.receive_buffer(LONG).unwrap().to_vec(), [i]);
    }
    assert!(
        client
            .transport(TransportId(0))
            .unwrap()
            .stats()
            .reconnections
            >= 1
    );
    assert!(matches!(
        ev.next(LONG),
        Some(ConnectionEvent::Connected { generation: 2, .. })
    ));
}

#[test]
fn settings_are_checked() {
    let uri = free_uri();
    let open = |ep: Endpoint| RawChannel::builder().transport(ep).map(|_| ());
    for d in [Duration::from_millis(10), Duration::from_secs(3601)] {
        match open(ep(&uri, 64, 2).heartbeat_timeout(d)) {
            Err(ConfigError::HeartbeatTimeout { given, .. }) => assert_eq!(given, d),
            other => panic!("{other:?}"),
        }
    }
    for d in [
        Duration::ZERO,
        Duration::from_millis(100),
        Duration::from_secs(3600),
    ] {
        open(ep(&uri, 64, 2).heartbeat_timeout(d)).unwrap();
    }
    let e = open(ep(&uri, 64, 2).access(lwmq::AccessPolicy::any_user())).unwrap_err();
    assert!(matches!(e, ConfigError::NotForScheme { .. }), "{e}");
    assert!(e.to_string().contains("allow_peers"), "{e}");
    let ipc = "ipc://lwmq-test/tcp-settings";
    let e = open(ep(ipc, 64, 2).heartbeat_timeout(Duration::from_secs(1))).unwrap_err();
    assert!(e.to_string().contains("tcp:// only"), "{e}");
    let e = open(ep(ipc, 64, 2).allow_peers(AllowList::any())).unwrap_err();
    assert!(e.to_string().contains("tcp:// only"), "{e}");
    // The control codes behind them (what the C API sends) check the same.
    let ch = raw(ep(&uri, 64, 2), Role::Client);
    let t = ch.transport(TransportId(0)).unwrap();
    let t = t.driver();
    assert!(t
        .control(TransportControl::SetHeartbeatTimeout(
            Duration::from_millis(10)
        ))
        .is_err());
    assert!(t
        .control(TransportControl::SetHeartbeatTimeout(Duration::ZERO))
        .is_ok());
    assert!(t
        .control(TransportControl::SetAccessPolicy(
            lwmq::AccessPolicy::any_user()
        ))
        .is_err());
    assert!(t
        .control(TransportControl::SetAccessPolicy(
            lwmq::AccessPolicy::same_user()
        ))
        .is_ok());
}

/// A receive waiting on a `tcp://` transport (connected, or still
/// connecting) returns `Interrupted` when another thread interrupts it.
#[test]
fn an_interrupter_ends_a_waiting_receive() {
    use lwmq::{Channel, ReceiveError};
    let uri = free_uri();
    let open = |role| {
        let mut b = Channel::builder().transport(ep(&uri, 1024, 2)).unwrap();
        let _queue = b.mono_queue(lwmq::Priority::Normal).unwrap();
        b.open(role).unwrap()
    };
    let mut client = open(Role::Client);
    for connected in [false, true] {
        let _server = connected.then(|| {
            let s = open(Role::Server);
            client.wait_connected(LONG).unwrap();
            s
        });
        let stop = client.interrupter();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            stop.interrupt();
        });
        assert!(matches!(
            client.receive(LONG),
            Err(ReceiveError::Interrupted)
        ));
        t.join().unwrap();
    }
}

/// One buffer each way over `uri` (server and client in this process).
fn exchange(uri: &str) {
    let server = raw(ep(uri, 64, 2), Role::Server);
    let client = raw(ep(uri, 64, 2), Role::Client);
    let tx = client.sender(TransportId(0)).unwrap();
    let mut b = tx.get_buffer(LONG).unwrap();
    b.write(0, b"ping").unwrap();
    b.send(4).unwrap();
    let rx = server.receiver(TransportId(0)).unwrap();
    assert_eq!(rx.receive_buffer(LONG).unwrap().to_vec(), b"ping");
    let stx = server.sender(TransportId(0)).unwrap();
    let mut b = stx.get_buffer(LONG).unwrap();
    b.write(0, b"pong").unwrap();
    b.send(4).unwrap();
    let crx = client.receiver(TransportId(0)).unwrap();
    assert_eq!(crx.receive_buffer(LONG).unwrap().to_vec(), b"pong");
}

#[test]
fn ipv6_literals_and_host_names_connect() {
    let port = |addr: &str| {
        std::net::TcpListener::bind(addr)
            .ok()
            .map(|l| l.local_addr().unwrap().port())
    };
    // IPv6 loopback, where the machine has it.
    if let Some(p) = port("[::1]:0") {
        exchange(&format!("tcp://[::1]:{p}"));
    } else {
        eprintln!("no IPv6 loopback here: the [::1] case is skipped");
    }
    // A host name, resolved when the server binds and the client connects.
    let p = port("127.0.0.1:0").unwrap();
    exchange(&format!("tcp://localhost:{p}"));
    // Every interface for the server, loopback for the client.
    let p = port("0.0.0.0:0").unwrap();
    let _server = raw(ep(&format!("tcp://0.0.0.0:{p}"), 64, 1), Role::Server);
    let client = raw(ep(&format!("tcp://127.0.0.1:{p}"), 64, 1), Role::Client);
    wait_state(&client, |s| *s == ConnectionState::Connected);
}

/// A receiver that took every buffer and then closed is not a loss to the
/// sender's flush (its credits go out before its FIN); one that closed
/// with a buffer not taken is, once.
#[test]
fn a_flush_after_the_receiver_took_everything_and_left_succeeds() {
    for taken in [3usize, 2] {
        let (server, client, _) = pair(4096, 8);
        let t = TransportId(0);
        wait_state(&client, |s| *s == ConnectionState::Connected);
        let tx = client.sender(t).unwrap();
        for i in 0..3u8 {
            let mut b = tx.get_buffer(LONG).unwrap();
            b.write(0, &[i]).unwrap();
            b.send(1).unwrap();
        }
        {
            let rx = server.receiver(t).unwrap();
            for i in 0..taken {
                let b = rx.receive_buffer(LONG).unwrap();
                assert_eq!(b.to_vec(), [i as u8]);
            }
        }
        // Fewer than half the window disposed of: the credits are still
        // owed when the server closes.
        drop(server);
        let r = tx.flush(LONG);
        if taken == 3 {
            assert!(r.is_ok(), "{r:?}");
        } else {
            assert!(matches!(r, Err(TransportError::Disconnected(_))), "{r:?}");
            // Reported once.
            assert!(tx.flush(LONG).is_ok());
        }
    }
}
