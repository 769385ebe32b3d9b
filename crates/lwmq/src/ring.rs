//! A single-producer single-consumer ring of fixed-size slots in shared
//! memory, shared by two processes that do not trust each other.
//!
//! # Layout (all offsets from [`RingLayout`], computed by each side from the
//! negotiated parameters, never read from shared memory)
//!
//! ```text
//! ctrl + 0    tail      u32  written by the producer: slots published
//! ctrl + 128  head      u32  written by the consumer: slots released
//! ctrl + 256  c_sleep   u32  consumer is (about to be) asleep on `tail`
//! ctrl + 260  c_async   u32  consumer waits on its readiness fd (async)
//! ctrl + 384  p_sleep   u32  producer is (about to be) asleep on `head`
//! ctrl + 388  p_async   u32  producer waits on its readiness fd (async)
//! slots + i * stride:  [len u32][flags u32][seq u32][pad to 64][data]
//!                      (stride a multiple of 128)
//! ```
//!
//! Each control word has 128 bytes to itself so that the adjacent-line
//! prefetcher does not make the two processes fight over a pair of lines.
//! `tail` and `head` are free-running 32-bit counters; each side keeps its
//! own 64-bit position and reconstructs the other's from the low bits, which
//! is exact because the two never differ by more than the capacity.
//!
//! # Protocol
//!
//! Producer: write the slot's data, length and flags, then its sequence
//! word `position + 1` (SYNC POINT D, release), then `tail + 1` (SYNC POINT
//! A, release). Consumer: load the next slot's sequence word (D, acquire);
//! only when it is not there yet, load `tail` (A, acquire) to validate it
//! and learn how much is published. Polling the slot header instead of
//! `tail` means a waiting consumer touches one cache line per buffer, the
//! one holding the length and, through the adjacent-line prefetcher, the
//! start of the data. Consumer release: `head + 1` (SYNC POINT B, release);
//! producer loads `head` (SYNC POINT B, acquire) before reusing the slot.
//!
//! Several slots in flight: the producer may *reserve* the next few free
//! slots at once ([`Producer::buf_at`], [`Producer::has_space_for`]) and
//! hands their data areas to its application; it still publishes them in
//! position order, one at a time. A reserved slot the application gives
//! back while later ones are still reserved cannot be skipped (the later
//! ones' positions are fixed), so it is published with [`FLAG_DISCARD`]
//! and length 0: the consumer releases it without handing it out. The
//! consumer may likewise hold several taken slots ([`Consumer::take`]) and
//! give them back in any order; it moves `head` over the prefix of slots it
//! is done with ([`Consumer::release`]), so the producer only ever sees
//! `head` advance in order. Neither extension changes the two counters'
//! meaning, so SYNC POINTS A to D are unchanged.
//!
//! Sleeping (no lost wake-up): the waiter stores its sleep flag, then
//! re-checks the counter, then calls `FUTEX_WAIT` on the counter with the
//! value it saw; the other side publishes its counter, then reads the flag
//! and wakes only if it is set. Each side orders its store before its load
//! (SYNC POINT C), so at least one sees the other's write. In
//! [`Fences::Symmetric`] mode both use sequentially consistent operations;
//! in [`Fences::Asymmetric`] mode (both processes registered for
//! `membarrier`) the publisher uses a compiler fence only and the waiter a
//! `membarrier` before it sleeps (see [`crate::sys::barrier`]).
//!
//! Readiness for async waiters (an executor that cannot sleep in a futex):
//! a side whose peer passed it a *readiness fd* (an eventfd, exchanged in
//! the handshake) also checks the other side's async flag (`c_async`
//! after publishing `tail`, `p_async` after publishing `head`) and writes
//! the peer's eventfd if it is set. The async waiter sets its flag
//! ([`set_async_waiter`]), orders the store before its loads as above
//! (SYNC POINT E, the same store-then-load pairing as C), re-checks its
//! condition, and only then waits for its eventfd to become readable; it
//! clears the flag once its condition held. A busy channel never finds the
//! flag set, so it makes no system call; an old peer that never reads the
//! flag is found in the handshake (no readiness feature) and the async
//! waiter polls instead. See `tests/loom_readiness.rs` for the model.
//!
//! # Validation
//!
//! The peer may be buggy, crashed mid-write or hostile. Every value read
//! from the section is checked before use: `tail - head` never exceeds the
//! capacity, `head` never passes `tail`, a slot length never exceeds the
//! buffer size, a slot's flags hold no unknown bit, and a discarded slot
//! carries no bytes. Each of these values is loaded once, then checked, then
//! used. A violation is returned as [`Violation`]; the caller drops the
//! connection. Slot data are only ever accessed inside the slot's bounds,
//! which are fixed by the local layout, and only through raw pointers: no
//! `&[u8]` is ever formed over bytes the peer can write (the peer may change
//! them at any time; only their values are its to choose).

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::sys::shm::Mapping;
use crate::sys::{barrier, futex};
use crate::timeout::Deadline;

/// Bytes of control block per ring.
pub const CTRL_SIZE: usize = 512;
/// Bytes of header before each slot's data.
pub const SLOT_HEADER: usize = 64;
/// Lines of a received buffer that `Consumer::peek` prefetches.
const PREFETCH_LINES: usize = 4;
/// Offset of `tail` in the control block.
pub const TAIL: usize = 0;
/// Offset of `head` in the control block.
pub const HEAD: usize = 128;
const C_SLEEP: usize = 256;
const P_SLEEP: usize = 384;
/// Async consumer waiting on its readiness fd (same line as `c_sleep`).
const C_ASYNC: usize = 260;
/// Async producer waiting on its readiness fd (same line as `p_sleep`).
const P_ASYNC: usize = 388;
/// Offset of a slot's sequence word in its header: `position + 1` of the
/// slot's latest publication.
pub const SEQ: usize = 8;
/// Slot flag: the consumer zeroes the data before releasing the slot.
pub const FLAG_ERASE: u32 = 1;
/// Slot flag: the producer gave this slot back unsent after reserving it
/// (a later reserved slot was still out); the consumer releases it without
/// handing it out. Its length is 0. (Protocol version 2.)
pub const FLAG_DISCARD: u32 = 2;
/// Every flag this version knows; a slot with another bit set is a
/// violation.
pub const KNOWN_FLAGS: u32 = FLAG_ERASE | FLAG_DISCARD;
/// Longest single futex sleep: waiters re-check the connection this often.
const SLEEP_SLICE: Duration = Duration::from_millis(50);

/// How the two sides order "publish" against "check the sleep flag".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fences {
    /// Sequentially consistent operations on both sides.
    Symmetric,
    /// Compiler fence when publishing, `membarrier` before sleeping. Only
    /// valid when both processes registered (negotiated in the handshake).
    Asymmetric,
}

/// Where one ring lives inside a mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingLayout {
    /// Offset of the control block (128-aligned).
    pub ctrl: usize,
    /// Offset of slot 0 (64-aligned).
    pub slots: usize,
    /// Number of slots (0 for an unused direction).
    pub capacity: u32,
    /// Usable bytes per slot.
    pub buffer_size: usize,
}

impl RingLayout {
    /// Distance between consecutive slots.
    pub fn stride(buffer_size: usize) -> Option<usize> {
        // A multiple of 128, so each slot header and the first line of its
        // data form one 128-byte pair that the adjacent-line prefetcher
        // fetches together.
        SLOT_HEADER
            .checked_add(buffer_size.checked_add(63)? & !63)?
            .checked_add(127)
            .map(|x| x & !127)
    }

    /// Bytes the slots occupy.
    pub fn slot_bytes(capacity: u32, buffer_size: usize) -> Option<usize> {
        Self::stride(buffer_size)?.checked_mul(capacity as usize)
    }

    /// True if the whole ring lies inside `len` bytes with proper alignment.
    pub fn fits(&self, len: usize) -> bool {
        let slots_end = Self::slot_bytes(self.capacity, self.buffer_size)
            .and_then(|b| self.slots.checked_add(b));
        self.ctrl.is_multiple_of(128)
            && self.slots.is_multiple_of(128)
            && self.ctrl.checked_add(CTRL_SIZE).is_some_and(|e| e <= len)
            && slots_end.is_some_and(|e| e <= len)
    }

    fn slot_offset(&self, pos: u64) -> usize {
        self.slot_at((pos % u64::from(self.capacity)) as u32)
    }

    /// Offset of slot `index` (`< capacity`): no division, for the hot
    /// paths, which keep their position's index up to date.
    #[inline(always)]
    fn slot_at(&self, index: u32) -> usize {
        let stride = (SLOT_HEADER + ((self.buffer_size + 63) & !63) + 127) & !127;
        self.slots + index as usize * stride
    }

    /// `index + n` modulo the capacity, for `index < capacity`.
    #[inline(always)]
    fn advance(&self, index: u32, n: u64) -> u32 {
        let cap = u64::from(self.capacity);
        let j = u64::from(index) + n;
        (if j < cap {
            j
        } else if j < 2 * cap {
            j - cap
        } else {
            j % cap
        }) as u32
    }
}

/// The peer broke the ring protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    /// `tail` claims more slots than the ring has.
    #[error("peer published {avail} slots in a ring of {capacity} (tail index out of range)")]
    TailOutOfRange {
        /// Slots claimed.
        avail: u32,
        /// Ring capacity.
        capacity: u32,
    },
    /// `head` moved past `tail` or backwards.
    #[error("peer released {released} slots but only {outstanding} were outstanding (head index out of range)")]
    HeadOutOfRange {
        /// Slots the new head releases.
        released: u32,
        /// Slots that were published and not yet released.
        outstanding: u64,
    },
    /// A published slot whose sequence word does not match its position.
    #[error("peer published a slot with sequence {found}, expected {expected} (slot header out of step)")]
    SequenceMismatch {
        /// Sequence word read.
        found: u32,
        /// Sequence expected at this position.
        expected: u32,
    },
    /// A slot length larger than the buffer.
    #[error("peer wrote slot length {len} into buffers of {size} bytes (length out of range)")]
    LengthOutOfRange {
        /// Length read.
        len: u32,
        /// Buffer size.
        size: usize,
    },
    /// A slot flag this version does not know.
    #[error("peer published a slot with flags {flags:#x}; known flags are {KNOWN_FLAGS:#x} (unknown slot flag)")]
    UnknownFlags {
        /// Flags read.
        flags: u32,
    },
    /// A discarded slot that claims to carry bytes.
    #[error(
        "peer published a discarded slot of length {len} (rule: a discarded slot has length 0)"
    )]
    DiscardWithLength {
        /// Length read.
        len: u32,
    },
}

/// A published slot found by [`Consumer::peek`], its header read once and
/// validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// Start of the slot's data (inside the mapping; `len` bytes may be
    /// read through it while the slot is taken). The peer can still write
    /// these bytes: read them with raw-pointer copies, never through a
    /// reference.
    pub ptr: *mut u8,
    /// Bytes the producer filled (checked `<= buffer_size`).
    pub len: usize,
    /// The producer asked for the data to be zeroed once consumed.
    pub erase: bool,
    /// The producer gave the slot back unsent: release it, never hand it
    /// out.
    pub discarded: bool,
}

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitOutcome {
    /// The condition holds.
    Ready,
    /// The deadline passed.
    TimedOut,
    /// The connection was marked dead.
    Dead,
}

struct Words<'a> {
    tail: &'a AtomicU32,
    head: &'a AtomicU32,
    c_sleep: &'a AtomicU32,
    p_sleep: &'a AtomicU32,
}

fn words<'a>(map: &'a Mapping, l: &RingLayout) -> Words<'a> {
    Words {
        tail: map.atomic_u32(l.ctrl + TAIL),
        head: map.atomic_u32(l.ctrl + HEAD),
        c_sleep: map.atomic_u32(l.ctrl + C_SLEEP),
        p_sleep: map.atomic_u32(l.ctrl + P_SLEEP),
    }
}

/// Spins up to `spin`, then sleeps on `word` in slices until `ready()`,
/// the deadline, or `dead`.
fn wait_on(
    word: &AtomicU32,
    sleep_flag: &AtomicU32,
    mut ready: impl FnMut() -> bool,
    deadline: Deadline,
    spin: Duration,
    dead: &AtomicBool,
    fences: Fences,
) -> WaitOutcome {
    if ready() {
        return WaitOutcome::Ready;
    }
    // A wait with no time left (a zero timeout: the messaging layer's
    // polls, a pump's acquire) does not spin: each such call used to poll
    // 256 times, and a receive that polls 256 times before it sleeps spun
    // for milliseconds (measured: a sparse ping-pong's p50 at 1.3-2 ms and
    // 72 % of a core, against 6 µs after).
    if !spin.is_zero() && !deadline.passed() {
        let start = Instant::now();
        let mut i = 0u32;
        loop {
            for _ in 0..64 {
                std::hint::spin_loop();
                if ready() {
                    return WaitOutcome::Ready;
                }
            }
            i += 1;
            if i.is_multiple_of(4) && (start.elapsed() >= spin || deadline.passed()) {
                break;
            }
            // Let a thread queued on this CPU run: the peer this side has
            // just woken is often placed here (the kernel favours the
            // waker's CPU), and it cannot answer while we spin. Without
            // this a sparse ping-pong paid the whole spin per message
            // (measured: p50 = spin + 10 µs). Returns at once when nothing
            // else is runnable.
            std::thread::yield_now();
        }
    }
    loop {
        if dead.load(Ordering::Acquire) {
            return WaitOutcome::Dead;
        }
        if deadline.passed() {
            return if ready() {
                WaitOutcome::Ready
            } else {
                WaitOutcome::TimedOut
            };
        }
        let seen = word.load(Ordering::SeqCst);
        // SYNC POINT C (waiter side): flag first, then re-check.
        sleep_flag.store(1, Ordering::SeqCst);
        if fences == Fences::Asymmetric {
            barrier::heavy();
        }
        if ready() {
            sleep_flag.store(0, Ordering::Relaxed);
            return WaitOutcome::Ready;
        }
        if word.load(Ordering::SeqCst) == seen {
            futex::wait(word, seen, Some(deadline.slice(SLEEP_SLICE)));
        }
        sleep_flag.store(0, Ordering::Relaxed);
        if ready() {
            return WaitOutcome::Ready;
        }
    }
}

/// [`wait_on`] for a condition that may find a protocol violation: the
/// violation ends the wait and is returned.
fn wait_checked(
    word: &AtomicU32,
    sleep_flag: &AtomicU32,
    mut ready: impl FnMut() -> Result<bool, Violation>,
    deadline: Deadline,
    spin: Duration,
    dead: &AtomicBool,
    fences: Fences,
) -> Result<WaitOutcome, Violation> {
    let mut violation = None;
    let out = wait_on(
        word,
        sleep_flag,
        || {
            ready().unwrap_or_else(|v| {
                violation = Some(v);
                true
            })
        },
        deadline,
        spin,
        dead,
        fences,
    );
    violation.map_or(Ok(out), Err)
}

/// Publishes `value` into `word`, then wakes the other side if its sleep
/// flag is set (SYNC POINTS A/B release, and C waker side). True if it
/// woke it.
#[inline]
fn publish_and_wake(word: &AtomicU32, value: u32, sleep_flag: &AtomicU32, fences: Fences) -> bool {
    let asleep = match fences {
        Fences::Symmetric => {
            word.swap(value, Ordering::SeqCst);
            sleep_flag.load(Ordering::SeqCst) != 0
        }
        Fences::Asymmetric => {
            word.store(value, Ordering::Release);
            barrier::light();
            sleep_flag.load(Ordering::Relaxed) != 0
        }
    };
    // Only the waiter clears its flag. Clearing it here (as a `swap(0)`
    // once did, to wake only once per burst) could consume the waiter's
    // *next* registration: the wake then lands before that sleep starts,
    // and the next publication finds no flag (a lost wake-up, found by the
    // loom model in tests/loom_ring.rs). A few redundant wakes while the
    // waiter is on its way out of the futex are the price.
    if asleep {
        futex::wake_all(word);
    }
    asleep
}

/// Which end of a ring an async waiter waits as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsyncWaiter {
    /// Waits for data (`c_async`; the producer signals after `tail`).
    Consumer,
    /// Waits for free slots (`p_async`; the consumer signals after `head`).
    Producer,
}

/// Declares (`armed`) or withdraws an async waiter at one end of a ring:
/// while the flag is set, the other side writes this side's readiness fd
/// after each publication. Arming orders the flag store before the
/// caller's next loads (SYNC POINT E, waiter side): the caller re-checks
/// its condition after this returns, and waits for the fd only if it
/// still does not hold.
pub fn set_async_waiter(
    map: &Mapping,
    l: &RingLayout,
    side: AsyncWaiter,
    armed: bool,
    fences: Fences,
) {
    let flag = map.atomic_u32(
        l.ctrl
            + match side {
                AsyncWaiter::Consumer => C_ASYNC,
                AsyncWaiter::Producer => P_ASYNC,
            },
    );
    if !armed {
        flag.store(0, Ordering::Relaxed);
        return;
    }
    flag.store(1, Ordering::SeqCst);
    match fences {
        Fences::Symmetric => std::sync::atomic::fence(Ordering::SeqCst),
        Fences::Asymmetric => barrier::heavy(),
    }
}

/// After a publication (SYNC POINT E, publisher side: the counter was
/// stored just before, in `publish_and_wake`): writes the peer's
/// readiness fd if its async flag is set.
#[inline]
fn notify_async(flag: &AtomicU32, fd: &OwnedFd, fences: Fences) {
    let armed = match fences {
        Fences::Symmetric => flag.load(Ordering::SeqCst),
        Fences::Asymmetric => flag.load(Ordering::Relaxed),
    };
    if armed != 0 {
        signal_readiness(fd);
    }
}

/// Makes a readiness eventfd readable (adds 1 to its counter). A full
/// counter (never in practice: it would take 2^64 - 1 writes without a
/// read) or a closed peer fd is not an error: the waiter is awake anyway.
#[cold]
pub fn signal_readiness(fd: &OwnedFd) {
    let _ = rustix::io::write(fd, &1u64.to_ne_bytes());
}

/// The producing end of a ring.
#[derive(Debug)]
pub struct Producer {
    map: Arc<Mapping>,
    l: RingLayout,
    tail: u64,
    /// `tail % capacity`.
    tail_idx: u32,
    head: u64,
    fences: Fences,
    /// The peer's readiness fd, when it passed one: written after a
    /// publication while the peer's `c_async` flag is set.
    peer_ready: Option<Arc<OwnedFd>>,
}

impl Producer {
    /// Attaches to a ring whose `tail` this side wrote last (or a fresh one).
    ///
    /// # Panics
    /// If the layout does not fit the mapping (a local bug, never peer input).
    pub fn attach(map: Arc<Mapping>, l: RingLayout, fences: Fences) -> Self {
        assert!(
            l.fits(map.len()) && l.capacity > 0,
            "ring layout outside mapping"
        );
        let t32 = map.atomic_u32(l.ctrl + TAIL).load(Ordering::Relaxed);
        let h32 = map.atomic_u32(l.ctrl + HEAD).load(Ordering::Acquire);
        let tail = u64::from(t32);
        // A head outside [tail - capacity, tail] is caught by the next
        // refresh; start from the most conservative reading.
        let outstanding = t32.wrapping_sub(h32).min(l.capacity);
        Self {
            map,
            l,
            tail,
            tail_idx: (tail % u64::from(l.capacity)) as u32,
            head: tail.saturating_sub(u64::from(outstanding)),
            fences,
            peer_ready: None,
        }
    }

    /// Sets the peer's readiness fd (see the module docs): from now on a
    /// publication writes it while the peer's async consumer is waiting.
    pub fn set_peer_ready(&mut self, fd: Option<Arc<OwnedFd>>) {
        self.peer_ready = fd;
    }

    /// Buffer size of each slot.
    pub fn buffer_size(&self) -> usize {
        self.l.buffer_size
    }

    /// Published slots the consumer has not released (as last seen).
    pub fn outstanding(&self) -> u64 {
        self.tail - self.head
    }

    /// Re-reads the consumer's `head`, validating it.
    fn refresh_head(&mut self) -> Result<(), Violation> {
        // SYNC POINT B (acquire): slot contents released by the consumer.
        let h = words(&self.map, &self.l).head.load(Ordering::Acquire);
        let released = h.wrapping_sub(self.head as u32);
        let outstanding = self.tail - self.head;
        if u64::from(released) > outstanding {
            return Err(Violation::HeadOutOfRange {
                released,
                outstanding,
            });
        }
        self.head += u64::from(released);
        Ok(())
    }

    /// Published slots the consumer has not released, re-reading `head`.
    pub fn outstanding_now(&mut self) -> Result<u64, Violation> {
        self.refresh_head()?;
        Ok(self.tail - self.head)
    }

    /// True if a slot is free, re-reading `head` only when needed.
    pub fn has_space(&mut self) -> Result<bool, Violation> {
        self.has_space_for(1)
    }

    /// True if the next `n` slots (from `tail` on) are all free, re-reading
    /// `head` only when needed. A producer holding `k` reserved slots asks
    /// for `k + 1` before it hands out another one.
    #[inline(always)]
    pub fn has_space_for(&mut self, n: u64) -> Result<bool, Violation> {
        let cap = u64::from(self.l.capacity);
        if self.tail - self.head + n <= cap {
            return Ok(true);
        }
        self.refresh_head()?;
        Ok(self.tail - self.head + n <= cap)
    }

    /// Refreshes `head` and reports whether the consumer released everything.
    pub fn drained(&mut self) -> Result<bool, Violation> {
        self.refresh_head()?;
        Ok(self.tail == self.head)
    }

    /// The data area of the next slot. Only meaningful after `has_space`
    /// returned true; the memory stays valid while `self` lives.
    pub fn next_buf(&self) -> *mut u8 {
        self.buf_at(0)
    }

    /// The data area of slot `tail + i` (`buffer_size` bytes). Only
    /// meaningful after `has_space_for(i + 1)` returned true; the memory
    /// stays mapped while `self` lives. The peer can write these bytes too:
    /// write them through the raw pointer, never through a reference.
    #[inline(always)]
    pub fn buf_at(&self, i: u64) -> *mut u8 {
        // SAFETY: `advance` reduces the index modulo the capacity, so
        // slot_at(..) + SLOT_HEADER + buffer_size lies inside the mapping
        // (`fits` was checked in `attach`) whatever `i` is. Only the
        // address is computed here; nothing is read or written.
        unsafe {
            self.map
                .base()
                .add(self.l.slot_at(self.l.advance(self.tail_idx, i)) + SLOT_HEADER)
        }
    }

    /// Publishes the next slot with `len` bytes. The caller checked
    /// `has_space` and `len <= buffer_size`. True if the consumer was
    /// asleep and was woken.
    pub fn publish(&mut self, len: usize, flags: u32) -> bool {
        debug_assert!(
            len <= self.l.buffer_size
                && self.tail - self.head < u64::from(self.l.capacity)
                && flags & !KNOWN_FLAGS == 0
        );
        let off = self.l.slot_at(self.tail_idx);
        self.map
            .atomic_u32(off)
            .store(len as u32, Ordering::Relaxed);
        self.map.atomic_u32(off + 4).store(flags, Ordering::Relaxed);
        self.tail += 1;
        self.tail_idx = self.l.advance(self.tail_idx, 1);
        // SYNC POINT D (release): the slot's own sequence word, which a
        // polling consumer reads instead of `tail` (one cache line, shared
        // with the slot's length, instead of two).
        self.map
            .atomic_u32(off + SEQ)
            .store(self.tail as u32, Ordering::Release);
        let w = words(&self.map, &self.l);
        // SYNC POINT A (release) and C (store before reading c_sleep).
        let woke = publish_and_wake(w.tail, self.tail as u32, w.c_sleep, self.fences);
        if let Some(fd) = &self.peer_ready {
            notify_async(self.map.atomic_u32(self.l.ctrl + C_ASYNC), fd, self.fences);
        }
        // The next slot's first data lines, if the consumer released it
        // (as last seen), were last read a lap ago and nobody reads them
        // before they are published: ask for them writable now, so that
        // the next buffer's stores do not wait for the consumer's copies
        // to be invalidated. (Its header line is left alone: a waiting
        // consumer polls it.) Measured: 64 B one-way latency 570-592 ns ->
        // 414-430 ns messaging, 266-284 ns -> 211-222 ns raw, together
        // with the consumer's prefetch in `peek`.
        if self.tail - self.head < u64::from(self.l.capacity) {
            let next = self.next_buf();
            for line in 0..PREFETCH_LINES.min(self.l.buffer_size.div_ceil(64)) {
                crate::sys::prefetch_write(next.wrapping_add(line * 64));
            }
        }
        woke
    }

    /// Waits until a slot is free (or deadline / dead).
    pub fn wait_space(
        &mut self,
        deadline: Deadline,
        spin: Duration,
        dead: &AtomicBool,
    ) -> Result<WaitOutcome, Violation> {
        self.wait_for(Self::has_space, deadline, spin, dead)
    }

    /// Waits until the next `n` slots are free (or deadline / dead).
    pub fn wait_space_for(
        &mut self,
        n: u64,
        deadline: Deadline,
        spin: Duration,
        dead: &AtomicBool,
    ) -> Result<WaitOutcome, Violation> {
        self.wait_for(|p| p.has_space_for(n), deadline, spin, dead)
    }

    /// Publishes the next slot as discarded: no bytes, released by the
    /// consumer without being handed out. For a reserved slot given back
    /// while later reserved slots are still out.
    pub fn publish_discard(&mut self) {
        let _ = self.publish(0, FLAG_DISCARD);
    }

    /// Waits until the consumer released every published slot.
    pub fn wait_drained(
        &mut self,
        deadline: Deadline,
        spin: Duration,
        dead: &AtomicBool,
    ) -> Result<WaitOutcome, Violation> {
        self.wait_for(Self::drained, deadline, spin, dead)
    }

    fn wait_for(
        &mut self,
        mut cond: impl FnMut(&mut Self) -> Result<bool, Violation>,
        deadline: Deadline,
        spin: Duration,
        dead: &AtomicBool,
    ) -> Result<WaitOutcome, Violation> {
        let map = Arc::clone(&self.map);
        let w = words(&map, &self.l);
        let fences = self.fences;
        wait_checked(
            w.head,
            w.p_sleep,
            || cond(self),
            deadline,
            spin,
            dead,
            fences,
        )
    }
}

/// The consuming end of a ring.
///
/// Slots in `[head, next)` are *taken*: handed to the application, which
/// gives them back in any order; `head` moves over the prefix it gave back.
/// Slots in `[next, tail)` are published and not taken yet.
#[derive(Debug)]
pub struct Consumer {
    map: Arc<Mapping>,
    l: RingLayout,
    head: u64,
    next: u64,
    /// `next % capacity`.
    next_idx: u32,
    tail: u64,
    fences: Fences,
    /// The peer's readiness fd, when it passed one: written after a
    /// release while the peer's `p_async` flag is set.
    peer_ready: Option<Arc<OwnedFd>>,
}

impl Consumer {
    /// Attaches to a fresh ring (head written by this side only).
    ///
    /// # Panics
    /// If the layout does not fit the mapping (a local bug, never peer input).
    pub fn attach(map: Arc<Mapping>, l: RingLayout, fences: Fences) -> Self {
        assert!(
            l.fits(map.len()) && l.capacity > 0,
            "ring layout outside mapping"
        );
        let head = u64::from(map.atomic_u32(l.ctrl + HEAD).load(Ordering::Relaxed));
        Self {
            map,
            l,
            head,
            next: head,
            next_idx: (head % u64::from(l.capacity)) as u32,
            tail: head,
            fences,
            peer_ready: None,
        }
    }

    /// Sets the peer's readiness fd (see the module docs): from now on a
    /// release writes it while the peer's async producer is waiting.
    pub fn set_peer_ready(&mut self, fd: Option<Arc<OwnedFd>>) {
        self.peer_ready = fd;
    }

    /// Buffer size of each slot.
    pub fn buffer_size(&self) -> usize {
        self.l.buffer_size
    }

    /// Number of slots.
    pub fn capacity(&self) -> u32 {
        self.l.capacity
    }

    /// Slots taken and not yet released.
    #[inline]
    pub fn taken(&self) -> u64 {
        self.next - self.head
    }

    /// Position of the oldest slot taken and not yet released (`head`).
    #[inline]
    pub fn oldest_taken(&self) -> u64 {
        self.head
    }

    /// Re-reads the producer's `tail`, validating it.
    fn refresh_tail(&mut self) -> Result<(), Violation> {
        // SYNC POINT A (acquire): slot contents written by the producer.
        let t = words(&self.map, &self.l).tail.load(Ordering::Acquire);
        // The producer stores a slot's sequence word before `tail`, so a
        // consumer that found slots by their sequence words may be ahead of
        // `tail` for a moment: a `tail` up to one ring behind `next` is
        // "nothing more yet", not a violation.
        if (self.next as u32).wrapping_sub(t) <= self.l.capacity {
            self.tail = self.next;
            return Ok(());
        }
        // Otherwise `tail` is ahead of `next`, and the producer may not be
        // more than a ring ahead of what was released.
        let avail = t.wrapping_sub(self.head as u32);
        if avail > self.l.capacity {
            return Err(Violation::TailOutOfRange {
                avail,
                capacity: self.l.capacity,
            });
        }
        self.tail = self.head + u64::from(avail);
        Ok(())
    }

    /// True if a published slot is waiting to be taken, re-reading `tail`
    /// only when needed.
    #[inline]
    pub fn has_data(&mut self) -> Result<bool, Violation> {
        if self.tail > self.next {
            return Ok(true);
        }
        let expected = (self.next + 1) as u32;
        let seq_at = self.l.slot_at(self.next_idx) + SEQ;
        // SYNC POINT D (acquire): the slot was published.
        if self.map.atomic_u32(seq_at).load(Ordering::Acquire) == expected {
            self.tail = self.next + 1;
            return Ok(true);
        }
        self.refresh_tail()?;
        if self.tail == self.next {
            return Ok(false);
        }
        // `tail` (acquired) says the slot is published, so its sequence
        // word, stored before `tail`, must be there too.
        let found = self.map.atomic_u32(seq_at).load(Ordering::Acquire);
        if found != expected {
            return Err(Violation::SequenceMismatch { found, expected });
        }
        Ok(true)
    }

    /// The next published slot, its length and flags read once and
    /// validated. Only meaningful after `has_data` returned true; take it
    /// with [`Self::take`].
    #[inline]
    pub fn peek(&self) -> Result<Slot, Violation> {
        let off = self.l.slot_at(self.next_idx);
        let len = self.map.atomic_u32(off).load(Ordering::Relaxed);
        let flags = self.map.atomic_u32(off + 4).load(Ordering::Relaxed);
        if len as usize > self.l.buffer_size {
            return Err(Violation::LengthOutOfRange {
                len,
                size: self.l.buffer_size,
            });
        }
        if flags & !KNOWN_FLAGS != 0 {
            return Err(Violation::UnknownFlags { flags });
        }
        let discarded = flags & FLAG_DISCARD != 0;
        if discarded && len != 0 {
            return Err(Violation::DiscardWithLength { len });
        }
        // SAFETY: only an address is computed: the slot lies inside the
        // mapping (`fits` checked in `attach`, `next_idx < capacity`).
        let ptr = unsafe { self.map.base().add(off + SLOT_HEADER) };
        // The data was just written by the other core: ask for its first
        // lines now, so that their transfers overlap with each other and
        // with the bookkeeping before the reader touches them (a small
        // message with its header spans two lines).
        for line in 0..PREFETCH_LINES.min((len as usize).div_ceil(64)) {
            crate::sys::prefetch(ptr.wrapping_add(line * 64));
        }
        Ok(Slot {
            ptr,
            len: len as usize,
            erase: flags & FLAG_ERASE != 0,
            discarded,
        })
    }

    /// Takes the slot `peek` returned; returns its position (for
    /// [`Self::erase`]). It stays the consumer's until released.
    #[inline]
    pub fn take(&mut self) -> u64 {
        debug_assert!(self.next < self.tail, "take without has_data");
        let pos = self.next;
        self.next += 1;
        self.next_idx = self.l.advance(self.next_idx, 1);
        pos
    }

    /// Zeroes the first `len` bytes (at most the buffer size) of the taken
    /// slot at `pos`.
    pub fn erase(&self, pos: u64, len: usize) {
        debug_assert!(
            self.head <= pos && pos < self.next,
            "erase of a slot not taken"
        );
        let n = len.min(self.l.buffer_size);
        let off = self.l.slot_offset(pos) + SLOT_HEADER;
        // SAFETY: `n` bytes from the slot's data start lie inside the slot
        // (n <= buffer_size), which lies inside the mapping. A raw write
        // through the mapping's pointer: the peer may write the same bytes
        // concurrently (only a hostile one would), which changes their
        // values, never which memory is written.
        unsafe { std::ptr::write_bytes(self.map.base().add(off), 0, n) };
    }

    /// Gives the `n` oldest taken slots back to the producer (`head += n`).
    #[inline]
    pub fn release(&mut self, n: u64) {
        debug_assert!(n <= self.next - self.head, "release of slots not taken");
        let n = n.min(self.next - self.head);
        if n == 0 {
            return;
        }
        self.head += n;
        let w = words(&self.map, &self.l);
        // SYNC POINT B (release) and C (store before reading p_sleep).
        let _ = publish_and_wake(w.head, self.head as u32, w.p_sleep, self.fences);
        if let Some(fd) = &self.peer_ready {
            notify_async(self.map.atomic_u32(self.l.ctrl + P_ASYNC), fd, self.fences);
        }
    }

    /// Takes the next published slot and releases it at once, zeroing its
    /// bytes first if `erase` or if the producer asked for it: for a
    /// consumer that holds no other slot and is done with this one. Only
    /// meaningful after `has_data` returned true.
    pub fn consume_next(&mut self, erase: bool) -> Result<Slot, Violation> {
        debug_assert!(self.next == self.head, "consume_next with slots taken");
        let slot = self.peek()?;
        let pos = self.take();
        if erase || slot.erase {
            self.erase(pos, slot.len);
        }
        self.release(1);
        Ok(slot)
    }

    /// Waits until a slot is published (or deadline / dead).
    pub fn wait_data(
        &mut self,
        deadline: Deadline,
        spin: Duration,
        dead: &AtomicBool,
    ) -> Result<WaitOutcome, Violation> {
        self.wait_data_or(deadline, spin, dead, &AtomicBool::new(false))
    }

    /// [`Self::wait_data`] that also ends, with [`WaitOutcome::Ready`], once
    /// `stop` is set (a local flag: the caller checks what ended the wait).
    /// Whoever sets `stop` wakes the ring's local sleepers
    /// ([`wake_local`]) afterwards.
    pub fn wait_data_or(
        &mut self,
        deadline: Deadline,
        spin: Duration,
        dead: &AtomicBool,
        stop: &AtomicBool,
    ) -> Result<WaitOutcome, Violation> {
        let map = Arc::clone(&self.map);
        let w = words(&map, &self.l);
        let fences = self.fences;
        wait_checked(
            w.tail,
            w.c_sleep,
            || Ok(self.has_data()? || stop.load(Ordering::SeqCst)),
            deadline,
            spin,
            dead,
            fences,
        )
    }
}

/// Wakes local threads sleeping on either word of a ring (on disconnect).
pub fn wake_local(map: &Mapping, l: &RingLayout) {
    let w = words(map, l);
    futex::wake_all(w.head);
    futex::wake_all(w.tail);
}

/// Writes `data` into the next slot of a ring nobody else uses yet (the
/// staged buffers of a connection being set up). Returns false if full.
pub fn prefill(p: &mut Producer, data: &[u8], flags: u32) -> bool {
    if data.len() > p.buffer_size() || !matches!(p.has_space(), Ok(true)) {
        return false;
    }
    // SAFETY: next_buf points at buffer_size writable bytes inside the
    // mapping (the slot's bounds come from the local layout), and
    // data.len() <= buffer_size. A raw copy from private memory: a peer
    // writing the same slot meanwhile (only a hostile one would) changes
    // what it will read, never which memory is written.
    unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), p.next_buf(), data.len()) };
    let _ = p.publish(data.len(), flags);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::shm;
    use crate::timeout::Timeout;

    fn ring(cap: u32, size: usize) -> (Arc<Mapping>, RingLayout) {
        let l = RingLayout {
            ctrl: 0,
            slots: CTRL_SIZE,
            capacity: cap,
            buffer_size: size,
        };
        let len = CTRL_SIZE + RingLayout::slot_bytes(cap, size).unwrap();
        let (_fd, m) = shm::create("ring-test", len).unwrap();
        (Arc::new(m), l)
    }

    /// Copies a slot's bytes out (tests only).
    fn bytes(slot: &Slot) -> Vec<u8> {
        let mut v = vec![0u8; slot.len];
        // SAFETY: test: `peek` returned `len` readable bytes at `ptr`,
        // inside the mapping; nobody else writes them here.
        unsafe { std::ptr::copy_nonoverlapping(slot.ptr, v.as_mut_ptr(), slot.len) };
        v
    }

    #[test]
    fn publish_consume_in_order() {
        let (m, l) = ring(3, 100);
        let mut p = Producer::attach(m.clone(), l, Fences::Symmetric);
        let mut c = Consumer::attach(m.clone(), l, Fences::Symmetric);
        for round in 0..10u8 {
            for i in 0..3u8 {
                assert!(prefill(&mut p, &[round, i, 9], 0));
            }
            assert!(!p.has_space().unwrap());
            for i in 0..3u8 {
                assert!(c.has_data().unwrap());
                let slot = c.consume_next(false).unwrap();
                assert_eq!(bytes(&slot), [round, i, 9]);
            }
            assert!(!c.has_data().unwrap());
        }
    }

    #[test]
    fn hostile_indices_are_violations() {
        let (m, l) = ring(4, 64);
        let mut p = Producer::attach(m.clone(), l, Fences::Symmetric);
        let mut c = Consumer::attach(m.clone(), l, Fences::Symmetric);
        m.atomic_u32(TAIL).store(99, Ordering::Release);
        assert!(matches!(
            c.has_data(),
            Err(Violation::TailOutOfRange { .. })
        ));
        m.atomic_u32(TAIL).store(1, Ordering::Release);
        // Published by `tail` but not by the slot's sequence word.
        let mut c = Consumer::attach(m.clone(), l, Fences::Symmetric);
        assert!(matches!(
            c.has_data(),
            Err(Violation::SequenceMismatch { .. })
        ));
        m.atomic_u32(CTRL_SIZE + SEQ).store(1, Ordering::Release);
        m.atomic_u32(CTRL_SIZE).store(65, Ordering::Release);
        let mut c = Consumer::attach(m.clone(), l, Fences::Symmetric);
        assert!(c.has_data().unwrap());
        assert!(matches!(c.peek(), Err(Violation::LengthOutOfRange { .. })));
        // Unknown flag bits, and a discarded slot that claims bytes.
        m.atomic_u32(CTRL_SIZE).store(1, Ordering::Release);
        m.atomic_u32(CTRL_SIZE + 4).store(8, Ordering::Release);
        assert_eq!(c.peek(), Err(Violation::UnknownFlags { flags: 8 }));
        m.atomic_u32(CTRL_SIZE + 4)
            .store(FLAG_DISCARD, Ordering::Release);
        assert_eq!(c.peek(), Err(Violation::DiscardWithLength { len: 1 }));
        m.atomic_u32(CTRL_SIZE).store(0, Ordering::Release);
        assert!(c.peek().unwrap().discarded);
        // Head ahead of tail.
        for _ in 0..4 {
            assert!(prefill(&mut p, &[1], 0));
        }
        m.atomic_u32(HEAD).store(1000, Ordering::Release);
        assert!(matches!(
            p.has_space(),
            Err(Violation::HeadOutOfRange { .. })
        ));
    }

    /// Reserved slots published in order, one of them discarded; taken
    /// slots released in another order; `head` only moves over the prefix
    /// given back.
    #[test]
    fn reserve_several_discard_one_release_out_of_order() {
        let (m, l) = ring(4, 64);
        let mut p = Producer::attach(m.clone(), l, Fences::Symmetric);
        let mut c = Consumer::attach(m.clone(), l, Fences::Symmetric);
        assert!(p.has_space_for(4).unwrap());
        assert!(!p.has_space_for(5).unwrap());
        for i in 0..3u64 {
            // SAFETY: test: slot tail + i is reserved (has_space_for(4)),
            // 64 bytes long, and nobody else writes it.
            unsafe { p.buf_at(i).write(10 + i as u8) };
        }
        p.publish(1, 0);
        p.publish_discard();
        p.publish(1, FLAG_ERASE);
        let mut taken = Vec::new();
        while c.has_data().unwrap() {
            let slot = c.peek().unwrap();
            taken.push((c.take(), slot));
        }
        assert_eq!(taken.len(), 3);
        assert_eq!(bytes(&taken[0].1), [10]);
        assert!(taken[1].1.discarded && taken[1].1.len == 0);
        assert_eq!(bytes(&taken[2].1), [12]);
        assert!(taken[2].1.erase);
        assert_eq!(c.taken(), 3);
        // The third is done first: nothing released yet.
        c.erase(taken[2].0, 1);
        assert_eq!(p.outstanding_now().unwrap(), 3);
        // Then the first and the discarded one: all three go.
        c.release(3);
        assert_eq!(p.outstanding_now().unwrap(), 0);
        // SAFETY: test: slot 2 lies inside the mapping; nobody writes it now.
        let erased = unsafe { m.base().add(CTRL_SIZE + 2 * 128 + SLOT_HEADER).read() };
        assert_eq!(erased, 0);
        assert!(!c.has_data().unwrap());
    }

    #[test]
    fn wait_times_out_and_wakes() {
        let (m, l) = ring(2, 64);
        let mut c = Consumer::attach(m.clone(), l, Fences::Symmetric);
        let dead = AtomicBool::new(false);
        let d = Timeout::after(Duration::from_millis(20)).deadline();
        assert_eq!(
            c.wait_data(d, Duration::ZERO, &dead).unwrap(),
            WaitOutcome::TimedOut
        );
        let m2 = m.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            let mut p = Producer::attach(m2, l, Fences::Symmetric);
            assert!(prefill(&mut p, b"x", 0));
        });
        let d = Timeout::after(Duration::from_secs(30)).deadline();
        assert_eq!(
            c.wait_data(d, Duration::ZERO, &dead).unwrap(),
            WaitOutcome::Ready
        );
        t.join().unwrap();
        dead.store(true, Ordering::Release);
        c.consume_next(false).unwrap();
        assert_eq!(
            c.wait_data(Deadline::NEVER, Duration::ZERO, &dead).unwrap(),
            WaitOutcome::Dead
        );
    }

    #[test]
    fn counters_wrap() {
        let (m, l) = ring(3, 8);
        m.atomic_u32(TAIL).store(u32::MAX - 1, Ordering::Relaxed);
        m.atomic_u32(HEAD).store(u32::MAX - 1, Ordering::Relaxed);
        let mut p = Producer::attach(m.clone(), l, Fences::Symmetric);
        let mut c = Consumer::attach(m.clone(), l, Fences::Symmetric);
        for i in 0..20u8 {
            assert!(prefill(&mut p, &[i], 0));
            assert!(c.has_data().unwrap());
            let slot = c.peek().unwrap();
            assert_eq!(bytes(&slot), [i]);
            let pos = c.take();
            c.erase(pos, slot.len);
            assert_eq!(bytes(&slot), [0]);
            c.release(1);
        }
    }
}
