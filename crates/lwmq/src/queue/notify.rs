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
//!
//! An async task waits the same way with a [`Waker`] instead of the
//! condition variable ([`Notify::register`]): under the lock it stores its
//! waker and counts itself in `waiters`, **fence**, then the task re-checks
//! its condition before returning `Pending`. A notifier that sees
//! `waiters > 0` takes the lock (so it finds every registration made
//! before its fence) and wakes every registered waker (both for
//! `notify_one` and `notify_all`: a woken task may be dropped without
//! acting, so passing the wake-up to one of them could strand the others).
//! A woken registration is removed; the task registers again if it has to
//! wait again.

use std::task::Waker;

use super::sync::{fence, lock, AtomicUsize, Condvar, Mutex, Ordering};
use crate::timeout::Timeout;

/// An async waiter's registration with a [`Notify`] (held by its future):
/// [`Self::register`] before re-checking the condition, withdrawn on drop.
#[cfg_attr(not(feature = "async"), allow(dead_code))]
pub(crate) struct Registration<N: std::ops::Deref<Target = Notify>> {
    notify: N,
    slot: Option<u64>,
}

#[cfg_attr(not(feature = "async"), allow(dead_code))]
impl<N: std::ops::Deref<Target = Notify>> Registration<N> {
    /// Not registered yet.
    pub(crate) fn new(notify: N) -> Self {
        Self { notify, slot: None }
    }

    /// Registers (or refreshes) `waker`; re-check the condition after it.
    pub(crate) fn register(&mut self, waker: &Waker) {
        self.notify.register(&mut self.slot, waker);
    }

    /// Withdraws a pending registration.
    pub(crate) fn withdraw(&mut self) {
        self.notify.deregister(&mut self.slot);
    }

    /// One poll of "wait until `ready()`": `Ready` if it holds (before or
    /// after registering the task's waker), else `Pending` with the waker
    /// registered (the protocol of the module docs).
    pub(crate) fn poll_until(
        &mut self,
        cx: &mut std::task::Context<'_>,
        ready: impl Fn() -> bool,
    ) -> std::task::Poll<()> {
        if !ready() {
            self.register(cx.waker());
            if !ready() {
                return std::task::Poll::Pending;
            }
        }
        self.withdraw();
        std::task::Poll::Ready(())
    }
}

impl<N: std::ops::Deref<Target = Notify>> Drop for Registration<N> {
    fn drop(&mut self) {
        self.withdraw();
    }
}

/// The wakers of async waiters, each under the id its waiter keeps.
#[derive(Debug, Default)]
struct Wakers {
    next_id: u64,
    list: Vec<(u64, Waker)>,
}

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
    /// Threads in `wait_for` plus registered wakers.
    waiters: AtomicUsize,
    lock: Mutex<Wakers>,
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
            self.wake(false);
        }
    }

    /// Wakes every registered waiter. Call after making the condition true.
    #[inline]
    pub fn notify_all(&self) {
        if self.has_waiters() {
            self.wake(true);
        }
    }

    /// The slow path of a notification: someone is waiting. Wakes one or
    /// every thread, and every registered waker (outside the lock).
    #[cold]
    fn wake(&self, all: bool) {
        let woken = {
            let mut wakers = lock(&self.lock);
            let woken = std::mem::take(&mut wakers.list);
            self.waiters.fetch_sub(woken.len(), Ordering::Relaxed);
            woken
        };
        if all {
            self.cv.notify_all();
        } else {
            self.cv.notify_one();
        }
        for (_, waker) in woken {
            waker.wake();
        }
    }

    /// Registers an async waiter: the next notification wakes `waker`.
    /// `slot` keeps the registration's id between polls (`None` at
    /// first): a registration still pending is updated in place, one that
    /// was woken is made anew. The caller must check its condition
    /// **after** this call and before it returns `Pending` (the re-check
    /// of the protocol in the module docs), and call [`Self::deregister`]
    /// when it stops waiting (a completed or dropped future).
    #[cfg_attr(not(feature = "async"), allow(dead_code))]
    pub(crate) fn register(&self, slot: &mut Option<u64>, waker: &Waker) {
        {
            let mut wakers = lock(&self.lock);
            let pending = slot.and_then(|id| wakers.list.iter_mut().find(|(i, _)| *i == id));
            match pending {
                Some((_, w)) => {
                    if !w.will_wake(waker) {
                        w.clone_from(waker);
                    }
                }
                None => {
                    let id = wakers.next_id;
                    wakers.next_id += 1;
                    wakers.list.push((id, waker.clone()));
                    *slot = Some(id);
                    self.waiters.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        // SYNC POINT: pairs with the fence in `has_waiters`, as in
        // `wait_for`: either the caller's re-check sees the notifier's
        // state, or the notifier sees the registration.
        fence(Ordering::SeqCst);
    }

    /// Withdraws the registration in `slot`, if it is still pending.
    #[cfg_attr(not(feature = "async"), allow(dead_code))]
    pub(crate) fn deregister(&self, slot: &mut Option<u64>) {
        let Some(id) = slot.take() else {
            return;
        };
        let mut wakers = lock(&self.lock);
        if let Some(at) = wakers.list.iter().position(|(i, _)| *i == id) {
            let (_, waker) = wakers.list.swap_remove(at);
            self.waiters.fetch_sub(1, Ordering::Relaxed);
            drop(wakers);
            drop(waker);
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

    /// A waker that records that it was woken.
    struct Flag(AtomicBool);

    impl std::task::Wake for Flag {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.store(true, Ordering::Release);
        }
    }

    /// No lost wake-up for an async waiter: after registering, the task's
    /// re-check sees the notifier's condition, or its waker is woken.
    #[test]
    fn loom_async_waiter_is_woken() {
        loom::model(|| {
            let notify = Arc::new(Notify::new());
            let cond = Arc::new(AtomicBool::new(false));
            let (n2, c2) = (notify.clone(), cond.clone());
            let t = loom::thread::spawn(move || {
                c2.store(true, Ordering::Release);
                n2.notify_one();
            });
            let flag = std::sync::Arc::new(Flag(AtomicBool::new(false)));
            let waker = std::task::Waker::from(flag.clone());
            let mut slot = None;
            notify.register(&mut slot, &waker);
            let saw = cond.load(Ordering::Acquire);
            t.join().unwrap();
            if saw {
                notify.deregister(&mut slot);
            } else {
                // Pending: the notification must have reached the waker.
                assert!(flag.0.load(Ordering::Acquire), "lost wake-up");
            }
            assert_eq!(notify.waiters.load(Ordering::Relaxed), 0);
        });
    }
}
