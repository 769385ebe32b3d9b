//! Initialisation, channels, send queues and transports.
//!
//! Each exported function checks its arguments, looks its handles up in
//! the [registry](crate::handle) and calls the Rust API. Concurrency: a
//! messaging channel's Rust object sits behind a mutex; waiting calls
//! (`LmqReceiveMessage`, `LmqFlushChannel`) wait in slices of
//! [`SLICE`] and hand the mutex over fairly between slices, so a thread
//! blocked in a receive never keeps another thread from closing the
//! channel for longer than one slice. Posting does not touch the channel's
//! mutex (a send queue is its own object).

use std::collections::VecDeque;
use std::ffi::{c_void, CStr};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lwmq::channel::{Channel, ChannelBuilder, MonoQueue, MultiQueue, Priority, QueueOptions};
use lwmq::internals::transport::{
    self as driver, ChannelKind, Directions, RawBuf, ReceiveSide, SendSide, Transport,
    TransportControl,
};
use lwmq::internals::Deadline;
use lwmq::message::Message;
use lwmq::transport::AllowList;
use lwmq::{AccessPolicy, Endpoint, ReceiveQueue, Role, Timeout, TransportId};
use parking_lot::{Mutex, MutexGuard};

use crate::error::{boundary, Error, Result};
use crate::handle::{self, Kind, Object};
use crate::types::*;

/// Longest single wait while holding a channel's mutex.
pub(crate) const SLICE: Duration = Duration::from_millis(20);

/// Longest descriptor read from C, in code units (guards against a string
/// without its terminator running on forever).
const MAX_DESCRIPTOR_UNITS: usize = 4096;

// ---------------------------------------------------------------- helpers

/// Writes `value` to a required out-parameter.
///
/// # Safety
/// `p` is null or valid for a write of `T`.
pub(crate) unsafe fn write_out<T>(p: *mut T, name: &str, value: T) -> Result<()> {
    if p.is_null() {
        return Err(Error::null(name));
    }
    // SAFETY: non-null, and valid for writes by the caller's contract.
    unsafe { p.write(value) };
    Ok(())
}

/// Writes `value` to an optional out-parameter (nothing if null).
///
/// # Safety
/// `p` is null or valid for a write of `T`.
pub(crate) unsafe fn write_opt<T>(p: *mut T, value: T) {
    if !p.is_null() {
        // SAFETY: non-null, and valid for writes by the caller's contract.
        unsafe { p.write(value) };
    }
}

/// Reads a required in/out handle parameter (`LMQ_MESSAGE*` and the like).
///
/// # Safety
/// `p` is null or valid for a read of a pointer.
pub(crate) unsafe fn read_handle<T>(p: *mut *mut T, name: &str) -> Result<usize> {
    if p.is_null() {
        return Err(Error::null(name));
    }
    // SAFETY: non-null, and valid for reads by the caller's contract.
    Ok(unsafe { p.read() } as usize)
}

/// Decodes a null-terminated UTF-16 descriptor.
///
/// # Safety
/// `p` is null or points to a null-terminated `char16_t` string.
pub(crate) unsafe fn utf16_arg(p: PCWSTR) -> Result<String> {
    if p.is_null() {
        return Err(Error::null("Descriptor"));
    }
    let mut n = 0;
    // SAFETY: the string is readable up to and including its terminator,
    // which the loop stops at (or at the cap, before reading further).
    while n < MAX_DESCRIPTOR_UNITS && unsafe { p.add(n).read() } != 0 {
        n += 1;
    }
    if n == MAX_DESCRIPTOR_UNITS {
        return Err(Error::invalid(format!(
            "Descriptor has no terminating NUL within {MAX_DESCRIPTOR_UNITS} code units"
        )));
    }
    // SAFETY: the `n` units before the terminator were just read.
    let units = unsafe { std::slice::from_raw_parts(p, n) };
    Ok(lwmq::internals::descriptor::from_utf16(units)?)
}

/// Decodes a null-terminated UTF-8 descriptor (the `...A` functions).
///
/// # Safety
/// `p` is null or points to a null-terminated string.
pub(crate) unsafe fn utf8_arg(p: PCSTR) -> Result<String> {
    if p.is_null() {
        return Err(Error::null("Descriptor"));
    }
    // SAFETY: non-null and null-terminated by the caller's contract.
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str().map(str::to_owned).map_err(|e| {
        Error::invalid(format!(
            "Descriptor is not valid UTF-8 (byte {}): the ...A functions take UTF-8",
            e.valid_up_to()
        ))
    })
}

/// The C API's `INFINITE`.
pub(crate) const INFINITE_MS: UINT32 = u32::MAX;

/// Milliseconds, with `INFINITE` meaning no limit.
pub(crate) fn timeout(ms: UINT32) -> Timeout {
    if ms == INFINITE_MS {
        Timeout::NEVER
    } else {
        Timeout::after(Duration::from_millis(u64::from(ms)))
    }
}

// ---------------------------------------------------------- initialisation

/// Count of `LmqInitialize` calls not yet matched by `LmqTerminate`.
/// Nothing else depends on it: every function works without
/// `LmqInitialize` (the library initialises on first use).
static INIT: Mutex<u32> = Mutex::new(0);

/// Counts one use of the library. Optional: every function works without
/// it (LwMQ's samples never call it). `VersionRequested` is
/// `MAKEWORD(major, minor)`; this library implements 1.0
/// (`LMQ_CURRENT_API_VERSION`). Each success needs one `LmqTerminate`.
#[no_mangle]
pub extern "C" fn LmqInitialize(VersionRequested: WORD) -> HRESULT {
    boundary("LmqInitialize", || {
        if VersionRequested != LMQ_CURRENT_API_VERSION {
            return Err(Error::invalid(format!(
                "version {}.{} requested; this library implements 1.0 (LMQ_CURRENT_API_VERSION)",
                VersionRequested & 0xFF,
                VersionRequested >> 8
            )));
        }
        let mut n = INIT.lock();
        *n = n
            .checked_add(1)
            .ok_or_else(|| Error::invalid("LmqInitialize called 2^32 times"))?;
        Ok(())
    })
}

/// Undoes one `LmqInitialize`. The one that brings the count to zero
/// destroys every handle still alive in the process, including handles
/// created without `LmqInitialize` (channels are closed with zero linger,
/// messages destroyed, external frames released); call it when no other
/// thread uses the library any more. The library stays usable afterwards.
#[no_mangle]
pub extern "C" fn LmqTerminate() -> HRESULT {
    boundary("LmqTerminate", || {
        let mut n = INIT.lock();
        if *n == 0 {
            return Err(Error::state(
                "LmqTerminate without a matching LmqInitialize (rule: call it once per successful LmqInitialize, or not at all)",
            ));
        }
        *n -= 1;
        if *n > 0 {
            return Ok(());
        }
        let objects = handle::clear();
        drop(n);
        // Channels first, so that their queues drop before stray messages.
        for o in &objects {
            if let Object::Channel(c) = o {
                c.shutdown();
            }
        }
        drop(objects);
        Ok(())
    })
}

/// The text of the last failure on the calling thread (UTF-8, never NULL;
/// empty if nothing failed yet). Successful calls leave it unchanged. The
/// pointer stays valid until the next failing call on this thread.
#[no_mangle]
pub extern "C" fn LmqGetLastErrorMessage() -> PCSTR {
    std::panic::catch_unwind(crate::error::last_error_ptr).unwrap_or(c"".as_ptr())
}

// ---------------------------------------------------------------- objects

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Phase {
    Created = 0,
    Open = 1,
    Closed = 2,
}

/// The object behind an `LMQ_CHANNEL`.
pub(crate) struct ChannelObj {
    variant: Variant,
    /// Send queue and transport handles, invalidated with the channel.
    children: Mutex<Vec<(Kind, usize)>>,
    /// Set when a close starts (shared with the channel's send queues), so
    /// that a post refused during or after close reports "closed", as every
    /// other call on a closed channel does.
    closed: Arc<AtomicBool>,
    /// Set by a successful open (messaging channels; raw ones keep their
    /// phase), for the rules that hold "before open" only.
    opened: AtomicBool,
    /// Some transport of a messaging channel receives (LwMQ's rule: a
    /// receive queue type is given iff one does).
    receives: AtomicBool,
}

enum Variant {
    Messaging(Mutex<MsgState>),
    Raw(RawChannelObj),
}

/// A messaging channel through LwMQ's life cycle: the Rust builder until
/// `LmqOpenChannel`, the open channel, then what was received but not yet
/// taken when it closed (`LmqReceiveMessage` drains it first).
enum MsgState {
    Building(Box<ChannelBuilder>),
    Open(Box<Channel>),
    Closed(VecDeque<Message>),
}

impl MsgState {
    /// Takes the state out, leaving an empty closed one.
    fn take(&mut self) -> MsgState {
        std::mem::replace(self, MsgState::Closed(VecDeque::new()))
    }
}

struct RawChannelObj {
    phase: Arc<AtomicU8>,
    transports: Mutex<Vec<Arc<RawTransport>>>,
}

impl ChannelObj {
    /// Closes with zero linger (destroy, terminate).
    pub(crate) fn shutdown(&self) {
        self.closed.store(true, Ordering::Release);
        match &self.variant {
            Variant::Messaging(st) => {
                let old = st.lock().take();
                if let MsgState::Open(ch) = old {
                    let _ = ch.close(Timeout::ZERO);
                }
            }
            Variant::Raw(raw) => {
                let _ = raw.close(Timeout::ZERO);
            }
        }
    }
}

impl RawChannelObj {
    /// Waits up to `linger` for what was sent to be taken by the peers
    /// (`ERROR_TIMEOUT` if not), then closes regardless: threads waiting in
    /// `Get`/`Receive`/`Flush` return `ERROR_OPERATION_ABORTED`. Closing a
    /// channel that is not open just marks it closed.
    fn close(&self, linger: Timeout) -> Result<()> {
        let transports = self.transports.lock().clone();
        let r = if self.phase.load(Ordering::Acquire) == Phase::Open as u8 && !linger.is_zero() {
            flush_raw(&transports, linger.deadline(), true)
        } else {
            Ok(())
        };
        self.phase.store(Phase::Closed as u8, Ordering::Release);
        for t in &transports {
            t.transport.stop();
        }
        r
    }
}

/// Waits until everything sent on `transports` was taken by the peers, or
/// until `deadline` (`ERROR_TIMEOUT`). Waits one slice at a time and hands
/// each send side back between slices (see `raw.rs`). A connection that
/// ended with buffers unconsumed is `ERROR_CONNECTION_ABORTED`, unless
/// `lost_ok` (closing: lost is lost, as for messaging channels).
fn flush_raw(transports: &[Arc<RawTransport>], deadline: Deadline, lost_ok: bool) -> Result<()> {
    for t in transports {
        loop {
            let mut send = crate::raw::lock_by(&t.send, deadline, "send")?;
            if t.is_closed() && !lost_ok {
                return Err(Error::closed());
            }
            let Some(side) = send.side.as_mut() else {
                break;
            };
            match side.flush(Timeout::after(deadline.slice(SLICE))) {
                Ok(()) => break,
                Err(lwmq::TransportError::Timeout) if !deadline.passed() => {
                    MutexGuard::unlock_fair(send);
                }
                Err(lwmq::TransportError::Disconnected(_)) if lost_ok => break,
                Err(lwmq::TransportError::NotOpen(_)) if t.is_closed() => {
                    return Err(Error::closed())
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

/// The object behind an `LMQ_SENDQUEUE`.
pub(crate) struct QueueObj {
    queue: QueueKind,
    /// Bounded queue types wait for room; unbounded ones never wait, so
    /// their posts take a timeout of 0.
    pub(crate) bounded: bool,
    /// The channel's flag: a close has started.
    closed: Arc<AtomicBool>,
}

enum QueueKind {
    /// Mono-producer: the mutex keeps a second posting thread safe (it is
    /// uncontended when the application keeps the one-thread rule).
    Mono(Mutex<MonoQueue>),
    Multi(MultiQueue),
}

impl QueueObj {
    /// Posts, handing the message back on failure (by value, as the Rust
    /// API does: boxing would allocate on every failed post). Nothing is
    /// posted once a close has started.
    #[allow(clippy::result_large_err)]
    pub(crate) fn post(
        &self,
        message: Message,
        tag: u64,
        timeout: Timeout,
    ) -> std::result::Result<(), lwmq::PostError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(lwmq::PostError::Closed(message));
        }
        match &self.queue {
            QueueKind::Mono(_) if tag != 0 => Err(lwmq::PostError::TagUnsupported(message)),
            QueueKind::Mono(q) => q.lock().post(message, timeout),
            QueueKind::Multi(q) => q.post_with_tag(message, tag, timeout),
        }
    }
}

/// The object behind an `LMQ_TRANSPORT`.
pub(crate) enum TransportObj {
    Messaging {
        channel: Arc<ChannelObj>,
        id: TransportId,
    },
    Raw(Arc<RawTransport>),
}

/// A transport of a raw channel with its two buffer sides.
pub(crate) struct RawTransport {
    pub(crate) transport: Arc<dyn Transport>,
    phase: Arc<AtomicU8>,
    pub(crate) send: Mutex<SideState<Box<dyn SendSide>>>,
    pub(crate) recv: Mutex<SideState<Box<dyn ReceiveSide>>>,
}

impl RawTransport {
    /// True once the channel was closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.phase.load(Ordering::Acquire) == Phase::Closed as u8
    }

    pub(crate) fn require_open(&self) -> Result<()> {
        match self.phase.load(Ordering::Acquire) {
            1 => Ok(()),
            0 => Err(Error::state(
                "the channel is not open (rule: open the raw channel before using its buffers)",
            )),
            _ => Err(Error::win32(
                crate::error::ERROR_OPERATION_ABORTED,
                "the channel is closed",
            )),
        }
    }
}

/// One direction of a raw transport: the claimed side and the buffers
/// handed to C.
pub(crate) struct SideState<S> {
    pub(crate) side: Option<S>,
    /// Buffers handed to C and not yet given back, oldest first.
    pub(crate) out: Vec<Handed>,
    /// Structs given back, reused for later buffers. Owned allocations.
    spare: Vec<*mut LMQ_TRANSPORTBUFFER>,
}

/// A buffer handed to C.
pub(crate) struct Handed {
    /// The library-owned struct C holds (`Box::into_raw`); C reads it and
    /// writes `BufferSizeBytes` while it holds the buffer.
    pub(crate) desc: *mut LMQ_TRANSPORTBUFFER,
    /// What the side handed out (C may overwrite the struct's fields).
    pub(crate) raw: RawBuf,
}

// SAFETY: the structs behind `desc` and `spare` are allocations owned by
// this value (no Rust reference to them exists); they are only touched
// under the mutex that holds this value, and by the C thread that holds a
// buffer, which the API contract makes the one thread using this side.
// `RawBuf` is an address, dereferenced only under that mutex.
unsafe impl<S: Send> Send for SideState<S> {}

impl<S> SideState<S> {
    pub(crate) fn new() -> Self {
        SideState {
            side: None,
            out: Vec::new(),
            spare: Vec::new(),
        }
    }

    /// Records `raw` as handed out and returns the struct describing it,
    /// whose address stays valid until the buffer is given back.
    pub(crate) fn hand_out(&mut self, raw: RawBuf) -> *mut LMQ_TRANSPORTBUFFER {
        let value = LMQ_TRANSPORTBUFFER {
            BufferSizeBytes: raw.len,
            Buffer: raw.ptr,
        };
        let desc = match self.spare.pop() {
            Some(desc) => {
                // SAFETY: a struct of ours that C gave back (it is in no
                // `Handed`), under this side's mutex.
                unsafe { desc.write(value) };
                desc
            }
            None => Box::into_raw(Box::new(value)),
        };
        self.out.push(Handed { desc, raw });
        desc
    }

    /// The index in `out` of the struct at address `given`.
    pub(crate) fn find(&self, given: usize) -> Option<usize> {
        self.out.iter().position(|h| h.desc as usize == given)
    }

    /// Forgets buffer `i` (sent or given back); its struct is kept for
    /// reuse.
    pub(crate) fn take_back(&mut self, i: usize) {
        let h = self.out.remove(i);
        self.spare.push(h.desc);
    }
}

impl<S> Drop for SideState<S> {
    fn drop(&mut self) {
        for desc in self
            .out
            .drain(..)
            .map(|h| h.desc)
            .chain(self.spare.drain(..))
        {
            // SAFETY: every struct came from `Box::into_raw` in `hand_out`,
            // is listed exactly once (in `out` or in `spare`), and is freed
            // only here.
            drop(unsafe { Box::from_raw(desc) });
        }
    }
}

/// The object behind an `LMQ_MESSAGE`.
pub(crate) struct MessageObj {
    pub(crate) message: Mutex<Message>,
    /// From `LmqReceiveMessage` (dispose with `LmqDisposeReceivedMessage`).
    pub(crate) received: bool,
}

pub(crate) fn channel(h: LMQ_CHANNEL) -> Result<Arc<ChannelObj>> {
    match handle::get(Kind::Channel, h as usize)? {
        Object::Channel(c) => Ok(c),
        _ => unreachable!("registry returned another kind"),
    }
}

pub(crate) fn queue(h: LMQ_SENDQUEUE) -> Result<Arc<QueueObj>> {
    match handle::get(Kind::SendQueue, h as usize)? {
        Object::SendQueue(q) => Ok(q),
        _ => unreachable!("registry returned another kind"),
    }
}

pub(crate) fn transport_obj(h: LMQ_TRANSPORT) -> Result<Arc<TransportObj>> {
    match handle::get(Kind::Transport, h as usize)? {
        Object::Transport(t) => Ok(t),
        _ => unreachable!("registry returned another kind"),
    }
}

pub(crate) fn raw_transport(h: LMQ_TRANSPORT) -> Result<Arc<RawTransport>> {
    match &*transport_obj(h)? {
        TransportObj::Raw(t) => Ok(Arc::clone(t)),
        TransportObj::Messaging { .. } => Err(Error::invalid(
            "the transport belongs to a messaging channel (rule: direct buffer access is for LMQ_CHANNELTYPE_RAW_ONE_TO_ONE channels)",
        )),
    }
}

/// Locks a messaging channel's state, or explains why the channel is raw.
fn messaging<'c>(c: &'c ChannelObj, what: &str) -> Result<MutexGuard<'c, MsgState>> {
    match &c.variant {
        Variant::Messaging(ch) => Ok(ch.lock()),
        Variant::Raw(_) => Err(Error::invalid(format!(
            "raw channels have no {what} (rule: LMQ_CHANNELTYPE_ONE_TO_ONE only)"
        ))),
    }
}

// ---------------------------------------------------------------- channels

/// Creates a channel of `Type` (`LMQ_CHANNELTYPE_*`).
///
/// # Safety
/// `Channel` is null or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn LmqCreateChannel(
    ChannelType: LMQ_CHANNELTYPE,
    Channel: PLMQ_CHANNEL,
) -> HRESULT {
    boundary("LmqCreateChannel", || {
        if Channel.is_null() {
            return Err(Error::null("Channel"));
        }
        let variant = match ChannelType {
            // Destroying a channel closes it with zero linger, as LwMQ does.
            LMQ_CHANNELTYPE_ONE_TO_ONE => Variant::Messaging(Mutex::new(MsgState::Building(
                Box::new(Channel::builder().linger(Timeout::ZERO)),
            ))),
            LMQ_CHANNELTYPE_RAW_ONE_TO_ONE => Variant::Raw(RawChannelObj {
                phase: Arc::new(AtomicU8::new(Phase::Created as u8)),
                transports: Mutex::new(Vec::new()),
            }),
            t => {
                return Err(Error::invalid(format!(
                    "ChannelType {t} is not a LMQ_CHANNELTYPE (ONE_TO_ONE = 1, RAW_ONE_TO_ONE = 2)"
                )))
            }
        };
        let obj = Arc::new(ChannelObj {
            variant,
            children: Mutex::new(Vec::new()),
            closed: Arc::new(AtomicBool::new(false)),
            opened: AtomicBool::new(false),
            receives: AtomicBool::new(false),
        });
        let h = handle::insert(Object::Channel(obj))?;
        // SAFETY: checked non-null above; valid for writes by contract.
        unsafe { write_out(Channel, "Channel", h as LMQ_CHANNEL) }
    })
}

fn role(r: LMQ_CHANNELROLE) -> Result<Role> {
    match r {
        LMQ_CHANNELROLE_CLIENT => Ok(Role::Client),
        LMQ_CHANNELROLE_SERVER => Ok(Role::Server),
        r => Err(Error::invalid(format!(
            "Role {r} is not a LMQ_CHANNELROLE (CLIENT = 1, SERVER = 2)"
        ))),
    }
}

fn bounded_capacity(what: &str, capacity: LONG) -> Result<usize> {
    match usize::try_from(capacity) {
        Ok(c) if c >= 1 => Ok(c),
        _ => Err(Error::invalid(format!(
            "{what} {capacity} is not valid for a bounded queue type (rule: 1 ..= 2147483647 messages)"
        ))),
    }
}

fn require_unbounded(what: &str, capacity: LONG) -> Result<()> {
    if capacity != LMQ_QUEUECAPACITY_UNBOUNDED {
        return Err(Error::invalid(format!(
            "{what} is {capacity} but the queue type is unbounded (rule: pass LMQ_QUEUECAPACITY_UNBOUNDED)"
        )));
    }
    Ok(())
}

fn receive_kind(t: LMQ_RECEIVEQUEUETYPE, capacity: LONG) -> Result<Option<ReceiveQueue>> {
    const CAP: &str = "ReceiveQueueCapacity";
    Ok(Some(match t {
        LMQ_RECEIVEQUEUETYPE_NA => {
            if capacity != LMQ_QUEUECAPACITY_NA {
                return Err(Error::invalid(format!(
                    "{CAP} is {capacity} but the receive queue type is NA (rule: pass LMQ_QUEUECAPACITY_NA)"
                )));
            }
            return Ok(None);
        }
        LMQ_RECEIVEQUEUETYPE_MONOCONSUMER_UNBOUNDED => {
            require_unbounded(CAP, capacity)?;
            ReceiveQueue::mono()
        }
        LMQ_RECEIVEQUEUETYPE_MULTICONSUMER_UNBOUNDED => {
            require_unbounded(CAP, capacity)?;
            ReceiveQueue::multi()
        }
        LMQ_RECEIVEQUEUETYPE_MULTICONSUMER_BOUNDED_DISCARD_OLDEST => {
            ReceiveQueue::multi_discard_oldest(bounded_capacity(CAP, capacity)?)
        }
        LMQ_RECEIVEQUEUETYPE_MULTICONSUMER_BOUNDED_DISCARD_NEWEST => {
            ReceiveQueue::multi_discard_newest(bounded_capacity(CAP, capacity)?)
        }
        t => {
            return Err(Error::invalid(format!(
                "ReceiveQueueType {t} is not a LMQ_RECEIVEQUEUETYPE (0 ..= 4)"
            )))
        }
    }))
}

/// Opens a channel: servers create the shared resources now, clients
/// connect in the background. A SERVER whose address is taken fails with
/// `HRESULT_FROM_WIN32(ERROR_ALREADY_EXISTS)` and leaves the channel
/// unopened, so that it can be opened again as CLIENT.
#[no_mangle]
pub extern "C" fn LmqOpenChannel(
    Channel: LMQ_CHANNEL,
    Role: LMQ_CHANNELROLE,
    ReceiveQueueType: LMQ_RECEIVEQUEUETYPE,
    ReceiveQueueCapacity: LONG,
) -> HRESULT {
    boundary("LmqOpenChannel", || {
        let c = channel(Channel)?;
        let role = role(Role)?;
        let kind = receive_kind(ReceiveQueueType, ReceiveQueueCapacity)?;
        match &c.variant {
            Variant::Messaging(st) => {
                let mut st = st.lock();
                let mut b = match st.take() {
                    MsgState::Building(b) => b,
                    MsgState::Open(ch) => {
                        *st = MsgState::Open(ch);
                        return Err(Error::state("the channel is already open"));
                    }
                    closed @ MsgState::Closed(_) => {
                        *st = closed;
                        return Err(Error::closed());
                    }
                };
                // LwMQ's rule: a receive queue type iff some transport
                // receives (the Rust builder would pick a default).
                let receives = c.receives.load(Ordering::Acquire);
                if receives && kind.is_none() {
                    *st = MsgState::Building(b);
                    return Err(Error::invalid(
                        "a transport receives but no receive queue type was given (rule: the receive queue type is required iff some transport receives)",
                    ));
                }
                if let Some(kind) = kind {
                    b = Box::new(b.receive_queue(kind));
                }
                match b.open(role) {
                    Ok(ch) => {
                        *st = MsgState::Open(Box::new(ch));
                        c.opened.store(true, Ordering::Release);
                        Ok(())
                    }
                    Err(e) => {
                        let (kind, b) = e.into_parts();
                        *st = MsgState::Building(Box::new(b));
                        Err(crate::error::open_error(kind))
                    }
                }
            }
            Variant::Raw(raw) => {
                if kind.is_some() {
                    return Err(Error::invalid(
                        "raw channels have no receive queue (rule: LMQ_RECEIVEQUEUETYPE_NA, LMQ_QUEUECAPACITY_NA)",
                    ));
                }
                let transports = raw.transports.lock();
                match raw.phase.load(Ordering::Acquire) {
                    0 => {}
                    1 => return Err(Error::state("the channel is already open")),
                    _ => return Err(Error::closed()),
                }
                if transports.is_empty() {
                    return Err(crate::error::open_error(
                        lwmq::channel::OpenErrorKind::NoTransport,
                    ));
                }
                for (i, t) in transports.iter().enumerate() {
                    if let Err(e) = t.transport.start(role, ChannelKind::Raw) {
                        for started in &transports[..i] {
                            started.transport.stop();
                        }
                        if i > 0 {
                            raw.phase.store(Phase::Closed as u8, Ordering::Release);
                        }
                        return Err(e.into());
                    }
                }
                raw.phase.store(Phase::Open as u8, Ordering::Release);
                Ok(())
            }
        }
    })
}

/// The CPU a `PROCESSOR_NUMBER` names (Linux: group 0, CPUs 0 ..= 63).
fn processor(p: PROCESSOR_NUMBER) -> Result<usize> {
    if p.Group != 0 {
        return Err(Error::invalid(format!(
            "PROCESSOR_NUMBER.Group is {} but Linux has no processor groups (rule: Group 0, Number = the CPU number 0 ..= 63)",
            p.Group
        )));
    }
    if p.Number >= 64 {
        return Err(Error::invalid(format!(
            "PROCESSOR_NUMBER.Number is {} but a processor group holds CPUs 0 ..= 63",
            p.Number
        )));
    }
    if p.Reserved != 0 {
        return Err(Error::invalid("PROCESSOR_NUMBER.Reserved must be zero"));
    }
    Ok(usize::from(p.Number))
}

/// The CPUs a `GROUP_AFFINITY` names (Linux: group 0, bit `n` = CPU `n`).
fn group_affinity(a: GROUP_AFFINITY) -> Result<Vec<usize>> {
    if a.Group != 0 {
        return Err(Error::invalid(format!(
            "GROUP_AFFINITY.Group is {} but Linux has no processor groups (rule: Group 0, Mask bit n = CPU n)",
            a.Group
        )));
    }
    if a.Reserved != [0; 3] {
        return Err(Error::invalid("GROUP_AFFINITY.Reserved must be zero"));
    }
    if a.Mask == 0 {
        return Err(Error::invalid(
            "GROUP_AFFINITY.Mask is 0 (rule: at least one CPU)",
        ));
    }
    Ok((0..64).filter(|b| a.Mask & (1u64 << b) != 0).collect())
}

/// A CPU set as a `PROCESSOR_NUMBER`: its lowest CPU, group `cpu / 64`.
fn to_processor(cpus: &[usize]) -> PROCESSOR_NUMBER {
    let cpu = cpus.iter().copied().min().unwrap_or(0);
    PROCESSOR_NUMBER {
        Group: (cpu / 64).min(usize::from(WORD::MAX)) as WORD,
        Number: (cpu % 64) as BYTE,
        Reserved: 0,
    }
}

/// A CPU set as a `GROUP_AFFINITY`: the group of its lowest CPU and the
/// set's CPUs in that group.
fn to_group_affinity(cpus: &[usize]) -> GROUP_AFFINITY {
    let group = cpus.iter().copied().min().unwrap_or(0) / 64;
    let mask = cpus
        .iter()
        .filter(|&&c| c / 64 == group)
        .fold(0u64, |m, &c| m | 1u64 << (c % 64));
    GROUP_AFFINITY {
        Mask: mask,
        Group: group.min(usize::from(WORD::MAX)) as WORD,
        Reserved: [0; 3],
    }
}

/// Checks an optional output buffer for a value of `need` bytes (named
/// `what`): `Ok(false)` when none is given, `Ok(true)` when it is large
/// enough.
fn output_buffer(out: PVOID, len: ULONG, need: usize, what: &str) -> Result<bool> {
    match (out.is_null(), len) {
        (true, 0) => Ok(false),
        (true, _) => Err(Error::null(
            "OutputBuffer (with a non-zero OutputBufferLengthBytes)",
        )),
        (false, l) if (l as usize) < need => Err(Error::win32(
            ERROR_INSUFFICIENT_BUFFER,
            format!("OutputBufferLengthBytes is {l} but the previous value is a {what} of {need} bytes (rule: pass sizeof({what}))"),
        )),
        (false, _) => Ok(true),
    }
}

/// Applies a channel control code. Both codes set the CPU affinity of the
/// channel's service threads (messaging channels only; raw channels have
/// none): `SERVICETHREADIDEALPROCESSOR` takes a `PROCESSOR_NUMBER` (pins to
/// that CPU), `SERVICETHREADGROUPAFFINITY` a `GROUP_AFFINITY` (pins to the
/// CPUs of `Mask`); Linux has one processor group, 0. With an output
/// buffer of the same type, the value in force before the call is written
/// there and `*BytesReturned` set to its size; an input of NULL and 0
/// bytes only reads it. A too-small output buffer is
/// `HRESULT_FROM_WIN32(ERROR_INSUFFICIENT_BUFFER)` and changes nothing.
///
/// # Safety
/// `InputBuffer` is null or valid for `InputBufferLengthBytes` bytes;
/// `OutputBuffer` likewise for `OutputBufferLengthBytes`; `BytesReturned`
/// is null or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn LmqChannelControl(
    Channel: LMQ_CHANNEL,
    ControlCode: LMQ_CHANNELCONTROLCODE,
    InputBuffer: PVOID,
    InputBufferLengthBytes: ULONG,
    OutputBuffer: PVOID,
    OutputBufferLengthBytes: ULONG,
    BytesReturned: PULONG,
) -> HRESULT {
    boundary("LmqChannelControl", || {
        // SAFETY: forwarded caller contract.
        unsafe { write_opt(BytesReturned, 0) };
        let c = channel(Channel)?;
        let query = InputBuffer.is_null() && InputBufferLengthBytes == 0;
        let (cpus, size, what) = match ControlCode {
            LMQ_CHANNELCONTROLCODE_SERVICETHREADIDEALPROCESSOR => {
                let cpus = if query {
                    None
                } else {
                    // SAFETY: forwarded caller contract.
                    let p = unsafe { input::<PROCESSOR_NUMBER>(InputBuffer, InputBufferLengthBytes) }?;
                    Some(vec![processor(p)?])
                };
                (cpus, size_of::<PROCESSOR_NUMBER>(), "PROCESSOR_NUMBER")
            }
            LMQ_CHANNELCONTROLCODE_SERVICETHREADGROUPAFFINITY => {
                let cpus = if query {
                    None
                } else {
                    // SAFETY: forwarded caller contract.
                    let a = unsafe { input::<GROUP_AFFINITY>(InputBuffer, InputBufferLengthBytes) }?;
                    Some(group_affinity(a)?)
                };
                (cpus, size_of::<GROUP_AFFINITY>(), "GROUP_AFFINITY")
            }
            code => {
                return Err(Error::invalid(format!(
                    "ControlCode {code} is not a LMQ_CHANNELCONTROLCODE (SERVICETHREADIDEALPROCESSOR = 0, SERVICETHREADGROUPAFFINITY = 1)"
                )))
            }
        };
        let output = output_buffer(OutputBuffer, OutputBufferLengthBytes, size, what)?;
        if cpus.is_none() && !output {
            return Err(Error::invalid(
                "no InputBuffer and no OutputBuffer: nothing to set or read (rule: give the new value, a buffer for the previous one, or both)",
            ));
        }
        let Variant::Messaging(ch) = &c.variant else {
            return Err(Error::win32(
                ERROR_NOT_SUPPORTED,
                "raw channels have no service thread (the application's threads move the buffers)",
            ));
        };
        let st = ch.lock();
        let affinity_error = |e: lwmq::channel::AffinityError| Error::invalid(e.to_string());
        let previous = match (&*st, cpus) {
            (MsgState::Building(b), Some(cpus)) => b
                .set_service_thread_affinity(&cpus)
                .map_err(affinity_error)?,
            (MsgState::Building(b), None) => b.service_thread_affinity(),
            (MsgState::Open(ch), Some(cpus)) => ch
                .set_service_thread_affinity(&cpus)
                .map_err(affinity_error)?,
            (MsgState::Open(ch), None) => ch.service_thread_affinity(),
            (MsgState::Closed(_), _) => return Err(Error::closed()),
        };
        if output {
            // SAFETY: `OutputBuffer` is non-null and valid for at least
            // `size` bytes (checked above against the caller's length);
            // unaligned writes of plain data.
            unsafe {
                match ControlCode {
                    LMQ_CHANNELCONTROLCODE_SERVICETHREADIDEALPROCESSOR => OutputBuffer
                        .cast::<PROCESSOR_NUMBER>()
                        .write_unaligned(to_processor(&previous)),
                    _ => OutputBuffer
                        .cast::<GROUP_AFFINITY>()
                        .write_unaligned(to_group_affinity(&previous)),
                }
                write_opt(BytesReturned, size as ULONG);
            }
        }
        Ok(())
    })
}

fn no_output(out: PVOID, len: ULONG) -> Result<()> {
    if !out.is_null() || len != 0 {
        return Err(Error::invalid(
            "this control code has no output (rule: OutputBuffer NULL, OutputBufferLengthBytes 0)",
        ));
    }
    Ok(())
}

/// Reads a control code's input of type `T`, which must be given with
/// exactly `size_of::<T>()` bytes.
///
/// # Safety
/// `p` is null or valid for `len` bytes; `T` is plain data (any bytes are a
/// valid value).
unsafe fn input<T: Copy>(p: PVOID, len: ULONG) -> Result<T> {
    if p.is_null() {
        return Err(Error::null("InputBuffer"));
    }
    if len as usize != std::mem::size_of::<T>() {
        return Err(Error::invalid(format!(
            "InputBufferLengthBytes is {len} but this control code takes {} bytes",
            std::mem::size_of::<T>()
        )));
    }
    // SAFETY: `len` bytes are readable and equal the size of `T`, which is
    // plain data; the read is unaligned-safe.
    Ok(unsafe { p.cast::<T>().read_unaligned() })
}

/// Reads a control code's input of 1 ..= `max` values of type `T`, given
/// with a length that is a multiple of `size_of::<T>()`.
///
/// # Safety
/// `p` is null or valid for `len` bytes; `T` is plain data (any bytes are a
/// valid value).
unsafe fn input_array<T: Copy>(p: PVOID, len: ULONG, max: usize, what: &str) -> Result<Vec<T>> {
    if p.is_null() {
        return Err(Error::null("InputBuffer"));
    }
    let size = size_of::<T>();
    let n = len as usize / size;
    if !(len as usize).is_multiple_of(size) || n == 0 || n > max {
        return Err(Error::invalid(format!(
            "InputBufferLengthBytes is {len} but this control code takes 1 ..= {max} {what}s of {size} bytes each"
        )));
    }
    Ok((0..n)
        // SAFETY: `n * size <= len` bytes are readable; each read is of
        // plain data, unaligned-safe.
        .map(|i| unsafe { p.cast::<T>().add(i).read_unaligned() })
        .collect())
}

/// Most rules one `LMQ_TRANSPORTCONTROL_SETPEERACCESSPOLICY` takes.
const MAX_ACCESS_RULES: usize = 1024;

/// The policy a list of `LMQ_PEERACCESSRULE`s describes.
fn access_policy(rules: &[LMQ_PEERACCESSRULE]) -> Result<AccessPolicy> {
    let mut policy = AccessPolicy::same_user();
    let mut any = false;
    for (i, r) in rules.iter().enumerate() {
        let no_id = |name: &str| {
            if r.Id != 0 {
                return Err(Error::invalid(format!(
                    "rule {i}: LMQ_PEERACCESS_{name} takes Id 0, not {}",
                    r.Id
                )));
            }
            Ok(())
        };
        match r.Access {
            LMQ_PEERACCESS_SAMEUSER => no_id("SAMEUSER")?,
            LMQ_PEERACCESS_USER => policy = policy.allow_uid(r.Id),
            LMQ_PEERACCESS_GROUP => policy = policy.allow_gid(r.Id),
            LMQ_PEERACCESS_ANYUSER => {
                no_id("ANYUSER")?;
                any = true;
            }
            a => {
                return Err(Error::invalid(format!(
                    "rule {i}: Access {a} is not a LMQ_PEERACCESS (SAMEUSER = 0, USER = 1, GROUP = 2, ANYUSER = 3)"
                )))
            }
        }
    }
    Ok(if any {
        AccessPolicy::any_user()
    } else {
        policy
    })
}

/// Waits until everything queued was sent and taken by the peer, or until
/// `TimeoutMs` (`HRESULT_FROM_WIN32(ERROR_TIMEOUT)`; sending goes on).
#[no_mangle]
pub extern "C" fn LmqFlushChannel(Channel: LMQ_CHANNEL, TimeoutMs: UINT32) -> HRESULT {
    boundary("LmqFlushChannel", || {
        let c = channel(Channel)?;
        let deadline = timeout(TimeoutMs).deadline();
        match &c.variant {
            Variant::Messaging(st) => loop {
                let g = st.lock();
                let ch = match &*g {
                    MsgState::Open(ch) => ch,
                    MsgState::Building(_) => return Err(Error::not_open()),
                    MsgState::Closed(_) => return Err(Error::closed()),
                };
                match ch.flush(Timeout::after(deadline.slice(SLICE))) {
                    Err(lwmq::channel::FlushError::Timeout) if !deadline.passed() => {
                        MutexGuard::unlock_fair(g);
                    }
                    r => return Ok(r?),
                }
            },
            Variant::Raw(raw) => {
                match raw.phase.load(Ordering::Acquire) {
                    1 => {}
                    0 => return Err(Error::not_open()),
                    _ => return Err(Error::closed()),
                }
                // The list's lock is released before any wait.
                let transports = raw.transports.lock().clone();
                flush_raw(&transports, deadline, false)
            }
        }
    })
}

/// Closes a channel: posts fail from now on; waits up to
/// `LingerTimeoutMs` for queued messages to be sent, then closes regardless
/// (returning `HRESULT_FROM_WIN32(ERROR_TIMEOUT)` if some were left).
/// Closing a channel that is not open, or again, just marks it closed
/// (`S_OK`). Waiting calls on it return
/// `HRESULT_FROM_WIN32(ERROR_OPERATION_ABORTED)`.
#[no_mangle]
pub extern "C" fn LmqCloseChannel(Channel: LMQ_CHANNEL, LingerTimeoutMs: UINT32) -> HRESULT {
    boundary("LmqCloseChannel", || {
        let c = channel(Channel)?;
        c.closed.store(true, Ordering::Release);
        match &c.variant {
            Variant::Messaging(st) => close_messaging(&mut st.lock(), timeout(LingerTimeoutMs)),
            Variant::Raw(raw) => raw.close(timeout(LingerTimeoutMs)),
        }
    })
}

/// Closes an open messaging channel (posts already fail: its `closed` flag
/// is set): waits up to `linger` for what is queued to be sent and taken,
/// keeps what was received and not yet taken for `LmqReceiveMessage`, then
/// closes the Rust channel. `ERROR_TIMEOUT` if the linger ran out first.
fn close_messaging(st: &mut MsgState, linger: Timeout) -> Result<()> {
    let mut ch = match st.take() {
        MsgState::Open(ch) => ch,
        // Never opened: nothing to close. Closed: nothing more to do.
        MsgState::Building(_) => return Ok(()),
        closed @ MsgState::Closed(_) => {
            *st = closed;
            return Ok(());
        }
    };
    let flushed = if linger.is_zero() {
        Ok(())
    } else {
        ch.flush(linger)
    };
    let left: VecDeque<Message> = ch.try_iter().collect();
    let closed = ch.close(Timeout::ZERO);
    *st = MsgState::Closed(left);
    match (linger.is_zero(), flushed, closed) {
        (true, ..) | (false, Ok(()), Ok(())) => Ok(()),
        _ => Err(Error::win32(
            ERROR_TIMEOUT,
            "the linger ran out with messages not yet sent or taken by the peer; the channel is closed all the same",
        )),
    }
}

/// Destroys a channel (closing it with zero linger if it is open) and sets
/// `*Channel` to NULL. Its send queue and transport handles become invalid.
///
/// # Safety
/// `Channel` is null or valid for a read and a write.
#[no_mangle]
pub unsafe extern "C" fn LmqDestroyChannel(Channel: PLMQ_CHANNEL) -> HRESULT {
    boundary("LmqDestroyChannel", || {
        // SAFETY: forwarded caller contract.
        let h = unsafe { read_handle(Channel, "Channel") }?;
        let Object::Channel(c) = handle::remove(Kind::Channel, h)? else {
            unreachable!("registry returned another kind")
        };
        // SAFETY: non-null (read above), valid for writes by contract.
        unsafe { Channel.write(std::ptr::null_mut()) };
        let children = std::mem::take(&mut *c.children.lock());
        let removed: Vec<Object> = children
            .into_iter()
            .filter_map(|(k, h)| handle::remove(k, h).ok())
            .collect();
        c.shutdown();
        drop(removed);
        Ok(())
    })
}

// ------------------------------------------------------------ send queues

/// A send queue type as the Rust API's options: `(mono, options)`. LwMQ's
/// unbounded types stay unbounded (they never wait); its bounded types are
/// the discard limits.
fn send_options(
    t: LMQ_SENDQUEUETYPE,
    capacity: LONG,
    priority: Priority,
) -> Result<(bool, QueueOptions)> {
    const CAP: &str = "Capacity";
    let bounded = || bounded_capacity(CAP, capacity);
    let o = QueueOptions::new(priority);
    Ok(match t {
        LMQ_SENDQUEUETYPE_MONOPRODUCER_UNBOUNDED => {
            require_unbounded(CAP, capacity)?;
            (true, o.unbounded())
        }
        LMQ_SENDQUEUETYPE_MULTIPRODUCER_UNBOUNDED => {
            require_unbounded(CAP, capacity)?;
            (false, o.unbounded())
        }
        LMQ_SENDQUEUETYPE_MULTIPRODUCER_UNBOUNDED_TAGGED => {
            require_unbounded(CAP, capacity)?;
            (false, o.unbounded().tagged())
        }
        LMQ_SENDQUEUETYPE_MULTIPRODUCER_BOUNDED_DISCARD_OLDEST => {
            (false, o.discard_oldest(bounded()?))
        }
        LMQ_SENDQUEUETYPE_MULTIPRODUCER_BOUNDED_DISCARD_NEWEST => {
            (false, o.discard_newest(bounded()?))
        }
        LMQ_SENDQUEUETYPE_MULTIPRODUCER_BOUNDED_TAGGED_DISCARD_OLDEST => {
            (false, o.discard_oldest(bounded()?).tagged())
        }
        LMQ_SENDQUEUETYPE_MULTIPRODUCER_BOUNDED_TAGGED_DISCARD_NEWEST => {
            (false, o.discard_newest(bounded()?).tagged())
        }
        t => {
            return Err(Error::invalid(format!(
                "QueueType {t} is not a LMQ_SENDQUEUETYPE (MONOPRODUCER_UNBOUNDED = 1 ..= MULTIPRODUCER_BOUNDED_TAGGED_DISCARD_NEWEST = 7; NA = 0 is no queue)"
            )))
        }
    })
}

fn priority(p: LMQ_SENDQUEUEPRIORITY) -> Result<Priority> {
    Ok(match p {
        LMQ_SENDQUEUEPRIORITY_TIME_CRITICAL => Priority::TimeCritical,
        LMQ_SENDQUEUEPRIORITY_HIGHEST => Priority::Highest,
        LMQ_SENDQUEUEPRIORITY_ABOVE_NORMAL => Priority::AboveNormal,
        LMQ_SENDQUEUEPRIORITY_NORMAL => Priority::Normal,
        LMQ_SENDQUEUEPRIORITY_BELOW_NORMAL => Priority::BelowNormal,
        LMQ_SENDQUEUEPRIORITY_LOWEST => Priority::Lowest,
        LMQ_SENDQUEUEPRIORITY_IDLE => Priority::Idle,
        p => {
            return Err(Error::invalid(format!(
                "Priority {p} is not a LMQ_SENDQUEUEPRIORITY (TIME_CRITICAL = 0 ..= IDLE = 6)"
            )))
        }
    })
}

/// Adds a send queue (before open only). Unbounded types take
/// `LMQ_QUEUECAPACITY_UNBOUNDED`, bounded ones a capacity of at least 1.
///
/// # Safety
/// `SendQueue` is null or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn LmqAddSendQueue(
    Channel: LMQ_CHANNEL,
    QueueType: LMQ_SENDQUEUETYPE,
    Priority: LMQ_SENDQUEUEPRIORITY,
    Capacity: LONG,
    SendQueue: PLMQ_SENDQUEUE,
) -> HRESULT {
    boundary("LmqAddSendQueue", || {
        if SendQueue.is_null() {
            return Err(Error::null("SendQueue"));
        }
        let c = channel(Channel)?;
        let priority = priority(Priority)?;
        let (mono, options) = send_options(QueueType, Capacity, priority)?;
        let bounded = Capacity != LMQ_QUEUECAPACITY_UNBOUNDED;
        let mut st = messaging(&c, "send queues")?;
        let MsgState::Building(b) = &mut *st else {
            return Err(Error::state(
                "send queues can only be added before the channel is opened",
            ));
        };
        let queue = if mono {
            QueueKind::Mono(Mutex::new(b.mono_queue(options)?))
        } else {
            QueueKind::Multi(b.multi_queue(options)?)
        };
        drop(st);
        let obj = QueueObj {
            queue,
            bounded,
            closed: Arc::clone(&c.closed),
        };
        let h = handle::insert(Object::SendQueue(Arc::new(obj)))?;
        c.children.lock().push((Kind::SendQueue, h));
        // SAFETY: checked non-null above; valid for writes by contract.
        unsafe { write_out(SendQueue, "SendQueue", h as LMQ_SENDQUEUE) }
    })
}

// ------------------------------------------------------------- transports

fn directions(flags: UINT32) -> Result<Directions> {
    match flags {
        LMQ_TRANSPORTCREATIONFLAGS_SEND => Ok(Directions::Send),
        LMQ_TRANSPORTCREATIONFLAGS_RECEIVE => Ok(Directions::Receive),
        LMQ_TRANSPORTCREATIONFLAGS_SENDRECEIVE => Ok(Directions::SendReceive),
        f => Err(Error::invalid(format!(
            "CreationFlags {f:#x} is not SEND (1), RECEIVE (2) or SENDRECEIVE (3)"
        ))),
    }
}

/// The Rust endpoint for `LmqAddTransport`'s arguments, after LwMQ's own
/// rules, in its words and order: the descriptor, `BufferSizeBytes`, then
/// the counts against the creation flags (zero for an unused direction, at
/// least one for a used one).
fn endpoint(
    descriptor: &str,
    buffer_size: SIZE_T,
    send: LONG,
    receive: LONG,
    dirs: Directions,
) -> Result<Endpoint> {
    let ep = Endpoint::new(descriptor)?;
    let max = ep.limits().max_buffer_size;
    if buffer_size == 0 || buffer_size > max {
        return Err(Error::invalid(format!(
            "{descriptor}: BufferSizeBytes {buffer_size} is out of range (rule: 1..={max} bytes for this transport)"
        )));
    }
    let count = |which: &str, v: LONG| {
        u32::try_from(v).map_err(|_| {
            Error::invalid(format!(
                "{which} is negative ({v}) (rule: buffer counts are >= 0)"
            ))
        })
    };
    let (s, r) = (
        count("MaxPendingSendBuffers", send)?,
        count("MaxPendingReceiveBuffers", receive)?,
    );
    let check = |uses: bool, which: &str, value: u32, dir: &str, only: &str| {
        match (uses, value) {
        (false, v) if v != 0 => Err(Error::invalid(format!(
            "{which} is {v} but the transport does not {dir} (rule: a transport that only {only} must have zero {which})"
        ))),
        (true, 0) => Err(Error::invalid(format!(
            "{which} is 0 but the transport {dir}s (rule: at least one buffer for each direction used)"
        ))),
        _ => Ok(()),
    }
    };
    check(dirs.sends(), "MaxPendingSendBuffers", s, "send", "receives")?;
    check(
        dirs.receives(),
        "MaxPendingReceiveBuffers",
        r,
        "receive",
        "sends",
    )?;
    Ok(ep
        .buffer_size(buffer_size)
        .send_buffers(s)
        .receive_buffers(r))
}

const ADD_AFTER_OPEN: &str = "transports can only be added before the channel is opened";

fn add_transport(
    channel_h: LMQ_CHANNEL,
    descriptor: &str,
    buffer_size: SIZE_T,
    send: LONG,
    receive: LONG,
    flags: UINT32,
) -> Result<usize> {
    let c = channel(channel_h)?;
    let dirs = directions(flags)?;
    let ep = endpoint(descriptor, buffer_size, send, receive, dirs)?;
    let obj = match &c.variant {
        Variant::Messaging(st) => {
            let mut st = st.lock();
            let MsgState::Building(b) = &mut *st else {
                return Err(Error::state(ADD_AFTER_OPEN));
            };
            let id = b.add_transport(ep)?;
            if dirs.receives() {
                c.receives.store(true, Ordering::Release);
            }
            TransportObj::Messaging {
                channel: Arc::clone(&c),
                id,
            }
        }
        Variant::Raw(raw) => {
            let mut transports = raw.transports.lock();
            if raw.phase.load(Ordering::Acquire) != Phase::Created as u8 {
                return Err(Error::state(ADD_AFTER_OPEN));
            }
            if let Some(first) = transports.first() {
                let existing = first.transport.config().buffer_size();
                if existing != buffer_size {
                    return Err(lwmq::ConfigError::BufferSizeMismatch {
                        descriptor: descriptor.to_owned(),
                        existing,
                        new: buffer_size,
                    }
                    .into());
                }
            }
            let (s, r) = (
                u32::try_from(send).unwrap_or(0),
                u32::try_from(receive).unwrap_or(0),
            );
            let t = driver::create(descriptor, buffer_size, s, r)?;
            let rt = Arc::new(RawTransport {
                transport: t,
                phase: Arc::clone(&raw.phase),
                send: Mutex::new(SideState::new()),
                recv: Mutex::new(SideState::new()),
            });
            transports.push(Arc::clone(&rt));
            TransportObj::Raw(rt)
        }
    };
    let h = handle::insert(Object::Transport(Arc::new(obj)))?;
    c.children.lock().push((Kind::Transport, h));
    Ok(h)
}

/// Adds a transport by descriptor (UTF-16, e.g. `u"ipc://company/product/chan:1"`),
/// before open only. `Transport` is optional (NULL if not needed; raw
/// channels need it for their buffer functions).
///
/// # Safety
/// `TransportDescriptor` is null or null-terminated; `Transport` is null or
/// valid for a write.
#[no_mangle]
pub unsafe extern "C" fn LmqAddTransport(
    Channel: LMQ_CHANNEL,
    TransportDescriptor: PCWSTR,
    BufferSizeBytes: SIZE_T,
    MaxPendingSendBuffers: LONG,
    MaxPendingReceiveBuffers: LONG,
    CreationFlags: UINT32,
    Transport: PLMQ_TRANSPORT,
) -> HRESULT {
    boundary("LmqAddTransport", || {
        // SAFETY: forwarded caller contract.
        let d = unsafe { utf16_arg(TransportDescriptor) }?;
        let h = add_transport(
            Channel,
            &d,
            BufferSizeBytes,
            MaxPendingSendBuffers,
            MaxPendingReceiveBuffers,
            CreationFlags,
        )?;
        // SAFETY: forwarded caller contract.
        unsafe { write_opt(Transport, h as LMQ_TRANSPORT) };
        Ok(())
    })
}

/// `LmqAddTransport` with a UTF-8 descriptor.
///
/// # Safety
/// As `LmqAddTransport`.
#[no_mangle]
pub unsafe extern "C" fn LmqAddTransportA(
    Channel: LMQ_CHANNEL,
    TransportDescriptor: PCSTR,
    BufferSizeBytes: SIZE_T,
    MaxPendingSendBuffers: LONG,
    MaxPendingReceiveBuffers: LONG,
    CreationFlags: UINT32,
    Transport: PLMQ_TRANSPORT,
) -> HRESULT {
    boundary("LmqAddTransportA", || {
        // SAFETY: forwarded caller contract.
        let d = unsafe { utf8_arg(TransportDescriptor) }?;
        let h = add_transport(
            Channel,
            &d,
            BufferSizeBytes,
            MaxPendingSendBuffers,
            MaxPendingReceiveBuffers,
            CreationFlags,
        )?;
        // SAFETY: forwarded caller contract.
        unsafe { write_opt(Transport, h as LMQ_TRANSPORT) };
        Ok(())
    })
}

fn query_limits(d: &str, limits: PLMQ_TRANSPORTBUFFERLIMITS, size: ULONG) -> Result<()> {
    if limits.is_null() {
        return Err(Error::null("Limits"));
    }
    let need = std::mem::size_of::<LMQ_TRANSPORTBUFFERLIMITS>();
    if (size as usize) < need {
        return Err(Error::invalid(format!(
            "LimitsSize is {size} but LMQ_TRANSPORTBUFFERLIMITS is {need} bytes (rule: pass sizeof(LMQ_TRANSPORTBUFFERLIMITS))"
        )));
    }
    let l = lwmq::transport::query_limits(d)?;
    let out = LMQ_TRANSPORTBUFFERLIMITS {
        MaxBufferSizeBytes: l.max_buffer_size,
        MaxPendingSendBuffers: l.max_send_buffers.min(i32::MAX as u32) as LONG,
        MaxPendingReceiveBuffers: l.max_receive_buffers.min(i32::MAX as u32) as LONG,
        MaxInlineDataSize: l.max_inline_data_size,
    };
    // SAFETY: `limits` is non-null and valid for `size >= need` bytes by the
    // caller's contract; bytes past our struct (a newer, larger struct) are
    // zeroed so that fields we do not know read as 0.
    unsafe {
        std::ptr::write_bytes(limits.cast::<u8>(), 0, size as usize);
        limits.write_unaligned(out);
    }
    Ok(())
}

/// Reports the buffer limits of the transport a descriptor selects.
/// `LimitsSize` is `sizeof(LMQ_TRANSPORTBUFFERLIMITS)` (a larger size from
/// a newer header is accepted: unknown fields are zeroed).
///
/// # Safety
/// `Descriptor` is null or null-terminated; `Limits` is null or valid for
/// `LimitsSize` bytes.
#[no_mangle]
pub unsafe extern "C" fn LmqQueryTransportBufferLimits(
    Descriptor: PCWSTR,
    Limits: PLMQ_TRANSPORTBUFFERLIMITS,
    LimitsSize: ULONG,
) -> HRESULT {
    boundary("LmqQueryTransportBufferLimits", || {
        // SAFETY: forwarded caller contract.
        let d = unsafe { utf16_arg(Descriptor) }?;
        query_limits(&d, Limits, LimitsSize)
    })
}

/// `LmqQueryTransportBufferLimits` with a UTF-8 descriptor.
///
/// # Safety
/// As `LmqQueryTransportBufferLimits`.
#[no_mangle]
pub unsafe extern "C" fn LmqQueryTransportBufferLimitsA(
    Descriptor: PCSTR,
    Limits: PLMQ_TRANSPORTBUFFERLIMITS,
    LimitsSize: ULONG,
) -> HRESULT {
    boundary("LmqQueryTransportBufferLimitsA", || {
        // SAFETY: forwarded caller contract.
        let d = unsafe { utf8_arg(Descriptor) }?;
        query_limits(&d, Limits, LimitsSize)
    })
}

/// Applies a transport control code (none has an output: `OutputBuffer`
/// NULL, length 0; `*BytesReturned`, if given, is set to 0). IPC:
/// `LMQ_TRANSPORTCONTROL_SETCLIENTCONNECTIONRETRYINTERVALMS` with a `ULONG`
/// input in milliseconds; lwmq's own `LMQ_TRANSPORTCONTROL_SETPEERACCESSPOLICY`
/// with 1 or more `LMQ_PEERACCESSRULE`s (before open only; the peers of
/// the same user are always accepted, each rule adds a user id, a group id
/// or any user) and `LMQ_TRANSPORTCONTROL_SETSPINDURATIONNS` with a `ULONG`
/// number of nanoseconds (0 ..= 100,000,000). `tcp://`, before open only:
/// `LMQ_TRANSPORTCONTROL_SETHEARTBEATTIMEOUTMS` with a `ULONG` (0 = off,
/// 100 ..= 3,600,000 ms) and `LMQ_TRANSPORTCONTROL_SETPEERALLOWLIST` with
/// UTF-8 text (networks in CIDR form separated by commas or spaces).
///
/// # Safety
/// As `LmqChannelControl`.
#[no_mangle]
pub unsafe extern "C" fn LmqTransportControl(
    Transport: LMQ_TRANSPORT,
    ControlCode: ULONG,
    InputBuffer: PVOID,
    InputBufferLengthBytes: ULONG,
    OutputBuffer: PVOID,
    OutputBufferLengthBytes: ULONG,
    BytesReturned: PULONG,
) -> HRESULT {
    boundary("LmqTransportControl", || {
        // SAFETY: forwarded caller contract.
        unsafe { write_opt(BytesReturned, 0) };
        let t = transport_obj(Transport)?;
        no_output(OutputBuffer, OutputBufferLengthBytes)?;
        let control = match ControlCode {
            LMQ_TRANSPORTCONTROL_SETCLIENTCONNECTIONRETRYINTERVALMS => {
                // SAFETY: forwarded caller contract.
                let ms: ULONG = unsafe { input(InputBuffer, InputBufferLengthBytes) }?;
                TransportControl::SetClientConnectionRetryInterval(Duration::from_millis(
                    u64::from(ms),
                ))
            }
            LMQ_TRANSPORTCONTROL_SETPEERACCESSPOLICY => {
                // SAFETY: forwarded caller contract.
                let rules = unsafe {
                    input_array::<LMQ_PEERACCESSRULE>(
                        InputBuffer,
                        InputBufferLengthBytes,
                        MAX_ACCESS_RULES,
                        "LMQ_PEERACCESSRULE",
                    )
                }?;
                before_open(&t, "the peer access policy")?;
                TransportControl::SetAccessPolicy(access_policy(&rules)?)
            }
            LMQ_TRANSPORTCONTROL_SETSPINDURATIONNS => {
                // SAFETY: forwarded caller contract.
                let ns: ULONG = unsafe { input(InputBuffer, InputBufferLengthBytes) }?;
                TransportControl::SetSpinDuration(Duration::from_nanos(u64::from(ns)))
            }
            LMQ_TRANSPORTCONTROL_SETHEARTBEATTIMEOUTMS => {
                before_open(&t, "the heartbeat timeout")?;
                // SAFETY: forwarded caller contract.
                let ms: ULONG = unsafe { input(InputBuffer, InputBufferLengthBytes) }?;
                TransportControl::SetHeartbeatTimeout(Duration::from_millis(u64::from(ms)))
            }
            LMQ_TRANSPORTCONTROL_SETPEERALLOWLIST => {
                before_open(&t, "the peer allow-list")?;
                // SAFETY: forwarded caller contract.
                let text = unsafe {
                    input_array::<u8>(
                        InputBuffer,
                        InputBufferLengthBytes,
                        MAX_ALLOW_LIST_BYTES,
                        "byte",
                    )
                }?;
                TransportControl::SetPeerAllowList(allow_list(&text)?)
            }
            code => {
                return Err(Error::invalid(format!(
                    "ControlCode {code:#x} is not a LMQ_TRANSPORTCONTROL code (SETCLIENTCONNECTIONRETRYINTERVALMS = 0x1, SETPEERACCESSPOLICY = 0x10001, SETSPINDURATIONNS = 0x10002, SETHEARTBEATTIMEOUTMS = 0x10003, SETPEERALLOWLIST = 0x10004)"
                )))
            }
        };
        match &*t {
            TransportObj::Raw(rt) => Ok(rt.transport.control(control)?),
            TransportObj::Messaging { channel, id } => {
                let mut st = messaging(channel, "messaging transports")?;
                messaging_control(&mut st, *id, control)
            }
        }
    })
}

/// Most bytes one `LMQ_TRANSPORTCONTROL_SETPEERALLOWLIST` takes.
const MAX_ALLOW_LIST_BYTES: usize = 64 * 1024;

/// Refuses a control code that only applies before the channel opens, on
/// a transport whose channel has opened (or closed).
fn before_open(t: &TransportObj, what: &str) -> Result<()> {
    let opened = match t {
        TransportObj::Raw(rt) => rt.phase.load(Ordering::Acquire) != Phase::Created as u8,
        TransportObj::Messaging { channel, .. } => {
            channel.opened.load(Ordering::Acquire) || channel.closed.load(Ordering::Acquire)
        }
    };
    if opened {
        return Err(Error::state(format!(
            "{what} can only be set before the channel opens (rule: LmqTransportControl between LmqAddTransport and LmqOpenChannel)"
        )));
    }
    Ok(())
}

/// The allow-list a `LMQ_TRANSPORTCONTROL_SETPEERALLOWLIST` text names:
/// UTF-8, networks separated by commas or white space, trailing NULs
/// ignored; an empty text allows any peer.
fn allow_list(text: &[u8]) -> Result<AllowList> {
    let end = text.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let text = std::str::from_utf8(&text[..end]).map_err(|e| {
        Error::invalid(format!(
            "the allow-list is not valid UTF-8 (byte {}): give networks such as 10.0.0.0/8, separated by commas",
            e.valid_up_to()
        ))
    })?;
    let nets: Vec<&str> = text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|n| !n.is_empty())
        .collect();
    AllowList::parse(&nets).map_err(|e| Error::invalid(format!("the allow-list: {e}")))
}

/// A control code on transport `id` of a messaging channel: a setting of
/// its endpoint before open, of the running transport after.
fn messaging_control(st: &mut MsgState, id: TransportId, control: TransportControl) -> Result<()> {
    let gone = || Error::invalid(format!("the channel has no transport {}", id.0));
    match st {
        MsgState::Building(b) => {
            let ep = b.endpoint_mut(id).ok_or_else(gone)?;
            match control {
                TransportControl::SetClientConnectionRetryInterval(d) => {
                    ep.set_retry_interval(d)?
                }
                TransportControl::SetSpinDuration(d) => ep.set_spin(d)?,
                TransportControl::SetAccessPolicy(p) => ep.set_access(p),
                TransportControl::SetHeartbeatTimeout(d) => ep.set_heartbeat_timeout(d)?,
                TransportControl::SetPeerAllowList(list) => ep.set_allow_peers(list)?,
                other => return Err(Error::invalid(format!("unsupported control {other:?}"))),
            }
            Ok(())
        }
        MsgState::Open(ch) => {
            let t = ch.transport(id).ok_or_else(gone)?;
            match control {
                TransportControl::SetClientConnectionRetryInterval(d) => {
                    Ok(t.set_retry_interval(d)?)
                }
                TransportControl::SetSpinDuration(d) => Ok(t.set_spin(d)?),
                _ => Err(Error::state(
                    "the peer access policy can only be set before the channel opens (rule: LmqTransportControl between LmqAddTransport and LmqOpenChannel)",
                )),
            }
        }
        MsgState::Closed(_) => Err(Error::closed()),
    }
}

// -------------------------------------------------------------- receiving

/// Waits for a message for up to `TimeoutMs` (0 polls, `INFINITE` waits),
/// holding the channel's mutex one slice at a time. After a close, the
/// messages received before it come first, then "closed".
pub(crate) fn receive(c: &ChannelObj, ms: UINT32) -> Result<Message> {
    let deadline = timeout(ms).deadline();
    let Variant::Messaging(st) = &c.variant else {
        return Err(Error::invalid(
            "raw channels have no messages (rule: use LmqRawChannelReceiveBuffer)",
        ));
    };
    loop {
        let mut g = st.lock();
        let wait = if ms == 0 {
            Timeout::ZERO
        } else {
            Timeout::after(deadline.slice(SLICE))
        };
        let got = match &mut *g {
            MsgState::Open(ch) => ch.receive(wait),
            MsgState::Closed(left) => {
                return left
                    .pop_front()
                    .ok_or_else(|| lwmq::ReceiveError::Closed.into())
            }
            MsgState::Building(_) => {
                return Err(Error::state(
                    "the channel is not open (rule: open the channel before receiving)",
                ))
            }
        };
        match got {
            // Each slice that ends with nothing while the transport is
            // refused says `Refused`; LwMQ's receive waits its whole
            // timeout and then reports the refusal as its timeout's text.
            Err(lwmq::ReceiveError::Timeout | lwmq::ReceiveError::Refused { .. })
                if ms != 0 && !deadline.passed() =>
            {
                MutexGuard::unlock_fair(g);
            }
            r => return Ok(r?),
        }
    }
}

pub(crate) fn c_void_ptr<T>(p: *const T) -> *const c_void {
    p.cast()
}
