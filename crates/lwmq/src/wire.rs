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
//! # Encoding
//!
//! [`BufferWriter`] packs messages all-or-nothing and writes the buffer
//! header last, in [`BufferWriter::finish`]. It writes through a
//! [`SharedBytesMut`] (raw-pointer stores, never a `&mut [u8]` over a
//! transport buffer the peer can see) and never reads back.
//!
//! # Decoding: one read of every byte that matters
//!
//! A received buffer may be rewritten by its sender while it is decoded, so
//! the decoder reads it through a [`Source`] (a [`SharedBytes`] view for a
//! transport buffer: atomic byte loads, copies out) with a cursor that only
//! moves forward: every byte of the buffer header, of every frame count,
//! frame header and timestamp is read exactly once, into a private value
//! that is checked and then used; payload bytes are skipped, not read.
//!
//! [`BufferIndex::build`] walks a whole buffer that way and keeps, per
//! message, where its frames are (offset, length, timestamp): a buffer that
//! fails anywhere is rejected before any of its messages is delivered, and
//! what is delivered afterwards comes from the index alone. A message's
//! frame count and payload size are those of the frames it is made of, and
//! its payload bytes are copied (to an owned [`Message`]) or lent (as
//! [`SharedBytes`] views) from the indexed ranges only. The peer can change
//! payload bytes until they are copied (it is trusted with its data), never
//! the structure that was checked.
//!
//! [`BufferReader`] and [`validate_buffer`] decode private bytes (a
//! `&[u8]`, which cannot change), with the same checks and the same
//! cursor. Any input yields messages or a typed [`WireError`], never a
//! panic; nothing is allocated from a length before that length was checked
//! against the bytes that remain.

mod decode;
mod encode;
mod index;
#[allow(unsafe_code)]
mod shared;

use std::fmt;

use crate::message::{Message, MessageError, MAX_FRAME_SIZE};

// Used by lwmq's other crates through `lwmq::internals`.
#[cfg_attr(not(feature = "internals"), allow(unused_imports))]
pub use decode::{validate_buffer, BufferReader, FrameSpan, RawFrame, RawFrames, RawMessage};
pub use encode::{single_message_prefix, BufferWriter, SINGLE_PREFIX_MAX};
pub use index::{BufferIndex, IndexedFrames, IndexedMessage};
pub use shared::{SharedBytes, SharedBytesMut, Source};

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
/// Longest buffer the decoder reads (`u32::MAX` bytes; the `ipc://`
/// transport's buffers are at most 1 GiB), so that offsets in a buffer fit
/// in 32 bits.
pub const MAX_BUFFER_LEN: usize = u32::MAX as usize;

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
    /// Longer than a buffer can be ([`MAX_BUFFER_LEN`]).
    #[error("a transport buffer holds at most {max} bytes but {len} were received")]
    BufferTooLong {
        /// Bytes received.
        len: usize,
        /// The limit.
        max: usize,
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
    /// A message declares more than [`MAX_FRAMES`](crate::message::MAX_FRAMES) frames.
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
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
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
    /// The message breaks a rule of its own (no frames, or more than
    /// [`MAX_FRAMES`](crate::message::MAX_FRAMES)): it cannot be encoded.
    /// (Posting checks this first, [`Message::validate`].)
    #[error("the message cannot be encoded: {0}")]
    Invalid(MessageError),
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

/// Bytes a one-frame message of `len` payload bytes without timestamp
/// takes in an otherwise empty buffer, the buffer header included.
pub fn single_frame_encoded_len(len: usize) -> usize {
    (BUFFER_HEADER_LEN + 1 + varint_len(frame_header(len, false))).saturating_add(len)
}

/// A payload length up to which a one-frame message without timestamp
/// surely fits an empty buffer of `buffer_size` bytes (and its frame the
/// `u32` length rule): a few bytes short of the exact limit, without
/// encoding anything. Above it, [`single_frame_encoded_len`] decides.
pub fn single_frame_sure_len(buffer_size: usize) -> usize {
    buffer_size
        .saturating_sub(BUFFER_HEADER_LEN + 1 + MAX_VARINT_LEN)
        .min(u32::MAX as usize)
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

#[cfg(test)]
#[allow(unsafe_code)]
mod tests;
