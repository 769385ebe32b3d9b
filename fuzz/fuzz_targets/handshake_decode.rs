//! Fuzz target: the handshake decoder. Arbitrary bytes (at most one
//! datagram, [`MAX_MESSAGE`] bytes, as the socket delivers) must never
//! panic; a message that decodes re-encodes to one that decodes to the
//! same message, and re-encoding that is stable.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lwmq::internals::transport::ipc::proto::{Message, SectionLayout, MAX_MESSAGE, MAX_STAT_REPLY};

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_MESSAGE {
        // The server reads into a MAX_MESSAGE buffer and refuses a
        // truncated datagram; the decoder must still not panic.
        let _ = Message::decode(data);
        return;
    }
    let Ok(m) = Message::decode(data) else {
        return;
    };
    let bytes = m.encode();
    // A STATS message's text is escaped on decode (it may grow, each field
    // capped), and a STATS message may be up to MAX_STAT_REPLY long.
    let limit = match m {
        Message::Stats(_) => MAX_STAT_REPLY,
        _ => MAX_MESSAGE,
    };
    assert!(bytes.len() <= limit);
    let again = Message::decode(&bytes).expect("an encoded message decodes");
    match (&m, &again) {
        // Refusal text is decoded lossily (invalid UTF-8 becomes U+FFFD,
        // which is longer) and encoded capped at 512 bytes, so the text
        // may come back shortened, always as a prefix.
        (
            Message::Refuse { reason, text },
            Message::Refuse {
                reason: r2,
                text: t2,
            },
        ) => {
            assert_eq!(reason.code(), r2.code());
            assert!(text.starts_with(t2.as_str()));
        }
        _ => assert_eq!(m, again),
    }
    assert_eq!(again.encode(), Message::decode(&again.encode()).unwrap().encode());
    if let Message::Accept(a) = m {
        // Whatever a peer claims, computing the layout never panics, and a
        // computed layout lies inside its own length.
        if let Some(l) = SectionLayout::compute(a.buffer_size, a.c2s_capacity, a.s2c_capacity) {
            assert!(l.c2s.fits(l.len) && l.s2c.fits(l.len));
        }
    }
});
