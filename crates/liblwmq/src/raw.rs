//! Direct buffer access on raw channels (`LmqRawChannel*Buffer`).
//!
//! Each transport keeps one library-owned `LMQ_TRANSPORTBUFFER` per
//! direction; `Get`/`Receive` fill it and hand its address out, `Send`/
//! `Dispose` check that the caller gives that same address back, act, and
//! set the caller's pointer to NULL. The sides are the transport's
//! [`SendSide`](lwmq::transport::SendSide) and
//! [`ReceiveSide`](lwmq::transport::ReceiveSide), claimed on first use.

use crate::api::{raw_transport, read_handle, timeout, write_out};
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
        if st.side.is_none() {
            st.side = Some(t.transport.claim_sender()?);
        }
        let side = st.side.as_mut().expect("claimed above");
        let raw = side.acquire(timeout(TimeoutMs))?;
        // SAFETY: `st.buffer` is the side's own allocation, accessed under
        // its mutex.
        unsafe {
            st.buffer.write(LMQ_TRANSPORTBUFFER {
                BufferSizeBytes: raw.len,
                Buffer: raw.ptr,
            })
        };
        st.held = true;
        // SAFETY: checked non-null; valid for writes by contract.
        unsafe { write_out(Buffer, "Buffer", st.buffer) }
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
        if st.side.is_none() {
            st.side = Some(t.transport.claim_receiver()?);
        }
        let side = st.side.as_mut().expect("claimed above");
        let raw = side.receive(timeout(TimeoutMs))?;
        // SAFETY: the side's own allocation, under its mutex.
        unsafe {
            st.buffer.write(LMQ_TRANSPORTBUFFER {
                BufferSizeBytes: raw.len,
                Buffer: raw.ptr,
            })
        };
        st.held = true;
        // SAFETY: checked non-null; valid for writes by contract.
        unsafe { write_out(Buffer, "Buffer", st.buffer) }
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
