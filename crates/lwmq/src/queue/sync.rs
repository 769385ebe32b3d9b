//! The one place the queue module takes its synchronisation primitives from.
//!
//! Normal builds re-export `std`; `RUSTFLAGS="--cfg loom"` builds re-export
//! [loom]'s model-checked doubles instead, so the lock-free parts (the
//! mono-producer block list, the wake-up protocol of [`Notify`]) can be
//! checked by loom without code changes. `UnsafeCell` follows loom's
//! closure-based API (`with`/`with_mut`) on both sides so loom can track
//! every access.
//!
//! [loom]: https://docs.rs/loom
//! [`Notify`]: super::Notify

#[cfg(not(loom))]
pub(crate) use std::sync::{
    atomic::{fence, AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering},
    Arc, Condvar, Mutex, MutexGuard,
};

#[cfg(loom)]
pub(crate) use loom::sync::{
    atomic::{fence, AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering},
    Arc, Condvar, Mutex, MutexGuard,
};

#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;

/// `std::cell::UnsafeCell` with loom's access API.
#[cfg(not(loom))]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    pub(crate) fn new(value: T) -> Self {
        UnsafeCell(std::cell::UnsafeCell::new(value))
    }

    /// Runs `f` with a shared raw pointer to the contents.
    #[inline(always)]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Runs `f` with a mutable raw pointer to the contents.
    #[inline(always)]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

/// Locks `mutex`, ignoring poisoning.
///
/// No user code (in particular no `Drop` of a queued item) ever runs while a
/// queue lock is held, so a poisoned lock can only come from a bug in this
/// module's own bookkeeping, which does not leave the data half-updated
/// across a panic point; carrying on is safer than cascading panics into
/// every producer.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
