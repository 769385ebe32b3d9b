//! The `ipc://` transport between real processes.

mod common;

use std::time::Duration;

use common::*;

fn recv_args<'a>(uri: &'a str, role: &'a str, count: &'a str) -> Vec<&'a str> {
    vec![
        "recv",
        uri,
        "--role",
        role,
        "--count",
        count,
        "--buffers",
        "4",
        "--buffer-size",
        "4096",
    ]
}

fn send_args<'a>(uri: &'a str, role: &'a str, count: &'a str) -> Vec<&'a str> {
    vec![
        "send",
        uri,
        "--role",
        role,
        "--count",
        count,
        "--size",
        "500",
        "--buffers",
        "4",
        "--buffer-size",
        "4096",
    ]
}

fn assert_clean_done(line: &str, count: u64) {
    assert_eq!(done_field(line, "received"), count, "{line}");
    assert_eq!(done_field(line, "bad"), 0, "{line}");
    assert_eq!(done_field(line, "dup"), 0, "{line}");
    assert_eq!(done_field(line, "gaps"), 0, "{line}");
}

#[test]
fn client_first_then_server_later_delivers_everything() {
    let uri = unique("client-first");
    // The client starts first and sends into the void (staged), then the
    // server appears 1.5 s later.
    let mut sender = spawn(&send_args(&uri, "client", "20000"));
    sender.expect("OPEN client", LIVENESS);
    std::thread::sleep(Duration::from_millis(1500));
    let mut receiver = spawn(&recv_args(&uri, "server", "20000"));
    let done = receiver.expect("DONE", LIVENESS * 2);
    assert_clean_done(&done, 20000);
    assert!(sender.wait_success());
}

#[test]
fn server_first_then_client_later_delivers_everything() {
    let uri = unique("server-first");
    // The server sends before any client exists.
    let mut sender = spawn(&send_args(&uri, "server", "20000"));
    sender.expect("OPEN server", LIVENESS);
    std::thread::sleep(Duration::from_millis(1500));
    let mut receiver = spawn(&recv_args(&uri, "client", "20000"));
    let done = receiver.expect("DONE", LIVENESS * 2);
    assert_clean_done(&done, 20000);
    assert!(sender.wait_success());
}

#[test]
fn second_server_is_refused_while_first_keeps_working() {
    let uri = unique("in-use");
    let mut receiver = spawn(&recv_args(&uri, "server", "5000"));
    receiver.expect("OPEN server", LIVENESS);
    let out = peer_cmd(&send_args(&uri, "server", "10")).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("address in use"), "{err}");
    // Auto role falls back to client and delivers.
    let mut sender = spawn(&send_args(&uri, "auto", "5000"));
    sender.expect("OPEN client", LIVENESS);
    let done = receiver.expect("DONE", LIVENESS * 2);
    assert_clean_done(&done, 5000);
    assert!(sender.wait_success());
}

#[test]
fn mapping_is_a_memfd() {
    let uri = unique("memfd");
    let mut receiver = spawn(&recv_args(&uri, "server", "10"));
    let mut sender = spawn(&send_args(&uri, "client", "10"));
    let map = receiver.expect("MAP", LIVENESS);
    assert!(map.contains("/memfd:lwmq:ipc://"), "{map}");
    assert!(map.contains("(deleted)") || map.contains("memfd:"), "{map}");
    receiver.expect("DONE", LIVENESS);
    assert!(sender.wait_success());
}

#[test]
fn sender_killed_mid_stream_then_restarted_receiver_reconnects() {
    let uri = unique("kill-sender");
    let mut receiver = spawn(&recv_args(&uri, "server", "0"));
    receiver.expect("OPEN server", LIVENESS);
    let mut sender = spawn(&send_args(&uri, "client", "0"));
    receiver.expect("RUN", LIVENESS);
    std::thread::sleep(Duration::from_millis(200));
    sender.kill9();
    // Restarted sender: a new run arrives without any action on the receiver.
    let mut sender2 = spawn(&send_args(&uri, "client", "3000"));
    receiver.expect("RUN", LIVENESS);
    assert!(sender2.wait_success());
    receiver.kill9();
    receiver.drain();
    // Never a corrupted, duplicated or reordered payload (each prints BAD).
    assert!(
        !receiver.seen.iter().any(|l| l.starts_with("BAD")),
        "{:?}",
        receiver.seen
    );
    assert!(
        !receiver.stderr().contains("lwmq-peer:"),
        "{}",
        receiver.stderr()
    );
}

#[test]
fn receiver_killed_then_restarted_sender_reconnects() {
    let uri = unique("kill-receiver");
    let mut sender = spawn(&send_args(&uri, "server", "0"));
    sender.expect("OPEN server", LIVENESS);
    let mut receiver = spawn(&recv_args(&uri, "client", "0"));
    receiver.expect("RUN", LIVENESS);
    std::thread::sleep(Duration::from_millis(200));
    receiver.kill9();
    let mut receiver2 = spawn(&recv_args(&uri, "client", "5000"));
    let done = receiver2.expect("DONE", LIVENESS * 2);
    // One run, in order, intact (its first payload may be any sequence).
    assert_eq!(done_field(&done, "bad"), 0, "{done}");
    assert_eq!(done_field(&done, "dup"), 0, "{done}");
    assert_eq!(done_field(&done, "gaps"), 0, "{done}");
    assert_eq!(done_field(&done, "runs"), 1, "{done}");
}

/// 50 kill -9 / restart cycles of the peer: the survivor's descriptors,
/// threads and memory stay flat, and everything it received was intact.
#[test]
fn fifty_crash_cycles_leave_the_survivor_flat() {
    let uri = unique("cycles");
    let mut survivor = spawn(&recv_args(&uri, "server", "0"));
    survivor.expect("OPEN server", LIVENESS);
    let pid = survivor.pid();
    let mut baseline = None;
    for cycle in 0..50 {
        let mut s = spawn(&send_args(&uri, "client", "0"));
        survivor.expect("RUN", LIVENESS);
        if cycle == 1 {
            baseline = Some((fd_count(pid), thread_count(pid), rss_kib(pid)));
        }
        s.kill9();
    }
    // Let the survivor notice the last death.
    std::thread::sleep(Duration::from_millis(300));
    let mut s = spawn(&send_args(&uri, "client", "0"));
    survivor.expect("RUN", LIVENESS);
    let (fds0, threads0, rss0) = baseline.unwrap();
    let (fds, threads, rss) = (fd_count(pid), thread_count(pid), rss_kib(pid));
    s.kill9();
    assert_eq!(fds, fds0, "fd count grew over 50 cycles");
    assert_eq!(threads, threads0, "thread count grew");
    assert!(rss <= rss0 + 4096, "RSS grew from {rss0} KiB to {rss} KiB");
    survivor.kill9();
    survivor.drain();
    assert_eq!(
        survivor
            .seen
            .iter()
            .filter(|l| l.starts_with("RUN"))
            .count(),
        51
    );
    assert!(
        !survivor.seen.iter().any(|l| l.starts_with("BAD")),
        "{:?}",
        survivor.seen
    );
}

#[test]
fn sender_survivor_stays_flat_across_receiver_crashes() {
    let uri = unique("cycles-rx");
    let mut survivor = spawn(&send_args(&uri, "server", "0"));
    survivor.expect("OPEN server", LIVENESS);
    let pid = survivor.pid();
    let mut baseline = None;
    for cycle in 0..20 {
        let mut r = spawn(&recv_args(&uri, "client", "0"));
        r.expect("RUN", LIVENESS);
        if cycle == 1 {
            baseline = Some((fd_count(pid), thread_count(pid), rss_kib(pid)));
        }
        r.kill9();
    }
    // Measure while the last receiver is connected, as the baseline was.
    let mut r = spawn(&recv_args(&uri, "client", "0"));
    r.expect("RUN", LIVENESS);
    let (fds0, threads0, rss0) = baseline.unwrap();
    assert_eq!(fd_count(pid), fds0);
    assert_eq!(thread_count(pid), threads0);
    assert!(rss_kib(pid) <= rss0 + 4096);
    r.kill9();
    r.drain();
    assert!(!r.seen.iter().any(|l| l.starts_with("BAD")), "{:?}", r.seen);
}

#[test]
fn hostile_peer_out_of_range_indices_and_lengths_are_dropped() {
    for (mode, server_cmd) in [("tail", "recv"), ("len", "recv"), ("head", "send")] {
        let uri = unique(&format!("hostile-{mode}"));
        let mut server = spawn(&[
            server_cmd,
            &uri,
            "--role",
            "server",
            "--count",
            "0",
            "--dirs",
            "both",
            "--buffers",
            "4",
            "--buffer-size",
            "4096",
        ]);
        server.expect("OPEN server", LIVENESS);
        let mut h = spawn(&[
            "hostile",
            &uri,
            "--mode",
            mode,
            "--buffers",
            "4",
            "--buffer-size",
            "4096",
        ]);
        h.expect("CONNECTED", LIVENESS);
        let dropped = h.expect("DROPPED", LIVENESS);
        assert!(dropped.contains("eof=true"), "{mode}: {dropped}");
        assert!(h.wait_success());
        // The server is alive and logged why.
        assert!(
            matches!(server.child.try_wait(), Ok(None)),
            "{mode}: server died"
        );
        assert!(
            server.stderr_contains("broke the shared-memory protocol"),
            "{mode}: {}",
            server.stderr()
        );
        // And it keeps serving: a well-behaved peer works afterwards.
        if server_cmd == "recv" {
            let mut args = send_args(&uri, "client", "100");
            args.extend(["--dirs", "both"]);
            let mut s = spawn(&args);
            server.expect("RUN", LIVENESS);
            assert!(s.wait_success());
        } else {
            let mut r = spawn(&[
                "recv",
                &uri,
                "--role",
                "client",
                "--count",
                "100",
                "--dirs",
                "both",
                "--buffers",
                "4",
                "--buffer-size",
                "4096",
            ]);
            r.expect("DONE", LIVENESS);
        }
    }
}

#[test]
fn idle_pair_uses_almost_no_cpu() {
    let uri = unique("idle");
    let mut a = spawn(&["idle", &uri, "--role", "server", "--seconds", "30"]);
    let mut b = spawn(&["idle", &uri, "--role", "client", "--seconds", "30"]);
    a.expect("CONNECTED", LIVENESS);
    b.expect("CONNECTED", LIVENESS);
    assert_idle_pair(&a, &b);
}

/// A peer of another user is refused by default, and accepted when the
/// policy allows it. Needs root to spawn a process as another user.
#[test]
fn other_user_refused_by_default_and_accepted_by_policy() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root to spawn a peer with another uid");
        return;
    }
    let nobody = 65534;
    let copy = PeerCopy::new("peer-other-user");
    let as_nobody = |args: &[&str]| copy.as_user(nobody, args);
    let uri = unique("other-user");
    let mut server = spawn(&["idle", &uri, "--role", "server", "--seconds", "30"]);
    server.expect("OPEN server", LIVENESS);
    let mut client = spawn_cmd(as_nobody(&[
        "idle",
        &uri,
        "--role",
        "client",
        "--seconds",
        "30",
        "--allow-root",
    ]));
    let line = client.expect("STATE refused", LIVENESS);
    assert!(line.contains("access denied"), "{line}");
    // A user the policy does not admit is a third party: its refusal is
    // an event on the server, never the server's state (any local user
    // can connect, so none may set it).
    let line = server.expect("EVENT connection refused", LIVENESS);
    assert!(
        line.contains("access denied") && line.contains("65534"),
        "{line}"
    );
    assert!(
        !server.seen.iter().any(|l| l.starts_with("STATE refused")),
        "{:?}",
        server.seen
    );
    drop(client);
    drop(server);

    let uri = unique("other-user-ok");
    let mut server = spawn(&[
        "idle",
        &uri,
        "--role",
        "server",
        "--seconds",
        "30",
        "--any-user",
    ]);
    server.expect("OPEN server", LIVENESS);
    let mut client = spawn_cmd(as_nobody(&[
        "idle",
        &uri,
        "--role",
        "client",
        "--seconds",
        "30",
        "--allow-root",
    ]));
    client.expect("CONNECTED", LIVENESS);
    server.expect("CONNECTED", LIVENESS);
    // Without --allow-root the unprivileged client refuses the root server.
    let uri = unique("other-user-client-policy");
    let mut server = spawn(&[
        "idle",
        &uri,
        "--role",
        "server",
        "--seconds",
        "30",
        "--any-user",
    ]);
    server.expect("OPEN server", LIVENESS);
    let mut client = spawn_cmd(as_nobody(&[
        "idle",
        &uri,
        "--role",
        "client",
        "--seconds",
        "30",
    ]));
    let line = client.expect("STATE refused", LIVENESS);
    assert!(line.contains("access denied"), "{line}");
}
