//! Direct buffer access on raw channels (`LmqRawChannel*Buffer`).
//!
//! Each direction of a transport hands out up to its `MaxPending...Buffers`
//! library-owned `LMQ_TRANSPORTBUFFER`s at once, each its own allocation
//! whose address stays valid until the buffer is sent or disposed (and the
//! allocation is then reused for a later buffer). `Send`/`Dispose` look the
//! caller's pointer up among those handed out, act, and set the caller's
//! pointer to NULL. Sends go in the order buffers were obtained; one out of
//! order is refused and the buffer stays the caller's. `Dispose` takes a
//! buffer from `Get` (given back unsent) or from `Receive`. The sides are
//! the transport's `SendSide` and
//! `ReceiveSide`, claimed on first use.
//!
//! # Waiting and closing
//!
//! No lock is held across a wait longer than [`SLICE`]: `Get` and
//! `Receive` wait in the transport one slice at a time and hand the side's
//! mutex over fairly between slices, and every caller takes a side's mutex
//! with its own deadline. So a flush or a close on another thread gets its
//! turn within a slice, every wait honours its timeout, and a waiter
//! learns of a close within a slice (or at once: stopping the transport
//! wakes it) and returns `ERROR_OPERATION_ABORTED`, the code a closed
//! messaging channel returns.

use lwmq::internals::transport::RawBuf;
use lwmq::internals::Deadline;
use lwmq::{Timeout, TransportError};
use parking_lot::{Mutex, MutexGuard};

use crate::api::{raw_transport, read_handle, timeout, write_out, RawTransport, SideState, SLICE};
use crate::error::{
    boundary, Error, Result, ERROR_CONNECTION_ABORTED, ERROR_INVALID_STATE,
    ERROR_OPERATION_ABORTED, ERROR_TIMEOUT,
};
use crate::types::*;

/// Takes `m` by `deadline`, or fails with `ERROR_TIMEOUT`.
pub(crate) fn lock_by<'a, T>(
    m: &'a Mutex<T>,
    deadline: Deadline,
    what: &str,
) -> Result<MutexGuard<'a, T>> {
    match deadline.remaining() {
        None => Ok(m.lock()),
        Some(left) => m.try_lock_for(left).ok_or_else(|| {
            Error::win32(
                ERROR_TIMEOUT,
                format!("timed out waiting for another thread using this transport's {what} side"),
            )
        }),
    }
}

/// The code of a transport error on a raw channel.
fn raw_error(t: &RawTransport, e: TransportError) -> Error {
    match e {
        // Stopped under us: the channel was closed.
        TransportError::NotOpen(_) if t.is_closed() => {
            Error::win32(ERROR_OPERATION_ABORTED, "the channel was closed")
        }
        TransportError::BufferLimit {
            descriptor,
            dir,
            max,
            hint,
            ..
        } => {
            // LwMQ's name of the limit (the Rust error names the endpoint
            // setting).
            let limit = if dir == "send" {
                "MaxPendingSendBuffers"
            } else {
                "MaxPendingReceiveBuffers"
            };
            Error::win32(
                ERROR_INVALID_STATE,
                format!("{descriptor}: all {max} {dir} buffers are already out (rule: at most {limit} at once; {hint})"),
            )
        }
        TransportError::OutOfOrder { .. } | TransportError::UnknownBuffer { .. } => {
            Error::invalid(e.to_string())
        }
        TransportError::BufferLost(_) => Error::win32(ERROR_CONNECTION_ABORTED, e.to_string()),
        e => e.into(),
    }
}

/// The half of `Get` and `Receive` that both directions share: claims the
/// side on first use, takes a buffer with `take` one slice at a time until
/// `TimeoutMs`, and hands a library-owned `LMQ_TRANSPORTBUFFER` describing
/// it out through `Buffer` (checked non-null by the caller).
///
/// # Safety
/// `Buffer` is non-null and valid for a write.
unsafe fn hand_out<S>(
    t: &RawTransport,
    side: &Mutex<SideState<S>>,
    dir: &str,
    claim: impl Fn() -> std::result::Result<S, TransportError>,
    take: impl Fn(&mut S, Timeout) -> std::result::Result<RawBuf, TransportError>,
    TimeoutMs: ULONG,
    Buffer: *mut *mut LMQ_TRANSPORTBUFFER,
) -> Result<()> {
    let deadline = timeout(TimeoutMs).deadline();
    loop {
        let mut st = lock_by(side, deadline, dir)?;
        t.require_open()?;
        if st.side.is_none() {
            st.side = Some(claim().map_err(|e| raw_error(t, e))?);
        }
        let s = st.side.as_mut().expect("claimed above");
        match take(s, Timeout::after(deadline.slice(SLICE))) {
            Ok(raw) => {
                let desc = st.hand_out(raw);
                // SAFETY: non-null and valid for writes by this function's
                // contract.
                return unsafe { write_out(Buffer, "Buffer", desc) };
            }
            Err(TransportError::Timeout) if !deadline.passed() => {
                // Let a flush or close on another thread have the side.
                MutexGuard::unlock_fair(st);
            }
            Err(e) => return Err(raw_error(t, e)),
        }
    }
}

/// Takes the next free send buffer, waiting up to `TimeoutMs`. Before a
/// peer connects, buffers are staged (up to `MaxPendingSendBuffers`).
/// `(*Buffer)->BufferSizeBytes` is the buffer's size on return.
///
/// # Safety
/// `Buffer` is null or valid for a write.
// (The `///` text above is what `include/lwmq.h` carries; it is kept as
// committed so that this branch does not regenerate the header. Fuller:
// up to `MaxPendingSendBuffers` buffers may be out at once, each its own
// struct; one more is `ERROR_INVALID_STATE`, at once.)
#[no_mangle]
pub unsafe extern "C" fn LmqRawChannelGetBuffer(
    Transport: LMQ_TRANSPORT,
    TimeoutMs: ULONG,
    Buffer: *mut *mut LMQ_TRANSPORTBUFFER,
) -> HRESULT {
    boundary("LmqRawChannelGetBuffer", || {
        if Buffer.is_null() {
            return Err(Error::null("Buffer"));
        }
        let t = raw_transport(Transport)?;
        t.require_open()?;
        // SAFETY: checked non-null; valid for writes by contract.
        unsafe {
            hand_out(
                &t,
                &t.send,
                "send",
                || t.transport.claim_sender(),
                |side, wait| side.acquire(wait),
                TimeoutMs,
                Buffer,
            )
        }
    })
}

/// Sends the first `(*Buffer)->BufferSizeBytes` bytes of the buffer from
/// `LmqRawChannelGetBuffer` and sets `*Buffer` to NULL. With
/// `EraseAfterSending`, the buffer is zeroed once the peer consumed it.
///
/// # Safety
/// `Buffer` is null or valid for a read and a write.
// (The `///` text above is what `include/lwmq.h` carries; it is kept as
// committed so that this branch does not regenerate the header. Fuller:
// buffers are sent in the order obtained: another one first is
// `E_INVALIDARG` and the buffer stays the caller's, as with a length above
// the size; a buffer obtained on a connection that has ended is lost,
// `ERROR_CONNECTION_ABORTED`.)
#[no_mangle]
pub unsafe extern "C" fn LmqRawChannelSendBuffer(
    Transport: LMQ_TRANSPORT,
    Buffer: *mut *mut LMQ_TRANSPORTBUFFER,
    EraseAfterSending: BOOL,
) -> HRESULT {
    boundary("LmqRawChannelSendBuffer", || {
        // SAFETY: forwarded caller contract.
        let given = unsafe { read_handle(Buffer, "Buffer") }?;
        if given == 0 {
            return Err(Error::null("*Buffer"));
        }
        let t = raw_transport(Transport)?;
        let mut st = lock_by(&t.send, Deadline::NEVER, "send")?;
        let Some(i) = st.find(given) else {
            return Err(Error::invalid(
                "*Buffer is not the buffer of any LmqRawChannelGetBuffer call still out on this transport (a copy of one, another transport's, or one already sent or disposed)",
            ));
        };
        let id = st.out[i].raw.id;
        // SAFETY: one of the library's own allocations, handed out and not
        // yet given back; C wrote `BufferSizeBytes` before this call.
        let len = unsafe { st.out[i].desc.read().BufferSizeBytes };
        let side = st.side.as_mut().expect("buffers out imply a claimed side");
        match side.commit(id, len, EraseAfterSending != 0) {
            // Nothing changed: the buffer stays the caller's.
            Err(
                e @ (TransportError::OutOfOrder { .. } | TransportError::LengthTooLarge { .. }),
            ) => Err(raw_error(&t, e)),
            r => {
                // Sent, or gone with its connection: either way no longer
                // the caller's.
                st.take_back(i);
                // SAFETY: non-null (read above), valid for writes by contract.
                unsafe { Buffer.write(std::ptr::null_mut()) };
                r.map_err(|e| raw_error(&t, e))
            }
        }
    })
}

/// Takes the next filled buffer, waiting up to `TimeoutMs`;
/// `(*Buffer)->BufferSizeBytes` is the number of bytes received.
///
/// # Safety
/// `Buffer` is null or valid for a write.
// (The `///` text above is what `include/lwmq.h` carries; it is kept as
// committed so that this branch does not regenerate the header. Fuller:
// up to `MaxPendingReceiveBuffers` may be held at once, given back in any
// order; one more is `ERROR_INVALID_STATE`, at once.)
#[no_mangle]
pub unsafe extern "C" fn LmqRawChannelReceiveBuffer(
    Transport: LMQ_TRANSPORT,
    TimeoutMs: ULONG,
    Buffer: *mut *mut LMQ_TRANSPORTBUFFER,
) -> HRESULT {
    boundary("LmqRawChannelReceiveBuffer", || {
        if Buffer.is_null() {
            return Err(Error::null("Buffer"));
        }
        let t = raw_transport(Transport)?;
        t.require_open()?;
        // SAFETY: checked non-null; valid for writes by contract.
        unsafe {
            hand_out(
                &t,
                &t.recv,
                "receive",
                || t.transport.claim_receiver(),
                |side, wait| side.receive(wait),
                TimeoutMs,
                Buffer,
            )
        }
    })
}

/// Gives a received buffer back (zeroing it first with
/// `EraseBeforeDisposing`) and sets `*Buffer` to NULL.
///
/// # Safety
/// `Buffer` is null or valid for a read and a write.
// (The `///` text above is what `include/lwmq.h` carries; it is kept as
// committed so that this branch does not regenerate the header. Fuller:
// it also takes a buffer from `LmqRawChannelGetBuffer` that is not to be
// sent: nothing of it reaches the peer.)
#[no_mangle]
pub unsafe extern "C" fn LmqRawChannelDisposeBuffer(
    Transport: LMQ_TRANSPORT,
    Buffer: *mut *mut LMQ_TRANSPORTBUFFER,
    EraseBeforeDisposing: BOOL,
) -> HRESULT {
    boundary("LmqRawChannelDisposeBuffer", || {
        // SAFETY: forwarded caller contract.
        let given = unsafe { read_handle(Buffer, "Buffer") }?;
        if given == 0 {
            return Err(Error::null("*Buffer"));
        }
        let erase = EraseBeforeDisposing != 0;
        let t = raw_transport(Transport)?;
        let done = {
            let mut st = lock_by(&t.send, Deadline::NEVER, "send")?;
            match st.find(given) {
                Some(i) => {
                    let raw = st.out[i].raw;
                    if erase {
                        // SAFETY: the buffer is out (handed out, not given
                        // back), so the side keeps its `len` bytes at `ptr`
                        // writable; a raw write, no reference formed.
                        unsafe { std::ptr::write_bytes(raw.ptr, 0, raw.len) };
                    }
                    let side = st.side.as_mut().expect("buffers out imply a claimed side");
                    side.abort(raw.id).map_err(|e| raw_error(&t, e))?;
                    st.take_back(i);
                    true
                }
                None => false,
            }
        };
        if !done {
            let mut st = lock_by(&t.recv, Deadline::NEVER, "receive")?;
            let Some(i) = st.find(given) else {
                return Err(Error::invalid(
                    "*Buffer is not the buffer of any LmqRawChannelGetBuffer or LmqRawChannelReceiveBuffer call still out on this transport (a copy of one, another transport's, or one already given back)",
                ));
            };
            let id = st.out[i].raw.id;
            let side = st.side.as_mut().expect("buffers out imply a claimed side");
            side.dispose(id, erase).map_err(|e| raw_error(&t, e))?;
            st.take_back(i);
        }
        // SAFETY: non-null (read above), valid for writes by contract.
        unsafe { Buffer.write(std::ptr::null_mut()) };
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    //! The bookkeeping of the structs handed to C (no system call: also
    //! run under Miri, `.ci-extra/miri.sh`). The C functions themselves are
    //! tested by `tests/c/raw_buffers_test.c`.
    use lwmq::transport::BufferId;

    use super::*;

    fn raw(id: u64, ptr: *mut u8) -> RawBuf {
        RawBuf {
            ptr,
            len: 4,
            id: BufferId(id),
        }
    }

    #[test]
    fn structs_are_distinct_stable_reused_and_freed() {
        let mut mem = [[0u8; 4]; 3];
        let mut st = SideState::<()>::new();
        let a = st.hand_out(raw(1, mem[0].as_mut_ptr()));
        let b = st.hand_out(raw(2, mem[1].as_mut_ptr()));
        assert_ne!(a, b);
        // SAFETY: test: our own structs, handed out and not given back.
        unsafe {
            assert_eq!((*a).BufferSizeBytes, 4);
            assert_eq!((*b).Buffer, mem[1].as_mut_ptr());
            // C may write the fields; the library keeps its own copy.
            (*a).Buffer = std::ptr::null_mut();
        }
        assert_eq!(st.find(b as usize), Some(1));
        assert_eq!(st.find(a as usize + 1), None);
        let i = st.find(a as usize).unwrap();
        assert_eq!(st.out[i].raw.ptr, mem[0].as_mut_ptr());
        st.take_back(i);
        assert_eq!(st.find(a as usize), None);
        // The struct given back is reused, with fresh contents.
        let c = st.hand_out(raw(3, mem[2].as_mut_ptr()));
        assert_eq!(c, a);
        // SAFETY: as above.
        assert_eq!(unsafe { (*c).Buffer }, mem[2].as_mut_ptr());
        assert_eq!(st.find(b as usize), Some(0));
        // Dropping frees the structs out and the spare ones (Miri and
        // valgrind check that nothing leaks or is freed twice).
        drop(st);
    }
}
