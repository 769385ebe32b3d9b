//! [`Endpoint`]: one transport's configuration, by value.

use std::time::Duration;

use super::{
    query_limits, AccessPolicy, BufferLimits, ConfigError, DescriptorError, TransportConfig,
    MAX_RETRY_INTERVAL, MAX_SPIN, MIN_RETRY_INTERVAL,
};

/// Where a channel connects and how: a transport descriptor with its
/// buffer size and counts and its connection settings.
///
/// The descriptor is checked by [`Endpoint::new`] (its scheme picks the
/// transport, which parses the rest); the numbers are checked when the
/// endpoint is added to a builder
/// ([`ChannelBuilder::transport`](crate::ChannelBuilder::transport),
/// [`RawChannelBuilder::transport`](crate::RawChannelBuilder::transport)),
/// each broken rule a [`ConfigError`].
///
/// Directions follow from the counts: an endpoint with 0 receive buffers
/// only sends, one with 0 send buffers only receives; both 0 is an error.
///
/// ```
/// use std::time::Duration;
/// use lwmq::{AccessPolicy, Endpoint};
///
/// let ep = Endpoint::new("ipc://example/chat:7")?
///     .buffer_size(64 * 1024)                      // default 64 KiB
///     .send_buffers(4)                             // default 4; 0 = receive only
///     .receive_buffers(4)                          // default 4; 0 = send only
///     .retry_interval(Duration::from_millis(100))  // how often a client retries
///     .spin(Duration::from_micros(50))             // spin before a wait sleeps
///     .access(AccessPolicy::same_user());          // who may connect
/// assert_eq!(ep.descriptor(), "ipc://example/chat:7");
/// # Ok::<(), lwmq::DescriptorError>(())
/// ```
#[must_use]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    descriptor: String,
    limits: BufferLimits,
    buffer_size: usize,
    send_buffers: u32,
    receive_buffers: u32,
    retry_interval: Option<Duration>,
    spin: Option<Duration>,
    access: AccessPolicy,
}

impl Endpoint {
    /// Default buffer size: 64 KiB.
    pub const DEFAULT_BUFFER_SIZE: usize = 64 * 1024;
    /// Default send and receive buffer counts: 4 each.
    pub const DEFAULT_BUFFERS: u32 = 4;

    /// An endpoint for `descriptor` (`ipc://address[:port]`), with 64 KiB
    /// buffers, 4 to send and 4 to receive. Fails if the scheme has no
    /// transport or the transport refuses the rest of the descriptor, with
    /// the rule broken.
    pub fn new(descriptor: impl Into<String>) -> Result<Endpoint, DescriptorError> {
        let descriptor = descriptor.into();
        let limits = query_limits(&descriptor)?;
        Ok(Endpoint {
            descriptor,
            limits,
            buffer_size: Self::DEFAULT_BUFFER_SIZE,
            send_buffers: Self::DEFAULT_BUFFERS,
            receive_buffers: Self::DEFAULT_BUFFERS,
            retry_interval: None,
            spin: None,
            access: AccessPolicy::same_user(),
        })
    }

    /// Bytes per transport buffer: the largest encoded message (or raw
    /// buffer) this transport carries. Every transport of a channel uses
    /// the same size.
    pub fn buffer_size(mut self, bytes: usize) -> Self {
        self.buffer_size = bytes;
        self
    }

    /// How many buffers this side may have in flight toward the peer; 0
    /// makes the transport receive only.
    pub fn send_buffers(mut self, count: u32) -> Self {
        self.send_buffers = count;
        self
    }

    /// How many received buffers this side may hold; 0 makes the transport
    /// send only.
    pub fn receive_buffers(mut self, count: u32) -> Self {
        self.receive_buffers = count;
        self
    }

    /// How often a client tries to reach its server (default 100 ms; from
    /// 1 ms to 24 h). Changeable after opening with
    /// [`TransportView::set_retry_interval`](super::TransportView::set_retry_interval).
    pub fn retry_interval(mut self, interval: Duration) -> Self {
        self.retry_interval = Some(interval);
        self
    }

    /// How long a thread waiting for a buffer spins before it sleeps
    /// (default 50 µs; at most 100 ms; zero sleeps at once). Changeable
    /// after opening with
    /// [`TransportView::set_spin`](super::TransportView::set_spin).
    pub fn spin(mut self, duration: Duration) -> Self {
        self.spin = Some(duration);
        self
    }

    /// Which peer users may connect (default: the same user only; see
    /// [`AccessPolicy`]). Fixed once the channel is open.
    pub fn access(mut self, policy: AccessPolicy) -> Self {
        self.access = policy;
        self
    }

    /// The descriptor, as given.
    pub fn descriptor(&self) -> &str {
        &self.descriptor
    }

    /// The limits of the transport the descriptor selects.
    pub fn limits(&self) -> BufferLimits {
        self.limits
    }

    /// Checks every rule that holds for this endpoint alone: buffer size
    /// and counts within the transport's limits, at least one buffer,
    /// retry interval and spin in range.
    pub fn check(&self) -> Result<(), ConfigError> {
        self.config().map(|_| ())
    }

    /// The checked buffer configuration.
    pub(crate) fn config(&self) -> Result<TransportConfig, ConfigError> {
        let config = TransportConfig::new(
            &self.descriptor,
            self.buffer_size,
            self.send_buffers,
            self.receive_buffers,
            &self.limits,
        )?;
        if let Some(d) = self.retry_interval {
            check_retry_interval(&self.descriptor, d)?;
        }
        if let Some(d) = self.spin {
            check_spin(&self.descriptor, d)?;
        }
        Ok(config)
    }

    pub(crate) fn buffer_size_setting(&self) -> usize {
        self.buffer_size
    }

    pub(crate) fn retry_interval_setting(&self) -> Option<Duration> {
        self.retry_interval
    }

    pub(crate) fn spin_setting(&self) -> Option<Duration> {
        self.spin
    }

    pub(crate) fn access_setting(&self) -> &AccessPolicy {
        &self.access
    }

    /// Sets the access policy in place (the C API's control code, which
    /// acts on a transport that was already added).
    #[doc(hidden)]
    pub fn set_access(&mut self, policy: AccessPolicy) {
        self.access = policy;
    }

    /// Sets the retry interval in place, checked.
    #[doc(hidden)]
    pub fn set_retry_interval(&mut self, interval: Duration) -> Result<(), ConfigError> {
        check_retry_interval(&self.descriptor, interval)?;
        self.retry_interval = Some(interval);
        Ok(())
    }

    /// Sets the spin in place, checked.
    #[doc(hidden)]
    pub fn set_spin(&mut self, duration: Duration) -> Result<(), ConfigError> {
        check_spin(&self.descriptor, duration)?;
        self.spin = Some(duration);
        Ok(())
    }
}

pub(crate) fn check_retry_interval(descriptor: &str, d: Duration) -> Result<(), ConfigError> {
    if d < MIN_RETRY_INTERVAL || d > MAX_RETRY_INTERVAL {
        return Err(ConfigError::RetryInterval {
            descriptor: descriptor.to_owned(),
            given: d,
            min: MIN_RETRY_INTERVAL,
            max: MAX_RETRY_INTERVAL,
        });
    }
    Ok(())
}

pub(crate) fn check_spin(descriptor: &str, d: Duration) -> Result<(), ConfigError> {
    if d > MAX_SPIN {
        return Err(ConfigError::Spin {
            descriptor: descriptor.to_owned(),
            given: d,
            max: MAX_SPIN,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_is_named() {
        assert!(matches!(
            Endpoint::new("tcp://x:1"),
            Err(DescriptorError::UnknownScheme { .. })
        ));
        assert!(matches!(
            Endpoint::new("ipc://"),
            Err(DescriptorError::EmptyAddress(_))
        ));
        let ep = Endpoint::new("ipc://rules").unwrap();
        assert!(ep.check().is_ok());
        let e = ep.clone().buffer_size(0).check().unwrap_err();
        assert!(matches!(e, ConfigError::BufferSize { size: 0, .. }), "{e}");
        let e = ep
            .clone()
            .send_buffers(0)
            .receive_buffers(0)
            .check()
            .unwrap_err();
        assert!(matches!(e, ConfigError::NoBuffers { .. }), "{e}");
        let e = ep.clone().send_buffers(5000).check().unwrap_err();
        assert!(matches!(e, ConfigError::TooManyBuffers { .. }), "{e}");
        let e = ep
            .clone()
            .retry_interval(Duration::ZERO)
            .check()
            .unwrap_err();
        assert!(matches!(e, ConfigError::RetryInterval { .. }), "{e}");
        assert!(e.to_string().contains("retry_interval"), "{e}");
        let e = ep.clone().spin(Duration::from_secs(1)).check().unwrap_err();
        assert!(matches!(e, ConfigError::Spin { .. }), "{e}");
        assert_eq!(e.descriptor(), Some("ipc://rules"));
        // Rust words, not C words.
        for e in [
            ep.clone().buffer_size(0).check().unwrap_err(),
            ep.clone()
                .send_buffers(0)
                .receive_buffers(0)
                .check()
                .unwrap_err(),
        ] {
            let t = e.to_string();
            assert!(
                !t.contains("BufferSizeBytes") && !t.contains("MaxPending"),
                "{t}"
            );
        }
    }
}
