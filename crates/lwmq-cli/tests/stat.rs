//! Statistics from outside the process, with real processes: two `lwmq
//! chat --raw` processes talk; `lwmq stat` (by pid, by URI, all, --watch)
//! and `lwmq ls` must show each one's peer pid and counters that match
//! what was sent; another user's query is refused. No timing assertion
//! (liveness bounds only).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Output, Stdio};
use std::time::{Duration, Instant};

const LWMQ: &str = env!("CARGO_BIN_EXE_lwmq");

/// A chat process, killed when the test ends however it ends.
struct Chat {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Chat {
    fn start(uri: &str) -> Chat {
        let mut child = Command::new(LWMQ)
            .args(["chat", "--raw", uri, "--connect-timeout", "120"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn chat");
        let stdin = child.stdin.take();
        let stdout: ChildStdout = child.stdout.take().expect("stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Chat {
            child,
            stdin,
            lines,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits (liveness bound: 120 s) for a stdout line equal to `want`.
    fn expect_line(&self, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l == want => return,
                Ok(_) => {}
                Err(e) => panic!("no line {want:?} from pid {}: {e}", self.pid()),
            }
        }
    }

    fn say(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// Closes stdin: the chat says goodbye (and exits once it has heard
    /// the peer's).
    fn hang_up(&mut self) {
        drop(self.stdin.take());
    }

    /// Waits for the exit.
    fn finish(mut self) -> std::process::ExitStatus {
        self.hang_up();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "chat did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Chat {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lwmq(args: &[&str]) -> Output {
    Command::new(LWMQ).args(args).output().expect("run lwmq")
}

fn json(o: &Output) -> serde_json::Value {
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = String::from_utf8_lossy(&o.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// The transport `uri` of process `pid` in a `lwmq stat --json` answer.
fn transport<'a>(v: &'a serde_json::Value, pid: u32, uri: &str) -> &'a serde_json::Value {
    v["processes"]
        .as_array()
        .expect("processes")
        .iter()
        .find(|p| p["pid"] == pid)
        .unwrap_or_else(|| panic!("no pid {pid} in {v}"))["transports"]
        .as_array()
        .expect("transports")
        .iter()
        .find(|t| t["descriptor"] == uri)
        .unwrap_or_else(|| panic!("no {uri} in {v}"))
}

fn listening(name: &str) -> bool {
    let table = std::fs::read_to_string("/proc/net/unix").unwrap_or_default();
    table.lines().any(|l| l.ends_with(&format!(" @{name}")))
}

fn can_switch_user() -> bool {
    rustix::process::geteuid().is_root()
        && Command::new("setpriv")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

#[test]
fn stat_and_ls_show_a_connected_pair_and_its_counters() {
    let address = format!("stat-test-{}", std::process::id());
    let uri = format!("ipc://{address}");
    let mut a = Chat::start(&uri);
    let start = Instant::now();
    while !listening(&format!("lwmq1/-/{address}")) {
        assert!(start.elapsed() < Duration::from_secs(60), "no server");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut b = Chat::start(&uri);
    a.expect_line("* peer joined");
    b.expect_line("* peer joined");
    a.say("abc");
    b.expect_line("peer: abc");
    let (pa, pb) = (a.pid(), b.pid());

    // A (the server) sent "Hello" and "abc", each an 8-byte timestamp and
    // the text: 2 buffers, 13 + 11 bytes; it received B's "Hello".
    let v = json(&lwmq(&["stat", "--pid", &pa.to_string(), "--json"]));
    let t = transport(&v, pa, &uri);
    assert_eq!(t["state"], "connected", "{t}");
    assert_eq!(t["peer"]["pid"], pb, "{t}");
    assert_eq!(t["buffers_sent"], 2, "{t}");
    assert_eq!(t["bytes_sent"], 24, "{t}");
    assert_eq!(t["buffers_received"], 1, "{t}");
    assert_eq!(t["bytes_received"], 13, "{t}");
    assert_eq!(t["connections"], 1, "{t}");
    assert_eq!(t["reconnections"], 0, "{t}");
    assert_eq!(t["violations"], 0, "{t}");
    assert_eq!(t["staged"], 0, "{t}");

    // B, a client (it binds no rendezvous), answers on its stat socket.
    let v = json(&lwmq(&["stat", "--pid", &pb.to_string(), "--json"]));
    let t = transport(&v, pb, &uri);
    assert_eq!(t["peer"]["pid"], pa, "{t}");
    assert_eq!(t["buffers_received"], 2, "{t}");
    assert_eq!(t["bytes_received"], 24, "{t}");
    assert_eq!(t["buffers_sent"], 1, "{t}");
    assert!(t["connect_attempts"].as_u64().unwrap() >= 1, "{t}");

    // By URI: the server answers on its rendezvous.
    let v = json(&lwmq(&["stat", &uri, "--json"]));
    assert_eq!(transport(&v, pa, &uri)["bytes_sent"], 24);
    // All: both ends.
    let v = json(&lwmq(&["stat", "--json"]));
    assert_eq!(transport(&v, pa, &uri)["peer"]["pid"], pb);
    assert_eq!(transport(&v, pb, &uri)["peer"]["pid"], pa);

    // --watch: one object per refresh, rates from the second on.
    let o = lwmq(&[
        "stat",
        "--pid",
        &pa.to_string(),
        "--json",
        "--watch",
        "0.1",
        "--count",
        "2",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(transport(&lines[0], pa, &uri).get("rates").is_none());
    let rates = &transport(&lines[1], pa, &uri)["rates"];
    assert_eq!(rates["bytes_sent_per_sec"], 0.0, "{rates}");

    // The human forms.
    let o = lwmq(&["stat", &uri]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains(&format!("{uri}  connected  peer pid {pb}")),
        "{text}"
    );
    assert!(text.contains("sent 2 buffers, 24 B"), "{text}");

    let o = lwmq(&["ls"]);
    assert_eq!(o.status.code(), Some(0));
    let table = String::from_utf8_lossy(&o.stdout);
    for (me, peer) in [(pa, pb), (pb, pa)] {
        let line = table
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{me} ")) && l.contains(&uri))
            .unwrap_or_else(|| panic!("no transport line for {me}:\n{table}"));
        assert!(line.contains("connected"), "{line}");
        assert!(line.contains(&format!("pid {peer} ")), "{line}");
    }
    let v = json(&lwmq(&["ls", "--json"]));
    let server = v
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["address"] == address.as_str())
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(server["pid"], pa);
    assert_eq!(server["state"], "connected");
    assert_eq!(server["peer_pid"], pb);

    // Another user is refused, on the stat socket and on the rendezvous.
    if can_switch_user() {
        for target in [vec!["--pid".to_owned(), pa.to_string()], vec![uri.clone()]] {
            let o = Command::new("setpriv")
                .args([
                    "--reuid=65534",
                    "--regid=65534",
                    "--clear-groups",
                    LWMQ,
                    "stat",
                ])
                .args(&target)
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(1), "{target:?}: {err}");
            assert!(
                err.contains("query refused: access denied by policy"),
                "{err}"
            );
            assert!(o.stdout.is_empty());
        }
    } else {
        eprintln!("other-user query skipped: needs root and setpriv");
    }

    a.hang_up();
    b.hang_up();
    assert!(a.finish().success());
    assert!(b.finish().success());
}

#[test]
fn stat_of_nothing_is_a_clear_error() {
    // A pid with no stat socket (pid 1 is never an lwmq process here; if it
    // were, the answer would be its own, also fine).
    let o = lwmq(&["stat", "--pid", "4194304"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("nothing answers"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = lwmq(&["stat", "ipc://no/such/server/anywhere"]);
    assert_eq!(o.status.code(), Some(1));
    // A tcp:// descriptor nobody has; one that is not a descriptor.
    let o = lwmq(&["stat", "tcp://x:1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("has a transport tcp://x:1"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = lwmq(&["stat", "tcp://x"]);
    assert_eq!(o.status.code(), Some(2));
}

/// The stat socket lives while the process has transports: bound with the
/// first, closed (its thread joined) with the last, bound again with the
/// next. (The only test of this binary that opens channels in-process.)
#[test]
fn the_stat_socket_follows_the_transports() {
    use lwmq::{Endpoint, RawChannel, Role};
    let name = format!("lwmq-stat/{}", std::process::id());
    let open = |tag: &str| {
        let ep = Endpoint::new(format!("ipc://stat-life-{}-{tag}", std::process::id()))
            .unwrap()
            .send_buffers(1)
            .receive_buffers(0);
        RawChannel::builder()
            .transport(ep)
            .unwrap()
            .open(Role::Server)
            .unwrap()
    };
    assert!(!listening(&name));
    let a = open("a");
    let b = open("b");
    assert!(listening(&name));
    // Asked in-process, it answers with both.
    let snap = lwmq::internals::stat::query_pid(std::process::id(), Duration::from_secs(30))
        .expect("own stat socket answers");
    assert_eq!(snap.transports.len(), 2, "{snap:?}");
    drop(a);
    assert!(listening(&name), "one transport is left");
    drop(b);
    assert!(!listening(&name), "closed with the last transport");
    let c = open("c");
    assert!(listening(&name), "bound again");
    drop(c);
    assert!(!listening(&name));
}

/// `lwmq stat tcp://...`: a tcp:// server has no rendezvous to ask, so
/// every process of the user answers and the transports of that
/// descriptor are kept: both ends, each with its peer's address.
#[test]
fn stat_by_tcp_uri_shows_both_ends_and_their_peer_addresses() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let uri = format!("tcp://127.0.0.1:{port}");
    let mut a = Chat::start(&uri);
    let pa = a.pid();
    // The first chat becomes the server: wait until it listens.
    let start = Instant::now();
    loop {
        let o = lwmq(&["stat", "--pid", &pa.to_string(), "--json"]);
        if o.status.success() {
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
            let listening = v["processes"][0]["transports"]
                .as_array()
                .is_some_and(|ts| ts.iter().any(|t| t["state"] == "listening"));
            if listening {
                break;
            }
        }
        assert!(start.elapsed() < Duration::from_secs(60), "no server");
        std::thread::sleep(Duration::from_millis(20));
    }
    let b = Chat::start(&uri);
    let pb = b.pid();
    a.expect_line("* peer joined");
    b.expect_line("* peer joined");
    a.say("abc");
    b.expect_line("peer: abc");

    let v = json(&lwmq(&["stat", &uri, "--json"]));
    let server = transport(&v, pa, &uri);
    assert_eq!(server["state"], "connected", "{server}");
    assert_eq!(server["buffers_sent"], 2, "{server}");
    assert_eq!(server["bytes_sent"], 24, "{server}");
    let client_addr = server["peer"]["addr"].as_str().expect("peer address");
    assert!(client_addr.starts_with("127.0.0.1:"), "{server}");
    let client = transport(&v, pb, &uri);
    assert_eq!(
        client["peer"]["addr"],
        format!("127.0.0.1:{port}"),
        "{client}"
    );
    assert_eq!(client["buffers_received"], 2, "{client}");
    // The human form names the peer by address.
    let o = lwmq(&["stat", &uri]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains(&format!("peer 127.0.0.1:{port}")), "{text}");
    a.hang_up();
    assert!(b.finish().success());
}
