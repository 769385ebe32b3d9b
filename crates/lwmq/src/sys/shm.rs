//! Shared sections: sealed memfds mapped `MAP_SHARED`.
//!
//! A section is created by the server of a connection with `memfd_create`,
//! sized with `ftruncate` and sealed with `F_SEAL_SHRINK | F_SEAL_GROW |
//! F_SEAL_SEAL` before anyone maps it. The seals are what make it safe to map
//! memory that a peer also holds: no process can shrink the file under our
//! mapping (which would turn our reads into `SIGBUS`), and no one can remove
//! the seals later. The client checks the file system, the seals and the
//! size before it maps.
//!
//! The file system matters because the seals do not cover hole punching
//! (`fallocate(FALLOC_FL_PUNCH_HOLE)`, stopped only by `F_SEAL_WRITE`, which
//! a shared section cannot carry). On tmpfs, where every plain memfd lives,
//! a punched page is allocated again, zero-filled, on the next touch. A
//! memfd created with `MFD_HUGETLB` lives on hugetlbfs instead: there a
//! punched page can only come back from the huge-page pool, and when the
//! pool is empty the touch raises `SIGBUS`. A hostile server could arrange
//! both, so only tmpfs sections are mapped.
//!
//! Nothing is created on any file system: a memfd lives only as long as a
//! descriptor or a mapping refers to it.

use std::os::fd::{AsFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::AtomicU32;

use rustix::fs::{MemfdFlags, SealFlags};
use rustix::mm::{MapFlags, ProtFlags};

use super::{Call, SysError, SysResult};

/// The seals every lwmq section carries.
pub const REQUIRED_SEALS: SealFlags = SealFlags::SHRINK
    .union(SealFlags::GROW)
    .union(SealFlags::SEAL);

/// `statfs.f_type` of tmpfs (`TMPFS_MAGIC`, `linux/magic.h`): the only file
/// system a received section may live on.
pub const TMPFS_MAGIC: u32 = 0x0102_1994;
/// `statfs.f_type` of hugetlbfs (`HUGETLBFS_MAGIC`), named in refusals.
pub const HUGETLBFS_MAGIC: u32 = 0x9584_58f6;

/// A readable name for a file system magic number.
fn fs_name(magic: u32) -> &'static str {
    match magic {
        TMPFS_MAGIC => "tmpfs",
        HUGETLBFS_MAGIC => "hugetlbfs",
        0x8584_58f6 => "ramfs",
        _ => "non-tmpfs",
    }
}

/// Why a received section descriptor was not mapped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenSectionError {
    /// A system call failed.
    #[error("{0}")]
    Sys(#[from] SysError),
    /// The file is not the size the handshake announced.
    #[error("shared section is {actual} bytes, the handshake announced {expected}")]
    WrongSize {
        /// Announced size.
        expected: u64,
        /// Size found with `fstat`.
        actual: u64,
    },
    /// The file lacks a seal we rely on.
    #[error(
        "shared section is not sealed against shrinking/growing (seals {0:#x}); refusing to map it"
    )]
    NotSealed(u32),
    /// The file is not on tmpfs (a hugetlbfs memfd, or not a memfd at all).
    #[error(
        "shared section lives on {fs} (statfs type {magic:#x}), not tmpfs: its pages could vanish under our mapping (SIGBUS); refusing to map it"
    )]
    NotTmpfs {
        /// `statfs.f_type`, low 32 bits.
        magic: u32,
        /// Its name, as far as we know it.
        fs: &'static str,
    },
}

/// A shared mapping of a whole section. Unmapped on drop.
///
/// The mapping's address range is fixed for its lifetime; every access goes
/// through [`Mapping::base`] plus an offset that the layout code has checked
/// against [`Mapping::len`].
#[derive(Debug)]
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory; it is not tied to the thread
// that created it. Concurrent access discipline is the ring protocol's job
// (atomics for control words, ownership hand-off for slot bytes).
unsafe impl Send for Mapping {}
// SAFETY: as above; `&Mapping` only hands out raw pointers and atomics.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Start of the mapping.
    #[inline]
    pub fn base(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Length of the mapping in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for a zero-length mapping (never produced by this module).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The 32-bit atomic word at `offset`.
    ///
    /// # Panics
    /// If `offset` is misaligned or out of bounds: offsets come from the
    /// locally computed layout, so this is a bug in lwmq, never peer input.
    #[inline]
    pub fn atomic_u32(&self, offset: usize) -> &AtomicU32 {
        assert!(
            offset.is_multiple_of(4) && offset + 4 <= self.len,
            "bad layout offset"
        );
        // SAFETY: in bounds and 4-aligned (checked above; the base is
        // page-aligned); the memory stays mapped while `self` lives, and
        // `AtomicU32` has no invalid bit patterns, so any value the peer
        // writes is fine to observe.
        unsafe { &*(self.base().add(offset) as *const AtomicU32) }
    }

    fn map(fd: &OwnedFd, len: usize) -> SysResult<Self> {
        // SAFETY: a fresh mapping chosen by the kernel (null hint) overlaps
        // nothing of ours; the file is sealed against shrinking, so every
        // page of `len` stays backed for the mapping's whole life.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                fd.as_fd(),
                0,
            )
        }
        .call("mmap")?;
        let ptr = NonNull::new(ptr.cast::<u8>())
            .ok_or_else(|| SysError::new("mmap", rustix::io::Errno::NOMEM))?;
        Ok(Self { ptr, len })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned, and no
        // reference into the mapping outlives `self` (borrows are tied to it).
        unsafe {
            let _ = rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

/// Creates a sealed section of `len` bytes and maps it.
///
/// `name` only shows in `/proc/PID/maps` and `/proc/PID/fd` (as
/// `/memfd:NAME`); it names no file.
pub fn create(name: &str, len: usize) -> SysResult<(OwnedFd, Mapping)> {
    let fd = rustix::fs::memfd_create(name, MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
        .call("memfd_create")?;
    rustix::fs::ftruncate(&fd, len as u64).call("ftruncate(memfd)")?;
    rustix::fs::fcntl_add_seals(&fd, REQUIRED_SEALS).call("fcntl(F_ADD_SEALS)")?;
    let map = Mapping::map(&fd, len)?;
    Ok((fd, map))
}

/// Checks a received section descriptor (file system, seals, size) and
/// maps it.
pub fn open(fd: &OwnedFd, expected_len: usize) -> Result<Mapping, OpenSectionError> {
    let fs = rustix::fs::fstatfs(fd).call("fstatfs(memfd)")?;
    // Magic numbers are 32-bit values; the field is wider on 64-bit ABIs
    // (and signed on some), so compare the low 32 bits.
    #[allow(clippy::unnecessary_cast)]
    let magic = fs.f_type as u32;
    if magic != TMPFS_MAGIC {
        return Err(OpenSectionError::NotTmpfs {
            magic,
            fs: fs_name(magic),
        });
    }
    let seals = rustix::fs::fcntl_get_seals(fd).call("fcntl(F_GET_SEALS)")?;
    if !seals.contains(REQUIRED_SEALS) {
        return Err(OpenSectionError::NotSealed(seals.bits()));
    }
    let st = rustix::fs::fstat(fd).call("fstat(memfd)")?;
    if st.st_size as u64 != expected_len as u64 {
        return Err(OpenSectionError::WrongSize {
            expected: expected_len as u64,
            actual: st.st_size as u64,
        });
    }
    Ok(Mapping::map(fd, expected_len)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn create_seal_open() {
        let (fd, a) = create("lwmq-test", 8192).unwrap();
        let b = open(&fd, 8192).unwrap();
        a.atomic_u32(64).store(7, Ordering::Release);
        assert_eq!(b.atomic_u32(64).load(Ordering::Acquire), 7);
        assert!(matches!(
            open(&fd, 4096),
            Err(OpenSectionError::WrongSize { .. })
        ));
        // Shrinking is refused by the seal.
        assert!(rustix::fs::ftruncate(&fd, 4096).is_err());
    }

    /// A sealed hugetlbfs memfd of the right size is refused before it is
    /// mapped, naming the file system. Skipped (with a note) where the
    /// kernel has no hugetlbfs; the pool may be empty: the file is never
    /// mapped, so no huge page is needed.
    #[test]
    fn hugetlbfs_section_is_refused() {
        let len = 2 << 20;
        let Ok(fd) = rustix::fs::memfd_create(
            "lwmq-test-huge",
            MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING | MemfdFlags::HUGETLB,
        ) else {
            eprintln!("skipped: this kernel cannot create a hugetlbfs memfd");
            return;
        };
        rustix::fs::ftruncate(&fd, len as u64).unwrap();
        rustix::fs::fcntl_add_seals(&fd, REQUIRED_SEALS).unwrap();
        let e = open(&fd, len).unwrap_err();
        assert_eq!(
            e,
            OpenSectionError::NotTmpfs {
                magic: HUGETLBFS_MAGIC,
                fs: "hugetlbfs"
            }
        );
        assert!(e.to_string().contains("hugetlbfs"), "{e}");
        assert!(e.to_string().contains("not tmpfs"), "{e}");
    }

    /// Something that is not a memfd at all (an eventfd lives on
    /// anon_inodefs) is refused by the same check.
    #[test]
    fn non_memfd_is_refused() {
        let fd = rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC).unwrap();
        assert!(matches!(
            open(&fd, 4096),
            Err(OpenSectionError::NotTmpfs { .. })
        ));
    }

    #[test]
    fn unsealed_is_refused() {
        let fd = rustix::fs::memfd_create("x", MemfdFlags::CLOEXEC).unwrap();
        rustix::fs::ftruncate(&fd, 4096).unwrap();
        assert!(matches!(
            open(&fd, 4096),
            Err(OpenSectionError::NotSealed(_))
        ));
    }
}
