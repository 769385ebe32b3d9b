//! `lwmq-peer`: a scriptable peer for lwmq's multi-process tests.
//!
//! ```text
//! lwmq-peer send URI [opts]      send checked payloads (--count 0 = forever)
//! lwmq-peer recv URI [opts]      receive and verify checked payloads
//! lwmq-peer idle URI [opts]      connect, then sit idle --seconds S
//! lwmq-peer hostile URI --mode tail|len|head
//!                                handshake by hand, then corrupt the section
//! lwmq-peer hostile URI --mode inject --pause-file F
//!                                handshake by hand; once F exists, write
//!                                "EVIL" into the server's next send slot,
//!                                shut the socket down and keep the mapping
//! lwmq-peer hostile URI --mode silent|garbage|oversize|version|storm
//!                                misbehave during the handshake (see `misbehave`)
//! lwmq-peer hostile URI --mode duplex-tail|duplex-len|duplex-head|wire
//!                                a messaging peer streaming both ways by hand,
//!                                then corrupting the section (see `hostile_stream`)
//! lwmq-peer hostile URI --mode rewrite --seconds S
//!                                a messaging peer that keeps rewriting the buffers
//!                                it published while the receiver decodes them
//!                                (see `rewrite`)
//! opts: --role server|client|auto  --size S  --count N  --buffer-size B
//!       --buffers N  --dirs send|recv|both  --any-user  --allow-root
//!       --retry-ms M  --seconds S
//!       --heartbeat-ms M (tcp://: heartbeat timeout)  --allow NET (tcp://:
//!                  allow-list entry, repeatable)
//!       --progress F (recv: the run and seq of the last payload received,
//!                  two little-endian u64 at offset 0, rewritten each time)
//!       --get-timeout-ms M (send: finite get_buffer timeout, report TIMEOUT)
//!       --pause-after N --pause-file F (recv: stop consuming after N
//!                                payloads until file F exists)
//!       --window W (send: keep W buffers out, fill them, send them in
//!                  order, aborting every 5th one, which is filled with a
//!                  payload of another run that must never arrive;
//!                  recv: hold up to W buffers, dispose them newest first)
//! ```
//!
//! Lines on stdout (flushed at once) tell the test what happened:
//! `OPEN <role>`, `CONNECTED`, `RUN <run> <first seq>`, `MAP <maps line>`,
//! `BAD <what>` (at once, for a corrupt, duplicated or reordered payload),
//! `GAP <last> <next>` (payloads of a run were lost between those two),
//! `DONE received=.. bad=.. dup=.. gaps=.. runs=..`, `SENT <n>`,
//! `STATE <state>`, `DROPPED <reason>`, `TIMEOUT <n>`, `LOST <n>`, `PAUSED`, `RESUMED`,
//! `EOF after_ms=..`, `REFUSED code=.. reason=..`, `STORM attempts=.. ..`.

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lwmq::internals::descriptor::IpcAddress;
use lwmq::internals::ring::{self, HEAD, TAIL};
use lwmq::internals::sys::{shm, socket};
use lwmq::internals::transport::ipc::proto::{Hello, Message, SectionLayout};
use lwmq::internals::transport::{ChannelKind, Directions};
use lwmq::internals::wire::{self, BufferWriter};
use lwmq::transport::{AllowList, RefusalReason, TransportError};
use lwmq::{AccessPolicy, ConnectionState, Endpoint, RawChannel, Role, Timeout, TransportId};
use lwmq_harness::{check, fill, init_logging};

struct Opts {
    cmd: String,
    uri: String,
    role: String,
    size: usize,
    count: u64,
    buffer_size: usize,
    buffers: i64,
    dirs: Option<Directions>,
    any_user: bool,
    allow_root: bool,
    retry_ms: Option<u32>,
    seconds: u64,
    mode: String,
    get_timeout_ms: Option<u64>,
    pause_after: Option<u64>,
    pause_file: Option<String>,
    window: usize,
    heartbeat_ms: Option<u64>,
    allow: Vec<String>,
    progress: Option<String>,
}

fn say(line: impl AsRef<str>) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", line.as_ref());
    let _ = out.flush();
}

fn fail(msg: impl AsRef<str>) -> ! {
    eprintln!("lwmq-peer: {}", msg.as_ref());
    std::process::exit(1)
}

fn parse() -> Opts {
    let mut args = std::env::args().skip(1);
    let cmd = args
        .next()
        .unwrap_or_else(|| fail("usage: lwmq-peer send|recv|idle|hostile URI [opts]"));
    let uri = args.next().unwrap_or_else(|| fail("missing URI"));
    let mut o = Opts {
        cmd,
        uri,
        role: "auto".into(),
        size: 64,
        count: 1000,
        buffer_size: 65536,
        buffers: 8,
        dirs: None,
        any_user: false,
        allow_root: false,
        retry_ms: None,
        seconds: 2,
        mode: String::new(),
        get_timeout_ms: None,
        pause_after: None,
        pause_file: None,
        window: 1,
        heartbeat_ms: None,
        allow: Vec::new(),
        progress: None,
    };
    while let Some(a) = args.next() {
        let mut val = || {
            args.next()
                .unwrap_or_else(|| fail(format!("{a} needs a value")))
        };
        let num = |s: String| {
            s.parse::<u64>()
                .unwrap_or_else(|_| fail(format!("bad number {s}")))
        };
        match a.as_str() {
            "--role" => o.role = val(),
            "--size" => o.size = num(val()) as usize,
            "--count" => o.count = num(val()),
            "--buffer-size" => o.buffer_size = num(val()) as usize,
            "--buffers" => o.buffers = num(val()) as i64,
            "--dirs" => {
                o.dirs = Some(match val().as_str() {
                    "send" => Directions::Send,
                    "recv" => Directions::Receive,
                    _ => Directions::SendReceive,
                })
            }
            "--any-user" => o.any_user = true,
            "--allow-root" => o.allow_root = true,
            "--retry-ms" => o.retry_ms = Some(num(val()) as u32),
            "--seconds" => o.seconds = num(val()),
            "--mode" => o.mode = val(),
            "--get-timeout-ms" => o.get_timeout_ms = Some(num(val())),
            "--pause-after" => o.pause_after = Some(num(val())),
            "--pause-file" => o.pause_file = Some(val()),
            "--window" => o.window = (num(val()) as usize).max(1),
            "--heartbeat-ms" => o.heartbeat_ms = Some(num(val())),
            "--allow" => o.allow.push(val()),
            "--progress" => o.progress = Some(val()),
            other => fail(format!("unknown option {other}")),
        }
    }
    o
}

fn open(o: &Opts, default_dirs: Directions) -> RawChannel {
    let dirs = o.dirs.unwrap_or(default_dirs);
    let n = u32::try_from(o.buffers).unwrap_or_else(|_| fail("bad --buffers"));
    let (s, r) = match dirs {
        Directions::Send => (n, 0),
        Directions::Receive => (0, n),
        Directions::SendReceive => (n, n),
    };
    let mut ep = Endpoint::new(&o.uri)
        .unwrap_or_else(|e| fail(e.to_string()))
        .buffer_size(o.buffer_size)
        .send_buffers(s)
        .receive_buffers(r);
    if o.any_user {
        ep = ep.access(AccessPolicy::any_user());
    } else if o.allow_root {
        ep = ep.access(AccessPolicy::same_user().allow_root());
    }
    if let Some(ms) = o.retry_ms {
        ep = ep.retry_interval(Duration::from_millis(ms.into()));
    }
    if let Some(ms) = o.heartbeat_ms {
        ep = ep.heartbeat_timeout(Duration::from_millis(ms));
    }
    if !o.allow.is_empty() {
        let list = AllowList::parse(&o.allow).unwrap_or_else(|e| fail(e.to_string()));
        ep = ep.allow_peers(list);
    }
    let b = RawChannel::builder()
        .transport(ep)
        .unwrap_or_else(|e| fail(e.to_string()));
    let (b, role) = match o.role.as_str() {
        "server" => (b, Role::Server),
        "client" => (b, Role::Client),
        _ => match b.open(Role::Server) {
            Ok(ch) => {
                say("OPEN server");
                return ch;
            }
            Err(e) => (e.into_builder(), Role::Client),
        },
    };
    let ch = b.open(role).unwrap_or_else(|e| fail(e.to_string()));
    say(format!(
        "OPEN {}",
        if role == Role::Server {
            "server"
        } else {
            "client"
        }
    ));
    ch
}

fn memfd_map_line() -> Option<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .find(|l| l.contains("/memfd:lwmq:"))
        .map(str::to_owned)
}

fn send(o: &Opts) {
    let ch = open(o, Directions::Send);
    let tx = ch
        .sender(TransportId(0))
        .unwrap_or_else(|e| fail(e.to_string()));
    let run = u64::from(std::process::id()) << 32
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos().into());
    let size = o.size.max(lwmq_harness::HEADER);
    let mut pattern = vec![0u8; size];
    let mut seq = 0u64;
    let mut timeouts = 0u64;
    let mut lost = 0u64;
    let wait = o.get_timeout_ms.map_or(Timeout::INFINITE, |ms| {
        Timeout::after(Duration::from_millis(ms))
    });
    if o.window > 1 {
        return send_window(o, &tx, run, size);
    }
    while o.count == 0 || seq < o.count {
        let mut b = match tx.get_buffer(wait) {
            Ok(b) => b,
            Err(TransportError::Timeout) => {
                timeouts += 1;
                say(format!("TIMEOUT {timeouts}"));
                continue;
            }
            Err(e) => fail(e.to_string()),
        };
        fill(&mut pattern, run, seq);
        b.write(0, &pattern).unwrap_or_else(|e| fail(e.to_string()));
        match b.send(size) {
            Ok(()) => seq += 1,
            // Obtained on a connection that ended before the send: gone
            // with it (never delivered to the next peer); send the same
            // payload again in a new buffer.
            Err(lwmq::raw::SendError::Failed(TransportError::BufferLost(_))) => {
                lost += 1;
                say(format!("LOST {lost}"));
            }
            Err(e) => fail(e.to_string()),
        }
    }
    tx.flush(Timeout::after(Duration::from_secs(120)))
        .unwrap_or_else(|e| fail(format!("flush: {e}")));
    say(format!("SENT {seq}"));
    say_signals();
}

fn recv(o: &Opts) {
    let ch = open(o, Directions::Receive);
    let rx = ch
        .receiver(TransportId(0))
        .unwrap_or_else(|e| fail(e.to_string()));
    let (mut received, mut bad, mut dup, mut gaps, mut runs) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut current: Option<(u64, u64)> = None;
    let mut mapped = false;
    let mut held = Vec::with_capacity(o.window);
    let progress = o
        .progress
        .as_ref()
        .map(|p| std::fs::File::create(p).unwrap_or_else(|e| fail(format!("{p}: {e}"))));
    while o.count == 0 || received < o.count {
        let b = rx
            .receive_buffer(Timeout::after(Duration::from_secs(120)))
            .unwrap_or_else(|e| fail(format!("receive: {e}")));
        received += 1;
        // A private copy, checked: the peer may be anything.
        let payload = b.to_vec();
        if o.window > 1 {
            // Hold up to `window` buffers, then give them back newest
            // first (the oldest last: the ring's head only moves then).
            held.push(b);
            if held.len() == o.window || (o.count != 0 && received == o.count) {
                while let Some(b) = held.pop() {
                    b.dispose();
                }
            }
        } else {
            drop(b);
        }
        match check(&payload) {
            None => {
                bad += 1;
                say(format!("BAD corrupt payload #{received}"));
            }
            Some((run, seq)) => match current {
                Some((r, last)) if r == run => {
                    if seq <= last {
                        dup += 1;
                        say(format!("BAD duplicate or reordered seq {seq} after {last}"));
                    } else {
                        if seq != last + 1 {
                            gaps += 1;
                            say(format!("GAP {last} {seq}"));
                        }
                        current = Some((run, seq));
                    }
                }
                _ => {
                    runs += 1;
                    current = Some((run, seq));
                    say(format!("RUN {run} {seq}"));
                }
            },
        }
        if let (Some(f), Some((run, seq))) = (&progress, current) {
            use std::os::unix::fs::FileExt;
            let mut w = [0u8; 16];
            w[..8].copy_from_slice(&run.to_le_bytes());
            w[8..].copy_from_slice(&seq.to_le_bytes());
            let _ = f.write_at(&w, 0);
        }
        if o.pause_after == Some(received) {
            say("PAUSED");
            let file = o
                .pause_file
                .as_deref()
                .unwrap_or_else(|| fail("--pause-file"));
            while !std::path::Path::new(file).exists() {
                std::thread::sleep(Duration::from_millis(10));
            }
            say("RESUMED");
        }
        if !mapped {
            mapped = true;
            say("CONNECTED");
            if let Some(l) = memfd_map_line() {
                say(format!("MAP {l}"));
            }
        }
    }
    say(format!(
        "DONE received={received} bad={bad} dup={dup} gaps={gaps} runs={runs}"
    ));
    say_signals();
}

/// `send --window W`: W buffers out at once, filled in the order obtained,
/// sent in that order; every 5th one is filled with a payload of another
/// run (`POISON <run>` names it) and aborted while later ones are out, so
/// a receiver that ever sees that run got an aborted buffer.
fn send_window(o: &Opts, tx: &lwmq::RawSender<'_>, run: u64, size: usize) {
    let poison = run ^ 0x0BAD_0000_0000;
    say(format!("POISON {poison}"));
    let mut pattern = vec![0u8; size];
    let (mut seq, mut acquired, mut aborted) = (0u64, 0u64, 0u64);
    let wait = Timeout::after(Duration::from_secs(120));
    while o.count == 0 || seq < o.count {
        let mut out = Vec::with_capacity(o.window);
        let mut next = seq;
        while out.len() < o.window && (o.count == 0 || next < o.count) {
            let mut b = tx.get_buffer(wait).unwrap_or_else(|e| fail(e.to_string()));
            acquired += 1;
            let keep = acquired % 5 != 0;
            if keep {
                fill(&mut pattern, run, next);
                next += 1;
            } else {
                fill(&mut pattern, poison, acquired);
            }
            b.write(0, &pattern).unwrap_or_else(|e| fail(e.to_string()));
            out.push((keep, b));
        }
        // The last buffer first: refused, and given back.
        if out.len() > 1 {
            let (keep, last) = out.pop().expect("two or more");
            match last.send(size) {
                Err(lwmq::raw::SendError::Refused {
                    error: TransportError::OutOfOrder { .. },
                    buffer,
                }) => out.push((keep, buffer)),
                other => fail(format!("an out-of-order send was not refused: {other:?}")),
            }
        }
        // Abort the poisoned ones first (they may sit between kept ones),
        // then send the rest in order.
        let mut rest = Vec::with_capacity(out.len());
        for (keep, b) in out {
            if keep {
                rest.push(b);
            } else {
                b.abort();
                aborted += 1;
            }
        }
        for b in rest {
            b.send(size).unwrap_or_else(|e| fail(e.to_string()));
        }
        seq = next;
    }
    tx.flush(Timeout::after(Duration::from_secs(120)))
        .unwrap_or_else(|e| fail(format!("flush: {e}")));
    say(format!("SENT {seq} aborted={aborted}"));
}

/// With `LWMQ_TEST_SIGUSR1` set: `SIGNALS <n>`, the signals handled.
fn say_signals() {
    if lwmq_harness::signals::requested() {
        say(format!("SIGNALS {}", lwmq_harness::signals::seen()));
    }
}

fn idle(o: &Opts) {
    let ch = open(o, Directions::SendReceive);
    let t = ch.transport(TransportId(0)).expect("added");
    let mut events = t.events();
    // Events first, then the state: a state change made with an event is
    // visible once the event is.
    let mut say_events = || {
        while let Some(e) = events.try_next() {
            say(format!("EVENT {e}"));
        }
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = String::new();
    while Instant::now() < deadline {
        say_events();
        let s = t.state();
        let text = s.to_string();
        if text != last {
            say(format!("STATE {text}"));
            last = text;
        }
        if s == ConnectionState::Connected {
            say("CONNECTED");
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // Report refusals seen during the idle period too.
    let end = Instant::now() + Duration::from_secs(o.seconds);
    while Instant::now() < end {
        say_events();
        let text = t.state().to_string();
        if text != last {
            say(format!("STATE {text}"));
            last = text;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if let Some(e) = t.last_error() {
        say(format!("LASTERROR {e}"));
    }
    say("IDLE-DONE");
}

fn connect_once(addr: &IpcAddress) -> Option<OwnedFd> {
    socket::connect(&addr.rendezvous_name()).ok()
}

fn connect_retrying(addr: &IpcAddress) -> OwnedFd {
    (0..200)
        .find_map(|_| {
            connect_once(addr).or_else(|| {
                std::thread::sleep(Duration::from_millis(50));
                None
            })
        })
        .unwrap_or_else(|| fail("no server"))
}

fn hello_for(o: &Opts, addr: &IpcAddress) -> Hello {
    Hello {
        kind: ChannelKind::Raw,
        directions: Directions::SendReceive,
        buffer_size: o.buffer_size as u64,
        send_buffers: o.buffers as u32,
        receive_buffers: o.buffers as u32,
        pid: std::process::id(),
        port: addr.port().unwrap_or(0),
        address: addr.address().to_owned(),
        features: 0,
    }
}

/// What the server answered to a handshake attempt.
enum Answer {
    Eof,
    Refused(RefusalReason, String),
    Accepted,
    Other(String),
    Silence,
}

fn read_answer(fd: &OwnedFd, within: Duration) -> Answer {
    let mut buf = [0u8; 2048];
    if let Ok(socket::Readiness::TimedOut) = socket::wait(fd.as_fd(), Some(within)) {
        return Answer::Silence;
    }
    let mut got = socket::recv(fd, &mut buf);
    if matches!(&got, Err(e) if e.errno == rustix::io::Errno::CONNRESET) {
        // Closed with our bytes unread: the reset is reported once, then
        // what the server sent before closing is still readable.
        got = socket::recv(fd, &mut buf);
    }
    match got {
        Ok(r) if r.len == 0 => Answer::Eof,
        Ok(r) => match Message::decode(&buf[..r.len]) {
            Ok(Message::Refuse { reason, text }) => Answer::Refused(reason, text),
            Ok(Message::Accept(_)) => Answer::Accepted,
            other => Answer::Other(format!("{other:?}")),
        },
        Err(e) => Answer::Other(format!("recv: {e}")),
    }
}

/// Handshake-level misbehaviour:
/// - `silent`: connect and never speak; report when the server hangs up
///   (`EOF after_ms=..`), reconnect, until `--seconds` have passed.
/// - `garbage`, `oversize` (2000 bytes), `version` (a HELLO of version 9):
///   send it once and report the answer (`REFUSED code=.. reason=..`).
/// - `storm`: connect, HELLO, read the answer, close, in a tight loop for
///   `--seconds`; report the tally (`STORM attempts=.. denied=.. ..`).
fn misbehave(o: &Opts, addr: &IpcAddress) {
    let hello = Message::Hello(hello_for(o, addr)).encode();
    match o.mode.as_str() {
        "silent" => {
            let end = Instant::now() + Duration::from_secs(o.seconds);
            while Instant::now() < end {
                let fd = connect_retrying(addr);
                let t0 = Instant::now();
                say("SILENT connected");
                match read_answer(&fd, Duration::from_secs(60)) {
                    Answer::Eof => say(format!("EOF after_ms={}", t0.elapsed().as_millis())),
                    Answer::Silence => fail("server never dropped the silent connection"),
                    Answer::Refused(r, t) => say(format!("REFUSED code={} {t}", r.code())),
                    Answer::Accepted => fail("accepted without a HELLO"),
                    Answer::Other(x) => fail(format!("unexpected answer {x}")),
                }
            }
        }
        "garbage" | "oversize" | "version" => {
            let bytes = match o.mode.as_str() {
                "garbage" => {
                    let mut b = hello.clone();
                    b[8] = 77; // channel kind out of range
                    b.truncate(20);
                    b
                }
                "oversize" => {
                    let mut b = hello.clone();
                    b.resize(2000, 0xAB);
                    b
                }
                _ => {
                    let mut b = hello.clone();
                    b[4..6].copy_from_slice(&9u16.to_le_bytes());
                    b
                }
            };
            let fd = connect_retrying(addr);
            socket::send(&fd, &bytes, None).unwrap_or_else(|e| fail(e.to_string()));
            match read_answer(&fd, Duration::from_secs(30)) {
                Answer::Refused(r, t) => {
                    say(format!("REFUSED code={} reason={r:?} text={t}", r.code()));
                    // The server closes the socket after refusing.
                    match read_answer(&fd, Duration::from_secs(30)) {
                        Answer::Eof => say("EOF"),
                        _ => fail("server kept the refused connection open"),
                    }
                }
                Answer::Eof => fail("closed without a REFUSE"),
                Answer::Silence => fail("no answer"),
                Answer::Accepted => fail("malformed HELLO was accepted"),
                Answer::Other(x) => fail(format!("unexpected answer {x}")),
            }
        }
        "storm" => {
            let end = Instant::now() + Duration::from_secs(o.seconds);
            let (mut attempts, mut denied, mut accepted, mut other, mut connect_err) =
                (0u64, 0u64, 0u64, 0u64, 0u64);
            while Instant::now() < end {
                let Some(fd) = connect_once(addr) else {
                    connect_err += 1;
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                };
                attempts += 1;
                let _ = socket::send(&fd, &hello, None);
                match read_answer(&fd, Duration::from_secs(30)) {
                    Answer::Refused(RefusalReason::AccessDenied, _) => denied += 1,
                    Answer::Accepted => accepted += 1,
                    a => {
                        other += 1;
                        if other <= 3 {
                            let what = match a {
                                Answer::Eof => "EOF without a REFUSE".to_owned(),
                                Answer::Silence => "no answer".to_owned(),
                                Answer::Refused(r, t) => format!("refused {r:?}: {t}"),
                                Answer::Other(x) => x,
                                Answer::Accepted => unreachable!(),
                            };
                            say(format!("ODD {what}"));
                        }
                    }
                }
            }
            say(format!(
                "STORM attempts={attempts} denied={denied} accepted={accepted} other={other} connect_err={connect_err}"
            ));
        }
        other => fail(format!("unknown mode {other}")),
    }
}

/// Connects by hand, then breaks the ring protocol in the chosen way.
fn hostile(o: &Opts) {
    let addr = IpcAddress::parse(&o.uri).unwrap_or_else(|e| fail(e.to_string()));
    if matches!(
        o.mode.as_str(),
        "duplex-tail" | "duplex-len" | "duplex-head" | "wire" | "rewrite"
    ) {
        return hostile_stream(o, &addr);
    }
    if o.mode == "inject" || o.mode == "inject-msg" {
        return inject(o, &addr);
    }
    if !matches!(o.mode.as_str(), "tail" | "len" | "head") {
        return misbehave(o, &addr);
    }
    // The server side must be SendReceive for every mode.
    let fd = connect_retrying(&addr);
    let hello = hello_for(o, &addr);
    socket::send(&fd, &Message::Hello(hello).encode(), None)
        .unwrap_or_else(|e| fail(e.to_string()));
    let mut buf = [0u8; 1024];
    let _ = socket::wait(fd.as_fd(), Some(Duration::from_secs(10)));
    let r = socket::recv(&fd, &mut buf).unwrap_or_else(|e| fail(e.to_string()));
    let Ok(Message::Accept(a)) = Message::decode(&buf[..r.len]) else {
        fail("no ACCEPT")
    };
    let layout = SectionLayout::compute(a.buffer_size, a.c2s_capacity, a.s2c_capacity)
        .unwrap_or_else(|| fail("bad layout"));
    let memfd = r.fd.unwrap_or_else(|| fail("no memfd"));
    let map = shm::open(&memfd, layout.len).unwrap_or_else(|e| fail(e.to_string()));
    socket::send(&fd, &Message::Ready.encode(), None).unwrap_or_else(|e| fail(e.to_string()));
    say("CONNECTED");
    // Give the server's data path time to attach, then strike.
    std::thread::sleep(Duration::from_millis(200));
    match o.mode.as_str() {
        "tail" => map
            .atomic_u32(layout.c2s.ctrl + TAIL)
            .store(0xFFFF_0000, Ordering::Release),
        "len" => {
            let slot0 = layout.c2s.slots;
            map.atomic_u32(slot0)
                .store(o.buffer_size as u32 + 1, Ordering::Relaxed);
            map.atomic_u32(layout.c2s.ctrl + TAIL)
                .store(1, Ordering::Release);
        }
        "head" => map
            .atomic_u32(layout.s2c.ctrl + HEAD)
            .store(0x7FFF_FFFF, Ordering::Release),
        other => fail(format!("unknown mode {other}")),
    }
    say("STRUCK");
    match socket::wait(fd.as_fd(), Some(Duration::from_secs(30))) {
        Ok(socket::Readiness::TimedOut) => fail("server did not drop the connection"),
        _ => {
            let n = socket::recv(&fd, &mut buf).map(|r| r.len).unwrap_or(0);
            say(format!("DROPPED eof={}", n == 0));
        }
    }
}

/// `--mode inject`: a raw client that, once `--pause-file` exists (the
/// server's application has filled the buffer it obtained), writes "EVIL"
/// over the start of the server's next send slot (found from `tail`),
/// shuts its socket down so the server sees it leave, and keeps the mapping
/// (and so the slot) for `--seconds`. Before the fix, the server copied
/// that slot into the next connection when it sent the buffer.
/// `--mode inject-msg`: the same as a messaging client (against a
/// messaging server whose application holds a loan in that slot).
fn inject(o: &Opts, addr: &IpcAddress) {
    let fd = connect_retrying(addr);
    let mut hello = hello_for(o, addr);
    if o.mode == "inject-msg" {
        hello.kind = ChannelKind::Messaging;
    }
    socket::send(&fd, &Message::Hello(hello).encode(), None)
        .unwrap_or_else(|e| fail(e.to_string()));
    let mut buf = [0u8; 1024];
    let _ = socket::wait(fd.as_fd(), Some(Duration::from_secs(10)));
    let r = socket::recv(&fd, &mut buf).unwrap_or_else(|e| fail(e.to_string()));
    let Ok(Message::Accept(a)) = Message::decode(&buf[..r.len]) else {
        fail("no ACCEPT")
    };
    let layout = SectionLayout::compute(a.buffer_size, a.c2s_capacity, a.s2c_capacity)
        .unwrap_or_else(|| fail("bad layout"));
    let memfd = r.fd.unwrap_or_else(|| fail("no memfd"));
    let map = shm::open(&memfd, layout.len).unwrap_or_else(|e| fail(e.to_string()));
    socket::send(&fd, &Message::Ready.encode(), None).unwrap_or_else(|e| fail(e.to_string()));
    say("CONNECTED");
    let file = o
        .pause_file
        .as_deref()
        .unwrap_or_else(|| fail("--mode inject needs --pause-file"));
    let end = Instant::now() + Duration::from_secs(60);
    while !std::path::Path::new(file).exists() {
        if Instant::now() > end {
            fail("the pause file never appeared");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let s2c = layout.s2c;
    let tail = map.atomic_u32(s2c.ctrl + TAIL).load(Ordering::Acquire);
    let stride = ring::RingLayout::stride(s2c.buffer_size).unwrap_or_else(|| fail("stride"));
    let slot = s2c.slots + (tail % s2c.capacity) as usize * stride + ring::SLOT_HEADER;
    map.atomic_u32(slot)
        .store(u32::from_le_bytes(*b"EVIL"), Ordering::Release);
    socket::shutdown(&fd);
    say(format!("STRUCK tail={tail}"));
    std::thread::sleep(Duration::from_secs(o.seconds));
    drop(map);
}

/// One end of a messaging connection driven by hand: publishes transport
/// buffers of checked payloads on the client-to-server ring and consumes
/// the server-to-client ring, with lwmq's own ring code, so the streams
/// are valid until this peer decides otherwise.
struct HandPeer {
    map: Arc<shm::Mapping>,
    layout: SectionLayout,
    tx: ring::Producer,
    rx: ring::Consumer,
    run: u64,
    seq: u64,
    size: usize,
    published: u64,
    consumed: u64,
}

impl HandPeer {
    /// A buffer of `n` messages of `run`, from `seq` on.
    fn encode(&self, run: u64, seq: u64, n: u64) -> Vec<u8> {
        let mut buf = vec![0u8; self.layout.c2s.buffer_size];
        let mut payload = vec![0u8; self.size];
        let mut w = BufferWriter::new(&mut buf).unwrap_or_else(|e| fail(e.to_string()));
        for s in seq..seq + n {
            fill(&mut payload, run, s);
            let mut m = lwmq::message::Message::new();
            m.push(lwmq::message::Frame::copy(&payload));
            w.try_push(&m).unwrap_or_else(|_| fail("buffer full"));
        }
        let len = w.finish();
        buf.truncate(len);
        buf
    }

    /// Releases whatever the server published.
    fn consume(&mut self) {
        while let Ok(true) = self.rx.has_data() {
            if self.rx.consume_next(false).is_err() {
                return;
            }
            self.consumed += 1;
        }
    }

    /// Publishes `data` as the next buffer, consuming meanwhile; fails
    /// after 30 s without room (the server dropped us, or stalled).
    fn publish(&mut self, data: &[u8]) {
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            self.consume();
            if ring::prefill(&mut self.tx, data, 0) {
                self.published += 1;
                return;
            }
            if Instant::now() > end {
                fail("no room in the ring for 30 s");
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// Publishes a good buffer of 20 messages of the stream.
    fn good(&mut self) {
        let data = self.encode(self.run, self.seq, 20);
        self.seq += 20;
        self.publish(&data);
    }
}

/// A well-behaved messaging peer until it strikes (`--mode`):
///
/// * `duplex-tail`: stores an out-of-range `tail` on its own ring;
/// * `duplex-len`: publishes a slot whose length exceeds the buffer size;
/// * `duplex-head`: stores an out-of-range `head` on the server's ring;
/// * `wire`: publishes 10 buffers with broken wire encodings (magic,
///   version, message count, truncated frame, zero frames; each holding
///   messages of another run, `RUN <bad run>` must never be seen), each
///   followed by a good one, then 20 more good ones, and prints `WIRE
///   corrupt=10 good=<n> run=<run> bad_run=<bad run> last_seq=<s>` once
///   the server has released every buffer; it keeps consuming until
///   killed.
///
/// Before striking, traffic flows both ways (`FLOWING tx=.. rx=..`). After
/// an index strike it waits for the server to drop it (`DROPPED eof=..`).
fn hostile_stream(o: &Opts, addr: &IpcAddress) {
    let fd = connect_retrying(addr);
    let mut hello = hello_for(o, addr);
    hello.kind = ChannelKind::Messaging;
    socket::send(&fd, &Message::Hello(hello).encode(), None)
        .unwrap_or_else(|e| fail(e.to_string()));
    let mut buf = [0u8; 1024];
    let _ = socket::wait(fd.as_fd(), Some(Duration::from_secs(10)));
    let r = socket::recv(&fd, &mut buf).unwrap_or_else(|e| fail(e.to_string()));
    let accept = match Message::decode(&buf[..r.len]) {
        Ok(Message::Accept(a)) => a,
        other => fail(format!("no ACCEPT: {other:?}")),
    };
    let layout =
        SectionLayout::compute(accept.buffer_size, accept.c2s_capacity, accept.s2c_capacity)
            .unwrap_or_else(|| fail("bad layout"));
    let memfd = r.fd.unwrap_or_else(|| fail("no memfd"));
    let map = Arc::new(shm::open(&memfd, layout.len).unwrap_or_else(|e| fail(e.to_string())));
    socket::send(&fd, &Message::Ready.encode(), None).unwrap_or_else(|e| fail(e.to_string()));
    say("CONNECTED");
    let mut p = HandPeer {
        tx: ring::Producer::attach(map.clone(), layout.c2s, ring::Fences::Symmetric),
        rx: ring::Consumer::attach(map.clone(), layout.s2c, ring::Fences::Symmetric),
        map,
        layout,
        run: 0x5eed_0000_0000_0000 | u64::from(std::process::id()),
        seq: 0,
        size: o.size.max(lwmq_harness::HEADER),
        published: 0,
        consumed: 0,
    };
    if o.mode == "rewrite" {
        return rewrite(&mut p, Duration::from_secs(o.seconds));
    }
    // Both directions flowing.
    let end = Instant::now() + Duration::from_secs(30);
    while p.published < 20 || p.consumed < 4 {
        if Instant::now() > end {
            fail(format!(
                "traffic did not flow: tx={} rx={}",
                p.published, p.consumed
            ));
        }
        p.good();
    }
    say(format!("FLOWING tx={} rx={}", p.published, p.consumed));
    let (c2s, s2c) = (p.layout.c2s, p.layout.s2c);
    match o.mode.as_str() {
        "duplex-tail" => p
            .map
            .atomic_u32(c2s.ctrl + TAIL)
            .store(0xFFFF_0000, Ordering::Release),
        "duplex-head" => p
            .map
            .atomic_u32(s2c.ctrl + HEAD)
            .store(0x7FFF_FFFF, Ordering::Release),
        "duplex-len" => {
            // Publish the next slot by hand, correctly except its length.
            let end = Instant::now() + Duration::from_secs(30);
            while !matches!(p.tx.has_space(), Ok(true)) {
                p.consume();
                if Instant::now() > end {
                    fail("no room to strike");
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            let stride = lwmq::internals::ring::RingLayout::stride(c2s.buffer_size)
                .unwrap_or_else(|| fail("stride"));
            let pos = p.published;
            let off = c2s.slots + (pos % u64::from(c2s.capacity)) as usize * stride;
            p.map
                .atomic_u32(off)
                .store(c2s.buffer_size as u32 + 1, Ordering::Relaxed);
            p.map.atomic_u32(off + 4).store(0, Ordering::Relaxed);
            p.map
                .atomic_u32(off + ring::SEQ)
                .store((pos + 1) as u32, Ordering::Release);
            p.map
                .atomic_u32(c2s.ctrl + TAIL)
                .store((pos + 1) as u32, Ordering::Release);
        }
        "wire" => {
            let bad_run = p.run ^ 0xBAD0_0000;
            for k in 0..10u64 {
                let mut data = p.encode(bad_run, k * 20, 20);
                match k % 5 {
                    0 => data[0] ^= 0xFF,                   // magic
                    1 => data[1] = data[1].wrapping_add(1), // version
                    2 => {
                        // One message more than the buffer holds.
                        let n = u32::from_le_bytes(data[4..8].try_into().unwrap()) + 1;
                        data[4..8].copy_from_slice(&n.to_le_bytes());
                    }
                    3 => {
                        // The last frame cut short.
                        let n = data.len() - 5;
                        data.truncate(n);
                    }
                    _ => data[8] = 0, // a message with no frame
                }
                p.publish(&data);
                p.good();
            }
            for _ in 0..20 {
                p.good();
            }
            // Report once the server has taken every buffer out of the
            // ring, so that killing this peer afterwards loses nothing.
            let end = Instant::now() + Duration::from_secs(30);
            while !matches!(p.tx.drained(), Ok(true)) {
                p.consume();
                if Instant::now() > end {
                    fail("the server did not take every buffer");
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            say(format!(
                "WIRE corrupt=10 good={} run={} bad_run={bad_run} last_seq={}",
                p.published - 10,
                p.run,
                p.seq - 1
            ));
            // Keep the connection and keep consuming until killed.
            let end = Instant::now() + Duration::from_secs(120);
            while Instant::now() < end {
                p.consume();
                std::thread::sleep(Duration::from_millis(1));
            }
            return;
        }
        other => fail(format!("unknown mode {other}")),
    }
    say("STRUCK");
    // Keep consuming (a duplex-head strike is only seen when the server's
    // ring fills) until the server drops the connection.
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        match socket::wait(fd.as_fd(), Some(Duration::from_millis(1))) {
            Ok(socket::Readiness::TimedOut) => {
                if Instant::now() > end {
                    fail("server did not drop the connection");
                }
            }
            _ => {
                let n = socket::recv(&fd, &mut buf).map(|r| r.len).unwrap_or(0);
                say(format!("DROPPED eof={}", n == 0));
                return;
            }
        }
    }
}

/// The messages of every buffer the `rewrite` mode publishes: 40 pairs of a
/// two-frame message (frames of 2 and 28 bytes) and a one-frame message
/// of 40 bytes. Returns the buffer, the bytes whose rewrites keep it valid
/// and those whose rewrites break it, each with the values written there
/// (the first is the original):
///
/// * valid: the two-frame message's first frame header, flipped to
///   `10 << 1 | 1` (a timestamp and 10 bytes, then a frame of 12 bytes
///   whose header is planted inside the 28 bytes): its shape and payload
///   size change; and payload bytes of both messages;
/// * breaking: the two-frame message's frame count (0: no frame; 1 or 3:
///   the rest misparses), the one-frame message's header (a byte longer or
///   shorter), the buffer's message count (one more or one less).
#[allow(clippy::type_complexity)]
fn rewrite_template() -> (Vec<u8>, Vec<(usize, Vec<u8>)>, Vec<(usize, Vec<u8>)>) {
    const PAIRS: u32 = 40;
    let count = (2 * PAIRS).to_le_bytes();
    let mut b = vec![
        wire::MAGIC,
        wire::VERSION,
        0,
        0,
        count[0],
        count[1],
        count[2],
        count[3],
    ];
    let mut valid = Vec::new();
    let mut breaking = vec![(4, vec![count[0], count[0] + 1, count[0] - 1])];
    for _ in 0..PAIRS {
        let m = b.len();
        b.extend_from_slice(&[2, 2 << 1, b'a', b'b', 28 << 1]);
        b.extend_from_slice(&[b'x'; 28]);
        b[m + 2 + wire::TIMESTAMP_LEN + 10] = 12 << 1;
        breaking.push((m, vec![2, 0, 1, 3]));
        valid.push((m + 1, vec![2 << 1, (10 << 1) | 1]));
        valid.push((m + 2, vec![b'a', b'q']));
        let one = b.len();
        b.extend_from_slice(&[1, 40 << 1]);
        b.extend_from_slice(&[b'y'; 40]);
        breaking.push((one + 1, vec![40 << 1, 41 << 1, 39 << 1]));
        valid.push((one + 7, vec![b'y', 0]));
    }
    (b, valid, breaking)
}

/// Writes `value` at byte `at` of the section. The attacker's store: the
/// 4-byte word that holds the byte, read and written back (nobody else
/// writes the data of a published slot).
fn poke(map: &shm::Mapping, at: usize, value: u8) {
    let word = map.atomic_u32(at & !3);
    let shift = (at & 3) * 8;
    let old = word.load(Ordering::Relaxed);
    word.store(
        (old & !(0xFF << shift)) | (u32::from(value) << shift),
        Ordering::Relaxed,
    );
}

/// The `rewrite` mode: for `run_for`, keeps the ring full of copies of
/// [`rewrite_template`] and rewrites bytes of every buffer the server has
/// not released yet, so that the server decodes buffers that change under
/// it. Per buffer and round: one breaking byte gets another value, 16
/// valid rewrites follow, then the breaking byte gets its original value
/// back (so a buffer is broken only now and then, and its shape changes
/// all the time); values are chosen at random among the alternatives. Then publishes control buffers it never
/// touches: 4 copies of the template, one with a bad magic byte, and a
/// last buffer holding the one-frame message `REWRITE-END`. Prints
/// `REWROTE buffers=.. writes=.. good=4 bad=1` once the server has taken
/// everything, then keeps the connection until killed.
fn rewrite(p: &mut HandPeer, run_for: Duration) {
    let c2s = p.layout.c2s;
    let stride = ring::RingLayout::stride(c2s.buffer_size).unwrap_or_else(|| fail("stride"));
    let data_at = |pos: u64| {
        c2s.slots + (pos % u64::from(c2s.capacity)) as usize * stride + ring::SLOT_HEADER
    };
    let (template, valid, breaking) = rewrite_template();
    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ u64::from(std::process::id());
    let mut random = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let (mut buffers, mut writes) = (0u64, 0u64);
    let end = Instant::now() + run_for;
    while Instant::now() < end {
        while ring::prefill(&mut p.tx, &template, 0) {
            p.published += 1;
            buffers += 1;
        }
        let outstanding = p.tx.outstanding_now().unwrap_or(0);
        for pos in p.published.saturating_sub(outstanding)..p.published {
            let data = data_at(pos);
            let (broken, values) = &breaking[random() as usize % breaking.len()];
            poke(
                &p.map,
                data + broken,
                values[random() as usize % values.len()],
            );
            for _ in 0..16 {
                let (at, values) = &valid[random() as usize % valid.len()];
                poke(&p.map, data + at, values[random() as usize % values.len()]);
            }
            poke(&p.map, data + broken, values[0]);
            writes += 18;
        }
        p.consume();
    }
    for _ in 0..4 {
        p.publish(&template);
    }
    let mut bad = template.clone();
    bad[0] ^= 0xFF;
    p.publish(&bad);
    let mut last = vec![wire::MAGIC, wire::VERSION, 0, 0, 1, 0, 0, 0, 1];
    last.push((b"REWRITE-END".len() << 1) as u8);
    last.extend_from_slice(b"REWRITE-END");
    p.publish(&last);
    let end = Instant::now() + Duration::from_secs(30);
    while !matches!(p.tx.drained(), Ok(true)) {
        p.consume();
        if Instant::now() > end {
            fail("the server did not take every buffer");
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    say(format!(
        "REWROTE buffers={buffers} writes={writes} good=4 bad=1"
    ));
    let end = Instant::now() + Duration::from_secs(120);
    while Instant::now() < end {
        p.consume();
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn main() {
    init_logging();
    lwmq_harness::signals::install_if_requested();
    let o = parse();
    match o.cmd.as_str() {
        "send" => send(&o),
        "recv" => recv(&o),
        "idle" => idle(&o),
        "hostile" => hostile(&o),
        other => fail(format!("unknown command {other}")),
    }
}
