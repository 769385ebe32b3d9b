//! Helpers shared by the in-process channel tests: two channels of one
//! process connected over a unique `ipc://` address.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use lwmq::channel::{Channel, Priority, ReceiveQueueKind, SendQueue, SendQueueKind};
use lwmq::message::{Frame, Message};
use lwmq::{Directions, Role, Timeout};

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

/// A channel with one send+receive transport and one send queue of `kind`.
pub fn endpoint(
    uri: &str,
    role: Role,
    buffer_size: usize,
    kind: SendQueueKind,
    rq: ReceiveQueueKind,
) -> (Channel, SendQueue) {
    let mut ch = Channel::new();
    ch.add_transport(uri, buffer_size, 8, 8, Directions::SendReceive)
        .unwrap();
    let q = ch.add_send_queue(kind, Priority::Normal).unwrap();
    ch.open(role, Some(rq)).unwrap();
    (ch, q)
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
        .message
}
