//! `lwmq-msg-peer`: a test peer over a messaging channel, for the
//! multi-process tests of the channel layer.
//!
//! ```text
//! lwmq-msg-peer send URI server|client COUNT SIZE   (COUNT 0 = forever)
//! lwmq-msg-peer recv URI server|client COUNT        (COUNT 0 = forever)
//! lwmq-msg-peer idle URI server|client SECONDS      (connect, then block in receive)
//! lwmq-msg-peer duplex URI server|client 0 SIZE     (send and receive at once, forever)
//! lwmq-msg-peer lsend URI server|client SECONDS SIZE QCAP   (load soak sender)
//! lwmq-msg-peer lrecv URI server|client QCAP EVERY SLEEP_US (load soak receiver)
//! lwmq-msg-peer judge URI server|client SECONDS    (checks each message against itself)
//! options for send and recv: --progress FILE, --watch
//! options for every command: --heartbeat-ms MS (tcp:// heartbeat timeout)
//! options for send: --also URI (a second sending transport: the channel
//!   fans out to both), --linger (no flush: `close` with a 60 s linger is
//!   what delivers the last messages), --mixed (payload sizes cycle
//!   through SIZE, 40,000 B, 65,000 B and a few dozen bytes, and every
//!   other message is posted with `post_copy` instead of `post`: over
//!   `tcp://` the large ones are written from the sender's memory,
//!   between small ones clubbed into buffers)
//! ```
//!
//! Each message has one frame holding a checked payload
//! (`lwmq_harness::fill`) whose `run` is unique per sender process. The
//! receiver prints `RUN <run> <first seq>` when a new run starts, `BAD ...`
//! for any corrupted payload, duplicate or reordering within a run, and
//! after COUNT messages `DONE received=.. bad=.. dup=.. gaps=.. runs=..`.
//! Both print `OPEN <role>` once the channel is open. When a run ends
//! (another sender's first message arrives), the receiver prints
//! `ENDRUN <run> <last seq> <received in run>` before the new `RUN`.
//!
//! `--progress FILE` makes a sender store how many messages it has posted,
//! and a receiver the `run` and `seq` of the last message it delivered, in
//! FILE (little-endian u64s at offset 0, rewritten after every message), so
//! a crash soak can read them after `kill -9`. `--watch` makes it print
//! `CONN up` / `CONN down` when its transport's connection state changes
//! (checked about every millisecond; a watching receiver waits in slices
//! of 1 ms instead of blocking).
//!
//! The load-soak pair: `lsend` posts checked payloads as fast as it can for
//! SECONDS into a send queue bounded to QCAP that discards the oldest,
//! then posts a 3-byte `END` message, flushes and prints
//! `LSENT posted=.. send_discards=.. messages_sent=.. buffers_sent=..`, and
//! then waits to be killed (closing could drop what is still in the ring).
//! `lrecv` receives into a receive queue bounded to QCAP that discards the
//! oldest, and is slow: it sleeps SLEEP_US after every EVERY messages. It
//! checks every payload and that sequence numbers only increase (discards
//! make gaps, never reorderings). Every second it prints
//! `STAT delivered=.. receive_discards=.. messages_received=.. bad=..`;
//! on `END`, `LDONE` with the same fields plus `decode_errors`.
//!
//! `judge` is the honest receiver facing a peer that rewrites its buffers
//! while they are decoded (`lwmq-peer hostile --mode rewrite`). It takes
//! messages in runs of 50 with `receive` (owned) and `receive_with` (lent
//! in place once no message decoded ahead is left), checks that each one agrees with itself (payload size = sum of
//! its frames' lengths, frame count = frames visited, every frame copied
//! out whole into a buffer of the payload size, as a C program would
//! gather it), prints `BAD ...` for any that does not, and stops at the
//! one-frame message `REWRITE-END` (or after SECONDS) with `JUDGE
//! delivered=.. bad=.. lent_in_place=.. messages_received=..
//! decode_errors=.. buffers_received=..`.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use lwmq::message::{Frame, Message};
use lwmq::{
    Channel, ChannelBuilder, Endpoint, MonoQueue, PostError, Priority, QueueOptions, ReceiveError,
    ReceiveQueue, TransportId,
};
use lwmq::{Role, Timeout};

fn fail(msg: impl AsRef<str>) -> ! {
    eprintln!("lwmq-msg-peer: {}", msg.as_ref());
    std::process::exit(2);
}

fn say(line: String) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn main() {
    lwmq_harness::init_logging();
    lwmq_harness::signals::install_if_requested();
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let progress = args.iter().position(|a| a == "--progress").map(|i| {
        let path = args
            .get(i + 1)
            .cloned()
            .unwrap_or_else(|| fail("--progress FILE"));
        args.drain(i..i + 2);
        File::create(&path).unwrap_or_else(|e| fail(format!("{path}: {e}")))
    });
    let watch = args.iter().position(|a| a == "--watch").map(|i| {
        args.remove(i);
    });
    let watch = watch.is_some();
    let mut extra = Extra::default();
    if let Some(i) = args.iter().position(|a| a == "--heartbeat-ms") {
        let v = args.get(i + 1).and_then(|v| v.parse().ok());
        extra.heartbeat_ms = Some(v.unwrap_or_else(|| fail("--heartbeat-ms MS")));
        args.drain(i..i + 2);
    }
    if let Some(i) = args.iter().position(|a| a == "--also") {
        extra.also = Some(
            args.get(i + 1)
                .cloned()
                .unwrap_or_else(|| fail("--also URI")),
        );
        args.drain(i..i + 2);
    }
    if let Some(i) = args.iter().position(|a| a == "--linger") {
        extra.linger = true;
        args.remove(i);
    }
    if let Some(i) = args.iter().position(|a| a == "--mixed") {
        extra.mixed = true;
        args.remove(i);
    }
    let _ = EXTRA.set(extra);
    if args.len() < 4 {
        fail("usage: send|recv URI server|client COUNT [SIZE]");
    }
    let role = match args[2].as_str() {
        "server" => Role::Server,
        "client" => Role::Client,
        r => fail(format!("bad role {r}")),
    };
    let count: u64 = args[3].parse().unwrap_or_else(|_| fail("bad COUNT"));
    match args[0].as_str() {
        "send" => {
            let size: usize = args
                .get(4)
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| fail("bad SIZE"));
            send(
                &args[1],
                role,
                count,
                size.max(lwmq_harness::HEADER),
                progress.as_ref(),
                watch,
            );
        }
        "recv" => recv(&args[1], role, count, progress.as_ref(), watch),
        "idle" => idle(&args[1], role, count),
        "duplex" => {
            let size: usize = args
                .get(4)
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| fail("bad SIZE"));
            duplex(&args[1], role, size.max(lwmq_harness::HEADER));
        }
        "lsend" => {
            let num = |i: usize| -> usize {
                args.get(i)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| fail("usage: lsend URI ROLE SECONDS SIZE QCAP"))
            };
            load_send(
                &args[1],
                role,
                count,
                num(4).max(lwmq_harness::HEADER),
                num(5),
            );
        }
        "judge" => judge(&args[1], role, count),
        "lrecv" => {
            let num = |i: usize| -> u64 {
                args.get(i)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| fail("usage: lrecv URI ROLE QCAP EVERY SLEEP_US"))
            };
            load_recv(&args[1], role, count as usize, num(4).max(1), num(5));
        }
        c => fail(format!("unknown command {c}")),
    }
}

/// Options that apply to every command.
#[derive(Debug, Default)]
struct Extra {
    heartbeat_ms: Option<u64>,
    also: Option<String>,
    linger: bool,
    mixed: bool,
}

static EXTRA: std::sync::OnceLock<Extra> = std::sync::OnceLock::new();

fn extra() -> &'static Extra {
    EXTRA.get_or_init(Extra::default)
}

/// A builder with one transport of 64 KiB buffers (`(send, receive)`
/// buffer counts; the directions follow from them) and receive queue
/// `recv` (the default one if `None` and the transport receives).
///
/// With `--also URI`, a sending builder gets a second, send-only
/// transport (id 1); `--heartbeat-ms` sets every transport's heartbeat
/// timeout.
fn builder(uri: &str, (sends, receives): (u32, u32), recv: Option<ReceiveQueue>) -> ChannelBuilder {
    let ep = |uri: &str, receives| {
        let mut ep = Endpoint::new(uri)
            .unwrap_or_else(|e| fail(e.to_string()))
            .buffer_size(64 * 1024)
            .send_buffers(sends)
            .receive_buffers(receives);
        if let Some(ms) = extra().heartbeat_ms {
            ep = ep.heartbeat_timeout(Duration::from_millis(ms));
        }
        ep
    };
    let mut b = Channel::builder()
        .transport(ep(uri, receives))
        .unwrap_or_else(|e| fail(e.to_string()));
    if let (Some(also), true) = (&extra().also, sends > 0) {
        b = b
            .transport(ep(also, 0))
            .unwrap_or_else(|e| fail(e.to_string()));
    }
    match recv {
        Some(rq) => b.receive_queue(rq),
        None => b,
    }
}

/// Opens `b` in `role`.
fn open(b: ChannelBuilder, role: Role) -> Channel {
    b.open(role).unwrap_or_else(|e| fail(e.to_string()))
}

/// The only transport of these channels.
const T: TransportId = TransportId(0);

/// Posts `m`, waiting at the queue's high-water mark in 1 ms steps so that
/// `watch` keeps reporting the connection meanwhile.
fn post_watching(q: &MonoQueue, mut m: Message, ch: &Channel, watch: &mut Watch) {
    loop {
        match q.post(m, Duration::from_millis(1)) {
            Ok(()) => return,
            Err(PostError::Full(back)) => {
                watch.check(ch, T);
                m = back;
            }
            Err(e) => fail(e.to_string()),
        }
    }
}

/// [`post_watching`] with `MonoQueue::post_copy`.
fn post_copy_watching(q: &MonoQueue, payload: &[u8], ch: &Channel, watch: &mut Watch) {
    loop {
        match q.post_copy(payload, Duration::from_millis(1)) {
            Ok(()) => return,
            Err(PostError::Full(_)) => watch.check(ch, T),
            Err(e) => fail(e.to_string()),
        }
    }
}

/// With `LWMQ_TEST_SIGUSR1` set: `SIGNALS <n>`, the signals handled.
fn say_signals() {
    if lwmq_harness::signals::requested() {
        say(format!("SIGNALS {}", lwmq_harness::signals::seen()));
    }
}

/// Stores `words` at the start of `file` (the `--progress` record).
fn record(file: Option<&File>, words: &[u64]) {
    if let Some(f) = file {
        let mut bytes = [0u8; 16];
        for (i, w) in words.iter().take(2).enumerate() {
            bytes[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
        }
        let _ = f.write_at(&bytes[..words.len().min(2) * 8], 0);
    }
}

fn role_name(role: Role) -> &'static str {
    if role == Role::Server {
        "server"
    } else {
        "client"
    }
}

/// A run identifier unique per sender process.
fn new_run() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    (u64::from(std::process::id()) << 32) ^ nanos
}

/// Prints `CONN up` / `CONN down` when the connection state changes.
struct Watch {
    on: bool,
    up: bool,
}

impl Watch {
    fn check(&mut self, ch: &Channel, t: TransportId) {
        if !self.on {
            return;
        }
        let up = ch
            .transport(t)
            .is_some_and(|t| t.state() == lwmq::ConnectionState::Connected);
        if up != self.up {
            self.up = up;
            say(format!("CONN {}", if up { "up" } else { "down" }));
        }
    }
}

fn send(uri: &str, role: Role, count: u64, size: usize, progress: Option<&File>, watch: bool) {
    let mut watch = Watch {
        on: watch,
        up: false,
    };
    // A stream, not a memory test: at most 10,000 messages wait.
    let mut b = builder(uri, (8, 0), None);
    let q = b
        .mono_queue(QueueOptions::new(Priority::Normal).high_water_mark(10_000))
        .unwrap_or_else(|e| fail(e.to_string()));
    let ch = open(b, role);
    let t = T;
    say(format!("OPEN {}", role_name(role)));
    let run = new_run();
    let mixed = extra().mixed;
    let mut buf = vec![0u8; if mixed { size.max(65_000) } else { size }];
    let mut seq = 0u64;
    while count == 0 || seq < count {
        if seq.is_multiple_of(64) {
            watch.check(&ch, t);
        }
        let n = match seq % 4 {
            _ if !mixed => size,
            0 => size,
            1 => 40_000,
            2 => 65_000,
            _ => lwmq_harness::HEADER + (seq % 50) as usize,
        };
        let payload = &mut buf[..n];
        lwmq_harness::fill(payload, run, seq);
        if mixed && seq % 8 >= 4 {
            post_copy_watching(&q, payload, &ch, &mut watch);
        } else {
            let mut m = Message::new();
            m.push(Frame::copy(payload));
            post_watching(&q, m, &ch, &mut watch);
        }
        seq += 1;
        record(progress, &[seq]);
    }
    if extra().linger {
        // No flush: closing with a linger must deliver everything.
        say(format!("CLOSING {seq}"));
        ch.close(Timeout::after(Duration::from_secs(60)))
            .unwrap_or_else(|e| fail(format!("close: {e}")));
        say(format!("SENT {seq}"));
        return;
    }
    ch.flush(Timeout::after(Duration::from_secs(60)))
        .unwrap_or_else(|e| fail(format!("flush: {e}")));
    say(format!("SENT {seq}"));
    say_signals();
    let _ = ch.close(Duration::from_secs(5));
}

fn recv(uri: &str, role: Role, count: u64, progress: Option<&File>, watch: bool) {
    let wait = if watch {
        Timeout::after(Duration::from_millis(1))
    } else {
        Timeout::NEVER
    };
    let mut watch = Watch {
        on: watch,
        up: false,
    };
    let mut ch = open(builder(uri, (0, 8), Some(ReceiveQueue::mono())), role);
    let t = T;
    say(format!("OPEN {}", role_name(role)));
    let mut c = Checker::default();
    while count == 0 || c.received < count {
        watch.check(&ch, t);
        let r = match ch.receive(wait) {
            Ok(r) => r,
            Err(ReceiveError::Timeout) => continue,
            Err(e) => fail(e.to_string()),
        };
        if let Some((run, seq)) = c.check(&r) {
            record(progress, &[run, seq]);
        }
    }
    say(c.done());
    say_signals();
    let _ = ch.close(Timeout::ZERO);
}

/// Checks received messages: one frame holding a checked payload, and
/// within a run (one sender process) sequence numbers that follow each
/// other. Prints `BAD`, `ENDRUN` and `RUN` lines.
#[derive(Default)]
struct Checker {
    received: u64,
    bad: u64,
    dup: u64,
    gaps: u64,
    runs: u64,
    current: Option<(u64, u64)>,
    in_run: u64,
}

impl Checker {
    /// Checks one message; returns its `(run, seq)` if intact.
    fn check(&mut self, r: &Message) -> Option<(u64, u64)> {
        self.received += 1;
        let checked = (r.frame_count() == 1)
            .then(|| r.frame(0))
            .flatten()
            .and_then(|f| lwmq_harness::check(f.data()));
        let Some((run, seq)) = checked else {
            self.bad += 1;
            say(format!("BAD corrupt payload #{}", self.received));
            return None;
        };
        match self.current {
            Some((r0, last)) if r0 == run => {
                if seq <= last {
                    self.dup += 1;
                    say(format!("BAD duplicate or reordered seq {seq} after {last}"));
                } else if seq != last + 1 {
                    self.gaps += 1;
                    say(format!("BAD gap: seq {seq} after {last}"));
                }
                self.current = Some((run, seq.max(last)));
                self.in_run += 1;
            }
            _ => {
                if let Some((r0, last)) = self.current {
                    say(format!("ENDRUN {r0} {last} {}", self.in_run));
                }
                self.runs += 1;
                self.current = Some((run, seq));
                self.in_run = 1;
                say(format!("RUN {run} {seq}"));
            }
        }
        Some((run, seq))
    }

    fn done(&self) -> String {
        format!(
            "DONE received={} bad={} dup={} gaps={} runs={}",
            self.received, self.bad, self.dup, self.gaps, self.runs
        )
    }
}

/// Both directions at once over one send+receive transport: a thread
/// streams checked payloads (printing `SENDING <run>`), the main thread
/// receives and checks like `recv` (with `CONN` lines), and prints
/// `STAT decode_errors=.. messages_received=..` whenever the channel's
/// count of corrupt buffers changes.
fn duplex(uri: &str, role: Role, size: usize) {
    let mut b = builder(uri, (8, 8), Some(ReceiveQueue::mono()));
    let q = b
        .multi_queue(QueueOptions::new(Priority::Normal).high_water_mark(10_000))
        .unwrap_or_else(|e| fail(e.to_string()));
    let mut ch = open(b, role);
    let t = T;
    say(format!("OPEN {}", role_name(role)));
    std::thread::spawn(move || {
        let run = new_run();
        say(format!("SENDING {run}"));
        let mut buf = vec![0u8; size];
        for seq in 0u64.. {
            lwmq_harness::fill(&mut buf, run, seq);
            let mut m = Message::new();
            m.push(Frame::copy(&buf));
            // Waits at the high-water mark while the peer is away.
            q.post(m, Timeout::NEVER)
                .unwrap_or_else(|e| fail(e.to_string()));
        }
    });
    let mut watch = Watch {
        on: true,
        up: false,
    };
    let mut c = Checker::default();
    let mut decode_errors = 0;
    loop {
        watch.check(&ch, t);
        let got = ch.receive(Timeout::after(Duration::from_millis(20)));
        if got.is_err() || c.received.is_multiple_of(64) {
            let st = ch.stats();
            if st.decode_errors != decode_errors {
                decode_errors = st.decode_errors;
                say(format!(
                    "STAT decode_errors={} messages_received={}",
                    st.decode_errors, st.messages_received
                ));
            }
        }
        match got {
            Ok(r) => {
                c.check(&r);
            }
            Err(ReceiveError::Timeout) => {}
            Err(e) => fail(e.to_string()),
        }
    }
}

/// What `judge` finds wrong with a message: the frame lengths and the
/// payload size it claims, if they disagree or a frame cannot be gathered.
fn judge_frames(lens: &[usize], payload_size: usize, frame_count: usize) -> Option<String> {
    let sum: usize = lens.iter().sum();
    (sum != payload_size || lens.len() != frame_count).then(|| {
        format!("frames {lens:?} but payload_size {payload_size}, frame_count {frame_count}")
    })
}

/// See the module documentation.
fn judge(uri: &str, role: Role, seconds: u64) {
    // Send+receive, as the attacker's hand-made handshake asks; nothing is
    // ever posted.
    let mut b = builder(uri, (8, 8), Some(ReceiveQueue::mono()));
    let _q = b
        .mono_queue(Priority::Normal)
        .unwrap_or_else(|e| fail(e.to_string()));
    let mut ch = open(b, role);
    say(format!("OPEN {}", role_name(role)));
    let end = Instant::now() + Duration::from_secs(seconds);
    let (mut delivered, mut bad, mut in_place) = (0u64, 0u64, 0u64);
    let mut gathered = Vec::new();
    let mut done = false;
    while !done && Instant::now() < end {
        // Runs of 50 of each kind, so that lending starts both on messages
        // decoded ahead (owned) and in place.
        let verdict = if (delivered / 50) % 2 == 0 {
            ch.receive(Timeout::after(Duration::from_millis(20)))
                .map(|m| {
                    let lens: Vec<usize> = m.frames().map(|f| f.len()).collect();
                    gathered.clear();
                    gathered.resize(m.payload_size(), 0);
                    let mut at = 0;
                    let mut fault = judge_frames(&lens, m.payload_size(), m.frame_count());
                    for f in m.frames() {
                        let copied = gathered.get_mut(at..at + f.len()).map(|d| f.copy_to(d));
                        if copied == Some(f.len()) {
                            at += f.len();
                        } else {
                            fault = fault.or(Some(format!("frames {lens:?} overflow")));
                        }
                    }
                    let end =
                        lens.len() == 1 && m.frame(0).is_some_and(|f| f.data() == b"REWRITE-END");
                    (fault, end, false)
                })
        } else {
            ch.receive_with(Timeout::after(Duration::from_millis(20)), |m| {
                let lens: Vec<usize> = m.frames().map(|f| f.len()).collect();
                gathered.clear();
                gathered.resize(m.payload_size(), 0);
                let mut at = 0;
                let mut fault = judge_frames(&lens, m.payload_size(), m.frame_count());
                for f in m.frames() {
                    let copied = gathered.get_mut(at..at + f.len()).map(|d| f.copy_to(d));
                    if copied == Some(f.len()) {
                        at += f.len();
                    } else {
                        fault = fault.or(Some(format!("frames {lens:?} overflow")));
                    }
                }
                let owned = m.to_message();
                fault = fault
                    .or_else(|| judge_frames(&lens, owned.payload_size(), owned.frame_count()));
                let end = lens == [11] && m.frame(0).is_some_and(|f| f.to_vec() == b"REWRITE-END");
                (fault, end, m.is_in_place())
            })
        };
        match verdict {
            Ok((fault, end, lent)) => {
                delivered += 1;
                in_place += u64::from(lent);
                if let Some(fault) = fault {
                    bad += 1;
                    say(format!("BAD message {delivered}: {fault}"));
                }
                done = end;
            }
            Err(ReceiveError::Timeout) => {}
            Err(e) => fail(e.to_string()),
        }
    }
    let st = ch.stats();
    say(format!(
        "JUDGE delivered={delivered} bad={bad} lent_in_place={in_place} messages_received={} decode_errors={} buffers_received={} ended={done}",
        st.messages_received, st.decode_errors, st.buffers_received
    ));
    // Until killed (closing would tell the peer nothing it needs).
    std::thread::sleep(Duration::from_secs(120));
}

/// Opens a send+receive channel, prints `CONNECTED` once the peer is there,
/// then blocks in `receive` (as an idle application would) for `seconds`.
fn idle(uri: &str, role: Role, seconds: u64) {
    let mut b = builder(uri, (4, 4), Some(ReceiveQueue::mono()));
    let _q = b
        .mono_queue(Priority::Normal)
        .unwrap_or_else(|e| fail(e.to_string()));
    let mut ch = open(b, role);
    let connected = (0..6000).any(|_| {
        let up = ch
            .transport(T)
            .is_some_and(|t| t.state() == lwmq::ConnectionState::Connected);
        if !up {
            std::thread::sleep(Duration::from_millis(10));
        }
        up
    });
    if !connected {
        fail("never connected");
    }
    say("CONNECTED".into());
    let end = std::time::Instant::now() + Duration::from_secs(seconds);
    while std::time::Instant::now() < end {
        let _ = ch.receive(Timeout::after(Duration::from_secs(1)));
    }
    say("IDLE-DONE".into());
    let _ = ch.close(Timeout::ZERO);
}

/// The load soak's sender (see the module documentation).
fn load_send(uri: &str, role: Role, seconds: u64, size: usize, qcap: usize) {
    let mut b = builder(uri, (8, 0), None);
    let q = b
        .multi_queue(QueueOptions::new(Priority::Normal).discard_oldest(qcap))
        .unwrap_or_else(|e| fail(e.to_string()));
    let ch = open(b, role);
    say(format!("OPEN {}", role_name(role)));
    let run = new_run();
    let mut buf = vec![0u8; size];
    let mut posted = 0u64;
    let start = Instant::now();
    let end = start + Duration::from_secs(seconds);
    let mut next_stat = start + Duration::from_secs(1);
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        if now >= next_stat {
            next_stat += Duration::from_secs(1);
            let st = ch.stats();
            say(format!(
                "STAT posted={posted} send_discards={} messages_sent={}",
                q.discarded(),
                st.messages_sent
            ));
        }
        for _ in 0..256 {
            lwmq_harness::fill(&mut buf, run, posted);
            let mut m = Message::new();
            m.push(Frame::copy(&buf));
            // Discard-oldest never refuses: a full queue drops its oldest.
            q.post(m, Timeout::ZERO)
                .unwrap_or_else(|e| fail(e.to_string()));
            posted += 1;
        }
    }
    let mut m = Message::new();
    m.push(Frame::copy(b"END"));
    q.post(m, Timeout::ZERO)
        .unwrap_or_else(|e| fail(e.to_string()));
    posted += 1;
    ch.flush(Timeout::after(Duration::from_secs(120)))
        .unwrap_or_else(|e| fail(format!("flush: {e}")));
    let st = ch.stats();
    say(format!(
        "LSENT posted={posted} send_discards={} messages_sent={} buffers_sent={} dropped_unencodable={}",
        q.discarded(),
        st.messages_sent,
        st.buffers_sent,
        st.dropped_unencodable
    ));
    // Closing could cut the connection before the receiver has emptied the
    // ring; the soak kills this process once the receiver is done.
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// The load soak's slow receiver (see the module documentation).
fn load_recv(uri: &str, role: Role, qcap: usize, every: u64, sleep_us: u64) {
    let mut ch = open(
        builder(uri, (0, 8), Some(ReceiveQueue::multi_discard_oldest(qcap))),
        role,
    );
    say(format!("OPEN {}", role_name(role)));
    let (mut delivered, mut bad) = (0u64, 0u64);
    let mut last: Option<(u64, u64)> = None;
    let mut next_stat = Instant::now() + Duration::from_secs(1);
    let stat = |ch: &Channel, delivered: u64, bad: u64| {
        let st = ch.stats();
        format!(
            "delivered={delivered} receive_discards={} messages_received={} decode_errors={} bad={bad}",
            st.receive_discards, st.messages_received, st.decode_errors
        )
    };
    loop {
        if Instant::now() >= next_stat {
            next_stat += Duration::from_secs(1);
            say(format!("STAT {}", stat(&ch, delivered, bad)));
        }
        let r = match ch.receive(Timeout::after(Duration::from_millis(100))) {
            Ok(r) => r,
            Err(ReceiveError::Timeout) => continue,
            Err(e) => fail(e.to_string()),
        };
        let data = (r.frame_count() == 1)
            .then(|| r.frame(0))
            .flatten()
            .map(|f| f.data().to_vec())
            .unwrap_or_default();
        if data == b"END" {
            break;
        }
        delivered += 1;
        match lwmq_harness::check(&data) {
            None => {
                bad += 1;
                say(format!("BAD corrupt payload #{delivered}"));
            }
            Some((run, seq)) => {
                match last {
                    Some((r0, s0)) if r0 == run && seq <= s0 => {
                        bad += 1;
                        say(format!("BAD duplicate or reordered seq {seq} after {s0}"));
                    }
                    Some((r0, _)) if r0 == run => {}
                    _ => say(format!("RUN {run} {seq}")),
                }
                last = Some((run, seq));
            }
        }
        if delivered.is_multiple_of(every) && sleep_us > 0 {
            std::thread::sleep(Duration::from_micros(sleep_us));
        }
    }
    say(format!("LDONE {}", stat(&ch, delivered, bad)));
    let _ = ch.close(Timeout::ZERO);
}
