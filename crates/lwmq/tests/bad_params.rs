//! Bad parameters of an `ipc://` endpoint and of a raw channel: settings
//! out of range (at build time and at run time), a send length larger
//! than the buffer. Each is refused with a named error and changes nothing.

use std::time::Duration;

use lwmq::raw::SendError;
use lwmq::{ConfigError, Endpoint, RawChannel, Role, Timeout, TransportError, TransportId};

fn unique(name: &str) -> String {
    format!("ipc://lwmq-test/{}/bad-params/{name}", std::process::id())
}

#[test]
fn settings_out_of_range_are_refused() {
    let ep = Endpoint::new(unique("control"))
        .unwrap()
        .buffer_size(4096)
        .send_buffers(0)
        .receive_buffers(2);
    let bad_retry = [
        Duration::ZERO,
        Duration::from_secs(86400) + Duration::from_millis(1),
    ];
    for d in bad_retry {
        let e = RawChannel::builder()
            .transport(ep.clone().retry_interval(d))
            .unwrap_err();
        assert!(
            matches!(e, ConfigError::RetryInterval { given, .. } if given == d),
            "{e}"
        );
        assert!(e.to_string().contains("1ms..=86400s"), "{e}");
    }
    let e = ep
        .clone()
        .spin(Duration::from_millis(101))
        .check()
        .unwrap_err();
    assert!(e.to_string().contains("at most 100ms"), "{e}");
    // The limits themselves are accepted.
    for d in [Duration::from_millis(1), Duration::from_secs(86400)] {
        ep.clone().retry_interval(d).check().unwrap();
    }
    for d in [Duration::from_millis(100), Duration::ZERO] {
        ep.clone().spin(d).check().unwrap();
    }
    // At run time, the same rules; the access policy is fixed at open
    // (it is an `Endpoint` setting only, so nothing can change it later).
    let ch = RawChannel::builder()
        .transport(ep)
        .unwrap()
        .open(Role::Server)
        .unwrap();
    let t = ch.transport(TransportId(0)).unwrap();
    for d in bad_retry {
        assert!(matches!(
            t.set_retry_interval(d),
            Err(ConfigError::RetryInterval { .. })
        ));
    }
    assert!(matches!(
        t.set_spin(Duration::from_millis(101)),
        Err(ConfigError::Spin { .. })
    ));
}

#[test]
fn buffer_counts_and_sizes_are_checked_when_added() {
    let ep = Endpoint::new(unique("counts")).unwrap();
    let mut b = RawChannel::builder();
    for (bad, rule) in [
        (ep.clone().buffer_size(0), "buffer_size 0 is out of range"),
        (ep.clone().buffer_size((1 << 30) + 1), "is out of range"),
        (
            ep.clone().send_buffers(0).receive_buffers(0),
            "send_buffers and receive_buffers are both 0",
        ),
        (ep.clone().send_buffers(4096).receive_buffers(1), "exceed"),
    ] {
        let e = b.add_transport(bad).unwrap_err();
        assert!(e.to_string().contains(rule), "{e}");
        assert_eq!(e.descriptor(), Some(ep.descriptor()));
    }
    // Nothing was added by the failures.
    assert!(b.endpoint(TransportId(0)).is_none());
}

#[test]
fn send_length_larger_than_the_buffer_is_refused_and_nothing_is_sent() {
    let uri = unique("length");
    let ep = |s, r| {
        Endpoint::new(&uri)
            .unwrap()
            .buffer_size(4096)
            .send_buffers(s)
            .receive_buffers(r)
    };
    let server = RawChannel::builder()
        .transport(ep(0, 4))
        .unwrap()
        .open(Role::Server)
        .unwrap();
    let client = RawChannel::builder()
        .transport(ep(4, 0))
        .unwrap()
        .open(Role::Client)
        .unwrap();
    let tx = client.sender(TransportId(0)).unwrap();
    let wait = Duration::from_secs(30);
    let b = tx.get_buffer(wait).unwrap();
    // The buffer comes back with the error: nothing was sent.
    let b = match b.send(4097) {
        Err(SendError::Refused {
            error: TransportError::LengthTooLarge { len, size },
            buffer,
        }) => {
            assert_eq!((len, size), (4097, 4096));
            buffer
        }
        other => panic!("expected LengthTooLarge, got {other:?}"),
    };
    drop(b);
    // The sender still works, and only the good buffer arrives.
    let mut b = tx.get_buffer(wait).unwrap();
    b.write(0, b"hello").unwrap();
    b.send(5).unwrap();
    let rx = server.receiver(TransportId(0)).unwrap();
    let got = rx.receive_buffer(wait).unwrap();
    assert_eq!(got.to_vec(), b"hello");
    drop(got);
    assert!(matches!(
        rx.receive_buffer(Timeout::after(Duration::from_millis(200))),
        Err(TransportError::Timeout)
    ));
}
