use super::*;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn contents(m: &Message) -> Vec<(Vec<u8>, Option<NtTime>)> {
    m.frames()
        .map(|f| (f.data().to_vec(), f.timestamp()))
        .collect()
}

#[test]
fn message_is_send_sync_and_small() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Message>();
    assert_send_sync::<Frame>();
    // Documented in the module: keep an eye on it when changing frames.
    assert_eq!(std::mem::size_of::<Message>(), 128);
    assert_eq!(std::mem::size_of::<Frame>(), 88);
}

#[test]
fn empty_message_does_not_validate() {
    let m = Message::new();
    assert!(m.is_empty());
    assert_eq!(m.frame_count(), 0);
    assert_eq!(m.validate(), Err(MessageError::NoFrames));
    assert!(m.frame(0).is_none());
    assert_eq!(m.frames().count(), 0);
}

#[test]
fn frame_kinds_and_payload_size() {
    static STATIC: &[u8] = b"static data";
    let mut m = Message::with_capacity(5);
    m.push(Frame::copy(&[1; MAX_INLINE_FRAME_SIZE]));
    m.push(Frame::copy(&[2; MAX_INLINE_FRAME_SIZE + 1]));
    m.push(STATIC);
    m.push(Bytes::from_static(b"bytes"));
    m.push(plain_external(vec![7u8; 3]));
    m.push(Frame::copy(&[]));
    let kinds: Vec<_> = m.frames().map(|f| f.kind()).collect();
    assert_eq!(
        kinds,
        [
            FrameKind::Inline,
            FrameKind::Bytes,
            FrameKind::Static,
            FrameKind::Bytes,
            FrameKind::External,
            FrameKind::Inline
        ]
    );
    assert_eq!(m.frame_count(), 6);
    assert_eq!(m.frames().len(), 6);
    assert_eq!(m.payload_size(), 64 + 65 + STATIC.len() + 5 + 3);
    assert_eq!(m.frame(2).unwrap().data(), STATIC);
    assert_eq!(m.frame(4).unwrap().data(), &[7, 7, 7]);
    assert!(m.frame(5).unwrap().is_empty());
    assert!(m.frame(6).is_none());
    assert!(m.has_external_frames());
    assert!(m.validate().is_ok());
}

#[test]
fn static_frame_is_not_copied() {
    static STATIC: [u8; 4] = [1, 2, 3, 4];
    let mut m = Message::new();
    m.push(&STATIC);
    assert_eq!(m.frame(0).unwrap().data().as_ptr(), STATIC.as_ptr());
}

#[test]
fn bytes_frame_is_not_copied() {
    let b = Bytes::from(vec![9u8; 1000]);
    let ptr = b.as_ptr();
    let mut m = Message::new();
    m.push(b);
    assert_eq!(m.frame(0).unwrap().data().as_ptr(), ptr);
}

/// An external frame without hooks.
fn plain_external(data: Vec<u8>) -> Frame {
    Frame::with_hooks(data, |_| Ok(()), |_| {})
}

#[test]
fn frame_limit_is_checked_at_validation_and_by_try_push() {
    let mut m = Message::with_capacity(MAX_FRAMES);
    for _ in 0..MAX_FRAMES {
        m.push(b"");
    }
    assert_eq!(m.frame_count(), MAX_FRAMES);
    assert_eq!(m.validate(), Ok(()));
    // try_push refuses the next one, gives it back, and changes nothing.
    let err = m.try_push(Frame::copy(b"x")).unwrap_err();
    let expected = MessageError::TooManyFrames {
        count: MAX_FRAMES + 1,
        max: MAX_FRAMES,
    };
    assert_eq!(err.error, expected);
    assert!(err.to_string().contains("65535"), "{err}");
    assert_eq!(err.frame.data(), b"x");
    assert_eq!(m.frame_count(), MAX_FRAMES);
    assert_eq!(m.payload_size(), 0);
    // A refused external frame is given back, unreleased.
    let released = Arc::new(AtomicUsize::new(0));
    let r = released.clone();
    let frame = Frame::with_hooks(
        vec![1u8],
        |_| Ok(()),
        move |_| {
            r.fetch_add(1, Ordering::SeqCst);
        },
    );
    let err = m.try_push(frame).unwrap_err();
    assert_eq!(released.load(Ordering::SeqCst), 0);
    drop(err);
    assert_eq!(released.load(Ordering::SeqCst), 1);
    // push never refuses: the message says so when it is validated.
    m.push(b"one too many");
    assert_eq!(m.frame_count(), MAX_FRAMES + 1);
    assert_eq!(m.validate(), Err(expected));
}

#[test]
fn frame_size_limit_is_checked_at_validation_and_by_try_push() {
    // Zeroed memory is mapped lazily: this costs address space, not RAM.
    let huge = Bytes::from(vec![0u8; MAX_FRAME_SIZE + 1]);
    let mut m = Message::new();
    m.push(b"first");
    let err = m.try_push(huge.clone()).unwrap_err();
    let expected = MessageError::FrameTooLarge {
        index: 1,
        len: MAX_FRAME_SIZE + 1,
        max: MAX_FRAME_SIZE,
    };
    assert_eq!(err.error, expected);
    assert_eq!(err.into_frame().len(), MAX_FRAME_SIZE + 1);
    assert_eq!(m.frame_count(), 1);
    m.push(huge);
    assert_eq!(m.validate(), Err(expected));
    // Frames of up to the limit each, more than the limit in total: valid.
    let big = Bytes::from(vec![0u8; MAX_FRAME_SIZE]);
    let two = Message::from_frames([big.clone(), big]);
    assert_eq!(two.payload_size(), 2 * MAX_FRAME_SIZE);
    assert_eq!(two.validate(), Ok(()));
}

#[test]
fn validation_names_the_rule() {
    assert_eq!(Message::new().validate(), Err(MessageError::NoFrames));
    assert!(MessageError::NoFrames
        .to_string()
        .contains("at least one frame"));
    let e = MessageError::FrameTooLarge {
        index: 3,
        len: 5_000_000_000,
        max: MAX_FRAME_SIZE,
    };
    assert_eq!(
        e.to_string(),
        "frame 3 holds 5000000000 bytes but a frame holds at most 4294967295; split the data over several frames"
    );
}

#[test]
fn timestamps_are_resolved_when_appended() {
    let at = NtTime::from_ticks(42);
    let mut m = Message::new();
    let before = NtTime::now();
    m.push(Frame::copy(b"a"));
    m.push(Frame::copy(b"b").with_timestamp(Timestamp::Now));
    m.push(Frame::copy(b"c").with_timestamp(Timestamp::PreciseNow));
    m.push(Frame::copy(b"d").with_timestamp(Timestamp::At(at)));
    let after = NtTime::now();
    assert_eq!(m.frame(0).unwrap().timestamp(), None);
    for i in 1..=2 {
        let t = m.frame(i).unwrap().timestamp().unwrap();
        assert!(
            before <= t && t <= after,
            "{before:?} <= {t:?} <= {after:?}"
        );
    }
    assert_eq!(m.frame(3).unwrap().timestamp(), Some(at));
    assert_eq!(Timestamp::from(Some(at)), Timestamp::At(at));
    assert_eq!(Timestamp::from(None), Timestamp::None);
}

#[test]
fn share_is_cheap_and_copy_on_write() {
    let mut a = Message::new();
    a.push(Frame::copy(&[5; 1000]));
    let b = a.share();
    assert!(a.is_shared() && b.is_shared());
    assert_eq!(
        a.frame(0).unwrap().data().as_ptr(),
        b.frame(0).unwrap().data().as_ptr()
    );
    // Appending to a shared message detaches it; the sharer is unchanged.
    a.push(Frame::copy(b"more"));
    assert_eq!(a.frame_count(), 2);
    assert_eq!(b.frame_count(), 1);
    assert_eq!(b.payload_size(), 1000);
    assert!(!a.is_shared() && !b.is_shared());
    // Large frames stay shared after the detach.
    assert_eq!(
        a.frame(0).unwrap().data().as_ptr(),
        b.frame(0).unwrap().data().as_ptr()
    );
    assert_eq!(contents(&b), vec![(vec![5; 1000], None)]);
}

#[derive(Default)]
struct Counters {
    acquired: AtomicUsize,
    released: AtomicUsize,
}

struct Counted {
    data: Vec<u8>,
    counters: Arc<Counters>,
    fail: Option<AcquireError>,
}

impl ExternalData for Counted {
    fn data(&self) -> &[u8] {
        &self.data
    }
    fn acquire(&self) -> Result<(), AcquireError> {
        self.counters.acquired.fetch_add(1, Ordering::SeqCst);
        self.fail.map_or(Ok(()), Err)
    }
    fn release(&mut self) {
        self.counters.released.fetch_add(1, Ordering::SeqCst);
    }
}

fn counted(fail: Option<AcquireError>) -> (Frame, Arc<Counters>) {
    let counters = Arc::new(Counters::default());
    let frame = Frame::external(Counted {
        data: b"external".to_vec(),
        counters: counters.clone(),
        fail,
    });
    (frame, counters)
}

fn counts(c: &Counters) -> (usize, usize) {
    (
        c.acquired.load(Ordering::SeqCst),
        c.released.load(Ordering::SeqCst),
    )
}

#[test]
fn external_released_once_when_dropped_unposted() {
    let (frame, c) = counted(None);
    let mut m = Message::new();
    m.push(frame);
    assert_eq!(counts(&c), (0, 0));
    drop(m);
    assert_eq!(counts(&c), (0, 1));
}

#[test]
fn external_released_once_when_never_appended() {
    let (frame, c) = counted(None);
    assert_eq!(frame.data(), b"external");
    drop(frame);
    assert_eq!(counts(&c), (0, 1));
}

#[test]
fn external_shared_twice_released_once_after_both_drop() {
    let (frame, c) = counted(None);
    let mut m = Message::new();
    m.push(frame);
    let r1 = m.share();
    let r2 = m.share();
    m.acquire_external().unwrap();
    r1.acquire_external().unwrap();
    r2.acquire_external().unwrap();
    assert_eq!(counts(&c), (1, 0));
    drop(m);
    drop(r1);
    assert_eq!(counts(&c), (1, 0));
    drop(r2);
    assert_eq!(counts(&c), (1, 1));
}

#[test]
fn external_survives_copy_on_write_detach() {
    let (frame, c) = counted(None);
    let mut a = Message::new();
    a.push(frame);
    let b = a.share();
    a.push(Frame::copy(b"x")); // detaches `a`
    drop(b);
    assert_eq!(counts(&c), (0, 0));
    a.acquire_external().unwrap();
    drop(a);
    assert_eq!(counts(&c), (1, 1));
}

#[test]
fn external_acquire_once_across_threads() {
    let (frame, c) = counted(None);
    let mut m = Message::new();
    m.push(frame);
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let r = m.share();
            std::thread::spawn(move || r.acquire_external())
        })
        .collect();
    for h in handles {
        h.join().unwrap().unwrap();
    }
    assert_eq!(counts(&c), (1, 0));
    drop(m);
    assert_eq!(counts(&c), (1, 1));
}

#[test]
fn external_acquire_failure_is_reported_and_not_retried() {
    let (frame, c) = counted(Some(AcquireError::new(-2147024882)));
    let mut m = Message::new();
    m.push(Frame::copy(b"first"));
    m.push(frame);
    let err = m.acquire_external().unwrap_err();
    assert!(matches!(err, MessageError::Acquire { frame: 1, .. }));
    assert!(err.to_string().contains("0x8007000e"), "{err}");
    assert_eq!(m.acquire_external(), Err(err));
    assert_eq!(counts(&c), (1, 0));
    drop(m);
    assert_eq!(counts(&c), (1, 1));
}

#[test]
fn with_hooks_passes_the_data() {
    let seen = Arc::new(AtomicUsize::new(0));
    let (s1, s2) = (seen.clone(), seen.clone());
    let frame = Frame::with_hooks(
        vec![1u8, 2, 3],
        move |d| {
            s1.fetch_add(d.len(), Ordering::SeqCst);
            Ok(())
        },
        move |d| {
            s2.fetch_add(d.len() * 10, Ordering::SeqCst);
        },
    );
    let mut m = Message::new();
    m.push(frame);
    m.acquire_external().unwrap();
    m.acquire_external().unwrap();
    drop(m);
    assert_eq!(seen.load(Ordering::SeqCst), 33);
}

#[test]
fn nt_time_known_values() {
    assert_eq!(NtTime::UNIX_EPOCH.ticks(), 116_444_736_000_000_000);
    assert_eq!(
        NtTime::from_system_time(UNIX_EPOCH),
        Some(NtTime::UNIX_EPOCH)
    );
    assert_eq!(NtTime::UNIX_EPOCH.to_system_time(), Some(UNIX_EPOCH));
    // 2000-01-01T00:00:00Z = Unix 946684800.
    let y2k = UNIX_EPOCH + Duration::from_secs(946_684_800);
    assert_eq!(
        NtTime::from_system_time(y2k).unwrap().ticks(),
        125_911_584_000_000_000
    );
    // 1601-01-01 is tick 0; one nanosecond earlier is out of range.
    let start = UNIX_EPOCH - Duration::from_secs(11_644_473_600);
    assert_eq!(NtTime::from_system_time(start), Some(NtTime::from_ticks(0)));
    assert_eq!(
        NtTime::from_system_time(start - Duration::from_nanos(1)),
        None
    );
    assert_eq!(NtTime::from_ticks(0).to_system_time(), Some(start));
    // The last tick converts both ways.
    let last = NtTime::from_ticks(u64::MAX);
    let t = last.to_system_time().unwrap();
    assert_eq!(NtTime::from_system_time(t), Some(last));
    assert_eq!(
        NtTime::from_system_time(t + Duration::from_nanos(100)),
        None
    );
}

#[test]
fn nt_time_truncates_toward_the_past() {
    let after = UNIX_EPOCH + Duration::from_nanos(199);
    assert_eq!(
        NtTime::from_system_time(after).unwrap().ticks(),
        NtTime::UNIX_EPOCH_TICKS + 1
    );
    let before = UNIX_EPOCH - Duration::from_nanos(1);
    assert_eq!(
        NtTime::from_system_time(before).unwrap().ticks(),
        NtTime::UNIX_EPOCH_TICKS - 1
    );
    let before = UNIX_EPOCH - Duration::from_nanos(100);
    assert_eq!(
        NtTime::from_system_time(before).unwrap().ticks(),
        NtTime::UNIX_EPOCH_TICKS - 1
    );
}

#[test]
fn nt_time_now_and_durations() {
    let a = NtTime::now();
    let sys = SystemTime::now();
    let b = NtTime::now();
    let mid = NtTime::from_system_time(sys).unwrap();
    assert!(a <= mid && mid <= b);
    assert_eq!(
        NtTime::from_ticks(15).checked_duration_since(NtTime::from_ticks(5)),
        Some(Duration::from_micros(1))
    );
    assert_eq!(
        NtTime::from_ticks(5).checked_duration_since(NtTime::from_ticks(15)),
        None
    );
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn nt_time_round_trips_through_system_time(ticks in any::<u64>()) {
            let t = NtTime::from_ticks(ticks);
            let sys = t.to_system_time().unwrap();
            prop_assert_eq!(NtTime::from_system_time(sys), Some(t));
        }

        #[test]
        fn system_time_truncates_to_the_containing_tick(
            secs in 0u64..20_000_000_000, nanos in 0u32..1_000_000_000, before in any::<bool>()
        ) {
            let d = Duration::new(secs, nanos);
            let sys = if before { UNIX_EPOCH.checked_sub(d) } else { UNIX_EPOCH.checked_add(d) };
            let sys = sys.unwrap();
            if let Some(t) = NtTime::from_system_time(sys) {
                let back = t.to_system_time().unwrap();
                prop_assert!(back <= sys);
                prop_assert!(sys.duration_since(back).unwrap() < Duration::from_nanos(100));
            } else {
                prop_assert!(before);
            }
        }

        #[test]
        fn payload_size_is_the_sum_of_frames(lens in proptest::collection::vec(0usize..300, 1..50)) {
            let mut m = Message::new();
            for &len in &lens {
                m.push(Frame::copy(&vec![1u8; len]));
            }
            prop_assert_eq!(m.payload_size(), lens.iter().sum::<usize>());
            prop_assert_eq!(m.frame_count(), lens.len());
            let got: Vec<usize> = m.frames().map(|f| f.len()).collect();
            prop_assert_eq!(got, lens);
        }
    }
}

#[test]
fn frames_read_and_copy_out() {
    let mut m = Message::new();
    m.push(Frame::copy(b"0123456789"));
    m.push(Bytes::from(vec![7u8; 100]));
    let f = m.frame(0).unwrap();
    let mut dst = [0u8; 4];
    assert_eq!(f.read(8, &mut dst), 2);
    assert_eq!(&dst[..2], b"89");
    assert_eq!(f.read(10, &mut dst), 0);
    assert_eq!(f.read(usize::MAX, &mut dst), 0);
    assert_eq!(f.copy_to(&mut dst), 4);
    assert_eq!(&dst, b"0123");
    let mut whole = [0u8; 12];
    assert_eq!(f.copy_to(&mut whole), 10);
    assert_eq!(f.to_vec(), b"0123456789");
    assert_eq!(m.frame(1).unwrap().to_vec(), vec![7u8; 100]);
}

#[test]
fn decoded_messages_take_their_sizes_from_their_frames() {
    let m = Message::from_inline_decoded(3, Some(NtTime::from_ticks(5)), |b| {
        b[..3].copy_from_slice(b"abc");
    });
    assert_eq!(
        contents(&m),
        vec![(b"abc".to_vec(), Some(NtTime::from_ticks(5)))]
    );
    assert_eq!((m.frame_count(), m.payload_size()), (1, 3));
    // A length past the inline size reads as that size.
    let m = Message::from_inline_decoded(1000, None, |_| {});
    assert_eq!(m.payload_size(), MAX_INLINE_FRAME_SIZE);
    assert_eq!(m.frame(0).unwrap().len(), MAX_INLINE_FRAME_SIZE);
    let mut bytes = [0u8; MAX_INLINE_FRAME_SIZE];
    bytes[..2].copy_from_slice(b"hi");
    let frames = vec![
        Frame::decoded_inline(2, bytes, None),
        Frame::decoded_bytes(Bytes::from_static(b"large"), None),
        Frame::decoded_inline(200, bytes, None),
    ];
    let m = Message::from_decoded(frames.into_iter());
    assert_eq!(m.frame_count(), 3);
    assert_eq!(m.payload_size(), 2 + 5 + MAX_INLINE_FRAME_SIZE);
    assert_eq!(m.frames().map(|f| f.len()).sum::<usize>(), m.payload_size());
    let one = Message::from_decoded_bytes(Bytes::from_static(b"x"), None);
    assert_eq!((one.frame_count(), one.payload_size()), (1, 1));
}

mod conversions {
    use super::*;

    fn one(m: &Message) -> (FrameKind, Vec<u8>) {
        assert_eq!(m.frame_count(), 1);
        let f = m.frame(0).unwrap();
        (f.kind(), f.to_vec())
    }

    #[test]
    fn every_conversion_makes_a_one_frame_message_holding_the_bytes_as_documented() {
        static STATIC: [u8; 3] = [1, 2, 3];
        let v = vec![4u8; 100];
        let v_ptr = v.as_ptr();
        let m = Message::from(v);
        assert_eq!(one(&m), (FrameKind::Bytes, vec![4u8; 100]));
        assert_eq!(m.frame(0).unwrap().data().as_ptr(), v_ptr, "Vec taken over");

        let b = Bytes::from(vec![5u8; 10]);
        let b_ptr = b.as_ptr();
        let m = Message::from(b);
        assert_eq!(one(&m), (FrameKind::Bytes, vec![5u8; 10]));
        assert_eq!(
            m.frame(0).unwrap().data().as_ptr(),
            b_ptr,
            "Bytes taken over"
        );

        let s = String::from("text");
        let s_ptr = s.as_ptr();
        let m = Message::from(s);
        assert_eq!(one(&m), (FrameKind::Bytes, b"text".to_vec()));
        assert_eq!(
            m.frame(0).unwrap().data().as_ptr(),
            s_ptr,
            "String taken over"
        );

        let boxed: Box<[u8]> = vec![6u8; 7].into_boxed_slice();
        let m = Message::from(boxed);
        assert_eq!(one(&m), (FrameKind::Bytes, vec![6u8; 7]));

        let m = Message::from(&STATIC[..]);
        assert_eq!(one(&m), (FrameKind::Static, vec![1, 2, 3]));
        assert_eq!(m.frame(0).unwrap().data().as_ptr(), STATIC.as_ptr());

        let m = Message::from(&STATIC);
        assert_eq!(one(&m), (FrameKind::Static, vec![1, 2, 3]));
        assert_eq!(m.frame(0).unwrap().data().as_ptr(), STATIC.as_ptr());

        let text: &'static str = "static text";
        let m = Message::from(text);
        assert_eq!(one(&m), (FrameKind::Static, b"static text".to_vec()));
        assert_eq!(m.frame(0).unwrap().data().as_ptr(), text.as_ptr());

        let m = Message::from(Frame::copy(&[9u8; 64]));
        assert_eq!(one(&m), (FrameKind::Inline, vec![9u8; 64]));
        let m = Message::from(Frame::copy(&[9u8; 65]));
        assert_eq!(one(&m), (FrameKind::Bytes, vec![9u8; 65]));

        let m = Message::from(plain_external(vec![8u8; 2]));
        assert_eq!(one(&m), (FrameKind::External, vec![8u8; 2]));
        assert!(m.has_external_frames());
    }

    #[test]
    fn from_frames_collect_and_extend_push_in_order() {
        let a = Message::from_frames([
            Frame::copy(b"a"),
            Frame::from(b"b"),
            Frame::from(vec![b'c']),
        ]);
        let b: Message = vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]
            .into_iter()
            .collect();
        let mut c = Message::from(b"a");
        c.extend(["b", "c"]);
        assert_eq!(a, b);
        assert_eq!(b, c);
        assert_eq!(a.to_vec(), b"abc");
        assert_eq!(a.payload_size(), 3);
        assert!(Message::from_frames(Vec::<Frame>::new()).is_empty());
    }

    #[test]
    fn push_chains_and_the_first_frame_needs_no_list() {
        let mut m = Message::new();
        m.push(b"one")
            .push(Frame::copy(b"two"))
            .push(String::from("three"));
        assert_eq!(m.frame_count(), 3);
        assert_eq!(m.to_vec(), b"onetwothree");
        let mut t = Message::new();
        t.try_push(b"x").unwrap().try_push(b"y").unwrap();
        assert_eq!(t.to_vec(), b"xy");
    }

    #[test]
    fn with_timestamp_stamps_and_unstamps() {
        let at = NtTime::from_ticks(7);
        let f = Frame::from(b"x").with_timestamp(at);
        assert_eq!(f.timestamp(), Some(at));
        assert_eq!(f.clone().with_timestamp(Timestamp::None).timestamp(), None);
        let before = NtTime::now();
        let now = Frame::copy(b"y").with_timestamp(Timestamp::Now);
        assert!(now.timestamp().unwrap() >= before);
        // Equality compares bytes and timestamps, not kinds.
        assert_eq!(
            Frame::from(b"x").with_timestamp(at),
            Frame::copy(b"x").with_timestamp(at)
        );
        assert_ne!(Frame::from(b"x"), Frame::from(b"x").with_timestamp(at));
    }

    #[test]
    fn frame_bytes_shares_bytes_and_static_frames_and_copies_the_others() {
        let big = Bytes::from(vec![1u8; 1000]);
        static STATIC: &[u8] = b"static";
        let m = Message::from_frames([
            Frame::from(big.clone()),
            Frame::from(STATIC),
            Frame::copy(b"inline"),
            plain_external(vec![2u8; 5]),
        ]);
        assert_eq!(m.frame_bytes(0).unwrap().as_ptr(), big.as_ptr());
        assert_eq!(m.frame_bytes(1).unwrap().as_ptr(), STATIC.as_ptr());
        assert_eq!(&m.frame_bytes(2).unwrap()[..], b"inline");
        assert_eq!(&m.frame_bytes(3).unwrap()[..], &[2u8; 5]);
        assert!(m.frame_bytes(4).is_none());
    }

    #[test]
    fn into_frames_moves_the_frames_out_and_keeps_timestamps() {
        let big = Bytes::from(vec![1u8; 1000]);
        let at = NtTime::from_ticks(3);
        let m = Message::from_frames([
            Frame::from(big.clone()).with_timestamp(at),
            Frame::copy(b"small"),
        ]);
        let frames: Vec<Frame> = m.into_frames().collect();
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].timestamp(), Some(at));
        assert_eq!(frames[0].data().as_ptr(), big.as_ptr());
        let b = frames[0].clone().into_bytes();
        assert_eq!(b.as_ptr(), big.as_ptr());
        assert_eq!(&frames[1].clone().into_bytes()[..], b"small");
        // A shared message gives clones; the other sharer keeps its frames.
        let mut s = Message::from(big.clone());
        let other = s.share();
        let out: Vec<Frame> = s.into_frames().collect();
        assert_eq!(out[0].data().as_ptr(), big.as_ptr());
        assert_eq!(other.frame(0).unwrap().data().as_ptr(), big.as_ptr());
        // Forwarding frames into another message copies nothing.
        let fwd = Message::from_frames(Message::from(big.clone()).into_frames());
        assert_eq!(fwd.frame(0).unwrap().data().as_ptr(), big.as_ptr());
    }

    #[test]
    fn external_frame_moved_out_is_released_once() {
        let (frame, c) = counted(None);
        let m = Message::from(frame);
        let mut frames = m.into_frames();
        let f = frames.next().unwrap();
        assert_eq!(counts(&c), (0, 0));
        let bytes = f.into_bytes();
        assert_eq!(&bytes[..], b"external");
        assert_eq!(counts(&c), (0, 1));
    }

    /// Reads through the trait only.
    fn read_all<M: MessageRead>(m: &M) -> Vec<(usize, Option<NtTime>, Vec<u8>)> {
        m.frames()
            .map(|f| (f.len(), f.timestamp(), FrameRead::to_vec(&f)))
            .collect()
    }

    #[test]
    fn the_reading_trait_reads_a_message_as_its_own_methods_do() {
        let at = NtTime::from_ticks(11);
        let m = Message::from_frames([
            Frame::copy(b"abc").with_timestamp(at),
            Frame::from(vec![7u8; 300]),
            Frame::from(b""),
        ]);
        let by_trait = read_all(&m);
        let by_methods: Vec<_> = m
            .frames()
            .map(|f| (f.len(), f.timestamp(), f.to_vec()))
            .collect();
        assert_eq!(by_trait, by_methods);
        assert_eq!(MessageRead::frame_count(&m), 3);
        assert_eq!(MessageRead::payload_size(&m), 303);
        assert_eq!(MessageRead::to_vec(&m), m.to_vec());
        let f = MessageRead::frame(&m, 1).unwrap();
        let mut dst = [0u8; 8];
        assert_eq!(FrameRead::read(&f, 296, &mut dst), 4);
        assert_eq!(FrameRead::copy_to(&f, &mut dst), 8);
        assert!(FrameRead::is_empty(&MessageRead::frame(&m, 2).unwrap()));
        // The trait's default `to_vec` (used by lent messages) agrees.
        struct ViaDefault<'a>(&'a Message);
        impl MessageRead for ViaDefault<'_> {
            type Frame<'a>
                = FrameRef<'a>
            where
                Self: 'a;
            type Frames<'a>
                = Frames<'a>
            where
                Self: 'a;
            fn frame_count(&self) -> usize {
                self.0.frame_count()
            }
            fn payload_size(&self) -> usize {
                self.0.payload_size()
            }
            fn frame(&self, i: usize) -> Option<FrameRef<'_>> {
                self.0.frame(i)
            }
            fn frames(&self) -> Frames<'_> {
                self.0.frames()
            }
        }
        assert_eq!(ViaDefault(&m).to_vec(), m.to_vec());
        // A frame value reads the same way.
        let frame = Frame::copy(b"xyz");
        assert_eq!(FrameRead::to_vec(&frame), b"xyz");
        assert_eq!(FrameRead::len(&frame), 3);
    }

    #[test]
    fn a_frame_ref_becomes_a_frame_sharing_its_memory() {
        let big = Bytes::from(vec![3u8; 500]);
        let m = Message::from(big.clone());
        let f = Frame::from(m.frame(0).unwrap());
        assert_eq!(f.data().as_ptr(), big.as_ptr());
        assert_eq!(
            format!("{f:?}"),
            "Frame { kind: Bytes, len: 500, timestamp: None }"
        );
    }
}
