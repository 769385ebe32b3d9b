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

use lwmq::channel::{PostError, ReceiveError};
use lwmq::message::MessageError;
use lwmq::{ChannelError, DescriptorError, TransportError};

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
            TransportError::Descriptor(_)
            | TransportError::Config { .. }
            | TransportError::WrongDirection { .. }
            | TransportError::LengthTooLarge { .. }
            | TransportError::Control { .. } => E_INVALIDARG,
            TransportError::AddressInUse(_) => from_win32(ERROR_ALREADY_EXISTS),
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

impl From<ChannelError> for Error {
    fn from(e: ChannelError) -> Self {
        let code = match &e {
            ChannelError::Transport(_) => {
                let ChannelError::Transport(t) = e else {
                    unreachable!()
                };
                return t.into();
            }
            ChannelError::BufferSizeMismatch { .. }
            | ChannelError::ZeroCapacity { .. }
            | ChannelError::ReceiveQueueMissing
            | ChannelError::ReceiveQueueWithoutReceivingTransport => E_INVALIDARG,
            ChannelError::Closed => from_win32(ERROR_OPERATION_ABORTED),
            ChannelError::Timeout => from_win32(ERROR_TIMEOUT),
            ChannelError::Spawn(_) => E_OUTOFMEMORY,
            _ => from_win32(ERROR_INVALID_STATE),
        };
        Error::new(code, e.to_string())
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
    let code = match e {
        PostError::Full(_) | PostError::Timeout(_) => from_win32(ERROR_TIMEOUT),
        PostError::Closed(_) => from_win32(ERROR_OPERATION_ABORTED),
        PostError::NotOpen(_) => from_win32(ERROR_INVALID_STATE),
        PostError::TooLarge { .. } => from_win32(ERROR_INSUFFICIENT_BUFFER),
        PostError::Acquire { error, .. } => return Error::from(error.clone()),
        _ => E_INVALIDARG,
    };
    Error::new(code, e.to_string())
}

impl From<ReceiveError> for Error {
    fn from(e: ReceiveError) -> Self {
        let code = match e {
            // LwMQ has no refusal code: a timeout whose text names it.
            ReceiveError::Timeout | ReceiveError::Refused { .. } => from_win32(ERROR_TIMEOUT),
            ReceiveError::Closed => from_win32(ERROR_OPERATION_ABORTED),
            _ => from_win32(ERROR_INVALID_STATE),
        };
        Error::new(code, e.to_string())
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
