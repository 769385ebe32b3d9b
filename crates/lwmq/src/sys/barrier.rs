//! Asymmetric memory barriers with `membarrier(2)`.
//!
//! The ring's publish path (taken once per buffer) must order "store my
//! counter" before "load the peer's sleep flag", and the wait path (taken
//! only before sleeping) must order "store my sleep flag" before "load the
//! peer's counter". A full fence on both sides would do, but on x86 a fence
//! on the publish path waits for the counter's cache line to arrive from the
//! other core: a cross-core round trip per buffer. `membarrier` moves that
//! cost to the rare side: the waiter calls
//! `MEMBARRIER_CMD_GLOBAL_EXPEDITED`, which makes every running thread of
//! every registered process execute a full barrier, so the publisher needs
//! only a compiler fence. Both processes must have registered
//! (`MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED`); the handshake only enables
//! this mode when both sides say they have.

use std::sync::atomic::{compiler_fence, fence, Ordering};
use std::sync::OnceLock;

use rustix::thread::{membarrier, MembarrierCommand};

/// Registers this process for expedited global barriers (once); true if
/// the kernel supports and accepted it.
pub fn register() -> bool {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    *REGISTERED.get_or_init(|| {
        std::env::var_os("LWMQ_NO_MEMBARRIER").is_none()
            && membarrier(MembarrierCommand::RegisterGlobalExpedited).is_ok()
    })
}

/// The heavy side: a full barrier on this thread and on every running
/// thread of every registered process.
pub fn heavy() {
    fence(Ordering::SeqCst);
    if membarrier(MembarrierCommand::GlobalExpedited).is_err() {
        // Cannot happen after a successful registration; a full fence here
        // keeps this side correct, and the sleep slice bounds the other.
        fence(Ordering::SeqCst);
    }
    fence(Ordering::SeqCst);
}

/// The light side: only stops the compiler from reordering.
#[inline(always)]
pub fn light() {
    compiler_fence(Ordering::SeqCst);
}
