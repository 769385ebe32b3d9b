//! Frame timestamps.
//!
//! The C API and the wire format carry Windows NT time: a `u64` count of
//! 100 ns ticks since 1601-01-01 00:00:00 UTC. [`NtTime`] is that value with
//! exact conversions to and from [`SystemTime`]; [`Timestamp`] is what the
//! caller asks for when stamping a frame.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A point in time as Windows NT time: 100 ns ticks since 1601-01-01 UTC.
///
/// Every `u64` is a valid `NtTime` (the range ends in the year 60056).
/// Conversions from [`SystemTime`] truncate to the tick (100 ns) that contains
/// the instant; conversions back are exact, so
/// `NtTime::from_system_time(t.to_system_time()?) == Some(t)` for every `t`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NtTime(u64);

impl NtTime {
    /// Ticks between 1601-01-01 and the Unix epoch (1970-01-01 UTC).
    pub const UNIX_EPOCH_TICKS: u64 = 116_444_736_000_000_000;
    /// Ticks per second (one tick is 100 ns).
    pub const TICKS_PER_SECOND: u64 = 10_000_000;
    /// Nanoseconds per tick.
    pub const NANOS_PER_TICK: u64 = 100;
    /// The Unix epoch, 1970-01-01 00:00:00 UTC.
    pub const UNIX_EPOCH: NtTime = NtTime(Self::UNIX_EPOCH_TICKS);

    /// Wraps a raw tick count.
    pub const fn from_ticks(ticks: u64) -> Self {
        NtTime(ticks)
    }

    /// The raw tick count (the value the C API and the wire format carry).
    pub const fn ticks(self) -> u64 {
        self.0
    }

    /// The current wall-clock time (`CLOCK_REALTIME`, nanosecond resolution on
    /// Linux, truncated to 100 ns).
    ///
    /// A clock outside the representable range (before 1601 or after 60056)
    /// saturates to the nearest end rather than failing.
    pub fn now() -> Self {
        let now = SystemTime::now();
        match Self::from_system_time(now) {
            Some(t) => t,
            None if now < UNIX_EPOCH => NtTime(0),
            None => NtTime(u64::MAX),
        }
    }

    /// Converts a [`SystemTime`], truncating toward the past to a multiple of
    /// 100 ns. Returns `None` when `time` is before 1601-01-01 or after the
    /// last representable tick.
    pub fn from_system_time(time: SystemTime) -> Option<Self> {
        match time.duration_since(UNIX_EPOCH) {
            Ok(after) => {
                let ticks =
                    u64::try_from(after.as_nanos() / u128::from(Self::NANOS_PER_TICK)).ok()?;
                Self::UNIX_EPOCH_TICKS.checked_add(ticks).map(NtTime)
            }
            Err(before) => {
                // Round the distance up so the result is the tick containing
                // `time` (truncation toward the past, like the positive case).
                let nanos = before.duration().as_nanos();
                let ticks = nanos.div_ceil(u128::from(Self::NANOS_PER_TICK));
                let ticks = u64::try_from(ticks).ok()?;
                Self::UNIX_EPOCH_TICKS.checked_sub(ticks).map(NtTime)
            }
        }
    }

    /// Converts to a [`SystemTime`] exactly. Returns `None` only if the
    /// platform's `SystemTime` cannot represent the instant (not the case on
    /// Linux x86_64, whose range is ±292 billion years).
    pub fn to_system_time(self) -> Option<SystemTime> {
        if self.0 >= Self::UNIX_EPOCH_TICKS {
            UNIX_EPOCH.checked_add(ticks_to_duration(self.0 - Self::UNIX_EPOCH_TICKS))
        } else {
            UNIX_EPOCH.checked_sub(ticks_to_duration(Self::UNIX_EPOCH_TICKS - self.0))
        }
    }

    /// The time elapsed from `earlier` to `self`, or `None` if `earlier` is
    /// later than `self` (useful for one-way latency between two stamps).
    pub fn checked_duration_since(self, earlier: NtTime) -> Option<Duration> {
        self.0.checked_sub(earlier.0).map(ticks_to_duration)
    }
}

fn ticks_to_duration(ticks: u64) -> Duration {
    let secs = ticks / NtTime::TICKS_PER_SECOND;
    // The remainder is < 10^7 ticks, i.e. < 10^9 ns: it fits in u32.
    let sub_ticks = (ticks % NtTime::TICKS_PER_SECOND) as u32;
    Duration::new(secs, sub_ticks * NtTime::NANOS_PER_TICK as u32)
}

/// The timestamp a frame carries, as asked for when the frame is made
/// ([`Frame::with_timestamp`](super::Frame::with_timestamp)).
///
/// `Now` and `PreciseNow` are resolved to the current time *when the frame
/// is stamped* (not when it is sent). On Linux both read `CLOCK_REALTIME`
/// through the vDSO, which has nanosecond resolution, so both are
/// sub-microsecond precise (stored truncated to 100 ns); the two are kept
/// apart because LwMQ's C API distinguishes them
/// (`LMQ_TIMESTAMP_USE_SYSTEMTIME` / `LMQ_TIMESTAMP_USE_SYSTEMTIME_PRECISE`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Timestamp {
    /// No timestamp (`LMQ_TIMESTAMP_NONE`).
    #[default]
    None,
    /// The current system time, taken when the frame is stamped.
    Now,
    /// The current system time with sub-microsecond precision, taken when
    /// the frame is stamped.
    PreciseNow,
    /// An explicit value.
    At(NtTime),
}

impl Timestamp {
    /// The value stored in the frame: the clock is read for `Now` and
    /// `PreciseNow`.
    #[must_use]
    pub fn resolve(self) -> Option<NtTime> {
        match self {
            Timestamp::None => None,
            Timestamp::Now | Timestamp::PreciseNow => Some(NtTime::now()),
            Timestamp::At(t) => Some(t),
        }
    }
}

impl From<NtTime> for Timestamp {
    fn from(t: NtTime) -> Self {
        Timestamp::At(t)
    }
}

impl From<Option<NtTime>> for Timestamp {
    fn from(t: Option<NtTime>) -> Self {
        t.map_or(Timestamp::None, Timestamp::At)
    }
}
