use alloc::string::{String, ToString};
use alloc::vec::Vec;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::*;
use crate::disconnect::DisconnectReason;
use crate::node_info::{ChannelInfo, ProtocolVersion};
use crate::record::{RecordDecoder, seal_record};

fn info(network: &str, channel: &str) -> NodeInfo {
    let mut info = NodeInfo::new(network, "test");
    info.channels.push(ChannelInfo {
        id: 1,
        protocol: String::from(channel),
        version: 1,
    });
    info
}

struct Sides {
    initiator: Handshake,
    responder: Handshake,
    initiator_key: Keypair,
    responder_key: Keypair,
}

fn sides(initiator_info: NodeInfo, responder_info: NodeInfo, expect_responder: bool) -> Sides {
    let mut rng = ChaCha20Rng::seed_from_u64(42);
    let initiator_key = Keypair::generate(&mut rng);
    let responder_key = Keypair::generate(&mut rng);
    let expected = expect_responder.then(|| responder_key.peer_id());
    Sides {
        initiator: Handshake::initiator(&initiator_key, initiator_info, expected, &mut rng)
            .unwrap(),
        responder: Handshake::responder(&responder_key, responder_info, &mut rng).unwrap(),
        initiator_key,
        responder_key,
    }
}

/// Runs the exchange, returning the first error as (side, error): side 0 = initiator.
fn drive(sides: &mut Sides, chunk: usize) -> Result<(), (u8, HandshakeError)> {
    for _ in 0..4 {
        let mut wire = Vec::new();
        sides.initiator.poll_transmit(&mut wire);
        for piece in wire.chunks(chunk) {
            let used = sides.responder.handle_input(piece).map_err(|e| (1, e))?;
            assert_eq!(used, piece.len());
        }
        let mut wire = Vec::new();
        sides.responder.poll_transmit(&mut wire);
        for piece in wire.chunks(chunk) {
            let used = sides.initiator.handle_input(piece).map_err(|e| (0, e))?;
            assert_eq!(used, piece.len());
        }
    }
    Ok(())
}

#[test]
fn completes_with_input_in_single_bytes() {
    let mut s = sides(info("net", "chat"), info("net", "chat"), true);
    drive(&mut s, 1).unwrap();
    assert!(s.initiator.is_established() && s.responder.is_established());
    let a = s.initiator.into_established().unwrap();
    let b = s.responder.into_established().unwrap();
    assert_eq!(a.peer_id, s.responder_key.peer_id());
    assert_eq!(b.peer_id, s.initiator_key.peer_id());
    assert_eq!(&b.public_key, s.initiator_key.public());
    assert_eq!(a.info, info("net", "chat"));
    assert_eq!(a.handshake_hash, b.handshake_hash);
}

#[test]
fn bytes_after_the_last_message_are_left_for_records() {
    let mut s = sides(info("net", "chat"), info("net", "chat"), false);
    let mut wire = Vec::new();
    s.initiator.poll_transmit(&mut wire);
    s.responder.handle_input(&wire).unwrap();
    wire.clear();
    s.responder.poll_transmit(&mut wire);
    s.initiator.handle_input(&wire).unwrap();
    wire.clear();
    s.initiator.poll_transmit(&mut wire);
    let message3_len = wire.len();
    let mut initiator = s.initiator.into_established().unwrap();
    seal_record(&mut initiator.cipher, b"first record", &mut wire).unwrap();

    let used = s.responder.handle_input(&wire).unwrap();
    assert_eq!(used, message3_len);
    let mut responder = s.responder.into_established().unwrap();
    let mut rest = &wire[used..];
    let record = RecordDecoder::new()
        .decode(&mut responder.cipher, &mut rest)
        .unwrap()
        .map(<[u8]>::to_vec);
    assert_eq!(record.as_deref(), Some(&b"first record"[..]));
}

#[test]
fn each_check_fails_with_its_own_error_and_reason() {
    let mut old = info("net", "chat");
    old.version = ProtocolVersion { major: 0, minor: 9 };
    let newer_minor = {
        let mut i = info("net", "chat");
        i.version.minor = 7;
        i
    };
    // (initiator info, responder info, which side fails, reason). The checks are symmetric,
    // so the dialer, which checks first, is the one that fails.
    let cases = [
        (
            old.clone(),
            info("net", "chat"),
            0,
            DisconnectReason::IncompatibleVersion,
        ),
        (
            info("net", "chat"),
            old,
            0,
            DisconnectReason::IncompatibleVersion,
        ),
        (
            info("net", "chat"),
            info("other", "chat"),
            0,
            DisconnectReason::NetworkMismatch,
        ),
        (
            info("net", "chat"),
            info("net", "blocks"),
            0,
            DisconnectReason::UselessPeer,
        ),
    ];
    for (initiator_info, responder_info, side, reason) in cases {
        let mut s = sides(initiator_info, responder_info, false);
        let (failed, error) = drive(&mut s, 7).unwrap_err();
        assert_eq!((failed, error.reason()), (side, reason), "{error}");
    }
    // A different minor version is compatible.
    let mut s = sides(newer_minor, info("net", "chat"), true);
    drive(&mut s, 64).unwrap();
}

#[test]
fn network_mismatch_names_both_networks() {
    let mut s = sides(info("net", "chat"), info("other", "chat"), false);
    let (_, error) = drive(&mut s, 1000).unwrap_err();
    assert_eq!(
        error,
        HandshakeError::NetworkMismatch {
            local: "net".into(),
            remote: "other".into()
        }
    );
    assert_eq!(error.reason(), DisconnectReason::NetworkMismatch);
    assert_eq!(
        error.to_string(),
        "network mismatch: ours \"net\", theirs \"other\""
    );
}

#[test]
fn the_dialer_detects_an_unexpected_identity_before_revealing_itself() {
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let dialer_key = Keypair::generate(&mut rng);
    let wanted = Keypair::generate(&mut rng).peer_id();
    let impostor_key = Keypair::generate(&mut rng);
    let mut dialer =
        Handshake::initiator(&dialer_key, info("net", "chat"), Some(wanted), &mut rng).unwrap();
    let mut impostor = Handshake::responder(&impostor_key, info("net", "chat"), &mut rng).unwrap();
    let mut wire = Vec::new();
    dialer.poll_transmit(&mut wire);
    impostor.handle_input(&wire).unwrap();
    wire.clear();
    impostor.poll_transmit(&mut wire);
    let error = dialer.handle_input(&wire).unwrap_err();
    assert_eq!(
        error,
        HandshakeError::UnexpectedIdentity {
            expected: wanted,
            actual: impostor_key.peer_id()
        }
    );
    assert_eq!(error.reason(), DisconnectReason::UnexpectedIdentity);
    assert!(
        !dialer.poll_transmit(&mut Vec::new()),
        "message 3 must not be sent"
    );
    assert_eq!(
        dialer.handle_input(&[0]),
        Err(HandshakeError::AlreadyFailed)
    );
}

#[test]
fn a_node_dialing_itself_is_refused() {
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let key = Keypair::generate(&mut rng);
    let mut dialer = Handshake::initiator(&key, info("net", "chat"), None, &mut rng).unwrap();
    let mut listener = Handshake::responder(&key, info("net", "chat"), &mut rng).unwrap();
    let mut wire = Vec::new();
    dialer.poll_transmit(&mut wire);
    listener.handle_input(&wire).unwrap();
    wire.clear();
    listener.poll_transmit(&mut wire);
    let error = dialer.handle_input(&wire).unwrap_err();
    assert_eq!(error, HandshakeError::SelfConnection);
    assert_eq!(error.reason(), DisconnectReason::SelfConnection);
}

/// A rogue dialer that skips its own checks sends `payload` as its NodeInfo in message 3;
/// returns the listener's error and the plaintext of the refusal record the listener can
/// seal with the keys it has left, as the rogue reads it.
fn refusal_after_message_3(payload: &[u8]) -> (HandshakeError, Option<Vec<u8>>) {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let rogue_key = Keypair::generate(&mut rng);
    let listener_key = Keypair::generate(&mut rng);
    let mut rogue = NoiseXx::new(Role::Initiator, PROLOGUE, &rogue_key, &mut rng);
    let mut listener = Handshake::responder(&listener_key, info("net", "chat"), &mut rng).unwrap();

    let mut message = Vec::new();
    rogue.write_message(&[], &mut message).unwrap();
    let mut wire = (message.len() as u16).to_be_bytes().to_vec();
    wire.extend_from_slice(&message);
    listener.handle_input(&wire).unwrap();
    wire.clear();
    listener.poll_transmit(&mut wire);
    rogue.read_message(&mut wire[2..]).unwrap();
    let mut message = Vec::new();
    rogue.write_message(payload, &mut message).unwrap();
    let mut wire = (message.len() as u16).to_be_bytes().to_vec();
    wire.extend_from_slice(&message);

    let error = listener.handle_input(&wire).unwrap_err();
    assert!(!listener.is_established());
    let mut refusal = listener
        .into_rejection_transport()
        .expect("keys exist after message 3");
    let mut rogue_cipher = rogue.into_transport().unwrap();
    let mut wire = Vec::new();
    seal_record(&mut refusal, &[error.reason().code()], &mut wire).unwrap();
    let mut input: &[u8] = &wire;
    let plaintext = RecordDecoder::new()
        .decode(&mut rogue_cipher, &mut input)
        .unwrap()
        .map(<[u8]>::to_vec);
    (error, plaintext)
}

#[test]
fn the_listener_refuses_a_dialer_that_skips_its_checks_and_can_say_why() {
    let other_network = info("other", "chat").encode().unwrap();
    let (error, plaintext) = refusal_after_message_3(&other_network);
    assert_eq!(error.reason(), DisconnectReason::NetworkMismatch);
    assert_eq!(
        plaintext,
        Some(alloc::vec![DisconnectReason::NetworkMismatch.code()])
    );
}

#[test]
fn the_listener_tells_a_dialer_its_node_info_is_malformed() {
    // Authenticated, but not a NodeInfo: a version and a network length pointing past the end.
    let (error, plaintext) = refusal_after_message_3(&[0, 1, 0, 0, 9, b'n']);
    assert!(matches!(error, HandshakeError::NodeInfo(_)), "{error:?}");
    assert_eq!(
        plaintext,
        Some(alloc::vec![DisconnectReason::ProtocolError.code()])
    );
}

#[test]
fn a_dialer_refusal_leaves_no_transport() {
    let mut s = sides(info("net", "chat"), info("net", "blocks"), false);
    let (side, error) = drive(&mut s, 5).unwrap_err();
    assert_eq!((side, error), (0, HandshakeError::NoCommonChannel));
    assert!(s.initiator.into_rejection_transport().is_none());
}

#[test]
fn malformed_lengths_are_refused_before_buffering() {
    let mut s = sides(info("net", "chat"), info("net", "chat"), false);
    // Message 1 must be exactly 32 bytes.
    let error = s.responder.handle_input(&[0, 33]).unwrap_err();
    assert_eq!(
        error,
        HandshakeError::MessageLength {
            message: 0,
            len: 33
        }
    );
    assert_eq!(error.reason(), DisconnectReason::ProtocolError);
    // Message 2 above the NodeInfo bound.
    let error = s.initiator.handle_input(&[0xFF, 0xFF]).unwrap_err();
    assert_eq!(
        error,
        HandshakeError::MessageLength {
            message: 1,
            len: 65535
        }
    );
}

#[test]
fn a_low_order_ephemeral_is_an_invalid_identity() {
    let mut s = sides(info("net", "chat"), info("net", "chat"), false);
    let mut message = alloc::vec![0, 32];
    message.extend_from_slice(&[0; 32]);
    let error = s.responder.handle_input(&message).unwrap_err();
    assert_eq!(error, HandshakeError::Noise(noise_xx::NoiseError::WeakKey));
    assert_eq!(error.reason(), DisconnectReason::InvalidIdentity);
    assert!(!s.responder.poll_transmit(&mut Vec::new()));
}

#[test]
fn an_oversized_local_node_info_is_refused_at_construction() {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let key = Keypair::generate(&mut rng);
    let bad = NodeInfo::new("", "x");
    assert!(Handshake::initiator(&key, bad.clone(), None, &mut rng).is_err());
    assert!(Handshake::responder(&key, bad, &mut rng).is_err());
}
