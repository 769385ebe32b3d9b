//! Signal storms: both peers install a `SIGUSR1` handler without
//! `SA_RESTART` (`LWMQ_TEST_SIGUSR1`), and the test sends `SIGUSR1` to
//! every thread of both processes, over and over, while the receiver waits
//! for its peer (blocked in `poll`/futex), during the handshake and during
//! a transfer in which the sender keeps finding the ring full. Every
//! blocking call the signals interrupt fails with `EINTR`; nothing may be
//! lost, duplicated or reported as an error.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;

/// Sends `SIGUSR1` to every thread of `pids` until `stop`; counts them.
fn storm(pids: Arc<std::sync::Mutex<Vec<u32>>>, stop: Arc<AtomicBool>, sent: Arc<AtomicU64>) {
    while !stop.load(Ordering::Relaxed) {
        let list = pids.lock().unwrap().clone();
        for pid in list {
            let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
                continue;
            };
            for t in tasks.flatten() {
                let Some(tid) = t.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                    continue;
                };
                // SAFETY: tgkill takes plain integers; a thread that has
                // exited in the meantime makes it fail with ESRCH, nothing
                // else. The pid belongs to our own child (not reaped while
                // the storm runs), so it cannot be reused.
                let rc = unsafe { libc::syscall(libc::SYS_tgkill, pid as i32, tid, libc::SIGUSR1) };
                if rc == 0 {
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn with_handler(exe: &str, args: &[&str]) -> Peer {
    let mut c = Command::new(exe);
    c.args(args).env("LWMQ_TEST_SIGUSR1", "1");
    spawn_cmd(c)
}

fn signals_seen(p: &mut Peer) -> u64 {
    let l = p.expect("SIGNALS", LIVENESS);
    l.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn signal_storm_during_waits_handshake_and_transfer_loses_nothing() {
    const N: &str = "100000";
    let msg = env!("CARGO_BIN_EXE_lwmq-msg-peer");
    let raw = env!("CARGO_BIN_EXE_lwmq-peer");
    for kind in ["messaging", "raw"] {
        let uri = unique(&format!("signals-{kind}"));
        let (recv_args, send_args): (Vec<&str>, Vec<&str>) = if kind == "messaging" {
            (
                vec!["recv", &uri, "server", N],
                vec!["send", &uri, "client", N, "100"],
            )
        } else {
            (
                vec![
                    "recv",
                    &uri,
                    "--role",
                    "server",
                    "--count",
                    N,
                    "--buffers",
                    "2",
                ],
                vec![
                    "send",
                    &uri,
                    "--role",
                    "client",
                    "--count",
                    N,
                    "--buffers",
                    "2",
                ],
            )
        };
        let exe = if kind == "messaging" { msg } else { raw };
        let pids = Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let mut receiver = with_handler(exe, &recv_args);
        receiver.expect("OPEN server", LIVENESS);
        pids.lock().unwrap().push(receiver.pid());
        let stormer = {
            let (p, s, n) = (pids.clone(), stop.clone(), sent.clone());
            std::thread::spawn(move || storm(p, s, n))
        };
        // The receiver waits for a peer under the storm...
        std::thread::sleep(Duration::from_millis(300));
        // ...then the sender connects and streams under it too.
        let mut sender = with_handler(exe, &send_args);
        // Only once its handler is installed (before `OPEN`): until then
        // SIGUSR1 would kill it.
        sender.expect("OPEN client", LIVENESS);
        pids.lock().unwrap().push(sender.pid());
        let done = receiver.expect("DONE", LIVENESS * 4);
        sender.expect(&format!("SENT {N}"), LIVENESS);
        let (rx_signals, tx_signals) = (signals_seen(&mut receiver), signals_seen(&mut sender));
        stop.store(true, Ordering::Relaxed);
        stormer.join().unwrap();
        assert!(receiver.wait_success(), "{kind}: {}", receiver.stderr());
        assert!(sender.wait_success(), "{kind}: {}", sender.stderr());
        eprintln!(
            "{kind}: {} signals sent; handled: receiver {rx_signals}, sender {tx_signals}; {done}",
            sent.load(Ordering::Relaxed)
        );
        assert_eq!(
            done,
            format!("DONE received={N} bad=0 dup=0 gaps=0 runs=1"),
            "{kind}"
        );
        assert!(rx_signals > 0 && tx_signals > 0, "{kind}: the storm missed");
        for p in [&receiver, &sender] {
            let err = p.stderr();
            assert!(
                !err.contains("[ERROR]") && !err.contains("Interrupted"),
                "{kind}: {err}"
            );
        }
    }
}
