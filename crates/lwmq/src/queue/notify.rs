//! [`Notify`]: sleep until a condition holds, wake sleepers cheaply.
//!
//! An event count built on `Mutex` + `Condvar` so that a waiting thread
//! parks in the kernel and uses no CPU (we run on 2 cores: no spinning).
//! The notifier's fast path is one `SeqCst` fence and one load; it makes a
//! syscall only when a waiter has registered.
//!
//! Protocol (a Dekker pair):
//!
//! * waiter: lock, `waiters += 1`, **fence**, re-check the condition, and
//!   `Condvar::wait` (which releases the lock atomically);
//! * notifier: make the condition true (the queue's own release store),
//!   **fence**, load `waiters`; if non-zero, take the lock and notify.
//!
//! The two `SeqCst` fences guarantee that either the waiter's re-check sees
//! the new state or the notifier sees `waiters > 0`. In the latter case the
//! notifier's `lock()` cannot complete until the waiter is inside `wait`, so
//! the notification is never lost.

use super::sync::{fence, lock, AtomicUsize, Condvar, Mutex, Ordering};
use crate::timeout::Timeout;

/// A wake-up primitive: threads wait for a condition, others notify after
/// making it true. Waiting parks the thread (no CPU); notifying costs a fence
/// and a load, plus a futex wake only when someone is waiting.
///
/// The channel can use it as the send-side doorbell: install
/// `move || notify.notify_one()` with [`Scheduler::with_doorbell`] and let
/// the sending thread sleep in `notify.wait_for(timeout, || scheduler.next())`.
///
/// [`Scheduler::with_doorbell`]: super::Scheduler::with_doorbell
#[derive(Debug, Default)]
pub struct Notify {
    waiters: AtomicUsize,
    lock: Mutex<()>,
    cv: Condvar,
}

impl Notify {
    /// A notifier with no waiters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Wakes one waiter, if any is registered. Call after making the
    /// condition true.
    #[inline]
    pub fn notify_one(&self) {
        if self.has_waiters() {
            drop(lock(&self.lock));
            self.cv.notify_one();
        }
    }

    /// Wakes every registered waiter. Call after making the condition true.
    #[inline]
    pub fn notify_all(&self) {
        if self.has_waiters() {
            drop(lock(&self.lock));
            self.cv.notify_all();
        }
    }

    #[inline]
    fn has_waiters(&self) -> bool {
        // SYNC POINT: pairs with the fence in `wait_for`; orders the caller's
        // publication before the load of `waiters`.
        fence(Ordering::SeqCst);
        self.waiters.load(Ordering::Relaxed) != 0
    }

    /// Calls `ready` until it returns `Some`, sleeping between attempts
    /// until notified, for at most `timeout`. Returns `None` on timeout
    /// (immediately for [`Timeout::ZERO`] if the first attempt fails).
    ///
    /// `ready` is called with this notifier's internal lock held after the
    /// first attempt: it must not call back into this `Notify` nor run user
    /// code (such as dropping a queued item); return such items and drop
    /// them after this call.
    pub fn wait_for<R>(&self, timeout: Timeout, mut ready: impl FnMut() -> Option<R>) -> Option<R> {
        if let Some(r) = ready() {
            return Some(r);
        }
        if timeout.is_zero() {
            return None;
        }
        let deadline = timeout.deadline();
        let mut guard = lock(&self.lock);
        self.waiters.fetch_add(1, Ordering::Relaxed);
        // SYNC POINT: pairs with the fence in `has_waiters`: either the
        // re-check below sees the notifier's state, or the notifier sees us.
        fence(Ordering::SeqCst);
        let out = loop {
            if let Some(r) = ready() {
                break Some(r);
            }
            guard = match deadline.remaining() {
                None => self.cv.wait(guard).unwrap_or_else(|e| e.into_inner()),
                Some(left) if left.is_zero() => break None,
                Some(left) => {
                    self.cv
                        .wait_timeout(guard, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        };
        self.waiters.fetch_sub(1, Ordering::Relaxed);
        drop(guard);
        out
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use crate::queue::sync::{Arc, AtomicBool};

    /// No lost wake-up: the waiter either sees the flag or is notified.
    #[test]
    fn loom_no_lost_wakeup() {
        loom::model(|| {
            let notify = Arc::new(Notify::new());
            let flag = Arc::new(AtomicBool::new(false));
            let (n2, f2) = (notify.clone(), flag.clone());
            let t = loom::thread::spawn(move || {
                f2.store(true, Ordering::Release);
                n2.notify_one();
            });
            let got = notify.wait_for(Timeout::INFINITE, || {
                flag.load(Ordering::Acquire).then_some(())
            });
            assert_eq!(got, Some(()));
            t.join().unwrap();
        });
    }
}
