//! The byte stream of a connection may be cut anywhere by TCP and corrupted anywhere by a
//! faulty or hostile network. These tests check that neither matters more than it must:
//!
//! - however the handshake's and the records' bytes are split across reads, the outcome is
//!   exactly the one of delivering each unit whole;
//! - a single flipped bit anywhere in a handshake message or a record is an error — never a
//!   panic, never a completed handshake, never a plaintext.

mod common;

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::ops::RangeInclusive;
use std::sync::LazyLock;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use switchboard::TransportCipher;
use switchboard::cipher::CipherError;
use switchboard::handshake::noise_xx::NoiseError;
use switchboard::handshake::{Established, Handshake, HandshakeError};
use switchboard::record::{
    HEADER, MAX_CIPHERTEXT_LEN, MAX_PLAINTEXT_LEN, RecordDecoder, RecordError, seal_record,
};

use common::{Peers, Transcript, drain, handshake, node_info};

/// Allowed body lengths of handshake messages 1, 2 and 3 (`PROTOCOL.md` §2.2).
const MESSAGE_BODY_LEN: [RangeInclusive<usize>; 3] = [32..=32, 96..=4192, 64..=4160];

/// Authentication tag length; the shortest record ciphertext.
const TAG_LEN: usize = 16;

/// The seed of the handshakes whose messages get their bits flipped.
const FLIP_SEED: u64 = 7;

/// Sorted split points within `0..=len` chosen by `cuts` (duplicates kept, so pieces may be
/// empty).
fn cut_points(cuts: &[Index], len: usize) -> Vec<usize> {
    let mut points: Vec<usize> = cuts.iter().map(|cut| cut.index(len + 1)).collect();
    points.sort_unstable();
    points
}

/// Cuts `bytes` at the sorted `points`: the pieces, in order, concatenate to `bytes`.
fn pieces<'a>(bytes: &'a [u8], points: &[usize]) -> Vec<&'a [u8]> {
    let mut start = 0;
    points
        .iter()
        .copied()
        .chain([bytes.len()])
        .map(|end| {
            let piece = &bytes[start..end];
            start = end;
            piece
        })
        .collect()
}

/// The length a `u16` big-endian prefix announces.
fn announced(unit: &[u8]) -> usize {
    usize::from(u16::from_be_bytes([unit[0], unit[1]]))
}

/// Flips bit `bit` of `bytes`, counting from the most significant bit of byte 0, so bits
/// `0..16` are a unit's length prefix, high byte first.
fn flip(bytes: &mut [u8], bit: usize) {
    bytes[bit / 8] ^= 0x80 >> (bit % 8);
}

/// Feeds `message` to `receiver` in `pieces`, checking that every byte is consumed and that
/// the receiver neither answers nor completes before the message's last byte.
fn deliver_in_pieces(receiver: &mut Handshake, message: &[u8], points: &[usize]) {
    let mut fed = 0;
    for piece in pieces(message, points) {
        assert_eq!(receiver.handle_input(piece), Ok(piece.len()));
        fed += piece.len();
        if fed < message.len() {
            let mut early = Vec::new();
            assert!(
                !receiver.poll_transmit(&mut early),
                "answered after {fed} of {} bytes",
                message.len()
            );
            assert!(!receiver.is_established());
        }
    }
}

/// What the listener makes of message 3 followed by records, delivered in pieces: the
/// established session and the plaintexts. Checks that `handle_input` consumes exactly the
/// rest of message 3 and leaves every record byte to the record decoder.
fn listener_reads_message3_and_records(
    listener: Handshake,
    message3_len: usize,
    stream: &[u8],
    points: &[usize],
) -> (Established, Vec<Vec<u8>>) {
    let mut handshake = Some(listener);
    let mut established: Option<Established> = None;
    let mut decoder = RecordDecoder::new();
    let mut received = Vec::new();
    let mut fed = 0;
    for piece in pieces(stream, points) {
        let mut rest = piece;
        if let Some(listener) = handshake.as_mut() {
            let consumed = listener.handle_input(piece).expect("message 3 is accepted");
            assert_eq!(
                consumed,
                piece.len().min(message3_len - fed),
                "handle_input must consume exactly up to the end of message 3"
            );
            fed += consumed;
            rest = &piece[consumed..];
            assert_eq!(listener.is_established(), fed == message3_len);
            if fed == message3_len {
                assert_eq!(
                    listener.handle_input(rest),
                    Ok(0),
                    "an established handshake takes no record bytes"
                );
                let session = handshake.take().and_then(Handshake::into_established);
                established = Some(session.expect("the listener is established"));
            }
        }
        if let Some(session) = established.as_mut() {
            while let Some(plaintext) = decoder
                .decode(&mut session.cipher, &mut rest)
                .expect("records decode")
            {
                received.push(plaintext.to_vec());
            }
        }
        assert!(rest.is_empty(), "every byte of every piece was used");
    }
    (established.expect("message 3 was complete"), received)
}

/// Runs the handshake of `seed` with each message fed in the pieces `cuts` gives and the
/// dialer's `records` right behind message 3, and checks the outcome is exactly that of
/// delivering every message whole: same bytes sent, same handshake hash, same identities,
/// same transport keys, same plaintexts. `cuts` gets each message's length.
fn handshake_in_pieces_matches_whole_delivery(
    seed: u64,
    cuts: impl Fn(usize, usize) -> Vec<usize>,
    records: &[Vec<u8>],
) {
    let (reference, mut reference_dialer, reference_listener) = handshake(seed);
    let Peers {
        dialer_key,
        listener_key,
        mut dialer,
        mut listener,
    } = Peers::new(seed);

    let message1 = drain(&mut dialer);
    deliver_in_pieces(&mut listener, &message1, &cuts(0, message1.len()));
    let message2 = drain(&mut listener);
    deliver_in_pieces(&mut dialer, &message2, &cuts(1, message2.len()));
    assert!(dialer.is_established());
    let message3 = drain(&mut dialer);
    let transcript = Transcript {
        message1,
        message2,
        message3: message3.clone(),
    };
    assert_eq!(transcript, reference, "bytes sent");

    let mut dialer = dialer
        .into_established()
        .expect("the dialer is established");
    let mut stream = message3.clone();
    let mut reference_records = Vec::new();
    for record in records {
        seal_record(&mut dialer.cipher, record, &mut stream).expect("seal");
        seal_record(&mut reference_dialer.cipher, record, &mut reference_records).expect("seal");
    }
    assert_eq!(
        stream[message3.len()..],
        reference_records[..],
        "same transport keys"
    );
    let (listener, received) = listener_reads_message3_and_records(
        listener,
        message3.len(),
        &stream,
        &cuts(2, stream.len()),
    );
    assert_eq!(
        received, records,
        "plaintexts of the records after message 3"
    );

    assert_eq!(dialer.handshake_hash, reference_dialer.handshake_hash);
    assert_eq!(listener.handshake_hash, reference_listener.handshake_hash);
    assert_eq!(listener.handshake_hash, dialer.handshake_hash);
    assert_eq!(dialer.peer_id, listener_key.peer_id());
    assert_eq!(listener.peer_id, dialer_key.peer_id());
    assert_eq!(dialer.public_key, *listener_key.public());
    assert_eq!(listener.public_key, *dialer_key.public());
    assert_eq!(dialer.info, node_info("listener"));
    assert_eq!(listener.info, node_info("dialer"));
}

/// The extreme split: every byte of every message in its own read.
#[test]
fn a_handshake_fed_one_byte_at_a_time_matches_whole_delivery() {
    let records = [b"first".to_vec(), Vec::new(), vec![0xA5; 1000]];
    handshake_in_pieces_matches_whole_delivery(3, |_, len| (1..len).collect(), &records);
}

/// No split at all, with records behind message 3 in the same read: `handle_input` must
/// stop at the end of message 3.
#[test]
fn records_in_the_same_read_as_message_3_are_left_to_the_record_decoder() {
    let records = [b"hello".to_vec(), vec![7; MAX_PLAINTEXT_LEN]];
    handshake_in_pieces_matches_whole_delivery(4, |_, _| Vec::new(), &records);
}

fn records_strategy() -> impl Strategy<Value = Vec<Vec<u8>>> {
    vec(vec(any::<u8>(), 0..300), 0..5)
}

/// A plaintext of `len` bytes that is not constant and depends on `seed`.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|at| (at as u8).wrapping_mul(31) ^ seed ^ (at >> 8) as u8)
        .collect()
}

/// Record plaintexts: mostly short, sometimes at (or just under) the largest size.
fn plaintext_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        12 => vec(any::<u8>(), 0..300),
        1 => (MAX_PLAINTEXT_LEN - 2..=MAX_PLAINTEXT_LEN, any::<u8>())
            .prop_map(|(len, seed)| pattern(len, seed)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// (a) The handshake's outcome does not depend on how its bytes are split into reads.
    #[test]
    fn the_handshake_outcome_does_not_depend_on_how_reads_split_the_bytes(
        seed in any::<u64>(),
        cuts1 in vec(any::<Index>(), 0..8),
        cuts2 in vec(any::<Index>(), 0..40),
        cuts3 in vec(any::<Index>(), 0..40),
        records in records_strategy(),
    ) {
        let cuts = [cuts1, cuts2, cuts3];
        handshake_in_pieces_matches_whole_delivery(
            seed,
            |message, len| cut_points(&cuts[message], len),
            &records,
        );
    }

    /// (b) A stream of records decodes to the same plaintexts however it is split, and
    /// between reads the decoder holds exactly the bytes of the one incomplete record.
    #[test]
    fn records_decode_to_the_same_plaintexts_however_reads_split_them(
        seed in any::<u64>(),
        plaintexts in vec(plaintext_strategy(), 0..12),
        cuts in vec(any::<Index>(), 0..64),
    ) {
        let (_, mut sender, mut receiver) = handshake(seed);
        let mut stream = Vec::new();
        let mut ends = Vec::new();
        for plaintext in &plaintexts {
            seal_record(&mut sender.cipher, plaintext, &mut stream).expect("seal");
            ends.push(stream.len());
        }
        let mut decoder = RecordDecoder::new();
        let mut received: Vec<Vec<u8>> = Vec::new();
        let mut fed = 0;
        for piece in pieces(&stream, &cut_points(&cuts, stream.len())) {
            let mut input = piece;
            while let Some(plaintext) = decoder
                .decode(&mut receiver.cipher, &mut input)
                .expect("an intact record decodes")
            {
                received.push(plaintext.to_vec());
            }
            prop_assert!(input.is_empty());
            fed += piece.len();
            let complete = ends.iter().take_while(|&&end| end <= fed).count();
            let last_end = if complete == 0 { 0 } else { ends[complete - 1] };
            prop_assert_eq!(received.len(), complete, "records complete after {} bytes", fed);
            prop_assert_eq!(decoder.buffered(), fed - last_end);
            prop_assert!(decoder.buffered() <= HEADER + MAX_CIPHERTEXT_LEN);
        }
        prop_assert_eq!(received, plaintexts);
        prop_assert_eq!(receiver.cipher.records_received(), ends.len() as u64);
    }
}

/// Which kind of damage a flipped bit did to a length-prefixed unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Tampering {
    /// The prefix announces a length outside the unit's bounds.
    OutOfBounds,
    /// The prefix announces a shorter unit, within the bounds.
    Shortened,
    /// The prefix announces a longer unit, within the bounds.
    Lengthened,
    /// The prefix is intact; a body bit is flipped.
    Body,
}

/// All four kinds, for checking that a test met each of them.
const ALL_TAMPERINGS: [Tampering; 4] = [
    Tampering::OutOfBounds,
    Tampering::Shortened,
    Tampering::Lengthened,
    Tampering::Body,
];

/// What a handshake receiver must do with message `message` (0-based) whose bit `bit` was
/// flipped (`tampered`), given that the body announced by an intact prefix is
/// `tampered.len() - 2` bytes:
///
/// - a prefix announcing a length outside the message's bounds: `MessageLength`, at once;
/// - a prefix announcing a longer message within the bounds: nothing happens (all bytes
///   consumed, no answer, not established) until the announced length has arrived, and the
///   byte that completes it fails authentication;
/// - a shorter message within the bounds, or any flipped body bit: `Noise(Decrypt)`.
///
/// Afterwards the handshake is dead: it is not established and refuses all input. Returns
/// which of the three cases it was.
fn assert_tampered_message_is_refused(
    receiver: &mut Handshake,
    message: u8,
    tampered: &[u8],
    bit: usize,
) -> Tampering {
    let context = format!("message {} with bit {bit} flipped", message + 1);
    let bounds = &MESSAGE_BODY_LEN[usize::from(message)];
    let body_len = tampered.len() - HEADER;
    let len = announced(tampered);
    let result = receiver.handle_input(tampered);
    let outcome = if !bounds.contains(&len) {
        assert!(bit < 16, "{context}: only a prefix flip changes the length");
        assert_eq!(
            result,
            Err(HandshakeError::MessageLength { message, len }),
            "{context}"
        );
        Tampering::OutOfBounds
    } else if len > body_len {
        assert_eq!(result, Ok(tampered.len()), "{context}: waits for more");
        assert!(!receiver.is_established(), "{context}");
        assert!(!receiver.poll_transmit(&mut Vec::new()), "{context}");
        let filler = vec![0x5A; len - body_len];
        let (all_but_last, last) = filler.split_at(filler.len() - 1);
        assert_eq!(
            receiver.handle_input(all_but_last),
            Ok(all_but_last.len()),
            "{context}: still waiting one byte short"
        );
        assert!(!receiver.poll_transmit(&mut Vec::new()), "{context}");
        assert_eq!(
            receiver.handle_input(last),
            Err(HandshakeError::Noise(NoiseError::Decrypt)),
            "{context}: the completed message fails authentication"
        );
        Tampering::Lengthened
    } else {
        assert_eq!(
            result,
            Err(HandshakeError::Noise(NoiseError::Decrypt)),
            "{context}"
        );
        if len < body_len {
            Tampering::Shortened
        } else {
            Tampering::Body
        }
    };
    assert!(!receiver.is_established(), "{context}");
    assert!(
        !receiver.poll_transmit(&mut Vec::new()),
        "{context}: no answer"
    );
    assert_eq!(
        receiver.handle_input(&tampered[..1]),
        Err(HandshakeError::AlreadyFailed),
        "{context}: a failed handshake refuses input"
    );
    outcome
}

/// (c) A flipped prefix bit of message 1 always leaves the only allowed length, 32, and is
/// refused at once. A flipped bit of its body, the ephemeral key `e`, cannot be caught by
/// the listener — Noise has nothing to authenticate message 1 with — so the strongest true
/// property is that the listener's answer then fails authentication at the dialer, which
/// sends no message 3, and neither side ever establishes. (Exhaustive: every bit, a fresh
/// handshake each time.)
#[test]
fn every_single_bit_flip_of_handshake_message_1_fails_the_handshake() {
    let (reference, _, _) = handshake(FLIP_SEED);
    for bit in 0..reference.message1.len() * 8 {
        let Peers {
            mut dialer,
            mut listener,
            ..
        } = Peers::new(FLIP_SEED);
        let mut message1 = drain(&mut dialer);
        flip(&mut message1, bit);
        if bit < 16 {
            assert_eq!(
                assert_tampered_message_is_refused(&mut listener, 0, &message1, bit),
                Tampering::OutOfBounds
            );
            continue;
        }
        assert_eq!(
            listener.handle_input(&message1),
            Ok(message1.len()),
            "message 1 with bit {bit} flipped: nothing to authenticate yet"
        );
        let message2 = drain(&mut listener);
        assert_ne!(message2, reference.message2, "bit {bit}");
        assert_eq!(
            dialer.handle_input(&message2),
            Err(HandshakeError::Noise(NoiseError::Decrypt)),
            "message 2 answering message 1 with bit {bit} flipped"
        );
        assert!(!dialer.poll_transmit(&mut Vec::new()), "no message 3");
        assert!(!dialer.is_established() && !listener.is_established());
    }
}

/// (c) Every single-bit flip of message 2, prefix included, is refused by the dialer as
/// `assert_tampered_message_is_refused` describes (exhaustive; all four kinds of damage
/// occur).
#[test]
fn every_single_bit_flip_of_handshake_message_2_is_refused_by_the_dialer() {
    let (reference, _, _) = handshake(FLIP_SEED);
    let mut seen = BTreeSet::new();
    for bit in 0..reference.message2.len() * 8 {
        let Peers {
            mut dialer,
            mut listener,
            ..
        } = Peers::new(FLIP_SEED);
        let message1 = drain(&mut dialer);
        assert_eq!(listener.handle_input(&message1), Ok(message1.len()));
        let mut message2 = drain(&mut listener);
        flip(&mut message2, bit);
        seen.insert(assert_tampered_message_is_refused(
            &mut dialer,
            1,
            &message2,
            bit,
        ));
    }
    assert_eq!(seen, BTreeSet::from(ALL_TAMPERINGS));
}

/// (c) Every single-bit flip of message 3, prefix included, is refused by the listener as
/// `assert_tampered_message_is_refused` describes (exhaustive; all four kinds of damage
/// occur).
#[test]
fn every_single_bit_flip_of_handshake_message_3_is_refused_by_the_listener() {
    let (reference, _, _) = handshake(FLIP_SEED);
    let mut seen = BTreeSet::new();
    for bit in 0..reference.message3.len() * 8 {
        let Peers {
            mut dialer,
            mut listener,
            ..
        } = Peers::new(FLIP_SEED);
        let message1 = drain(&mut dialer);
        assert_eq!(listener.handle_input(&message1), Ok(message1.len()));
        let message2 = drain(&mut listener);
        assert_eq!(dialer.handle_input(&message2), Ok(message2.len()));
        let mut message3 = drain(&mut dialer);
        flip(&mut message3, bit);
        seen.insert(assert_tampered_message_is_refused(
            &mut listener,
            2,
            &message3,
            bit,
        ));
    }
    assert_eq!(seen, BTreeSet::from(ALL_TAMPERINGS));
}

/// The outcome every single-bit flip of a record must have, fed in any pieces: with `len`
/// the ciphertext length its (possibly flipped) header announces, the decoder returns
/// `Ok(None)` — holding every byte fed so far, and no plaintext — until exactly `cut`
/// bytes have arrived (`2`, the header alone, when `len` is below a tag; `2 + len`
/// otherwise), then the error (`TooShort(len)` or `Decrypt`), having consumed exactly
/// `cut` bytes. A header flip that lengthens the record thus swallows the start of the
/// records behind it as ciphertext, and fails once its announced length is complete; it can
/// never make the decoder wait for more than one maximal record.
fn assert_tampered_record_is_refused(
    receiver: &mut TransportCipher,
    tampered_stream: &[u8],
    points: &[usize],
    context: &str,
) {
    let len = announced(tampered_stream);
    let (cut, expected) = if len < TAG_LEN {
        (HEADER, RecordError::TooShort(len))
    } else {
        (HEADER + len, RecordError::Cipher(CipherError::Decrypt))
    };
    assert!(
        tampered_stream.len() >= cut,
        "{context}: the stream must reach the announced end"
    );
    let mut decoder = RecordDecoder::new();
    let mut fed = 0;
    for piece in pieces(tampered_stream, points) {
        let mut input = piece;
        let result = decoder.decode(receiver, &mut input).map(|plaintext| {
            plaintext.map(|plaintext| format!("plaintext of {} bytes", plaintext.len()))
        });
        let consumed = piece.len() - input.len();
        if fed + piece.len() < cut {
            assert_eq!(
                result,
                Ok(None),
                "{context}: after {fed}+{} bytes",
                piece.len()
            );
            assert_eq!(consumed, piece.len(), "{context}");
            assert_eq!(decoder.buffered(), fed + piece.len(), "{context}");
            fed += consumed;
        } else {
            assert_eq!(result, Err(expected), "{context}");
            assert_eq!(
                fed + consumed,
                cut,
                "{context}: consumed up to the announced end"
            );
            assert_eq!(
                receiver.records_received(),
                0,
                "{context}: the nonce did not move"
            );
            return;
        }
    }
    panic!("{context}: the stream ended before the announced record did");
}

/// The plaintext of the record behind a tampered one: a flipped header bit lengthens a
/// record shorter than 32768 bytes by at most 32768 (bit 15), and this record's 2 + 32768 +
/// 16 bytes cover that.
static FOLLOWER: LazyLock<Vec<u8>> = LazyLock::new(|| pattern(1 << 15, 3));

/// Seals `plaintext` as record 0 and [`FOLLOWER`] behind it, so a header flip that lengthens
/// record 0 still has bytes to swallow. Returns the stream and record 0's length.
fn record_and_follower(sender: &mut TransportCipher, plaintext: &[u8]) -> (Vec<u8>, usize) {
    let mut stream = Vec::new();
    seal_record(sender, plaintext, &mut stream).expect("seal");
    let record_len = stream.len();
    seal_record(sender, &FOLLOWER, &mut stream).expect("seal");
    (stream, record_len)
}

/// Checks that the intact `stream` still decodes with `receiver`, so the flips above left
/// the receiving cipher untouched.
fn assert_intact_stream_decodes(receiver: &mut TransportCipher, stream: &[u8], first: &[u8]) {
    let mut decoder = RecordDecoder::new();
    let mut input = stream;
    assert_eq!(
        decoder.decode(receiver, &mut input).expect("intact record"),
        Some(first)
    );
    assert_eq!(
        decoder.decode(receiver, &mut input).expect("intact record"),
        Some(&FOLLOWER[..])
    );
    assert!(input.is_empty());
}

/// (c) Every single-bit flip of a record — each header bit and each ciphertext or tag bit,
/// for records of 0, 1 and 100 plaintext bytes — is refused as
/// `assert_tampered_record_is_refused` describes, fed whole and in two reads split at the
/// end of the tampered record.
#[test]
fn every_single_bit_flip_of_a_record_is_refused_and_yields_no_plaintext() {
    let mut seen = BTreeSet::new();
    for plaintext in [Vec::new(), vec![0x42], pattern(100, 9)] {
        let (_, mut sender, mut receiver) = handshake(FLIP_SEED);
        let (stream, record_len) = record_and_follower(&mut sender.cipher, &plaintext);
        for bit in 0..record_len * 8 {
            let mut tampered = stream.clone();
            flip(&mut tampered, bit);
            let len = announced(&tampered);
            seen.insert(match len.cmp(&(record_len - HEADER)) {
                _ if len < TAG_LEN => Tampering::OutOfBounds,
                Ordering::Less => Tampering::Shortened,
                Ordering::Greater => Tampering::Lengthened,
                Ordering::Equal => Tampering::Body,
            });
            let context = format!("{}-byte record, bit {bit} flipped", plaintext.len());
            assert_tampered_record_is_refused(&mut receiver.cipher, &tampered, &[], &context);
            assert_tampered_record_is_refused(
                &mut receiver.cipher,
                &tampered,
                &[record_len],
                &context,
            );
        }
        assert_intact_stream_decodes(&mut receiver.cipher, &stream, &plaintext);
    }
    assert_eq!(seen, BTreeSet::from(ALL_TAMPERINGS));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// (c) A single-bit flip anywhere in a record of arbitrary content, fed in arbitrary
    /// pieces, is refused exactly as `assert_tampered_record_is_refused` describes.
    #[test]
    fn a_flipped_record_bit_is_refused_however_reads_split_the_stream(
        seed in any::<u64>(),
        plaintext in vec(any::<u8>(), 0..2000),
        bit in any::<Index>(),
        cuts in vec(any::<Index>(), 0..16),
    ) {
        let (_, mut sender, mut receiver) = handshake(seed);
        let (stream, record_len) = record_and_follower(&mut sender.cipher, &plaintext);
        let bit = bit.index(record_len * 8);
        let mut tampered = stream.clone();
        flip(&mut tampered, bit);
        let context = format!("{}-byte record, bit {bit} flipped", plaintext.len());
        let points = cut_points(&cuts, tampered.len());
        assert_tampered_record_is_refused(&mut receiver.cipher, &tampered, &points, &context);
        assert_intact_stream_decodes(&mut receiver.cipher, &stream, &plaintext);
    }
}
