//! The async API on tokio (feature `tokio`), against peers in real
//! processes: this test binary run again as a peer (`peer_process`, with
//! `LWMQ_ASYNC_PEER` set). Timeouts are for liveness only.
//!
//! * 100 channels served by one task each, on a current-thread and on a
//!   multi-thread runtime;
//! * cancellation at every await point loses nothing (sequence-checked):
//!   `receive_async`, `receive_with_async` and the `Stream` raced in
//!   `select!` against a branch that wins whenever the receive has to wait;
//! * the peer's `kill -9` wakes a pending receive with `Disconnected`;
//! * an idle runtime with 100 connected channels uses little CPU;
//! * async posts wait at a queue's limit, and lose nothing when the wait
//!   (`room_async`) is cancelled again and again; they end with `Closed`
//!   when the channel goes away.

use std::process::{Child, Command};
use std::time::Duration;

use lwmq::{Channel, Endpoint, Message, MonoQueue, Priority, ReceiveError, Role, Timeout};

const PATIENCE: Duration = Duration::from_secs(60);
const CHANNELS: usize = 100;

fn base(tag: &str) -> String {
    format!("ipc://lwmq-test/async/{tag}/{}", std::process::id())
}

fn seq(m: &Message) -> u32 {
    let d = m.frame(0).expect("one frame").data();
    u32::from_le_bytes(d[..4].try_into().expect("4 bytes"))
}

/// Starts this test binary as a peer: `mode`, then its arguments.
fn peer(mode: &str, args: &[&str]) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "peer_process", "--nocapture", "--test-threads=1"])
        .env("LWMQ_ASYNC_PEER", [&[mode], args].concat().join(" "))
        .spawn()
        .expect("spawn the peer")
}

fn open(address: &str, role: Role) -> (Channel, MonoQueue) {
    let mut b = Channel::builder()
        .transport(Endpoint::new(address).unwrap())
        .unwrap();
    let q = b.mono_queue(Priority::Normal).unwrap();
    (b.open(role).unwrap(), q)
}

/// The peer side, when this binary runs as one.
#[test]
fn peer_process() {
    let Ok(spec) = std::env::var("LWMQ_ASYNC_PEER") else {
        return; // the ordinary test run
    };
    let args: Vec<&str> = spec.split(' ').collect();
    match args.as_slice() {
        // Sends `count` numbered messages on `channels` channels, checks
        // the echoes, closes.
        ["requests", base, channels, count] => {
            let n: usize = channels.parse().unwrap();
            let count: u32 = count.parse().unwrap();
            let mut chs: Vec<_> = (0..n)
                .map(|i| open(&format!("{base}/{i}"), Role::Client))
                .collect();
            for i in 0..count {
                for (_, q) in &chs {
                    q.post(Message::from(i.to_le_bytes().to_vec()), Timeout::NEVER)
                        .unwrap();
                }
            }
            for (ch, _) in &mut chs {
                for i in 0..count {
                    assert_eq!(seq(&ch.receive(PATIENCE).unwrap()), i);
                }
            }
            for (ch, _) in chs {
                ch.close(PATIENCE).unwrap();
            }
        }
        // Sends `count` numbered messages in bursts with pauses, closes.
        ["stream", address, count] => {
            let count: u32 = count.parse().unwrap();
            let (ch, q) = open(address, Role::Client);
            for i in 0..count {
                q.post(Message::from(i.to_le_bytes().to_vec()), Timeout::NEVER)
                    .unwrap();
                if i % 64 == 63 {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
            ch.close(PATIENCE).unwrap();
        }
        ["idle-server", base] => idle_server(base),
        // Raw channel: echoes `count` buffers back, one at a time.
        ["raw-echo", address, count] => {
            let count: u32 = count.parse().unwrap();
            let ep = Endpoint::new(*address)
                .unwrap()
                .buffer_size(64)
                .send_buffers(2)
                .receive_buffers(2);
            let ch = lwmq::RawChannel::builder()
                .transport(ep)
                .unwrap()
                .open(Role::Client)
                .unwrap();
            let (tx, rx) = (
                ch.sender(lwmq::TransportId(0)).unwrap(),
                ch.receiver(lwmq::TransportId(0)).unwrap(),
            );
            for _ in 0..count {
                let got = rx.receive_buffer(PATIENCE).unwrap().to_vec();
                let mut b = tx.get_buffer(PATIENCE).unwrap();
                b.write(0, &got).unwrap();
                b.send(got.len()).unwrap();
            }
            tx.flush(PATIENCE).unwrap();
        }
        // Receives `count` messages stamped (producer, sequence) from
        // `producers` producers, slowly (a pause every 64), checking each
        // producer's sequence; closes.
        ["sink", address, count, producers] => {
            let count: u32 = count.parse().unwrap();
            let producers: usize = producers.parse().unwrap();
            let (mut ch, _q) = open(address, Role::Client);
            let mut next = vec![0u32; producers];
            for i in 0..count {
                let m = ch.receive(PATIENCE).unwrap();
                let d = m.frame(0).unwrap().data();
                let p = u32::from_le_bytes(d[4..8].try_into().unwrap()) as usize;
                assert_eq!(seq(&m), next[p], "producer {p}: out of sequence");
                next[p] += 1;
                if i % 64 == 63 {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
            assert!(ch.receive(Timeout::ZERO).is_err(), "more than {count}");
            ch.close(PATIENCE).unwrap();
        }
        // Connects one channel to `address` and waits to be killed.
        ["idle-at", address] => {
            let _ch = open(address, Role::Client);
            std::thread::sleep(Duration::from_secs(3600));
        }
        // Connects `channels` channels and waits to be killed.
        ["idle", base, channels] => {
            let n: usize = channels.parse().unwrap();
            let _chs: Vec<_> = (0..n)
                .map(|i| open(&format!("{base}/{i}"), Role::Client))
                .collect();
            std::thread::sleep(Duration::from_secs(3600));
        }
        other => panic!("unknown peer mode {other:?}"),
    }
}

async fn echo(mut ch: Channel, q: MonoQueue, count: u32) -> Channel {
    for i in 0..count {
        let m = ch.receive_async().await.unwrap();
        assert_eq!(seq(&m), i);
        q.post(m, Timeout::ZERO).unwrap();
    }
    tokio::time::timeout(PATIENCE, ch.flush_async())
        .await
        .expect("flush in time")
        .unwrap();
    ch
}

async fn hundred_channels(tag: &str) {
    let base = base(tag);
    let count = 20;
    let tasks: Vec<_> = (0..CHANNELS)
        .map(|i| {
            let (ch, q) = open(&format!("{base}/{i}"), Role::Server);
            tokio::spawn(echo(ch, q, count))
        })
        .collect();
    let child = peer(
        "requests",
        &[&base, &CHANNELS.to_string(), &count.to_string()],
    );
    for t in tasks {
        let ch = tokio::time::timeout(PATIENCE, t).await.unwrap().unwrap();
        assert_eq!(ch.stats().messages_received, u64::from(count));
        drop(ch);
    }
    reap(child).await;
}

#[test]
fn hundred_channels_on_one_current_thread_runtime() {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(hundred_channels("current"));
}

#[test]
fn hundred_channels_on_a_multi_thread_runtime() {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(hundred_channels("multi"));
}

/// Which receive future the cancellation test races.
#[derive(Clone, Copy, Debug)]
enum Way {
    Receive,
    Lending,
    Stream,
}

/// Receives `count` numbered messages, racing each receive against a
/// branch that wins whenever the receive has to wait (a yield) or a
/// short timer: the receive future is dropped at its await point again
/// and again. Every number arrives once, in order.
async fn cancelled_often(tag: &str, way: Way) {
    cancelled_often_at(&format!("{}/{tag}", base("cancel")), way).await;
}

async fn cancelled_often_at(address: &str, way: Way) {
    use futures_core::Stream;
    let (mut ch, _q) = open(address, Role::Server);
    let count = 3000u32;
    let child = peer("stream", &[address, &count.to_string()]);
    let (mut next, mut cancels, mut round) = (0u32, 0u32, 0u32);
    while next < count {
        round += 1;
        let got = match way {
            Way::Receive => tokio::select! {
                biased;
                m = ch.receive_async() => Some(seq(&m.unwrap())),
                _ = loser(round) => None,
            },
            Way::Lending => tokio::select! {
                biased;
                m = ch.receive_with_async(|lent| {
                    let f = lent.frame(0).unwrap();
                    let mut b = [0u8; 4];
                    f.read(0, &mut b);
                    u32::from_le_bytes(b)
                }) => Some(m.unwrap()),
                _ = loser(round) => None,
            },
            Way::Stream => {
                let mut s = ch.messages();
                let next_item = std::future::poll_fn(|cx| std::pin::Pin::new(&mut s).poll_next(cx));
                tokio::select! {
                    biased;
                    m = next_item => Some(seq(&m.unwrap().unwrap())),
                    _ = loser(round) => None,
                }
            }
        };
        match got {
            Some(n) => {
                assert_eq!(n, next, "{way:?}: message out of sequence");
                next += 1;
            }
            None => cancels += 1,
        }
    }
    assert!(cancels > 0, "{way:?}: the other branch never won");
    eprintln!("{way:?}: {count} messages in order, {cancels} receives cancelled");
    reap(child).await;
}

/// Waits for a peer process without blocking the runtime; it must have
/// succeeded.
async fn reap(mut child: Child) {
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "the peer failed: {status}");
}

/// The branch racing the receive: mostly a yield (wins as soon as the
/// receive had to wait once), sometimes a short timer.
async fn loser(round: u32) {
    if round.is_multiple_of(7) {
        tokio::time::sleep(Duration::from_micros(200)).await;
    } else {
        tokio::task::yield_now().await;
    }
}

#[test]
fn cancellation_at_every_await_point_loses_nothing() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(cancelled_often("receive", Way::Receive));
    rt.block_on(cancelled_often("lending", Way::Lending));
    rt.block_on(cancelled_often("stream", Way::Stream));
}

#[test]
fn cancellation_loses_nothing_on_a_multi_thread_runtime() {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(cancelled_often("multi", Way::Receive));
}

/// `kill -9` of the peer process wakes a receive that is waiting, with
/// `Disconnected`.
#[test]
fn peer_crash_wakes_a_pending_receive_with_disconnected() {
    let b = base("crash");
    crash_wakes_a_pending_receive(&format!("{b}/0"), "idle", &[&b, "1"]);
}

/// Opens a server channel at `address`, starts the peer (`mode`, `args`),
/// kills it with `SIGKILL` once connected and while a receive waits: the
/// receive ends with `Disconnected`.
fn crash_wakes_a_pending_receive(address: &str, mode: &str, args: &[&str]) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (mut ch, _q) = open(address, Role::Server);
        let mut child = peer(mode, args);
        ch.wait_connected(PATIENCE).unwrap();
        let pid = child.id();
        let killer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            rustix::process::kill_process(
                rustix::process::Pid::from_raw(pid as i32).unwrap(),
                rustix::process::Signal::KILL,
            )
            .unwrap();
        });
        let got = tokio::time::timeout(PATIENCE, ch.receive_async())
            .await
            .expect("the crash wakes the receive");
        assert_eq!(
            got.unwrap_err(),
            ReceiveError::Disconnected {
                transport: lwmq::TransportId(0)
            }
        );
        killer.await.unwrap();
        let _ = child.wait();
    });
}

/// CPU time (user + system, all threads) of this process so far, from
/// `/proc/self/stat` (in clock ticks).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // The fields after the command name (which is in parentheses).
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    // utime and stime: fields 14 and 15 of the line, 12 and 13 here.
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    let hz = rustix::param::clock_ticks_per_second();
    Duration::from_nanos(ticks * 1_000_000_000 / hz)
}

/// 100 connected channels, a task waiting on each, nothing sent: the
/// process uses less than 2% of a core (a generous bound: a liveness
/// check that nothing spins, not a speed assertion). The server runs in a
/// process of its own (`idle-server`), so that no other test's work is
/// counted; the clients in another.
#[test]
fn idle_runtime_with_a_hundred_channels_uses_little_cpu() {
    let status = peer("idle-server", &[&base("idle")]).wait().unwrap();
    assert!(status.success(), "the idle server failed: {status}");
}

/// The idle server: measures its own CPU time while 100 tasks wait.
fn idle_server(b: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let chs: Vec<_> = (0..CHANNELS)
            .map(|i| open(&format!("{b}/{i}"), Role::Server))
            .collect();
        let mut child = peer("idle", &[b, &CHANNELS.to_string()]);
        let mut tasks = Vec::new();
        for (mut ch, q) in chs {
            ch.wait_connected(PATIENCE).unwrap();
            tasks.push(tokio::spawn(async move {
                let r = ch.receive_async().await;
                (ch, q, r)
            }));
        }
        // Let the tasks reach their wait and the connections settle.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (cpu0, wall0) = (cpu_time(), std::time::Instant::now());
        tokio::time::sleep(Duration::from_secs(3)).await;
        let (cpu, wall) = (cpu_time() - cpu0, wall0.elapsed());
        let share = cpu.as_secs_f64() / wall.as_secs_f64();
        eprintln!(
            "idle: {cpu:?} of CPU in {wall:?} ({:.2}% of a core)",
            share * 100.0
        );
        let _ = child.kill();
        let _ = child.wait();
        for t in tasks {
            let (_ch, _q, r) = tokio::time::timeout(PATIENCE, t).await.unwrap().unwrap();
            assert!(matches!(r, Err(ReceiveError::Disconnected { .. })), "{r:?}");
        }
        assert!(
            share < 0.02,
            "idle channels used {:.2}% of a core",
            share * 100.0
        );
    });
}

/// `examples/async_server.rs` (built by `cargo test` next to this binary)
/// serves its 100 channels and its client process checks every answer.
#[test]
fn the_async_server_example_runs() {
    let deps = std::env::current_exe().unwrap();
    let example = deps
        .parent()
        .and_then(|d| d.parent())
        .map(|d| d.join("examples/async_server"))
        .unwrap();
    assert!(
        example.exists(),
        "{} not built (cargo test builds the examples)",
        example.display()
    );
    let out = Command::new(&example).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("answered 2000 requests on 100 channels"),
        "{stdout}"
    );
}

/// Raw channel, both directions awaited on one task: `get_buffer_async`
/// (a two-slot ring: it waits for the peer to free one) and
/// `receive_buffer_async`, both raced against the losing branch and so
/// dropped at their await points again and again. Every buffer goes out
/// and comes back once, in order.
#[test]
fn raw_async_buffers_survive_cancellation() {
    raw_buffers_survive_cancellation(base("raw"));
}

/// [`raw_async_buffers_survive_cancellation`] over `tcp://` (credits, not
/// a shared ring, free the sender's buffers).
#[test]
fn raw_async_buffers_survive_cancellation_over_tcp() {
    raw_buffers_survive_cancellation(tcp_address());
}

fn raw_buffers_survive_cancellation(address: String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let ep = Endpoint::new(address.as_str())
            .unwrap()
            .buffer_size(64)
            .send_buffers(2)
            .receive_buffers(2);
        let ch = lwmq::RawChannel::builder()
            .transport(ep)
            .unwrap()
            .open(Role::Server)
            .unwrap();
        let (tx, rx) = (
            ch.sender(lwmq::TransportId(0)).unwrap(),
            ch.receiver(lwmq::TransportId(0)).unwrap(),
        );
        let count = 2000u32;
        let child = peer("raw-echo", &[&address, &count.to_string()]);
        let (mut sent, mut got, mut cancels, mut round) = (0u32, 0u32, 0u32, 0u32);
        while got < count {
            round += 1;
            tokio::select! {
                biased;
                b = rx.receive_buffer_async() => {
                    let mut four = [0u8; 4];
                    b.unwrap().read(0, &mut four).unwrap();
                    assert_eq!(u32::from_le_bytes(four), got, "echo out of sequence");
                    got += 1;
                }
                b = tx.get_buffer_async(), if sent < count => {
                    let mut b = b.unwrap();
                    b.write(0, &sent.to_le_bytes()).unwrap();
                    b.send(4).unwrap();
                    sent += 1;
                }
                _ = loser(round) => cancels += 1,
            }
        }
        assert!(cancels > 0);
        eprintln!("raw: {count} buffers out and back in order, {cancels} waits cancelled");
        reap(child).await;
    });
}

/// A message stamped with its sequence number and producer.
fn stamped(seq: u32, producer: u32) -> Message {
    let mut d = seq.to_le_bytes().to_vec();
    d.extend_from_slice(&producer.to_le_bytes());
    Message::from(d)
}

fn runtimes() -> [tokio::runtime::Runtime; 2] {
    [
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap(),
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap(),
    ]
}

/// A mono queue with a high-water mark of 4 and no peer yet: four posts
/// complete, the fifth waits (`room_async` does not complete either).
/// Then a slow peer process receives: the rest are posted with
/// `post_async`, and with `room_async` raced against a branch that wins
/// whenever it has to wait (so the wait is dropped again and again)
/// followed by `try_post`, which never meets the mark after it. The peer
/// checks every number arrives once, in order.
#[test]
fn async_post_waits_at_the_mark_and_cancelling_the_wait_loses_nothing() {
    for (n, rt) in runtimes().into_iter().enumerate() {
        rt.block_on(posts_at_the_mark(n));
    }
}

async fn posts_at_the_mark(n: usize) {
    tokio::time::timeout(PATIENCE, async {
        let address = format!("{}/{n}", base("post-mark"));
        let mut b = Channel::builder()
            .transport(Endpoint::new(address.as_str()).unwrap())
            .unwrap();
        let mut q = b
            .mono_queue(lwmq::QueueOptions::new(Priority::Normal).high_water_mark(4))
            .unwrap();
        let ch = b.open(Role::Server).unwrap();
        for i in 0..4 {
            q.post_async(stamped(i, 0)).await.unwrap();
        }
        tokio::select! {
            biased;
            _ = q.room_async() => panic!("room at the mark with no peer"),
            _ = tokio::task::yield_now() => {}
        }
        let count = 3000u32;
        let child = peer("sink", &[&address, &count.to_string(), "1"]);
        let (mut next, mut cancels, mut round) = (4u32, 0u32, 0u32);
        while next < count {
            round += 1;
            if round % 2 == 0 {
                q.post_async(stamped(next, 0)).await.unwrap();
                next += 1;
                continue;
            }
            tokio::select! {
                biased;
                _ = q.room_async() => {
                    q.try_post(stamped(next, 0)).unwrap();
                    next += 1;
                }
                _ = loser(round) => cancels += 1,
            }
        }
        assert!(cancels > 0, "the wait for room never had to wait");
        eprintln!("post: {count} messages in order, {cancels} waits for room cancelled");
        reap(child).await;
        drop(ch);
    })
    .await
    .expect("the posts and the peer finish in time");
}

/// A multi queue with discard-newest capacity 8, four tasks posting 500
/// messages each with `post_async`: nothing is discarded (an async post
/// waits instead), and the peer gets each task's messages once, in
/// order.
#[test]
fn async_posts_to_a_discard_queue_wait_instead_of_discarding() {
    for (n, rt) in runtimes().into_iter().enumerate() {
        rt.block_on(async {
            let address = format!("{}/{n}", base("post-multi"));
            let mut b = Channel::builder()
                .transport(Endpoint::new(address.as_str()).unwrap())
                .unwrap();
            let q = b
                .multi_queue(lwmq::QueueOptions::new(Priority::Normal).discard_newest(8))
                .unwrap();
            let ch = b.open(Role::Server).unwrap();
            let (producers, each) = (4u32, 500u32);
            let child = peer(
                "sink",
                &[
                    &address,
                    &(producers * each).to_string(),
                    &producers.to_string(),
                ],
            );
            let tasks: Vec<_> = (0..producers)
                .map(|p| {
                    let q = q.clone();
                    tokio::spawn(async move {
                        for i in 0..each {
                            q.post_async(stamped(i, p)).await.unwrap();
                        }
                    })
                })
                .collect();
            for t in tasks {
                tokio::time::timeout(PATIENCE, t).await.unwrap().unwrap();
            }
            assert_eq!(q.discarded(), 0);
            reap(child).await;
            drop(ch);
        });
    }
}

/// A post waiting at the mark when its channel is dropped ends with
/// `Closed`, handing the message back.
#[test]
fn a_waiting_async_post_ends_with_closed_when_the_channel_goes() {
    for rt in runtimes() {
        rt.block_on(async {
            let mut b = Channel::builder()
                .transport(Endpoint::new(base("post-closed").as_str()).unwrap())
                .unwrap();
            let mut q = b
                .mono_queue(lwmq::QueueOptions::new(Priority::Normal).high_water_mark(1))
                .unwrap();
            let ch = b.open(Role::Server).unwrap();
            q.post_async(stamped(0, 0)).await.unwrap();
            let poster = tokio::spawn(async move {
                let r = q.post_async(stamped(1, 0)).await;
                (q, r)
            });
            tokio::task::yield_now().await;
            tokio::task::spawn_blocking(move || drop(ch)).await.unwrap();
            let (_q, r) = tokio::time::timeout(PATIENCE, poster)
                .await
                .expect("the close wakes the post")
                .unwrap();
            match r {
                Err(lwmq::PostError::Closed(m)) => assert_eq!(seq(&m), 1),
                other => panic!("expected Closed, got {other:?}"),
            }
        });
    }
}

/// A `tcp://127.0.0.1:PORT` address whose port was free a moment ago.
fn tcp_address() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("tcp://127.0.0.1:{}", l.local_addr().unwrap().port())
}

/// `tcp://` has a readiness descriptor: an async receive is signalled,
/// not polled (`poll_interval` is `None`, so a missed signal would hang
/// the receive and fail this test at its timeout), and cancelling it at
/// every await point loses nothing.
#[test]
fn tcp_async_receive_is_signalled_and_loses_nothing() {
    for rt in runtimes() {
        rt.block_on(async {
            let address = tcp_address();
            {
                // Waits that are not cancelled: each message after a pause
                // must be signalled.
                let (mut ch, _q) = open(&address, Role::Server);
                assert_eq!(ch.readiness().unwrap().poll_interval(), None);
                let count = 1000u32;
                let child = peer("stream", &[&address, &count.to_string()]);
                tokio::time::timeout(PATIENCE, async {
                    for i in 0..count {
                        assert_eq!(seq(&ch.receive_async().await.unwrap()), i);
                    }
                })
                .await
                .expect("every message in time");
                reap(child).await;
            }
            tokio::time::timeout(PATIENCE, cancelled_often_at(&address, Way::Receive))
                .await
                .expect("every message in time");
        });
    }
}

/// `kill -9` of a `tcp://` peer wakes a pending async receive with
/// `Disconnected`.
#[test]
fn tcp_peer_crash_wakes_a_pending_receive() {
    let address = tcp_address();
    crash_wakes_a_pending_receive(&address, "idle-at", &[&address]);
}
