//! Hostile peers during live messaging traffic, as real processes: the
//! survivor is an `lwmq-msg-peer duplex` server (sending and receiving
//! checked, sequenced payloads at once); the attacker is `lwmq-peer
//! hostile`, which speaks the protocol by hand with lwmq's own ring code
//! and then corrupts the shared section.

mod common;

use common::*;

/// The attacker, with the server's buffer geometry.
fn hostile(uri: &str, mode: &str) -> Peer {
    spawn(&[
        "hostile",
        uri,
        "--mode",
        mode,
        "--buffers",
        "8",
        "--buffer-size",
        "65536",
        "--size",
        "100",
    ])
}

fn bad_lines(p: &mut Peer) -> Vec<String> {
    p.drain();
    p.seen
        .iter()
        .filter(|l| l.starts_with("BAD"))
        .cloned()
        .collect()
}

/// A well-behaved duplex client replaces the attacker: both directions
/// work, and neither side sees a corrupt, duplicated or reordered message.
fn replacement_works_both_ways(server: &mut Peer, uri: &str) {
    let mut good = spawn_msg(&["duplex", uri, "client", "0", "100"]);
    let sending = good.expect("SENDING", LIVENESS);
    let run = sending.split_whitespace().nth(1).unwrap().to_string();
    // The server receives the replacement's stream...
    server.expect(&format!("RUN {run} "), LIVENESS);
    // ...and the replacement the server's (its `RUN` line may have come
    // before its `SENDING` line).
    good.drain();
    if !good.seen.iter().any(|l| l.starts_with("RUN")) {
        good.expect("RUN", LIVENESS);
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(bad_lines(&mut good).is_empty(), "{:?}", good.seen);
    assert!(bad_lines(server).is_empty(), "{:?}", server.seen);
    good.kill9();
}

/// Out-of-range indices and lengths written while traffic flows in both
/// directions: the server drops the connection with a logged reason,
/// never delivers anything of the broken ring, and serves the next peer.
#[test]
fn index_and_length_corruption_during_two_way_traffic_drops_only_that_connection() {
    for mode in ["duplex-tail", "duplex-len", "duplex-head"] {
        let uri = unique(mode);
        let mut server = spawn_msg(&["duplex", &uri, "server", "0", "100"]);
        server.expect("OPEN server", LIVENESS);
        let mut h = hostile(&uri, mode);
        h.expect("CONNECTED", LIVENESS);
        let flowing = h.expect("FLOWING", LIVENESS);
        // The attacker's stream reached the server before the strike.
        server.expect("RUN", LIVENESS);
        h.expect("STRUCK", LIVENESS);
        let dropped = h.expect("DROPPED", LIVENESS);
        assert!(dropped.contains("eof=true"), "{mode}: {dropped}");
        assert!(h.wait_success(), "{mode}: {}", h.stderr());
        server.expect("CONN down", LIVENESS);
        assert!(
            matches!(server.child.try_wait(), Ok(None)),
            "{mode}: server died: {}",
            server.stderr()
        );
        assert!(
            server.stderr_contains("broke the shared-memory protocol"),
            "{mode}: {}",
            server.stderr()
        );
        eprintln!("{mode}: {flowing}");
        replacement_works_both_ways(&mut server, &uri);
        server.kill9();
    }
}

/// Broken wire encodings (bad magic, version, message count, a truncated
/// frame, a message without frames) published between good buffers of a
/// live stream: each broken buffer is dropped whole and counted, none of
/// its messages is delivered, every good message is, in order, and the
/// connection stays up; after the attacker is killed a new peer works.
#[test]
fn corrupt_wire_bytes_in_a_live_stream_are_dropped_whole_and_counted() {
    let uri = unique("wire");
    let mut server = spawn_msg(&["duplex", &uri, "server", "0", "100"]);
    server.expect("OPEN server", LIVENESS);
    let mut h = hostile(&uri, "wire");
    h.expect("FLOWING", LIVENESS);
    let wire = h.expect("WIRE", LIVENESS);
    let f = |k: &str| done_field(&wire, k);
    let (run, bad_run, last_seq) = (f("run"), f("bad_run"), f("last_seq"));
    assert_eq!(f("corrupt"), 10);
    // All ten counted as decode errors, on the same connection.
    server.expect("STAT decode_errors=10 ", LIVENESS);
    server.drain();
    assert!(
        !server.seen.iter().any(|l| l == "CONN down"),
        "wire errors must not drop the connection: {:?}",
        server.seen
    );
    assert!(
        server.stderr_contains("dropped a corrupt buffer"),
        "{}",
        server.stderr()
    );
    // Replace the attacker: the server closes its run, which shows that
    // every good message arrived (seq 0..=last_seq, no gap, no extra).
    h.kill9();
    server.expect("CONN down", LIVENESS);
    let mut good = spawn_msg(&["duplex", &uri, "client", "0", "100"]);
    let endrun = server.expect(&format!("ENDRUN {run} "), LIVENESS);
    assert_eq!(
        endrun,
        format!("ENDRUN {run} {last_seq} {}", last_seq + 1),
        "every good message delivered once"
    );
    assert!(
        !server
            .seen
            .iter()
            .any(|l| l.starts_with(&format!("RUN {bad_run}"))),
        "a message of a corrupt buffer was delivered: {:?}",
        server.seen
    );
    good.kill9();
    replacement_works_both_ways(&mut server, &uri);
    server.kill9();
}

/// A peer that keeps rewriting the buffers it published (frame headers
/// into other valid shapes, frame counts, message counts, payload bytes)
/// while the receiver decodes them, for 3 s, then sends control buffers it
/// leaves alone (4 good, 1 corrupt, then an end marker). The receiver
/// takes messages alternately owned and lent in place. Whatever the race
/// gives (nothing here depends on when the rewrites land), every message
/// delivered agrees with itself (payload size = sum of its frames, frames
/// gathered whole into a buffer of that size), every buffer that passed
/// validation is delivered whole and every one that failed is counted
/// and delivers nothing (delivered = messages counted in valid buffers),
/// and every buffer published is received exactly once.
#[test]
fn a_peer_rewriting_buffers_while_they_are_decoded_gets_nothing_inconsistent_delivered() {
    let uri = unique("rewrite");
    let mut judge = spawn_msg(&["judge", &uri, "server", "120"]);
    judge.expect("OPEN server", LIVENESS);
    let mut h = spawn(&[
        "hostile",
        &uri,
        "--mode",
        "rewrite",
        "--seconds",
        "3",
        "--buffers",
        "8",
        "--buffer-size",
        "65536",
    ]);
    h.expect("CONNECTED", LIVENESS);
    let verdict = judge.expect("JUDGE", LIVENESS * 2);
    let rewrote = h.expect("REWROTE", LIVENESS);
    let f = |k: &str| done_field(&verdict, k);
    judge.drain();
    let bad: Vec<_> = judge.seen.iter().filter(|l| l.starts_with("BAD")).collect();
    assert!(
        bad.is_empty(),
        "{} inconsistent messages delivered, the first: {:?}",
        bad.len(),
        &bad[..bad.len().min(5)]
    );
    assert_eq!(f("bad"), 0, "{verdict}");
    assert!(verdict.ends_with("ended=true"), "{verdict}");
    assert_eq!(
        f("delivered"),
        f("messages_received"),
        "a validated buffer is delivered whole, a failed one not at all: {verdict}"
    );
    // Control buffers: 4 x 80 good messages and the end marker at least;
    // the corrupt one at least among the failures.
    assert!(f("messages_received") > 4 * 80, "{verdict}");
    assert!(f("decode_errors") >= 1, "{verdict}");
    assert!(f("lent_in_place") > 0, "{verdict}");
    assert_eq!(
        f("buffers_received"),
        done_field(&rewrote, "buffers") + 6,
        "every buffer received once: {verdict} / {rewrote}"
    );
    assert!(done_field(&rewrote, "writes") > 0, "{rewrote}");
    assert!(
        judge.stderr_contains("dropped a corrupt buffer"),
        "{}",
        judge.stderr()
    );
    h.kill9();
    judge.kill9();
}
