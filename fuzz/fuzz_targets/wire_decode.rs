//! Fuzz target: decoding arbitrary bytes as a transport buffer must never
//! panic, and whatever decodes must re-encode to the same bytes (the wire
//! format is canonical). Goes in `fuzz/fuzz_targets/wire_decode.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lwmq::wire::{validate_buffer, BufferReader, BufferWriter};

fuzz_target!(|data: &[u8]| {
    let validated = validate_buffer(data);
    let Ok(mut reader) = BufferReader::new(data) else {
        assert!(validated.is_err());
        return;
    };
    // The allocation-free visitor must agree with the owning decoder.
    let mut visitor = reader.clone();
    while let Some(Ok(raw)) = visitor.next_raw() {
        assert_eq!(raw.frames().count(), raw.frame_count());
    }
    let mut messages = Vec::new();
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
    let mut out = vec![0u8; data.len()];
    let mut writer = BufferWriter::new(&mut out).expect("a valid buffer holds a header");
    for message in &messages {
        writer.try_push(message).expect("a decoded message re-encodes in the same space");
    }
    let used = writer.finish();
    assert_eq!(&out[..used], data);
});
