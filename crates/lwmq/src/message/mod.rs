//! Messages and frames.
//!
//! A [`Message`] is an ordered list of 1 to [`MAX_FRAMES`] frames that is
//! sent atomically. Each [`Frame`] is a byte string of at most
//! [`MAX_FRAME_SIZE`] bytes plus an optional [`NtTime`] timestamp.
//!
//! # Making messages
//!
//! ```
//! use bytes::Bytes;
//! use lwmq::message::{Frame, Message, Timestamp};
//!
//! let a = Message::from(b"hello");                  // one static frame, no copy
//! let b = Message::from(vec![0u8; 100_000]);        // the vector is taken over, no copy
//! let c = Message::from_frames([Frame::copy(b"hdr"), Frame::from(Bytes::from_static(b"body"))]);
//! let mut d = Message::new();                       // allocates nothing
//! d.push(Frame::copy(&[1, 2, 3]).with_timestamp(Timestamp::PreciseNow))
//!     .push(String::from("text"));
//! assert_eq!((a.frame_count(), c.frame_count(), d.frame_count()), (1, 2, 2));
//! # let _ = b;
//! ```
//!
//! [`Message::push`] never fails: the limits ([`MAX_FRAMES`] frames,
//! [`MAX_FRAME_SIZE`] bytes per frame, at least one frame) are checked by
//! [`Message::validate`], which posting runs and which hands the message
//! back on failure. [`Message::try_push`] checks a frame at once instead.
//! How each way of making a frame holds its bytes (inline, `Bytes`, static,
//! external) is described in [`Frame`]'s documentation.
//!
//! # Reading messages
//!
//! A `Message` and a message lent in place by
//! [`Channel::receive_with`](crate::Channel::receive_with) read alike, through
//! the same methods and through the [`MessageRead`] / [`FrameRead`] traits
//! (see [`MessageRead`]). A received message's frames larger than
//! [`MAX_INLINE_FRAME_SIZE`] are slices of one private allocation:
//! [`Message::frame_bytes`] and [`Message::into_frames`] give them out as
//! [`Bytes`] without a copy.
//!
//! # Representation
//!
//! An unshared `Message` holds its frames by value: the first frame inline
//! and a `Vec` for the others (an empty `Vec` does not allocate).
//! [`Message::new`] allocates nothing, and making a one-frame message of up
//! to [`MAX_INLINE_FRAME_SIZE`] bytes, posting it and dropping it allocates
//! nothing and touches no atomic; the value is 128 bytes, which a queue
//! moves with one `memcpy`.
//!
//! [`Message::share`] (a *message reference*) moves the frames behind an
//! `Arc` the first time and returns another handle to them: no payload is
//! copied, and each further share is one reference-count increment.
//! Appending to a shared message detaches it first (copy-on-write of the
//! frame list: inline frames are copied, the other kinds reference-counted),
//! so the other sharers never see the change.

mod error;
mod external;
mod frame;
mod read;
mod time;

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

pub use error::{MessageError, PushError};
pub use external::{AcquireError, ExternalData};
pub use frame::{Frame, FrameKind, FrameRef};
pub use read::{FrameRead, MessageRead};
pub use time::{NtTime, Timestamp};

use frame::FrameData;

/// Largest frame, in bytes, that [`Frame::copy`] stores inline in the
/// frame itself rather than in a separate allocation
/// (`LmqQueryMaxInlineFrameSize`); received frames up to this size are
/// inline too.
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

#[derive(Clone, Default)]
struct Inner {
    /// Sum of the frame lengths as they were when pushed (saturating).
    payload_size: usize,
    /// Number of external frames (skips the acquire walk when zero).
    external_frames: usize,
    first: Option<Frame>,
    rest: Vec<Frame>,
}

impl Inner {
    #[inline]
    fn frame_count(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.len()
    }

    /// Adds a frame at the end, whatever the limits.
    #[inline(always)]
    fn push(&mut self, frame: Frame) {
        self.payload_size = self.payload_size.saturating_add(frame.len());
        self.external_frames += usize::from(frame.is_external());
        if self.first.is_none() {
            self.first = Some(frame);
        } else {
            self.rest.push(frame);
        }
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
    /// longer than [`MAX_INLINE_FRAME_SIZE`] bytes allocates its bytes
    /// ([`Frame::copy`]), and a second frame the list of the frames after
    /// the first.
    #[inline]
    #[must_use]
    pub fn new() -> Self {
        Message {
            repr: Repr::Unique(Inner::default()),
        }
    }

    /// Creates an empty message with room for `frame_hint` frames without
    /// further allocation (`LmqCreateMessage(FrameCountHint)`): one
    /// allocation when the hint is above 1.
    #[must_use]
    pub fn with_capacity(frame_hint: usize) -> Self {
        let rest = frame_hint.saturating_sub(1).min(MAX_FRAMES - 1);
        Message {
            repr: Repr::Unique(Inner {
                rest: Vec::with_capacity(rest),
                ..Inner::default()
            }),
        }
    }

    /// A message of the frames of `frames`, in order (each converted with
    /// `Into<Frame>`). As with [`Self::push`], limits are checked when the
    /// message is posted ([`Self::validate`]).
    #[must_use]
    pub fn from_frames<I>(frames: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<Frame>,
    {
        let mut m = Message::new();
        m.extend(frames);
        m
    }

    /// Number of frames.
    #[inline]
    pub fn frame_count(&self) -> usize {
        self.inner().frame_count()
    }

    /// True if the message has no frames (and so cannot be posted yet).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.inner().first.is_none()
    }

    /// Total payload bytes over all frames (O(1): kept as frames are
    /// pushed; saturates at `usize::MAX`).
    #[inline]
    pub fn payload_size(&self) -> usize {
        self.inner().payload_size
    }

    /// Checks the rules every posted message must meet: at least one frame,
    /// at most [`MAX_FRAMES`] frames, none longer than [`MAX_FRAME_SIZE`]
    /// bytes. Posting runs this (and hands the message back on failure);
    /// whether the message fits the channel's transport buffers is checked
    /// there too. O(1) unless the payload exceeds `MAX_FRAME_SIZE` in
    /// total.
    #[inline]
    pub fn validate(&self) -> Result<(), MessageError> {
        let inner = self.inner();
        if inner.first.is_some()
            && inner.rest.len() < MAX_FRAMES
            && inner.payload_size <= MAX_FRAME_SIZE
        {
            return Ok(());
        }
        self.invalid()
    }

    /// [`Self::validate`]'s answer when the quick test failed.
    #[cold]
    #[inline(never)]
    fn invalid(&self) -> Result<(), MessageError> {
        let count = self.frame_count();
        if count == 0 {
            return Err(MessageError::NoFrames);
        }
        if count > MAX_FRAMES {
            return Err(MessageError::too_many_frames(count));
        }
        match self
            .frames()
            .enumerate()
            .find(|(_, f)| f.len() > MAX_FRAME_SIZE)
        {
            Some((index, f)) => Err(MessageError::frame_too_large(index, f.len())),
            None => Ok(()),
        }
    }

    /// The frame at `index`, or `None` past the last frame.
    #[inline]
    pub fn frame(&self, index: usize) -> Option<FrameRef<'_>> {
        let frame = match index.checked_sub(1) {
            None => self.inner().first.as_ref(),
            Some(i) => self.inner().rest.get(i),
        }?;
        Some(FrameRef { frame })
    }

    /// The frames in order.
    #[inline]
    pub fn frames(&self) -> Frames<'_> {
        Frames {
            first: self.inner().first.as_ref(),
            rest: self.inner().rest.iter(),
        }
    }

    /// The bytes of all frames, one after the other, in a new vector.
    #[must_use]
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.payload_size());
        for f in self.frames() {
            v.extend_from_slice(f.data());
        }
        v
    }

    /// The bytes of frame `index` as [`Bytes`], `None` past the last frame.
    ///
    /// No copy for a frame held as `Bytes`, which every frame of a received
    /// message larger than [`MAX_INLINE_FRAME_SIZE`] is (its frames are
    /// slices of one private allocation), nor for a static frame; the
    /// `Bytes` shares the message's memory. An inline frame (received ones
    /// up to `MAX_INLINE_FRAME_SIZE` bytes) or an external one is copied.
    #[must_use]
    pub fn frame_bytes(&self, index: usize) -> Option<Bytes> {
        self.frame(index).map(|f| f.to_bytes())
    }

    /// The frames, by value, in order: each one's bytes then go on without
    /// a copy ([`Frame::into_bytes`], or pushed into another message).
    /// Frames shared with other messages ([`Self::share`]) are cloned
    /// (inline bytes copied, the other kinds reference-counted).
    pub fn into_frames(self) -> IntoFrames {
        let inner = match self.repr {
            Repr::Unique(inner) => inner,
            Repr::Shared(arc) => Arc::unwrap_or_clone(arc),
        };
        IntoFrames {
            first: inner.first,
            rest: inner.rest.into_iter(),
        }
    }

    /// Appends a frame (anything that converts into one: `Frame`,
    /// `Bytes`, `Vec<u8>`, `String`, `&'static [u8]`, `&'static str`...).
    /// Never fails: the limits are checked when the message is posted
    /// ([`Self::validate`]); use [`Self::try_push`] to check them now.
    /// Returns the message, so that pushes chain.
    #[inline(always)]
    pub fn push(&mut self, frame: impl Into<Frame>) -> &mut Self {
        // The common case (the first frame of an unshared message): the
        // frame is made in its final place, no list, no checks. (How the
        // frame moves matters as much as how many instructions it takes:
        // see `frame::InlineBytes` and docs/performance.md.)
        if let Repr::Unique(inner) = &mut self.repr {
            if inner.first.is_none() {
                let first = inner.first.insert(frame.into());
                inner.payload_size = first.len();
                inner.external_frames = usize::from(first.is_external());
            } else {
                // Later frames of an unshared message: straight into the
                // list (moved in here, not through a call: the callee's
                // loads of a frame its caller had just stored stalled).
                inner.push(frame.into());
            }
            return self;
        }
        self.push_shared(frame.into());
        self
    }

    /// [`Self::push`], refusing a frame that would break a limit (the frame
    /// would be the [`MAX_FRAMES`]+1st, or it is longer than
    /// [`MAX_FRAME_SIZE`]): the error gives the frame back and the message
    /// is unchanged.
    pub fn try_push(&mut self, frame: impl Into<Frame>) -> Result<&mut Self, PushError> {
        let frame = frame.into();
        let count = self.frame_count();
        let error = if count >= MAX_FRAMES {
            MessageError::too_many_frames(count + 1)
        } else if frame.len() > MAX_FRAME_SIZE {
            MessageError::frame_too_large(count, frame.len())
        } else {
            self.push(frame);
            return Ok(self);
        };
        Err(PushError { error, frame })
    }

    /// Appends to a message that shares its frames: detaches it first
    /// (copy-on-write), so the other sharers do not see the change.
    #[cold]
    fn push_shared(&mut self, frame: Frame) {
        self.inner_mut().push(frame);
    }

    /// Returns a *message reference*: a message sharing this one's frames
    /// (`LmqCreateMessageRef`), to post one payload on several channels. No
    /// payload is copied; external frames are released when the last sharer
    /// is dropped.
    ///
    /// Takes `&mut self` because the first share moves the frames of `self`
    /// into a reference-counted block (one allocation); this keeps unshared
    /// messages free of allocations and atomics, which is the common case.
    #[must_use = "sharing has no effect but the handle it returns"]
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
    pub(crate) fn acquire_external(&self) -> Result<(), MessageError> {
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

    #[inline]
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

    /// Builds a received one-frame message of a frame copied into private
    /// memory. Its payload size is the frame's length: a message never
    /// disagrees with its frames.
    #[inline]
    pub(crate) fn from_decoded_bytes(bytes: Bytes, timestamp: Option<NtTime>) -> Self {
        Message {
            repr: Repr::Unique(Inner {
                payload_size: bytes.len(),
                external_frames: 0,
                first: Some(Frame::decoded_bytes(bytes, timestamp)),
                rest: Vec::new(),
            }),
        }
    }

    /// Builds a received one-frame message of `len` bytes (at most
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
                first: Some(Frame::decoded_inline(
                    len,
                    [0; MAX_INLINE_FRAME_SIZE],
                    timestamp,
                )),
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
            fill(&mut bytes.0);
        }
        m
    }

    /// Builds a received message from its frames, in order (the decoder
    /// has already checked the limits). The frame count and payload size
    /// are those of the frames given.
    pub(crate) fn from_decoded<I>(frames: I) -> Self
    where
        I: ExactSizeIterator<Item = Frame>,
    {
        let mut frames = frames;
        let first = frames.next();
        let mut rest = Vec::with_capacity(frames.len().min(MAX_FRAMES));
        rest.extend(frames);
        let payload_size = first
            .iter()
            .chain(&rest)
            .fold(0usize, |sum, f| sum.saturating_add(f.len()));
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

impl Default for Message {
    fn default() -> Self {
        Self::new()
    }
}

impl From<Frame> for Message {
    /// A one-frame message.
    #[inline]
    fn from(frame: Frame) -> Self {
        let mut m = Message::new();
        m.push(frame);
        m
    }
}

/// `From<T> for Message` for each `T` that converts into a frame: a
/// one-frame message, holding the bytes as [`Frame`]'s conversion does.
macro_rules! message_from {
    ($($(#[$doc:meta])* $t:ty),* $(,)?) => {$(
        impl From<$t> for Message {
            $(#[$doc])*
            #[inline]
            fn from(data: $t) -> Self {
                Message::from(Frame::from(data))
            }
        }
    )*};
}

message_from! {
    /// A one-frame message taking the handle over: no copy.
    Bytes,
    /// A one-frame message taking the allocation over: no copy.
    Vec<u8>,
    /// A one-frame message taking the allocation over: no copy.
    Box<[u8]>,
    /// A one-frame message taking the allocation over: no copy.
    String,
    /// A one-frame message of a static frame: no copy. (For borrowed bytes
    /// that do not live for the whole program, use
    /// `Message::from(Frame::copy(bytes))`.)
    &'static [u8],
    /// A one-frame message of a static frame: no copy.
    &'static str,
}

impl<const N: usize> From<&'static [u8; N]> for Message {
    /// A one-frame message of a static frame (`b"..."`): no copy.
    #[inline]
    fn from(data: &'static [u8; N]) -> Self {
        Message::from(Frame::from(data))
    }
}

impl<F: Into<Frame>> Extend<F> for Message {
    /// Pushes every frame, as [`Message::push`] does.
    fn extend<I: IntoIterator<Item = F>>(&mut self, frames: I) {
        for frame in frames {
            self.push(frame);
        }
    }
}

impl<F: Into<Frame>> FromIterator<F> for Message {
    /// [`Message::from_frames`].
    fn from_iter<I: IntoIterator<Item = F>>(frames: I) -> Self {
        Message::from_frames(frames)
    }
}

impl PartialEq for Message {
    /// The same frames (bytes and timestamps) in the same order, whatever
    /// how each holds its bytes.
    fn eq(&self, other: &Self) -> bool {
        self.frame_count() == other.frame_count()
            && self
                .frames()
                .zip(other.frames())
                .all(|(a, b)| a.frame == b.frame)
    }
}

impl Eq for Message {}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("frame_count", &self.frame_count())
            .field("payload_size", &self.payload_size())
            .field("frames", &self.frames().collect::<Vec<_>>())
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

    #[inline]
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

impl fmt::Debug for Frames<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frames").field("left", &self.len()).finish()
    }
}

/// The frames of a message by value, from [`Message::into_frames`].
pub struct IntoFrames {
    first: Option<Frame>,
    rest: std::vec::IntoIter<Frame>,
}

impl Iterator for IntoFrames {
    type Item = Frame;

    #[inline]
    fn next(&mut self) -> Option<Frame> {
        self.first.take().or_else(|| self.rest.next())
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::from(self.first.is_some()) + self.rest.len();
        (n, Some(n))
    }
}

impl ExactSizeIterator for IntoFrames {}

impl std::iter::FusedIterator for IntoFrames {}

impl fmt::Debug for IntoFrames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntoFrames")
            .field("left", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests;
