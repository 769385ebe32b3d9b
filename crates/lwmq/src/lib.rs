//! lwmq: LwMQ messaging for Linux.
//!
//! Brokerless, one-to-one channels between processes. A channel reaches
//! its peer through transports named by a descriptor; the centrepiece is
//! `ipc://address[:port]`, which moves messages through shared memory (no
//! file is created, the kernel tells each side when the other dies, and
//! either side may start first); `tcp://host:port` gives the same channels
//! and semantics between machines (on a trusted network: plain TCP, no
//! authentication or encryption).
//!
//! # Quick start
//!
//! Two programs open a channel on the same address, one as server and one
//! as client (or both with [`ChannelBuilder::open_server_or_client`]). Each
//! posts to a queue and receives from the channel:
//!
//! ```
//! use std::time::Duration;
//! use lwmq::{Channel, Endpoint, Message, Priority, Role, Timeout};
//!
//! # type BoxError = Box<dyn std::error::Error + Send + Sync>;
//! # let address = format!("ipc://lwmq-doc/quick-start/{}", std::process::id());
//! # let client_address = address.clone();
//! # let client = std::thread::spawn(move || -> Result<(), BoxError> {
//! #     let mut b = Channel::builder().transport(Endpoint::new(client_address)?)?;
//! #     let replies = b.mono_queue(Priority::Normal)?;
//! #     let mut ch = b.open(Role::Client)?;
//! #     let request = ch.receive(Duration::from_secs(20))?;
//! #     let mut reply = Message::from(b"pong: ");
//! #     reply.extend(request.into_frames());
//! #     replies.post(reply, Timeout::NEVER)?;
//! #     ch.close(Duration::from_secs(20))?;
//! #     Ok(())
//! # });
//! // The server (the client, in another process, does the same with
//! // Role::Client and answers each request).
//! let mut b = Channel::builder().transport(Endpoint::new(address)?)?;
//! let queue = b.mono_queue(Priority::Normal)?;
//! let mut ch = b.open(Role::Server)?;
//!
//! queue.post(Message::from(b"ping"), Timeout::NEVER)?; // waits only at the high-water mark
//!
//! let reply = ch.receive(Duration::from_secs(20))?;
//! assert_eq!(reply.frame_count(), 2);
//! assert_eq!(reply.frame(1).unwrap().data(), b"ping");
//! # client.join().unwrap()?;
//! # Ok::<(), BoxError>(())
//! ```
//!
//! Runnable two-process programs are in the repository's `examples/`
//! (`req_rep`, `raw_buffers`, `priorities_tags`, and `records` with the
//! `serde` feature).
//!
//! # What is where
//!
//! - [`ChannelBuilder`] → [`Channel`]: messaging. Transports are
//!   [`Endpoint`]s; queues are [`MonoQueue`] (one posting thread, the
//!   fastest) and [`MultiQueue`] (any threads, tags, LwMQ's discard
//!   limits), each with a [`Priority`]. Posting waits at a queue's
//!   high-water mark (1000 messages by default; [`QueueOptions`]).
//!   Receiving: [`Channel::receive`], [`Channel::receive_with`] (in place),
//!   [`Channel::receive_batch`], [`Channel::iter`]; [`Interrupter`] wakes
//!   a blocked receive.
//! - [`RawChannelBuilder`] → [`RawChannel`]: direct access to transport
//!   buffers, no messages ([`raw`]).
//! - [`message`]: [`Message`], its [`Frame`](message::Frame)s (made from
//!   `Bytes`, `Vec<u8>`, `&'static [u8]`, `String`..., copied inline, or
//!   caller memory with hooks) and timestamps; reading owned and lent
//!   messages alike ([`MessageRead`](message::MessageRead)).
//! - `codec` (cargo feature `serde`): a serde value as a one-frame
//!   message (`Message::encode`, `Message::decode`), in postcard's format.
//! - [`transport`]: [`Endpoint`], connection state and counters
//!   ([`TransportView`]), descriptor checking.
//! - [`Timeout`]: every call that waits takes `impl Into<Timeout>`, so a
//!   [`Duration`](std::time::Duration) works as it is.
//!
//! Every error is an enum whose variants name the rule broken and the
//! values involved; a failed post gives the message back. The design is
//! in the repository's `docs/` (`rust-api.md`, `messaging.md`,
//! `ipc-protocol.md`, `tcp-protocol.md`).
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "async")]
#[allow(unsafe_code)]
pub mod asynk;
#[allow(unsafe_code)]
pub mod channel;
#[cfg(feature = "serde")]
pub mod codec;
#[cfg_attr(not(feature = "internals"), allow(dead_code))]
pub(crate) mod descriptor;
pub mod message;
#[allow(unsafe_code)]
#[cfg_attr(not(feature = "internals"), allow(dead_code))]
pub(crate) mod queue;
#[allow(unsafe_code)]
pub mod raw;
#[allow(unsafe_code)]
#[cfg_attr(not(feature = "internals"), allow(dead_code))]
pub(crate) mod ring;
#[allow(unsafe_code)]
#[cfg_attr(not(feature = "internals"), allow(dead_code))]
pub(crate) mod sys;
mod timeout;
#[allow(unsafe_code)]
pub mod transport;
mod transports;
#[cfg_attr(not(feature = "internals"), allow(dead_code))]
pub(crate) mod wire;

pub use channel::{
    Channel, ChannelBuilder, ChannelEvents, ChannelStats, CloseError, ConnectError, Interrupter,
    MonoQueue, MultiQueue, OpenError, PostBatchError, PostError, Priority, QueueOptions,
    ReceiveError, ReceiveQueue,
};
pub use message::Message;
pub use raw::{RawChannel, RawChannelBuilder, RawReceiver, RawSender, ReceivedBuffer, SendBuffer};
pub use timeout::Timeout;
pub use transport::{
    AccessPolicy, ConfigError, ConnectionEvent, ConnectionState, DescriptorError, Endpoint,
    PeerInfo, Refusal, RefusalReason, Role, TransportError, TransportId, TransportStats,
    TransportView,
};

/// lwmq's internals, for lwmq's own crates (the C API, the CLI, the test
/// harness, the benchmarks, the fuzz targets).
///
/// **No stability promise; for lwmq's own crates.** Enabled by the cargo
/// feature `internals`; nothing here is needed to use lwmq.
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod internals {
    /// Linux facilities (memfd, futex, sockets, membarrier).
    pub mod sys {
        pub use crate::sys::*;
    }
    /// The shared-memory slot ring.
    pub mod ring {
        pub use crate::ring::*;
    }
    /// The wire format of messaging buffers.
    pub mod wire {
        pub use crate::wire::*;
    }
    /// The send and receive queues and the scheduler.
    pub mod queue {
        pub use crate::queue::*;
    }
    /// Statistics from outside the process: snapshots, the stat socket,
    /// queries (what `lwmq stat` and `lwmq ls` use).
    pub mod stat {
        pub use crate::transport::stat::*;
    }
    /// Descriptor parsing and rendezvous names.
    pub mod descriptor {
        pub use crate::descriptor::*;
    }
    /// The transport driver interface and the `ipc://` and `tcp://`
    /// providers.
    pub mod transport {
        pub use crate::transport::internal::*;
        /// The `ipc://` transport.
        pub mod ipc {
            pub use crate::transport::ipc::*;
        }
        /// The `tcp://` transport (its wire format in `proto`).
        pub mod tcp {
            pub use crate::transport::tcp::*;
        }
    }
    pub use crate::timeout::Deadline;
}

// The Rust code blocks of the repository's README and API reference are
// compiled (and, unless marked `no_run`, run) as doctests, so that they
// follow the API. Only `cargo test --doc` reads these files: the
// `doctest` cfg is set for nothing else, so a build of the crate (a
// packaged one included) never looks outside its directory.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;

#[cfg(doctest)]
#[doc = include_str!("../../../docs/rust-api.md")]
struct RustApiDoctests;
