//! `lwmq-limits-peer`: a raw-channel peer that runs out of resources on
//! request, for the resource-failure tests.
//!
//! ```text
//! lwmq-limits-peer server URI [--buffer-size B] [--ctl DIR]
//! lwmq-limits-peer client URI [--buffer-size B] [--ctl DIR] [--count N] [--hog-first]
//! ```
//!
//! The soft `RLIMIT_NOFILE` is lowered to 256 at start, so that taking
//! every free descriptor is quick. With `--ctl DIR`, a thread acts on
//! files the test creates in DIR, removes each file and acknowledges it:
//!
//! | file | action | ack |
//! |---|---|---|
//! | `hog` | open `/dev/null` until the descriptor table is full | `HOGGED <n>` |
//! | `hog-but-one` | the same, then close one | `HOGGED <n>` |
//! | `free` | close the hogged descriptors | `FREED` |
//! | `as-limit` | soft `RLIMIT_AS` = current size + 4 MiB | `ASLIMIT <bytes>` |
//! | `as-free` | soft `RLIMIT_AS` = hard limit | `ASFREE` |
//!
//! The same thread prints `STATE <state>` and `LASTERROR <text>` whenever
//! the transport's state or last error changes.
//!
//! The server receives checked payloads (`RUN`, `BAD` lines as in
//! `lwmq-peer`) and prints `RECEIVED <n>` every 1000 buffers. The client
//! sends `--count` payloads once connected, flushes, prints `SENT <n>` and
//! exits. With `--hog-first` the client first fills its descriptor table,
//! tries to add the transport and open (printing `ADD ok|err <error>` and
//! `OPEN ok|err <error>`), frees the descriptors (`FREED`) and then
//! starts over normally (`RETRY ok`).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lwmq::{ConnectionState, Endpoint, RawChannel, Role, Timeout, TransportId, TransportView};
use lwmq_harness::{check, fill, init_logging};
use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

fn say(line: impl AsRef<str>) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", line.as_ref());
    let _ = out.flush();
}

fn fail(msg: impl AsRef<str>) -> ! {
    eprintln!("lwmq-limits-peer: {}", msg.as_ref());
    std::process::exit(1)
}

struct Opts {
    cmd: String,
    uri: String,
    buffer_size: usize,
    ctl: Option<PathBuf>,
    count: u64,
    hog_first: bool,
}

fn parse() -> Opts {
    let mut args = std::env::args().skip(1);
    let cmd = args
        .next()
        .unwrap_or_else(|| fail("usage: server|client URI [opts]"));
    let uri = args.next().unwrap_or_else(|| fail("missing URI"));
    let mut o = Opts {
        cmd,
        uri,
        buffer_size: 4096,
        ctl: None,
        count: 1000,
        hog_first: false,
    };
    while let Some(a) = args.next() {
        let mut val = || {
            args.next()
                .unwrap_or_else(|| fail(format!("{a} needs a value")))
        };
        match a.as_str() {
            "--buffer-size" => o.buffer_size = val().parse().unwrap_or_else(|_| fail("number")),
            "--count" => o.count = val().parse().unwrap_or_else(|_| fail("number")),
            "--ctl" => o.ctl = Some(PathBuf::from(val())),
            "--hog-first" => o.hog_first = true,
            other => fail(format!("unknown option {other}")),
        }
    }
    o
}

/// Descriptors taken to fill the table.
static HOG: Mutex<Vec<File>> = Mutex::new(Vec::new());

fn hog(leave_one: bool) -> usize {
    let mut h = HOG.lock().unwrap();
    while let Ok(f) = File::open("/dev/null") {
        h.push(f);
    }
    if leave_one {
        h.pop();
    }
    h.len()
}

fn free() {
    HOG.lock().unwrap().clear();
}

fn vm_size() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmSize:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

fn set_as(limit: Option<u64>) {
    let cur = getrlimit(Resource::As);
    let current = limit.or(cur.maximum);
    setrlimit(
        Resource::As,
        Rlimit {
            current,
            maximum: cur.maximum,
        },
    )
    .unwrap_or_else(|e| fail(format!("setrlimit(RLIMIT_AS): {e}")));
}

/// Acts on control files and reports state and last-error changes.
fn watch(t: TransportView<'_>, ctl: Option<&Path>, stop: &AtomicBool) {
    let (mut state, mut error) = (String::new(), None);
    while !stop.load(Ordering::Relaxed) {
        let s = t.state().to_string();
        if s != state {
            say(format!("STATE {s}"));
            state = s;
        }
        let e = t.last_error();
        if e != error {
            if let Some(text) = &e {
                say(format!("LASTERROR {text}"));
            }
            error = e;
        }
        if let Some(dir) = ctl {
            let take = |name: &str| std::fs::remove_file(dir.join(name)).is_ok();
            if take("hog") {
                say(format!("HOGGED {}", hog(false)));
            }
            if take("hog-but-one") {
                say(format!("HOGGED {}", hog(true)));
            }
            if take("free") {
                free();
                say("FREED");
            }
            if take("as-limit") {
                let limit = vm_size() + 4 * 1024 * 1024;
                set_as(Some(limit));
                say(format!("ASLIMIT {limit}"));
            }
            if take("as-free") {
                set_as(None);
                say("ASFREE");
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn server(o: &Opts) {
    let ep = Endpoint::new(&o.uri)
        .unwrap_or_else(|e| fail(e.to_string()))
        .buffer_size(o.buffer_size)
        .send_buffers(0)
        .receive_buffers(8);
    let ch = RawChannel::builder()
        .transport(ep)
        .unwrap_or_else(|e| fail(e.to_string()))
        .open(Role::Server)
        .unwrap_or_else(|e| fail(e.to_string()));
    say("OPEN server");
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let t = ch.transport(TransportId(0)).expect("added");
        let (ctl, stop) = (o.ctl.as_deref(), &stop);
        s.spawn(move || watch(t, ctl, stop));
        let rx = ch
            .receiver(TransportId(0))
            .unwrap_or_else(|e| fail(e.to_string()));
        let mut received = 0u64;
        let mut current: Option<(u64, u64)> = None;
        loop {
            let b = match rx.receive_buffer(Timeout::after(Duration::from_millis(100))) {
                Ok(b) => b,
                Err(lwmq::TransportError::Timeout) => continue,
                Err(e) => fail(format!("receive: {e}")),
            };
            received += 1;
            match check(&b.to_vec()) {
                None => say(format!("BAD corrupt payload #{received}")),
                Some((run, seq)) => {
                    match current {
                        Some((r, last)) if r == run && seq != last + 1 => {
                            say(format!("BAD seq {seq} after {last}"))
                        }
                        Some((r, _)) if r == run => {}
                        _ => say(format!("RUN {run} {seq}")),
                    }
                    current = Some((run, seq));
                }
            }
            if received.is_multiple_of(1000) {
                say(format!("RECEIVED {received}"));
            }
        }
    });
}

/// The client's channel: the endpoint is checked when added (`ADD`); the
/// transport, and its descriptors, are created when it opens (`OPEN`).
fn client_channel(o: &Opts) -> Result<RawChannel, String> {
    let added = Endpoint::new(&o.uri)
        .map_err(|e| e.to_string())
        .map(|ep| {
            ep.buffer_size(o.buffer_size)
                .send_buffers(8)
                .receive_buffers(0)
        })
        .and_then(|ep| {
            RawChannel::builder()
                .transport(ep)
                .map_err(|e| e.to_string())
        });
    let b = match added {
        Ok(b) => {
            say("ADD ok");
            b
        }
        Err(e) => {
            say(format!("ADD err {e}"));
            return Err(e);
        }
    };
    match b.open(Role::Client) {
        Ok(ch) => {
            say("OPEN ok");
            Ok(ch)
        }
        Err(e) => {
            say(format!("OPEN err {e} ({e:?})"));
            Err(e.to_string())
        }
    }
}

fn client(o: &Opts) {
    if o.hog_first {
        say(format!("HOGGED {}", hog(false)));
        let first = client_channel(o);
        // Whatever happened, nothing may have been leaked or left running:
        // drop it before freeing.
        drop(first);
        free();
        say("FREED");
    }
    let ch = client_channel(o).unwrap_or_else(|e| fail(e));
    if o.hog_first {
        say("RETRY ok");
    }
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let t = ch.transport(TransportId(0)).expect("added");
        let (ctl, stop) = (o.ctl.as_deref(), &stop);
        s.spawn(move || watch(t, ctl, stop));
        let end = Instant::now() + Duration::from_secs(120);
        while t.state() != ConnectionState::Connected {
            if Instant::now() > end {
                fail("never connected");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let tx = ch
            .sender(TransportId(0))
            .unwrap_or_else(|e| fail(e.to_string()));
        let run = u64::from(std::process::id()) << 32 | 0x11;
        let mut payload = vec![0u8; 64];
        for seq in 0..o.count {
            let mut b = tx
                .get_buffer(Timeout::after(Duration::from_secs(60)))
                .unwrap_or_else(|e| fail(format!("get_buffer: {e}")));
            fill(&mut payload, run, seq);
            b.write(0, &payload).unwrap_or_else(|e| fail(e.to_string()));
            b.send(payload.len())
                .unwrap_or_else(|e| fail(e.to_string()));
        }
        tx.flush(Timeout::after(Duration::from_secs(60)))
            .unwrap_or_else(|e| fail(format!("flush: {e}")));
        say(format!("SENT {}", o.count));
        stop.store(true, Ordering::Relaxed);
    });
}

fn main() {
    init_logging();
    let o = parse();
    let nofile = getrlimit(Resource::Nofile);
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(256),
            maximum: nofile.maximum,
        },
    )
    .unwrap_or_else(|e| fail(format!("setrlimit(RLIMIT_NOFILE): {e}")));
    match o.cmd.as_str() {
        "server" => server(&o),
        "client" => client(&o),
        other => fail(format!("unknown command {other}")),
    }
}
