//! Messages and frames.
//!
//! A [`Message`] is an ordered list of 1 to [`MAX_FRAMES`] frames that is
//! sent atomically. Each frame is a byte string plus an optional
//! [`NtTime`] timestamp, and is one of four kinds ([`FrameKind`]):
//!
//! * **inline**: [`Message::push_copy`] of at most [`MAX_INLINE_FRAME_SIZE`]
//!   bytes; the bytes live inside the frame, no allocation of their own;
//! * **bytes**: a [`Bytes`] handle, from [`Message::push_bytes`] (zero copy),
//!   or from `push_copy` of a larger frame (one allocation, one copy);
//! * **static**: a `&'static [u8]` from [`Message::push_static`] (zero copy);
//! * **external**: caller-owned memory with acquire/release hooks, from
//!   [`Message::push_external`] (zero copy, see [`ExternalData`]).
//!
//! # Representation
//!
//! An unshared `Message` holds its frames by value: the first frame inline
//! and a `Vec` for the others (an empty `Vec` does not allocate). Creating a
//! one-frame message of up to [`MAX_INLINE_FRAME_SIZE`] bytes, posting it
//! and dropping it therefore allocates nothing and touches no atomic; the
//! value is 128 bytes, which a queue moves with one `memcpy`.
//!
//! [`Message::share`] (a *message reference*) moves the frames behind an
//! `Arc` the first time and returns another handle to them: no payload is
//! copied, and each further share is one reference-count increment.
//! Appending to a shared message detaches it first (copy-on-write of the
//! frame list: inline frames are copied, the other kinds reference-counted),
//! so the other sharers never see the change.

mod external;
mod time;

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

pub use external::{AcquireError, ExternalData, ExternalFrame};
pub use time::{NtTime, Timestamp};

use external::SharedExternal;

/// Largest frame, in bytes, that [`Message::push_copy`] stores inline in the
/// frame itself rather than in a separate allocation
/// (`LmqQueryMaxInlineFrameSize`).
///
/// 64 bytes covers the 64-byte benchmark message and keeps a frame at 88
/// bytes and an unshared [`Message`] at 128 bytes. Every frame slot pays for
/// the inline buffer, so a larger value makes every message bigger to move
/// through queues and every frame of a many-frame message bigger.
pub const MAX_INLINE_FRAME_SIZE: usize = 64;

/// Largest number of frames in one message.
pub const MAX_FRAMES: usize = 65_535;

/// Largest frame, in bytes: `u32::MAX` (4 GiB - 1), the limit the wire format
/// enforces on decode as well.
pub const MAX_FRAME_SIZE: usize = u32::MAX as usize;

// The inline length is stored in a `u8`.
const _: () = assert!(MAX_INLINE_FRAME_SIZE <= u8::MAX as usize);

/// Why a message operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// The message has no frames; a message needs at least one frame to be
    /// posted.
    #[error("a message must have at least one frame; append a frame before posting it")]
    NoFrames,
    /// Appending would exceed the frame limit.
    #[error("a message holds at most {max} frames; split the data over several messages or fewer, larger frames")]
    TooManyFrames {
        /// The limit, [`MAX_FRAMES`].
        max: usize,
    },
    /// The frame is larger than the per-frame limit.
    #[error("a frame holds at most {max} bytes but {len} were given; split the data over several frames")]
    FrameTooLarge {
        /// The size of the rejected frame.
        len: usize,
        /// The limit, [`MAX_FRAME_SIZE`].
        max: usize,
    },
    /// The acquire hook of an external frame failed.
    #[error("external frame {frame}: {source}")]
    Acquire {
        /// Index of the frame whose hook failed.
        frame: usize,
        /// The hook's error.
        #[source]
        source: AcquireError,
    },
}

/// A failed [`Message::push_external`]: the error and the frame, given back
/// so that the caller decides whether to drop it (which runs its release
/// hook) or to append it elsewhere.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct PushExternalError {
    /// Why the frame was not appended.
    pub error: MessageError,
    /// The frame that was not appended.
    pub frame: ExternalFrame,
}

/// How a frame's bytes are held.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FrameKind {
    /// Copied into the frame itself (at most [`MAX_INLINE_FRAME_SIZE`] bytes).
    Inline,
    /// A [`Bytes`] handle: appended with [`Message::push_bytes`], or a larger
    /// copied frame, or a large frame of a decoded message.
    Bytes,
    /// A `&'static [u8]` appended with [`Message::push_static`].
    Static,
    /// Caller-owned memory appended with [`Message::push_external`].
    External,
}

#[derive(Clone)]
enum FrameData {
    Inline {
        len: u8,
        bytes: [u8; MAX_INLINE_FRAME_SIZE],
    },
    Bytes(Bytes),
    Static(&'static [u8]),
    External(SharedExternal),
}

#[derive(Clone)]
struct Frame {
    timestamp: Option<NtTime>,
    data: FrameData,
}

impl Frame {
    #[inline]
    fn inline(data: &[u8], timestamp: Option<NtTime>) -> Option<Self> {
        let len = u8::try_from(data.len()).ok()?;
        let mut bytes = [0u8; MAX_INLINE_FRAME_SIZE];
        match <&[u8; MAX_INLINE_FRAME_SIZE]>::try_from(data) {
            // A full inline frame: a fixed-size copy, no call.
            Ok(full) => bytes = *full,
            Err(_) => bytes.get_mut(..data.len())?.copy_from_slice(data),
        }
        Some(Frame {
            timestamp,
            data: FrameData::Inline { len, bytes },
        })
    }

    fn data(&self) -> &[u8] {
        match &self.data {
            FrameData::Inline { len, bytes } => {
                // `len <= MAX_INLINE_FRAME_SIZE` by construction; `get`
                // keeps this panic-free regardless.
                bytes.get(..usize::from(*len)).unwrap_or(bytes)
            }
            FrameData::Bytes(b) => b,
            FrameData::Static(s) => s,
            FrameData::External(e) => e.data(),
        }
    }
}

#[derive(Clone, Default)]
struct Inner {
    /// Sum of the frame lengths as they were when appended.
    payload_size: usize,
    /// Number of external frames (skips the acquire walk when zero).
    external_frames: usize,
    first: Option<Frame>,
    rest: Vec<Frame>,
}

impl Inner {
    fn frame_count(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.len()
    }
}

/// An ordered list of frames, sent atomically (see the [module
/// documentation](self)).
///
/// A message that was never posted is simply dropped; dropping runs the
/// release hooks of its external frames once no other message shares them.
pub struct Message {
    repr: Repr,
}

/// Unshared messages hold their frames by value: creating, filling, posting
/// and dropping one allocates nothing beyond large frames and touches no
/// atomic. The first [`Message::share`] moves the frames behind an `Arc`.
enum Repr {
    Unique(Inner),
    Shared(Arc<Inner>),
}

impl Message {
    /// Creates an empty message. Allocates nothing: the first frame is held
    /// in the message itself. Pushing frames may allocate: a copied frame
    /// longer than [`MAX_INLINE_FRAME_SIZE`] bytes allocates its bytes, and
    /// a second frame the list of the frames after the first.
    pub fn new() -> Self {
        Message {
            repr: Repr::Unique(Inner::default()),
        }
    }

    /// Creates an empty message with room for `frame_hint` frames without
    /// further allocation (`LmqCreateMessage(FrameCountHint)`).
    pub fn with_capacity(frame_hint: usize) -> Self {
        let rest = frame_hint.saturating_sub(1).min(MAX_FRAMES - 1);
        Message {
            repr: Repr::Unique(Inner {
                rest: Vec::with_capacity(rest),
                ..Inner::default()
            }),
        }
    }

    /// Number of frames.
    pub fn frame_count(&self) -> usize {
        self.inner().frame_count()
    }

    /// True if the message has no frames (and so cannot be posted yet).
    pub fn is_empty(&self) -> bool {
        self.inner().first.is_none()
    }

    /// Total payload bytes over all frames (O(1): kept as frames are appended).
    pub fn payload_size(&self) -> usize {
        self.inner().payload_size
    }

    /// Checks that the message can be posted: it has at least one frame.
    pub fn validate(&self) -> Result<(), MessageError> {
        if self.is_empty() {
            Err(MessageError::NoFrames)
        } else {
            Ok(())
        }
    }

    /// The frame at `index`, or `None` past the last frame.
    pub fn frame(&self, index: usize) -> Option<FrameRef<'_>> {
        let frame = match index.checked_sub(1) {
            None => self.inner().first.as_ref(),
            Some(i) => self.inner().rest.get(i),
        }?;
        Some(FrameRef { frame })
    }

    /// The frames in order.
    pub fn frames(&self) -> Frames<'_> {
        Frames {
            first: self.inner().first.as_ref(),
            rest: self.inner().rest.iter(),
        }
    }

    /// Appends a copy of `data`: inline if it is at most
    /// [`MAX_INLINE_FRAME_SIZE`] bytes, else in one new allocation.
    pub fn push_copy(&mut self, data: &[u8], timestamp: Timestamp) -> Result<(), MessageError> {
        // The common case (the first small frame of an unshared message,
        // no timestamp) skips the general checks, which it cannot fail.
        if let (Repr::Unique(inner), Timestamp::None) = (&mut self.repr, timestamp) {
            if inner.first.is_none() {
                if let Some(frame) = Frame::inline(data, None) {
                    if data.len() <= MAX_INLINE_FRAME_SIZE {
                        inner.payload_size = data.len();
                        inner.first = Some(frame);
                        return Ok(());
                    }
                }
            }
        }
        self.check_push(data.len())?;
        let timestamp = timestamp.resolve();
        let frame = match Frame::inline(data, timestamp) {
            Some(frame) if data.len() <= MAX_INLINE_FRAME_SIZE => frame,
            _ => Frame {
                timestamp,
                data: FrameData::Bytes(Bytes::copy_from_slice(data)),
            },
        };
        self.push_checked(frame, data.len(), false);
        Ok(())
    }

    /// Appends `data` without copying it.
    pub fn push_static(
        &mut self,
        data: &'static [u8],
        timestamp: Timestamp,
    ) -> Result<(), MessageError> {
        self.check_push(data.len())?;
        let frame = Frame {
            timestamp: timestamp.resolve(),
            data: FrameData::Static(data),
        };
        self.push_checked(frame, data.len(), false);
        Ok(())
    }

    /// Appends a shared [`Bytes`] buffer without copying it.
    pub fn push_bytes(&mut self, data: Bytes, timestamp: Timestamp) -> Result<(), MessageError> {
        let len = data.len();
        self.check_push(len)?;
        let frame = Frame {
            timestamp: timestamp.resolve(),
            data: FrameData::Bytes(data),
        };
        self.push_checked(frame, len, false);
        Ok(())
    }

    /// Appends caller-owned memory without copying it. On failure the frame
    /// is given back in the error (dropping it runs its release hook).
    pub fn push_external(
        &mut self,
        frame: ExternalFrame,
        timestamp: Timestamp,
    ) -> Result<(), PushExternalError> {
        let len = frame.data().len();
        if let Err(error) = self.check_push(len) {
            return Err(PushExternalError { error, frame });
        }
        let frame = Frame {
            timestamp: timestamp.resolve(),
            data: FrameData::External(frame.cell),
        };
        self.push_checked(frame, len, true);
        Ok(())
    }

    /// Returns a *message reference*: a message sharing this one's frames
    /// (`LmqCreateMessageRef`), to post one payload on several channels. No
    /// payload is copied; external frames are released when the last sharer
    /// is dropped.
    ///
    /// Takes `&mut self` because the first share moves the frames of `self`
    /// into a reference-counted block (one allocation); this keeps unshared
    /// messages free of allocations and atomics, which is the common case.
    pub fn share(&mut self) -> Message {
        let arc = match &mut self.repr {
            Repr::Shared(arc) => Arc::clone(arc),
            Repr::Unique(inner) => {
                let arc = Arc::new(std::mem::take(inner));
                self.repr = Repr::Shared(Arc::clone(&arc));
                arc
            }
        };
        Message {
            repr: Repr::Shared(arc),
        }
    }

    /// True if other messages currently share this one's frames.
    pub fn is_shared(&self) -> bool {
        match &self.repr {
            Repr::Unique(_) => false,
            Repr::Shared(arc) => Arc::strong_count(arc) > 1,
        }
    }

    /// True if at least one frame is external.
    pub fn has_external_frames(&self) -> bool {
        self.inner().external_frames > 0
    }

    /// Runs the acquire hook of every external frame that has not been
    /// acquired yet (`ACQUIRE_DATA`). The sender calls this when it prepares
    /// the message for sending, before encoding it; hooks run once per frame
    /// however many times this is called and however many sharers post the
    /// message. Returns the first failure (the remaining frames are not
    /// acquired then).
    #[inline]
    pub fn acquire_external(&self) -> Result<(), MessageError> {
        if self.inner().external_frames == 0 {
            return Ok(());
        }
        self.acquire_external_frames()
    }

    fn acquire_external_frames(&self) -> Result<(), MessageError> {
        for (index, frame) in self.frames().enumerate() {
            if let FrameData::External(cell) = &frame.frame.data {
                cell.acquire().map_err(|source| MessageError::Acquire {
                    frame: index,
                    source,
                })?;
            }
        }
        Ok(())
    }

    fn inner(&self) -> &Inner {
        match &self.repr {
            Repr::Unique(inner) => inner,
            Repr::Shared(arc) => arc,
        }
    }

    /// Copy-on-write: takes the frames back out of the `Arc` (moved if this
    /// was the last sharer, the frame list cloned otherwise).
    fn inner_mut(&mut self) -> &mut Inner {
        if let Repr::Shared(_) = self.repr {
            let placeholder = Repr::Unique(Inner::default()); // no allocation
            if let Repr::Shared(arc) = std::mem::replace(&mut self.repr, placeholder) {
                self.repr = Repr::Unique(Arc::unwrap_or_clone(arc));
            }
        }
        match &mut self.repr {
            Repr::Unique(inner) => inner,
            // Not reached (converted above); `make_mut` keeps it panic-free.
            Repr::Shared(arc) => Arc::make_mut(arc),
        }
    }

    fn check_push(&self, len: usize) -> Result<(), MessageError> {
        if len > MAX_FRAME_SIZE {
            return Err(MessageError::FrameTooLarge {
                len,
                max: MAX_FRAME_SIZE,
            });
        }
        if self.frame_count() >= MAX_FRAMES {
            return Err(MessageError::TooManyFrames { max: MAX_FRAMES });
        }
        Ok(())
    }

    /// Appends a frame that passed `check_push`.
    fn push_checked(&mut self, frame: Frame, len: usize, external: bool) {
        // Copy-on-write: detaches from other sharers before mutating.
        let inner = self.inner_mut();
        inner.payload_size = inner.payload_size.saturating_add(len);
        inner.external_frames += usize::from(external);
        if inner.first.is_none() {
            inner.first = Some(frame);
        } else {
            inner.rest.push(frame);
        }
    }

    /// The data and timestamp of a one-frame message; `None` otherwise.
    #[inline]
    pub(crate) fn single_frame(&self) -> Option<(&[u8], Option<NtTime>)> {
        let inner = self.inner();
        match (&inner.first, inner.rest.is_empty()) {
            (Some(f), true) => Some((f.data(), f.timestamp)),
            _ => None,
        }
    }

    /// An upper bound of the encoded size, given the most bytes a frame's
    /// header (and timestamp) can take; `None` with external frames, whose
    /// lengths are read at encoding time.
    #[inline]
    pub(crate) fn encoded_len_bound(&self, per_frame: usize) -> Option<usize> {
        let inner = self.inner();
        (inner.external_frames == 0).then(|| {
            inner
                .payload_size
                .saturating_add(inner.frame_count().saturating_mul(per_frame))
        })
    }

    /// Builds a decoded one-frame message. Its payload size is the
    /// frame's length: a message never disagrees with its frames.
    #[inline]
    pub(crate) fn from_decoded_frame(data: DecodedData, timestamp: Option<NtTime>) -> Self {
        let frame = data.into_frame(timestamp);
        Message {
            repr: Repr::Unique(Inner {
                payload_size: frame.data().len(),
                external_frames: 0,
                first: Some(frame),
                rest: Vec::new(),
            }),
        }
    }

    /// Builds a decoded one-frame message of `len` bytes (at most
    /// [`MAX_INLINE_FRAME_SIZE`]; longer reads as that) in place: `fill`
    /// writes them at the start of the zeroed inline buffer. (Built in its
    /// final place, the 64 bytes are not moved again.)
    #[inline(always)]
    pub(crate) fn from_inline_decoded(
        len: usize,
        timestamp: Option<NtTime>,
        fill: impl FnOnce(&mut [u8; MAX_INLINE_FRAME_SIZE]),
    ) -> Self {
        let len = len.min(MAX_INLINE_FRAME_SIZE);
        let mut m = Message {
            repr: Repr::Unique(Inner {
                payload_size: len,
                external_frames: 0,
                first: Some(Frame {
                    timestamp,
                    data: FrameData::Inline {
                        len: len as u8,
                        bytes: [0; MAX_INLINE_FRAME_SIZE],
                    },
                }),
                rest: Vec::new(),
            }),
        };
        if let Repr::Unique(Inner {
            first:
                Some(Frame {
                    data: FrameData::Inline { bytes, .. },
                    ..
                }),
            ..
        }) = &mut m.repr
        {
            fill(bytes);
        }
        m
    }

    /// Builds a decoded message from its frames, in order (the decoder
    /// has already checked the limits). The frame count and payload size
    /// are those of the frames given.
    pub(crate) fn from_decoded<I>(frames: I) -> Self
    where
        I: ExactSizeIterator<Item = (DecodedData, Option<NtTime>)>,
    {
        let mut frames = frames.map(|(data, timestamp)| data.into_frame(timestamp));
        let first = frames.next();
        let mut rest = Vec::with_capacity(frames.len().min(MAX_FRAMES));
        rest.extend(frames);
        let payload_size = first
            .iter()
            .chain(&rest)
            .fold(0usize, |sum, f| sum.saturating_add(f.data().len()));
        Message {
            repr: Repr::Unique(Inner {
                payload_size,
                external_frames: 0,
                first,
                rest,
            }),
        }
    }
}

/// Frame bytes as the decoder hands them over: already copied out of the
/// transport buffer into private memory.
pub(crate) enum DecodedData {
    /// Small: the first `len` bytes of `bytes`.
    Inline {
        /// At most [`MAX_INLINE_FRAME_SIZE`] (longer reads as that).
        len: u8,
        /// The frame's bytes, zero after `len`.
        bytes: [u8; MAX_INLINE_FRAME_SIZE],
    },
    /// Large: in a shared allocation.
    Bytes(Bytes),
}

impl DecodedData {
    fn into_frame(self, timestamp: Option<NtTime>) -> Frame {
        let data = match self {
            DecodedData::Inline { len, bytes } => FrameData::Inline {
                len: len.min(MAX_INLINE_FRAME_SIZE as u8),
                bytes,
            },
            DecodedData::Bytes(b) => FrameData::Bytes(b),
        };
        Frame { timestamp, data }
    }
}

impl Default for Message {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("frame_count", &self.frame_count())
            .field("payload_size", &self.payload_size())
            .field("frames", &self.frames().collect::<Vec<_>>())
            .finish()
    }
}

/// A read-only view of one frame of a [`Message`].
#[derive(Clone, Copy)]
pub struct FrameRef<'a> {
    frame: &'a Frame,
}

impl<'a> FrameRef<'a> {
    /// The frame's bytes.
    pub fn data(&self) -> &'a [u8] {
        self.frame.data()
    }

    /// Length of the frame in bytes.
    pub fn len(&self) -> usize {
        self.data().len()
    }

    /// True if the frame has no bytes.
    pub fn is_empty(&self) -> bool {
        self.data().is_empty()
    }

    /// Copies bytes of the frame from `offset` on into `dst`, as many as
    /// fit; returns how many (0 at or past the end). Reads as
    /// [`LentFrame::read`](crate::channel::LentFrame::read) does.
    pub fn read(&self, offset: usize, dst: &mut [u8]) -> usize {
        let src = self.data().get(offset..).unwrap_or_default();
        let n = src.len().min(dst.len());
        dst[..n].copy_from_slice(&src[..n]);
        n
    }

    /// Copies the frame to the start of `dst`, as much as fits; returns how
    /// many bytes (the frame's length when `dst` is long enough).
    pub fn copy_to(&self, dst: &mut [u8]) -> usize {
        self.read(0, dst)
    }

    /// Copies the frame into a new vector.
    pub fn to_vec(&self) -> Vec<u8> {
        self.data().to_vec()
    }

    /// The stored timestamp (`SystemTime` requests were resolved when the
    /// frame was appended).
    pub fn timestamp(&self) -> Option<NtTime> {
        self.frame.timestamp
    }

    /// How the bytes are held.
    pub fn kind(&self) -> FrameKind {
        match self.frame.data {
            FrameData::Inline { .. } => FrameKind::Inline,
            FrameData::Bytes(_) => FrameKind::Bytes,
            FrameData::Static(_) => FrameKind::Static,
            FrameData::External(_) => FrameKind::External,
        }
    }
}

impl fmt::Debug for FrameRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frame")
            .field("kind", &self.kind())
            .field("len", &self.len())
            .field("timestamp", &self.timestamp())
            .finish()
    }
}

/// Iterator over the frames of a message, from [`Message::frames`].
#[derive(Clone)]
pub struct Frames<'a> {
    first: Option<&'a Frame>,
    rest: std::slice::Iter<'a, Frame>,
}

impl<'a> Iterator for Frames<'a> {
    type Item = FrameRef<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        let frame = match self.first.take() {
            Some(frame) => frame,
            None => self.rest.next()?,
        };
        Some(FrameRef { frame })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::from(self.first.is_some()) + self.rest.len();
        (n, Some(n))
    }
}

impl ExactSizeIterator for Frames<'_> {}

impl std::iter::FusedIterator for Frames<'_> {}

#[cfg(test)]
mod tests;
