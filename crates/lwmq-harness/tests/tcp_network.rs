//! What only a network transport meets, with real processes on 127.0.0.1:
//! faults injected by a TCP proxy between the peers (added delay, a
//! bandwidth limit, a stall with both sockets kept open, a cut with RST),
//! a peer stopped with SIGSTOP (half-open: its socket stays open, it says
//! nothing), fan-out of one messaging channel to an `ipc://` and a
//! `tcp://` transport at once, and the allow-list between processes.
//!
//! The raw receiver (`lwmq-peer recv`) prints `GAP <last> <next>` when
//! payloads of a run were lost (what was in flight in a connection that
//! broke), and `BAD` for anything corrupt, duplicated or reordered, which
//! must never happen. Every wait is bounded by [`LIVENESS`]; recovery is
//! expected within the heartbeat timeout plus one retry interval, which
//! the bound covers many times over.

mod common;

use std::time::{Duration, Instant};

use common::*;
use lwmq_harness::proxy::Proxy;

/// Receive buffers of the raw receivers here: at most this many payloads
/// (plus the one cut in the middle) are lost when a connection breaks.
const WINDOW: u64 = 4;

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

fn no_bad(p: &mut Peer) {
    p.drain();
    let bad: Vec<_> = p.seen.iter().filter(|l| l.starts_with("BAD")).collect();
    assert!(bad.is_empty(), "{bad:?}\n{}", p.stderr());
}

/// Every `GAP a b` line of `p` lost at most the window.
fn gaps_bounded(p: &mut Peer) -> usize {
    p.drain();
    let gaps: Vec<(u64, u64)> = p
        .seen
        .iter()
        .filter_map(|l| l.strip_prefix("GAP "))
        .map(|g| {
            let mut it = g.split(' ').map(|x| x.parse::<u64>().unwrap());
            (it.next().unwrap(), it.next().unwrap())
        })
        .collect();
    for &(a, b) in &gaps {
        assert!(b > a, "reordered: {a} then {b}");
        assert!(
            b - a - 1 <= WINDOW + 1,
            "lost {} payloads between {a} and {b}",
            b - a - 1
        );
    }
    gaps.len()
}

/// The receiver's progress file: the sequence number of the last payload
/// it received.
struct Progress(std::path::PathBuf);

impl Progress {
    fn new(tag: &str) -> Self {
        Progress(std::env::temp_dir().join(format!(
            "lwmq-tcpnet-{}-{tag}-{}",
            std::process::id(),
            free_tcp_port()
        )))
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }

    fn seq(&self) -> u64 {
        std::fs::read(&self.0)
            .ok()
            .filter(|b| b.len() >= 16)
            .map_or(0, |b| u64::from_le_bytes(b[8..16].try_into().unwrap()))
    }

    /// Waits until the receiver got `more` payloads past where it is now.
    fn wait_past(&self, more: u64) {
        let from = self.seq();
        let deadline = Instant::now() + LIVENESS;
        while self.seq() < from + more {
            assert!(
                Instant::now() < deadline,
                "the stream did not resume (stuck at {})",
                self.seq()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A receiver server on a direct address and a sender client through the
/// proxy, streaming until killed; both with a 1 s heartbeat timeout.
fn stream_through_proxy(progress: &Progress) -> (Proxy, Peer, Peer) {
    let port = free_tcp_port();
    let direct = format!("tcp://127.0.0.1:{port}");
    let hb = [
        "--heartbeat-ms",
        "1000",
        "--retry-ms",
        "100",
        "--progress",
        progress.path(),
    ];
    let mut receiver = raw("recv", &direct, "server", 0, &hb);
    receiver.expect("OPEN server", LIVENESS);
    let proxy = Proxy::start(format!("127.0.0.1:{port}").parse().unwrap());
    let mut sender = raw("send", &proxy.uri(), "client", 0, &hb[..4]);
    sender.expect("OPEN client", LIVENESS);
    receiver.expect("RUN", LIVENESS);
    (proxy, receiver, sender)
}

#[test]
fn added_delay_slows_but_loses_nothing() {
    let port = free_tcp_port();
    let direct = format!("tcp://127.0.0.1:{port}");
    let mut receiver = raw("recv", &direct, "server", 3000, &[]);
    receiver.expect("OPEN server", LIVENESS);
    let proxy = Proxy::start(format!("127.0.0.1:{port}").parse().unwrap());
    proxy.set_delay(Duration::from_millis(20));
    let mut sender = raw("send", &proxy.uri(), "client", 3000, &[]);
    let done = receiver.expect("DONE", LIVENESS * 2);
    assert_eq!(done_field(&done, "received"), 3000, "{done}");
    assert_eq!(done_field(&done, "gaps"), 0, "{done}");
    assert_eq!(done_field(&done, "bad"), 0, "{done}");
    assert!(sender.wait_success());
    assert_eq!(
        proxy.accepted(),
        1,
        "one connection: a delay is not a fault"
    );
}

#[test]
fn a_bandwidth_limit_slows_but_loses_nothing() {
    let port = free_tcp_port();
    let direct = format!("tcp://127.0.0.1:{port}");
    // 200 buffers of 4 KiB at 1 MB/s: about a second, well inside the
    // heartbeat timeout's slack (bytes keep arriving, so nobody is silent).
    let hb = ["--heartbeat-ms", "1000"];
    let mut args = vec!["--size", "4000"];
    args.extend(hb);
    let mut receiver = spawn(&[
        "recv",
        &direct,
        "--role",
        "server",
        "--count",
        "200",
        "--buffers",
        "4",
        "--buffer-size",
        "4096",
        "--heartbeat-ms",
        "1000",
    ]);
    receiver.expect("OPEN server", LIVENESS);
    let proxy = Proxy::start(format!("127.0.0.1:{port}").parse().unwrap());
    proxy.set_bandwidth(1_000_000);
    let uri = proxy.uri();
    let mut sargs = vec![
        "send",
        &uri,
        "--role",
        "client",
        "--count",
        "200",
        "--buffers",
        "4",
        "--buffer-size",
        "4096",
    ];
    sargs.extend(args);
    let mut sender = spawn(&sargs);
    let done = receiver.expect("DONE", LIVENESS * 2);
    assert_eq!(done_field(&done, "received"), 200, "{done}");
    assert_eq!(done_field(&done, "gaps"), 0, "{done}");
    assert_eq!(done_field(&done, "bad"), 0, "{done}");
    assert!(sender.wait_success());
    assert_eq!(proxy.accepted(), 1, "one connection: slow is not dead");
}

/// A cut (RST to both ends) is seen at once; the client reconnects through
/// the proxy and the stream resumes; what was in flight is lost (at most
/// the window), nothing is corrupted, duplicated or reordered.
#[test]
fn a_cut_with_reset_is_seen_at_once_and_the_stream_resumes() {
    let progress = Progress::new("cut");
    let (proxy, mut receiver, mut sender) = stream_through_proxy(&progress);
    progress.wait_past(1000);
    let t0 = Instant::now();
    assert!(proxy.cut() >= 1);
    // The stream resumes on a new connection: a later payload arrives
    // (after a gap if anything was in flight).
    let deadline = Instant::now() + LIVENESS;
    while proxy.accepted() < 2 {
        assert!(Instant::now() < deadline, "the client never reconnected");
        std::thread::sleep(Duration::from_millis(10));
    }
    eprintln!("reconnected {:?} after the cut", t0.elapsed());
    progress.wait_past(1000);
    sender.kill9();
    receiver.kill9();
    no_bad(&mut receiver);
    eprintln!("{} gaps", gaps_bounded(&mut receiver));
    assert!(sender.stderr().contains("disconnected") || sender.stderr().contains("peer"));
}

/// A stall with both sockets kept open (a peer host gone, a cable pulled):
/// no FIN, no RST, just silence. Each side declares the other dead after
/// its heartbeat timeout (1 s here), the client reconnects, the stream
/// resumes.
#[test]
fn a_stall_with_both_sockets_open_is_detected_by_heartbeats_and_the_stream_resumes() {
    let progress = Progress::new("stall");
    let (proxy, mut receiver, mut sender) = stream_through_proxy(&progress);
    progress.wait_past(1000);
    let t0 = Instant::now();
    assert!(proxy.stall() >= 1);
    let deadline = Instant::now() + LIVENESS;
    while proxy.accepted() < 2 {
        assert!(Instant::now() < deadline, "the client never reconnected");
        std::thread::sleep(Duration::from_millis(10));
    }
    eprintln!("reconnected {:?} after the stall", t0.elapsed());
    progress.wait_past(1000);
    assert!(
        sender.stderr_contains("heartbeat timeout"),
        "{}",
        sender.stderr()
    );
    assert!(
        receiver.stderr_contains("heartbeat timeout"),
        "{}",
        receiver.stderr()
    );
    sender.kill9();
    receiver.kill9();
    no_bad(&mut receiver);
    gaps_bounded(&mut receiver);
}

/// Once `receiver` got `n` more payloads, stops it with SIGSTOP until
/// `sender` logs that its heartbeat timeout declared it dead, lets it
/// continue, and waits until the stream resumes (after what was in flight
/// to the stopped peer) for `n` more.
fn stop_until_declared_dead_then_resume(
    receiver: &mut Peer,
    sender: &mut Peer,
    progress: &Progress,
    n: u64,
) {
    progress.wait_past(n);
    let pid = rustix::process::Pid::from_raw(receiver.pid() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::STOP).unwrap();
    assert!(
        sender.stderr_contains("heartbeat timeout"),
        "{}",
        sender.stderr()
    );
    rustix::process::kill_process(pid, rustix::process::Signal::CONT).unwrap();
    progress.wait_past(n);
}

/// A peer stopped with SIGSTOP keeps its sockets open and says nothing:
/// the other side declares it dead after the heartbeat timeout and goes
/// back to connecting; once the peer continues, they reconnect by
/// themselves and delivery resumes.
#[test]
fn a_stopped_peer_is_declared_dead_by_heartbeats_and_reconnects_when_it_continues() {
    let uri = format!("tcp://127.0.0.1:{}", free_tcp_port());
    let progress = Progress::new("stop");
    let hb = [
        "--heartbeat-ms",
        "1000",
        "--retry-ms",
        "100",
        "--progress",
        progress.path(),
    ];
    let mut receiver = raw("recv", &uri, "server", 0, &hb);
    receiver.expect("OPEN server", LIVENESS);
    let mut sender = raw("send", &uri, "client", 0, &hb[..4]);
    receiver.expect("RUN", LIVENESS);
    stop_until_declared_dead_then_resume(&mut receiver, &mut sender, &progress, 1000);
    sender.kill9();
    receiver.kill9();
    no_bad(&mut receiver);
    gaps_bounded(&mut receiver);
}

/// The same with a messaging stream of large and small messages (`send
/// --mixed`): the large ones are written from the sender's memory, and a
/// sender doing that reads the peer's credits itself instead of the I/O
/// thread (decisions 163 and 164). A stopped receiver is still declared
/// dead by the sender's heartbeats, and once it continues the stream
/// resumes, nothing corrupted, duplicated or reordered.
#[test]
fn a_stopped_receiver_of_large_messages_is_declared_dead_and_the_stream_resumes() {
    let uri = format!("tcp://127.0.0.1:{}", free_tcp_port());
    let progress = Progress::new("stop-msg");
    let hb = ["--heartbeat-ms", "1000"];
    let mut receiver = spawn_msg(&[
        "recv",
        &uri,
        "server",
        "0",
        hb[0],
        hb[1],
        "--progress",
        progress.path(),
    ]);
    receiver.expect("OPEN server", LIVENESS);
    let mut sender = spawn_msg(&["send", &uri, "client", "0", "300", "--mixed", hb[0], hb[1]]);
    receiver.expect("RUN", LIVENESS);
    stop_until_declared_dead_then_resume(&mut receiver, &mut sender, &progress, 500);
    sender.kill9();
    receiver.kill9();
    no_bad(&mut receiver);
}

/// One messaging channel fans out to an `ipc://` and a `tcp://` transport
/// at once: each receiver gets every message, in order, intact.
#[test]
fn one_messaging_channel_fans_out_to_ipc_and_tcp_at_once() {
    let tcp = format!("tcp://127.0.0.1:{}", free_tcp_port());
    let ipc = unique("fan-out");
    let mut on_tcp = spawn_msg(&["recv", &tcp, "server", "20000"]);
    let mut on_ipc = spawn_msg(&["recv", &ipc, "server", "20000"]);
    let mut sender = spawn_msg(&["send", &tcp, "client", "20000", "100", "--also", &ipc]);
    for r in [&mut on_tcp, &mut on_ipc] {
        let done = r.expect("DONE", LIVENESS * 2);
        assert_eq!(done_field(&done, "received"), 20000, "{done}");
        assert_eq!(done_field(&done, "bad"), 0, "{done}");
        assert_eq!(done_field(&done, "dup"), 0, "{done}");
        assert_eq!(done_field(&done, "gaps"), 0, "{done}");
        assert_eq!(done_field(&done, "runs"), 1, "{done}");
    }
    sender.expect("SENT 20000", LIVENESS);
    assert!(sender.wait_success());
}

/// A server whose allow-list does not contain the client's address
/// refuses it `AccessDenied`; both sides can read why, and the server logs
/// it. With the address listed, the same pair connects.
#[test]
fn the_allow_list_refuses_other_addresses_on_both_sides_and_logs_it() {
    let uri = format!("tcp://127.0.0.1:{}", free_tcp_port());
    let mut server = spawn(&[
        "idle",
        &uri,
        "--role",
        "server",
        "--allow",
        "10.0.0.0/8",
        "--allow",
        "::1",
        "--seconds",
        "2",
    ]);
    server.expect("OPEN server", LIVENESS);
    let mut client = spawn(&["idle", &uri, "--role", "client", "--seconds", "2"]);
    let c = client.expect("STATE refused", LIVENESS);
    assert!(
        c.contains("peer refused us") && c.contains("access denied"),
        "{c}"
    );
    assert!(c.contains("10.0.0.0/8"), "{c}");
    // A stranger turned away is a third party: an event on the server,
    // never its state (nobody on the network can set it).
    let s = server.expect("EVENT connection refused", LIVENESS);
    assert!(
        s.contains("we refused the peer") && s.contains("127.0.0.1"),
        "{s}"
    );
    assert!(server.stderr_contains("allow-list"), "{}", server.stderr());
    server.drain();
    assert!(
        !server.seen.iter().any(|l| l.starts_with("STATE refused")),
        "{:?}",
        server.seen
    );
    drop(server);
    drop(client);
    let uri = format!("tcp://127.0.0.1:{}", free_tcp_port());
    let mut server = spawn(&[
        "idle",
        &uri,
        "--role",
        "server",
        "--allow",
        "127.0.0.0/8",
        "--seconds",
        "1",
    ]);
    server.expect("OPEN server", LIVENESS);
    let mut client = spawn(&[
        "idle",
        &uri,
        "--role",
        "client",
        "--allow",
        "127.0.0.1",
        "--seconds",
        "1",
    ]);
    client.expect("CONNECTED", LIVENESS);
    server.expect("CONNECTED", LIVENESS);
}
