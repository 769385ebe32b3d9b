//! What the `lwmq` binary says while it connects, with real processes: the
//! waiting line, refusals (another user, a mismatched buffer size) with
//! their reason and side, the exit at `--connect-timeout`, `-q`; and the
//! generated completions and man page.
//!
//! No timing assertion: a process must end (generous liveness bounds), and
//! the time it took is only checked to be at least its timeout.

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const LWMQ: &str = env!("CARGO_BIN_EXE_lwmq");

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A unique address for this test process and `tag`.
fn address(tag: &str) -> String {
    format!("reports-{}-{tag}", std::process::id())
}

/// Kills the server child when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether a socket with the abstract name `@name` is listening.
fn listening(name: &str) -> bool {
    let table = std::fs::read_to_string("/proc/net/unix").unwrap_or_default();
    let want = format!(" @{name}");
    table.lines().any(|l| l.ends_with(&want))
}

/// Starts `lwmq raw-thr recv ADDRESS` as a server with `args` and waits
/// (liveness bound: 60 s) until its rendezvous socket listens.
fn server(address: &str, args: &[&str]) -> Server {
    server_of(&["raw-thr", "recv"], address, args)
}

/// [`server`] running `lwmq WORDS ADDRESS 64 10` (e.g. `thr recv`).
fn server_of(words: &[&str], address: &str, args: &[&str]) -> Server {
    let uri = format!("ipc://{address}");
    let child = Command::new(LWMQ)
        .args(words)
        .args([&uri, "64", "10", "--role", "server"])
        .args(["--connect-timeout", "120"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the server");
    let s = Server(child);
    let name = format!("lwmq1/-/{address}");
    let start = Instant::now();
    while !listening(&name) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "server never listened"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    s
}

/// Runs a client command to its end (liveness bound 120 s) and returns
/// its output and how long it ran.
fn run_client(mut cmd: Command) -> (Output, Duration) {
    let start = Instant::now();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the client");
    let pid = child.id();
    let watchdog = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(120));
        // Still running after that long: a hang. End it so the test fails
        // with its output instead of hanging too.
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    });
    let out = child.wait_with_output().expect("wait for the client");
    drop(watchdog);
    (out, start.elapsed())
}

fn client(address: &str, args: &[&str]) -> Command {
    let uri = format!("ipc://{address}");
    let mut c = Command::new(LWMQ);
    c.args(["raw-thr", "send", &uri, "64", "10", "--role", "client"])
        .args(args);
    c
}

#[test]
fn a_client_with_no_server_says_it_waits_and_exits_at_its_timeout() {
    let a = address("nobody");
    let (o, took) = run_client(client(&a, &["--connect-timeout", "2"]));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(took >= Duration::from_secs(2), "{took:?}");
    assert!(
        err.contains(&format!("ipc://{a}: waiting for a peer (client, connecting, retrying every 100 ms; giving up after 2 s")),
        "{err}"
    );
    assert!(
        err.contains("no peer within --connect-timeout (2 s): no server accepted"),
        "{err}"
    );
}

#[test]
fn quiet_hides_the_waiting_line_but_not_the_failure() {
    let a = address("quiet");
    let (o, _) = run_client(client(&a, &["--connect-timeout", "1.5", "-q"]));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(!err.contains("waiting for a peer"), "{err}");
    assert!(err.contains("no peer within --connect-timeout"), "{err}");
}

#[test]
fn a_buffer_size_refusal_is_shown_with_its_reason_and_side() {
    let a = address("bufsize");
    let _s = server(&a, &["--buffer-size", "65536"]);
    let (o, took) = run_client(client(
        &a,
        &["--buffer-size", "4096", "--connect-timeout", "3"],
    ));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(took >= Duration::from_secs(3), "{took:?}");
    // At once (before the timeout): the refusal line; at the end, the
    // failure naming it.
    assert!(
        err.contains("connection refused by the peer: buffer_size mismatch (server buffer size 65536 bytes, client buffer size 4096 bytes"),
        "{err}"
    );
    assert!(
        err.contains("retrying every 100 ms until --connect-timeout (3 s)"),
        "{err}"
    );
    assert!(
        err.contains("gave up after --connect-timeout (3 s)"),
        "{err}"
    );
    // Said once, not once per retry.
    assert_eq!(err.matches("retrying every").count(), 1, "{err}");
    // The library's own warning of the same refusal is not repeated by
    // default...
    assert!(!err.contains("WARN lwmq::transport"), "{err}");
    // ...and -v shows it.
    let (o, _) = run_client(client(
        &a,
        &["--buffer-size", "4096", "--connect-timeout", "1", "-v"],
    ));
    assert!(
        stderr(&o).contains("WARN lwmq::transport"),
        "{}",
        stderr(&o)
    );
}

/// Whether this test may switch users with setpriv (root, setpriv found).
fn can_switch_user() -> bool {
    rustix::process::geteuid().is_root()
        && Command::new("setpriv")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

#[test]
fn another_users_client_is_refused_and_told_why() {
    if !can_switch_user() {
        eprintln!("skipped: needs root and setpriv to run a client as another user");
        return;
    }
    let a = address("user");
    let _s = server(&a, &[]);
    let uri = format!("ipc://{a}");
    let mut c = Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups", LWMQ])
        .args(["raw-thr", "send", &uri, "64", "10", "--role", "client"])
        .args(["--connect-timeout", "2"]);
    let (o, _) = run_client(c);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    // The client checks the server's user too (same-user policy on both
    // sides), so it is the first to refuse: the line says so.
    assert!(
        err.contains("connection refused by this side: access denied by policy"),
        "{err}"
    );
    assert!(
        err.contains("client (uid 65534) does not accept a server of uid 0"),
        "{err}"
    );
    assert!(
        err.contains("gave up after --connect-timeout (2 s)"),
        "{err}"
    );
}

#[test]
fn a_connected_pair_reports_the_connection_after_a_wait() {
    let a = address("pair");
    let uri = format!("ipc://{a}");
    // The receiver as a server waits (and says so) until the sender comes.
    let server = Command::new(LWMQ)
        .args(["raw-thr", "recv", &uri, "64", "10", "--role", "server"])
        .args(["--connect-timeout", "120"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let name = format!("lwmq1/-/{a}");
    let start = Instant::now();
    while !listening(&name) || start.elapsed() < Duration::from_millis(1500) {
        assert!(start.elapsed() < Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(20));
    }
    let (o, _) = run_client(client(&a, &[]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let s = server.wait_with_output().expect("server");
    let err = stderr(&s);
    assert_eq!(s.status.code(), Some(0), "{err}");
    assert!(
        err.contains("waiting for a peer (server, listening for a client; giving up after 120 s"),
        "{err}"
    );
    assert!(err.contains(&format!("{uri}: connected to pid ")), "{err}");
}

#[test]
fn connect_timeout_is_checked() {
    let o = Command::new(LWMQ)
        .args([
            "raw-thr",
            "send",
            "ipc://x",
            "64",
            "1",
            "--connect-timeout=-1",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("out of range"), "{}", stderr(&o));
}

#[test]
fn completions_and_man_page_are_generated() {
    for shell in ["bash", "zsh", "fish"] {
        let o = Command::new(LWMQ)
            .args(["generate", "completions", shell])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{shell}: {}", stderr(&o));
        let text = String::from_utf8_lossy(&o.stdout);
        for sub in ["raw-thr", "chat", "ls", "check", "connect-timeout"] {
            assert!(text.contains(sub), "{shell} completion lacks {sub}");
        }
    }
    let o = Command::new(LWMQ)
        .args(["generate", "man"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let man = String::from_utf8_lossy(&o.stdout);
    assert!(man.starts_with(".ie") || man.contains(".TH lwmq"), "{man}");
    for sub in ["raw\\-thr", "chat", "ls", "check", "limits"] {
        assert!(man.contains(sub), "man page lacks {sub}");
    }
    // Hidden from the help it is, but not from packagers.
    let help = Command::new(LWMQ).arg("--help").output().unwrap();
    assert!(!String::from_utf8_lossy(&help.stdout).contains("generate"));
}

/// Every command that connects, as a client with no server (or, for
/// `chat`, which opens as whichever side is free, as a server with no
/// client): the waiting line, then exit status 1 naming the timeout.
#[test]
fn every_connecting_command_says_it_waits_and_gives_up() {
    let commands: &[&[&str]] = &[
        &["thr", "send", "URI", "64", "10", "--role", "client"],
        &["thr", "recv", "URI", "64", "10", "--role", "client"],
        &["lat", "ping", "URI", "64", "10", "--role", "client"],
        &["lat", "pong", "URI", "64", "10", "--role", "client"],
        &["raw-thr", "recv", "URI", "64", "10", "--role", "client"],
        &["raw-lat", "ping", "URI", "64", "10", "--role", "client"],
        &["raw-lat", "pong", "URI", "64", "10", "--role", "client"],
        &["chat", "URI"],
        &["chat", "URI", "--raw"],
    ];
    for (i, words) in commands.iter().enumerate() {
        let a = address(&format!("every-{i}"));
        let uri = format!("ipc://{a}");
        let mut c = Command::new(LWMQ);
        c.args(
            words
                .iter()
                .map(|w| if *w == "URI" { uri.as_str() } else { w }),
        )
        .args(["--connect-timeout", "1.5"]);
        let (o, took) = run_client(c);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{words:?}: {err}");
        assert!(took >= Duration::from_millis(1500), "{words:?}: {took:?}");
        assert!(
            err.contains(&format!("{uri}: waiting for a peer (")),
            "{words:?}: {err}"
        );
        assert!(
            err.contains(&format!("{uri}: no peer within --connect-timeout (1.5 s)")),
            "{words:?}: {err}"
        );
    }
}

/// `thr send` (the issue's own example) and `raw-lat ping` against a
/// server of another buffer size (`lat` has no buffer-size option): the
/// refusal, with its reason; exit status 1 at the timeout.
#[test]
fn other_commands_show_a_buffer_size_refusal() {
    let pairs = [
        (["thr", "send"], ["thr", "recv"]),
        (["raw-lat", "ping"], ["raw-lat", "pong"]),
    ];
    for (i, (words, serving)) in pairs.iter().enumerate() {
        let a = address(&format!("refused-{i}"));
        let _s = server_of(serving, &a, &["--buffer-size", "65536"]);
        let uri = format!("ipc://{a}");
        let mut c = Command::new(LWMQ);
        c.args(words)
            .args([uri.as_str(), "64", "10", "--role", "client"])
            .args(["--buffer-size", "4096", "--connect-timeout", "2"]);
        let (o, took) = run_client(c);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{words:?}: {err}");
        assert!(took >= Duration::from_secs(2), "{words:?}: {took:?}");
        assert!(
            err.contains("connection refused by the peer: buffer_size mismatch"),
            "{words:?}: {err}"
        );
        assert!(
            err.contains("gave up after --connect-timeout (2 s)"),
            "{words:?}: {err}"
        );
    }
}
