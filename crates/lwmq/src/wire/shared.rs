//! Byte access for the codec: the [`Source`] the decoder reads a buffer
//! from, and views over memory that another process may write at any time
//! ([`SharedBytes`] to read it, [`SharedBytesMut`] to write it).
//!
//! A transport buffer lives in a section that both processes map. The peer
//! that filled a received buffer (or the peer a sent buffer is meant for)
//! can write it while this process works on it; a hostile peer will. A
//! `&[u8]` or `&mut [u8]` over such bytes would promise the compiler that
//! they do not change, and it may then load a value again after it was
//! checked (undefined behaviour, and in practice a double fetch). So:
//!
//! * no reference is ever made over shared bytes here; the views hold a
//!   raw pointer and a length that this process fixed (never read from the
//!   shared memory);
//! * a byte the decoder interprets (buffer header, counts, frame headers,
//!   timestamps) is read with a relaxed atomic load, through
//!   [`Source::byte`], and the decoder reads each such byte exactly once
//!   (its cursor only moves forward), checks the private value and from
//!   then on uses only that;
//! * payload bytes are copied out with `ptr::copy_nonoverlapping` from
//!   ranges computed from those private values. They are moved, never
//!   interpreted: if the peer changes them meanwhile, the receiver gets a
//!   mix of old and new bytes, exactly as if the peer had sent that mix
//!   (a peer is trusted with its data, never with the structure). Rust has
//!   no atomic bulk copy yet; a plain copy from memory outside this
//!   process's control is the accepted practice until it has one;
//! * the encoder only writes (raw-pointer stores and copies) and never
//!   reads back what it wrote.

use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU8, Ordering};

use bytes::Bytes;

/// Where the decoder reads a buffer from: private bytes (`[u8]`), memory
/// the peer may write ([`SharedBytes`]), or a test double that counts or
/// changes what it returns.
///
/// # Safety
///
/// Implementations must uphold what the decoder builds on when it hands
/// [`Self::copy_to_uninit`] uninitialised memory: the method writes only
/// initialised bytes into `dst`, and when it returns `true` it has written
/// every byte of `dst`.
pub unsafe trait Source {
    /// Number of bytes. Fixed for the life of the source (this process's
    /// value, never read from shared memory).
    fn len(&self) -> usize;

    /// True if the source holds no byte.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The byte at `at`, or `None` past the end. Each call is one read of
    /// the memory: two calls may return different values for a source the
    /// peer writes.
    fn byte(&self, at: usize) -> Option<u8>;

    /// Copies `dst.len()` bytes starting at `at` into `dst`. Returns false,
    /// writing nothing, if the range does not lie inside the source.
    fn copy_to_uninit(&self, at: usize, dst: &mut [MaybeUninit<u8>]) -> bool;

    /// [`Self::copy_to_uninit`] into initialised memory.
    fn copy_to(&self, at: usize, dst: &mut [u8]) -> bool {
        let len = dst.len();
        // SAFETY: `MaybeUninit<u8>` has the layout of `u8`, and the trait's
        // contract says `copy_to_uninit` writes only initialised bytes, so
        // `dst` stays initialised whatever it does.
        let dst = unsafe { std::slice::from_raw_parts_mut(dst.as_mut_ptr().cast(), len) };
        self.copy_to_uninit(at, dst)
    }
}

// SAFETY: `copy_to_uninit` writes exactly `dst.len()` bytes copied from the
// slice (initialised) or nothing.
unsafe impl Source for [u8] {
    #[inline(always)]
    fn len(&self) -> usize {
        <[u8]>::len(self)
    }

    #[inline(always)]
    fn byte(&self, at: usize) -> Option<u8> {
        self.get(at).copied()
    }

    #[inline]
    fn copy_to_uninit(&self, at: usize, dst: &mut [MaybeUninit<u8>]) -> bool {
        let Some(src) = at.checked_add(dst.len()).and_then(|end| self.get(at..end)) else {
            return false;
        };
        // SAFETY: `src` and `dst` have the same length and do not overlap
        // (`dst` is a unique borrow, `src` a shared one); `u8` and
        // `MaybeUninit<u8>` share their layout.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst.as_mut_ptr().cast(), src.len()) };
        true
    }
}

/// A read-only view of `len` bytes that another process may write at any
/// time (a received transport buffer, or a frame inside one).
///
/// It never promises that the bytes stay the same: every access is a fresh
/// read ([`Self::byte`] is one atomic load, [`Self::read`] one copy), so a
/// value read once and checked can be kept in a local, and nothing in the
/// program depends on reading it again. Borrowing the bytes as a `&[u8]`
/// is possible only through the `unsafe` [`Self::as_slice`], whose caller
/// vouches that nobody writes them meanwhile.
#[derive(Clone, Copy)]
pub struct SharedBytes<'a> {
    ptr: NonNull<u8>,
    len: usize,
    _mem: PhantomData<&'a [AtomicU8]>,
}

// SAFETY: a `SharedBytes` only reads (atomic loads and copies out), which
// any number of threads may do at once; the memory stays mapped for `'a`
// (the constructor's contract) whichever thread reads it.
unsafe impl Send for SharedBytes<'_> {}
// SAFETY: as for `Send`: shared use is reading only.
unsafe impl Sync for SharedBytes<'_> {}

impl std::fmt::Debug for SharedBytes<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedBytes")
            .field("ptr", &self.ptr)
            .field("len", &self.len)
            .finish()
    }
}

impl<'a> SharedBytes<'a> {
    /// A view of `len` bytes at `ptr`.
    ///
    /// # Safety
    ///
    /// For all of `'a`, the `len` bytes at `ptr` must stay mapped readable
    /// and writable (atomic loads are made on them) and must not be
    /// deallocated. Any process may write them, with atomic or plain
    /// stores, at any time; no `&mut` reference to them may exist in this
    /// process during `'a`.
    pub unsafe fn new(ptr: *const u8, len: usize) -> Self {
        SharedBytes {
            // A null pointer is only possible for an empty view; use a
            // dangling one then (never dereferenced: every access checks
            // the length first).
            ptr: NonNull::new(ptr.cast_mut()).unwrap_or(NonNull::dangling()),
            len: if ptr.is_null() { 0 } else { len },
            _mem: PhantomData,
        }
    }

    /// Number of bytes in the view.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if the view holds no byte.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Start of the view (for diagnostics and pointer comparisons; reading
    /// through it needs the same care as the view itself).
    pub fn as_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }

    /// The byte at `at`, read once (a relaxed atomic load), or `None` past
    /// the end.
    #[inline(always)]
    pub fn byte(&self, at: usize) -> Option<u8> {
        if at >= self.len {
            return None;
        }
        // SAFETY: `at < len`, so the byte lies inside the view, which the
        // constructor's contract keeps mapped read-write for `'a`. An atomic
        // load is defined whatever the peer stores concurrently.
        Some(unsafe { AtomicU8::from_ptr(self.ptr.as_ptr().add(at)) }.load(Ordering::Relaxed))
    }

    /// The bytes `start..start + len` as a view of their own, or `None` if
    /// they do not lie inside this one.
    #[inline]
    pub fn slice(&self, start: usize, len: usize) -> Option<SharedBytes<'a>> {
        if start.checked_add(len)? > self.len {
            return None;
        }
        Some(SharedBytes {
            // SAFETY: `start <= self.len`, so the result stays inside (or
            // one past the end of) the view.
            ptr: unsafe { self.ptr.add(start) },
            len,
            _mem: PhantomData,
        })
    }

    /// Copies bytes from `offset` on into `dst`, as many as fit and as the
    /// view holds; returns how many (0 at or past the end).
    #[inline]
    pub fn read(&self, offset: usize, dst: &mut [u8]) -> usize {
        let n = dst.len().min(self.len.saturating_sub(offset));
        if n == 0 {
            return 0;
        }
        // SAFETY: `offset + n <= len`: the source lies inside the view
        // (mapped for `'a`); `dst` is a unique borrow of private memory, so
        // the ranges do not overlap. The copy moves whatever the bytes hold
        // at this moment and interprets none of them.
        unsafe {
            std::ptr::copy_nonoverlapping(self.ptr.as_ptr().add(offset), dst.as_mut_ptr(), n)
        };
        n
    }

    /// Copies the whole view into a new vector.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.len);
        if self.copy_to_uninit(0, &mut v.spare_capacity_mut()[..self.len]) {
            // SAFETY: `copy_to_uninit` returned true: it initialised the
            // first `len` bytes of the spare capacity.
            unsafe { v.set_len(self.len) };
        }
        v
    }

    /// Borrows the bytes as a slice.
    ///
    /// # Safety
    ///
    /// Nobody, in this process or any other, may write these bytes while
    /// the returned slice is in use. That holds when the peer follows the
    /// LwMQ protocol (an lwmq peer never touches a buffer it handed over
    /// until the receiver gives it back), but not against a buggy or
    /// hostile peer: one that writes the bytes meanwhile makes the program
    /// undefined (the compiler may assume that a value it read through the
    /// slice and checked is still the same when read again). Use
    /// [`Self::read`] or [`Self::to_vec`] when the peer is not trusted to
    /// that degree.
    pub unsafe fn as_slice(&self) -> &'a [u8] {
        // SAFETY: the view's bytes are mapped for `'a` (constructor), and
        // the caller guarantees that nobody writes them while the slice is
        // used.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

// SAFETY: `copy_to_uninit` writes exactly `dst.len()` bytes copied from the
// mapping (all of which is initialised memory) or nothing.
unsafe impl Source for SharedBytes<'_> {
    #[inline(always)]
    fn len(&self) -> usize {
        self.len
    }

    #[inline(always)]
    fn byte(&self, at: usize) -> Option<u8> {
        SharedBytes::byte(self, at)
    }

    #[inline(always)]
    fn copy_to_uninit(&self, at: usize, dst: &mut [MaybeUninit<u8>]) -> bool {
        match at.checked_add(dst.len()) {
            Some(end) if end <= self.len => {}
            _ => return false,
        }
        // SAFETY: `at + dst.len() <= len`: the source lies inside the view
        // (mapped for `'a`); `dst` is a unique borrow of private memory, so
        // the ranges do not overlap. Whatever the bytes hold is moved as
        // is; every byte of mapped memory is initialised.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.ptr.as_ptr().add(at),
                dst.as_mut_ptr().cast::<u8>(),
                dst.len(),
            )
        };
        true
    }
}

/// A write-only view of `len` bytes that another process may read or write
/// at any time (an acquired transport buffer), or of private memory.
///
/// Writes go through raw pointers; nothing is ever read back, so a peer
/// that scribbles over the buffer only changes what it will receive.
pub struct SharedBytesMut<'a> {
    ptr: NonNull<u8>,
    len: usize,
    _mem: PhantomData<&'a mut [u8]>,
}

// SAFETY: the view is the only handle this process uses to write the bytes
// (constructor's contract), so moving it to another thread moves that
// right with it.
unsafe impl Send for SharedBytesMut<'_> {}

impl std::fmt::Debug for SharedBytesMut<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedBytesMut")
            .field("ptr", &self.ptr)
            .field("len", &self.len)
            .finish()
    }
}

impl<'a> SharedBytesMut<'a> {
    /// A view of `len` writable bytes at `ptr`.
    ///
    /// # Safety
    ///
    /// For all of `'a`, the `len` bytes at `ptr` must stay mapped writable
    /// and must not be deallocated, and nothing else in this process may
    /// read or write them (no reference to them exists, no other view).
    /// Other processes may read and write them at any time.
    pub unsafe fn new(ptr: *mut u8, len: usize) -> Self {
        SharedBytesMut {
            ptr: NonNull::new(ptr).unwrap_or(NonNull::dangling()),
            len: if ptr.is_null() { 0 } else { len },
            _mem: PhantomData,
        }
    }

    /// A view of private memory.
    pub fn from_mut_slice(buf: &'a mut [u8]) -> Self {
        SharedBytesMut {
            ptr: NonNull::from(&mut *buf).cast(),
            len: buf.len(),
            _mem: PhantomData,
        }
    }

    /// Number of bytes in the view.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if the view holds no byte.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A second view of `start..end` of this one, for as long as this one
    /// lives (`'a`); `None` if the range is not inside it.
    ///
    /// The two views cover the same bytes; like every view they only ever
    /// store, so neither can observe the other's writes, and the caller
    /// (the encoder's loan) keeps the writes of the two to separate ranges.
    pub fn sub(&mut self, start: usize, end: usize) -> Option<SharedBytesMut<'a>> {
        if start > end || end > self.len {
            return None;
        }
        Some(SharedBytesMut {
            // SAFETY: `start <= end <= len`: the offset stays inside (or
            // one past the end of) the view's allocation.
            ptr: unsafe { NonNull::new_unchecked(self.ptr.as_ptr().add(start)) },
            len: end - start,
            _mem: PhantomData,
        })
    }

    /// The address of the first byte (for a loan's slice, whose caller
    /// vouches that nothing else writes it).
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Writes `byte` at `at`; false (nothing written) past the end.
    #[inline(always)]
    pub fn write_byte(&mut self, at: usize, byte: u8) -> bool {
        if at >= self.len {
            return false;
        }
        // SAFETY: `at < len`: inside the view, writable for `'a` and not
        // accessed by anything else in this process (constructor).
        unsafe { self.ptr.as_ptr().add(at).write(byte) };
        true
    }

    /// Copies `bytes` to `at..at + bytes.len()`; false (nothing written) if
    /// that range does not lie inside the view.
    #[inline(always)]
    pub fn write(&mut self, at: usize, bytes: &[u8]) -> bool {
        match at.checked_add(bytes.len()) {
            Some(end) if end <= self.len => {}
            _ => return false,
        }
        // SAFETY: the range lies inside the view (checked above), writable
        // for `'a` and not accessed by anything else in this process;
        // `bytes` is private memory of this process (a shared borrow that
        // cannot alias the view's bytes, which no reference covers).
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.ptr.as_ptr().add(at), bytes.len())
        };
        true
    }
}

/// [`gather`] of one range: a received frame larger than the inline size,
/// copied into an allocation of its own that the frame's `Bytes` takes
/// over. A range outside `src` (never the case for a validated one) reads
/// as zeros.
pub(crate) fn copy_out<S: Source + ?Sized>(src: &S, start: usize, len: usize) -> Bytes {
    // A validated range lies inside `src`; clamping keeps a wrong one from
    // allocating more than the source holds.
    let len = len.min(src.len());
    let mut out = Vec::<u8>::with_capacity(len);
    let spare = &mut out.spare_capacity_mut()[..len];
    if !src.copy_to_uninit(start, spare) {
        spare.fill(MaybeUninit::new(0));
    }
    // SAFETY: the first `len` bytes of the spare capacity were written
    // above, by `copy_to_uninit` returning true (which by the trait's
    // contract wrote all of them) or by the zero fill.
    unsafe { out.set_len(len) };
    Bytes::from(out)
}

/// Copies the byte ranges `spans` of `src` (`(start, len)`, in order) back
/// to back into one new buffer of `total` bytes. A range that does not lie
/// inside `src` (never the case for ranges the decoder validated against
/// it) reads as zeros, so the result always holds exactly the bytes the
/// spans say; ranges beyond `total` are left out.
pub(crate) fn gather<S, I>(src: &S, spans: I, total: usize) -> Bytes
where
    S: Source + ?Sized,
    I: IntoIterator<Item = (usize, usize)>,
{
    // Validated ranges lie inside `src` and do not overlap: their sum is at
    // most its length. Clamping keeps a wrong `total` from allocating more.
    let total = total.min(src.len());
    let mut out = Vec::<u8>::with_capacity(total);
    let spare = &mut out.spare_capacity_mut()[..total];
    let mut filled = 0usize;
    for (start, len) in spans {
        let Some(dst) = filled
            .checked_add(len)
            .and_then(|end| spare.get_mut(filled..end))
        else {
            break;
        };
        if !src.copy_to_uninit(start, dst) {
            dst.fill(MaybeUninit::new(0));
        }
        filled += len;
    }
    // SAFETY: the first `filled` bytes of the spare capacity were each
    // written above, by `copy_to_uninit` returning true (which by the
    // trait's contract wrote all of them) or by the zero fill.
    unsafe { out.set_len(filled) };
    Bytes::from(out)
}
