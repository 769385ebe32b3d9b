//! Fuzz target: both ends of a ring over a shared section whose control
//! block and slot headers hold arbitrary bytes, rewritten by the "peer" as
//! the steps go on. The consumer holds several slots and gives them back in
//! any order; the producer reserves several and publishes some discarded. Reported violations are fine (the real transport drops
//! the connection on one); a panic, an out-of-bounds access or a hang is a
//! finding.
//!
//! Input: `[capacity, size lo, size hi, steps, ops...]`, the op bytes
//! doubling as the peer's data.
#![no_main]

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use lwmq::internals::ring::{Consumer, Fences, Producer, RingLayout, CTRL_SIZE, HEAD, SLOT_HEADER, TAIL};
use lwmq::internals::sys::shm::{self, Mapping};

const MAX_CAPACITY: u32 = 8;
const MAX_BUFFER: usize = 512;
const LEN: usize = 16 * 4096;

/// One real memfd mapping, reused (zeroed) by every run.
fn section() -> Arc<Mapping> {
    static SECTION: OnceLock<(std::os::fd::OwnedFd, Arc<Mapping>)> = OnceLock::new();
    let (_fd, map) = SECTION.get_or_init(|| {
        let (fd, map) = shm::create("lwmq-fuzz-ring", LEN).expect("memfd");
        (fd, Arc::new(map))
    });
    Arc::clone(map)
}

fn word(data: &[u8], i: usize) -> u32 {
    let b = |k: usize| data.get((i + k) % data.len().max(1)).copied().unwrap_or(0);
    u32::from_le_bytes([b(0), b(1), b(2), b(3)])
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let capacity = 1 + u32::from(data[0]) % MAX_CAPACITY;
    let buffer_size = 1 + usize::from(u16::from_le_bytes([data[1], data[2]])) % MAX_BUFFER;
    let steps = usize::from(data[3]) % 64;
    let ops = &data[4..];
    let l = RingLayout {
        ctrl: 0,
        slots: CTRL_SIZE,
        capacity,
        buffer_size,
    };
    let map = section();
    let end = CTRL_SIZE + RingLayout::slot_bytes(capacity, buffer_size).unwrap();
    assert!(l.fits(map.len()) && end <= LEN);
    // The peer's initial garbage over the control block and every slot.
    for off in (0..end).step_by(4) {
        map.atomic_u32(off).store(word(ops, off), Ordering::Relaxed);
    }
    let stride = RingLayout::stride(buffer_size).unwrap();
    let mut consumer = Consumer::attach(Arc::clone(&map), l, Fences::Symmetric);
    let mut producer = Producer::attach(Arc::clone(&map), l, Fences::Symmetric);
    // Slots the consumer has taken: (position, length, erase, disposed).
    let mut held: std::collections::VecDeque<(u64, usize, bool, bool)> = Default::default();
    let mut sum = 0u64;
    let in_slots = |ptr: *const u8, len: usize| {
        let at = ptr as usize - map.base() as usize;
        assert!(at >= CTRL_SIZE + SLOT_HEADER && at + len <= end);
    };
    for step in 0..steps {
        let op = ops.get(step).copied().unwrap_or(0);
        let v = word(ops, step * 4 + 1);
        match op % 7 {
            // The peer moves an index or rewrites a slot header.
            0 => map.atomic_u32(TAIL).store(v, Ordering::Release),
            1 => map.atomic_u32(HEAD).store(v, Ordering::Release),
            2 => {
                let slot = (v as usize % capacity as usize) * stride;
                let field = 4 * (usize::from(op >> 4) % 3);
                map.atomic_u32(CTRL_SIZE + slot + field)
                    .store(word(ops, step), Ordering::Relaxed);
            }
            // The consumer takes the next slot (holding several).
            3 => match consumer.has_data() {
                Ok(true) => match consumer.peek() {
                    Ok(slot) => {
                        assert!(slot.len <= buffer_size);
                        assert!(!slot.discarded || slot.len == 0);
                        in_slots(slot.ptr, slot.len);
                        // Copied out, never borrowed: the peer may write it.
                        let mut bytes = vec![0u8; slot.len];
                        // SAFETY: `peek` validated `len <= buffer_size`, and
                        // the slot (header + buffer_size bytes) lies inside
                        // the mapping, which `map` keeps alive; `bytes` is
                        // private.
                        unsafe {
                            std::ptr::copy_nonoverlapping(slot.ptr, bytes.as_mut_ptr(), slot.len)
                        };
                        sum = sum.wrapping_add(bytes.iter().map(|&b| u64::from(b)).sum::<u64>());
                        let pos = consumer.take();
                        held.push_back((pos, slot.len, slot.erase || op & 8 != 0, slot.discarded));
                    }
                    Err(_) => return,
                },
                Ok(false) => {}
                Err(_) => return,
            },
            // The consumer gives one taken slot back (any of them); `head`
            // moves over the prefix given back.
            4 => {
                if !held.is_empty() {
                    let i = v as usize % held.len();
                    let (pos, len, erase, _) = held[i];
                    if erase {
                        consumer.erase(pos, len);
                    }
                    held[i].3 = true;
                    let mut n = 0;
                    while held.front().is_some_and(|h| h.3) {
                        held.pop_front();
                        n += 1;
                    }
                    consumer.release(n);
                    assert_eq!(consumer.taken(), held.len() as u64);
                }
            }
            // The producer reserves up to a ring of slots, fills the last,
            // and publishes the first (with bytes or as discarded).
            _ => {
                let k = 1 + u64::from(v) % u64::from(capacity);
                match producer.has_space_for(k) {
                    Ok(true) => {
                        let len = v as usize % (buffer_size + 1);
                        let ptr = producer.buf_at(k - 1);
                        in_slots(ptr, buffer_size);
                        // SAFETY: `buf_at(k - 1)` points at a free slot's
                        // data (has_space_for(k)), which holds
                        // `buffer_size >= len` bytes inside the mapping.
                        unsafe { std::ptr::write_bytes(ptr, op, len) };
                        if op & 16 != 0 {
                            producer.publish_discard();
                        } else {
                            producer.publish(len, u32::from(op & 32 != 0));
                        }
                    }
                    Ok(false) => {}
                    Err(_) => return,
                }
            }
        }
    }
    std::hint::black_box(sum);
});
