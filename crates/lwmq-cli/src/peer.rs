//! Opening a channel for the measuring commands: role choice (`auto` tries
//! SERVER, then CLIENT) and transport options.

use lwmq::{Directions, RawChannel, Role, Transport, TransportError, TransportId};

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

/// Opens a raw channel with one transport.
pub fn open_channel(
    uri: &str,
    buffer_size: usize,
    buffers: i64,
    dirs: Directions,
    role: RoleArg,
    configure: impl Fn(&dyn Transport) -> Result<(), TransportError>,
) -> Result<RawChannel, Failure> {
    let (s, r) = dirs.buffer_counts(buffers);
    let mut ch = RawChannel::new();
    ch.add_transport(uri, buffer_size, s, r, dirs)
        .map_err(|e| match e {
            lwmq::ChannelError::Transport(TransportError::Descriptor(d)) => {
                Failure::usage(format!("invalid descriptor: {d}"))
            }
            lwmq::ChannelError::Transport(TransportError::Config { .. }) => {
                Failure::usage(e.to_string())
            }
            other => Failure::runtime(other.to_string()),
        })?;
    configure(
        ch.transport(TransportId(0))
            .map_err(|e| Failure::runtime(e.to_string()))?,
    )
    .map_err(|e| Failure::usage(e.to_string()))?;
    let first = match role {
        RoleArg::Client => Role::Client,
        _ => Role::Server,
    };
    match ch.open(first) {
        Ok(()) => Ok(ch),
        Err(lwmq::ChannelError::Transport(TransportError::AddressInUse(_)))
            if role == RoleArg::Auto =>
        {
            ch.open(Role::Client)
                .map_err(|e| Failure::runtime(e.to_string()))?;
            Ok(ch)
        }
        Err(e) => Err(Failure::runtime(e.to_string())),
    }
}
