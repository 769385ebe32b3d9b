//! The platform layer: the few Linux facilities the `ipc://` transport needs.
//!
//! Contract for everything in here:
//! - each function wraps one kernel facility (memfd + seals + mmap, futex,
//!   abstract `SOCK_SEQPACKET` Unix sockets with `SCM_RIGHTS` and
//!   `SO_PEERCRED`) and reports failures as [`SysError`] naming the call;
//! - all descriptors are `OwnedFd`, close-on-exec, and closed on drop;
//! - nearly all `unsafe` of the crate lives here, each block with the
//!   invariant it relies on.
//!
//! The layers above never see a raw pointer into shared memory except through
//! [`shm::Mapping`], whose bounds are fixed for its lifetime.

pub mod barrier;
pub mod futex;
pub mod shm;
pub mod socket;

use std::fmt;

/// Asks the CPU to start loading the cache line at `ptr` (a hint: it
/// reads nothing architecturally, changes no value and cannot fault, even
/// for an address outside any mapping). Does nothing off x86_64.
#[inline(always)]
pub fn prefetch(ptr: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `_mm_prefetch` needs only SSE, which every x86_64 CPU has;
    // a prefetch never faults and has no architectural effect.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(ptr.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = ptr;
}

/// [`prefetch`] with the intent to write: asks for the line in a state
/// this core may write, so that a later store does not wait for the other
/// cores' copies to be invalidated.
/// Does nothing on CPUs without `prefetchw`.
#[inline(always)]
pub fn prefetch_write(ptr: *const u8) {
    #[cfg(target_arch = "x86_64")]
    if has_prefetchw() {
        // SAFETY: the CPU implements `prefetchw` (CPUID, checked just
        // above); a prefetch never faults, has no architectural effect and
        // touches no register but its address operand.
        unsafe {
            std::arch::asm!(
                "prefetchw byte ptr [{0}]",
                in(reg) ptr,
                options(nostack, preserves_flags, readonly)
            );
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = ptr;
}

/// Whether the CPU implements `prefetchw` (CPUID 0x8000_0001, ECX bit 8).
#[cfg(target_arch = "x86_64")]
fn has_prefetchw() -> bool {
    use std::sync::atomic::{AtomicU8, Ordering};
    static KNOWN: AtomicU8 = AtomicU8::new(0);
    match KNOWN.load(Ordering::Relaxed) {
        1 => false,
        2 => true,
        _ => {
            // Leaf 0x8000_0001 is within the extended range every x86_64
            // CPU reports.
            let r = std::arch::x86_64::__cpuid(0x8000_0001);
            let has = r.ecx & (1 << 8) != 0;
            KNOWN.store(if has { 2 } else { 1 }, Ordering::Relaxed);
            has
        }
    }
}

/// A failed system call: which call, on what, and the OS error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysError {
    /// The call that failed, e.g. `memfd_create`.
    pub call: &'static str,
    /// The OS error.
    pub errno: rustix::io::Errno,
}

impl SysError {
    pub(crate) fn new(call: &'static str, errno: rustix::io::Errno) -> Self {
        Self { call, errno }
    }
}

impl fmt::Display for SysError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed: {}", self.call, self.errno)
    }
}

impl std::error::Error for SysError {}

/// Result of a platform call.
pub type SysResult<T> = Result<T, SysError>;

pub(crate) trait Call<T> {
    fn call(self, name: &'static str) -> SysResult<T>;
}

impl<T> Call<T> for rustix::io::Result<T> {
    fn call(self, name: &'static str) -> SysResult<T> {
        self.map_err(|e| SysError::new(name, e))
    }
}
