//! Fuzz target: the `tcp://` wire protocol as a peer can send it.
//!
//! The first byte picks the half:
//! - even: the handshake. Arbitrary bytes after a greeting check must never
//!   panic; a frame that decodes re-encodes to one that decodes to the same
//!   message (a REFUSE's text may come back shortened, as a prefix).
//! - odd: the data phase. The bytes are fed to the frame parser twice, in
//!   one piece and in pieces whose sizes come from the input; both runs
//!   must report the same events up to the same first error (the parser
//!   does not depend on how the socket cut the stream), never a payload
//!   longer than the negotiated buffer size, and never a DATA frame the
//!   sink had no credit for.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lwmq::internals::transport::tcp::proto::{
    self, FrameError, FrameParser, FrameSink, Handshake, GREETING_LEN,
};

const BUFFER: usize = 64;

#[derive(Debug, PartialEq)]
enum Event {
    Data(Vec<u8>, bool),
    Credit(u16),
    Flush(u32),
    Flushed(u32),
}

struct Sink {
    credit: u32,
    events: Vec<Event>,
}

impl FrameSink for Sink {
    fn data_buffer(&mut self) -> Result<Vec<u8>, FrameError> {
        if self.credit == 0 {
            return Err(FrameError::Peer("no credit".into()));
        }
        self.credit -= 1;
        Ok(vec![0xEE; BUFFER])
    }
    fn data(&mut self, buf: Vec<u8>, len: usize, erase: bool) {
        assert!(len <= BUFFER, "payload of {len} bytes into buffers of {BUFFER}");
        self.events.push(Event::Data(buf[..len].to_vec(), erase));
    }
    fn credit(&mut self, n: u16) -> Result<(), FrameError> {
        self.events.push(Event::Credit(n));
        Ok(())
    }
    fn flush(&mut self, token: u32) {
        self.events.push(Event::Flush(token));
    }
    fn flushed(&mut self, token: u32) -> Result<(), FrameError> {
        self.events.push(Event::Flushed(token));
        Ok(())
    }
}

fn run(stream: &[u8], cuts: &[u8]) -> (Vec<Event>, Option<String>) {
    let mut p = FrameParser::new(BUFFER);
    let mut sink = Sink {
        credit: 8,
        events: Vec::new(),
    };
    let mut rest = stream;
    let mut i = 0;
    while !rest.is_empty() {
        let n = if cuts.is_empty() {
            rest.len()
        } else {
            (usize::from(cuts[i % cuts.len()]) + 1).min(rest.len())
        };
        i += 1;
        if let Err(e) = p.feed(&rest[..n], &mut sink) {
            return (sink.events, Some(e.to_string()));
        }
        rest = &rest[n..];
    }
    (sink.events, None)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, data)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        let Some(g) = data.first_chunk::<GREETING_LEN>() else {
            return;
        };
        let Ok(version) = proto::check_greeting(g) else {
            return;
        };
        let Ok(Some((m, used))) = proto::parse_handshake(&data[GREETING_LEN..], version) else {
            return;
        };
        assert!(used <= data.len() - GREETING_LEN);
        let bytes = m.encode();
        let (again, n) = proto::parse_handshake(&bytes, version)
            .expect("an encoded message decodes")
            .expect("complete");
        assert_eq!(n, bytes.len());
        match (&m, &again) {
            (Handshake::Refuse { reason, text }, Handshake::Refuse { reason: r2, text: t2 }) => {
                assert_eq!(reason.code(), r2.code());
                assert!(text.starts_with(t2.as_str()));
            }
            _ => assert_eq!(m, again),
        }
        return;
    }
    // Data phase: the first up-to-8 bytes choose the cut sizes.
    let (cuts, stream) = data.split_at(data.len().min(8));
    let whole = run(stream, &[]);
    let pieces = run(stream, cuts);
    assert_eq!(whole, pieces, "the parser depends on how the stream was cut");
    let datas = whole.0.iter().filter(|e| matches!(e, Event::Data(..))).count();
    assert!(datas <= 8, "{datas} DATA frames with 8 credits");
});
