//! Spawning `lwmq-peer` processes and reading what they say.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// Generous limit for anything that should happen "promptly".
pub const LIVENESS: Duration = Duration::from_secs(30);

pub struct Peer {
    pub child: Child,
    lines: Receiver<String>,
    pub seen: Vec<String>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

pub fn unique(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "ipc://lwmq-test/{}/{tag}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn peer_cmd(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lwmq-peer"));
    c.args(args);
    c
}

pub fn spawn(args: &[&str]) -> Peer {
    spawn_cmd(peer_cmd(args))
}

pub fn spawn_cmd(mut cmd: Command) -> Peer {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn lwmq-peer");
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut err = child.stderr.take().expect("stderr");
    let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = stderr.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = err.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    Peer {
        child,
        lines: rx,
        seen: Vec::new(),
        stderr,
    }
}

impl Peer {
    /// Waits for a line starting with `prefix`; returns it.
    pub fn expect(&mut self, prefix: &str, within: Duration) -> String {
        let end = Instant::now() + within;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if l.starts_with(prefix) {
                        return l;
                    }
                }
                Err(RecvTimeoutError::Timeout) => panic!(
                    "no line starting with {prefix:?} within {within:?}; saw {:?}; stderr {}",
                    self.seen,
                    self.stderr()
                ),
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "peer exited before {prefix:?}; saw {:?}; status {:?}; stderr {}",
                    self.seen,
                    self.child.try_wait(),
                    self.stderr()
                ),
            }
        }
    }

    /// Waits until stderr contains `needle` (the reader thread may lag).
    pub fn stderr_contains(&self, needle: &str) -> bool {
        let end = Instant::now() + LIVENESS;
        while Instant::now() < end {
            if self.stderr().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for exit (generously); returns success.
    pub fn wait_success(&mut self) -> bool {
        let end = Instant::now() + LIVENESS * 4;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.success();
            }
            if Instant::now() > end {
                self.kill9();
                panic!(
                    "peer did not exit; saw {:?}; stderr {}",
                    self.seen,
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }

    /// Drains lines already printed.
    pub fn drain(&mut self) {
        while let Ok(l) = self.lines.try_recv() {
            self.seen.push(l);
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.kill9();
        }
    }
}

/// Parses `DONE received=.. bad=.. dup=.. gaps=.. runs=..`.
pub fn done_field(line: &str, key: &str) -> u64 {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {line}"))
}

pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

pub fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

pub fn thread_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// utime + stime of a process, in clock ticks.
pub fn cpu_ticks(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = s.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields after the comm: state is [0]; utime is field 14 overall => [11].
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

pub fn clock_ticks_per_sec() -> u64 {
    rustix::param::clock_ticks_per_second()
}

/// Spawns the messaging test peer `lwmq-msg-peer` with `args`.
pub fn spawn_msg(args: &[&str]) -> Peer {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lwmq-msg-peer"));
    c.args(args);
    spawn_cmd(c)
}

/// A copy of the `lwmq-peer` binary in a world-readable temporary
/// directory, for running it as another user (the build tree may sit under
/// a directory that user cannot enter). Removed on drop.
pub struct PeerCopy {
    dir: std::path::PathBuf,
    pub exe: std::path::PathBuf,
}

impl PeerCopy {
    pub fn new(tag: &str) -> Self {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("lwmq-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let exe = dir.join("lwmq-peer");
        std::fs::copy(env!("CARGO_BIN_EXE_lwmq-peer"), &exe).unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        Self { dir, exe }
    }

    /// A command running the copy as `uid`/`gid`.
    pub fn as_user(&self, uid: u32, args: &[&str]) -> Command {
        use std::os::unix::process::CommandExt;
        let mut c = Command::new(&self.exe);
        c.args(args).uid(uid).gid(uid);
        c
    }
}

impl Drop for PeerCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Asserts that two connected, idle peers each use under 2 % of a core,
/// measured over 4 s (10 ms clock ticks: 2 % is 8 ticks).
pub fn assert_idle_pair(a: &Peer, b: &Peer) {
    std::thread::sleep(Duration::from_millis(300));
    let t0 = (cpu_ticks(a.pid()), cpu_ticks(b.pid()));
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(4));
    let t1 = (cpu_ticks(a.pid()), cpu_ticks(b.pid()));
    let secs = start.elapsed().as_secs_f64();
    let hz = clock_ticks_per_sec() as f64;
    for (name, d) in [("first", t1.0 - t0.0), ("second", t1.1 - t0.1)] {
        let frac = d as f64 / hz / secs;
        eprintln!("idle {name} peer: {:.2}% of a core", frac * 100.0);
        assert!(
            frac < 0.02,
            "{name} peer used {:.1}% of a core while idle",
            frac * 100.0
        );
    }
}

/// A transport scheme the conformance tests run for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Ipc,
    Tcp,
}

impl Scheme {
    /// A fresh descriptor of this scheme for test `tag`.
    pub fn uri(self, tag: &str) -> String {
        match self {
            Scheme::Ipc => unique(tag),
            Scheme::Tcp => format!("tcp://127.0.0.1:{}", free_tcp_port()),
        }
    }
}

/// A TCP port on 127.0.0.1 that is free now, below the kernel's ephemeral
/// range (so an outgoing connection of another test cannot take it before
/// our server binds it), different for each call in this process.
pub fn free_tcp_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let base = std::process::id().wrapping_mul(7919);
    for _ in 0..1000 {
        let n = N.fetch_add(1, Ordering::Relaxed);
        let port = 20_000 + (base.wrapping_add(n.wrapping_mul(13)) % 12_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free tcp port in 20000..32000");
}

/// A raw channel with one `ipc://` transport (`s` send and `r` receive
/// buffers of `size` bytes; `tweak` sets anything else), opened in `role`.
pub fn raw_channel(
    uri: &str,
    size: usize,
    (s, r): (u32, u32),
    tweak: impl FnOnce(lwmq::Endpoint) -> lwmq::Endpoint,
    role: lwmq::Role,
) -> lwmq::RawChannel {
    let ep = lwmq::Endpoint::new(uri)
        .unwrap()
        .buffer_size(size)
        .send_buffers(s)
        .receive_buffers(r);
    lwmq::RawChannel::builder()
        .transport(tweak(ep))
        .unwrap()
        .open(role)
        .unwrap()
}
