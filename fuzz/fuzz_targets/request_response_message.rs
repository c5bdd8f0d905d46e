//! Request/response messages from arbitrary bytes: decoding is total, whatever decodes
//! encodes back to exactly the bytes it came from (the encoding is canonical), and a body
//! is the message's bytes after the 9-byte header, shared, not copied.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use switchboard::request_response::{HEADER_LEN, WireMessage};

fuzz_target!(|bytes: &[u8]| {
    let message = Bytes::copy_from_slice(bytes);
    let Ok(decoded) = WireMessage::decode(&message) else {
        return;
    };
    assert_eq!(decoded.encode(), message, "canonical encoding");
    assert!(message.len() >= HEADER_LEN);
    match &decoded {
        WireMessage::Request { body, .. } | WireMessage::Response { body, .. } => {
            assert_eq!(body.len(), message.len() - HEADER_LEN);
            assert_eq!(body.as_ptr(), message[HEADER_LEN..].as_ptr(), "shared");
        }
        WireMessage::Refused { .. } => assert_eq!(message.len(), HEADER_LEN + 1),
    }
});
