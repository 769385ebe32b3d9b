//! [`Lent`]: a received message as [`Channel::receive_with`] lends it.
//!
//! [`Channel::receive_with`]: super::Channel::receive_with

use crate::message::{Message, NtTime, Timestamp};
use crate::wire::RawMessage;

/// A received message lent to the closure of
/// [`Channel::receive_with`](super::Channel::receive_with): either read
/// in place in the transport buffer (no copy) or an owned message that was
/// already decoded or queued. Both read the same way.
#[derive(Debug, Clone, Copy)]
pub struct Lent<'a>(Repr<'a>);

#[derive(Debug, Clone, Copy)]
enum Repr<'a> {
    Owned(&'a Message),
    Wire(RawMessage<'a>),
}

impl<'a> Lent<'a> {
    pub(crate) fn owned(message: &'a Message) -> Self {
        Lent(Repr::Owned(message))
    }

    pub(crate) fn wire(message: RawMessage<'a>) -> Self {
        Lent(Repr::Wire(message))
    }

    /// True if the message is read in place in the transport buffer;
    /// false if it is an owned message (it was decoded or queued before).
    pub fn is_in_place(&self) -> bool {
        matches!(self.0, Repr::Wire(_))
    }

    /// Number of frames (at least 1).
    pub fn frame_count(&self) -> usize {
        match self.0 {
            Repr::Owned(m) => m.frame_count(),
            Repr::Wire(m) => m.frame_count(),
        }
    }

    /// Total payload bytes of all frames.
    pub fn payload_size(&self) -> usize {
        match self.0 {
            Repr::Owned(m) => m.payload_size(),
            Repr::Wire(m) => m.payload_size(),
        }
    }

    /// The bytes of frame `index`, `None` past the last frame.
    pub fn frame(&self, index: usize) -> Option<&'a [u8]> {
        match self.0 {
            Repr::Owned(m) => m.frame(index).map(|f| f.data()),
            Repr::Wire(m) if index == 0 => Some(m.first_frame().data),
            Repr::Wire(m) => m.frames().nth(index).map(|f| f.data),
        }
    }

    /// The frames in order: `(bytes, timestamp)`.
    pub fn frames(&self) -> impl Iterator<Item = (&'a [u8], Option<NtTime>)> + 'a {
        let (owned, wire) = match self.0 {
            Repr::Owned(m) => (Some(m.frames().map(|f| (f.data(), f.timestamp()))), None),
            Repr::Wire(m) => (None, Some(m.frames().map(|f| (f.data, f.timestamp)))),
        };
        owned
            .into_iter()
            .flatten()
            .chain(wire.into_iter().flatten())
    }

    /// Copies the message into an owned [`Message`] (to keep it after the
    /// closure returns).
    pub fn to_message(&self) -> Message {
        match self.0 {
            Repr::Owned(m) => {
                let mut copy = Message::with_capacity(m.frame_count());
                for f in m.frames() {
                    let at = f.timestamp().map_or(Timestamp::None, Timestamp::At);
                    // Each frame already passed the same checks once.
                    if copy.push_copy(f.data(), at).is_err() {
                        break;
                    }
                }
                copy
            }
            Repr::Wire(m) => m.to_message(),
        }
    }
}
