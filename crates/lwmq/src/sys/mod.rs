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
