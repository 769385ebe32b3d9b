//! Messaging channels (`LMQ_CHANNELTYPE_ONE_TO_ONE`): messages posted to
//! prioritised send queues, clubbed into transport buffers, fanned out to
//! every sending transport, and received from one receive queue.
//!
//! ```no_run
//! use lwmq::channel::{Channel, Priority, ReceiveQueueKind, SendQueueKind};
//! use lwmq::message::Message;
//! use lwmq::{Directions, Role, Timeout};
//!
//! let mut ch = Channel::new();
//! ch.add_transport("ipc://example/chat", 64 * 1024, 4, 4, Directions::SendReceive)?;
//! let queue = ch.add_send_queue(SendQueueKind::MonoProducerUnbounded, Priority::Normal)?;
//! ch.open(Role::Server, Some(ReceiveQueueKind::MonoConsumerUnbounded))?;
//!
//! queue.post(Message::from(b"Hello"), Timeout::INFINITE)?;
//!
//! let got = ch.receive(Timeout::INFINITE)?;
//! println!("{} frames, {} bytes", got.frame_count, got.payload_size);
//! ch.close(Timeout::after(std::time::Duration::from_secs(1)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Lifecycle: [`Channel::new`] → [`Channel::add_transport`] →
//! [`Channel::add_send_queue`] → [`Channel::open`] → post / receive →
//! [`Channel::flush`] → [`Channel::close`] (or drop). Every rule is checked
//! at the step that breaks it and reported as a named [`ChannelError`].
//! The design (threads, clubbing, connection loss, linger) is described in
//! `docs/messaging.md`.

// A failed post hands the message back by value (as crossbeam's
// `SendError<T>` does): boxing it would allocate on every failed post.
#![allow(clippy::result_large_err)]

mod error;
mod lent;
mod receive;
mod send;

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::channel_error::ChannelError;
use crate::message::Message;
use crate::queue::{self, ReceiveConsumer, Scheduler};
use crate::raw::TransportId;
use crate::timeout::Timeout;
use crate::transport::{ChannelKind, Directions, Role, Transport};

pub use crate::queue::{Priority, ReceiveQueueKind, SendQueueKind};
pub use error::{PostError, ReceiveError};
pub use lent::{Lent, LentFrame, LentFrames};
pub use send::{MonoSendQueue, MultiSendQueue, SendQueue};

use receive::{Drain, Lending, RxShared};
use send::{SendShared, TxSide};

/// Polls of the receive queue and the transports before a waiting
/// `receive` sleeps.
const RECEIVE_POLLS: u32 = 256;

/// Longest single sleep of a waiting `receive` in the transport, after
/// which it re-checks the receive queue.
const RECEIVE_WAIT: std::time::Duration = std::time::Duration::from_millis(50);

/// How long a waiting `receive` sleeps on the queue while another thread
/// owns the transport, before it tries to own it again.
const RECEIVE_BUSY_WAIT: std::time::Duration = std::time::Duration::from_millis(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Created,
    Open,
    Closed,
}

/// A received message with its frame count and payload size
/// (`LmqReceiveMessage`'s outputs). Dropping it disposes it.
#[derive(Debug)]
pub struct Received {
    /// The message.
    pub message: Message,
    /// Its number of frames.
    pub frame_count: usize,
    /// Its total payload bytes.
    pub payload_size: usize,
}

impl Received {
    fn new(message: Message) -> Self {
        Received {
            frame_count: message.frame_count(),
            payload_size: message.payload_size(),
            message,
        }
    }
}

/// Counters of a channel, cumulative since it was created.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
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
}

/// A messaging channel (see the [module documentation](self)).
pub struct Channel {
    transports: Vec<Arc<dyn Transport>>,
    phase: Phase,
    shared: Arc<SendShared>,
    queue_count: usize,
    consumer: Option<ReceiveConsumer<Message>>,
    /// Messages decoded ahead by an inline receive (one transport into a
    /// mono-consumer queue), older than anything in the queue; taken first.
    local: VecDeque<Message>,
    /// The receive path; `None` before `open`, after `close`, and when
    /// nothing receives. Dropping it closes the receive queue.
    rx: Option<Arc<RxShared>>,
    threads: Vec<JoinHandle<()>>,
    affinity: Arc<Mutex<Affinity>>,
}

#[derive(Debug, Default)]
struct Affinity {
    cpus: Option<Vec<usize>>,
    tids: Vec<rustix::thread::Pid>,
}

impl Affinity {
    /// The set in force: the one set, or else the inherited one.
    fn current(&self) -> Vec<usize> {
        if let Some(cpus) = &self.cpus {
            return cpus.clone();
        }
        let set = rustix::thread::sched_getaffinity(self.tids.first().copied());
        set.map_or_else(
            |_| Vec::new(),
            |set| {
                (0..rustix::thread::CpuSet::MAX_CPU)
                    .filter(|&c| set.is_set(c))
                    .collect()
            },
        )
    }

    fn apply(cpus: &[usize], tid: rustix::thread::Pid) -> rustix::io::Result<()> {
        let mut set = rustix::thread::CpuSet::new();
        for &c in cpus {
            set.set(c);
        }
        rustix::thread::sched_setaffinity(Some(tid), &set)
    }
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("transports", &self.transports)
            .field("phase", &self.phase)
            .field("send_queues", &self.queue_count)
            .finish_non_exhaustive()
    }
}

impl Default for Channel {
    fn default() -> Self {
        Self::new()
    }
}

impl Channel {
    /// A new channel with no transport and no send queue.
    pub fn new() -> Self {
        Channel {
            transports: Vec::new(),
            phase: Phase::Created,
            shared: Arc::new(SendShared::new(Scheduler::new())),
            queue_count: 0,
            consumer: None,
            local: VecDeque::new(),
            rx: None,
            threads: Vec::new(),
            affinity: Arc::default(),
        }
    }

    /// Adds a transport by descriptor (`LmqAddTransport`); before `open`
    /// only, and every transport of a channel uses the same buffer size.
    pub fn add_transport(
        &mut self,
        descriptor: &str,
        buffer_size: usize,
        send_buffers: i64,
        receive_buffers: i64,
        directions: Directions,
    ) -> Result<TransportId, ChannelError> {
        if self.phase != Phase::Created {
            return Err(ChannelError::AddTransportAfterOpen);
        }
        crate::transports::add(
            &mut self.transports,
            descriptor,
            buffer_size,
            send_buffers,
            receive_buffers,
            directions,
        )
    }

    /// The transport with this id, for its state, stats and control codes.
    pub fn transport(&self, id: TransportId) -> Result<&dyn Transport, ChannelError> {
        crate::transports::get(&self.transports, id)
    }

    /// All transports, in the order added.
    pub fn transports(&self) -> impl Iterator<Item = &dyn Transport> {
        self.transports.iter().map(|t| t.as_ref())
    }

    /// Adds a send queue (`LmqAddSendQueue`); before `open` only. Bounded
    /// kinds carry their capacity, which must be at least 1.
    pub fn add_send_queue(
        &mut self,
        kind: SendQueueKind,
        priority: Priority,
    ) -> Result<SendQueue, ChannelError> {
        if self.phase != Phase::Created {
            return Err(ChannelError::AddSendQueueAfterOpen);
        }
        let (_, producer) = self
            .shared
            .exclusive(|s| s.scheduler.add_queue(kind, priority))
            .map_err(|_| ChannelError::ZeroCapacity { which: "send" })?;
        self.queue_count += 1;
        Ok(SendQueue::new(producer, Arc::clone(&self.shared)))
    }

    /// Opens the channel (`LmqOpenChannel`).
    ///
    /// Rules, each a named [`ChannelError`]: at least one transport
    /// ([`NoTransport`](ChannelError::NoTransport)); `receive_queue` is
    /// given iff some transport receives
    /// ([`ReceiveQueueMissing`](ChannelError::ReceiveQueueMissing),
    /// [`ReceiveQueueWithoutReceivingTransport`](ChannelError::ReceiveQueueWithoutReceivingTransport));
    /// a bounded kind has capacity >= 1
    /// ([`ZeroCapacity`](ChannelError::ZeroCapacity)); at least one send
    /// queue iff some transport sends
    /// ([`NoSendQueue`](ChannelError::NoSendQueue),
    /// [`SendQueueWithoutSendingTransport`](ChannelError::SendQueueWithoutSendingTransport)).
    ///
    /// Servers bind now; clients connect in the background, so the peer
    /// may start later. A server whose address is taken fails with
    /// `TransportError::AddressInUse` and leaves a single-transport channel
    /// unopened, so that the caller can retry as [`Role::Client`].
    pub fn open(
        &mut self,
        role: Role,
        receive_queue: Option<ReceiveQueueKind>,
    ) -> Result<(), ChannelError> {
        match self.phase {
            Phase::Open => return Err(ChannelError::AlreadyOpen),
            Phase::Closed => return Err(ChannelError::Closed),
            Phase::Created => {}
        }
        if self.transports.is_empty() {
            return Err(ChannelError::NoTransport);
        }
        let sends = self
            .transports
            .iter()
            .any(|t| t.config().directions().sends());
        let receives = self
            .transports
            .iter()
            .any(|t| t.config().directions().receives());
        match (receives, receive_queue) {
            (true, None) => return Err(ChannelError::ReceiveQueueMissing),
            (false, Some(_)) => return Err(ChannelError::ReceiveQueueWithoutReceivingTransport),
            _ => {}
        }
        match (sends, self.queue_count > 0) {
            (true, false) => return Err(ChannelError::NoSendQueue),
            (false, true) => return Err(ChannelError::SendQueueWithoutSendingTransport),
            _ => {}
        }
        let queue = match receive_queue {
            Some(kind) => Some(
                queue::receive_queue::<Message>(kind)
                    .map_err(|_| ChannelError::ZeroCapacity { which: "receive" })?,
            ),
            None => None,
        };
        for (i, t) in self.transports.iter().enumerate() {
            if let Err(e) = t.start(role, ChannelKind::Messaging) {
                for started in &self.transports[..i] {
                    started.stop();
                }
                if i > 0 {
                    self.phase = Phase::Closed;
                }
                return Err(e.into());
            }
        }
        if let Err(e) = self.start_threads(queue) {
            self.shutdown();
            return Err(e);
        }
        self.shared
            .buffer_size
            .store(self.transports[0].config().buffer_size(), Ordering::Release);
        self.phase = Phase::Open;
        // Messages can only be posted from now on; nothing to kick yet.
        Ok(())
    }

    fn start_threads(
        &mut self,
        queue: Option<(queue::ReceiveProducer<Message>, ReceiveConsumer<Message>)>,
    ) -> Result<(), ChannelError> {
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
        if let Some((producer, consumer)) = queue {
            self.consumer = Some(consumer);
            let mut rx = RxShared::new(producer);
            for t in &self.transports {
                if t.config().directions().receives() {
                    rx.add_side(t.claim_receiver()?, t.descriptor().to_owned());
                }
            }
            let rx = Arc::new(rx);
            for i in 0..rx.sides.len() {
                let (r, s) = (Arc::clone(&rx), Arc::clone(&self.shared));
                self.spawn("lwmq-recv", move || r.receive_loop(i, &s.counters))?;
            }
            self.rx = Some(rx);
        }
        Ok(())
    }

    fn spawn(&mut self, name: &str, f: impl FnOnce() + Send + 'static) -> Result<(), ChannelError> {
        let affinity = Arc::clone(&self.affinity);
        let h = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let tid = rustix::thread::gettid();
                {
                    let mut a = affinity.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(cpus) = &a.cpus {
                        if let Err(e) = Affinity::apply(cpus, tid) {
                            log::warn!("lwmq: sched_setaffinity failed: {e}");
                        }
                    }
                    a.tids.push(tid);
                }
                f();
            })
            .map_err(|e| ChannelError::Spawn(e.to_string()))?;
        self.threads.push(h);
        Ok(())
    }

    /// Pins the channel's helper threads (the send service thread and one
    /// receive thread per receiving transport) to `cpus` (the Linux meaning
    /// of `LMQ_CHANNELCONTROLCODE_SERVICETHREADGROUPAFFINITY`, and of the
    /// ideal-processor code with one CPU). Applies to running threads now
    /// and to threads started later by `open`. The transports' own
    /// connection threads are not affected. Returns the previous set, as
    /// [`service_thread_affinity`](Self::service_thread_affinity) reported
    /// it; on failure nothing changes.
    pub fn set_service_thread_affinity(&self, cpus: &[usize]) -> Result<Vec<usize>, ChannelError> {
        let control = |what: String| {
            ChannelError::Transport(crate::transport::TransportError::Control {
                descriptor: "channel".into(),
                what,
            })
        };
        if cpus.is_empty() || cpus.iter().any(|&c| c >= rustix::thread::CpuSet::MAX_CPU) {
            return Err(control(format!(
                "CPU set {cpus:?} is empty or out of range (rule: 1 or more CPUs below {})",
                rustix::thread::CpuSet::MAX_CPU
            )));
        }
        let mut a = self.affinity.lock().unwrap_or_else(|e| e.into_inner());
        let previous = a.current();
        for (i, &tid) in a.tids.iter().enumerate() {
            match Affinity::apply(cpus, tid) {
                // A helper thread that has ended (after close) has no
                // affinity to set.
                Ok(()) | Err(rustix::io::Errno::SRCH) => {}
                Err(e) => {
                    if !previous.is_empty() {
                        for &done in &a.tids[..i] {
                            let _ = Affinity::apply(&previous, done);
                        }
                    }
                    return Err(control(format!("sched_setaffinity({cpus:?}) failed: {e}")));
                }
            }
        }
        a.cpus = Some(cpus.to_vec());
        Ok(previous)
    }

    /// The CPUs the channel's helper threads run on: the set given to
    /// [`set_service_thread_affinity`](Self::set_service_thread_affinity),
    /// or, before any, the set they inherit (that of the running helper
    /// threads, or, before `open`, of the calling thread, which is what
    /// threads started by an `open` from this thread inherit).
    pub fn service_thread_affinity(&self) -> Vec<usize> {
        self.affinity
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .current()
    }

    /// Takes the next received message, waiting up to `timeout`
    /// ([`Timeout::ZERO`] polls, [`Timeout::INFINITE`] waits until a message
    /// arrives or the channel closes).
    ///
    /// A waiting receive first polls briefly (a few hundred polls, about a
    /// microsecond) before it sleeps, so that a message arriving at once is
    /// taken without a wake-up.
    pub fn receive(&mut self, timeout: Timeout) -> Result<Received, ReceiveError> {
        let consumer = match (&mut self.consumer, self.phase) {
            (Some(c), _) => c,
            (None, Phase::Created) => return Err(ReceiveError::NotOpen),
            (None, Phase::Closed) => return Err(ReceiveError::Closed),
            (None, Phase::Open) => return Err(ReceiveError::NoReceiveQueue),
        };
        if let Some(message) = self.local.pop_front() {
            if let Some(rx) = &self.rx {
                rx.touch();
            }
            return Ok(Received::new(message));
        }
        let got = match (consumer.receive(Timeout::ZERO), &self.rx) {
            (Err(queue::RecvError::Timeout), Some(rx)) => {
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
            (Err(queue::RecvError::Timeout), None) if !timeout.is_zero() => {
                consumer.receive(timeout)
            }
            (got, rx) => {
                if let Some(rx) = rx {
                    rx.touch();
                }
                got
            }
        };
        match got {
            Ok(message) => Ok(Received::new(message)),
            Err(queue::RecvError::Timeout) => Err(ReceiveError::Timeout),
            Err(queue::RecvError::Closed) => Err(ReceiveError::Closed),
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
        timeout: Timeout,
        f: impl FnOnce(Lent<'_>) -> R,
    ) -> Result<R, ReceiveError> {
        let direct = matches!(
            (&self.consumer, &self.rx),
            (Some(ReceiveConsumer::Mono(_)), Some(rx)) if rx.sides.len() == 1
        );
        let (Some(consumer), Some(rx), true) = (&mut self.consumer, &self.rx, direct) else {
            return self.receive(timeout).map(|r| f(Lent::owned(&r.message)));
        };
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
            Err(queue::RecvError::Timeout) => Err(ReceiveError::Timeout),
            Err(queue::RecvError::Closed) => Err(ReceiveError::Closed),
        }
    }

    /// The receive queue is empty: drain the transports on this thread
    /// (see `receive.rs`), polling briefly, then sleeping in the transport
    /// (one receiving transport) or on the queue (several).
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
    ) -> Result<T, queue::RecvError> {
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
                Err(queue::RecvError::Timeout) => {}
                got => return got.map(&queued),
            }
            if timeout.is_zero() {
                return Err(queue::RecvError::Timeout);
            }
            // A short poll without reading the clock (the machine may
            // have 2 cores: a long spin would steal the peer's core).
            if polls < RECEIVE_POLLS {
                polls += 1;
                std::hint::spin_loop();
                continue;
            }
            let slice = match deadline.remaining() {
                Some(left) if left.is_zero() => return Err(queue::RecvError::Timeout),
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
                Err(queue::RecvError::Timeout) => {}
                got => return got.map(&queued),
            }
        }
    }

    /// A handle for receiving from several threads (multi-consumer receive
    /// queue kinds only; `None` otherwise or before `open`).
    pub fn receiver(&self) -> Option<queue::Receiver<Message>> {
        match &self.consumer {
            Some(ReceiveConsumer::Multi(r)) => Some(r.clone()),
            _ => None,
        }
    }

    /// Blocks until every message queued so far has been encoded and every
    /// committed buffer has been taken by the peer, on every connected
    /// sending transport, or until `timeout` (`LmqFlushChannel`). After a
    /// timeout the sending goes on. A transport without a peer holds its
    /// messages in the queues, so flush waits for a peer to connect.
    pub fn flush(&self, timeout: Timeout) -> Result<(), ChannelError> {
        match self.phase {
            Phase::Created => return Err(ChannelError::NotOpen),
            Phase::Closed => return Err(ChannelError::Closed),
            Phase::Open => {}
        }
        self.flush_inner(timeout)
    }

    fn flush_inner(&self, timeout: Timeout) -> Result<(), ChannelError> {
        let deadline = timeout.deadline();
        let r = self.shared.with_owner(deadline, |s| loop {
            if s.pump(&self.shared.counters, true) == send::Pump::Idle {
                return s.flush_sides(deadline).map_err(|e| match e {
                    crate::transport::TransportError::Timeout => ChannelError::Timeout,
                    e => e.into(),
                });
            }
            if deadline.passed() || self.shared.stop.load(Ordering::Acquire) {
                return Err(ChannelError::Timeout);
            }
            s.wait_progress(deadline.slice(send::WAIT_SLICE));
        });
        r.unwrap_or(Err(ChannelError::Timeout))
    }

    /// Closes the channel (`LmqCloseChannel`): posts fail from now on;
    /// waits up to `linger` for queued messages to be sent and taken by the
    /// peer ([`Timeout::ZERO`]: not at all), then stops the transports and
    /// the helper threads and drops whatever is still queued (running the
    /// release hooks of external frames). Received messages not yet taken
    /// stay receivable, then `receive` reports [`ReceiveError::Closed`].
    /// Returns [`ChannelError::Timeout`] if the linger ran out with messages
    /// unsent (the channel is closed either way).
    pub fn close(&mut self, linger: Timeout) -> Result<(), ChannelError> {
        if self.phase != Phase::Open {
            self.shutdown();
            return Ok(());
        }
        self.shared.buffer_size.store(0, Ordering::Release);
        self.shared.exclusive(|s| s.scheduler.close());
        let r = if linger.is_zero() {
            Ok(())
        } else {
            self.flush_inner(linger)
        };
        self.shutdown();
        r
    }

    fn shutdown(&mut self) {
        self.shared.buffer_size.store(0, Ordering::Release);
        self.shared.stop.store(true, Ordering::Release);
        if let Some(rx) = &self.rx {
            rx.stop.store(true, Ordering::Release);
        }
        for t in &self.transports {
            t.stop();
        }
        self.shared.wake_service();
        for h in self.threads.drain(..) {
            let _ = h.join();
        }
        // Closes the receive queue: what is queued stays receivable.
        self.rx = None;
        self.shared.exclusive(|s| {
            s.drop_all();
            // The sides' claims end here; the transports are stopped.
            s.sides.clear();
        });
        self.phase = Phase::Closed;
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
        }
    }
}

impl Drop for Channel {
    /// Closes with zero linger: whatever is still queued is dropped.
    fn drop(&mut self) {
        if self.phase != Phase::Closed {
            self.shutdown();
        }
    }
}
