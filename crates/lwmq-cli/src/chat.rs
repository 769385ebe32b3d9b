//! `lwmq chat URI [--raw] [--latency]`: the MiniChat conversation of the C
//! samples (`examples/c/minichat.c`, `rawchannels.c`), interoperable with
//! them.
//!
//! Protocol, shared with the samples: SERVER first, CLIENT if the address
//! is taken; 64 KiB buffers, 4 and 4. Each side sends "Hello" and waits for
//! the peer's; then every non-empty stdin line is sent and every line
//! received is printed as `peer: <text>`; at the end of stdin an empty
//! message says goodbye, and the command exits once it has heard the
//! peer's. Messaging mode sends one-frame messages (stamped with the
//! precise system time with `--latency`); `--raw` uses a raw channel whose
//! buffers hold an 8-byte little-endian NT timestamp, then the text.
//! `--latency` prints the one-way latency beside each received line.

use std::io::BufRead;
use std::time::Duration;

use lwmq::message::{Frame, Message, NtTime, Timestamp};
use lwmq::{Channel, MonoQueue, Priority, QueueOptions, RawChannel, Timeout, TransportId};

use crate::failure::{emit, Failure};
use crate::peer::{Dirs, RoleArg};
use crate::waiting::{limit, wait_for_peer};

/// Arguments of `lwmq chat`.
#[derive(Debug, clap::Args)]
pub struct ChatArgs {
    /// The descriptor, e.g. `ipc://MiniChat-v1`.
    pub uri: String,
    /// Use a raw channel (buffers with an 8-byte timestamp prefix), as the
    /// `rawchannels` sample does.
    #[arg(long)]
    pub raw: bool,
    /// Stamp messages with the precise system time and print the one-way
    /// latency of each received line.
    #[arg(long)]
    pub latency: bool,
    /// Seconds to wait for a peer before giving up with exit status 1
    /// (default 0: wait forever, as a chat waits for its partner). Waiting
    /// and refusals are shown either way.
    #[arg(long, value_name = "SECS", default_value_t = 0.0, value_parser = crate::waiting::parse_seconds)]
    pub connect_timeout: f64,
}

const BUFFER_SIZE: usize = 64 * 1024;
const STAMP_BYTES: usize = 8;
const LINGER: Duration = Duration::from_secs(5);

fn runtime(e: impl std::fmt::Display) -> Failure {
    Failure::runtime(e.to_string())
}

/// Non-empty stdin lines, without their line ends.
fn stdin_lines() -> impl Iterator<Item = String> {
    std::io::stdin()
        .lock()
        .lines()
        .map_while(Result::ok)
        .map(|l| l.trim_end_matches(['\r', '\n']).to_owned())
        .filter(|l| !l.is_empty())
}

fn show(text: &[u8], stamp: Option<NtTime>, latency: bool) -> Result<(), Failure> {
    let text = String::from_utf8_lossy(text);
    match stamp.filter(|_| latency) {
        Some(t) => {
            let us = NtTime::now()
                .checked_duration_since(t)
                .map_or(0.0, |d| d.as_secs_f64() * 1e6);
            emit(&format!("peer: {text} ({us:.1} us)\n"))
        }
        None => emit(&format!("peer: {text}\n")),
    }
}

/// Runs `lwmq chat`.
pub fn run(a: &ChatArgs) -> Result<(), Failure> {
    if a.raw {
        raw_chat(a)
    } else {
        messaging_chat(a)
    }
}

fn post(q: &MonoQueue, text: &[u8], latency: bool) -> Result<(), Failure> {
    let mut m = Message::new();
    let stamp = if latency {
        Timestamp::PreciseNow
    } else {
        Timestamp::None
    };
    m.push(Frame::copy(text).with_timestamp(stamp));
    q.post(m, Timeout::NEVER).map_err(runtime)
}

/// The first frame of the next message and its timestamp.
fn receive(ch: &mut Channel) -> Result<(Vec<u8>, Option<NtTime>), Failure> {
    let got = ch.receive(Timeout::NEVER).map_err(runtime)?;
    Ok(got
        .frame(0)
        .map_or((Vec::new(), None), |f| (f.data().to_vec(), f.timestamp())))
}

fn messaging_chat(a: &ChatArgs) -> Result<(), Failure> {
    // LwMQ's MiniChat: an unbounded mono queue (a chat never waits).
    let ep = crate::peer::endpoint(&a.uri, BUFFER_SIZE, 4, Dirs::Both, None)?;
    let queue = QueueOptions::new(Priority::Normal).unbounded();
    let (mut ch, q) = crate::thr::open_msg_channel(ep, RoleArg::Auto, Some(queue))?;
    let q = q.ok_or_else(|| Failure::runtime("no send queue"))?;
    eprintln!("lwmq chat: open on {}, waiting for the peer...", a.uri);
    wait_for_peer(crate::thr::first_view(&ch)?, limit(a.connect_timeout))?;
    post(&q, b"Hello", a.latency)?;
    let (hello, _) = receive(&mut ch)?;
    if hello != b"Hello" {
        return Err(Failure::runtime(format!(
            "unexpected handshake {:?}",
            String::from_utf8_lossy(&hello)
        )));
    }
    emit("* peer joined\n")?;
    let latency = a.latency;
    std::thread::scope(|s| -> Result<(), Failure> {
        let reader = s.spawn(move || -> Result<(), Failure> {
            for line in stdin_lines() {
                post(&q, line.as_bytes(), latency)?;
            }
            post(&q, b"", latency)
        });
        loop {
            let (text, stamp) = receive(&mut ch)?;
            if text.is_empty() {
                break;
            }
            show(&text, stamp, latency)?;
        }
        emit("* peer left\n")?;
        reader
            .join()
            .map_err(|_| Failure::runtime("stdin thread panicked"))?
    })?;
    ch.close(LINGER).map_err(runtime)
}

fn raw_chat(a: &ChatArgs) -> Result<(), Failure> {
    let ep = crate::peer::endpoint(&a.uri, BUFFER_SIZE, 4, Dirs::Both, None)?;
    let ch: RawChannel = crate::peer::open_channel(ep, RoleArg::Auto)?;
    eprintln!(
        "lwmq chat: raw channel open on {}, waiting for the peer...",
        a.uri
    );
    wait_for_peer(crate::peer::first_transport(&ch)?, limit(a.connect_timeout))?;
    let latency = a.latency;
    {
        let tx = ch.sender(TransportId(0)).map_err(runtime)?;
        let rx = ch.receiver(TransportId(0)).map_err(runtime)?;
        let send = |tx: &lwmq::RawSender<'_>, text: &[u8]| -> Result<(), Failure> {
            let mut buf = tx.get_buffer(Timeout::NEVER).map_err(runtime)?;
            let len = text.len().min(buf.len().saturating_sub(STAMP_BYTES));
            buf.write(0, &NtTime::now().ticks().to_le_bytes())
                .and_then(|()| buf.write(STAMP_BYTES, &text[..len]))
                .map_err(runtime)?;
            buf.send(STAMP_BYTES + len).map_err(runtime)
        };
        let receive = |rx: &lwmq::RawReceiver<'_>| -> Result<(Vec<u8>, NtTime), Failure> {
            // A private copy: the peer's text is checked and printed.
            let buf = rx.receive_buffer(Timeout::NEVER).map_err(runtime)?.to_vec();
            let Some((stamp, text)) = buf.split_first_chunk::<STAMP_BYTES>() else {
                return Err(Failure::runtime(format!(
                    "short buffer ({} bytes, the 8-byte timestamp is missing)",
                    buf.len()
                )));
            };
            Ok((
                text.to_vec(),
                NtTime::from_ticks(u64::from_le_bytes(*stamp)),
            ))
        };
        send(&tx, b"Hello")?;
        let (hello, _) = receive(&rx)?;
        if hello != b"Hello" {
            return Err(Failure::runtime(format!(
                "unexpected handshake {:?}",
                String::from_utf8_lossy(&hello)
            )));
        }
        emit("* peer joined\n")?;
        std::thread::scope(|s| -> Result<(), Failure> {
            let reader = s.spawn(move || -> Result<(), Failure> {
                for line in stdin_lines() {
                    send(&tx, line.as_bytes())?;
                }
                send(&tx, b"")?;
                tx.flush(Timeout::NEVER).map_err(runtime)
            });
            loop {
                let (text, stamp) = receive(&rx)?;
                if text.is_empty() {
                    break;
                }
                show(&text, Some(stamp), latency)?;
            }
            emit("* peer left\n")?;
            reader
                .join()
                .map_err(|_| Failure::runtime("stdin thread panicked"))?
        })?;
    }
    ch.close();
    Ok(())
}
