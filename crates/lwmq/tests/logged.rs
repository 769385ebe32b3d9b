//! What lwmq logs, checked with a logger that keeps every line: a dropped
//! channel's lost messages (after its linger), and a busy server's
//! refusals, which the `ipc://` log limiter holds to one line per window.

mod channel_common;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use channel_common::*;
use lwmq::{
    Channel, ChannelBuilder, CloseError, Endpoint, Priority, QueueOptions, ReceiveQueue, Role,
    Timeout,
};

/// Every line logged at `warn` or above, by any test of this binary.
static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Keep;

impl log::Log for Keep {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Warn
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            LINES.lock().unwrap().push(r.args().to_string());
        }
    }
    fn flush(&self) {}
}

fn install() {
    static KEEP: Keep = Keep;
    let _ = log::set_logger(&KEEP);
    log::set_max_level(log::LevelFilter::Warn);
}

/// Lines that contain every one of `words`.
fn lines_with(words: &[&str]) -> Vec<String> {
    LINES
        .lock()
        .unwrap()
        .iter()
        .filter(|l| words.iter().all(|w| l.contains(w)))
        .cloned()
        .collect()
}

fn send_only(uri: &str) -> ChannelBuilder {
    Channel::builder()
        .transport(Endpoint::new(uri).unwrap().receive_buffers(0))
        .unwrap()
}

#[test]
fn dropping_a_channel_lingers_then_counts_and_logs_what_is_lost() {
    install();
    // No peer: the linger runs out, the messages are dropped and logged.
    let linger = Duration::from_millis(200);
    let mut b = send_only(&unique("drop-lost")).linger(linger);
    let q = b.mono_queue(Priority::Normal).unwrap();
    let ch = b.open(Role::Server).unwrap();
    for n in 0..7 {
        q.post(numbered(n), Timeout::ZERO).unwrap();
    }
    let start = Instant::now();
    drop(ch);
    assert!(
        start.elapsed() >= linger,
        "drop did not wait for its linger"
    );
    let lost = lines_with(&["channel dropped with 7 messages", "lost"]);
    assert_eq!(lost.len(), 1, "{lost:?}");

    // A peer that arrives within the linger gets everything: nothing lost.
    let uri = unique("drop-delivered");
    let mut b = send_only(&uri).linger(LIVENESS);
    let q = b.mono_queue(Priority::Normal).unwrap();
    let ch = b.open(Role::Server).unwrap();
    for n in 0..100 {
        q.post(numbered(n), Timeout::ZERO).unwrap();
    }
    let peer_uri = uri.clone();
    let peer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        let mut rx = Channel::builder()
            .transport(Endpoint::new(peer_uri).unwrap().send_buffers(0))
            .unwrap()
            .open(Role::Client)
            .unwrap();
        (0..100).map(|_| number(&recv(&mut rx))).collect::<Vec<_>>()
    });
    drop(ch);
    assert_eq!(peer.join().unwrap(), (0..100).collect::<Vec<_>>());
    assert!(lines_with(&["channel dropped with 100"]).is_empty());
}

#[test]
fn close_reports_the_loss_as_a_value_with_the_final_counters() {
    install();
    let mut b = send_only(&unique("close-lost"));
    let q = b.multi_queue(Priority::Normal).unwrap();
    let ch = b.open(Role::Server).unwrap();
    for n in 0..5 {
        q.post(numbered(n), Timeout::ZERO).unwrap();
    }
    let (stats, r) = ch.close_with_stats(Duration::from_millis(20));
    assert_eq!(r, Err(CloseError::Unsent { lost: 5 }));
    assert_eq!(stats.lost_on_close, 5);
    assert!(r.unwrap_err().to_string().contains("5 messages"));
    // close logs nothing: the caller has the value.
    assert!(lines_with(&["dropped with 5"]).is_empty());
}

#[test]
fn a_busy_servers_refusals_are_logged_once_per_window() {
    install();
    let uri = unique("busy");
    let (server, _sq) = endpoint(
        &uri,
        Role::Server,
        4096,
        QueueOptions::default(),
        ReceiveQueue::default(),
    );
    let (first, _fq) = endpoint(
        &uri,
        Role::Client,
        4096,
        QueueOptions::default(),
        ReceiveQueue::default(),
    );
    wait_connected(&first);
    let start = Instant::now();
    // A second client retrying every millisecond is refused `Busy` each time.
    let mut b = Channel::builder()
        .transport(ep(&uri, 4096).retry_interval(Duration::from_millis(1)))
        .unwrap();
    let _q = b.mono_queue(Priority::Normal).unwrap();
    let second = b.open(Role::Client).unwrap();
    let t = second.transports().next().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while t.stats().refusals < 20 {
        assert!(Instant::now() < deadline, "{:?}", t.stats());
        std::thread::sleep(Duration::from_millis(1));
    }
    let windows = 1 + start.elapsed().as_secs() / 10;
    let server_side = lines_with(&["server already has a peer", "we refused the peer"]);
    let client_side = lines_with(&["server already has a peer", "peer refused us"]);
    assert!(
        !server_side.is_empty() && server_side.len() as u64 <= windows,
        "{server_side:?}"
    );
    assert!(
        !client_side.is_empty() && client_side.len() as u64 <= windows,
        "{client_side:?}"
    );
    drop((second, first, server));
}
