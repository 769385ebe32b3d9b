//! The transport list shared by raw and messaging channels: the endpoints
//! a builder collects (checked as they are added and again at open), and
//! the transports created from them when the channel opens.

use std::sync::Arc;

use crate::transport::{
    self, ConfigError, Endpoint, Transport, TransportControl, TransportError, TransportId,
    TransportView,
};

/// Checks `ep` alone and against the endpoints already collected (every
/// transport of a channel uses the same buffer size).
pub(crate) fn check_add(list: &[Endpoint], ep: &Endpoint) -> Result<(), ConfigError> {
    ep.check()?;
    if let Some(first) = list.first() {
        let existing = first.buffer_size_setting();
        let new = ep.buffer_size_setting();
        if existing != new {
            return Err(ConfigError::BufferSizeMismatch {
                descriptor: ep.descriptor().to_owned(),
                existing,
                new,
            });
        }
    }
    Ok(())
}

/// Checks every endpoint again (an endpoint may have been changed in place
/// since it was added).
pub(crate) fn check_all(list: &[Endpoint]) -> Result<(), ConfigError> {
    for (i, ep) in list.iter().enumerate() {
        check_add(&list[..i], ep)?;
    }
    Ok(())
}

/// Creates the transport of one endpoint, with its settings applied.
pub(crate) fn create(ep: &Endpoint) -> Result<Arc<dyn Transport>, TransportError> {
    let config = ep.config()?;
    let t = transport::create(
        ep.descriptor(),
        config.buffer_size(),
        config.send_buffers(),
        config.receive_buffers(),
    )?;
    if let Some(d) = ep.retry_interval_setting() {
        t.control(TransportControl::SetClientConnectionRetryInterval(d))?;
    }
    if let Some(d) = ep.spin_setting() {
        t.control(TransportControl::SetSpinDuration(d))?;
    }
    t.control(TransportControl::SetAccessPolicy(
        ep.access_setting().clone(),
    ))?;
    if let Some(d) = ep.heartbeat_timeout_setting() {
        t.control(TransportControl::SetHeartbeatTimeout(d))?;
    }
    if let Some(list) = ep.allow_setting() {
        t.control(TransportControl::SetPeerAllowList(list.clone()))?;
    }
    Ok(t)
}

/// A view of transport `id`.
pub(crate) fn view(list: &[Arc<dyn Transport>], id: TransportId) -> Option<TransportView<'_>> {
    list.get(id.0).map(|t| TransportView::new(id, t))
}

/// Views of every transport, in order.
pub(crate) fn views(list: &[Arc<dyn Transport>]) -> impl Iterator<Item = TransportView<'_>> {
    list.iter()
        .enumerate()
        .map(|(i, t)| TransportView::new(TransportId(i), t))
}
