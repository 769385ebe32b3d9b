use super::decode::Cursor;
use super::encode::put_varint;
use super::*;

use std::cell::RefCell;
use std::mem::MaybeUninit;

use crate::message::{Frame, MessageError, NtTime, Timestamp};
use bytes::Bytes;
use proptest::prelude::*;

type Contents = Vec<(Vec<u8>, Option<NtTime>)>;

fn contents(m: &Message) -> Contents {
    m.frames()
        .map(|f| (f.data().to_vec(), f.timestamp()))
        .collect()
}

/// An external frame without hooks.
fn external(data: Vec<u8>) -> Frame {
    Frame::with_hooks(data, |_| Ok(()), |_| {})
}

fn one_frame(data: &[u8], ts: Timestamp) -> Message {
    let mut m = Message::new();
    m.push(Frame::copy(data).with_timestamp(ts));
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

/// The varint at `pos`: `(value, position after it)`.
fn get_varint(buf: &[u8], pos: usize, field: Field) -> Result<(u64, usize), WireError> {
    let mut cur = Cursor::new(buf, pos);
    let v = cur.varint(field)?;
    Ok((v, cur.pos()))
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
        let end = put_varint(&mut SharedBytesMut::from_mut_slice(&mut buf), 1, v).unwrap();
        assert_eq!(end, 1 + n);
        assert_eq!(get_varint(&buf[..end], 1, Field::FrameHeader), Ok((v, end)));
        // One byte short: truncated.
        assert!(matches!(
            get_varint(&buf[..end - 1], 1, Field::FrameHeader),
            Err(WireError::Truncated { offset: 1, .. })
        ));
        // No room to write.
        let mut short = SharedBytesMut::from_mut_slice(&mut buf[..end - 1]);
        assert_eq!(put_varint(&mut short, 1, v), None);
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
    m.push(Frame::copy(b""));
    m.push(Frame::copy(&[1; 64]).with_timestamp(Timestamp::Now));
    m.push(Frame::copy(&[2; 65]).with_timestamp(Timestamp::PreciseNow));
    m.push(Frame::from(STATIC).with_timestamp(Timestamp::At(NtTime::from_ticks(0))));
    m.push(
        Frame::from(Bytes::from(vec![3; 100_000]))
            .with_timestamp(Timestamp::At(NtTime::from_ticks(u64::MAX))),
    );
    m.push(external(vec![4u8; 300]));
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
fn received_large_frames_are_bytes_slices_of_one_allocation() {
    let m = Message::from_frames([
        Frame::from(vec![1u8; 100]),
        Frame::copy(b"small"),
        Frame::from(vec![2u8; 5000]).with_timestamp(NtTime::from_ticks(9)),
        Frame::from(vec![3u8; 65]),
    ]);
    let buf = encode(std::slice::from_ref(&m), 8192);
    let mut index = BufferIndex::new();
    index.build(&buf[..]).unwrap();
    // SAFETY: `buf` outlives the view and nothing writes it meanwhile.
    let view = unsafe { SharedBytes::new(buf.as_ptr(), buf.len()) };
    for got in [
        index.message(0).unwrap().to_message(&buf[..]),
        index.message(0).unwrap().to_message(&view),
        BufferReader::new(&buf).unwrap().next().unwrap().unwrap(),
    ] {
        assert_eq!(got, m);
        let ptr = |i: usize| got.frame(i).unwrap().data().as_ptr();
        // Each large frame given out as `Bytes` is the message's memory.
        for i in [0, 2, 3] {
            let b = got.frame_bytes(i).unwrap();
            assert_eq!(b.as_ptr(), ptr(i), "frame {i} was copied");
        }
        // One allocation, the large frames one after the other.
        assert_eq!(ptr(0).wrapping_add(100), ptr(2));
        assert_eq!(ptr(2).wrapping_add(5000), ptr(3));
        // The small frame is inline: given out as a copy.
        assert_eq!(
            got.frame(1).unwrap().kind(),
            crate::message::FrameKind::Inline
        );
        assert_eq!(&got.frame_bytes(1).unwrap()[..], b"small");
        // Moved out by value, still no copy.
        let first = ptr(0);
        let frames: Vec<Bytes> = got.into_frames().map(Frame::into_bytes).collect();
        assert_eq!(frames[0].as_ptr(), first);
        assert_eq!(frames[2].len(), 5000);
    }
    // A one-frame message: the frame is the whole allocation.
    let one = one_frame(&[7u8; 640], Timestamp::None);
    let buf = encode(std::slice::from_ref(&one), 1024);
    let got = BufferReader::new(&buf).unwrap().next().unwrap().unwrap();
    assert_eq!(
        got.frame_bytes(0).unwrap().as_ptr(),
        got.frame(0).unwrap().data().as_ptr()
    );
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
    assert_eq!(
        w.try_push(&Message::new()),
        Err(TryPushError::Invalid(MessageError::NoFrames))
    );
    assert!(w.is_empty());
}

#[test]
fn a_message_of_too_many_frames_is_refused_not_encoded() {
    // `push` never fails: the encoder must still not write a message its
    // peer would reject (with the whole buffer).
    let m: Message = std::iter::repeat_n(b"", crate::message::MAX_FRAMES + 1).collect();
    let mut buf = vec![0u8; 1 << 20];
    let mut w = BufferWriter::new(&mut buf).unwrap();
    w.try_push(&one_frame(b"kept", Timestamp::None)).unwrap();
    assert_eq!(
        w.try_push(&m),
        Err(TryPushError::Invalid(MessageError::TooManyFrames {
            count: crate::message::MAX_FRAMES + 1,
            max: crate::message::MAX_FRAMES
        }))
    );
    let used = w.finish();
    assert_eq!(decode(&buf[..used]).unwrap().len(), 1);
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
    m.push(Frame::copy(&[1; 10]).with_timestamp(Timestamp::At(NtTime::from_ticks(7))));
    m.push(Frame::copy(&[2; 1000]));
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
        let frame = match spec {
            FrameSpec::Copy(d) => Frame::copy(d),
            FrameSpec::Static(a, n) => {
                let end = (*a + *n).min(STATIC_POOL.len());
                Frame::from(&STATIC_POOL[*a..end])
            }
            FrameSpec::Bytes(d) => Frame::from(Bytes::from(d.clone())),
            FrameSpec::External(d) => external(d.clone()),
        };
        m.push(frame.with_timestamp(ts));
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
    // The receive path's index agrees too, and gives the same messages.
    let mut index = BufferIndex::new();
    prop_assert_eq!(&index.build(bytes), &validated);
    if let Ok(messages) = decoded {
        prop_assert_eq!(encode(&messages, bytes.len()), bytes);
        prop_assert_eq!(index.len(), messages.len());
        for (i, want) in messages.iter().enumerate() {
            let got = index.message(i).unwrap();
            prop_assert_eq!(got.frame_count(), want.frame_count());
            prop_assert_eq!(got.payload_size(), want.payload_size());
            prop_assert_eq!(contents(&got.to_message(bytes)), contents(want));
        }
    } else {
        prop_assert!(index.is_empty());
    }
    Ok(())
}

proptest! {

    /// What a stream transport sends for a large `post_copy` (the prefix,
    /// then the payload from the caller's memory) is byte for byte the
    /// buffer `push_simple` and `finish` make, and decodes to the message.
    #[test]
    fn single_message_prefix_is_the_buffer_push_simple_makes(
        len in prop_oneof![0usize..300, 16_000usize..17_000, 200_000usize..300_000],
        seed in any::<u8>(),
    ) {
        let payload: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect();
        let (prefix, n) = single_message_prefix(len);
        prop_assert!(n <= SINGLE_PREFIX_MAX);
        let mut sent = prefix[..n].to_vec();
        sent.extend_from_slice(&payload);
        prop_assert_eq!(sent.len(), single_frame_encoded_len(len));
        let mut buf = vec![0u8; sent.len()];
        let mut w = BufferWriter::new(&mut buf).unwrap();
        w.push_simple(&payload).unwrap();
        let used = w.finish();
        prop_assert_eq!(&buf[..used], &sent[..]);
        let m = Message::from(Frame::copy(&payload));
        prop_assert_eq!(decode(&sent).unwrap(), vec![contents(&m)]);
    }

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

    /// The loan's in-place path and `post_copy`'s: messages pushed,
    /// one-frame messages reserved and written in place (some reservations
    /// dropped, their headers and bytes then overwritten by what follows)
    /// or written from bytes with `push_simple`, decode to exactly the
    /// messages pushed and posted, in order, and produce the same bytes as
    /// pushing them all.
    #[test]
    fn loaned_messages_round_trip_between_pushed_ones(
        items in proptest::collection::vec((message_spec(3), 0u8..4, any::<u8>()), 1..16),
    ) {
        // 0: pushed; 1: loaned and posted (its first frame's bytes, no
        // timestamp); 2: loaned and dropped after writing `fill`; 3: its
        // first frame's bytes written by `push_simple`, as `post_copy`
        // does.
        let mut want = Vec::new();
        let mut size = BUFFER_HEADER_LEN;
        for (spec, how, _) in &items {
            let m = build(spec);
            let m = if *how == 0 {
                m
            } else {
                Message::from(Frame::copy(m.frame(0).unwrap().data()))
            };
            if *how != 2 {
                size += encoded_len(&m);
                want.push(m);
            }
        }
        // Room for the dropped reservations at the end too.
        size += 6000;
        let mut buf = vec![0u8; size];
        let mut w = BufferWriter::new(&mut buf).unwrap();
        let mut posted = want.iter();
        for (spec, how, fill) in &items {
            match how {
                0 => w.try_push(posted.next().unwrap()).unwrap(),
                3 => w.push_simple(posted.next().unwrap().frame(0).unwrap().data()).unwrap(),
                1 => {
                    let data = posted.next().unwrap().frame(0).unwrap().data().to_vec();
                    let (start, end) = w.reserve_single(data.len()).unwrap();
                    prop_assert_eq!(end - start, data.len());
                    let mut view = w.payload_view(start, end).unwrap();
                    prop_assert!(view.write(0, &data));
                    prop_assert!(!view.write(1, &data));
                    w.commit_reserved(end);
                }
                _ => {
                    let len = build(spec).frame(0).unwrap().len();
                    let (start, end) = w.reserve_single(len).unwrap();
                    let mut view = w.payload_view(start, end).unwrap();
                    prop_assert!(view.write(0, &vec![*fill; len]));
                }
            }
        }
        let used = w.finish();
        prop_assert_eq!(decode(&buf[..used]).unwrap(), want.iter().map(contents).collect::<Vec<_>>());
        prop_assert_eq!(&buf[..used], &encode(&want, used)[..]);
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
        m.push(Frame::copy(&vec![i as u8; (i as usize * 13) % 200]).with_timestamp(ts));
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
    let frame = Frame::with_hooks(
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
    m.push(frame);
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

// ---- one read of every byte: a peer that rewrites the buffer ----

/// A received buffer as a hostile peer would serve it: it counts every read
/// of every byte and, if `rewrite`, changes a byte each time it is read,
/// so that a decoder reading a byte twice sees two different values.
struct Peer {
    bytes: RefCell<Vec<u8>>,
    reads: RefCell<Vec<u32>>,
    rewrite: bool,
}

impl Peer {
    fn new(bytes: &[u8], rewrite: bool) -> Self {
        Peer {
            bytes: RefCell::new(bytes.to_vec()),
            reads: RefCell::new(vec![0; bytes.len()]),
            rewrite,
        }
    }

    /// One read of byte `at` (in range).
    fn read(&self, at: usize) -> u8 {
        let mut bytes = self.bytes.borrow_mut();
        let value = bytes[at];
        self.reads.borrow_mut()[at] += 1;
        if self.rewrite {
            // Another value for the next read: a frame header becomes
            // another length (or gains a timestamp), a count another
            // count, a payload byte another byte.
            bytes[at] = value ^ 0x2b;
        }
        value
    }

    /// The most reads of any one byte.
    fn max_reads(&self) -> u32 {
        self.reads.borrow().iter().copied().max().unwrap_or(0)
    }
}

// SAFETY: `copy_to_uninit` writes every byte of `dst` (values read from the
// vector) when it returns true, and nothing when it returns false.
unsafe impl Source for Peer {
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

/// What a receiver delivers from `src`: the index's verdict and every
/// message copied out, each checked to agree with itself.
fn deliver<S: Source + ?Sized>(src: &S) -> Result<Vec<Contents>, WireError> {
    let mut index = BufferIndex::new();
    let n = index.build(src)?;
    assert_eq!(index.len(), n as usize);
    let mut out = Vec::new();
    for i in 0..index.len() {
        let m = index.message(i).unwrap();
        let spans: Vec<FrameSpan> = m.frames().collect();
        assert_eq!(spans.len(), m.frame_count());
        assert_eq!(spans.iter().map(|f| f.len).sum::<usize>(), m.payload_size());
        let owned = m.to_message(src);
        assert_eq!(owned.frame_count(), m.frame_count());
        assert_eq!(owned.payload_size(), m.payload_size());
        assert_eq!(
            owned.frames().map(|f| f.len()).sum::<usize>(),
            owned.payload_size(),
            "a message must never disagree with its frames"
        );
        out.push(contents(&owned));
    }
    Ok(out)
}

/// A buffer of two messages whose structure a peer can flip with one byte
/// (returned: its offset). Message 1 has two frames of `[2, 28]` bytes (30
/// in all); with the flip, of `[10, 12]` bytes (22 in all), the first with
/// a timestamp, in the same 33 bytes, so the buffer stays valid. Message 2
/// is one frame of 30 bytes.
fn flippable() -> (Vec<u8>, usize) {
    let mut b = vec![MAGIC, VERSION, 0, 0, 2, 0, 0, 0];
    b.push(2); // message 1: 2 frames
    let flip_at = b.len();
    b.push(2 << 1); // frame: 2 bytes
    b.extend_from_slice(b"ab");
    b.push(28 << 1); // frame: 28 bytes
    b.extend_from_slice(&[b'x'; 28]);
    // Flipped: [10 << 1 | 1][timestamp: 8][10 bytes][12 << 1][12 bytes];
    // the second header falls inside the 28 bytes of the first layout.
    b[flip_at + 1 + TIMESTAMP_LEN + 10] = 12 << 1;
    b.push(1); // message 2: 1 frame
    b.push(30 << 1);
    b.extend_from_slice(&[b'y'; 30]);
    (b, flip_at)
}

/// The byte that flips [`flippable`]'s message 1.
const FLIPPED: u8 = (10 << 1) | 1;

#[test]
fn flippable_is_valid_both_ways() {
    let (mut b, flip_at) = flippable();
    let before = decode(&b).unwrap();
    assert_eq!(
        before[0].iter().map(|f| f.0.len()).collect::<Vec<_>>(),
        [2, 28]
    );
    b[flip_at] = FLIPPED;
    let after = decode(&b).unwrap();
    assert_eq!(
        after[0].iter().map(|f| f.0.len()).collect::<Vec<_>>(),
        [10, 12]
    );
    assert_eq!(after[1], before[1]);
}

#[test]
fn every_byte_is_read_at_most_once() {
    let (b, _) = flippable();
    let peer = Peer::new(&b, false);
    assert_eq!(deliver(&peer).unwrap(), decode(&b).unwrap());
    // Header bytes once when validating, payload bytes once when copied.
    assert_eq!(peer.max_reads(), 1);
    assert!(peer.reads.borrow().iter().all(|&n| n == 1));
}

#[test]
fn a_peer_rewriting_every_byte_it_serves_changes_nothing() {
    // Each read flips the byte: a decoder that read the frame header again
    // after validating it (as the receive path did before) would see the
    // other layout and hand out frames that disagree with the payload size
    // it computed, or drop a buffer it had declared valid.
    let (b, _) = flippable();
    let peer = Peer::new(&b, true);
    assert_eq!(deliver(&peer).unwrap(), decode(&b).unwrap());
    // An invalid buffer is rejected whole, from the values first read.
    let mut bad = b.clone();
    bad[4] = 3;
    let peer = Peer::new(&bad, true);
    assert_eq!(
        deliver(&peer).unwrap_err(),
        WireError::MissingMessages {
            declared: 3,
            decoded: 2
        }
    );
}

/// The scenario through a real `SharedBytes` view: the peer
/// rewrites the buffer after the receiver validated it and before the
/// messages are taken. The messages have the structure that was
/// validated (the rewrite cannot make a message disagree with its frames
/// or a buffer half-delivered); only payload bytes copied after the
/// rewrite show it, as data the peer sent.
#[test]
fn rewriting_after_validation_changes_only_payload_bytes() {
    let (b, flip_at) = flippable();
    let mut memory = b.clone();
    let base = memory.as_mut_ptr();
    let poke = |at: usize, value: u8| {
        assert!(at < b.len());
        // SAFETY: `at` is inside `memory`, which outlives this test's
        // views; the store is atomic, as a peer's would be to us.
        unsafe { std::sync::atomic::AtomicU8::from_ptr(base.add(at)) }
            .store(value, std::sync::atomic::Ordering::Relaxed);
    };
    // SAFETY: `memory` stays alive and unmoved for the view's life and is
    // only accessed through `base` meanwhile (atomic stores in `poke`).
    let view = unsafe { SharedBytes::new(base, b.len()) };
    let mut index = BufferIndex::new();
    assert_eq!(index.build(&view), Ok(2));
    // The other layout, and then a second message that no longer parses.
    poke(flip_at, FLIPPED);
    let second = b.len() - 32;
    poke(second, 0);
    poke(flip_at + 1, b'Z');
    let first = index.message(0).unwrap();
    assert_eq!(first.frame_count(), 2);
    assert_eq!(first.payload_size(), 30);
    let m = first.to_message(&view);
    assert_eq!(
        m.frames().map(|f| f.len()).collect::<Vec<_>>(),
        [2, 28],
        "the validated structure"
    );
    assert_eq!(m.payload_size(), 30);
    assert_eq!(
        m.frame(0).unwrap().data(),
        b"Zb",
        "payload read after the rewrite"
    );
    // Both messages of the validated buffer are delivered, whole.
    let m2 = index.message(1).unwrap().to_message(&view);
    assert_eq!(contents(&m2), vec![(vec![b'y'; 30], None)]);
    assert!(index.message(2).is_none());
    // The rewritten buffer, read anew (the view is not used again), is
    // rejected.
    assert!(index.build(&memory[..]).is_err());
    assert!(index.is_empty());
}

#[test]
fn shared_views_read_and_copy_within_bounds() {
    let mut memory: Vec<u8> = (0..100).collect();
    let base = memory.as_mut_ptr();
    // SAFETY: `memory` outlives the view and is not touched meanwhile.
    let view = unsafe { SharedBytes::new(base, 100) };
    assert_eq!(view.byte(99), Some(99));
    assert_eq!(view.byte(100), None);
    let mut dst = [0u8; 8];
    assert_eq!(view.read(96, &mut dst), 4);
    assert_eq!(&dst[..4], &[96, 97, 98, 99]);
    assert_eq!(view.read(100, &mut dst), 0);
    assert_eq!(view.read(usize::MAX, &mut dst), 0);
    let part = view.slice(10, 5).unwrap();
    assert_eq!(part.to_vec(), [10, 11, 12, 13, 14]);
    assert!(view.slice(96, 5).is_none());
    assert!(view.slice(usize::MAX, 2).is_none());
    assert_eq!(view.slice(100, 0).unwrap().len(), 0);
    let mut dst = [MaybeUninit::new(0u8); 3];
    assert!(view.copy_to_uninit(97, &mut dst));
    assert!(!view.copy_to_uninit(98, &mut dst));
    assert!(!view.copy_to_uninit(usize::MAX, &mut dst));
    // SAFETY: nothing writes `memory` while the slice is used.
    assert_eq!(unsafe { part.as_slice() }, &[10, 11, 12, 13, 14]);
    // SAFETY: a null pointer makes an empty view, never dereferenced.
    let empty = unsafe { SharedBytes::new(std::ptr::null(), 5) };
    assert_eq!(
        (empty.len(), empty.byte(0), empty.to_vec()),
        (0, None, vec![])
    );
    // (`view` is not used again.) The writer's view: writes inside, refuses outside, never reads.
    let mut out = SharedBytesMut::from_mut_slice(&mut memory[..4]);
    assert!(out.write(1, &[7, 7, 7]));
    assert!(!out.write(2, &[7, 7, 7]));
    assert!(!out.write(usize::MAX, &[7]));
    assert!(out.write_byte(0, 9));
    assert!(!out.write_byte(4, 9));
    assert_eq!(&memory[..5], &[9, 7, 7, 7, 4]);
}

#[test]
fn gather_fills_exactly_the_spans() {
    let src: Vec<u8> = (0..50).collect();
    let got = shared::gather(&src[..], [(0, 3), (10, 2), (48, 2)], 7);
    assert_eq!(&got[..], &[0, 1, 2, 10, 11, 48, 49]);
    // A span outside the source reads as zeros; the length holds.
    let got = shared::gather(&src[..], [(0, 2), (49, 5)], 7);
    assert_eq!(&got[..], &[0, 1, 0, 0, 0, 0, 0]);
    // Spans beyond `total` are left out.
    let got = shared::gather(&src[..], [(0, 2), (5, 5)], 4);
    assert_eq!(&got[..], &[0, 1]);
}

#[test]
fn an_index_is_reused_and_emptied_by_a_bad_buffer() {
    let messages: Vec<Message> = (0..1000u32)
        .map(|i| one_frame(&i.to_le_bytes(), Timestamp::None))
        .collect();
    let big = encode(&messages, 1 << 16);
    let (small, _) = flippable();
    let mut index = BufferIndex::new();
    assert_eq!(index.build(&big[..]), Ok(1000));
    assert_eq!(index.build(&small[..]), Ok(2));
    assert_eq!(index.len(), 2);
    assert!(index.message(2).is_none());
    let mut bad = small.clone();
    bad[0] = 0;
    assert_eq!(index.build(&bad[..]), Err(WireError::BadMagic { found: 0 }));
    assert!(index.is_empty() && index.message(0).is_none());
    assert_eq!(index.build(&big[..]), Ok(1000));
    let last = index.message(999).unwrap().to_message(&big[..]);
    assert_eq!(last.frame(0).unwrap().data(), &999u32.to_le_bytes());
}

proptest! {
    #[test]
    fn any_buffer_is_read_at_most_once_per_byte(
        buf in valid_buffer(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
    ) {
        let mut buf = buf;
        for (at, byte) in edits {
            let i = at.index(buf.len());
            buf[i] = byte;
        }
        let peer = Peer::new(&buf, false);
        let got = deliver(&peer);
        prop_assert!(peer.max_reads() <= 1);
        prop_assert_eq!(got, decode_whole(&buf));
    }

    #[test]
    fn a_rewriting_peer_is_decoded_as_first_read(buf in valid_buffer()) {
        let peer = Peer::new(&buf, true);
        prop_assert_eq!(deliver(&peer), decode_whole(&buf));
    }
}

/// The messages of `buf` if it is valid as a whole, else its error.
fn decode_whole(buf: &[u8]) -> Result<Vec<Contents>, WireError> {
    validate_buffer(buf)?;
    decode(buf)
}

/// A source longer than any buffer may be, whose bytes are never read.
struct Huge;

// SAFETY: `copy_to_uninit` never writes and always returns false.
unsafe impl Source for Huge {
    fn len(&self) -> usize {
        MAX_BUFFER_LEN + 1
    }

    fn byte(&self, _: usize) -> Option<u8> {
        panic!("a buffer that is too long must be refused before any byte is read")
    }

    fn copy_to_uninit(&self, _: usize, _: &mut [MaybeUninit<u8>]) -> bool {
        false
    }
}

#[test]
fn a_buffer_longer_than_the_limit_is_refused_unread() {
    let mut index = BufferIndex::new();
    let err = index.build(&Huge).unwrap_err();
    assert_eq!(
        err,
        WireError::BufferTooLong {
            len: MAX_BUFFER_LEN + 1,
            max: MAX_BUFFER_LEN
        }
    );
    assert!(err.to_string().contains("at most 4294967295 bytes"));
}

#[test]
fn an_index_gives_back_what_a_buffer_of_tiny_messages_needed() {
    // 200,000 empty one-frame messages (2 bytes each), then 100,000
    // messages of two empty frames, then a small buffer: the index shrinks
    // back.
    let empty: Vec<Message> = (0..200_000)
        .map(|_| one_frame(b"", Timestamp::None))
        .collect();
    let tiny = encode(&empty, 1 << 20);
    let two: Vec<Message> = (0..100_000)
        .map(|_| {
            let mut m = one_frame(b"", Timestamp::None);
            m.push(Frame::copy(b""));
            m
        })
        .collect();
    let frames = encode(&two, 1 << 20);
    let (small, _) = flippable();
    let mut index = BufferIndex::new();
    assert_eq!(index.build(&tiny[..]), Ok(200_000));
    assert!(index.retained().0 >= 200_000);
    assert_eq!(index.build(&frames[..]), Ok(100_000));
    assert!(index.retained().1 >= 200_000);
    assert_eq!(index.build(&small[..]), Ok(2));
    let (slots, frame_room) = index.retained();
    assert!(
        slots <= 1 << 16 && frame_room <= 1 << 16,
        "{slots} {frame_room}"
    );
    let m = index.message(0).unwrap().to_message(&small[..]);
    assert_eq!(m.payload_size(), 30);
}
