//! switchboard against `snow`, an independent Noise implementation, in both roles: the full
//! switchboard handshake (length prefixes, `NodeInfo` payloads, the checks) with snow driven
//! by hand on the other side, then well over 100,000 records each way across several
//! automatic rekeys.
//!
//! Static keys are the two private keys of RFC 7748 §6.1, so the public keys and peer ids
//! are known constants computed outside both implementations (the peer ids are BLAKE2b-256
//! of the public keys, from Python's `hashlib.blake2b(key, digest_size=32)`).

mod common;

use std::time::Instant;

use rand_core::SeedableRng;
use snow::{Builder, HandshakeState, TransportState};
use switchboard::cipher::{CipherError, REKEY_INTERVAL};
use switchboard::handshake::{Established, Handshake, PROLOGUE};
use switchboard::record::{HEADER, MAX_PLAINTEXT_LEN, RecordDecoder, RecordError, seal_record};
use switchboard::{ChannelInfo, Keypair, NodeInfo, PeerId, PublicKey, TransportCipher};

use common::{frame, hex, node_info, unframe, unhex_array};

const NOISE_PARAMS: &str = "Noise_XX_25519_AESGCM_BLAKE2b";

/// RFC 7748 §6.1, Alice: switchboard's key in every test here.
const ALICE_SECRET: &str = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
const ALICE_PUBLIC: &str = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
const ALICE_PEER_ID: &str = "7a91869e4c114964206972403b0a3d81603f2bd9ff5ced5923f0d234d80818f4";
/// RFC 7748 §6.1, Bob: snow's key in every test here.
const BOB_SECRET: &str = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb";
const BOB_PUBLIC: &str = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";
const BOB_PEER_ID: &str = "e95918fc55316af0e2f82451824337cd78bf54f9756b6038519d217447bc834f";

/// Records sent in each direction: more than two rekey intervals, so each direction runs
/// under three different keys.
const RECORDS_EACH_WAY: u64 = 150_000;

/// Largest Noise message, and so the size of snow's buffers.
const MAX_MESSAGE: usize = 65535;

fn switchboard_key() -> Keypair {
    Keypair::from_secret_bytes(unhex_array(ALICE_SECRET))
}

fn snow_builder(secret: &[u8]) -> Builder<'_> {
    Builder::new(NOISE_PARAMS.parse().expect("snow knows the protocol name"))
        .prologue(PROLOGUE)
        .expect("prologue accepted")
        .local_private_key(secret)
        .expect("private key accepted")
}

/// What snow's side announces: same network, the common `chat` channel (another version,
/// which the checks allow) and one channel switchboard's side lacks.
fn snow_info() -> NodeInfo {
    let mut info = NodeInfo::new("switchboard-tests", "snow/0.10");
    info.listen_addr = Some("192.0.2.7:4040".parse().expect("a socket address"));
    info.channels = vec![
        ChannelInfo {
            id: 9,
            protocol: "blocks".into(),
            version: 3,
        },
        // chat at versions 1 and 2 on channel 1: switchboard's side speaks 1, so 1 is chosen.
        ChannelInfo {
            id: 1,
            protocol: "chat".into(),
            version: 2,
        },
        ChannelInfo {
            id: 1,
            protocol: "chat".into(),
            version: 1,
        },
    ];
    info
}

/// The checks both tests make once the handshake is over: same handshake hash, each side
/// knows the other's RFC 7748 public key, and switchboard's peer id is BLAKE2b-256 of
/// snow's key.
fn assert_sessions_agree(established: &Established, snow: &HandshakeState) {
    assert!(snow.is_handshake_finished());
    assert_eq!(
        hex(&established.handshake_hash),
        hex(snow.get_handshake_hash()),
        "handshake hashes"
    );
    assert_eq!(
        snow.get_remote_static().map(hex),
        Some(ALICE_PUBLIC.to_owned()),
        "snow learned switchboard's key"
    );
    let alice_id: PeerId = ALICE_PEER_ID.parse().expect("a peer id");
    assert_eq!(switchboard_key().peer_id(), alice_id);
    assert_eq!(established.public_key.as_bytes(), &unhex_array(BOB_PUBLIC));
    let expected: PeerId = BOB_PEER_ID.parse().expect("a peer id");
    assert_eq!(established.peer_id, expected);
    assert_eq!(
        established.peer_id,
        PublicKey::from_bytes(unhex_array(BOB_PUBLIC)).peer_id()
    );
    assert_eq!(established.info, snow_info());
}

/// switchboard dials; snow answers as the Noise responder. Returns the two transports.
fn switchboard_dials_snow() -> (Established, TransportState) {
    let bob_secret: [u8; 32] = unhex_array(BOB_SECRET);
    let mut snow = snow_builder(&bob_secret)
        .build_responder()
        .expect("snow responder");
    let local_info = node_info("switchboard-dialer");
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
    let expected_peer: PeerId = BOB_PEER_ID.parse().expect("a peer id");
    let mut dialer = Handshake::initiator(
        &switchboard_key(),
        local_info.clone(),
        Some(expected_peer),
        &mut rng,
    )
    .expect("valid NodeInfo");
    let mut payload = vec![0u8; MAX_MESSAGE];
    let mut message = vec![0u8; MAX_MESSAGE];

    // Message 1: `len || e`, empty payload.
    let mut wire = Vec::new();
    assert!(dialer.poll_transmit(&mut wire));
    assert_eq!(
        wire.len(),
        2 + 32,
        "message 1 is a prefix and an ephemeral key"
    );
    let len = snow
        .read_message(unframe(&wire), &mut payload)
        .expect("snow reads message 1");
    assert_eq!(len, 0, "message 1 carries no payload");

    // Message 2: snow's NodeInfo.
    let len = snow
        .write_message(&snow_info().encode().expect("valid NodeInfo"), &mut message)
        .expect("snow writes message 2");
    let message2 = frame(&message[..len]);
    assert_eq!(dialer.handle_input(&message2), Ok(message2.len()));
    assert!(dialer.is_established(), "switchboard accepted snow");

    // Message 3: switchboard's NodeInfo.
    wire.clear();
    assert!(dialer.poll_transmit(&mut wire));
    assert!(
        !dialer.poll_transmit(&mut wire),
        "message 3 is all there is"
    );
    let len = snow
        .read_message(unframe(&wire), &mut payload)
        .expect("snow reads message 3");
    assert_eq!(
        hex(&payload[..len]),
        hex(&local_info.encode().expect("valid NodeInfo")),
        "message 3's payload is switchboard's encoded NodeInfo"
    );
    assert_eq!(NodeInfo::decode(&payload[..len]), Ok(local_info));

    let established = dialer.into_established().expect("established");
    assert_sessions_agree(&established, &snow);
    let snow = snow.into_transport_mode().expect("snow transport");
    (established, snow)
}

/// snow dials as the Noise initiator; switchboard listens. Returns the two transports.
fn snow_dials_switchboard() -> (Established, TransportState) {
    let bob_secret: [u8; 32] = unhex_array(BOB_SECRET);
    let mut snow = snow_builder(&bob_secret)
        .build_initiator()
        .expect("snow initiator");
    let local_info = node_info("switchboard-listener");
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(2);
    let mut listener =
        Handshake::responder(&switchboard_key(), local_info.clone(), &mut rng).expect("valid");
    let mut payload = vec![0u8; MAX_MESSAGE];
    let mut message = vec![0u8; MAX_MESSAGE];
    let mut wire = Vec::new();
    assert!(
        !listener.poll_transmit(&mut wire),
        "a listener speaks second"
    );

    // Message 1.
    let len = snow
        .write_message(&[], &mut message)
        .expect("snow writes message 1");
    assert_eq!(len, 32);
    let message1 = frame(&message[..len]);
    assert_eq!(listener.handle_input(&message1), Ok(message1.len()));

    // Message 2: switchboard's NodeInfo.
    assert!(listener.poll_transmit(&mut wire));
    let len = snow
        .read_message(unframe(&wire), &mut payload)
        .expect("snow reads message 2");
    assert_eq!(
        hex(&payload[..len]),
        hex(&local_info.encode().expect("valid NodeInfo")),
        "message 2's payload is switchboard's encoded NodeInfo"
    );
    assert_eq!(NodeInfo::decode(&payload[..len]), Ok(local_info));
    assert!(
        !listener.is_established(),
        "nothing is verified before message 3"
    );

    // Message 3: snow's NodeInfo.
    let len = snow
        .write_message(&snow_info().encode().expect("valid NodeInfo"), &mut message)
        .expect("snow writes message 3");
    let message3 = frame(&message[..len]);
    assert_eq!(listener.handle_input(&message3), Ok(message3.len()));
    assert!(listener.is_established(), "switchboard accepted snow");
    wire.clear();
    assert!(
        !listener.poll_transmit(&mut wire),
        "the listener sends nothing more"
    );

    let established = listener.into_established().expect("established");
    assert_sessions_agree(&established, &snow);
    let snow = snow.into_transport_mode().expect("snow transport");
    (established, snow)
}

/// Plaintexts of varied content and length: mostly 0..=300 bytes, and the largest record a
/// few times per direction (including the last record before the first rekey).
struct Payloads {
    pool: Vec<u8>,
}

impl Payloads {
    fn new() -> Self {
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let pool = (0..MAX_PLAINTEXT_LEN + 4096)
            .map(|_| {
                // xorshift64: cheap, deterministic, not constant.
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        Payloads { pool }
    }

    /// Plaintext number `index` of a direction; `salt` makes the two directions differ.
    fn get(&self, index: u64, salt: u64) -> &[u8] {
        let len = if [0, REKEY_INTERVAL - 1, 100_000, 2 * REKEY_INTERVAL].contains(&index) {
            MAX_PLAINTEXT_LEN
        } else {
            ((index.wrapping_mul(7919) ^ salt) % 301) as usize
        };
        let offset = (index.wrapping_mul(31).wrapping_add(salt) % 4096) as usize;
        &self.pool[offset..offset + len]
    }
}

/// Sends `count` records each way and checks every plaintext arrives intact, with snow
/// rekeying at the counts switchboard does.
fn exchange_records(switchboard: &mut TransportCipher, snow: &mut TransportState, count: u64) {
    let payloads = Payloads::new();
    let mut decoder = RecordDecoder::new();
    let mut wire = Vec::with_capacity(HEADER + MAX_MESSAGE);
    let mut message = vec![0u8; MAX_MESSAGE];
    let mut plaintext = vec![0u8; MAX_MESSAGE];
    for index in 0..count {
        // switchboard → snow.
        let sent = payloads.get(index, 1);
        wire.clear();
        seal_record(switchboard, sent, &mut wire)
            .unwrap_or_else(|error| panic!("sealing record {index}: {error}"));
        let len = snow
            .read_message(unframe(&wire), &mut plaintext)
            .unwrap_or_else(|error| panic!("snow reading record {index}: {error}"));
        assert!(
            plaintext[..len] == *sent,
            "switchboard → snow record {index}: plaintext differs"
        );

        // snow → switchboard.
        let sent = payloads.get(index, 2);
        let len = snow
            .write_message(sent, &mut message)
            .unwrap_or_else(|error| panic!("snow writing record {index}: {error}"));
        wire.clear();
        wire.extend_from_slice(&(len as u16).to_be_bytes());
        wire.extend_from_slice(&message[..len]);
        let mut input: &[u8] = &wire;
        let received = decoder
            .decode(switchboard, &mut input)
            .unwrap_or_else(|error| panic!("switchboard reading record {index}: {error}"));
        assert!(
            received == Some(sent),
            "snow → switchboard record {index}: plaintext differs"
        );
        assert!(input.is_empty());

        // switchboard rekeys on its own after the record that makes the count a multiple of
        // the interval; snow must be told.
        if (index + 1) % REKEY_INTERVAL == 0 {
            snow.rekey_incoming();
            snow.rekey_outgoing();
        }
    }
    assert_eq!(switchboard.records_sent(), count);
    assert_eq!(switchboard.records_received(), count);
    assert_eq!(snow.sending_nonce(), count);
    assert_eq!(snow.receiving_nonce(), count);
}

/// switchboard as the dialer: the full handshake against a snow responder, then 150,000
/// records each way through three keys per direction.
#[test]
fn switchboard_dialer_and_snow_responder_agree_on_the_handshake_and_150k_records_each_way() {
    let started = Instant::now();
    let (mut established, mut snow) = switchboard_dials_snow();
    exchange_records(&mut established.cipher, &mut snow, RECORDS_EACH_WAY);
    eprintln!("switchboard dialer vs snow: {:?}", started.elapsed());
}

/// snow as the dialer: the full handshake against a switchboard listener, then 150,000
/// records each way through three keys per direction.
#[test]
fn snow_dialer_and_switchboard_listener_agree_on_the_handshake_and_150k_records_each_way() {
    let started = Instant::now();
    let (mut established, mut snow) = snow_dials_switchboard();
    exchange_records(&mut established.cipher, &mut snow, RECORDS_EACH_WAY);
    eprintln!(
        "snow dialer vs switchboard listener: {:?}",
        started.elapsed()
    );
}

/// The rekey counts matter: a snow sender that skips the rekey after record 65535 produces
/// a record 65536 that switchboard refuses, and a snow receiver that skips it cannot read
/// switchboard's record 65536 — while every earlier record passed.
#[test]
fn a_snow_side_that_skips_a_rekey_is_cut_off_at_the_next_record() {
    let (mut established, mut snow) = switchboard_dials_snow();
    let switchboard = &mut established.cipher;
    let mut decoder = RecordDecoder::new();
    let mut wire = Vec::new();
    let mut message = vec![0u8; MAX_MESSAGE];
    let mut plaintext = vec![0u8; MAX_MESSAGE];
    for index in 0..REKEY_INTERVAL {
        let sent = index.to_be_bytes();
        wire.clear();
        seal_record(switchboard, &sent, &mut wire).expect("seal");
        let len = snow
            .read_message(unframe(&wire), &mut plaintext)
            .expect("snow reads before the rekey");
        assert_eq!(plaintext[..len], sent);
        let len = snow
            .write_message(&sent, &mut message)
            .expect("snow writes");
        let record = frame(&message[..len]);
        let mut input: &[u8] = &record;
        assert_eq!(
            decoder.decode(switchboard, &mut input).expect("decode"),
            Some(&sent[..]),
            "record {index}"
        );
    }
    // switchboard rekeyed both directions here; snow (deliberately) did not.
    let sent = REKEY_INTERVAL.to_be_bytes();
    let len = snow
        .write_message(&sent, &mut message)
        .expect("snow writes");
    let record = frame(&message[..len]);
    let mut input: &[u8] = &record;
    assert_eq!(
        decoder.decode(switchboard, &mut input),
        Err(RecordError::Cipher(CipherError::Decrypt)),
        "switchboard must refuse a record under the pre-rekey key"
    );
    assert_eq!(switchboard.records_received(), REKEY_INTERVAL);

    wire.clear();
    seal_record(switchboard, &sent, &mut wire).expect("seal");
    assert_eq!(
        snow.read_message(unframe(&wire), &mut plaintext),
        Err(snow::Error::Decrypt),
        "snow must not read a record under the post-rekey key without rekeying"
    );
}
