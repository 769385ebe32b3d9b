//! Several buffers out at once on both sides of a raw channel (two
//! channels of one process; the same transport as between processes, whose
//! multi-buffer flow is tested in the harness crate, `raw_window.rs`).

use std::time::Duration;

use lwmq::{
    raw::SendError, ConnectionState, Endpoint, RawChannel, Role, Timeout, TransportError,
    TransportId,
};

const WAIT: Timeout = Timeout::after(Duration::from_secs(30));
const SHORT: Timeout = Timeout::after(Duration::from_millis(200));

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

fn unique(name: &str) -> String {
    format!("ipc://lwmq-test/{}/buffers/{name}", std::process::id())
}

fn connected_pair(name: &str, send: u32, receive: u32) -> (RawChannel, RawChannel) {
    let uri = unique(name);
    let server = raw(&uri, 1024, send, 0, Role::Server);
    let client = raw(&uri, 1024, 0, receive, Role::Client);
    for ch in [&server, &client] {
        let t = ch.transport(TransportId(0)).unwrap();
        for _ in 0..3000 {
            if t.state() == ConnectionState::Connected {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(t.state(), ConnectionState::Connected);
    }
    (server, client)
}

fn text(b: &lwmq::ReceivedBuffer<'_>) -> String {
    String::from_utf8(b.to_vec()).unwrap()
}

#[test]
fn four_buffers_out_on_each_side_sent_in_order_disposed_in_any_order() {
    let (server, client) = connected_pair("four", 4, 4);
    let tx = server.sender(TransportId(0)).unwrap();
    let rx = client.receiver(TransportId(0)).unwrap();
    let mut bufs: Vec<_> = (0..4).map(|_| tx.get_buffer(WAIT).unwrap()).collect();
    // Distinct buffers, ids in the order obtained.
    for w in bufs.windows(2) {
        assert!(w[0].id() < w[1].id());
        assert_ne!(w[0].as_ptr(), w[1].as_ptr());
    }
    // A fifth is refused at once, naming the rule.
    match tx.get_buffer(WAIT) {
        Err(e @ TransportError::BufferLimit { .. }) => {
            assert!(e.to_string().contains("send_buffers"), "{e}")
        }
        other => panic!("expected BufferLimit, got {other:?}"),
    }
    for (i, b) in bufs.iter_mut().enumerate() {
        b.write(0, format!("buffer {i}").as_bytes()).unwrap();
    }
    // Out of order: refused, nothing sent, the buffer comes back.
    let third = bufs.remove(2);
    let third = match third.send(8) {
        Err(SendError::Refused {
            error: e @ TransportError::OutOfOrder { .. },
            buffer,
        }) => {
            assert!(e.to_string().contains("in the order obtained"), "{e}");
            buffer
        }
        other => panic!("expected OutOfOrder, got {other:?}"),
    };
    assert!(matches!(
        rx.receive_buffer(SHORT),
        Err(TransportError::Timeout)
    ));
    bufs.insert(2, third);
    for b in bufs {
        b.send(8).unwrap();
    }
    // The receiver holds all four, then one more is refused at once.
    let got: Vec<_> = (0..4).map(|_| rx.receive_buffer(WAIT).unwrap()).collect();
    let texts: Vec<_> = got.iter().map(text).collect();
    assert_eq!(texts, ["buffer 0", "buffer 1", "buffer 2", "buffer 3"]);
    assert!(matches!(
        rx.receive_buffer(WAIT),
        Err(TransportError::BufferLimit { .. })
    ));
    // Dispose in another order: the sender's flush only completes once the
    // ring's head has moved over all of them.
    let mut got: Vec<_> = got.into_iter().map(Some).collect();
    for i in [2, 0, 3] {
        got[i].take().unwrap().dispose();
    }
    assert!(matches!(
        tx.flush(Timeout::after(Duration::from_millis(100))),
        Err(TransportError::Timeout)
    ));
    got[1].take().unwrap().dispose_and_erase();
    tx.flush(WAIT).unwrap();
    // The ring goes round many times with windows of buffers.
    for round in 0..200u32 {
        let mut out: Vec<_> = (0..4).map(|_| tx.get_buffer(WAIT).unwrap()).collect();
        for (i, b) in out.iter_mut().enumerate() {
            b.write(0, &(round * 4 + i as u32).to_le_bytes()).unwrap();
        }
        for b in out {
            b.send(4).unwrap();
        }
        let mut held: Vec<_> = (0..4).map(|_| rx.receive_buffer(WAIT).unwrap()).collect();
        for (i, b) in held.iter().enumerate() {
            let mut v = [0u8; 4];
            b.read(0, &mut v).unwrap();
            assert_eq!(u32::from_le_bytes(v), round * 4 + i as u32);
        }
        held.rotate_left(round as usize % 4);
        drop(held);
    }
    tx.flush(WAIT).unwrap();
}

#[test]
fn an_aborted_buffer_in_the_middle_never_reaches_the_peer() {
    let (server, client) = connected_pair("abort", 4, 4);
    let tx = server.sender(TransportId(0)).unwrap();
    let rx = client.receiver(TransportId(0)).unwrap();
    let mut bufs: Vec<_> = (0..4).map(|_| tx.get_buffer(WAIT).unwrap()).collect();
    for (i, b) in bufs.iter_mut().enumerate() {
        b.write(0, format!("buffer {i}").as_bytes()).unwrap();
    }
    // Abort the second (explicitly) and the fourth (dropped), while the
    // first and third are out.
    let fourth = bufs.pop().unwrap();
    let second = bufs.remove(1);
    second.abort();
    drop(fourth);
    let ids: Vec<_> = bufs.iter().map(|b| b.id()).collect();
    for b in bufs {
        b.send(8).unwrap();
    }
    let a = rx.receive_buffer(WAIT).unwrap();
    let b = rx.receive_buffer(WAIT).unwrap();
    assert_eq!((text(&a), text(&b)), ("buffer 0".into(), "buffer 2".into()));
    assert!(matches!(
        rx.receive_buffer(SHORT),
        Err(TransportError::Timeout)
    ));
    drop((a, b));
    tx.flush(WAIT).unwrap();
    // The first buffer out being aborted while later ones are out.
    let first = tx.get_buffer(WAIT).unwrap();
    let mut second = tx.get_buffer(WAIT).unwrap();
    assert!(first.id() > ids[1]);
    first.abort();
    second.write(0, b"after").unwrap();
    second.send(5).unwrap();
    let got = rx.receive_buffer(WAIT).unwrap();
    assert_eq!(text(&got), "after");
    drop(got);
    assert!(matches!(
        rx.receive_buffer(SHORT),
        Err(TransportError::Timeout)
    ));
    let stats = server.transport(TransportId(0)).unwrap().stats();
    assert_eq!(stats.buffers_sent, 3);
    assert_eq!(
        client
            .transport(TransportId(0))
            .unwrap()
            .stats()
            .buffers_received,
        3
    );
}

#[test]
fn staged_buffers_before_a_peer_are_delivered_in_order_without_the_aborted_one() {
    let uri = unique("staged");
    let client = raw(&uri, 1024, 3, 0, Role::Client);
    let tx = client.sender(TransportId(0)).unwrap();
    let mut a = tx.get_buffer(Timeout::ZERO).unwrap();
    let mut b = tx.get_buffer(Timeout::ZERO).unwrap();
    let mut c = tx.get_buffer(Timeout::ZERO).unwrap();
    a.write(0, b"a").unwrap();
    b.write(0, b"b").unwrap();
    c.write(0, b"c").unwrap();
    let c = match c.send(1) {
        Err(SendError::Refused { buffer, .. }) => buffer,
        other => panic!("expected a refusal, got {other:?}"),
    };
    b.abort();
    a.send(1).unwrap();
    c.send(1).unwrap();
    // Both wait staged for a peer (the driver's count).
    let driver = client.transport(TransportId(0)).unwrap().driver().clone();
    assert_eq!(driver.pending_send(), 2);
    let server = raw(&uri, 1024, 0, 3, Role::Server);
    let rx = server.receiver(TransportId(0)).unwrap();
    let first = rx.receive_buffer(WAIT).unwrap();
    let second = rx.receive_buffer(WAIT).unwrap();
    assert_eq!((text(&first), text(&second)), ("a".into(), "c".into()));
    drop((first, second));
    assert!(matches!(
        rx.receive_buffer(SHORT),
        Err(TransportError::Timeout)
    ));
}

/// Buffers obtained while no peer is connected are private memory; one
/// obtained while connected is a ring slot. A buffer can be held across
/// the connection coming up and still go out first.
#[test]
fn a_staged_buffer_held_across_the_connection_still_goes_first() {
    let uri = unique("held");
    let client = raw(&uri, 1024, 2, 0, Role::Client);
    let tx = client.sender(TransportId(0)).unwrap();
    let mut early = tx.get_buffer(Timeout::ZERO).unwrap();
    early.write(0, b"early").unwrap();
    let server = raw(&uri, 1024, 0, 2, Role::Server);
    let t = client.transport(TransportId(0)).unwrap();
    for _ in 0..3000 {
        if t.state() == ConnectionState::Connected {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut late = tx.get_buffer(WAIT).unwrap();
    late.write(0, b"late").unwrap();
    early.send(5).unwrap();
    late.send(4).unwrap();
    let rx = server.receiver(TransportId(0)).unwrap();
    let a = rx.receive_buffer(WAIT).unwrap();
    let b = rx.receive_buffer(WAIT).unwrap();
    assert_eq!((text(&a), text(&b)), ("early".into(), "late".into()));
}

#[test]
fn unknown_and_foreign_buffer_ids_are_typed_errors() {
    use lwmq::transport::BufferId;
    let (server, client) = connected_pair("ids", 2, 2);
    let t = server.transport(TransportId(0)).unwrap().driver();
    // The trait level: ids that are not out.
    let mut side = {
        // A second claim while no RawSender holds the side.
        t.claim_sender().unwrap()
    };
    assert!(matches!(
        side.commit(BufferId(7), 1, false),
        Err(TransportError::UnknownBuffer { .. })
    ));
    assert!(matches!(
        side.abort(BufferId(7)),
        Err(TransportError::UnknownBuffer { .. })
    ));
    let raw = side.acquire(WAIT).unwrap();
    side.abort(raw.id).unwrap();
    assert!(matches!(
        side.abort(raw.id),
        Err(TransportError::UnknownBuffer { .. })
    ));
    drop(side);
    let mut rside = client
        .transport(TransportId(0))
        .unwrap()
        .driver()
        .claim_receiver()
        .unwrap();
    assert!(matches!(
        rside.dispose(BufferId(0), false),
        Err(TransportError::UnknownBuffer { .. })
    ));
}

#[test]
fn flush_without_a_peer_returns_at_once_unless_something_is_staged() {
    let ch = raw(&unique("lonely-flush"), 1024, 2, 0, Role::Client);
    let tx = ch.sender(TransportId(0)).unwrap();
    // Nothing was sent: nothing to wait for, even with no timeout.
    tx.flush(Timeout::INFINITE).unwrap();
    // A staged buffer waits for a peer that never comes: the flush times out.
    let mut b = tx.get_buffer(WAIT).unwrap();
    b.write(0, b"staged").unwrap();
    b.send(6).map_err(|e| e.to_string()).unwrap();
    assert!(matches!(tx.flush(SHORT), Err(TransportError::Timeout)));
}
