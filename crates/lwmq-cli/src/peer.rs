//! Opening a channel for the measuring commands: role choice (`auto` tries
//! SERVER, then CLIENT) and transport options.

use std::time::Duration;

use lwmq::{Endpoint, RawChannel, Role, TransportView};

use crate::failure::Failure;

/// `--role`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RoleArg {
    /// Try SERVER; if the address is taken, CLIENT.
    Auto,
    /// Create (bind).
    Server,
    /// Connect (in the background).
    Client,
}

impl RoleArg {
    /// The role to open as first (`auto` tries a server first).
    pub fn first(self) -> Role {
        match self {
            RoleArg::Client => Role::Client,
            _ => Role::Server,
        }
    }
}

/// The directions a command's transport uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dirs {
    /// Send only.
    Send,
    /// Receive only.
    Receive,
    /// Both.
    Both,
}

impl Dirs {
    /// `(send buffers, receive buffers)`: `n` for each direction used, 0
    /// for the other.
    pub fn counts(self, n: u32) -> (u32, u32) {
        match self {
            Dirs::Send => (n, 0),
            Dirs::Receive => (0, n),
            Dirs::Both => (n, n),
        }
    }
}

/// The endpoint of a measuring command; a bad descriptor or setting is a
/// usage error naming the rule.
pub fn endpoint(
    uri: &str,
    buffer_size: usize,
    buffers: u32,
    dirs: Dirs,
    spin: Option<Duration>,
) -> Result<Endpoint, Failure> {
    let (s, r) = dirs.counts(buffers);
    let mut ep = Endpoint::new(uri)
        .map_err(|d| Failure::usage(format!("invalid descriptor: {d}")))?
        .buffer_size(buffer_size)
        .send_buffers(s)
        .receive_buffers(r)
        .retry_interval(crate::waiting::RETRY_INTERVAL);
    if let Some(spin) = spin {
        ep = ep.spin(spin);
    }
    ep.check().map_err(|e| Failure::usage(e.to_string()))?;
    Ok(ep)
}

/// The raw channel's first (and, for these commands, only) transport.
pub fn first_transport(ch: &RawChannel) -> Result<TransportView<'_>, Failure> {
    ch.transports()
        .next()
        .ok_or_else(|| Failure::runtime("the channel has no transport"))
}

/// Opens a raw channel with the one transport `ep`, as `role`.
pub fn open_channel(ep: Endpoint, role: RoleArg) -> Result<RawChannel, Failure> {
    let b = RawChannel::builder()
        .transport(ep)
        .map_err(|e| Failure::usage(e.to_string()))?;
    match b.open(role.first()) {
        Ok(ch) => Ok(ch),
        Err(e) if e.is_address_in_use() && role == RoleArg::Auto => e
            .into_builder()
            .open(Role::Client)
            .map_err(|e| Failure::runtime(e.to_string())),
        Err(e) => Err(Failure::runtime(e.to_string())),
    }
}
