//! [`Timeout`]: how long a call may wait. Every call that waits takes
//! `impl Into<Timeout>`, so a [`Duration`] works as it is:
//! `ch.receive(Duration::from_millis(100))`, `ch.receive(Timeout::NEVER)`,
//! `ch.receive(Timeout::ZERO)`.

use std::time::{Duration, Instant};

/// How long an operation may wait.
///
/// [`Timeout::ZERO`] polls (never blocks), [`Timeout::NEVER`] (also spelled
/// [`Timeout::INFINITE`]) waits until the condition holds or the object
/// closes, and a [`Duration`] converts into a finite timeout.
///
/// ```
/// use std::time::Duration;
/// use lwmq::Timeout;
///
/// let t: Timeout = Duration::from_secs(1).into();
/// assert_eq!(t.duration(), Some(Duration::from_secs(1)));
/// assert!(Timeout::ZERO.is_zero());
/// assert_eq!(Timeout::NEVER.duration(), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timeout(Option<Duration>);

impl Timeout {
    /// Do not wait.
    pub const ZERO: Timeout = Timeout(Some(Duration::ZERO));
    /// Wait without limit.
    pub const NEVER: Timeout = Timeout(None);
    /// Wait without limit (LwMQ's word; the same as [`Timeout::NEVER`]).
    pub const INFINITE: Timeout = Timeout::NEVER;

    /// A finite timeout (the same as `Timeout::from(d)`).
    pub const fn after(d: Duration) -> Self {
        Timeout(Some(d))
    }

    /// The duration, `None` for [`Timeout::NEVER`].
    pub const fn duration(self) -> Option<Duration> {
        self.0
    }

    /// True for a zero timeout (poll).
    pub fn is_zero(self) -> bool {
        self.0 == Some(Duration::ZERO)
    }

    /// The instant at which the wait ends, `None` inside for infinite.
    #[doc(hidden)]
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

impl From<Option<Duration>> for Timeout {
    /// `None` waits without limit.
    fn from(d: Option<Duration>) -> Self {
        Timeout(d)
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

    /// The time left as a [`Timeout`] ([`Timeout::NEVER`] for never).
    pub fn timeout(self) -> Timeout {
        Timeout(self.remaining())
    }
}
