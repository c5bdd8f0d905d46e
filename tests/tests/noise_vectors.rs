//! switchboard's Noise XX against the public cacophony test vector for
//! `Noise_XX_25519_AESGCM_BLAKE2b`: every handshake and transport message must come out byte
//! for byte as the vector says, and both sides must reach the vector's handshake hash.
//!
//! The vector was produced by an independent implementation (cacophony, Haskell), so a match
//! pins down the whole suite — X25519, BLAKE2b's HMAC/HKDF, AES-GCM's nonce layout, the token
//! order of XX and `Split()` — not merely agreement between two switchboard instances.

mod common;

use core::convert::Infallible;

use rand_core::{TryCryptoRng, TryRng};
use serde_json::Value;
use switchboard::Keypair;
use switchboard::cipher::CipherError;
use switchboard::handshake::noise_xx::{NoiseError, NoiseXx, PROTOCOL_NAME, Role};

use common::{hex, unhex, unhex_array};

const VECTORS: &str = include_str!("../data/noise_xx_25519_aesgcm_blake2b.cacophony.json");

/// One message of the vector.
struct Message {
    payload: Vec<u8>,
    ciphertext: Vec<u8>,
}

/// The fields of the vector this file uses.
struct Vector {
    init_prologue: Vec<u8>,
    init_static: [u8; 32],
    init_ephemeral: [u8; 32],
    resp_prologue: Vec<u8>,
    resp_static: [u8; 32],
    resp_ephemeral: [u8; 32],
    handshake_hash: [u8; 64],
    messages: Vec<Message>,
}

fn field<'a>(object: &'a Value, name: &str) -> &'a str {
    object[name]
        .as_str()
        .unwrap_or_else(|| panic!("vector field {name:?} is not a string"))
}

/// The vector for exactly switchboard's protocol name (the file must hold one).
fn vector() -> Vector {
    let json: Value = serde_json::from_str(VECTORS).expect("the vector file is JSON");
    let protocol = core::str::from_utf8(PROTOCOL_NAME).expect("the protocol name is ASCII");
    let matching: Vec<&Value> = json["vectors"]
        .as_array()
        .expect("a `vectors` array")
        .iter()
        .filter(|vector| vector["protocol_name"] == protocol)
        .collect();
    assert_eq!(matching.len(), 1, "one vector for {protocol}");
    let vector = matching[0];
    let messages: Vec<Message> = vector["messages"]
        .as_array()
        .expect("a `messages` array")
        .iter()
        .map(|message| Message {
            payload: unhex(field(message, "payload")),
            ciphertext: unhex(field(message, "ciphertext")),
        })
        .collect();
    assert_eq!(messages.len(), 6, "3 handshake and 3 transport messages");
    Vector {
        init_prologue: unhex(field(vector, "init_prologue")),
        init_static: unhex_array(field(vector, "init_static")),
        init_ephemeral: unhex_array(field(vector, "init_ephemeral")),
        resp_prologue: unhex(field(vector, "resp_prologue")),
        resp_static: unhex_array(field(vector, "resp_static")),
        resp_ephemeral: unhex_array(field(vector, "resp_ephemeral")),
        handshake_hash: unhex_array(field(vector, "handshake_hash")),
        messages,
    }
}

/// An RNG that yields the vector's ephemeral key once and then refuses to be used again:
/// `NoiseXx::new` documents that the ephemeral key is exactly the next 32 bytes of the RNG,
/// and this holds it to that (any other draw panics).
struct FixedEphemeral {
    key: [u8; 32],
    drawn: bool,
}

impl FixedEphemeral {
    fn new(key: [u8; 32]) -> Self {
        FixedEphemeral { key, drawn: false }
    }
}

impl TryRng for FixedEphemeral {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        panic!("the ephemeral key must be drawn with fill_bytes, not next_u32");
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        panic!("the ephemeral key must be drawn with fill_bytes, not next_u64");
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        assert!(!self.drawn, "the RNG was asked for bytes a second time");
        assert_eq!(dst.len(), 32, "the ephemeral key is drawn as 32 bytes");
        dst.copy_from_slice(&self.key);
        self.drawn = true;
        Ok(())
    }
}

impl TryCryptoRng for FixedEphemeral {}

/// Both sides of the vector's handshake, before any message.
fn start(vector: &Vector) -> (NoiseXx, NoiseXx) {
    let mut initiator_rng = FixedEphemeral::new(vector.init_ephemeral);
    let mut responder_rng = FixedEphemeral::new(vector.resp_ephemeral);
    let initiator = NoiseXx::new(
        Role::Initiator,
        &vector.init_prologue,
        &Keypair::from_secret_bytes(vector.init_static),
        &mut initiator_rng,
    );
    let responder = NoiseXx::new(
        Role::Responder,
        &vector.resp_prologue,
        &Keypair::from_secret_bytes(vector.resp_static),
        &mut responder_rng,
    );
    assert!(
        initiator_rng.drawn && responder_rng.drawn,
        "each side drew its ephemeral key at construction"
    );
    (initiator, responder)
}

/// Writer and reader of handshake message `index`: messages alternate, initiator first.
fn sides<'a>(
    index: usize,
    initiator: &'a mut NoiseXx,
    responder: &'a mut NoiseXx,
) -> (&'a mut NoiseXx, &'a mut NoiseXx) {
    if index.is_multiple_of(2) {
        (initiator, responder)
    } else {
        (responder, initiator)
    }
}

/// Writes handshake message `index` with the vector's payload and delivers it, checking
/// that it is the vector's ciphertext and that the reader recovers the payload.
fn exchange_handshake_message(
    vector: &Vector,
    index: usize,
    initiator: &mut NoiseXx,
    responder: &mut NoiseXx,
) {
    let message = &vector.messages[index];
    let (writer, reader) = sides(index, initiator, responder);
    let mut wire = Vec::new();
    writer
        .write_message(&message.payload, &mut wire)
        .unwrap_or_else(|error| panic!("writing handshake message {index}: {error}"));
    assert_eq!(
        hex(&wire),
        hex(&message.ciphertext),
        "handshake message {index} differs from the vector"
    );
    let payload = reader
        .read_message(&mut wire)
        .unwrap_or_else(|error| panic!("reading handshake message {index}: {error}"));
    assert_eq!(
        hex(&wire[payload]),
        hex(&message.payload),
        "payload of handshake message {index}"
    );
}

/// The full vector: three handshake messages, the handshake hash, then three transport
/// messages through `Split()`'s ciphers, all byte for byte.
#[test]
fn switchboard_reproduces_the_cacophony_xx_vector_byte_for_byte() {
    let vector = vector();
    let (mut initiator, mut responder) = start(&vector);
    for index in 0..3 {
        exchange_handshake_message(&vector, index, &mut initiator, &mut responder);
    }
    assert!(initiator.is_finished() && responder.is_finished());
    assert_eq!(
        hex(initiator.handshake_hash()),
        hex(&vector.handshake_hash),
        "initiator's handshake hash"
    );
    assert_eq!(
        hex(responder.handshake_hash()),
        hex(&vector.handshake_hash),
        "responder's handshake hash"
    );
    assert_eq!(
        initiator.remote_static(),
        Some(Keypair::from_secret_bytes(vector.resp_static).public()),
        "the initiator learned the responder's static key"
    );
    assert_eq!(
        responder.remote_static(),
        Some(Keypair::from_secret_bytes(vector.init_static).public()),
        "the responder learned the initiator's static key"
    );

    let mut initiator = initiator.into_transport().expect("initiator split");
    let mut responder = responder.into_transport().expect("responder split");
    for (index, message) in vector.messages.iter().enumerate().skip(3) {
        // Transport messages keep alternating: 3 is responder → initiator.
        let (sender, receiver) = if index % 2 == 0 {
            (&mut initiator, &mut responder)
        } else {
            (&mut responder, &mut initiator)
        };
        let mut wire = Vec::new();
        sender
            .encrypt(&message.payload, &mut wire)
            .unwrap_or_else(|error| panic!("encrypting transport message {index}: {error}"));
        assert_eq!(
            hex(&wire),
            hex(&message.ciphertext),
            "transport message {index} differs from the vector"
        );
        let len = receiver
            .decrypt_in_place(&mut wire)
            .unwrap_or_else(|error| panic!("decrypting transport message {index}: {error}"));
        assert_eq!(
            hex(&wire[..len]),
            hex(&message.payload),
            "payload of transport message {index}"
        );
    }
    assert_eq!(
        (initiator.records_sent(), initiator.records_received()),
        (1, 2)
    );
    assert_eq!(
        (responder.records_sent(), responder.records_received()),
        (2, 1)
    );
}

/// The second and third handshake messages are authenticated in every byte (the ephemeral
/// key through the DH it feeds and the hash, the rest by AEAD tags), so flipping any bit of
/// the vector's ciphertext makes the reader refuse it with `Decrypt`.
#[test]
fn any_flipped_bit_in_handshake_messages_2_and_3_fails_to_read() {
    let vector = vector();
    for index in 1..3 {
        for bit in 0..vector.messages[index].ciphertext.len() * 8 {
            let (mut initiator, mut responder) = start(&vector);
            for earlier in 0..index {
                exchange_handshake_message(&vector, earlier, &mut initiator, &mut responder);
            }
            let (_, reader) = sides(index, &mut initiator, &mut responder);
            let mut tampered = vector.messages[index].ciphertext.clone();
            tampered[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(
                reader.read_message(&mut tampered),
                Err(NoiseError::Decrypt),
                "message {index} with bit {bit} flipped"
            );
            assert_eq!(reader.next_message(), None, "a failed handshake is dead");
        }
    }
}

/// Noise cannot authenticate the first XX message (no key exists yet): a flipped bit in it
/// is read without complaint — which is why switchboard sends nothing secret or meaningful
/// there — but it changes the handshake hash, so the initiator refuses the responder's
/// answer.
#[test]
fn a_flipped_bit_in_handshake_message_1_is_caught_by_the_initiator_at_message_2() {
    let vector = vector();
    for bit in 0..vector.messages[0].ciphertext.len() * 8 {
        let (mut initiator, mut responder) = start(&vector);
        let mut wire = Vec::new();
        initiator
            .write_message(&vector.messages[0].payload, &mut wire)
            .expect("writing message 0");
        wire[bit / 8] ^= 1 << (bit % 8);
        assert!(
            responder.read_message(&mut wire).is_ok(),
            "message 0 is unauthenticated: bit {bit} flipped is still read"
        );
        let mut answer = Vec::new();
        responder
            .write_message(&vector.messages[1].payload, &mut answer)
            .expect("the responder answers");
        assert_ne!(
            hex(&answer),
            hex(&vector.messages[1].ciphertext),
            "bit {bit} flipped in message 0 must change message 1"
        );
        assert_eq!(
            initiator.read_message(&mut answer),
            Err(NoiseError::Decrypt),
            "message 1 after bit {bit} of message 0 was flipped"
        );
    }
}

/// A flipped bit anywhere in a transport message (ciphertext or tag) fails authentication,
/// and the failure leaves the receiving cipher at the same nonce.
#[test]
fn any_flipped_bit_in_a_transport_message_fails_to_decrypt() {
    let vector = vector();
    let (mut initiator, mut responder) = start(&vector);
    for index in 0..3 {
        exchange_handshake_message(&vector, index, &mut initiator, &mut responder);
    }
    // Message 3 is the responder's first transport message, read by the initiator.
    let mut initiator = initiator.into_transport().expect("initiator split");
    let message = &vector.messages[3];
    for bit in 0..message.ciphertext.len() * 8 {
        let mut tampered = message.ciphertext.clone();
        tampered[bit / 8] ^= 1 << (bit % 8);
        assert_eq!(
            initiator.decrypt_in_place(&mut tampered),
            Err(CipherError::Decrypt),
            "transport message 3 with bit {bit} flipped"
        );
        assert_eq!(initiator.records_received(), 0);
    }
    let mut intact = message.ciphertext.clone();
    assert_eq!(
        initiator.decrypt_in_place(&mut intact),
        Ok(message.payload.len())
    );
}
