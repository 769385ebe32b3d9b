//! Timeouts as LwMQ expresses them: zero polls, `INFINITE` waits forever.

use std::time::{Duration, Instant};

/// How long an operation may wait.
///
/// `Timeout::ZERO` polls (never blocks), [`Timeout::INFINITE`] waits until
/// the condition holds or the object closes. From C, milliseconds with
/// `INFINITE` = `0xFFFF_FFFF` map through [`Timeout::from_millis`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timeout(Option<Duration>);

impl Timeout {
    /// Do not wait.
    pub const ZERO: Timeout = Timeout(Some(Duration::ZERO));
    /// Wait without limit.
    pub const INFINITE: Timeout = Timeout(None);
    /// The C API's `INFINITE`.
    pub const INFINITE_MS: u32 = u32::MAX;

    /// A finite timeout.
    pub const fn after(d: Duration) -> Self {
        Timeout(Some(d))
    }

    /// Milliseconds, with `u32::MAX` meaning infinite (as in the C API).
    pub const fn from_millis(ms: u32) -> Self {
        if ms == Self::INFINITE_MS {
            Self::INFINITE
        } else {
            Timeout(Some(Duration::from_millis(ms as u64)))
        }
    }

    /// The duration, `None` for infinite.
    pub const fn duration(self) -> Option<Duration> {
        self.0
    }

    /// True for a zero timeout (poll).
    pub fn is_zero(self) -> bool {
        self.0 == Some(Duration::ZERO)
    }

    /// The instant at which the wait ends, `None` for infinite.
    pub fn deadline(self) -> Deadline {
        Deadline(
            self.0
                .map(|d| Instant::now().checked_add(d).unwrap_or_else(far_future)),
        )
    }
}

impl From<Duration> for Timeout {
    fn from(d: Duration) -> Self {
        Timeout(Some(d))
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86400 * 365 * 100)
}

/// An absolute end for a wait (`None` inside = never).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline(Option<Instant>);

impl Deadline {
    /// A deadline that never passes.
    pub const NEVER: Deadline = Deadline(None);

    /// Time left, `None` for never; zero once passed.
    pub fn remaining(self) -> Option<Duration> {
        self.0.map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// True once the deadline has passed.
    pub fn passed(self) -> bool {
        self.0.is_some_and(|d| Instant::now() >= d)
    }

    /// Remaining time capped at `cap` (for sliced waits).
    pub fn slice(self, cap: Duration) -> Duration {
        self.remaining().map_or(cap, |r| r.min(cap))
    }
}
