//! [`ChannelBuilder`]: transports, queues and settings collected before a
//! [`Channel`] opens.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::affinity::{Affinity, AffinityError};
use super::error::{OpenError, OpenErrorKind};
use super::queues::{self, MonoQueue, MultiQueue, QueueOptions};
use super::send::SendShared;
use super::Channel;
use crate::message::Message;
use crate::queue::{self, ReceiveQueueKind, Scheduler};
use crate::timeout::Timeout;
use crate::transport::{ChannelKind, ConfigError, Endpoint, Role, Transport, TransportId};
use crate::transports;

/// The receive queue of a channel: where received messages wait for
/// [`Channel::receive`]. At most one per channel; a channel whose
/// transports receive gets [`ReceiveQueue::default`] unless the builder is
/// given another.
///
/// | kind | consumers | when full |
/// |---|---|---|
/// | [`ReceiveQueue::default`] | the channel's `receive` | never full |
/// | [`ReceiveQueue::multi`] | the channel and any number of [`Receiver`](super::Receiver)s | never full |
/// | [`ReceiveQueue::multi_discard_oldest`] | as `multi` | drops the oldest message (counted) |
/// | [`ReceiveQueue::multi_discard_newest`] | as `multi` | drops the new message (counted) |
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReceiveQueue(Kind);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Kind {
    #[default]
    Mono,
    Multi,
    DiscardOldest(usize),
    DiscardNewest(usize),
}

impl ReceiveQueue {
    /// One consumer (the channel's `receive`), unbounded: the fastest, and
    /// the only kind that lets [`Channel::receive_with`] read messages in
    /// place.
    pub const fn mono() -> Self {
        ReceiveQueue(Kind::Mono)
    }

    /// Any number of consumers ([`Channel::receiver`]), unbounded.
    pub const fn multi() -> Self {
        ReceiveQueue(Kind::Multi)
    }

    /// Any number of consumers, at most `capacity` messages: a full queue
    /// drops its oldest message for a new one.
    pub const fn multi_discard_oldest(capacity: usize) -> Self {
        ReceiveQueue(Kind::DiscardOldest(capacity))
    }

    /// Any number of consumers, at most `capacity` messages: a full queue
    /// drops the new message.
    pub const fn multi_discard_newest(capacity: usize) -> Self {
        ReceiveQueue(Kind::DiscardNewest(capacity))
    }

    pub(crate) fn kind(self) -> Result<ReceiveQueueKind, ConfigError> {
        Ok(match self.0 {
            Kind::Mono => ReceiveQueueKind::MonoConsumerUnbounded,
            Kind::Multi => ReceiveQueueKind::MultiConsumerUnbounded,
            Kind::DiscardOldest(0) => {
                return Err(ConfigError::ZeroQueueLimit {
                    setting: "ReceiveQueue::multi_discard_oldest",
                })
            }
            Kind::DiscardNewest(0) => {
                return Err(ConfigError::ZeroQueueLimit {
                    setting: "ReceiveQueue::multi_discard_newest",
                })
            }
            Kind::DiscardOldest(n) => ReceiveQueueKind::MultiConsumerBoundedDiscardOldest(n),
            Kind::DiscardNewest(n) => ReceiveQueueKind::MultiConsumerBoundedDiscardNewest(n),
        })
    }
}

/// Collects what a [`Channel`] is made of, then opens it.
///
/// ```no_run
/// # // no_run: opening binds an abstract socket, and this example has no peer.
/// use std::time::Duration;
/// use lwmq::{Channel, Endpoint, Priority, QueueOptions, ReceiveQueue, Role};
///
/// let mut b = Channel::builder()
///     .transport(Endpoint::new("ipc://example/chat")?)?  // 64 KiB, 4 + 4 buffers
///     .receive_queue(ReceiveQueue::default())            // optional: the default
///     .linger(Duration::from_secs(1));                   // what drop waits for
/// let normal = b.mono_queue(Priority::Normal)?;          // high-water mark 1000
/// let urgent = b.multi_queue(QueueOptions::new(Priority::Highest).discard_oldest(256))?;
/// let (ch, role) = b.open_server_or_client()?;
/// # let _ = (normal, urgent, ch, role);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Rules, each a named error: every transport's settings are in range and
/// all use the same buffer size ([`ConfigError`], when the endpoint is
/// added); at least one transport, a queue iff some transport sends, a
/// receive queue only if some transport receives ([`OpenError`], at
/// [`open`](Self::open)).
#[must_use = "a builder does nothing until it is opened"]
pub struct ChannelBuilder {
    pub(super) endpoints: Vec<Endpoint>,
    pub(super) shared: Arc<SendShared>,
    pub(super) queues: usize,
    pub(super) receive_queue: Option<ReceiveQueue>,
    pub(super) linger: Timeout,
    pub(super) affinity: Arc<Mutex<Affinity>>,
}

impl std::fmt::Debug for ChannelBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelBuilder")
            .field("endpoints", &self.endpoints)
            .field("queues", &self.queues)
            .field("receive_queue", &self.receive_queue)
            .field("linger", &self.linger)
            .finish()
    }
}

impl Default for ChannelBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChannelBuilder {
    /// The default linger: how long dropping a channel waits for queued
    /// messages to be sent.
    pub const DEFAULT_LINGER: Duration = Duration::from_secs(1);

    /// A builder with no transport and no queue.
    pub fn new() -> Self {
        ChannelBuilder {
            endpoints: Vec::new(),
            shared: Arc::new(SendShared::new(Scheduler::new())),
            queues: 0,
            receive_queue: None,
            linger: Timeout::after(Self::DEFAULT_LINGER),
            affinity: Arc::default(),
        }
    }

    /// Adds a transport (chainable). Its id is its position, from 0.
    /// Fails if a setting is out of range or the buffer size differs from
    /// the transports already added ([`ConfigError`] names the rule).
    pub fn transport(mut self, endpoint: Endpoint) -> Result<Self, ConfigError> {
        self.add_transport(endpoint)?;
        Ok(self)
    }

    /// [`Self::transport`] through `&mut`, returning the new transport's
    /// id (for loops, and to keep the builder on failure).
    pub fn add_transport(&mut self, endpoint: Endpoint) -> Result<TransportId, ConfigError> {
        transports::check_add(&self.endpoints, &endpoint)?;
        self.endpoints.push(endpoint);
        Ok(TransportId(self.endpoints.len() - 1))
    }

    /// The endpoint of transport `id`, as added.
    pub fn endpoint(&self, id: TransportId) -> Option<&Endpoint> {
        self.endpoints.get(id.0)
    }

    /// The endpoint of transport `id`, to change in place before opening
    /// (for lwmq's C API, whose control codes act on added transports).
    #[cfg(feature = "internals")]
    #[doc(hidden)]
    pub fn endpoint_mut(&mut self, id: TransportId) -> Option<&mut Endpoint> {
        self.endpoints.get_mut(id.0)
    }

    /// The receive queue (the default, [`ReceiveQueue::mono`], is used
    /// when some transport receives and none is given).
    pub fn receive_queue(mut self, queue: ReceiveQueue) -> Self {
        self.receive_queue = Some(queue);
        self
    }

    /// How long dropping the channel waits for queued messages to be sent
    /// and taken by the peer (default 1 s; [`Timeout::ZERO`] drops them at
    /// once). Messages still queued after it are dropped, counted and
    /// logged. [`Channel::close`] takes its own linger.
    pub fn linger(mut self, linger: impl Into<Timeout>) -> Self {
        self.linger = linger.into();
        self
    }

    /// A queue for one posting thread (see [`MonoQueue`]). `options` is a
    /// [`Priority`](crate::Priority) for the defaults (high-water mark
    /// 1000) or [`QueueOptions`]; a mono queue cannot be tagged nor use a
    /// discard limit ([`ConfigError::MonoQueue`]).
    pub fn mono_queue(
        &mut self,
        options: impl Into<QueueOptions>,
    ) -> Result<MonoQueue, ConfigError> {
        let q = queues::mono(&self.shared, options.into())?;
        self.queues += 1;
        Ok(q)
    }

    /// A queue for any number of posting threads (see [`MultiQueue`]).
    pub fn multi_queue(
        &mut self,
        options: impl Into<QueueOptions>,
    ) -> Result<MultiQueue, ConfigError> {
        let q = queues::multi(&self.shared, options.into())?;
        self.queues += 1;
        Ok(q)
    }

    /// Pins the channel's helper threads (the send service thread and one
    /// receive thread per receiving transport) to `cpus` once they start;
    /// see [`Channel::set_service_thread_affinity`].
    pub fn set_service_thread_affinity(&self, cpus: &[usize]) -> Result<Vec<usize>, AffinityError> {
        Affinity::set(&self.affinity, cpus)
    }

    /// The CPUs the helper threads will run on (see
    /// [`Channel::service_thread_affinity`]).
    pub fn service_thread_affinity(&self) -> Vec<usize> {
        Affinity::get(&self.affinity)
    }

    /// Opens the channel in `role`. A server binds now; a client connects
    /// in the background (so either side may start first, and either may
    /// post before the other exists).
    ///
    /// On failure nothing is left started and the builder comes back in
    /// the [`OpenError`]: a server whose address is taken
    /// ([`OpenError::is_address_in_use`]) can open it again as
    /// [`Role::Client`], as [`Self::open_server_or_client`] does.
    pub fn open(self, role: Role) -> Result<Channel, OpenError> {
        if let Err(kind) = self.check() {
            return Err(OpenError::new(kind, self));
        }
        let mut started: Vec<Arc<dyn Transport>> = Vec::with_capacity(self.endpoints.len());
        for ep in &self.endpoints {
            let t = match transports::create(ep) {
                Ok(t) => t,
                Err(e) => return Err(Self::undo(started, e.into(), self)),
            };
            if let Err(e) = t.start(role, ChannelKind::Messaging) {
                t.stop();
                return Err(Self::undo(started, e.into(), self));
            }
            started.push(t);
        }
        let queue = match self.receive_kind() {
            Ok(Some(kind)) => match queue::receive_queue::<Message>(kind) {
                Ok(q) => Some(q),
                Err(_) => {
                    let kind = OpenErrorKind::Config(ConfigError::ZeroQueueLimit {
                        setting: "receive queue capacity",
                    });
                    return Err(Self::undo(started, kind, self));
                }
            },
            Ok(None) => None,
            Err(e) => return Err(Self::undo(started, e.into(), self)),
        };
        Channel::start(self, started, queue)
    }

    /// Opens as a server, or, if the address is taken by a live server, as
    /// a client of it (the pattern of LwMQ's MiniChat sample: two copies
    /// of one program find each other). Returns the role taken.
    pub fn open_server_or_client(self) -> Result<(Channel, Role), OpenError> {
        match self.open(Role::Server) {
            Ok(ch) => Ok((ch, Role::Server)),
            Err(e) if e.is_address_in_use() => {
                let ch = e.into_builder().open(Role::Client)?;
                Ok((ch, Role::Client))
            }
            Err(e) => Err(e),
        }
    }

    /// The rules that need the whole builder.
    fn check(&self) -> Result<(), OpenErrorKind> {
        if self.endpoints.is_empty() {
            return Err(OpenErrorKind::NoTransport);
        }
        transports::check_all(&self.endpoints)?;
        let mut sends = false;
        let mut receives = false;
        for ep in &self.endpoints {
            let d = ep.config()?.directions();
            sends |= d.sends();
            receives |= d.receives();
        }
        match (sends, self.queues > 0) {
            (true, false) => return Err(OpenErrorKind::NoQueue),
            (false, true) => return Err(OpenErrorKind::QueueWithoutSender),
            _ => {}
        }
        if !receives && self.receive_queue.is_some() {
            return Err(OpenErrorKind::ReceiveQueueWithoutReceiver);
        }
        self.receive_kind()?;
        Ok(())
    }

    /// The receive queue to create, if some transport receives.
    fn receive_kind(&self) -> Result<Option<ReceiveQueueKind>, ConfigError> {
        let receives = self
            .endpoints
            .iter()
            .any(|ep| ep.config().is_ok_and(|c| c.directions().receives()));
        if !receives {
            return Ok(None);
        }
        self.receive_queue.unwrap_or_default().kind().map(Some)
    }

    /// Stops what `open` started and gives the builder back with `kind`.
    pub(super) fn undo(
        started: Vec<Arc<dyn Transport>>,
        kind: OpenErrorKind,
        builder: ChannelBuilder,
    ) -> OpenError {
        for t in &started {
            t.stop();
        }
        builder.shared.buffer_size.store(0, Ordering::Release);
        OpenError::new(kind, builder)
    }
}
