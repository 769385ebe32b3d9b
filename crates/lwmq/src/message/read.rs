//! One way to read a message, whatever holds it: [`MessageRead`] and
//! [`FrameRead`].
//!
//! An owned [`Message`] and a message lent in place by
//! [`Channel::receive_with`](crate::Channel::receive_with)
//! ([`Lent`](crate::channel::Lent)) read the same way: a frame count, a
//! payload size, frames by index or in order, and frames that tell their
//! length and timestamp and copy their bytes out. The types keep these
//! methods as their own (no import needed); the traits let one generic
//! function read either:
//!
//! ```
//! use lwmq::message::{FrameRead, Message, MessageRead};
//!
//! /// The first 8 bytes of the first frame as a sequence number.
//! fn sequence(m: &impl MessageRead) -> Option<u64> {
//!     let mut seq = [0u8; 8];
//!     let frame = m.frame(0)?;
//!     (frame.copy_to(&mut seq) == 8).then(|| u64::from_le_bytes(seq))
//! }
//!
//! let m = Message::from(Vec::from(42u64.to_le_bytes()));
//! assert_eq!(sequence(&m), Some(42));
//! ```
//!
//! Reading copies out (`read`, `copy_to`, `to_vec`) rather than lending a
//! `&[u8]`, because a frame read in place lies in memory its sender can
//! still write (see [`LentFrame`](crate::channel::LentFrame)); an owned
//! frame also lends its bytes ([`FrameRef::data`]).

use super::{Frame, FrameRef, Frames, Message, NtTime};

/// Reading one frame: its length, its timestamp and its bytes, copied out.
pub trait FrameRead {
    /// Length in bytes (fixed: a frame's length never changes).
    fn len(&self) -> usize;

    /// True if the frame has no bytes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The frame's timestamp, if it has one.
    fn timestamp(&self) -> Option<NtTime>;

    /// Copies bytes of the frame from `offset` on into `dst`, as many as
    /// fit; returns how many (0 at or past the end).
    fn read(&self, offset: usize, dst: &mut [u8]) -> usize;

    /// Copies the frame to the start of `dst`, as much as fits; returns how
    /// many bytes (the frame's length when `dst` is long enough).
    fn copy_to(&self, dst: &mut [u8]) -> usize {
        self.read(0, dst)
    }

    /// Copies the frame into a new vector.
    fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0; self.len()];
        let n = self.read(0, &mut v);
        v.truncate(n);
        v
    }
}

/// Reading a message: frame count, payload size and frames.
///
/// An owned [`Message`] and a message lent in place by
/// [`Channel::receive_with`](crate::Channel::receive_with)
/// ([`Lent`](crate::channel::Lent)) both implement it, so one generic
/// function reads either; the types also have these methods as their own
/// (no import needed).
///
/// ```
/// use lwmq::message::{FrameRead, Message, MessageRead};
///
/// /// The first 8 bytes of the first frame as a sequence number.
/// fn sequence(m: &impl MessageRead) -> Option<u64> {
///     let mut seq = [0u8; 8];
///     let frame = m.frame(0)?;
///     (frame.copy_to(&mut seq) == 8).then(|| u64::from_le_bytes(seq))
/// }
///
/// let m = Message::from(Vec::from(42u64.to_le_bytes()));
/// assert_eq!(sequence(&m), Some(42));
/// ```
///
/// Reading copies out (`read`, `copy_to`, `to_vec`) rather than lending a
/// `&[u8]`, because a frame read in place lies in memory its sender can
/// still write (see [`LentFrame`](crate::channel::LentFrame)); an owned
/// frame also lends its bytes ([`FrameRef::data`]).
pub trait MessageRead {
    /// One frame as this message gives it.
    type Frame<'a>: FrameRead
    where
        Self: 'a;

    /// The frames in order.
    type Frames<'a>: ExactSizeIterator<Item = Self::Frame<'a>>
    where
        Self: 'a;

    /// Number of frames.
    fn frame_count(&self) -> usize;

    /// Total payload bytes: the sum of the frames' lengths.
    fn payload_size(&self) -> usize;

    /// Frame `index`, `None` past the last frame.
    fn frame(&self, index: usize) -> Option<Self::Frame<'_>>;

    /// The frames in order.
    fn frames(&self) -> Self::Frames<'_>;

    /// The bytes of all frames, one after the other, in a new vector.
    fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0; self.payload_size()];
        let mut at = 0;
        for frame in self.frames() {
            at += frame.read(0, v.get_mut(at..).unwrap_or_default());
        }
        v.truncate(at);
        v
    }
}

impl FrameRead for Frame {
    fn len(&self) -> usize {
        Frame::len(self)
    }

    fn timestamp(&self) -> Option<NtTime> {
        Frame::timestamp(self)
    }

    fn read(&self, offset: usize, dst: &mut [u8]) -> usize {
        Frame::read(self, offset, dst)
    }

    fn to_vec(&self) -> Vec<u8> {
        Frame::to_vec(self)
    }
}

impl FrameRead for FrameRef<'_> {
    fn len(&self) -> usize {
        FrameRef::len(self)
    }

    fn timestamp(&self) -> Option<NtTime> {
        FrameRef::timestamp(self)
    }

    fn read(&self, offset: usize, dst: &mut [u8]) -> usize {
        FrameRef::read(self, offset, dst)
    }

    fn to_vec(&self) -> Vec<u8> {
        FrameRef::to_vec(self)
    }
}

impl MessageRead for Message {
    type Frame<'a> = FrameRef<'a>;
    type Frames<'a> = Frames<'a>;

    fn frame_count(&self) -> usize {
        Message::frame_count(self)
    }

    fn payload_size(&self) -> usize {
        Message::payload_size(self)
    }

    fn frame(&self, index: usize) -> Option<FrameRef<'_>> {
        Message::frame(self, index)
    }

    fn frames(&self) -> Frames<'_> {
        Message::frames(self)
    }

    fn to_vec(&self) -> Vec<u8> {
        Message::to_vec(self)
    }
}
