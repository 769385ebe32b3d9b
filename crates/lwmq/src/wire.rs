//! The wire format of transport buffers (see `docs/wire-format.md`).
//!
//! One transport buffer carries one or more whole messages ("clubbing"):
//!
//! ```text
//! buffer  := magic:u8 = 0x4C  version:u8 = 1  flags:u16le = 0  count:u32le  message{count}
//! message := frame_count:varint (1..=65535)  frame{frame_count}
//! frame   := header:varint = (len << 1) | has_timestamp  [timestamp:u64le]  bytes{len}
//! ```
//!
//! Varints are unsigned LEB128 (7 bits per byte, least significant group
//! first, high bit = "more bytes follow"), at most 10 bytes, and must be
//! minimal. A 64-byte frame without timestamp in a one-frame message costs
//! 3 bytes of overhead (1 for the frame count, 2 for the frame header); a
//! frame of up to 63 bytes costs 2.
//!
//! The encoder ([`BufferWriter`]) packs messages all-or-nothing and writes
//! the buffer header last, in [`BufferWriter::finish`]. The decoder
//! ([`BufferReader`]) trusts nothing: every length is checked against the
//! bytes that remain before anything is read or allocated, and any input
//! yields messages or a typed [`WireError`], never a panic.

use std::fmt;

use bytes::BytesMut;

use crate::message::{
    DecodedData, Message, NtTime, MAX_FRAMES, MAX_FRAME_SIZE, MAX_INLINE_FRAME_SIZE,
};

/// First byte of every buffer (`'L'`).
pub const MAGIC: u8 = 0x4C;
/// The format version this module writes and reads.
pub const VERSION: u8 = 1;
/// Size of the buffer header (magic, version, flags, message count).
pub const BUFFER_HEADER_LEN: usize = 8;
/// Longest varint (a `u64` in LEB128).
pub const MAX_VARINT_LEN: usize = 10;
/// Size of an encoded timestamp.
pub const TIMESTAMP_LEN: usize = 8;

/// The buffer header field or message field a decoding error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    /// The message's frame count.
    FrameCount,
    /// A frame header (length and flags).
    FrameHeader,
    /// A frame timestamp.
    Timestamp,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::FrameCount => "frame count",
            Field::FrameHeader => "frame header",
            Field::Timestamp => "frame timestamp",
        })
    }
}

/// Why a buffer could not be decoded. Offsets are from the buffer start.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Shorter than the buffer header.
    #[error(
        "a transport buffer starts with a {min}-byte header but only {len} bytes were received"
    )]
    BufferTooShort {
        /// Bytes received.
        len: usize,
        /// The header size.
        min: usize,
    },
    /// The first byte is not [`MAGIC`].
    #[error("not an LwMQ message buffer: first byte is {found:#04x}, expected {MAGIC:#04x} (is the peer a raw channel?)")]
    BadMagic {
        /// The byte found.
        found: u8,
    },
    /// A format version this build cannot read.
    #[error("wire format version {found} is not supported (this build reads version {supported}); upgrade the older peer")]
    UnsupportedVersion {
        /// The version found.
        found: u8,
        /// The version supported.
        supported: u8,
    },
    /// Flags this version does not define are set.
    #[error("buffer header flags {flags:#06x} are set but version {VERSION} defines none; the peer uses a newer format")]
    UnknownFlags {
        /// The flags found.
        flags: u16,
    },
    /// A field runs past the end of the buffer.
    #[error("{field} at offset {offset} runs past the end of the buffer")]
    Truncated {
        /// Offset of the field.
        offset: usize,
        /// The field.
        field: Field,
    },
    /// A varint does not fit in 64 bits.
    #[error("{field} at offset {offset} is a varint longer than 64 bits")]
    VarintOverflow {
        /// Offset of the varint.
        offset: usize,
        /// The field.
        field: Field,
    },
    /// A varint has redundant trailing zero groups.
    #[error(
        "{field} at offset {offset} is a non-minimal varint; encoders must use the shortest form"
    )]
    NonCanonicalVarint {
        /// Offset of the varint.
        offset: usize,
        /// The field.
        field: Field,
    },
    /// A message declares zero frames.
    #[error("message at offset {offset} declares 0 frames; a message has at least 1")]
    NoFrames {
        /// Offset of the message.
        offset: usize,
    },
    /// A message declares more than [`MAX_FRAMES`] frames.
    #[error("message at offset {offset} declares {count} frames; the limit is {max}")]
    TooManyFrames {
        /// Offset of the message.
        offset: usize,
        /// Frames declared.
        count: u64,
        /// The limit.
        max: usize,
    },
    /// A frame declares more than [`MAX_FRAME_SIZE`] bytes.
    #[error("frame at offset {offset} declares {len} bytes; the limit is {max}")]
    FrameTooLarge {
        /// Offset of the frame header.
        offset: usize,
        /// Length declared.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// A frame's bytes run past the end of the buffer.
    #[error(
        "frame at offset {offset} declares {len} bytes but only {remaining} remain in the buffer"
    )]
    FramePastEnd {
        /// Offset of the frame header.
        offset: usize,
        /// Length declared.
        len: usize,
        /// Bytes left after the header (and timestamp).
        remaining: usize,
    },
    /// The buffer ends before the declared number of messages.
    #[error("buffer declares {declared} messages but ends after {decoded}")]
    MissingMessages {
        /// Messages declared in the header.
        declared: u32,
        /// Messages found.
        decoded: u32,
    },
    /// Bytes remain after the declared number of messages.
    #[error("{len} unexpected bytes at offset {offset} after the last declared message; the sender must pass only the bytes used")]
    TrailingBytes {
        /// Offset of the first extra byte.
        offset: usize,
        /// Number of extra bytes.
        len: usize,
    },
}

/// [`BufferWriter::new`] was given a buffer that cannot hold the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a transport buffer must be at least {min} bytes to hold the buffer header, got {len}")]
pub struct BufferTooSmall {
    /// The size given.
    pub len: usize,
    /// The header size.
    pub min: usize,
}

/// Why [`BufferWriter::try_push`] did not add a message. The buffer is
/// unchanged in both cases.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TryPushError {
    /// Not enough room left: send this buffer and push into the next one.
    /// Also returned when the buffer already holds `u32::MAX` messages.
    #[error("the message needs {needed} bytes but {available} remain in the transport buffer; send this buffer and use a new one")]
    Full {
        /// Encoded size of the message.
        needed: usize,
        /// Bytes left in the buffer.
        available: usize,
    },
    /// The message has no frames and cannot be encoded.
    #[error("a message must have at least one frame to be encoded")]
    EmptyMessage,
}

/// A message too large for any buffer of the channel's size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the message encodes to {encoded} bytes but a transport buffer holds at most {limit} bytes of messages; use larger buffers or split the message")]
pub struct TooLarge {
    /// Encoded size of the message.
    pub encoded: usize,
    /// Room for messages in an empty buffer (buffer size minus header).
    pub limit: usize,
}

/// Bytes a varint encoding of `v` takes (1..=10).
pub const fn varint_len(v: u64) -> usize {
    // Bits needed (at least 1), 7 per byte, rounded up.
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

fn frame_header(len: usize, has_timestamp: bool) -> u64 {
    ((len as u64) << 1) | u64::from(has_timestamp)
}

/// The exact number of bytes `message` takes in a buffer (excluding the
/// buffer header).
pub fn encoded_len(message: &Message) -> usize {
    if let Some((data, timestamp)) = message.single_frame() {
        let has_ts = timestamp.is_some();
        return (1 + varint_len(frame_header(data.len(), has_ts)))
            .saturating_add(if has_ts { TIMESTAMP_LEN } else { 0 })
            .saturating_add(data.len());
    }
    let mut total = varint_len(message.frame_count() as u64);
    for frame in message.frames() {
        let len = frame.len();
        let has_ts = frame.timestamp().is_some();
        total = total
            .saturating_add(varint_len(frame_header(len, has_ts)))
            .saturating_add(if has_ts { TIMESTAMP_LEN } else { 0 })
            .saturating_add(len);
    }
    total
}

/// The largest payload of a one-frame message without timestamp that fits
/// in an empty buffer of `buffer_size` bytes (0 if not even an empty frame
/// fits). Messages with more frames or timestamps carry more overhead; use
/// [`fits_in_empty_buffer`] for an exact answer.
pub fn max_message_payload(buffer_size: usize) -> usize {
    // Room after the buffer header and the 1-byte frame count.
    let room = buffer_size.saturating_sub(BUFFER_HEADER_LEN + 1);
    // The frame header takes 1..=5 bytes; the first header size that leaves a
    // payload whose own header is no longer gives the largest payload.
    for header in 1..=5 {
        let len = room.saturating_sub(header).min(MAX_FRAME_SIZE);
        if room >= header && varint_len(frame_header(len, false)) <= header {
            return len;
        }
    }
    0
}

/// Checks at post time that `message` fits in an empty buffer of
/// `buffer_size` bytes, so that it can ever be sent.
pub fn fits_in_empty_buffer(message: &Message, buffer_size: usize) -> Result<(), TooLarge> {
    let limit = buffer_size.saturating_sub(BUFFER_HEADER_LEN);
    // Upper bound without walking the frames: every varint takes at most
    // MAX_VARINT_LEN bytes, every frame at most one timestamp. Only for
    // messages without external frames, whose lengths are fixed.
    if let Some(bound) = message.encoded_len_bound(MAX_VARINT_LEN + TIMESTAMP_LEN) {
        if bound.saturating_add(MAX_VARINT_LEN) <= limit {
            return Ok(());
        }
    }
    let encoded = encoded_len(message);
    if encoded <= limit {
        Ok(())
    } else {
        Err(TooLarge { encoded, limit })
    }
}

/// Writes `v` at `pos`; returns the position after it, or `None` if it does
/// not fit.
#[inline]
fn put_varint(buf: &mut [u8], pos: usize, mut v: u64) -> Option<usize> {
    if v < 0x80 {
        *buf.get_mut(pos)? = v as u8;
        return Some(pos + 1);
    }
    if v < 0x4000 {
        let end = pos.checked_add(2)?;
        buf.get_mut(pos..end)?
            .copy_from_slice(&[(v as u8) | 0x80, (v >> 7) as u8]);
        return Some(end);
    }
    let mut tmp = [0u8; MAX_VARINT_LEN];
    let mut n = 0;
    // At most 9 iterations for a u64, so `n` stays below MAX_VARINT_LEN.
    while v >= 0x80 && n < MAX_VARINT_LEN - 1 {
        tmp[n] = (v as u8) | 0x80;
        v >>= 7;
        n += 1;
    }
    tmp[n] = v as u8;
    n += 1;
    let end = pos.checked_add(n)?;
    buf.get_mut(pos..end)?.copy_from_slice(tmp.get(..n)?);
    Some(end)
}

/// Packs whole messages into one transport buffer.
///
/// ```
/// # use lwmq::{message::{Message, Timestamp}, wire::{BufferWriter, BufferReader}};
/// let mut buffer = vec![0u8; 65536];
/// let mut message = Message::new();
/// message.push_copy(b"hello", Timestamp::None).unwrap();
/// let mut writer = BufferWriter::new(&mut buffer).unwrap();
/// writer.try_push(&message).unwrap();
/// let used = writer.finish();
/// let received: Vec<_> = BufferReader::new(&buffer[..used]).unwrap().collect();
/// assert_eq!(received.len(), 1);
/// ```
#[derive(Debug)]
pub struct BufferWriter<'a> {
    buf: &'a mut [u8],
    pos: usize,
    count: u32,
}

impl<'a> BufferWriter<'a> {
    /// Starts filling `buf` (the whole transport buffer).
    pub fn new(buf: &'a mut [u8]) -> Result<Self, BufferTooSmall> {
        if buf.len() < BUFFER_HEADER_LEN {
            return Err(BufferTooSmall {
                len: buf.len(),
                min: BUFFER_HEADER_LEN,
            });
        }
        Ok(BufferWriter {
            buf,
            pos: BUFFER_HEADER_LEN,
            count: 0,
        })
    }

    /// Continues filling `buf`, of which a writer already used `pos` bytes
    /// for `count` messages (see [`Self::state`]); `None` if `pos` does not
    /// fit the buffer.
    pub fn resume(buf: &'a mut [u8], pos: usize, count: u32) -> Option<Self> {
        (BUFFER_HEADER_LEN..=buf.len())
            .contains(&pos)
            .then_some(BufferWriter { buf, pos, count })
    }

    /// `(bytes used, messages)`, to [`resume`](Self::resume) later.
    pub fn state(&self) -> (usize, u32) {
        (self.pos, self.count)
    }

    /// Appends `message` whole, or leaves the buffer's content unchanged.
    ///
    /// External frames must have been acquired
    /// ([`Message::acquire_external`]) before this is called.
    pub fn try_push(&mut self, message: &Message) -> Result<(), TryPushError> {
        if let Some((data, None)) = message.single_frame() {
            return self.push_simple(data);
        }
        if message.is_empty() {
            return Err(TryPushError::EmptyMessage);
        }
        let needed = encoded_len(message);
        let available = self.buf.len() - self.pos;
        if needed > available || self.count == u32::MAX {
            return Err(TryPushError::Full { needed, available });
        }
        // Every write is bounds-checked, so even an external owner whose
        // length changed since `encoded_len` cannot cause a panic; the
        // message is then refused and `pos` does not move.
        match self.write_message(message) {
            Some(end) => {
                self.pos = end;
                self.count += 1;
                Ok(())
            }
            None => Err(TryPushError::Full { needed, available }),
        }
    }

    /// [`Self::try_push`] for the common case: one frame, no timestamp.
    #[inline]
    fn push_simple(&mut self, data: &[u8]) -> Result<(), TryPushError> {
        let header = frame_header(data.len(), false);
        let needed = (1 + varint_len(header)).saturating_add(data.len());
        let available = self.buf.len() - self.pos;
        if needed > available || self.count == u32::MAX {
            return Err(TryPushError::Full { needed, available });
        }
        let written = put_varint(self.buf, self.pos, 1)
            .and_then(|pos| put_varint(self.buf, pos, header))
            .and_then(|pos| {
                let end = pos.checked_add(data.len())?;
                self.buf.get_mut(pos..end)?.copy_from_slice(data);
                Some(end)
            });
        match written {
            Some(end) => {
                self.pos = end;
                self.count += 1;
                Ok(())
            }
            None => Err(TryPushError::Full { needed, available }),
        }
    }

    fn write_message(&mut self, message: &Message) -> Option<usize> {
        let buf = &mut *self.buf;
        let mut pos = put_varint(buf, self.pos, message.frame_count() as u64)?;
        for frame in message.frames() {
            let data = frame.data();
            let timestamp = frame.timestamp();
            pos = put_varint(buf, pos, frame_header(data.len(), timestamp.is_some()))?;
            if let Some(ts) = timestamp {
                let end = pos.checked_add(TIMESTAMP_LEN)?;
                buf.get_mut(pos..end)?
                    .copy_from_slice(&ts.ticks().to_le_bytes());
                pos = end;
            }
            let end = pos.checked_add(data.len())?;
            buf.get_mut(pos..end)?.copy_from_slice(data);
            pos = end;
        }
        Some(pos)
    }

    /// Messages pushed so far.
    pub fn message_count(&self) -> u32 {
        self.count
    }

    /// True if no message was pushed.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes used so far, header included.
    pub fn len(&self) -> usize {
        self.pos
    }

    /// Bytes still free.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Writes the buffer header and returns the number of bytes to send.
    pub fn finish(self) -> usize {
        let count = self.count.to_le_bytes();
        let header = [MAGIC, VERSION, 0, 0, count[0], count[1], count[2], count[3]];
        if let Some(dst) = self.buf.get_mut(..BUFFER_HEADER_LEN) {
            dst.copy_from_slice(&header);
        }
        self.pos
    }
}

/// Reads the varint at `pos`: `(value, position after it)`.
#[inline(always)]
fn get_varint(buf: &[u8], pos: usize, field: Field) -> Result<(u64, usize), WireError> {
    if let Some(&b) = buf.get(pos) {
        if b < 0x80 {
            return Ok((u64::from(b), pos + 1));
        }
        if let Some(&b2) = buf.get(pos + 1) {
            // Two bytes; a second byte of 0 would be non-canonical.
            if b2.wrapping_sub(1) < 0x7f {
                return Ok((u64::from(b & 0x7f) | (u64::from(b2) << 7), pos + 2));
            }
        }
    }
    get_varint_slow(buf, pos, field)
}

/// [`get_varint`] beyond two bytes, and every error.
#[cold]
#[inline(never)]
fn get_varint_slow(buf: &[u8], pos: usize, field: Field) -> Result<(u64, usize), WireError> {
    if buf.get(pos).is_none() {
        return Err(WireError::Truncated { offset: pos, field });
    }
    let mut value = 0u64;
    for i in 0..MAX_VARINT_LEN {
        let Some(&byte) = buf.get(pos + i) else {
            return Err(WireError::Truncated { offset: pos, field });
        };
        // The 10th byte holds bit 63 only.
        if i == MAX_VARINT_LEN - 1 && byte > 1 {
            return Err(WireError::VarintOverflow { offset: pos, field });
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            if byte == 0 {
                return Err(WireError::NonCanonicalVarint { offset: pos, field });
            }
            return Ok((value, pos + i + 1));
        }
    }
    Err(WireError::VarintOverflow { offset: pos, field })
}

/// A frame of a received buffer, borrowed from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawFrame<'a> {
    /// The frame's bytes.
    pub data: &'a [u8],
    /// The frame's timestamp.
    pub timestamp: Option<NtTime>,
}

/// Reads the frame at `pos`: `(frame, position after it)`.
#[inline(always)]
fn read_frame(buf: &[u8], pos: usize) -> Result<(RawFrame<'_>, usize), WireError> {
    let (header, mut p) = get_varint(buf, pos, Field::FrameHeader)?;
    let len = header >> 1;
    if len > MAX_FRAME_SIZE as u64 {
        return Err(WireError::FrameTooLarge {
            offset: pos,
            len,
            max: MAX_FRAME_SIZE,
        });
    }
    // Fits in usize: bounded by MAX_FRAME_SIZE above.
    let len = len as usize;
    let timestamp = if header & 1 == 1 {
        let bytes = p
            .checked_add(TIMESTAMP_LEN)
            .and_then(|end| buf.get(p..end))
            .and_then(|b| <[u8; TIMESTAMP_LEN]>::try_from(b).ok())
            .ok_or(WireError::Truncated {
                offset: p,
                field: Field::Timestamp,
            })?;
        p += TIMESTAMP_LEN;
        Some(NtTime::from_ticks(u64::from_le_bytes(bytes)))
    } else {
        None
    };
    let remaining = buf.len().saturating_sub(p);
    let data =
        p.checked_add(len)
            .and_then(|end| buf.get(p..end))
            .ok_or(WireError::FramePastEnd {
                offset: pos,
                len,
                remaining,
            })?;
    Ok((RawFrame { data, timestamp }, p + len))
}

/// A validated message of a received buffer, borrowed from it: visiting its
/// frames allocates nothing.
#[derive(Clone, Copy, Debug)]
pub struct RawMessage<'a> {
    buf: &'a [u8],
    /// Offset of the message in the buffer.
    offset: usize,
    /// Offset of the first frame.
    frames_start: usize,
    frame_count: usize,
    payload_size: usize,
    /// Payload bytes in frames too large to be stored inline.
    large_bytes: usize,
    /// The first frame (decoding a one-frame message reads nothing again).
    first: RawFrame<'a>,
}

impl<'a> RawMessage<'a> {
    /// Validates the message at `offset`: `(message, position after it)`.
    fn parse(buf: &'a [u8], offset: usize) -> Result<(Self, usize), WireError> {
        let (count, frames_start) = get_varint(buf, offset, Field::FrameCount)?;
        if count == 0 {
            return Err(WireError::NoFrames { offset });
        }
        if count > MAX_FRAMES as u64 {
            return Err(WireError::TooManyFrames {
                offset,
                count,
                max: MAX_FRAMES,
            });
        }
        let frame_count = count as usize;
        let mut pos = frames_start;
        let mut payload_size = 0usize;
        let mut large_bytes = 0usize;
        let mut first = None;
        for _ in 0..frame_count {
            let (frame, next) = read_frame(buf, pos)?;
            first.get_or_insert(frame);
            let len = frame.data.len();
            // Lengths were checked against the buffer, so sums cannot
            // overflow; saturate anyway.
            payload_size = payload_size.saturating_add(len);
            if len > MAX_INLINE_FRAME_SIZE {
                large_bytes = large_bytes.saturating_add(len);
            }
            pos = next;
        }
        let message = RawMessage {
            buf,
            offset,
            frames_start,
            frame_count,
            payload_size,
            large_bytes,
            // `count >= 1`, so the loop ran at least once.
            first: first.unwrap_or(RawFrame {
                data: &[],
                timestamp: None,
            }),
        };
        Ok((message, pos))
    }

    /// The message at `offset` of a buffer that [`validate_buffer`]
    /// accepted (every value is checked again anyway): `(message, position
    /// after it)`. One frame without a timestamp takes the fast path.
    #[inline]
    pub(crate) fn at(buf: &'a [u8], offset: usize) -> Result<(Self, usize), WireError> {
        let Some((data, end)) = simple_message_at(buf, offset) else {
            return Self::parse(buf, offset);
        };
        let message = RawMessage {
            buf,
            offset,
            // The frame count (1) is one byte.
            frames_start: offset + 1,
            frame_count: 1,
            payload_size: data.len(),
            large_bytes: if data.len() > MAX_INLINE_FRAME_SIZE {
                data.len()
            } else {
                0
            },
            first: RawFrame {
                data,
                timestamp: None,
            },
        };
        Ok((message, end))
    }

    /// The first frame.
    pub fn first_frame(&self) -> RawFrame<'a> {
        self.first
    }

    /// Offset of the message in the buffer.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Number of frames.
    pub fn frame_count(&self) -> usize {
        self.frame_count
    }

    /// Total payload bytes.
    pub fn payload_size(&self) -> usize {
        self.payload_size
    }

    /// The frames, borrowed from the buffer.
    pub fn frames(&self) -> RawFrames<'a> {
        RawFrames {
            buf: self.buf,
            pos: self.frames_start,
            left: self.frame_count,
        }
    }

    /// Copies the message out of the buffer into an owned [`Message`]:
    /// frames of up to [`MAX_INLINE_FRAME_SIZE`] bytes inline, all larger
    /// frames of the message together in one allocation.
    pub fn to_message(&self) -> Message {
        if self.frame_count == 1 {
            return Message::from_single_decoded(self.first.data, self.first.timestamp);
        }
        if self.large_bytes == 0 {
            let frames = self
                .frames()
                .map(|f| (DecodedData::Copy(f.data), f.timestamp));
            return Message::from_decoded(self.frame_count, self.payload_size, frames);
        }
        // `large_bytes` was checked against the buffer by `parse`.
        let mut large = BytesMut::with_capacity(self.large_bytes);
        for frame in self.frames() {
            if frame.data.len() > MAX_INLINE_FRAME_SIZE {
                large.extend_from_slice(frame.data);
            }
        }
        let large = large.freeze();
        let mut large_pos = 0;
        let frames = self.frames().map(|frame| {
            let len = frame.data.len();
            let end = large_pos + len;
            let data = if len > MAX_INLINE_FRAME_SIZE && end <= large.len() {
                large_pos = end;
                DecodedData::Bytes(large.slice(end - len..end))
            } else {
                DecodedData::Copy(frame.data)
            };
            (data, frame.timestamp)
        });
        Message::from_decoded(self.frame_count, self.payload_size, frames)
    }
}

/// Iterator over the frames of a [`RawMessage`].
#[derive(Clone, Debug)]
pub struct RawFrames<'a> {
    buf: &'a [u8],
    pos: usize,
    left: usize,
}

impl<'a> Iterator for RawFrames<'a> {
    type Item = RawFrame<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        self.left = self.left.checked_sub(1)?;
        // Validated by `RawMessage::parse`; an error cannot occur here, and
        // would end the iteration if it did.
        let (frame, next) = read_frame(self.buf, self.pos).ok()?;
        self.pos = next;
        Some(frame)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left))
    }
}

/// Decodes a received transport buffer.
///
/// Iterating yields each message in order as `Ok(Message)` (owned, copied
/// out of the buffer), then stops; a malformed buffer yields the messages
/// before the fault, then one `Err`, then stops. [`BufferReader::next_raw`]
/// visits messages without allocating; [`validate_buffer`] checks a whole
/// buffer first.
#[derive(Clone, Debug)]
pub struct BufferReader<'a> {
    buf: &'a [u8],
    pos: usize,
    declared: u32,
    decoded: u32,
    done: bool,
}

impl<'a> BufferReader<'a> {
    /// Checks the buffer header of `buf` (exactly the bytes received).
    pub fn new(buf: &'a [u8]) -> Result<Self, WireError> {
        let Some(header) = buf.get(..BUFFER_HEADER_LEN) else {
            return Err(WireError::BufferTooShort {
                len: buf.len(),
                min: BUFFER_HEADER_LEN,
            });
        };
        let &[magic, version, f0, f1, c0, c1, c2, c3] = header else {
            return Err(WireError::BufferTooShort {
                len: buf.len(),
                min: BUFFER_HEADER_LEN,
            });
        };
        if magic != MAGIC {
            return Err(WireError::BadMagic { found: magic });
        }
        if version != VERSION {
            return Err(WireError::UnsupportedVersion {
                found: version,
                supported: VERSION,
            });
        }
        let flags = u16::from_le_bytes([f0, f1]);
        if flags != 0 {
            return Err(WireError::UnknownFlags { flags });
        }
        Ok(BufferReader {
            buf,
            pos: BUFFER_HEADER_LEN,
            declared: u32::from_le_bytes([c0, c1, c2, c3]),
            decoded: 0,
            done: false,
        })
    }

    /// Number of messages the header declares.
    pub fn message_count(&self) -> u32 {
        self.declared
    }

    /// The next message, validated and borrowed from the buffer (no
    /// allocation). After an error or the end, returns `None`.
    pub fn next_raw(&mut self) -> Option<Result<RawMessage<'a>, WireError>> {
        if self.done {
            return None;
        }
        if self.decoded == self.declared {
            self.done = true;
            let len = self.buf.len() - self.pos;
            return (len > 0).then_some(Err(WireError::TrailingBytes {
                offset: self.pos,
                len,
            }));
        }
        if self.pos >= self.buf.len() {
            self.done = true;
            return Some(Err(WireError::MissingMessages {
                declared: self.declared,
                decoded: self.decoded,
            }));
        }
        match RawMessage::parse(self.buf, self.pos) {
            Ok((message, next)) => {
                self.pos = next;
                self.decoded += 1;
                Some(Ok(message))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl Iterator for BufferReader<'_> {
    type Item = Result<Message, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.next_raw()?.map(|raw| raw.to_message());
        if item.is_err() {
            self.done = true;
        }
        Some(item)
    }
}

impl std::iter::FusedIterator for BufferReader<'_> {}

/// The common message shape, read without building a [`RawMessage`]: one
/// frame, no timestamp, a frame header of one or two bytes (data of up to
/// 8,191 bytes). Returns the frame's data and the offset after the message,
/// or `None` for any other shape *and* for anything invalid, which the
/// general decoder then reports. (The two-byte varint is read here by hand
/// rather than through `get_varint`, whose `Result` costs this hot path
/// about 35 instructions per message.)
#[inline(always)]
fn simple_message_at(buf: &[u8], offset: usize) -> Option<(&[u8], usize)> {
    let &[count, h0, h1] = buf.get(offset..offset.checked_add(3)?)? else {
        return None;
    };
    if count != 1 {
        return None;
    }
    let (header, start) = if h0 < 0x80 {
        (usize::from(h0), offset + 2)
    } else if h1.wrapping_sub(1) < 0x7f {
        // A second byte of 0 would be non-canonical; >= 0x80 means longer.
        (usize::from(h0 & 0x7f) | (usize::from(h1) << 7), offset + 3)
    } else {
        return None;
    };
    if header & 1 != 0 {
        return None;
    }
    let end = start + (header >> 1);
    Some((buf.get(start..end)?, end))
}

/// Decodes the message at `offset` of a received buffer into an owned
/// [`Message`]; returns it and the offset after it. Never trusts the bytes.
/// (`RawMessage::at` + `to_message` computes the same, but costs the
/// receive path 22 more instructions per 64-byte message: 423 → 445,
/// callgrind on `lwmq thr recv`.)
#[inline]
pub(crate) fn decode_at(buf: &[u8], offset: usize) -> Result<(Message, usize), WireError> {
    if let Some((data, end)) = simple_message_at(buf, offset) {
        return Ok((Message::from_single_decoded(data, None), end));
    }
    let (raw, end) = RawMessage::parse(buf, offset)?;
    Ok((raw.to_message(), end))
}

/// Validates a whole received buffer without allocating; returns its
/// message count. A receiver that wants all-or-nothing delivery per buffer
/// calls this before decoding.
pub fn validate_buffer(buf: &[u8]) -> Result<u32, WireError> {
    // The same checks as walking a `BufferReader`, in a tighter loop.
    let declared = BufferReader::new(buf)?.declared;
    let mut pos = BUFFER_HEADER_LEN;
    for decoded in 0..declared {
        if pos >= buf.len() {
            return Err(WireError::MissingMessages { declared, decoded });
        }
        pos = match simple_message_at(buf, pos) {
            Some((_, end)) => end,
            None => RawMessage::parse(buf, pos)?.1,
        };
    }
    match buf.len().saturating_sub(pos) {
        0 => Ok(declared),
        len => Err(WireError::TrailingBytes { offset: pos, len }),
    }
}

#[cfg(test)]
mod tests;
