//! Raw buffers between two processes: no messages, no queues; the writer
//! fills transport buffers and the reader reads them where they arrived.
//!
//! ```text
//! cargo run -p lwmq --example raw_buffers -- reader ipc://example/raw 100
//! cargo run -p lwmq --example raw_buffers -- writer ipc://example/raw 100
//! ```
//!
//! Each buffer holds a little-endian `u32` sequence number, a `u32` length,
//! then that many bytes of `b'a' + seq % 26`. The writer keeps up to 4
//! buffers out at once and sends them in the order obtained; the reader
//! copies each header out (`read`) and checks the body, then gives the
//! buffer back. The buffers may be in memory the other process can write,
//! so the example copies bytes out rather than borrowing them.

use std::time::Duration;

use lwmq::{Endpoint, RawChannel, Role, TransportId};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const PATIENCE: Duration = Duration::from_secs(30);
const BUFFER_SIZE: usize = 4096;
const HEADER: usize = 8;

fn body_len(seq: u32) -> usize {
    (seq as usize * 37) % (BUFFER_SIZE - HEADER)
}

fn writer(address: &str, count: u32) -> Result<(), BoxError> {
    let ep = Endpoint::new(address)?
        .buffer_size(BUFFER_SIZE)
        .send_buffers(4)
        .receive_buffers(0); // send only
    let ch = RawChannel::builder().transport(ep)?.open(Role::Client)?;
    let tx = ch.sender(TransportId(0))?;
    let mut seq = 0;
    while seq < count {
        // Several buffers out at once: fill up to 4, then send them in the
        // order they were obtained.
        let mut out = Vec::new();
        while out.len() < 4 && seq < count {
            let mut b = tx.get_buffer(PATIENCE)?;
            let len = body_len(seq);
            b.write(0, &seq.to_le_bytes())?;
            b.write(4, &(len as u32).to_le_bytes())?;
            b.write(HEADER, &vec![b'a' + (seq % 26) as u8; len])?;
            out.push((b, HEADER + len));
            seq += 1;
        }
        for (b, len) in out {
            b.send(len).map_err(|e| e.into_error())?;
        }
    }
    // Until the reader has taken every buffer.
    tx.flush(PATIENCE)?;
    println!("writer: sent {count}");
    Ok(())
}

fn reader(address: &str, count: u32) -> Result<(), BoxError> {
    let ep = Endpoint::new(address)?
        .buffer_size(BUFFER_SIZE)
        .send_buffers(0) // receive only
        .receive_buffers(4);
    let ch = RawChannel::builder().transport(ep)?.open(Role::Server)?;
    println!("reader: listening on {address}");
    let rx = ch.receiver(TransportId(0))?;
    for want in 0..count {
        let b = rx.receive_buffer(PATIENCE)?;
        let mut header = [0u8; HEADER];
        b.read(0, &mut header)?;
        let seq = u32::from_le_bytes(header[..4].try_into()?);
        let len = u32::from_le_bytes(header[4..].try_into()?) as usize;
        if seq != want || len != body_len(seq) || b.len() != HEADER + len {
            return Err(format!(
                "reader: buffer {want}: header {seq}/{len}, {} bytes",
                b.len()
            )
            .into());
        }
        let mut body = vec![0u8; len];
        b.read(HEADER, &mut body)?;
        if body.iter().any(|&c| c != b'a' + (seq % 26) as u8) {
            return Err(format!("reader: buffer {seq}: body corrupted").into());
        }
        // Dropping the guard gives the buffer back to the writer.
    }
    println!("reader: received {count}, all intact");
    Ok(())
}

/// Runs the example with its command-line arguments.
pub fn run(args: &[String]) -> Result<(), BoxError> {
    match args {
        [role, address, count] if role == "writer" => writer(address, count.parse()?),
        [role, address, count] if role == "reader" => reader(address, count.parse()?),
        _ => Err("usage: raw_buffers writer|reader ADDRESS COUNT".into()),
    }
}

#[allow(dead_code)]
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = run(&args) {
        eprintln!("raw_buffers: {e}");
        std::process::exit(1);
    }
}
