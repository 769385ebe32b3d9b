//! `lwmq demo`: both ends of a raw `ipc://` channel (the peer is a child
//! process), throughput at 64 B and 640,000 B and one-way latency at 64 B,
//! printed next to this machine's limits measured in the same run.
//! `--scheme tcp` runs the same over `tcp://` on 127.0.0.1.

use std::io::Write;
use std::process::{Child, Command, Stdio};

use crate::failure::{emit, Failure};
use crate::measure::{measure, Limits, LimitsConfig};
use crate::peer::{endpoint, open_channel, Dirs, RoleArg};
use crate::raw_lat::{self, LatReport};
use crate::raw_thr::{self, ThrReport};

/// Arguments of `lwmq demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Shorter runs (rougher figures).
    #[arg(long)]
    pub quick: bool,
    /// Print one JSON object as the last stdout line.
    #[arg(long)]
    pub json: bool,
    /// The transport: `ipc` (shared memory) or `tcp` (loopback).
    #[arg(long, default_value = "ipc", value_parser = ["ipc", "tcp"])]
    pub scheme: String,
}

/// Descriptor number `n` of this run for `scheme`.
fn demo_uri(scheme: &str, n: u32) -> Result<String, Failure> {
    if scheme == "tcp" {
        // A port the kernel just handed out and we let go of.
        let l = std::net::TcpListener::bind("127.0.0.1:0")
            .map_err(|e| Failure::runtime(format!("no free tcp port: {e}")))?;
        let port = l
            .local_addr()
            .map_err(|e| Failure::runtime(format!("no free tcp port: {e}")))?
            .port();
        return Ok(format!("tcp://127.0.0.1:{port}"));
    }
    Ok(format!("ipc://lwmq-demo/{}:{n}", std::process::id()))
}

fn progress(step: usize, total: usize, what: &str) {
    let mut e = std::io::stderr().lock();
    let _ = write!(e, "\r\x1b[2K[{step}/{total}] {what}...");
    let _ = e.flush();
}

fn child(args: &[String]) -> Result<Child, Failure> {
    let exe = std::env::current_exe().map_err(|e| Failure::runtime(format!("current_exe: {e}")))?;
    Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| Failure::runtime(format!("spawning the peer process failed: {e}")))
}

fn child_json(c: Child) -> Result<serde_json::Value, Failure> {
    let out = c
        .wait_with_output()
        .map_err(|e| Failure::runtime(format!("waiting for the peer process: {e}")))?;
    if !out.status.success() {
        return Err(Failure::runtime(format!(
            "the peer process failed ({})",
            out.status
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().unwrap_or("");
    serde_json::from_str(last).map_err(|e| Failure::runtime(format!("peer output {last:?}: {e}")))
}

/// Throughput with the receiver in a child process; returns its report.
fn throughput(
    uri: &str,
    size: usize,
    count: u64,
    buffer_size: usize,
    buffers: u32,
) -> Result<ThrReport, Failure> {
    let c = child(&[
        "raw-thr".into(),
        "recv".into(),
        uri.into(),
        size.to_string(),
        count.to_string(),
        "--role".into(),
        "client".into(),
        "--buffer-size".into(),
        buffer_size.to_string(),
        "--buffers".into(),
        buffers.to_string(),
        "--json".into(),
    ])?;
    let ep = endpoint(uri, buffer_size, buffers, Dirs::Send, None)?;
    let ch = open_channel(ep, RoleArg::Server)?;
    raw_thr::send(&ch, size, count)?;
    let v = child_json(c)?;
    drop(ch);
    if v["verified"] != true {
        return Err(Failure::runtime(
            "demo: the receiver could not verify the payloads",
        ));
    }
    Ok(ThrReport {
        messages: v["messages"].as_u64().unwrap_or(0),
        bytes: v["bytes"].as_u64().unwrap_or(0),
        seconds: v["seconds"].as_f64().unwrap_or(0.0),
        verified: Some(true),
    })
}

fn latency(uri: &str, count: u64) -> Result<LatReport, Failure> {
    let c = child(&[
        "raw-lat".into(),
        "pong".into(),
        uri.into(),
        "64".into(),
        count.to_string(),
        "--role".into(),
        "client".into(),
    ])?;
    let ep = endpoint(uri, 64 * 1024, 4, Dirs::Both, None)?;
    let ch = open_channel(ep, RoleArg::Server)?;
    let r = raw_lat::ping(&ch, 64, count, std::time::Duration::ZERO)?;
    let _ = c.wait_with_output();
    Ok(r)
}

/// Runs `lwmq demo`.
pub fn run(a: &DemoArgs) -> Result<(), Failure> {
    let (mut n64, mut n640, mut nlat) = if a.quick {
        (1_000_000, 4_000, 20_000)
    } else {
        (5_000_000, 20_000, 100_000)
    };
    if a.scheme == "tcp" {
        // A system call per buffer and microseconds per round trip: a
        // tenth of the counts takes about as long as ipc:// takes.
        (n64, n640, nlat) = (n64 / 10, n640 / 5, nlat / 10);
    }
    progress(1, 4, "measuring this machine's limits");
    let limits = measure(&if a.quick {
        LimitsConfig::quick()
    } else {
        LimitsConfig::full()
    })
    .map_err(|e| Failure::runtime(format!("limits: {e}")))?;
    progress(2, 4, "raw throughput, 64 B payloads");
    let small = throughput(&demo_uri(&a.scheme, 1)?, 64, n64, 64 * 1024, 8)?;
    progress(3, 4, "raw throughput, 640,000 B payloads");
    // 4 + 4 buffers of 640,000 B: a 5 MB ring, which stays in cache.
    let big = throughput(&demo_uri(&a.scheme, 2)?, 640_000, n640, 640_000, 4)?;
    progress(4, 4, "raw one-way latency, 64 B");
    let lat = latency(&demo_uri(&a.scheme, 3)?, nlat)?;
    eprint!("\r\x1b[2K");
    if a.json {
        return emit(&format!("{}\n", to_json(&limits, &small, &big, &lat)));
    }
    emit(&render(&limits, &small, &big, &lat, &a.scheme))
}

fn copy_of(l: &Limits, size: usize) -> (f64, f64) {
    l.copy
        .iter()
        .find(|c| c.size == size)
        .map_or((0.0, 0.0), |c| (c.copies_per_sec, c.gbytes_per_sec))
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}", a / b)
    } else {
        "-".into()
    }
}

fn render(l: &Limits, small: &ThrReport, big: &ThrReport, lat: &LatReport, scheme: &str) -> String {
    let (c64, _) = copy_of(l, 64);
    let (_, g640) = copy_of(l, 640_000);
    let big_gbs = big.bytes as f64 / big.seconds.max(1e-9) / 1e9;
    let (cl50, cl99) = l
        .cacheline
        .as_ref()
        .map_or((0.0, 0.0), |c| (c.p50_ns, c.p99_ns));
    let mut s = String::new();
    s.push_str(&format!(
        "lwmq demo: raw {scheme}:// channel, two processes, every payload verified\n\n"
    ));
    s.push_str(&format!(
        "| measure | lwmq raw {scheme}:// | machine limit (same run) | lwmq / limit |\n"
    ));
    s.push_str("|---|---|---|---|\n");
    s.push_str(&format!(
        "| 64 B payloads, 1 per 64 KiB buffer (8+8 buffers) | {:.2} M buffers/s ({:.2} Gbit/s) | 64 B copy: {:.1} M/s | {} |\n",
        small.msgs_per_sec() / 1e6,
        small.gbit_per_sec(),
        c64 / 1e6,
        ratio(small.msgs_per_sec(), c64)
    ));
    s.push_str(&format!(
        "| 640,000 B payloads (4+4 buffers) | {:.2} GB/s ({:.1} Gbit/s, {:.0} K/s) | 640,000 B copy: {:.2} GB/s | {} |\n",
        big_gbs,
        big.gbit_per_sec(),
        big.msgs_per_sec() / 1e3,
        g640,
        ratio(big_gbs, g640)
    ));
    s.push_str(&format!(
        "| 64 B one-way latency p50 | {:.0} ns | cache line one-way p50: {:.0} ns | {} |\n",
        lat.p50_ns,
        cl50,
        ratio(lat.p50_ns, cl50)
    ));
    s.push_str(&format!(
        "| 64 B one-way latency p99 | {:.0} ns | cache line one-way p99: {:.0} ns | {} |\n",
        lat.p99_ns,
        cl99,
        ratio(lat.p99_ns, cl99)
    ));
    s.push_str(&format!(
        "| 64 B one-way latency p99.9 / max | {:.0} ns / {:.0} ns | | |\n",
        lat.p999_ns, lat.max_ns
    ));
    s
}

fn to_json(l: &Limits, small: &ThrReport, big: &ThrReport, lat: &LatReport) -> serde_json::Value {
    serde_json::json!({
        "limits": l.to_json(),
        "raw_thr_64": serde_json::from_str::<serde_json::Value>(&small.to_json("recv", 64)).unwrap_or_default(),
        "raw_thr_640000": serde_json::from_str::<serde_json::Value>(&big.to_json("recv", 640_000)).unwrap_or_default(),
        "raw_lat_64": serde_json::from_str::<serde_json::Value>(&lat.to_json(64)).unwrap_or_default(),
    })
}
