//! The posting handles ([`MonoQueue`], [`MultiQueue`]) and their options
//! ([`QueueOptions`]).
//!
//! # Backpressure
//!
//! By default a queue has a *high-water mark* of
//! [`QueueOptions::DEFAULT_HIGH_WATER_MARK`] messages: a post waits while
//! that many are queued (the peer is slower than the poster, or not there
//! yet), up to its timeout, and then gives the message back in
//! [`PostError::Full`]. The mark costs nothing while the queue is below
//! it: a mono queue compares its own count with a cached copy of the
//! sender's, and the sender wakes blocked posters once per batch of
//! messages it takes (one fence), never per message. A post that goes
//! straight into the transport buffer never touches the queue at all.
//! [`QueueOptions::unbounded`] removes the mark (memory then grows with
//! the backlog); `discard_oldest`/`discard_newest` are LwMQ's bounded
//! kinds, which drop messages instead of making the poster wait.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::error::{PostBatchError, PostError};
use super::loan::{Loan, LoanError};
use super::send::{check, BiasSlot, Copied, Outgoing, SendShared};
use crate::message::Message;
#[cfg(feature = "async")]
use crate::queue::Registration;
use crate::queue::{MonoProducer, MultiProducer, Priority, Producer, Scheduler, SendQueueKind};
use crate::timeout::Timeout;
use crate::transport::ConfigError;
use crate::wire;

/// What a queue does when its poster outruns the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Limit {
    Mark(usize),
    Unbounded,
    DiscardOldest(usize),
    DiscardNewest(usize),
}

/// How a queue is created: its priority, its limit and whether it is
/// tagged. `From<Priority>`, so `builder.mono_queue(Priority::Normal)`
/// takes the defaults.
///
/// | limit | when full | poster |
/// |---|---|---|
/// | [`high_water_mark(n)`](Self::high_water_mark) (default, n = 1000) | waits up to its timeout for the queue to drain below `n` | gets the message back in [`PostError::Full`] |
/// | [`unbounded()`](Self::unbounded) | never full | never waits; memory grows with the backlog |
/// | [`discard_oldest(n)`](Self::discard_oldest) (multi queues) | waits up to its timeout, then drops the oldest queued message (counted) | always succeeds |
/// | [`discard_newest(n)`](Self::discard_newest) (multi queues) | waits up to its timeout, then refuses the new one (counted) | gets [`PostError::Full`] |
///
/// [`tagged()`](Self::tagged) (multi queues): a post with a non-zero tag
/// first removes the still-queued message with the same tag ("latest value
/// wins").
///
/// ```
/// use lwmq::{Priority, QueueOptions};
/// let progress = QueueOptions::new(Priority::BelowNormal).discard_oldest(16).tagged();
/// let firehose = QueueOptions::new(Priority::Normal).high_water_mark(10_000);
/// let unbounded = QueueOptions::from(Priority::Normal).unbounded();
/// # let _ = (progress, firehose, unbounded);
/// ```
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueOptions {
    priority: Priority,
    limit: Limit,
    tagged: bool,
}

impl QueueOptions {
    /// The default high-water mark, in messages.
    pub const DEFAULT_HIGH_WATER_MARK: usize = 1000;

    /// A queue of `priority` with the default high-water mark, untagged.
    pub const fn new(priority: Priority) -> Self {
        QueueOptions {
            priority,
            limit: Limit::Mark(Self::DEFAULT_HIGH_WATER_MARK),
            tagged: false,
        }
    }

    /// Posts wait while `messages` are queued, up to their timeout
    /// (at least 1; the default is 1000).
    pub const fn high_water_mark(mut self, messages: usize) -> Self {
        self.limit = Limit::Mark(messages);
        self
    }

    /// No limit: posts never wait, and the queue grows while the peer is
    /// slower or absent.
    pub const fn unbounded(mut self) -> Self {
        self.limit = Limit::Unbounded;
        self
    }

    /// At most `capacity` messages; a post to a full queue waits up to its
    /// timeout, then drops the oldest queued message (multi queues only).
    pub const fn discard_oldest(mut self, capacity: usize) -> Self {
        self.limit = Limit::DiscardOldest(capacity);
        self
    }

    /// At most `capacity` messages; a post to a full queue waits up to its
    /// timeout, then is refused (multi queues only).
    pub const fn discard_newest(mut self, capacity: usize) -> Self {
        self.limit = Limit::DiscardNewest(capacity);
        self
    }

    /// Latest value wins per non-zero tag (multi queues only): see
    /// [`MultiQueue::post_with_tag`].
    pub const fn tagged(mut self) -> Self {
        self.tagged = true;
        self
    }

    /// The priority.
    pub const fn priority(&self) -> Priority {
        self.priority
    }

    /// The internal kind and mark of a mono queue.
    fn mono_kind(&self) -> Result<(SendQueueKind, Option<usize>), ConfigError> {
        if self.tagged {
            return Err(ConfigError::MonoQueue { feature: "tagged" });
        }
        match self.limit {
            Limit::Mark(0) => Err(ConfigError::ZeroQueueLimit {
                setting: "high_water_mark",
            }),
            Limit::Mark(n) => Ok((SendQueueKind::MonoProducerUnbounded, Some(n))),
            Limit::Unbounded => Ok((SendQueueKind::MonoProducerUnbounded, None)),
            Limit::DiscardOldest(_) => Err(ConfigError::MonoQueue {
                feature: "discard_oldest",
            }),
            Limit::DiscardNewest(_) => Err(ConfigError::MonoQueue {
                feature: "discard_newest",
            }),
        }
    }

    /// The internal kind and mark of a multi queue.
    fn multi_kind(&self) -> Result<(SendQueueKind, Option<usize>), ConfigError> {
        let zero = |setting| Err(ConfigError::ZeroQueueLimit { setting });
        Ok(match (self.limit, self.tagged) {
            (Limit::Mark(0), _) => return zero("high_water_mark"),
            (Limit::DiscardOldest(0), _) => return zero("discard_oldest"),
            (Limit::DiscardNewest(0), _) => return zero("discard_newest"),
            (Limit::Mark(n), false) => (SendQueueKind::MultiProducerUnbounded, Some(n)),
            (Limit::Mark(n), true) => (SendQueueKind::MultiProducerUnboundedTagged, Some(n)),
            (Limit::Unbounded, false) => (SendQueueKind::MultiProducerUnbounded, None),
            (Limit::Unbounded, true) => (SendQueueKind::MultiProducerUnboundedTagged, None),
            (Limit::DiscardOldest(n), false) => {
                (SendQueueKind::MultiProducerBoundedDiscardOldest(n), None)
            }
            (Limit::DiscardOldest(n), true) => (
                SendQueueKind::MultiProducerBoundedDiscardOldestTagged(n),
                None,
            ),
            (Limit::DiscardNewest(n), false) => {
                (SendQueueKind::MultiProducerBoundedDiscardNewest(n), None)
            }
            (Limit::DiscardNewest(n), true) => (
                SendQueueKind::MultiProducerBoundedDiscardNewestTagged(n),
                None,
            ),
        })
    }
}

impl Default for QueueOptions {
    /// [`Priority::Normal`], the default high-water mark, untagged.
    fn default() -> Self {
        QueueOptions::new(Priority::Normal)
    }
}

impl From<Priority> for QueueOptions {
    fn from(priority: Priority) -> Self {
        QueueOptions::new(priority)
    }
}

/// Adds a queue to the scheduler of `shared` (the builder's).
fn add(
    shared: &SendShared,
    kind: SendQueueKind,
    priority: Priority,
    mark: Option<usize>,
) -> Result<Producer<Message>, ConfigError> {
    let producer = shared
        .exclusive(|s: &mut super::send::Sender| {
            let scheduler: &mut Scheduler<Message> = &mut s.scheduler;
            scheduler.add_queue_with_mark(kind, priority, mark)
        })
        .map(|(_, producer)| producer)
        .map_err(|_| ConfigError::ZeroQueueLimit {
            setting: "capacity",
        })?;
    shared
        .probes
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(producer.probe());
    Ok(producer)
}

pub(crate) fn mono(
    shared: &Arc<SendShared>,
    options: QueueOptions,
) -> Result<MonoQueue, ConfigError> {
    let (kind, mark) = options.mono_kind()?;
    match add(shared, kind, options.priority, mark)? {
        Producer::Mono(producer) => Ok(MonoQueue {
            producer,
            bias: shared.new_bias_slot(),
            shared: Arc::clone(shared),
            priority: options.priority,
        }),
        // A mono kind always makes a mono producer.
        Producer::Multi(_) => Err(ConfigError::MonoQueue { feature: "multi" }),
    }
}

pub(crate) fn multi(
    shared: &Arc<SendShared>,
    options: QueueOptions,
) -> Result<MultiQueue, ConfigError> {
    let (kind, mark) = options.multi_kind()?;
    match add(shared, kind, options.priority, mark)? {
        Producer::Multi(producer) => Ok(MultiQueue {
            producer,
            shared: Arc::clone(shared),
            priority: options.priority,
            tagged: kind.is_tagged(),
        }),
        // A multi kind always makes a multi producer.
        Producer::Mono(_) => Err(ConfigError::MonoQueue { feature: "multi" }),
    }
}

/// A queue one thread posts to, from
/// [`ChannelBuilder::mono_queue`](super::ChannelBuilder::mono_queue): the
/// cheapest post (a post that finds the peer keeping up writes straight
/// into the transport buffer, with no locked instruction).
///
/// `Send` but neither `Sync` nor `Clone`: move it to the thread that posts.
/// Posting after the channel was closed or dropped fails with
/// [`PostError::Closed`]; before it opens, with [`PostError::NotOpen`].
///
/// ```compile_fail
/// fn shared_between_threads<T: Sync>() {}
/// shared_between_threads::<lwmq::MonoQueue>();
/// ```
///
/// ```compile_fail
/// fn cloned<T: Clone>() {}
/// cloned::<lwmq::MonoQueue>();
/// ```
pub struct MonoQueue {
    producer: MonoProducer<Message>,
    bias: Arc<BiasSlot>,
    shared: Arc<SendShared>,
    priority: Priority,
}

impl Drop for MonoQueue {
    fn drop(&mut self) {
        self.shared.drop_bias(&self.bias);
    }
}

impl std::fmt::Debug for MonoQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MonoQueue")
            .field("priority", &self.priority)
            .field("len", &self.len())
            .field("high_water_mark", &self.high_water_mark())
            .finish()
    }
}

impl MonoQueue {
    /// Posts `message`, waiting up to `timeout` while the queue is at its
    /// high-water mark.
    ///
    /// Checked first, each failure handing the message back: the channel
    /// is open ([`PostError::NotOpen`], [`PostError::Closed`]), the message
    /// has 1..=65,535 frames and fits an empty transport buffer after
    /// encoding ([`PostError::Invalid`], naming the limit), and its
    /// external frames' acquire hooks succeed ([`PostError::Acquire`]; they
    /// run here, once per frame). Then, at the mark for the whole timeout:
    /// [`PostError::Full`].
    #[inline]
    pub fn post(&self, message: Message, timeout: impl Into<Timeout>) -> Result<(), PostError> {
        self.post_inner(message, timeout.into())
    }

    /// [`Self::post`] without waiting: [`PostError::Full`] at once at the
    /// mark.
    #[inline]
    pub fn try_post(&self, message: Message) -> Result<(), PostError> {
        self.post_inner(message, Timeout::ZERO)
    }

    /// Posts a one-frame message holding a copy of `payload`: the same as
    /// `post(Message::from(Frame::copy(payload)), timeout)`, with the same
    /// errors, order and waiting, but lighter for small payloads. When the
    /// post goes straight into the transport (the queue is empty and this
    /// thread can send), `payload` is copied once, into the transport
    /// buffer, and no [`Message`] is made; otherwise the message is made
    /// and queued as by [`Self::post`]. An error gives that message back.
    ///
    /// Over `tcp://`, a payload of half a transport buffer or more (at
    /// most 64 KiB) posted straight into the transport is written to the
    /// socket from `payload` itself, not copied first; the post may wait up
    /// to 2 ms (never past `timeout`) for the peer to take it, and queues a
    /// copy otherwise (decision 163; so does [`Self::post`] for such a
    /// one-frame message).
    #[inline]
    pub fn post_copy(&self, payload: &[u8], timeout: impl Into<Timeout>) -> Result<(), PostError> {
        self.post_inner(Copied(payload), timeout.into())
    }

    /// Posts one one-frame message per payload, in order, each as
    /// [`Self::post_copy`] would (same checks, waiting and errors), and
    /// returns how many: the way to stream many small messages, as a
    /// program batches its writes to a socket. While this thread can send
    /// directly, consecutive payloads go into the transport buffer together
    /// and the buffer is sent (or kept open) once for the run rather than
    /// once per message; the others (no peer yet, several transports,
    /// messages queued, the ring full, another thread sending) are posted
    /// one by one by [`Self::post_copy`].
    ///
    /// Stops at the first payload whose post fails: [`PostBatchError`]
    /// says how many were posted before it and holds its error (and
    /// message); later payloads are not looked at.
    pub fn post_copies<'p, I>(
        &self,
        payloads: I,
        timeout: impl Into<Timeout>,
    ) -> Result<usize, PostBatchError>
    where
        I: IntoIterator<Item = &'p [u8]>,
    {
        let timeout = timeout.into();
        let mut payloads = payloads.into_iter().peekable();
        let mut posted = 0;
        loop {
            // As many as go straight into the transport, sent once: those
            // that surely pass `post_copy`'s checks. Any other payload (and
            // a closed queue or channel) goes the ordinary way, which
            // decides.
            let size = self.shared.buffer_size.load(Ordering::Acquire);
            if size != 0 && !self.producer.is_closed() {
                let sure = wire::single_frame_sure_len(size);
                posted += self.shared.post_run_biased(&self.bias, &mut payloads, sure);
            }
            // The next one the ordinary way: it may wait, be queued (which
            // keeps the later ones behind it), win the bias back, or be
            // refused.
            let Some(p) = payloads.next() else {
                return Ok(posted);
            };
            self.post_copy(p, timeout)
                .map_err(|error| PostBatchError { posted, error })?;
            posted += 1;
        }
    }

    // Always inlined into `post`/`try_post`: passing the 128-byte message
    // down one more call costs a copy per post (measured with callgrind).
    #[inline(always)]
    fn post_inner<M: Outgoing>(&self, message: M, timeout: Timeout) -> Result<(), PostError> {
        if let Err(refused) = message.check(&self.shared) {
            return Err(refused.into_error(message.into_message()));
        }
        // Waits (if it must) before the sender is owned: a poster blocked
        // at the mark never holds what the sender needs to drain.
        let wait = match self.producer.wait_room(timeout) {
            // What a large payload may still wait in a stream transport
            // (decision 163): nothing once the post was at the mark.
            Ok(true) => Timeout::ZERO,
            Ok(false) => timeout,
            Err(e) => return Err(PostError::from_queue(e.with(message.into_message()))),
        };
        if self.producer.is_closed() {
            // The queue refuses it (and says why), as it would when queued.
            return self
                .producer
                .push(message.into_message())
                .map_err(PostError::from_queue);
        }
        self.shared
            .post_direct(message, Some(&self.bias), wait, |m| {
                // Below the mark (checked above; only this thread adds): a
                // push that never waits, here where the sender may be owned.
                self.producer.push(m).map_err(PostError::from_queue)
            })
    }

    /// [`Self::post`] without blocking the thread (feature `async`, any
    /// executor): at the high-water mark the future waits for the channel
    /// to take messages from the queue, then posts. It never fails with
    /// [`PostError::Full`]; every other error is [`Self::post`]'s, at once.
    /// Wrap it in a timer (`tokio::time::timeout`) for a deadline.
    ///
    /// `&mut self`: a mono queue has one poster, and the future is then
    /// `Send` (it can move between a multi-thread runtime's workers).
    ///
    /// **Cancel safety:** the message is posted only by the poll that
    /// completes the future; dropping the future before that drops the
    /// message unsent (as tokio's `mpsc::Sender::send` does). Nothing
    /// else is lost. To wait without handing the message over, await
    /// [`Self::room_async`] (cancel-safe), then [`Self::try_post`].
    #[cfg(feature = "async")]
    pub async fn post_async(&mut self, message: Message) -> Result<(), PostError> {
        let room = Arc::clone(self.producer.room());
        post_when_room(
            self,
            room,
            message,
            |q, m| q.post_inner(m, Timeout::ZERO),
            |q| q.producer.has_room(),
        )
        .await
    }

    /// Completes when a post would not wait (feature `async`, any
    /// executor): the queue is below its high-water mark (at once for an
    /// unbounded queue), or it is closed (a post then fails with
    /// [`PostError::Closed`]). Only this queue's poster adds messages, so
    /// a [`Self::try_post`] right after it does not meet the mark.
    ///
    /// **Cancel safety:** takes nothing; dropping it loses nothing.
    #[cfg(feature = "async")]
    pub async fn room_async(&mut self) {
        let room = Arc::clone(self.producer.room());
        room_when(self, room, |q| q.producer.has_room()).await
    }

    /// Lends `len` bytes to write a one-frame message in place, straight
    /// into the transport buffer it will be sent in (no copy of the
    /// payload: the way to send large messages). [`Loan::post`] sends it;
    /// dropping the loan sends nothing and loses nothing else.
    ///
    /// The loan is ordered after every message posted before it and before
    /// every message posted while it is out (those wait, and go out once
    /// it is posted or dropped; so do `flush` and `close`: keep loans
    /// short). It waits up to `timeout` for a free transport buffer
    /// ([`LoanError::Full`]). Where the message cannot be written in place
    /// (several sending transports, no peer yet, messages still queued
    /// behind a full ring, another thread sending) the loan is a private
    /// buffer that [`Loan::post`] posts with `timeout`
    /// ([`Loan::is_in_place`] says which). Errors: [`LoanError::NotOpen`],
    /// [`LoanError::Closed`], and [`LoanError::TooLarge`] when the message
    /// would not fit an empty transport buffer.
    pub fn loan(&self, len: usize, timeout: impl Into<Timeout>) -> Result<Loan<'_>, LoanError> {
        let size = self.shared.buffer_size.load(Ordering::Acquire);
        if size == 0 {
            return Err(if self.shared.closed.load(Ordering::Acquire) {
                LoanError::Closed
            } else {
                LoanError::NotOpen
            });
        }
        let encoded = wire::single_frame_encoded_len(len);
        if len > u32::MAX as usize || encoded > size {
            return Err(LoanError::TooLarge {
                len,
                encoded,
                limit: size,
            });
        }
        Loan::take(self, len, timeout.into())
    }

    pub(crate) fn shared(&self) -> &SendShared {
        &self.shared
    }

    pub(crate) fn bias(&self) -> &Arc<BiasSlot> {
        &self.bias
    }

    /// Messages queued and not yet taken by the sender.
    pub fn len(&self) -> usize {
        self.producer.len()
    }

    /// True if nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Always 0: a mono queue never discards (kept for symmetry with
    /// [`MultiQueue::discarded`]).
    pub fn discarded(&self) -> u64 {
        0
    }

    /// The high-water mark, `None` for an unbounded queue.
    pub fn high_water_mark(&self) -> Option<usize> {
        self.producer.mark()
    }

    /// The priority.
    pub fn priority(&self) -> Priority {
        self.priority
    }
}

/// A queue any number of threads post to, from
/// [`ChannelBuilder::multi_queue`](super::ChannelBuilder::multi_queue):
/// `Clone + Send + Sync`; clones post to the same queue. It may be tagged
/// and may use LwMQ's discard limits (see [`QueueOptions`]).
#[derive(Clone)]
pub struct MultiQueue {
    producer: MultiProducer<Message>,
    shared: Arc<SendShared>,
    priority: Priority,
    tagged: bool,
}

impl std::fmt::Debug for MultiQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultiQueue")
            .field("priority", &self.priority)
            .field("tagged", &self.tagged)
            .field("len", &self.len())
            .field("discarded", &self.discarded())
            .finish()
    }
}

impl MultiQueue {
    /// Posts `message` without a tag; see [`Self::post_with_tag`].
    pub fn post(&self, message: Message, timeout: impl Into<Timeout>) -> Result<(), PostError> {
        self.post_inner(message, 0, timeout.into())
    }

    /// [`Self::post`] without waiting.
    pub fn try_post(&self, message: Message) -> Result<(), PostError> {
        self.post_inner(message, 0, Timeout::ZERO)
    }

    /// Posts `message` with `tag`.
    ///
    /// Checked first as [`MonoQueue::post`] does. `tag` (tagged queues
    /// only, [`PostError::TagUnsupported`] otherwise; 0 = none) removes the
    /// still-queued message with the same tag first: the newest value
    /// replaces it (latest value wins). `timeout` applies when the queue is
    /// at its limit: with a high-water mark or discard-newest the post
    /// waits, then is refused with [`PostError::Full`]; with discard-oldest
    /// it waits, then drops the oldest queued message (counted in
    /// [`Self::discarded`]). With several posting threads a high-water mark
    /// may be passed by up to one message per thread.
    pub fn post_with_tag(
        &self,
        message: Message,
        tag: u64,
        timeout: impl Into<Timeout>,
    ) -> Result<(), PostError> {
        self.post_inner(message, tag, timeout.into())
    }

    fn post_inner(&self, message: Message, tag: u64, timeout: Timeout) -> Result<(), PostError> {
        if let Err(refused) = check(&self.shared, &message) {
            return Err(refused.into_error(message));
        }
        self.producer
            .post_tagged(message, tag, timeout)
            .map_err(PostError::from_queue)?;
        self.shared.kick();
        Ok(())
    }

    /// [`Self::post`] without blocking the thread (feature `async`, any
    /// executor); see [`Self::post_with_tag_async`].
    #[cfg(feature = "async")]
    pub async fn post_async(&self, message: Message) -> Result<(), PostError> {
        self.post_with_tag_async(message, 0).await
    }

    /// [`Self::post_with_tag`] without blocking the thread (feature
    /// `async`, any executor): while the queue is at its limit (a
    /// high-water mark, or the capacity of a discard queue) the future
    /// waits for the channel to take messages, then posts. It waits as a
    /// post with an infinite timeout does, except that it never discards:
    /// for "wait up to a deadline, then apply the discard policy", await
    /// [`Self::room_async`] under a timer, then [`Self::try_post`]. It
    /// never fails with [`PostError::Full`]; every other error is
    /// [`Self::post_with_tag`]'s, at once. Several tasks posting at once
    /// may each be woken by the same room; each re-checks, so the limit
    /// holds (unlike the blocking post, which may pass a high-water mark
    /// by one message per thread).
    ///
    /// **Cancel safety:** as [`MonoQueue::post_async`]: dropping the
    /// future before it completes drops the message unsent, nothing else.
    #[cfg(feature = "async")]
    pub async fn post_with_tag_async(&self, message: Message, tag: u64) -> Result<(), PostError> {
        if let Err(refused) = check(&self.shared, &message) {
            return Err(refused.into_error(message));
        }
        let attempt = |q: &&Self, m| {
            q.producer
                .try_post_below_limit(m, tag)
                .map(|()| q.shared.kick())
                .map_err(PostError::from_queue)
        };
        post_when_room(&mut &*self, self.producer.room(), message, attempt, |q| {
            q.producer.has_room()
        })
        .await
    }

    /// Completes when a post would not wait (feature `async`, any
    /// executor): the queue is below its limit (at once for an unbounded
    /// queue), or closed. Another poster may fill the queue again before
    /// this task posts.
    ///
    /// **Cancel safety:** takes nothing; dropping it loses nothing.
    #[cfg(feature = "async")]
    pub async fn room_async(&self) {
        room_when(&mut &*self, self.producer.room(), |q| q.producer.has_room()).await
    }

    /// Messages queued (approximate while others post).
    pub fn len(&self) -> usize {
        self.producer.len()
    }

    /// True if nothing is queued (approximate while others post).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Messages dropped or refused by a discard limit (tag replacements
    /// and high-water-mark refusals are not counted).
    pub fn discarded(&self) -> u64 {
        self.producer.discarded()
    }

    /// The high-water mark, `None` if the queue has none (unbounded or a
    /// discard limit).
    pub fn high_water_mark(&self) -> Option<usize> {
        self.producer.mark()
    }

    /// True if the queue takes tags.
    pub fn is_tagged(&self) -> bool {
        self.tagged
    }

    /// The priority.
    pub fn priority(&self) -> Priority {
        self.priority
    }
}

/// The loop of the async posts: `attempt` posts, or hands the message back
/// in [`PostError::Full`] at the queue's limit; the task then waits on
/// `room` until `has_room`, and tries again. The queue is borrowed
/// mutably so that the future is `Send` for a queue that is `Send` but not
/// `Sync` (a mono queue).
#[cfg(feature = "async")]
async fn post_when_room<Q, N: std::ops::Deref<Target = crate::queue::Notify>>(
    q: &mut Q,
    room: N,
    message: Message,
    attempt: impl Fn(&Q, Message) -> Result<(), PostError>,
    has_room: impl Fn(&Q) -> bool,
) -> Result<(), PostError> {
    let mut registration = Registration::new(room);
    let mut message = Some(message);
    std::future::poll_fn(move |cx| loop {
        let m = message.take().expect("polled after completion");
        match attempt(q, m) {
            Err(PostError::Full(m)) => message = Some(m),
            other => {
                registration.withdraw();
                return std::task::Poll::Ready(other);
            }
        }
        std::task::ready!(registration.poll_until(cx, || has_room(q)));
    })
    .await
}

/// Completes once `has_room` holds, waiting on `room` (the async
/// `room_async`s; `q` borrowed mutably as in [`post_when_room`]).
#[cfg(feature = "async")]
async fn room_when<Q, N: std::ops::Deref<Target = crate::queue::Notify>>(
    q: &mut Q,
    room: N,
    has_room: impl Fn(&Q) -> bool,
) {
    let mut registration = Registration::new(room);
    std::future::poll_fn(move |cx| registration.poll_until(cx, || has_room(q))).await
}
