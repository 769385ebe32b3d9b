//! `lwmq ls`: lists the `ipc://` servers live on this machine.
//!
//! Source of truth is the kernel's socket table, `/proc/net/unix`: every
//! listening socket (flag `__SO_ACCEPTCON`, state `01`) whose abstract name
//! starts with `lwmq1/` is a server. Its owner is found by scanning
//! `/proc/*/fd/*` for a link to `socket:[INODE]`; processes we may not
//! inspect (or that exit meanwhile) are skipped, so the pid may be unknown.
//! Only this network namespace's sockets are visible, as with `ss -xl`.
//!
//! Below the servers, a line per transport of every lwmq process that
//! answers a statistics query (its stat socket, see [`crate::stat`]): pid,
//! command, descriptor, state and peer, clients included. Processes of
//! other users do not answer (unless a transport's policy admits us). The
//! JSON stays the array of servers (scripts read it), each with `state`
//! and `peer_pid` from its process's answer (null when unknown); `lwmq
//! stat --json` gives every transport.

use std::collections::{BTreeMap, HashSet};
use std::fs;

use std::time::Duration;

use lwmq::internals::descriptor::{parse_rendezvous_name, RENDEZVOUS_PREFIX};
use lwmq::internals::stat::{ProcessSnapshot, TransportSnapshot};
use lwmq::transport::IpcAddress;
use serde_json::json;

use crate::failure::{emit, printable, Failure};

/// `__SO_ACCEPTCON` in the Flags column: the socket is listening.
pub const SO_ACCEPTCON: u32 = 0x0001_0000;
/// `SS_UNCONNECTED` in the St column, the state of a listening socket.
pub const STATE_UNCONNECTED: u8 = 0x01;

/// Arguments of `lwmq ls`.
#[derive(Debug, clap::Args)]
pub struct LsArgs {
    /// Print a JSON array instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// One row of `/proc/net/unix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnixSocketRow {
    /// The Flags column (`__SO_ACCEPTCON` = listening).
    pub flags: u32,
    /// The Type column (1 stream, 2 datagram, 5 seqpacket).
    pub socket_type: u16,
    /// The St column (socket state).
    pub state: u8,
    /// The socket's inode number.
    pub inode: u64,
    /// The bound path as the kernel prints it (abstract names begin with
    /// `@`, and their NUL bytes show as `@`); `None` when unbound.
    pub path: Option<Vec<u8>>,
}

impl UnixSocketRow {
    /// Whether this is a listening socket.
    pub fn is_listening(&self) -> bool {
        self.flags & SO_ACCEPTCON != 0 && self.state == STATE_UNCONNECTED
    }
}

/// Parses the text of `/proc/net/unix`. The path is everything after the 7th
/// field and the one space that follows it, so it may hold spaces or any
/// other byte. The kernel prints names raw, so a name holding a newline
/// spills onto the next line(s): a line that is not a well-formed row is
/// taken as the continuation of the previous row's path, and skipped when
/// there is no such path (the header, or after an unbound socket).
pub fn parse_proc_net_unix(text: &[u8]) -> Vec<UnixSocketRow> {
    let text = text.strip_suffix(b"\n").unwrap_or(text);
    let mut rows: Vec<UnixSocketRow> = Vec::new();
    for line in text.split(|&b| b == b'\n') {
        if let Some(row) = parse_row(line) {
            rows.push(row);
        } else if let Some(path) = rows.last_mut().and_then(|r| r.path.as_mut()) {
            path.push(b'\n');
            path.extend_from_slice(line);
        }
    }
    rows
}

/// Parses one line: `Num: RefCount Protocol Flags Type St Inode [Path]`.
fn parse_row(line: &[u8]) -> Option<UnixSocketRow> {
    let mut rest = line;
    let mut fields: [&[u8]; 7] = [&[]; 7];
    for field in &mut fields {
        let start = rest.iter().position(|&b| b != b' ')?;
        rest = &rest[start..];
        let end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
        *field = &rest[..end];
        rest = &rest[end..];
    }
    let [num, refcount, protocol, flags, socket_type, state, inode] = fields;
    let hex = |f: &[u8]| u64::from_str_radix(std::str::from_utf8(f).ok()?, 16).ok();
    let num = num.strip_suffix(b":")?;
    hex(num)?;
    hex(refcount)?;
    hex(protocol)?;
    let path = match rest {
        [] => None,
        [b' ', path @ ..] if !path.is_empty() => Some(path.to_vec()),
        _ => return None,
    };
    Some(UnixSocketRow {
        flags: u32::try_from(hex(flags)?).ok()?,
        socket_type: u16::try_from(hex(socket_type)?).ok()?,
        state: u8::try_from(hex(state)?).ok()?,
        inode: std::str::from_utf8(inode).ok()?.parse().ok()?,
        path,
    })
}

/// A live `ipc://` server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// The address, or its readable prefix when the name is hashed.
    pub address: String,
    /// The port, if any.
    pub port: Option<u16>,
    /// Whether the name is hashed (the address was too long to fit).
    pub hashed: bool,
    /// The abstract name as `ss -xl` shows it: `@` + name.
    pub rendezvous: String,
    /// The socket's inode number.
    pub inode: u64,
    /// The process holding the socket, if it could be found.
    pub pid: Option<u32>,
    /// That process's command name (`/proc/PID/comm`), if known.
    pub command: Option<String>,
}

/// Picks the lwmq servers out of the socket table (no pid yet), sorted by
/// address then port.
pub fn lwmq_servers(rows: &[UnixSocketRow]) -> Vec<Server> {
    let mut out: Vec<Server> = rows
        .iter()
        .filter(|r| r.is_listening())
        .filter_map(|r| {
            let path = r.path.as_deref()?;
            let name = path.strip_prefix(b"@")?;
            if !name.starts_with(RENDEZVOUS_PREFIX.as_bytes()) {
                return None;
            }
            let n = parse_rendezvous_name(name)?;
            Some(Server {
                address: n.address,
                port: n.port,
                hashed: n.hashed,
                rendezvous: String::from_utf8_lossy(path).into_owned(),
                inode: r.inode,
                pid: None,
                command: None,
            })
        })
        .collect();
    out.sort_by(|a, b| (&a.address, a.port, a.inode).cmp(&(&b.address, b.port, b.inode)));
    out
}

/// Finds, for each inode, the lowest pid holding a descriptor to it. Entries
/// that cannot be read (permissions, processes exiting) are skipped.
pub fn socket_owners(inodes: &HashSet<u64>) -> BTreeMap<u64, u32> {
    let mut found = BTreeMap::new();
    if inodes.is_empty() {
        return found;
    }
    let Ok(proc_dir) = fs::read_dir("/proc") else {
        return found;
    };
    let mut pids: Vec<u32> = proc_dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    for pid in pids {
        let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = fs::read_link(fd.path()) else {
                continue;
            };
            let Some(inode) = socket_inode(target.as_os_str().as_encoded_bytes()) else {
                continue;
            };
            if inodes.contains(&inode) {
                found.entry(inode).or_insert(pid);
            }
        }
        if found.len() == inodes.len() {
            break;
        }
    }
    found
}

/// Parses a descriptor link target `socket:[INODE]`.
fn socket_inode(target: &[u8]) -> Option<u64> {
    let digits = target.strip_prefix(b"socket:[")?.strip_suffix(b"]")?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// The command name of `pid`, if readable.
fn command_of(pid: u32) -> Option<String> {
    let comm = fs::read(format!("/proc/{pid}/comm")).ok()?;
    let comm = String::from_utf8_lossy(&comm);
    Some(comm.trim_end_matches('\n').to_owned())
}

/// Reads the socket table and the owners: the live servers.
pub fn live_servers() -> Result<Vec<Server>, Failure> {
    let table = fs::read("/proc/net/unix")
        .map_err(|e| Failure::runtime(format!("open/read /proc/net/unix failed: {e}")))?;
    let mut servers = lwmq_servers(&parse_proc_net_unix(&table));
    let owners = socket_owners(&servers.iter().map(|s| s.inode).collect());
    for s in &mut servers {
        s.pid = owners.get(&s.inode).copied();
        s.command = s.pid.and_then(command_of);
    }
    Ok(servers)
}

/// Renders the table (a header only when there are no servers).
fn render_table(servers: &[Server]) -> String {
    let rows: Vec<[String; 4]> = servers
        .iter()
        .map(|s| {
            let mut address = printable(&s.address);
            if s.hashed {
                address.push_str("… (hashed)");
            }
            [
                address,
                s.port.map_or_else(|| "-".to_owned(), |p| p.to_string()),
                s.pid.map_or_else(|| "-".to_owned(), |p| p.to_string()),
                s.command
                    .as_deref()
                    .map_or_else(|| "-".to_owned(), printable),
            ]
        })
        .collect();
    let header = ["ADDRESS", "PORT", "PID", "COMMAND"];
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain([header[i].len()])
            .max()
            .unwrap_or(0)
    };
    let (w0, w1, w2) = (width(0), width(1), width(2));
    let mut out = String::new();
    for r in std::iter::once(header.map(str::to_owned)).chain(rows) {
        let line = format!("{:<w0$}  {:>w1$}  {:>w2$}  {}", r[0], r[1], r[2], r[3]);
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The transport of `processes` a server row stands for: in its pid, with
/// its rendezvous name.
fn server_transport<'a>(
    s: &Server,
    processes: &'a [ProcessSnapshot],
) -> Option<&'a TransportSnapshot> {
    let p = processes.iter().find(|p| Some(p.pid) == s.pid)?;
    p.transports.iter().find(|t| {
        IpcAddress::parse(&t.descriptor).is_ok_and(|a| {
            format!("@{}", String::from_utf8_lossy(&a.rendezvous_name())) == s.rendezvous
        }) && !matches!(t.state, lwmq::ConnectionState::Connecting)
    })
}

/// The transports table: a line per transport of each process that
/// answered.
fn render_transports(processes: &[ProcessSnapshot]) -> String {
    let rows: Vec<[String; 5]> = processes
        .iter()
        .flat_map(|p| {
            let cmd = crate::stat::command_of(p.pid).unwrap_or_else(|| "-".into());
            p.transports.iter().map(move |t| {
                [
                    p.pid.to_string(),
                    printable(&cmd),
                    printable(&t.descriptor),
                    printable(&crate::stat::state_text(t)),
                    crate::stat::peer_text(t),
                ]
            })
        })
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    let header = ["PID", "COMMAND", "TRANSPORT", "STATE", "PEER"];
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain([header[i].len()])
            .max()
            .unwrap_or(0)
    };
    let (w0, w1, w2, w3) = (width(0), width(1), width(2), width(3));
    let mut out = String::from("\n");
    for r in std::iter::once(header.map(str::to_owned)).chain(rows) {
        let line = format!(
            "{:>w0$}  {:<w1$}  {:<w2$}  {:<w3$}  {}",
            r[0], r[1], r[2], r[3], r[4]
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Runs `lwmq ls`.
pub fn run(args: &LsArgs) -> Result<(), Failure> {
    let servers = live_servers()?;
    let processes = crate::stat::query_all(Duration::from_secs(1))?;
    if args.json {
        let list: Vec<_> = servers
            .iter()
            .map(|s| {
                let t = server_transport(s, &processes);
                json!({
                    "address": s.address,
                    "port": s.port,
                    "pid": s.pid,
                    "command": s.command,
                    "hashed": s.hashed,
                    "rendezvous": s.rendezvous,
                    "state": t.map(crate::stat::state_text),
                    "peer_pid": t.and_then(|t| t.peer).and_then(|p| p.pid),
                })
            })
            .collect();
        emit(&format!("{}\n", serde_json::Value::Array(list)))
    } else {
        emit(&format!(
            "{}{}",
            render_table(&servers),
            render_transports(&processes)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &[u8] = b"Num       RefCount Protocol Flags    Type St Inode Path
0000000000000000: 00000002 00000000 00010000 0005 01 123456 @lwmq1/5555/co/prod/chan
0000000000000000: 00000002 00000000 00010000 0001 01  4242 @lwmq1/-/with space/and:@x
0000000000000000: 00000003 00000000 00000000 0005 03 123457 @lwmq1/5555/co/prod/chan
0000000000000000: 00000002 00000000 00010000 0001 01 20001 /run/systemd/private
0000000000000000: 00000002 00000000 00000000 0002 01 20002
0000000000000000: 00000002 00000000 00010000 0001 01 20003 @other-name
0000000000000000: 00000002 00000000 00010000 0005 01 20004 @lwmq1/-/#0123456789abcdef0123456789abcdef/long-prefix
0000000000000000: 00000002 00000000 00010000 0005 01 20005 @lwmq1/0/bad-port
";

    #[test]
    fn parses_rows_and_paths() {
        let rows = parse_proc_net_unix(SAMPLE);
        assert_eq!(rows.len(), 8, "header skipped, every row kept");
        assert_eq!(
            rows[0],
            UnixSocketRow {
                flags: SO_ACCEPTCON,
                socket_type: 5,
                state: 1,
                inode: 123456,
                path: Some(b"@lwmq1/5555/co/prod/chan".to_vec()),
            }
        );
        assert_eq!(rows[1].inode, 4242, "padded inode column");
        assert_eq!(
            rows[1].path.as_deref(),
            Some(&b"@lwmq1/-/with space/and:@x"[..])
        );
        assert!(!rows[2].is_listening());
        assert_eq!(rows[4].path, None);
    }

    #[test]
    fn tolerates_any_bytes_and_junk() {
        let text = b"Num RefCount\n\
            0000000000000000: 00000002 00000000 00010000 0005 01 77 @lwmq1/-/\xff\x01\t\n\
            0000000000000000: 00000002 00000000 00000000 0005 01 78\n\
            junk after an unbound socket\n\
            0000000000000000: 00000002 00000000 00000000 0005 01 notanumber @x\n";
        let rows = parse_proc_net_unix(text);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].path.as_deref(), Some(&b"@lwmq1/-/\xff\x01\t"[..]));
        assert_eq!(rows[1].path, None);
        // Invalid UTF-8 is not a valid rendezvous name: skipped, no panic.
        assert!(lwmq_servers(&rows).is_empty());
    }

    #[test]
    fn names_with_newlines_are_rejoined() {
        let text = b"Num       RefCount Protocol Flags    Type St Inode Path\n\
            0000000000000000: 00000002 00000000 00010000 0005 01 90 @lwmq1/9/two\n\
            lines\n\
            \n\
            end\n\
            0000000000000000: 00000002 00000000 00010000 0005 01 91 @lwmq1/-/next\n";
        let servers = lwmq_servers(&parse_proc_net_unix(text));
        let got: Vec<_> = servers
            .iter()
            .map(|s| (s.address.as_str(), s.port))
            .collect();
        assert_eq!(got, [("next", None), ("two\nlines\n\nend", Some(9))]);
    }

    #[test]
    fn selects_listening_lwmq_servers() {
        let servers = lwmq_servers(&parse_proc_net_unix(SAMPLE));
        let got: Vec<_> = servers
            .iter()
            .map(|s| (s.address.as_str(), s.port, s.hashed, s.inode))
            .collect();
        assert_eq!(
            got,
            [
                ("co/prod/chan", Some(5555), false, 123456),
                ("long-prefix", None, true, 20004),
                ("with space/and:@x", None, false, 4242),
            ]
        );
        assert_eq!(servers[0].rendezvous, "@lwmq1/5555/co/prod/chan");
    }

    #[test]
    fn socket_link_targets() {
        assert_eq!(socket_inode(b"socket:[123]"), Some(123));
        assert_eq!(socket_inode(b"pipe:[123]"), None);
        assert_eq!(socket_inode(b"socket:[x]"), None);
    }

    #[test]
    fn empty_table_prints_header_only() {
        assert_eq!(render_table(&[]), "ADDRESS  PORT  PID  COMMAND\n");
    }
}
