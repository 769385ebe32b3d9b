//! Status codes, the thread-local last-error text, and the panic boundary.
//!
//! Every exported function runs its body through [`boundary`]: a panic is
//! caught (it never unwinds into C) and becomes `E_UNEXPECTED`; every
//! failure stores its text for `LmqGetLastErrorMessage`. The mapping from
//! the Rust errors to codes is in one place ([`From`] impls below) and is
//! documented in `docs/c-api.md`.

use std::cell::RefCell;
use std::ffi::CString;
use std::panic::{catch_unwind, AssertUnwindSafe};

use lwmq::channel::{FlushError, InvalidMessage, OpenErrorKind, PostError, ReceiveError};
use lwmq::message::MessageError;
use lwmq::{ConfigError, DescriptorError, TransportError};

use crate::types::{DWORD, FACILITY_WIN32, HRESULT};
// The codes, under the names the modules of this crate have always used.
pub(crate) use crate::types::{
    ERROR_ALREADY_EXISTS, ERROR_BUSY, ERROR_CONNECTION_ABORTED, ERROR_INSUFFICIENT_BUFFER,
    ERROR_INVALID_STATE, ERROR_NOT_FOUND, ERROR_OPERATION_ABORTED, ERROR_TIMEOUT, E_ACCESSDENIED,
    E_FAIL, E_HANDLE, E_INVALIDARG, E_OUTOFMEMORY, E_POINTER, E_UNEXPECTED, S_OK,
};

/// `HRESULT_FROM_WIN32`.
pub(crate) const fn from_win32(code: DWORD) -> HRESULT {
    ((code & 0xFFFF) | (FACILITY_WIN32 << 16) | 0x8000_0000) as HRESULT
}

/// A failure: its code and its text.
#[derive(Debug)]
pub(crate) struct Error {
    pub(crate) code: HRESULT,
    pub(crate) text: String,
}

impl Error {
    pub(crate) fn new(code: HRESULT, text: impl Into<String>) -> Self {
        Error {
            code,
            text: text.into(),
        }
    }
    pub(crate) fn invalid(text: impl Into<String>) -> Self {
        Self::new(E_INVALIDARG, text)
    }
    pub(crate) fn null(param: &str) -> Self {
        Self::new(E_POINTER, format!("{param} is NULL"))
    }
    pub(crate) fn state(text: impl Into<String>) -> Self {
        Self::new(from_win32(ERROR_INVALID_STATE), text)
    }
    pub(crate) fn win32(code: DWORD, text: impl Into<String>) -> Self {
        Self::new(from_win32(code), text)
    }
    /// A call on a closed channel (decision 47: one code for "closed").
    pub(crate) fn closed() -> Self {
        Self::win32(ERROR_OPERATION_ABORTED, "the channel is closed")
    }
    /// A call that needs an open channel, before it opened.
    pub(crate) fn not_open() -> Self {
        Self::state("the channel is not open (rule: LmqOpenChannel first)")
    }
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

impl From<DescriptorError> for Error {
    fn from(e: DescriptorError) -> Self {
        Error::invalid(e.to_string())
    }
}

impl From<TransportError> for Error {
    fn from(e: TransportError) -> Self {
        let code = match &e {
            TransportError::Config(c) => return c.clone().into(),
            TransportError::Descriptor(_)
            | TransportError::WrongDirection { .. }
            | TransportError::LengthTooLarge { .. }
            | TransportError::Control { .. } => E_INVALIDARG,
            TransportError::AddressInUse(d) => {
                return Error::win32(
                    ERROR_ALREADY_EXISTS,
                    format!("{d}: address in use: another server is listening on it (open as CLIENT to connect to it)"),
                )
            }
            TransportError::Sys { source, .. } => {
                use rustix::io::Errno;
                match source.errno {
                    Errno::ACCESS | Errno::PERM => E_ACCESSDENIED,
                    Errno::NOMEM => E_OUTOFMEMORY,
                    _ => E_FAIL,
                }
            }
            TransportError::Timeout => from_win32(ERROR_TIMEOUT),
            TransportError::NotOpen(_) | TransportError::AlreadyOpen(_) => {
                from_win32(ERROR_INVALID_STATE)
            }
            TransportError::SideInUse { .. } => from_win32(ERROR_BUSY),
            TransportError::Disconnected(_) => from_win32(ERROR_CONNECTION_ABORTED),
            _ => E_FAIL,
        };
        Error::new(code, e.to_string())
    }
}

/// The Rust API's configuration rules, in LwMQ's words.
impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        let text = match &e {
            ConfigError::BufferSize { descriptor, size, max } => format!(
                "{descriptor}: BufferSizeBytes {size} is out of range (rule: 1..={max} bytes for this transport)"
            ),
            ConfigError::NoBuffers { descriptor } => format!(
                "{descriptor}: MaxPendingSendBuffers and MaxPendingReceiveBuffers are both 0 (rule: at least one buffer for each direction used)"
            ),
            ConfigError::TooManyBuffers {
                descriptor,
                send,
                receive,
                max_each,
                max_total,
            } => format!(
                "{descriptor}: {send} send + {receive} receive buffers exceed the transport's limit (rule: MaxPendingSendBuffers and MaxPendingReceiveBuffers at most {max_each} each and {max_total} in all)"
            ),
            ConfigError::BufferSizeMismatch {
                descriptor,
                existing,
                new,
            } => format!(
                "{descriptor}: BufferSizeBytes {new} differs from the channel's {existing} (rule: every transport of a channel uses the same buffer size)"
            ),
            ConfigError::RetryInterval { descriptor, given, .. } => format!(
                "{descriptor}: retry interval {given:?} is out of range (rule: 1 ms ..= 24 h)"
            ),
            ConfigError::Spin { descriptor, given, .. } => format!(
                "{descriptor}: spin duration {given:?} is out of range (rule: at most 100 ms)"
            ),
            ConfigError::ZeroQueueLimit { .. } => {
                "a bounded queue type needs a capacity of at least 1".to_owned()
            }
            other => other.to_string(),
        };
        Error::invalid(text)
    }
}

/// Why `LmqOpenChannel` failed, in LwMQ's words.
pub(crate) fn open_error(kind: OpenErrorKind) -> Error {
    match kind {
        OpenErrorKind::NoTransport => Error::state(
            "the channel has no transport (rule: LmqAddTransport before LmqOpenChannel)",
        ),
        OpenErrorKind::NoQueue => Error::state(
            "a transport sends but the channel has no send queue (rule: LmqAddSendQueue before LmqOpenChannel when some transport sends)",
        ),
        OpenErrorKind::QueueWithoutSender => Error::state(
            "the channel has send queues but no transport sends (rule: send queues need a transport created with SEND or SENDRECEIVE)",
        ),
        OpenErrorKind::ReceiveQueueWithoutReceiver => Error::invalid(
            "a receive queue type was given but no transport receives (rule: the receive queue type must be NA when no transport receives)",
        ),
        OpenErrorKind::Config(c) => c.into(),
        OpenErrorKind::AddressInUse { descriptor } => {
            TransportError::AddressInUse(descriptor).into()
        }
        OpenErrorKind::Transport(e) => e.into(),
        OpenErrorKind::Spawn(what) => Error::new(
            E_OUTOFMEMORY,
            format!("could not start the channel's service thread: {what}"),
        ),
        other => Error::new(E_FAIL, other.to_string()),
    }
}

/// Why `LmqFlushChannel` returned early.
impl From<FlushError> for Error {
    fn from(e: FlushError) -> Self {
        match e {
            FlushError::Timeout => Error::win32(
                ERROR_TIMEOUT,
                "timed out before every queued message was sent and taken by the peer (the sending goes on)",
            ),
            FlushError::Transport(t) => t.into(),
            other => Error::new(E_FAIL, other.to_string()),
        }
    }
}

impl From<MessageError> for Error {
    fn from(e: MessageError) -> Self {
        let code = match &e {
            MessageError::Acquire { source, .. } if source.code < 0 => source.code,
            MessageError::Acquire { .. } => E_FAIL,
            _ => E_INVALIDARG,
        };
        Error::new(code, e.to_string())
    }
}

/// The code and text of a failed post (the message itself is handled by
/// the caller).
pub(crate) fn post_error(e: &PostError) -> Error {
    match e {
        PostError::Full(_) => Error::win32(
            ERROR_TIMEOUT,
            "send queue is full: it stayed full for the whole timeout and the message was refused; post with a non-zero timeout to wait for room, enlarge the queue, or use a discard-oldest queue",
        ),
        PostError::Closed(_) => Error::win32(
            ERROR_OPERATION_ABORTED,
            "the channel is closed (rule: nothing can be posted once LmqCloseChannel has started)",
        ),
        PostError::NotOpen(_) => Error::state(
            "the channel is not open (rule: open the channel before posting)",
        ),
        PostError::TagUnsupported(_) => Error::invalid(
            "this send queue is not tagged (rule: post with tag 0, or add the queue with a *_TAGGED type)",
        ),
        PostError::Invalid {
            error: InvalidMessage::TooLarge { encoded, limit },
            ..
        } => Error::win32(
            ERROR_INSUFFICIENT_BUFFER,
            format!("the message encodes to {encoded} bytes but a transport buffer holds at most {limit} bytes of messages (BufferSizeBytes minus the 8-byte buffer header); use larger buffers or split the message"),
        ),
        PostError::Invalid {
            error: InvalidMessage::NoFrames,
            ..
        } => Error::invalid(
            "a message must have at least one frame; append a frame before posting it",
        ),
        PostError::Invalid { error, .. } => Error::invalid(error.to_string()),
        PostError::Acquire { error, .. } => Error::from(error.clone()),
        other => Error::new(E_FAIL, other.to_string()),
    }
}

impl From<ReceiveError> for Error {
    fn from(e: ReceiveError) -> Self {
        match e {
            // LwMQ has no refusal code: a timeout whose text names it.
            ReceiveError::Timeout | ReceiveError::Refused { .. } => {
                Error::win32(ERROR_TIMEOUT, e.to_string())
            }
            ReceiveError::Closed | ReceiveError::Interrupted => Error::win32(
                ERROR_OPERATION_ABORTED,
                "the channel is closed and its receive queue is empty",
            ),
            ReceiveError::NotReceiving => Error::state(
                "the channel has no receive queue (rule: receiving needs a transport created with RECEIVE or SENDRECEIVE)",
            ),
            other => Error::new(E_FAIL, other.to_string()),
        }
    }
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(text: &str) {
    let text = CString::new(text.replace('\0', "\\0")).unwrap_or_default();
    LAST_ERROR.with(|l| *l.borrow_mut() = text);
}

/// Pointer to the calling thread's last error text (valid until the next
/// failure on this thread).
pub(crate) fn last_error_ptr() -> *const std::ffi::c_char {
    LAST_ERROR.with(|l| l.borrow().as_ptr())
}

/// Runs an exported function's body: catches panics, records failures.
pub(crate) fn boundary(function: &'static str, body: impl FnOnce() -> Result<()>) -> HRESULT {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => S_OK,
        Ok(Err(e)) => {
            set_last_error(&format!("{function}: {}", e.text));
            e.code
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            set_last_error(&format!(
                "{function}: internal error (a bug in liblwmq, please report it): {what}"
            ));
            E_UNEXPECTED
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last() -> String {
        // SAFETY: `last_error_ptr` returns this thread's NUL-terminated text,
        // valid until the next failure on this thread.
        unsafe { std::ffi::CStr::from_ptr(last_error_ptr()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn a_panic_becomes_e_unexpected_with_its_message() {
        let hr = boundary("LmqTest", || panic!("boom {}", 42));
        assert_eq!(hr, E_UNEXPECTED);
        assert!(last().contains("LmqTest: internal error"), "{}", last());
        assert!(last().contains("boom 42"), "{}", last());
    }

    #[test]
    fn failures_set_the_text_successes_keep_it() {
        let hr = boundary("LmqTest", || Err(Error::invalid("bad thing")));
        assert_eq!(hr, E_INVALIDARG);
        assert_eq!(last(), "LmqTest: bad thing");
        assert_eq!(boundary("LmqTest", || Ok(())), S_OK);
        assert_eq!(last(), "LmqTest: bad thing");
        // Per thread: another thread's failure does not show here.
        std::thread::spawn(|| boundary("Other", || Err(Error::null("X"))))
            .join()
            .unwrap();
        assert_eq!(last(), "LmqTest: bad thing");
    }

    #[test]
    fn hresult_from_win32_matches_windows() {
        assert_eq!(from_win32(ERROR_TIMEOUT) as u32, 0x8007_05B4);
        assert_eq!(from_win32(ERROR_ALREADY_EXISTS) as u32, 0x8007_00B7);
        assert_eq!(from_win32(6), E_HANDLE);
    }
}
