//! The connection as part of the API, between real processes: refusals
//! returned by `wait_connected` and by a receive that used to time out,
//! the refused state staying across retries, a peer killed and restarted
//! seen as events between messages, a reader falling behind the log, and a
//! peer of another user. Each test but the last runs for `ipc://` and for
//! `tcp://` (modules `ipc` and `tcp`): the connection API is the same for
//! both, a `tcp://` peer shows its address where an `ipc://` one shows its
//! pid.
//!
//! The peer is this test binary, re-executed with `LWMQ_CONNECTION_PEER`
//! set: it then runs [`peer_process`] as a program (see there) and exits
//! when its stdin closes, so no peer outlives the test.

mod channel_common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use channel_common::*;
use lwmq::message::{Frame, Message};
use lwmq::transport::{DisconnectReason, RefusalReason};
use lwmq::{
    Channel, ConnectError, ConnectionEvent, ConnectionState, Endpoint, Priority, QueueOptions,
    RawChannel, ReceiveError, ReceiveQueue, Role, Timeout, TransportId,
};

const PEER_ENV: &str = "LWMQ_CONNECTION_PEER";
const WAIT: Duration = Duration::from_secs(30);
const T0: TransportId = TransportId(0);

// ----- the peer program -----

/// Not a test when run normally. With `LWMQ_CONNECTION_PEER="<mode> <uri>
/// <role> <buffer size> [retry=<ms>] [allow-root]"` it is the peer
/// program: it opens a messaging channel (one send+receive transport;
/// `allow-root`: its access policy also admits root) and prints
/// `PEER OPEN <pid>`, then
///
/// * `hold`: prints each connection event (`PEER EVENT <text>`), each new
///   state (`PEER STATE <text>`), and, once, what `wait_connected` says
///   when it stops saying "timeout" (`PEER WAIT ok` or `PEER WAIT <error>`);
/// * `send`: posts numbered messages (its pid and a sequence number), one
///   per millisecond.
///
/// It exits when its stdin reaches its end (the test dropped it or died),
/// or after two minutes.
#[test]
fn peer_process() {
    let Ok(spec) = std::env::var(PEER_ENV) else {
        return;
    };
    std::thread::spawn(|| {
        let mut sink = String::new();
        let _ = std::io::stdin().read_line(&mut sink);
        std::process::exit(0);
    });
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_secs(120));
        std::process::exit(3);
    });
    let args: Vec<&str> = spec.split(' ').collect();
    let (mode, uri, role, size) = (args[0], args[1], args[2], args[3]);
    let role = if role == "server" {
        Role::Server
    } else {
        Role::Client
    };
    let size: usize = size.parse().unwrap();
    let mut ep = Endpoint::new(uri)
        .unwrap()
        .buffer_size(size)
        .send_buffers(8)
        .receive_buffers(8);
    for option in &args[4..] {
        ep = match option.split_once('=') {
            Some(("retry", ms)) => ep.retry_interval(Duration::from_millis(ms.parse().unwrap())),
            None if *option == "allow-root" => {
                ep.access(lwmq::AccessPolicy::same_user().allow_root())
            }
            _ => panic!("unknown peer option {option}"),
        };
    }
    let mut b = Channel::builder().transport(ep).unwrap();
    let q = b
        .multi_queue(QueueOptions::new(Priority::Normal).discard_newest(256))
        .unwrap();
    let ch = b.open(role).unwrap();
    let pid = std::process::id();
    // The test harness has printed `test peer_process ... ` without a line
    // end: end that line first.
    say(String::new());
    say(format!("PEER OPEN {pid}"));
    match mode {
        "hold" => {
            let t = ch.transport(T0).unwrap();
            let mut events = t.events();
            let mut last = String::new();
            let mut waited = false;
            loop {
                // Events first: a state set with an event shows with it.
                while let Some(e) = events.try_next() {
                    say(format!("PEER EVENT {e}"));
                }
                let state = t.state().to_string();
                if state != last {
                    say(format!("PEER STATE {state}"));
                    last = state;
                }
                if !waited {
                    match ch.wait_connected(Timeout::ZERO) {
                        Err(ConnectError::Timeout { .. }) => {}
                        Ok(()) => {
                            say("PEER WAIT ok".into());
                            waited = true;
                        }
                        Err(e) => {
                            say(format!("PEER WAIT {e}"));
                            waited = true;
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        "send" => {
            for seq in 0u64.. {
                let mut m = Message::new();
                let mut data = pid.to_le_bytes().to_vec();
                data.extend_from_slice(&seq.to_le_bytes());
                m.push(Frame::copy(&data));
                let _ = q.post(m, Timeout::after(Duration::from_secs(1)));
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        m => panic!("unknown peer mode {m}"),
    }
}

fn say(line: String) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

// ----- driving peers -----

struct Peer {
    child: Child,
    _stdin: ChildStdin,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Peer {
    /// Runs the peer program from `exe` (this binary, or a copy) with
    /// `spec`, as `uid` if given.
    fn spawn_from(exe: &std::path::Path, spec: &str, uid: Option<u32>) -> Peer {
        let mut cmd = Command::new(exe);
        cmd.args(["--exact", "peer_process", "--nocapture", "--test-threads=1"])
            .env(PEER_ENV, spec)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(uid) = uid {
            use std::os::unix::process::CommandExt;
            cmd.uid(uid).gid(uid);
        }
        let mut child = cmd.spawn().expect("spawn the peer");
        let stdin = child.stdin.take().expect("stdin");
        let out = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut p = Peer {
            child,
            _stdin: stdin,
            lines,
            seen: Vec::new(),
        };
        p.expect("PEER OPEN");
        p
    }

    fn spawn(spec: &str) -> Peer {
        Self::spawn_from(&std::env::current_exe().unwrap(), spec, None)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next line starting with `prefix` (within a generous bound).
    fn expect(&mut self, prefix: &str) -> String {
        let end = Instant::now() + WAIT;
        loop {
            match self
                .lines
                .recv_timeout(end.saturating_duration_since(Instant::now()))
            {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if l.starts_with(prefix) {
                        return l;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!("no {prefix:?} from the peer; saw {:?}", self.seen)
                }
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "the peer ended before {prefix:?}; saw {:?}; status {:?}",
                    self.seen,
                    self.child.try_wait()
                ),
            }
        }
    }

    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A channel with one send+receive transport (nothing posted).
fn open(uri: &str, role: Role, buffer_size: usize) -> Channel {
    endpoint(
        uri,
        role,
        buffer_size,
        QueueOptions::new(Priority::Normal),
        ReceiveQueue::default(),
    )
    .0
}

fn set_retry(ch: &Channel, ms: u64) {
    ch.transport(T0)
        .unwrap()
        .set_retry_interval(Duration::from_millis(ms))
        .unwrap();
}

fn refusal_of(e: ConnectError) -> lwmq::Refusal {
    match e {
        ConnectError::Refused { transport, refusal } => {
            assert_eq!(transport, T0);
            refusal
        }
        e => panic!("expected a refusal, got {e:?}: {e}"),
    }
}

// ----- the tests -----

/// Each test for `ipc://` (module `ipc`) and for `tcp://` (module `tcp`).
macro_rules! for_each_scheme {
    ($($name:ident),* $(,)?) => {
        mod ipc {
            $(#[test]
            fn $name() {
                super::$name(super::Scheme::Ipc)
            })*
        }
        mod tcp {
            $(#[test]
            fn $name() {
                super::$name(super::Scheme::Tcp)
            })*
        }
    };
}

for_each_scheme!(
    a_buffer_size_mismatch_is_returned_by_wait_connected_and_receive,
    a_server_reports_the_client_it_refused,
    the_refused_state_stays_across_retries,
    with_nothing_listening_it_is_a_timeout_that_says_so,
    a_killed_and_restarted_peer_shows_as_disconnected_then_connected,
    a_busy_server_stays_connected_and_a_slow_reader_gets_lagged,
    a_raw_channel_gets_the_refusal_from_wait_connected,
);

/// A client whose buffer size differs from the server's (another process)
/// gets the refusal from `wait_connected` and from a receive that used to
/// time out, with both sides' values; the server peer reports it too.
fn a_buffer_size_mismatch_is_returned_by_wait_connected_and_receive(scheme: Scheme) {
    let uri = scheme.uri("mismatch");
    let mut server = Peer::spawn(&format!("hold {uri} server 2048"));
    let mut ch = open(&uri, Role::Client, 1024);

    let r = refusal_of(ch.wait_connected(WAIT).unwrap_err());
    assert_eq!(r.reason, RefusalReason::BufferSize);
    assert!(r.by_peer);
    assert!(
        r.detail.contains("2048") && r.detail.contains("1024"),
        "{r}"
    );
    let e = ch.wait_connected(WAIT).unwrap_err();
    // Neutral words (the detail travels to the peer, which may be a C
    // program): "buffer size", not a language's name for the setting.
    let t = e.to_string();
    assert!(
        t.contains("buffer size 1024 bytes") && !t.contains("BufferSizeBytes"),
        "{e}"
    );

    for timeout in [Timeout::ZERO, Timeout::after(Duration::from_millis(200))] {
        match ch.receive(timeout) {
            Err(ReceiveError::Refused { transport, refusal }) => {
                assert_eq!(transport, T0);
                assert_eq!(refusal.reason, RefusalReason::BufferSize);
            }
            other => panic!("expected Refused, got {other:?}"),
        }
    }
    let e = ch.receive(Timeout::ZERO).unwrap_err().to_string();
    assert!(e.contains("refused") && !e.contains("wait longer"), "{e}");

    // The server's side: refused by itself, sticky there too.
    let line = server.expect("PEER STATE refused");
    assert!(line.contains("we refused the peer"), "{line}");
    let line = server.expect("PEER WAIT");
    assert!(
        line.contains("buffer size") && line.contains("2048 bytes"),
        "{line}"
    );
}

/// The same from the server's side: the test is the server, the peer the
/// mismatched client; the server refused it, and says so.
fn a_server_reports_the_client_it_refused(scheme: Scheme) {
    let uri = scheme.uri("mismatch-server");
    let ch = open(&uri, Role::Server, 1024);
    let mut client = Peer::spawn(&format!("hold {uri} client 4096"));
    let r = refusal_of(ch.wait_connected(WAIT).unwrap_err());
    assert_eq!(r.reason, RefusalReason::BufferSize);
    assert!(!r.by_peer);
    let line = client.expect("PEER WAIT");
    assert!(line.contains("peer refused us"), "{line}");
}

/// The state stays `Refused` across retries: polled between many retries,
/// it never shows `Connecting`.
fn the_refused_state_stays_across_retries(scheme: Scheme) {
    let uri = scheme.uri("sticky");
    let _server = Peer::spawn(&format!("hold {uri} server 2048"));
    let ch = open(&uri, Role::Client, 1024);
    set_retry(&ch, 20);
    let t = ch.transport(T0).unwrap();
    refusal_of(ch.wait_connected(WAIT).unwrap_err());
    let first = t.stats();
    let mut polls = 0;
    let end = Instant::now() + WAIT;
    // Until the client has retried (and been refused) five more times.
    while t.stats().refusals < first.refusals + 5 {
        assert!(Instant::now() < end, "the client stopped retrying");
        match t.state() {
            ConnectionState::Refused(r) => assert_eq!(r.reason, RefusalReason::BufferSize),
            s => panic!("state {s} between retries (poll {polls})"),
        }
        polls += 1;
        std::thread::sleep(Duration::from_millis(7));
    }
    assert!(t.stats().connect_attempts >= first.connect_attempts + 5);
    // Each retry was logged as an event.
    let refusals = {
        let mut ev = t.events();
        std::iter::from_fn(|| ev.try_next())
            .filter(|e| matches!(e, ConnectionEvent::Refused(_)))
            .count()
    };
    assert!(refusals >= 6, "{refusals} refusal events");
}

/// With nothing listening, a receive still times out, and the texts say
/// the transport is still connecting, not "poll again".
fn with_nothing_listening_it_is_a_timeout_that_says_so(scheme: Scheme) {
    let uri = scheme.uri("nobody");
    let mut ch = open(&uri, Role::Client, 1024);
    let short = Timeout::after(Duration::from_millis(100));
    let e = ch.receive(short).unwrap_err();
    assert_eq!(e, ReceiveError::Timeout);
    let text = e.to_string();
    assert!(
        text.contains("connecting") && !text.contains("poll again"),
        "{text}"
    );
    match ch.wait_connected(short) {
        Err(e @ ConnectError::Timeout { .. }) => {
            let ConnectError::Timeout { transport, state } = &e else {
                unreachable!()
            };
            assert_eq!((*transport, state), (T0, &ConnectionState::Connecting));
            assert!(e.to_string().contains("still connecting"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(ch.transport(T0).unwrap().generation(), 0);
    assert!(ch.transport(TransportId(3)).is_none());
    // A cursor kept past the channel's close reads a closed log.
    let mut events = ch.events();
    ch.close(Timeout::ZERO).unwrap();
    let end = Instant::now() + WAIT;
    while events.next(short).is_some() {
        assert!(Instant::now() < end, "a closed channel's events never end");
    }
}

/// A consumer checking its events between messages sees a producer that
/// was killed (`kill -9`) and restarted as `Disconnected`, then
/// `Connected` with the new pid (`ipc://`; a `tcp://` peer shows its
/// address and port instead) and the next generation.
fn a_killed_and_restarted_peer_shows_as_disconnected_then_connected(scheme: Scheme) {
    let uri = scheme.uri("restart");
    let mut ch = open(&uri, Role::Server, 4096);
    // Kept while receiving: the cursor does not borrow the channel.
    let mut events = ch.events();
    let mut seen: Vec<ConnectionEvent> = Vec::new();

    // Receives until a message from `pid` arrives, reading the events
    // between messages as a consumer would.
    let mut until_message_from = |ch: &mut Channel, pid: u32| {
        let end = Instant::now() + WAIT;
        loop {
            assert!(Instant::now() < end, "no message from pid {pid}");
            match ch.receive(Timeout::after(Duration::from_millis(100))) {
                Ok(r) => {
                    let f = r.frame(0).unwrap();
                    let from = u32::from_le_bytes(f.data()[..4].try_into().unwrap());
                    if from == pid {
                        return;
                    }
                }
                Err(ReceiveError::Timeout) => {}
                Err(e) => panic!("{e}"),
            }
            while let Some((t, e)) = events.try_next() {
                assert_eq!(t, T0);
                // Should the restarted producer knock before the server
                // has seen the first one go, it is turned away `Busy` and
                // retries: an event that is not part of this story.
                if !matches!(&e, ConnectionEvent::Refused(r) if r.reason == RefusalReason::Busy) {
                    seen.push(e);
                }
            }
        }
    };

    let mut first = Peer::spawn(&format!("send {uri} client 4096"));
    let pid1 = first.pid();
    until_message_from(&mut ch, pid1);
    first.kill9();
    let second = Peer::spawn(&format!("send {uri} client 4096"));
    let pid2 = second.pid();
    until_message_from(&mut ch, pid2);
    // The last event may have come with the message just received.
    while let Some((_, e)) = events.try_next() {
        if !matches!(&e, ConnectionEvent::Refused(r) if r.reason == RefusalReason::Busy) {
            seen.push(e);
        }
    }

    // Who a peer is: its pid for `ipc://` (from the kernel); for `tcp://`
    // no pid, no user, but its loopback address.
    let who = |peer: &lwmq::PeerInfo, pid: u32| match scheme {
        Scheme::Ipc => {
            assert_eq!(peer.pid, Some(pid), "{peer}");
            assert!(peer.uid.is_some() && peer.addr.is_none(), "{peer}");
        }
        Scheme::Tcp => {
            assert_eq!((peer.pid, peer.uid, peer.gid), (None, None, None), "{peer}");
            assert!(peer.addr.is_some_and(|a| a.ip().is_loopback()), "{peer}");
        }
    };
    let connected = |e: &ConnectionEvent| match e {
        ConnectionEvent::Connected { peer, generation } => Some((*peer, *generation)),
        _ => None,
    };
    assert_eq!(seen.len(), 3, "{seen:?}");
    let (peer1, g1) = connected(&seen[0]).unwrap_or_else(|| panic!("{seen:?}"));
    who(&peer1, pid1);
    assert_eq!(g1, 1);
    match &seen[1] {
        ConnectionEvent::Disconnected {
            peer,
            generation,
            reason,
        } => {
            assert_eq!(*peer, peer1);
            assert_eq!(*generation, 1);
            assert_eq!(reason, &DisconnectReason::PeerLeft);
        }
        e => panic!("{e:?}"),
    }
    let (peer2, g2) = connected(&seen[2]).unwrap_or_else(|| panic!("{seen:?}"));
    who(&peer2, pid2);
    assert_eq!(g2, 2);
    let t = ch.transport(T0).unwrap();
    assert_eq!(t.generation(), 2);
    assert_eq!(t.peer(), Some(peer2));

    // Once the channel is closed, a cursor kept from it ends at once.
    drop(second);
    ch.close(Timeout::ZERO).unwrap();
    let mut events = events;
    let mut after = Vec::new();
    while let Some((_, e)) = events.next(Timeout::INFINITE) {
        after.push(e);
    }
    assert!(
        after
            .iter()
            .all(|e| matches!(e, ConnectionEvent::Disconnected { .. })),
        "{after:?}"
    );
}

/// A second client of a busy server is refused `Busy`: the server stays
/// `Connected` (a third party's refusal is an event only), the refused
/// client's `wait_connected` says so, and a reader that did not keep up
/// with the server's log gets `Lagged` with the number it missed.
fn a_busy_server_stays_connected_and_a_slow_reader_gets_lagged(scheme: Scheme) {
    let uri = scheme.uri("busy");
    let ch = open(&uri, Role::Server, 1024);
    let mut slow = ch.events();
    let _first = Peer::spawn(&format!("hold {uri} client 1024"));
    ch.wait_connected(WAIT).unwrap();
    // The second client retries every 2 ms.
    let mut second = Peer::spawn(&format!("hold {uri} client 1024 retry=2"));
    let line = second.expect("PEER WAIT");
    assert!(line.contains("server already has a peer"), "{line}");
    let t = ch.transport(T0).unwrap();
    let end = Instant::now() + WAIT;
    while t.stats().refusals < lwmq::transport::EVENT_LOG_CAPACITY as u64 + 8 {
        assert!(Instant::now() < end, "too few refusals: {:?}", t.stats());
        assert_eq!(t.state(), ConnectionState::Connected);
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(second);
    assert_eq!(t.state(), ConnectionState::Connected);
    match slow.try_next() {
        Some((T0, ConnectionEvent::Lagged { missed })) => assert!(missed >= 1, "{missed}"),
        e => panic!("expected Lagged, got {e:?}"),
    }
    // Then the oldest events kept, refusals of the second client.
    match slow.try_next() {
        Some((T0, ConnectionEvent::Refused(r))) => {
            assert_eq!(r.reason, RefusalReason::Busy);
            assert!(!r.by_peer);
        }
        e => panic!("expected a refusal, got {e:?}"),
    }
}

/// A raw channel waits the same way: a raw client meeting a messaging
/// server (another process) is refused for the channel type.
fn a_raw_channel_gets_the_refusal_from_wait_connected(scheme: Scheme) {
    let uri = scheme.uri("raw-kind");
    let _server = Peer::spawn(&format!("hold {uri} server 1024"));
    let raw = RawChannel::builder()
        .transport(
            Endpoint::new(&uri)
                .unwrap()
                .buffer_size(1024)
                .send_buffers(1)
                .receive_buffers(1),
        )
        .unwrap()
        .open(Role::Client)
        .unwrap();
    let mut events = raw.events();
    let r = refusal_of(raw.wait_connected(WAIT).unwrap_err());
    assert_eq!(r.reason, RefusalReason::ChannelKind);
    let r = refusal_of(raw.transport(T0).unwrap().wait_connected(WAIT).unwrap_err());
    assert_eq!(r.reason, RefusalReason::ChannelKind);
    match events.next(WAIT) {
        Some((T0, ConnectionEvent::Refused(r))) => assert_eq!(r.reason, RefusalReason::ChannelKind),
        e => panic!("{e:?}"),
    }
    let mut events = raw.events();
    raw.close();
    let end = Instant::now() + WAIT;
    while events.next(Duration::from_millis(100)).is_some() {
        assert!(Instant::now() < end, "a closed channel's events never end");
    }
}

/// A copy of this test binary in a directory another user can enter.
struct ExeCopy(std::path::PathBuf);

impl ExeCopy {
    fn new(tag: &str) -> Self {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("lwmq-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let exe = dir.join("peer");
        std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        ExeCopy(dir)
    }

    fn exe(&self) -> std::path::PathBuf {
        self.0.join("peer")
    }
}

impl Drop for ExeCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A peer of another user (run with another uid; needs root): the client
/// of that user is refused `AccessDenied` and says so from
/// `wait_connected`; the server, which turned away a user its policy does
/// not admit, records an event and stays listening. The other way round,
/// this side's `wait_connected` and `receive` return the refusal.
#[test]
fn a_peer_of_another_user_is_refused_and_told_why() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root to run a peer as another user");
        return;
    }
    const NOBODY: u32 = 65534;
    let copy = ExeCopy::new("conn-other-user");

    // This side serves; the other user's client is turned away.
    let uri = unique("other-user-client");
    let ch = open(&uri, Role::Server, 1024);
    let mut events = ch.events();
    let mut client = Peer::spawn_from(
        &copy.exe(),
        // It admits a root server, so the refusal is the server's.
        &format!("hold {uri} client 1024 allow-root"),
        Some(NOBODY),
    );
    let line = client.expect("PEER WAIT");
    assert!(
        line.contains("access denied") && line.contains("peer refused us"),
        "{line}"
    );
    match events.next(WAIT) {
        Some((T0, ConnectionEvent::Refused(r))) => {
            assert_eq!(r.reason, RefusalReason::AccessDenied);
            assert!(!r.by_peer);
            assert!(r.detail.contains("65534"), "{r}");
        }
        e => panic!("{e:?}"),
    }
    assert_eq!(
        ch.transport(T0).unwrap().state(),
        ConnectionState::Listening
    );
    drop(client);

    // The other user serves; this side is the refused client.
    let uri = unique("other-user-server");
    let _server = Peer::spawn_from(
        &copy.exe(),
        &format!("hold {uri} server 1024"),
        Some(NOBODY),
    );
    let mut ch = open(&uri, Role::Client, 1024);
    let r = refusal_of(ch.wait_connected(WAIT).unwrap_err());
    assert_eq!(r.reason, RefusalReason::AccessDenied);
    assert!(r.detail.contains("65534"), "{r}");
    match ch.receive(Timeout::after(Duration::from_millis(50))) {
        Err(ReceiveError::Refused { refusal, .. }) => {
            assert_eq!(refusal.reason, RefusalReason::AccessDenied)
        }
        other => panic!("{other:?}"),
    }
}
