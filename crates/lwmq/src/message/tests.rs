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
    assert_send_sync::<ExternalFrame>();
    // Documented in the module: keep an eye on it when changing frames.
    assert_eq!(std::mem::size_of::<Message>(), 128);
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
    m.push_copy(&[1; MAX_INLINE_FRAME_SIZE], Timestamp::None)
        .unwrap();
    m.push_copy(&[2; MAX_INLINE_FRAME_SIZE + 1], Timestamp::None)
        .unwrap();
    m.push_static(STATIC, Timestamp::None).unwrap();
    m.push_bytes(Bytes::from_static(b"bytes"), Timestamp::None)
        .unwrap();
    m.push_external(ExternalFrame::from_owner(vec![7u8; 3]), Timestamp::None)
        .unwrap();
    m.push_copy(&[], Timestamp::None).unwrap();
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
    m.push_static(&STATIC, Timestamp::None).unwrap();
    assert_eq!(m.frame(0).unwrap().data().as_ptr(), STATIC.as_ptr());
}

#[test]
fn bytes_frame_is_not_copied() {
    let b = Bytes::from(vec![9u8; 1000]);
    let ptr = b.as_ptr();
    let mut m = Message::new();
    m.push_bytes(b, Timestamp::None).unwrap();
    assert_eq!(m.frame(0).unwrap().data().as_ptr(), ptr);
}

#[test]
fn frame_limit_is_enforced() {
    let mut m = Message::with_capacity(MAX_FRAMES);
    for _ in 0..MAX_FRAMES {
        m.push_copy(b"", Timestamp::None).unwrap();
    }
    assert_eq!(m.frame_count(), MAX_FRAMES);
    let err = m.push_copy(b"x", Timestamp::None).unwrap_err();
    assert_eq!(err, MessageError::TooManyFrames { max: MAX_FRAMES });
    assert!(err.to_string().contains("65535"));
    // The failed push left the message as it was.
    assert_eq!(m.frame_count(), MAX_FRAMES);
    assert_eq!(m.payload_size(), 0);
    // A refused external frame is given back, unreleased.
    let released = Arc::new(AtomicUsize::new(0));
    let r = released.clone();
    let frame = ExternalFrame::with_hooks(
        vec![1u8],
        |_| Ok(()),
        move |_| {
            r.fetch_add(1, Ordering::SeqCst);
        },
    );
    let err = m.push_external(frame, Timestamp::None).unwrap_err();
    assert_eq!(err.error, MessageError::TooManyFrames { max: MAX_FRAMES });
    assert_eq!(released.load(Ordering::SeqCst), 0);
    drop(err);
    assert_eq!(released.load(Ordering::SeqCst), 1);
}

#[test]
fn frame_size_limit_is_enforced() {
    // Zeroed memory is mapped lazily: this costs address space, not RAM.
    let huge = Bytes::from(vec![0u8; MAX_FRAME_SIZE + 1]);
    let mut m = Message::new();
    let err = m.push_bytes(huge, Timestamp::None).unwrap_err();
    assert_eq!(
        err,
        MessageError::FrameTooLarge {
            len: MAX_FRAME_SIZE + 1,
            max: MAX_FRAME_SIZE
        }
    );
    assert!(m.is_empty());
}

#[test]
fn timestamps_are_resolved_when_appended() {
    let at = NtTime::from_ticks(42);
    let mut m = Message::new();
    let before = NtTime::now();
    m.push_copy(b"a", Timestamp::None).unwrap();
    m.push_copy(b"b", Timestamp::SystemTime).unwrap();
    m.push_copy(b"c", Timestamp::PreciseSystemTime).unwrap();
    m.push_copy(b"d", Timestamp::At(at)).unwrap();
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
    a.push_copy(&[5; 1000], Timestamp::None).unwrap();
    let b = a.share();
    assert!(a.is_shared() && b.is_shared());
    assert_eq!(
        a.frame(0).unwrap().data().as_ptr(),
        b.frame(0).unwrap().data().as_ptr()
    );
    // Appending to a shared message detaches it; the sharer is unchanged.
    a.push_copy(b"more", Timestamp::None).unwrap();
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

fn counted(fail: Option<AcquireError>) -> (ExternalFrame, Arc<Counters>) {
    let counters = Arc::new(Counters::default());
    let frame = ExternalFrame::new(Counted {
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
    m.push_external(frame, Timestamp::None).unwrap();
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
    m.push_external(frame, Timestamp::None).unwrap();
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
    a.push_external(frame, Timestamp::None).unwrap();
    let b = a.share();
    a.push_copy(b"x", Timestamp::None).unwrap(); // detaches `a`
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
    m.push_external(frame, Timestamp::None).unwrap();
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
    m.push_copy(b"first", Timestamp::None).unwrap();
    m.push_external(frame, Timestamp::None).unwrap();
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
    let frame = ExternalFrame::with_hooks(
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
    m.push_external(frame, Timestamp::None).unwrap();
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
                m.push_copy(&vec![1u8; len], Timestamp::None).unwrap();
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
    m.push_copy(b"0123456789", Timestamp::None).unwrap();
    m.push_bytes(Bytes::from(vec![7u8; 100]), Timestamp::None)
        .unwrap();
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
        (DecodedData::Inline { len: 2, bytes }, None),
        (DecodedData::Bytes(Bytes::from_static(b"large")), None),
        (DecodedData::Inline { len: 200, bytes }, None),
    ];
    let m = Message::from_decoded(frames.into_iter());
    assert_eq!(m.frame_count(), 3);
    assert_eq!(m.payload_size(), 2 + 5 + MAX_INLINE_FRAME_SIZE);
    assert_eq!(m.frames().map(|f| f.len()).sum::<usize>(), m.payload_size());
    let one = Message::from_decoded_frame(DecodedData::Bytes(Bytes::from_static(b"x")), None);
    assert_eq!((one.frame_count(), one.payload_size()), (1, 1));
}
