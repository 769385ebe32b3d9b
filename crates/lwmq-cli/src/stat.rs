//! `lwmq stat [URI | --pid PID] [--watch [SECS]] [--json]`: the live
//! counters of running lwmq transports, asked from outside the process
//! (the query is described in the library's `transport/stat.rs` and in
//! docs/ipc-protocol.md).
//!
//! * `URI`: the server of that `ipc://` address answers on its rendezvous;
//!   its transports with that descriptor are shown.
//! * `--pid PID`: that process's stat socket answers: all its transports
//!   (clients too).
//! * neither: every process with a stat socket in this network namespace
//!   (`/proc/net/unix`); those that refuse (other users) are skipped, said
//!   at `-v`.
//!
//! `--watch` refreshes every SECS seconds and adds rates (per second,
//! since the previous refresh); `--json` prints one JSON object per
//! refresh, one line each.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use lwmq::internals::stat::{
    query_pid, query_server, ProcessSnapshot, StatError, TransportSnapshot, STAT_SOCKET_PREFIX,
};
use lwmq::transport::{DescriptorError, IpcAddress, TcpAddress};
use lwmq::ConnectionState;
use serde_json::{json, Value};

use crate::failure::{emit, printable, Failure};
use crate::logging::TARGET;

/// Arguments of `lwmq stat`.
#[derive(Debug, clap::Args)]
pub struct StatArgs {
    /// Ask the server of this descriptor (its rendezvous answers), e.g.
    /// `ipc://bench`. Without URI or --pid: every lwmq process of yours.
    pub uri: Option<String>,
    /// Ask this process (its stat socket): every transport, clients too.
    #[arg(long, conflicts_with = "uri")]
    pub pid: Option<u32>,
    /// Refresh every SECS seconds (default 1) with rates since the last
    /// refresh, until interrupted (or --count).
    #[arg(long, value_name = "SECS", num_args = 0..=1, default_missing_value = "1", value_parser = crate::waiting::parse_seconds)]
    pub watch: Option<f64>,
    /// With --watch: stop after this many refreshes.
    #[arg(long, value_name = "N", requires = "watch")]
    pub count: Option<u64>,
    /// One JSON object per refresh (one line each).
    #[arg(long)]
    pub json: bool,
    /// Seconds to wait for each answer.
    #[arg(long, value_name = "SECS", default_value_t = 2.0, value_parser = crate::waiting::parse_seconds)]
    pub timeout: f64,
}

/// Pids with a listening stat socket in this network namespace, sorted.
pub fn stat_pids() -> Result<Vec<u32>, Failure> {
    let table = std::fs::read("/proc/net/unix")
        .map_err(|e| Failure::runtime(format!("open/read /proc/net/unix failed: {e}")))?;
    let prefix = format!("@{STAT_SOCKET_PREFIX}");
    let mut pids: Vec<u32> = crate::ls::parse_proc_net_unix(&table)
        .iter()
        .filter(|r| r.is_listening())
        .filter_map(|r| {
            let path = r.path.as_deref()?;
            let pid = path.strip_prefix(prefix.as_bytes())?;
            std::str::from_utf8(pid).ok()?.parse().ok()
        })
        .collect();
    pids.sort_unstable();
    pids.dedup();
    Ok(pids)
}

/// Asks every process with a stat socket; the ones that do not answer
/// (other users, gone meanwhile) are left out, said at info level.
pub fn query_all(timeout: Duration) -> Result<Vec<ProcessSnapshot>, Failure> {
    let mut out = Vec::new();
    for pid in stat_pids()? {
        match query_pid(pid, timeout) {
            Ok(s) => out.push(s),
            Err(e) => log::info!(target: TARGET, "pid {pid}: {e}"),
        }
    }
    Ok(out)
}

/// The command name of `pid` (`/proc/PID/comm`), if readable.
pub fn command_of(pid: u32) -> Option<String> {
    let comm = std::fs::read(format!("/proc/{pid}/comm")).ok()?;
    Some(String::from_utf8_lossy(&comm).trim_end().to_owned())
}

fn failure(e: StatError) -> Failure {
    Failure::runtime(e.to_string())
}

/// One round of queries, as the arguments select.
fn collect(a: &StatArgs, filter: Option<&str>) -> Result<Vec<ProcessSnapshot>, Failure> {
    let timeout = crate::waiting::limit(a.timeout).unwrap_or(Duration::from_secs(3600));
    let mut found = match (&a.uri, a.pid) {
        (Some(uri), _) => match Target::parse(uri)? {
            Target::Ipc(addr) => vec![query_server(&addr, timeout).map_err(failure)?],
            // A tcp:// server has no rendezvous on this machine to ask:
            // every process of this user is asked, and the filter keeps
            // the transports of that descriptor.
            Target::Tcp(_) => query_all(timeout)?,
        },
        (None, Some(pid)) => vec![query_pid(pid, timeout).map_err(failure)?],
        (None, None) => query_all(timeout)?,
    };
    if let Some(d) = filter {
        for p in &mut found {
            p.transports.retain(|t| t.descriptor == d);
        }
        if found.iter().all(|p| p.transports.is_empty()) {
            return Err(Failure::runtime(format!(
                "no lwmq process of yours has a transport {d}"
            )));
        }
    }
    Ok(found)
}

/// The descriptor `lwmq stat URI` names.
enum Target {
    Ipc(IpcAddress),
    Tcp(TcpAddress),
}

impl Target {
    fn parse(uri: &str) -> Result<Self, Failure> {
        let bad = |d: DescriptorError| Failure::usage(format!("invalid descriptor: {d}"));
        let tcp = uri
            .get(..6)
            .is_some_and(|s| s.eq_ignore_ascii_case("tcp://"));
        if tcp {
            TcpAddress::parse(uri).map(Target::Tcp).map_err(bad)
        } else {
            IpcAddress::parse(uri).map(Target::Ipc).map_err(bad)
        }
    }
}

/// Per-second rates between two snapshots of one transport.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rates {
    /// Buffers sent per second.
    pub buffers_sent: f64,
    /// Bytes sent per second.
    pub bytes_sent: f64,
    /// Buffers received per second.
    pub buffers_received: f64,
    /// Bytes received per second.
    pub bytes_received: f64,
}

impl Rates {
    /// From `before` to `now`, `seconds` apart (counters that went back, a
    /// restarted process, give 0).
    pub fn between(before: &TransportSnapshot, now: &TransportSnapshot, seconds: f64) -> Self {
        let r = |a: u64, b: u64| b.saturating_sub(a) as f64 / seconds.max(1e-9);
        let (b, n) = (&before.stats, &now.stats);
        Self {
            buffers_sent: r(b.buffers_sent, n.buffers_sent),
            bytes_sent: r(b.bytes_sent, n.bytes_sent),
            buffers_received: r(b.buffers_received, n.buffers_received),
            bytes_received: r(b.bytes_received, n.bytes_received),
        }
    }
}

/// The state as one word, and the refusal as an object.
fn state_json(s: &ConnectionState) -> (&'static str, Value) {
    match s {
        ConnectionState::Idle => ("idle", Value::Null),
        ConnectionState::Listening => ("listening", Value::Null),
        ConnectionState::Connecting => ("connecting", Value::Null),
        ConnectionState::Connected => ("connected", Value::Null),
        ConnectionState::Refused(r) => (
            "refused",
            json!({"reason": r.reason.to_string(), "code": r.reason.code(), "by_peer": r.by_peer, "detail": r.detail}),
        ),
        ConnectionState::Closed => ("closed", Value::Null),
        _ => ("unknown", Value::Null),
    }
}

/// One transport as JSON (`rates` when known).
pub fn transport_json(t: &TransportSnapshot, rates: Option<Rates>) -> Value {
    let (state, refusal) = state_json(&t.state);
    let s = &t.stats;
    let mut v = json!({
        "descriptor": t.descriptor,
        "state": state,
        "refusal": refusal,
        "peer": t.peer.map(|p| json!({"pid": p.pid, "uid": p.uid, "gid": p.gid, "addr": p.addr.map(|a| a.to_string())})),
        "buffer_size": t.buffer_size,
        "send_buffers": t.send_buffers,
        "receive_buffers": t.receive_buffers,
        "generation": t.generation,
        "buffers_sent": s.buffers_sent,
        "bytes_sent": s.bytes_sent,
        "buffers_received": s.buffers_received,
        "bytes_received": s.bytes_received,
        "connections": s.connections,
        "reconnections": s.reconnections,
        "disconnections": s.disconnections,
        "refusals": s.refusals,
        "violations": s.violations,
        "connect_attempts": s.connect_attempts,
        "staged": t.staged,
        "send_queued": t.send_queued,
        "receive_queued": t.receive_queued,
        "discards": t.discards,
    });
    if let Some(r) = rates {
        v["rates"] = json!({
            "buffers_sent_per_sec": r.buffers_sent,
            "bytes_sent_per_sec": r.bytes_sent,
            "buffers_received_per_sec": r.buffers_received,
            "bytes_received_per_sec": r.bytes_received,
        });
    }
    v
}

/// The state and the peer, for a table cell.
pub fn state_text(t: &TransportSnapshot) -> String {
    match &t.state {
        ConnectionState::Refused(r) => format!(
            "refused {} ({})",
            if r.by_peer {
                "by the peer"
            } else {
                "by this side"
            },
            r.reason
        ),
        s => s.to_string(),
    }
}

/// The peer, for a table cell.
pub fn peer_text(t: &TransportSnapshot) -> String {
    t.peer.map_or_else(|| "-".to_owned(), |p| p.to_string())
}

fn bytes_text(n: f64) -> String {
    match n {
        n if n >= 1e9 => format!("{:.2} GB", n / 1e9),
        n if n >= 1e6 => format!("{:.2} MB", n / 1e6),
        n if n >= 1e3 => format!("{:.1} kB", n / 1e3),
        n => format!("{n:.0} B"),
    }
}

/// Key of a transport across refreshes.
type Key = (u32, usize, String);

fn render(found: &[ProcessSnapshot], rates: &BTreeMap<Key, Rates>) -> String {
    let mut out = String::new();
    if found.iter().all(|p| p.transports.is_empty()) {
        out.push_str("no lwmq transport found\n");
    }
    for p in found.iter().filter(|p| !p.transports.is_empty()) {
        let cmd = command_of(p.pid).unwrap_or_else(|| "-".into());
        out.push_str(&format!(
            "pid {} ({}){}\n",
            p.pid,
            printable(&cmd),
            if p.truncated {
                ", some transports left out (answer size limit)"
            } else {
                ""
            }
        ));
        for (i, t) in p.transports.iter().enumerate() {
            let s = &t.stats;
            out.push_str(&format!(
                "  {}  {}  peer {}\n",
                printable(&t.descriptor),
                printable(&state_text(t)),
                peer_text(t)
            ));
            out.push_str(&format!(
                "    sent {} buffers, {}   received {} buffers, {}   staged {}\n",
                s.buffers_sent,
                bytes_text(s.bytes_sent as f64),
                s.buffers_received,
                bytes_text(s.bytes_received as f64),
                t.staged
            ));
            out.push_str(&format!(
                "    connections {}  reconnections {}  disconnections {}  refusals {}  violations {}  connect attempts {}\n",
                s.connections, s.reconnections, s.disconnections, s.refusals, s.violations, s.connect_attempts
            ));
            out.push_str(&format!(
                "    channel: queued to send {}  queued received {}  discarded {}\n",
                t.send_queued, t.receive_queued, t.discards
            ));
            if let Some(r) = rates.get(&(p.pid, i, t.descriptor.clone())) {
                out.push_str(&format!(
                    "    rate: sent {:.0} buffers/s, {}/s   received {:.0} buffers/s, {}/s\n",
                    r.buffers_sent,
                    bytes_text(r.bytes_sent),
                    r.buffers_received,
                    bytes_text(r.bytes_received)
                ));
            }
        }
    }
    out
}

fn to_json(found: &[ProcessSnapshot], rates: &BTreeMap<Key, Rates>) -> Value {
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let processes: Vec<Value> = found
        .iter()
        .map(|p| {
            let transports: Vec<Value> = p
                .transports
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    transport_json(t, rates.get(&(p.pid, i, t.descriptor.clone())).copied())
                })
                .collect();
            json!({
                "pid": p.pid,
                "command": command_of(p.pid),
                "truncated": p.truncated,
                "transports": transports,
            })
        })
        .collect();
    json!({"time": unix, "processes": processes})
}

/// Runs `lwmq stat`.
pub fn run(a: &StatArgs) -> Result<(), Failure> {
    let filter = match &a.uri {
        Some(uri) => Some(match Target::parse(uri)? {
            Target::Ipc(addr) => addr.to_string(),
            Target::Tcp(addr) => addr.to_string(),
        }),
        None => None,
    };
    let mut previous: Option<(Instant, Vec<ProcessSnapshot>)> = None;
    let mut rounds = 0u64;
    loop {
        let found = collect(a, filter.as_deref())?;
        let now = Instant::now();
        let mut rates = BTreeMap::new();
        if let Some((then, before)) = &previous {
            let dt = now.duration_since(*then).as_secs_f64();
            for p in &found {
                let Some(b) = before.iter().find(|b| b.pid == p.pid) else {
                    continue;
                };
                for (i, t) in p.transports.iter().enumerate() {
                    if let Some(bt) = b
                        .transports
                        .get(i)
                        .filter(|bt| bt.descriptor == t.descriptor)
                    {
                        rates.insert((p.pid, i, t.descriptor.clone()), Rates::between(bt, t, dt));
                    }
                }
            }
        }
        let text = if a.json {
            format!("{}\n", to_json(&found, &rates))
        } else if a.watch.is_some() {
            // Clear the screen between refreshes on a terminal only.
            let clear = if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                "\x1b[H\x1b[2J"
            } else {
                ""
            };
            format!("{clear}{}", render(&found, &rates))
        } else {
            render(&found, &rates)
        };
        emit(&text)?;
        rounds += 1;
        let Some(every) = a.watch else {
            return Ok(());
        };
        if a.count.is_some_and(|n| rounds >= n) {
            return Ok(());
        }
        previous = Some((now, found));
        std::thread::sleep(Duration::from_secs_f64(every.max(0.05)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_readable() {
        assert_eq!(bytes_text(12.0), "12 B");
        assert_eq!(bytes_text(1_500.0), "1.5 kB");
        assert_eq!(bytes_text(2_500_000.0), "2.50 MB");
        assert_eq!(bytes_text(3e9), "3.00 GB");
    }
}
