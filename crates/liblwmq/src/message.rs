//! Messages, frames, posting and receiving.
//!
//! A message handle owns a [`Message`] behind a mutex. Posting takes the
//! message out, posts it and, on success, destroys the handle and sets the
//! caller's `LMQ_MESSAGE` to NULL; on failure the message goes back behind
//! the handle, which stays the caller's. External frames wrap the C
//! `(Data, Size, Callback, Context)` in [`CExternal`], an
//! [`ExternalData`] whose hooks call the callback with `ACQUIRE_DATA` (at
//! most once) and `RELEASE_DATA` (exactly once).

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use lwmq::message::{
    AcquireError, ExternalData, Frame, Message, NtTime, Timestamp, MAX_FRAMES, MAX_FRAME_SIZE,
    MAX_INLINE_FRAME_SIZE,
};
use parking_lot::Mutex;

use crate::api::{self, read_handle, timeout, write_opt, write_out, MessageObj};
use crate::error::{boundary, post_error, Error, Result, ERROR_NOT_FOUND};
use crate::handle::{self, Kind, Object};
use crate::types::*;

fn message(h: LMQ_MESSAGE) -> Result<Arc<MessageObj>> {
    match handle::get(Kind::Message, h as usize)? {
        Object::Message(m) => Ok(m),
        _ => unreachable!("registry returned another kind"),
    }
}

fn insert(message: Message, received: bool) -> Result<LMQ_MESSAGE> {
    let obj = MessageObj {
        message: Mutex::new(message),
        received,
    };
    Ok(handle::insert(Object::Message(Arc::new(obj)))? as LMQ_MESSAGE)
}

fn timestamp(t: ULONG64) -> Timestamp {
    match t {
        LMQ_TIMESTAMP_NONE => Timestamp::None,
        LMQ_TIMESTAMP_USE_SYSTEMTIME => Timestamp::Now,
        LMQ_TIMESTAMP_USE_SYSTEMTIME_PRECISE => Timestamp::PreciseNow,
        t => Timestamp::At(NtTime::from_ticks(t)),
    }
}

/// Checks a frame about to be appended; returns its length. LwMQ refuses a
/// frame past the limits when it is appended (the Rust API's `push` defers
/// that check to the post), so the C functions check here and then push.
fn check_frame(m: &Message, data: PCVOID, size: UINT64) -> Result<usize> {
    if data.is_null() && size != 0 {
        return Err(Error::null("Data (with a non-zero DataSize)"));
    }
    if size > MAX_FRAME_SIZE as u64 {
        return Err(Error::invalid(format!(
            "DataSize {size} exceeds the largest frame ({MAX_FRAME_SIZE} bytes)"
        )));
    }
    if m.frame_count() >= MAX_FRAMES {
        return Err(Error::invalid(format!(
            "the message already has {MAX_FRAMES} frames (the most a message holds)"
        )));
    }
    Ok(size as usize)
}

/// The bytes of a frame argument.
///
/// # Safety
/// `data` is valid for `len` bytes for the lifetime `'a`, or `len` is 0.
unsafe fn bytes<'a>(data: *const c_void, len: usize) -> &'a [u8] {
    if len == 0 {
        return &[];
    }
    // SAFETY: non-null (checked by `check_frame`) and valid for `len` bytes
    // for `'a` by the caller's contract.
    unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) }
}

/// Creates an empty message. `FrameCountHint` (0 = `LMQ_MESSAGEFRAMECOUNT_DEFAULT`)
/// reserves room for that many frames.
///
/// # Safety
/// `Message` is null or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn LmqCreateMessage(
    FrameCountHint: USHORT,
    Message: PLMQ_MESSAGE,
) -> HRESULT {
    boundary("LmqCreateMessage", || {
        if Message.is_null() {
            return Err(Error::null("Message"));
        }
        let m = insert(
            lwmq::message::Message::with_capacity(usize::from(FrameCountHint)),
            false,
        )?;
        // SAFETY: checked non-null; valid for writes by contract.
        unsafe { write_out(Message, "Message", m) }
    })
}

/// Creates a message reference: a new message sharing `Message`'s frames
/// (no copy), to post one payload on several channels. Both handles are
/// destroyed or posted independently; external frames are released when
/// the last one is gone.
///
/// # Safety
/// `Clone` is null or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn LmqCreateMessageRef(Message: LMQ_MESSAGE, Clone: PLMQ_MESSAGE) -> HRESULT {
    boundary("LmqCreateMessageRef", || {
        if Clone.is_null() {
            return Err(Error::null("Clone"));
        }
        let m = message(Message)?;
        let shared = m.message.lock().share();
        let r = insert(shared, false)?;
        // SAFETY: checked non-null; valid for writes by contract.
        unsafe { write_out(Clone, "Clone", r) }
    })
}

/// Appends a copy of `DataSize` bytes at `Data` (stored inline up to
/// `LmqQueryMaxInlineFrameSize` bytes). `Timestamp` is `LMQ_TIMESTAMP_*` or
/// an NT time.
///
/// # Safety
/// `Data` is valid for `DataSize` bytes (or `DataSize` is 0).
#[no_mangle]
pub unsafe extern "C" fn LmqAppendFrame(
    Message: LMQ_MESSAGE,
    Data: PCVOID,
    DataSize: UINT64,
    Timestamp: ULONG64,
) -> HRESULT {
    boundary("LmqAppendFrame", || {
        let m = message(Message)?;
        let mut msg = m.message.lock();
        let len = check_frame(&msg, Data, DataSize)?;
        // SAFETY: valid for `len` bytes during this call by contract; copied.
        let data = unsafe { bytes(Data, len) };
        msg.push(Frame::copy(data).with_timestamp(timestamp(Timestamp)));
        Ok(())
    })
}

/// Appends `DataSize` bytes at `Data` without copying them: the memory
/// must stay valid and unchanged until every message holding the frame
/// (posted copies included) is gone; in practice until the channels it was
/// posted on are destroyed, or for the life of the process.
///
/// # Safety
/// `Data` is valid for `DataSize` bytes (or `DataSize` is 0) for as long as
/// any message holds the frame.
#[no_mangle]
pub unsafe extern "C" fn LmqAppendStaticFrame(
    Message: LMQ_MESSAGE,
    Data: PCVOID,
    DataSize: UINT64,
    Timestamp: ULONG64,
) -> HRESULT {
    boundary("LmqAppendStaticFrame", || {
        let m = message(Message)?;
        let mut msg = m.message.lock();
        let len = check_frame(&msg, Data, DataSize)?;
        // SAFETY: the caller guarantees the bytes outlive every message
        // holding the frame, which is what `'static` stands for here.
        let data: &'static [u8] = unsafe { bytes(Data, len) };
        msg.push(Frame::from(data).with_timestamp(timestamp(Timestamp)));
        Ok(())
    })
}

/// The C side of an external frame.
struct CExternal {
    data: *const u8,
    len: usize,
    callback: unsafe extern "C" fn(LQM_MESSAGECALLBACKREASON, PCVOID, UINT64, PVOID) -> HRESULT,
    context: PVOID,
    /// Cleared if the frame could not be appended after all: the caller
    /// keeps the data and no callback runs.
    armed: Arc<AtomicBool>,
}

// SAFETY: the pointers are opaque to Rust except `data`, which is only
// read; the API contract makes the data readable and the callback callable
// from any thread until RELEASE_DATA.
unsafe impl Send for CExternal {}
// SAFETY: as for `Send`: shared access only reads `data` and calls the
// callback, which the contract allows from any thread.
unsafe impl Sync for CExternal {}

impl ExternalData for CExternal {
    fn data(&self) -> &[u8] {
        // SAFETY: valid for `len` bytes until RELEASE_DATA (caller
        // contract), which happens after the last use of this value.
        unsafe { bytes(self.data.cast(), self.len) }
    }

    fn acquire(&self) -> std::result::Result<(), AcquireError> {
        // SAFETY: a valid callback by the caller's contract.
        let hr = unsafe {
            (self.callback)(
                LMQ_MESSAGECALLBACKREASON_ACQUIRE_DATA,
                self.data.cast(),
                self.len as u64,
                self.context,
            )
        };
        if hr < 0 {
            Err(AcquireError::new(hr))
        } else {
            Ok(())
        }
    }

    fn release(&mut self) {
        if self.armed.load(Ordering::Acquire) {
            // SAFETY: a valid callback by the caller's contract; called
            // once, as this runs once.
            unsafe {
                (self.callback)(
                    LMQ_MESSAGECALLBACKREASON_RELEASE_DATA,
                    self.data.cast(),
                    self.len as u64,
                    self.context,
                )
            };
        }
    }
}

/// Appends `DataSize` bytes at `Data` without copying: `Callback` is called
/// with `LMQ_MESSAGECALLBACKREASON_ACQUIRE_DATA` at most once, when a
/// message holding the frame is first prepared for sending (a failure code
/// fails that post with that code), and with
/// `LMQ_MESSAGECALLBACKREASON_RELEASE_DATA` exactly once, when the library
/// no longer needs the data, from whichever thread drops the last
/// reference. If this function fails, neither is called.
///
/// # Safety
/// `Data` is valid for `DataSize` bytes until `RELEASE_DATA`; `Callback`
/// may be called from any thread with `Context`.
#[no_mangle]
pub unsafe extern "C" fn LmqAppendExternalFrame(
    Message: LMQ_MESSAGE,
    Data: PVOID,
    DataSize: UINT64,
    Timestamp: ULONG64,
    Callback: PLMQ_MESSAGECALLBACK,
    Context: PVOID,
) -> HRESULT {
    boundary("LmqAppendExternalFrame", || {
        let m = message(Message)?;
        let Some(callback) = Callback else {
            return Err(Error::null("Callback"));
        };
        let mut msg = m.message.lock();
        let len = check_frame(&msg, Data, DataSize)?;
        let armed = Arc::new(AtomicBool::new(true));
        let frame = Frame::external(CExternal {
            data: Data.cast(),
            len,
            callback,
            context: Context,
            armed: Arc::clone(&armed),
        })
        .with_timestamp(timestamp(Timestamp));
        // `check_frame` passed, so this cannot be refused; were it to be,
        // the caller keeps the data and no callback runs.
        msg.try_push(frame).map(|_| ()).map_err(|e| {
            armed.store(false, Ordering::Release);
            Error::from(e.error)
        })
    })
}

/// The number of frames and (optional) the total payload size.
///
/// # Safety
/// `FrameCount` is null or valid for a write; `PayloadSizeBytes` likewise.
#[no_mangle]
pub unsafe extern "C" fn LmqGetFrameCount(
    Message: LMQ_MESSAGE,
    FrameCount: PUSHORT,
    PayloadSizeBytes: PUINT64,
) -> HRESULT {
    boundary("LmqGetFrameCount", || {
        if FrameCount.is_null() {
            return Err(Error::null("FrameCount"));
        }
        let m = message(Message)?;
        let msg = m.message.lock();
        // SAFETY: forwarded caller contract.
        unsafe {
            write_opt(PayloadSizeBytes, msg.payload_size() as UINT64);
            write_out(FrameCount, "FrameCount", frame_count(&msg))
        }
    })
}

const HINT_MAGIC: u64 = 0x4C4D_5148_494E_5431; // "LMQHINT1"

/// Initialises a frame enumeration hint before its first use.
///
/// # Safety
/// `Hint` is null or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn LmqInitFrameEnumHint(Hint: *mut LMQ_MESSAGEFRAMEENUMHINT) -> HRESULT {
    boundary("LmqInitFrameEnumHint", || {
        let hint = LMQ_MESSAGEFRAMEENUMHINT {
            Reserved: [HINT_MAGIC, 0, 0, 0],
        };
        // SAFETY: forwarded caller contract.
        unsafe { write_out(Hint, "Hint", hint) }
    })
}

/// Frame `FrameIndex` (0-based) of a message: its bytes (valid until the
/// message is destroyed, disposed or posted, or a frame is appended), size
/// and timestamp (`LMQ_TIMESTAMP_NONE` if none). `EnumHint` is optional;
/// when given it must have been initialised with `LmqInitFrameEnumHint`.
/// A `FrameIndex` past the last frame returns
/// `HRESULT_FROM_WIN32(ERROR_NOT_FOUND)`.
///
/// # Safety
/// Each pointer is null or valid for a write (`EnumHint` also for a read).
#[no_mangle]
pub unsafe extern "C" fn LmqGetFrameData(
    Message: LMQ_MESSAGE,
    FrameIndex: USHORT,
    Data: PPCVOID,
    DataSize: PUINT64,
    Timestamp: PULONG64,
    EnumHint: PLMQ_MESSAGEFRAMEENUMHINT,
) -> HRESULT {
    boundary("LmqGetFrameData", || {
        if Data.is_null() {
            return Err(Error::null("Data"));
        }
        if DataSize.is_null() {
            return Err(Error::null("DataSize"));
        }
        let m = message(Message)?;
        if !EnumHint.is_null() {
            // SAFETY: non-null; valid for reads by contract.
            let hint = unsafe { EnumHint.read_unaligned() };
            if hint.Reserved[0] != HINT_MAGIC {
                return Err(Error::invalid(
                    "EnumHint was not initialised (rule: call LmqInitFrameEnumHint first)",
                ));
            }
        }
        let msg = m.message.lock();
        let count = msg.frame_count();
        let frame = msg.frame(usize::from(FrameIndex)).ok_or_else(|| {
            Error::win32(
                ERROR_NOT_FOUND,
                format!("FrameIndex {FrameIndex} is past the last frame (the message has {count})"),
            )
        })?;
        let data = frame.data();
        // SAFETY: forwarded caller contract; all checked non-null or optional.
        unsafe {
            Data.write(api::c_void_ptr(data.as_ptr()));
            DataSize.write(data.len() as UINT64);
            write_opt(
                Timestamp,
                frame.timestamp().map_or(LMQ_TIMESTAMP_NONE, NtTime::ticks),
            );
            if !EnumHint.is_null() {
                EnumHint.write_unaligned(LMQ_MESSAGEFRAMEENUMHINT {
                    Reserved: [HINT_MAGIC, Message as u64, u64::from(FrameIndex) + 1, 0],
                });
            }
        }
        Ok(())
    })
}

/// The largest frame `LmqAppendFrame` stores inline (without an
/// allocation of its own).
///
/// # Safety
/// `MaxInlineFrameSize` is null or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn LmqQueryMaxInlineFrameSize(MaxInlineFrameSize: PUSHORT) -> HRESULT {
    boundary("LmqQueryMaxInlineFrameSize", || {
        const SIZE: USHORT = MAX_INLINE_FRAME_SIZE as USHORT;
        // SAFETY: forwarded caller contract.
        unsafe { write_out(MaxInlineFrameSize, "MaxInlineFrameSize", SIZE) }
    })
}

/// A message's frame count as the API's `USHORT` (a message holds at most
/// `MAX_FRAMES` = 65535 frames, so it always fits).
fn frame_count(m: &Message) -> USHORT {
    USHORT::try_from(m.frame_count()).unwrap_or(USHORT::MAX)
}

fn destroy(function_rule: &str, p: PLMQ_MESSAGE, received: bool) -> Result<()> {
    // SAFETY: forwarded caller contract of the two destroy functions.
    let h = unsafe { read_handle(p, "Message") }?;
    let m = message(h as LMQ_MESSAGE)?;
    if m.received != received {
        return Err(Error::invalid(function_rule.to_owned()));
    }
    drop(m);
    let obj = handle::remove(Kind::Message, h)?;
    // SAFETY: non-null (read above), valid for writes by contract.
    unsafe { p.write(std::ptr::null_mut()) };
    drop(obj);
    Ok(())
}

/// Destroys a message that was created (not received) and not posted, and
/// sets `*Message` to NULL. Its external frames are released unless other
/// messages still share them.
///
/// # Safety
/// `Message` is null or valid for a read and a write.
#[no_mangle]
pub unsafe extern "C" fn LmqDestroyUnpostedMessage(Message: PLMQ_MESSAGE) -> HRESULT {
    boundary("LmqDestroyUnpostedMessage", || {
        destroy(
            "the message came from LmqReceiveMessage (rule: dispose received messages with LmqDisposeReceivedMessage)",
            Message,
            false,
        )
    })
}

/// Disposes a message from `LmqReceiveMessage` and sets `*Message` to NULL.
///
/// # Safety
/// `Message` is null or valid for a read and a write.
#[no_mangle]
pub unsafe extern "C" fn LmqDisposeReceivedMessage(Message: PLMQ_MESSAGE) -> HRESULT {
    boundary("LmqDisposeReceivedMessage", || {
        destroy(
            "the message was created, not received (rule: destroy it with LmqDestroyUnpostedMessage)",
            Message,
            true,
        )
    })
}

fn post(queue: LMQ_SENDQUEUE, p: PLMQ_MESSAGE, tag: LONG_PTR, ms: UINT32) -> Result<()> {
    // SAFETY: forwarded caller contract of the post functions.
    let h = unsafe { read_handle(p, "Message") }?;
    let q = api::queue(queue)?;
    if !q.bounded && ms != 0 {
        return Err(Error::invalid(format!(
            "TimeoutMs is {ms} but the send queue is unbounded and never waits (rule: pass 0; only bounded queue types take a timeout)"
        )));
    }
    let m = message(h as LMQ_MESSAGE)?;
    let mut slot = m.message.lock();
    let msg = std::mem::take(&mut *slot);
    // The tag's bits are the key: negative tags are as good as positive ones.
    if let Err(e) = q.post(msg, tag as u64, timeout(ms)) {
        let err = post_error(&e);
        *slot = e.into_message();
        return Err(err);
    }
    drop(slot);
    drop(m);
    let obj = handle::remove(Kind::Message, h);
    // SAFETY: non-null (read above), valid for writes by contract.
    unsafe { p.write(std::ptr::null_mut()) };
    drop(obj);
    Ok(())
}

/// Posts a message; on success the library owns it and `*Message` is set
/// to NULL. On failure the caller still owns it (and `*Message` is
/// unchanged). `TimeoutMs` bounds the wait of a full bounded queue; it
/// must be 0 for an unbounded queue, which never waits.
///
/// # Safety
/// `Message` is null or valid for a read and a write.
#[no_mangle]
pub unsafe extern "C" fn LmqPostMessage(
    SendQueue: LMQ_SENDQUEUE,
    Message: PLMQ_MESSAGE,
    TimeoutMs: UINT32,
) -> HRESULT {
    boundary("LmqPostMessage", || post(SendQueue, Message, 0, TimeoutMs))
}

/// `LmqPostMessage` with a tag (tagged queue types only; 0 means no tag):
/// a still-queued message with the same tag is replaced.
///
/// # Safety
/// As `LmqPostMessage`.
#[no_mangle]
pub unsafe extern "C" fn LmqPostMessageWithTag(
    SendQueue: LMQ_SENDQUEUE,
    Message: PLMQ_MESSAGE,
    Tag: LONG_PTR,
    TimeoutMs: UINT32,
) -> HRESULT {
    boundary("LmqPostMessageWithTag", || {
        post(SendQueue, Message, Tag, TimeoutMs)
    })
}

/// Takes the next received message, waiting up to `TimeoutMs` (0 polls,
/// `INFINITE` waits until a message arrives or the channel is closed:
/// `HRESULT_FROM_WIN32(ERROR_OPERATION_ABORTED)`). `FrameCount` and
/// `PayloadSizeBytes` are optional. On failure every output given is
/// zeroed (`*Message` NULL, counts 0).
///
/// # Safety
/// Each pointer is null or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn LmqReceiveMessage(
    Channel: LMQ_CHANNEL,
    TimeoutMs: UINT32,
    FrameCount: PUSHORT,
    PayloadSizeBytes: PUINT64,
    Message: PLMQ_MESSAGE,
) -> HRESULT {
    boundary("LmqReceiveMessage", || {
        // Zeroed first, so that every failure (a panic included) leaves
        // them zero; a success overwrites them.
        // SAFETY: forwarded caller contract.
        unsafe {
            write_opt(FrameCount, 0);
            write_opt(PayloadSizeBytes, 0);
            write_opt(Message, std::ptr::null_mut());
        }
        if Message.is_null() {
            return Err(Error::null("Message"));
        }
        let c = api::channel(Channel)?;
        let m = api::receive(&c, TimeoutMs)?;
        let count = frame_count(&m);
        let size = m.payload_size() as UINT64;
        let h = insert(m, true)?;
        // SAFETY: forwarded caller contract.
        unsafe {
            write_opt(FrameCount, count);
            write_opt(PayloadSizeBytes, size);
            write_out(Message, "Message", h)
        }
    })
}
