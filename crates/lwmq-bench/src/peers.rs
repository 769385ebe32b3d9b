//! The peer side of every non-lwmq scenario: Unix domain sockets (also
//! through tokio), plain TCP sockets, ZeroMQ (`ipc://` and `tcp://`) and
//! iceoryx2, plus the lwmq scenarios that are not a CLI command: the idle
//! pair and the async latency row (`receive_async` on tokio). Each runs in a child process started
//! by the orchestrator as `lwmq-bench peer KIND ...` and prints one JSON
//! object as its last stdout line (the same shapes as `lwmq thr --json` and
//! `lwmq lat --json`, so the orchestrator parses every library alike).
//!
//! Every library does the same work per message as `lwmq thr`/`lat`
//! (docs/performance.md): the sender writes the whole payload (the pattern
//! of `lwmq_cli::raw_thr::pattern`, its sequence number, little-endian, in
//! the first and the last 8 bytes) into the library's send path, and the
//! receiver checks the whole payload where the library hands it over
//! (borrowed in place for iceoryx2, copied out for the sockets and
//! ZeroMQ): its length, both stamps and every byte between them. No library
//! can skip, merge or corrupt data unnoticed, and none is spared reading
//! what it received.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::time::{Duration, Instant};

use iceoryx2::port::update_connections::UpdateConnections as _;
use iceoryx2::service::port_factory::PortFactory as _;
use lwmq_cli::raw_lat::{warmup_for, LatReport};
use lwmq_cli::raw_thr::{fill_payload, is_payload, pattern, stamp_payload, ThrReport};

/// Errors of a peer process.
#[derive(Debug)]
pub struct PeerError(pub String);

impl std::fmt::Display for PeerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PeerError {}

/// Wraps any displayable error with what was being done.
fn ctx<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> PeerError {
    move |e| PeerError(format!("{what}: {e}"))
}

/// Longest time a peer waits for its counterpart to appear.
const CONNECT_LIMIT: Duration = Duration::from_secs(20);

/// Stamps payload `seq` into `buf`, which holds the pattern: its first
/// and last 8 bytes.
fn stamp(buf: &mut [u8], seq: u64) {
    stamp_payload(buf, seq);
}

/// A payload of `size` (>= 16) bytes: the pattern, stamped 0.
fn payload(size: usize) -> Vec<u8> {
    let mut p = pattern(size);
    stamp(&mut p, 0);
    p
}

/// Checks a byte stream of back-to-back fixed-size payloads whole, whatever
/// the chunking: every byte is compared with the expected payload (its
/// stamps may straddle reads).
#[derive(Debug)]
pub struct StreamVerifier {
    size: usize,
    at: usize,
    seq: u64,
    /// The payload expected next (the pattern, stamped `seq`).
    expect: Vec<u8>,
    ok: bool,
}

impl StreamVerifier {
    /// A verifier for payloads of `size` (>= 16) bytes, starting at 0.
    pub fn new(size: usize) -> Self {
        Self {
            size,
            at: 0,
            seq: 0,
            expect: payload(size),
            ok: true,
        }
    }

    /// Feeds the next bytes of the stream.
    pub fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let n = (self.size - self.at).min(data.len());
            self.ok &= data[..n] == self.expect[self.at..self.at + n];
            self.at += n;
            data = &data[n..];
            if self.at == self.size {
                self.at = 0;
                self.seq += 1;
                stamp(&mut self.expect, self.seq);
            }
        }
    }

    /// Whole payloads seen so far.
    pub fn complete(&self) -> u64 {
        self.seq
    }

    /// Every payload so far carried the right sequence number.
    pub fn ok(&self) -> bool {
        self.ok
    }
}

/// Prints a throughput report as the JSON line the orchestrator reads.
fn print_thr(side: &str, size: usize, count: u64, seconds: f64, verified: Option<bool>) {
    let r = ThrReport {
        messages: count,
        bytes: count * size as u64,
        seconds,
        verified,
    };
    println!("{}", r.to_json(side, size));
}

/// The pinger's bookkeeping, shared by the blocking loop ([`ping_loop`])
/// and the async ones: the warm-up, the time cap and the timed samples.
struct Pinger {
    /// Warm-up round trips.
    w: u64,
    /// Warm-up plus timed round trips.
    total: u64,
    cap: Duration,
    pause: Duration,
    started: Instant,
    /// Past the warm-up: round trips are recorded.
    warm: bool,
    /// The next round trip's sequence number.
    next: u64,
    /// Round trips, nanoseconds.
    samples: Vec<u64>,
}

impl Pinger {
    fn new(count: u64, cap: Duration, pause: Duration) -> Self {
        let w = warmup_for(count, pause);
        Self {
            w,
            total: w + count,
            cap,
            pause,
            samples: Vec::with_capacity(count.min(10_000_000) as usize),
            started: Instant::now(),
            warm: false,
            next: 0,
        }
    }

    /// The sequence number of the next round trip, after the pause (a
    /// thread sleep, as in `lwmq lat`: the same pause for every row);
    /// `None` once all are done or `cap` (if not zero) has passed. With a
    /// cap, the warm-up also ends after a tenth of it.
    fn next(&mut self) -> Option<u64> {
        let i = self.next;
        if i >= self.total {
            return None;
        }
        if !self.cap.is_zero() && i % 64 == 63 {
            let t = self.started.elapsed();
            if t > self.cap {
                return None;
            }
            self.warm |= t > self.cap / 10;
        }
        self.warm |= i >= self.w;
        self.next = i + 1;
        if !self.pause.is_zero() {
            std::thread::sleep(self.pause);
        }
        Some(i)
    }

    /// Records a round trip (once warm).
    fn timed(&mut self, rt: Duration) {
        if self.warm {
            self.samples.push(rt.as_nanos() as u64);
        }
    }

    /// Prints the report.
    fn report(self, size: usize) -> Result<(), PeerError> {
        if self.samples.is_empty() {
            return Err(PeerError("no round trip was timed".into()));
        }
        print_lat(&LatReport::from_round_trips(self.samples), size);
        Ok(())
    }
}

/// The pinger's loop shared by the peers: stamps payload `i` with its
/// sequence number, lets `round_trip` send it and wait for the echo
/// (which it checks), times each round trip and prints the report. After
/// `cap` (if not zero) it stops early: the report says how many round trips
/// were timed, and the orchestrator ends the waiting pong.
fn ping_loop(
    size: usize,
    count: u64,
    cap: Duration,
    pause: Duration,
    mut round_trip: impl FnMut(&[u8], u64) -> Result<(), PeerError>,
) -> Result<(), PeerError> {
    let mut buf = payload(size);
    let mut p = Pinger::new(count, cap, pause);
    while let Some(i) = p.next() {
        let t0 = Instant::now();
        stamp(&mut buf, i);
        round_trip(&buf, i)?;
        p.timed(t0.elapsed());
    }
    p.report(size)
}

/// Prints a latency report as the JSON line the orchestrator reads.
fn print_lat(r: &LatReport, size: usize) {
    println!("{}", r.to_json(size));
}

fn verify_done(ok: bool, what: &str) -> Result<(), PeerError> {
    if ok {
        Ok(())
    } else {
        Err(PeerError(format!("{what}: payloads failed verification")))
    }
}

// ---------------------------------------------------------------- UDS ---

fn uds_addr(name: &str) -> Result<SocketAddr, PeerError> {
    SocketAddr::from_abstract_name(name.as_bytes()).map_err(ctx("abstract socket name"))
}

fn uds_connect(name: &str) -> Result<UnixStream, PeerError> {
    let addr = uds_addr(name)?;
    let start = Instant::now();
    loop {
        match UnixStream::connect_addr(&addr) {
            Ok(s) => return Ok(s),
            Err(e) if start.elapsed() > CONNECT_LIMIT => {
                return Err(PeerError(format!("uds connect {name}: {e}")))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

fn uds_accept(name: &str) -> Result<UnixStream, PeerError> {
    let l = UnixListener::bind_addr(&uds_addr(name)?).map_err(ctx("uds bind"))?;
    let (s, _) = l.accept().map_err(ctx("uds accept"))?;
    Ok(s)
}

/// Bytes per write (and read buffer) in batched mode.
pub const UDS_BATCH: usize = 64 * 1024;

/// UDS `SOCK_STREAM` throughput. The receiver binds an abstract name (no
/// file); `batch` packs as many payloads as fit into 64 KiB per write and
/// reads 64 KiB at a time, otherwise each payload is one write and one
/// exact read.
pub fn uds_thr(
    side: &str,
    name: &str,
    size: usize,
    count: u64,
    batch: bool,
) -> Result<(), PeerError> {
    if side == "recv" {
        return stream_recv(uds_accept(name)?, "uds", size, count, batch);
    }
    stream_send(uds_connect(name)?, size, count, batch)
}

/// The receiving side of a stream socket's throughput run (see
/// [`uds_thr`]): every byte of every payload is checked.
fn stream_recv(
    mut s: impl Read,
    what: &'static str,
    size: usize,
    count: u64,
    batch: bool,
) -> Result<(), PeerError> {
    let mut v = StreamVerifier::new(size);
    let mut buf = vec![0u8; if batch { UDS_BATCH.max(size) } else { size }];
    let mut start = None;
    while v.complete() < count {
        let want = if batch {
            let left = (count - v.complete()) as usize * size;
            buf.len().min(left)
        } else {
            size
        };
        let n = if batch {
            s.read(&mut buf[..want]).map_err(ctx("read"))?
        } else {
            s.read_exact(&mut buf[..want]).map_err(ctx("read"))?;
            want
        };
        if n == 0 {
            return Err(PeerError(format!("{what}: sender closed early")));
        }
        start.get_or_insert_with(Instant::now);
        v.feed(&buf[..n]);
    }
    let seconds = start.map_or(0.0, |s| s.elapsed().as_secs_f64());
    print_thr("recv", size, count, seconds, Some(v.ok()));
    verify_done(v.ok(), what)
}

/// The sending side of a stream socket's throughput run.
fn stream_send(
    mut s: impl Read + Write,
    size: usize,
    count: u64,
    batch: bool,
) -> Result<(), PeerError> {
    let start = Instant::now();
    if batch && size < UDS_BATCH {
        let per = UDS_BATCH / size;
        let template = payload(size);
        let mut buf: Vec<u8> = Vec::with_capacity(per * size);
        let mut seq = 0;
        while seq < count {
            buf.clear();
            let n = per.min((count - seq) as usize);
            for _ in 0..n {
                let at = buf.len();
                buf.extend_from_slice(&template);
                stamp(&mut buf[at..], seq);
                // (`template` is the pattern: the whole payload is
                // written, then stamped.)
                seq += 1;
            }
            s.write_all(&buf).map_err(ctx("write"))?;
        }
    } else {
        let mut buf = payload(size);
        for seq in 0..count {
            stamp(&mut buf, seq);
            s.write_all(&buf).map_err(ctx("write"))?;
        }
    }
    s.flush().map_err(ctx("flush"))?;
    // Wait for the receiver to close, so the process outlives the data.
    let mut end = [0u8; 1];
    let _ = s.read(&mut end);
    print_thr("send", size, count, start.elapsed().as_secs_f64(), None);
    Ok(())
}

/// UDS latency: ping writes a payload and reads the echo; pong echoes.
pub fn uds_lat(
    side: &str,
    name: &str,
    size: usize,
    count: u64,
    cap: Duration,
    pause: Duration,
) -> Result<(), PeerError> {
    if side == "pong" {
        return stream_pong(uds_accept(name)?, "uds", size, count, pause);
    }
    stream_ping(uds_connect(name)?, "uds", size, count, cap, pause)
}

/// The echoing side of a stream socket's latency run: checks each payload
/// whole, then writes it back.
fn stream_pong(
    mut s: impl Read + Write,
    what: &'static str,
    size: usize,
    count: u64,
    pause: Duration,
) -> Result<(), PeerError> {
    let mut buf = payload(size);
    let pat = pattern(size);
    for i in 0..count + warmup_for(count, pause) {
        s.read_exact(&mut buf).map_err(ctx("read"))?;
        if !is_payload(&buf, &pat, i) {
            return Err(PeerError(format!("{what}: message {i} came wrong")));
        }
        s.write_all(&buf).map_err(ctx("write"))?;
    }
    Ok(())
}

/// The pinging side of a stream socket's latency run: writes a payload,
/// reads the echo and checks it whole.
fn stream_ping(
    mut s: impl Read + Write,
    what: &'static str,
    size: usize,
    count: u64,
    cap: Duration,
    pause: Duration,
) -> Result<(), PeerError> {
    let mut back = vec![0u8; size];
    let pat = pattern(size);
    ping_loop(size, count, cap, pause, |out, i| {
        s.write_all(out).map_err(ctx("write"))?;
        s.read_exact(&mut back).map_err(ctx("read"))?;
        if !is_payload(&back, &pat, i) {
            return Err(PeerError(format!("{what}: echo {i} came back wrong")));
        }
        Ok(())
    })
}

// ---------------------------------------------------------- plain TCP ---

fn tcp_accept(port: &str) -> Result<TcpStream, PeerError> {
    let l = TcpListener::bind(format!("127.0.0.1:{port}")).map_err(ctx("tcp bind"))?;
    let (s, _) = l.accept().map_err(ctx("tcp accept"))?;
    s.set_nodelay(true).map_err(ctx("tcp nodelay"))?;
    Ok(s)
}

fn tcp_connect(port: &str) -> Result<TcpStream, PeerError> {
    let start = Instant::now();
    loop {
        match TcpStream::connect(format!("127.0.0.1:{port}")) {
            Ok(s) => {
                s.set_nodelay(true).map_err(ctx("tcp nodelay"))?;
                return Ok(s);
            }
            Err(e) if start.elapsed() > CONNECT_LIMIT => {
                return Err(PeerError(format!("tcp connect 127.0.0.1:{port}: {e}")))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

/// Plain TCP throughput on 127.0.0.1:`port` (`TCP_NODELAY`), the same
/// contract as [`uds_thr`] (one write per payload, or 64 KiB batches),
/// like for like with lwmq's `tcp://` rows: the sender writes every byte
/// of every payload, the receiver reads and checks every byte.
pub fn tcp_thr(
    side: &str,
    port: &str,
    size: usize,
    count: u64,
    batch: bool,
) -> Result<(), PeerError> {
    if side == "recv" {
        return stream_recv(tcp_accept(port)?, "tcp", size, count, batch);
    }
    stream_send(tcp_connect(port)?, size, count, batch)
}

/// Plain TCP ping-pong latency on 127.0.0.1:`port` (`TCP_NODELAY`).
pub fn tcp_lat(
    side: &str,
    port: &str,
    size: usize,
    count: u64,
    cap: Duration,
    pause: Duration,
) -> Result<(), PeerError> {
    if side == "pong" {
        return stream_pong(tcp_accept(port)?, "tcp", size, count, pause);
    }
    stream_ping(tcp_connect(port)?, "tcp", size, count, cap, pause)
}

// ------------------------------------------------------------- ZeroMQ ---

/// ZeroMQ endpoint: `ipc://` on an abstract socket name (no file), or
/// with `tcp`, `tcp://127.0.0.1:<name>` (`name` is a port).
fn zmq_endpoint(name: &str, tcp: bool) -> String {
    if tcp {
        format!("tcp://127.0.0.1:{name}")
    } else {
        format!("ipc://@{name}")
    }
}

/// ZeroMQ PUSH/PULL throughput with the library's defaults (high-water
/// mark 1000, its own batching); the sender sets `ZMQ_IMMEDIATE` so that
/// nothing is queued before the connection exists. The receiver binds.
pub fn zmq_thr(
    side: &str,
    name: &str,
    size: usize,
    count: u64,
    tcp: bool,
) -> Result<(), PeerError> {
    let ctx_ = zmq::Context::new();
    let ep = zmq_endpoint(name, tcp);
    if side == "recv" {
        let s = ctx_.socket(zmq::PULL).map_err(ctx("zmq socket"))?;
        s.bind(&ep).map_err(ctx("zmq bind"))?;
        let mut buf = vec![0u8; size + 1];
        let pat = pattern(size);
        let mut ok = true;
        let mut start = None;
        // A stall ends the run with a clear error instead of a hang.
        s.set_rcvtimeo(CONNECT_LIMIT.as_millis() as i32)
            .map_err(ctx("zmq rcvtimeo"))?;
        for seq in 0..count {
            let n = match s.recv_into(&mut buf, 0) {
                Ok(n) => n,
                Err(zmq::Error::EAGAIN) => {
                    return Err(PeerError(format!(
                        "zmq recv: got {seq} of {count} messages, then nothing for {} s",
                        CONNECT_LIMIT.as_secs()
                    )))
                }
                Err(e) => return Err(PeerError(format!("zmq recv: {e}"))),
            };
            start.get_or_insert_with(Instant::now);
            ok &= n == size && is_payload(&buf[..size], &pat, seq);
        }
        let seconds = start.map_or(0.0, |s| s.elapsed().as_secs_f64());
        print_thr(side, size, count, seconds, Some(ok));
        return verify_done(ok, "zmq recv");
    }
    let s = ctx_.socket(zmq::PUSH).map_err(ctx("zmq socket"))?;
    // Queue only on a completed connection (send blocks until then).
    s.set_immediate(true).map_err(ctx("zmq immediate"))?;
    s.connect(&ep).map_err(ctx("zmq connect"))?;
    let mut buf = payload(size);
    let start = Instant::now();
    for seq in 0..count {
        stamp(&mut buf, seq);
        s.send(&buf[..], 0).map_err(ctx("zmq send"))?;
    }
    print_thr(side, size, count, start.elapsed().as_secs_f64(), None);
    // Dropping the socket and context lingers until everything is sent.
    Ok(())
}

/// ZeroMQ REQ/REP latency; the pong (REP) binds.
pub fn zmq_lat(
    side: &str,
    name: &str,
    size: usize,
    count: u64,
    cap: Duration,
    pause: Duration,
    tcp: bool,
) -> Result<(), PeerError> {
    let ctx_ = zmq::Context::new();
    let ep = zmq_endpoint(name, tcp);
    let total = count + warmup_for(count, pause);
    let mut back = vec![0u8; size + 1];
    let pat = pattern(size);
    if side == "pong" {
        let s = ctx_.socket(zmq::REP).map_err(ctx("zmq socket"))?;
        s.bind(&ep).map_err(ctx("zmq bind"))?;
        for i in 0..total {
            let n = s.recv_into(&mut back, 0).map_err(ctx("zmq recv"))?;
            if !is_payload(&back[..n.min(back.len())], &pat, i) {
                return Err(PeerError(format!("zmq: message {i} came wrong")));
            }
            s.send(&back[..n.min(size)], 0).map_err(ctx("zmq send"))?;
        }
        return Ok(());
    }
    let s = ctx_.socket(zmq::REQ).map_err(ctx("zmq socket"))?;
    s.connect(&ep).map_err(ctx("zmq connect"))?;
    ping_loop(size, count, cap, pause, |out, i| {
        s.send(out, 0).map_err(ctx("zmq send"))?;
        let n = s.recv_into(&mut back, 0).map_err(ctx("zmq recv"))?;
        if !is_payload(&back[..n.min(back.len())], &pat, i) {
            return Err(PeerError(format!("zmq: echo {i} came back wrong")));
        }
        Ok(())
    })
}

// ----------------------------------------------------------- iceoryx2 ---

mod iox {
    use super::*;
    use iceoryx2::port::backpressure_strategy::BackpressureStrategy;
    use iceoryx2::prelude::*;

    /// Subscriber buffer (samples in flight) for throughput.
    pub const THR_BUFFER: usize = 256;

    /// A node with the run's own file prefix, so that the orchestrator can
    /// find and remove exactly what this run created.
    pub fn node(prefix: &str) -> Result<Node<ipc::Service>, PeerError> {
        set_log_level(LogLevel::Error);
        let mut config = Config::default();
        config.global.prefix = FileName::new(prefix.as_bytes()).map_err(ctx("iceoryx2 prefix"))?;
        NodeBuilder::new()
            .config(&config)
            .signal_handling_mode(SignalHandlingMode::Disabled)
            .create::<ipc::Service>()
            .map_err(ctx("iceoryx2 node"))
    }

    type PubSub =
        iceoryx2::service::port_factory::publish_subscribe::PortFactory<ipc::Service, [u8], ()>;

    /// The service: one publisher, one subscriber, no history, a
    /// subscriber buffer of `buffer` samples, and a publisher that waits
    /// (instead of overwriting) when the buffer is full.
    pub fn service(
        node: &Node<ipc::Service>,
        name: &str,
        buffer: usize,
    ) -> Result<PubSub, PeerError> {
        let start = Instant::now();
        loop {
            let r = node
                .service_builder(&ServiceName::new(name).map_err(ctx("iceoryx2 service name"))?)
                .publish_subscribe::<[u8]>()
                .max_publishers(1)
                .max_subscribers(1)
                .history_size(0)
                .subscriber_max_buffer_size(buffer)
                .subscriber_max_borrowed_samples(2)
                .enable_safe_overflow(false)
                .open_or_create();
            match r {
                Ok(s) => return Ok(s),
                // Both sides race to create it: retry briefly.
                Err(e) if start.elapsed() < CONNECT_LIMIT => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(PeerError(format!("iceoryx2 service {name}: {e:?}"))),
            }
        }
    }

    type Event = iceoryx2::service::port_factory::event::PortFactory<ipc::Service>;

    /// The throughput run's start signal (`NAME.ready`): the receiver
    /// notifies once its side of the connection exists, because iceoryx2
    /// drops samples sent into a full buffer of a half-made connection.
    pub fn ready_event(node: &Node<ipc::Service>, name: &str) -> Result<Event, PeerError> {
        let name = format!("{name}.ready");
        let start = Instant::now();
        loop {
            let r = node
                .service_builder(&ServiceName::new(&name).map_err(ctx("iceoryx2 service name"))?)
                .event()
                .open_or_create();
            match r {
                Ok(s) => return Ok(s),
                Err(_) if start.elapsed() < CONNECT_LIMIT => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(PeerError(format!("iceoryx2 event {name}: {e:?}"))),
            }
        }
    }

    pub fn publisher(
        s: &PubSub,
        size: usize,
    ) -> Result<iceoryx2::port::publisher::Publisher<ipc::Service, [u8], ()>, PeerError> {
        s.publisher_builder()
            .initial_max_slice_len(size)
            .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
            .max_loaned_samples(1)
            .create()
            .map_err(|e| PeerError(format!("iceoryx2 publisher: {e:?}")))
    }

    pub fn subscriber(
        s: &PubSub,
        buffer: usize,
    ) -> Result<iceoryx2::port::subscriber::Subscriber<ipc::Service, [u8], ()>, PeerError> {
        s.subscriber_builder()
            .buffer_size(buffer)
            .create()
            .map_err(|e| PeerError(format!("iceoryx2 subscriber: {e:?}")))
    }

    /// Waits until the service has a subscriber.
    pub fn await_subscriber(s: &PubSub) -> Result<(), PeerError> {
        let start = Instant::now();
        while s.dynamic_config().number_of_subscribers() == 0 {
            if start.elapsed() > CONNECT_LIMIT {
                return Err(PeerError("iceoryx2: no subscriber came".into()));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }

    /// Sends one payload through the zero-copy loan API.
    pub fn send(
        p: &iceoryx2::port::publisher::Publisher<ipc::Service, [u8], ()>,
        data: &[u8],
    ) -> Result<(), PeerError> {
        let sample = p
            .loan_slice_uninit(data.len())
            .map_err(|e| PeerError(format!("iceoryx2 loan: {e:?}")))?;
        let sample = sample.write_from_slice(data);
        sample
            .send()
            .map_err(|e| PeerError(format!("iceoryx2 send: {e:?}")))?;
        Ok(())
    }
}

/// iceoryx2 publish-subscribe throughput (`ipc::Service`, zero-copy loans,
/// a 256-sample subscriber buffer, blocking backpressure). The receiver
/// busy-polls.
pub fn iox_thr(
    side: &str,
    name: &str,
    prefix: &str,
    size: usize,
    count: u64,
) -> Result<(), PeerError> {
    let node = iox::node(prefix)?;
    let svc = iox::service(&node, name, iox::THR_BUFFER)?;
    let ready = iox::ready_event(&node, name)?;
    if side == "recv" {
        let sub = iox::subscriber(&svc, iox::THR_BUFFER)?;
        let notifier = ready
            .notifier_builder()
            .create()
            .map_err(|e| PeerError(format!("iceoryx2 notifier: {e:?}")))?;
        // Connect to the publisher, then tell it (until a listener heard).
        let wait = Instant::now();
        loop {
            if svc.dynamic_config().number_of_publishers() > 0 {
                let _ = sub.update_connections();
                let heard = notifier
                    .notify()
                    .map_err(|e| PeerError(format!("iceoryx2 notify: {e:?}")))?;
                if heard > 0 {
                    break;
                }
            }
            if wait.elapsed() > CONNECT_LIMIT {
                return Err(PeerError("iceoryx2: no publisher came".into()));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let pat = pattern(size);
        let mut ok = true;
        let mut start = None;
        let mut seq = 0;
        let deadline = Instant::now() + CONNECT_LIMIT * 3;
        while seq < count {
            match sub
                .receive()
                .map_err(|e| PeerError(format!("iceoryx2 receive: {e:?}")))?
            {
                Some(sample) => {
                    start.get_or_insert_with(Instant::now);
                    // Borrowed in place: iceoryx2 lends its samples.
                    ok &= is_payload(sample.payload(), &pat, seq);
                    seq += 1;
                }
                None => {
                    if start.is_none() && Instant::now() > deadline {
                        return Err(PeerError("iceoryx2: nothing arrived".into()));
                    }
                    std::hint::spin_loop();
                }
            }
        }
        let seconds = start.map_or(0.0, |s| s.elapsed().as_secs_f64());
        print_thr(side, size, count, seconds, Some(ok));
        // Let the publisher see we are done before the service goes.
        drop(sub);
        return verify_done(ok, "iceoryx2 recv");
    }
    let listener = ready
        .listener_builder()
        .create()
        .map_err(|e| PeerError(format!("iceoryx2 listener: {e:?}")))?;
    let publ = iox::publisher(&svc, size)?;
    iox::await_subscriber(&svc)?;
    let _ = publ.update_connections();
    let heard = listener
        .timed_wait(|_| {}, CONNECT_LIMIT)
        .map_err(|e| PeerError(format!("iceoryx2 wait: {e:?}")))?;
    if heard == 0 {
        return Err(PeerError(
            "iceoryx2: the subscriber never said ready".into(),
        ));
    }
    let _ = publ.update_connections();
    let mut buf = payload(size);
    let start = Instant::now();
    for seq in 0..count {
        stamp(&mut buf, seq);
        iox::send(&publ, &buf)?;
    }
    print_thr(side, size, count, start.elapsed().as_secs_f64(), None);
    // Keep the publisher until the subscriber has everything (it leaves).
    let wait = Instant::now();
    while svc.dynamic_config().number_of_subscribers() > 0 && wait.elapsed() < CONNECT_LIMIT {
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

/// iceoryx2 latency: two services (`NAME.ping`, `NAME.pong`) with a
/// one-sample buffer each; both sides busy-poll `receive`.
pub fn iox_lat(
    side: &str,
    name: &str,
    prefix: &str,
    size: usize,
    count: u64,
    cap: Duration,
    pause: Duration,
) -> Result<(), PeerError> {
    let node = iox::node(prefix)?;
    let ping_svc = iox::service(&node, &format!("{name}.ping"), 1)?;
    let pong_svc = iox::service(&node, &format!("{name}.pong"), 1)?;
    let (out_svc, in_svc) = if side == "ping" {
        (&ping_svc, &pong_svc)
    } else {
        (&pong_svc, &ping_svc)
    };
    let sub = iox::subscriber(in_svc, 1)?;
    let publ = iox::publisher(out_svc, size)?;
    iox::await_subscriber(out_svc)?;
    let _ = publ.update_connections();
    let total = count + warmup_for(count, pause);
    let recv_timeout = CONNECT_LIMIT;
    let mut buf = payload(size);
    let pat = pattern(size);
    let receive = |expect: u64| -> Result<(), PeerError> {
        let t = Instant::now();
        let mut polls = 0u32;
        loop {
            if let Some(s) = sub
                .receive()
                .map_err(|e| PeerError(format!("iceoryx2 receive: {e:?}")))?
            {
                if !is_payload(s.payload(), &pat, expect) {
                    return Err(PeerError(format!("iceoryx2: message {expect} came wrong")));
                }
                return Ok(());
            }
            polls = polls.wrapping_add(1);
            if polls.is_multiple_of(4096) && t.elapsed() > recv_timeout {
                return Err(PeerError(format!("iceoryx2: message {expect} never came")));
            }
            std::hint::spin_loop();
        }
    };
    if side == "pong" {
        for i in 0..total {
            receive(i)?;
            stamp(&mut buf, i);
            iox::send(&publ, &buf)?;
        }
        // Let the last echo be read before the service goes.
        let wait = Instant::now();
        while out_svc.dynamic_config().number_of_subscribers() > 0 && wait.elapsed() < CONNECT_LIMIT
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        return Ok(());
    }
    ping_loop(size, count, cap, pause, |out, i| {
        iox::send(&publ, out)?;
        receive(i)
    })
}

// ------------------------------------------------------- async, tokio ---

/// A tokio current-thread runtime (I/O and timers): one thread polls the
/// tasks and, when none can go on, waits in the reactor's `epoll_wait`.
fn current_thread() -> Result<tokio::runtime::Runtime, PeerError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ctx("tokio runtime"))
}

/// Unix socket latency through `tokio::net::UnixStream`, each side on a
/// current-thread runtime: ping `write_all`s a payload and `read_exact`s
/// the echo, pong echoes; each payload checked whole on both sides, as
/// [`uds_lat`]. The connection is made with the blocking calls of
/// [`uds_lat`] (abstract name) and then handed to tokio: only the
/// messages go through the runtime.
pub fn uds_tokio_lat(
    side: &str,
    name: &str,
    size: usize,
    count: u64,
    cap: Duration,
    pause: Duration,
) -> Result<(), PeerError> {
    let pong = side == "pong";
    let s = if pong {
        uds_accept(name)?
    } else {
        uds_connect(name)?
    };
    s.set_nonblocking(true).map_err(ctx("uds nonblocking"))?;
    let rt = current_thread()?;
    rt.block_on(async move {
        let s = tokio::net::UnixStream::from_std(s).map_err(ctx("tokio UnixStream"))?;
        if pong {
            tokio_stream_pong(s, size, count, pause).await
        } else {
            tokio_stream_ping(s, size, count, cap, pause).await
        }
    })
}

/// [`stream_pong`] on tokio.
async fn tokio_stream_pong(
    mut s: tokio::net::UnixStream,
    size: usize,
    count: u64,
    pause: Duration,
) -> Result<(), PeerError> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut buf = payload(size);
    let pat = pattern(size);
    for i in 0..count + warmup_for(count, pause) {
        s.read_exact(&mut buf).await.map_err(ctx("read"))?;
        if !is_payload(&buf, &pat, i) {
            return Err(PeerError(format!("uds-tokio: message {i} came wrong")));
        }
        s.write_all(&buf).await.map_err(ctx("write"))?;
    }
    Ok(())
}

/// [`stream_ping`] on tokio.
async fn tokio_stream_ping(
    mut s: tokio::net::UnixStream,
    size: usize,
    count: u64,
    cap: Duration,
    pause: Duration,
) -> Result<(), PeerError> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut out = payload(size);
    let mut back = vec![0u8; size];
    let pat = pattern(size);
    let mut p = Pinger::new(count, cap, pause);
    while let Some(i) = p.next() {
        let t0 = Instant::now();
        stamp(&mut out, i);
        s.write_all(&out).await.map_err(ctx("write"))?;
        s.read_exact(&mut back).await.map_err(ctx("read"))?;
        if !is_payload(&back, &pat, i) {
            return Err(PeerError(format!("uds-tokio: echo {i} came back wrong")));
        }
        p.timed(t0.elapsed());
    }
    p.report(size)
}

/// lwmq messaging latency over `ipc://NAME` with async receiving: each
/// side opens its channel exactly as `lwmq lat` does (4 buffers of 64 KiB
/// each way, the default spin, one mono NORMAL send queue, pong the
/// server, ping the client), then runs the ping-pong on a tokio
/// current-thread runtime. Ping writes payload `i` whole into a buffer and
/// posts it with `MonoQueue::post_copy`, then awaits
/// `Channel::receive_async` for the echo and checks it whole; pong awaits
/// each message, checks it whole and posts it back as received. A post
/// never waits here (a ping-pong stays far below the queue's high-water
/// mark): its timeout is zero, which takes the same path as `lwmq lat`'s
/// `post_copy` with `Timeout::NEVER`. The only difference from the `lwmq`
/// row is the receive.
pub fn lwmq_async_lat(
    side: &str,
    name: &str,
    size: usize,
    count: u64,
    cap: Duration,
    pause: Duration,
) -> Result<(), PeerError> {
    use lwmq::{Priority, QueueOptions};
    use lwmq_cli::peer::{Dirs, RoleArg};
    let failed = |f: lwmq_cli::failure::Failure| PeerError(format!("lwmq async: {}", f.message));
    let pong = side == "pong";
    let buffer_size = (64 * 1024).max(size + 64);
    let uri = format!("ipc://{name}");
    let ep = lwmq_cli::peer::endpoint(&uri, buffer_size, 4, Dirs::Both, None).map_err(failed)?;
    let role = if pong {
        RoleArg::Server
    } else {
        RoleArg::Client
    };
    let (mut ch, q) =
        lwmq_cli::thr::open_msg_channel(ep, role, Some(QueueOptions::new(Priority::Normal)))
            .map_err(failed)?;
    let q = q.ok_or_else(|| PeerError("lwmq async: no send queue".into()))?;
    let view = lwmq_cli::thr::first_view(&ch).map_err(failed)?;
    lwmq_cli::waiting::wait_for_peer(view, Some(CONNECT_LIMIT)).map_err(failed)?;
    let rt = current_thread()?;
    let r = if pong {
        rt.block_on(async_pong(
            &mut ch,
            &q,
            size,
            count + warmup_for(count, pause),
        ))
    } else {
        rt.block_on(async_ping(&mut ch, &q, size, count, cap, pause))
    };
    // As `lwmq lat`: the pong lingers until its last echo was taken.
    let linger = Duration::from_secs(if pong { 10 } else { 1 });
    let _ = ch.close(linger);
    drop(rt);
    r
}

/// The async pong: awaits each message, checks it whole (one frame, its
/// length, both stamps, the pattern) and posts it back.
async fn async_pong(
    ch: &mut lwmq::Channel,
    q: &lwmq::MonoQueue,
    size: usize,
    total: u64,
) -> Result<(), PeerError> {
    let pat = pattern(size);
    for i in 0..total {
        let m = match ch.receive_async().await {
            Ok(m) => m,
            // The pinger went away: it stopped at its time cap (its
            // report is the run's result) or failed (and says why).
            Err(lwmq::ReceiveError::Disconnected { .. }) if i > 0 => return Ok(()),
            Err(e) => return Err(PeerError(format!("lwmq async receive: {e}"))),
        };
        let ok = m.frame_count() == 1 && m.frame(0).is_some_and(|f| is_payload(f.data(), &pat, i));
        if !ok {
            return Err(PeerError(format!("lwmq async: message {i} came wrong")));
        }
        q.try_post(m).map_err(ctx("lwmq async post"))?;
    }
    Ok(())
}

/// The async ping: as `lwmq lat`'s, with `receive_async` for the echo.
async fn async_ping(
    ch: &mut lwmq::Channel,
    q: &lwmq::MonoQueue,
    size: usize,
    count: u64,
    cap: Duration,
    pause: Duration,
) -> Result<(), PeerError> {
    let pat = pattern(size);
    let mut out = vec![0u8; size];
    let mut p = Pinger::new(count, cap, pause);
    while let Some(i) = p.next() {
        let t0 = Instant::now();
        fill_payload(&mut out, &pat, i);
        q.post_copy(&out, lwmq::Timeout::ZERO)
            .map_err(ctx("lwmq async post"))?;
        let r = ch
            .receive_async()
            .await
            .map_err(ctx("lwmq async receive"))?;
        let ok = r.frame_count() == 1 && r.frame(0).is_some_and(|f| is_payload(f.data(), &pat, i));
        let rt = t0.elapsed();
        if !ok {
            return Err(PeerError(format!("lwmq async: echo {i} came back wrong")));
        }
        p.timed(rt);
    }
    p.report(size)
}

// --------------------------------------------------------- lwmq idle ---

/// An lwmq messaging pair that connects and then sits idle in `receive`
/// for `seconds`: what an idle channel costs.
pub fn lwmq_idle(side: &str, uri: &str, seconds: f64) -> Result<(), PeerError> {
    use lwmq::{Priority, QueueOptions};
    use lwmq_cli::peer::{Dirs, RoleArg};
    let role = if side == "server" {
        RoleArg::Server
    } else {
        RoleArg::Client
    };
    let failed = |f: lwmq_cli::failure::Failure| PeerError(format!("lwmq idle: {}", f.message));
    let ep = lwmq_cli::peer::endpoint(uri, 64 * 1024, 4, Dirs::Both, None).map_err(failed)?;
    let (mut ch, _q) =
        lwmq_cli::thr::open_msg_channel(ep, role, Some(QueueOptions::new(Priority::Normal)))
            .map_err(failed)?;
    let end = Instant::now() + Duration::from_secs_f64(seconds);
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match ch.receive(left) {
            Ok(_) => return Err(PeerError("lwmq idle: a message arrived".into())),
            Err(lwmq::ReceiveError::Timeout) => {}
            Err(e) => return Err(PeerError(format!("lwmq idle: {e}"))),
        }
    }
    let _ = ch.close(Duration::from_secs(2));
    println!(
        "{}",
        serde_json::json!({"side": side, "idle_seconds": seconds})
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_verifier_handles_any_chunking() {
        let size = 20;
        let mut stream = Vec::new();
        for seq in 0..50u64 {
            let mut p = payload(size);
            stamp(&mut p, seq);
            stream.extend_from_slice(&p);
        }
        for chunk in [1, 3, 7, 8, 20, 33, 1000] {
            let mut v = StreamVerifier::new(size);
            for c in stream.chunks(chunk) {
                v.feed(c);
            }
            assert!(v.ok(), "chunk {chunk}");
            assert_eq!(v.complete(), 50);
        }
        stream[20 * 7 + 3] ^= 1;
        let mut v = StreamVerifier::new(size);
        v.feed(&stream);
        assert!(!v.ok());
    }
}
