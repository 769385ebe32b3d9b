//! The `tcp://host:port` grammar.
//!
//! Rules, each reported by its own [`DescriptorError`] variant:
//!
//! 1. the host is not empty (`empty-host`);
//! 2. the port is present (`port-required`): a server binds it, a client
//!    connects to it, and neither may pick one by itself;
//! 3. the port follows the `ipc://` port rule: ASCII decimal digits only, no
//!    sign, spaces or leading zeros, in `1..=65535` (`port-not-decimal`,
//!    `port-out-of-range`);
//! 4. an IPv6 address is written in brackets, `[::1]`, so that its colons
//!    cannot be mistaken for the port separator (`ipv6-needs-brackets`);
//! 5. the host is a dotted-quad IPv4 address (four decimal numbers
//!    0..=255 without leading zeros), a bracketed IPv6 address (no zone
//!    index), or a host name: labels of ASCII letters, digits and `-`,
//!    1..=63 characters, not starting or ending with `-`, separated by
//!    single dots, [`TCP_HOST_NAME_MAX`] characters at most, no trailing
//!    dot (`invalid-host`). A host of digits and dots only must be a valid
//!    IPv4 address: `tcp://1.2.3:80` is refused rather than looked up.
//!
//! `0.0.0.0` and `[::]` mean "every interface" for a server; the
//! specification leaves the choice of interface to the descriptor, so there
//! is no implicit default. Host names are case-insensitive and stored in
//! lower case; the canonical form of an IPv6 address is the compressed one
//! of RFC 5952 (`[::1]`), so that each endpoint has one spelling.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{parse_port, split_scheme, DescriptorError};

/// Longest host name accepted (the DNS limit for a name without its
/// trailing dot).
pub const TCP_HOST_NAME_MAX: usize = 253;

/// The host part of a `tcp://` descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TcpHost {
    /// An IPv4 address.
    V4(Ipv4Addr),
    /// An IPv6 address (written in brackets).
    V6(Ipv6Addr),
    /// A host name, lower case, resolved when the transport binds or
    /// connects.
    Name(String),
}

impl TcpHost {
    /// The address if the host is an IP literal.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Self::V4(a) => Some(IpAddr::V4(*a)),
            Self::V6(a) => Some(IpAddr::V6(*a)),
            Self::Name(_) => None,
        }
    }
}

impl fmt::Display for TcpHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::V4(a) => write!(f, "{a}"),
            Self::V6(a) => write!(f, "[{a}]"),
            Self::Name(n) => f.write_str(n),
        }
    }
}

/// A parsed `tcp://host:port` descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TcpAddress {
    host: TcpHost,
    port: u16,
}

impl TcpAddress {
    /// Parses a whole descriptor; the scheme must be `tcp` (any case).
    pub fn parse(descriptor: &str) -> Result<Self, DescriptorError> {
        let (scheme, rest) = split_scheme(descriptor)?;
        if scheme != "tcp" {
            return Err(DescriptorError::UnknownScheme {
                descriptor: descriptor.to_owned(),
                scheme,
                known: "tcp".to_owned(),
            });
        }
        Self::parse_rest(descriptor, rest)
    }

    /// Parses the part after `tcp://`. `descriptor` is only used in errors.
    #[doc(hidden)]
    pub fn parse_rest(descriptor: &str, rest: &str) -> Result<Self, DescriptorError> {
        let d = || descriptor.to_owned();
        let invalid = |host: &str, why| DescriptorError::InvalidHost {
            descriptor: d(),
            host: host.to_owned(),
            why,
        };
        let (host, port_text) = if let Some(inner) = rest.strip_prefix('[') {
            let Some((v6, after)) = inner.split_once(']') else {
                return Err(invalid(rest, "an opening '[' without its ']'"));
            };
            let host = match v6.parse::<Ipv6Addr>() {
                Ok(a) => TcpHost::V6(a),
                Err(_) if v6.contains('%') => {
                    return Err(invalid(v6, "zone indexes (%...) are not supported"))
                }
                Err(_) => return Err(invalid(v6, "not an IPv6 address")),
            };
            match after.strip_prefix(':') {
                Some(p) => (host, p),
                None if after.is_empty() => return Err(DescriptorError::PortRequired(d())),
                None => return Err(invalid(rest, "text between ']' and the port")),
            }
        } else {
            let (host, port) = match rest.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            };
            if host.contains(':') || (port.is_none() && rest.parse::<Ipv6Addr>().is_ok()) {
                return Err(DescriptorError::Ipv6NeedsBrackets(d()));
            }
            if host.is_empty() {
                return Err(DescriptorError::EmptyHost(d()));
            }
            let Some(port) = port else {
                return Err(DescriptorError::PortRequired(d()));
            };
            (parse_host(host).map_err(|why| invalid(host, why))?, port)
        };
        let port = parse_port(descriptor, port_text)?;
        Ok(Self { host, port })
    }

    /// Builds an address from its parts, applying the same rules.
    pub fn new(host: &TcpHost, port: u16) -> Result<Self, DescriptorError> {
        Self::parse(&format!("tcp://{host}:{port}"))
    }

    /// The host.
    pub fn host(&self) -> &TcpHost {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

/// An IPv4 literal or a host name (the text between `tcp://` and the port).
fn parse_host(host: &str) -> Result<TcpHost, &'static str> {
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        // Rust's parser takes exactly four decimal parts of 0..=255 and
        // refuses leading zeros (which C's inet_aton would read as octal).
        return host.parse::<Ipv4Addr>().map(TcpHost::V4).map_err(|_| {
            "digits and dots only, but not an IPv4 address (four numbers 0..=255, no leading zeros)"
        });
    }
    if host.len() > TCP_HOST_NAME_MAX {
        return Err("longer than 253 characters");
    }
    if host.ends_with('.') {
        return Err("a trailing dot (write the name without it)");
    }
    for label in host.split('.') {
        if label.is_empty() {
            return Err("an empty label (two dots in a row, or a leading dot)");
        }
        if label.len() > 63 {
            return Err("a label longer than 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err("a character other than ASCII letters, digits, '-' and '.'");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a label starting or ending with '-'");
        }
    }
    Ok(TcpHost::Name(host.to_ascii_lowercase()))
}

impl fmt::Display for TcpAddress {
    /// The canonical form: `tcp://host:port`, lower-case scheme and name,
    /// compressed IPv6 in brackets, port without leading zeros.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tcp://{}:{}", self.host, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(s: &str) -> &'static str {
        TcpAddress::parse(s).unwrap_err().rule()
    }

    fn canon(s: &str) -> String {
        TcpAddress::parse(s).unwrap().to_string()
    }

    #[test]
    fn accepts_ipv4_ipv6_and_names() {
        assert_eq!(canon("tcp://127.0.0.1:5555"), "tcp://127.0.0.1:5555");
        assert_eq!(canon("TCP://0.0.0.0:1"), "tcp://0.0.0.0:1");
        assert_eq!(canon("tcp://[::1]:80"), "tcp://[::1]:80");
        assert_eq!(canon("tcp://[0:0:0:0:0:0:0:1]:80"), "tcp://[::1]:80");
        assert_eq!(canon("tcp://[::]:65535"), "tcp://[::]:65535");
        assert_eq!(
            canon("tcp://[::ffff:1.2.3.4]:9"),
            "tcp://[::ffff:1.2.3.4]:9"
        );
        assert_eq!(canon("tcp://LocalHost:7"), "tcp://localhost:7");
        assert_eq!(canon("tcp://a-b.example.org:7"), "tcp://a-b.example.org:7");
        assert_eq!(canon("tcp://1host:7"), "tcp://1host:7");
        let a = TcpAddress::parse("tcp://10.1.2.3:4").unwrap();
        assert_eq!(a.port(), 4);
        assert_eq!(a.host().ip(), Some("10.1.2.3".parse().unwrap()));
        assert_eq!(TcpAddress::new(a.host(), 9).unwrap().port(), 9);
        let n = TcpAddress::parse("tcp://h:4").unwrap();
        assert_eq!(n.host().ip(), None);
        assert_eq!(
            TcpAddress::parse(&format!("tcp://{}:1", "a".repeat(63))).map(|a| a.port()),
            Ok(1)
        );
        let long = vec!["a".repeat(63); 4].join(".");
        assert_eq!(long.len(), 255);
        assert_eq!(rule(&format!("tcp://{long}:1")), "invalid-host");
        let ok = format!("{}.{}", vec!["a".repeat(63); 3].join("."), "b".repeat(61));
        assert_eq!(ok.len(), 253);
        assert!(TcpAddress::parse(&format!("tcp://{ok}:1")).is_ok());
    }

    #[test]
    fn rejects_each_rule() {
        assert_eq!(rule("tcp://:80"), "empty-host");
        assert_eq!(rule("tcp://"), "empty-host");
        assert_eq!(rule("tcp://host"), "port-required");
        assert_eq!(rule("tcp://1.2.3.4"), "port-required");
        assert_eq!(rule("tcp://[::1]"), "port-required");
        assert_eq!(rule("tcp://host:"), "missing-port");
        assert_eq!(rule("tcp://host:0"), "port-out-of-range");
        assert_eq!(rule("tcp://host:65536"), "port-out-of-range");
        assert_eq!(rule("tcp://host:080"), "port-not-decimal");
        assert_eq!(rule("tcp://host:80/path"), "port-not-decimal");
        assert_eq!(rule("tcp://host:+80"), "port-not-decimal");
        assert_eq!(rule("tcp://::1:80"), "ipv6-needs-brackets");
        assert_eq!(rule("tcp://::1"), "ipv6-needs-brackets");
        assert_eq!(rule("tcp://fe80::1:80"), "ipv6-needs-brackets");
        assert_eq!(rule("tcp://[::1:80"), "invalid-host");
        assert_eq!(rule("tcp://[::1]x:80"), "invalid-host");
        assert_eq!(rule("tcp://[fe80::1%eth0]:80"), "invalid-host");
        assert_eq!(rule("tcp://[1.2.3.4]:80"), "invalid-host");
        assert_eq!(rule("tcp://1.2.3:80"), "invalid-host");
        assert_eq!(rule("tcp://01.2.3.4:80"), "invalid-host");
        assert_eq!(rule("tcp://256.1.1.1:80"), "invalid-host");
        assert_eq!(rule("tcp://a..b:80"), "invalid-host");
        assert_eq!(rule("tcp://.a:80"), "invalid-host");
        assert_eq!(rule("tcp://a.:80"), "invalid-host");
        assert_eq!(rule("tcp://-a:80"), "invalid-host");
        assert_eq!(rule("tcp://a-:80"), "invalid-host");
        assert_eq!(rule("tcp://a_b:80"), "invalid-host");
        assert_eq!(rule("tcp://a b:80"), "invalid-host");
        assert_eq!(rule("tcp://é:80"), "invalid-host");
        assert_eq!(rule("tcp://user@host:80"), "invalid-host");
        assert_eq!(rule(&format!("tcp://{}:1", "a".repeat(64))), "invalid-host");
        assert_eq!(rule("ipc://x"), "unknown-scheme");
        let e = TcpAddress::parse("tcp://::1:80").unwrap_err().to_string();
        assert!(e.contains("tcp://[::1]:5555"), "{e}");
    }

    #[test]
    fn the_port_rule_is_the_ipc_one() {
        for p in ["1", "80", "65535"] {
            assert!(TcpAddress::parse(&format!("tcp://h:{p}")).is_ok());
        }
        for p in ["0", "00", "-1", " 1", "1 ", "99999", "1e3"] {
            assert!(TcpAddress::parse(&format!("tcp://h:{p}")).is_err(), "{p}");
        }
    }
}
