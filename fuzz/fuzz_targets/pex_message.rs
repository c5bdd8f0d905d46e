//! PEX messages from arbitrary bytes: decoding is total, and whatever decodes encodes back
//! to exactly the bytes it came from (the encoding is canonical), within the size bound;
//! the per-peer rules take any message without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard::pex::{MAX_ADDRS, MAX_MESSAGE_LEN, Pex, PexConfig, PexIncoming, PexMessage};
use switchboard::{Instant, PeerId};

fuzz_target!(|bytes: &[u8]| {
    if let Ok(message) = PexMessage::decode(bytes) {
        assert_eq!(message.encode(), bytes, "canonical encoding");
        assert!(bytes.len() <= MAX_MESSAGE_LEN);
        if let PexMessage::Addrs(addrs) = &message {
            assert!(addrs.len() <= MAX_ADDRS);
        }
    }
    let mut pex = Pex::new(PexConfig::default());
    let peer = PeerId::from_bytes([1; 32]);
    pex.handle_connected(peer);
    let now = Instant::from_nanos(0);
    let asked = pex.request(now, &peer);
    match pex.handle_message(now, &peer, bytes) {
        Ok(PexIncoming::Addrs(addrs)) => assert!(asked && addrs.len() <= MAX_ADDRS),
        Ok(PexIncoming::Request) | Err(_) => {}
    }
});
