//! Loans: a one-frame message written in place, straight into the
//! transport buffer it is sent in ([`MonoQueue::loan`]).
//!
//! A loan takes the sender the way a direct post does (the queue's bias,
//! else `RUNNING` if nobody owns it), pumps whatever is queued (so that
//! everything posted before the loan goes out before it), and reserves a
//! one-frame message of the asked length after the messages already in the
//! open (or a fresh) transport buffer: its headers are written, its
//! payload is left to the caller, and the buffer's count does not include
//! it yet. [`Loan::post`] counts it and sends the buffer or keeps it open,
//! as a post would; dropping the loan leaves the buffer as it was (the
//! next message overwrites the reserved bytes). The sender stays owned for
//! the loan's life: other posters queue meanwhile and go out after it.
//!
//! Where the in-place path does not apply (several sending transports, no
//! connected peer, messages still queued after the pump because the ring
//! is full, or another thread owning the sender) the loan is a private
//! buffer instead and [`Loan::post`] posts it as a one-frame message
//! (`Frame::from(Vec<u8>)`): the same order and the same guarantees, one
//! copy more. [`Loan::is_in_place`] tells which.
//!
//! A connection that dies while a loan is out takes the loaned buffer
//! with it: the post's commit finds it lost and counts its messages in
//! `messages_lost` (nothing of a dead section is delivered, decision 11).

use std::ops::{Deref, DerefMut};

use super::error::PostError;
use super::queues::MonoQueue;
use super::send::Owned;
use crate::message::{Frame, Message};
use crate::raw::BufferRangeError;
use crate::timeout::Timeout;
use crate::wire::{BufferWriter, SharedBytesMut};

/// Why [`MonoQueue::loan`] gave no loan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoanError {
    /// The channel is not open yet.
    #[error("the channel is not open (rule: open the channel before loaning)")]
    NotOpen,
    /// The channel was closed.
    #[error("the channel is closed")]
    Closed,
    /// The message would not fit an empty transport buffer.
    #[error("a one-frame message of {len} bytes needs {encoded} bytes encoded, but a transport buffer holds {limit} (rule: the encoded message, buffer header included, fits one buffer of the endpoint's buffer_size); loan less, or use larger buffers")]
    TooLarge {
        /// Payload bytes asked for.
        len: usize,
        /// Its encoded size, buffer header included.
        encoded: usize,
        /// The transport buffer size.
        limit: usize,
    },
    /// No transport buffer came free within the timeout (the peer is
    /// behind).
    #[error("no transport buffer came free within the timeout (the peer is behind)")]
    Full,
}

/// The bytes of a loan: write-only access to the payload, through raw
/// stores (in the in-place case the peer can see these bytes: no
/// reference to them is formed unless the caller vouches for the peer
/// with [`Self::as_mut_slice`]).
#[derive(Debug)]
pub struct LoanBytes<'a> {
    view: SharedBytesMut<'a>,
}

impl LoanBytes<'_> {
    /// The payload's length, as asked for.
    pub fn len(&self) -> usize {
        self.view.len()
    }

    /// True for an empty payload.
    pub fn is_empty(&self) -> bool {
        self.view.is_empty()
    }

    /// Copies `data` to `offset..offset + data.len()` of the payload.
    pub fn write(&mut self, offset: usize, data: &[u8]) -> Result<(), BufferRangeError> {
        if self.view.write(offset, data) {
            Ok(())
        } else {
            Err(BufferRangeError {
                offset,
                len: data.len(),
                size: self.view.len(),
            })
        }
    }

    /// Sets every byte of the payload to `byte`.
    pub fn fill(&mut self, byte: u8) {
        let len = self.view.len();
        let ptr = self.view.as_mut_ptr();
        // SAFETY: the view covers `len` writable bytes at `ptr` for its
        // lifetime, and nothing else in this process accesses them (the
        // loan owns the reservation); a raw store, no reference formed.
        unsafe { std::ptr::write_bytes(ptr, byte, len) };
    }

    /// Start of the payload, for raw-pointer writes (`len()` bytes, valid
    /// until the loan is posted or dropped).
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.view.as_mut_ptr()
    }

    /// The payload as a mutable slice (to serialise into it directly).
    ///
    /// # Safety
    /// Nobody else may read or write these bytes while the slice lives. In
    /// the in-place case they lie in the connection's shared memory, which
    /// the peer maps: lwmq peers never touch a slot before it is sent, so
    /// this holds whenever the peer is lwmq (or code as careful); against
    /// a buggy or hostile peer (any process the access policy admits) it
    /// is not guaranteed, and the slice is then undefined behaviour.
    /// Prefer [`Self::write`].
    pub unsafe fn as_mut_slice(&mut self) -> &mut [u8] {
        let len = self.view.len();
        let ptr = self.view.as_mut_ptr();
        // SAFETY: `len` writable bytes at `ptr` while the loan lives,
        // borrowed mutably from it; no other access by the caller's
        // contract.
        unsafe { std::slice::from_raw_parts_mut(ptr, len) }
    }
}

/// Where a loan's bytes are.
enum Backing<'q> {
    /// Reserved in a transport buffer; the sender is owned by this thread.
    InPlace {
        owned: Owned<'q>,
        writer: BufferWriter<'q>,
        end: usize,
    },
    /// A private buffer, posted as a one-frame message. The `Vec`'s heap
    /// block is what the view points to; it is never resized or read
    /// while the loan lives.
    Private(Vec<u8>),
}

/// A one-frame message being written in place (from [`MonoQueue::loan`]):
/// derefs to its [`LoanBytes`]; [`Self::post`] sends it, dropping it sends
/// nothing and loses nothing else.
///
/// ```no_run
/// # use lwmq::{Channel, Endpoint, Priority, Role, Timeout};
/// # fn demo(q: &lwmq::MonoQueue) -> Result<(), Box<dyn std::error::Error>> {
/// let mut loan = q.loan(640_000, Timeout::NEVER)?;
/// loan.fill(0x5a);
/// loan.write(0, &7u64.to_le_bytes())?;
/// loan.post()?;
/// # Ok(()) }
/// ```
pub struct Loan<'q> {
    queue: &'q MonoQueue,
    /// Declared before `backing`: the view points into it.
    bytes: LoanBytes<'q>,
    backing: Option<Backing<'q>>,
    timeout: Timeout,
}

impl std::fmt::Debug for Loan<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loan")
            .field("len", &self.bytes.len())
            .field("in_place", &self.is_in_place())
            .finish()
    }
}

impl<'q> Deref for Loan<'q> {
    type Target = LoanBytes<'q>;
    fn deref(&self) -> &LoanBytes<'q> {
        &self.bytes
    }
}

impl<'q> DerefMut for Loan<'q> {
    fn deref_mut(&mut self) -> &mut LoanBytes<'q> {
        &mut self.bytes
    }
}

impl<'q> Loan<'q> {
    /// A loan of `len` bytes for `queue` (checked by the caller: the
    /// channel is open and the message fits an empty buffer).
    pub(crate) fn take(
        queue: &'q MonoQueue,
        len: usize,
        timeout: Timeout,
    ) -> Result<Self, LoanError> {
        let shared = queue.shared();
        if let Some(mut owned) = shared.own_for_loan(queue.bias()) {
            match owned.loan_writer(len, timeout, &shared.counters) {
                Ok(Some((mut writer, start, end))) => {
                    let Some(view) = writer.payload_view(start, end) else {
                        // Cannot happen: `reserve_single` returned a range
                        // inside the buffer.
                        owned.end_loan(writer, None, &shared.counters);
                        shared.end_loan_ownership(owned, queue.bias(), false);
                        return Self::private(queue, len, timeout);
                    };
                    return Ok(Loan {
                        queue,
                        bytes: LoanBytes { view },
                        backing: Some(Backing::InPlace { owned, writer, end }),
                        timeout,
                    });
                }
                // The pump may have left messages queued (a full ring):
                // let go the way a post does, which wakes the service
                // thread for them.
                Ok(None) => shared.release_after_pump(owned),
                Err(()) => {
                    shared.release_after_pump(owned);
                    return Err(LoanError::Full);
                }
            }
        }
        Self::private(queue, len, timeout)
    }

    /// A loan in private memory.
    fn private(queue: &'q MonoQueue, len: usize, timeout: Timeout) -> Result<Self, LoanError> {
        let mut data = vec![0u8; len];
        // SAFETY: the `Vec`'s heap block of `len` bytes stays allocated
        // and unmoved for as long as the loan holds the `Vec` (it is never
        // resized, and moving a `Vec` does not move its block); the view
        // (`bytes`) is the only access to it until `post` takes the `Vec`,
        // which happens after the view is no longer used.
        let view = unsafe { SharedBytesMut::new(data.as_mut_ptr(), len) };
        Ok(Loan {
            queue,
            bytes: LoanBytes { view },
            backing: Some(Backing::Private(data)),
            timeout,
        })
    }

    /// True if the bytes lie in the transport buffer the message is sent
    /// in (written once); false for the private fallback (see the module
    /// documentation of `MonoQueue::loan`).
    pub fn is_in_place(&self) -> bool {
        matches!(self.backing, Some(Backing::InPlace { .. }))
    }

    /// Sends the message: in place, it is counted in its buffer, which is
    /// sent or kept open as a post's would be; a private loan is posted
    /// (waiting up to the loan's timeout at the high-water mark, and
    /// giving the message back in the error as a post does).
    pub fn post(mut self) -> Result<(), PostError> {
        match self.backing.take() {
            Some(Backing::InPlace {
                mut owned,
                writer,
                end,
            }) => {
                let shared = self.queue.shared();
                let open = owned.end_loan(writer, Some(end), &shared.counters);
                shared.end_loan_ownership(owned, self.queue.bias(), open);
                Ok(())
            }
            Some(Backing::Private(data)) => {
                let mut m = Message::with_capacity(1);
                m.push(Frame::from(data));
                self.queue.post(m, self.timeout)
            }
            None => Ok(()),
        }
    }
}

impl Drop for Loan<'_> {
    fn drop(&mut self) {
        if let Some(Backing::InPlace {
            mut owned, writer, ..
        }) = self.backing.take()
        {
            let shared = self.queue.shared();
            let open = owned.end_loan(writer, None, &shared.counters);
            shared.end_loan_ownership(owned, self.queue.bias(), open);
        }
    }
}
