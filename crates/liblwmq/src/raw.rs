//! Direct buffer access on raw channels (`LmqRawChannel*Buffer`).
//!
//! Each transport keeps one library-owned `LMQ_TRANSPORTBUFFER` per
//! direction; `Get`/`Receive` fill it and hand its address out, `Send`/
//! `Dispose` check that the caller gives that same address back, act, and
//! set the caller's pointer to NULL. The sides are the transport's
//! [`SendSide`](lwmq::transport::SendSide) and
//! [`ReceiveSide`](lwmq::transport::ReceiveSide), claimed on first use.

use lwmq::transport::RawBuf;
use lwmq::TransportError;

use crate::api::{raw_transport, read_handle, timeout, write_out, SideState};
use crate::error::{boundary, Error, Result};
use crate::types::*;

fn check_buffer(given: usize, ours: *mut LMQ_TRANSPORTBUFFER, held: bool, get: &str) -> Result<()> {
    if given == 0 {
        return Err(Error::null("*Buffer"));
    }
    if !held || given != ours as usize {
        return Err(Error::invalid(format!(
            "*Buffer is not the buffer {get} returned on this transport (or it was already given back)"
        )));
    }
    Ok(())
}

/// The half of `Get` and `Receive` that both directions share: claims the
/// side on first use, takes a buffer with `take`, and hands the transport's
/// own `LMQ_TRANSPORTBUFFER` describing it out through `Buffer` (checked
/// non-null by the caller).
///
/// # Safety
/// `Buffer` is non-null and valid for a write.
unsafe fn hand_out<S>(
    st: &mut SideState<S>,
    claim: impl FnOnce() -> std::result::Result<S, TransportError>,
    take: impl FnOnce(&mut S) -> std::result::Result<RawBuf, TransportError>,
    Buffer: *mut *mut LMQ_TRANSPORTBUFFER,
) -> Result<()> {
    if st.side.is_none() {
        st.side = Some(claim()?);
    }
    let side = st.side.as_mut().expect("claimed above");
    let raw = take(side)?;
    // SAFETY: `st.buffer` is the side's own allocation, and the caller
    // holds the side's mutex (`st`).
    unsafe {
        st.buffer.write(LMQ_TRANSPORTBUFFER {
            BufferSizeBytes: raw.len,
            Buffer: raw.ptr,
        })
    };
    st.held = true;
    // SAFETY: non-null and valid for writes by this function's contract.
    unsafe { write_out(Buffer, "Buffer", st.buffer) }
}

/// Takes the next free send buffer, waiting up to `TimeoutMs`. Before a
/// peer connects, buffers are staged (up to `MaxPendingSendBuffers`).
/// `(*Buffer)->BufferSizeBytes` is the buffer's size on return.
///
/// # Safety
/// `Buffer` is null or valid for a write.
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
        let mut st = t.send.lock();
        // SAFETY: checked non-null; valid for writes by contract.
        unsafe {
            hand_out(
                &mut st,
                || t.transport.claim_sender(),
                |side| side.acquire(timeout(TimeoutMs)),
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
#[no_mangle]
pub unsafe extern "C" fn LmqRawChannelSendBuffer(
    Transport: LMQ_TRANSPORT,
    Buffer: *mut *mut LMQ_TRANSPORTBUFFER,
    EraseAfterSending: BOOL,
) -> HRESULT {
    boundary("LmqRawChannelSendBuffer", || {
        // SAFETY: forwarded caller contract.
        let given = unsafe { read_handle(Buffer, "Buffer") }?;
        let t = raw_transport(Transport)?;
        let mut st = t.send.lock();
        check_buffer(given, st.buffer, st.held, "LmqRawChannelGetBuffer")?;
        // SAFETY: the side's own allocation, under its mutex; C wrote
        // `BufferSizeBytes` before this call on the same thread.
        let len = unsafe { st.buffer.read().BufferSizeBytes };
        let side = st.side.as_mut().expect("held implies claimed");
        match side.commit(len, EraseAfterSending != 0) {
            Err(e @ lwmq::TransportError::LengthTooLarge { .. }) => Err(e.into()),
            r => {
                st.held = false;
                // SAFETY: non-null (read above), valid for writes by contract.
                unsafe { Buffer.write(std::ptr::null_mut()) };
                Ok(r?)
            }
        }
    })
}

/// Takes the next filled buffer, waiting up to `TimeoutMs`;
/// `(*Buffer)->BufferSizeBytes` is the number of bytes received.
///
/// # Safety
/// `Buffer` is null or valid for a write.
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
        let mut st = t.recv.lock();
        // SAFETY: checked non-null; valid for writes by contract.
        unsafe {
            hand_out(
                &mut st,
                || t.transport.claim_receiver(),
                |side| side.receive(timeout(TimeoutMs)),
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
#[no_mangle]
pub unsafe extern "C" fn LmqRawChannelDisposeBuffer(
    Transport: LMQ_TRANSPORT,
    Buffer: *mut *mut LMQ_TRANSPORTBUFFER,
    EraseBeforeDisposing: BOOL,
) -> HRESULT {
    boundary("LmqRawChannelDisposeBuffer", || {
        // SAFETY: forwarded caller contract.
        let given = unsafe { read_handle(Buffer, "Buffer") }?;
        let t = raw_transport(Transport)?;
        let mut st = t.recv.lock();
        check_buffer(given, st.buffer, st.held, "LmqRawChannelReceiveBuffer")?;
        st.side
            .as_mut()
            .expect("held implies claimed")
            .dispose(EraseBeforeDisposing != 0);
        st.held = false;
        // SAFETY: non-null (read above), valid for writes by contract.
        unsafe { Buffer.write(std::ptr::null_mut()) };
        Ok(())
    })
}
