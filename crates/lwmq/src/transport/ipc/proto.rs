//! The `ipc://` handshake and the shared section's layout.
//!
//! Handshake, over the connected `SOCK_SEQPACKET` socket (one message each):
//!
//! ```text
//! client -> server  HELLO   what the client is (kind, directions, buffers, address)
//! server -> client  ACCEPT  section size and ring capacities, memfd attached
//!                or REFUSE  reason code and text
//! client -> server  READY   the client mapped and checked the section
//! ```
//!
//! Statistics (docs/ipc-protocol.md, "Statistics request"): instead of a
//! HELLO, a process may send STAT, on a server's rendezvous or on a
//! process's stat socket (`lwmq-stat/<pid>`, see `transport/stat.rs`); it
//! is answered with one STATS message (a snapshot of every transport of
//! the answering process, at most [`MAX_STAT_REPLY`] bytes) or a REFUSE,
//! and the connection ends there.
//!
//! ```text
//! querier -> process  STAT    (the 8-byte header alone)
//! process -> querier  STATS   pid, then one record per transport
//!                  or REFUSE  (another user no policy admits; too many queries)
//! ```
//!
//! Every message starts with the same 8 bytes: `"LWMQ"`, the protocol
//! version (u16 LE) and the message type (u8), so that a peer of another
//! version can always read a REFUSE. All integers are little-endian. A
//! message is at most [`MAX_MESSAGE`] bytes. Decoding checks every length
//! and value and returns a [`ProtoError`]; it never panics.

use crate::ring::{RingLayout, CTRL_SIZE};
use crate::transport::stat::{ProcessSnapshot, TransportSnapshot};
use crate::transport::{
    ChannelKind, ConnectionState, Directions, PeerInfo, Refusal, RefusalReason, TransportStats,
};

/// The protocol version this build speaks. 2: slots may be published as
/// discarded (`ring::FLAG_DISCARD`), and slot flags outside
/// `ring::KNOWN_FLAGS` are a violation.
pub const VERSION: u16 = 2;
/// Largest handshake message.
pub const MAX_MESSAGE: usize = 1024;
const MAGIC: &[u8; 4] = b"LWMQ";
const T_HELLO: u8 = 1;
const T_ACCEPT: u8 = 2;
const T_REFUSE: u8 = 3;
const T_READY: u8 = 4;
const T_STAT: u8 = 5;
const T_STATS: u8 = 6;
/// Largest STATS message (a SEQPACKET message: it arrives whole or not at
/// all; the socket's send buffer, 208 KiB by default, holds it).
pub const MAX_STAT_REPLY: usize = 64 * 1024;
/// Most transport records in one STATS message; more are left out and the
/// message says so (`truncated`).
pub const MAX_STAT_TRANSPORTS: usize = 256;
/// Longest refusal detail carried in a STATS record.
pub const MAX_STAT_DETAIL: usize = 200;
/// Longest descriptor carried in a STATS record.
pub const MAX_STAT_DESCRIPTOR: usize = 512;
/// Longest refusal text carried.
pub const MAX_REFUSAL_TEXT: usize = 512;

/// A malformed handshake message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    /// Fewer bytes than the message type needs.
    #[error("handshake message truncated ({0} bytes)")]
    Truncated(usize),
    /// Not an lwmq handshake.
    #[error("handshake message has a bad magic (not an lwmq peer)")]
    BadMagic,
    /// Another protocol version.
    #[error("peer speaks handshake protocol version {0}, this build speaks {VERSION}")]
    Version(u16),
    /// A message type that is not expected here.
    #[error("unexpected handshake message type {0}")]
    UnexpectedType(u8),
    /// A field holds a value outside its range.
    #[error("handshake field {0} is out of range")]
    BadField(&'static str),
    /// Bytes after the end of the message.
    #[error("handshake message has {0} trailing bytes")]
    Trailing(usize),
}

/// The client's HELLO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// Raw or messaging.
    pub kind: ChannelKind,
    /// The client's directions.
    pub directions: Directions,
    /// The client's buffer size.
    pub buffer_size: u64,
    /// The client's `MaxPendingSendBuffers`.
    pub send_buffers: u32,
    /// The client's `MaxPendingReceiveBuffers`.
    pub receive_buffers: u32,
    /// The client's pid (informational).
    pub pid: u32,
    /// Port, 0 for none.
    pub port: u16,
    /// The full address (UTF-8), to detect rendezvous-name collisions.
    pub address: String,
    /// Optional features the client supports ([`FEATURE_MEMBARRIER`]).
    pub features: u16,
}

/// Feature bit: this process registered for `membarrier` global expedited
/// barriers, so the rings may use asymmetric fences.
pub const FEATURE_MEMBARRIER: u16 = 1;

/// Feature bit: this side passes a readiness eventfd (HELLO: the client's,
/// attached to the HELLO; ACCEPT: the server's, attached after the memfd)
/// and writes the peer's after a publication while the peer's async flag
/// (`c_async`/`p_async` in the ring's control block) is set. Only when
/// both sides offer it (the server answers with the intersection) is it
/// used; otherwise async waiters poll.
pub const FEATURE_READINESS: u16 = 2;

/// The server's ACCEPT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accept {
    /// Section size in bytes.
    pub section_len: u64,
    /// Slots of the client-to-server ring.
    pub c2s_capacity: u32,
    /// Slots of the server-to-client ring.
    pub s2c_capacity: u32,
    /// Buffer size (equal on both sides).
    pub buffer_size: u64,
    /// Features both sides use (a subset of the client's).
    pub features: u16,
}

/// A handshake message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Client introduces itself.
    Hello(Hello),
    /// Server accepts (a memfd travels with it).
    Accept(Accept),
    /// Either side refuses.
    Refuse {
        /// The rule broken.
        reason: RefusalReason,
        /// Detail text. As decoded, it is the peer's text made safe to log:
        /// control and invisible formatting characters escaped as `\u{..}`,
        /// at most [`MAX_REFUSAL_TEXT`] bytes.
        text: String,
    },
    /// Client is ready.
    Ready,
    /// A statistics query (instead of a HELLO).
    Stat,
    /// The answer to [`Message::Stat`].
    Stats(ProcessSnapshot),
}

fn header(out: &mut Vec<u8>, t: u8) {
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.push(t);
    out.push(0);
}

fn kind_code(k: ChannelKind) -> u8 {
    match k {
        ChannelKind::Raw => 1,
        ChannelKind::Messaging => 2,
    }
}

fn dir_bits(d: Directions) -> u8 {
    u8::from(d.sends()) | (u8::from(d.receives()) << 1)
}

impl Message {
    /// Encodes the message.
    pub fn encode(&self) -> Vec<u8> {
        let mut o = Vec::with_capacity(64);
        match self {
            Message::Hello(h) => {
                header(&mut o, T_HELLO);
                o.push(kind_code(h.kind));
                o.push(dir_bits(h.directions));
                o.extend_from_slice(&h.features.to_le_bytes());
                o.extend_from_slice(&h.buffer_size.to_le_bytes());
                o.extend_from_slice(&h.send_buffers.to_le_bytes());
                o.extend_from_slice(&h.receive_buffers.to_le_bytes());
                o.extend_from_slice(&h.pid.to_le_bytes());
                o.extend_from_slice(&h.port.to_le_bytes());
                let a = h.address.as_bytes();
                let n = a.len().min(MAX_MESSAGE - 36);
                o.extend_from_slice(&(n as u16).to_le_bytes());
                o.extend_from_slice(&a[..n]);
            }
            Message::Accept(a) => {
                header(&mut o, T_ACCEPT);
                o.extend_from_slice(&a.section_len.to_le_bytes());
                o.extend_from_slice(&a.c2s_capacity.to_le_bytes());
                o.extend_from_slice(&a.s2c_capacity.to_le_bytes());
                o.extend_from_slice(&a.buffer_size.to_le_bytes());
                o.extend_from_slice(&a.features.to_le_bytes());
            }
            Message::Refuse { reason, text } => {
                header(&mut o, T_REFUSE);
                o.extend_from_slice(&reason.code().to_le_bytes());
                let mut n = text.len().min(MAX_REFUSAL_TEXT);
                while !text.is_char_boundary(n) {
                    n -= 1;
                }
                o.extend_from_slice(&(n as u16).to_le_bytes());
                o.extend_from_slice(&text.as_bytes()[..n]);
            }
            Message::Ready => header(&mut o, T_READY),
            Message::Stat => header(&mut o, T_STAT),
            Message::Stats(p) => encode_stats(&mut o, p),
        }
        o
    }

    /// Decodes one message. A version other than ours is reported as
    /// [`ProtoError::Version`], except that a REFUSE of any version is read.
    pub fn decode(b: &[u8]) -> Result<Message, ProtoError> {
        let mut r = Reader { b, pos: 0 };
        if r.take(4)? != MAGIC {
            return Err(ProtoError::BadMagic);
        }
        let version = r.u16()?;
        let t = r.u8()?;
        r.u8()?;
        if t == T_REFUSE {
            let reason = RefusalReason::from_code(r.u16()?);
            let n = r.u16()? as usize;
            if n > MAX_REFUSAL_TEXT {
                return Err(ProtoError::BadField("refusal text length"));
            }
            // Peer text: made one printable line before anyone logs or
            // stores it.
            let text = super::logging::escape_peer_text(
                &String::from_utf8_lossy(r.take(n)?),
                MAX_REFUSAL_TEXT,
            );
            r.end()?;
            return Ok(Message::Refuse { reason, text });
        }
        if version != VERSION {
            return Err(ProtoError::Version(version));
        }
        let m = match t {
            T_HELLO => {
                let kind = match r.u8()? {
                    1 => ChannelKind::Raw,
                    2 => ChannelKind::Messaging,
                    _ => return Err(ProtoError::BadField("channel kind")),
                };
                let d = r.u8()?;
                let directions = Directions::from_flags(d & 1 != 0, d & 2 != 0)
                    .filter(|_| d & !3 == 0)
                    .ok_or(ProtoError::BadField("directions"))?;
                let features = r.u16()?;
                let buffer_size = r.u64()?;
                let send_buffers = r.u32()?;
                let receive_buffers = r.u32()?;
                let pid = r.u32()?;
                let port = r.u16()?;
                let n = r.u16()? as usize;
                let address = std::str::from_utf8(r.take(n)?)
                    .map_err(|_| ProtoError::BadField("address (not UTF-8)"))?
                    .to_owned();
                Message::Hello(Hello {
                    kind,
                    directions,
                    buffer_size,
                    send_buffers,
                    receive_buffers,
                    pid,
                    port,
                    address,
                    features,
                })
            }
            T_ACCEPT => Message::Accept(Accept {
                section_len: r.u64()?,
                c2s_capacity: r.u32()?,
                s2c_capacity: r.u32()?,
                buffer_size: r.u64()?,
                features: r.u16()?,
            }),
            T_READY => Message::Ready,
            T_STAT => Message::Stat,
            T_STATS => Message::Stats(decode_stats(&mut r)?),
            other => return Err(ProtoError::UnexpectedType(other)),
        };
        r.end()?;
        Ok(m)
    }
}

fn state_code(s: &ConnectionState) -> u8 {
    match s {
        ConnectionState::Idle => 0,
        ConnectionState::Listening => 1,
        ConnectionState::Connecting => 2,
        ConnectionState::Connected => 3,
        ConnectionState::Refused(_) => 4,
        ConnectionState::Closed => 5,
    }
}

/// `text` cut to at most `max` bytes on a character boundary.
fn cut(text: &str, max: usize) -> &[u8] {
    let mut n = text.len().min(max);
    while !text.is_char_boundary(n) {
        n -= 1;
    }
    &text.as_bytes()[..n]
}

fn put_text(o: &mut Vec<u8>, text: &str, max: usize) {
    let b = cut(text, max);
    o.extend_from_slice(&(b.len() as u16).to_le_bytes());
    o.extend_from_slice(b);
}

/// One STATS record: descriptor, state (and refusal), peer, settings,
/// generation, counters, depth.
fn encode_record(o: &mut Vec<u8>, t: &TransportSnapshot) {
    put_text(o, &t.descriptor, MAX_STAT_DESCRIPTOR);
    o.push(state_code(&t.state));
    if let ConnectionState::Refused(r) = &t.state {
        o.extend_from_slice(&r.reason.code().to_le_bytes());
        o.push(u8::from(r.by_peer));
        put_text(o, &r.detail, MAX_STAT_DETAIL);
    }
    // Peer: 0 none; 1 local (pid or 0, uid, gid); 2 network (family 4
    // or 6, the address's bytes, port).
    match t.peer {
        Some(PeerInfo { addr: Some(a), .. }) => {
            o.push(2);
            match a.ip() {
                std::net::IpAddr::V4(ip) => {
                    o.push(4);
                    o.extend_from_slice(&ip.octets());
                }
                std::net::IpAddr::V6(ip) => {
                    o.push(6);
                    o.extend_from_slice(&ip.octets());
                }
            }
            o.extend_from_slice(&a.port().to_le_bytes());
        }
        Some(p) => {
            o.push(1);
            o.extend_from_slice(&p.pid.unwrap_or(0).to_le_bytes());
            o.extend_from_slice(&p.uid.unwrap_or(u32::MAX).to_le_bytes());
            o.extend_from_slice(&p.gid.unwrap_or(u32::MAX).to_le_bytes());
        }
        None => o.push(0),
    }
    o.extend_from_slice(&t.buffer_size.to_le_bytes());
    o.extend_from_slice(&t.send_buffers.to_le_bytes());
    o.extend_from_slice(&t.receive_buffers.to_le_bytes());
    o.extend_from_slice(&t.generation.to_le_bytes());
    let s = &t.stats;
    for v in [
        s.buffers_sent,
        s.bytes_sent,
        s.buffers_received,
        s.bytes_received,
        s.connections,
        s.reconnections,
        s.disconnections,
        s.refusals,
        s.violations,
        s.connect_attempts,
        t.staged,
        t.send_queued,
        t.receive_queued,
        t.discards,
    ] {
        o.extend_from_slice(&v.to_le_bytes());
    }
}

/// STATS: header, pid (u32), flags (u8: 1 = records were left out),
/// record count (u16), the records. Records that would take the message
/// past [`MAX_STAT_REPLY`] (or past [`MAX_STAT_TRANSPORTS`]) are left out.
fn encode_stats(o: &mut Vec<u8>, p: &ProcessSnapshot) {
    header(o, T_STATS);
    o.extend_from_slice(&p.pid.to_le_bytes());
    let flags_at = o.len();
    o.push(u8::from(p.truncated));
    let count_at = o.len();
    o.extend_from_slice(&0u16.to_le_bytes());
    let mut n = 0u16;
    let mut rec = Vec::with_capacity(256);
    for t in &p.transports {
        rec.clear();
        encode_record(&mut rec, t);
        if usize::from(n) >= MAX_STAT_TRANSPORTS || o.len() + rec.len() > MAX_STAT_REPLY {
            o[flags_at] = 1;
            break;
        }
        o.extend_from_slice(&rec);
        n += 1;
    }
    o[count_at..count_at + 2].copy_from_slice(&n.to_le_bytes());
}

/// Peer text from a STATS message: length-checked, then made one
/// printable line (it is shown on a terminal).
fn take_text(r: &mut Reader<'_>, max: usize, field: &'static str) -> Result<String, ProtoError> {
    let n = r.u16()? as usize;
    if n > max {
        return Err(ProtoError::BadField(field));
    }
    Ok(super::logging::escape_peer_text(
        &String::from_utf8_lossy(r.take(n)?),
        max,
    ))
}

fn decode_record(r: &mut Reader<'_>) -> Result<TransportSnapshot, ProtoError> {
    let descriptor = take_text(r, MAX_STAT_DESCRIPTOR, "stat descriptor length")?;
    let state = match r.u8()? {
        0 => ConnectionState::Idle,
        1 => ConnectionState::Listening,
        2 => ConnectionState::Connecting,
        3 => ConnectionState::Connected,
        4 => {
            let reason = RefusalReason::from_code(r.u16()?);
            let by_peer = match r.u8()? {
                0 => false,
                1 => true,
                _ => return Err(ProtoError::BadField("stat refusal side")),
            };
            let detail = take_text(r, MAX_STAT_DETAIL, "stat refusal detail length")?;
            ConnectionState::Refused(Refusal {
                reason,
                detail,
                by_peer,
            })
        }
        5 => ConnectionState::Closed,
        _ => return Err(ProtoError::BadField("stat state")),
    };
    let peer = match r.u8()? {
        0 => None,
        1 => {
            let pid = r.u32()?;
            let uid = r.u32()?;
            let gid = r.u32()?;
            Some(PeerInfo::local((pid != 0).then_some(pid), uid, gid))
        }
        2 => {
            let ip = match r.u8()? {
                4 => {
                    let b: [u8; 4] = r.take(4)?.try_into().expect("4 bytes");
                    std::net::IpAddr::from(b)
                }
                6 => {
                    let b: [u8; 16] = r.take(16)?.try_into().expect("16 bytes");
                    std::net::IpAddr::from(b)
                }
                _ => return Err(ProtoError::BadField("stat peer address family")),
            };
            let port = r.u16()?;
            Some(PeerInfo::network(std::net::SocketAddr::new(ip, port)))
        }
        _ => return Err(ProtoError::BadField("stat peer flag")),
    };
    let buffer_size = r.u64()?;
    let send_buffers = r.u32()?;
    let receive_buffers = r.u32()?;
    let generation = r.u64()?;
    let mut v = [0u64; 14];
    for x in &mut v {
        *x = r.u64()?;
    }
    let [buffers_sent, bytes_sent, buffers_received, bytes_received, connections, reconnections, disconnections, refusals, violations, connect_attempts, staged, send_queued, receive_queued, discards] =
        v;
    Ok(TransportSnapshot {
        descriptor,
        state,
        peer,
        buffer_size,
        send_buffers,
        receive_buffers,
        generation,
        stats: TransportStats {
            buffers_sent,
            bytes_sent,
            buffers_received,
            bytes_received,
            connections,
            reconnections,
            disconnections,
            refusals,
            violations,
            connect_attempts,
        },
        staged,
        send_queued,
        receive_queued,
        discards,
    })
}

fn decode_stats(r: &mut Reader<'_>) -> Result<ProcessSnapshot, ProtoError> {
    if r.b.len() > MAX_STAT_REPLY {
        return Err(ProtoError::BadField("stat message length"));
    }
    let pid = r.u32()?;
    let truncated = match r.u8()? {
        0 => false,
        1 => true,
        _ => return Err(ProtoError::BadField("stat flags")),
    };
    let n = r.u16()? as usize;
    if n > MAX_STAT_TRANSPORTS {
        return Err(ProtoError::BadField("stat record count"));
    }
    let mut transports = Vec::with_capacity(n);
    for _ in 0..n {
        transports.push(decode_record(r)?);
    }
    Ok(ProcessSnapshot {
        pid,
        transports,
        truncated,
    })
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtoError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.b.len())
            .ok_or(ProtoError::Truncated(self.b.len()))?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn arr<const N: usize>(&mut self) -> Result<[u8; N], ProtoError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, ProtoError> {
        Ok(self.arr::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, ProtoError> {
        Ok(u16::from_le_bytes(self.arr()?))
    }
    fn u32(&mut self) -> Result<u32, ProtoError> {
        Ok(u32::from_le_bytes(self.arr()?))
    }
    fn u64(&mut self) -> Result<u64, ProtoError> {
        Ok(u64::from_le_bytes(self.arr()?))
    }
    fn end(&self) -> Result<(), ProtoError> {
        match self.b.len() - self.pos {
            0 => Ok(()),
            n => Err(ProtoError::Trailing(n)),
        }
    }
}

/// Largest section the server creates (address space, not memory: pages
/// are only allocated when touched).
pub const MAX_SECTION: u64 = 64 << 30;
const PAGE: usize = 4096;
/// Section header magic.
pub const SECTION_MAGIC: u64 = u64::from_le_bytes(*b"LWMQSEC1");

/// Where everything lives in a section. Both sides compute it from the
/// ACCEPT parameters; nothing of it is read from shared memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SectionLayout {
    /// Total bytes.
    pub len: usize,
    /// The client-to-server ring.
    pub c2s: RingLayout,
    /// The server-to-client ring.
    pub s2c: RingLayout,
}

fn page_up(x: usize) -> Option<usize> {
    Some(x.checked_add(PAGE - 1)? & !(PAGE - 1))
}

impl SectionLayout {
    /// Computes the layout; `None` if it would exceed [`MAX_SECTION`] or
    /// overflow.
    pub fn compute(buffer_size: u64, c2s_capacity: u32, s2c_capacity: u32) -> Option<Self> {
        let buffer_size = usize::try_from(buffer_size).ok()?;
        let c2s_ctrl = PAGE;
        let s2c_ctrl = PAGE + CTRL_SIZE;
        let c2s_slots = 2 * PAGE;
        let c2s_bytes = RingLayout::slot_bytes(c2s_capacity, buffer_size)?;
        let s2c_slots = page_up(c2s_slots.checked_add(c2s_bytes)?)?;
        let s2c_bytes = RingLayout::slot_bytes(s2c_capacity, buffer_size)?;
        let len = page_up(s2c_slots.checked_add(s2c_bytes)?)?;
        if len as u64 > MAX_SECTION {
            return None;
        }
        Some(Self {
            len,
            c2s: RingLayout {
                ctrl: c2s_ctrl,
                slots: c2s_slots,
                capacity: c2s_capacity,
                buffer_size,
            },
            s2c: RingLayout {
                ctrl: s2c_ctrl,
                slots: s2c_slots,
                capacity: s2c_capacity,
                buffer_size,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello() -> Hello {
        Hello {
            kind: ChannelKind::Raw,
            directions: Directions::SendReceive,
            buffer_size: 65536,
            send_buffers: 8,
            receive_buffers: 4,
            pid: 42,
            port: 5555,
            address: "co/ü/\u{1F600}".into(),
            features: FEATURE_MEMBARRIER,
        }
    }

    #[test]
    fn round_trips() {
        let msgs = [
            Message::Hello(hello()),
            Message::Accept(Accept {
                section_len: 1 << 20,
                c2s_capacity: 12,
                s2c_capacity: 3,
                buffer_size: 65536,
                features: 1,
            }),
            Message::Refuse {
                reason: RefusalReason::BufferSize,
                text: "ours 1, yours 2".into(),
            },
            Message::Ready,
        ];
        for m in msgs {
            assert_eq!(Message::decode(&m.encode()).unwrap(), m);
        }
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        let good = Message::Hello(hello()).encode();
        for n in 0..good.len() {
            assert!(Message::decode(&good[..n]).is_err());
        }
        let mut v = good.clone();
        v[4] = 9;
        assert_eq!(Message::decode(&v), Err(ProtoError::Version(9)));
        let mut v = good.clone();
        v[0] = b'X';
        assert_eq!(Message::decode(&v), Err(ProtoError::BadMagic));
        let mut v = good.clone();
        v.push(0);
        assert_eq!(Message::decode(&v), Err(ProtoError::Trailing(1)));
        let mut v = good.clone();
        v[9] = 0xF0;
        assert_eq!(Message::decode(&v), Err(ProtoError::BadField("directions")));
        // A refusal from a future version is still readable.
        let mut r = Message::Refuse {
            reason: RefusalReason::Busy,
            text: "x".into(),
        }
        .encode();
        r[4] = 7;
        assert!(matches!(Message::decode(&r), Ok(Message::Refuse { .. })));
        // Pseudo-random bytes never panic.
        let mut x = 0x1234_5678_u64;
        for len in 0..300 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let _ = Message::decode(&bytes);
            let mut with_magic = good[..8].to_vec();
            with_magic.extend_from_slice(&bytes);
            let _ = Message::decode(&with_magic);
        }
    }

    /// A peer's REFUSE text reaches the caller escaped: no newline to
    /// forge a log line, no terminal escape sequence.
    #[test]
    fn refusal_text_is_escaped_on_decode() {
        let evil = Message::Refuse {
            reason: RefusalReason::Busy,
            text: "busy\n[WARN] lwmq: fake line \u{1b}[2J".into(),
        };
        let Ok(Message::Refuse { text, .. }) = Message::decode(&evil.encode()) else {
            panic!("not a refusal");
        };
        assert_eq!(text, "busy\\u{a}[WARN] lwmq: fake line \\u{1b}[2J");
        // 512 control bytes (the wire limit) escape to five times that:
        // cut back to the limit.
        let mut raw = Message::Refuse {
            reason: RefusalReason::Busy,
            text: String::new(),
        }
        .encode();
        raw.truncate(10);
        raw.extend_from_slice(&512u16.to_le_bytes());
        raw.extend_from_slice(&[0x07; 512]);
        let Ok(Message::Refuse { text, .. }) = Message::decode(&raw) else {
            panic!("not a refusal");
        };
        assert!(text.len() <= MAX_REFUSAL_TEXT, "{}", text.len());
        assert!(text.ends_with("[truncated]"), "{text}");
        // Sent on and decoded again, it comes back unchanged (the
        // handshake_decode fuzz target relies on this).
        let again = Message::Refuse {
            reason: RefusalReason::Busy,
            text: text.clone(),
        };
        assert_eq!(Message::decode(&again.encode()), Ok(again));
    }

    #[test]
    fn layout_fits_and_caps() {
        let l = SectionLayout::compute(65536, 12, 3).unwrap();
        assert!(l.c2s.fits(l.len) && l.s2c.fits(l.len));
        assert!(l.s2c.slots >= l.c2s.slots + 12 * (65536 + 64));
        assert_eq!(l.len % 4096, 0);
        assert!(SectionLayout::compute(1 << 30, 4096, 4096).is_none());
        assert!(SectionLayout::compute(u64::MAX, 1, 1).is_none());
        let z = SectionLayout::compute(64, 0, 5).unwrap();
        assert!(z.c2s.fits(z.len) && z.s2c.fits(z.len));
    }
}
