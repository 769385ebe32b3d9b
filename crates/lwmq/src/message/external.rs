//! External frames: caller-owned memory with acquire and release hooks.
//!
//! The library never sees a raw pointer here. The caller hands over an owner
//! implementing [`ExternalData`] ([`Frame::external`](super::Frame::external));
//! the library keeps it behind an `Arc` shared by every frame and
//! [`Message`](super::Message) that references it, calls
//! [`ExternalData::acquire`] at most once (when the first sender prepares the
//! message) and [`ExternalData::release`] exactly once, when the last
//! reference is dropped — whether the message was posted, failed to post,
//! was discarded from a queue or was never posted at all.
//!
//! The C layer wraps its `(Data, Size, Callback, Context)` quadruple in a type
//! of its own that implements this trait (with an `unsafe impl Send/Sync`
//! justified by the C API contract) and calls the callback with
//! `ACQUIRE_DATA` / `RELEASE_DATA` from the two hooks.

use std::sync::{Arc, OnceLock};

/// Memory owned by the caller that a frame refers to without copying.
///
/// # Contract
///
/// [`data`](Self::data) must return the same bytes (same length) every time
/// it is called, from the moment the frame is created until `release`. The
/// library does not rely on this for memory safety (a misbehaving owner can
/// at worst make a frame's length or contents inconsistent, never cause a
/// panic or an out-of-bounds access) but messages built from such an owner
/// have unspecified contents.
pub trait ExternalData: Send + Sync + 'static {
    /// The frame's bytes.
    fn data(&self) -> &[u8];

    /// Called at most once, before the frame is first encoded (when a sender
    /// prepares a message holding it). Returning an error makes that post
    /// fail; the hook is not called again and the same error is reported to
    /// later attempts. The default does nothing.
    fn acquire(&self) -> Result<(), AcquireError> {
        Ok(())
    }

    /// Called exactly once, when the library no longer needs the data (the
    /// last message referencing the frame was dropped). Called even if
    /// [`acquire`](Self::acquire) never was. The default does nothing; the
    /// owner is dropped right after.
    fn release(&mut self) {}
}

/// The error an [`ExternalData::acquire`] hook reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[error("the external frame's acquire hook failed with code {code:#010x}; the message cannot be sent until the data owner can provide it")]
pub struct AcquireError {
    /// An owner-defined status code (the C layer passes its HRESULT).
    pub code: i32,
}

impl AcquireError {
    /// Creates an error with an owner-defined code.
    pub const fn new(code: i32) -> Self {
        AcquireError { code }
    }
}

/// The shared state behind one external frame. Generic so that an
/// `Arc<ExternalCell<T>>` coerces to `Arc<ExternalCell<dyn ExternalData>>`
/// with a single allocation.
pub(crate) struct ExternalCell<T: ?Sized + ExternalData> {
    acquired: OnceLock<Result<(), AcquireError>>,
    owner: T,
}

impl<T: ?Sized + ExternalData> ExternalCell<T> {
    pub(crate) fn data(&self) -> &[u8] {
        self.owner.data()
    }

    /// Runs the acquire hook the first time; later calls (from any thread,
    /// from any sharer of the frame) return the first result. A concurrent
    /// caller blocks until the hook has returned, so nobody encodes data that
    /// is not yet acquired.
    pub(crate) fn acquire(&self) -> Result<(), AcquireError> {
        *self.acquired.get_or_init(|| self.owner.acquire())
    }
}

impl<T: ?Sized + ExternalData> Drop for ExternalCell<T> {
    fn drop(&mut self) {
        // Runs once: the cell is dropped when the last Arc goes.
        self.owner.release();
    }
}

pub(crate) type SharedExternal = Arc<ExternalCell<dyn ExternalData>>;

/// Wraps an owner in the shared cell a frame holds (one allocation).
pub(crate) fn shared<T: ExternalData>(owner: T) -> SharedExternal {
    Arc::new(ExternalCell {
        acquired: OnceLock::new(),
        owner,
    })
}

/// The owner behind [`Frame::with_hooks`](super::Frame::with_hooks).
pub(crate) struct Hooked<O, A, R> {
    pub(crate) owner: O,
    pub(crate) on_acquire: A,
    pub(crate) on_release: Option<R>,
}

impl<O, A, R> ExternalData for Hooked<O, A, R>
where
    O: AsRef<[u8]> + Send + Sync + 'static,
    A: Fn(&[u8]) -> Result<(), AcquireError> + Send + Sync + 'static,
    R: FnOnce(&[u8]) + Send + Sync + 'static,
{
    fn data(&self) -> &[u8] {
        self.owner.as_ref()
    }

    fn acquire(&self) -> Result<(), AcquireError> {
        (self.on_acquire)(self.owner.as_ref())
    }

    fn release(&mut self) {
        if let Some(release) = self.on_release.take() {
            release(self.owner.as_ref());
        }
    }
}
