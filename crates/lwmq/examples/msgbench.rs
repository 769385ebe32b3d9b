//! Micro-benchmarks of the message hot path. Run with
//! `cargo run --release --example msgbench`.

use std::hint::black_box;
use std::time::Instant;

use lwmq::internals::wire::{
    validate_buffer, BufferIndex, BufferReader, BufferWriter, SharedBytes,
};
use lwmq::message::{Frame, Message, Timestamp};

/// Runs `f` `iters` times, five rounds, and prints the best mean. An
/// optional command-line argument selects the benchmarks whose name contains
/// it (for `perf record`).
fn time(name: &str, iters: u64, mut f: impl FnMut()) {
    if let Some(filter) = std::env::args().nth(1) {
        if !name.contains(&filter) {
            return;
        }
    }
    for _ in 0..iters / 10 {
        f();
    }
    let mut best = f64::MAX;
    for _ in 0..5 {
        let start = Instant::now();
        for _ in 0..iters {
            f();
        }
        best = best.min(start.elapsed().as_nanos() as f64 / iters as f64);
    }
    println!("{name:<58} {best:>7.1} ns");
}

fn main() {
    let payload = [0xabu8; 64];
    let n = 5_000_000;

    time("create + push(copy 64 B) + drop", n, || {
        let mut m = Message::new();
        m.push(Frame::copy(black_box(&payload)));
        black_box(&m);
    });
    time("create + push(copy 64 B, PreciseNow) + drop", n, || {
        let mut m = Message::new();
        m.push(Frame::copy(black_box(&payload)).with_timestamp(Timestamp::PreciseNow));
        black_box(&m);
    });
    time("create + push(copy 1000 B) + drop", n, || {
        let mut m = Message::new();
        m.push(Frame::copy(black_box(&[1u8; 1000])));
        black_box(&m);
    });
    time("create + 4 x push(copy 16 B) + drop", n, || {
        let mut m = Message::new();
        for _ in 0..4 {
            m.push(Frame::copy(black_box(&payload[..16])));
        }
        black_box(&m);
    });

    let mut msg = Message::new();
    msg.push(Frame::copy(&payload));
    time("share + drop", n, || {
        black_box(black_box(&mut msg).share());
    });

    let mut buf = vec![0u8; 65536];
    time(
        "encode one 64 B message (new + try_push + finish)",
        n,
        || {
            let mut w = BufferWriter::new(black_box(&mut buf[..])).unwrap();
            w.try_push(black_box(&msg)).unwrap();
            black_box(w.finish());
        },
    );
    time(
        "club 64 B messages into 64 KiB buffer, per message",
        20_000,
        || {
            let mut w = BufferWriter::new(black_box(&mut buf[..])).unwrap();
            while w.try_push(black_box(&msg)).is_ok() {}
            black_box(w.finish());
        },
    );
    let per_buffer = {
        let mut w = BufferWriter::new(&mut buf[..]).unwrap();
        while w.try_push(&msg).is_ok() {}
        w.message_count()
    };
    println!("  ({per_buffer} messages per 64 KiB buffer: divide the line above by it)");

    let used = {
        let mut w = BufferWriter::new(&mut buf[..]).unwrap();
        w.try_push(&msg).unwrap();
        w.finish()
    };
    let one = buf[..used].to_vec();
    time("decode one 64 B message (new + next + drop)", n, || {
        let mut r = BufferReader::new(black_box(&one)).unwrap();
        black_box(r.next().unwrap().unwrap());
    });
    time(
        "visit one 64 B message without allocating (next_raw)",
        n,
        || {
            let mut r = BufferReader::new(black_box(&one)).unwrap();
            let raw = r.next_raw().unwrap().unwrap();
            black_box(raw.frames().next());
        },
    );

    let used = {
        let mut w = BufferWriter::new(&mut buf[..]).unwrap();
        while w.try_push(&msg).is_ok() {}
        w.finish()
    };
    let full = buf[..used].to_vec();
    time("decode full 64 KiB buffer of 64 B messages", 20_000, || {
        for m in BufferReader::new(black_box(&full)).unwrap() {
            black_box(m.unwrap());
        }
    });
    let mut big = Message::new();
    big.push(Frame::copy(&[7u8; 6400]));
    let used = {
        let mut w = BufferWriter::new(&mut buf[..]).unwrap();
        w.try_push(&big).unwrap();
        w.finish()
    };
    let one_big = buf[..used].to_vec();
    time("encode one 6400 B message", n / 5, || {
        let mut w = BufferWriter::new(black_box(&mut buf[..])).unwrap();
        w.try_push(black_box(&big)).unwrap();
        black_box(w.finish());
    });
    time("decode one 6400 B message", n / 5, || {
        let mut r = BufferReader::new(black_box(&one_big)).unwrap();
        black_box(r.next().unwrap().unwrap());
    });

    receive_paths();
}

/// The receive path's ways of reading a whole received buffer, per
/// message, for 1 MiB buffers of 64 B and 6,400 B messages and a buffer
/// of one 640,000 B message (one process, so the buffer is in this core's
/// cache: this is the CPU work, not the transfer between cores):
///
/// * `index`: what the receive path does, one read of the structure into
///   a `BufferIndex` through a `SharedBytes` view, then each message
///   copied out (`owned`) or each frame read out through the view in
///   4 KiB chunks as `lwmq thr recv --lend` does (`lent`);
/// * `private copy`: the alternative not chosen, the whole buffer copied
///   into private memory first, then the same;
/// * `validate + decode`: two passes over private bytes
///   (`validate_buffer`, then `BufferReader`), the shape of the receive
///   path before the index (a double fetch is harmless on private bytes).
fn receive_paths() {
    for (size, count, rounds) in [(64, 0, 200), (6400, 0, 200), (640_000, 1, 400)] {
        let mut m = Message::new();
        m.push(Frame::copy(&vec![0x5au8; size]));
        let mut buf = vec![0u8; if count == 1 { size + 64 } else { 1 << 20 }];
        let used = {
            let mut w = BufferWriter::new(&mut buf[..]).unwrap();
            while w.try_push(&m).is_ok() {}
            w.finish()
        };
        buf.truncate(used);
        let n = validate_buffer(&buf).unwrap() as usize;
        let mut index = BufferIndex::new();
        let mut private = vec![0u8; used];
        let mut chunk = vec![0u8; 4096];
        // SAFETY: `buf` outlives the view and nothing writes it meanwhile.
        let view = unsafe { SharedBytes::new(buf.as_ptr(), used) };
        let per = |name: &str, f: &mut dyn FnMut()| {
            time_per(
                &format!("receive {size} B ({n}/buffer): {name}"),
                rounds,
                n,
                f,
            )
        };
        per("index, owned", &mut || {
            index.build(black_box(&view)).unwrap();
            for i in 0..index.len() {
                black_box(index.message(i).unwrap().to_message(&view));
            }
        });
        per("private copy + index, owned", &mut || {
            view.read(0, &mut private);
            index.build(black_box(&private[..])).unwrap();
            for i in 0..index.len() {
                black_box(index.message(i).unwrap().to_message(&private[..]));
            }
        });
        per("validate + decode, owned", &mut || {
            validate_buffer(black_box(&buf)).unwrap();
            for m in BufferReader::new(&buf).unwrap() {
                black_box(m.unwrap());
            }
        });
        // Lent: each frame's bytes compared with what was sent, as `lwmq
        // thr recv --lend` does.
        let expected = vec![0x5au8; size];
        per("index, lent (checked in 4 KiB chunks)", &mut || {
            index.build(black_box(&view)).unwrap();
            for i in 0..index.len() {
                for f in index.message(i).unwrap().frames() {
                    let frame = view.slice(f.start, f.len).unwrap();
                    let mut at = 0;
                    while at < f.len {
                        let got = frame.read(at, &mut chunk);
                        assert!(chunk[..got] == expected[at..at + got]);
                        at += got;
                    }
                }
            }
        });
        per(
            "index, lent (checked in place, unsafe as_slice)",
            &mut || {
                index.build(black_box(&view)).unwrap();
                for i in 0..index.len() {
                    for f in index.message(i).unwrap().frames() {
                        let frame = view.slice(f.start, f.len).unwrap();
                        // SAFETY: nothing writes `buf` while the slice is used.
                        assert!(unsafe { frame.as_slice() } == &expected[..]);
                    }
                }
            },
        );
        per(
            "private copy + index, lent (checked in the copy)",
            &mut || {
                view.read(0, &mut private);
                index.build(black_box(&private[..])).unwrap();
                for i in 0..index.len() {
                    for f in index.message(i).unwrap().frames() {
                        assert!(private[f.start..f.start + f.len] == expected[..]);
                    }
                }
            },
        );
    }
}

/// [`time`] for a call that handles `per` messages: prints the best mean
/// per message.
fn time_per(name: &str, iters: u64, per: usize, f: &mut dyn FnMut()) {
    if let Some(filter) = std::env::args().nth(1) {
        if !name.contains(&filter) {
            return;
        }
    }
    for _ in 0..iters / 10 {
        f();
    }
    let mut best = f64::MAX;
    for _ in 0..5 {
        let start = Instant::now();
        for _ in 0..iters {
            f();
        }
        best = best.min(start.elapsed().as_nanos() as f64 / iters as f64 / per as f64);
    }
    println!("{name:<58} {best:>7.1} ns");
}
