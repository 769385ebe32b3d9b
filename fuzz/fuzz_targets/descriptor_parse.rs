//! Fuzz target: the descriptor parser, from UTF-8 text and from UTF-16
//! units (the C API's form). It must never panic; every rejection names a
//! rule; every accepted descriptor round-trips through its canonical form
//! and maps to a rendezvous name that fits an abstract socket address.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lwmq::internals::descriptor::{from_utf16, IpcAddress};

fn check(text: &str) {
    match IpcAddress::parse(text) {
        Ok(a) => {
            let canonical = a.to_string();
            assert_eq!(IpcAddress::parse(&canonical).as_ref(), Ok(&a));
            assert_eq!(IpcAddress::new(a.address(), a.port()).as_ref(), Ok(&a));
            let name = a.rendezvous_name();
            // sun_path holds 108 bytes, one of them the leading NUL.
            assert!(!name.is_empty() && name.len() <= 107, "{}", name.len());
        }
        Err(e) => assert!(!e.rule().is_empty()),
    }
}

fuzz_target!(|data: &[u8]| {
    check(&String::from_utf8_lossy(data));
    // The same bytes with an `ipc://` prefix reach the address rules more
    // often than random bytes do.
    check(&format!("ipc://{}", String::from_utf8_lossy(data)));
    let units: Vec<u16> = data
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    match from_utf16(&units) {
        Ok(s) => {
            assert_eq!(s.encode_utf16().collect::<Vec<_>>(), units);
            check(&s);
        }
        Err(e) => assert!(!e.rule().is_empty()),
    }
});
