//! Messaging channels (`LMQ_CHANNELTYPE_ONE_TO_ONE`): messages posted to
//! prioritised queues, clubbed into transport buffers, fanned out to every
//! sending transport, and received from one receive queue.
//!
//! A [`ChannelBuilder`] collects transports ([`Endpoint`](crate::Endpoint)s), queues and
//! settings; [`ChannelBuilder::open`] turns it into a [`Channel`], which is
//! open for as long as it lives. Queues ([`MonoQueue`], [`MultiQueue`])
//! are handles of their own: post from any thread that holds one.
//!
//! ```
//! use std::time::Duration;
//! use lwmq::{Channel, Endpoint, Message, Priority, Role, Timeout};
//!
//! # let address = format!("ipc://lwmq-doc/channel/{}", std::process::id());
//! // The peer: another process in real life, a thread here.
//! let peer_address = address.clone();
//! let peer = std::thread::spawn(move || -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//!     let mut b = Channel::builder().transport(Endpoint::new(peer_address)?)?;
//!     let replies = b.mono_queue(Priority::Normal)?;
//!     let mut ch = b.open(Role::Client)?;
//!     let request = ch.receive(Duration::from_secs(20))?;
//!     replies.post(request, Timeout::NEVER)?; // echo it back
//!     ch.close(Duration::from_secs(20))?;
//!     Ok(())
//! });
//!
//! let mut b = Channel::builder().transport(Endpoint::new(address)?)?;
//! let requests = b.mono_queue(Priority::Normal)?;
//! let mut ch = b.open(Role::Server)?;
//!
//! requests.post(Message::from(b"Hello"), Timeout::NEVER)?;
//! let reply = ch.receive(Duration::from_secs(20))?;
//! assert_eq!(reply.frame(0).unwrap().data(), b"Hello");
//! peer.join().unwrap().unwrap();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Posting waits at a queue's high-water mark (backpressure by default,
//! see [`QueueOptions`]); dropping a channel waits for its queued messages
//! up to the builder's linger, then drops, counts and logs what is left
//! ([`Channel::close`] reports it as a [`CloseError`]). The design
//! (threads, clubbing, connection loss) is described in
//! `docs/messaging.md`, the API in `docs/rust-api.md`.

// A failed post hands the message back by value (as crossbeam's
// `SendError<T>` does): boxing it would allocate on every failed post.
#![allow(clippy::result_large_err)]

mod affinity;
mod builder;
mod connection;
mod error;
mod lent;
mod loan;
mod queues;
mod receive;
mod send;

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::message::Message;
use crate::queue::{self, ReceiveConsumer, ReceiveProducer, ReceiveWaker, RecvError};
use crate::timeout::Timeout;
use crate::transport::{Transport, TransportError, TransportId, TransportView};
use crate::transports;

pub use crate::queue::Priority;
pub use affinity::AffinityError;
pub use builder::{ChannelBuilder, ReceiveQueue};
pub(crate) use connection::wait_transport;
pub use connection::{ChannelEvents, ConnectError};
pub use error::{
    CloseError, FlushError, InvalidMessage, OpenError, OpenErrorKind, PostBatchError, PostError,
    ReceiveError,
};
pub use lent::{Lent, LentFrame, LentFrames};
pub use loan::{Loan, LoanBytes, LoanError};
pub use queues::{MonoQueue, MultiQueue, QueueOptions};

use affinity::Affinity;
pub(crate) use receive::RxShared;
use receive::{Drain, Lending};
use send::{SendShared, TxSide};

/// Polls of the receive queue and the transports before a waiting
/// `receive` sleeps.
const RECEIVE_POLLS: u32 = 256;

/// Longest single sleep of a waiting `receive` in the transport, after
/// which it re-checks the receive queue. (An [`Interrupter`] ends it at
/// once.)
const RECEIVE_WAIT: std::time::Duration = std::time::Duration::from_millis(50);

/// How long a waiting `receive` sleeps on the queue while another thread
/// owns the transport, before it tries to own it again.
const RECEIVE_BUSY_WAIT: std::time::Duration = std::time::Duration::from_millis(1);

/// Counters of a channel, cumulative since it opened.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[non_exhaustive]
pub struct ChannelStats {
    /// Messages encoded into committed buffers (a message fanned out to two
    /// transports counts twice).
    pub messages_sent: u64,
    /// Buffers committed.
    pub buffers_sent: u64,
    /// Clubbing: `messages_sent / buffers_sent` (0 before the first buffer).
    pub messages_per_buffer: f64,
    /// Messages received in valid buffers (delivered straight to
    /// `receive` or through the receive queue).
    pub messages_received: u64,
    /// Buffers received (including corrupt ones).
    pub buffers_received: u64,
    /// Received buffers dropped whole because they failed validation.
    pub decode_errors: u64,
    /// Messages the bounded receive queue discarded because it was full.
    pub receive_discards: u64,
    /// Messages dropped because they could not be encoded (should stay 0).
    pub dropped_unencodable: u64,
    /// Times a mono queue's clean direct post left the sender biased to it
    /// (its next posts then take no locked instruction; see
    /// `docs/messaging.md`).
    pub bias_grants: u64,
    /// Times another thread (another queue's post, the service thread,
    /// flush or close) took a bias back. Close to `bias_grants` means the
    /// bias rarely pays off for this channel's pattern of posts.
    pub bias_revocations: u64,
    /// Messages lost because the connection ended while the buffer holding
    /// them was being filled or kept open in its shared memory: such a
    /// buffer is never sent, nor copied to the next connection (the old
    /// peer could have written into it). Messages still queued are not
    /// lost; they go to the next peer.
    pub messages_lost: u64,
    /// Messages dropped by a close whose linger ended first (0 on an open
    /// channel; see [`Channel::close_with_stats`]).
    pub lost_on_close: u64,
}

/// An open messaging channel (see the [module documentation](self)).
///
/// Made by [`ChannelBuilder::open`]; open until it is closed
/// ([`Channel::close`]) or dropped. Dropping it closes it with the
/// builder's linger (default 1 s): it waits while messages are queued and
/// a peer is connected or may connect, then drops what is left, logs at
/// `warn` how many messages were lost, and returns.
pub struct Channel {
    transports: Vec<Arc<dyn Transport>>,
    shared: Arc<SendShared>,
    consumer: Option<ReceiveConsumer<Message>>,
    /// Messages decoded ahead by an inline receive (one transport into a
    /// mono-consumer queue), older than anything in the queue; taken first.
    local: VecDeque<Message>,
    /// The receive path; `None` when nothing receives and after the
    /// channel shut down. Dropping it closes the receive queue.
    rx: Option<Arc<RxShared>>,
    threads: Vec<JoinHandle<()>>,
    affinity: Arc<Mutex<Affinity>>,
    linger: Timeout,
    /// Set once shut down (by `close`), so that `Drop` does nothing.
    down: bool,
    /// What statistics queries see of this channel (registered weakly).
    _probe: Option<Arc<crate::transport::stat::ChannelProbe>>,
    /// The async readiness source and its reactor registration, made by
    /// the first async call (feature `async`).
    #[cfg(feature = "async")]
    pub(crate) asynk: Option<Box<crate::asynk::AsyncState>>,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("transports", &self.transports)
            .field("receives", &self.consumer.is_some())
            .finish_non_exhaustive()
    }
}

impl Channel {
    /// A builder: `Channel::builder().transport(endpoint)?...open(role)`.
    pub fn builder() -> ChannelBuilder {
        ChannelBuilder::new()
    }

    /// Starts the helper threads of a channel whose transports started.
    fn start(
        b: ChannelBuilder,
        transports: Vec<Arc<dyn Transport>>,
        queue: Option<(ReceiveProducer<Message>, ReceiveConsumer<Message>)>,
    ) -> Result<Channel, OpenError> {
        let buffer_size = transports[0].config().buffer_size();
        let mut ch = Channel {
            transports,
            shared: Arc::clone(&b.shared),
            consumer: None,
            local: VecDeque::new(),
            rx: None,
            threads: Vec::new(),
            affinity: Arc::clone(&b.affinity),
            linger: b.linger,
            down: false,
            _probe: None,
            #[cfg(feature = "async")]
            asynk: None,
        };
        if let Err(kind) = ch.start_threads(queue) {
            // Back to the state of an unopened builder: threads joined,
            // sides released, transports stopped.
            ch.stop_threads();
            ch.shared.exclusive(|s| s.sides.clear());
            ch.shared.stop.store(false, Ordering::Release);
            ch.down = true;
            let started = std::mem::take(&mut ch.transports);
            return Err(ChannelBuilder::undo(started, kind, b));
        }
        ch.shared.buffer_size.store(buffer_size, Ordering::Release);
        Ok(ch)
    }

    fn start_threads(
        &mut self,
        queue: Option<(ReceiveProducer<Message>, ReceiveConsumer<Message>)>,
    ) -> Result<(), OpenErrorKind> {
        let mut sides = Vec::new();
        for t in &self.transports {
            if t.config().directions().sends() {
                sides.push(TxSide::new(t.claim_sender()?));
            }
        }
        let sending = !sides.is_empty();
        self.shared.exclusive(|s| s.sides = sides);
        if sending {
            let shared = Arc::clone(&self.shared);
            self.spawn("lwmq-send", move || shared.service_loop())?;
        }
        let probe = Arc::new(crate::transport::stat::ChannelProbe {
            transports: self
                .transports
                .iter()
                .map(crate::transport::stat::ChannelProbe::key)
                .collect(),
            send: self
                .shared
                .probes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            receive: queue.as_ref().map(|(producer, _)| producer.probe()),
        });
        crate::transport::stat::register_channel(&probe);
        self._probe = Some(probe);
        if let Some((producer, consumer)) = queue {
            self.consumer = Some(consumer);
            let mut rx = RxShared::new(producer);
            for t in &self.transports {
                if t.config().directions().receives() {
                    rx.add_side(t.claim_receiver()?, t.descriptor().to_owned());
                }
            }
            let rx = Arc::new(rx);
            self.rx = Some(Arc::clone(&rx));
            for i in 0..rx.sides.len() {
                let (r, s) = (Arc::clone(&rx), Arc::clone(&self.shared));
                self.spawn("lwmq-recv", move || r.receive_loop(i, &s.counters))?;
            }
        }
        Ok(())
    }

    fn spawn(
        &mut self,
        name: &str,
        f: impl FnOnce() + Send + 'static,
    ) -> Result<(), OpenErrorKind> {
        let affinity = Arc::clone(&self.affinity);
        let h = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                Affinity::register(&affinity);
                f();
            })
            .map_err(|e| OpenErrorKind::Spawn(e.to_string()))?;
        self.threads.push(h);
        Ok(())
    }

    /// The transports, for the async layer.
    #[cfg_attr(not(feature = "async"), allow(dead_code))]
    pub(crate) fn transport_list(&self) -> &[Arc<dyn Transport>] {
        &self.transports
    }

    /// The receive path, for the async layer.
    #[cfg_attr(not(feature = "async"), allow(dead_code))]
    pub(crate) fn rx_shared(&self) -> Option<&Arc<RxShared>> {
        self.rx.as_ref()
    }

    /// Transport `id` (ids are positions in the order the transports were
    /// added, from 0).
    pub fn transport(&self, id: TransportId) -> Option<TransportView<'_>> {
        transports::view(&self.transports, id)
    }

    /// All transports, in the order added.
    pub fn transports(&self) -> impl Iterator<Item = TransportView<'_>> {
        transports::views(&self.transports)
    }

    /// Pins the channel's helper threads (the send service thread and one
    /// receive thread per receiving transport) to `cpus` (the Linux meaning
    /// of `LMQ_CHANNELCONTROLCODE_SERVICETHREADGROUPAFFINITY`, and of the
    /// ideal-processor code with one CPU). The transports' own connection
    /// threads are not affected. Returns the previous set, as
    /// [`service_thread_affinity`](Self::service_thread_affinity) reported
    /// it; on failure nothing changes.
    pub fn set_service_thread_affinity(&self, cpus: &[usize]) -> Result<Vec<usize>, AffinityError> {
        Affinity::set(&self.affinity, cpus)
    }

    /// The CPUs the channel's helper threads run on: the set given to
    /// [`set_service_thread_affinity`](Self::set_service_thread_affinity),
    /// or, before any, the set they inherited.
    pub fn service_thread_affinity(&self) -> Vec<usize> {
        Affinity::get(&self.affinity)
    }

    /// Takes the next received message, waiting up to `timeout`
    /// ([`Timeout::ZERO`] polls, [`Timeout::NEVER`] waits until a message
    /// arrives, the channel closes or an [`Interrupter`] interrupts).
    ///
    /// A waiting receive first polls briefly (a few hundred polls, about a
    /// microsecond) before it sleeps, so that a message arriving at once is
    /// taken without a wake-up. A received message's frames are its own
    /// (copied out of the transport buffer); [`Self::receive_with`] reads
    /// them in place instead.
    ///
    /// When the wait ends with nothing while no receiving transport is
    /// connected and one of them is refused, the answer is
    /// [`ReceiveError::Refused`] (with the refusal) instead of
    /// [`ReceiveError::Timeout`]: waiting longer will not help until its
    /// cause is removed.
    #[inline]
    pub fn receive(&mut self, timeout: impl Into<Timeout>) -> Result<Message, ReceiveError> {
        self.receive_inner(timeout.into(), true)
    }

    /// [`Self::receive`] without waiting: a message if one is ready,
    /// [`ReceiveError::Timeout`] otherwise.
    #[inline]
    pub fn try_receive(&mut self) -> Result<Message, ReceiveError> {
        self.receive_inner(Timeout::ZERO, true)
    }

    /// Waits up to `timeout` for a message, then takes every message that
    /// is ready too, up to `max` in all, appending them to `out`. Returns
    /// how many were taken (at least 1, or 0 when `max` is 0).
    pub fn receive_batch(
        &mut self,
        out: &mut Vec<Message>,
        max: usize,
        timeout: impl Into<Timeout>,
    ) -> Result<usize, ReceiveError> {
        self.take_ready(max, timeout.into(), |m| out.push(m))
    }

    /// Waits up to `timeout` for a message, then takes every message that
    /// is ready too, up to `max` in all, handing each to `each`; how many
    /// (at least 1, or 0 when `max` is 0).
    fn take_ready(
        &mut self,
        max: usize,
        timeout: Timeout,
        mut each: impl FnMut(Message),
    ) -> Result<usize, ReceiveError> {
        if max == 0 {
            return Ok(0);
        }
        each(self.receive_inner(timeout, true)?);
        let mut n = 1;
        while n < max {
            match self.receive_inner(Timeout::ZERO, false) {
                Ok(m) => each(m),
                Err(_) => break,
            }
            n += 1;
        }
        Ok(n)
    }

    /// Whether receives take messages straight from the transport buffer:
    /// one receiving transport and a mono-consumer receive queue.
    fn takes_directly(&self) -> bool {
        matches!(
            (&self.consumer, &self.rx),
            (Some(ReceiveConsumer::Mono(_)), Some(rx)) if rx.sides.len() == 1
        )
    }

    /// The received messages, waiting for each: the iterator ends when a
    /// receive fails (the channel closed, an [`Interrupter`] interrupted,
    /// or the channel does not receive).
    pub fn iter(&mut self) -> Iter<'_> {
        Iter(self)
    }

    /// The messages that are ready now, without waiting.
    pub fn try_iter(&mut self) -> TryIter<'_> {
        TryIter(self)
    }

    /// A handle that interrupts this channel's receives from another
    /// thread (see [`Interrupter`]).
    pub fn interrupter(&self) -> Interrupter {
        Interrupter {
            waker: self.consumer.as_ref().map(ReceiveConsumer::waker),
            transports: self
                .transports
                .iter()
                .filter(|t| t.config().directions().receives())
                .cloned()
                .collect(),
        }
    }

    fn receive_inner(
        &mut self,
        timeout: Timeout,
        interruptible: bool,
    ) -> Result<Message, ReceiveError> {
        let Some(consumer) = &mut self.consumer else {
            return Err(ReceiveError::NotReceiving);
        };
        if interruptible && consumer.take_interrupt() {
            return Err(ReceiveError::Interrupted);
        }
        if let Some(message) = self.local.pop_front() {
            if let Some(rx) = &self.rx {
                rx.touch();
            }
            return Ok(message);
        }
        let got = match (consumer.receive(Timeout::ZERO), &self.rx) {
            (Err(RecvError::Timeout), Some(rx)) => {
                let (local, c) = (&mut self.local, &self.shared.counters);
                Self::receive_inline(
                    consumer,
                    rx,
                    c,
                    timeout,
                    &mut |consumer, wait| rx.take_one(consumer, local, wait, c),
                    |m| m,
                )
            }
            (Err(RecvError::Timeout), None) if !timeout.is_zero() => consumer.receive(timeout),
            (got, rx) => {
                if let Some(rx) = rx {
                    rx.touch();
                }
                got
            }
        };
        match got {
            Ok(message) => Ok(message),
            // Nothing arrived: a refused transport is the answer, if any.
            Err(RecvError::Timeout) => Err(self.nothing_received()),
            Err(e) => Err(receive_error(e)),
        }
    }

    /// Receives one message and lends it to `f`, without copying it out of
    /// the transport buffer when it can: with one receiving transport and a
    /// mono-consumer receive queue, `f` reads the frames where the peer
    /// wrote them (no allocation, no copy; the buffer goes back to the peer
    /// once all its messages were taken). Otherwise, and for messages that
    /// were already queued or decoded, `f` sees an owned message. Returns
    /// what `f` returns; errors and waiting as [`Self::receive`].
    ///
    /// `f` runs while this channel holds its transport's receive side, so
    /// it should be quick; [`Lent::to_message`] copies a message out to
    /// keep it. A message lent this way is as trustworthy as a received
    /// one (its buffer was validated whole first), but a hostile peer can
    /// still change the bytes while `f` reads them (never the bounds).
    pub fn receive_with<R>(
        &mut self,
        timeout: impl Into<Timeout>,
        f: impl FnOnce(Lent<'_>) -> R,
    ) -> Result<R, ReceiveError> {
        let timeout = timeout.into();
        let direct = self.takes_directly();
        let (Some(consumer), Some(rx), true) = (&mut self.consumer, &self.rx, direct) else {
            return self.receive(timeout).map(|m| f(Lent::owned(&m)));
        };
        if consumer.take_interrupt() {
            return Err(ReceiveError::Interrupted);
        }
        // Older messages first: decoded ahead, then queued.
        if let Some(message) = self.local.pop_front() {
            rx.touch();
            return Ok(f(Lent::owned(&message)));
        }
        let mut f = Some(f);
        let c = &self.shared.counters;
        rx.touch();
        let got = Self::receive_inline(
            consumer,
            rx,
            c,
            timeout,
            &mut |consumer, wait| rx.lend_one(consumer, wait, c, &mut f),
            Lending::Queued,
        );
        match got {
            Ok(Lending::Lent(r)) => Ok(r),
            Ok(Lending::Queued(m)) => match f.take() {
                Some(f) => Ok(f(Lent::owned(&m))),
                None => unreachable!("`f` runs only when a message is lent"),
            },
            Err(RecvError::Timeout) => Err(self.nothing_received()),
            Err(e) => Err(receive_error(e)),
        }
    }

    /// [`Self::receive_with`] for a stream of messages: waits up to
    /// `timeout` for a message, then lends it and every further message
    /// that is ready, up to `max` in all, to `f`, one at a time and in
    /// order. Returns how many `f` saw (at least 1, or 0 when `max` is 0).
    ///
    /// With one receiving transport and a mono-consumer receive queue, the
    /// messages are read where the peer wrote them, as with
    /// [`Self::receive_with`], and the per-call work (the interrupt check,
    /// the look at the receive queue, the side's lock) is done once per
    /// batch rather than once per message; otherwise `f` sees owned
    /// messages, taken as [`Self::receive_batch`] takes them. Errors and
    /// waiting as [`Self::receive`]; what `f` saw before an error stays
    /// received. The same caveats as [`Self::receive_with`] apply to `f`.
    pub fn receive_batch_with(
        &mut self,
        max: usize,
        timeout: impl Into<Timeout>,
        mut f: impl FnMut(Lent<'_>),
    ) -> Result<usize, ReceiveError> {
        let timeout = timeout.into();
        let direct = max > 0 && self.takes_directly();
        let (Some(consumer), Some(rx), true) = (&mut self.consumer, &self.rx, direct) else {
            return self.take_ready(max, timeout, |m| f(Lent::owned(&m)));
        };
        if consumer.take_interrupt() {
            return Err(ReceiveError::Interrupted);
        }
        rx.touch();
        let c = &self.shared.counters;
        // Older messages first: those decoded ahead by `receive`.
        let mut n = 0;
        while n < max {
            let Some(message) = self.local.pop_front() else {
                break;
            };
            f(Lent::owned(&message));
            n += 1;
        }
        while n < max {
            // Wait only while nothing was lent yet.
            let wait = if n == 0 { timeout } else { Timeout::ZERO };
            let left = max - n;
            let got = Self::receive_inline(
                consumer,
                rx,
                c,
                wait,
                &mut |consumer, wait| rx.lend_batch(consumer, wait, c, left, &mut f),
                Lending::Queued,
            );
            match got {
                Ok(Lending::Lent(k)) => n += k,
                Ok(Lending::Queued(m)) => {
                    f(Lent::owned(&m));
                    n += 1;
                }
                Err(_) if n > 0 => break,
                Err(RecvError::Timeout) => return Err(self.nothing_received()),
                Err(e) => return Err(receive_error(e)),
            }
        }
        Ok(n)
    }

    /// The receive queue is empty: drain the transports on this thread
    /// (see `receive.rs`), polling briefly, then sleeping in the transport
    /// (one receiving transport) or on the queue (several). An interrupt
    /// ends it: the transport's sleep and the queue's both wake for it.
    ///
    /// `take` takes one message straight from the transport (one receiving
    /// transport, mono-consumer queue); `queued` turns a message from the
    /// receive queue into the same result.
    fn receive_inline<T>(
        consumer: &mut ReceiveConsumer<Message>,
        rx: &RxShared,
        c: &send::Counters,
        timeout: Timeout,
        take: &mut impl FnMut(&mut ReceiveConsumer<Message>, Timeout) -> Result<T, Drain>,
        queued: impl Fn(Message) -> T,
    ) -> Result<T, RecvError> {
        let deadline = timeout.deadline();
        let mut polls = 0u32;
        // One transport into a mono-consumer queue: take messages straight
        // from the transport buffer, one at a time. The side's lock keeps
        // the receive thread out meanwhile, and `touch` keeps it away
        // between calls (no locked instruction per message).
        let direct = rx.sides.len() == 1 && matches!(consumer, ReceiveConsumer::Mono(_));
        let mut guard = if direct {
            rx.touch();
            Some(None)
        } else {
            Some(Some(rx.enter()))
        };
        loop {
            let mut busy = false;
            if guard.is_some() && direct {
                match take(consumer, Timeout::ZERO) {
                    Ok(m) => return Ok(m),
                    Err(d) => busy = d == Drain::Busy,
                }
            } else if guard.is_some() {
                for i in 0..rx.sides.len() {
                    busy |= rx.drain(i, Timeout::ZERO, c) == Drain::Busy;
                }
            }
            match consumer.receive(Timeout::ZERO) {
                Err(RecvError::Timeout) => {}
                got => return got.map(&queued),
            }
            if timeout.is_zero() {
                return Err(RecvError::Timeout);
            }
            if consumer.take_interrupt() {
                return Err(RecvError::Interrupted);
            }
            // A short poll without reading the clock (the machine may
            // have 2 cores: a long spin would steal the peer's core).
            // Not when this thread takes straight from an idle transport:
            // the transport's own wait spins (the configured spin) on
            // the ring alone, far cheaper per poll, and it yields first
            // when this side has just woken its peer (finding 5 of
            // docs/performance.md, decision 157).
            if polls < RECEIVE_POLLS && !(direct && !busy && guard.is_some()) {
                polls += 1;
                std::hint::spin_loop();
                continue;
            }
            let slice = match deadline.remaining() {
                Some(left) if left.is_zero() => return Err(RecvError::Timeout),
                Some(left) => left.min(RECEIVE_WAIT),
                None => RECEIVE_WAIT,
            };
            let mut wait = slice;
            if rx.sides.len() == 1 && guard.is_some() {
                if !busy && direct {
                    match take(consumer, Timeout::after(slice)) {
                        Ok(m) => return Ok(m),
                        Err(Drain::Got | Drain::Empty) => continue,
                        Err(Drain::Busy) => {}
                        Err(Drain::Stopped) => guard = None,
                    }
                } else if !busy {
                    match rx.drain(0, Timeout::after(slice), c) {
                        Drain::Got | Drain::Empty => continue,
                        Drain::Busy => {}
                        Drain::Stopped => guard = None,
                    }
                }
                // Another thread owns the transport: it queues what it
                // takes; the receive thread lets go after its wait.
                wait = wait.min(RECEIVE_BUSY_WAIT);
            } else {
                // Several transports: the receive threads drain them
                // while this thread sleeps on the queue.
                guard = None;
            }
            match consumer.receive(Timeout::after(wait)) {
                Err(RecvError::Timeout) => {}
                got => return got.map(&queued),
            }
        }
    }

    /// A handle for receiving from other threads, for a channel whose
    /// receive queue is a multi-consumer one ([`ReceiveQueue::multi`] and
    /// the discard kinds); `None` otherwise.
    pub fn receiver(&self) -> Option<Receiver> {
        match &self.consumer {
            Some(ReceiveConsumer::Multi(r)) => Some(Receiver(r.clone())),
            _ => None,
        }
    }

    /// Blocks until every message queued so far has been encoded and every
    /// committed buffer has been taken by the peer, on every connected
    /// sending transport, or until `timeout` (`LmqFlushChannel`). After a
    /// timeout the sending goes on. A transport without a peer holds its
    /// messages in the queues, so flush waits for a peer to connect.
    pub fn flush(&self, timeout: impl Into<Timeout>) -> Result<(), FlushError> {
        self.flush_inner(timeout.into())
    }

    fn flush_inner(&self, timeout: Timeout) -> Result<(), FlushError> {
        let deadline = timeout.deadline();
        let r = self.shared.with_owner(deadline, |s| loop {
            if s.pump(&self.shared.counters, true) == send::Pump::Idle {
                return s.flush_sides(deadline).map_err(|e| match e {
                    TransportError::Timeout => FlushError::Timeout,
                    e => FlushError::Transport(e),
                });
            }
            if deadline.passed() || self.shared.stop.load(Ordering::Acquire) {
                return Err(FlushError::Timeout);
            }
            s.wait_progress(deadline.slice(send::WAIT_SLICE));
        });
        r.unwrap_or(Err(FlushError::Timeout))
    }

    /// Closes the channel: posts fail with [`PostError::Closed`] from now
    /// on; waits up to `linger` for queued messages to be sent and taken by
    /// the peer ([`Timeout::ZERO`]: not at all), then stops the transports
    /// and the helper threads and drops whatever is still queued (running
    /// the release hooks of external frames). Received messages not taken
    /// yet are dropped with the channel (take them first with
    /// [`Self::try_iter`]).
    ///
    /// Returns [`CloseError::Unsent`] with the number of messages dropped
    /// if the linger ended first, [`CloseError::Untaken`] if everything was
    /// sent but not all of it taken. The channel is closed either way, and
    /// gone: a second close cannot be written.
    ///
    /// ```compile_fail
    /// # fn f(ch: lwmq::Channel) {
    /// let _ = ch.close(lwmq::Timeout::ZERO);
    /// let _ = ch.close(lwmq::Timeout::ZERO); // use of a moved value
    /// # }
    /// ```
    pub fn close(self, linger: impl Into<Timeout>) -> Result<(), CloseError> {
        self.close_with_stats(linger).1
    }

    /// [`Self::close`], also returning the channel's final counters
    /// (with [`ChannelStats::lost_on_close`]).
    pub fn close_with_stats(
        mut self,
        linger: impl Into<Timeout>,
    ) -> (ChannelStats, Result<(), CloseError>) {
        let (lost, result) = self.close_inner(linger.into());
        let mut stats = self.stats();
        stats.lost_on_close = lost;
        (stats, result)
    }

    /// Closes, returning the messages lost and the result.
    fn close_inner(&mut self, linger: Timeout) -> (u64, Result<(), CloseError>) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.buffer_size.store(0, Ordering::Release);
        self.shared.exclusive(|s| s.scheduler.close());
        let flushed = if linger.is_zero() {
            Ok(())
        } else {
            self.flush_inner(linger)
        };
        let lost = self.shutdown();
        let result = match (lost, flushed) {
            (0, Ok(())) => Ok(()),
            (0, Err(_)) => Err(CloseError::Untaken),
            (lost, _) => Err(CloseError::Unsent { lost }),
        };
        (lost, result)
    }

    /// Stops everything; returns the messages dropped.
    fn shutdown(&mut self) -> u64 {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.buffer_size.store(0, Ordering::Release);
        self.stop_threads();
        // Closes the receive queue.
        self.rx = None;
        let lost = self.shared.exclusive(|s| {
            let lost = s.drop_all();
            // The sides' claims end here; the transports are stopped.
            s.sides.clear();
            lost
        });
        self.down = true;
        lost
    }

    /// Stops the transports and joins the helper threads.
    fn stop_threads(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(rx) = &self.rx {
            rx.stop.store(true, Ordering::Release);
            rx.wake_stood_down();
        }
        for t in &self.transports {
            t.stop();
        }
        self.shared.wake_service();
        for h in self.threads.drain(..) {
            let _ = h.join();
        }
    }

    /// The channel's counters.
    pub fn stats(&self) -> ChannelStats {
        let c = &self.shared.counters;
        let messages_sent = c.messages_sent.load(Ordering::Relaxed);
        let buffers_sent = c.buffers_sent.load(Ordering::Relaxed);
        ChannelStats {
            messages_sent,
            buffers_sent,
            messages_per_buffer: if buffers_sent == 0 {
                0.0
            } else {
                messages_sent as f64 / buffers_sent as f64
            },
            messages_received: c.messages_received.load(Ordering::Relaxed),
            buffers_received: c.buffers_received.load(Ordering::Relaxed),
            decode_errors: c.decode_errors.load(Ordering::Relaxed),
            receive_discards: self.consumer.as_ref().map_or(0, |r| r.discarded()),
            dropped_unencodable: c.dropped_unencodable.load(Ordering::Relaxed),
            bias_grants: c.bias_grants.load(Ordering::Relaxed),
            bias_revocations: c.bias_revocations.load(Ordering::Relaxed),
            messages_lost: c.messages_lost.load(Ordering::Relaxed),
            lost_on_close: 0,
        }
    }
}

impl Drop for Channel {
    /// Closes with the builder's linger; messages still queued after it
    /// are dropped, and their number is logged at `warn`.
    fn drop(&mut self) {
        if self.down {
            return;
        }
        let (lost, _) = self.close_inner(self.linger);
        if lost > 0 {
            let linger = self.linger.duration();
            log::warn!(
                "lwmq: channel dropped with {lost} messages still queued after its linger of {linger:?}: they are lost (close it with Channel::close to handle this, or give the builder a longer linger)"
            );
        }
    }
}

fn receive_error(e: RecvError) -> ReceiveError {
    match e {
        RecvError::Timeout => ReceiveError::Timeout,
        RecvError::Closed => ReceiveError::Closed,
        RecvError::Interrupted => ReceiveError::Interrupted,
    }
}

/// Interrupts a channel's receives from any thread: `Clone + Send + Sync`,
/// from [`Channel::interrupter`].
///
/// [`Interrupter::interrupt`] makes a [`Channel::receive`] (or
/// `receive_with`, `receive_batch`, a [`Receiver`]'s receive) that is
/// waiting in another thread return [`ReceiveError::Interrupted`]
/// promptly: it wakes the futex or condition variable the receive sleeps
/// on. If no receive is waiting, the next one returns it. One interrupt
/// ends one receive.
///
/// ```
/// use std::time::Duration;
/// use lwmq::{Channel, Endpoint, ReceiveError, Role, Timeout};
///
/// # let address = format!("ipc://lwmq-doc/interrupter/{}", std::process::id());
/// let ep = Endpoint::new(address)?.send_buffers(0); // receive only
/// let mut ch = Channel::builder().transport(ep)?.open(Role::Server)?;
/// let stop = ch.interrupter();
/// let t = std::thread::spawn(move || {
///     std::thread::sleep(Duration::from_millis(50));
///     stop.interrupt();
/// });
/// assert_eq!(ch.receive(Timeout::NEVER).unwrap_err(), ReceiveError::Interrupted);
/// t.join().unwrap();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Interrupter {
    waker: Option<ReceiveWaker>,
    transports: Vec<Arc<dyn Transport>>,
}

impl Interrupter {
    /// Interrupts one receive: the one waiting now, or the next one.
    pub fn interrupt(&self) {
        // The flag first (the queue's waker sets it), then the transports'
        // sleepers: a receive woken in the transport finds it set.
        if let Some(w) = &self.waker {
            w.interrupt();
        }
        for t in &self.transports {
            t.interrupt_receive();
        }
    }
}

impl std::fmt::Debug for Interrupter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interrupter")
            .field("receives", &self.waker.is_some())
            .finish()
    }
}

/// A handle receiving from a channel's multi-consumer receive queue, from
/// any thread: `Clone + Send + Sync`, from [`Channel::receiver`]. It takes
/// messages that the channel's receive threads queued; it cannot close the
/// channel or its queue.
#[derive(Clone)]
pub struct Receiver(queue::Receiver<Message>);

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("queued", &self.0.len())
            .finish()
    }
}

impl Receiver {
    /// Takes the next message, waiting up to `timeout`; errors as
    /// [`Channel::receive`].
    pub fn receive(&self, timeout: impl Into<Timeout>) -> Result<Message, ReceiveError> {
        self.0.receive(timeout.into()).map_err(receive_error)
    }

    /// A message if one is queued, [`ReceiveError::Timeout`] otherwise.
    pub fn try_receive(&self) -> Result<Message, ReceiveError> {
        if self.0.take_interrupt() {
            return Err(ReceiveError::Interrupted);
        }
        self.0.receive(Timeout::ZERO).map_err(receive_error)
    }

    /// As [`Channel::receive_batch`].
    pub fn receive_batch(
        &self,
        out: &mut Vec<Message>,
        max: usize,
        timeout: impl Into<Timeout>,
    ) -> Result<usize, ReceiveError> {
        if max == 0 {
            return Ok(0);
        }
        out.push(self.receive(timeout)?);
        let mut n = 1;
        while n < max {
            match self.0.receive(Timeout::ZERO) {
                Ok(m) => out.push(m),
                Err(_) => break,
            }
            n += 1;
        }
        Ok(n)
    }

    /// Messages queued now (approximate while others receive).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True if nothing is queued now.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Iterator of [`Channel::iter`]: waits for each message.
#[derive(Debug)]
#[must_use = "iterators do nothing unless consumed"]
pub struct Iter<'a>(&'a mut Channel);

impl Iterator for Iter<'_> {
    type Item = Message;
    fn next(&mut self) -> Option<Message> {
        self.0.receive(Timeout::NEVER).ok()
    }
}

/// Iterator of [`Channel::try_iter`]: the messages ready now.
#[derive(Debug)]
#[must_use = "iterators do nothing unless consumed"]
pub struct TryIter<'a>(&'a mut Channel);

impl Iterator for TryIter<'_> {
    type Item = Message;
    fn next(&mut self) -> Option<Message> {
        self.0.receive_inner(Timeout::ZERO, false).ok()
    }
}
