//! Messaging channels across processes: `kill -9` of either peer during a
//! stream. After a restart, delivery resumes by itself, and within each
//! connection no message is corrupted, duplicated or reordered (the
//! receiving `lwmq-msg-peer` checks sequence and checksum of every
//! message and prints `BAD` lines otherwise).

mod common;

use std::time::Duration;

use common::*;

fn no_bad(p: &mut Peer) {
    p.drain();
    let bad: Vec<_> = p.seen.iter().filter(|l| l.starts_with("BAD")).collect();
    assert!(bad.is_empty(), "{bad:?}\n{}", p.stderr());
}

#[test]
fn sender_killed_then_restarted_delivery_resumes() {
    let uri = unique("msg-kill-sender");
    let mut receiver = spawn_msg(&["recv", &uri, "server", "0"]);
    receiver.expect("OPEN server", LIVENESS);
    let mut sender = spawn_msg(&["send", &uri, "client", "0", "100"]);
    receiver.expect("RUN", LIVENESS);
    std::thread::sleep(Duration::from_millis(200));
    sender.kill9();
    // The restarted sender's messages arrive without any action on the
    // receiver, from sequence 0, complete.
    let mut sender2 = spawn_msg(&["send", &uri, "client", "20000", "100"]);
    let run = receiver.expect("RUN", LIVENESS);
    assert!(run.ends_with(" 0"), "{run}");
    sender2.expect("SENT 20000", LIVENESS);
    assert!(sender2.wait_success());
    std::thread::sleep(Duration::from_millis(100));
    receiver.kill9();
    no_bad(&mut receiver);
}

#[test]
fn receiver_killed_then_restarted_delivery_resumes() {
    let uri = unique("msg-kill-receiver");
    let mut sender = spawn_msg(&["send", &uri, "server", "0", "300"]);
    sender.expect("OPEN server", LIVENESS);
    let mut receiver = spawn_msg(&["recv", &uri, "client", "0"]);
    receiver.expect("RUN", LIVENESS);
    std::thread::sleep(Duration::from_millis(200));
    receiver.kill9();
    no_bad(&mut receiver);
    let mut receiver2 = spawn_msg(&["recv", &uri, "client", "20000"]);
    let done = receiver2.expect("DONE", LIVENESS * 2);
    assert_eq!(done_field(&done, "bad"), 0, "{done}");
    assert_eq!(done_field(&done, "dup"), 0, "{done}");
    assert_eq!(done_field(&done, "gaps"), 0, "{done}");
    assert_eq!(done_field(&done, "runs"), 1, "{done}");
    no_bad(&mut receiver2);
    sender.kill9();
}

/// A connected messaging pair whose applications block in `receive` uses
/// under 2 % of a core per process.
#[test]
fn idle_messaging_pair_uses_almost_no_cpu() {
    let uri = unique("msg-idle");
    let mut a = spawn_msg(&["idle", &uri, "server", "30"]);
    let mut b = spawn_msg(&["idle", &uri, "client", "30"]);
    a.expect("CONNECTED", LIVENESS);
    b.expect("CONNECTED", LIVENESS);
    assert_idle_pair(&a, &b);
}
