//! [`BufferIndex`]: what one read of a received buffer found, kept so that
//! nothing of the buffer's structure is ever read twice.
//!
//! [`BufferIndex::build`] walks the whole buffer once (buffer header, every
//! frame count, frame header and timestamp, each byte read once through
//! the decoder's cursor) and records, per message, where its frames are.
//! Any fault rejects the whole buffer before one of its messages is handed
//! out. Afterwards each message is served from the index alone: its frame
//! count and payload size are those of its recorded frames, and its bytes
//! are copied ([`IndexedMessage::to_message`]) or viewed from the recorded
//! ranges only.
//!
//! Entries are compact (12 bytes and a tag for the common one-frame
//! message without timestamp, whose frame needs no entry of its own),
//! because a 1 MiB buffer of 64-byte messages holds about 15,600 of them.

use bytes::Bytes;

use crate::message::{Frame, Message, NtTime, MAX_INLINE_FRAME_SIZE};

use super::decode::{
    buffer_header, frame, frame_rest, header_after, message_header, Cursor, FrameSpan,
};
use super::shared::{copy_out, gather};
use super::{Field, Source, WireError};

/// One message of an indexed buffer. Offsets and lengths fit in 32 bits:
/// the decoder refuses buffers longer than [`super::MAX_BUFFER_LEN`].
#[derive(Clone, Copy, Debug, Default)]
enum Entry {
    /// Not a message (a slot not written yet).
    #[default]
    Empty,
    /// One frame without timestamp: where its bytes are.
    Simple { start: u32, len: u32 },
    /// Any other message: `frames[first..first + count]`, and the sum of
    /// their lengths.
    General {
        first: u32,
        count: u32,
        payload: u32,
    },
}

/// The messages of a validated buffer: where each message's frames are,
/// as read once (see the [`wire`](crate::wire) module: one read of every
/// byte that matters).
///
/// Reusable: [`Self::build`] clears it first and keeps its allocations.
#[derive(Debug, Default)]
pub struct BufferIndex {
    /// The messages: the first `count` slots. The vector keeps its
    /// high-water length, so that building writes into slots of a slice
    /// (whose length stays in a register) instead of pushing.
    slots: Vec<Entry>,
    count: usize,
    /// The frames of the messages that are not `Simple`.
    frames: Vec<FrameSpan>,
}

/// Slots added when the index is full (then doubling).
const MIN_SLOTS: usize = 256;

/// Slots (16 bytes each) and frames (32 bytes each) an index keeps
/// between buffers whatever the last buffer needed: 1 MiB and 2 MiB. A
/// larger index is cut back to twice what the last buffer used once that
/// is under a quarter of it, so that one buffer of tiny messages (a peer
/// can send 512 Ki empty messages in 1 MiB) does not pin its index.
const KEEP_SLOTS: usize = 1 << 16;
const KEEP_FRAMES: usize = 1 << 16;

impl BufferIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads and validates the whole buffer `src` (each byte of its
    /// structure exactly once, its payload bytes not at all) and indexes
    /// its messages; returns their number. On error the index is left
    /// empty: none of the buffer's messages can be delivered.
    // Out of line: a small function of its own keeps the loop's values in
    // registers (inlined into the receive path, they were spilled).
    #[inline(never)]
    pub fn build<S: Source + ?Sized>(&mut self, src: &S) -> Result<u32, WireError> {
        self.clear();
        let built = Self::fill(src, &mut self.slots, &mut self.frames);
        if let Ok((_, n)) = built {
            self.count = n;
        } else {
            self.clear();
        }
        self.trim();
        built.map(|(declared, _)| declared)
    }

    /// Gives back memory a much larger buffer needed (see [`KEEP_SLOTS`]).
    fn trim(&mut self) {
        if self.slots.len() > KEEP_SLOTS && self.count < self.slots.len() / 4 {
            self.slots.truncate((self.count * 2).max(KEEP_SLOTS));
            self.slots.shrink_to_fit();
        }
        let frames = self.frames.len();
        if self.frames.capacity() > KEEP_FRAMES && frames < self.frames.capacity() / 4 {
            self.frames.shrink_to((frames * 2).max(KEEP_FRAMES));
        }
    }

    /// Walks the buffer (as `walk_buffer` does), writing an entry per message into `slots` (growing
    /// them as needed): `(declared messages, entries written)`.
    #[inline(always)]
    fn fill<S: Source + ?Sized>(
        src: &S,
        slots: &mut Vec<Entry>,
        frames: &mut Vec<FrameSpan>,
    ) -> Result<(u32, usize), WireError> {
        let mut cur = Cursor::new(src, 0);
        let declared = buffer_header(&mut cur)?;
        let mut n = 0;
        let mut room = &mut slots[..];
        for decoded in 0..declared {
            let offset = cur.pos();
            let Some(c0) = cur.byte() else {
                return Err(WireError::MissingMessages { declared, decoded });
            };
            let entry = Self::read_message(frames, &mut cur, offset, c0)?;
            if n == room.len() {
                grow(slots);
                room = &mut slots[..];
            }
            if let Some(slot) = room.get_mut(n) {
                *slot = entry;
                n += 1;
            }
        }
        match cur.remaining() {
            0 => Ok((declared, n)),
            len => Err(WireError::TrailingBytes {
                offset: cur.pos(),
                len,
            }),
        }
    }

    /// Reads the rest of the message at `offset` (first byte `c0`): its
    /// entry (its frames go to `frames` unless it is `Simple`).
    #[inline(always)]
    fn read_message<S: Source + ?Sized>(
        frames: &mut Vec<FrameSpan>,
        cur: &mut Cursor<'_, S>,
        offset: usize,
        c0: u8,
    ) -> Result<Entry, WireError> {
        // Offsets and lengths lie inside the buffer, whose length the
        // header check bounded by `MAX_BUFFER_LEN` (`u32::MAX`); so does
        // the sum of a message's lengths (its frames do not overlap), and
        // the number of frames (each takes at least one byte).
        if c0 == 1 {
            // The common shape first: one frame, no timestamp, a header of
            // one or two bytes (up to 8,191 bytes of data), read here; any
            // other one-frame message goes on out of line from what was
            // read.
            let hoff = cur.pos();
            let Some(h0) = cur.byte() else {
                return Err(WireError::Truncated {
                    offset: hoff,
                    field: Field::FrameHeader,
                });
            };
            let (header, h1) = if h0 < 0x80 {
                (u64::from(h0), None)
            } else {
                let h1 = cur.byte();
                match h1 {
                    Some(b1) if b1.wrapping_sub(1) < 0x7f => {
                        (u64::from(h0 & 0x7f) | (u64::from(b1) << 7), None)
                    }
                    _ => (u64::MAX, Some(h1)),
                }
            };
            if header & 1 == 0 {
                // Not a timestamp, and not `u64::MAX` (a longer varint).
                let len = (header >> 1) as usize;
                let remaining = cur.remaining();
                let Some(start) = cur.skip(len) else {
                    return Err(WireError::FramePastEnd {
                        offset: hoff,
                        len,
                        remaining,
                    });
                };
                return Ok(Entry::Simple {
                    start: start as u32,
                    len: len as u32,
                });
            }
            let (entry, pos) =
                Self::read_one(frames, cur.source(), cur.pos(), hoff, h0, header, h1)?;
            cur.seek(pos);
            return Ok(entry);
        }
        // Out of line, on values: the cursor stays in registers.
        let (entry, pos) = Self::read_general(frames, cur.source(), cur.pos(), offset, c0)?;
        cur.seek(pos);
        Ok(entry)
    }

    /// [`Self::read_message`] for a one-frame message of another shape:
    /// the frame header at `offset` began with `h0`; it is `header` if
    /// `h1` is `None`, else `h0` was followed by `h1` (`Some(None)`: the
    /// buffer ended) and the varint goes on. `pos` is the offset after what
    /// was read. Returns the entry and the offset after the message.
    #[cold]
    #[inline(never)]
    fn read_one<S: Source + ?Sized>(
        frames: &mut Vec<FrameSpan>,
        src: &S,
        pos: usize,
        offset: usize,
        h0: u8,
        header: u64,
        h1: Option<Option<u8>>,
    ) -> Result<(Entry, usize), WireError> {
        let (header, pos) = match h1 {
            None => (header, pos),
            Some(h1) => header_after(src, pos, offset, h0, h1)?,
        };
        let cur = &mut Cursor::new(src, pos);
        let only = frame_rest(cur, offset, header)?;
        let entry = if only.timestamp.is_none() {
            Entry::Simple {
                start: only.start as u32,
                len: only.len as u32,
            }
        } else {
            frames.push(only);
            Entry::General {
                first: (frames.len() - 1) as u32,
                count: 1,
                payload: only.len as u32,
            }
        };
        Ok((entry, cur.pos()))
    }

    /// [`Self::read_message`] for more than one frame (or a malformed
    /// frame count).
    /// `pos` is the offset after `c0`; returns the entry and the offset
    /// after the message.
    #[inline(never)]
    fn read_general<S: Source + ?Sized>(
        frames: &mut Vec<FrameSpan>,
        src: &S,
        pos: usize,
        offset: usize,
        c0: u8,
    ) -> Result<(Entry, usize), WireError> {
        let cur = &mut Cursor::new(src, pos);
        let count = message_header(cur, offset, c0)?;
        let at = frames.len();
        let mut payload = 0;
        for _ in 0..count {
            let f = frame(cur)?;
            payload += f.len;
            frames.push(f);
        }
        let entry = Entry::General {
            first: at as u32,
            count: count as u32,
            payload: payload as u32,
        };
        Ok((entry, cur.pos()))
    }

    /// `(slots, frame capacity)` kept for the next buffer.
    #[cfg(test)]
    pub(crate) fn retained(&self) -> (usize, usize) {
        (self.slots.len(), self.frames.capacity())
    }

    /// Forgets every message.
    pub fn clear(&mut self) {
        self.count = 0;
        self.frames.clear();
    }

    /// Number of messages.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True if no message is indexed.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Message `i`, or `None` past the last one.
    #[inline]
    pub fn message(&self, i: usize) -> Option<IndexedMessage<'_>> {
        let shape = match *self.slots.get(..self.count)?.get(i)? {
            Entry::Empty => return None,
            Entry::Simple { start, len } => Shape::Simple {
                start: start as usize,
                len: len as usize,
            },
            Entry::General {
                first,
                count,
                payload,
            } => {
                let first = first as usize;
                Shape::General {
                    frames: self.frames.get(first..first + count as usize)?,
                    payload: payload as usize,
                }
            }
        };
        Some(IndexedMessage { shape })
    }
}

/// Makes room for more slots: doubles them (at least [`MIN_SLOTS`]). The
/// number of slots never exceeds the number of messages of the largest
/// buffer indexed (at most one per two bytes of it).
#[cold]
#[inline(never)]
fn grow(slots: &mut Vec<Entry>) {
    let more = slots.len().max(MIN_SLOTS);
    slots.resize(slots.len() + more, Entry::Empty);
}

/// One message of a [`BufferIndex`]: its frames' places in the buffer.
/// Its frame count and payload size always agree with its frames.
#[derive(Clone, Copy, Debug)]
pub struct IndexedMessage<'i> {
    shape: Shape<'i>,
}

#[derive(Clone, Copy, Debug)]
enum Shape<'i> {
    Simple {
        start: usize,
        len: usize,
    },
    General {
        frames: &'i [FrameSpan],
        payload: usize,
    },
}

impl<'i> IndexedMessage<'i> {
    /// Number of frames (at least 1).
    #[inline]
    pub fn frame_count(&self) -> usize {
        match self.shape {
            Shape::Simple { .. } => 1,
            Shape::General { frames, .. } => frames.len(),
        }
    }

    /// Total payload bytes: the sum of the frames' lengths.
    #[inline]
    pub fn payload_size(&self) -> usize {
        match self.shape {
            Shape::Simple { len, .. } => len,
            Shape::General { payload, .. } => payload,
        }
    }

    /// Frame `index`, or `None` past the last one.
    #[inline]
    pub fn frame(&self, index: usize) -> Option<FrameSpan> {
        match self.shape {
            Shape::Simple { start, len } => (index == 0).then_some(FrameSpan {
                start,
                len,
                timestamp: None,
            }),
            Shape::General { frames, .. } => frames.get(index).copied(),
        }
    }

    /// The frames in order.
    #[inline]
    pub fn frames(&self) -> IndexedFrames<'i> {
        match self.shape {
            Shape::Simple { start, len } => IndexedFrames {
                first: Some(FrameSpan {
                    start,
                    len,
                    timestamp: None,
                }),
                rest: [].iter(),
            },
            Shape::General { frames, .. } => IndexedFrames {
                first: None,
                rest: frames.iter(),
            },
        }
    }

    /// Copies the message out of `src` (the source the index was built
    /// from) into an owned [`Message`]: frames of up to
    /// [`MAX_INLINE_FRAME_SIZE`] bytes inline, all larger frames of the
    /// message together in one allocation. Only the indexed ranges are
    /// read. (Given another, shorter source, bytes outside it read as
    /// zeros; the frames keep their indexed lengths.)
    #[inline]
    pub fn to_message<S: Source + ?Sized>(&self, src: &S) -> Message {
        match self.shape {
            Shape::Simple { start, len } => single(src, start, len, None),
            Shape::General { frames, .. } => to_message(src, frames),
        }
    }
}

/// Iterator over the frames of an [`IndexedMessage`].
#[derive(Clone, Debug)]
pub struct IndexedFrames<'i> {
    first: Option<FrameSpan>,
    rest: std::slice::Iter<'i, FrameSpan>,
}

impl Iterator for IndexedFrames<'_> {
    type Item = FrameSpan;

    #[inline]
    fn next(&mut self) -> Option<FrameSpan> {
        self.first.take().or_else(|| self.rest.next().copied())
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::from(self.first.is_some()) + self.rest.len();
        (n, Some(n))
    }
}

impl ExactSizeIterator for IndexedFrames<'_> {}

impl std::iter::FusedIterator for IndexedFrames<'_> {}

/// A small frame copied inline.
#[inline(always)]
fn inline<S: Source + ?Sized>(
    src: &S,
    start: usize,
    len: usize,
    timestamp: Option<NtTime>,
) -> Frame {
    let mut bytes = [0u8; MAX_INLINE_FRAME_SIZE];
    // A full inline frame (the 64-byte message) is a fixed-size copy.
    if len == MAX_INLINE_FRAME_SIZE {
        src.copy_to(start, &mut bytes);
    } else if let Some(dst) = bytes.get_mut(..len) {
        src.copy_to(start, dst);
    }
    // A failed copy (a range outside `src`) leaves zeros: same length.
    Frame::decoded_inline(len, bytes, timestamp)
}

/// A one-frame message copied out of `src`.
#[inline(always)]
fn single<S: Source + ?Sized>(
    src: &S,
    start: usize,
    len: usize,
    timestamp: Option<NtTime>,
) -> Message {
    if len <= MAX_INLINE_FRAME_SIZE {
        return Message::from_inline_decoded(len, timestamp, |bytes| {
            // A full inline frame (the 64-byte message) is a fixed-size
            // copy. A failed copy (a range outside `src`) leaves zeros.
            if len == MAX_INLINE_FRAME_SIZE {
                src.copy_to(start, bytes);
            } else if let Some(dst) = bytes.get_mut(..len) {
                src.copy_to(start, dst);
            }
        });
    }
    Message::from_decoded_bytes(copy_out(src, start, len), timestamp)
}

/// A message of `frames` (validated against `src`) copied out of `src`:
/// frames of up to [`MAX_INLINE_FRAME_SIZE`] bytes inline, the larger ones
/// together in one private allocation, each frame a `Bytes` slice of it
/// (so that [`Message::frame_bytes`] and [`Message::into_frames`] give them
/// out without another copy).
pub(crate) fn to_message<S: Source + ?Sized>(src: &S, frames: &[FrameSpan]) -> Message {
    if let [only] = frames {
        return single(src, only.start, only.len, only.timestamp);
    }
    let is_large = |f: &&FrameSpan| f.len > MAX_INLINE_FRAME_SIZE;
    let large_bytes = frames
        .iter()
        .filter(is_large)
        .fold(0usize, |sum, f| sum.saturating_add(f.len));
    let large = if large_bytes == 0 {
        Bytes::new()
    } else {
        gather(
            src,
            frames.iter().filter(is_large).map(|f| (f.start, f.len)),
            large_bytes,
        )
    };
    let mut at = 0;
    Message::from_decoded(frames.iter().map(|f| {
        if f.len <= MAX_INLINE_FRAME_SIZE {
            return inline(src, f.start, f.len, f.timestamp);
        }
        let end = at + f.len;
        let data = if end <= large.len() {
            large.slice(at..end)
        } else {
            // Not reached: `large` holds exactly these frames.
            Bytes::from(vec![0u8; f.len])
        };
        at = end;
        Frame::decoded_bytes(data, f.timestamp)
    }))
}
