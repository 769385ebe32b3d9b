//! The `lwmq` binary's logger: warnings on stderr by default, `-v`/`-q` to
//! change the level, `RUST_LOG` (env_logger's syntax, e.g.
//! `RUST_LOG=lwmq=debug`) to set it per module, winning over the flags.
//!
//! `env_logger` rather than a logger of our own: it is the usual one for a
//! command-line tool, and it brings the `RUST_LOG` filter syntax users
//! already know (per-module levels) for nothing; its default features
//! (colour, timestamps, regex filters) are left out.
//!
//! By default the library's transport log (`lwmq::transport`) shows errors
//! only: its warnings are the refusals and connection notes the commands
//! already print in their own words (see [`crate::waiting`]); `-v` shows
//! them all.
//!
//! Lines of the command itself (target `lwmq_cli`: waiting for a peer, a
//! refusal) read `lwmq: ...`, like its error lines; the library's read
//! `lwmq: LEVEL TARGET: ...`, so that a user can tell which is which.

use std::io::Write;

use log::LevelFilter;

/// `-v` / `-q`, global to every subcommand.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct Verbosity {
    /// More output on stderr: -v info, -vv debug, -vvv trace (the library's
    /// connection log included). RUST_LOG, when set, wins.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Less output on stderr: -q errors only (no waiting or refusal lines;
    /// the final error is still printed), -qq nothing from the logger.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "verbose")]
    pub quiet: u8,
}

impl Verbosity {
    /// The level the flags select (warnings by default).
    pub fn level(self) -> LevelFilter {
        match (self.verbose, self.quiet) {
            (0, 0) => LevelFilter::Warn,
            (0, 1) => LevelFilter::Error,
            (0, _) => LevelFilter::Off,
            (1, _) => LevelFilter::Info,
            (2, _) => LevelFilter::Debug,
            _ => LevelFilter::Trace,
        }
    }
}

/// The library's transport log: quieter by default (see [`init`]).
pub const TRANSPORT_LOG: &str = "lwmq::transport";

/// The target of the command's own report lines.
pub const TARGET: &str = "lwmq_cli";

/// Installs the logger (once, at start). `RUST_LOG`, when set and not
/// empty, replaces the level the flags select.
pub fn init(v: Verbosity) {
    let mut b = env_logger::Builder::new();
    b.filter_level(v.level());
    if v.level() == LevelFilter::Warn {
        // The commands report waiting and refusals themselves (see
        // `waiting`); the transport's own warning about the same refusal
        // would say it twice. `-v` or RUST_LOG shows it.
        b.filter_module(TRANSPORT_LOG, LevelFilter::Error);
    }
    if let Ok(spec) = std::env::var("RUST_LOG") {
        if !spec.trim().is_empty() {
            b.parse_filters(&spec);
        }
    }
    b.format(|f, record| {
        if record.target().starts_with(TARGET) {
            writeln!(f, "lwmq: {}", record.args())
        } else {
            writeln!(
                f,
                "lwmq: {} {}: {}",
                record.level(),
                record.target(),
                record.args()
            )
        }
    });
    b.target(env_logger::Target::Stderr);
    // A second init (a test calling it twice) keeps the first logger.
    let _ = b.try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_map_to_levels() {
        let v = |verbose, quiet| Verbosity { verbose, quiet }.level();
        assert_eq!(v(0, 0), LevelFilter::Warn);
        assert_eq!(v(1, 0), LevelFilter::Info);
        assert_eq!(v(2, 0), LevelFilter::Debug);
        assert_eq!(v(5, 0), LevelFilter::Trace);
        assert_eq!(v(0, 1), LevelFilter::Error);
        assert_eq!(v(0, 2), LevelFilter::Off);
    }
}
