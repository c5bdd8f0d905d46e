//! The record decoder on a valid record stream that the fuzzer may corrupt at one byte and
//! cut into arbitrary reads, followed by arbitrary raw bytes. Authenticated encryption means
//! the decoder may fail but must never hand out a plaintext the sender did not seal.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use switchboard::TransportCipher;
use switchboard::record::{RecordDecoder, seal_record};

#[derive(Arbitrary, Debug)]
struct Input {
    payloads: Vec<Vec<u8>>,
    corruption: Option<(u16, u8)>,
    cuts: Vec<u16>,
    trailing: Vec<u8>,
}

fuzz_target!(|input: Input| {
    let mut sender = TransportCipher::from_keys_for_fuzzing(&[1; 32], &[2; 32]);
    let mut receiver = TransportCipher::from_keys_for_fuzzing(&[2; 32], &[1; 32]);
    let mut wire = Vec::new();
    for payload in &input.payloads {
        seal_record(&mut sender, payload, &mut wire).expect("payloads fit a record");
    }
    if let Some((position, mask)) = input.corruption {
        if let Some(byte) = wire.get_mut(usize::from(position)) {
            *byte ^= mask;
        }
    }
    wire.extend_from_slice(&input.trailing);

    let mut decoder = RecordDecoder::new();
    let mut expected = input.payloads.iter();
    let mut rest = wire.as_slice();
    for cut in input
        .cuts
        .iter()
        .map(|c| usize::from(*c))
        .chain([usize::MAX])
    {
        let (mut piece, tail) = rest.split_at(cut.min(rest.len()));
        rest = tail;
        loop {
            match decoder.decode(&mut receiver, &mut piece) {
                Ok(Some(plaintext)) => {
                    assert_eq!(Some(plaintext), expected.next().map(Vec::as_slice));
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
});
