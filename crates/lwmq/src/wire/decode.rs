//! The decoder's reading core, and the decoders of private bytes.
//!
//! [`Cursor`] reads a [`Source`] strictly forward: every byte it reads is
//! read once, and every value the decoder acts on is a private copy read
//! through it. [`frame`] and [`message_header`] read one frame and one
//! frame count, checking each value before the next byte is read;
//! [`walk_buffer`] drives a whole buffer (header, declared messages, no
//! trailing bytes). The index ([`super::BufferIndex`]) and the decoders of
//! private bytes below ([`validate_buffer`], [`BufferReader`]) are built
//! from these, so every decoder applies the same checks in the same order
//! and reports the same error.

use crate::message::{Message, NtTime, MAX_FRAMES, MAX_FRAME_SIZE};

use super::{
    index, Field, Source, WireError, BUFFER_HEADER_LEN, MAGIC, MAX_BUFFER_LEN, MAX_VARINT_LEN,
    TIMESTAMP_LEN, VERSION,
};

/// Reads a source forward, each byte at most once.
pub(crate) struct Cursor<'s, S: Source + ?Sized> {
    src: &'s S,
    pos: usize,
    /// `src.len()`, read once (it is this process's value anyway).
    len: usize,
}

impl<'s, S: Source + ?Sized> Cursor<'s, S> {
    #[inline(always)]
    pub(crate) fn new(src: &'s S, pos: usize) -> Self {
        Cursor {
            src,
            pos,
            len: src.len(),
        }
    }

    /// Offset of the next byte.
    #[inline(always)]
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// The source read.
    #[inline(always)]
    pub(crate) fn source(&self) -> &'s S {
        self.src
    }

    /// Moves to `pos`, which a cursor over the same source reached by
    /// reading forward from here.
    #[inline(always)]
    pub(crate) fn seek(&mut self, pos: usize) {
        self.pos = pos;
    }

    /// Bytes after the cursor.
    #[inline(always)]
    pub(crate) fn remaining(&self) -> usize {
        self.len.saturating_sub(self.pos)
    }

    /// Reads the next byte and moves past it.
    #[inline(always)]
    pub(crate) fn byte(&mut self) -> Option<u8> {
        let b = self.src.byte(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    /// Moves past `n` bytes without reading them; returns where they start,
    /// or `None` (cursor unchanged) if fewer remain.
    #[inline(always)]
    pub(crate) fn skip(&mut self, n: usize) -> Option<usize> {
        if n > self.remaining() {
            return None;
        }
        let start = self.pos;
        self.pos += n;
        Some(start)
    }

    /// Reads `N` bytes, or none (cursor unchanged) if fewer remain.
    #[inline(always)]
    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        if N > self.remaining() {
            return None;
        }
        let mut out = [0u8; N];
        for b in &mut out {
            *b = self.byte()?;
        }
        Some(out)
    }

    /// Reads a varint (the one- and two-byte forms inline).
    #[inline(always)]
    pub(crate) fn varint(&mut self, field: Field) -> Result<u64, WireError> {
        let offset = self.pos;
        let Some(b0) = self.byte() else {
            return Err(WireError::Truncated { offset, field });
        };
        if b0 < 0x80 {
            return Ok(u64::from(b0));
        }
        self.varint_after(offset, b0, field)
    }

    /// The rest of the varint at `offset`, whose first byte `b0` (with its
    /// continuation bit set) was read already.
    #[inline(always)]
    fn varint_after(&mut self, offset: usize, b0: u8, field: Field) -> Result<u64, WireError> {
        match self.byte() {
            // Two bytes; a second byte of 0 would be non-canonical.
            Some(b1) if b1.wrapping_sub(1) < 0x7f => {
                Ok(u64::from(b0 & 0x7f) | (u64::from(b1) << 7))
            }
            b1 => {
                // Out of line, on values: the cursor stays in registers.
                let (value, pos) = varint_slow(self.src, self.pos, offset, b0, b1, field)?;
                self.pos = pos;
                Ok(value)
            }
        }
    }
}

/// [`Cursor::varint`] beyond two bytes, and every error: `b0` (with its
/// continuation bit set) and `b1` (`None` if absent) were read already, and
/// `pos` is the offset after them. Returns the value and the offset after
/// the varint.
#[cold]
#[inline(never)]
fn varint_slow<S: Source + ?Sized>(
    src: &S,
    mut pos: usize,
    offset: usize,
    b0: u8,
    b1: Option<u8>,
    field: Field,
) -> Result<(u64, usize), WireError> {
    let mut value = u64::from(b0 & 0x7f);
    let mut next = b1;
    for i in 1..MAX_VARINT_LEN {
        let Some(byte) = next else {
            return Err(WireError::Truncated { offset, field });
        };
        // The 10th byte holds bit 63 only.
        if i == MAX_VARINT_LEN - 1 && byte > 1 {
            return Err(WireError::VarintOverflow { offset, field });
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            if byte == 0 {
                return Err(WireError::NonCanonicalVarint { offset, field });
            }
            return Ok((value, pos));
        }
        if i + 1 < MAX_VARINT_LEN {
            next = src.byte(pos);
            pos += usize::from(next.is_some());
        }
    }
    Err(WireError::VarintOverflow { offset, field })
}

/// Where one frame's bytes are in a buffer, and its timestamp: what the
/// decoder read of its header, checked. The bytes themselves are not read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameSpan {
    /// Offset of the frame's first byte in the buffer.
    pub start: usize,
    /// Length in bytes.
    pub len: usize,
    /// The frame's timestamp.
    pub timestamp: Option<NtTime>,
}

/// Reads the rest of the frame count of the message at `offset`, whose
/// first byte `c0` was read already; returns the number of frames.
#[inline(always)]
pub(crate) fn message_header<S: Source + ?Sized>(
    cur: &mut Cursor<'_, S>,
    offset: usize,
    c0: u8,
) -> Result<usize, WireError> {
    let count = if c0 < 0x80 {
        u64::from(c0)
    } else {
        cur.varint_after(offset, c0, Field::FrameCount)?
    };
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
    // At most MAX_FRAMES: fits in usize.
    Ok(count as usize)
}

/// Reads a frame header (and timestamp) and moves past the frame's bytes.
#[inline(always)]
pub(crate) fn frame<S: Source + ?Sized>(cur: &mut Cursor<'_, S>) -> Result<FrameSpan, WireError> {
    let offset = cur.pos();
    let header = cur.varint(Field::FrameHeader)?;
    frame_rest(cur, offset, header)
}

/// The rest of the frame at `offset` whose header `header` was read: its
/// timestamp, and its bytes, moved past.
#[inline(always)]
pub(crate) fn frame_rest<S: Source + ?Sized>(
    cur: &mut Cursor<'_, S>,
    offset: usize,
    header: u64,
) -> Result<FrameSpan, WireError> {
    let len = header >> 1;
    if len > MAX_FRAME_SIZE as u64 {
        return Err(WireError::FrameTooLarge {
            offset,
            len,
            max: MAX_FRAME_SIZE,
        });
    }
    // Fits in usize: bounded by MAX_FRAME_SIZE above.
    let len = len as usize;
    let timestamp = if header & 1 == 1 {
        let at = cur.pos();
        let ticks = cur.array::<TIMESTAMP_LEN>().ok_or(WireError::Truncated {
            offset: at,
            field: Field::Timestamp,
        })?;
        Some(NtTime::from_ticks(u64::from_le_bytes(ticks)))
    } else {
        None
    };
    let remaining = cur.remaining();
    let start = cur.skip(len).ok_or(WireError::FramePastEnd {
        offset,
        len,
        remaining,
    })?;
    Ok(FrameSpan {
        start,
        len,
        timestamp,
    })
}

/// The header of the frame at `offset`, of which `h0` (continuation bit
/// set) and then `h1` (`None`: absent) were read, `pos` being the offset
/// after them: `(header, offset after it)`.
pub(crate) fn header_after<S: Source + ?Sized>(
    src: &S,
    pos: usize,
    offset: usize,
    h0: u8,
    h1: Option<u8>,
) -> Result<(u64, usize), WireError> {
    match h1 {
        Some(b1) if b1.wrapping_sub(1) < 0x7f => {
            Ok((u64::from(h0 & 0x7f) | (u64::from(b1) << 7), pos))
        }
        _ => varint_slow(src, pos, offset, h0, h1, Field::FrameHeader),
    }
}

/// Reads and checks the buffer header; returns the declared message count.
pub(crate) fn buffer_header<S: Source + ?Sized>(cur: &mut Cursor<'_, S>) -> Result<u32, WireError> {
    let len = cur.remaining();
    if len > MAX_BUFFER_LEN {
        return Err(WireError::BufferTooLong {
            len,
            max: MAX_BUFFER_LEN,
        });
    }
    let Some([magic, version, f0, f1, c0, c1, c2, c3]) = cur.array::<BUFFER_HEADER_LEN>() else {
        return Err(WireError::BufferTooShort {
            len,
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
    Ok(u32::from_le_bytes([c0, c1, c2, c3]))
}

/// Walks a whole buffer: its header, then, once per declared message,
/// reads the message's first byte and calls `message` with the message's
/// offset and that byte (it must read the rest of exactly that message
/// through the cursor); then checks that nothing follows. Returns the
/// message count.
#[inline(always)]
pub(crate) fn walk_buffer<S, F>(src: &S, mut message: F) -> Result<u32, WireError>
where
    S: Source + ?Sized,
    F: FnMut(&mut Cursor<'_, S>, usize, u8) -> Result<(), WireError>,
{
    let mut cur = Cursor::new(src, 0);
    let declared = buffer_header(&mut cur)?;
    for decoded in 0..declared {
        let offset = cur.pos();
        let Some(c0) = cur.byte() else {
            return Err(WireError::MissingMessages { declared, decoded });
        };
        message(&mut cur, offset, c0)?;
    }
    match cur.remaining() {
        0 => Ok(declared),
        len => Err(WireError::TrailingBytes {
            offset: cur.pos(),
            len,
        }),
    }
}

/// Reads the rest of the message at `offset` (first byte `c0`), visiting
/// nothing but its structure.
#[inline(always)]
fn skip_message<S: Source + ?Sized>(
    cur: &mut Cursor<'_, S>,
    offset: usize,
    c0: u8,
) -> Result<(), WireError> {
    let count = message_header(cur, offset, c0)?;
    for _ in 0..count {
        frame(cur)?;
    }
    Ok(())
}

/// Validates a whole received buffer of private bytes without allocating;
/// returns its message count. (The receive path validates shared buffers
/// with [`super::BufferIndex::build`], which keeps what it read.)
pub fn validate_buffer(buf: &[u8]) -> Result<u32, WireError> {
    walk_buffer(buf, skip_message)
}

/// A frame of a decoded buffer of private bytes, borrowed from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawFrame<'a> {
    /// The frame's bytes.
    pub data: &'a [u8],
    /// The frame's timestamp.
    pub timestamp: Option<NtTime>,
}

impl<'a> RawFrame<'a> {
    fn at(buf: &'a [u8], span: FrameSpan) -> Self {
        RawFrame {
            // The span was checked against this buffer; `get` keeps this
            // panic-free regardless.
            data: buf.get(span.start..span.start + span.len).unwrap_or(&[]),
            timestamp: span.timestamp,
        }
    }
}

/// A validated message of a buffer of private bytes, borrowed from it:
/// visiting its frames allocates nothing.
#[derive(Clone, Copy, Debug)]
pub struct RawMessage<'a> {
    buf: &'a [u8],
    /// Offset of the message in the buffer.
    offset: usize,
    /// Offset of the first frame.
    frames_start: usize,
    frame_count: usize,
    payload_size: usize,
    /// The first frame.
    first: FrameSpan,
}

impl<'a> RawMessage<'a> {
    /// Validates the message at `offset`: `(message, position after it)`.
    fn parse(buf: &'a [u8], offset: usize) -> Result<(Self, usize), WireError> {
        let mut cur = Cursor::new(buf, offset);
        let c0 = cur.byte().ok_or(WireError::Truncated {
            offset,
            field: Field::FrameCount,
        })?;
        let frame_count = message_header(&mut cur, offset, c0)?;
        let frames_start = cur.pos();
        let first = frame(&mut cur)?;
        let mut payload_size = first.len;
        for _ in 1..frame_count {
            // Lengths were checked against the buffer: the sum cannot
            // overflow; saturate anyway.
            payload_size = payload_size.saturating_add(frame(&mut cur)?.len);
        }
        let message = RawMessage {
            buf,
            offset,
            frames_start,
            frame_count,
            payload_size,
            first,
        };
        Ok((message, cur.pos()))
    }

    /// The first frame.
    pub fn first_frame(&self) -> RawFrame<'a> {
        RawFrame::at(self.buf, self.first)
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
    /// frames of up to [`MAX_INLINE_FRAME_SIZE`](crate::message::MAX_INLINE_FRAME_SIZE)
    /// bytes inline, all larger frames of the message together in one
    /// allocation.
    pub fn to_message(&self) -> Message {
        if self.frame_count == 1 {
            return index::to_message(self.buf, std::slice::from_ref(&self.first));
        }
        // Walking the frames again is sound here: the buffer is a `&[u8]`,
        // which cannot change.
        let mut spans = Vec::with_capacity(self.frame_count);
        let mut cur = Cursor::new(self.buf, self.frames_start);
        while spans.len() < self.frame_count {
            match frame(&mut cur) {
                Ok(span) => spans.push(span),
                Err(_) => break,
            }
        }
        index::to_message(self.buf, &spans)
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
        // Validated by `RawMessage::parse` over the same immutable bytes;
        // an error cannot occur here, and would end the iteration if it did.
        let mut cur = Cursor::new(self.buf, self.pos);
        let span = frame(&mut cur).ok()?;
        self.pos = cur.pos();
        Some(RawFrame::at(self.buf, span))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left))
    }
}

/// Decodes a buffer of private bytes (for example one copied out of a
/// transport buffer, or read from a file).
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
        let mut cur = Cursor::new(buf, 0);
        let declared = buffer_header(&mut cur)?;
        Ok(BufferReader {
            buf,
            pos: cur.pos(),
            declared,
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
