//! The transport driver interface: what a transport provider implements
//! and what the channels above it call. Internal to lwmq (reachable by the
//! workspace's own crates through `lwmq::internals::transport`); users see
//! transports through [`Endpoint`](super::Endpoint) and
//! [`TransportView`](super::TransportView).
//!
//! Buffer life cycle on the send side: [`SendSide::acquire`] hands out a
//! free buffer (waiting up to a timeout), up to the transport's send buffer
//! count at once, each with its [`BufferId`]; the caller fills them, then
//! [`SendSide::commit`] sends the oldest one or [`SendSide::abort`] gives
//! any one back. Buffers leave in the order they were acquired: committing
//! another than the oldest is refused ([`TransportError::OutOfOrder`]) and
//! changes nothing. On the receive side [`ReceiveSide::receive`] hands out
//! the next filled buffer, up to the receive buffer count at once, and
//! [`ReceiveSide::dispose`] returns any of them, in any order. Asking for
//! more buffers than the limit is an error
//! ([`TransportError::BufferLimit`]), never a wait: only the same thread
//! could give one back. Each side is used by one thread at a time: it is
//! claimed with [`Transport::claim_sender`] / [`Transport::claim_receiver`]
//! and released when dropped.
//!
//! The memory of a buffer ([`RawBuf`]) may be shared with the peer, which
//! can write it at any time: it is reached through raw pointers only, never
//! through a `&[u8]`/`&mut [u8]` that would promise nobody else changes it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::{
    AccessPolicy, BufferId, BufferLimits, ConfigError, ConnectionState, Role, TransportError,
    TransportStats,
};
use crate::timeout::Timeout;

/// Which directions a transport carries (LwMQ's creation flags). Implied
/// by the buffer counts: a direction is used iff it has buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Directions {
    /// `LMQ_TRANSPORTCREATIONFLAGS_SEND`: this side only sends.
    Send,
    /// `LMQ_TRANSPORTCREATIONFLAGS_RECEIVE`: this side only receives.
    Receive,
    /// `LMQ_TRANSPORTCREATIONFLAGS_SENDRECEIVE`: both.
    SendReceive,
}

impl Directions {
    /// True if this side sends.
    pub fn sends(self) -> bool {
        matches!(self, Self::Send | Self::SendReceive)
    }
    /// True if this side receives.
    pub fn receives(self) -> bool {
        matches!(self, Self::Receive | Self::SendReceive)
    }

    /// From the two flags; `None` if neither is set.
    pub fn from_flags(send: bool, receive: bool) -> Option<Self> {
        match (send, receive) {
            (true, true) => Some(Self::SendReceive),
            (true, false) => Some(Self::Send),
            (false, true) => Some(Self::Receive),
            (false, false) => None,
        }
    }
}

impl fmt::Display for Directions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Send => "send",
            Self::Receive => "receive",
            Self::SendReceive => "send+receive",
        })
    }
}

/// What travels in the buffers; both ends of a connection must agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelKind {
    /// `RAW_ONE_TO_ONE`: application bytes, direct buffer access.
    Raw,
    /// `ONE_TO_ONE`: LwMQ messages in the lwmq wire format.
    Messaging,
}

/// Buffer size and counts of one transport, checked on creation; the
/// directions follow from the counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransportConfig {
    buffer_size: usize,
    send_buffers: u32,
    receive_buffers: u32,
    directions: Directions,
}

impl TransportConfig {
    /// Checks the rules for the buffer size and counts of the transport
    /// `descriptor` against its `limits`: size in range, at least one
    /// buffer, counts within the limits.
    pub fn new(
        descriptor: &str,
        buffer_size: usize,
        send_buffers: u32,
        receive_buffers: u32,
        limits: &BufferLimits,
    ) -> Result<Self, ConfigError> {
        if buffer_size == 0 || buffer_size > limits.max_buffer_size {
            return Err(ConfigError::BufferSize {
                descriptor: descriptor.to_owned(),
                size: buffer_size,
                max: limits.max_buffer_size,
            });
        }
        let Some(directions) = Directions::from_flags(send_buffers > 0, receive_buffers > 0) else {
            return Err(ConfigError::NoBuffers {
                descriptor: descriptor.to_owned(),
            });
        };
        if send_buffers > limits.max_send_buffers
            || receive_buffers > limits.max_receive_buffers
            || u64::from(send_buffers) + u64::from(receive_buffers)
                > u64::from(limits.max_total_buffers)
        {
            return Err(ConfigError::TooManyBuffers {
                descriptor: descriptor.to_owned(),
                send: send_buffers,
                receive: receive_buffers,
                max_each: limits.max_send_buffers,
                max_total: limits.max_total_buffers,
            });
        }
        Ok(Self {
            buffer_size,
            send_buffers,
            receive_buffers,
            directions,
        })
    }

    /// Bytes per buffer.
    pub fn buffer_size(&self) -> usize {
        self.buffer_size
    }
    /// Send buffers (0: the transport does not send).
    pub fn send_buffers(&self) -> u32 {
        self.send_buffers
    }
    /// Receive buffers (0: the transport does not receive).
    pub fn receive_buffers(&self) -> u32 {
        self.receive_buffers
    }
    /// The directions the counts imply.
    pub fn directions(&self) -> Directions {
        self.directions
    }
}

/// A transport control code (`LmqTransportControl`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportControl {
    /// `LMQ_TRANSPORTCONTROL_SETCLIENTCONNECTIONRETRYINTERVALMS`.
    SetClientConnectionRetryInterval(Duration),
    /// Who may connect (checked with the kernel's peer credentials).
    /// Only before the channel opens.
    SetAccessPolicy(AccessPolicy),
    /// How long a waiting thread spins before it sleeps on a futex
    /// (`ipc://`) or in `poll` (`tcp://`) (`Duration::ZERO` = sleep at
    /// once).
    SetSpinDuration(Duration),
    /// `tcp://` only: the silence after which the peer is declared dead
    /// (its host gone, the network cut, the process stopped); heartbeats go
    /// out every fifth of the stricter of the two sides' timeouts while a
    /// direction is otherwise idle. `Duration::ZERO` turns the check off on
    /// this side. 5 s by default; 100 ms ..= 1 h; applies from the next
    /// connection.
    SetHeartbeatTimeout(Duration),
    /// `tcp://` only: the peer addresses this side talks to (an empty list,
    /// the default, allows every peer); a peer outside it is refused
    /// `AccessDenied` on both sides, and the refusal is logged. Only before
    /// the channel opens.
    SetPeerAllowList(super::AllowList),
}

/// A transport instance (one `LMQ_TRANSPORT`).
pub trait Transport: Send + Sync + fmt::Debug {
    /// The descriptor it was created from, canonical form.
    fn descriptor(&self) -> &str;
    /// Its buffer parameters.
    fn config(&self) -> &TransportConfig;
    /// Starts it in `role` for a channel of `kind` (channel open).
    fn start(&self, role: Role, kind: ChannelKind) -> Result<(), TransportError>;
    /// Stops it: disconnects, wakes waiters, releases everything.
    fn stop(&self);
    /// Connection state.
    fn state(&self) -> ConnectionState {
        self.connection_log().state()
    }
    /// The connection record: state, generation, peer and events. Every
    /// transport embeds one and reports its connection changes to it (see
    /// `transport/events.rs`).
    fn connection_log(&self) -> &Arc<super::ConnectionLog>;
    /// The last error or refusal, as text, if any.
    fn last_error(&self) -> Option<String>;
    /// Counters.
    fn stats(&self) -> TransportStats;
    /// Applies a control code.
    fn control(&self, control: TransportControl) -> Result<(), TransportError>;
    /// Buffers sent but not yet taken by the peer, plus staged ones.
    fn pending_send(&self) -> usize;
    /// Claims the send side (one user at a time).
    fn claim_sender(&self) -> Result<Box<dyn SendSide>, TransportError>;
    /// Claims the receive side (one user at a time).
    fn claim_receiver(&self) -> Result<Box<dyn ReceiveSide>, TransportError>;
    /// Makes a thread waiting in this transport's
    /// [`ReceiveSide::receive`] return promptly, with
    /// [`TransportError::Timeout`] as if its time had run out (a call that
    /// is not waiting yet returns so at its next wait; one early return per
    /// call of this). Used by a channel's `Interrupter`. The default does
    /// nothing: a waiting receive then ends at its own timeout.
    fn interrupt_receive(&self) {}
    /// Buffers waiting in this transport for a peer (staged while none is
    /// connected), for statistics queries (`transport/stat.rs`). Must not
    /// take a lock the data path takes: a relaxed atomic load. The default
    /// reports 0.
    fn queue_depth(&self) -> u64 {
        0
    }
    /// Whether a statistics query from another user (`uid`, `gid`) may see
    /// this transport: its access policy admits that user. Must not take a
    /// lock the data path takes. The default admits nobody (the process's
    /// own user always sees every transport).
    fn stat_admits(&self, uid: u32, gid: u32) -> bool {
        let _ = (uid, gid);
        false
    }
    /// The transport's readiness descriptor, for async waiters (feature
    /// `async`): it becomes readable when an armed condition may have
    /// changed (see [`Self::set_async_waiter`]), on a connection change
    /// and on [`Self::interrupt_receive`]. The waiter reads it (an eventfd
    /// counter) to clear it. `None` (the default): the transport has no
    /// such descriptor, and async waiters poll at an interval instead.
    fn readiness_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        None
    }
    /// Declares (`armed`) or withdraws an async waiter for data to receive
    /// ([`AsyncWaiter::Consumer`](crate::ring::AsyncWaiter)) or room to
    /// send (`Producer`) on the current connection. After arming, the
    /// caller re-checks its condition, then waits for the readiness
    /// descriptor; it withdraws once the condition held or it stopped
    /// waiting, so that a busy connection makes no system call for it.
    /// The default: [`AsyncArm::Unsupported`].
    fn set_async_waiter(&self, side: crate::ring::AsyncWaiter, armed: bool) -> AsyncArm {
        let _ = (side, armed);
        AsyncArm::Unsupported
    }
}

/// What [`Transport::set_async_waiter`] promises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsyncArm {
    /// The readiness descriptor will become readable when the condition
    /// may have changed (or the connection changes).
    Signalled,
    /// Nothing will signal it (no descriptor, or a peer without the
    /// readiness feature): the waiter polls at an interval.
    Unsupported,
}

/// Memory of a buffer handed out by a side. Valid until the matching
/// commit, abort or dispose, and never longer than the side that produced
/// it. It may lie in memory the peer shares and can write: access it
/// through the raw pointer (copies), never through a reference.
#[derive(Debug, Clone, Copy)]
pub struct RawBuf {
    /// Start of the buffer.
    pub ptr: *mut u8,
    /// Its size (the transport's buffer size) or, when received, the
    /// number of bytes the sender filled.
    pub len: usize,
    /// Which buffer this is (for commit, abort, dispose).
    pub id: BufferId,
}

// SAFETY: a `RawBuf` is an address, a length and an id; holding or moving
// one grants no access by itself. Every dereference of `ptr` is `unsafe`
// code that must show the buffer is still out and who else may touch it,
// whichever thread it runs on (the side that handed it out is `Send` too).
unsafe impl Send for RawBuf {}

/// The send side of a transport (see the module docs).
pub trait SendSide: Send {
    /// A free buffer, waiting up to `timeout` for one. Each call hands out
    /// another buffer, up to `MaxPendingSendBuffers` at once (more is
    /// [`TransportError::BufferLimit`], at once).
    fn acquire(&mut self, timeout: Timeout) -> Result<RawBuf, TransportError>;
    /// Sends the first `len` bytes of buffer `id`, which must be the oldest
    /// one outstanding ([`TransportError::OutOfOrder`] otherwise, and
    /// nothing changes; so does a `len` above the buffer size). `erase`
    /// zeroes the buffer once the peer has consumed it. A buffer obtained
    /// in the shared memory of a connection that has ended since is not
    /// sent: [`TransportError::BufferLost`], and it is gone.
    fn commit(&mut self, id: BufferId, len: usize, erase: bool) -> Result<(), TransportError>;
    /// Gives buffer `id` back unsent, whichever of the outstanding ones it
    /// is; nothing of it reaches the peer.
    fn abort(&mut self, id: BufferId) -> Result<(), TransportError>;
    /// Sends one buffer whose bytes are `parts`, one after the other,
    /// straight from the caller's memory, when the transport writes a byte
    /// stream and can do it now: no buffer of its own is outstanding and,
    /// within `wait`, nothing of its own is left to write and the peer can
    /// take a buffer. It may then wait up to what is left of `wait` for the
    /// stream to take the bytes; a tail not taken by then is copied into a
    /// buffer of the transport and sent from there (`Ok(true)` either way:
    /// the buffer is committed, with a commit's guarantees). `Ok(false)`:
    /// declined, nothing happened; send it through [`Self::acquire`] and
    /// [`Self::commit`]. The default declines (shared memory has no stream
    /// to write into). More bytes than a buffer holds is
    /// [`TransportError::LengthTooLarge`].
    fn send_parts(&mut self, parts: &[&[u8]], wait: Timeout) -> Result<bool, TransportError> {
        let _ = (parts, wait);
        Ok(false)
    }
    /// The smallest buffer worth sending with [`Self::send_parts`] rather
    /// than copied into a buffer of the transport (where smaller ones can
    /// share a write); `None` if `send_parts` always declines. Fixed for
    /// the life of the side.
    fn send_parts_from(&self) -> Option<usize> {
        None
    }
    /// Waits until every committed buffer was taken by the peer (or
    /// timeout). Buffers still outstanding are not waited for.
    fn flush(&mut self, timeout: Timeout) -> Result<(), TransportError>;
    /// True if a peer is connected right now.
    fn is_connected(&mut self) -> bool;
    /// Committed buffers the peer has not taken yet (0 without a peer);
    /// below 2 it may be a cached upper bound, from 2 up it is re-read. A
    /// sender that sees the peer busy may keep filling its next buffer
    /// instead of sending it half empty.
    fn outstanding(&mut self) -> u64 {
        0
    }
}

/// The receive side of a transport (see the module docs).
pub trait ReceiveSide: Send {
    /// The next filled buffer, waiting up to `timeout`. Each call hands out
    /// the next buffer, up to `MaxPendingReceiveBuffers` at once (more is
    /// [`TransportError::BufferLimit`], at once).
    fn receive(&mut self, timeout: Timeout) -> Result<RawBuf, TransportError>;
    /// Returns buffer `id` (any of those held), zeroing it first if
    /// `erase`.
    fn dispose(&mut self, id: BufferId, erase: bool) -> Result<(), TransportError>;
}
