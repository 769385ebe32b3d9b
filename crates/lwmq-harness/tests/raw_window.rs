//! Several buffers out at once on each side of a raw channel, between two
//! real processes: the sender keeps a window of buffers, sends them in the
//! order obtained (an out-of-order send is refused and gives the buffer
//! back), aborts some in the middle; the receiver holds a window of
//! received buffers and gives them back newest first. Nothing is lost,
//! duplicated or reordered, and no aborted buffer ever arrives.

mod common;

use common::*;

fn run(window: &str, sender_role: &str, receiver_role: &str) {
    let uri = unique("window");
    let common_args = [
        "--buffers",
        "8",
        "--buffer-size",
        "4096",
        "--window",
        window,
    ];
    let mut rargs = vec!["recv", &uri, "--role", receiver_role, "--count", "3000"];
    rargs.extend(common_args);
    let mut sargs = vec![
        "send",
        &uri,
        "--role",
        sender_role,
        "--count",
        "3000",
        "--size",
        "300",
    ];
    sargs.extend(common_args);
    let (mut receiver, mut sender);
    if receiver_role == "server" {
        receiver = spawn(&rargs);
        receiver.expect("OPEN server", LIVENESS);
        sender = spawn(&sargs);
    } else {
        sender = spawn(&sargs);
        sender.expect("OPEN server", LIVENESS);
        receiver = spawn(&rargs);
    }
    let poison = sender.expect("POISON", LIVENESS);
    let poison_run = poison.split_whitespace().nth(1).expect("run").to_owned();
    let done = receiver.expect("DONE", LIVENESS * 4);
    let sent = sender.expect("SENT", LIVENESS * 2);
    assert!(sender.wait_success(), "{}", sender.stderr());
    assert!(receiver.wait_success(), "{}", receiver.stderr());
    receiver.drain();
    assert_eq!(done_field(&done, "received"), 3000, "{done}");
    assert_eq!(done_field(&done, "bad"), 0, "{done}");
    assert_eq!(done_field(&done, "dup"), 0, "{done}");
    assert_eq!(done_field(&done, "gaps"), 0, "{done}");
    assert_eq!(done_field(&done, "runs"), 1, "{done}");
    // Every 5th buffer obtained was aborted: 3000 sent means 749 or 750.
    assert!(done_field(&sent, "aborted") >= 749, "{sent}");
    assert!(
        !receiver
            .seen
            .iter()
            .any(|l| l.starts_with("RUN") && l.contains(&poison_run)),
        "an aborted buffer arrived: {:?}",
        receiver.seen
    );
}

#[test]
fn windows_of_buffers_on_both_sides_deliver_in_order_and_never_an_aborted_one() {
    run("6", "client", "server");
}

#[test]
fn windows_of_buffers_with_the_sender_as_server() {
    run("8", "server", "client");
}
