//! Async receive, post and flush (features `async` and `tokio`): wait
//! for a channel from an executor, without a thread per channel and
//! without spinning.
//!
//! Posting needs none of what follows: a post waits only at its queue's
//! limit, and [`MonoQueue::post_async`](crate::MonoQueue::post_async),
//! [`MultiQueue::post_async`](crate::MultiQueue::post_async) and their
//! `room_async` wait there with the task's `Waker` on any executor.
//!
//! # The readiness source (feature `async`, any executor)
//!
//! Each `ipc://` transport side has a *readiness eventfd*. Its peer writes
//! it after publishing a buffer (or freeing a slot), but only while this
//! side has declared itself waiting: the same flag-then-re-check protocol
//! as the futex sleep (`ring.rs`, SYNC POINT E; `docs/ipc-protocol.md`),
//! so a busy channel makes no system call for it. The transport also
//! writes it locally when its connection comes or goes and on
//! [`Interrupter::interrupt`](crate::Interrupter::interrupt).
//!
//! A channel gathers its transports' eventfds (and one of its own, which
//! its receive thread writes after it queued messages) in one `epoll`
//! descriptor: [`Readiness`], from [`Channel::readiness`]. It implements
//! `AsFd`/`AsRawFd`, so any reactor can wait for it to become readable.
//! The waiting protocol, for a receive:
//!
//! 1. [`Channel::try_receive_or_arm`]: takes a message if one is ready;
//!    otherwise declares the wait (arms) and checks once more. A message
//!    ends the wait (the wait is withdrawn); [`ReceiveError::Timeout`]
//!    means "wait for the readiness source".
//! 2. Wait until [`Readiness`] is readable (or, when
//!    [`Readiness::poll_interval`] is `Some`, at most that long: a
//!    transport or a peer without the signal is polled).
//! 3. [`Readiness::clear`], then back to 1.
//!
//! Stopping early: [`Channel::disarm_receive`] withdraws the wait (a
//! wait left armed costs the peer a system call per buffer, nothing
//! else). Nothing is taken from the transport or the queue except by
//! step 1, which either returns the message or leaves it where it was, so
//! stopping anywhere loses nothing.
//!
//! # tokio (feature `tokio`)
//!
//! [`Channel::receive_async`], [`Channel::receive_with_async`],
//! [`Channel::messages`] (a [`Stream`](futures_core::Stream)) and
//! [`Channel::flush_async`] run this loop on tokio's reactor
//! (`AsyncFd`). The channel registers its readiness source with the
//! runtime of its first async call; use it from that runtime (any of its
//! threads) afterwards.
//!
//! # Transports without a readiness descriptor
//!
//! A transport whose driver has no readiness descriptor
//! (`Transport::readiness_fd` returns `None`), or a peer of an older build
//! that does not offer the readiness feature, is polled: the waits above
//! end every [`FALLBACK_POLL`] at the latest, and the receive checks
//! again. Correct, but with up to that much added latency and a wake-up
//! per interval while idle.

#[cfg(feature = "tokio")]
mod raw;
#[cfg(feature = "tokio")]
mod tokio_io;

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use rustix::event::epoll;

use crate::channel::{Channel, ReceiveError};
use crate::message::Message;
use crate::ring::AsyncWaiter;
use crate::transport::{AsyncArm, Transport};

#[cfg(feature = "tokio")]
pub use tokio_io::Messages;

/// How often an async wait re-checks a transport that cannot signal
/// readiness (see the module docs).
pub const FALLBACK_POLL: Duration = Duration::from_millis(5);

/// A channel's readiness source: an `epoll` descriptor that becomes
/// readable when a wait declared with [`Channel::try_receive_or_arm`] (or
/// a flush) may be able to go on. See the [module docs](self).
#[derive(Debug)]
pub struct Readiness {
    epoll: OwnedFd,
    /// The eventfds in the set (duplicates: this source owns them), read
    /// by [`Self::clear`].
    eventfds: Vec<OwnedFd>,
    /// Some transport has no readiness descriptor.
    no_fd: bool,
}

impl Readiness {
    fn new(transports: &[Arc<dyn Transport>], own: Option<BorrowedFd<'_>>) -> io::Result<Self> {
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        let mut eventfds = Vec::new();
        let mut no_fd = false;
        let fds = transports.iter().map(|t| t.readiness_fd());
        for fd in fds.chain(own.map(Some)) {
            let Some(fd) = fd else {
                no_fd = true;
                continue;
            };
            let fd = rustix::io::dup(fd)?;
            epoll::add(
                &epoll,
                &fd,
                epoll::EventData::new_u64(eventfds.len() as u64),
                epoll::EventFlags::IN,
            )?;
            eventfds.push(fd);
        }
        Ok(Self {
            epoll,
            eventfds,
            no_fd,
        })
    }

    /// Clears the source after it was seen readable: reads (zeroes) every
    /// eventfd in it. Call it before checking again, never after.
    pub fn clear(&self) {
        let mut b = [0u8; 8];
        for fd in &self.eventfds {
            // Non-blocking: EAGAIN when it was not readable.
            let _ = rustix::io::read(fd, &mut b);
        }
    }

    /// `Some(interval)` when some transport of the channel cannot signal
    /// readiness: a wait must end after `interval` at the latest and check
    /// again (see the module docs). Updated by each arming.
    pub fn poll_interval(&self) -> Option<Duration> {
        self.no_fd.then_some(FALLBACK_POLL)
    }
}

impl AsFd for Readiness {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.epoll.as_fd()
    }
}

impl AsRawFd for Readiness {
    fn as_raw_fd(&self) -> RawFd {
        self.epoll.as_raw_fd()
    }
}

/// A channel's async state: its readiness source (plain, or registered
/// with tokio), and what the current wait armed.
pub(crate) struct AsyncState {
    plain: Option<Readiness>,
    #[cfg(feature = "tokio")]
    tokio: Option<tokio::io::unix::AsyncFd<Readiness>>,
    /// The last arming found a transport or peer that will not signal.
    unsignalled: bool,
    /// A receive wait is armed.
    receive_armed: bool,
}

impl AsyncState {
    fn readiness(&self) -> &Readiness {
        #[cfg(feature = "tokio")]
        if let Some(t) = &self.tokio {
            return t.get_ref();
        }
        self.plain.as_ref().expect("one of the two is set")
    }

    /// How long a wait may last before checking again, if bounded.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    fn poll_interval(&self) -> Option<Duration> {
        (self.unsignalled || self.readiness().no_fd).then_some(FALLBACK_POLL)
    }
}

/// The receiving transports connected when a wait started (and their
/// connection generations), to tell a wait that the connection it waited
/// on ended.
#[cfg(feature = "tokio")]
#[derive(Debug, Clone, Default)]
pub(crate) struct ConnectionWatch(Vec<(usize, u64)>);

#[cfg(feature = "tokio")]
impl ConnectionWatch {
    /// The receiving transports connected now, and their generations.
    pub(crate) fn now(transports: &[Arc<dyn Transport>]) -> Self {
        Self(
            transports
                .iter()
                .enumerate()
                .filter(|(_, t)| t.config().directions().receives())
                .filter(|(_, t)| t.connection_log().is_connected())
                .map(|(i, t)| (i, t.connection_log().generation()))
                .collect(),
        )
    }

    /// The first watched transport (connected when the wait started) if
    /// no receiving transport is connected now: the connection the wait
    /// was on ended (and no other took its place).
    pub(crate) fn lost(
        &self,
        transports: &[Arc<dyn Transport>],
    ) -> Option<crate::transport::TransportId> {
        let connected = transports
            .iter()
            .filter(|t| t.config().directions().receives())
            .any(|t| t.connection_log().is_connected());
        if connected {
            return None;
        }
        self.0
            .first()
            .map(|(i, _)| crate::transport::TransportId(*i))
    }
}

impl Channel {
    /// The async state, made on first use.
    pub(crate) fn async_state(&mut self) -> io::Result<&mut AsyncState> {
        if self.asynk.is_none() {
            let own = match self.rx_shared() {
                Some(rx) => Some(rx.async_fd()?),
                None => None,
            };
            let readiness = Readiness::new(self.transport_list(), own)?;
            self.asynk = Some(Box::new(AsyncState {
                plain: Some(readiness),
                #[cfg(feature = "tokio")]
                tokio: None,
                unsignalled: false,
                receive_armed: false,
            }));
        }
        Ok(self.asynk.as_mut().expect("set above"))
    }

    /// The channel's readiness source, for waiting on any reactor (see
    /// the [module docs](crate::asynk)). Made on first use; fails only if
    /// `epoll_create`/`dup`/`eventfd` fail (no descriptor left).
    pub fn readiness(&mut self) -> io::Result<&Readiness> {
        Ok(self.async_state()?.readiness())
    }

    /// Takes a message if one is ready, else declares an async wait (arms
    /// the readiness signal of every receiving transport) and checks once
    /// more. `Err(ReceiveError::Timeout)` (or `Refused`): nothing yet, wait
    /// until [`Self::readiness`] is readable, [`Readiness::clear`] it and
    /// call this again. Any other result ends the wait (it is withdrawn).
    ///
    /// Cancellation: nothing is taken unless it is returned, so stopping
    /// between calls loses no message; call [`Self::disarm_receive`] when
    /// giving up, so that the peer stops signalling.
    pub fn try_receive_or_arm(&mut self) -> Result<Message, ReceiveError> {
        self.try_or_arm(Channel::try_receive)
    }

    /// [`Self::try_receive_or_arm`] with any non-blocking receive.
    pub(crate) fn try_or_arm<T>(
        &mut self,
        mut attempt: impl FnMut(&mut Self) -> Result<T, ReceiveError>,
    ) -> Result<T, ReceiveError> {
        match attempt(self) {
            Err(ReceiveError::Timeout | ReceiveError::Refused { .. }) => {}
            other => {
                self.disarm_receive();
                return other;
            }
        }
        self.arm_receive(true)?;
        match attempt(self) {
            Err(e @ (ReceiveError::Timeout | ReceiveError::Refused { .. })) => Err(e),
            other => {
                self.disarm_receive();
                other
            }
        }
    }

    /// Withdraws a receive wait declared by [`Self::try_receive_or_arm`]
    /// (nothing happens if none is armed).
    pub fn disarm_receive(&mut self) {
        if self.asynk.as_ref().is_some_and(|s| s.receive_armed) {
            let _ = self.arm_receive(false);
        }
    }

    fn arm_receive(&mut self, armed: bool) -> Result<(), ReceiveError> {
        let state = self.async_state().map_err(reactor_error)?;
        state.receive_armed = armed;
        if let Some(rx) = self.rx_shared() {
            rx.set_async_waiting(armed);
        }
        let mut unsignalled = false;
        for t in self.transport_list() {
            if t.config().directions().receives()
                && t.set_async_waiter(AsyncWaiter::Consumer, armed) == AsyncArm::Unsupported
            {
                unsignalled = true;
            }
        }
        if armed {
            self.asynk.as_mut().expect("made above").unsignalled = unsignalled;
        }
        Ok(())
    }
}

/// A failure of the reactor registration, as a receive error.
fn reactor_error(e: io::Error) -> ReceiveError {
    ReceiveError::Async(e.to_string())
}
