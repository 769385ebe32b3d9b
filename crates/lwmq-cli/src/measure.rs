//! Measures the physical limits that this machine's messaging figures are
//! judged against: single-thread copy bandwidth, and the one-way latency of a
//! cache line bounced between two processes busy-waiting on shared memory.
//!
//! [`measure`] returns a [`Limits`] that any command (`lwmq limits`, and
//! later `lwmq demo`) can print with [`Limits::render`] or
//! [`Limits::to_json`].
//!
//! The cache-line measurement needs a second process. Forking a possibly
//! multithreaded program is unsafe, so instead the current executable is
//! re-run as `lwmq limits --pong PARENT_PID` (a hidden flag) with a memfd as its
//! standard input; std's spawn `dup2`s it onto fd 0, which clears
//! close-on-exec for the child only, and nothing leaks to other children.

use std::ffi::c_void;
use std::fmt;
use std::hint::black_box;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::process::{Child, Command, Stdio};
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rustix::fs::MemfdFlags;
use rustix::mm::{MapFlags, ProtFlags};
use serde_json::json;

/// Copy sizes measured, in bytes.
pub const COPY_SIZES: [usize; 3] = [64, 6_400, 640_000];

/// Size of the shared page used for the cache-line bounce.
const PAGE: usize = 4096;
/// Offset of the bounced word: the parent stores odd values, the child echoes
/// each one plus one.
const SEQ: usize = 0;
/// Offset of the child's ready flag (its own cache line pair, away from SEQ).
const READY: usize = 128;
/// Value the child stores at [`READY`] once it is spinning.
const READY_MAGIC: u64 = 0x6c77_6d71_7265_6479;
/// Value the parent stores at [`SEQ`] to make the child exit.
const STOP: u64 = u64::MAX;
/// The child gives up after this long without a ping.
const CHILD_IDLE_LIMIT: Duration = Duration::from_secs(10);
/// The parent gives up on one round trip after this long.
const ROUND_TRIP_LIMIT: Duration = Duration::from_secs(5);
/// How long the parent waits for the child to start.
const START_LIMIT: Duration = Duration::from_secs(10);

/// How long and how much to measure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitsConfig {
    /// Time spent copying, per size.
    pub copy_time: Duration,
    /// Round trips timed for the cache-line latency.
    pub round_trips: usize,
    /// Round trips run (and discarded) before timing.
    pub warmup: usize,
    /// Stop the cache-line measurement early after this long (a loaded
    /// machine may deschedule a spinner); `samples` tells how many were taken.
    pub time_cap: Duration,
}

impl LimitsConfig {
    /// The default: 200 ms per copy size, 200,000 round trips.
    pub fn full() -> Self {
        Self {
            copy_time: Duration::from_millis(200),
            round_trips: 200_000,
            warmup: 20_000,
            time_cap: Duration::from_secs(20),
        }
    }

    /// A fast, rougher run: 20 ms per copy size, 20,000 round trips.
    pub fn quick() -> Self {
        Self {
            copy_time: Duration::from_millis(20),
            round_trips: 20_000,
            warmup: 2_000,
            time_cap: Duration::from_secs(5),
        }
    }
}

/// Single-thread copy rate for one size.
#[derive(Debug, Clone, PartialEq)]
pub struct CopyRate {
    /// Bytes per copy.
    pub size: usize,
    /// Copies per second.
    pub copies_per_sec: f64,
    /// Bytes copied per second, in 10^9 bytes.
    pub gbytes_per_sec: f64,
}

impl CopyRate {
    /// Bits copied per second, in 10^9 bits.
    pub fn gbits_per_sec(&self) -> f64 {
        self.gbytes_per_sec * 8.0
    }
}

/// One-way cache-line latency between two processes, in nanoseconds: each
/// timed round trip, less the timer overhead, halved.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheLine {
    /// Round trips timed.
    pub samples: usize,
    /// Fastest.
    pub min_ns: f64,
    /// Median.
    pub p50_ns: f64,
    /// 99th percentile.
    pub p99_ns: f64,
    /// 99.9th percentile.
    pub p999_ns: f64,
    /// Slowest.
    pub max_ns: f64,
    /// Median cost of an empty `Instant::now()` pair, subtracted from each
    /// round trip before halving.
    pub timer_overhead_ns: f64,
}

/// This machine's limits.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// CPUs this process may run on.
    pub cpus: usize,
    /// Copy rates, one per [`COPY_SIZES`] entry.
    pub copy: Vec<CopyRate>,
    /// Cache-line latency; `None` with fewer than two CPUs, where two
    /// spinning processes cannot both run.
    pub cacheline: Option<CacheLine>,
}

/// A failed measurement step: what was being done and the OS error.
#[derive(Debug)]
pub struct MeasureError {
    /// The call or step that failed, e.g. `memfd_create`.
    pub what: String,
    /// The error.
    pub error: io::Error,
}

impl MeasureError {
    fn new(what: impl Into<String>, error: impl Into<io::Error>) -> Self {
        Self {
            what: what.into(),
            error: error.into(),
        }
    }
}

impl fmt::Display for MeasureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed: {}", self.what, self.error)
    }
}

impl std::error::Error for MeasureError {}

/// Measures everything.
pub fn measure(config: &LimitsConfig) -> Result<Limits, MeasureError> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let copy = COPY_SIZES
        .iter()
        .map(|&size| copy_rate(size, config.copy_time))
        .collect();
    let cacheline = if cpus >= 2 {
        Some(cacheline_latency(config)?)
    } else {
        None
    };
    Ok(Limits {
        cpus,
        copy,
        cacheline,
    })
}

/// Copies a `size`-byte buffer into another of the same size with
/// `copy_from_slice` for about `duration`. Both buffers are warm (already
/// touched), so even the 640,000-byte copy runs from whichever cache level
/// holds 1.28 MB, not from DRAM.
pub fn copy_rate(size: usize, duration: Duration) -> CopyRate {
    let src: Vec<u8> = (0..size).map(|i| i as u8).collect();
    let mut dst = vec![0u8; size];
    // Read the clock about once per MiB copied.
    let batch = ((1usize << 20) / size.max(1)).max(1);
    let copy_batch = |dst: &mut [u8]| {
        for _ in 0..batch {
            // black_box on both sides: the source is unknown to the
            // optimiser and the destination escapes, so no copy is elided.
            black_box(&mut *dst).copy_from_slice(black_box(&src[..]));
        }
    };
    copy_batch(&mut dst);
    let start = Instant::now();
    let mut copies = 0u64;
    let elapsed = loop {
        copy_batch(&mut dst);
        copies += batch as u64;
        let elapsed = start.elapsed();
        if elapsed >= duration {
            break elapsed.as_secs_f64();
        }
    };
    let copies_per_sec = copies as f64 / elapsed;
    CopyRate {
        size,
        copies_per_sec,
        gbytes_per_sec: copies_per_sec * size as f64 / 1e9,
    }
}

/// A shared, read-write mapping of a memfd, accessed only through atomics.
struct SharedPage {
    base: *mut c_void,
    len: usize,
}

impl SharedPage {
    fn map(fd: BorrowedFd<'_>, len: usize) -> Result<Self, MeasureError> {
        let size = rustix::fs::fstat(fd).map_err(|e| MeasureError::new("fstat", e))?;
        if usize::try_from(size.st_size).unwrap_or(0) < len {
            return Err(MeasureError::new(
                "shared page",
                io::Error::other(format!(
                    "descriptor holds {} bytes, need {len}",
                    size.st_size
                )),
            ));
        }
        // SAFETY: a null address hint lets the kernel pick a fresh range, so
        // the new mapping overlaps no memory that Rust code already uses; it
        // is unmapped only in Drop.
        let base = unsafe {
            rustix::mm::mmap(
                ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                fd,
                0,
            )
        }
        .map_err(|e| MeasureError::new("mmap", e))?;
        Ok(Self { base, len })
    }

    fn word(&self, offset: usize) -> &AtomicU64 {
        assert!(offset.is_multiple_of(8) && offset + 8 <= self.len);
        // SAFETY: `offset` is 8-aligned and in bounds (checked above) of a
        // page-aligned mapping that stays mapped while `&self` lives. The
        // memory is only ever accessed through atomics, here and in the pong
        // child, and the memfd is private to the two processes and never
        // shrunk, so the access cannot fault.
        unsafe { &*self.base.cast::<u8>().add(offset).cast::<AtomicU64>() }
    }
}

impl Drop for SharedPage {
    fn drop(&mut self) {
        // SAFETY: `base`/`len` are exactly the mapping made in `map`, and no
        // reference from `word` outlives `&self`, so nothing points into it.
        let _ = unsafe { rustix::mm::munmap(self.base, self.len) };
    }
}

/// The pong child; dropping it stops it, then kills and reaps it.
struct PongChild {
    child: Child,
}

impl PongChild {
    /// Returns an error if the child has already exited.
    fn check_alive(&mut self) -> Result<(), MeasureError> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(MeasureError::new(
                "pong child",
                io::Error::other(format!("exited early ({status})")),
            )),
            Err(e) => Err(MeasureError::new("waitpid (pong child)", e)),
        }
    }
}

impl Drop for PongChild {
    fn drop(&mut self) {
        // The parent has stored STOP by now (or is failing); give the child a
        // moment to leave by itself, then make sure.
        let deadline = Instant::now() + Duration::from_secs(1);
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Median time between two back-to-back `Instant::now()` calls.
fn timer_overhead_ns() -> f64 {
    let mut v: Vec<u64> = (0..10_001)
        .map(|_| {
            let t0 = Instant::now();
            let t1 = Instant::now();
            (t1 - t0).as_nanos() as u64
        })
        .collect();
    v.sort_unstable();
    v[v.len() / 2] as f64
}

/// Bounces one cache line between this process and a re-executed child,
/// timing each round trip with `Instant`. Both sides spin on plain atomic
/// loads (no `spin_loop` pause, which would add its own latency), only while
/// measuring.
pub fn cacheline_latency(config: &LimitsConfig) -> Result<CacheLine, MeasureError> {
    let overhead = timer_overhead_ns();
    let memfd = rustix::fs::memfd_create("lwmq-limits", MemfdFlags::CLOEXEC)
        .map_err(|e| MeasureError::new("memfd_create", e))?;
    rustix::fs::ftruncate(&memfd, PAGE as u64).map_err(|e| MeasureError::new("ftruncate", e))?;
    let page = SharedPage::map(memfd.as_fd(), PAGE)?;
    let exe = std::env::current_exe().map_err(|e| MeasureError::new("current_exe", e))?;
    let child = Command::new(&exe)
        .args(["limits", "--pong", &std::process::id().to_string()])
        .stdin(Stdio::from(memfd))
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| MeasureError::new(format!("spawn {}", exe.display()), e))?;
    let mut child = PongChild { child };
    let seq = page.word(SEQ);

    let started = Instant::now();
    while page.word(READY).load(Ordering::Acquire) != READY_MAGIC {
        child.check_alive()?;
        if started.elapsed() > START_LIMIT {
            seq.store(STOP, Ordering::Release);
            return Err(MeasureError::new(
                "pong child",
                io::Error::new(io::ErrorKind::TimedOut, "did not start within 10 s"),
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
    }

    let result = bounce(seq, config, &mut child);
    seq.store(STOP, Ordering::Release);
    drop(child);
    let mut samples = result?;

    samples.sort_unstable();
    let one_way = |rt: u64| (rt as f64 - overhead).max(0.0) / 2.0;
    let pct = |q: f64| {
        let rank = (q * samples.len() as f64).ceil() as usize;
        one_way(samples[rank.clamp(1, samples.len()) - 1])
    };
    Ok(CacheLine {
        samples: samples.len(),
        min_ns: one_way(samples[0]),
        p50_ns: pct(0.5),
        p99_ns: pct(0.99),
        p999_ns: pct(0.999),
        max_ns: one_way(samples[samples.len() - 1]),
        timer_overhead_ns: overhead,
    })
}

/// The parent's side: returns the round-trip times in nanoseconds (at least
/// one), after the warm-up.
fn bounce(
    seq: &AtomicU64,
    config: &LimitsConfig,
    child: &mut PongChild,
) -> Result<Vec<u64>, MeasureError> {
    let mut samples = Vec::with_capacity(config.round_trips);
    let started = Instant::now();
    let mut last = seq.load(Ordering::Acquire);
    let mut warmup = config.warmup;
    let wanted = config.round_trips.max(1);
    let mut i = 0usize;
    while samples.len() < wanted {
        let want = last + 2;
        let t0 = Instant::now();
        seq.store(last + 1, Ordering::Release);
        let mut spins = 0u32;
        while seq.load(Ordering::Acquire) != want {
            spins = spins.wrapping_add(1);
            if spins & 0xF_FFFF == 0 && t0.elapsed() > ROUND_TRIP_LIMIT {
                child.check_alive()?;
                return Err(MeasureError::new(
                    "pong child",
                    io::Error::new(io::ErrorKind::TimedOut, "no echo within 5 s"),
                ));
            }
        }
        let rt = t0.elapsed();
        last = want;
        if i >= warmup {
            samples.push(rt.as_nanos() as u64);
        }
        i += 1;
        // Outside the timed region: on a loaded machine, cut the warm-up
        // short, then the measurement.
        if i.is_multiple_of(64) && started.elapsed() > config.time_cap {
            if samples.is_empty() {
                warmup = warmup.min(i);
            } else {
                break;
            }
        }
    }
    Ok(samples)
}

/// The child's side (`lwmq limits --pong PARENT_PID`): maps the shared page
/// from `fd`, echoes every odd value plus one, and returns on [`STOP`]. It
/// dies with its parent (`PR_SET_PDEATHSIG`), returns if it finds itself
/// orphaned, and gives up after [`CHILD_IDLE_LIMIT`] without a ping.
pub fn serve_pong(fd: BorrowedFd<'_>, parent_pid: u32) -> Result<(), MeasureError> {
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
        .map_err(|e| MeasureError::new("prctl(PR_SET_PDEATHSIG)", e))?;
    // Checked after the prctl: a parent that died before it is seen here.
    let parent = rustix::process::getppid();
    if parent.and_then(|p| u32::try_from(p.as_raw_pid()).ok()) != Some(parent_pid) {
        return Err(MeasureError::new(
            "pong child",
            io::Error::other(format!("not a child of pid {parent_pid} (parent gone?)")),
        ));
    }
    let page = SharedPage::map(fd, PAGE)?;
    let seq = page.word(SEQ);
    page.word(READY).store(READY_MAGIC, Ordering::Release);
    let mut idle = 0u32;
    let mut seen = seq.load(Ordering::Acquire);
    let mut seen_at = Instant::now();
    loop {
        let v = seq.load(Ordering::Acquire);
        if v == STOP {
            return Ok(());
        }
        if v & 1 == 1 {
            seq.store(v + 1, Ordering::Release);
            idle = 0;
            continue;
        }
        idle = idle.wrapping_add(1);
        // Only after 65,536 spins without a ping: never during measurement.
        if idle & 0xFFFF == 0 {
            let now = Instant::now();
            if v != seen {
                (seen, seen_at) = (v, now);
            } else if now - seen_at > CHILD_IDLE_LIMIT {
                return Err(MeasureError::new(
                    "waiting for ping",
                    io::Error::new(io::ErrorKind::TimedOut, "none for 10 s, giving up"),
                ));
            }
            if rustix::process::getppid() != parent {
                return Ok(());
            }
        }
    }
}

/// `1234567` → `1,234,567`.
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl Limits {
    /// A human-readable table.
    pub fn render(&self) -> String {
        let mut out = format!(
            "copy: one thread, copy_from_slice between two warm buffers ({} CPUs)\n",
            self.cpus
        );
        out.push_str(&format!(
            "{:>11}  {:>15}  {:>8}  {:>8}\n",
            "SIZE", "COPIES/S", "GB/s", "Gbit/s"
        ));
        for c in &self.copy {
            out.push_str(&format!(
                "{:>11}  {:>15}  {:>8.2}  {:>8.1}\n",
                format!("{} B", grouped(c.size as u64)),
                grouped(c.copies_per_sec.round() as u64),
                c.gbytes_per_sec,
                c.gbits_per_sec(),
            ));
        }
        match &self.cacheline {
            Some(l) => {
                out.push_str(&format!(
                    "\ncache line, one way between two processes busy-waiting on shared memory\n\
                     ({} round trips halved; timer overhead {:.0} ns subtracted)\n",
                    grouped(l.samples as u64),
                    l.timer_overhead_ns
                ));
                out.push_str(&format!(
                    "{:>9}  {:>9}  {:>9}  {:>9}  {:>9}\n",
                    "MIN", "P50", "P99", "P99.9", "MAX"
                ));
                out.push_str(&format!(
                    "{:>6.1} ns  {:>6.1} ns  {:>6.1} ns  {:>6.1} ns  {:>6.0} ns\n",
                    l.min_ns, l.p50_ns, l.p99_ns, l.p999_ns, l.max_ns
                ));
            }
            None => out.push_str(
                "\ncache line: not measured (needs two CPUs for two spinning processes)\n",
            ),
        }
        out
    }

    /// One JSON object: `cpus`, `copy` (array of `{size, copies_per_sec,
    /// gbytes_per_sec, gbits_per_sec}`) and `cacheline` (`{p50_ns, p99_ns,
    /// p999_ns, min_ns, max_ns, samples, timer_overhead_ns}` or null).
    pub fn to_json(&self) -> serde_json::Value {
        let copy: Vec<_> = self
            .copy
            .iter()
            .map(|c| {
                json!({
                    "size": c.size,
                    "copies_per_sec": c.copies_per_sec,
                    "gbytes_per_sec": c.gbytes_per_sec,
                    "gbits_per_sec": c.gbits_per_sec(),
                })
            })
            .collect();
        let cacheline = self.cacheline.as_ref().map(|l| {
            json!({
                "p50_ns": l.p50_ns,
                "p99_ns": l.p99_ns,
                "p999_ns": l.p999_ns,
                "min_ns": l.min_ns,
                "max_ns": l.max_ns,
                "samples": l.samples,
                "timer_overhead_ns": l.timer_overhead_ns,
            })
        });
        json!({"cpus": self.cpus, "copy": copy, "cacheline": cacheline})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(640_000), "640,000");
        assert_eq!(grouped(1_234_567), "1,234,567");
    }

    #[test]
    fn copy_rate_is_positive() {
        let r = copy_rate(64, Duration::from_millis(5));
        assert!(r.copies_per_sec > 0.0 && r.gbytes_per_sec > 0.0);
    }
}
