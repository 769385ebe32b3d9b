//! Loom model of the sender's ownership protocol with the bias
//! (`channel/send.rs`: `try_own`, `revoke_bias`, `unbias_self`,
//! `grant_bias`, `post_biased`, `post_direct`, `pump_and_release`,
//! `release_if_clean`, `kick`, `drop_bias`).
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test --release -p lwmq --test loom_bias`
//!
//! The model is self-contained: it mirrors the protocol with the real
//! code's orderings, not the transports. The state word has the bits
//! `RUNNING`, `DIRTY` and `BIASED`; the sender is a loom `UnsafeCell`
//! (messages taken from the queues and messages sent), so loom reports any
//! access by two threads that do not own it in turn as a data race; the
//! queues are one counter of pushed messages (release on push, acquire in
//! the pump, as the real queues publish their slots). `bias_holder`, the
//! `bias` mutex and the slot's `busy` flag are as in the real code.
//! `send_now` sends only when nothing is queued (the real one also needs a
//! single connected transport with room); a mode makes the holder's biased
//! send fail, as when its ring is momentarily full, after which the pump
//! finds room. Sends never leave a buffer open, so nobody wakes the
//! service thread: the posting threads must pump everything themselves
//! (`two_revokers_and_the_holder` adds a service thread woken with nothing
//! to do, as a second revoker). Spins (the revoker's wait for `busy`)
//! yield to loom's scheduler.
//!
//! Each model is one holder (a mono queue posting twice: the first post
//! owns the sender the ordinary way and is granted the bias, the second
//! goes through it) against another queue's post (push, `kick`), which
//! revokes the bias to pump. At the end every post was sent exactly once,
//! nothing is left queued, and the state word is 0, or `RUNNING | BIASED`
//! with the slot still in place (the holder's posts went direct). Each
//! test also checks that its model reached the interleavings it is about
//! (a revoker waiting for `busy`, `unbias_self` refused, and so on).
//! Preemptions are bounded (7 with two threads, 3 with three) to keep the
//! whole file at well under a minute in release mode.
//!
//! The real revoker runs `barrier::heavy()` (`membarrier`: every running
//! thread of the process executes a full fence) between clearing
//! `bias_holder` and loading `busy`, while the holder runs only a compiler
//! fence between raising `busy` and re-loading `bias_holder`. The
//! membarrier puts a full fence into the holder at some point during the
//! revoker's barrier (or the holder is not running, and the context switch
//! is one), which is what a SeqCst fence at that point of the holder
//! states; the model puts a SeqCst fence on both sides (the same argument
//! as `loom_ring.rs`, which loom can check, since it models SeqCst fences
//! but not SeqCst accesses). `holder_and_revoker_race_without_the_barrier`
//! drops both fences, `holder_and_revoker_race_with_the_heavy_fence_only`
//! the holder's, and each checks that loom then finds the two threads in
//! the sender at once; `unbias_self_deadlocks_if_it_waits_for_the_lock`
//! checks that the model would see the deadlock `try_lock` avoids.
#![cfg(loom)]

use loom::cell::UnsafeCell;
use loom::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
use loom::sync::{Arc, Mutex, MutexGuard};
use loom::thread;

const RUNNING: usize = 1;
const DIRTY: usize = 2;
const BIASED: usize = 4;

/// A mono queue's claim on the bias.
struct BiasSlot {
    id: u64,
    busy: AtomicBool,
}

/// The `bias` mutex. Loom's own `Mutex::try_lock` can block the caller
/// when another thread takes the lock at the same step
/// (tokio-rs/loom#376), which shows a deadlock `try_lock` cannot have.
/// So the lock is a flag (compare-exchange acquire, store release: a
/// mutex's ordering), which `try_lock` takes or gives up on at once;
/// `lock` first takes a loom mutex, so that only one waiter at a time
/// spins on the flag (loom cannot tell several spinners from a livelock),
/// and that one waits only for a `try_lock` caller, which never waits.
struct BiasLock {
    waiters: Mutex<()>,
    locked: AtomicBool,
    slot: UnsafeCell<Option<Arc<BiasSlot>>>,
}

struct BiasGuard<'a> {
    lock: &'a BiasLock,
    /// Held by `lock` callers, until after the flag is let go.
    _waiting: Option<MutexGuard<'a, ()>>,
}

impl BiasLock {
    fn new() -> Self {
        BiasLock {
            waiters: Mutex::new(()),
            locked: AtomicBool::new(false),
            slot: UnsafeCell::new(None),
        }
    }

    fn take_flag(&self) -> bool {
        self.locked
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    fn lock(&self) -> BiasGuard<'_> {
        // Poisoned only when a failing model unwinds.
        let waiting = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
        while !self.take_flag() {
            thread::yield_now();
        }
        BiasGuard {
            lock: self,
            _waiting: Some(waiting),
        }
    }

    fn try_lock(&self) -> Option<BiasGuard<'_>> {
        // `then`, not `then_some`: a guard built and dropped on failure
        // would let go of the other thread's lock.
        self.take_flag().then(|| BiasGuard {
            lock: self,
            _waiting: None,
        })
    }
}

impl BiasGuard<'_> {
    fn get(&self) -> Option<u64> {
        // SAFETY: loom checks this access; the lock is held.
        self.lock
            .slot
            .with(|p| unsafe { (*p).as_ref().map(|s| s.id) })
    }

    fn set(&mut self, slot: Option<Arc<BiasSlot>>) -> Option<Arc<BiasSlot>> {
        // SAFETY: as in `get`.
        self.lock
            .slot
            .with_mut(|p| unsafe { std::mem::replace(&mut *p, slot) })
    }
}

impl Drop for BiasGuard<'_> {
    fn drop(&mut self) {
        self.lock.locked.store(false, Ordering::Release);
    }
}

/// The sender state: what the pump took from the queues, what was sent.
#[derive(Default)]
struct Sender {
    taken: usize,
    sent: usize,
}

#[derive(Clone, Copy)]
struct Mode {
    /// The revoker's half of the asymmetric barrier (a SeqCst fence).
    fenced: bool,
    /// The full fence the membarrier puts into the holder.
    holder_fenced: bool,
    /// The holder's sends through the bias fail (ring full).
    biased_send_fails: bool,
    /// `unbias_self` waits for the `bias` lock (the deadlock to avoid).
    unbias_waits: bool,
}

const SOUND: Mode = Mode {
    fenced: true,
    holder_fenced: true,
    biased_send_fails: false,
    unbias_waits: false,
};

/// Paths some execution of a model took, counted across executions (plain
/// std atomics, outside the model), so that a test can check that its
/// model reaches the interleavings it is about.
#[derive(Default)]
struct Reached {
    /// A post went through the bias.
    biased_post: StdAtomic,
    /// The holder saw the revocation after raising `busy`, and backed off.
    holder_backed_off: StdAtomic,
    /// A revoker found `busy` up and waited for it.
    revoker_waited: StdAtomic,
    /// `unbias_self` found the lock taken (a revoker at work).
    unbias_refused: StdAtomic,
    /// `unbias_self` turned the bias into plain ownership.
    unbiased: StdAtomic,
    /// A revoker found the slot gone (another revoker, or the holder
    /// itself, ended the bias first).
    revoke_lost: StdAtomic,
    /// At the end the bias still held the sender.
    ended_biased: StdAtomic,
}

type StdAtomic = std::sync::atomic::AtomicUsize;

fn hit(counter: &StdAtomic) {
    counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

fn reached(counter: &StdAtomic) -> bool {
    counter.load(std::sync::atomic::Ordering::Relaxed) > 0
}

/// Proof that the calling thread owns the sender (`Owned` in send.rs).
struct Owned(());

struct Shared {
    state: AtomicUsize,
    sender: UnsafeCell<Sender>,
    /// Messages pushed into the queues.
    pushed: AtomicUsize,
    bias_holder: AtomicU64,
    bias: BiasLock,
    mode: Mode,
    reached: std::sync::Arc<Reached>,
}

impl Shared {
    fn new(mode: Mode, reached: std::sync::Arc<Reached>) -> Self {
        Shared {
            state: AtomicUsize::new(0),
            sender: UnsafeCell::new(Sender::default()),
            pushed: AtomicUsize::new(0),
            bias_holder: AtomicU64::new(0),
            bias: BiasLock::new(),
            mode,
            reached,
        }
    }

    /// The caller owns the sender.
    fn owned(&self) -> Owned {
        Owned(())
    }

    /// A queue's push (the `enqueue` closure).
    fn enqueue(&self) {
        self.pushed.fetch_add(1, Ordering::Release);
    }

    /// `Sender::send_now`: sends only if nothing is queued.
    fn send_now(&self, _owned: &Owned, biased: bool) -> Result<(), ()> {
        self.sender.with_mut(|p| {
            // SAFETY: loom checks this access for races; `Owned` says the
            // protocol gave the sender to this thread.
            let s = unsafe { &mut *p };
            if (biased && self.mode.biased_send_fails)
                || self.pushed.load(Ordering::Acquire) != s.taken
            {
                return Err(());
            }
            s.sent += 1;
            Ok(())
        })
    }

    /// `Sender::pump`: takes and sends everything queued.
    fn pump(&self, _owned: &Owned) {
        self.sender.with_mut(|p| {
            // SAFETY: as in `send_now`.
            let s = unsafe { &mut *p };
            let pushed = self.pushed.load(Ordering::Acquire);
            s.sent += pushed - s.taken;
            s.taken = pushed;
        });
    }

    fn try_own(&self) -> bool {
        let prev = self.state.fetch_or(RUNNING | DIRTY, Ordering::AcqRel);
        prev & RUNNING == 0 || (prev & BIASED != 0 && self.revoke_bias())
    }

    fn revoke_bias(&self) -> bool {
        let mut holder = self.bias.lock();
        let Some(slot) = holder.set(None) else {
            hit(&self.reached.revoke_lost);
            return false;
        };
        self.bias_holder.store(0, Ordering::Relaxed);
        // barrier::heavy()
        if self.mode.fenced {
            fence(Ordering::SeqCst);
        }
        while slot.busy.load(Ordering::Acquire) {
            hit(&self.reached.revoker_waited);
            thread::yield_now();
        }
        self.state.fetch_and(!BIASED, Ordering::AcqRel);
        true
    }

    fn unbias_self(&self, slot: &BiasSlot) -> bool {
        let mut holder = if self.mode.unbias_waits {
            // Spins rather than blocking in the loom mutex of `lock`, so
            // that the failure is loom's verdict, not a poisoned mutex.
            loop {
                if let Some(g) = self.bias.try_lock() {
                    break g;
                }
                thread::yield_now();
            }
        } else {
            match self.bias.try_lock() {
                Some(g) => g,
                None => {
                    hit(&self.reached.unbias_refused);
                    return false;
                }
            }
        };
        if holder.get() != Some(slot.id) {
            return false;
        }
        holder.set(None);
        self.bias_holder.store(0, Ordering::Relaxed);
        self.state.fetch_and(!BIASED, Ordering::AcqRel);
        hit(&self.reached.unbiased);
        true
    }

    fn grant_bias(&self, slot: &Arc<BiasSlot>) -> bool {
        let mut holder = self.bias.lock();
        self.bias_holder.store(slot.id, Ordering::Relaxed);
        if self
            .state
            .compare_exchange(
                RUNNING,
                RUNNING | BIASED,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
        {
            holder.set(Some(Arc::clone(slot)));
            return true;
        }
        self.bias_holder.store(0, Ordering::Relaxed);
        false
    }

    /// `Ok` if sent; `Err(Some(owned))` if the caller now owns the sender.
    fn post_biased(&self, slot: &BiasSlot) -> Result<(), Option<Owned>> {
        if self.bias_holder.load(Ordering::Relaxed) != slot.id {
            return Err(None);
        }
        slot.busy.store(true, Ordering::Relaxed);
        // barrier::light(), with the full fence the revoker's membarrier
        // puts into this thread.
        if self.mode.holder_fenced {
            fence(Ordering::SeqCst);
        }
        if self.bias_holder.load(Ordering::Relaxed) != slot.id {
            hit(&self.reached.holder_backed_off);
            slot.busy.store(false, Ordering::Release);
            return Err(None);
        }
        let owned = self.owned();
        match self.send_now(&owned, true) {
            Ok(()) => {
                hit(&self.reached.biased_post);
                slot.busy.store(false, Ordering::Release);
                Ok(())
            }
            Err(()) => {
                let plain = self.unbias_self(slot);
                slot.busy.store(false, Ordering::Release);
                Err(plain.then_some(owned))
            }
        }
    }

    fn drop_bias(&self, slot: &BiasSlot) {
        if self.bias_holder.load(Ordering::Relaxed) != slot.id {
            return;
        }
        if self.unbias_self(slot) {
            self.pump_and_release(self.owned());
        }
    }

    fn pump_and_release(&self, owned: Owned) {
        loop {
            self.state.fetch_and(!DIRTY, Ordering::AcqRel);
            self.pump(&owned);
            if self
                .state
                .compare_exchange(RUNNING, 0, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return;
            }
        }
    }

    /// A mono queue's post (`post_direct` with its bias slot).
    fn post_mono(&self, slot: &Arc<BiasSlot>) {
        match self.post_biased(slot) {
            Ok(()) => return,
            Err(None) => {}
            Err(Some(owned)) => {
                self.enqueue();
                self.pump_and_release(owned);
                return;
            }
        }
        if self.state.load(Ordering::Relaxed) & RUNNING != 0
            || self.state.fetch_or(RUNNING, Ordering::AcqRel) & RUNNING != 0
        {
            self.enqueue();
            self.kick();
            return;
        }
        let owned = self.owned();
        match self.send_now(&owned, false) {
            Ok(()) if self.grant_bias(slot) => {}
            Ok(()) => self.release_if_clean(owned),
            Err(()) => {
                self.enqueue();
                self.pump_and_release(owned);
            }
        }
    }

    fn release_if_clean(&self, owned: Owned) {
        if self
            .state
            .compare_exchange(RUNNING, 0, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            self.pump_and_release(owned);
        }
    }

    /// A multi queue's post: push, then `kick`.
    fn post_multi(&self) {
        self.enqueue();
        self.kick();
    }

    fn kick(&self) {
        if self.try_own() {
            self.pump_and_release(self.owned());
        }
    }

    /// After every thread is done: every post was sent, and the sender is
    /// free or still biased (with nothing queued).
    fn check_end(&self, posts: usize) {
        let state = self.state.load(Ordering::Acquire);
        let biased = self.bias.lock().get().is_some();
        let pushed = self.pushed.load(Ordering::Acquire);
        self.sender.with(|p| {
            // SAFETY: every other thread has been joined.
            let s = unsafe { &*p };
            assert_eq!(s.taken, pushed, "a queued message was stranded");
            assert_eq!(s.sent, posts, "a message was lost or sent twice");
        });
        if biased {
            hit(&self.reached.ended_biased);
            assert_eq!(state, RUNNING | BIASED);
        } else {
            assert_eq!(state, 0);
        }
    }
}

/// The holder's queue posts twice (the first post owns the sender the
/// ordinary way and is granted the bias, the second goes through it;
/// then, with `drop_queue`, the queue goes away), while another thread's
/// multi queue posts once and revokes the bias to pump.
fn holder_vs_poster(
    mode: Mode,
    drop_queue: bool,
    service: bool,
    reached: &std::sync::Arc<Reached>,
) {
    let shared = Arc::new(Shared::new(mode, std::sync::Arc::clone(reached)));
    let slot = Arc::new(BiasSlot {
        id: 1,
        busy: AtomicBool::new(false),
    });
    let s = Arc::clone(&shared);
    let other = thread::spawn(move || s.post_multi());
    // The service thread, woken with nothing to do: `try_own`, pump,
    // release (the same steps as `kick`).
    let service = service.then(|| {
        let s = Arc::clone(&shared);
        thread::spawn(move || s.kick())
    });
    shared.post_mono(&slot);
    shared.post_mono(&slot);
    if drop_queue {
        shared.drop_bias(&slot);
    }
    other.join().unwrap();
    if let Some(service) = service {
        service.join().unwrap();
    }
    shared.check_end(3);
    if drop_queue {
        assert!(
            shared.bias.lock().get().is_none(),
            "bias outlived its queue"
        );
    }
}

/// Explores every interleaving of `holder_vs_poster` with up to `bound`
/// preemptions; returns the paths reached.
fn check(bound: usize, mode: Mode, drop_queue: bool, service: bool) -> std::sync::Arc<Reached> {
    let reached = std::sync::Arc::new(Reached::default());
    let r = std::sync::Arc::clone(&reached);
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(bound);
    b.check(move || holder_vs_poster(mode, drop_queue, service, &r));
    reached
}

/// Preemptions explored per execution.
const BOUND: usize = 7;

/// Mutual exclusion (loom's `UnsafeCell` checks) and nothing stranded,
/// through a grant, a post through the bias and a revocation.
#[test]
fn holder_and_revoker_never_share_the_sender() {
    let r = check(BOUND, SOUND, false, false);
    assert!(reached(&r.biased_post) && reached(&r.holder_backed_off));
    assert!(reached(&r.revoker_waited) && reached(&r.unbias_refused));
    assert!(reached(&r.unbiased) && reached(&r.ended_biased));
}

/// The holder's send through the bias fails: it unbiases itself with
/// `try_lock` while a revoker may hold the `bias` lock and spin on `busy`,
/// and no deadlock, race or stranded message follows; `drop_bias` then
/// leaves the sender free.
#[test]
fn failed_biased_send_unbiases_without_deadlock() {
    let mode = Mode {
        biased_send_fails: true,
        ..SOUND
    };
    let r = check(BOUND, mode, true, false);
    assert!(reached(&r.revoker_waited) && reached(&r.unbias_refused));
    assert!(reached(&r.unbiased));
}

/// The same without the asymmetric barrier: the holder's `busy` store and
/// the revoker's `bias_holder` store can each miss the other, and loom
/// finds both threads in the sender at once. Shows the model has teeth.
#[test]
#[should_panic(expected = "Concurrent write accesses to `UnsafeCell`")]
fn holder_and_revoker_race_without_the_barrier() {
    let mode = Mode {
        fenced: false,
        holder_fenced: false,
        ..SOUND
    };
    check(BOUND, mode, false, false);
}

/// A full fence in the revoker alone is not enough either: the holder's
/// `busy` store can still be late for it. (Hence `membarrier`, not a plain
/// fence, in `barrier::heavy`.)
#[test]
#[should_panic(expected = "Concurrent write accesses to `UnsafeCell`")]
fn holder_and_revoker_race_with_the_heavy_fence_only() {
    let mode = Mode {
        holder_fenced: false,
        ..SOUND
    };
    check(BOUND, mode, false, false);
}

/// `unbias_self` waiting for the lock instead of `try_lock`: a revoker
/// holding it spins on the holder's `busy` forever.
#[test]
#[should_panic(expected = "maximum number of branches")]
fn unbias_self_deadlocks_if_it_waits_for_the_lock() {
    let mode = Mode {
        biased_send_fails: true,
        unbias_waits: true,
        ..SOUND
    };
    check(BOUND, mode, true, false);
}

/// Two revokers at once (the other queue's post and the service thread)
/// against the holder's two posts: one takes the bias over, the other
/// finds the slot gone and leaves its `DIRTY` to the new owner. Three
/// threads, so fewer preemptions.
#[test]
fn two_revokers_and_the_holder() {
    let r = check(3, SOUND, false, true);
    assert!(reached(&r.revoke_lost) && reached(&r.revoker_waited));
}
