//! [`Lent`]: a received message as [`Channel::receive_with`] lends it, and
//! [`LentFrame`], one of its frames.
//!
//! A message lent in place stays in the transport buffer, which its sender
//! can still write (a hostile one will). What the channel checked and
//! recorded when the buffer arrived (frame count, lengths, timestamps,
//! see [`crate::wire::BufferIndex`]) is fixed; the frames' bytes are not.
//! So a [`LentFrame`] does not promise that its bytes stay the same: it
//! copies them out ([`LentFrame::read`], [`LentFrame::copy_to`],
//! [`LentFrame::to_vec`]), and lends a `&[u8]` only over private memory
//! ([`LentFrame::as_private`]) or, in place, through the `unsafe`
//! [`LentFrame::as_slice`], whose caller vouches that the peer does not
//! write the buffer meanwhile.
//!
//! [`Channel::receive_with`]: super::Channel::receive_with

use crate::message::{Frame, FrameRead, Message, MessageRead, NtTime};
use crate::wire::{FrameSpan, IndexedFrames, IndexedMessage, SharedBytes};

/// A received message lent to the closure of
/// [`Channel::receive_with`](super::Channel::receive_with): either read
/// in place in the transport buffer (no copy) or an owned message that was
/// already decoded or queued. Both read the same way, and the same way as
/// a [`Message`]: [`Self::frame_count`], [`Self::payload_size`], frames
/// with `len`, `timestamp`, `read`, `copy_to` and `to_vec`, and
/// [`Self::to_vec`]; [`MessageRead`] is implemented by both, for code that
/// reads either.
#[derive(Debug, Clone, Copy)]
pub struct Lent<'a>(Repr<'a>);

#[derive(Debug, Clone, Copy)]
enum Repr<'a> {
    Owned(&'a Message),
    InPlace {
        buf: SharedBytes<'a>,
        message: IndexedMessage<'a>,
    },
}

impl<'a> Lent<'a> {
    pub(crate) fn owned(message: &'a Message) -> Self {
        Lent(Repr::Owned(message))
    }

    /// A message of `buf` as its index recorded it.
    pub(crate) fn in_place(buf: SharedBytes<'a>, message: IndexedMessage<'a>) -> Self {
        Lent(Repr::InPlace { buf, message })
    }

    /// True if the message is read in place in the transport buffer;
    /// false if it is an owned message (it was decoded or queued before).
    pub fn is_in_place(&self) -> bool {
        matches!(self.0, Repr::InPlace { .. })
    }

    /// Number of frames (at least 1).
    pub fn frame_count(&self) -> usize {
        match self.0 {
            Repr::Owned(m) => m.frame_count(),
            Repr::InPlace { message, .. } => message.frame_count(),
        }
    }

    /// Total payload bytes of all frames: always the sum of the frames'
    /// lengths.
    pub fn payload_size(&self) -> usize {
        match self.0 {
            Repr::Owned(m) => m.payload_size(),
            Repr::InPlace { message, .. } => message.payload_size(),
        }
    }

    /// Frame `index`, `None` past the last frame.
    pub fn frame(&self, index: usize) -> Option<LentFrame<'a>> {
        match self.0 {
            Repr::Owned(m) => m
                .frame(index)
                .map(|f| LentFrame::private(f.data(), f.timestamp())),
            Repr::InPlace { buf, message } => Some(LentFrame::shared(buf, message.frame(index)?)),
        }
    }

    /// The frames in order.
    pub fn frames(&self) -> LentFrames<'a> {
        LentFrames(match self.0 {
            Repr::Owned(m) => FramesRepr::Owned(m.frames()),
            Repr::InPlace { buf, message } => FramesRepr::InPlace(buf, message.frames()),
        })
    }

    /// The bytes of all frames, one after the other, copied into a new
    /// vector.
    #[must_use]
    pub fn to_vec(&self) -> Vec<u8> {
        match self.0 {
            Repr::Owned(m) => m.to_vec(),
            Repr::InPlace { .. } => MessageRead::to_vec(self),
        }
    }

    /// Copies the message into an owned [`Message`] (to keep it after the
    /// closure returns): read in place, its frames are copied out as
    /// `receive` copies them (inline up to 64 bytes, the larger ones in one
    /// allocation); an owned message's frames are shared, not copied
    /// (inline ones excepted).
    pub fn to_message(&self) -> Message {
        match self.0 {
            Repr::Owned(m) => Message::from_decoded(m.frames().map(Frame::from)),
            Repr::InPlace { buf, message } => message.to_message(&buf),
        }
    }
}

impl<'l> MessageRead for Lent<'l> {
    type Frame<'a>
        = LentFrame<'a>
    where
        Self: 'a;
    type Frames<'a>
        = LentFrames<'a>
    where
        Self: 'a;

    fn frame_count(&self) -> usize {
        Lent::frame_count(self)
    }

    fn payload_size(&self) -> usize {
        Lent::payload_size(self)
    }

    fn frame(&self, index: usize) -> Option<LentFrame<'_>> {
        Lent::frame(self, index)
    }

    fn frames(&self) -> LentFrames<'_> {
        Lent::frames(self)
    }
}

/// The bytes of a [`LentFrame`].
#[derive(Debug, Clone, Copy)]
enum Bytes<'a> {
    /// Private memory (an owned message's frame).
    Private(&'a [u8]),
    /// In the transport buffer.
    Shared(SharedBytes<'a>),
}

/// One frame of a [`Lent`] message: its length and timestamp (fixed when
/// the buffer was checked) and its bytes. Read in place, the bytes are in
/// memory the sender can still write, so the frame copies them out
/// ([`Self::read`], [`Self::copy_to`], [`Self::to_vec`]) instead of lending
/// a slice; [`Self::as_private`] and the `unsafe` [`Self::as_slice`] say
/// when a slice is sound.
#[derive(Debug, Clone, Copy)]
pub struct LentFrame<'a> {
    bytes: Bytes<'a>,
    timestamp: Option<NtTime>,
}

impl<'a> LentFrame<'a> {
    fn private(data: &'a [u8], timestamp: Option<NtTime>) -> Self {
        LentFrame {
            bytes: Bytes::Private(data),
            timestamp,
        }
    }

    fn shared(buf: SharedBytes<'a>, span: FrameSpan) -> Self {
        // The span was validated against this buffer; an empty view stands
        // in should it not lie inside it.
        let view = buf
            .slice(span.start, span.len)
            .or_else(|| buf.slice(0, 0))
            .unwrap_or(buf);
        LentFrame {
            bytes: Bytes::Shared(view),
            timestamp: span.timestamp,
        }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        match self.bytes {
            Bytes::Private(b) => b.len(),
            Bytes::Shared(b) => b.len(),
        }
    }

    /// True if the frame has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The frame's timestamp.
    pub fn timestamp(&self) -> Option<NtTime> {
        self.timestamp
    }

    /// True if the bytes are read in place in the transport buffer.
    pub fn is_in_place(&self) -> bool {
        matches!(self.bytes, Bytes::Shared(_))
    }

    /// Copies bytes of the frame from `offset` on into `dst`, as many as
    /// fit; returns how many (0 at or past the end). Each call reads the
    /// bytes afresh: a hostile sender could change them between two calls,
    /// never the frame's length.
    pub fn read(&self, offset: usize, dst: &mut [u8]) -> usize {
        match self.bytes {
            Bytes::Private(b) => {
                let src = b.get(offset..).unwrap_or_default();
                let n = src.len().min(dst.len());
                dst[..n].copy_from_slice(&src[..n]);
                n
            }
            Bytes::Shared(b) => b.read(offset, dst),
        }
    }

    /// Copies the frame to the start of `dst`, as much as fits; returns how
    /// many bytes (the frame's length when `dst` is long enough).
    pub fn copy_to(&self, dst: &mut [u8]) -> usize {
        self.read(0, dst)
    }

    /// Copies the frame into a new vector.
    pub fn to_vec(&self) -> Vec<u8> {
        match self.bytes {
            Bytes::Private(b) => b.to_vec(),
            Bytes::Shared(b) => b.to_vec(),
        }
    }

    /// The bytes as a slice if they are in private memory (a frame of an
    /// owned message), `None` if they are read in place.
    pub fn as_private(&self) -> Option<&'a [u8]> {
        match self.bytes {
            Bytes::Private(b) => Some(b),
            Bytes::Shared(_) => None,
        }
    }

    /// Borrows the bytes as a slice, in place if they are in the transport
    /// buffer.
    ///
    /// # Safety
    ///
    /// For a frame read in place, nobody may write the transport buffer's
    /// bytes while the slice is used. An lwmq peer never does (it does not
    /// touch a buffer it sent until the receiver gives it back, which
    /// happens after the closure of `receive_with` returns), but a buggy or
    /// hostile peer can, and the program is then undefined (the compiler
    /// may assume that a value read through the slice and checked is still
    /// the same when used). Without that trust, use [`Self::read`],
    /// [`Self::copy_to`] or [`Self::to_vec`]. For a frame of an owned
    /// message this is always sound (see [`Self::as_private`]).
    pub unsafe fn as_slice(&self) -> &'a [u8] {
        match self.bytes {
            Bytes::Private(b) => b,
            // SAFETY: the caller guarantees that nobody writes these bytes
            // while the slice is in use; the view keeps them mapped for 'a.
            Bytes::Shared(b) => unsafe { b.as_slice() },
        }
    }
}

impl FrameRead for LentFrame<'_> {
    fn len(&self) -> usize {
        LentFrame::len(self)
    }

    fn timestamp(&self) -> Option<NtTime> {
        LentFrame::timestamp(self)
    }

    fn read(&self, offset: usize, dst: &mut [u8]) -> usize {
        LentFrame::read(self, offset, dst)
    }

    fn to_vec(&self) -> Vec<u8> {
        LentFrame::to_vec(self)
    }
}

/// Iterator over the frames of a [`Lent`] message.
#[derive(Clone)]
pub struct LentFrames<'a>(FramesRepr<'a>);

impl std::fmt::Debug for LentFrames<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LentFrames")
            .field("left", &self.len())
            .finish()
    }
}

#[derive(Clone)]
enum FramesRepr<'a> {
    Owned(crate::message::Frames<'a>),
    InPlace(SharedBytes<'a>, IndexedFrames<'a>),
}

impl<'a> Iterator for LentFrames<'a> {
    type Item = LentFrame<'a>;

    fn next(&mut self) -> Option<LentFrame<'a>> {
        match &mut self.0 {
            FramesRepr::Owned(frames) => frames
                .next()
                .map(|f| LentFrame::private(f.data(), f.timestamp())),
            FramesRepr::InPlace(buf, frames) => Some(LentFrame::shared(*buf, frames.next()?)),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.0 {
            FramesRepr::Owned(frames) => frames.size_hint(),
            FramesRepr::InPlace(_, frames) => frames.size_hint(),
        }
    }
}

impl ExactSizeIterator for LentFrames<'_> {}

impl std::iter::FusedIterator for LentFrames<'_> {}
