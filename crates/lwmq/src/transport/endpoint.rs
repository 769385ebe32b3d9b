//! [`Endpoint`]: one transport's configuration, by value.

use std::time::Duration;

use super::{
    query_limits, AccessPolicy, AllowList, BufferLimits, ConfigError, DescriptorError,
    TransportConfig, MAX_HEARTBEAT_TIMEOUT, MAX_RETRY_INTERVAL, MAX_SPIN, MIN_HEARTBEAT_TIMEOUT,
    MIN_RETRY_INTERVAL,
};
use crate::descriptor;

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
/// Some settings belong to one scheme: [`access`](Self::access) (peers by
/// user) to `ipc://`, [`heartbeat_timeout`](Self::heartbeat_timeout) and
/// [`allow_peers`](Self::allow_peers) (peers by address) to `tcp://`; one
/// given to the other scheme is [`ConfigError::NotForScheme`].
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
///
/// The same over TCP, between machines on a trusted network:
///
/// ```
/// use std::time::Duration;
/// use lwmq::transport::AllowList;
/// use lwmq::Endpoint;
///
/// let ep = Endpoint::new("tcp://192.168.1.20:5555")?
///     .heartbeat_timeout(Duration::from_secs(5))   // default 5 s; 0 = off
///     .allow_peers(AllowList::parse(&["192.168.1.0/24"])?); // default: any peer
/// assert!(ep.check().is_ok());
/// # Ok::<(), Box<dyn std::error::Error>>(())
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
    /// The descriptor's scheme is `tcp`.
    tcp: bool,
    heartbeat_timeout: Option<Duration>,
    allow: Option<AllowList>,
}

impl Endpoint {
    /// Default buffer size: 64 KiB.
    pub const DEFAULT_BUFFER_SIZE: usize = 64 * 1024;
    /// Default send and receive buffer counts: 4 each.
    pub const DEFAULT_BUFFERS: u32 = 4;

    /// An endpoint for `descriptor` (`ipc://address[:port]` or
    /// `tcp://host:port`), with 64 KiB
    /// buffers, 4 to send and 4 to receive. Fails if the scheme has no
    /// transport or the transport refuses the rest of the descriptor, with
    /// the rule broken.
    pub fn new(descriptor: impl Into<String>) -> Result<Endpoint, DescriptorError> {
        let descriptor = descriptor.into();
        let limits = query_limits(&descriptor)?;
        let tcp = descriptor::split_scheme(&descriptor)?.0 == "tcp";
        Ok(Endpoint {
            descriptor,
            limits,
            buffer_size: Self::DEFAULT_BUFFER_SIZE,
            send_buffers: Self::DEFAULT_BUFFERS,
            receive_buffers: Self::DEFAULT_BUFFERS,
            retry_interval: None,
            spin: None,
            access: AccessPolicy::same_user(),
            tcp,
            heartbeat_timeout: None,
            allow: None,
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
    /// [`AccessPolicy`]). Fixed once the channel is open. `ipc://` only
    /// (a TCP peer has no user the kernel vouches for: choose `tcp://`
    /// peers by address with [`allow_peers`](Self::allow_peers)).
    pub fn access(mut self, policy: AccessPolicy) -> Self {
        self.access = policy;
        self
    }

    /// `tcp://` only: how long the peer may stay silent before it is
    /// declared dead (its host gone, the network cut, the process stopped)
    /// and the connection dropped and retried (default 5 s; from 100 ms
    /// to 1 h; zero turns the check off on this side). Both sides send a
    /// heartbeat when they wrote nothing for a fifth of the stricter of
    /// their two timeouts. A peer that exits or crashes is seen at once
    /// either way (its kernel closes the connection).
    pub fn heartbeat_timeout(mut self, timeout: Duration) -> Self {
        self.heartbeat_timeout = Some(timeout);
        self
    }

    /// `tcp://` only: the peer addresses this side talks to (default: any
    /// peer). A peer outside the list is refused
    /// [`AccessDenied`](super::RefusalReason::AccessDenied) before any of
    /// its handshake is read, on either side, and the refusal is logged.
    /// Fixed once the channel is open. An address list catches mistakes,
    /// not spoofing: plain `tcp://` is for trusted networks.
    pub fn allow_peers(mut self, list: AllowList) -> Self {
        self.allow = Some(list);
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
    /// retry interval, spin and heartbeat timeout in range, and only the
    /// settings of its scheme.
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
        self.check_scheme_settings()?;
        Ok(config)
    }

    /// The settings that belong to one scheme are given to that scheme
    /// only, and the heartbeat timeout is in range.
    fn check_scheme_settings(&self) -> Result<(), ConfigError> {
        let not_for = |setting, applies_to, why| ConfigError::NotForScheme {
            descriptor: self.descriptor.clone(),
            setting,
            applies_to,
            why,
        };
        if self.tcp {
            if self.access != AccessPolicy::same_user() {
                return Err(not_for(
                    "access",
                    "ipc://",
                    "peers are admitted by user where the kernel vouches for the user; choose tcp:// peers by address with allow_peers",
                ));
            }
            if let Some(d) = self.heartbeat_timeout {
                check_heartbeat_timeout(&self.descriptor, d)?;
            }
        } else {
            if self.heartbeat_timeout.is_some() {
                return Err(not_for(
                    "heartbeat_timeout",
                    "tcp://",
                    "an ipc:// peer's death is seen at once through its socket; heartbeats find a silent tcp:// peer",
                ));
            }
            if self.allow.is_some() {
                return Err(not_for(
                    "allow_peers",
                    "tcp://",
                    "ipc:// peers are admitted by user with access",
                ));
            }
        }
        Ok(())
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

    pub(crate) fn heartbeat_timeout_setting(&self) -> Option<Duration> {
        self.heartbeat_timeout
    }

    pub(crate) fn allow_setting(&self) -> Option<&AllowList> {
        self.allow.as_ref()
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

    /// Sets the heartbeat timeout in place, checked (range and scheme);
    /// unchanged on error.
    #[doc(hidden)]
    pub fn set_heartbeat_timeout(&mut self, timeout: Duration) -> Result<(), ConfigError> {
        let before = self.heartbeat_timeout.replace(timeout);
        self.check_scheme_settings().inspect_err(|_| {
            self.heartbeat_timeout = before;
        })
    }

    /// Sets the peer allow-list in place, checked (scheme); unchanged on
    /// error.
    #[doc(hidden)]
    pub fn set_allow_peers(&mut self, list: AllowList) -> Result<(), ConfigError> {
        let before = self.allow.replace(list);
        self.check_scheme_settings().inspect_err(|_| {
            self.allow = before;
        })
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

pub(crate) fn check_heartbeat_timeout(descriptor: &str, d: Duration) -> Result<(), ConfigError> {
    if !d.is_zero() && !(MIN_HEARTBEAT_TIMEOUT..=MAX_HEARTBEAT_TIMEOUT).contains(&d) {
        return Err(ConfigError::HeartbeatTimeout {
            descriptor: descriptor.to_owned(),
            given: d,
            min: MIN_HEARTBEAT_TIMEOUT,
            max: MAX_HEARTBEAT_TIMEOUT,
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
            Endpoint::new("udp://x:1"),
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

    #[test]
    fn scheme_settings_go_to_their_scheme() {
        let tcp = Endpoint::new("tcp://127.0.0.1:5555").unwrap();
        let ipc = Endpoint::new("ipc://rules").unwrap();
        assert!(tcp
            .clone()
            .heartbeat_timeout(Duration::ZERO)
            .allow_peers(AllowList::parse(&["127.0.0.0/8"]).unwrap())
            .check()
            .is_ok());
        for d in [Duration::from_millis(10), Duration::from_secs(7200)] {
            let e = tcp.clone().heartbeat_timeout(d).check().unwrap_err();
            assert!(matches!(e, ConfigError::HeartbeatTimeout { .. }), "{e}");
            assert!(e.to_string().contains("heartbeat_timeout"), "{e}");
        }
        let e = tcp
            .clone()
            .access(AccessPolicy::any_user())
            .check()
            .unwrap_err();
        assert!(
            matches!(
                e,
                ConfigError::NotForScheme {
                    setting: "access",
                    ..
                }
            ),
            "{e}"
        );
        let e = ipc
            .clone()
            .heartbeat_timeout(Duration::from_secs(1))
            .check()
            .unwrap_err();
        assert!(e.to_string().contains("applies to tcp:// only"), "{e}");
        let e = ipc.allow_peers(AllowList::any()).check().unwrap_err();
        assert!(
            matches!(
                e,
                ConfigError::NotForScheme {
                    setting: "allow_peers",
                    ..
                }
            ),
            "{e}"
        );
    }
}
