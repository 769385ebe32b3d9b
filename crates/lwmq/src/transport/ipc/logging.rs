//! Log hygiene for the `ipc://` transport: a rate limiter keyed by *class*
//! of event, and the escaping of text a peer supplies.
//!
//! Peers decide how often the transport has something to say (a refused
//! user may reconnect thousands of times a second), so every warning goes
//! through [`LogLimiter`]. Its key is the class of the event (a refusal
//! reason and who refused, "handshake timed out", "accept failed"...),
//! never the text: details that change on every repeat (a pid, a count)
//! would make every line new. Each class logs at most one line per window;
//! the next line of the class says how many were held back. The table has
//! a fixed number of entries, so a peer that makes up classes (refusal
//! reason codes are 16 bits of peer input) cannot grow it: when it is full
//! of classes that logged within the window, a new class is held back too
//! and counted. Whatever it holds back is still recorded as the
//! transport's `last_error`.
//!
//! Text from the peer (a REFUSE's detail) is untrusted: written to a log
//! verbatim, a newline or an escape sequence could forge lines or drive the
//! terminal. [`escape_peer_text`] makes it one printable line of bounded
//! length before it is logged or stored.

use std::time::{Duration, Instant};

/// Window within which a class logs at most one line.
pub(crate) const LOG_WINDOW: Duration = Duration::from_secs(10);
/// Classes remembered at once.
pub(crate) const LOG_CLASSES: usize = 16;

/// What kind of event a log line reports: the rate limiter's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogClass {
    /// `accept` on the listening socket failed.
    Accept,
    /// `connect` failed for a reason other than "nobody listens".
    Connect,
    /// A handshake ran past its deadline.
    HandshakeTimeout,
    /// A refusal, by reason code and by who refused.
    Refusal {
        /// [`RefusalReason::code`](crate::transport::RefusalReason::code).
        code: u16,
        /// True if the peer refused us.
        by_peer: bool,
    },
    /// The peer broke the shared-memory protocol.
    Violation,
}

/// The limiter's answer for one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Log it; `held_back` lines were not logged since this class last
    /// logged (plus any the table could not attribute to a class).
    Log {
        /// Lines held back meanwhile.
        held_back: u64,
    },
    /// Do not log it (counted).
    HoldBack,
}

#[derive(Debug)]
struct Entry<K> {
    key: K,
    logged_at: Instant,
    held_back: u64,
}

/// A per-class rate limiter with a fixed-size table (see the module doc).
#[derive(Debug)]
pub(crate) struct LogLimiter<K> {
    window: Duration,
    capacity: usize,
    entries: Vec<Entry<K>>,
    /// Held-back lines no longer attributed to a class: those of entries
    /// that were reused for another class, and those of new classes that
    /// found the table full. Reported with the next line logged.
    unattributed: u64,
}

impl<K: Copy + PartialEq> LogLimiter<K> {
    /// A limiter letting each of at most `capacity` classes log one line
    /// per `window`.
    pub(crate) fn new(window: Duration, capacity: usize) -> Self {
        Self {
            window,
            capacity: capacity.max(1),
            entries: Vec::with_capacity(capacity.max(1)),
            unattributed: 0,
        }
    }

    fn expired(&self, e: &Entry<K>, now: Instant) -> bool {
        now.saturating_duration_since(e.logged_at) >= self.window
    }

    /// Decides whether a line of class `key` is logged at `now`.
    pub(crate) fn check(&mut self, key: K, now: Instant) -> Verdict {
        if let Some(i) = self.entries.iter().position(|e| e.key == key) {
            if !self.expired(&self.entries[i], now) {
                self.entries[i].held_back += 1;
                return Verdict::HoldBack;
            }
            let e = &mut self.entries[i];
            e.logged_at = now;
            let held_back =
                std::mem::take(&mut e.held_back) + std::mem::take(&mut self.unattributed);
            return Verdict::Log { held_back };
        }
        let fresh = Entry {
            key,
            logged_at: now,
            held_back: 0,
        };
        if self.entries.len() < self.capacity {
            self.entries.push(fresh);
        } else {
            // Reuse the entry that logged longest ago, if its window is
            // over; otherwise every class in the table is live and this
            // line waits like theirs do.
            let oldest = self
                .entries
                .iter()
                .enumerate()
                .min_by_key(|(_, e)| e.logged_at)
                .map(|(i, _)| i)
                .unwrap_or(0);
            if !self.expired(&self.entries[oldest], now) {
                self.unattributed += 1;
                return Verdict::HoldBack;
            }
            let old = std::mem::replace(&mut self.entries[oldest], fresh);
            self.unattributed += old.held_back;
        }
        Verdict::Log {
            held_back: std::mem::take(&mut self.unattributed),
        }
    }
}

/// True for characters that must not reach a log or a terminal as they
/// are: control characters (C0, DEL, C1) and the invisible ones that
/// reorder or hide text (bidirectional overrides and isolates, zero-width
/// marks, line and paragraph separators, the byte-order mark).
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}' | '\u{FEFF}')
}

/// Makes peer-supplied text safe to log and store: every character that
/// [needs escaping](needs_escape) becomes `\u{..}`, and the result is cut
/// to at most `max` bytes at a character boundary, ending in `[truncated]`
/// when cut.
///
/// Idempotent: escaped text has nothing left to escape and fits, so a text
/// that is stored, sent on and decoded again comes back unchanged (the
/// `handshake_decode` fuzz target checks this round trip). A backslash is
/// therefore kept as it is: a peer can write the six characters `\u{a}`,
/// which read like an escape but are harmless text.
pub fn escape_peer_text(text: &str, max: usize) -> String {
    const CUT: &str = " [truncated]";
    let budget = max.saturating_sub(CUT.len());
    let mut out = String::with_capacity(text.len().min(max));
    // Length of the longest run of whole pieces that leaves room for CUT.
    let mut fits = 0;
    for c in text.chars() {
        if needs_escape(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
        if out.len() <= budget {
            fits = out.len();
        }
        if out.len() > max {
            out.truncate(fits);
            if CUT.len() <= max {
                out.push_str(CUT);
            }
            return out;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::proto::MAX_REFUSAL_TEXT as MAX_PEER_TEXT;
    use super::*;

    fn at(base: Instant, secs: u64) -> Instant {
        base + Duration::from_secs(secs)
    }

    fn logged(v: Verdict) -> bool {
        matches!(v, Verdict::Log { .. })
    }

    /// Two classes taking turns used to defeat a limiter that remembered
    /// only the last key: every line differed from the one before.
    #[test]
    fn alternating_classes_log_once_per_window_each() {
        let t0 = Instant::now();
        let mut l = LogLimiter::new(LOG_WINDOW, LOG_CLASSES);
        let mut lines = 0;
        let n: u32 = if cfg!(miri) { 1_000 } else { 10_000 };
        for i in 0..n {
            // All within the first second.
            if logged(l.check(i % 2, t0 + Duration::from_micros(u64::from(i)))) {
                lines += 1;
            }
        }
        assert_eq!(lines, 2);
        // After the window each logs again and reports what it held back.
        let each = u64::from(n / 2 - 1);
        assert_eq!(l.check(0, at(t0, 11)), Verdict::Log { held_back: each });
        assert_eq!(l.check(1, at(t0, 11)), Verdict::Log { held_back: each });
        assert_eq!(l.check(1, at(t0, 12)), Verdict::HoldBack);
    }

    /// A pid (or any per-attempt detail) in the key used to make every
    /// line new. Keys are classes now, but even a flood of distinct keys
    /// logs at most the table's size per window, and the table stays at
    /// its size.
    #[test]
    fn distinct_keys_per_attempt_cannot_flood_or_grow_the_table() {
        let t0 = Instant::now();
        let mut l = LogLimiter::new(LOG_WINDOW, LOG_CLASSES);
        let mut lines = 0;
        // Fewer under Miri, which is slow; the property is the same.
        let attempts: u32 = if cfg!(miri) { 2_000 } else { 100_000 };
        for pid in 0..attempts {
            if logged(l.check(pid, t0)) {
                lines += 1;
            }
            assert!(l.entries.len() <= LOG_CLASSES);
        }
        assert_eq!(lines, LOG_CLASSES);
        // A window later the held-back count is reported, once.
        match l.check(7_000_000, at(t0, 10)) {
            Verdict::Log { held_back } => {
                assert_eq!(held_back, u64::from(attempts) - LOG_CLASSES as u64)
            }
            v => panic!("{v:?}"),
        }
        assert_eq!(
            l.check(7_000_001, at(t0, 10)),
            Verdict::Log { held_back: 0 }
        );
    }

    #[test]
    fn a_quiet_class_logs_every_time() {
        let t0 = Instant::now();
        let mut l = LogLimiter::new(LOG_WINDOW, 2);
        for i in 0..5 {
            assert_eq!(l.check('a', at(t0, 10 * i)), Verdict::Log { held_back: 0 });
        }
    }

    #[test]
    fn peer_text_is_escaped_and_bounded() {
        let evil = "ok\n[WARN] lwmq forged line\r\u{1b}[31mred\u{7}\u{202E}\\u{a}\u{0}";
        let e = escape_peer_text(evil, MAX_PEER_TEXT);
        assert_eq!(
            e,
            "ok\\u{a}[WARN] lwmq forged line\\u{d}\\u{1b}[31mred\\u{7}\\u{202e}\\u{a}\\u{0}"
        );
        assert!(!e.chars().any(needs_escape));
        // Idempotent, cut or not.
        assert_eq!(escape_peer_text(&e, MAX_PEER_TEXT), e);
        let cut = escape_peer_text(&"\u{1b}".repeat(200), MAX_PEER_TEXT);
        assert_eq!(escape_peer_text(&cut, MAX_PEER_TEXT), cut);
        // Plain text (UTF-8 included) is unchanged.
        assert_eq!(
            escape_peer_text("größe 4096 ≠ 8192", 512),
            "größe 4096 ≠ 8192"
        );
        // Long text is cut at a character boundary and marked.
        let long = "é".repeat(1000);
        let cut = escape_peer_text(&long, 100);
        assert!(cut.len() <= 100, "{}", cut.len());
        assert!(cut.ends_with(" [truncated]"));
        // Escapes are never cut in half.
        let ctl = "\u{1}".repeat(100);
        let cut = escape_peer_text(&ctl, 50);
        assert!(cut.len() <= 50);
        assert_eq!(
            cut.trim_end_matches(" [truncated]").len() % "\\u{1}".len(),
            0
        );
        // Exactly at the limit: not cut.
        assert_eq!(escape_peer_text("abcd", 4), "abcd");
    }
}
