//! Raw channels: direct access to transport buffers (`RAW_ONE_TO_ONE`).
//!
//! No messages and no queues: the application fills send buffers and reads
//! received buffers in place, in shared memory when the transport is
//! `ipc://` (zero copy).
//!
//! ```
//! use std::time::Duration;
//! use lwmq::{Endpoint, RawChannel, Role, Timeout, TransportId};
//!
//! # let address = format!("ipc://lwmq-doc/raw/{}", std::process::id());
//! // The peer: another process in real life, a thread here. It only
//! // receives (0 send buffers).
//! let peer_address = address.clone();
//! type BoxError = Box<dyn std::error::Error + Send + Sync>;
//! let peer = std::thread::spawn(move || -> Result<Vec<Vec<u8>>, BoxError> {
//!     let ep = Endpoint::new(peer_address)?.send_buffers(0);
//!     let ch = RawChannel::builder().transport(ep)?.open(Role::Client)?;
//!     let rx = ch.receiver(TransportId(0))?;
//!     let mut got = Vec::new();
//!     for _ in 0..2 {
//!         got.push(rx.receive_buffer(Duration::from_secs(20))?.to_vec());
//!     }
//!     Ok(got)
//! });
//!
//! let ep = Endpoint::new(address)?.receive_buffers(0); // send only
//! let ch = RawChannel::builder().transport(ep)?.open(Role::Server)?;
//! let tx = ch.sender(TransportId(0))?;
//! // Several buffers may be out at once (up to the send buffer count);
//! // they leave in the order obtained.
//! let mut first = tx.get_buffer(Timeout::NEVER)?;
//! let mut second = tx.get_buffer(Timeout::NEVER)?;
//! first.write(0, b"hello")?;
//! second.write(0, b"world")?;
//! first.send(5).map_err(|e| e.into_error())?;
//! second.send(5).map_err(|e| e.into_error())?;
//! assert_eq!(peer.join().unwrap()?, [b"hello".to_vec(), b"world".to_vec()]);
//! # Ok::<(), BoxError>(())
//! ```
//!
//! **Alignment.** A send buffer is `buffer_size` bytes; what the sender
//! writes at an offset arrives at the same offset. With `ipc://` a buffer in
//! the connection's shared memory starts on a 64-byte boundary, but a
//! buffer obtained while no peer is connected is staged in private memory
//! with no alignment promise (it is copied into the ring when a peer
//! connects). So read and write at offsets (`write`, `read`), and check
//! [`SendBuffer::as_ptr`]'s alignment before casting it to a wider type.
//!
//! # Guarantees kept by types
//!
//! A [`RawSender`] or [`RawReceiver`] borrows the channel: it cannot
//! outlive it, and the channel cannot be closed under it. Only one of each
//! exists per transport at a time (claiming a second returns
//! [`TransportError::SideInUse`]). Buffers ([`SendBuffer`],
//! [`ReceivedBuffer`]) borrow their sender or receiver, so they cannot
//! outlive it; several may be out at once (the side keeps their state
//! behind a `RefCell`, so it is `Send` but not `Sync`, and its buffers stay
//! on its thread). Dropping a buffer unsent gives it back, dropping a
//! received buffer disposes it. Buffers are sent in the order obtained:
//! sending another one first returns [`SendError::Refused`] with the buffer,
//! so nothing is lost.
//!
//! ```compile_fail
//! # use lwmq::{RawChannel, Timeout, TransportId};
//! # fn f(ch: &RawChannel) {
//! let buf = {
//!     let tx = ch.sender(TransportId(0)).unwrap();
//!     tx.get_buffer(Timeout::ZERO).unwrap()
//! }; // a buffer cannot outlive its sender
//! # }
//! ```
//!
//! ```compile_fail
//! # use lwmq::{RawChannel, TransportId};
//! # fn f(ch: RawChannel) {
//! let tx = ch.sender(TransportId(0)).unwrap();
//! ch.close(); // the channel cannot be closed while a sender lives
//! drop(tx);
//! # }
//! ```
//!
//! ```compile_fail
//! # use lwmq::{RawChannel, Timeout, TransportId};
//! # fn f(ch: &RawChannel) {
//! let tx = ch.sender(TransportId(0)).unwrap();
//! let buf = tx.get_buffer(Timeout::ZERO).unwrap();
//! std::thread::spawn(move || drop(buf)); // buffers stay on their thread
//! # }
//! ```
//!
//! # Memory the peer can write
//!
//! With `ipc://` a buffer lies in memory shared with the peer process. An
//! lwmq peer never touches a buffer it does not own, but a buggy or hostile
//! one can write it at any moment, so the buffers do not dereference to
//! `&[u8]`/`&mut [u8]` (a reference promises that nobody else changes the
//! bytes, and the compiler may rely on it). They offer copies instead
//! ([`SendBuffer::write`], [`ReceivedBuffer::read`], [`ReceivedBuffer::to_vec`]),
//! raw pointers, and `unsafe` slice views for code that can vouch for its
//! peer.

use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use crate::channel::OpenErrorKind;
use crate::timeout::Timeout;
use crate::transport::{
    BufferId, ChannelKind, ConfigError, Endpoint, RawBuf, ReceiveSide, Role, SendSide, Transport,
    TransportError, TransportId, TransportView,
};
use crate::transports;

/// Collects the transports of a [`RawChannel`], then opens it.
#[must_use = "a builder does nothing until it is opened"]
#[derive(Debug, Default)]
pub struct RawChannelBuilder {
    endpoints: Vec<Endpoint>,
}

impl RawChannelBuilder {
    /// A builder with no transport.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a transport (chainable); ids are positions, from 0. Fails if a
    /// setting is out of range or the buffer size differs from the
    /// transports already added.
    pub fn transport(mut self, endpoint: Endpoint) -> Result<Self, ConfigError> {
        self.add_transport(endpoint)?;
        Ok(self)
    }

    /// [`Self::transport`] through `&mut`, returning the new id.
    pub fn add_transport(&mut self, endpoint: Endpoint) -> Result<TransportId, ConfigError> {
        transports::check_add(&self.endpoints, &endpoint)?;
        self.endpoints.push(endpoint);
        Ok(TransportId(self.endpoints.len() - 1))
    }

    /// The endpoint of transport `id`, as added.
    pub fn endpoint(&self, id: TransportId) -> Option<&Endpoint> {
        self.endpoints.get(id.0)
    }

    /// Opens the channel: servers bind, clients start connecting in the
    /// background. On failure nothing is left started and the builder
    /// comes back in the [`RawOpenError`] (a server whose address is taken
    /// can open it again as [`Role::Client`]).
    pub fn open(self, role: Role) -> Result<RawChannel, RawOpenError> {
        let fail = |kind: OpenErrorKind, started: Vec<Arc<dyn Transport>>, b| {
            for t in &started {
                t.stop();
            }
            RawOpenError {
                kind,
                builder: Box::new(b),
            }
        };
        if self.endpoints.is_empty() {
            return Err(fail(OpenErrorKind::NoTransport, Vec::new(), self));
        }
        if let Err(e) = transports::check_all(&self.endpoints) {
            return Err(fail(e.into(), Vec::new(), self));
        }
        let mut started: Vec<Arc<dyn Transport>> = Vec::with_capacity(self.endpoints.len());
        for ep in &self.endpoints {
            let t = match transports::create(ep) {
                Ok(t) => t,
                Err(e) => return Err(fail(e.into(), started, self)),
            };
            if let Err(e) = t.start(role, ChannelKind::Raw) {
                t.stop();
                return Err(fail(e.into(), started, self));
            }
            started.push(t);
        }
        Ok(RawChannel {
            transports: started,
        })
    }

    /// Opens as a server, or as a client of the live server that holds the
    /// address; returns the role taken.
    pub fn open_server_or_client(self) -> Result<(RawChannel, Role), RawOpenError> {
        match self.open(Role::Server) {
            Ok(ch) => Ok((ch, Role::Server)),
            Err(e) if e.is_address_in_use() => {
                Ok((e.into_builder().open(Role::Client)?, Role::Client))
            }
            Err(e) => Err(e),
        }
    }
}

/// Why [`RawChannelBuilder::open`] failed; the builder comes back with it.
#[must_use = "a RawOpenError holds the builder; open again with it or drop it"]
pub struct RawOpenError {
    kind: OpenErrorKind,
    builder: Box<RawChannelBuilder>,
}

impl RawOpenError {
    /// What went wrong.
    pub fn kind(&self) -> &OpenErrorKind {
        &self.kind
    }

    /// True if a server found its address taken.
    pub fn is_address_in_use(&self) -> bool {
        matches!(self.kind, OpenErrorKind::AddressInUse { .. })
    }

    /// The builder, to open again.
    pub fn into_builder(self) -> RawChannelBuilder {
        *self.builder
    }
}

impl fmt::Debug for RawOpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawOpenError")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for RawOpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.kind.fmt(f)
    }
}

impl std::error::Error for RawOpenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.kind)
    }
}

/// Why [`RawChannel::sender`] or [`RawChannel::receiver`] gave no handle.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClaimError {
    /// No transport with that id.
    #[error("no {0} on this channel")]
    UnknownTransport(TransportId),
    /// The transport does not use that direction (0 buffers), or its
    /// side is already claimed by another handle.
    #[error(transparent)]
    Transport(#[from] TransportError),
}

/// An open raw one-to-one channel. Dropping it closes its transports.
#[derive(Debug)]
pub struct RawChannel {
    transports: Vec<Arc<dyn Transport>>,
}

impl RawChannel {
    /// A builder: `RawChannel::builder().transport(endpoint)?.open(role)`.
    pub fn builder() -> RawChannelBuilder {
        RawChannelBuilder::new()
    }

    /// The transport list, for the connection functions
    /// (`channel/connection.rs`: `wait_connected`, `events`).
    pub(crate) fn transport_list(&self) -> &[Arc<dyn Transport>] {
        &self.transports
    }

    /// Transport `id`.
    pub fn transport(&self, id: TransportId) -> Option<TransportView<'_>> {
        transports::view(&self.transports, id)
    }

    /// All transports, in the order added.
    pub fn transports(&self) -> impl Iterator<Item = TransportView<'_>> {
        transports::views(&self.transports)
    }

    fn get(&self, id: TransportId) -> Result<&Arc<dyn Transport>, ClaimError> {
        self.transports
            .get(id.0)
            .ok_or(ClaimError::UnknownTransport(id))
    }

    /// Claims the send side of transport `id` (one handle at a time; a
    /// second one is [`TransportError::SideInUse`] until the first drops).
    pub fn sender(&self, id: TransportId) -> Result<RawSender<'_>, ClaimError> {
        let t = self.get(id)?;
        Ok(RawSender {
            side: RefCell::new(t.claim_sender()?),
            transport: Some(Arc::clone(t)),
            _channel: PhantomData,
        })
    }

    /// Claims the receive side of transport `id` (one handle at a time).
    pub fn receiver(&self, id: TransportId) -> Result<RawReceiver<'_>, ClaimError> {
        let t = self.get(id)?;
        Ok(RawReceiver {
            side: RefCell::new(t.claim_receiver()?),
            transport: Some(Arc::clone(t)),
            _channel: PhantomData,
        })
    }

    /// Closes every transport. Buffers not yet taken by the peer are lost.
    /// (Dropping the channel does the same.)
    pub fn close(self) {}
}

impl Drop for RawChannel {
    fn drop(&mut self) {
        for t in &self.transports {
            t.stop();
        }
    }
}

/// A range outside a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("bytes {offset}..{offset}+{len} are outside the buffer of {size} bytes (rule: offset + length <= buffer length)")]
pub struct BufferRangeError {
    /// Offset asked for.
    pub offset: usize,
    /// Bytes asked for.
    pub len: usize,
    /// The buffer's length.
    pub size: usize,
}

fn check_range(offset: usize, len: usize, size: usize) -> Result<(), BufferRangeError> {
    match offset.checked_add(len) {
        Some(end) if end <= size => Ok(()),
        _ => Err(BufferRangeError { offset, len, size }),
    }
}

/// Copies `out.len()` bytes from `offset` of the buffer `raw` into `out`.
fn read_raw(raw: &RawBuf, offset: usize, out: &mut [u8]) -> Result<(), BufferRangeError> {
    check_range(offset, out.len(), raw.len)?;
    // SAFETY: `offset + out.len() <= raw.len` (checked), and the side
    // guarantees `raw.len` readable bytes at `raw.ptr` while the buffer is
    // out, which the borrow of the guard calling this ensures. A raw copy
    // into private memory: the peer may change the source bytes meanwhile
    // (only their values, which the caller treats as untrusted input), and
    // no reference to them is formed. `out` is private, so no overlap.
    unsafe { std::ptr::copy_nonoverlapping(raw.ptr.add(offset), out.as_mut_ptr(), out.len()) };
    Ok(())
}

/// The send side of one transport of a raw channel.
///
/// Hands out up to the transport's send buffer count at once; they are sent
/// in the order obtained. `Send` but not `Sync`: one thread at a time uses
/// it and its buffers.
pub struct RawSender<'c> {
    side: RefCell<Box<dyn SendSide>>,
    /// Its transport, for async waits (readiness descriptor, arming).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    /// (`None` only for the unit tests' in-memory sides.)
    pub(crate) transport: Option<Arc<dyn Transport>>,
    _channel: PhantomData<&'c RawChannel>,
}

impl std::fmt::Debug for RawSender<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RawSender")
    }
}

impl RawSender<'_> {
    /// A free send buffer, waiting up to `timeout`. Each call hands out
    /// another one, up to the send buffer count at once
    /// ([`TransportError::BufferLimit`] beyond, at once). Before a peer is
    /// connected, buffers are staged locally (up to the send buffer count
    /// in all) and delivered when it connects.
    pub fn get_buffer(
        &self,
        timeout: impl Into<Timeout>,
    ) -> Result<SendBuffer<'_>, TransportError> {
        // No `RefCell` borrow is held across a call out of this module, so
        // this one cannot collide with another.
        let raw = self.side.borrow_mut().acquire(timeout.into())?;
        Ok(SendBuffer {
            side: &self.side,
            raw,
            done: false,
        })
    }

    /// Waits until every buffer sent so far was taken by the peer. Buffers
    /// still out are not waited for.
    pub fn flush(&self, timeout: impl Into<Timeout>) -> Result<(), TransportError> {
        self.side.borrow_mut().flush(timeout.into())
    }

    /// True if a peer is connected now.
    pub fn is_connected(&self) -> bool {
        self.side.borrow_mut().is_connected()
    }
}

/// A send buffer: `len()` writable bytes, sent with [`Self::send`], given
/// back unsent when dropped.
///
/// The bytes may lie in memory the peer can write (see the [module
/// docs](self)): fill them with [`Self::write`] or [`Self::fill`], or
/// through [`Self::as_mut_ptr`]; [`Self::as_mut_slice`] is `unsafe`.
#[must_use = "a send buffer is given back unsent when dropped; send it with `send`"]
pub struct SendBuffer<'s> {
    side: &'s RefCell<Box<dyn SendSide>>,
    raw: RawBuf,
    done: bool,
}

impl std::fmt::Debug for SendBuffer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendBuffer")
            .field("id", &self.raw.id)
            .field("len", &self.raw.len)
            .finish()
    }
}

impl<'s> SendBuffer<'s> {
    /// Which buffer this is (ids grow in the order buffers are handed out).
    pub fn id(&self) -> BufferId {
        self.raw.id
    }

    /// The buffer's size (the endpoint's `buffer_size`).
    pub fn len(&self) -> usize {
        self.raw.len
    }

    /// True for a zero-length buffer (never: sizes are at least 1).
    pub fn is_empty(&self) -> bool {
        self.raw.len == 0
    }

    /// Copies `data` into the buffer at `offset`.
    pub fn write(&mut self, offset: usize, data: &[u8]) -> Result<(), BufferRangeError> {
        check_range(offset, data.len(), self.raw.len)?;
        // SAFETY: `offset + data.len() <= len` (checked); the buffer is out
        // and this guard owns it (commit and abort consume the guard), so
        // the side keeps `len` writable bytes at `ptr`. A raw copy: the
        // peer may write the same bytes (only a hostile one would), which
        // changes what is sent, never which memory is written. `data` is
        // the caller's, not the buffer, so they do not overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.raw.ptr.add(offset), data.len())
        };
        Ok(())
    }

    /// Sets every byte of the buffer to `byte`.
    pub fn fill(&mut self, byte: u8) {
        // SAFETY: as in `write`, for the whole buffer.
        unsafe { std::ptr::write_bytes(self.raw.ptr, byte, self.raw.len) };
    }

    /// Copies `out.len()` bytes from `offset` of the buffer into `out`.
    pub fn read(&self, offset: usize, out: &mut [u8]) -> Result<(), BufferRangeError> {
        read_raw(&self.raw, offset, out)
    }

    /// Start of the buffer, for reads.
    pub fn as_ptr(&self) -> *const u8 {
        self.raw.ptr
    }

    /// Start of the buffer, for writes: `len()` bytes, valid until the
    /// buffer is sent or given back. Write through it with raw-pointer
    /// operations (`ptr::copy_nonoverlapping`, `write_bytes`).
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.raw.ptr
    }

    /// The buffer as a slice.
    ///
    /// # Safety
    /// Nobody else may write the buffer while the slice lives. lwmq peers
    /// never write a buffer they do not own, so this holds whenever the
    /// peer is lwmq (or code as careful); against a buggy or hostile peer
    /// (any process the access policy admits) it is not guaranteed, and the
    /// slice is then undefined behaviour. Prefer [`Self::read`].
    pub unsafe fn as_slice(&self) -> &[u8] {
        // SAFETY: `len` readable bytes while the guard lives (see `write`);
        // no concurrent writer by the caller's contract.
        unsafe { std::slice::from_raw_parts(self.raw.ptr, self.raw.len) }
    }

    /// The buffer as a mutable slice.
    ///
    /// # Safety
    /// As [`Self::as_slice`]: nobody else may read or write the buffer while
    /// the slice lives, true for lwmq peers, not guaranteed against a
    /// hostile one. Prefer [`Self::write`].
    pub unsafe fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: `len` writable bytes while the guard lives (see `write`),
        // borrowed mutably from the guard; no other access by the caller's
        // contract.
        unsafe { std::slice::from_raw_parts_mut(self.raw.ptr, self.raw.len) }
    }

    /// Sends the first `len` bytes. Buffers leave in the order obtained: if
    /// an older one is still out, nothing is sent and the buffer comes back
    /// in [`SendError::Refused`] (so does a `len` above the size).
    // The error gives the buffer back (rare path; the success path is `()`).
    #[allow(clippy::result_large_err)]
    pub fn send(self, len: usize) -> Result<(), SendError<'s>> {
        self.commit(len, false)
    }

    /// [`Self::send`], and the buffer is zeroed once the peer has consumed
    /// it (`EraseAfterSending`).
    // The error gives the buffer back (rare path; the success path is `()`).
    #[allow(clippy::result_large_err)]
    pub fn send_and_erase(self, len: usize) -> Result<(), SendError<'s>> {
        self.commit(len, true)
    }

    /// Gives the buffer back unsent (as dropping it does); nothing of it
    /// reaches the peer, whichever of the buffers out it is.
    pub fn abort(self) {}

    // The error gives the buffer back (rare path; the success path is `()`).
    #[allow(clippy::result_large_err)]
    fn commit(mut self, len: usize, erase: bool) -> Result<(), SendError<'s>> {
        let r = self.side.borrow_mut().commit(self.raw.id, len, erase);
        match r {
            Ok(()) => {
                self.done = true;
                Ok(())
            }
            // Nothing changed: the buffer is still out and still the
            // caller's.
            Err(
                error @ (TransportError::OutOfOrder { .. } | TransportError::LengthTooLarge { .. }),
            ) => Err(SendError::Refused {
                error,
                buffer: self,
            }),
            Err(error) => {
                // The side dropped the buffer (lost with its connection).
                self.done = true;
                Err(SendError::Failed(error))
            }
        }
    }
}

impl Drop for SendBuffer<'_> {
    fn drop(&mut self) {
        if !self.done {
            // An id this side handed out and that is still out: cannot fail.
            let _ = self.side.borrow_mut().abort(self.raw.id);
        }
    }
}

/// Why [`SendBuffer::send`] did not send.
#[must_use]
pub enum SendError<'s> {
    /// Nothing was sent and the buffer is given back: `error` names the
    /// rule ([`TransportError::OutOfOrder`]: an older buffer is still out;
    /// [`TransportError::LengthTooLarge`]).
    Refused {
        /// The rule broken.
        error: TransportError,
        /// The buffer, still out and unchanged.
        buffer: SendBuffer<'s>,
    },
    /// The buffer is gone (for example [`TransportError::BufferLost`]: it
    /// was obtained on a connection that ended before the send).
    Failed(TransportError),
}

impl<'s> SendError<'s> {
    /// What went wrong.
    pub fn error(&self) -> &TransportError {
        match self {
            Self::Refused { error, .. } | Self::Failed(error) => error,
        }
    }

    /// The error; a buffer given back is dropped (given back unsent).
    pub fn into_error(self) -> TransportError {
        match self {
            Self::Refused { error, .. } | Self::Failed(error) => error,
        }
    }

    /// The buffer, if it was given back.
    pub fn into_buffer(self) -> Option<SendBuffer<'s>> {
        match self {
            Self::Refused { buffer, .. } => Some(buffer),
            Self::Failed(_) => None,
        }
    }
}

impl std::fmt::Debug for SendError<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused { error, buffer } => f
                .debug_struct("Refused")
                .field("error", error)
                .field("buffer", buffer)
                .finish(),
            Self::Failed(e) => f.debug_tuple("Failed").field(e).finish(),
        }
    }
}

impl std::fmt::Display for SendError<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused { error, .. } => write!(f, "{error} (the buffer was given back)"),
            Self::Failed(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for SendError<'_> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.error())
    }
}

impl From<SendError<'_>> for TransportError {
    fn from(e: SendError<'_>) -> Self {
        e.into_error()
    }
}

/// The receive side of one transport of a raw channel.
///
/// Holds up to the transport's receive buffer count of buffers at once, given
/// back in any order. `Send` but not `Sync`, like [`RawSender`].
pub struct RawReceiver<'c> {
    side: RefCell<Box<dyn ReceiveSide>>,
    /// Its transport, for async waits (readiness descriptor, arming).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    /// (`None` only for the unit tests' in-memory sides.)
    pub(crate) transport: Option<Arc<dyn Transport>>,
    _channel: PhantomData<&'c RawChannel>,
}

impl std::fmt::Debug for RawReceiver<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RawReceiver")
    }
}

impl RawReceiver<'_> {
    /// The next filled buffer, waiting up to `timeout`. Each call hands out
    /// the next one, up to the receive buffer count at once
    /// ([`TransportError::BufferLimit`] beyond, at once).
    pub fn receive_buffer(
        &self,
        timeout: impl Into<Timeout>,
    ) -> Result<ReceivedBuffer<'_>, TransportError> {
        // No `RefCell` borrow is held across a call out of this module.
        let raw = self.side.borrow_mut().receive(timeout.into())?;
        Ok(ReceivedBuffer {
            side: &self.side,
            raw,
            erase: false,
        })
    }
}

/// A received buffer: the bytes the sender filled. Disposed on drop.
///
/// The bytes may lie in memory the peer can write (see the [module
/// docs](self)): copy them out with [`Self::read`] or [`Self::to_vec`] and
/// check the copy; [`Self::as_slice`] is `unsafe`.
#[must_use = "a received buffer is given back when dropped"]
pub struct ReceivedBuffer<'r> {
    side: &'r RefCell<Box<dyn ReceiveSide>>,
    raw: RawBuf,
    erase: bool,
}

impl std::fmt::Debug for ReceivedBuffer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceivedBuffer")
            .field("id", &self.raw.id)
            .field("len", &self.raw.len)
            .finish()
    }
}

impl ReceivedBuffer<'_> {
    /// Which buffer this is.
    pub fn id(&self) -> BufferId {
        self.raw.id
    }

    /// Bytes received.
    pub fn len(&self) -> usize {
        self.raw.len
    }

    /// True if the sender sent no byte.
    pub fn is_empty(&self) -> bool {
        self.raw.len == 0
    }

    /// Copies `out.len()` bytes from `offset` into `out`.
    pub fn read(&self, offset: usize, out: &mut [u8]) -> Result<(), BufferRangeError> {
        read_raw(&self.raw, offset, out)
    }

    /// A private copy of the bytes received.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0u8; self.raw.len];
        // The range is the whole buffer: cannot fail.
        let _ = read_raw(&self.raw, 0, &mut v);
        v
    }

    /// Start of the bytes received (`len()` of them, valid until the buffer
    /// is disposed). Read through it with raw-pointer copies.
    pub fn as_ptr(&self) -> *const u8 {
        self.raw.ptr
    }

    /// The bytes received, in place.
    ///
    /// # Safety
    /// Nobody else may write the buffer while the slice lives. An lwmq peer
    /// never writes a buffer it has sent, so this holds whenever the peer is
    /// lwmq (or code as careful); against a buggy or hostile peer (any
    /// process the access policy admits) it is not guaranteed, and the slice
    /// is then undefined behaviour. Prefer [`Self::read`] or
    /// [`Self::to_vec`].
    pub unsafe fn as_slice(&self) -> &[u8] {
        // SAFETY: `len` readable bytes until dispose, which needs this guard
        // (consumed or dropped) so cannot happen while the slice borrows it;
        // no concurrent writer by the caller's contract.
        unsafe { std::slice::from_raw_parts(self.raw.ptr, self.raw.len) }
    }

    /// Returns the buffer to the transport.
    pub fn dispose(self) {}

    /// Zeroes the buffer, then returns it (`EraseBeforeDisposing`).
    pub fn dispose_and_erase(mut self) {
        self.erase = true;
    }
}

impl Drop for ReceivedBuffer<'_> {
    fn drop(&mut self) {
        // An id this side handed out and that is still held: cannot fail.
        let _ = self.side.borrow_mut().dispose(self.raw.id, self.erase);
    }
}

#[cfg(test)]
mod tests {
    //! The buffer guards' memory access, over sides that keep buffers in
    //! private heap memory: no system call, so these also run under Miri
    //! (`.ci-extra/miri.sh`). The real transport is tested in
    //! `tests/raw_buffers.rs` and the harness crate.
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    use super::*;

    fn alloc(size: usize) -> *mut u8 {
        Box::into_raw(vec![0u8; size].into_boxed_slice()).cast::<u8>()
    }

    /// Frees what `alloc(size)` returned.
    fn free(ptr: *mut u8, size: usize) {
        // SAFETY: `ptr` came from `alloc(size)` (a boxed slice of `size`
        // bytes) and is freed once.
        drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, size)) });
    }

    /// A send side over heap buffers, sending into `sent`.
    struct HeapSend {
        size: usize,
        max: usize,
        out: VecDeque<(u64, *mut u8)>,
        next: u64,
        sent: Arc<Mutex<Vec<Vec<u8>>>>,
    }

    // SAFETY: the pointers are this value's own allocations.
    unsafe impl Send for HeapSend {}

    impl SendSide for HeapSend {
        fn acquire(&mut self, _: Timeout) -> Result<RawBuf, TransportError> {
            if self.out.len() == self.max {
                return Err(TransportError::BufferLimit {
                    descriptor: "heap".into(),
                    dir: "send",
                    max: self.max as u32,
                    limit: "send_buffers",
                    hint: "test",
                });
            }
            let ptr = alloc(self.size);
            self.next += 1;
            self.out.push_back((self.next, ptr));
            Ok(RawBuf {
                ptr,
                len: self.size,
                id: BufferId(self.next),
            })
        }
        fn commit(&mut self, id: BufferId, len: usize, _: bool) -> Result<(), TransportError> {
            let &(front, ptr) = self.out.front().expect("a buffer is out");
            if front != id.0 {
                return Err(TransportError::OutOfOrder {
                    descriptor: "heap".into(),
                    given: id,
                    oldest: BufferId(front),
                });
            }
            if len > self.size {
                return Err(TransportError::LengthTooLarge {
                    len,
                    size: self.size,
                });
            }
            let mut data = vec![0u8; len];
            // SAFETY: `ptr` holds `size >= len` bytes of ours.
            unsafe { std::ptr::copy_nonoverlapping(ptr, data.as_mut_ptr(), len) };
            self.sent.lock().unwrap().push(data);
            self.out.pop_front();
            free(ptr, self.size);
            Ok(())
        }
        fn abort(&mut self, id: BufferId) -> Result<(), TransportError> {
            let i = self.out.iter().position(|o| o.0 == id.0).expect("out");
            let (_, ptr) = self.out.remove(i).expect("found");
            free(ptr, self.size);
            Ok(())
        }
        fn flush(&mut self, _: Timeout) -> Result<(), TransportError> {
            Ok(())
        }
        fn is_connected(&mut self) -> bool {
            true
        }
    }

    /// Buffers given back: (id, bytes after the dispose).
    type Disposed = Arc<Mutex<Vec<(u64, Vec<u8>)>>>;

    /// A receive side handing out copies of `queue`, in order.
    struct HeapReceive {
        queue: VecDeque<Vec<u8>>,
        held: Vec<(u64, *mut u8, usize)>,
        next: u64,
        disposed: Disposed,
    }

    // SAFETY: the pointers are this value's own allocations.
    unsafe impl Send for HeapReceive {}

    impl ReceiveSide for HeapReceive {
        fn receive(&mut self, _: Timeout) -> Result<RawBuf, TransportError> {
            let data = self.queue.pop_front().ok_or(TransportError::Timeout)?;
            let ptr = alloc(data.len());
            // SAFETY: `ptr` holds `data.len()` bytes of ours.
            unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), ptr, data.len()) };
            self.next += 1;
            self.held.push((self.next, ptr, data.len()));
            Ok(RawBuf {
                ptr,
                len: data.len(),
                id: BufferId(self.next),
            })
        }
        fn dispose(&mut self, id: BufferId, erase: bool) -> Result<(), TransportError> {
            let i = self.held.iter().position(|h| h.0 == id.0).expect("held");
            let (_, ptr, len) = self.held.remove(i);
            if erase {
                // SAFETY: `ptr` holds `len` bytes of ours.
                unsafe { std::ptr::write_bytes(ptr, 0, len) };
            }
            let mut after = vec![0u8; len];
            // SAFETY: as above.
            unsafe { std::ptr::copy_nonoverlapping(ptr, after.as_mut_ptr(), len) };
            self.disposed.lock().unwrap().push((id.0, after));
            free(ptr, len);
            Ok(())
        }
    }

    fn sender(size: usize, max: usize) -> (RawSender<'static>, Arc<Mutex<Vec<Vec<u8>>>>) {
        let sent = Arc::new(Mutex::new(Vec::new()));
        let side = HeapSend {
            size,
            max,
            out: VecDeque::new(),
            next: 0,
            sent: Arc::clone(&sent),
        };
        (
            RawSender {
                side: RefCell::new(Box::new(side)),
                transport: None,
                _channel: PhantomData,
            },
            sent,
        )
    }

    #[test]
    fn guards_copy_in_and_out_within_bounds() {
        let (tx, sent) = sender(8, 3);
        let mut b = tx.get_buffer(Timeout::ZERO).unwrap();
        assert_eq!(b.len(), 8);
        b.fill(0xAA);
        b.write(2, b"hey").unwrap();
        assert_eq!(
            b.write(6, b"abc"),
            Err(BufferRangeError {
                offset: 6,
                len: 3,
                size: 8
            })
        );
        assert!(b.write(usize::MAX, b"a").is_err());
        let mut back = [0u8; 5];
        b.read(1, &mut back).unwrap();
        assert_eq!(back, [0xAA, b'h', b'e', b'y', 0xAA]);
        assert!(b.read(4, &mut back).is_err());
        // SAFETY: test: nothing else writes this heap buffer.
        unsafe { b.as_mut_slice()[7] = 7 };
        // SAFETY: as above.
        assert_eq!(unsafe { b.as_slice() }[5..], [0xAA, 0xAA, 7]);
        b.send(8).unwrap();
        assert_eq!(
            sent.lock().unwrap()[0],
            [0xAA, 0xAA, b'h', b'e', b'y', 0xAA, 0xAA, 7]
        );
    }

    #[test]
    fn several_guards_out_of_order_send_gives_the_buffer_back() {
        let (tx, sent) = sender(4, 3);
        let mut a = tx.get_buffer(Timeout::ZERO).unwrap();
        let mut b = tx.get_buffer(Timeout::ZERO).unwrap();
        let c = tx.get_buffer(Timeout::ZERO).unwrap();
        assert!(matches!(
            tx.get_buffer(Timeout::ZERO),
            Err(TransportError::BufferLimit { .. })
        ));
        a.write(0, b"a").unwrap();
        b.write(0, b"b").unwrap();
        let b = match b.send(1) {
            Err(SendError::Refused { error, buffer }) => {
                assert!(matches!(error, TransportError::OutOfOrder { .. }));
                buffer
            }
            other => panic!("expected a refusal, got {other:?}"),
        };
        let a = a.send(9).unwrap_err().into_buffer().expect("given back");
        drop(c); // aborted
        a.send(1).unwrap();
        b.send(1).unwrap();
        assert_eq!(*sent.lock().unwrap(), [b"a".to_vec(), b"b".to_vec()]);
        // Every buffer went back: all three can be out again.
        let _all: Vec<_> = (0..3)
            .map(|_| tx.get_buffer(Timeout::ZERO).unwrap())
            .collect();
    }

    #[test]
    fn received_guards_copy_out_and_dispose_in_any_order() {
        let disposed: Disposed = Arc::new(Mutex::new(Vec::new()));
        let rx = RawReceiver {
            side: RefCell::new(Box::new(HeapReceive {
                queue: [b"one".to_vec(), b"two".to_vec()].into(),
                held: Vec::new(),
                next: 0,
                disposed: Arc::clone(&disposed),
            })),
            transport: None,
            _channel: PhantomData,
        };
        let one = rx.receive_buffer(Timeout::ZERO).unwrap();
        let two = rx.receive_buffer(Timeout::ZERO).unwrap();
        assert_eq!(
            (one.to_vec(), two.to_vec()),
            (b"one".to_vec(), b"two".to_vec())
        );
        let mut mid = [0u8; 1];
        two.read(1, &mut mid).unwrap();
        assert_eq!(&mid, b"w");
        assert!(two.read(3, &mut mid).is_err());
        // SAFETY: test: nothing else writes this heap buffer.
        assert_eq!(unsafe { one.as_slice() }, b"one");
        two.dispose_and_erase();
        one.dispose();
        assert_eq!(
            *disposed.lock().unwrap(),
            [(2, vec![0, 0, 0]), (1, b"one".to_vec())]
        );
    }
}
