//! Bad parameters of the `ipc://` transport and the raw channel: control
//! codes out of range, an access policy set too late, a send length larger
//! than the buffer. Each is refused with a named error and changes nothing.

use std::time::Duration;

use lwmq::{
    AccessPolicy, Directions, RawChannel, Role, Timeout, TransportControl, TransportError,
    TransportId,
};

fn unique(name: &str) -> String {
    format!("ipc://lwmq-test/{}/bad-params/{name}", std::process::id())
}

fn is_control_error(r: Result<(), TransportError>, rule: &str) {
    match r {
        Err(TransportError::Control { what, .. }) => {
            assert!(what.contains(rule), "{what}")
        }
        other => panic!("expected a control error naming {rule:?}, got {other:?}"),
    }
}

#[test]
fn control_values_out_of_range_are_refused() {
    let mut ch = RawChannel::new();
    ch.add_transport(&unique("control"), 4096, 0, 2, Directions::Receive)
        .unwrap();
    let t = ch.transport(TransportId(0)).unwrap();
    use TransportControl::*;
    let retry = SetClientConnectionRetryInterval;
    is_control_error(t.control(retry(Duration::ZERO)), "1 ms ..= 24 h");
    is_control_error(
        t.control(retry(Duration::from_secs(86400) + Duration::from_millis(1))),
        "1 ms ..= 24 h",
    );
    is_control_error(
        t.control(SetSpinDuration(Duration::from_millis(101))),
        "at most 100 ms",
    );
    // The limits themselves are accepted.
    t.control(retry(Duration::from_millis(1))).unwrap();
    t.control(retry(Duration::from_secs(86400))).unwrap();
    t.control(SetSpinDuration(Duration::from_millis(100)))
        .unwrap();
    t.control(SetSpinDuration(Duration::ZERO)).unwrap();
    // The access policy only before open.
    t.control(SetAccessPolicy(AccessPolicy::same_user()))
        .unwrap();
    ch.open(Role::Server).unwrap();
    let t = ch.transport(TransportId(0)).unwrap();
    is_control_error(
        t.control(SetAccessPolicy(AccessPolicy::any_user())),
        "before the channel opens",
    );
}

#[test]
fn send_length_larger_than_the_buffer_is_refused_and_nothing_is_sent() {
    let uri = unique("length");
    let mut server = RawChannel::new();
    let st = server
        .add_transport(&uri, 4096, 0, 4, Directions::Receive)
        .unwrap();
    server.open(Role::Server).unwrap();
    let mut client = RawChannel::new();
    let ct = client
        .add_transport(&uri, 4096, 4, 0, Directions::Send)
        .unwrap();
    client.open(Role::Client).unwrap();
    let tx = client.sender(ct).unwrap();
    let wait = Timeout::after(Duration::from_secs(30));
    let b = tx.get_buffer(wait).unwrap();
    // The buffer comes back with the error: nothing was sent.
    let b = match b.send(4097) {
        Err(lwmq::SendError::Refused {
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
    let rx = server.receiver(st).unwrap();
    let got = rx.receive_buffer(wait).unwrap();
    assert_eq!(got.to_vec(), b"hello");
    drop(got);
    assert!(matches!(
        rx.receive_buffer(Timeout::after(Duration::from_millis(200))),
        Err(TransportError::Timeout)
    ));
}
