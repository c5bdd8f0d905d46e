//! `FrameReader` on an arbitrary record plaintext: total (one error at most, then the end),
//! and canonical: every frame read before the first error encodes back to exactly the
//! bytes it was read from (a GOAWAY's unknown reason code, read as `ProtocolError`, aside)
//! and reads back as the same frame. Varints must be minimal, so a peer cannot smuggle two
//! spellings of one frame past anything that compares bytes.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use switchboard::DisconnectReason;
use switchboard::frame::{Frame, FrameReader};

fuzz_target!(|bytes: &[u8]| {
    let mut reader = FrameReader::new(Bytes::copy_from_slice(bytes));
    let mut position = 0;
    for frame in reader.by_ref() {
        let Ok(frame) = frame else { break };
        let mut encoded = Vec::new();
        frame.encode(&mut encoded);
        let read = bytes
            .get(position..position + encoded.len())
            .expect("a frame encodes to no more bytes than it was read from");
        if let Frame::GoAway { .. } = frame {
            // The one lossy field: an unknown reason code reads as ProtocolError.
            if DisconnectReason::from_code(read[1]).is_none() {
                encoded[1] = read[1];
            }
        }
        assert_eq!(read, encoded, "{frame:?} is not canonical");
        let again: Vec<_> = FrameReader::new(Bytes::from(encoded)).collect();
        assert_eq!(again, [Ok(frame)]);
        position += read.len();
    }
    assert!(reader.next().is_none(), "the reader ends after an error");
});
