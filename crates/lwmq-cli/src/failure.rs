//! How a command fails: a message for stderr and the exit status.

use std::fmt;
use std::io::Write;
use std::process::ExitCode;

/// Exit status when something failed at run time.
pub const EXIT_RUNTIME: u8 = 1;
/// Exit status for bad usage or a bad descriptor (clap uses the same).
pub const EXIT_USAGE: u8 = 2;

/// A failed command: what went wrong and which exit status to use.
#[derive(Debug)]
pub struct Failure {
    /// Exit status, [`EXIT_RUNTIME`] or [`EXIT_USAGE`].
    pub code: u8,
    /// One line for stderr (without the `lwmq: ` prefix).
    pub message: String,
}

impl Failure {
    /// Bad usage or a bad descriptor: exit status 2.
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_USAGE,
            message: message.into(),
        }
    }

    /// A run-time failure: exit status 1.
    pub fn runtime(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_RUNTIME,
            message: message.into(),
        }
    }

    /// Writes the message to stderr and returns the exit status.
    pub fn report(&self) -> ExitCode {
        eprintln!("lwmq: {}", self.message);
        ExitCode::from(self.code)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Writes `text` to stdout in one go; a closed pipe is a run-time failure
/// rather than a panic.
pub fn emit(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Failure::runtime(format!("write to stdout failed: {e}")))
}

/// Renders text for a terminal: control characters (which an address or a
/// socket name may hold) are escaped, everything else is kept.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}
