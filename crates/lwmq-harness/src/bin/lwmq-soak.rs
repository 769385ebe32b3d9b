//! `lwmq-soak`: the crash soak and the load soak, run on demand.
//!
//! ```text
//! lwmq-soak crash [--cycles N] [--size BYTES]
//! lwmq-soak load  [--seconds S] [--size BYTES] [--send-queue N]
//!                 [--recv-queue N] [--every N] [--sleep-us U]
//! ```
//!
//! Both drive `lwmq-msg-peer` processes (the binary next to this one) over
//! messaging channels, print what they measured, and end with
//! `RESULT ok` (exit 0) or `RESULT FAIL: ...` (exit 1). Nothing is judged
//! on speed: the reconnect-time target is reported, not enforced.
//!
//! **Crash soak.** Two pairs stream checked, sequenced messages at full
//! rate. In pair P the sender is the server and is `kill -9`ed on even
//! cycles; in pair Q the receiver is the server and is killed on odd
//! cycles. So kills alternate between a sender and a receiver, and each
//! pair has one survivor that lives through every cycle (P's receiver,
//! Q's sender, both clients that reconnect by retrying), whose
//! descriptors, threads and RSS are sampled after every cycle. For each
//! kill the soak measures the reconnect time (the replacement server
//! printed `OPEN` → the first message of the new connection delivered)
//! and the messages lost, from the victim's `--progress` record: for a
//! killed sender, posted minus delivered; for a killed receiver, the gap
//! between the last message it delivered and the first one its
//! replacement delivers. A duplicate or reordering across a crash (the
//! replacement receiving something the victim already delivered) fails
//! the soak, as does any `BAD` line of a receiver.
//!
//! **Load soak.** `lsend` posts at full rate into a send queue bounded to
//! `--send-queue` (discard oldest); `lrecv` is slow (sleeps `--sleep-us`
//! every `--every` messages) behind a receive queue bounded to
//! `--recv-queue` (discard oldest); by default it pauses 50 ms every 1000
//! messages, long enough for the channel's receive thread to take over and
//! fill the bounded receive queue, so both queues discard. Every second
//! both processes' RSS is sampled and the receiver reports progress; the
//! soak counts the seconds without a delivery (reported, as speed is not
//! judged) and fails if nothing is delivered for a minute. At the end the counters
//! must add up exactly: posted = delivered + END marker + send-queue
//! discards + receive-queue discards, and messages sent = messages
//! received (nothing is lost on a live connection).
#![deny(unsafe_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Generous bound for anything that should happen promptly.
const LIVENESS: Duration = Duration::from_secs(60);

fn peer_exe() -> PathBuf {
    let me = std::env::current_exe().expect("current_exe");
    me.with_file_name("lwmq-msg-peer")
}

/// A spawned `lwmq-msg-peer` whose stdout lines arrive with the instant
/// they were read.
struct Proc {
    name: String,
    child: Child,
    lines: Receiver<(Instant, String)>,
    seen: Vec<String>,
    stderr: Arc<Mutex<String>>,
    /// When the last `CONN up` line was read (`--watch`).
    conn_up: Option<Instant>,
}

impl Proc {
    fn spawn(name: &str, args: &[&str]) -> Proc {
        let mut child = Command::new(peer_exe())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", peer_exe().display()));
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        let mut err = child.stderr.take().expect("stderr");
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut s = sink.lock().unwrap();
                // Keep the tail only: a long soak must not grow here.
                if s.len() > 64 * 1024 {
                    let cut = s.len() - 32 * 1024;
                    let cut = (cut..s.len()).find(|&i| s.is_char_boundary(i)).unwrap_or(0);
                    s.replace_range(..cut, "");
                }
                s.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Proc {
            name: name.to_string(),
            child,
            lines: rx,
            seen: Vec::new(),
            stderr,
            conn_up: None,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn keep(&mut self, t: Instant, line: &str) {
        if line == "CONN up" {
            self.conn_up = Some(t);
        }
        if line.starts_with("BAD") {
            self.seen.push(line.to_string());
        }
    }

    /// Waits for a line starting with `prefix`.
    fn expect(&mut self, prefix: &str, within: Duration) -> Result<(Instant, String), String> {
        let end = Instant::now() + within;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((t, l)) => {
                    self.keep(t, &l);
                    if l.starts_with(prefix) {
                        return Ok((t, l));
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "{}: no {prefix:?} line within {within:?}; stderr: {}",
                        self.name,
                        self.stderr.lock().unwrap()
                    ))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(format!(
                        "{}: exited before {prefix:?} ({:?}); stderr: {}",
                        self.name,
                        self.child.try_wait(),
                        self.stderr.lock().unwrap()
                    ))
                }
            }
        }
    }

    /// Lines already printed.
    fn drain(&mut self) -> Vec<String> {
        let mut v = Vec::new();
        while let Ok((t, l)) = self.lines.try_recv() {
            self.keep(t, &l);
            v.push(l);
        }
        v
    }

    /// `kill -9`, reap, then read what it printed before dying.
    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let end = Instant::now() + Duration::from_secs(5);
        while let Ok((t, l)) = self
            .lines
            .recv_timeout(end.saturating_duration_since(Instant::now()))
        {
            self.keep(t, &l);
        }
    }

    /// When the survivor saw its connection come back: the `CONN up` read
    /// since `conn_up` was last cleared, waiting briefly for it if needed.
    fn connected_at(&mut self) -> Option<Instant> {
        if self.conn_up.is_none() {
            let _ = self.expect("CONN up", Duration::from_secs(2));
        }
        self.conn_up.take()
    }

    /// The last `n` lines it wrote to stderr, joined with " | ".
    fn stderr_tail(&self, n: usize) -> String {
        let s = self.stderr.lock().unwrap();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(n)..].join(" | ")
    }

    fn bad(&self) -> impl Iterator<Item = &String> {
        self.seen.iter().filter(|l| l.starts_with("BAD"))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

fn thread_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count())
}

fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// `key=value` fields of a line.
fn fields(line: &str) -> HashMap<String, u64> {
    line.split_whitespace()
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

fn field(line: &str, key: &str) -> Result<u64, String> {
    fields(line)
        .get(key)
        .copied()
        .ok_or_else(|| format!("no {key} in {line:?}"))
}

fn read_u64s(path: &Path) -> Vec<u64> {
    std::fs::read(path)
        .unwrap_or_default()
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// A small xorshift generator for the kill delays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

struct Args(Vec<String>);

impl Args {
    fn get(&self, name: &str, default: u64) -> u64 {
        match self.0.iter().position(|a| a == name) {
            None => default,
            Some(i) => self
                .0
                .get(i + 1)
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| usage(&format!("{name} needs a number"))),
        }
    }
}

fn usage(msg: &str) -> ! {
    eprintln!("lwmq-soak: {msg}");
    eprintln!("usage: lwmq-soak crash [--cycles N] [--size B]");
    eprintln!("       lwmq-soak load [--seconds S] [--size B] [--send-queue N] [--recv-queue N] [--every N] [--sleep-us U]");
    std::process::exit(2)
}

fn main() {
    let mut argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.is_empty() {
        usage("missing mode");
    }
    let mode = argv.remove(0);
    let args = Args(argv);
    let outcome = match mode.as_str() {
        "crash" => crash(&args),
        "load" => load(&args),
        m => usage(&format!("unknown mode {m}")),
    };
    match outcome {
        Ok(()) => println!("RESULT ok"),
        Err(e) => {
            println!("RESULT FAIL: {e}");
            std::process::exit(1);
        }
    }
}

/// Survivor resource sample: (fds, threads, RSS KiB).
type Sample = (usize, usize, u64);

fn sample(pid: u32) -> Sample {
    (fd_count(pid), thread_count(pid), rss_kib(pid))
}

fn crash(args: &Args) -> Result<(), String> {
    let cycles = args.get("--cycles", 200);
    let size = args.get("--size", 100).to_string();
    let id = std::process::id();
    let dir = std::env::temp_dir().join(format!("lwmq-soak-{id}"));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let result = crash_in(cycles, &size, id, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Prints the cycles that missed the reconnect target (one retry interval,
/// 100 ms, plus 50 ms), with the replacement's start-up time; true if it
/// did (the caller then adds what the two processes logged).
fn note(
    cycle: u64,
    victim: &str,
    t_kill: Instant,
    t_open: Instant,
    t_up: Option<Instant>,
    t_run: Instant,
) -> bool {
    let reconnect = t_run.duration_since(t_open);
    let slow = reconnect > Duration::from_millis(150);
    if slow {
        println!(
            "SLOW cycle={cycle} victim={victim} startup_ms={:.1} connected_ms={} flowing_ms={:.1}",
            ms(t_open.duration_since(t_kill)),
            t_up.map_or("?".into(), |t| format!(
                "{:.1}",
                ms(t.saturating_duration_since(t_open))
            )),
            ms(reconnect)
        );
    }
    slow
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn crash_in(cycles: u64, size: &str, id: u32, dir: &Path) -> Result<(), String> {
    let uri_p = format!("ipc://lwmq-soak/{id}/crash-p");
    let uri_q = format!("ipc://lwmq-soak/{id}/crash-q");
    let sp_file = dir.join("sender-p");
    let rq_file = dir.join("receiver-q");
    let sp_path = sp_file.to_str().unwrap().to_string();
    let rq_path = rq_file.to_str().unwrap().to_string();
    let spawn_sp = || {
        Proc::spawn(
            "P sender",
            &["send", &uri_p, "server", "0", size, "--progress", &sp_path],
        )
    };
    let spawn_rq = || {
        Proc::spawn(
            "Q receiver",
            &["recv", &uri_q, "server", "0", "--progress", &rq_path],
        )
    };

    // Pair P: the receiver (client) survives, the sender (server) dies.
    let mut rp = Proc::spawn(
        "P receiver (survivor)",
        &["recv", &uri_p, "client", "0", "--watch"],
    );
    let mut sp = spawn_sp();
    sp.expect("OPEN", LIVENESS)?;
    rp.expect("RUN", LIVENESS)?;
    // Pair Q: the sender (client) survives, the receiver (server) dies.
    let mut sq = Proc::spawn(
        "Q sender (survivor)",
        &["send", &uri_q, "client", "0", size, "--watch"],
    );
    let mut rq = spawn_rq();
    rq.expect("OPEN", LIVENESS)?;
    let (_, first) = rq.expect("RUN", LIVENESS)?;
    let q_run: u64 = first
        .split_whitespace()
        .nth(1)
        .and_then(|r| r.parse().ok())
        .ok_or("bad RUN line")?;

    let mut rng = Rng(u64::from(id) << 17 | 0x9E37);
    let mut reconnect_ms = Vec::new();
    let mut connect_ms: Vec<Option<f64>> = Vec::new();
    let mut kill_to_flow_ms = Vec::new();
    let mut lost_sender = Vec::new();
    let mut lost_receiver = Vec::new();
    let mut errors = Vec::new();
    let mut baseline: Option<(Sample, Sample)> = None;
    let mut worst: (Sample, Sample) = ((0, 0, 0), (0, 0, 0));
    let mut last: (Sample, Sample) = ((0, 0, 0), (0, 0, 0));
    let started = Instant::now();

    for cycle in 0..cycles {
        // Let the stream run for a random 0-50 ms, then strike.
        std::thread::sleep(Duration::from_millis(rng.next() % 50));
        rp.drain();
        sq.drain();
        rp.conn_up = None;
        sq.conn_up = None;
        if cycle % 2 == 0 {
            sp.kill9();
            let t_kill = Instant::now();
            let posted = read_u64s(&sp_file).first().copied().unwrap_or(0);
            sp = spawn_sp();
            let (t_open, _) = sp.expect("OPEN", LIVENESS)?;
            let (_, end) = rp.expect("ENDRUN", LIVENESS)?;
            let (t_run, _) = rp.expect("RUN", LIVENESS)?;
            let delivered: u64 = end
                .split_whitespace()
                .nth(3)
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| format!("bad ENDRUN line {end:?}"))?;
            // The record lags the post by one instruction window: a
            // message posted but not yet recorded may have been delivered.
            if delivered > posted + 1 {
                errors.push(format!(
                    "cycle {cycle}: receiver got {delivered} of {posted} posted"
                ));
            }
            lost_sender.push(posted.saturating_sub(delivered));
            let t_up = rp.connected_at();
            if note(cycle, "sender", t_kill, t_open, t_up, t_run) {
                println!("  survivor said: {}", rp.stderr_tail(6));
                println!("  replacement said: {}", sp.stderr_tail(6));
            }
            connect_ms.push(t_up.map(|t| ms(t.saturating_duration_since(t_open))));
            reconnect_ms.push(t_run.duration_since(t_open).as_secs_f64() * 1e3);
            kill_to_flow_ms.push(t_run.duration_since(t_kill).as_secs_f64() * 1e3);
        } else {
            rq.kill9();
            let t_kill = Instant::now();
            let rec = read_u64s(&rq_file);
            rq = spawn_rq();
            let (t_open, _) = rq.expect("OPEN", LIVENESS)?;
            let (t_run, line) = rq.expect("RUN", LIVENESS)?;
            let mut it = line.split_whitespace().skip(1);
            let run: u64 = it.next().and_then(|v| v.parse().ok()).ok_or("bad RUN")?;
            let first: u64 = it.next().and_then(|v| v.parse().ok()).ok_or("bad RUN")?;
            if run != q_run {
                errors.push(format!("cycle {cycle}: Q's sender restarted (run {run})"));
            }
            match rec.as_slice() {
                [r, s] if *r == q_run => {
                    if first <= *s {
                        errors.push(format!(
                            "cycle {cycle}: duplicate across the crash: the victim delivered seq {s}, its replacement started at {first}"
                        ));
                    } else {
                        lost_receiver.push(first - s - 1);
                    }
                }
                _ => errors.push(format!("cycle {cycle}: no progress record ({rec:?})")),
            }
            let t_up = sq.connected_at();
            if note(cycle, "receiver", t_kill, t_open, t_up, t_run) {
                println!("  survivor said: {}", sq.stderr_tail(6));
                println!("  replacement said: {}", rq.stderr_tail(6));
            }
            connect_ms.push(t_up.map(|t| ms(t.saturating_duration_since(t_open))));
            reconnect_ms.push(t_run.duration_since(t_open).as_secs_f64() * 1e3);
            kill_to_flow_ms.push(t_run.duration_since(t_kill).as_secs_f64() * 1e3);
        }
        // Both pairs are connected again here: sample the survivors.
        last = (sample(rp.pid()), sample(sq.pid()));
        if cycle == 2 {
            baseline = Some(last);
        }
        worst = (
            (
                worst.0 .0.max(last.0 .0),
                worst.0 .1.max(last.0 .1),
                worst.0 .2.max(last.0 .2),
            ),
            (
                worst.1 .0.max(last.1 .0),
                worst.1 .1.max(last.1 .1),
                worst.1 .2.max(last.1 .2),
            ),
        );
        if (cycle + 1) % 20 == 0 {
            println!(
                "cycle {} of {cycles}: P receiver fds={} threads={} rss={} KiB; Q sender fds={} threads={} rss={} KiB",
                cycle + 1,
                last.0 .0,
                last.0 .1,
                last.0 .2,
                last.1 .0,
                last.1 .1,
                last.1 .2
            );
        }
        rp.drain();
        sq.drain();
    }
    let elapsed = started.elapsed();
    for p in [&mut sp, &mut rq, &mut rp, &mut sq] {
        p.kill9();
    }
    let bad: Vec<String> = [&sp, &rq, &rp, &sq]
        .iter()
        .flat_map(|p| p.bad().cloned().collect::<Vec<_>>())
        .collect();
    // Victims' BAD lines were kept when they were killed.
    errors.extend(bad.iter().take(10).map(|b| format!("receiver said {b}")));

    let split = |v: &[f64], parity: usize| {
        let mut x: Vec<f64> = v.iter().skip(parity).step_by(2).copied().collect();
        x.sort_by(f64::total_cmp);
        x
    };
    let connected: Vec<f64> = connect_ms.iter().map(|c| c.unwrap_or(f64::NAN)).collect();
    for (what, v) in [("connected", &connected), ("flowing", &reconnect_ms)] {
        for (who, parity) in [("sender", 0), ("receiver", 1)] {
            let mut x = split(v, parity);
            x.retain(|v| !v.is_nan());
            println!(
                "RECONNECT {what} victim={who} kills={} p50_ms={:.1} p99_ms={:.1} max_ms={:.1} within_150ms={}",
                x.len(),
                percentile(&x, 50.0),
                percentile(&x, 99.0),
                x.last().copied().unwrap_or(0.0),
                x.iter().filter(|&&v| v <= 150.0).count()
            );
        }
    }
    let mut sorted = reconnect_ms.clone();
    sorted.sort_by(f64::total_cmp);
    let mut kill_sorted = kill_to_flow_ms.clone();
    kill_sorted.sort_by(f64::total_cmp);
    let max_of = |v: &[u64]| v.iter().copied().max().unwrap_or(0);
    let mean_of = |v: &[u64]| v.iter().sum::<u64>() as f64 / v.len().max(1) as f64;
    println!(
        "CRASH cycles={cycles} seconds={:.1} reconnect_p50_ms={:.1} reconnect_p99_ms={:.1} reconnect_max_ms={:.1} kill_to_flow_p50_ms={:.1} kill_to_flow_p99_ms={:.1} bad={}",
        elapsed.as_secs_f64(),
        percentile(&sorted, 50.0),
        percentile(&sorted, 99.0),
        sorted.last().copied().unwrap_or(0.0),
        percentile(&kill_sorted, 50.0),
        percentile(&kill_sorted, 99.0),
        bad.len()
    );
    println!(
        "LOSS sender_kills={} lost_per_sender_kill_mean={:.0} lost_per_sender_kill_max={} receiver_kills={} lost_per_receiver_kill_mean={:.0} lost_per_receiver_kill_max={}",
        lost_sender.len(),
        mean_of(&lost_sender),
        max_of(&lost_sender),
        lost_receiver.len(),
        mean_of(&lost_receiver),
        max_of(&lost_receiver)
    );
    if let Some((b_rp, b_sq)) = baseline {
        println!(
            "FLAT p_receiver fds={}->{} threads={}->{} rss_kib={}->{} rss_max_kib={} q_sender fds={}->{} threads={}->{} rss_kib={}->{} rss_max_kib={}",
            b_rp.0, last.0 .0, b_rp.1, last.0 .1, b_rp.2, last.0 .2, worst.0 .2,
            b_sq.0, last.1 .0, b_sq.1, last.1 .1, b_sq.2, last.1 .2, worst.1 .2
        );
        for (who, b, l) in [("P receiver", b_rp, last.0), ("Q sender", b_sq, last.1)] {
            if l.0 != b.0 {
                errors.push(format!("{who}: descriptors {} -> {}", b.0, l.0));
            }
            if l.1 != b.1 {
                errors.push(format!("{who}: threads {} -> {}", b.1, l.1));
            }
            // The allocator may keep a few MiB of the send queue's peak.
            if l.2 > b.2 + 8 * 1024 {
                errors.push(format!("{who}: RSS {} -> {} KiB", b.2, l.2));
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

fn load(args: &Args) -> Result<(), String> {
    let seconds = args.get("--seconds", 600);
    let size = args.get("--size", 100).to_string();
    let send_q = args.get("--send-queue", 1000).to_string();
    let recv_q = args.get("--recv-queue", 1000).to_string();
    let every = args.get("--every", 1000).to_string();
    let sleep_us = args.get("--sleep-us", 50_000).to_string();
    let uri = format!("ipc://lwmq-soak/{}/load", std::process::id());
    let secs = seconds.to_string();
    let mut rx = Proc::spawn(
        "load receiver",
        &["lrecv", &uri, "server", &recv_q, &every, &sleep_us],
    );
    rx.expect("OPEN", LIVENESS)?;
    let mut tx = Proc::spawn(
        "load sender",
        &["lsend", &uri, "client", &secs, &size, &send_q],
    );
    tx.expect("OPEN", LIVENESS)?;

    let start = Instant::now();
    let mut errors = Vec::new();
    let mut rss: Vec<(u64, u64)> = Vec::new();
    let mut last_delivered = 0u64;
    let mut last_progress = Instant::now();
    let mut longest_stall = Duration::ZERO;
    let mut idle_windows = 0u64;
    let mut lsent = None;
    let mut ldone = None;
    let mut stat_lines = 0u64;
    // Sample once a second until the receiver is done.
    while ldone.is_none() {
        std::thread::sleep(Duration::from_secs(1));
        if rx.child.try_wait().ok().flatten().is_some() {
            ldone = rx.drain().into_iter().find(|l| l.starts_with("LDONE"));
            if ldone.is_none() {
                return Err(format!(
                    "receiver exited early; stderr: {}",
                    rx.stderr.lock().unwrap()
                ));
            }
            break;
        }
        if tx.child.try_wait().ok().flatten().is_some() {
            return Err(format!(
                "sender exited; stderr: {}",
                tx.stderr.lock().unwrap()
            ));
        }
        if lsent.is_none() {
            rss.push((rss_kib(tx.pid()), rss_kib(rx.pid())));
        }
        for l in tx.drain() {
            if l.starts_with("LSENT") {
                lsent = Some(l);
            }
        }
        for l in rx.drain() {
            if l.starts_with("STAT") {
                stat_lines += 1;
                let d = field(&l, "delivered")?;
                if d > last_delivered {
                    last_delivered = d;
                    last_progress = Instant::now();
                } else {
                    idle_windows += 1;
                }
            } else if l.starts_with("LDONE") {
                ldone = Some(l);
            }
        }
        longest_stall = longest_stall.max(last_progress.elapsed());
        if last_progress.elapsed() > LIVENESS {
            return Err(format!(
                "stall: nothing delivered for {:?}",
                last_progress.elapsed()
            ));
        }
        if start.elapsed() > Duration::from_secs(seconds) + LIVENESS * 4 {
            return Err("the soak did not finish".into());
        }
    }
    let ldone = ldone.unwrap();
    let lsent = match lsent {
        Some(l) => l,
        None => tx.expect("LSENT", LIVENESS)?.1,
    };
    tx.kill9();
    rx.kill9();
    let elapsed = start.elapsed();
    let posted = field(&lsent, "posted")?;
    let send_discards = field(&lsent, "send_discards")?;
    let sent = field(&lsent, "messages_sent")?;
    let unencodable = field(&lsent, "dropped_unencodable")?;
    let delivered = field(&ldone, "delivered")?;
    let recv_discards = field(&ldone, "receive_discards")?;
    let received = field(&ldone, "messages_received")?;
    let decode_errors = field(&ldone, "decode_errors")?;
    let bad = field(&ldone, "bad")?;
    // The END marker is posted, sent and received, but not counted as
    // delivered.
    let accounted = delivered + 1 + send_discards + recv_discards;
    println!(
        "LOAD seconds={:.1} posted={posted} delivered={delivered} send_discards={send_discards} receive_discards={recv_discards} messages_sent={sent} messages_received={received} decode_errors={decode_errors} bad={bad} seconds_without_delivery={idle_windows} longest_gap_ms={} stat_lines={stat_lines}",
        elapsed.as_secs_f64(),
        longest_stall.as_millis()
    );
    if posted != accounted {
        errors.push(format!(
            "posted {posted} != delivered {delivered} + 1 + send discards {send_discards} + receive discards {recv_discards}"
        ));
    }
    if sent + send_discards != posted {
        errors.push(format!(
            "posted {posted} != sent {sent} + send discards {send_discards}"
        ));
    }
    if sent != received {
        errors.push(format!("sent {sent} != received {received}"));
    }
    if decode_errors != 0 || bad != 0 || unencodable != 0 {
        errors.push(format!(
            "decode_errors={decode_errors} bad={bad} unencodable={unencodable}"
        ));
    }
    if rx.bad().next().is_some() {
        errors.push(format!("{:?}", rx.bad().take(5).collect::<Vec<_>>()));
    }
    // Memory: after the first quarter (queues and rings filled), RSS may
    // not grow.
    if rss.len() >= 4 {
        let warm = rss[rss.len() / 4];
        let max_after = rss[rss.len() / 4..]
            .iter()
            .fold((0, 0), |m, s| (m.0.max(s.0), m.1.max(s.1)));
        let end = *rss.last().unwrap();
        println!(
            "MEMORY samples={} sender_rss_kib warm={} max={} end={} receiver_rss_kib warm={} max={} end={}",
            rss.len(),
            warm.0,
            max_after.0,
            end.0,
            warm.1,
            max_after.1,
            end.1
        );
        for (who, w, m) in [
            ("sender", warm.0, max_after.0),
            ("receiver", warm.1, max_after.1),
        ] {
            if m > w + 8 * 1024 {
                errors.push(format!("{who} RSS grew from {w} to {m} KiB"));
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}
