//! The time functions of `api-lwmq-time.h`.
//!
//! `LmqGetTickCountNs` reads `CLOCK_MONOTONIC` (nanoseconds since an
//! arbitrary start, never going back, not affected by changes of the
//! system time); `LmqTimeElapsedNs`/`LmqTimeElapsedNsSince` subtract two
//! such readings. `LmqTimeElapsed` subtracts two `FILETIME`s (NT time, the
//! unit of frame timestamps) and gives nanoseconds, which is how a
//! receiver turns a `LMQ_TIMESTAMP_USE_SYSTEMTIME_PRECISE` stamp into a
//! one-way latency.
//!
//! None of them can fail, so they return the value itself, not an
//! `HRESULT`: a later time before an earlier one gives 0 (two clocks read
//! on different machines, or system time set back), and a NULL `FILETIME`
//! gives 0. Nothing here can panic: the arithmetic saturates.

use crate::types::{FILETIME, UINT64};

/// The monotonic clock, in nanoseconds (`CLOCK_MONOTONIC`).
#[no_mangle]
pub extern "C" fn LmqGetTickCountNs() -> UINT64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    // CLOCK_MONOTONIC is never negative.
    let secs = u64::try_from(t.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(t.tv_nsec).unwrap_or(0);
    secs.saturating_mul(1_000_000_000).saturating_add(nanos)
}

/// Nanoseconds from `Then` to `Now`, two `LmqGetTickCountNs` readings (0 if
/// `Now` is before `Then`).
#[no_mangle]
pub extern "C" fn LmqTimeElapsedNs(Then: UINT64, Now: UINT64) -> UINT64 {
    Now.saturating_sub(Then)
}

/// Nanoseconds since `Then`, an `LmqGetTickCountNs` reading.
#[no_mangle]
pub extern "C" fn LmqTimeElapsedNsSince(Then: UINT64) -> UINT64 {
    LmqGetTickCountNs().saturating_sub(Then)
}

fn nt_ticks(t: &FILETIME) -> u64 {
    (u64::from(t.dwHighDateTime) << 32) | u64::from(t.dwLowDateTime)
}

/// Nanoseconds from `Then` to `Now`, two NT times (100 ns ticks since
/// 1601-01-01 UTC, the unit of frame timestamps): 0 if `Now` is before
/// `Then` or either pointer is NULL.
///
/// # Safety
/// Each pointer is null or valid for a read of a `FILETIME`.
#[no_mangle]
pub unsafe extern "C" fn LmqTimeElapsed(Then: *const FILETIME, Now: *const FILETIME) -> UINT64 {
    if Then.is_null() || Now.is_null() {
        return 0;
    }
    // SAFETY: both non-null and valid for reads by the caller's contract;
    // `FILETIME` is plain data and may be unaligned in a packed C struct.
    let (then, now) = unsafe { (Then.read_unaligned(), Now.read_unaligned()) };
    nt_ticks(&now)
        .saturating_sub(nt_ticks(&then))
        .saturating_mul(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ft(ticks: u64) -> FILETIME {
        FILETIME {
            dwLowDateTime: ticks as u32,
            dwHighDateTime: (ticks >> 32) as u32,
        }
    }

    #[test]
    fn filetimes_subtract_to_nanoseconds() {
        let then = ft(0x1_0000_0000 - 3);
        // Carries across the two halves.
        let now = ft(0x1_0000_0000 + 7);
        // SAFETY: both point to live FILETIMEs.
        assert_eq!(unsafe { LmqTimeElapsed(&then, &now) }, 1000);
        // SAFETY: as above.
        assert_eq!(unsafe { LmqTimeElapsed(&now, &then) }, 0);
        // SAFETY: NULL is allowed.
        assert_eq!(unsafe { LmqTimeElapsed(std::ptr::null(), &now) }, 0);
        let far = ft(u64::MAX);
        // SAFETY: as above.
        assert_eq!(unsafe { LmqTimeElapsed(&ft(0), &far) }, u64::MAX);
    }

    #[test]
    fn ticks_are_monotonic_and_subtract() {
        let a = LmqGetTickCountNs();
        let b = LmqGetTickCountNs();
        assert!(b >= a);
        assert_eq!(LmqTimeElapsedNs(a, b), b - a);
        assert_eq!(LmqTimeElapsedNs(b + 5, b), 0);
        assert!(LmqTimeElapsedNsSince(a) >= b - a);
    }
}
