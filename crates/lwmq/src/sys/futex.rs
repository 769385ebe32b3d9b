//! Futex waits and wakes on 32-bit words in shared memory.
//!
//! The words live in a `MAP_SHARED` memfd mapping seen by two processes, so
//! the calls use the shared (not `FUTEX_PRIVATE_FLAG`) variants: the kernel
//! keys them by the backing page, not by this process's address space.

use std::sync::atomic::AtomicU32;
use std::time::Duration;

use rustix::thread::futex;

/// Sleeps while `*word == expected`, at most `timeout` (forever if `None`).
///
/// Returns early on a wake, on a value change, on a signal, or spuriously;
/// the caller re-checks its condition in every case.
pub fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    let ts = timeout.map(|d| rustix::time::Timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: i64::from(d.subsec_nanos()),
    });
    // EAGAIN (value changed), EINTR and ETIMEDOUT are all "re-check"; no
    // other error is possible for a valid, aligned word.
    let _ = futex::wait(word, futex::Flags::empty(), expected, ts.as_ref());
}

/// Wakes every thread (of any process) sleeping on `word`.
pub fn wake_all(word: &AtomicU32) {
    let _ = futex::wake(word, futex::Flags::empty(), i32::MAX as u32);
}
