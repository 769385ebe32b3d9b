//! [`Frame`], the value a message is made of, and [`FrameRef`], a view of
//! one frame of a [`Message`](super::Message).
//!
//! A frame is a byte string plus an optional timestamp. How the bytes are
//! held is the frame's [`FrameKind`], chosen by how the frame was made:
//!
//! | made with | kind | copy |
//! |---|---|---|
//! | [`Frame::copy`] of at most [`MAX_INLINE_FRAME_SIZE`] bytes | inline | into the frame itself, no allocation |
//! | [`Frame::copy`] of more | bytes | one allocation, one copy |
//! | `From<Bytes>`, `From<Vec<u8>>`, `From<Box<[u8]>>`, `From<String>` | bytes | none (the allocation is taken over) |
//! | `From<&'static [u8]>`, `From<&'static [u8; N]>`, `From<&'static str>` | static | none |
//! | [`Frame::external`], [`Frame::with_hooks`] | external | none (caller-owned memory with hooks) |
//!
//! A frame of a received message is inline up to [`MAX_INLINE_FRAME_SIZE`]
//! bytes and a `Bytes` slice of the message's one private allocation above
//! that: [`Frame::into_bytes`] and [`Message::frame_bytes`] give it out
//! without a copy.
//!
//! [`Message::frame_bytes`]: super::Message::frame_bytes

use std::fmt;

use bytes::Bytes;

use super::external::{self, ExternalData, Hooked, SharedExternal};
use super::{AcquireError, NtTime, Timestamp, MAX_INLINE_FRAME_SIZE};

// The inline length is stored in a `u8`.
const _: () = assert!(MAX_INLINE_FRAME_SIZE <= u8::MAX as usize);

/// One frame: bytes and an optional timestamp, ready to be pushed into a
/// [`Message`](super::Message).
///
/// A frame is a byte string plus an optional timestamp. How the bytes are
/// held is the frame's [`FrameKind`], chosen by how the frame was made:
///
/// | made with | kind | copy |
/// |---|---|---|
/// | [`Frame::copy`] of at most [`MAX_INLINE_FRAME_SIZE`] bytes | inline | into the frame itself, no allocation |
/// | [`Frame::copy`] of more | bytes | one allocation, one copy |
/// | `From<Bytes>`, `From<Vec<u8>>`, `From<Box<[u8]>>`, `From<String>` | bytes | none (the allocation is taken over) |
/// | `From<&'static [u8]>`, `From<&'static [u8; N]>`, `From<&'static str>` | static | none |
/// | [`Frame::external`], [`Frame::with_hooks`] | external | none (caller-owned memory with hooks) |
///
/// A frame of a received message is inline up to [`MAX_INLINE_FRAME_SIZE`]
/// bytes and a `Bytes` slice of the message's one private allocation above
/// that: [`Frame::into_bytes`] and [`Message::frame_bytes`] give it out
/// without a copy.
///
/// ```
/// use bytes::Bytes;
/// use lwmq::message::{Frame, Message, Timestamp};
///
/// let header = [1u8, 2, 3];
/// let body = Bytes::from(vec![0u8; 4096]);
/// let mut m = Message::new();
/// m.push(Frame::copy(&header).with_timestamp(Timestamp::PreciseNow))
///     .push(body)                       // no copy
///     .push(b"trailer");                // a static frame, no copy
/// assert_eq!(m.frame_count(), 3);
/// ```
///
/// Dropping a frame that was never pushed releases an external frame's
/// memory (its release hook runs), as dropping a message does.
///
/// [`Message::frame_bytes`]: super::Message::frame_bytes
#[derive(Clone)]
pub struct Frame {
    pub(super) timestamp: Option<NtTime>,
    pub(super) data: FrameData,
}

#[derive(Clone)]
pub(super) enum FrameData {
    Inline {
        /// At most [`MAX_INLINE_FRAME_SIZE`] (a longer value reads as that).
        len: u8,
        bytes: InlineBytes,
    },
    Bytes(Bytes),
    Static(&'static [u8]),
    External(SharedExternal),
}

/// The bytes of an inline frame, 8-byte aligned. (Unaligned, the array sat
/// at offset 2 of the frame, and the optimiser moved it in pieces of odd
/// sizes whose stores the following loads could not be forwarded from:
/// making a 64-byte message took 14 ns instead of 9.) The frame stays 88
/// bytes: the alignment only moves the array past the tag and length.
#[derive(Clone, Copy)]
#[repr(C, align(8))]
pub(super) struct InlineBytes(pub(super) [u8; MAX_INLINE_FRAME_SIZE]);

/// How a frame's bytes are held.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FrameKind {
    /// Copied into the frame itself (at most [`MAX_INLINE_FRAME_SIZE`] bytes).
    Inline,
    /// A [`Bytes`] handle: taken over from a `Bytes`, `Vec<u8>`, `Box<[u8]>`
    /// or `String`, or a larger [`Frame::copy`], or a larger frame of a
    /// received message.
    Bytes,
    /// A `&'static [u8]`.
    Static,
    /// Caller-owned memory with hooks ([`Frame::external`]).
    External,
}

impl Frame {
    /// A frame holding a copy of `data`: inline (no allocation) if it is at
    /// most [`MAX_INLINE_FRAME_SIZE`] bytes, else in one new allocation.
    #[inline(always)]
    #[must_use]
    pub fn copy(data: &[u8]) -> Frame {
        match Self::inline(data) {
            Some(frame) => frame,
            None => Frame::from(Bytes::copy_from_slice(data)),
        }
    }

    /// A frame of caller-owned memory, not copied: `owner` gives the bytes
    /// and its hooks run at most once (acquire, when a sender first prepares
    /// a message holding the frame) and exactly once (release, when the last
    /// frame or message referencing it is dropped, posted or not). One
    /// allocation.
    #[must_use]
    pub fn external<T: ExternalData>(owner: T) -> Frame {
        Frame {
            timestamp: None,
            data: FrameData::External(external::shared(owner)),
        }
    }

    /// [`Frame::external`] with the hooks given as closures, each called
    /// with the frame's bytes.
    #[must_use]
    pub fn with_hooks<O, A, R>(owner: O, on_acquire: A, on_release: R) -> Frame
    where
        O: AsRef<[u8]> + Send + Sync + 'static,
        A: Fn(&[u8]) -> Result<(), AcquireError> + Send + Sync + 'static,
        R: FnOnce(&[u8]) + Send + Sync + 'static,
    {
        Self::external(Hooked {
            owner,
            on_acquire,
            on_release: Some(on_release),
        })
    }

    /// The frame with a timestamp. [`Timestamp::Now`] and
    /// [`Timestamp::PreciseNow`] read the clock here; [`Timestamp::None`]
    /// removes a timestamp.
    #[inline]
    #[must_use]
    pub fn with_timestamp(mut self, timestamp: impl Into<Timestamp>) -> Frame {
        self.timestamp = timestamp.into().resolve();
        self
    }

    /// The bytes.
    #[inline]
    pub fn data(&self) -> &[u8] {
        match &self.data {
            FrameData::Inline { len, bytes } => {
                // `len <= MAX_INLINE_FRAME_SIZE` by construction; `get`
                // keeps this panic-free regardless.
                bytes.0.get(..usize::from(*len)).unwrap_or(&bytes.0)
            }
            FrameData::Bytes(b) => b,
            FrameData::Static(s) => s,
            FrameData::External(e) => e.data(),
        }
    }

    /// Length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        match &self.data {
            FrameData::Inline { len, .. } => usize::from(*len).min(MAX_INLINE_FRAME_SIZE),
            FrameData::Bytes(b) => b.len(),
            FrameData::Static(s) => s.len(),
            FrameData::External(e) => e.data().len(),
        }
    }

    /// True if the frame has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The timestamp, if the frame has one.
    pub fn timestamp(&self) -> Option<NtTime> {
        self.timestamp
    }

    /// How the bytes are held.
    pub fn kind(&self) -> FrameKind {
        match self.data {
            FrameData::Inline { .. } => FrameKind::Inline,
            FrameData::Bytes(_) => FrameKind::Bytes,
            FrameData::Static(_) => FrameKind::Static,
            FrameData::External(_) => FrameKind::External,
        }
    }

    /// The bytes as [`Bytes`]: a new handle to the same memory for a
    /// [`FrameKind::Bytes`] or [`FrameKind::Static`] frame, a copy for an
    /// inline or external one.
    #[must_use]
    pub fn to_bytes(&self) -> Bytes {
        match &self.data {
            FrameData::Bytes(b) => b.clone(),
            FrameData::Static(s) => Bytes::from_static(s),
            FrameData::Inline { .. } | FrameData::External(_) => {
                Bytes::copy_from_slice(self.data())
            }
        }
    }

    /// The bytes as [`Bytes`], without a copy for a [`FrameKind::Bytes`] or
    /// [`FrameKind::Static`] frame (the timestamp is dropped). An inline or
    /// external frame is copied (an external one is released when this
    /// returns, unless other messages still share it).
    #[must_use]
    pub fn into_bytes(self) -> Bytes {
        match self.data {
            FrameData::Bytes(b) => b,
            _ => self.to_bytes(),
        }
    }

    /// Copies bytes of the frame from `offset` on into `dst`, as many as
    /// fit; returns how many (0 at or past the end).
    pub fn read(&self, offset: usize, dst: &mut [u8]) -> usize {
        read_slice(self.data(), offset, dst)
    }

    /// Copies the frame to the start of `dst`, as much as fits; returns how
    /// many bytes (the frame's length when `dst` is long enough).
    pub fn copy_to(&self, dst: &mut [u8]) -> usize {
        self.read(0, dst)
    }

    /// Copies the frame into a new vector.
    #[must_use]
    pub fn to_vec(&self) -> Vec<u8> {
        self.data().to_vec()
    }

    /// A frame of at most [`MAX_INLINE_FRAME_SIZE`] bytes copied inline;
    /// `None` if `data` is longer.
    #[inline(always)]
    fn inline(data: &[u8]) -> Option<Frame> {
        let bytes = match <&[u8; MAX_INLINE_FRAME_SIZE]>::try_from(data) {
            // A full inline frame: a fixed-size copy, no call, no zeroing.
            Ok(full) => *full,
            Err(_) => {
                let mut bytes = [0u8; MAX_INLINE_FRAME_SIZE];
                bytes.get_mut(..data.len())?.copy_from_slice(data);
                bytes
            }
        };
        Some(Frame {
            timestamp: None,
            data: FrameData::Inline {
                len: data.len() as u8,
                bytes: InlineBytes(bytes),
            },
        })
    }

    /// A received inline frame: the first `len` bytes of `bytes` (`len` at
    /// most [`MAX_INLINE_FRAME_SIZE`]; longer reads as that).
    #[inline(always)]
    pub(crate) fn decoded_inline(
        len: usize,
        bytes: [u8; MAX_INLINE_FRAME_SIZE],
        timestamp: Option<NtTime>,
    ) -> Frame {
        Frame {
            timestamp,
            data: FrameData::Inline {
                len: len.min(MAX_INLINE_FRAME_SIZE) as u8,
                bytes: InlineBytes(bytes),
            },
        }
    }

    /// A received frame copied into private memory.
    #[inline]
    pub(crate) fn decoded_bytes(bytes: Bytes, timestamp: Option<NtTime>) -> Frame {
        Frame {
            timestamp,
            data: FrameData::Bytes(bytes),
        }
    }

    pub(super) fn is_external(&self) -> bool {
        matches!(self.data, FrameData::External(_))
    }
}

/// Copies `src[offset..]` into `dst`, as much as fits.
pub(super) fn read_slice(src: &[u8], offset: usize, dst: &mut [u8]) -> usize {
    let src = src.get(offset..).unwrap_or_default();
    let n = src.len().min(dst.len());
    dst[..n].copy_from_slice(&src[..n]);
    n
}

impl From<Bytes> for Frame {
    /// Takes the handle over: no copy.
    #[inline]
    fn from(bytes: Bytes) -> Self {
        Frame {
            timestamp: None,
            data: FrameData::Bytes(bytes),
        }
    }
}

impl From<Vec<u8>> for Frame {
    /// Takes the allocation over: no copy.
    fn from(v: Vec<u8>) -> Self {
        Frame::from(Bytes::from(v))
    }
}

impl From<Box<[u8]>> for Frame {
    /// Takes the allocation over: no copy.
    fn from(b: Box<[u8]>) -> Self {
        Frame::from(Bytes::from(b))
    }
}

impl From<String> for Frame {
    /// Takes the allocation over: no copy.
    fn from(s: String) -> Self {
        Frame::from(Bytes::from(s))
    }
}

impl From<&'static [u8]> for Frame {
    /// A static frame: no copy. (For borrowed bytes that do not live for
    /// the whole program, use [`Frame::copy`].)
    #[inline]
    fn from(s: &'static [u8]) -> Self {
        Frame {
            timestamp: None,
            data: FrameData::Static(s),
        }
    }
}

impl<const N: usize> From<&'static [u8; N]> for Frame {
    /// A static frame (`b"..."`): no copy.
    #[inline]
    fn from(s: &'static [u8; N]) -> Self {
        Frame::from(&s[..])
    }
}

impl From<&'static str> for Frame {
    /// A static frame of the string's UTF-8 bytes: no copy.
    #[inline]
    fn from(s: &'static str) -> Self {
        Frame::from(s.as_bytes())
    }
}

impl From<FrameRef<'_>> for Frame {
    /// The same frame (bytes and timestamp): inline bytes are copied, the
    /// other kinds share their memory.
    fn from(f: FrameRef<'_>) -> Self {
        f.frame.clone()
    }
}

impl PartialEq for Frame {
    /// Same bytes and same timestamp, whatever the kinds.
    fn eq(&self, other: &Self) -> bool {
        self.timestamp == other.timestamp && self.data() == other.data()
    }
}

impl Eq for Frame {}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frame")
            .field("kind", &self.kind())
            .field("len", &self.len())
            .field("timestamp", &self.timestamp)
            .finish()
    }
}

/// A read-only view of one frame of a [`Message`](super::Message).
#[derive(Clone, Copy)]
pub struct FrameRef<'a> {
    pub(super) frame: &'a Frame,
}

impl<'a> FrameRef<'a> {
    /// The frame's bytes (private memory: a message's frames never point
    /// into a transport buffer).
    #[inline]
    pub fn data(&self) -> &'a [u8] {
        self.frame.data()
    }

    /// Length of the frame in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.frame.len()
    }

    /// True if the frame has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copies bytes of the frame from `offset` on into `dst`, as many as
    /// fit; returns how many (0 at or past the end). Reads as
    /// [`LentFrame::read`](crate::channel::LentFrame::read) does.
    pub fn read(&self, offset: usize, dst: &mut [u8]) -> usize {
        read_slice(self.data(), offset, dst)
    }

    /// Copies the frame to the start of `dst`, as much as fits; returns how
    /// many bytes (the frame's length when `dst` is long enough).
    pub fn copy_to(&self, dst: &mut [u8]) -> usize {
        self.read(0, dst)
    }

    /// Copies the frame into a new vector.
    #[must_use]
    pub fn to_vec(&self) -> Vec<u8> {
        self.data().to_vec()
    }

    /// The stored timestamp.
    pub fn timestamp(&self) -> Option<NtTime> {
        self.frame.timestamp
    }

    /// How the bytes are held.
    pub fn kind(&self) -> FrameKind {
        self.frame.kind()
    }

    /// The bytes as [`Bytes`], as [`Frame::to_bytes`]: no copy for a frame
    /// held as `Bytes` (every frame of a received message larger than
    /// [`MAX_INLINE_FRAME_SIZE`]) or `&'static [u8]`.
    #[must_use]
    pub fn to_bytes(&self) -> Bytes {
        self.frame.to_bytes()
    }
}

impl fmt::Debug for FrameRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.frame.fmt(f)
    }
}
