//! The dialer fed arbitrary replies, in arbitrary pieces: errors only, never a panic, and
//! never "established" with a peer that could not have produced a valid message 2.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rand_core::SeedableRng;
use switchboard::handshake::Handshake;
use switchboard::{ChannelInfo, Keypair, NodeInfo};

fuzz_target!(|input: (Vec<u8>, Vec<u8>)| {
    let (reply, cuts) = input;
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
    let key = Keypair::generate(&mut rng);
    let mut info = NodeInfo::new("fuzz", "fuzz");
    info.channels.push(ChannelInfo {
        id: 1,
        protocol: "p".into(),
        version: 1,
    });
    let Ok(mut dialer) = Handshake::initiator(&key, info, None, &mut rng) else {
        return;
    };
    let mut rest = reply.as_slice();
    for cut in cuts.iter().map(|c| usize::from(*c)).chain([usize::MAX]) {
        let (piece, tail) = rest.split_at(cut.min(rest.len()));
        rest = tail;
        match dialer.handle_input(piece) {
            Ok(used) => assert!(used <= piece.len()),
            Err(_) => break,
        }
    }
    // Forging message 2 needs the X25519 and AES-GCM secrets of a real responder.
    assert!(!dialer.is_established());
});
