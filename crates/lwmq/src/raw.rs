//! Raw channels: direct access to transport buffers (`RAW_ONE_TO_ONE`).
//!
//! No messages and no queues: the application fills send buffers and reads
//! received buffers in place, in shared memory when the transport is
//! `ipc://` (zero copy).
//!
//! ```no_run
//! use lwmq::{Directions, RawChannel, Role, Timeout};
//! let mut ch = RawChannel::new();
//! let t = ch.add_transport("ipc://example/raw", 64 * 1024, 4, 4, Directions::SendReceive)?;
//! ch.open(Role::Server)?;
//! let mut tx = ch.sender(t)?;
//! let mut buf = tx.get_buffer(Timeout::INFINITE)?;
//! buf[..5].copy_from_slice(b"hello");
//! buf.send(5)?;
//! let mut rx = ch.receiver(t)?;
//! let got = rx.receive_buffer(Timeout::INFINITE)?;
//! println!("{} bytes", got.len());
//! got.dispose();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Misuse is prevented by types where possible: a [`RawSender`] or
//! [`RawReceiver`] borrows the channel (it cannot outlive it, and the channel
//! cannot be closed under it); only one of each exists per transport at a
//! time (claiming a second returns [`TransportError::SideInUse`]); a
//! [`SendBuffer`] borrows its sender mutably, so buffers are sent in the
//! order obtained and one at a time; dropping a buffer unsent gives it back,
//! dropping a received buffer disposes it.

use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use crate::channel_error::ChannelError;
use crate::timeout::Timeout;
use crate::transport::{
    ChannelKind, Directions, ReceiveSide, Role, SendSide, Transport, TransportError,
};

/// Index of a transport within its channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TransportId(pub usize);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Created,
    Open,
    Closed,
}

/// A raw one-to-one channel.
#[derive(Debug)]
pub struct RawChannel {
    transports: Vec<Arc<dyn Transport>>,
    phase: Phase,
}

impl Default for RawChannel {
    fn default() -> Self {
        Self::new()
    }
}

impl RawChannel {
    /// A new channel with no transport.
    pub fn new() -> Self {
        Self {
            transports: Vec::new(),
            phase: Phase::Created,
        }
    }

    /// Adds a transport (before `open` only). All transports of a channel
    /// must use the same buffer size.
    pub fn add_transport(
        &mut self,
        descriptor: &str,
        buffer_size: usize,
        send_buffers: i64,
        receive_buffers: i64,
        directions: Directions,
    ) -> Result<TransportId, ChannelError> {
        if self.phase != Phase::Created {
            return Err(ChannelError::AddTransportAfterOpen);
        }
        crate::transports::add(
            &mut self.transports,
            descriptor,
            buffer_size,
            send_buffers,
            receive_buffers,
            directions,
        )
    }

    /// The transport with this id.
    pub fn transport(&self, id: TransportId) -> Result<&dyn Transport, ChannelError> {
        crate::transports::get(&self.transports, id)
    }

    /// All transports, in the order added.
    pub fn transports(&self) -> impl Iterator<Item = &dyn Transport> {
        self.transports.iter().map(|t| t.as_ref())
    }

    /// Opens the channel: servers bind, clients start connecting in the
    /// background. A server whose address is taken fails with
    /// [`TransportError::AddressInUse`] and leaves a single-transport channel
    /// unopened, so the application can retry as [`Role::Client`]. With
    /// several transports, a failure closes the ones already started and the
    /// channel.
    pub fn open(&mut self, role: Role) -> Result<(), ChannelError> {
        match self.phase {
            Phase::Open => return Err(ChannelError::AlreadyOpen),
            Phase::Closed => return Err(ChannelError::Closed),
            Phase::Created => {}
        }
        if self.transports.is_empty() {
            return Err(ChannelError::NoTransport);
        }
        for (i, t) in self.transports.iter().enumerate() {
            if let Err(e) = t.start(role, ChannelKind::Raw) {
                if i > 0 {
                    self.close();
                }
                return Err(e.into());
            }
        }
        self.phase = Phase::Open;
        Ok(())
    }

    /// Claims the send side of a transport.
    pub fn sender(&self, id: TransportId) -> Result<RawSender<'_>, ChannelError> {
        self.require_open()?;
        Ok(RawSender {
            side: self.transport(id)?.claim_sender()?,
            _channel: PhantomData,
        })
    }

    /// Claims the receive side of a transport.
    pub fn receiver(&self, id: TransportId) -> Result<RawReceiver<'_>, ChannelError> {
        self.require_open()?;
        Ok(RawReceiver {
            side: self.transport(id)?.claim_receiver()?,
            _channel: PhantomData,
        })
    }

    fn require_open(&self) -> Result<(), ChannelError> {
        match self.phase {
            Phase::Open => Ok(()),
            Phase::Created => Err(ChannelError::NotOpen),
            Phase::Closed => Err(ChannelError::Closed),
        }
    }

    /// Closes every transport. Buffers not yet taken by the peer are lost.
    pub fn close(&mut self) {
        for t in &self.transports {
            t.stop();
        }
        self.phase = Phase::Closed;
    }
}

impl Drop for RawChannel {
    fn drop(&mut self) {
        self.close();
    }
}

/// The send side of one transport of a raw channel.
pub struct RawSender<'c> {
    side: Box<dyn SendSide>,
    _channel: PhantomData<&'c RawChannel>,
}

impl std::fmt::Debug for RawSender<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RawSender")
    }
}

impl RawSender<'_> {
    /// The next free send buffer, waiting up to `timeout`. Before a peer is
    /// connected, buffers are staged locally (up to `MaxPendingSendBuffers`)
    /// and delivered when it connects.
    pub fn get_buffer(&mut self, timeout: Timeout) -> Result<SendBuffer<'_>, TransportError> {
        let raw = self.side.acquire(timeout)?;
        Ok(SendBuffer {
            side: &mut *self.side,
            ptr: raw.ptr,
            cap: raw.len,
            done: false,
        })
    }

    /// Waits until every buffer sent so far was taken by the peer.
    pub fn flush(&mut self, timeout: Timeout) -> Result<(), TransportError> {
        self.side.flush(timeout)
    }

    /// True if a peer is connected now.
    pub fn is_connected(&mut self) -> bool {
        self.side.is_connected()
    }
}

/// An acquired send buffer: `buffer_size` writable bytes.
pub struct SendBuffer<'s> {
    side: &'s mut dyn SendSide,
    ptr: *mut u8,
    cap: usize,
    done: bool,
}

impl SendBuffer<'_> {
    /// Sends the first `len` bytes.
    pub fn send(mut self, len: usize) -> Result<(), TransportError> {
        let r = self.side.commit(len, false);
        self.done = r.is_ok();
        r
    }

    /// Sends the first `len` bytes and has the buffer zeroed once the peer
    /// has consumed it (`EraseAfterSending`).
    pub fn send_and_erase(mut self, len: usize) -> Result<(), TransportError> {
        let r = self.side.commit(len, true);
        self.done = r.is_ok();
        r
    }
}

impl Deref for SendBuffer<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: the side guarantees `cap` bytes at `ptr` until commit or
        // abort, both of which need `&mut` to the side, which this buffer
        // borrows exclusively for its whole life.
        unsafe { std::slice::from_raw_parts(self.ptr, self.cap) }
    }
}

impl DerefMut for SendBuffer<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`; the slot (or staging buffer) is owned by
        // this side until it is committed, so no one else writes it.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.cap) }
    }
}

impl Drop for SendBuffer<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.side.abort();
        }
    }
}

/// The receive side of one transport of a raw channel.
pub struct RawReceiver<'c> {
    side: Box<dyn ReceiveSide>,
    _channel: PhantomData<&'c RawChannel>,
}

impl std::fmt::Debug for RawReceiver<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RawReceiver")
    }
}

impl RawReceiver<'_> {
    /// The next filled buffer, waiting up to `timeout`.
    pub fn receive_buffer(
        &mut self,
        timeout: Timeout,
    ) -> Result<ReceivedBuffer<'_>, TransportError> {
        let raw = self.side.receive(timeout)?;
        Ok(ReceivedBuffer {
            side: &mut *self.side,
            ptr: raw.ptr,
            len: raw.len,
            erase: false,
        })
    }
}

/// A received buffer: the bytes the sender filled. Disposed on drop.
pub struct ReceivedBuffer<'r> {
    side: &'r mut dyn ReceiveSide,
    ptr: *const u8,
    len: usize,
    erase: bool,
}

impl ReceivedBuffer<'_> {
    /// Returns the buffer to the transport.
    pub fn dispose(self) {}

    /// Zeroes the buffer, then returns it (`EraseBeforeDisposing`).
    pub fn dispose_and_erase(mut self) {
        self.erase = true;
    }
}

impl Deref for ReceivedBuffer<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: the side guarantees `len` bytes at `ptr` until dispose,
        // which needs `&mut` to the side, borrowed by this buffer. The peer
        // cannot legitimately write a slot it has published; a hostile peer
        // can only change the bytes' values, never the mapping's bounds.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl Drop for ReceivedBuffer<'_> {
    fn drop(&mut self) {
        self.side.dispose(self.erase);
    }
}
