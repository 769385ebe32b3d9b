use super::*;

use crate::message::{ExternalFrame, Timestamp};
use bytes::Bytes;
use proptest::prelude::*;

type Contents = Vec<(Vec<u8>, Option<NtTime>)>;

fn contents(m: &Message) -> Contents {
    m.frames()
        .map(|f| (f.data().to_vec(), f.timestamp()))
        .collect()
}

fn one_frame(data: &[u8], ts: Timestamp) -> Message {
    let mut m = Message::new();
    m.push_copy(data, ts).unwrap();
    m
}

fn encode(messages: &[Message], size: usize) -> Vec<u8> {
    let mut buf = vec![0u8; size];
    let mut w = BufferWriter::new(&mut buf).unwrap();
    for m in messages {
        w.try_push(m).unwrap();
    }
    let used = w.finish();
    buf.truncate(used);
    buf
}

fn decode(buf: &[u8]) -> Result<Vec<Contents>, WireError> {
    BufferReader::new(buf)?
        .map(|m| m.map(|m| contents(&m)))
        .collect()
}

#[test]
fn varint_lengths_and_round_trip() {
    for (v, n) in [
        (0u64, 1),
        (127, 1),
        (128, 2),
        (16_383, 2),
        (16_384, 3),
        (u64::from(u32::MAX), 5),
        (u64::MAX >> 1, 9),
        (u64::MAX, 10),
    ] {
        assert_eq!(varint_len(v), n, "{v}");
        let mut buf = [0u8; 12];
        let end = put_varint(&mut buf, 1, v).unwrap();
        assert_eq!(end, 1 + n);
        assert_eq!(get_varint(&buf[..end], 1, Field::FrameHeader), Ok((v, end)));
        // One byte short: truncated.
        assert!(matches!(
            get_varint(&buf[..end - 1], 1, Field::FrameHeader),
            Err(WireError::Truncated { offset: 1, .. })
        ));
        // No room to write.
        assert_eq!(put_varint(&mut buf[..end - 1], 1, v), None);
    }
}

#[test]
fn varint_rejects_overflow_and_overlong() {
    let f = Field::FrameCount;
    assert!(matches!(
        get_varint(&[0x80, 0x00], 0, f),
        Err(WireError::NonCanonicalVarint { .. })
    ));
    let mut eleven = [0xffu8; 11];
    eleven[10] = 0;
    assert!(matches!(
        get_varint(&eleven, 0, f),
        Err(WireError::VarintOverflow { .. })
    ));
    let mut two_in_tenth = [0xffu8; 10];
    two_in_tenth[9] = 0x02;
    assert!(matches!(
        get_varint(&two_in_tenth, 0, f),
        Err(WireError::VarintOverflow { .. })
    ));
}

#[test]
fn overhead_of_small_messages() {
    let m64 = one_frame(&[0xab; 64], Timestamp::None);
    assert_eq!(encoded_len(&m64), 64 + 3);
    let m63 = one_frame(&[0xab; 63], Timestamp::None);
    assert_eq!(encoded_len(&m63), 63 + 2);
    let ts = one_frame(&[0xab; 64], Timestamp::At(NtTime::from_ticks(1)));
    assert_eq!(encoded_len(&ts), 64 + 3 + 8);
    let buf = encode(&[m64], 1024);
    assert_eq!(buf.len(), BUFFER_HEADER_LEN + 67);
    assert_eq!(&buf[..8], &[MAGIC, VERSION, 0, 0, 1, 0, 0, 0]);
    assert_eq!(&buf[8..11], &[1, 0x80, 0x01]);
}

#[test]
fn round_trip_every_kind_and_timestamp() {
    static STATIC: &[u8] = b"static frame";
    let mut m = Message::new();
    m.push_copy(b"", Timestamp::None).unwrap();
    m.push_copy(&[1; 64], Timestamp::SystemTime).unwrap();
    m.push_copy(&[2; 65], Timestamp::PreciseSystemTime).unwrap();
    m.push_static(STATIC, Timestamp::At(NtTime::from_ticks(0)))
        .unwrap();
    m.push_bytes(
        Bytes::from(vec![3; 100_000]),
        Timestamp::At(NtTime::from_ticks(u64::MAX)),
    )
    .unwrap();
    m.push_external(ExternalFrame::from_owner(vec![4u8; 300]), Timestamp::None)
        .unwrap();
    m.acquire_external().unwrap();
    let buf = encode(std::slice::from_ref(&m), 200_000);
    assert_eq!(buf.len(), BUFFER_HEADER_LEN + encoded_len(&m));
    let got = decode(&buf).unwrap();
    assert_eq!(got, vec![contents(&m)]);
    // Small frames come back inline, large ones share one allocation.
    let back = BufferReader::new(&buf).unwrap().next().unwrap().unwrap();
    let kinds: Vec<_> = back.frames().map(|f| f.kind()).collect();
    use crate::message::FrameKind as K;
    assert_eq!(
        kinds,
        [
            K::Inline,
            K::Inline,
            K::Bytes,
            K::Inline,
            K::Bytes,
            K::Bytes
        ]
    );
    assert_eq!(back.payload_size(), m.payload_size());
}

#[test]
fn many_messages_club_in_order() {
    let messages: Vec<Message> = (0..1000u32)
        .map(|i| one_frame(&i.to_le_bytes().repeat(i as usize % 40), Timestamp::None))
        .collect();
    let buf = encode(&messages, 1 << 20);
    let reader = BufferReader::new(&buf).unwrap();
    assert_eq!(reader.message_count(), 1000);
    let got = decode(&buf).unwrap();
    let want: Vec<_> = messages.iter().map(contents).collect();
    assert_eq!(got, want);
    assert_eq!(validate_buffer(&buf), Ok(1000));
}

#[test]
fn full_buffer_is_left_unchanged() {
    let small = one_frame(b"abc", Timestamp::None); // 5 bytes
    let big = one_frame(&[9; 100], Timestamp::None); // 103 bytes
    let mut buf = vec![0u8; BUFFER_HEADER_LEN + 12];
    let mut w = BufferWriter::new(&mut buf).unwrap();
    w.try_push(&small).unwrap();
    assert_eq!(w.remaining(), 7);
    assert_eq!(
        w.try_push(&big),
        Err(TryPushError::Full {
            needed: 103,
            available: 7
        })
    );
    assert_eq!(w.len(), BUFFER_HEADER_LEN + 5);
    assert_eq!(w.message_count(), 1);
    w.try_push(&small).unwrap();
    assert!(matches!(w.try_push(&small), Err(TryPushError::Full { .. })));
    let used = w.finish();
    assert_eq!(used, BUFFER_HEADER_LEN + 10);
    // The spare bytes were never touched.
    assert!(buf[used..].iter().all(|&b| b == 0));
    assert_eq!(decode(&buf[..used]).unwrap().len(), 2);
}

#[test]
fn empty_message_is_refused() {
    let mut buf = [0u8; 64];
    let mut w = BufferWriter::new(&mut buf).unwrap();
    assert_eq!(w.try_push(&Message::new()), Err(TryPushError::EmptyMessage));
    assert!(w.is_empty());
}

#[test]
fn writer_needs_room_for_the_header() {
    let mut buf = [0u8; 7];
    assert_eq!(
        BufferWriter::new(&mut buf).unwrap_err(),
        BufferTooSmall { len: 7, min: 8 }
    );
    let mut buf = [0u8; 8];
    let w = BufferWriter::new(&mut buf).unwrap();
    assert_eq!(w.finish(), 8);
    assert_eq!(decode(&buf).unwrap(), Vec::<Contents>::new());
}

#[test]
fn post_time_size_check() {
    for size in [0, 8, 9, 10, 11, 100, 137, 138, 139, 16_394, 65_536, 1 << 20] {
        let max = max_message_payload(size);
        if size >= BUFFER_HEADER_LEN + 2 {
            let m = one_frame(&vec![0; max], Timestamp::None);
            assert_eq!(fits_in_empty_buffer(&m, size), Ok(()), "size {size}");
            let mut buf = vec![0u8; size];
            BufferWriter::new(&mut buf).unwrap().try_push(&m).unwrap();
        }
        let m = one_frame(&vec![0; max + 1], Timestamp::None);
        let err = fits_in_empty_buffer(&m, size).unwrap_err();
        assert_eq!(err.limit, size.saturating_sub(BUFFER_HEADER_LEN));
        assert_eq!(err.encoded, encoded_len(&m));
        assert!(err.to_string().contains("at most"));
    }
    assert_eq!(max_message_payload(65_536), 65_536 - 8 - 1 - 3);
    assert_eq!(max_message_payload(usize::MAX), MAX_FRAME_SIZE);
}

#[test]
fn header_errors() {
    let good = encode(&[one_frame(b"x", Timestamp::None)], 64);
    assert_eq!(
        BufferReader::new(&good[..7]).unwrap_err(),
        WireError::BufferTooShort { len: 7, min: 8 }
    );
    let mut b = good.clone();
    b[0] = 0;
    assert_eq!(
        BufferReader::new(&b).unwrap_err(),
        WireError::BadMagic { found: 0 }
    );
    let mut b = good.clone();
    b[1] = 2;
    assert!(matches!(
        BufferReader::new(&b).unwrap_err(),
        WireError::UnsupportedVersion { found: 2, .. }
    ));
    let mut b = good.clone();
    b[3] = 1;
    assert_eq!(
        BufferReader::new(&b).unwrap_err(),
        WireError::UnknownFlags { flags: 0x100 }
    );
}

#[test]
fn body_errors() {
    let good = encode(&[one_frame(b"xy", Timestamp::None)], 64);
    // Count mismatch: one more declared than present.
    let mut b = good.clone();
    b[4] = 2;
    assert_eq!(
        decode(&b).unwrap_err(),
        WireError::MissingMessages {
            declared: 2,
            decoded: 1
        }
    );
    // Trailing garbage.
    let mut b = good.clone();
    b.push(0);
    assert_eq!(
        decode(&b).unwrap_err(),
        WireError::TrailingBytes { offset: 12, len: 1 }
    );
    // Zero frames.
    let mut b = good.clone();
    b[8] = 0;
    assert_eq!(decode(&b).unwrap_err(), WireError::NoFrames { offset: 8 });
    // Too many frames: 65536 = 0x80 0x80 0x04.
    let b = [&good[..8], &[0x80, 0x80, 0x04]].concat();
    assert!(matches!(
        decode(&b).unwrap_err(),
        WireError::TooManyFrames { count: 65_536, .. }
    ));
    // Frame past the end.
    let mut b = good.clone();
    b[9] = 3 << 1;
    assert_eq!(
        decode(&b).unwrap_err(),
        WireError::FramePastEnd {
            offset: 9,
            len: 3,
            remaining: 2
        }
    );
    // Frame longer than the limit: len = 2^32 (header 2^33).
    let mut b = good[..9].to_vec();
    b.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x20]);
    assert!(matches!(
        decode(&b).unwrap_err(),
        WireError::FrameTooLarge {
            len: 4_294_967_296,
            ..
        }
    ));
    // Truncated timestamp.
    let mut b = good.clone();
    b[9] |= 1;
    assert_eq!(
        decode(&b).unwrap_err(),
        WireError::Truncated {
            offset: 10,
            field: Field::Timestamp
        }
    );
    // Truncated frame header.
    let b = good[..9].to_vec();
    assert!(matches!(
        decode(&b).unwrap_err(),
        WireError::Truncated {
            field: Field::FrameHeader,
            ..
        }
    ));
}

#[test]
fn iteration_stops_after_an_error() {
    let messages = [
        one_frame(b"a", Timestamp::None),
        one_frame(b"b", Timestamp::None),
    ];
    let mut b = encode(&messages, 64);
    b[4] = 3;
    let mut r = BufferReader::new(&b).unwrap();
    assert!(r.next().unwrap().is_ok());
    assert!(r.next().unwrap().is_ok());
    assert!(r.next().unwrap().is_err());
    assert!(r.next().is_none());
    assert!(r.next().is_none());
    assert!(validate_buffer(&b).is_err());
}

#[test]
fn raw_visit_allocates_nothing_and_matches() {
    let mut m = Message::new();
    m.push_copy(&[1; 10], Timestamp::At(NtTime::from_ticks(7)))
        .unwrap();
    m.push_copy(&[2; 1000], Timestamp::None).unwrap();
    let buf = encode(std::slice::from_ref(&m), 4096);
    let mut r = BufferReader::new(&buf).unwrap();
    let raw = r.next_raw().unwrap().unwrap();
    assert_eq!(raw.offset(), BUFFER_HEADER_LEN);
    assert_eq!(raw.frame_count(), 2);
    assert_eq!(raw.payload_size(), 1010);
    let frames: Vec<_> = raw.frames().collect();
    assert_eq!(frames[0].data, &[1; 10]);
    assert_eq!(frames[0].timestamp, Some(NtTime::from_ticks(7)));
    assert_eq!(frames[1].data.len(), 1000);
    assert!(r.next_raw().is_none());
}

// ---- property tests ----

static STATIC_POOL: [u8; 4096] = {
    let mut pool = [0u8; 4096];
    let mut i = 0;
    while i < pool.len() {
        pool[i] = (i * 7 + 3) as u8;
        i += 1;
    }
    pool
};

#[derive(Debug, Clone)]
enum FrameSpec {
    Copy(Vec<u8>),
    Static(usize, usize),
    Bytes(Vec<u8>),
    External(Vec<u8>),
}

fn frame_data() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => proptest::collection::vec(any::<u8>(), 0..=80),
        1 => proptest::collection::vec(any::<u8>(), 0..5000),
    ]
}

fn frame_spec() -> impl Strategy<Value = (FrameSpec, Option<u64>)> {
    let spec = prop_oneof![
        frame_data().prop_map(FrameSpec::Copy),
        (0usize..4096, 0usize..300).prop_map(|(a, n)| FrameSpec::Static(a, n)),
        frame_data().prop_map(FrameSpec::Bytes),
        frame_data().prop_map(FrameSpec::External),
    ];
    (spec, proptest::option::of(any::<u64>()))
}

fn build(frames: &[(FrameSpec, Option<u64>)]) -> Message {
    let mut m = Message::with_capacity(frames.len());
    for (spec, ts) in frames {
        let ts = Timestamp::from(ts.map(NtTime::from_ticks));
        match spec {
            FrameSpec::Copy(d) => m.push_copy(d, ts).unwrap(),
            FrameSpec::Static(a, n) => {
                let end = (*a + *n).min(STATIC_POOL.len());
                m.push_static(&STATIC_POOL[*a..end], ts).unwrap()
            }
            FrameSpec::Bytes(d) => m.push_bytes(Bytes::from(d.clone()), ts).unwrap(),
            FrameSpec::External(d) => m
                .push_external(ExternalFrame::from_owner(d.clone()), ts)
                .unwrap(),
        }
    }
    m
}

fn message_spec(max_frames: usize) -> impl Strategy<Value = Vec<(FrameSpec, Option<u64>)>> {
    proptest::collection::vec(frame_spec(), 1..=max_frames)
}

fn valid_buffer() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(message_spec(4), 0..6).prop_map(|specs| {
        let messages: Vec<Message> = specs.iter().map(|s| build(s)).collect();
        let size = BUFFER_HEADER_LEN + messages.iter().map(encoded_len).sum::<usize>();
        encode(&messages, size)
    })
}

/// Decoding any input must not panic; whatever decodes must re-encode to
/// the same bytes (the format is canonical).
fn check_decode(bytes: &[u8]) -> Result<(), TestCaseError> {
    let validated = validate_buffer(bytes);
    let Ok(reader) = BufferReader::new(bytes) else {
        prop_assert!(validated.is_err());
        return Ok(());
    };
    let decoded: Result<Vec<Message>, WireError> = reader.collect();
    // The whole-buffer check (fast path for one-frame messages) reports
    // exactly what walking the reader reports.
    match (&validated, &decoded) {
        (Ok(n), Ok(messages)) => prop_assert_eq!(*n as usize, messages.len()),
        (Err(a), Err(b)) => prop_assert_eq!(a, b),
        _ => prop_assert!(false, "validate_buffer and BufferReader disagree"),
    }
    if let Ok(messages) = decoded {
        prop_assert_eq!(encode(&messages, bytes.len()), bytes);
        // The receive path's one-at-a-time decoder gives the same messages.
        let mut pos = BUFFER_HEADER_LEN;
        for want in &messages {
            let (got, next) =
                decode_at(bytes, pos).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(contents(&got), contents(want));
            pos = next;
        }
        prop_assert_eq!(pos, bytes.len());
    }
    Ok(())
}

proptest! {

    #[test]
    fn round_trip_small_messages(frames in message_spec(2)) {
        let m = build(&frames);
        let buf = encode(std::slice::from_ref(&m), BUFFER_HEADER_LEN + encoded_len(&m));
        prop_assert_eq!(decode(&buf).unwrap(), vec![contents(&m)]);
    }

    #[test]
    fn round_trip_clubbed(specs in proptest::collection::vec(message_spec(5), 1..20)) {
        let messages: Vec<Message> = specs.iter().map(|s| build(s)).collect();
        let exact = BUFFER_HEADER_LEN + messages.iter().map(encoded_len).sum::<usize>();
        let buf = encode(&messages, exact);
        prop_assert_eq!(buf.len(), exact);
        let want: Vec<_> = messages.iter().map(contents).collect();
        prop_assert_eq!(decode(&buf).unwrap(), want);
    }

    #[test]
    fn encoded_len_is_exact_and_push_is_all_or_nothing(frames in message_spec(6), cut in 0usize..64) {
        let m = build(&frames);
        let exact = BUFFER_HEADER_LEN + encoded_len(&m);
        // Exactly enough room works.
        let mut buf = vec![0u8; exact];
        let mut w = BufferWriter::new(&mut buf).unwrap();
        w.try_push(&m).unwrap();
        prop_assert_eq!(w.remaining(), 0);
        // Less room refuses and leaves every byte alone.
        let short = exact.saturating_sub(cut + 1).max(BUFFER_HEADER_LEN);
        let mut buf = vec![0x5au8; short];
        let mut w = BufferWriter::new(&mut buf).unwrap();
        let full = matches!(w.try_push(&m), Err(TryPushError::Full { .. }));
        prop_assert!(full);
        prop_assert_eq!(w.len(), BUFFER_HEADER_LEN);
        prop_assert!(buf.iter().all(|&b| b == 0x5a));
    }

    #[test]
    fn decoding_random_bytes_never_panics(tail in proptest::collection::vec(any::<u8>(), 0..200), count in 0u32..5, header in any::<bool>()) {
        // Half the cases start with a valid header so the body gets exercised.
        let bytes = if header {
            let c = count.to_le_bytes();
            [&[MAGIC, VERSION, 0, 0, c[0], c[1], c[2], c[3]][..], &tail].concat()
        } else {
            tail
        };
        check_decode(&bytes)?;
    }

    #[test]
    fn decoding_mutated_buffers_never_panics(
        buf in valid_buffer(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        truncate in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let mut buf = buf;
        if !buf.is_empty() {
            for (at, byte) in edits {
                let i = at.index(buf.len());
                buf[i] = byte;
            }
        }
        if let Some(t) = truncate {
            let n = t.index(buf.len() + 1);
            buf.truncate(n);
        }
        check_decode(&buf)?;
    }
}

#[test]
fn round_trip_one_thousand_frames() {
    let mut m = Message::new();
    for i in 0..1000u32 {
        let ts = if i % 3 == 0 {
            Timestamp::At(NtTime::from_ticks(u64::from(i) * 1_000_003))
        } else {
            Timestamp::None
        };
        m.push_copy(&vec![i as u8; (i as usize * 13) % 200], ts)
            .unwrap();
    }
    let buf = encode(
        std::slice::from_ref(&m),
        BUFFER_HEADER_LEN + encoded_len(&m),
    );
    assert_eq!(decode(&buf).unwrap(), vec![contents(&m)]);
}

#[test]
fn external_released_once_after_acquire_encode_drop() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let acquired = Arc::new(AtomicUsize::new(0));
    let released = Arc::new(AtomicUsize::new(0));
    let (a, r) = (acquired.clone(), released.clone());
    let frame = ExternalFrame::with_hooks(
        vec![1u8; 500],
        move |_| {
            a.fetch_add(1, Ordering::SeqCst);
            Ok(())
        },
        move |_| {
            r.fetch_add(1, Ordering::SeqCst);
        },
    );
    let mut m = Message::new();
    m.push_external(frame, Timestamp::None).unwrap();
    let mut copy = m.share();
    m.acquire_external().unwrap();
    let buf = encode(&[m.share(), copy.share()], 2048);
    copy.acquire_external().unwrap();
    drop(m);
    drop(copy);
    assert_eq!(acquired.load(Ordering::SeqCst), 1);
    assert_eq!(released.load(Ordering::SeqCst), 1);
    // The decoded copies own their data.
    let got = decode(&buf).unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0][0].0, vec![1u8; 500]);
}
