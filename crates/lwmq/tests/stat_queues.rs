//! Statistics of a messaging channel's queues, asked the way `lwmq stat`
//! asks (the process's own stat socket, STAT/STATS encoded and decoded):
//! the messages waiting in the send queues and in the receive queue, and
//! what the bounded queues discarded, per transport of the channel. A
//! test binary of its own: it opens channels in-process, which the stat
//! socket's life follows. No timing assertion (liveness bounds only).

use std::time::{Duration, Instant};

use lwmq::internals::stat::{query_pid, TransportSnapshot};
use lwmq::{Channel, Endpoint, Message, Priority, QueueOptions, ReceiveQueue, Role, Timeout};

const LIVENESS: Duration = Duration::from_secs(60);

fn uri(tag: &str) -> String {
    format!("ipc://stat-queues-{}-{tag}", std::process::id())
}

/// The snapshot of transport `uri` of this process.
fn snapshot(uri: &str) -> TransportSnapshot {
    let snap = query_pid(std::process::id(), LIVENESS).expect("own stat socket answers");
    snap.transports
        .into_iter()
        .find(|t| t.descriptor == uri)
        .unwrap_or_else(|| panic!("no {uri}"))
}

#[test]
fn queue_depths_and_discards_are_in_the_statistics() {
    // Send side, no peer: a discard-oldest queue of 2 given 5 messages
    // keeps 2 and discards 3; a mono queue keeps its 4.
    let lonely = uri("lonely");
    let mut b = Channel::builder()
        .transport(Endpoint::new(&lonely).unwrap())
        .unwrap()
        .linger(Timeout::ZERO);
    let bounded = b
        .multi_queue(QueueOptions::new(Priority::Normal).discard_oldest(2))
        .unwrap();
    let mono = b.mono_queue(Priority::Highest).unwrap();
    let _server = b.open(Role::Server).unwrap();
    for i in 0..5u8 {
        bounded.post(Message::from(vec![i]), Timeout::ZERO).unwrap();
    }
    for i in 0..4u8 {
        mono.post(Message::from(vec![i]), Timeout::ZERO).unwrap();
    }
    let t = snapshot(&lonely);
    assert_eq!(
        (t.send_queued, t.discards, t.receive_queued),
        (6, 3, 0),
        "{t:?}"
    );

    // Receive side: a server that does not take its messages, with a
    // discard-oldest receive queue of 2; its peer sends 3.
    let busy = uri("busy");
    let server = Channel::builder()
        .transport(Endpoint::new(&busy).unwrap().send_buffers(0))
        .unwrap()
        .receive_queue(ReceiveQueue::multi_discard_oldest(2))
        .linger(Timeout::ZERO)
        .open(Role::Server)
        .unwrap();
    let mut b = Channel::builder()
        .transport(Endpoint::new(&busy).unwrap().receive_buffers(0))
        .unwrap()
        .linger(Timeout::ZERO);
    let q = b.mono_queue(Priority::Normal).unwrap();
    let client = b.open(Role::Client).unwrap();
    for i in 0..3u8 {
        q.post(Message::from(vec![i]), Timeout::ZERO).unwrap();
    }
    client.flush(LIVENESS).unwrap();
    // The server's receive thread moves them into its queue.
    let start = Instant::now();
    let t = loop {
        let t = snapshot(&busy);
        if t.receive_queued + t.discards == 3 || start.elapsed() > LIVENESS {
            break t;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!((t.receive_queued, t.discards), (2, 1), "{t:?}");
    // Both ends of `busy` are in this process: the client's transport
    // shows its own channel's (empty) queues.
    let snap = query_pid(std::process::id(), LIVENESS).unwrap();
    let ends: Vec<_> = snap
        .transports
        .iter()
        .filter(|t| t.descriptor == busy)
        .collect();
    assert_eq!(ends.len(), 2);
    assert!(ends
        .iter()
        .any(|t| t.receive_queued == 0 && t.send_queued == 0 && t.discards == 0));
    drop((server, client));
}
