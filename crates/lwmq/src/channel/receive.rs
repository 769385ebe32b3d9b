//! The receive path: one helper thread per receiving transport waits for
//! filled buffers, validates each whole buffer, decodes its messages into
//! the channel's receive queue and returns the buffer.
//!
//! A buffer that fails validation is dropped whole (none of its messages
//! are delivered), logged and counted: a message is delivered whole or not
//! at all, and a corrupt buffer says nothing trustworthy about its parts.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::message::Message;
use crate::queue::ReceiveProducer;
use crate::timeout::Timeout;
use crate::transport::{ReceiveSide, TransportError};
use crate::wire::{self, BufferReader};

use super::send::SendShared;

/// How long a receive thread waits before it re-checks the stop flag
/// (closing also wakes it through the transport).
const SLICE: Duration = Duration::from_millis(200);

/// The loop of one receive thread.
pub(crate) fn receive_loop(
    mut side: Box<dyn ReceiveSide>,
    producer: Arc<Mutex<ReceiveProducer<Message>>>,
    shared: Arc<SendShared>,
    descriptor: String,
) {
    let c = &shared.counters;
    while !shared.stop.load(Ordering::Acquire) {
        let raw = match side.receive(Timeout::after(SLICE)) {
            Ok(raw) => raw,
            Err(TransportError::Timeout) => continue,
            Err(TransportError::NotOpen(_)) => return,
            Err(e) => {
                log::warn!("lwmq: {descriptor}: receive failed: {e}");
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        // SAFETY: the receive side guarantees `raw.len` readable bytes at
        // `raw.ptr` until `dispose`, which is called below after the last
        // use of `buf`. A hostile peer can change the bytes' values but not
        // the mapping's bounds, and the decoder validates every value.
        let buf = unsafe { std::slice::from_raw_parts(raw.ptr.cast_const(), raw.len) };
        c.buffers_received.fetch_add(1, Ordering::Relaxed);
        match wire::validate_buffer(buf) {
            Err(e) => {
                c.decode_errors.fetch_add(1, Ordering::Relaxed);
                log::warn!(
                    "lwmq: {descriptor}: dropped a corrupt buffer of {} bytes: {e}",
                    buf.len()
                );
            }
            Ok(_) => {
                let producer = producer.lock().unwrap_or_else(|e| e.into_inner());
                let mut n = 0u64;
                if let Ok(mut reader) = BufferReader::new(buf) {
                    while let Some(Ok(m)) = reader.next_raw() {
                        n += 1;
                        // A closed queue (the application closed its
                        // receiver) drops the message.
                        let _ = producer.push(m.to_message());
                    }
                }
                c.messages_received.fetch_add(n, Ordering::Relaxed);
            }
        }
        side.dispose(false);
    }
}
