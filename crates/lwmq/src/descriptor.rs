//! Transport descriptors: `scheme://rest`.
//!
//! A descriptor is split once, here, into its scheme and the part the
//! transport provider parses. The scheme is matched case-insensitively (it is
//! ASCII by definition); everything after `://` belongs to the provider.
//!
//! The `ipc://address[:port]` grammar lives in [`IpcAddress`]. Its rules, each
//! reported by its own [`DescriptorError`] variant:
//!
//! 1. the address is not empty;
//! 2. the address holds no NUL character;
//! 3. the address is shorter than [`IPC_ADDRESS_MAX_UTF16`] + 1 UTF-16 code
//!    units (119 at most; an astral character counts two); the scheme and
//!    the port do not count;
//! 4. `:` is reserved: the first colon ends the address, and what follows it
//!    must be a port;
//! 5. the port is ASCII decimal digits only, without sign, spaces or leading
//!    zeros (so each port has exactly one spelling), and in `1..=65535`.
//!
//! The address is case-sensitive; `ipc://a` and `ipc://a:1` are unrelated.
//!
//! The `tcp://host:port` grammar lives in [`TcpAddress`] (file
//! `descriptor/tcp.rs`), with its own rules and the same port rule.

mod tcp;

use std::fmt;

pub use tcp::{TcpAddress, TcpHost, TCP_HOST_NAME_MAX};

/// Longest accepted `ipc://` address, in UTF-16 code units ("less than 120").
pub const IPC_ADDRESS_MAX_UTF16: usize = 119;

/// Why a descriptor was refused. Each variant names the rule it enforces.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DescriptorError {
    /// There is no `://` after the scheme.
    #[error("descriptor {0:?} has no scheme: expected `scheme://...`, for example `ipc://company/product/channel`")]
    MissingScheme(String),
    /// The scheme is not one a transport provider is registered for.
    #[error("descriptor {descriptor:?}: no transport for scheme `{scheme}` (known: {known})")]
    UnknownScheme {
        /// The descriptor as given.
        descriptor: String,
        /// The scheme as given.
        scheme: String,
        /// The schemes that are registered, comma separated.
        known: String,
    },
    /// `ipc://` with nothing (or only a port) after it.
    #[error(
        "descriptor {0:?}: the ipc address is empty (rule: address must be at least one character)"
    )]
    EmptyAddress(String),
    /// The address contains U+0000.
    #[error(
        "descriptor {0:?}: the ipc address contains a NUL character (rule: no NUL in the address)"
    )]
    NulInAddress(String),
    /// The address is 120 UTF-16 code units or longer.
    #[error("descriptor {descriptor:?}: the ipc address is {units} UTF-16 code units long (rule: fewer than 120, so at most {max}; scheme and port do not count)")]
    AddressTooLong {
        /// The descriptor as given.
        descriptor: String,
        /// Its address length in UTF-16 code units.
        units: usize,
        /// The longest accepted length.
        max: usize,
    },
    /// A second colon: `:` is reserved as the address/port separator.
    #[error("descriptor {0:?}: `:` is reserved as the address/port separator and may appear only once (rule: no colon in the address)")]
    ColonInAddress(String),
    /// A colon with nothing after it.
    #[error("descriptor {0:?}: a colon must be followed by a port number in 1..=65535 (rule: port missing after `:`)")]
    MissingPort(String),
    /// The port text is not a plain decimal number.
    #[error("descriptor {descriptor:?}: port {port:?} is not a decimal number (rule: port is ASCII digits only, no sign, spaces or leading zeros)")]
    PortNotDecimal {
        /// The descriptor as given.
        descriptor: String,
        /// The port text as given.
        port: String,
    },
    /// The port is 0 or above 65535.
    #[error("descriptor {descriptor:?}: port {port} is out of range (rule: port in 1..=65535)")]
    PortOutOfRange {
        /// The descriptor as given.
        descriptor: String,
        /// The port text as given.
        port: String,
    },
    /// A UTF-16 descriptor (from the C API) holds a lone surrogate.
    #[error("descriptor is not valid UTF-16: lone surrogate at code unit {0} (rule: descriptors are well-formed UTF-16)")]
    InvalidUtf16(usize),
    /// `tcp://` without a host before the port.
    #[error("descriptor {0:?}: the tcp host is empty (rule: tcp://host:port with an IPv4 address, a bracketed IPv6 address or a host name; 0.0.0.0 or [::] for every interface)")]
    EmptyHost(String),
    /// `tcp://host` without `:port`.
    #[error("descriptor {0:?}: a tcp descriptor needs a port (rule: tcp://host:port, port in 1..=65535)")]
    PortRequired(String),
    /// An IPv6 address written without brackets.
    #[error("descriptor {0:?}: an IPv6 address must be written in brackets, e.g. tcp://[::1]:5555 (rule: ipv6 in brackets)")]
    Ipv6NeedsBrackets(String),
    /// A host that is neither an IP address nor a valid host name.
    #[error("descriptor {descriptor:?}: host {host:?} is not valid: {why} (rule: IPv4 dotted quad, [IPv6], or a host name of letters, digits, '-' and '.')")]
    InvalidHost {
        /// The descriptor as given.
        descriptor: String,
        /// The host text as given.
        host: String,
        /// What is wrong with it.
        why: &'static str,
    },
}

impl DescriptorError {
    /// A short, stable name of the broken rule (for logs, JSON and tests).
    pub fn rule(&self) -> &'static str {
        match self {
            Self::MissingScheme(_) => "missing-scheme",
            Self::UnknownScheme { .. } => "unknown-scheme",
            Self::EmptyAddress(_) => "empty-address",
            Self::NulInAddress(_) => "nul-in-address",
            Self::AddressTooLong { .. } => "address-too-long",
            Self::ColonInAddress(_) => "colon-in-address",
            Self::MissingPort(_) => "missing-port",
            Self::PortNotDecimal { .. } => "port-not-decimal",
            Self::PortOutOfRange { .. } => "port-out-of-range",
            Self::InvalidUtf16(_) => "invalid-utf16",
            Self::EmptyHost(_) => "empty-host",
            Self::PortRequired(_) => "port-required",
            Self::Ipv6NeedsBrackets(_) => "ipv6-needs-brackets",
            Self::InvalidHost { .. } => "invalid-host",
        }
    }
}

/// Splits `scheme://rest`, returning the lower-cased scheme and the rest.
pub fn split_scheme(descriptor: &str) -> Result<(String, &str), DescriptorError> {
    match descriptor.find("://") {
        Some(pos) if pos > 0 && descriptor[..pos].bytes().all(is_scheme_byte) => Ok((
            descriptor[..pos].to_ascii_lowercase(),
            &descriptor[pos + 3..],
        )),
        _ => Err(DescriptorError::MissingScheme(descriptor.to_owned())),
    }
}

fn is_scheme_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')
}

/// Decodes a NUL-free UTF-16 descriptor (as passed through the C API).
pub fn from_utf16(units: &[u16]) -> Result<String, DescriptorError> {
    let mut out = String::with_capacity(units.len());
    let mut pos = 0;
    for r in char::decode_utf16(units.iter().copied()) {
        match r {
            Ok(c) => {
                out.push(c);
                pos += c.len_utf16();
            }
            Err(_) => return Err(DescriptorError::InvalidUtf16(pos)),
        }
    }
    Ok(out)
}

/// A parsed `ipc://address[:port]` descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IpcAddress {
    address: String,
    port: Option<u16>,
}

impl IpcAddress {
    /// Parses a whole descriptor; the scheme must be `ipc` (any case).
    pub fn parse(descriptor: &str) -> Result<Self, DescriptorError> {
        let (scheme, rest) = split_scheme(descriptor)?;
        if scheme != "ipc" {
            return Err(DescriptorError::UnknownScheme {
                descriptor: descriptor.to_owned(),
                scheme,
                known: "ipc".to_owned(),
            });
        }
        Self::parse_rest(descriptor, rest)
    }

    /// Parses the part after `ipc://`. `descriptor` is only used in errors.
    #[doc(hidden)]
    pub fn parse_rest(descriptor: &str, rest: &str) -> Result<Self, DescriptorError> {
        let d = || descriptor.to_owned();
        let (address, port_text) = match rest.split_once(':') {
            Some((a, p)) => (a, Some(p)),
            None => (rest, None),
        };
        if address.is_empty() {
            return Err(DescriptorError::EmptyAddress(d()));
        }
        if address.contains('\0') {
            return Err(DescriptorError::NulInAddress(d()));
        }
        let units = address.encode_utf16().count();
        if units > IPC_ADDRESS_MAX_UTF16 {
            return Err(DescriptorError::AddressTooLong {
                descriptor: d(),
                units,
                max: IPC_ADDRESS_MAX_UTF16,
            });
        }
        let port = match port_text {
            None => None,
            Some(p) => Some(parse_port(descriptor, p)?),
        };
        Ok(Self {
            address: address.to_owned(),
            port,
        })
    }

    /// Builds an address from its parts, applying the same rules.
    pub fn new(address: &str, port: Option<u16>) -> Result<Self, DescriptorError> {
        let text = match port {
            Some(p) => format!("ipc://{address}:{p}"),
            None => format!("ipc://{address}"),
        };
        if address.contains(':') {
            return Err(DescriptorError::ColonInAddress(text));
        }
        if port == Some(0) {
            return Err(DescriptorError::PortOutOfRange {
                descriptor: text,
                port: "0".into(),
            });
        }
        Self::parse(&text)
    }

    /// The address part (the name of the channel).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The optional port.
    pub fn port(&self) -> Option<u16> {
        self.port
    }
}

pub(crate) fn parse_port(descriptor: &str, p: &str) -> Result<u16, DescriptorError> {
    if p.is_empty() {
        return Err(DescriptorError::MissingPort(descriptor.to_owned()));
    }
    if p.contains(':') {
        return Err(DescriptorError::ColonInAddress(descriptor.to_owned()));
    }
    let not_decimal = || DescriptorError::PortNotDecimal {
        descriptor: descriptor.to_owned(),
        port: p.to_owned(),
    };
    if !p.bytes().all(|b| b.is_ascii_digit()) || (p.len() > 1 && p.starts_with('0')) {
        return Err(not_decimal());
    }
    let out_of_range = || DescriptorError::PortOutOfRange {
        descriptor: descriptor.to_owned(),
        port: p.to_owned(),
    };
    if p.len() > 5 {
        return Err(out_of_range());
    }
    match p.parse::<u32>() {
        Ok(v @ 1..=65535) => Ok(v as u16),
        _ => Err(out_of_range()),
    }
}

/// Prefix of every abstract socket name lwmq binds; the digit is the
/// rendezvous protocol version.
pub const RENDEZVOUS_PREFIX: &str = "lwmq1/";

/// Longest abstract socket name Linux accepts (`sun_path` minus the NUL).
pub const ABSTRACT_NAME_MAX: usize = 107;

/// A decoded rendezvous name, as seen in the kernel's socket table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RendezvousName {
    /// The address, or its readable prefix when the name is hashed.
    pub address: String,
    /// The port, if the descriptor had one.
    pub port: Option<u16>,
    /// True when the address was too long and the name carries a hash.
    pub hashed: bool,
}

impl IpcAddress {
    /// The Linux abstract Unix socket name the server binds (without the
    /// leading NUL byte).
    ///
    /// Format: `lwmq1/<port or ->/<address>` when it fits in 107 bytes;
    /// otherwise `lwmq1/<port or ->/#<32 hex digits>/<address prefix>`, the
    /// hex being a 128-bit FNV-1a hash of the port and the UTF-8 address.
    /// The handshake carries the full address and port, so a hash collision
    /// is refused rather than misrouted.
    pub fn rendezvous_name(&self) -> Vec<u8> {
        let port = self.port.map_or_else(|| "-".to_owned(), |p| p.to_string());
        let plain = format!("{RENDEZVOUS_PREFIX}{port}/{}", self.address);
        if plain.len() <= ABSTRACT_NAME_MAX && !self.address.starts_with('#') {
            return plain.into_bytes();
        }
        let hash = fnv1a128(port.as_bytes(), self.address.as_bytes());
        let mut name = format!("{RENDEZVOUS_PREFIX}{port}/#{hash:032x}/");
        for c in self.address.chars() {
            if name.len() + c.len_utf8() > ABSTRACT_NAME_MAX {
                break;
            }
            name.push(c);
        }
        name.into_bytes()
    }
}

/// Longest name `memfd_create` accepts: `NAME_MAX` (255) minus the
/// `memfd:` prefix the kernel adds (`MFD_NAME_MAX_LEN` in `mm/memfd.c`).
pub const MEMFD_NAME_MAX: usize = 249;

/// Prefix of the name of every shared section lwmq creates (it shows in
/// `/proc/PID/maps` as `/memfd:lwmq:...`).
pub const SECTION_NAME_PREFIX: &str = "lwmq:";

impl IpcAddress {
    /// The name of the memfd holding a connection's shared section. It
    /// only labels the mapping in `/proc/PID/maps` and `/proc/PID/fd`; it
    /// names no file and need not be unique.
    ///
    /// Format: `lwmq:<descriptor>` when that fits in [`MEMFD_NAME_MAX`]
    /// bytes (every ASCII descriptor does); otherwise
    /// `lwmq:ipc://#<32 hex digits>/<address prefix>`, with the same hash as
    /// the hashed [rendezvous name](Self::rendezvous_name), so the two can
    /// be matched, and as much of the address as fits (whole characters).
    /// A valid address can take 119 × 3 bytes of UTF-8, more than the limit.
    #[doc(hidden)]
    pub fn section_name(&self) -> String {
        let plain = format!("{SECTION_NAME_PREFIX}{self}");
        if plain.len() <= MEMFD_NAME_MAX {
            return plain;
        }
        let port = self.port.map_or_else(|| "-".to_owned(), |p| p.to_string());
        let hash = fnv1a128(port.as_bytes(), self.address.as_bytes());
        let mut name = format!("{SECTION_NAME_PREFIX}ipc://#{hash:032x}/");
        for c in self.address.chars() {
            if name.len() + c.len_utf8() > MEMFD_NAME_MAX {
                break;
            }
            name.push(c);
        }
        name
    }
}

/// Decodes a name made by [`IpcAddress::rendezvous_name`]; `None` if it is
/// not one of ours.
pub fn parse_rendezvous_name(name: &[u8]) -> Option<RendezvousName> {
    let text = std::str::from_utf8(name).ok()?;
    let rest = text.strip_prefix(RENDEZVOUS_PREFIX)?;
    let (port, rest) = rest.split_once('/')?;
    let port = match port {
        "-" => None,
        p => Some(p.parse::<u16>().ok().filter(|p| *p != 0)?),
    };
    if let Some(hashed) = rest.strip_prefix('#') {
        let (hex, prefix) = hashed.split_once('/')?;
        if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        return Some(RendezvousName {
            address: prefix.to_owned(),
            port,
            hashed: true,
        });
    }
    Some(RendezvousName {
        address: rest.to_owned(),
        port,
        hashed: false,
    })
}

fn fnv1a128(port: &[u8], address: &[u8]) -> u128 {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013B;
    let mut h = OFFSET;
    for &b in port.iter().chain(b"/").chain(address) {
        h ^= u128::from(b);
        h = h.wrapping_mul(PRIME);
    }
    h
}

impl fmt::Display for IpcAddress {
    /// The canonical form: lower-case scheme, address as given, port without
    /// leading zeros.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(p) => write!(f, "ipc://{}:{p}", self.address),
            None => write!(f, "ipc://{}", self.address),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(s: &str) -> &'static str {
        IpcAddress::parse(s).unwrap_err().rule()
    }

    #[test]
    fn accepts_plain_and_ported() {
        let a = IpcAddress::parse("ipc://mycompany/myproduct/mychannel:1234").unwrap();
        assert_eq!(a.address(), "mycompany/myproduct/mychannel");
        assert_eq!(a.port(), Some(1234));
        let b = IpcAddress::parse("IPC://x").unwrap();
        assert_eq!(b.port(), None);
        assert_eq!(b.to_string(), "ipc://x");
        assert_ne!(
            IpcAddress::parse("ipc://a").unwrap(),
            IpcAddress::parse("ipc://a:1").unwrap()
        );
        assert_eq!(
            IpcAddress::parse("ipc://a:65535").unwrap().port(),
            Some(65535)
        );
        assert_eq!(IpcAddress::parse("iPc://a:1").unwrap().port(), Some(1));
    }

    #[test]
    fn rejects_each_rule() {
        assert_eq!(rule("ipc:/a"), "missing-scheme");
        assert_eq!(rule("a"), "missing-scheme");
        assert_eq!(rule("tcp://a"), "unknown-scheme");
        assert_eq!(rule("ipc://"), "empty-address");
        assert_eq!(rule("ipc://:12"), "empty-address");
        assert_eq!(rule("ipc://a\0b"), "nul-in-address");
        assert_eq!(rule("ipc://a:"), "missing-port");
        assert_eq!(rule("ipc://a:b:1"), "colon-in-address");
        assert_eq!(rule("ipc://a:1:2"), "colon-in-address");
        assert_eq!(rule("ipc://a:0"), "port-out-of-range");
        assert_eq!(rule("ipc://a:65536"), "port-out-of-range");
        assert_eq!(rule("ipc://a:999999"), "port-out-of-range");
        assert_eq!(rule("ipc://a:+1"), "port-not-decimal");
        assert_eq!(rule("ipc://a: 1"), "port-not-decimal");
        assert_eq!(rule("ipc://a:01"), "port-not-decimal");
        assert_eq!(rule("ipc://a:1x"), "port-not-decimal");
    }

    #[test]
    fn length_counts_utf16_units() {
        let ok = "a".repeat(119);
        assert!(IpcAddress::parse(&format!("ipc://{ok}:65535")).is_ok());
        let bad = "a".repeat(120);
        assert_eq!(rule(&format!("ipc://{bad}")), "address-too-long");
        // U+1F600 is two UTF-16 units: 59 of them plus one 'a' is 119.
        let astral = format!("{}a", "\u{1F600}".repeat(59));
        assert!(IpcAddress::parse(&format!("ipc://{astral}")).is_ok());
        let astral = "\u{1F600}".repeat(60);
        assert_eq!(rule(&format!("ipc://{astral}")), "address-too-long");
        // Non-ASCII BMP characters count one each.
        let e = "é".repeat(119);
        assert!(IpcAddress::parse(&format!("ipc://{e}")).is_ok());
    }

    #[test]
    fn utf16_decoding() {
        let units: Vec<u16> = "ipc://ü\u{1F600}".encode_utf16().collect();
        assert_eq!(from_utf16(&units).unwrap(), "ipc://ü\u{1F600}");
        let bad = [b'i' as u16, 0xD800, b'x' as u16];
        assert_eq!(from_utf16(&bad).unwrap_err().rule(), "invalid-utf16");
    }

    #[test]
    fn rendezvous_names() {
        let a = IpcAddress::parse("ipc://co/prod/chan:5555").unwrap();
        assert_eq!(a.rendezvous_name(), b"lwmq1/5555/co/prod/chan");
        let n = parse_rendezvous_name(&a.rendezvous_name()).unwrap();
        assert_eq!(
            (n.address.as_str(), n.port, n.hashed),
            ("co/prod/chan", Some(5555), false)
        );
        let b = IpcAddress::parse("ipc://co/prod/chan").unwrap();
        assert_eq!(b.rendezvous_name(), b"lwmq1/-/co/prod/chan");
        let long = IpcAddress::parse(&format!("ipc://{}", "\u{1F600}".repeat(59))).unwrap();
        let name = long.rendezvous_name();
        assert!(name.len() <= ABSTRACT_NAME_MAX);
        let n = parse_rendezvous_name(&name).unwrap();
        assert!(n.hashed && n.port.is_none());
        let other = IpcAddress::parse(&format!("ipc://{}a", "\u{1F600}".repeat(58))).unwrap();
        assert_ne!(other.rendezvous_name(), name);
        // An address that itself starts with '#' is always hashed, so it can
        // never be mistaken for a hashed name.
        let h = IpcAddress::parse("ipc://#x").unwrap();
        assert!(parse_rendezvous_name(&h.rendezvous_name()).unwrap().hashed);
        assert!(parse_rendezvous_name(b"other").is_none());
    }

    #[test]
    fn section_names_fit_the_memfd_limit() {
        let a = IpcAddress::parse("ipc://co/prod/chan:5555").unwrap();
        assert_eq!(a.section_name(), "lwmq:ipc://co/prod/chan:5555");
        // 119 CJK characters: 357 bytes of UTF-8, a valid address whose
        // plain name would not fit.
        let cjk: String = (0..119u32)
            .map(|i| char::from_u32(0x4E00 + i).unwrap())
            .collect();
        let long = IpcAddress::new(&cjk, Some(65535)).unwrap();
        let name = long.section_name();
        assert!(name.len() <= MEMFD_NAME_MAX, "{} bytes", name.len());
        assert!(name.starts_with("lwmq:ipc://#"), "{name}");
        assert!(name.ends_with('\u{4E00}') || name.contains('\u{4E00}'));
        // The hash is the rendezvous name's, and the port changes it.
        let r = String::from_utf8(long.rendezvous_name()).unwrap();
        let hex = &name["lwmq:ipc://#".len().."lwmq:ipc://#".len() + 32];
        assert!(r.contains(hex), "{r} vs {name}");
        let other = IpcAddress::new(&cjk, Some(1)).unwrap();
        assert_ne!(other.section_name(), name);
        // The kernel takes it (Miri has no memfd_create).
        if !cfg!(miri) {
            let fd = rustix::fs::memfd_create(name.as_str(), rustix::fs::MemfdFlags::CLOEXEC);
            assert!(fd.is_ok(), "{fd:?}");
            // The plain form of the same address is refused by the kernel,
            // which is what this naming avoids.
            let plain = format!("lwmq:{long}");
            let refused = rustix::fs::memfd_create(plain.as_str(), rustix::fs::MemfdFlags::CLOEXEC);
            assert!(refused.is_err());
        }
    }

    #[test]
    fn new_rejects_colon() {
        assert_eq!(
            IpcAddress::new("a:b", None).unwrap_err().rule(),
            "colon-in-address"
        );
        assert_eq!(
            IpcAddress::new("a", Some(0)).unwrap_err().rule(),
            "port-out-of-range"
        );
        assert_eq!(
            IpcAddress::new("a", Some(7)).unwrap().to_string(),
            "ipc://a:7"
        );
    }
}
