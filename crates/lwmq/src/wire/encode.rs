//! The encoder: [`BufferWriter`] packs whole messages into one transport
//! buffer, writing through a [`SharedBytesMut`] (raw-pointer stores; it
//! never reads the buffer back, so a peer that writes into it meanwhile
//! only changes what it will itself receive).

use crate::message::Message;

use super::{
    encoded_len, frame_header, varint_len, BufferTooSmall, SharedBytesMut, TryPushError,
    BUFFER_HEADER_LEN, MAGIC, MAX_VARINT_LEN, TIMESTAMP_LEN, VERSION,
};

/// Writes `v` at `pos`; returns the position after it, or `None` if it does
/// not fit (then nothing was written).
#[inline]
pub(super) fn put_varint(buf: &mut SharedBytesMut<'_>, pos: usize, mut v: u64) -> Option<usize> {
    if v < 0x80 {
        return buf.write_byte(pos, v as u8).then_some(pos + 1);
    }
    if v < 0x4000 {
        let end = pos.checked_add(2)?;
        return buf
            .write(pos, &[(v as u8) | 0x80, (v >> 7) as u8])
            .then_some(end);
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
    buf.write(pos, tmp.get(..n)?).then_some(end)
}

/// Packs whole messages into one transport buffer.
///
/// ```
/// # use lwmq::{message::Message, internals::wire::{BufferWriter, BufferReader}};
/// let mut buffer = vec![0u8; 65536];
/// let message = Message::from(b"hello");
/// let mut writer = BufferWriter::new(&mut buffer).unwrap();
/// writer.try_push(&message).unwrap();
/// let used = writer.finish();
/// let received: Vec<_> = BufferReader::new(&buffer[..used]).unwrap().collect();
/// assert_eq!(received.len(), 1);
/// ```
#[derive(Debug)]
pub struct BufferWriter<'a> {
    buf: SharedBytesMut<'a>,
    pos: usize,
    count: u32,
}

/// Longest [`single_message_prefix`].
pub const SINGLE_PREFIX_MAX: usize = BUFFER_HEADER_LEN + 1 + MAX_VARINT_LEN;

/// The bytes that come before the payload in a buffer holding only a
/// one-frame message without timestamp of `len` payload bytes (the buffer
/// header, the frame count, the frame header), exactly as
/// [`BufferWriter::push_simple`] and [`BufferWriter::finish`] write them,
/// and how many of the array they fill. A stream transport sends these and
/// then the payload from the caller's memory as that buffer, without
/// assembling it (`SendSide::send_parts`).
pub fn single_message_prefix(len: usize) -> ([u8; SINGLE_PREFIX_MAX], usize) {
    let mut out = [0u8; SINGLE_PREFIX_MAX];
    let mut w = BufferWriter::new(&mut out).expect("longer than the buffer header");
    let end = put_varint(&mut w.buf, BUFFER_HEADER_LEN, 1)
        .and_then(|pos| put_varint(&mut w.buf, pos, frame_header(len, false)))
        .expect("the longest headers fit SINGLE_PREFIX_MAX");
    w.pos = end;
    w.count = 1;
    let n = w.finish();
    (out, n)
}

impl<'a> BufferWriter<'a> {
    /// Starts filling `buf` (a whole buffer in private memory).
    pub fn new(buf: &'a mut [u8]) -> Result<Self, BufferTooSmall> {
        Self::new_in(SharedBytesMut::from_mut_slice(buf))
    }

    /// Starts filling `buf` (a whole transport buffer, which the peer may
    /// see while it is filled).
    pub fn new_in(buf: SharedBytesMut<'a>) -> Result<Self, BufferTooSmall> {
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
        Self::resume_in(SharedBytesMut::from_mut_slice(buf), pos, count)
    }

    /// [`Self::resume`] for a transport buffer.
    pub fn resume_in(buf: SharedBytesMut<'a>, pos: usize, count: u32) -> Option<Self> {
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
    /// External frames must have been acquired (their acquire hooks run,
    /// which the post path does) before this is called.
    pub fn try_push(&mut self, message: &Message) -> Result<(), TryPushError> {
        if let Some((data, None)) = message.single_frame() {
            return self.push_simple(data);
        }
        // No frames, too many, or one too long: the peer would reject the
        // whole buffer.
        if let Err(e) = message.validate() {
            return Err(TryPushError::Invalid(e));
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

    /// Appends a one-frame message without timestamp holding `data`, or
    /// leaves the buffer's content unchanged: [`Self::try_push`]'s path for
    /// such a message, and what `MonoQueue::post_copy` and `post_copies`
    /// write straight from the caller's bytes.
    #[inline]
    pub fn push_simple(&mut self, data: &[u8]) -> Result<(), TryPushError> {
        let header = frame_header(data.len(), false);
        let needed = (1 + varint_len(header)).saturating_add(data.len());
        let available = self.buf.len() - self.pos;
        if needed > available || self.count == u32::MAX {
            return Err(TryPushError::Full { needed, available });
        }
        let buf = &mut self.buf;
        let written = put_varint(buf, self.pos, 1)
            .and_then(|pos| put_varint(buf, pos, header))
            .and_then(|pos| {
                let end = pos.checked_add(data.len())?;
                buf.write(pos, data).then_some(end)
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

    /// Writes the headers of a one-frame message (no timestamp) of `len`
    /// payload bytes after the last message and returns where its payload
    /// goes, `start..end`, without counting it: the caller writes the
    /// payload there (a loan of transport memory) and then calls
    /// [`Self::commit_reserved`] with `end`, or drops the reservation by
    /// doing nothing (the next message overwrites the headers; nothing
    /// before `pos` changed). `None` (nothing written) if it does not fit.
    pub fn reserve_single(&mut self, len: usize) -> Option<(usize, usize)> {
        let header = frame_header(len, false);
        let needed = (1 + varint_len(header)).checked_add(len)?;
        if needed > self.buf.len() - self.pos || self.count == u32::MAX {
            return None;
        }
        let buf = &mut self.buf;
        let start = put_varint(buf, self.pos, 1).and_then(|pos| put_varint(buf, pos, header))?;
        Some((start, start + len))
    }

    /// Counts the message reserved by [`Self::reserve_single`] whose
    /// payload ends at `end` (its payload written meanwhile).
    pub fn commit_reserved(&mut self, end: usize) {
        debug_assert!(end >= self.pos && end <= self.buf.len());
        self.pos = end;
        self.count += 1;
    }

    /// A view of `start..end` of the buffer, to write a reserved payload
    /// into; `None` if the range is not inside it.
    pub fn payload_view(&mut self, start: usize, end: usize) -> Option<SharedBytesMut<'a>> {
        self.buf.sub(start, end)
    }

    fn write_message(&mut self, message: &Message) -> Option<usize> {
        let buf = &mut self.buf;
        let mut pos = put_varint(buf, self.pos, message.frame_count() as u64)?;
        for frame in message.frames() {
            let data = frame.data();
            let timestamp = frame.timestamp();
            pos = put_varint(buf, pos, frame_header(data.len(), timestamp.is_some()))?;
            if let Some(ts) = timestamp {
                let end = pos.checked_add(TIMESTAMP_LEN)?;
                if !buf.write(pos, &ts.ticks().to_le_bytes()) {
                    return None;
                }
                pos = end;
            }
            let end = pos.checked_add(data.len())?;
            if !buf.write(pos, data) {
                return None;
            }
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
    pub fn finish(mut self) -> usize {
        let count = self.count.to_le_bytes();
        let header = [MAGIC, VERSION, 0, 0, count[0], count[1], count[2], count[3]];
        // Cannot fail: the buffer holds at least the header (constructors).
        self.buf.write(0, &header);
        self.pos
    }
}
