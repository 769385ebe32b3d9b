//! A fault-injecting TCP proxy on 127.0.0.1 for the `tcp://` tests.
//!
//! [`Proxy::start`] listens on an ephemeral port and forwards every
//! connection to the target, one thread per direction reading and one
//! writing, joined by a queue of timestamped chunks. Faults can be set at
//! any time:
//!
//! * [`Proxy::set_delay`]: every chunk is written `d` after it was read
//!   (latency without loss);
//! * [`Proxy::set_bandwidth`]: writes are paced to a byte rate;
//! * [`Proxy::stall`]: the connections open now stop moving bytes in both
//!   directions (no more reads, no more writes) while both of their sockets
//!   stay open: to the endpoints this is a peer whose host vanished or a
//!   cable pulled; connections made afterwards are forwarded normally;
//! * [`Proxy::cut`]: the connections open now are closed with a reset
//!   (`SO_LINGER` 0) on both sides.
//!
//! Nothing here is timing-critical: it only has to be slower or more
//! broken than the network, never faster.

use std::collections::VecDeque;
use std::io::{Read, Write};

use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// One proxied connection's shared flags.
#[derive(Debug, Default)]
struct Link {
    stalled: AtomicBool,
    cut: AtomicBool,
}

#[derive(Debug, Default)]
struct Shared {
    delay_us: AtomicU64,
    /// Bytes per second; 0 = unlimited.
    rate: AtomicU64,
    links: Mutex<Vec<(Arc<Link>, TcpStream, TcpStream)>>,
    accepted: AtomicU64,
    stop: AtomicBool,
}

/// A running proxy (stops when dropped).
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Proxy {
    /// Listens on 127.0.0.1 (ephemeral port) and forwards to `target`.
    pub fn start(target: SocketAddr) -> Proxy {
        let l = TcpListener::bind("127.0.0.1:0").expect("proxy bind");
        let addr = l.local_addr().expect("proxy addr");
        let shared = Arc::new(Shared::default());
        let sh = Arc::clone(&shared);
        std::thread::spawn(move || {
            l.set_nonblocking(true).expect("nonblocking");
            while !sh.stop.load(Ordering::Acquire) {
                match l.accept() {
                    Ok((client, _)) => {
                        let _ = client.set_nonblocking(false);
                        let Ok(server) =
                            TcpStream::connect_timeout(&target, Duration::from_secs(5))
                        else {
                            continue;
                        };
                        let _ = client.set_nodelay(true);
                        let _ = server.set_nodelay(true);
                        sh.accepted.fetch_add(1, Ordering::Relaxed);
                        let link = Arc::new(Link::default());
                        sh.links.lock().unwrap().push((
                            Arc::clone(&link),
                            client.try_clone().expect("clone"),
                            server.try_clone().expect("clone"),
                        ));
                        pump(
                            &sh,
                            &link,
                            client.try_clone().expect("clone"),
                            server.try_clone().expect("clone"),
                        );
                        pump(&sh, &link, server, client);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Proxy { addr, shared }
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `tcp://127.0.0.1:PORT` of the proxy.
    pub fn uri(&self) -> String {
        format!("tcp://{}", self.addr)
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::Relaxed)
    }

    /// Delays every chunk by `d` (0: none).
    pub fn set_delay(&self, d: Duration) {
        self.shared
            .delay_us
            .store(d.as_micros() as u64, Ordering::Relaxed);
    }

    /// Paces writes to `bytes_per_sec` in each direction (0: unlimited).
    pub fn set_bandwidth(&self, bytes_per_sec: u64) {
        self.shared.rate.store(bytes_per_sec, Ordering::Relaxed);
    }

    /// Stops every connection open now from moving bytes, sockets kept
    /// open (see the module docs). Returns how many were stalled.
    pub fn stall(&self) -> usize {
        let links = self.shared.links.lock().unwrap();
        for (l, ..) in links.iter() {
            l.stalled.store(true, Ordering::Release);
        }
        links.len()
    }

    /// Resets every connection open now (RST to both endpoints). Returns
    /// how many were cut.
    pub fn cut(&self) -> usize {
        let mut links = self.shared.links.lock().unwrap();
        let n = links.len();
        for (l, a, b) in links.drain(..) {
            l.cut.store(true, Ordering::Release);
            for s in [&a, &b] {
                let _ = rustix::net::sockopt::set_socket_linger(s, Some(Duration::ZERO));
            }
            // Closing with a zero linger sends RST; the pump threads hold
            // clones, so shut them down too (their close then resets).
            drop(a);
            drop(b);
        }
        n
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        let mut links = self.shared.links.lock().unwrap();
        for (l, a, b) in links.drain(..) {
            l.cut.store(true, Ordering::Release);
            let _ = a.shutdown(Shutdown::Both);
            let _ = b.shutdown(Shutdown::Both);
        }
    }
}

/// Forwards `from` → `to` with the proxy's faults: a reader thread and a
/// writer thread joined by a queue.
fn pump(sh: &Arc<Shared>, link: &Arc<Link>, mut from: TcpStream, mut to: TcpStream) {
    let queue = Arc::new((
        Mutex::new((VecDeque::<(Instant, Vec<u8>)>::new(), false)),
        Condvar::new(),
    ));
    let (q, l) = (Arc::clone(&queue), Arc::clone(link));
    let _ = from.set_read_timeout(Some(Duration::from_millis(20)));
    let _ = to.set_write_timeout(Some(Duration::from_millis(20)));
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            if l.cut.load(Ordering::Acquire) {
                break;
            }
            if l.stalled.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let (m, cv) = &*q;
                    m.lock()
                        .unwrap()
                        .0
                        .push_back((Instant::now(), buf[..n].to_vec()));
                    cv.notify_one();
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::Interrupted
                    ) => {}
                Err(_) => break,
            }
        }
        let (m, cv) = &*q;
        m.lock().unwrap().1 = true;
        cv.notify_one();
    });
    let (sh, l) = (Arc::clone(sh), Arc::clone(link));
    std::thread::spawn(move || loop {
        let (m, cv) = &*queue;
        let mut g = m.lock().unwrap();
        while g.0.is_empty() && !g.1 {
            g = cv.wait_timeout(g, Duration::from_millis(20)).unwrap().0;
            if l.cut.load(Ordering::Acquire) {
                return;
            }
        }
        let Some((at, chunk)) = g.0.pop_front() else {
            // The reader ended: pass the end on.
            let _ = to.shutdown(Shutdown::Write);
            return;
        };
        drop(g);
        let delay = Duration::from_micros(sh.delay_us.load(Ordering::Relaxed));
        let due = at + delay;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let mut rest = &chunk[..];
        while !rest.is_empty() {
            while l.stalled.load(Ordering::Acquire) && !l.cut.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(20));
            }
            if l.cut.load(Ordering::Acquire) {
                return;
            }
            let rate = sh.rate.load(Ordering::Relaxed);
            let n = if rate == 0 {
                rest.len()
            } else {
                rest.len().min(4096)
            };
            let n = match to.write(&rest[..n]) {
                Ok(0) => return,
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::Interrupted
                    ) =>
                {
                    continue
                }
                Err(_) => return,
            };
            if rate > 0 {
                std::thread::sleep(Duration::from_secs_f64(n as f64 / rate as f64));
            }
            rest = &rest[n..];
        }
    });
}
