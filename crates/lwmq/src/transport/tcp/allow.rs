//! The peer allow-list of a `tcp://` transport: networks in CIDR notation
//! (`10.0.0.0/8`, `2001:db8::/32`, or a single address), checked against
//! the peer's address on both sides of a connection before any byte of its
//! handshake is read. An empty list (the default) allows every peer.
//!
//! An IPv4 peer that reaches an IPv6 socket shows up as an IPv4-mapped
//! address (`::ffff:a.b.c.d`); it is compared as the IPv4 address it is,
//! so `127.0.0.0/8` matches it whichever socket family accepted it.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// One network: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

/// A network that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a network: {why} (rule: ADDRESS or ADDRESS/PREFIX, e.g. 10.0.0.0/8 or 2001:db8::/32)")]
pub struct IpNetError {
    /// The text as given.
    pub text: String,
    /// What is wrong.
    pub why: &'static str,
}

impl IpNet {
    /// The network of `addr` with `prefix` leading bits; `None` if the
    /// prefix is longer than the address, or if bits beyond it are set
    /// (`10.0.0.1/8` is refused: write `10.0.0.0/8`).
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Self> {
        let bits = match addr {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        if prefix > bits {
            return None;
        }
        let net = Self { addr, prefix };
        (mask(&addr, prefix) == bits_of(&addr)).then_some(net)
    }

    /// True if `ip` lies in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = unmap(ip);
        let same_family = matches!(
            (self.addr, ip),
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_))
        );
        same_family && mask(&ip, self.prefix) == bits_of(&self.addr)
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it carries.
fn unmap(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The address as a 128-bit number (IPv4 in the low 32 bits).
fn bits_of(a: &IpAddr) -> u128 {
    match a {
        IpAddr::V4(v4) => u128::from(u32::from(*v4)),
        IpAddr::V6(v6) => u128::from(*v6),
    }
}

/// The address with only its first `prefix` bits kept.
fn mask(a: &IpAddr, prefix: u8) -> u128 {
    let bits: u32 = match a {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    };
    let host_bits = bits - u32::from(prefix).min(bits);
    let keep = if host_bits >= 128 {
        0
    } else {
        !0u128 << host_bits
    };
    bits_of(a) & keep
}

impl FromStr for IpNet {
    type Err = IpNetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |why| IpNetError {
            text: s.to_owned(),
            why,
        };
        let (addr_text, prefix) = match s.split_once('/') {
            Some((a, p)) => {
                if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || p.len() > 3 {
                    return Err(err("the prefix is not a decimal number"));
                }
                (
                    a,
                    Some(p.parse::<u8>().map_err(|_| err("prefix too long"))?),
                )
            }
            None => (s, None),
        };
        let addr_text = addr_text
            .strip_prefix('[')
            .and_then(|a| a.strip_suffix(']'))
            .unwrap_or(addr_text);
        let addr: IpAddr = addr_text
            .parse()
            .map_err(|_| err("not an IPv4 or IPv6 address"))?;
        let full = match addr {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        let prefix = prefix.unwrap_or(full);
        if prefix > full {
            return Err(err("the prefix is longer than the address"));
        }
        Self::new(addr, prefix).ok_or_else(|| err("bits are set after the prefix"))
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Which peer addresses a `tcp://` transport talks to
/// ([`Endpoint::allow_peers`](crate::Endpoint::allow_peers)).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AllowList {
    nets: Vec<IpNet>,
}

impl AllowList {
    /// Every peer (the default).
    pub fn any() -> Self {
        Self::default()
    }

    /// Only peers in these networks.
    pub fn only(nets: impl IntoIterator<Item = IpNet>) -> Self {
        Self {
            nets: nets.into_iter().collect(),
        }
    }

    /// Parses networks such as `["127.0.0.0/8", "::1"]`.
    pub fn parse<S: AsRef<str>>(nets: &[S]) -> Result<Self, IpNetError> {
        nets.iter()
            .map(|s| s.as_ref().trim().parse())
            .collect::<Result<Vec<_>, _>>()
            .map(Self::only)
    }

    /// True if the list allows `ip` (always, when the list is empty).
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.nets.is_empty() || self.nets.iter().any(|n| n.contains(ip))
    }

    /// The networks, empty for "every peer".
    pub fn nets(&self) -> &[IpNet] {
        &self.nets
    }
}

impl fmt::Display for AllowList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.nets.is_empty() {
            return f.write_str("any peer");
        }
        for (i, n) in self.nets.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{n}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks_contain_their_addresses() {
        let n: IpNet = "10.0.0.0/8".parse().unwrap();
        assert!(n.contains(ip("10.255.0.1")));
        assert!(!n.contains(ip("11.0.0.1")));
        assert!(n.contains(ip("::ffff:10.1.2.3")), "IPv4-mapped");
        assert!(!n.contains(ip("::1")));
        let h: IpNet = "127.0.0.1".parse().unwrap();
        assert_eq!(h.to_string(), "127.0.0.1/32");
        assert!(h.contains(ip("127.0.0.1")) && !h.contains(ip("127.0.0.2")));
        let v6: IpNet = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:1::5")));
        assert!(!v6.contains(ip("2001:db9::")));
        assert!(!v6.contains(ip("10.0.0.1")));
        let all4: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(all4.contains(ip("8.8.8.8")) && !all4.contains(ip("::2")));
        let all6: IpNet = "::/0".parse().unwrap();
        assert!(all6.contains(ip("::2")));
        let one: IpNet = "[::1]/128".parse().unwrap();
        assert!(one.contains(ip("::1")));
    }

    #[test]
    fn bad_networks_say_why() {
        for (s, why) in [
            ("10.0.0.1/8", "bits are set"),
            ("10.0.0.0/33", "longer than the address"),
            ("::/129", "longer than the address"),
            ("10.0.0.0/", "not a decimal"),
            ("10.0.0.0/-1", "not a decimal"),
            ("10.0.0.0/0008", "not a decimal"),
            ("host/8", "not an IPv4 or IPv6"),
            ("", "not an IPv4 or IPv6"),
        ] {
            let e = s.parse::<IpNet>().unwrap_err();
            assert!(e.to_string().contains(why), "{s}: {e}");
        }
    }

    #[test]
    fn an_empty_list_allows_everyone() {
        assert!(AllowList::any().allows(ip("1.2.3.4")));
        let l = AllowList::parse(&["127.0.0.0/8", "::1"]).unwrap();
        assert!(l.allows(ip("127.0.0.1")) && l.allows(ip("::1")));
        assert!(!l.allows(ip("192.168.1.1")));
        assert_eq!(l.to_string(), "127.0.0.0/8, ::1/128");
        assert!(AllowList::parse(&["nope"]).is_err());
    }
}
