//! The listener fed arbitrary bytes in arbitrary pieces. Any 32 bytes are a well-formed
//! message 1, so the fuzzer reaches the listener's reply and the parsing of message 3.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rand_core::SeedableRng;
use switchboard::handshake::Handshake;
use switchboard::{ChannelInfo, Keypair, NodeInfo};

fuzz_target!(|input: (Vec<u8>, Vec<u8>)| {
    let (bytes, cuts) = input;
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(2);
    let key = Keypair::generate(&mut rng);
    let mut info = NodeInfo::new("fuzz", "fuzz");
    info.channels.push(ChannelInfo {
        id: 1,
        protocol: "p".into(),
        version: 1,
    });
    let Ok(mut listener) = Handshake::responder(&key, info, &mut rng) else {
        return;
    };
    let mut rest = bytes.as_slice();
    let mut out = Vec::new();
    for cut in cuts.iter().map(|c| usize::from(*c)).chain([usize::MAX]) {
        let (piece, tail) = rest.split_at(cut.min(rest.len()));
        rest = tail;
        match listener.handle_input(piece) {
            Ok(used) => assert!(used <= piece.len()),
            Err(_) => break,
        }
        listener.poll_transmit(&mut out);
    }
    // Message 3 must be encrypted under keys only the holder of the ephemeral key has.
    assert!(!listener.is_established());
});
