//! `lwmq limits`: measures this machine's physical limits (copy bandwidth,
//! cache-line latency between processes). The measuring is in
//! [`crate::measure`]; this module only runs and prints it.

use std::os::fd::AsFd;

use crate::failure::{emit, Failure};
use crate::measure::{measure, serve_pong, LimitsConfig};

/// Arguments of `lwmq limits`.
#[derive(Debug, clap::Args)]
pub struct LimitsArgs {
    /// Print one JSON object (as the last stdout line) instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Measure briefly: rougher figures in well under a second.
    #[arg(long)]
    pub quick: bool,
    /// Internal: be the echo side of the cache-line measurement for the
    /// parent process PARENT_PID, with the shared memfd as standard input.
    #[arg(long, hide = true, value_name = "PARENT_PID", conflicts_with_all = ["json", "quick"])]
    pub pong: Option<u32>,
}

/// Runs `lwmq limits`.
pub fn run(args: &LimitsArgs) -> Result<(), Failure> {
    if let Some(parent) = args.pong {
        let stdin = std::io::stdin();
        return serve_pong(stdin.as_fd(), parent)
            .map_err(|e| Failure::runtime(format!("limits --pong: {e}")));
    }
    let config = if args.quick {
        LimitsConfig::quick()
    } else {
        LimitsConfig::full()
    };
    let limits = measure(&config).map_err(|e| Failure::runtime(format!("limits: {e}")))?;
    if args.json {
        emit(&format!("{}\n", limits.to_json()))
    } else {
        emit(&limits.render())
    }
}
