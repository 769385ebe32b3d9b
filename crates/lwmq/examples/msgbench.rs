//! Micro-benchmarks of the message hot path. Run with
//! `cargo run --release --example msgbench`.

use std::hint::black_box;
use std::time::Instant;

use lwmq::message::{Message, Timestamp};
use lwmq::wire::{BufferReader, BufferWriter};

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

    time("create + push_copy(64 B) + drop", n, || {
        let mut m = Message::new();
        m.push_copy(black_box(&payload), Timestamp::None).unwrap();
        black_box(&m);
    });
    time(
        "create + push_copy(64 B, PreciseSystemTime) + drop",
        n,
        || {
            let mut m = Message::new();
            m.push_copy(black_box(&payload), Timestamp::PreciseSystemTime)
                .unwrap();
            black_box(&m);
        },
    );
    time("create + push_copy(1000 B) + drop", n, || {
        let mut m = Message::new();
        m.push_copy(black_box(&[1u8; 1000]), Timestamp::None)
            .unwrap();
        black_box(&m);
    });
    time("create + 4 x push_copy(16 B) + drop", n, || {
        let mut m = Message::new();
        for _ in 0..4 {
            m.push_copy(black_box(&payload[..16]), Timestamp::None)
                .unwrap();
        }
        black_box(&m);
    });

    let mut msg = Message::new();
    msg.push_copy(&payload, Timestamp::None).unwrap();
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
    big.push_copy(&[7u8; 6400], Timestamp::None).unwrap();
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
}
