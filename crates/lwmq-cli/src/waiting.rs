//! Waiting for the peer, out loud: every command that connects calls
//! [`wait_for_peer`] after opening its channel and before it measures or
//! chats.
//!
//! What the user sees on stderr (through the logger, target
//! [`crate::logging::TARGET`], so `-q` hides these lines):
//!
//! * after [`NOTICE_DELAY`] without a peer, one line saying what it waits
//!   for: the address, the role, the retry interval and the timeout;
//! * each refusal as soon as the transport records it (its sticky
//!   `Refused` state: [`TransportView::wait_connected`] returns it at
//!   once), with the reason and which side refused; the same refusal
//!   repeated on every retry is printed once;
//! * when `--connect-timeout` runs out, the command fails with exit status
//!   1 and a message naming the last refusal, or the state it was in.
//!
//! Nothing here reads log lines: the state, the refusal and the peer come
//! from the transport's connection record.

use std::time::{Duration, Instant};

use lwmq::{ConnectError, ConnectionEvent, ConnectionState, Refusal, TransportView};

use crate::failure::Failure;
use crate::logging::TARGET;

/// How often the CLI's clients retry (set on every endpoint it builds, so
/// that the waiting line can say it).
pub const RETRY_INTERVAL: Duration = Duration::from_millis(100);

/// How long a command waits quietly before it says it is waiting.
pub const NOTICE_DELAY: Duration = Duration::from_secs(1);

/// The default `--connect-timeout` of the measuring commands, in seconds.
pub const DEFAULT_CONNECT_TIMEOUT_SECS: f64 = 30.0;

/// `--connect-timeout` as the measuring commands take it.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct ConnectArgs {
    /// Seconds to wait for a peer before giving up with exit status 1
    /// (fractions allowed; 0 = wait forever). A refusal is printed at once;
    /// the command keeps retrying until this runs out.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_CONNECT_TIMEOUT_SECS, value_parser = parse_seconds)]
    pub connect_timeout: f64,
}

impl ConnectArgs {
    /// The limit: `None` waits forever.
    pub fn limit(&self) -> Option<Duration> {
        limit(self.connect_timeout)
    }
}

/// Seconds to a limit: 0 is no limit.
pub fn limit(seconds: f64) -> Option<Duration> {
    (seconds > 0.0).then(|| Duration::from_secs_f64(seconds))
}

/// Parses a number of seconds: finite, at least 0, at most a year.
pub fn parse_seconds(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !v.is_finite() || !(0.0..=31_536_000.0).contains(&v) {
        return Err(format!(
            "{s} is out of range (rule: 0 ..= 31536000 seconds; 0 waits forever)"
        ));
    }
    Ok(v)
}

/// `by the peer` / `by this side`.
pub fn refused_by(r: &Refusal) -> &'static str {
    if r.by_peer {
        "refused by the peer"
    } else {
        "refused by this side"
    }
}

/// One line for a refusal: who refused, the rule, the detail.
pub fn refusal_text(descriptor: &str, r: &Refusal) -> String {
    format!(
        "{descriptor}: connection {}: {} ({})",
        refused_by(r),
        r.reason,
        r.detail
    )
}

fn role_text(state: &ConnectionState) -> &'static str {
    match state {
        ConnectionState::Listening => "server, listening for a client",
        _ => "client, connecting",
    }
}

fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 1.0 {
        format!("{} ms", d.as_millis())
    } else if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s:.1} s")
    }
}

/// Waits until `view` is connected, reporting as the module says; `limit`
/// `None` waits forever. `Ok` once connected; a [`Failure`] (exit 1) at the
/// limit or if the channel closes.
pub fn wait_for_peer(view: TransportView<'_>, limit: Option<Duration>) -> Result<(), Failure> {
    let descriptor = view.descriptor();
    let start = Instant::now();
    let deadline = limit.map(|l| start + l);
    let mut events = view.events();
    events.skip_history();
    let mut noticed = false;
    let mut last_refusal: Option<Refusal> = None;
    loop {
        let now = Instant::now();
        let left = deadline.map(|d| d.saturating_duration_since(now));
        if left.is_some_and(|l| l.is_zero()) {
            return Err(give_up(view, limit.unwrap_or_default(), last_refusal));
        }
        // Wake for the notice, else at the deadline (or every minute).
        let notice_at = (start + NOTICE_DELAY).saturating_duration_since(now);
        let mut slice = left.unwrap_or(Duration::from_secs(60));
        if !noticed {
            slice = slice.min(notice_at.max(Duration::from_millis(1)));
        }
        match view.wait_connected(slice) {
            Ok(()) => {
                if noticed || last_refusal.is_some() {
                    let peer = view
                        .peer()
                        .map_or_else(|| "a peer".to_owned(), |p| p.to_string());
                    log::warn!(target: TARGET, "{descriptor}: connected to {peer}");
                }
                return Ok(());
            }
            Err(ConnectError::Refused { refusal, .. }) => {
                if last_refusal.as_ref() != Some(&refusal) {
                    log::warn!(
                        target: TARGET,
                        "{}; retrying every {}{}",
                        refusal_text(descriptor, &refusal),
                        seconds(RETRY_INTERVAL),
                        limit.map_or_else(
                            || " (no --connect-timeout: waiting forever)".to_owned(),
                            |l| format!(" until --connect-timeout ({})", seconds(l))
                        )
                    );
                    last_refusal = Some(refusal);
                }
                noticed = true;
                // The state stays `Refused` until a connection: sleep
                // until the next event (a retry's refusal, a connection)
                // instead of spinning on it.
                let _: Option<ConnectionEvent> = events.next(slice);
            }
            Err(ConnectError::Timeout { state, .. }) => {
                if !noticed && start.elapsed() >= NOTICE_DELAY {
                    noticed = true;
                    let retry = match state {
                        ConnectionState::Listening => String::new(),
                        _ => format!(", retrying every {}", seconds(RETRY_INTERVAL)),
                    };
                    log::warn!(
                        target: TARGET,
                        "{descriptor}: waiting for a peer ({}{retry}; {})",
                        role_text(&state),
                        limit.map_or_else(
                            || "no --connect-timeout: waiting forever".to_owned(),
                            |l| format!("giving up after {} (--connect-timeout)", seconds(l))
                        )
                    );
                }
            }
            Err(e) => return Err(Failure::runtime(format!("{descriptor}: {e}"))),
        }
    }
}

/// The failure at the limit.
fn give_up(view: TransportView<'_>, limit: Duration, refusal: Option<Refusal>) -> Failure {
    let descriptor = view.descriptor();
    let refusal = view.refusal().or(refusal);
    match refusal {
        Some(r) => Failure::runtime(format!(
            "{}; gave up after --connect-timeout ({})",
            refusal_text(descriptor, &r),
            seconds(limit)
        )),
        None => {
            let what = match view.state() {
                ConnectionState::Listening => {
                    "no client connected to this server (is the other side running?)"
                }
                _ => "no server accepted the connection (is one running at this address?)",
            };
            Failure::runtime(format!(
                "{descriptor}: no peer within --connect-timeout ({}): {what}",
                seconds(limit)
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_checked() {
        assert_eq!(parse_seconds("0"), Ok(0.0));
        assert_eq!(parse_seconds("2.5"), Ok(2.5));
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("nan").is_err());
        assert!(parse_seconds("inf").is_err());
        assert!(parse_seconds("x").is_err());
        assert_eq!(limit(0.0), None);
        assert_eq!(limit(1.5), Some(Duration::from_millis(1500)));
    }
}
