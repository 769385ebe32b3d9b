//! Async buffer acquisition on raw channels (feature `tokio`): a
//! [`RawReceiver`] that awaits its next buffer and a [`RawSender`] that
//! awaits a free one, with the same arm-then-check protocol as the
//! messaging channel (see the [module docs](super)), on the transport's
//! own readiness descriptor.

use std::future::{poll_fn, Future};
use std::io;
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use super::FALLBACK_POLL;
use crate::raw::{RawReceiver, RawSender, ReceivedBuffer, SendBuffer};
use crate::ring::AsyncWaiter;
use crate::timeout::Timeout;
use crate::transport::{AsyncArm, Transport, TransportError};

/// One async wait on one transport: armed until dropped.
struct RawWait<'t> {
    /// `None`: a side without a transport (unit tests): polled.
    transport: Option<&'t Arc<dyn Transport>>,
    side: AsyncWaiter,
    /// The transport's readiness descriptor (a duplicate) in the reactor,
    /// registered on the first wait.
    fd: Option<AsyncFd<OwnedFd>>,
    unsignalled: bool,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<'t> RawWait<'t> {
    fn new(transport: Option<&'t Arc<dyn Transport>>, side: AsyncWaiter) -> Self {
        Self {
            transport,
            side,
            fd: None,
            unsignalled: false,
            sleep: None,
        }
    }

    fn arm(&mut self) {
        self.unsignalled = self
            .transport
            .is_none_or(|t| t.set_async_waiter(self.side, true) == AsyncArm::Unsupported);
    }

    fn descriptor(&self) -> &str {
        self.transport.map_or("raw", |t| t.descriptor())
    }

    /// Until the readiness descriptor is readable (then cleared), or the
    /// fallback interval passed.
    async fn wait(&mut self) -> io::Result<()> {
        if self.fd.is_none() {
            if let Some(fd) = self.transport.and_then(|t| t.readiness_fd()) {
                if let Err(e) = tokio::runtime::Handle::try_current() {
                    return Err(io::Error::other(format!(
                        "the tokio async API needs a tokio runtime: {e}"
                    )));
                }
                let fd = rustix::io::dup(fd)?;
                // SAFETY: the `AsyncFd` owns this duplicate; an `OwnedFd`
                // returns the same open descriptor from `as_raw_fd` until
                // it drops, which happens only with the `AsyncFd`.
                let registered = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) };
                self.fd = Some(registered.map_err(|e| e.into_parts().1)?);
            } else {
                self.unsignalled = true;
            }
        }
        let (fd, unsignalled) = (self.fd.as_ref(), self.unsignalled);
        let sleep = &mut self.sleep;
        poll_fn(|cx| {
            if let Some(fd) = fd {
                match fd.poll_read_ready(cx) {
                    Poll::Ready(Ok(mut guard)) => {
                        let mut b = [0u8; 8];
                        let _ = rustix::io::read(guard.get_inner(), &mut b);
                        guard.clear_ready();
                        return Poll::Ready(Ok(()));
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => {}
                }
            }
            if unsignalled {
                let s = sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep(FALLBACK_POLL)));
                if s.as_mut().poll(cx).is_ready() {
                    *sleep = None;
                    return Poll::Ready(Ok(()));
                }
            }
            Poll::Pending
        })
        .await
    }
}

impl Drop for RawWait<'_> {
    fn drop(&mut self) {
        if let Some(t) = self.transport {
            let _ = t.set_async_waiter(self.side, false);
        }
    }
}

/// A reactor failure as a transport error.
fn reactor(descriptor: &str, e: io::Error) -> TransportError {
    TransportError::Control {
        descriptor: descriptor.to_owned(),
        what: format!("the async runtime could not wait for the transport: {e}"),
    }
}

impl RawReceiver<'_> {
    /// [`Self::receive_buffer`] without blocking the thread: the next
    /// filled buffer, awaited on the transport's readiness descriptor in
    /// tokio's reactor (polled every [`FALLBACK_POLL`] if the transport
    /// or its peer cannot signal). Errors as `receive_buffer` (no
    /// `Timeout`: wrap the future in `tokio::time::timeout`).
    ///
    /// **Cancel safety:** dropping the future takes no buffer (a buffer is
    /// only taken by the poll that returns it) and leaks none.
    pub async fn receive_buffer_async(&self) -> Result<ReceivedBuffer<'_>, TransportError> {
        let mut wait = RawWait::new(self.transport.as_ref(), AsyncWaiter::Consumer);
        loop {
            match self.receive_buffer(Timeout::ZERO) {
                Err(TransportError::Timeout) => {}
                other => return other,
            }
            wait.arm();
            match self.receive_buffer(Timeout::ZERO) {
                Err(TransportError::Timeout) => {}
                other => return other,
            }
            if let Err(e) = wait.wait().await {
                return Err(reactor(wait.descriptor(), e));
            }
        }
    }
}

impl RawSender<'_> {
    /// [`Self::get_buffer`] without blocking the thread: a free buffer,
    /// awaited on the transport's readiness descriptor (the peer freeing
    /// a slot signals it). Errors as `get_buffer` (no `Timeout`).
    ///
    /// **Cancel safety:** dropping the future acquires nothing (a buffer
    /// is only acquired by the poll that returns it) and leaks nothing.
    pub async fn get_buffer_async(&self) -> Result<SendBuffer<'_>, TransportError> {
        let mut wait = RawWait::new(self.transport.as_ref(), AsyncWaiter::Producer);
        loop {
            match self.get_buffer(Timeout::ZERO) {
                Err(TransportError::Timeout) => {}
                other => return other,
            }
            wait.arm();
            match self.get_buffer(Timeout::ZERO) {
                Err(TransportError::Timeout) => {}
                other => return other,
            }
            if let Err(e) = wait.wait().await {
                return Err(reactor(wait.descriptor(), e));
            }
        }
    }
}
