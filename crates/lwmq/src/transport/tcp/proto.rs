//! The `tcp://` wire protocol: greeting, frame header, handshake messages,
//! and the frame parser of the data phase. Pure code (no socket), so that
//! the fuzz target `tcp_frames` can drive every byte of it.
//!
//! # Stream layout
//!
//! ```text
//! each side, first:  GREETING  "LWMQ" 'T' version(u8) mechanism(u8) 0
//! then frames:       HEADER    type(u8) flags(u8) credit(u16) length(u32)
//!                    BODY      `length` bytes
//! ```
//!
//! All integers are little-endian. The greeting fixes the framing and the
//! security mechanism before anything else is read; mechanism 0 is NULL
//! (plain TCP, no authentication, no encryption). A later mechanism would
//! run its own handshake right after the greetings and then carry the same
//! frames inside its records, so nothing below the greeting changes (see
//! `docs/tcp-protocol.md`).
//!
//! # Handshake (one frame each, after the greetings)
//!
//! ```text
//! client -> server  HELLO   kind, directions, features, buffer size, counts, heartbeat
//! server -> client  HELLO   the same, for the server          (or REFUSE)
//! client -> server  ACCEPT  features both use; header credit = first grant (or REFUSE)
//! server -> client  CREDIT  the server's first grant
//! ```
//!
//! Both sides check the other's HELLO with the same rules
//! ([`check_peer_hello`]). A REFUSE carries a reason code and a text; its
//! layout is fixed for every version, so a peer of another version can
//! always read why it was refused.
//!
//! # Data phase frames
//!
//! | type | body | meaning |
//! |---|---|---|
//! | 1 DATA | payload, `length ≤ buffer size` | one buffer; flag bit 0 = erase after use |
//! | 2 CREDIT | none | header `credit` = buffers the sender of the frame freed |
//! | 3 HEARTBEAT | none | "still here" when nothing else was sent |
//! | 4 FLUSH | token u32 | "tell me when you have disposed of everything before this" |
//! | 5 FLUSHED | token u32 | answer to FLUSH |
//!
//! The header `credit` field is honoured on every data-phase frame. A frame
//! of any other type, a flag bit that is not defined, a length that breaks
//! its type's rule, or a handshake frame in the data phase is a
//! [`FrameError`]: the connection is dropped with that reason.
//!
//! # Parser
//!
//! [`FrameParser`] consumes the stream in pieces of any size and hands
//! each event to a [`FrameSink`]. A DATA payload goes into a buffer the
//! sink provides (a free receive buffer; the sink refuses if the peer has
//! no credit for it), so that a large payload can be read from the socket
//! straight into it ([`FrameParser::direct_target`]). Every length is
//! checked against the negotiated buffer size *before* any byte of the
//! body is accepted.

use std::fmt;

use crate::transport::{ChannelKind, Directions, RefusalReason};

/// Protocol version carried in the greeting.
pub const VERSION: u8 = 1;
/// Bytes of the greeting.
pub const GREETING_LEN: usize = 8;
/// Bytes of a frame header.
pub const HEADER_LEN: usize = 8;
/// Largest body of a handshake frame.
pub const MAX_HANDSHAKE_BODY: usize = 1024;
/// Longest refusal text carried.
pub const MAX_REFUSAL_TEXT: usize = 512;
/// Security mechanism NULL: plain TCP (the only one this version has).
pub const MECHANISM_NULL: u8 = 0;
/// DATA flag: the receiver zeroes the buffer when it is disposed of.
pub const FLAG_ERASE: u8 = 1;
/// Bytes of a HELLO body.
pub const HELLO_LEN: usize = 28;

const MAGIC: &[u8; 5] = b"LWMQT";

/// Frame types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameType {
    /// A buffer of payload.
    Data = 1,
    /// Credits only.
    Credit = 2,
    /// Liveness.
    Heartbeat = 3,
    /// Flush request (token).
    Flush = 4,
    /// Flush answer (token).
    Flushed = 5,
    /// Handshake: who I am.
    Hello = 16,
    /// Handshake: the client accepts the server's HELLO.
    Accept = 17,
    /// Handshake (or later): refusal with reason and text.
    Refuse = 18,
}

impl FrameType {
    fn from_u8(b: u8) -> Option<Self> {
        Some(match b {
            1 => Self::Data,
            2 => Self::Credit,
            3 => Self::Heartbeat,
            4 => Self::Flush,
            5 => Self::Flushed,
            16 => Self::Hello,
            17 => Self::Accept,
            18 => Self::Refuse,
            _ => return None,
        })
    }
}

/// A malformed greeting or handshake frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    /// The greeting is not lwmq's `tcp://` greeting.
    #[error("the peer's first bytes are not an lwmq tcp greeting (not an lwmq tcp:// peer)")]
    BadMagic,
    /// Another protocol version.
    #[error("peer speaks tcp protocol version {0}, this build speaks {VERSION}")]
    Version(u8),
    /// A security mechanism this build does not have.
    #[error("peer asks for security mechanism {0}; this build has only 0 (NULL, plain tcp)")]
    Mechanism(u8),
    /// A frame type that is not expected here.
    #[error("unexpected frame type {0} during the handshake")]
    UnexpectedType(u8),
    /// A field holds a value outside its range.
    #[error("handshake field {0} is out of range")]
    BadField(&'static str),
    /// A handshake body longer than the limit.
    #[error("handshake frame of {0} bytes (at most {MAX_HANDSHAKE_BODY})")]
    TooLong(u32),
}

/// The greeting each side sends first.
pub fn greeting() -> [u8; GREETING_LEN] {
    let mut g = [0u8; GREETING_LEN];
    g[..5].copy_from_slice(MAGIC);
    g[5] = VERSION;
    g[6] = MECHANISM_NULL;
    g
}

/// Checks a peer's greeting; returns its version (a REFUSE can still be
/// read after a greeting of another version).
pub fn check_greeting(g: &[u8; GREETING_LEN]) -> Result<u8, ProtoError> {
    if &g[..5] != MAGIC {
        return Err(ProtoError::BadMagic);
    }
    if g[5] == VERSION {
        if g[6] != MECHANISM_NULL {
            return Err(ProtoError::Mechanism(g[6]));
        }
        if g[7] != 0 {
            return Err(ProtoError::BadField("greeting reserved byte"));
        }
    }
    Ok(g[5])
}

/// A frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Frame type, as read (see [`FrameType`]).
    pub ty: u8,
    /// Type-specific flags.
    pub flags: u8,
    /// Buffers returned to the peer with this frame.
    pub credit: u16,
    /// Body length.
    pub len: u32,
}

impl Header {
    /// A header of type `ty`.
    pub fn new(ty: FrameType, flags: u8, credit: u16, len: u32) -> Self {
        Self {
            ty: ty as u8,
            flags,
            credit,
            len,
        }
    }

    /// The 8 bytes on the wire.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0] = self.ty;
        h[1] = self.flags;
        h[2..4].copy_from_slice(&self.credit.to_le_bytes());
        h[4..8].copy_from_slice(&self.len.to_le_bytes());
        h
    }

    /// Reads 8 bytes (any values; the type and lengths are checked by
    /// whoever handles the frame).
    pub fn decode(h: &[u8; HEADER_LEN]) -> Self {
        Self {
            ty: h[0],
            flags: h[1],
            credit: u16::from_le_bytes([h[2], h[3]]),
            len: u32::from_le_bytes([h[4], h[5], h[6], h[7]]),
        }
    }
}

/// Encodes a frame with no body.
pub fn control(ty: FrameType, credit: u16) -> [u8; HEADER_LEN] {
    Header::new(ty, 0, credit, 0).encode()
}

/// Encodes a FLUSH or FLUSHED frame.
pub fn token_frame(ty: FrameType, token: u32) -> [u8; HEADER_LEN + 4] {
    let mut f = [0u8; HEADER_LEN + 4];
    f[..HEADER_LEN].copy_from_slice(&Header::new(ty, 0, 0, 4).encode());
    f[HEADER_LEN..].copy_from_slice(&token.to_le_bytes());
    f
}

/// What a side announces in its HELLO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    /// Raw or messaging.
    pub kind: ChannelKind,
    /// The sender's directions.
    pub directions: Directions,
    /// Optional features (none defined yet; unknown bits are ignored).
    pub features: u16,
    /// `BufferSizeBytes`.
    pub buffer_size: u64,
    /// `MaxPendingSendBuffers`.
    pub send_buffers: u32,
    /// `MaxPendingReceiveBuffers`: the most DATA frames the peer may have
    /// outstanding at this side.
    pub receive_buffers: u32,
    /// The silence after which this side declares the peer dead, in ms
    /// (0: it never does); both sides send heartbeats often enough for the
    /// stricter of the two.
    pub heartbeat_ms: u32,
    /// The process id (informational, for logs).
    pub pid: u32,
}

/// A handshake message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handshake {
    /// Who I am.
    Hello(Hello),
    /// The client accepts; `credit` is its first grant.
    Accept {
        /// Features both sides use.
        features: u16,
        /// The client's first grant of credits.
        credit: u16,
    },
    /// Refused.
    Refuse {
        /// The rule broken.
        reason: RefusalReason,
        /// Detail; escaped and bounded when decoded (peer text).
        text: String,
    },
}

impl Handshake {
    /// The frame (header and body).
    pub fn encode(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(HELLO_LEN);
        let (ty, credit) = match self {
            Handshake::Hello(h) => {
                body.push(match h.kind {
                    ChannelKind::Raw => 1,
                    ChannelKind::Messaging => 2,
                });
                body.push(u8::from(h.directions.sends()) | u8::from(h.directions.receives()) << 1);
                body.extend_from_slice(&h.features.to_le_bytes());
                body.extend_from_slice(&h.buffer_size.to_le_bytes());
                body.extend_from_slice(&h.send_buffers.to_le_bytes());
                body.extend_from_slice(&h.receive_buffers.to_le_bytes());
                body.extend_from_slice(&h.heartbeat_ms.to_le_bytes());
                body.extend_from_slice(&h.pid.to_le_bytes());
                (FrameType::Hello, 0)
            }
            Handshake::Accept { features, credit } => {
                body.extend_from_slice(&features.to_le_bytes());
                (FrameType::Accept, *credit)
            }
            Handshake::Refuse { reason, text } => {
                body.extend_from_slice(&reason.code().to_le_bytes());
                let mut n = text.len().min(MAX_REFUSAL_TEXT);
                while !text.is_char_boundary(n) {
                    n -= 1;
                }
                body.extend_from_slice(&(n as u16).to_le_bytes());
                body.extend_from_slice(&text.as_bytes()[..n]);
                (FrameType::Refuse, 0)
            }
        };
        let mut out = Header::new(ty, 0, credit, body.len() as u32)
            .encode()
            .to_vec();
        out.extend_from_slice(&body);
        out
    }

    /// Decodes a handshake frame whose header is `h` and body `b`. With a
    /// greeting of another version (`version`), only a REFUSE is read.
    pub fn decode(h: &Header, b: &[u8], version: u8) -> Result<Self, ProtoError> {
        let ty = FrameType::from_u8(h.ty);
        if ty == Some(FrameType::Refuse) {
            if b.len() < 4 {
                return Err(ProtoError::BadField("refusal length"));
            }
            let reason = RefusalReason::from_code(u16::from_le_bytes([b[0], b[1]]));
            let n = usize::from(u16::from_le_bytes([b[2], b[3]]));
            if n > MAX_REFUSAL_TEXT || b.len() != 4 + n {
                return Err(ProtoError::BadField("refusal text length"));
            }
            // Peer text: one printable line before anyone logs or stores it.
            let text = crate::transport::ipc::logging::escape_peer_text(
                &String::from_utf8_lossy(&b[4..]),
                MAX_REFUSAL_TEXT,
            );
            return Ok(Handshake::Refuse { reason, text });
        }
        if version != VERSION {
            return Err(ProtoError::Version(version));
        }
        if h.flags != 0 {
            return Err(ProtoError::BadField("handshake frame flags"));
        }
        match ty {
            Some(FrameType::Hello) => {
                if b.len() != HELLO_LEN || h.credit != 0 {
                    return Err(ProtoError::BadField("HELLO length"));
                }
                let kind = match b[0] {
                    1 => ChannelKind::Raw,
                    2 => ChannelKind::Messaging,
                    _ => return Err(ProtoError::BadField("channel kind")),
                };
                let d = b[1];
                let directions = Directions::from_flags(d & 1 != 0, d & 2 != 0)
                    .filter(|_| d & !3 == 0)
                    .ok_or(ProtoError::BadField("directions"))?;
                let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
                let mut size = [0u8; 8];
                size.copy_from_slice(&b[4..12]);
                Ok(Handshake::Hello(Hello {
                    kind,
                    directions,
                    features: u16::from_le_bytes([b[2], b[3]]),
                    buffer_size: u64::from_le_bytes(size),
                    send_buffers: u32_at(12),
                    receive_buffers: u32_at(16),
                    heartbeat_ms: u32_at(20),
                    pid: u32_at(24),
                }))
            }
            Some(FrameType::Accept) => {
                if b.len() != 2 {
                    return Err(ProtoError::BadField("ACCEPT length"));
                }
                Ok(Handshake::Accept {
                    features: u16::from_le_bytes([b[0], b[1]]),
                    credit: h.credit,
                })
            }
            _ => Err(ProtoError::UnexpectedType(h.ty)),
        }
    }
}

/// Reads the next handshake frame from the bytes received so far:
/// `Ok(None)` until it is complete, else the message and the bytes it
/// took. A header announcing a body above [`MAX_HANDSHAKE_BODY`] is an
/// error at once, before the body is waited for.
pub fn parse_handshake(buf: &[u8], version: u8) -> Result<Option<(Handshake, usize)>, ProtoError> {
    let Some(h) = buf.first_chunk::<HEADER_LEN>() else {
        return Ok(None);
    };
    let h = Header::decode(h);
    if h.len as usize > MAX_HANDSHAKE_BODY {
        return Err(ProtoError::TooLong(h.len));
    }
    let end = HEADER_LEN + h.len as usize;
    if buf.len() < end {
        return Ok(None);
    }
    Handshake::decode(&h, &buf[HEADER_LEN..end], version).map(|m| Some((m, end)))
}

/// Checks the peer's HELLO against this side's (the same rules on both
/// sides). `Err` names the refusal reason and both sides' values.
pub fn check_peer_hello(
    own: &Hello,
    peer: &Hello,
    max_buffers: u32,
) -> Result<(), (RefusalReason, String)> {
    if own.kind != peer.kind {
        return Err((
            RefusalReason::ChannelKind,
            format!(
                "this side's channel is {:?}, the peer's is {:?} (rule: both ends of a channel have the same type)",
                own.kind, peer.kind
            ),
        ));
    }
    if own.buffer_size != peer.buffer_size {
        return Err((
            RefusalReason::BufferSize,
            format!(
                "the peer's buffer size {} bytes differs from this side's {} bytes (rule: both sides use the same buffer size)",
                peer.buffer_size, own.buffer_size
            ),
        ));
    }
    let (a, b) = (own.directions, peer.directions);
    if a.sends() != b.receives() || a.receives() != b.sends() {
        return Err((
            RefusalReason::Directions,
            format!(
                "this side {a}, the peer {b} (rule: what one side sends the other must receive)"
            ),
        ));
    }
    let counts_ok = |n: u32, used: bool| {
        if used {
            (1..=max_buffers).contains(&n)
        } else {
            n == 0
        }
    };
    if !counts_ok(peer.send_buffers, b.sends()) || !counts_ok(peer.receive_buffers, b.receives()) {
        return Err((
            RefusalReason::Protocol,
            format!(
                "the peer announces {} send and {} receive buffers for {b} (rule: 1..={max_buffers} for each direction used, 0 otherwise)",
                peer.send_buffers, peer.receive_buffers
            ),
        ));
    }
    Ok(())
}

/// Why the data-phase stream broke the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// A type byte that is no frame type.
    UnknownType(u8),
    /// A handshake frame after the handshake.
    HandshakeFrame(u8),
    /// Flag bits the type does not define.
    BadFlags {
        /// Frame type.
        ty: u8,
        /// Flags as read.
        flags: u8,
    },
    /// A body length the type does not allow.
    BadLength {
        /// Frame type.
        ty: u8,
        /// Length as read.
        len: u32,
        /// The largest allowed.
        max: u64,
    },
    /// Found by the receiving side (credits, tokens, buffers).
    Peer(String),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownType(t) => write!(f, "unknown frame type {t}"),
            Self::HandshakeFrame(t) => write!(f, "handshake frame type {t} after the handshake"),
            Self::BadFlags { ty, flags } => {
                write!(f, "frame type {ty} with undefined flags {flags:#04x}")
            }
            Self::BadLength { ty, len, max } => {
                write!(
                    f,
                    "frame type {ty} with length {len} (at most {max} for this type)"
                )
            }
            Self::Peer(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for FrameError {}

/// Receives what [`FrameParser`] finds. Its errors end the connection.
pub trait FrameSink {
    /// A free buffer of at least the buffer size for the next DATA frame;
    /// refuses if the peer had no credit for it.
    fn data_buffer(&mut self) -> Result<Vec<u8>, FrameError>;
    /// A complete DATA frame: `len` bytes of `buf`.
    fn data(&mut self, buf: Vec<u8>, len: usize, erase: bool);
    /// Credits returned by the peer (called before the frame's own event).
    fn credit(&mut self, n: u16) -> Result<(), FrameError>;
    /// A FLUSH request.
    fn flush(&mut self, token: u32);
    /// A FLUSHED answer.
    fn flushed(&mut self, token: u32) -> Result<(), FrameError>;
}

#[derive(Debug)]
enum State {
    Header {
        hdr: [u8; HEADER_LEN],
        have: usize,
    },
    Data {
        buf: Vec<u8>,
        len: usize,
        have: usize,
        erase: bool,
    },
    Token {
        ty: FrameType,
        bytes: [u8; 4],
        have: usize,
    },
}

/// The data-phase parser (see the module docs).
#[derive(Debug)]
pub struct FrameParser {
    buffer_size: usize,
    state: State,
}

impl FrameParser {
    /// A parser for buffers of `buffer_size` bytes, at a frame boundary.
    pub fn new(buffer_size: usize) -> Self {
        Self {
            buffer_size,
            state: State::Header {
                hdr: [0; HEADER_LEN],
                have: 0,
            },
        }
    }

    /// Consumes all of `input`.
    pub fn feed(&mut self, mut input: &[u8], sink: &mut impl FrameSink) -> Result<(), FrameError> {
        while !input.is_empty() {
            match &mut self.state {
                State::Header { hdr, have } => {
                    let n = (HEADER_LEN - *have).min(input.len());
                    hdr[*have..*have + n].copy_from_slice(&input[..n]);
                    *have += n;
                    input = &input[n..];
                    if *have == HEADER_LEN {
                        let h = Header::decode(hdr);
                        self.start_frame(h, sink)?;
                    }
                }
                State::Data { buf, len, have, .. } => {
                    let n = (*len - *have).min(input.len());
                    buf[*have..*have + n].copy_from_slice(&input[..n]);
                    *have += n;
                    input = &input[n..];
                    self.finish_data(sink);
                }
                State::Token { bytes, have, .. } => {
                    let n = (4 - *have).min(input.len());
                    bytes[*have..*have + n].copy_from_slice(&input[..n]);
                    *have += n;
                    input = &input[n..];
                    self.finish_token(sink)?;
                }
            }
        }
        Ok(())
    }

    /// The rest of the DATA payload being received, if one is in progress:
    /// a socket read may go straight into it.
    pub fn direct_target(&mut self) -> Option<&mut [u8]> {
        match &mut self.state {
            State::Data { buf, len, have, .. } => Some(&mut buf[*have..*len]),
            _ => None,
        }
    }

    /// `n` bytes were written into [`Self::direct_target`].
    pub fn advance_direct(&mut self, n: usize, sink: &mut impl FrameSink) {
        if let State::Data { len, have, .. } = &mut self.state {
            *have = (*have + n).min(*len);
        }
        self.finish_data(sink);
    }

    /// The buffer of a DATA frame cut off in the middle (the connection
    /// ended): it goes back to the pool.
    pub fn take_partial(&mut self) -> Option<Vec<u8>> {
        let state = std::mem::replace(
            &mut self.state,
            State::Header {
                hdr: [0; HEADER_LEN],
                have: 0,
            },
        );
        match state {
            State::Data { buf, .. } => Some(buf),
            _ => None,
        }
    }

    fn reset(&mut self) {
        self.state = State::Header {
            hdr: [0; HEADER_LEN],
            have: 0,
        };
    }

    fn start_frame(&mut self, h: Header, sink: &mut impl FrameSink) -> Result<(), FrameError> {
        let ty = FrameType::from_u8(h.ty).ok_or(FrameError::UnknownType(h.ty))?;
        let bad_len = |max: u64| FrameError::BadLength {
            ty: h.ty,
            len: h.len,
            max,
        };
        let allowed_flags = if ty == FrameType::Data { FLAG_ERASE } else { 0 };
        if matches!(ty, FrameType::Hello | FrameType::Accept | FrameType::Refuse) {
            return Err(FrameError::HandshakeFrame(h.ty));
        }
        if h.flags & !allowed_flags != 0 {
            return Err(FrameError::BadFlags {
                ty: h.ty,
                flags: h.flags,
            });
        }
        // Every length is checked before its body is accepted.
        match ty {
            FrameType::Data if h.len as usize > self.buffer_size => {
                return Err(bad_len(self.buffer_size as u64))
            }
            FrameType::Credit | FrameType::Heartbeat if h.len != 0 => return Err(bad_len(0)),
            FrameType::Flush | FrameType::Flushed if h.len != 4 => return Err(bad_len(4)),
            _ => {}
        }
        if h.credit != 0 {
            sink.credit(h.credit)?;
        }
        self.state = match ty {
            FrameType::Data => {
                let buf = sink.data_buffer()?;
                if buf.len() < h.len as usize {
                    return Err(FrameError::Peer(
                        "receive buffer smaller than the frame".into(),
                    ));
                }
                State::Data {
                    buf,
                    len: h.len as usize,
                    have: 0,
                    erase: h.flags & FLAG_ERASE != 0,
                }
            }
            FrameType::Flush | FrameType::Flushed => State::Token {
                ty,
                bytes: [0; 4],
                have: 0,
            },
            _ => {
                self.reset();
                return Ok(());
            }
        };
        // A DATA frame of length 0 is complete at once.
        self.finish_data(sink);
        Ok(())
    }

    fn finish_data(&mut self, sink: &mut impl FrameSink) {
        if matches!(&self.state, State::Data { len, have, .. } if have == len) {
            if let Some(State::Data {
                buf, len, erase, ..
            }) = Some(std::mem::replace(
                &mut self.state,
                State::Header {
                    hdr: [0; HEADER_LEN],
                    have: 0,
                },
            )) {
                sink.data(buf, len, erase);
            }
        }
    }

    fn finish_token(&mut self, sink: &mut impl FrameSink) -> Result<(), FrameError> {
        if let State::Token { ty, bytes, have: 4 } = self.state {
            self.reset();
            let token = u32::from_le_bytes(bytes);
            match ty {
                FrameType::Flush => sink.flush(token),
                _ => sink.flushed(token)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello() -> Hello {
        Hello {
            kind: ChannelKind::Messaging,
            directions: Directions::SendReceive,
            features: 0,
            buffer_size: 65536,
            send_buffers: 4,
            receive_buffers: 8,
            heartbeat_ms: 5000,
            pid: 42,
        }
    }

    #[test]
    fn greeting_and_handshake_round_trip() {
        assert_eq!(check_greeting(&greeting()), Ok(VERSION));
        let mut g = greeting();
        g[0] = b'X';
        assert_eq!(check_greeting(&g), Err(ProtoError::BadMagic));
        let mut g = greeting();
        g[6] = 1;
        assert_eq!(check_greeting(&g), Err(ProtoError::Mechanism(1)));
        let mut g = greeting();
        g[5] = 9;
        assert_eq!(check_greeting(&g), Ok(9));
        for m in [
            Handshake::Hello(hello()),
            Handshake::Accept {
                features: 0,
                credit: 8,
            },
            Handshake::Refuse {
                reason: RefusalReason::Busy,
                text: "server already has a peer".into(),
            },
        ] {
            let b = m.encode();
            assert_eq!(parse_handshake(&b, VERSION), Ok(Some((m.clone(), b.len()))));
            for cut in 0..b.len() {
                assert_eq!(parse_handshake(&b[..cut], VERSION), Ok(None));
            }
        }
    }

    #[test]
    fn a_refuse_is_read_whatever_the_version_and_nothing_else_is() {
        let r = Handshake::Refuse {
            reason: RefusalReason::Version,
            text: "line\nbreak".into(),
        }
        .encode();
        match parse_handshake(&r, 7) {
            Ok(Some((Handshake::Refuse { reason, text }, _))) => {
                assert_eq!(reason, RefusalReason::Version);
                assert!(!text.contains('\n'), "{text}");
            }
            other => panic!("{other:?}"),
        }
        let h = Handshake::Hello(hello()).encode();
        assert_eq!(parse_handshake(&h, 7), Err(ProtoError::Version(7)));
    }

    #[test]
    fn bad_handshakes_are_typed_errors() {
        let mut big = Header::new(FrameType::Hello, 0, 0, 5000).encode().to_vec();
        big.extend_from_slice(&[0; 10]);
        assert_eq!(
            parse_handshake(&big, VERSION),
            Err(ProtoError::TooLong(5000))
        );
        let mut h = Handshake::Hello(hello()).encode();
        h[HEADER_LEN] = 7;
        assert_eq!(
            parse_handshake(&h, VERSION),
            Err(ProtoError::BadField("channel kind"))
        );
        let mut h = Handshake::Hello(hello()).encode();
        h[HEADER_LEN + 1] = 4;
        assert_eq!(
            parse_handshake(&h, VERSION),
            Err(ProtoError::BadField("directions"))
        );
        let d = control(FrameType::Data, 0);
        assert_eq!(
            parse_handshake(&d, VERSION),
            Err(ProtoError::UnexpectedType(1))
        );
        let mut r = Handshake::Refuse {
            reason: RefusalReason::Busy,
            text: "x".into(),
        }
        .encode();
        r[HEADER_LEN + 2] = 200;
        assert!(parse_handshake(&r, VERSION).is_err());
    }

    #[test]
    fn hello_rules_are_checked_with_both_values() {
        let own = hello();
        assert!(check_peer_hello(&own, &own, 4096).is_ok());
        let mut p = own;
        p.kind = ChannelKind::Raw;
        assert_eq!(
            check_peer_hello(&own, &p, 4096).unwrap_err().0,
            RefusalReason::ChannelKind
        );
        let mut p = own;
        p.buffer_size = 1;
        let (r, t) = check_peer_hello(&own, &p, 4096).unwrap_err();
        assert_eq!(r, RefusalReason::BufferSize);
        assert!(
            t.contains("the peer's buffer size 1 bytes differs from this side's 65536 bytes"),
            "{t}"
        );
        let mut p = own;
        p.directions = Directions::Send;
        p.receive_buffers = 0;
        assert_eq!(
            check_peer_hello(&own, &p, 4096).unwrap_err().0,
            RefusalReason::Directions
        );
        let mut p = own;
        p.receive_buffers = 5000;
        assert_eq!(
            check_peer_hello(&own, &p, 4096).unwrap_err().0,
            RefusalReason::Protocol
        );
        let mut p = own;
        p.send_buffers = 0;
        assert_eq!(
            check_peer_hello(&own, &p, 4096).unwrap_err().0,
            RefusalReason::Protocol
        );
    }

    #[derive(Default)]
    struct Events {
        credit_left: u32,
        data: Vec<(Vec<u8>, bool)>,
        credits: u32,
        flushes: Vec<u32>,
        flushed: Vec<u32>,
    }

    impl FrameSink for Events {
        fn data_buffer(&mut self) -> Result<Vec<u8>, FrameError> {
            if self.credit_left == 0 {
                return Err(FrameError::Peer("no credit".into()));
            }
            self.credit_left -= 1;
            Ok(vec![0xAA; 16])
        }
        fn data(&mut self, buf: Vec<u8>, len: usize, erase: bool) {
            self.data.push((buf[..len].to_vec(), erase));
        }
        fn credit(&mut self, n: u16) -> Result<(), FrameError> {
            self.credits += u32::from(n);
            Ok(())
        }
        fn flush(&mut self, token: u32) {
            self.flushes.push(token);
        }
        fn flushed(&mut self, token: u32) -> Result<(), FrameError> {
            self.flushed.push(token);
            Ok(())
        }
    }

    fn stream() -> Vec<u8> {
        let mut s = Vec::new();
        s.extend_from_slice(&Header::new(FrameType::Data, FLAG_ERASE, 3, 5).encode());
        s.extend_from_slice(b"hello");
        s.extend_from_slice(&control(FrameType::Heartbeat, 0));
        s.extend_from_slice(&Header::new(FrameType::Data, 0, 0, 0).encode());
        s.extend_from_slice(&control(FrameType::Credit, 2));
        s.extend_from_slice(&token_frame(FrameType::Flush, 7));
        s.extend_from_slice(&Header::new(FrameType::Data, 0, 0, 16).encode());
        s.extend_from_slice(&[9; 16]);
        s.extend_from_slice(&token_frame(FrameType::Flushed, 8));
        s
    }

    #[test]
    fn the_parser_gives_the_same_events_whatever_the_chunking() {
        let s = stream();
        for chunk in 1..s.len() {
            let mut p = FrameParser::new(16);
            let mut e = Events {
                credit_left: 3,
                ..Events::default()
            };
            for c in s.chunks(chunk) {
                p.feed(c, &mut e).unwrap();
            }
            assert_eq!(e.data.len(), 3, "chunk {chunk}");
            assert_eq!(e.data[0], (b"hello".to_vec(), true));
            assert_eq!(e.data[1], (Vec::new(), false));
            assert_eq!(e.data[2], (vec![9; 16], false));
            assert_eq!(
                (e.credits, e.flushes.clone(), e.flushed.clone()),
                (5, vec![7], vec![8])
            );
        }
    }

    #[test]
    fn direct_reads_complete_a_payload() {
        let mut p = FrameParser::new(16);
        let mut e = Events {
            credit_left: 1,
            ..Events::default()
        };
        p.feed(&Header::new(FrameType::Data, 0, 0, 10).encode(), &mut e)
            .unwrap();
        p.feed(b"abc", &mut e).unwrap();
        let t = p.direct_target().unwrap();
        assert_eq!(t.len(), 7);
        t.copy_from_slice(b"defghij");
        p.advance_direct(7, &mut e);
        assert_eq!(e.data, vec![(b"abcdefghij".to_vec(), false)]);
        assert!(p.direct_target().is_none());
    }

    #[test]
    fn every_broken_rule_is_an_error_before_the_body() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![99, 0, 0, 0, 0, 0, 0, 0], "unknown frame type 99"),
            (
                Handshake::Hello(hello()).encode(),
                "handshake frame type 16",
            ),
            (
                Header::new(FrameType::Data, 2, 0, 1).encode().to_vec(),
                "undefined flags",
            ),
            (
                Header::new(FrameType::Data, 0, 0, 17).encode().to_vec(),
                "length 17 (at most 16",
            ),
            (
                Header::new(FrameType::Data, 0, 0, u32::MAX)
                    .encode()
                    .to_vec(),
                "length 4294967295",
            ),
            (
                Header::new(FrameType::Heartbeat, 0, 0, 1).encode().to_vec(),
                "at most 0",
            ),
            (
                Header::new(FrameType::Flush, 0, 0, 3).encode().to_vec(),
                "at most 4",
            ),
            (
                Header::new(FrameType::Credit, 1, 0, 0).encode().to_vec(),
                "undefined flags",
            ),
        ];
        for (bytes, want) in cases {
            let mut p = FrameParser::new(16);
            let mut e = Events {
                credit_left: 9,
                ..Events::default()
            };
            let err = p.feed(&bytes, &mut e).unwrap_err().to_string();
            assert!(err.contains(want), "{err} vs {want}");
            assert!(e.data.is_empty());
        }
        // No credit: refused by the sink when the header arrives.
        let mut p = FrameParser::new(16);
        let mut e = Events::default();
        let err = p
            .feed(&Header::new(FrameType::Data, 0, 0, 1).encode(), &mut e)
            .unwrap_err();
        assert_eq!(err, FrameError::Peer("no credit".into()));
    }

    #[test]
    fn a_partial_payload_is_handed_back() {
        let mut p = FrameParser::new(16);
        let mut e = Events {
            credit_left: 1,
            ..Events::default()
        };
        p.feed(&Header::new(FrameType::Data, 0, 0, 10).encode(), &mut e)
            .unwrap();
        p.feed(b"abc", &mut e).unwrap();
        assert_eq!(p.take_partial().map(|b| b.len()), Some(16));
        assert!(p.take_partial().is_none());
    }
}
