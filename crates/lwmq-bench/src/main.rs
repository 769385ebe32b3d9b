//! `lwmq-bench`: lwmq side by side with Unix domain sockets, ZeroMQ and
//! iceoryx2 on this machine, and lwmq's `tcp://` side by side with plain TCP
//! sockets and ZeroMQ `tcp://` on loopback, in one run.
//!
//! Every scenario runs in child processes of this same binary (hidden
//! `peer ...` subcommands; the lwmq ones call the code of `lwmq thr`,
//! `raw-thr`, `lat` and `raw-lat` from the `lwmq_cli` library), interleaved:
//! each repetition runs every library in turn, so that a change of the
//! machine's state (the host moving vCPUs) hits all of them alike. See
//! `docs/performance.md` for the method and what each figure means.
//!
//! Output: Markdown on stdout, `--json FILE` with every raw sample, and an
//! SVG chart (next to the JSON file, or `target/lwmq-bench.svg`).

#![warn(missing_docs)]

mod bench;
mod child;
mod cleanup;
mod peers;
mod report;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "lwmq-bench",
    version,
    about = "lwmq side by side with Unix sockets, ZeroMQ and iceoryx2, and lwmq tcp:// with TCP sockets and ZeroMQ tcp://: throughput, latency, idle cost and this machine's limits, interleaved, in child processes",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    run: RunArgs,
}

/// Options of a comparison run.
#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Short counts, 3 repetitions (under 2 minutes).
    #[arg(long, conflicts_with = "smoke")]
    quick: bool,
    /// Tiny counts, 1 repetition: only checks that every scenario works.
    #[arg(long)]
    smoke: bool,
    /// Libraries to run, comma-separated: lwmq (all lwmq variants),
    /// lwmq-msg, lwmq-async (the messaging channel received with
    /// receive_async on a tokio current-thread runtime; 64 B latency only),
    /// lwmq-futex, lwmq-lend, lwmq-batch, lwmq-raw, uds (both modes), uds-single,
    /// uds-batch, uds-tokio (tokio's UnixStream on a current-thread
    /// runtime; 64 B latency only), zmq, iceoryx2, lwmq-tcp, lwmq-tcp-lend,
    /// lwmq-tcp-raw, tcp (both modes), tcp-single, tcp-batch, zmq-tcp;
    /// groups: ipc (the comparison on one machine), net (the one over
    /// loopback TCP). Default: all.
    #[arg(long, value_name = "LIST")]
    only: Option<String>,
    /// Repetitions (default: 5 full, 3 quick, 1 smoke).
    #[arg(long, value_name = "N")]
    reps: Option<usize>,
    /// Write every raw sample and the summaries to FILE as JSON (and the
    /// SVG chart next to it, FILE with the extension .svg).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Where to write the SVG chart (default: next to --json, else
    /// target/lwmq-bench.svg).
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
}

/// Hidden subcommands used by the children.
#[derive(Debug, Subcommand)]
enum Cmd {
    /// One side of a scenario (internal).
    #[command(hide = true)]
    Peer {
        #[command(subcommand)]
        peer: Peer,
    },
    /// `lwmq limits` (internal; also the re-executed echo side of its
    /// cache-line measurement).
    #[command(hide = true)]
    Limits(lwmq_cli::limits::LimitsArgs),
}

/// Arguments of the non-lwmq peers.
#[derive(Debug, clap::Args)]
struct PairArgs {
    /// recv / send (throughput) or pong / ping (latency).
    #[arg(value_parser = ["send", "recv", "ping", "pong"])]
    side: String,
    /// Rendezvous name (abstract socket or iceoryx2 service name; the
    /// lwmq channel `ipc://NAME` for async-lat), or the port on 127.0.0.1
    /// for the TCP peers.
    name: String,
    /// Payload size in bytes (at least 16).
    size: usize,
    /// Messages (throughput) or timed round trips (latency).
    count: u64,
    /// UDS and TCP: 64 KiB writes and reads instead of one per message.
    #[arg(long)]
    batch: bool,
    /// ZeroMQ: over `tcp://127.0.0.1:NAME` instead of `ipc://`.
    #[arg(long)]
    tcp: bool,
    /// iceoryx2: file prefix of this run.
    #[arg(long, default_value = "iox2_")]
    prefix: String,
    /// Latency: stop timing after this many seconds (0 = never).
    #[arg(long, default_value_t = 0.0)]
    max_seconds: f64,
    /// Latency (ping): sleep this many microseconds before each round
    /// trip (the sparse scenario); 0 = back to back.
    #[arg(long, default_value_t = 0)]
    pause_us: u64,
}

impl PairArgs {
    fn cap(&self) -> Duration {
        Duration::try_from_secs_f64(self.max_seconds).unwrap_or_default()
    }

    fn pause(&self) -> Duration {
        Duration::from_micros(self.pause_us)
    }
}

/// The peer kinds.
#[derive(Debug, Subcommand)]
enum Peer {
    /// `lwmq thr`.
    Thr(lwmq_cli::thr::ThrArgs),
    /// `lwmq raw-thr`.
    RawThr(lwmq_cli::raw_thr::RawThrArgs),
    /// `lwmq lat`.
    Lat(lwmq_cli::lat::LatArgs),
    /// `lwmq raw-lat`.
    RawLat(lwmq_cli::raw_lat::RawLatArgs),
    /// Unix socket throughput.
    UdsThr(PairArgs),
    /// Unix socket latency.
    UdsLat(PairArgs),
    /// Unix socket latency through `tokio::net::UnixStream` on a
    /// current-thread runtime.
    UdsTokioLat(PairArgs),
    /// lwmq messaging latency over `ipc://NAME`, both sides receiving with
    /// `Channel::receive_async` on a tokio current-thread runtime.
    AsyncLat(PairArgs),
    /// Plain TCP socket throughput.
    TcpThr(PairArgs),
    /// Plain TCP socket latency.
    TcpLat(PairArgs),
    /// ZeroMQ PUSH/PULL throughput.
    ZmqThr(PairArgs),
    /// ZeroMQ REQ/REP latency.
    ZmqLat(PairArgs),
    /// iceoryx2 publish-subscribe throughput.
    IoxThr(PairArgs),
    /// iceoryx2 ping/pong latency.
    IoxLat(PairArgs),
    /// An idle lwmq messaging pair.
    Idle {
        /// `server` or `client`.
        #[arg(value_parser = ["server", "client"])]
        side: String,
        /// The descriptor.
        uri: String,
        /// How long to stay connected.
        seconds: f64,
    },
}

fn run_peer(p: Peer) -> ExitCode {
    let lwmq = |r: Result<(), lwmq_cli::failure::Failure>| match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => f.report(),
    };
    let check = |a: &PairArgs| {
        if a.size < 16 {
            Err(peers::PeerError(format!(
                "SIZE {} is too small (rule: SIZE >= 16)",
                a.size
            )))
        } else {
            Ok(())
        }
    };
    let r = match p {
        Peer::Thr(a) => return lwmq(lwmq_cli::thr::run(&a)),
        Peer::RawThr(a) => return lwmq(lwmq_cli::raw_thr::run(&a)),
        Peer::Lat(a) => return lwmq(lwmq_cli::lat::run(&a)),
        Peer::RawLat(a) => return lwmq(lwmq_cli::raw_lat::run(&a)),
        Peer::UdsThr(a) => {
            check(&a).and_then(|()| peers::uds_thr(&a.side, &a.name, a.size, a.count, a.batch))
        }
        Peer::UdsLat(a) => check(&a)
            .and_then(|()| peers::uds_lat(&a.side, &a.name, a.size, a.count, a.cap(), a.pause())),
        Peer::UdsTokioLat(a) => check(&a).and_then(|()| {
            peers::uds_tokio_lat(&a.side, &a.name, a.size, a.count, a.cap(), a.pause())
        }),
        Peer::AsyncLat(a) => check(&a).and_then(|()| {
            peers::lwmq_async_lat(&a.side, &a.name, a.size, a.count, a.cap(), a.pause())
        }),
        Peer::TcpThr(a) => {
            check(&a).and_then(|()| peers::tcp_thr(&a.side, &a.name, a.size, a.count, a.batch))
        }
        Peer::TcpLat(a) => check(&a)
            .and_then(|()| peers::tcp_lat(&a.side, &a.name, a.size, a.count, a.cap(), a.pause())),
        Peer::ZmqThr(a) => {
            check(&a).and_then(|()| peers::zmq_thr(&a.side, &a.name, a.size, a.count, a.tcp))
        }
        Peer::ZmqLat(a) => check(&a).and_then(|()| {
            peers::zmq_lat(&a.side, &a.name, a.size, a.count, a.cap(), a.pause(), a.tcp)
        }),
        Peer::IoxThr(a) => {
            check(&a).and_then(|()| peers::iox_thr(&a.side, &a.name, &a.prefix, a.size, a.count))
        }
        Peer::IoxLat(a) => check(&a).and_then(|()| {
            let (cap, pause) = (a.cap(), a.pause());
            peers::iox_lat(&a.side, &a.name, &a.prefix, a.size, a.count, cap, pause)
        }),
        Peer::Idle { side, uri, seconds } => peers::lwmq_idle(&side, &uri, seconds),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lwmq-bench peer: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The SVG path: `--svg`, else next to `--json`, else target/lwmq-bench.svg.
fn svg_path(a: &RunArgs) -> PathBuf {
    if let Some(p) = &a.svg {
        return p.clone();
    }
    if let Some(j) = &a.json {
        return j.with_extension("svg");
    }
    Path::new("target").join("lwmq-bench.svg")
}

fn write_file(path: &Path, text: &str) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("write {}: {e}", path.display()))
}

fn run_bench(a: &RunArgs) -> Result<(), String> {
    let libs = match &a.only {
        Some(list) => bench::parse_only(list)?,
        None => bench::Lib::ALL.to_vec(),
    };
    let size = if a.smoke {
        bench::Size::Smoke
    } else if a.quick {
        bench::Size::Quick
    } else {
        bench::Size::Full
    };
    let plan = bench::Plan::new(size, a.reps, libs);
    let iox = cleanup::Iox2Files::new();
    let on_stop = iox.clone();
    child::install_stop(move || {
        on_stop.remove_created();
    })
    .map_err(|e| format!("installing the signal handlers: {e}"))?;
    let date = report::utc_now();
    let started = Instant::now();
    let samples = bench::run(&plan, &iox);
    iox.remove_created();
    let wall = started.elapsed().as_secs_f64();
    let sum = report::Summary::new(&plan, &samples);
    print!("{}", report::markdown(&plan, &sum, &date, wall));
    if let Some(path) = &a.json {
        let doc = report::json_doc(&plan, &sum, &samples, &date, wall);
        let text = serde_json::to_string_pretty(&doc).map_err(|e| format!("JSON: {e}"))?;
        write_file(path, &text)?;
        eprintln!("lwmq-bench: wrote {}", path.display());
    }
    let svg = svg_path(a);
    write_file(&svg, &report::svg(&plan, &sum, &date))?;
    eprintln!("lwmq-bench: wrote {}", svg.display());
    if samples.iter().all(|s| s.result.is_err()) {
        return Err("every run failed".into());
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Some(Cmd::Peer { peer }) => run_peer(peer),
        Some(Cmd::Limits(a)) => match lwmq_cli::limits::run(&a) {
            Ok(()) => ExitCode::SUCCESS,
            Err(f) => f.report(),
        },
        None => match run_bench(&cli.run) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("lwmq-bench: {e}");
                ExitCode::FAILURE
            }
        },
    }
}
