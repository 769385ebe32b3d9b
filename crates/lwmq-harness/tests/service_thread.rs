//! The `ipc://` service thread against hostile and unusual peers, all real
//! processes: an accept flood from another user, silent connections held
//! by another user, peers in another pid namespace, a 119-character CJK
//! address, a server that sends a hugetlbfs section, and a server whose
//! refusal text carries control characters.
//!
//! Tests that need another uid or a pid namespace need root (as in CI);
//! elsewhere they say so and pass.

mod common;

use std::process::Command;
use std::time::Instant;

use common::*;

const NOBODY: u32 = 65534;

fn svc_cmd(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lwmq-svc-peer"));
    c.args(args);
    c
}

fn svc(args: &[&str]) -> Peer {
    spawn_cmd(svc_cmd(args))
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn field(line: &str, key: &str) -> u64 {
    done_field(line, key)
}

/// Copies of the test binaries in a world-readable directory, to run them
/// as another user (the build tree may be below a directory that user
/// cannot enter). Removed on drop.
struct Copies {
    dir: std::path::PathBuf,
}

impl Copies {
    fn new(tag: &str) -> Self {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("lwmq-svc-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        for (name, src) in [
            ("lwmq-svc-peer", env!("CARGO_BIN_EXE_lwmq-svc-peer")),
            ("lwmq-msg-peer", env!("CARGO_BIN_EXE_lwmq-msg-peer")),
        ] {
            let exe = dir.join(name);
            std::fs::copy(src, &exe).unwrap();
            std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        Self { dir }
    }

    /// `name args...` run as `uid` (and the same gid; std drops the
    /// supplementary groups when root changes uid).
    fn as_user(&self, uid: u32, name: &str, args: &[&str]) -> Command {
        use std::os::unix::process::CommandExt;
        let mut c = Command::new(self.dir.join(name));
        c.args(args).uid(uid).gid(uid);
        c
    }
}

impl Drop for Copies {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Another user's 16 threads connect and close as fast as they can, so the
/// server's accept queue is full nearly all the time. The server used to
/// accept until the queue was empty: a flood that keeps it non-empty holds
/// every handshake, the live connection and `close` for as long as it
/// lasts. Now an honest client connects and delivers during the flood, and
/// `close` returns while the flood goes on (the bound is a generous
/// liveness limit, not a speed claim).
///
/// On the 2-core machine this was written on, the flood cannot drain the
/// server's CPU enough to keep the queue non-empty for good, so the old
/// code was delayed (honest client in 1.7-6.6 s, `close` up to 1.7 s)
/// rather than hung, and this test does not reliably fail against it.
#[test]
fn accept_flood_from_another_user_neither_starves_clients_nor_blocks_close() {
    if !is_root() {
        eprintln!("skipped: needs root to run the flood as another uid");
        return;
    }
    let copies = Copies::new("flood");
    let uri = unique("flood");
    let mut server = svc(&["serve", &uri, "--count", "2000", "--linger-ms", "1000"]);
    server.expect("OPEN server", LIVENESS);
    // Long enough to outlast the test: it is killed at the end.
    let mut flood = spawn_cmd(copies.as_user(
        NOBODY,
        "lwmq-svc-peer",
        &[
            "flood",
            &uri,
            "--threads",
            "16",
            "--count",
            "32",
            "--seconds",
            "600",
        ],
    ));
    flood.expect("FLOODING", LIVENESS);
    let t0 = Instant::now();
    let mut client = spawn_msg(&["send", &uri, "client", "2000", "100"]);
    client.expect("SENT", LIVENESS * 3);
    server.expect("DONE", LIVENESS);
    eprintln!("flood: honest client delivered after {:?}", t0.elapsed());
    let closed = server.expect("CLOSED", LIVENESS * 2);
    let ms = field(&closed, "ms");
    eprintln!("flood: server close took {ms} ms (linger 1000 ms)");
    assert!(
        u128::from(ms) < LIVENESS.as_millis(),
        "close took {ms} ms during the flood"
    );
    assert!(
        matches!(flood.child.try_wait(), Ok(None)),
        "the flood ended before the server closed: {:?} {}",
        flood.seen,
        flood.stderr()
    );
    assert!(server.wait_success(), "{}", server.stderr());
    assert!(client.wait_success(), "{}", client.stderr());
    // The flood's connections were refused, and the log was rate-limited.
    let log = server.stderr();
    let lines = log.matches("does not accept uid 65534").count();
    eprintln!("flood: {lines} refusal log lines");
    assert!(lines >= 1, "{log}");
    assert!(lines <= 10, "{lines} refusal lines: {log}");
    flood.kill9();
}

/// Another user the policy admits holds 12 silent connections. It gets 4
/// handshakes in progress at most: each newer connection displaces its own
/// oldest one, which is refused `Busy` with the rule named; the last 4 are
/// closed at the handshake deadline. Meanwhile a client of our own user
/// connects and delivers. (The counts assume the server accepts 12 local
/// connections within the 2 s handshake deadline.)
#[test]
fn one_user_cannot_hold_more_than_its_share_of_handshakes() {
    if !is_root() {
        eprintln!("skipped: needs root to run a peer as another uid");
        return;
    }
    let copies = Copies::new("hold");
    let uri = unique("hold");
    let mut server = svc(&["serve", &uri, "--count", "500", "--any-user"]);
    server.expect("OPEN server", LIVENESS);
    let mut hold = spawn_cmd(copies.as_user(
        NOBODY,
        "lwmq-svc-peer",
        &["hold", &uri, "--count", "12", "--seconds", "20"],
    ));
    let mut client = spawn_msg(&["send", &uri, "client", "500", "100"]);
    client.expect("SENT", LIVENESS);
    server.expect("DONE", LIVENESS);
    let tally = hold.expect("HOLD", LIVENESS * 2);
    assert_eq!(field(&tally, "opened"), 12, "{tally}");
    assert_eq!(field(&tally, "refused"), 8, "{tally} {:?}", hold.seen);
    assert_eq!(field(&tally, "eof"), 4, "{tally}");
    hold.drain();
    for l in hold.seen.iter().filter(|l| l.starts_with("HELDREFUSED")) {
        assert!(l.contains("code=6"), "{l}");
        assert!(l.contains("at most 4 per user"), "{l}");
    }
    assert!(hold.wait_success(), "{}", hold.stderr());
    assert!(server.wait_success(), "{}", server.stderr());
}

/// True if this process may create pid namespaces with `unshare -p -f`.
fn can_unshare() -> bool {
    is_root()
        && Command::new("unshare")
            .args(["-p", "-f", "--kill-child", "true"])
            .status()
            .is_ok_and(|s| s.success())
}

/// `unshare -p -f --kill-child EXE ARGS`: EXE runs as pid 1 of a new pid
/// namespace and dies with the `unshare` process.
fn in_pid_namespace(exe: &str, args: &[&str]) -> Command {
    let mut c = Command::new("unshare");
    c.args(["-p", "-f", "--kill-child", exe]).args(args);
    c
}

/// `SO_PEERCRED` reports pid 0 for a peer in a pid namespace the reader
/// cannot see. That used to be read into a non-zero integer (undefined
/// behaviour, surfacing as an error with errno 0) and the connection was
/// dropped without a word: the client stayed `Connecting` for ever. Now
/// the pid is "unknown", the same policy applies, and they connect: server
/// inside and client outside, then the other way round.
#[test]
fn peers_in_another_pid_namespace_connect() {
    if !can_unshare() {
        eprintln!("skipped: needs root and unshare(1) for a pid namespace");
        return;
    }
    let uri = unique("pidns-server");
    let mut server = spawn_cmd(in_pid_namespace(
        env!("CARGO_BIN_EXE_lwmq-svc-peer"),
        &["serve", &uri, "--count", "1000"],
    ));
    server.expect("OPEN server", LIVENESS);
    let mut client = spawn_msg(&["send", &uri, "client", "1000", "100"]);
    client.expect("SENT", LIVENESS);
    server.expect("DONE", LIVENESS);
    assert!(server.wait_success(), "{}", server.stderr());
    assert!(client.wait_success(), "{}", client.stderr());
    // The server could not see the client's pid and said so.
    assert!(
        server.stderr_contains("connected to unknown pid (another pid namespace)"),
        "{}",
        server.stderr()
    );

    let uri = unique("pidns-client");
    let mut server = svc(&["serve", &uri, "--count", "1000"]);
    server.expect("OPEN server", LIVENESS);
    let mut client = spawn_cmd(in_pid_namespace(
        env!("CARGO_BIN_EXE_lwmq-msg-peer"),
        &["send", &uri, "client", "1000", "100"],
    ));
    client.expect("SENT", LIVENESS);
    server.expect("DONE", LIVENESS);
    assert!(server.wait_success(), "{}", server.stderr());
    assert!(client.wait_success(), "{}", client.stderr());
    // This time the client is the one that cannot see the other's pid.
    assert!(
        client
            .stderr()
            .contains("connected to unknown pid (another pid namespace)"),
        "{}",
        client.stderr()
    );
}

/// A client of another user, seen from a server in its own pid namespace:
/// unknown pid, and refused by the default policy, with the reason logged
/// by the server and readable by the client (no more silent drop).
#[test]
fn a_refusal_across_pid_namespaces_is_logged_and_visible_on_both_sides() {
    if !can_unshare() {
        eprintln!("skipped: needs root and unshare(1) for a pid namespace");
        return;
    }
    let copies = Copies::new("pidns-refuse");
    let uri = unique("pidns-refuse");
    let mut server = spawn_cmd(in_pid_namespace(
        env!("CARGO_BIN_EXE_lwmq-svc-peer"),
        &["serve", &uri, "--count", "1"],
    ));
    server.expect("OPEN server", LIVENESS);
    let mut client = spawn_cmd(copies.as_user(
        NOBODY,
        "lwmq-svc-peer",
        // The client accepts a root server, so the refusal is the
        // server's.
        &[
            "client",
            &uri,
            "--seconds",
            "3",
            "--buffer-size",
            "65536",
            "--allow-root",
        ],
    ));
    let state = client.expect("STATE refused", LIVENESS);
    assert!(state.contains("peer refused us"), "{state}");
    assert!(state.contains("access denied"), "{state}");
    assert!(state.contains("unknown pid"), "{state}");
    let last = client.expect("LASTERROR", LIVENESS);
    assert!(last.contains("does not accept uid 65534"), "{last}");
    assert!(
        server.stderr_contains(
            "does not accept uid 65534 gid 65534 (unknown pid (another pid namespace))"
        ),
        "{}",
        server.stderr()
    );
}

/// A valid address of 119 CJK characters is 357 bytes of UTF-8: as
/// `lwmq:<descriptor>` the section's memfd name exceeded the kernel's
/// 249-byte limit, `memfd_create` failed and such an address could never
/// connect. The name is now hashed when it is too long.
#[test]
fn a_119_character_cjk_address_connects() {
    // Unique per run: the test's pid spelled with CJK digits, then filler.
    let digits = ['〇', '一', '二', '三', '四', '五', '六', '七', '八', '九'];
    let mut address: String = std::process::id()
        .to_string()
        .bytes()
        .map(|b| digits[usize::from(b - b'0')])
        .collect();
    address.push('测');
    while address.chars().count() < 119 {
        address.push('通');
    }
    assert_eq!(address.encode_utf16().count(), 119);
    assert!(address.len() >= 119 * 3);
    let uri = format!("ipc://{address}");
    let mut server = svc(&["serve", &uri, "--count", "500"]);
    server.expect("OPEN server", LIVENESS);
    let mut client = spawn_msg(&["send", &uri, "client", "500", "100"]);
    client.expect("SENT", LIVENESS);
    let map = server.expect("MAP", LIVENESS);
    assert!(map.contains("/memfd:lwmq:ipc://#"), "{map}");
    server.expect("DONE", LIVENESS);
    assert!(server.wait_success(), "{}", server.stderr());
    assert!(client.wait_success(), "{}", client.stderr());
}

/// A hostile server sends a section that is sealed and of the right size
/// but lives on hugetlbfs, where a punched hole cannot be refilled once
/// the huge-page pool is empty (SIGBUS in the client). The client refuses
/// it before mapping, and the reason is visible on both sides: in the
/// client's state and log, and in the REFUSE the server reads back.
#[test]
fn a_hugetlbfs_section_is_refused_by_the_client_with_the_reason_on_both_sides() {
    let uri = unique("hugetlb");
    let mut server = svc(&["evil-server", &uri, "--mode", "hugetlb", "--seconds", "10"]);
    server.expect("OPEN server", LIVENESS);
    // 4032-byte buffers make 4096-byte slots, so some capacity gives a
    // section of whole 2 MiB pages (hugetlbfs sizes files by whole pages).
    let mut client = svc(&[
        "client",
        &uri,
        "--seconds",
        "3",
        "--buffer-size",
        "4032",
        "--buffers",
        "4",
    ]);
    let answer = server.expect("", LIVENESS);
    if answer.starts_with("NOHUGETLB") {
        eprintln!(
            "skipped: {answer} (the check itself: sys::shm::tests::hugetlbfs_section_is_refused)"
        );
        return;
    }
    assert!(answer.starts_with("CLIENT-REFUSED code=8"), "{answer}");
    assert!(answer.contains("hugetlbfs"), "{answer}");
    assert!(answer.contains("not tmpfs"), "{answer}");
    let last = client.expect("LASTERROR", LIVENESS);
    assert!(last.contains("we refused the peer"), "{last}");
    assert!(last.contains("hugetlbfs"), "{last}");
    client.drain();
    assert!(
        !client.seen.iter().any(|l| l == "CONNECTED"),
        "{:?}",
        client.seen
    );
    assert!(client.stderr_contains("not tmpfs"), "{}", client.stderr());
}

/// A server's REFUSE text with a newline, a carriage return, a terminal
/// escape sequence and a bell: the client logs and stores it escaped, on
/// one line, so the peer cannot forge log lines or drive a terminal.
#[test]
fn peer_refusal_text_with_control_characters_is_logged_escaped() {
    let uri = unique("refuse-text");
    let mut server = svc(&[
        "evil-server",
        &uri,
        "--mode",
        "refuse-text",
        "--seconds",
        "5",
    ]);
    server.expect("OPEN server", LIVENESS);
    let mut client = svc(&["client", &uri, "--seconds", "2"]);
    let last = client.expect("LASTERROR", LIVENESS);
    assert!(
        last.contains("busy\\u{a}[WARN] lwmq forged: connected to pid 1\\u{d}\\u{1b}[2J\\u{7}"),
        "{last}"
    );
    assert!(
        client.stderr_contains("peer refused us"),
        "{}",
        client.stderr()
    );
    let log = client.stderr();
    assert!(
        !log.contains('\u{1b}') && !log.contains('\r') && !log.contains('\u{7}'),
        "{log:?}"
    );
    assert!(
        !log.lines().any(|l| l.starts_with("[WARN] lwmq forged")),
        "a forged line reached the log: {log}"
    );
    assert!(log.contains("\\u{1b}[2J"), "{log}");
}
