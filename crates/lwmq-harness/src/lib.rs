//! Shared pieces of the lwmq test peers: the checked payload format, a
//! stderr logger, and the fault-injecting TCP proxy of the `tcp://` tests
//! ([`proxy`]).
//!
//! A checked payload is `[run u64][seq u64][len u32][sum u32][pattern...]`
//! (little-endian): `run` identifies one sender process, `seq` counts from 0
//! within it, `sum` is FNV-1a over the bytes after the header, and the
//! pattern is derived from `run` and `seq`, so a receiver can tell a
//! corrupted, partial, duplicated or reordered payload from a good one.
#![deny(unsafe_code)]

use std::io::Write;

pub mod proxy;

/// Header bytes of a checked payload.
pub const HEADER: usize = 24;

/// FNV-1a, 32-bit.
pub fn fnv32(data: &[u8]) -> u32 {
    let mut h = 0x811c_9dc5u32;
    for &b in data {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// Fills `buf` (at least [`HEADER`] bytes) with payload `seq` of `run`.
pub fn fill(buf: &mut [u8], run: u64, seq: u64) {
    let body_len = buf.len() - HEADER;
    let mut x = run ^ seq.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for chunk in buf[HEADER..].chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    let sum = fnv32(&buf[HEADER..]);
    buf[0..8].copy_from_slice(&run.to_le_bytes());
    buf[8..16].copy_from_slice(&seq.to_le_bytes());
    buf[16..20].copy_from_slice(&(body_len as u32).to_le_bytes());
    buf[20..24].copy_from_slice(&sum.to_le_bytes());
}

/// Checks a payload; returns `(run, seq)` if intact.
pub fn check(buf: &[u8]) -> Option<(u64, u64)> {
    if buf.len() < HEADER {
        return None;
    }
    let run = u64::from_le_bytes(buf[0..8].try_into().ok()?);
    let seq = u64::from_le_bytes(buf[8..16].try_into().ok()?);
    let len = u32::from_le_bytes(buf[16..20].try_into().ok()?) as usize;
    let sum = u32::from_le_bytes(buf[20..24].try_into().ok()?);
    if len != buf.len() - HEADER || fnv32(&buf[HEADER..]) != sum {
        return None;
    }
    let mut expect = vec![0u8; buf.len()];
    fill(&mut expect, run, seq);
    (expect == buf).then_some((run, seq))
}

/// A counting `SIGUSR1` handler for the signal-storm tests.
#[allow(unsafe_code)]
pub mod signals {
    use std::sync::atomic::{AtomicU64, Ordering};

    static SEEN: AtomicU64 = AtomicU64::new(0);

    extern "C" fn on_signal(_: libc::c_int) {
        SEEN.fetch_add(1, Ordering::Relaxed);
    }

    /// True if the environment asks for the handler (`LWMQ_TEST_SIGUSR1`).
    pub fn requested() -> bool {
        std::env::var_os("LWMQ_TEST_SIGUSR1").is_some()
    }

    /// If requested, installs a handler for `SIGUSR1` **without**
    /// `SA_RESTART`, so that every blocking system call a signal lands in
    /// fails with `EINTR` (the default action would kill the process).
    pub fn install_if_requested() {
        if !requested() {
            return;
        }
        // SAFETY: an all-zero `sigaction` is a valid value to fill in; the
        // handler only increments an atomic, which is async-signal-safe;
        // the pointers passed live for the duration of the calls.
        let rc = unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigemptyset(&mut sa.sa_mask);
            sa.sa_flags = 0;
            libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut())
        };
        assert_eq!(rc, 0, "sigaction(SIGUSR1) failed");
    }

    /// Signals handled so far.
    pub fn seen() -> u64 {
        SEEN.load(Ordering::Relaxed)
    }
}

struct StderrLogger;

impl log::Log for StderrLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        let _ = writeln!(std::io::stderr(), "[{}] {}", record.level(), record.args());
    }
    fn flush(&self) {}
}

/// Sends `log` records to stderr.
pub fn init_logging() {
    let _ = log::set_logger(&StderrLogger);
    log::set_max_level(log::LevelFilter::Info);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trip_and_corruption() {
        let mut b = vec![0u8; 100];
        fill(&mut b, 7, 9);
        assert_eq!(check(&b), Some((7, 9)));
        b[50] ^= 1;
        assert_eq!(check(&b), None);
        assert_eq!(check(&b[..10]), None);
    }
}
