//! Typed messages (cargo feature `serde`): a value that implements serde's
//! `Serialize` becomes a one-frame [`Message`] with [`Message::encode`],
//! and comes back with [`Message::decode`] or, lent in place,
//! [`Lent::decode`].
//!
//! ```
//! use lwmq::message::Message;
//!
//! #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
//! struct Reading {
//!     sensor: u32,
//!     celsius: f32,
//!     label: String,
//! }
//!
//! let sent = Reading { sensor: 7, celsius: 21.5, label: "hall".into() };
//! let message = Message::encode(&sent)?;        // one frame, inline: no allocation
//! assert_eq!(message.frame_count(), 1);
//! let back: Reading = message.decode()?;
//! assert_eq!(back, sent);
//! # Ok::<(), lwmq::codec::CodecError>(())
//! ```
//!
//! # Format
//!
//! The frame holds the value in [postcard](https://docs.rs/postcard)'s wire
//! format (version 1, a stable, documented format: varint integers, no
//! field names, no schema), with nothing before or after it. Both sides
//! must decode into the type that was encoded (or one with the same serde
//! shape); postcard does not describe the type, so a mismatch shows as a
//! [`CodecError::Decode`] or [`CodecError::TrailingBytes`] at best, and as
//! a wrong value at worst when the shapes happen to agree. Version your
//! records (an enum, or a version field first) if the two programs may
//! differ.
//!
//! # Cost
//!
//! A value whose encoding takes at most
//! [`MAX_INLINE_FRAME_SIZE`] bytes
//! is written into the inline frame: encoding it allocates nothing. A
//! larger one is encoded into one allocation, which the frame takes over.
//! Decoding reads the frame in place for an owned message (a `&str` or
//! `&[u8]` field can borrow from it) and copies a frame lent in place out
//! first (its sender can still write it).

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::channel::Lent;
use crate::message::{Frame, FrameRead, Message, MessageRead, MAX_INLINE_FRAME_SIZE};

/// Why a value could not be encoded into, or decoded from, a message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The value's `Serialize` implementation failed (or asked for what
    /// postcard cannot write, such as a sequence of unknown length).
    #[error("the value could not be encoded: {0}")]
    Encode(#[source] FormatError),
    /// A typed message has exactly one frame.
    #[error("a typed message has exactly one frame but this one has {found}; it was not made by Message::encode")]
    FrameCount {
        /// The message's frame count.
        found: usize,
    },
    /// The frame's bytes are not an encoding of the requested type.
    #[error("the frame of {len} bytes is not a value of the requested type: {source} (was it encoded from another type?)")]
    Decode {
        /// The frame's length.
        len: usize,
        /// What the decoder found.
        source: FormatError,
    },
    /// The value ended before the frame did: the frame was encoded from
    /// another type (or holds more than one value).
    #[error("the value ends after {used} of the frame's {len} bytes; the frame was encoded from another type")]
    TrailingBytes {
        /// Bytes the value took.
        used: usize,
        /// The frame's length.
        len: usize,
    },
}

/// What the postcard format reported (opaque: its text names the problem;
/// postcard's own error type is not part of lwmq's API).
pub struct FormatError(postcard::Error);

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl std::error::Error for FormatError {}

impl Message {
    /// A one-frame message holding `value` in postcard's format (see the
    /// [`codec`](self) module). Allocates nothing when the encoding fits
    /// the inline frame (64 bytes).
    pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Message, CodecError> {
        let mut small = [0u8; MAX_INLINE_FRAME_SIZE];
        match postcard::to_slice(value, &mut small) {
            Ok(used) => return Ok(Message::from(Frame::copy(used))),
            Err(postcard::Error::SerializeBufferFull) => {}
            Err(e) => return Err(CodecError::Encode(FormatError(e))),
        }
        postcard::to_allocvec(value)
            .map(Message::from)
            .map_err(|e| CodecError::Encode(FormatError(e)))
    }

    /// The value this message holds, as [`Message::encode`] wrote it. The
    /// frame is read in place: the value may borrow from the message.
    pub fn decode<'a, T: Deserialize<'a>>(&'a self) -> Result<T, CodecError> {
        match (self.frame_count(), self.frame(0)) {
            (1, Some(frame)) => from_bytes(frame.data()),
            (found, _) => Err(CodecError::FrameCount { found }),
        }
    }
}

impl Lent<'_> {
    /// The value this message holds, as [`Message::encode`] wrote it. A
    /// frame read in place is copied out first (the sender can still write
    /// it; up to 256 bytes onto the stack), so the value owns its data.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, CodecError> {
        match (self.frame_count(), self.frame(0)) {
            (1, Some(frame)) => match frame.as_private() {
                Some(bytes) => from_bytes(bytes),
                None => decode_copy(&frame),
            },
            (found, _) => Err(CodecError::FrameCount { found }),
        }
    }
}

/// [`Message::decode`] for any message that reads through [`MessageRead`]:
/// the frame is copied out first.
pub fn decode<T: DeserializeOwned, M: MessageRead + ?Sized>(message: &M) -> Result<T, CodecError> {
    match (message.frame_count(), message.frame(0)) {
        (1, Some(frame)) => decode_copy(&frame),
        (found, _) => Err(CodecError::FrameCount { found }),
    }
}

/// Decodes a frame after copying it out (to the stack when small).
fn decode_copy<T: DeserializeOwned, F: FrameRead>(frame: &F) -> Result<T, CodecError> {
    let mut small = [0u8; 256];
    match small.get_mut(..frame.len()) {
        Some(dst) => {
            let n = frame.copy_to(dst);
            from_bytes(dst.get(..n).unwrap_or_default())
        }
        None => from_bytes(&frame.to_vec()),
    }
}

/// Decodes one value that must take all of `bytes`.
fn from_bytes<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, CodecError> {
    let len = bytes.len();
    match postcard::take_from_bytes(bytes) {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err(CodecError::TrailingBytes {
            used: len - rest.len(),
            len,
        }),
        Err(e) => Err(CodecError::Decode {
            len,
            source: FormatError(e),
        }),
    }
}

#[cfg(test)]
#[allow(unsafe_code)] // A view over a test buffer, as the receive path makes.
mod tests;
