//! `lwmq-svc-peer`: peers for the tests of the `ipc://` service thread
//! (rendezvous, handshakes, credentials), some honest, some hostile.
//!
//! ```text
//! lwmq-svc-peer serve URI --count N [--linger-ms L] [--any-user]
//!     messaging server: receive N messages, then close(linger)
//! lwmq-svc-peer client URI --seconds S [--buffer-size B] [--buffers N]
//!                       [--allow-root]
//!     raw client (send and receive): report its state for S seconds
//! lwmq-svc-peer flood URI --threads T --seconds S [--count K]
//!     connect + close as fast as T threads can, for S seconds (each
//!     thread opens K sockets, connects them all, closes them all; K = 1
//!     by default)
//! lwmq-svc-peer hold URI --count N --seconds S
//!     open N connections, never speak, report what the server did to each
//! lwmq-svc-peer evil-server URI --mode hugetlb|refuse-text --seconds S
//!     a server written by hand that answers every HELLO for S seconds
//!     with a sealed hugetlbfs section (hugetlb) or with a REFUSE whose
//!     text holds control characters (refuse-text)
//! ```
//!
//! Lines on stdout (flushed at once): `OPEN server|client`, `DONE n`,
//! `MAP <maps line>`, `CLOSED ms=..`, `STATE <state>`, `CONNECTED`,
//! `LASTERROR <text>`, `FLOODING`, `FLOOD connects=.. full=.. other=..`,
//! `HOLD opened=.. refused=.. eof=.. open=..` (preceded by one
//! `HELDREFUSED <text>` per refusal), `CLIENT-REFUSED code=.. text=..`,
//! `CLIENT-OTHER <what>`, `NOHUGETLB <why>`.

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lwmq::internals::descriptor::IpcAddress;
use lwmq::internals::sys::{shm, socket};
use lwmq::internals::transport::ipc::proto::{Accept, Message, SectionLayout, MAX_MESSAGE};
use lwmq::transport::RefusalReason;
use lwmq::{
    AccessPolicy, Channel, ConnectionState, Endpoint, RawChannel, ReceiveError, Role, Timeout,
    TransportId,
};
use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};

fn say(line: impl AsRef<str>) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", line.as_ref());
    let _ = out.flush();
}

fn fail(msg: impl AsRef<str>) -> ! {
    eprintln!("lwmq-svc-peer: {}", msg.as_ref());
    std::process::exit(2);
}

struct Opts {
    cmd: String,
    uri: String,
    count: u64,
    linger_ms: u64,
    any_user: bool,
    allow_root: bool,
    seconds: u64,
    threads: usize,
    buffer_size: usize,
    buffers: i64,
    mode: String,
}

fn parse() -> Opts {
    let mut a = std::env::args().skip(1);
    let mut o = Opts {
        cmd: a
            .next()
            .unwrap_or_else(|| fail("usage: see the file's doc")),
        uri: a.next().unwrap_or_else(|| fail("missing URI")),
        count: 0,
        linger_ms: 0,
        any_user: false,
        allow_root: false,
        seconds: 10,
        threads: 4,
        buffer_size: 4096,
        buffers: 4,
        mode: String::new(),
    };
    while let Some(k) = a.next() {
        let mut val = || {
            a.next()
                .unwrap_or_else(|| fail(format!("{k} needs a value")))
        };
        let num = |v: String| -> u64 {
            v.parse()
                .unwrap_or_else(|_| fail(format!("bad number {v}")))
        };
        match k.as_str() {
            "--count" => o.count = num(val()),
            "--linger-ms" => o.linger_ms = num(val()),
            "--any-user" => o.any_user = true,
            "--allow-root" => o.allow_root = true,
            "--seconds" => o.seconds = num(val()),
            "--threads" => o.threads = num(val()) as usize,
            "--buffer-size" => o.buffer_size = num(val()) as usize,
            "--buffers" => o.buffers = num(val()) as i64,
            "--mode" => o.mode = val(),
            other => fail(format!("unknown option {other}")),
        }
    }
    o
}

fn main() {
    lwmq_harness::init_logging();
    let o = parse();
    match o.cmd.as_str() {
        "serve" => serve(&o),
        "client" => client(&o),
        "flood" => flood(&o),
        "hold" => hold(&o),
        "evil-server" => evil_server(&o),
        other => fail(format!("unknown command {other}")),
    }
}

fn memfd_map_line() -> Option<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .find(|l| l.contains("/memfd:lwmq:"))
        .map(str::to_owned)
}

/// A messaging server that receives `--count` messages (64 KiB buffers, 8
/// of them, the geometry of `lwmq-msg-peer`), then closes with
/// `--linger-ms` and reports how long `close` took.
fn serve(o: &Opts) {
    let mut ep = Endpoint::new(&o.uri)
        .unwrap_or_else(|e| fail(e.to_string()))
        .buffer_size(64 * 1024)
        .send_buffers(0)
        .receive_buffers(8);
    if o.any_user {
        ep = ep.access(AccessPolicy::any_user());
    }
    let mut ch = Channel::builder()
        .transport(ep)
        .unwrap_or_else(|e| fail(e.to_string()))
        .open(Role::Server)
        .unwrap_or_else(|e| fail(e.to_string()));
    say("OPEN server");
    let mut received = 0u64;
    while received < o.count {
        match ch.receive(Timeout::after(Duration::from_secs(1))) {
            Ok(_) => {
                received += 1;
                if received == 1 {
                    say("CONNECTED");
                    if let Some(l) = memfd_map_line() {
                        say(format!("MAP {l}"));
                    }
                }
            }
            Err(ReceiveError::Timeout) => {}
            Err(e) => fail(e.to_string()),
        }
    }
    say(format!("DONE {received}"));
    let t0 = Instant::now();
    let _ = ch.close(Duration::from_millis(o.linger_ms));
    say(format!("CLOSED ms={}", t0.elapsed().as_millis()));
}

/// A raw client that reports every state it passes through.
fn client(o: &Opts) {
    let n = u32::try_from(o.buffers).unwrap_or_else(|_| fail("bad --buffers"));
    let mut ep = Endpoint::new(&o.uri)
        .unwrap_or_else(|e| fail(e.to_string()))
        .buffer_size(o.buffer_size)
        .send_buffers(n)
        .receive_buffers(n);
    if o.allow_root {
        ep = ep.access(AccessPolicy::same_user().allow_root());
    }
    let ch = RawChannel::builder()
        .transport(ep)
        .unwrap_or_else(|e| fail(e.to_string()))
        .open(Role::Client)
        .unwrap_or_else(|e| fail(e.to_string()));
    say("OPEN client");
    let t = ch.transport(TransportId(0)).expect("added");
    let end = Instant::now() + Duration::from_secs(o.seconds);
    let mut last = String::new();
    let mut connected = false;
    while Instant::now() < end {
        let s = t.state();
        let text = s.to_string();
        if text != last {
            say(format!("STATE {text}"));
            last = text;
        }
        if s == ConnectionState::Connected && !connected {
            connected = true;
            say("CONNECTED");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    if let Some(e) = t.last_error() {
        say(format!("LASTERROR {e}"));
    }
}

/// Connect + close from several threads as fast as they go: each
/// connection lands in the server's accept queue whether or not anything
/// is said on it.
fn flood(o: &Opts) {
    let name = IpcAddress::parse(&o.uri)
        .unwrap_or_else(|e| fail(e.to_string()))
        .rendezvous_name();
    let keep = o.count.clamp(1, 4096) as usize;
    let stop = Arc::new(AtomicBool::new(false));
    let connects = Arc::new(AtomicU64::new(0));
    let full = Arc::new(AtomicU64::new(0));
    let other = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..o.threads.max(1))
        .map(|_| {
            let (name, stop) = (name.clone(), Arc::clone(&stop));
            let (connects, full, other) =
                (Arc::clone(&connects), Arc::clone(&full), Arc::clone(&other));
            std::thread::spawn(move || {
                let addr = SocketAddrUnix::new_abstract_name(&name)
                    .unwrap_or_else(|e| fail(format!("abstract name: {e}")));
                // Sockets are made `keep` at a time before connecting any,
                // and closed together once all are connected: between the
                // two, each connection costs the flood one `connect`, and a
                // connect that finds the queue full is simply retried. At the
                // descriptor limit the pool is just smaller.
                let new_socket = || {
                    rustix::net::socket_with(
                        AddressFamily::UNIX,
                        SocketType::SEQPACKET,
                        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
                        None,
                    )
                    .ok()
                };
                while !stop.load(Ordering::Relaxed) {
                    let pool: Vec<OwnedFd> = (0..keep).map_while(|_| new_socket()).collect();
                    if pool.is_empty() {
                        std::thread::yield_now();
                    }
                    for fd in &pool {
                        loop {
                            if stop.load(Ordering::Relaxed) {
                                return;
                            }
                            match rustix::net::connect(fd, &addr) {
                                Ok(()) => {
                                    connects.fetch_add(1, Ordering::Relaxed);
                                    break;
                                }
                                Err(rustix::io::Errno::AGAIN) => {
                                    full.fetch_add(1, Ordering::Relaxed);
                                }
                                Err(e) => {
                                    if other.fetch_add(1, Ordering::Relaxed) == 0 {
                                        eprintln!("lwmq-svc-peer: flood: first other error: {e}");
                                    }
                                    std::thread::yield_now();
                                    break;
                                }
                            }
                        }
                    }
                }
            })
        })
        .collect();
    let end = Instant::now() + Duration::from_secs(o.seconds);
    let mut announced = false;
    while Instant::now() < end {
        if !announced && connects.load(Ordering::Relaxed) >= 200 {
            announced = true;
            say("FLOODING");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    say(format!(
        "FLOOD connects={} full={} other={}",
        connects.load(Ordering::Relaxed),
        full.load(Ordering::Relaxed),
        other.load(Ordering::Relaxed)
    ));
}

/// What the server did to one silent connection.
enum Fate {
    Open,
    Refused(RefusalReason, String),
    Eof,
}

fn fate_of(fd: &OwnedFd) -> Option<Fate> {
    let mut buf = [0u8; MAX_MESSAGE];
    match socket::recv(fd, &mut buf) {
        Ok(r) if r.len == 0 => Some(Fate::Eof),
        Ok(r) => match Message::decode(&buf[..r.len]) {
            Ok(Message::Refuse { reason, text }) => Some(Fate::Refused(reason, text)),
            other => fail(format!("unexpected answer to a silent client: {other:?}")),
        },
        Err(e) if e.errno == rustix::io::Errno::AGAIN => None,
        Err(_) => Some(Fate::Eof),
    }
}

/// Opens `--count` connections that never speak; watches them for
/// `--seconds` and reports, for each, whether the server refused it (and
/// why), closed it, or left it open.
fn hold(o: &Opts) {
    let name = IpcAddress::parse(&o.uri)
        .unwrap_or_else(|e| fail(e.to_string()))
        .rendezvous_name();
    let mut held: Vec<(OwnedFd, Fate)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while (held.len() as u64) < o.count {
        match socket::connect(&name) {
            Ok(fd) => held.push((fd, Fate::Open)),
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => fail(format!("cannot connect: {e}")),
        }
    }
    let end = Instant::now() + Duration::from_secs(o.seconds);
    while Instant::now() < end && held.iter().any(|(_, f)| matches!(f, Fate::Open)) {
        for (fd, f) in &mut held {
            if matches!(f, Fate::Open) {
                if let Some(new) = fate_of(fd) {
                    *f = new;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let (mut refused, mut eof, mut open) = (0, 0, 0);
    for (_, f) in &held {
        match f {
            Fate::Refused(r, text) => {
                refused += 1;
                say(format!("HELDREFUSED code={} {text}", r.code()));
            }
            Fate::Eof => eof += 1,
            Fate::Open => open += 1,
        }
    }
    say(format!(
        "HOLD opened={} refused={refused} eof={eof} open={open}",
        held.len()
    ));
}

/// Capacities for a section whose length is a multiple of `unit` (a huge
/// page), at least the client's counts.
fn hugepage_layout(
    buffer_size: u64,
    c2s_min: u32,
    s2c_min: u32,
    unit: usize,
) -> Option<(u32, u32, SectionLayout)> {
    (0..8192u32).find_map(|extra| {
        let c2s = c2s_min.checked_add(extra)?;
        let l = SectionLayout::compute(buffer_size, c2s, s2c_min)?;
        (l.len.is_multiple_of(unit)).then_some((c2s, s2c_min, l))
    })
}

/// A hostile server, by hand (see the file's doc).
fn evil_server(o: &Opts) {
    let addr = IpcAddress::parse(&o.uri).unwrap_or_else(|e| fail(e.to_string()));
    let listener = socket::listen(&addr.rendezvous_name()).unwrap_or_else(|e| fail(e.to_string()));
    say("OPEN server");
    let end = Instant::now() + Duration::from_secs(o.seconds);
    while Instant::now() < end {
        let Ok(Some(fd)) = socket::accept(&listener) else {
            let _ = socket::wait(listener.as_fd(), Some(Duration::from_millis(50)));
            continue;
        };
        let mut buf = [0u8; MAX_MESSAGE];
        if !matches!(
            socket::wait(fd.as_fd(), Some(Duration::from_secs(10))),
            Ok(socket::Readiness::Readable)
        ) {
            continue;
        }
        let hello = match socket::recv(&fd, &mut buf).map(|r| Message::decode(&buf[..r.len])) {
            Ok(Ok(Message::Hello(h))) => h,
            other => {
                say(format!("CLIENT-OTHER no HELLO: {other:?}"));
                continue;
            }
        };
        match o.mode.as_str() {
            "hugetlb" => {
                const HUGE: usize = 2 << 20;
                let Some((c2s, s2c, layout)) = hugepage_layout(
                    hello.buffer_size,
                    hello.send_buffers,
                    hello.receive_buffers,
                    HUGE,
                ) else {
                    fail("no capacities give a section of whole huge pages for this buffer size");
                };
                let memfd = match rustix::fs::memfd_create(
                    "lwmq:evil-huge",
                    rustix::fs::MemfdFlags::CLOEXEC
                        | rustix::fs::MemfdFlags::ALLOW_SEALING
                        | rustix::fs::MemfdFlags::HUGETLB,
                ) {
                    Ok(fd) => fd,
                    Err(e) => {
                        say(format!("NOHUGETLB memfd_create(MFD_HUGETLB): {e}"));
                        return;
                    }
                };
                // Sized and sealed exactly like an honest section; never
                // mapped here, so no huge page needs to be free.
                if let Err(e) = rustix::fs::ftruncate(&memfd, layout.len as u64)
                    .and_then(|()| rustix::fs::fcntl_add_seals(&memfd, shm::REQUIRED_SEALS))
                {
                    say(format!("NOHUGETLB size or seal: {e}"));
                    return;
                }
                let accept = Message::Accept(Accept {
                    section_len: layout.len as u64,
                    c2s_capacity: c2s,
                    s2c_capacity: s2c,
                    buffer_size: hello.buffer_size,
                    features: 0,
                });
                socket::send(&fd, &accept.encode(), Some(memfd.as_fd()))
                    .unwrap_or_else(|e| fail(e.to_string()));
            }
            "refuse-text" => {
                let refuse = Message::Refuse {
                    reason: RefusalReason::Busy,
                    text: "busy\n[WARN] lwmq forged: connected to pid 1\r\u{1b}[2J\u{7}".into(),
                };
                let _ = socket::send(&fd, &refuse.encode(), None);
                continue;
            }
            other => fail(format!("unknown mode {other}")),
        }
        // What did the client make of it?
        let _ = socket::wait(fd.as_fd(), Some(Duration::from_secs(10)));
        match socket::recv(&fd, &mut buf).map(|r| Message::decode(&buf[..r.len])) {
            Ok(Ok(Message::Refuse { reason, text })) => {
                say(format!("CLIENT-REFUSED code={} text={text}", reason.code()))
            }
            other => say(format!("CLIENT-OTHER {other:?}")),
        }
    }
}
