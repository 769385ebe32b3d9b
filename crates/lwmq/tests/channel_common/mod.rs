//! Helpers shared by the in-process channel tests: two channels of one
//! process connected over a unique `ipc://` address (or, for the tests run
//! for every scheme, a free `tcp://` port on loopback).
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use lwmq::message::{Frame, Message};
use lwmq::{
    Channel, ChannelBuilder, Endpoint, MonoQueue, QueueOptions, ReceiveQueue, Role, Timeout,
};

/// A generous liveness bound: no test assertion depends on timing, but
/// nothing may wait forever either.
pub const LIVENESS: Timeout = Timeout::after(Duration::from_secs(20));

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A fresh address for this process.
pub fn unique(name: &str) -> String {
    format!(
        "ipc://lwmq-test/{}/{}/{name}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A transport scheme the tests written once run for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Ipc,
    Tcp,
}

impl Scheme {
    /// A fresh descriptor of this scheme (`name` tags an `ipc://` one).
    pub fn uri(self, name: &str) -> String {
        match self {
            Scheme::Ipc => unique(name),
            Scheme::Tcp => format!("tcp://127.0.0.1:{}", free_tcp_port()),
        }
    }
}

/// A TCP port on 127.0.0.1 that is free now, below the kernel's ephemeral
/// range (so an outgoing connection of another test cannot take it before
/// a server binds it), different for each call in this process.
pub fn free_tcp_port() -> u16 {
    static N: AtomicUsize = AtomicUsize::new(0);
    let base = (std::process::id() as usize).wrapping_mul(7919);
    for _ in 0..1000 {
        let n = N.fetch_add(1, Ordering::Relaxed);
        let port = 10_000 + (base.wrapping_add(n.wrapping_mul(13)) % 10_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free tcp port in 10000..20000");
}

/// An endpoint with 8 + 8 buffers of `buffer_size`.
pub fn ep(uri: &str, buffer_size: usize) -> Endpoint {
    Endpoint::new(uri)
        .unwrap()
        .buffer_size(buffer_size)
        .send_buffers(8)
        .receive_buffers(8)
}

/// A builder with one send+receive transport and `rq` as receive queue.
pub fn builder(uri: &str, buffer_size: usize, rq: ReceiveQueue) -> ChannelBuilder {
    Channel::builder()
        .transport(ep(uri, buffer_size))
        .unwrap()
        .receive_queue(rq)
}

/// A channel with one send+receive transport and one mono queue with
/// `options`.
pub fn endpoint(
    uri: &str,
    role: Role,
    buffer_size: usize,
    options: QueueOptions,
    rq: ReceiveQueue,
) -> (Channel, MonoQueue) {
    let mut b = builder(uri, buffer_size, rq);
    let q = b.mono_queue(options).unwrap();
    (b.open(role).unwrap(), q)
}

/// A mono NORMAL send queue with the default mark.
pub const MONO: QueueOptions = QueueOptions::new(lwmq::Priority::Normal);
/// The mono-consumer receive queue.
pub const RQ: ReceiveQueue = ReceiveQueue::mono();

/// Two channels over one fresh `ipc://` address, server and client, each
/// with one transport of 8 + 8 buffers of `size` and one [`MONO`] queue,
/// receiving into [`RQ`]. Not waited for: see [`wait_connected`].
pub fn mono_pair(name: &str, size: usize) -> ((Channel, MonoQueue), (Channel, MonoQueue)) {
    mono_pair_at(&unique(name), size)
}

/// [`mono_pair`] over `uri` (any scheme).
pub fn mono_pair_at(uri: &str, size: usize) -> ((Channel, MonoQueue), (Channel, MonoQueue)) {
    let uri = uri.to_string();
    let a = endpoint(&uri, Role::Server, size, MONO, RQ);
    let b = endpoint(&uri, Role::Client, size, MONO, RQ);
    (a, b)
}

/// A one-frame message holding `n` as 8 little-endian bytes.
pub fn numbered(n: u64) -> Message {
    let mut m = Message::new();
    m.push(Frame::copy(&n.to_le_bytes()));
    m
}

/// The number in a message made by [`numbered`] (its first 8 bytes).
pub fn number(m: &Message) -> u64 {
    let f = m.frame(0).unwrap();
    u64::from_le_bytes(f.data()[..8].try_into().unwrap())
}

/// Receives one message within the liveness bound.
pub fn recv(ch: &mut Channel) -> Message {
    ch.receive(LIVENESS)
        .unwrap_or_else(|e| panic!("no message: {e}"))
}

/// Waits until every transport of `ch` is connected (liveness bound).
pub fn wait_connected(ch: &Channel) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !ch
        .transports()
        .all(|t| t.state() == lwmq::ConnectionState::Connected)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "not connected within 20 s"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}
