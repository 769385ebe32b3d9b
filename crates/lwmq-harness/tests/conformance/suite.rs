//! The behaviours of the conformance suite (see `main.rs`). Every one
//! takes the scheme and makes its descriptors with [`Scheme::uri`]; the
//! assertions are the same for every transport.
//!
//! Bounds are for liveness only ([`LIVENESS`]); nothing asserts a speed.

use std::time::Duration;

use crate::common::*;

/// Raw peers: 4 buffers of 4 KiB each way, 500-byte payloads.
fn raw(cmd: &str, uri: &str, role: &str, count: u64, extra: &[&str]) -> Peer {
    let count = count.to_string();
    let mut args = vec![
        cmd,
        uri,
        "--role",
        role,
        "--count",
        &count,
        "--size",
        "500",
        "--buffers",
        "4",
        "--buffer-size",
        "4096",
    ];
    args.extend_from_slice(extra);
    spawn(&args)
}

fn assert_clean(line: &str, count: u64) {
    assert_eq!(done_field(line, "received"), count, "{line}");
    assert_eq!(done_field(line, "bad"), 0, "{line}");
    assert_eq!(done_field(line, "dup"), 0, "{line}");
    assert_eq!(done_field(line, "gaps"), 0, "{line}");
}

fn no_bad(p: &mut Peer) {
    p.drain();
    let bad: Vec<_> = p.seen.iter().filter(|l| l.starts_with("BAD")).collect();
    assert!(bad.is_empty(), "{bad:?}\n{}", p.stderr());
}

/// Either side may start first: a client that sends before any server
/// exists has its buffers staged and delivered when the server comes.
pub fn raw_client_first_then_server_delivers_everything(s: Scheme) {
    let uri = s.uri("client-first");
    let mut sender = raw("send", &uri, "client", 20_000, &[]);
    sender.expect("OPEN client", LIVENESS);
    std::thread::sleep(Duration::from_millis(500));
    let mut receiver = raw("recv", &uri, "server", 20_000, &[]);
    let done = receiver.expect("DONE", LIVENESS * 2);
    assert_clean(&done, 20_000);
    assert!(sender.wait_success());
}

/// The server sends before any client exists.
pub fn raw_server_first_then_client_delivers_everything(s: Scheme) {
    let uri = s.uri("server-first");
    let mut sender = raw("send", &uri, "server", 20_000, &[]);
    sender.expect("OPEN server", LIVENESS);
    std::thread::sleep(Duration::from_millis(500));
    let mut receiver = raw("recv", &uri, "client", 20_000, &[]);
    let done = receiver.expect("DONE", LIVENESS * 2);
    assert_clean(&done, 20_000);
    assert!(sender.wait_success());
}

/// Messaging: messages posted before the peer exists are delivered.
pub fn messaging_client_first_then_server_delivers_everything(s: Scheme) {
    let uri = s.uri("msg-client-first");
    let mut sender = spawn_msg(&["send", &uri, "client", "20000", "100"]);
    sender.expect("OPEN client", LIVENESS);
    std::thread::sleep(Duration::from_millis(500));
    let mut receiver = spawn_msg(&["recv", &uri, "server", "20000"]);
    let done = receiver.expect("DONE", LIVENESS * 2);
    assert_clean(&done, 20_000);
    sender.expect("SENT 20000", LIVENESS);
    assert!(sender.wait_success());
    no_bad(&mut receiver);
}

/// A second server on a bound address is refused "address in use"; a peer
/// opened with the automatic role then connects as a client and delivers.
pub fn second_server_is_refused_in_use_while_the_first_keeps_working(s: Scheme) {
    let uri = s.uri("in-use");
    let mut receiver = raw("recv", &uri, "server", 5000, &[]);
    receiver.expect("OPEN server", LIVENESS);
    let out = peer_cmd(&["send", &uri, "--role", "server", "--count", "10"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("address in use"), "{err}");
    let mut sender = raw("send", &uri, "auto", 5000, &[]);
    sender.expect("OPEN client", LIVENESS);
    let done = receiver.expect("DONE", LIVENESS * 2);
    assert_clean(&done, 5000);
    assert!(sender.wait_success());
}

/// Waits for a `STATE refused: ...` line of an idle peer.
fn refused_line(p: &mut Peer) -> String {
    p.expect("STATE refused", LIVENESS)
}

/// The handshake compares both sides' parameters; a mismatch is refused
/// with a typed reason that each side can read, and names both values.
pub fn refusal_reason_is_visible_on_both_sides(s: Scheme) {
    let uri = s.uri("refusal");
    let mut server = spawn(&[
        "idle",
        &uri,
        "--role",
        "server",
        "--buffer-size",
        "4096",
        "--seconds",
        "3",
    ]);
    server.expect("OPEN server", LIVENESS);
    let mut client = spawn(&[
        "idle",
        &uri,
        "--role",
        "client",
        "--buffer-size",
        "8192",
        "--seconds",
        "3",
    ]);
    let c = refused_line(&mut client);
    assert!(
        c.contains("peer refused us") && c.contains("buffer size"),
        "{c}"
    );
    assert!(c.contains("4096") && c.contains("8192"), "{c}");
    let s_line = refused_line(&mut server);
    assert!(
        s_line.contains("we refused the peer") && s_line.contains("buffer size"),
        "{s_line}"
    );
    // An event on both sides, and logged on both sides too.
    for (p, who) in [
        (&mut server, "we refused the peer"),
        (&mut client, "peer refused us"),
    ] {
        let e = p.expect("EVENT connection refused", LIVENESS);
        assert!(e.contains(who) && e.contains("buffer_size mismatch"), "{e}");
    }
    assert!(server.stderr_contains("connection refused: we refused the peer: buffer_size mismatch"));
    assert!(client.stderr_contains("connection refused: peer refused us: buffer_size mismatch"));
}

/// The connection log on both sides: `Connected` with who the peer is
/// (`ipc://`: its pid from the kernel; `tcp://`: its address), then, when
/// the client is killed (`kill -9`), `Disconnected` on the server with the
/// reason "the peer closed the connection", and the server listening
/// again; a new client is the next connection (generation 2).
pub fn connection_events_name_the_peer_and_why_it_left(s: Scheme) {
    let uri = s.uri("events");
    let idle = |role: &str| {
        spawn(&[
            "idle",
            &uri,
            "--role",
            role,
            "--seconds",
            "30",
            "--retry-ms",
            "20",
        ])
    };
    let mut server = idle("server");
    server.expect("OPEN server", LIVENESS);
    let mut client = idle("client");
    // An idle peer prints the event before the state it brings.
    let e = client.expect("EVENT connected to", LIVENESS);
    assert!(e.contains("(connection 1)"), "{e}");
    if s == Scheme::Tcp {
        assert!(e.contains(uri.trim_start_matches("tcp://")), "{e}");
    }
    client.expect("CONNECTED", LIVENESS);
    let peer = match s {
        Scheme::Ipc => format!("pid {}", client.pid()),
        Scheme::Tcp => "127.0.0.1:".to_owned(),
    };
    let e = server.expect("EVENT connected to", LIVENESS);
    assert!(e.contains(&peer) && e.contains("(connection 1)"), "{e}");
    // The server has seen its state connected before the client dies, so
    // that the state it goes back to is a change it prints (the event
    // can precede the state by one of the peer's polls).
    server.expect("CONNECTED", LIVENESS);
    client.kill9();
    let e = server.expect("EVENT disconnected from", LIVENESS);
    assert!(
        e.contains(&peer)
            && e.contains("(connection 1)")
            && e.contains("the peer closed the connection"),
        "{e}"
    );
    server.expect("STATE listening", LIVENESS);
    let mut again = idle("client");
    again.expect("CONNECTED", LIVENESS);
    let e = server.expect("EVENT connected to", LIVENESS);
    assert!(e.contains("(connection 2)"), "{e}");
}

/// Two senders (or two receivers) cannot make a channel.
pub fn incompatible_directions_are_refused_on_both_sides(s: Scheme) {
    let uri = s.uri("dirs");
    let mut server = spawn(&[
        "idle",
        &uri,
        "--role",
        "server",
        "--dirs",
        "send",
        "--seconds",
        "3",
    ]);
    server.expect("OPEN server", LIVENESS);
    let mut client = spawn(&[
        "idle",
        &uri,
        "--role",
        "client",
        "--dirs",
        "send",
        "--seconds",
        "3",
    ]);
    let c = refused_line(&mut client);
    assert!(c.contains("incompatible directions"), "{c}");
    let s_line = refused_line(&mut server);
    assert!(s_line.contains("incompatible directions"), "{s_line}");
}

/// `kill -9` of the sender mid-stream: the receiver notices, keeps
/// serving, and a restarted sender's payloads arrive without any action on
/// the receiver. Nothing corrupted, duplicated or reordered.
pub fn raw_sender_killed_mid_stream_then_restarted(s: Scheme) {
    let uri = s.uri("kill-sender");
    let mut receiver = raw("recv", &uri, "server", 0, &[]);
    receiver.expect("OPEN server", LIVENESS);
    let mut sender = raw("send", &uri, "client", 0, &[]);
    receiver.expect("RUN", LIVENESS);
    std::thread::sleep(Duration::from_millis(200));
    sender.kill9();
    let mut sender2 = raw("send", &uri, "client", 3000, &[]);
    let run = receiver.expect("RUN", LIVENESS);
    assert!(
        run.ends_with(" 0"),
        "the new run starts at its first payload: {run}"
    );
    assert!(sender2.wait_success());
    receiver.kill9();
    no_bad(&mut receiver);
}

/// `kill -9` of the receiver mid-stream: the sender reconnects to a new
/// receiver by itself, which gets one run, in order, intact. What the
/// first receiver had not taken is lost, and no more than what a
/// connection can hold in flight: the receive buffers of the receiver plus
/// the send buffers of the sender (`tcp://` loses at most the former;
/// `ipc://` at most the dead ring, which holds both).
pub fn raw_receiver_killed_mid_stream_loss_is_bounded(s: Scheme) {
    let uri = s.uri("kill-receiver");
    let dir = std::env::temp_dir().join(format!(
        "lwmq-conf-{}-{}",
        std::process::id(),
        uri.len() ^ line!() as usize
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let progress = dir.join(format!("{:?}-progress", s));
    let progress = progress.to_str().unwrap();
    let mut sender = raw("send", &uri, "server", 0, &[]);
    sender.expect("OPEN server", LIVENESS);
    let mut receiver = raw("recv", &uri, "client", 0, &["--progress", progress]);
    receiver.expect("RUN", LIVENESS);
    std::thread::sleep(Duration::from_millis(300));
    receiver.kill9();
    no_bad(&mut receiver);
    let bytes = std::fs::read(progress).unwrap();
    let last = u64::from_le_bytes(bytes[8..16].try_into().unwrap());
    let mut receiver2 = raw("recv", &uri, "client", 5000, &[]);
    let run = receiver2.expect("RUN", LIVENESS);
    let first: u64 = run.rsplit(' ').next().unwrap().parse().unwrap();
    let done = receiver2.expect("DONE", LIVENESS * 2);
    assert_eq!(done_field(&done, "bad"), 0, "{done}");
    assert_eq!(done_field(&done, "dup"), 0, "{done}");
    assert_eq!(done_field(&done, "gaps"), 0, "{done}");
    assert_eq!(done_field(&done, "runs"), 1, "{done}");
    assert!(
        first > last,
        "nothing delivered twice: first {first} after {last}"
    );
    // The killed receiver may have taken one more payload than it recorded.
    let lost = first - last - 1;
    assert!(
        lost <= 4 + 4 + 1,
        "lost {lost} payloads; at most 4 + 4 can be in flight"
    );
    eprintln!("{s:?}: lost {lost} payloads when the receiver was killed");
    sender.kill9();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Messaging, `kill -9` of the sender: the restarted sender's messages
/// arrive from its first one, complete.
pub fn messaging_sender_killed_mid_stream_then_restarted(s: Scheme) {
    kill_messaging_sender(&s.uri("msg-kill-sender"), &["100"], 20_000);
}

/// Messaging, `kill -9` of the receiver: a new receiver gets one run, in
/// order, intact.
pub fn messaging_receiver_killed_mid_stream_then_restarted(s: Scheme) {
    kill_messaging_receiver(&s.uri("msg-kill-receiver"), &["300"], 20_000);
}

/// Messaging with sizes from a few dozen bytes to a whole buffer, posted
/// with `post` and `post_copy` (`lwmq-msg-peer send --mixed`; over
/// `tcp://` those of half a buffer or more are written from the sender's
/// memory, decision 163): `kill -9` of the receiver, then of the sender,
/// mid-stream, as in the two tests above.
pub fn messaging_mixed_sizes_survive_kill9_of_either_side(s: Scheme) {
    kill_messaging_receiver(&s.uri("msg-mixed"), &["300", "--mixed"], 4000);
    kill_messaging_sender(&s.uri("msg-mixed-sender"), &["300", "--mixed"], 4000);
}

/// A sending `lwmq-msg-peer` (SIZE and options `send`) killed mid-stream
/// and restarted for `count` messages: they arrive from the first one,
/// and nothing the receiver got is corrupted, duplicated or reordered.
fn kill_messaging_sender(uri: &str, send: &[&str], count: u64) {
    let count = count.to_string();
    let mut receiver = spawn_msg(&["recv", uri, "server", "0"]);
    receiver.expect("OPEN server", LIVENESS);
    let mut sender = spawn_msg(&[&["send", uri, "client", "0"], send].concat());
    receiver.expect("RUN", LIVENESS);
    std::thread::sleep(Duration::from_millis(200));
    sender.kill9();
    let mut sender2 = spawn_msg(&[&["send", uri, "client", &count], send].concat());
    let run = receiver.expect("RUN", LIVENESS);
    assert!(run.ends_with(" 0"), "{run}");
    sender2.expect(&format!("SENT {count}"), LIVENESS);
    assert!(sender2.wait_success());
    receiver.kill9();
    no_bad(&mut receiver);
}

/// A receiving `lwmq-msg-peer` killed mid-stream: a new one gets `count`
/// messages in one run, in order, intact (the sender runs with SIZE and
/// options `send`).
fn kill_messaging_receiver(uri: &str, send: &[&str], count: u64) {
    let count = count.to_string();
    let mut sender = spawn_msg(&[&["send", uri, "server", "0"], send].concat());
    sender.expect("OPEN server", LIVENESS);
    let mut receiver = spawn_msg(&["recv", uri, "client", "0"]);
    receiver.expect("RUN", LIVENESS);
    std::thread::sleep(Duration::from_millis(200));
    receiver.kill9();
    no_bad(&mut receiver);
    let mut receiver2 = spawn_msg(&["recv", uri, "client", &count]);
    let done = receiver2.expect("DONE", LIVENESS * 2);
    for field in ["bad", "dup", "gaps"] {
        assert_eq!(done_field(&done, field), 0, "{done}");
    }
    assert_eq!(done_field(&done, "runs"), 1, "{done}");
    no_bad(&mut receiver2);
    sender.kill9();
}

/// `flush` returns only once the peer has taken every committed buffer: a
/// receiver that stops consuming holds the sender's flush (it is not
/// reported done), and releases it when it resumes.
pub fn flush_waits_until_the_peer_has_taken_everything(s: Scheme) {
    let uri = s.uri("flush");
    let dir = std::env::temp_dir().join(format!(
        "lwmq-flush-{}-{:?}-{}",
        std::process::id(),
        s,
        uri.len()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let resume = dir.join("resume");
    let resume_s = resume.to_str().unwrap();
    let mut receiver = raw(
        "recv",
        &uri,
        "server",
        200,
        &["--pause-after", "100", "--pause-file", resume_s],
    );
    receiver.expect("OPEN server", LIVENESS);
    let mut sender = raw("send", &uri, "client", 200, &[]);
    receiver.expect("PAUSED", LIVENESS);
    // While the receiver holds off, the sender's flush cannot be done.
    std::thread::sleep(Duration::from_millis(1000));
    sender.drain();
    assert!(
        !sender.seen.iter().any(|l| l.starts_with("SENT")),
        "flush returned while the receiver had not taken everything: {:?}",
        sender.seen
    );
    std::fs::write(&resume, b"go").unwrap();
    sender.expect("SENT 200", LIVENESS);
    let done = receiver.expect("DONE", LIVENESS);
    assert_clean(&done, 200);
    assert!(sender.wait_success());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Closing a messaging channel with a linger delivers what was posted,
/// even to a receiver that only appears during the linger.
pub fn close_with_linger_delivers_what_was_posted(s: Scheme) {
    let uri = s.uri("linger");
    let mut sender = spawn_msg(&["send", &uri, "server", "5000", "200", "--linger"]);
    sender.expect("CLOSING 5000", LIVENESS);
    let mut receiver = spawn_msg(&["recv", &uri, "client", "5000"]);
    let done = receiver.expect("DONE", LIVENESS * 2);
    assert_clean(&done, 5000);
    sender.expect("SENT 5000", LIVENESS);
    assert!(sender.wait_success());
}

/// Several buffers out on both sides: sent in the order obtained, an
/// aborted one never arrives, received ones given back in any order.
pub fn windows_of_buffers_on_both_sides_keep_order(s: Scheme) {
    let uri = s.uri("window");
    let w = ["--buffers", "8", "--buffer-size", "4096", "--window"];
    let mut rargs = vec!["recv", &uri, "--role", "server", "--count", "3000"];
    rargs.extend(w);
    rargs.push("8");
    let mut sargs = vec![
        "send", &uri, "--role", "client", "--count", "3000", "--size", "300",
    ];
    sargs.extend(w);
    sargs.push("6");
    let mut receiver = spawn(&rargs);
    receiver.expect("OPEN server", LIVENESS);
    let mut sender = spawn(&sargs);
    let poison = sender.expect("POISON", LIVENESS);
    let poison_run = poison.split_whitespace().nth(1).unwrap().to_owned();
    let done = receiver.expect("DONE", LIVENESS * 2);
    assert_clean(&done, 3000);
    assert_eq!(done_field(&done, "runs"), 1, "{done}");
    let sent = sender.expect("SENT", LIVENESS);
    assert!(done_field(&sent, "aborted") >= 749, "{sent}");
    receiver.drain();
    assert!(
        !receiver
            .seen
            .iter()
            .any(|l| l.starts_with("RUN") && l.contains(&poison_run)),
        "an aborted buffer arrived"
    );
    assert!(sender.wait_success());
}

/// A connected pair that waits (nothing to send, receivers blocked) uses
/// almost no CPU: every thread sleeps (`tcp://`: one heartbeat a second).
pub fn idle_pair_uses_almost_no_cpu(s: Scheme) {
    let uri = s.uri("idle");
    let mut a = spawn_msg(&["idle", &uri, "server", "30"]);
    let mut b = spawn_msg(&["idle", &uri, "client", "30"]);
    a.expect("CONNECTED", LIVENESS);
    b.expect("CONNECTED", LIVENESS);
    assert_idle_pair(&a, &b);
}
