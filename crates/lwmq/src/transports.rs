//! The transport list shared by raw and messaging channels: adding a
//! transport under the channel rules, and looking one up by id.

use std::sync::Arc;

use crate::channel_error::ChannelError;
use crate::raw::TransportId;
use crate::transport::{self, Directions, Transport};

/// Creates a transport and appends it, enforcing that every transport of a
/// channel uses the same buffer size. (Whether adding is still allowed is
/// the caller's rule to check first.)
pub(crate) fn add(
    list: &mut Vec<Arc<dyn Transport>>,
    descriptor: &str,
    buffer_size: usize,
    send_buffers: i64,
    receive_buffers: i64,
    directions: Directions,
) -> Result<TransportId, ChannelError> {
    if let Some(first) = list.first() {
        let existing = first.config().buffer_size();
        if existing != buffer_size {
            return Err(ChannelError::BufferSizeMismatch {
                existing,
                new: buffer_size,
            });
        }
    }
    let t = transport::create(
        descriptor,
        buffer_size,
        send_buffers,
        receive_buffers,
        directions,
    )?;
    list.push(t);
    Ok(TransportId(list.len() - 1))
}

/// The transport with this id.
pub(crate) fn get(
    list: &[Arc<dyn Transport>],
    id: TransportId,
) -> Result<&dyn Transport, ChannelError> {
    list.get(id.0)
        .map(|t| t.as_ref())
        .ok_or(ChannelError::UnknownTransport(id.0))
}
