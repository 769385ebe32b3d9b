//! Fuzz target: decoding arbitrary bytes as a transport buffer must never
//! panic; whatever decodes must re-encode to the same bytes (the wire
//! format is canonical); the receive path's index must agree with the
//! decoders of private bytes; and a peer that changes every byte each
//! time it is read must not change what the index decodes (it reads each
//! byte once). Goes in `fuzz/fuzz_targets/wire_decode.rs`.
#![no_main]

use std::cell::RefCell;
use std::mem::MaybeUninit;

use libfuzzer_sys::fuzz_target;
use lwmq::message::Message;
use lwmq::internals::wire::{
    single_message_prefix, validate_buffer, BufferIndex, BufferReader, BufferWriter, Source,
};

/// The buffer as a hostile peer serves it: every read of a byte returns
/// its current value and then changes it.
struct Rewriting {
    bytes: RefCell<Vec<u8>>,
    reads: RefCell<Vec<u8>>,
}

impl Rewriting {
    fn read(&self, at: usize) -> u8 {
        let mut bytes = self.bytes.borrow_mut();
        let value = bytes[at];
        bytes[at] = value.wrapping_mul(31).wrapping_add(7);
        let mut reads = self.reads.borrow_mut();
        reads[at] = reads[at].saturating_add(1);
        value
    }
}

// SAFETY: `copy_to_uninit` writes every byte of `dst` (values from the
// vector) when it returns true, and nothing when it returns false.
unsafe impl Source for Rewriting {
    fn len(&self) -> usize {
        self.bytes.borrow().len()
    }

    fn byte(&self, at: usize) -> Option<u8> {
        (at < self.len()).then(|| self.read(at))
    }

    fn copy_to_uninit(&self, at: usize, dst: &mut [MaybeUninit<u8>]) -> bool {
        if at.checked_add(dst.len()).is_none_or(|end| end > self.len()) {
            return false;
        }
        for (i, d) in dst.iter_mut().enumerate() {
            d.write(self.read(at + i));
        }
        true
    }
}

/// Every frame of every message of `index`, copied out of `src`, with the
/// message's claimed frame count and payload size checked against them.
fn delivered<S: Source + ?Sized>(index: &BufferIndex, src: &S) -> Vec<Vec<Vec<u8>>> {
    (0..index.len())
        .map(|i| {
            let m = index.message(i).expect("an indexed message");
            let owned = m.to_message(src);
            let frames: Vec<Vec<u8>> = owned.frames().map(|f| f.data().to_vec()).collect();
            assert_eq!(frames.len(), m.frame_count());
            assert_eq!(frames.iter().map(Vec::len).sum::<usize>(), m.payload_size());
            assert_eq!(owned.payload_size(), m.payload_size());
            frames
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let validated = validate_buffer(data);
    let mut index = BufferIndex::new();
    assert_eq!(index.build(data), validated);
    let from_index = delivered(&index, data);

    let peer = Rewriting {
        bytes: RefCell::new(data.to_vec()),
        reads: RefCell::new(vec![0; data.len()]),
    };
    let mut peer_index = BufferIndex::new();
    assert_eq!(peer_index.build(&peer), validated);
    assert_eq!(delivered(&peer_index, &peer), from_index);
    assert!(peer.reads.borrow().iter().all(|&n| n <= 1));

    let Ok(mut reader) = BufferReader::new(data) else {
        assert!(validated.is_err());
        return;
    };
    // The allocation-free visitor must agree with the owning decoder.
    let mut visitor = reader.clone();
    while let Some(Ok(raw)) = visitor.next_raw() {
        assert_eq!(raw.frames().count(), raw.frame_count());
    }
    let mut messages: Vec<Message> = Vec::new();
    for message in &mut reader {
        match message {
            Ok(message) => messages.push(message),
            Err(_) => {
                assert!(validated.is_err());
                return;
            }
        }
    }
    assert!(validated.is_ok());
    let frames: Vec<Vec<Vec<u8>>> = messages
        .iter()
        .map(|m| m.frames().map(|f| f.data().to_vec()).collect())
        .collect();
    assert_eq!(frames, from_index);
    let mut out = vec![0u8; data.len()];
    let mut writer = BufferWriter::new(&mut out).expect("a valid buffer holds a header");
    for message in &messages {
        writer
            .try_push(message)
            .expect("a decoded message re-encodes in the same space");
    }
    let used = writer.finish();
    assert_eq!(&out[..used], data);

    // The loan's in-place path (reserve the headers, write the payload
    // into the reserved range, count it) encodes one-frame messages
    // without timestamp exactly as `try_push` does; a reservation dropped
    // before each one changes nothing.
    let mut out = vec![0u8; data.len()];
    let mut writer = BufferWriter::new(&mut out).expect("a valid buffer holds a header");
    for message in &messages {
        let single = message.frame_count() == 1
            && message.frame(0).is_some_and(|f| f.timestamp().is_none());
        if !single {
            writer.try_push(message).expect("re-encodes in the same space");
            continue;
        }
        let payload = message.frame(0).map(|f| f.data().to_vec()).unwrap_or_default();
        // A loan that is dropped: headers written, nothing counted.
        if let Some((start, end)) = writer.reserve_single(payload.len()) {
            let mut view = writer.payload_view(start, end).expect("reserved range");
            assert!(view.write(0, &vec![0xee; payload.len()]));
        }
        let (start, end) = writer
            .reserve_single(payload.len())
            .expect("a decoded message re-encodes in the same space");
        let mut view = writer.payload_view(start, end).expect("reserved range");
        assert!(view.write(0, &payload));
        writer.commit_reserved(end);
    }
    let used = writer.finish();
    assert_eq!(&out[..used], data);

    // `post_copy` / `post_copies` write one-frame messages without
    // timestamp from the caller's bytes (`push_simple`): the same bytes.
    let mut out = vec![0u8; data.len()];
    let mut writer = BufferWriter::new(&mut out).expect("a valid buffer holds a header");
    for message in &messages {
        let simple = message.frame_count() == 1
            && message.frame(0).is_some_and(|f| f.timestamp().is_none());
        match message.frame(0) {
            Some(f) if simple => writer.push_simple(f.data()),
            _ => writer.try_push(message),
        }
        .expect("a decoded message re-encodes in the same space");
    }
    let used = writer.finish();
    assert_eq!(&out[..used], data);

    // A buffer of one such message is what a stream transport sends from
    // the caller's memory (`single_message_prefix`, then the payload).
    if let [message] = &messages[..] {
        if let Some(f) = message.frame(0) {
            if message.frame_count() == 1 && f.timestamp().is_none() {
                let (prefix, n) = single_message_prefix(f.data().len());
                assert_eq!(&data[..n], &prefix[..n]);
                assert_eq!(&data[n..], f.data());
            }
        }
    }
});
