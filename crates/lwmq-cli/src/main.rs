//! `lwmq`: the command-line tool of LwMQ.
//!
//! Each subcommand lives in its own module; this file only parses the
//! command line and dispatches. Exit status: 0 on success, 2 on bad usage or
//! a bad descriptor (clap's own usage errors also exit 2), 1 when something
//! failed at run time (a system call, a child process). Errors are written to
//! stderr as `lwmq: ...`, naming the broken rule or the failed call.

#![warn(missing_docs)]

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use lwmq_cli::logging::{self, Verbosity};
use lwmq_cli::{chat, check, demo, docs, lat, limits, ls, raw_lat, raw_thr, stat, thr};

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "lwmq",
    version,
    about = "LwMQ for Linux: measure ipc:// and tcp:// channels, inspect descriptors, live servers and this machine's limits"
)]
struct Cli {
    /// What to do.
    #[command(subcommand)]
    command: Command,
    /// -v / -q.
    #[command(flatten)]
    verbosity: Verbosity,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a descriptor; show its canonical form and kernel rendezvous name.
    Check(check::CheckArgs),
    /// List the ipc:// servers listening on this machine, and every transport
    /// of your lwmq processes with its state and peer.
    Ls(ls::LsArgs),
    /// Live counters of running transports (by URI, by --pid, or all), with
    /// rates under --watch.
    Stat(stat::StatArgs),
    /// Measure this machine's copy bandwidth and cache-line latency.
    Limits(limits::LimitsArgs),
    /// Run both ends of a raw ipc:// (or --scheme tcp: tcp://) channel and
    /// show throughput and latency next to this machine's limits.
    Demo(demo::DemoArgs),
    /// Throughput over a raw channel (send or recv side), every payload verified.
    RawThr(raw_thr::RawThrArgs),
    /// One-way latency over a raw channel (ping measures, pong echoes).
    RawLat(raw_lat::RawLatArgs),
    /// Throughput through a messaging channel (send or recv side), every message verified.
    Thr(thr::ThrArgs),
    /// One-way latency through a messaging channel (ping measures, pong echoes).
    Lat(lat::LatArgs),
    /// Chat with a peer (the C samples minichat / rawchannels, or another `lwmq chat`).
    Chat(chat::ChatArgs),
    /// Print a shell completion script or the man page (for packagers and
    /// scripts/install.sh).
    #[command(hide = true)]
    Generate(docs::GenerateArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.verbosity);
    let result = match cli.command {
        Command::Check(args) => check::run(&args),
        Command::Ls(args) => ls::run(&args),
        Command::Stat(args) => stat::run(&args),
        Command::Limits(args) => limits::run(&args),
        Command::Demo(args) => demo::run(&args),
        Command::RawThr(args) => raw_thr::run(&args),
        Command::RawLat(args) => raw_lat::run(&args),
        Command::Thr(args) => thr::run(&args),
        Command::Lat(args) => lat::run(&args),
        Command::Chat(args) => chat::run(&args),
        Command::Generate(args) => docs::run(&args, Cli::command()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}
