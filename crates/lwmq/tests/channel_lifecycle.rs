//! Every lifecycle rule of a messaging channel returns its named error.

mod channel_common;

use channel_common::*;
use lwmq::channel::{Channel, PostError, Priority, ReceiveError, ReceiveQueueKind, SendQueueKind};
use lwmq::message::{Frame, Message, MessageError};
use lwmq::{ChannelError, Directions, Role, Timeout, TransportId};

const MONO: SendQueueKind = SendQueueKind::MonoProducerUnbounded;
const RQ: Option<ReceiveQueueKind> = Some(ReceiveQueueKind::MonoConsumerUnbounded);

fn with(dirs: Directions) -> Channel {
    let (s, r) = match dirs {
        Directions::Send => (4, 0),
        Directions::Receive => (0, 4),
        Directions::SendReceive => (4, 4),
    };
    let mut ch = Channel::new();
    ch.add_transport(&unique("life"), 4096, s, r, dirs).unwrap();
    ch
}

#[test]
fn open_rules() {
    let mut ch = Channel::new();
    assert!(matches!(
        ch.open(Role::Server, RQ),
        Err(ChannelError::NoTransport)
    ));

    let mut ch = with(Directions::SendReceive);
    ch.add_send_queue(MONO, Priority::Normal).unwrap();
    assert!(matches!(
        ch.open(Role::Server, None),
        Err(ChannelError::ReceiveQueueMissing)
    ));

    let mut ch = with(Directions::Send);
    ch.add_send_queue(MONO, Priority::Normal).unwrap();
    assert!(matches!(
        ch.open(Role::Server, RQ),
        Err(ChannelError::ReceiveQueueWithoutReceivingTransport)
    ));

    let mut ch = with(Directions::Send);
    assert!(matches!(
        ch.open(Role::Server, None),
        Err(ChannelError::NoSendQueue)
    ));

    let mut ch = with(Directions::Receive);
    ch.add_send_queue(MONO, Priority::Normal).unwrap();
    assert!(matches!(
        ch.open(Role::Server, RQ),
        Err(ChannelError::SendQueueWithoutSendingTransport)
    ));

    let mut ch = with(Directions::Receive);
    let e = ch
        .open(
            Role::Server,
            Some(ReceiveQueueKind::MultiConsumerBoundedDiscardOldest(0)),
        )
        .unwrap_err();
    assert!(
        matches!(e, ChannelError::ZeroCapacity { which: "receive" }),
        "{e}"
    );
    assert!(e.to_string().contains("capacity 0"));

    let mut ch = with(Directions::Receive);
    ch.open(Role::Server, RQ).unwrap();
    assert!(matches!(
        ch.open(Role::Server, RQ),
        Err(ChannelError::AlreadyOpen)
    ));
    ch.close(Timeout::ZERO).unwrap();
    assert!(matches!(
        ch.open(Role::Server, RQ),
        Err(ChannelError::Closed)
    ));
}

#[test]
fn add_rules() {
    let mut ch = with(Directions::SendReceive);
    let e = ch
        .add_transport(&unique("b"), 8192, 4, 4, Directions::SendReceive)
        .unwrap_err();
    assert!(matches!(
        e,
        ChannelError::BufferSizeMismatch {
            existing: 4096,
            new: 8192
        }
    ));
    assert!(matches!(
        ch.add_send_queue(
            SendQueueKind::MultiProducerBoundedDiscardNewest(0),
            Priority::Idle
        ),
        Err(ChannelError::ZeroCapacity { which: "send" })
    ));
    assert!(matches!(
        ch.transport(TransportId(3)),
        Err(ChannelError::UnknownTransport(3))
    ));
    ch.add_send_queue(MONO, Priority::Normal).unwrap();
    ch.open(Role::Server, RQ).unwrap();
    assert!(matches!(
        ch.add_transport(&unique("c"), 4096, 4, 4, Directions::SendReceive),
        Err(ChannelError::AddTransportAfterOpen)
    ));
    assert!(matches!(
        ch.add_send_queue(MONO, Priority::Normal),
        Err(ChannelError::AddSendQueueAfterOpen)
    ));
    assert!(ch.transport(TransportId(0)).is_ok());
}

#[test]
fn post_and_receive_rules() {
    let mut ch = with(Directions::SendReceive);
    let q = ch.add_send_queue(MONO, Priority::Normal).unwrap();
    assert!(matches!(
        ch.receive(Timeout::ZERO),
        Err(ReceiveError::NotOpen)
    ));
    assert!(matches!(
        ch.flush(Timeout::ZERO),
        Err(ChannelError::NotOpen)
    ));
    assert!(matches!(
        q.post(numbered(1), Timeout::ZERO),
        Err(PostError::NotOpen(_))
    ));
    ch.open(Role::Server, RQ).unwrap();
    assert!(matches!(
        q.post(Message::new(), Timeout::ZERO),
        Err(PostError::Invalid {
            error: MessageError::NoFrames,
            ..
        })
    ));
    assert!(matches!(
        q.post_with_tag(numbered(1), 5, Timeout::ZERO),
        Err(PostError::TagUnsupported(_))
    ));
    let mut big = Message::new();
    big.push(Frame::copy(&[0u8; 4096]));
    let e = q.post(big, Timeout::ZERO).unwrap_err();
    assert!(
        matches!(e, PostError::TooLarge { limit: 4088, .. }),
        "{e:?}"
    );
    ch.close(Timeout::ZERO).unwrap();
    assert!(matches!(ch.flush(Timeout::ZERO), Err(ChannelError::Closed)));

    let mut rx_less = with(Directions::Send);
    rx_less.add_send_queue(MONO, Priority::Normal).unwrap();
    rx_less.open(Role::Server, None).unwrap();
    assert!(matches!(
        rx_less.receive(Timeout::ZERO),
        Err(ReceiveError::NoReceiveQueue)
    ));
}

#[test]
fn affinity_control() {
    let mut ch = with(Directions::SendReceive);
    ch.add_send_queue(MONO, Priority::Normal).unwrap();
    // Before any set: the calling thread's set, which open's threads inherit.
    let inherited = ch.service_thread_affinity();
    assert!(!inherited.is_empty());
    assert_eq!(ch.set_service_thread_affinity(&[0]).unwrap(), inherited);
    ch.open(Role::Server, RQ).unwrap();
    // Each set returns the previous one; a refused set changes nothing.
    assert_eq!(ch.set_service_thread_affinity(&[0, 1]).unwrap(), vec![0]);
    assert!(ch.set_service_thread_affinity(&[]).is_err());
    assert_eq!(ch.service_thread_affinity(), vec![0, 1]);
    ch.close(Timeout::ZERO).unwrap();
    // After close the helper threads are gone; the set is still recorded.
    assert_eq!(ch.set_service_thread_affinity(&[1]).unwrap(), vec![0, 1]);
}
