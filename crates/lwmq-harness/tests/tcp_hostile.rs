//! A hostile peer over TCP: the test process itself talks to a real
//! `lwmq-peer` server with hand-made bytes (garbage, oversize lengths,
//! another version, silence, a slow-loris handshake, a flood of
//! connections, frames that break the data-phase rules). Each time the
//! server answers with a typed refusal or drops the connection with the
//! reason logged, keeps serving honest clients meanwhile and afterwards,
//! and frees what the bad peer held (its descriptor count comes back).

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::*;
use lwmq::internals::transport::tcp::proto::{self, FrameType, Handshake, Header, Hello};
use lwmq::internals::transport::{ChannelKind, Directions};
use lwmq::transport::RefusalReason;

/// The receiving server every test attacks: raw, 4 buffers of 4 KiB.
fn server() -> (Peer, u16) {
    let port = free_tcp_port();
    let uri = format!("tcp://127.0.0.1:{port}");
    let mut p = spawn(&[
        "recv",
        &uri,
        "--role",
        "server",
        "--count",
        "0",
        "--buffers",
        "4",
        "--buffer-size",
        "4096",
    ]);
    p.expect("OPEN server", LIVENESS);
    (p, port)
}

/// An honest sender: 300 payloads, flushed (so its success means the
/// server took them all).
fn honest(port: u16) -> Peer {
    let uri = format!("tcp://127.0.0.1:{port}");
    spawn(&[
        "send",
        &uri,
        "--role",
        "client",
        "--count",
        "300",
        "--size",
        "200",
        "--buffers",
        "4",
        "--buffer-size",
        "4096",
    ])
}

fn served(port: u16) {
    let mut h = honest(port);
    assert!(
        h.wait_success(),
        "an honest client was not served: {}",
        h.stderr()
    );
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(LIVENESS)).unwrap();
    s
}

/// The HELLO of a client the server would accept.
fn good_hello() -> Hello {
    Hello {
        kind: ChannelKind::Raw,
        directions: Directions::Send,
        features: 0,
        buffer_size: 4096,
        send_buffers: 4,
        receive_buffers: 0,
        heartbeat_ms: 0,
        pid: std::process::id(),
    }
}

/// Reads everything until EOF (or an error) and returns it.
fn read_all(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// The server's refusal in `bytes` (greeting, then REFUSE).
fn refusal(bytes: &[u8]) -> (RefusalReason, String) {
    let g: &[u8; proto::GREETING_LEN] = bytes
        .first_chunk()
        .unwrap_or_else(|| panic!("no greeting in {bytes:?}"));
    let v = proto::check_greeting(g).unwrap();
    match proto::parse_handshake(&bytes[proto::GREETING_LEN..], v) {
        Ok(Some((Handshake::Refuse { reason, text }, _))) => (reason, text),
        other => panic!("not a refusal: {other:?} in {bytes:?}"),
    }
}

fn fds_settle(pid: u32, baseline: usize) {
    let deadline = Instant::now() + LIVENESS;
    while fd_count(pid) > baseline {
        assert!(
            Instant::now() < deadline,
            "server holds {} descriptors, {baseline} before",
            fd_count(pid)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn garbage_oversize_and_other_versions_are_refused_with_a_reason() {
    let (mut srv, port) = server();
    served(port);
    let baseline = fd_count(srv.pid());
    // Not our protocol at all.
    let mut s = connect(port);
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let (r, t) = refusal(&read_all(&mut s));
    assert_eq!(r, RefusalReason::Protocol);
    assert!(t.contains("not an lwmq tcp"), "{t}");
    // A handshake frame announcing 100 MB.
    let mut s = connect(port);
    s.write_all(&proto::greeting()).unwrap();
    s.write_all(&Header::new(FrameType::Hello, 0, 0, 100_000_000).encode())
        .unwrap();
    let (r, t) = refusal(&read_all(&mut s));
    assert_eq!(r, RefusalReason::Protocol);
    assert!(t.contains("100000000"), "{t}");
    // Another protocol version: refused `Version`, readable by that peer.
    let mut s = connect(port);
    let mut g = proto::greeting();
    g[5] = 9;
    s.write_all(&g).unwrap();
    let (r, t) = refusal(&read_all(&mut s));
    assert_eq!(r, RefusalReason::Version);
    assert!(t.contains("version 9"), "{t}");
    // A security mechanism this build does not have.
    let mut s = connect(port);
    let mut g = proto::greeting();
    g[6] = 3;
    s.write_all(&g).unwrap();
    let (r, t) = refusal(&read_all(&mut s));
    assert_eq!(r, RefusalReason::Protocol);
    assert!(t.contains("mechanism 3"), "{t}");
    // A HELLO with a field out of range.
    let mut s = connect(port);
    s.write_all(&proto::greeting()).unwrap();
    let mut h = Handshake::Hello(good_hello()).encode();
    h[proto::HEADER_LEN] = 77;
    s.write_all(&h).unwrap();
    let (r, t) = refusal(&read_all(&mut s));
    assert_eq!(r, RefusalReason::Protocol);
    assert!(t.contains("channel kind"), "{t}");
    served(port);
    assert!(srv.stderr_contains("not an lwmq tcp"));
    fds_settle(srv.pid(), baseline);
    no_bad(&mut srv);
}

/// A client that connects and never speaks, and one that sends its
/// handshake a byte every 200 ms: each is dropped at the 2 s deadline,
/// while honest clients are served meanwhile.
#[test]
fn silent_and_slow_loris_handshakes_are_dropped_at_the_deadline_while_others_are_served() {
    let (mut srv, port) = server();
    served(port);
    let baseline = fd_count(srv.pid());
    let mut silent = connect(port);
    let loris = std::thread::spawn(move || {
        let mut s = connect(port);
        let mut bytes = proto::greeting().to_vec();
        bytes.extend_from_slice(&Handshake::Hello(good_hello()).encode());
        let t0 = Instant::now();
        for (i, b) in bytes.iter().enumerate() {
            if s.write_all(&[*b]).is_err() {
                return (i, t0.elapsed(), Vec::new());
            }
            std::thread::sleep(Duration::from_millis(200));
            let _ = s.set_nonblocking(true);
            let mut probe = [0u8; 64];
            let got = s.read(&mut probe);
            let _ = s.set_nonblocking(false);
            match got {
                Ok(0) => return (i + 1, t0.elapsed(), Vec::new()),
                Ok(n) => {
                    let mut v = probe[..n].to_vec();
                    v.extend(read_all(&mut s));
                    return (i + 1, t0.elapsed(), v);
                }
                Err(_) => {}
            }
        }
        (bytes.len(), t0.elapsed(), Vec::new())
    });
    // Honest clients meanwhile.
    served(port);
    served(port);
    let t0 = Instant::now();
    let eof = read_all(&mut silent);
    eprintln!("silent client closed after {:?}", t0.elapsed());
    assert!(eof.is_empty(), "the silent client got {eof:?}");
    let (sent, after, answer) = loris.join().unwrap();
    eprintln!("slow-loris cut off after {sent} bytes, {after:?}");
    assert!(sent < 44, "the slow-loris finished its handshake");
    assert!(answer.is_empty(), "{answer:?}");
    assert!(srv.stderr_contains("did not finish within"));
    served(port);
    fds_settle(srv.pid(), baseline);
    no_bad(&mut srv);
}

/// Connects from `local` (any 127.0.0.0/8 address works on loopback).
fn connect_from(local: &str, port: u16) -> Option<TcpStream> {
    use rustix::net::{AddressFamily, SocketFlags, SocketType};
    let fd = rustix::net::socket_with(
        AddressFamily::INET,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .ok()?;
    let from: SocketAddr = format!("{local}:0").parse().unwrap();
    rustix::net::bind(&fd, &from).ok()?;
    let to: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    rustix::net::connect(&fd, &to).ok()?;
    Some(TcpStream::from(fd))
}

/// One address holding many silent connections gets at most 4 handshakes
/// in progress (each newer one displaces its own oldest, refused `Busy`
/// naming the rule); a client from another address is served meanwhile.
#[test]
fn a_flood_of_silent_connections_from_one_address_cannot_keep_others_out() {
    let (mut srv, port) = server();
    served(port);
    let baseline = fd_count(srv.pid());
    let mut flood = Vec::new();
    for _ in 0..40 {
        if let Some(s) = connect_from("127.0.0.2", port) {
            s.set_read_timeout(Some(LIVENESS)).unwrap();
            flood.push(s);
        }
    }
    assert!(!flood.is_empty());
    served(port);
    // The displaced ones were told why.
    let mut busy = 0;
    for s in &mut flood {
        let got = read_all(s);
        if !got.is_empty() {
            let (r, t) = refusal(&got);
            assert_eq!(r, RefusalReason::Busy);
            assert!(t.contains("per address"), "{t}");
            busy += 1;
        }
    }
    eprintln!(
        "{busy} of {} flooding connections displaced with a reason",
        flood.len()
    );
    assert!(busy >= flood.len() - 4);
    drop(flood);
    served(port);
    fds_settle(srv.pid(), baseline);
    no_bad(&mut srv);
}

/// A full handshake by hand; returns the socket in the data phase and the
/// server's first grant of credits.
fn handshake(port: u16) -> (TcpStream, u16) {
    let mut s = connect(port);
    s.write_all(&proto::greeting()).unwrap();
    s.write_all(&Handshake::Hello(good_hello()).encode())
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let hello_end = loop {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "server closed during the handshake: {got:?}");
        got.extend_from_slice(&buf[..n]);
        if got.len() > proto::GREETING_LEN {
            if let Some((m, used)) =
                proto::parse_handshake(&got[proto::GREETING_LEN..], proto::VERSION).unwrap()
            {
                assert!(matches!(m, Handshake::Hello(_)), "{m:?}");
                break proto::GREETING_LEN + used;
            }
        }
    };
    s.write_all(
        &Handshake::Accept {
            features: 0,
            credit: 0,
        }
        .encode(),
    )
    .unwrap();
    // The server's first grant follows its HELLO.
    while got.len() < hello_end + proto::HEADER_LEN {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    let h = Header::decode(got[hello_end..].first_chunk().unwrap());
    assert_eq!(h.ty, FrameType::Credit as u8);
    (s, h.credit)
}

/// Frames that break the data-phase rules drop that connection (the reason
/// logged), and only that one: the server goes on serving.
#[test]
fn frames_that_break_the_rules_drop_only_that_connection() {
    let (mut srv, port) = server();
    served(port);
    let baseline = fd_count(srv.pid());
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            Header::new(FrameType::Data, 0, 0, 4097).encode().to_vec(),
            "length 4097 (at most 4096",
        ),
        (vec![42, 0, 0, 0, 0, 0, 0, 0], "unknown frame type 42"),
        (
            Header::new(FrameType::Data, 0x80, 0, 1).encode().to_vec(),
            "undefined flags",
        ),
        (
            Handshake::Hello(good_hello()).encode(),
            "handshake frame type 16",
        ),
        (
            proto::control(FrameType::Credit, 9).to_vec(),
            "granted 9 credits but has only 0 receive buffers",
        ),
        (
            proto::token_frame(FrameType::Flushed, 77).to_vec(),
            "FLUSH 77",
        ),
    ];
    for (bytes, why) in cases {
        let (mut s, _) = handshake(port);
        s.write_all(&bytes).unwrap();
        let rest = read_all(&mut s);
        assert!(
            rest.iter().all(|_| true),
            "the server closes the connection (reads end)"
        );
        assert!(srv.stderr_contains(why), "{why}: {}", srv.stderr());
        served(port);
    }
    // More DATA frames than credits, in one write: the one beyond the
    // grant is refused before a buffer is given to it. (Those within the
    // grant are good frames: the receiver gets them, empty, and its check
    // calls them corrupt payloads, which they are for it.)
    let (mut s, grant) = handshake(port);
    let mut burst = Vec::new();
    for _ in 0..=grant {
        burst.extend_from_slice(&Header::new(FrameType::Data, 0, 0, 0).encode());
    }
    s.write_all(&burst).unwrap();
    read_all(&mut s);
    assert!(srv.stderr_contains("without credit"), "{}", srv.stderr());
    served(port);
    srv.drain();
    let empty = srv
        .seen
        .iter()
        .filter(|l| l.starts_with("BAD corrupt"))
        .count();
    assert_eq!(empty, usize::from(grant), "{:?}", srv.seen);
    srv.seen.retain(|l| !l.starts_with("BAD corrupt"));
    assert!(srv.stderr_contains("peer broke the tcp protocol"));
    fds_settle(srv.pid(), baseline);
    no_bad(&mut srv);
}

/// A second client while one is connected is refused `Busy` at once, with
/// the reason readable.
#[test]
fn a_second_client_is_refused_busy_with_the_reason() {
    let (mut srv, port) = server();
    let (_held, _) = handshake(port);
    let mut s = connect(port);
    s.write_all(&proto::greeting()).unwrap();
    s.write_all(&Handshake::Hello(good_hello()).encode())
        .unwrap();
    let (r, t) = refusal(&read_all(&mut s));
    assert_eq!(r, RefusalReason::Busy);
    assert!(t.contains("already has a peer"), "{t}");
    drop(_held);
    served(port);
    no_bad(&mut srv);
}

fn no_bad(p: &mut Peer) {
    p.drain();
    let bad: Vec<_> = p.seen.iter().filter(|l| l.starts_with("BAD")).collect();
    assert!(bad.is_empty(), "{bad:?}\n{}", p.stderr());
}
