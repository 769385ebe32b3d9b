//! External frames: caller-owned memory with acquire and release hooks.
//!
//! The library never sees a raw pointer here. The caller hands over an owner
//! implementing [`ExternalData`]; the library keeps it behind an `Arc` shared
//! by every [`Message`](super::Message) that references the frame, calls
//! [`ExternalData::acquire`] at most once (when the first sender prepares the
//! message) and [`ExternalData::release`] exactly once, when the last
//! reference is dropped — whether the message was posted, failed to post,
//! was discarded from a queue or was never posted at all.
//!
//! The C layer wraps its `(Data, Size, Callback, Context)` quadruple in a type
//! of its own that implements this trait (with an `unsafe impl Send/Sync`
//! justified by the C API contract) and calls the callback with
//! `ACQUIRE_DATA` / `RELEASE_DATA` from the two hooks.

use std::fmt;
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

/// A frame of caller-owned memory, ready to be appended with
/// [`Message::push_external`](super::Message::push_external).
///
/// Dropping an `ExternalFrame` that was never appended calls the release
/// hook (the library owns the data from construction on).
pub struct ExternalFrame {
    pub(crate) cell: SharedExternal,
}

impl ExternalFrame {
    /// Wraps an owner implementing [`ExternalData`] (one allocation).
    pub fn new<T: ExternalData>(owner: T) -> Self {
        let cell: SharedExternal = Arc::new(ExternalCell {
            acquired: OnceLock::new(),
            owner,
        });
        ExternalFrame { cell }
    }

    /// Wraps any owner of bytes, with no hooks: the release is dropping the
    /// owner (e.g. a `Vec<u8>`, a `Box<[u8]>`, a memory map).
    pub fn from_owner<O>(owner: O) -> Self
    where
        O: AsRef<[u8]> + Send + Sync + 'static,
    {
        Self::new(Owned(owner))
    }

    /// Wraps an owner of bytes with an acquire hook and a release hook; each
    /// hook receives the frame's bytes.
    pub fn with_hooks<O, A, R>(owner: O, on_acquire: A, on_release: R) -> Self
    where
        O: AsRef<[u8]> + Send + Sync + 'static,
        A: Fn(&[u8]) -> Result<(), AcquireError> + Send + Sync + 'static,
        R: FnOnce(&[u8]) + Send + Sync + 'static,
    {
        Self::new(Hooked {
            owner,
            on_acquire,
            on_release: Some(on_release),
        })
    }

    /// The frame's bytes.
    pub fn data(&self) -> &[u8] {
        self.cell.data()
    }
}

impl fmt::Debug for ExternalFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExternalFrame")
            .field("len", &self.data().len())
            .finish_non_exhaustive()
    }
}

struct Owned<O>(O);

impl<O: AsRef<[u8]> + Send + Sync + 'static> ExternalData for Owned<O> {
    fn data(&self) -> &[u8] {
        self.0.as_ref()
    }
}

struct Hooked<O, A, R> {
    owner: O,
    on_acquire: A,
    on_release: Option<R>,
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
