//! `lwmq check URI`: validates a descriptor and shows what it maps to: for
//! `ipc://`, the kernel rendezvous name a server binds; for `tcp://`, the
//! host, its kind, the port, and the addresses a host name resolves to
//! now.

use lwmq::internals::descriptor::{parse_rendezvous_name, split_scheme};
use lwmq::transport::{DescriptorError, IpcAddress, TcpAddress, TcpHost};
use serde_json::json;

use crate::failure::{emit, printable, Failure};

/// Arguments of `lwmq check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The descriptor, e.g. `ipc://company/product/channel:5555` or
    /// `tcp://192.168.1.20:5555`.
    pub uri: String,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// What a valid descriptor maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// The canonical descriptor.
    pub canonical: String,
    /// The address (channel name).
    pub address: String,
    /// The port, if any.
    pub port: Option<u16>,
    /// The abstract socket name as `ss -xl` shows it: `@` + name.
    pub rendezvous: String,
    /// Whether the name carries a hash because the address is too long.
    pub hashed: bool,
}

/// Validates `uri`; on error returns the library's error (which names its rule).
pub fn check(uri: &str) -> Result<Checked, DescriptorError> {
    let addr = IpcAddress::parse(uri)?;
    let name = addr.rendezvous_name();
    let hashed = parse_rendezvous_name(&name).is_some_and(|n| n.hashed);
    Ok(Checked {
        canonical: addr.to_string(),
        address: addr.address().to_owned(),
        port: addr.port(),
        rendezvous: format!("@{}", String::from_utf8_lossy(&name)),
        hashed,
    })
}

/// What a valid `tcp://` descriptor maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpChecked {
    /// The canonical descriptor.
    pub canonical: String,
    /// The host as written canonically.
    pub host: String,
    /// `ipv4`, `ipv6` or `name`.
    pub host_kind: &'static str,
    /// The port.
    pub port: u16,
    /// For a host name: the addresses it resolves to now (or the
    /// resolver's error); empty for an IP literal.
    pub resolved: Result<Vec<String>, String>,
}

/// Validates a `tcp://` descriptor and resolves its host name, if any.
pub fn check_tcp(uri: &str) -> Result<TcpChecked, DescriptorError> {
    use std::net::ToSocketAddrs;
    let a = TcpAddress::parse(uri)?;
    let host_kind = match a.host() {
        TcpHost::V4(_) => "ipv4",
        TcpHost::V6(_) => "ipv6",
        TcpHost::Name(_) => "name",
    };
    let resolved = match a.host() {
        TcpHost::Name(n) => (n.as_str(), a.port())
            .to_socket_addrs()
            .map(|i| i.map(|s| s.ip().to_string()).collect())
            .map_err(|e| e.to_string()),
        _ => Ok(Vec::new()),
    };
    Ok(TcpChecked {
        canonical: a.to_string(),
        host: a.host().to_string(),
        host_kind,
        port: a.port(),
        resolved,
    })
}

fn run_tcp(args: &CheckArgs) -> Result<(), Failure> {
    let c = match check_tcp(&args.uri) {
        Ok(c) => c,
        Err(e) => return invalid(args, &e),
    };
    if args.json {
        let v = json!({
            "canonical": c.canonical,
            "scheme": "tcp",
            "host": c.host,
            "host_kind": c.host_kind,
            "port": c.port,
            "resolved": c.resolved.as_ref().ok(),
            "resolve_error": c.resolved.as_ref().err(),
        });
        return emit(&format!("{v}\n"));
    }
    let resolved = match &c.resolved {
        Ok(v) if v.is_empty() => "- (an IP address)".to_owned(),
        Ok(v) => v.join(", "),
        Err(e) => format!("not now: {e}"),
    };
    emit(&format!(
        "canonical   {}\nhost        {} ({})\nport        {}\nresolves to {}\n",
        printable(&c.canonical),
        printable(&c.host),
        c.host_kind,
        c.port,
        printable(&resolved),
    ))
}

fn invalid(args: &CheckArgs, e: &DescriptorError) -> Result<(), Failure> {
    if args.json {
        emit(&format!(
            "{}\n",
            json!({"error": e.to_string(), "rule": e.rule()})
        ))?;
    }
    Err(Failure::usage(format!(
        "invalid descriptor: {} [{}]",
        printable(&e.to_string()),
        e.rule()
    )))
}

/// Runs `lwmq check`.
pub fn run(args: &CheckArgs) -> Result<(), Failure> {
    if matches!(split_scheme(&args.uri), Ok((s, _)) if s == "tcp") {
        return run_tcp(args);
    }
    match check(&args.uri) {
        Ok(c) if args.json => {
            let v = json!({
                "canonical": c.canonical,
                "address": c.address,
                "port": c.port,
                "rendezvous": c.rendezvous,
                "hashed": c.hashed,
            });
            emit(&format!("{v}\n"))
        }
        Ok(c) => {
            let port = c.port.map_or_else(|| "-".to_owned(), |p| p.to_string());
            let hashed = if c.hashed {
                "yes (address too long for the name: hash + prefix)"
            } else {
                "no"
            };
            emit(&format!(
                "canonical   {}\naddress     {}\nport        {port}\nrendezvous  {}\nhashed      {hashed}\n",
                printable(&c.canonical),
                printable(&c.address),
                printable(&c.rendezvous),
            ))
        }
        Err(e) => invalid(args, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_to_rendezvous_name() {
        let c = check("IPC://co/prod/chan:5555").unwrap();
        assert_eq!(c.canonical, "ipc://co/prod/chan:5555");
        assert_eq!(c.rendezvous, "@lwmq1/5555/co/prod/chan");
        assert!(!c.hashed);
        let long = check(&format!("ipc://{}", "x".repeat(119))).unwrap();
        assert!(long.hashed && long.rendezvous.starts_with("@lwmq1/-/#"));
    }

    #[test]
    fn tcp_descriptors_show_host_and_port() {
        let c = check_tcp("TCP://[0::1]:5555").unwrap();
        assert_eq!(c.canonical, "tcp://[::1]:5555");
        assert_eq!((c.host_kind, c.port), ("ipv6", 5555));
        let c = check_tcp("tcp://localhost:7").unwrap();
        assert_eq!(c.host_kind, "name");
        assert!(c.resolved.is_ok_and(|v| !v.is_empty()));
        assert_eq!(check_tcp("tcp://h").unwrap_err().rule(), "port-required");
    }
}
