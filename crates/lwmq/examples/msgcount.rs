//! Loops of the message hot paths for instruction counts under callgrind
//! (deterministic, unlike timings on a shared machine):
//!
//! ```text
//! cargo build --release -p lwmq --example msgcount
//! valgrind --tool=callgrind target/release/examples/msgcount LOOP N
//! ```
//!
//! Run each loop twice (two values of `N`) and divide the difference of
//! the totals by the difference of the iterations: that is the marginal
//! cost of one iteration, without start-up. The `recv*` loops print the
//! number of messages they received (whole buffers are indexed), to divide
//! by instead of `N`.
//!
//! * `build64`: `Message::new`, `push(Frame::copy(64 B))`, drop;
//! * `post64`: the same plus what a post does to the message on the
//!   direct path (`validate`, the fit check, encoding into a buffer);
//! * `recvSIZE` (`recv64`, `recv6400`, `recv640000`): index a buffer of
//!   SIZE-byte messages (1 MiB, or one message) and copy each one out to
//!   an owned `Message`, as `receive` does.

use std::hint::black_box;

use lwmq::internals::wire::{fits_in_empty_buffer, BufferIndex, BufferWriter, SharedBytes};
use lwmq::message::{Frame, Message};

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(name), Some(Ok(n))) = (args.next(), args.next().map(|n| n.parse::<usize>())) else {
        eprintln!("usage: msgcount build64|post64|recv64|recv6400|recv640000 ITERATIONS");
        std::process::exit(2);
    };
    let payload = [0xabu8; 64];
    let mut buf = vec![0u8; 65536];
    match name.as_str() {
        "build64" => {
            for _ in 0..n {
                let mut m = Message::new();
                m.push(Frame::copy(black_box(&payload)));
                black_box(&m);
            }
        }
        "build4x16" => {
            for _ in 0..n {
                let mut m = Message::new();
                for _ in 0..4 {
                    m.push(Frame::copy(black_box(&payload[..16])));
                }
                black_box(&m);
            }
        }
        "post64" => {
            for _ in 0..n {
                let mut m = Message::new();
                m.push(Frame::copy(black_box(&payload)));
                let m = black_box(m);
                m.validate().unwrap();
                fits_in_empty_buffer(&m, 65536).unwrap();
                let mut w = BufferWriter::new(black_box(&mut buf[..])).unwrap();
                w.try_push(&m).unwrap();
                black_box(w.finish());
                drop(black_box(m));
            }
        }
        other => {
            let Some(Ok(size)) = other.strip_prefix("recv").map(str::parse::<usize>) else {
                eprintln!("unknown loop {other}");
                std::process::exit(2);
            };
            let m = Message::from(vec![0x5au8; size]);
            let mut big = vec![0u8; if size > 100_000 { size + 64 } else { 1 << 20 }];
            let used = {
                let mut w = BufferWriter::new(&mut big[..]).unwrap();
                while w.try_push(&m).is_ok() {}
                w.finish()
            };
            big.truncate(used);
            // SAFETY: `big` outlives the view and nothing writes it meanwhile.
            let view = unsafe { SharedBytes::new(big.as_ptr(), used) };
            let mut index = BufferIndex::new();
            let mut total = 0;
            while total < n {
                index.build(black_box(&view)).unwrap();
                for i in 0..index.len() {
                    black_box(index.message(i).unwrap().to_message(&view));
                    total += 1;
                }
            }
            eprintln!("{total}");
        }
    }
}
