use super::*;

use serde::ser::Error as _;

use crate::message::{FrameKind, NtTime};
use crate::wire::{BufferIndex, BufferWriter, SharedBytes};

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
enum Shape {
    Dot,
    Line { from: (i32, i32), to: (i32, i32) },
    Text(String),
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Record {
    seq: u64,
    at: Option<u64>,
    shape: Shape,
    payload: Vec<u8>,
}

fn record(seq: u64, payload: usize) -> Record {
    Record {
        seq,
        at: seq.is_multiple_of(2).then_some(seq * 3),
        shape: match seq % 3 {
            0 => Shape::Dot,
            1 => Shape::Line {
                from: (-1, 2),
                to: (3, -4),
            },
            _ => Shape::Text(format!("record {seq}")),
        },
        payload: vec![seq as u8; payload],
    }
}

/// Runs `f` on the message lent in place (through a transport-buffer view)
/// and as an owned one.
fn lent_both<R>(message: &Message, mut f: impl FnMut(Lent<'_>) -> R) -> [R; 2] {
    let mut buf = vec![0u8; 1 << 20];
    let used = {
        let mut w = BufferWriter::new(&mut buf).unwrap();
        w.try_push(message).unwrap();
        w.finish()
    };
    let mut index = BufferIndex::new();
    index.build(&buf[..used]).unwrap();
    // SAFETY: `buf` outlives the view and nothing writes it meanwhile.
    let view = unsafe { SharedBytes::new(buf.as_ptr(), used) };
    let in_place = f(Lent::in_place(view, index.message(0).unwrap()));
    let owned = f(Lent::owned(message));
    [in_place, owned]
}

#[test]
fn records_round_trip_through_messages_and_lent_messages() {
    for (seq, payload) in [(0, 0), (1, 10), (2, 40), (3, 1000), (4, 100_000)] {
        let sent = record(seq, payload);
        let m = Message::encode(&sent).unwrap();
        assert_eq!(m.frame_count(), 1);
        assert_eq!(m.decode::<Record>().unwrap(), sent);
        assert_eq!(decode::<Record, _>(&m).unwrap(), sent);
        for got in lent_both(&m, |l| l.decode::<Record>().unwrap()) {
            assert_eq!(got, sent);
        }
        for got in lent_both(&m, |l| decode::<Record, _>(&l).unwrap()) {
            assert_eq!(got, sent);
        }
    }
}

#[test]
fn small_values_are_encoded_inline_and_large_ones_take_their_buffer_over() {
    let small = Message::encode(&record(0, 8)).unwrap();
    assert_eq!(small.frame(0).unwrap().kind(), FrameKind::Inline);
    // Exactly 64 bytes of encoding still fits inline: a 63-byte vector is
    // one length byte and 63 data bytes.
    let edge = Message::encode(&vec![7u8; 63]).unwrap();
    assert_eq!(edge.payload_size(), MAX_INLINE_FRAME_SIZE);
    assert_eq!(edge.frame(0).unwrap().kind(), FrameKind::Inline);
    let over = Message::encode(&vec![7u8; 64]).unwrap();
    assert_eq!(over.payload_size(), MAX_INLINE_FRAME_SIZE + 1);
    assert_eq!(over.frame(0).unwrap().kind(), FrameKind::Bytes);
    assert_eq!(over.decode::<Vec<u8>>().unwrap(), vec![7u8; 64]);
}

#[test]
fn a_value_may_borrow_from_an_owned_message() {
    #[derive(Serialize, Deserialize)]
    struct View<'a> {
        name: &'a str,
        #[serde(with = "serde_bytes_like")]
        data: &'a [u8],
    }
    mod serde_bytes_like {
        pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(v)
        }
        pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<&'de [u8], D::Error> {
            <&[u8] as serde::Deserialize>::deserialize(d)
        }
    }
    let m = Message::encode(&View {
        name: "sensor",
        data: &[1; 500],
    })
    .unwrap();
    let v: View<'_> = m.decode().unwrap();
    assert_eq!(v.name, "sensor");
    let frame = m.frame(0).unwrap().data().as_ptr_range();
    assert!(
        frame.contains(&v.data.as_ptr()),
        "not borrowed from the frame"
    );
}

#[test]
fn errors_name_what_is_wrong() {
    // Not one frame.
    let e = Message::new().decode::<u32>().unwrap_err();
    assert!(matches!(e, CodecError::FrameCount { found: 0 }), "{e:?}");
    let two = Message::from_frames([b"a", b"b"]);
    let e = two.decode::<u32>().unwrap_err();
    assert!(matches!(e, CodecError::FrameCount { found: 2 }));
    assert!(e
        .to_string()
        .contains("exactly one frame but this one has 2"));
    for e in lent_both(&two, |l| l.decode::<u32>().unwrap_err()) {
        assert!(matches!(e, CodecError::FrameCount { found: 2 }));
    }
    // Not a value of that type: too short, or invalid.
    let e = Message::from(b"").decode::<u32>().unwrap_err();
    assert!(matches!(e, CodecError::Decode { len: 0, .. }), "{e:?}");
    assert!(std::error::Error::source(&e).is_some());
    let e = Message::from(&[0xff; 10]).decode::<u32>().unwrap_err();
    assert!(matches!(e, CodecError::Decode { len: 10, .. }), "{e:?}");
    let e = Message::from(&[2, 0xff, 0xfe])
        .decode::<String>()
        .unwrap_err();
    assert!(matches!(e, CodecError::Decode { .. }), "{e:?}");
    assert!(e.to_string().contains("another type"), "{e}");
    // Left-over bytes: encoded from another type.
    let m = Message::encode(&(1u32, 2u32)).unwrap();
    let e = m.decode::<u32>().unwrap_err();
    assert!(
        matches!(e, CodecError::TrailingBytes { used: 1, len: 2 }),
        "{e:?}"
    );
    for e in lent_both(&m, |l| l.decode::<u32>().unwrap_err()) {
        assert!(matches!(e, CodecError::TrailingBytes { used: 1, len: 2 }));
    }
    // A value that refuses to be encoded.
    struct Refuses;
    impl Serialize for Refuses {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(S::Error::custom("no"))
        }
    }
    let e = Message::encode(&Refuses).unwrap_err();
    assert!(matches!(e, CodecError::Encode(_)), "{e:?}");
    assert!(e.to_string().starts_with("the value could not be encoded"));
    // One postcard cannot write: a sequence of unknown length (after the
    // inline attempt, too: the error is the same).
    struct Unsized(usize);
    impl Serialize for Unsized {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeSeq;
            let mut seq = s.serialize_seq(None)?;
            for i in 0..self.0 {
                seq.serialize_element(&i)?;
            }
            seq.end()
        }
    }
    assert!(matches!(
        Message::encode(&Unsized(1000)),
        Err(CodecError::Encode(_))
    ));
}

#[test]
fn a_timestamp_does_not_stop_decoding() {
    let m = Message::encode(&5u8).unwrap();
    let stamped = Message::from_frames(
        m.into_frames()
            .map(|f| f.with_timestamp(NtTime::from_ticks(1))),
    );
    assert_eq!(stamped.decode::<u8>().unwrap(), 5);
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn decoded_equals_encoded(
            seq in any::<u64>(),
            at in proptest::option::of(any::<u64>()),
            text in ".{0,80}",
            payload in proptest::collection::vec(any::<u8>(), 0..2000),
        ) {
            let sent = Record { seq, at, shape: Shape::Text(text), payload };
            let m = Message::encode(&sent).unwrap();
            prop_assert_eq!(m.decode::<Record>().unwrap(), sent.clone());
            for got in lent_both(&m, |l| l.decode::<Record>().unwrap()) {
                prop_assert_eq!(&got, &sent);
            }
        }

        #[test]
        fn decoding_any_frame_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let m = Message::from(bytes);
            let _ = m.decode::<Record>();
            let _ = m.decode::<(u64, String, Vec<u8>)>();
        }
    }
}
