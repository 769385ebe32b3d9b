//! The errors of the message side: [`MessageError`] (a rule a message
//! breaks) and [`PushError`] (a refused [`Message::try_push`], with the
//! frame given back).
//!
//! [`Message::try_push`]: super::Message::try_push

use super::{AcquireError, Frame, MAX_FRAMES, MAX_FRAME_SIZE};

/// A rule a message breaks, found by [`Message::validate`] (which posting
/// runs), [`Message::try_push`], or when a sender prepares the message
/// (an external frame's acquire hook).
///
/// [`Message::validate`]: super::Message::validate
/// [`Message::try_push`]: super::Message::try_push
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// The message has no frames; a message needs at least one frame to be
    /// posted.
    #[error("a message must have at least one frame; push a frame before posting it")]
    NoFrames,
    /// The message has more frames than a message can carry.
    #[error("the message has {count} frames but a message holds at most {max}; split the data over several messages or fewer, larger frames")]
    TooManyFrames {
        /// The message's frames (with the one refused by `try_push`).
        count: usize,
        /// The limit, [`MAX_FRAMES`].
        max: usize,
    },
    /// A frame is larger than the per-frame limit.
    #[error("frame {index} holds {len} bytes but a frame holds at most {max}; split the data over several frames")]
    FrameTooLarge {
        /// Index of the frame in the message (where `try_push` would have
        /// put it).
        index: usize,
        /// Its length.
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

impl MessageError {
    pub(super) fn too_many_frames(count: usize) -> Self {
        MessageError::TooManyFrames {
            count,
            max: MAX_FRAMES,
        }
    }

    pub(super) fn frame_too_large(index: usize, len: usize) -> Self {
        MessageError::FrameTooLarge {
            index,
            len,
            max: MAX_FRAME_SIZE,
        }
    }
}

/// A frame [`Message::try_push`](super::Message::try_push) refused: why,
/// and the frame, given back so that the caller decides whether to drop it
/// (which releases an external frame) or to push it elsewhere. The message
/// is unchanged.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct PushError {
    /// The rule the push would have broken.
    pub error: MessageError,
    /// The frame that was not pushed.
    pub frame: Frame,
}

impl PushError {
    /// The frame that was not pushed.
    #[must_use]
    pub fn into_frame(self) -> Frame {
        self.frame
    }
}
