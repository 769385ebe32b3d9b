//! The async API on tokio's reactor: the channel's [`Readiness`] in an
//! `AsyncFd`, and the waiting loop of the module docs around it.

use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use super::{reactor_error, AsyncState, ConnectionWatch, Readiness};
use crate::channel::{Channel, FlushError, Lent, ReceiveError};
use crate::message::Message;
use crate::ring::AsyncWaiter;
use crate::timeout::Timeout;
use crate::transport::AsyncArm;

impl AsyncState {
    /// The readiness source registered with the current tokio runtime
    /// (registered on first use).
    fn tokio_fd(&mut self) -> io::Result<&AsyncFd<Readiness>> {
        if self.tokio.is_none() {
            // Outside a runtime tokio would panic: an error instead.
            if let Err(e) = tokio::runtime::Handle::try_current() {
                return Err(io::Error::other(format!(
                    "the tokio async API needs a tokio runtime: {e}"
                )));
            }
            let plain = self.plain.take().expect("not registered yet");
            // SAFETY: `Readiness::as_raw_fd` returns the descriptor of its
            // own `epoll` field, an `OwnedFd` that is open for as long as
            // the `Readiness` lives, never replaced and never closed
            // before it drops; so the descriptor stays valid and the same
            // for the `AsyncFd`'s whole life, as registration requires.
            let registered = unsafe { AsyncFd::register_with_interest(plain, Interest::READABLE) };
            match registered {
                Ok(fd) => self.tokio = Some(fd),
                Err(e) => {
                    let (plain, e) = e.into_parts();
                    self.plain = Some(plain);
                    return Err(e);
                }
            }
        }
        Ok(self.tokio.as_ref().expect("set above"))
    }
}

/// What one wait keeps between polls: the connections it started on, and
/// the fallback timer. Dropping it drops nothing else.
#[derive(Default)]
struct Wait {
    watch: Option<ConnectionWatch>,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// The readiness step of a wait: `Ready(Ok)` to check again,
/// `Ready(Err)` if the reactor failed, `Pending` when registered for a
/// wake-up (readiness, or the fallback timer).
fn poll_readiness(ch: &mut Channel, wait: &mut Wait, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
    let state = ch.async_state()?;
    let interval = state.poll_interval();
    let fd = state.tokio_fd()?;
    match fd.poll_read_ready(cx) {
        Poll::Ready(Ok(mut guard)) => {
            // Clear first, then check again: a signal after the clear
            // makes the source readable again.
            guard.get_inner().clear();
            guard.clear_ready();
            return Poll::Ready(Ok(()));
        }
        Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
        Poll::Pending => {}
    }
    if let Some(interval) = interval {
        let sleep = wait
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(interval)));
        if sleep.as_mut().poll(cx).is_ready() {
            wait.sleep = None;
            return Poll::Ready(Ok(()));
        }
    }
    Poll::Pending
}

impl Channel {
    /// The receive loop of the module docs, polled: `attempt` is a
    /// non-blocking receive.
    fn poll_receive_with<T>(
        &mut self,
        cx: &mut Context<'_>,
        wait: &mut Wait,
        mut attempt: impl FnMut(&mut Self) -> Result<T, ReceiveError>,
    ) -> Poll<Result<T, ReceiveError>> {
        if wait.watch.is_none() {
            wait.watch = Some(ConnectionWatch::now(self.transport_list()));
        }
        loop {
            match self.try_or_arm(&mut attempt) {
                Err(ReceiveError::Timeout | ReceiveError::Refused { .. }) => {}
                other => return Poll::Ready(other),
            }
            let lost = wait
                .watch
                .as_ref()
                .and_then(|w| w.lost(self.transport_list()));
            if let Some(transport) = lost {
                self.disarm_receive();
                return Poll::Ready(Err(ReceiveError::Disconnected { transport }));
            }
            match poll_readiness(self, wait, cx) {
                Poll::Ready(Ok(())) => continue,
                Poll::Ready(Err(e)) => {
                    self.disarm_receive();
                    return Poll::Ready(Err(reactor_error(e)));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Receives the next message without blocking the thread: the future
    /// waits on the channel's readiness source in tokio's reactor (see
    /// [`crate::asynk`]). Errors as [`Self::receive`] with no timeout
    /// (wrap it in `tokio::time::timeout` for one), plus
    /// [`ReceiveError::Disconnected`] when the connection it waited on
    /// ended with nothing left to receive and no receiving transport is
    /// connected, and [`ReceiveError::Async`] if the reactor failed.
    ///
    /// **Cancel safety:** dropping the future (in a `select!` whose other
    /// branch won, or at a timeout) loses no message: a message is only
    /// taken by the poll that returns it, and the next receive gets what
    /// was not returned. No buffer is held across an await. The wait is
    /// withdrawn on drop.
    pub async fn receive_async(&mut self) -> Result<Message, ReceiveError> {
        let guard = Disarm(self);
        let mut wait = Wait::default();
        poll_fn(|cx| {
            guard
                .0
                .poll_receive_with(cx, &mut wait, Channel::try_receive)
        })
        .await
    }

    /// [`Self::receive_with`] without blocking the thread: lends the next
    /// message to `f` (in place in the transport buffer when it can, see
    /// `receive_with`) and returns what `f` returns. `f` runs at most once,
    /// synchronously, inside the poll that found the message (it is
    /// `FnMut` only because each poll offers it again).
    ///
    /// **Cancel safety:** as [`Self::receive_async`]: dropping the future
    /// loses no message, and `f` has then not run; the lent buffer is
    /// never held across an await.
    pub async fn receive_with_async<R>(
        &mut self,
        mut f: impl FnMut(Lent<'_>) -> R,
    ) -> Result<R, ReceiveError> {
        let guard = Disarm(self);
        let mut wait = Wait::default();
        poll_fn(|cx| {
            guard
                .0
                .poll_receive_with(cx, &mut wait, |ch| ch.receive_with(Timeout::ZERO, &mut f))
        })
        .await
    }

    /// The received messages as a [`Stream`](futures_core::Stream) of
    /// `Result<Message, ReceiveError>`: each item as
    /// [`Self::receive_async`]. It ends when the channel is closed (every
    /// message taken) or does not receive; after a
    /// [`ReceiveError::Disconnected`] item it goes on waiting for the next
    /// peer.
    ///
    /// **Cancel safety:** dropping the stream, or a `next()` future of it,
    /// loses no message.
    pub fn messages(&mut self) -> Messages<'_> {
        Messages {
            ch: self,
            wait: Wait::default(),
            done: false,
        }
    }

    /// [`Self::flush`] without blocking the thread: completes once every
    /// message queued so far was sent and every committed buffer taken by
    /// the peer, on every connected sending transport (a transport without
    /// a peer holds its messages, so this waits for one). The wait is
    /// woken by the peer taking buffers (the readiness signal of the
    /// sending direction), and also re-checks every
    /// [`FALLBACK_POLL`](super::FALLBACK_POLL): the channel's send thread
    /// moves queued messages into buffers without signalling. Errors as [`Self::flush`]
    /// without `Timeout` (wrap it in `tokio::time::timeout`).
    ///
    /// **Cancel safety:** dropping the future cancels nothing: the sending
    /// goes on, and nothing is lost.
    pub async fn flush_async(&mut self) -> Result<(), FlushError> {
        let guard = DisarmSend(self);
        let mut wait = Wait::default();
        poll_fn(|cx| guard.0.poll_flush(cx, &mut wait)).await
    }

    fn poll_flush(
        &mut self,
        cx: &mut Context<'_>,
        wait: &mut Wait,
    ) -> Poll<Result<(), FlushError>> {
        loop {
            match self.flush(Timeout::ZERO) {
                Err(FlushError::Timeout) => {}
                other => return Poll::Ready(other),
            }
            self.arm_send(true);
            match self.flush(Timeout::ZERO) {
                Err(FlushError::Timeout) => {}
                other => {
                    self.arm_send(false);
                    return Poll::Ready(other);
                }
            }
            // Messages still queued move into buffers on the send thread,
            // which signals nothing itself: re-check at the fallback
            // interval too.
            match self.async_state() {
                Ok(state) => state.unsignalled = true,
                Err(e) => return Poll::Ready(Err(FlushError::Async(e.to_string()))),
            }
            match poll_readiness(self, wait, cx) {
                Poll::Ready(Ok(())) => continue,
                Poll::Ready(Err(e)) => {
                    self.arm_send(false);
                    return Poll::Ready(Err(FlushError::Async(e.to_string())));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Arms (or withdraws) a wait for the peers to take buffers on every
    /// sending transport (one that cannot signal is covered by the
    /// fallback interval, which a flush always uses).
    fn arm_send(&mut self, armed: bool) {
        for t in self.transport_list() {
            if t.config().directions().sends() {
                let _: AsyncArm = t.set_async_waiter(AsyncWaiter::Producer, armed);
            }
        }
    }
}

/// Withdraws the receive wait when a receive future ends or is dropped.
struct Disarm<'a>(&'a mut Channel);

impl Drop for Disarm<'_> {
    fn drop(&mut self) {
        self.0.disarm_receive();
    }
}

/// Withdraws the send wait when a flush future ends or is dropped.
struct DisarmSend<'a>(&'a mut Channel);

impl Drop for DisarmSend<'_> {
    fn drop(&mut self) {
        self.0.arm_send(false);
    }
}

/// The [`Stream`](futures_core::Stream) of [`Channel::messages`].
pub struct Messages<'a> {
    ch: &'a mut Channel,
    wait: Wait,
    done: bool,
}

impl std::fmt::Debug for Messages<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Messages")
            .field("done", &self.done)
            .finish()
    }
}

impl futures_core::Stream for Messages<'_> {
    type Item = Result<Message, ReceiveError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let me = self.get_mut();
        if me.done {
            return Poll::Ready(None);
        }
        let got = match me
            .ch
            .poll_receive_with(cx, &mut me.wait, Channel::try_receive)
        {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(got) => got,
        };
        // The next item waits on the connections of its own time.
        me.wait = Wait::default();
        match got {
            Err(ReceiveError::Closed | ReceiveError::NotReceiving) => {
                me.done = true;
                Poll::Ready(None)
            }
            other => Poll::Ready(Some(other)),
        }
    }
}

impl Drop for Messages<'_> {
    fn drop(&mut self) {
        self.ch.disarm_receive();
    }
}
