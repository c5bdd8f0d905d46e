//! Encrypted records: `u16 big-endian length || ciphertext`, the unit everything after the
//! handshake travels in (`PROTOCOL.md` §4).
//!
//! A record's ciphertext is at most 65535 bytes (the Noise message limit), tag included, so a
//! record carries at most [`MAX_PLAINTEXT_LEN`] = 65519 bytes of plaintext. The decoder takes
//! input split at any points and never buffers more than one record.
//!
//! ```
//! # use switchboard::record::{RecordDecoder, seal_record};
//! # fn demo(sender: &mut switchboard::TransportCipher, receiver: &mut switchboard::TransportCipher)
//! #     -> Result<(), switchboard::record::RecordError> {
//! let mut wire = Vec::new();
//! seal_record(sender, b"hello", &mut wire)?;
//!
//! let mut decoder = RecordDecoder::new();
//! let mut input: &[u8] = &wire;
//! while let Some(plaintext) = decoder.decode(receiver, &mut input)? {
//!     assert_eq!(plaintext, b"hello");
//! }
//! # Ok(()) }
//! ```

use alloc::vec::Vec;
use core::fmt;
use core::ops::RangeInclusive;

use crate::cipher::{CipherError, TAG_LEN, TransportCipher};
use crate::length_prefix::{HEADER_LEN, LengthOutOfRange, LengthPrefixed};

/// Largest ciphertext of one record (the Noise message limit), tag included.
pub const MAX_CIPHERTEXT_LEN: usize = 65535;
/// Largest plaintext one record carries.
pub const MAX_PLAINTEXT_LEN: usize = MAX_CIPHERTEXT_LEN - TAG_LEN;
/// Bytes of a record's length header.
pub const HEADER: usize = HEADER_LEN;

const CIPHERTEXT_LEN: RangeInclusive<usize> = TAG_LEN..=MAX_CIPHERTEXT_LEN;

/// Why a record could not be sealed or opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordError {
    /// A record header announced a ciphertext shorter than a tag; the length found.
    TooShort(usize),
    /// A plaintext longer than [`MAX_PLAINTEXT_LEN`] was given to seal; its length.
    PlaintextTooLong(usize),
    /// The cipher refused: authentication failure or nonce exhaustion.
    Cipher(CipherError),
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::TooShort(len) => {
                write!(
                    f,
                    "record of {len} bytes is shorter than its {TAG_LEN}-byte tag"
                )
            }
            RecordError::PlaintextTooLong(len) => {
                write!(
                    f,
                    "plaintext of {len} bytes exceeds the record limit {MAX_PLAINTEXT_LEN}"
                )
            }
            RecordError::Cipher(error) => write!(f, "record cipher: {error}"),
        }
    }
}

impl core::error::Error for RecordError {}

impl From<CipherError> for RecordError {
    fn from(error: CipherError) -> Self {
        RecordError::Cipher(error)
    }
}

/// Where a record being built starts in its output buffer; see [`begin_record`].
#[derive(Debug)]
#[must_use = "a begun record must be finished with finish_record"]
pub struct RecordStart(usize);

/// Starts a record at the end of `out` by reserving its header. Append up to
/// [`MAX_PLAINTEXT_LEN`] bytes of plaintext to `out`, then call [`finish_record`]: the
/// plaintext is encrypted where it lies, so the layer above can encode straight into the
/// outgoing buffer without an intermediate copy.
pub fn begin_record(out: &mut Vec<u8>) -> RecordStart {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER_LEN]);
    RecordStart(start)
}

/// Seals the record begun at `start`: writes its header, encrypts the plaintext in place and
/// appends the tag. On error `out` is truncated back to where the record began.
pub fn finish_record(
    cipher: &mut TransportCipher,
    out: &mut Vec<u8>,
    start: RecordStart,
) -> Result<(), RecordError> {
    let RecordStart(start) = start;
    let plaintext_len = out.len().saturating_sub(start.saturating_add(HEADER_LEN));
    if plaintext_len > MAX_PLAINTEXT_LEN {
        out.truncate(start);
        return Err(RecordError::PlaintextTooLong(plaintext_len));
    }
    out.extend_from_slice(&[0; TAG_LEN]);
    let sealed = match out.get_mut(start..) {
        Some(record) => {
            let (header, ciphertext) = record.split_at_mut(HEADER_LEN.min(record.len()));
            // Checked above: plaintext_len + TAG_LEN <= u16::MAX.
            let len = u16::try_from(ciphertext.len()).unwrap_or(u16::MAX);
            header.copy_from_slice(&len.to_be_bytes());
            cipher.encrypt_in_place(ciphertext)
        }
        None => Err(CipherError::TooShort),
    };
    sealed.map_err(|error| {
        out.truncate(start);
        RecordError::from(error)
    })
}

/// Appends `plaintext` to `out` as one record.
///
/// The plaintext is encrypted from where it lies straight into `out` (whose room for it is
/// zero-filled first, a cheaper pass than a copy), never copied first. A layer that
/// produces its plaintext by encoding can skip even the zero-fill by encoding straight into
/// `out` between [`begin_record`] and [`finish_record`]. On error `out` is left as it was.
pub fn seal_record(
    cipher: &mut TransportCipher,
    plaintext: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), RecordError> {
    let too_long = RecordError::PlaintextTooLong(plaintext.len());
    if plaintext.len() > MAX_PLAINTEXT_LEN {
        return Err(too_long);
    }
    // Within u16 by the check above: MAX_PLAINTEXT_LEN + TAG_LEN is u16::MAX.
    let ciphertext_len =
        u16::try_from(plaintext.len().saturating_add(TAG_LEN)).map_err(|_| too_long)?;
    let start = out.len();
    out.extend_from_slice(&ciphertext_len.to_be_bytes());
    cipher.encrypt(plaintext, out).map_err(|error| {
        out.truncate(start);
        RecordError::from(error)
    })
}

/// Reassembles and decrypts records from a byte stream.
///
/// Two paths, one result. When nothing is buffered and `input` holds a whole record — the
/// usual case for bulk transfers read in large chunks — the record is decrypted straight
/// from `input` into the decoder's storage: one pass over the bytes. Otherwise the record is
/// first reassembled in that storage from as many pieces as it comes in, then decrypted in
/// place.
///
/// The storage holds one record at most, serves both paths, and is reused: it is
/// zero-filled once when it grows to the largest record seen, never shrunk, so after warm-up
/// decoding neither allocates nor zero-fills.
#[derive(Default)]
pub struct RecordDecoder {
    record: LengthPrefixed,
    /// The buffered record was returned and must be dropped before the next one.
    returned: bool,
}

impl RecordDecoder {
    /// An empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Consumes bytes from the front of `input` (advancing it) until one record is complete,
    /// then decrypts it and returns its plaintext, valid until the next call. Returns
    /// `Ok(None)` when `input` ran out first; the partial record is kept for the next call.
    ///
    /// After an error the stream is unusable and the connection must be closed.
    pub fn decode(
        &mut self,
        cipher: &mut TransportCipher,
        input: &mut &[u8],
    ) -> Result<Option<&[u8]>, RecordError> {
        if self.returned {
            self.record.clear();
            self.returned = false;
        }
        if self.record.buffered() == 0
            && let Some((ciphertext, rest)) = whole_record(input)
        {
            // The record is consumed whether or not it authenticates, as on the buffering
            // path. On failure the storage holds no plaintext, and it is never returned.
            *input = rest;
            let storage = self.record.clear_to_scratch();
            let len = cipher.decrypt_to(ciphertext, storage)?;
            return Ok(Some(storage.get(..len).unwrap_or_default()));
        }
        let complete = self
            .record
            .feed(input, &CIPHERTEXT_LEN)
            .map_err(|LengthOutOfRange(len)| RecordError::TooShort(len))?;
        if !complete {
            return Ok(None);
        }
        self.returned = true;
        let ciphertext = self.record.body_mut();
        let len = cipher.decrypt_in_place(ciphertext)?;
        Ok(Some(ciphertext.get(..len).unwrap_or_default()))
    }

    /// Bytes of an incomplete record currently held.
    pub fn buffered(&self) -> usize {
        if self.returned {
            0
        } else {
            self.record.buffered()
        }
    }
}

/// Splits a whole record with a valid length off the front of `input`: its ciphertext and
/// the bytes after it. `None` if the header is incomplete, announces a length the record
/// layer refuses (the buffering path reports that), or the ciphertext is not all there.
fn whole_record(input: &[u8]) -> Option<(&[u8], &[u8])> {
    let (header, rest) = input.split_first_chunk::<HEADER_LEN>()?;
    let len = usize::from(u16::from_be_bytes(*header));
    if !CIPHERTEXT_LEN.contains(&len) {
        return None;
    }
    rest.split_at_checked(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cipher::{CipherState, REKEY_INTERVAL};
    use alloc::vec;

    fn pair() -> (TransportCipher, TransportCipher) {
        (
            TransportCipher::new(CipherState::new(&[5; 32]), CipherState::new(&[6; 32])),
            TransportCipher::new(CipherState::new(&[6; 32]), CipherState::new(&[5; 32])),
        )
    }

    #[test]
    fn records_survive_any_split() {
        let (mut a, _) = pair();
        let mut wire = Vec::new();
        let payloads = [vec![], vec![1u8; 100], vec![2u8; MAX_PLAINTEXT_LEN]];
        for payload in &payloads {
            seal_record(&mut a, payload, &mut wire).unwrap();
        }
        assert_eq!(wire.len(), 3 * (HEADER + TAG_LEN) + 100 + MAX_PLAINTEXT_LEN);
        for chunk in [1, 2, 3, 17, 4096, wire.len()] {
            let (_, mut b) = pair();
            let mut decoder = RecordDecoder::new();
            let mut received = Vec::new();
            for piece in wire.chunks(chunk) {
                let mut input = piece;
                while let Some(plaintext) = decoder.decode(&mut b, &mut input).unwrap() {
                    received.push(plaintext.to_vec());
                }
                assert!(input.is_empty());
            }
            assert_eq!(received, payloads, "chunk size {chunk}");
            assert_eq!(decoder.buffered(), 0);
        }
    }

    #[test]
    fn oversized_plaintext_is_refused_and_leaves_no_trace() {
        let (mut a, _) = pair();
        let mut out = vec![9];
        assert_eq!(
            seal_record(&mut a, &vec![0; MAX_PLAINTEXT_LEN + 1], &mut out),
            Err(RecordError::PlaintextTooLong(MAX_PLAINTEXT_LEN + 1))
        );
        let start = begin_record(&mut out);
        out.resize(out.len() + MAX_PLAINTEXT_LEN + 1, 0);
        assert!(finish_record(&mut a, &mut out, start).is_err());
        assert_eq!(out, vec![9]);
        assert_eq!(a.records_sent(), 0);
    }

    #[test]
    fn a_header_shorter_than_a_tag_is_an_error() {
        let (_, mut b) = pair();
        let mut input: &[u8] = &[0, 15];
        assert_eq!(
            RecordDecoder::new().decode(&mut b, &mut input).unwrap_err(),
            RecordError::TooShort(15)
        );
    }

    #[test]
    fn tampering_fails_authentication() {
        let (mut a, mut b) = pair();
        let mut wire = Vec::new();
        seal_record(&mut a, b"payload", &mut wire).unwrap();
        wire[4] ^= 0x40;
        let mut input: &[u8] = &wire;
        assert_eq!(
            RecordDecoder::new().decode(&mut b, &mut input).unwrap_err(),
            RecordError::Cipher(CipherError::Decrypt)
        );
    }

    /// `n` records of distinct payloads (record `i` holds `len(i)` bytes of value `i + 1`),
    /// and the wire they make.
    fn sealed(
        sender: &mut TransportCipher,
        n: usize,
        len: impl Fn(usize) -> usize,
    ) -> (Vec<Vec<u8>>, Vec<u8>) {
        let payloads: Vec<Vec<u8>> = (0..n).map(|i| vec![i as u8 + 1; len(i)]).collect();
        let mut wire = Vec::new();
        for payload in &payloads {
            seal_record(sender, payload, &mut wire).unwrap();
        }
        (payloads, wire)
    }

    #[test]
    fn whole_records_are_decrypted_straight_from_the_input() {
        let (mut a, mut b) = pair();
        let (payloads, wire) = sealed(&mut a, 4, |i| [MAX_PLAINTEXT_LEN, 0, 300, 70][i]);
        let mut decoder = RecordDecoder::new();
        let mut input: &[u8] = &wire;
        for payload in &payloads {
            let before = input.len();
            let plaintext = decoder.decode(&mut b, &mut input).unwrap().unwrap();
            assert_eq!(plaintext, &payload[..]);
            assert_eq!(before - input.len(), HEADER + payload.len() + TAG_LEN);
            // The fused path: nothing was buffered, so there is nothing to drop either.
            assert!(!decoder.returned);
            assert_eq!(decoder.buffered(), 0);
        }
        assert!(input.is_empty());
        assert_eq!(decoder.decode(&mut b, &mut input), Ok(None));
        // The storage grew once, to the largest record, and smaller ones did not shrink it.
        assert_eq!(decoder.record.clear_to_scratch().len(), MAX_PLAINTEXT_LEN);
    }

    #[test]
    fn a_split_record_is_buffered_and_the_next_whole_one_is_fused_again() {
        let (mut a, _) = pair();
        let (payloads, wire) = sealed(&mut a, 3, |i| 100 + i);
        let first_len = HEADER + 100 + TAG_LEN;
        for cut in 1..first_len {
            let (_, mut b) = pair();
            let mut decoder = RecordDecoder::new();
            let (head, tail) = wire.split_at(cut);
            let mut input = head;
            assert_eq!(decoder.decode(&mut b, &mut input), Ok(None));
            assert!(input.is_empty());
            assert_eq!(decoder.buffered(), cut);
            // The rest of record 0 completes the buffered one, in place.
            let mut input = tail;
            let plaintext = decoder.decode(&mut b, &mut input).unwrap().unwrap();
            assert_eq!(plaintext, &payloads[0][..]);
            assert!(
                decoder.returned,
                "cut {cut}: record 0 went through the buffer"
            );
            // Records 1 and 2 are whole in what is left: fused.
            for payload in &payloads[1..] {
                let plaintext = decoder.decode(&mut b, &mut input).unwrap().unwrap();
                assert_eq!(plaintext, &payload[..]);
                assert!(!decoder.returned, "cut {cut}");
            }
            assert!(input.is_empty());
            assert_eq!(decoder.buffered(), 0);
        }
    }

    #[test]
    fn tampering_is_caught_on_both_paths_and_nothing_is_returned() {
        let (mut a, _) = pair();
        let (payloads, wire) = sealed(&mut a, 2, |_| 64);
        let second = HEADER + 64 + TAG_LEN;
        for position in second + HEADER..wire.len() {
            let mut tampered = wire.clone();
            tampered[position] ^= 0x01;
            // Whole: fused path. The record is consumed, the counter stays, and the storage,
            // which held the first record's plaintext, holds zeros rather than either that
            // or unauthenticated plaintext.
            let (_, mut b) = pair();
            let mut decoder = RecordDecoder::new();
            let mut input: &[u8] = &tampered;
            let first = decoder.decode(&mut b, &mut input).unwrap().unwrap();
            assert_eq!(first, &payloads[0][..]);
            assert_eq!(
                decoder.decode(&mut b, &mut input),
                Err(RecordError::Cipher(CipherError::Decrypt))
            );
            assert!(input.is_empty());
            assert_eq!(b.records_received(), 1);
            let storage = decoder.record.clear_to_scratch();
            assert_eq!(storage[..64], [0; 64]);
            // Split: buffering path.
            let (_, mut b) = pair();
            let mut decoder = RecordDecoder::new();
            let (head, tail) = tampered.split_at(position);
            let mut input = head;
            assert!(decoder.decode(&mut b, &mut input).unwrap().is_some());
            assert_eq!(decoder.decode(&mut b, &mut input), Ok(None));
            let mut input = tail;
            assert_eq!(
                decoder.decode(&mut b, &mut input),
                Err(RecordError::Cipher(CipherError::Decrypt))
            );
            assert_eq!(b.records_received(), 1);
        }
    }

    #[test]
    fn a_short_length_is_refused_however_much_input_follows() {
        let (_, mut b) = pair();
        let mut wire = vec![0, 15];
        wire.extend_from_slice(&[7; 40]);
        let mut input: &[u8] = &wire;
        assert_eq!(
            RecordDecoder::new().decode(&mut b, &mut input),
            Err(RecordError::TooShort(15))
        );
        assert_eq!(input.len(), 40, "only the header was consumed");
    }

    #[test]
    fn both_paths_rekey_in_step_with_the_sender() {
        // The last record before the rekey arrives whole (fused path) in the first run and
        // split (buffering path) in the second; records before and after alternate paths.
        for before_rekey in [3, 4] {
            let (mut a, mut b) = pair();
            a.set_nonces_for_test(REKEY_INTERVAL - before_rekey, 0);
            b.set_nonces_for_test(0, REKEY_INTERVAL - before_rekey);
            let (payloads, wire) = sealed(&mut a, 8, |i| 1000 + i);
            let mut decoder = RecordDecoder::new();
            let mut rest: &[u8] = &wire;
            for (i, payload) in payloads.iter().enumerate() {
                let record_len = HEADER + payload.len() + TAG_LEN;
                let (record, tail) = rest.split_at(record_len);
                rest = tail;
                let plaintext = if i % 2 == 0 {
                    let mut input = record;
                    decoder
                        .decode(&mut b, &mut input)
                        .unwrap()
                        .unwrap()
                        .to_vec()
                } else {
                    let (head, tail) = record.split_at(record_len / 2);
                    let mut input = head;
                    assert_eq!(decoder.decode(&mut b, &mut input), Ok(None));
                    let mut input = tail;
                    decoder
                        .decode(&mut b, &mut input)
                        .unwrap()
                        .unwrap()
                        .to_vec()
                };
                assert_eq!(
                    plaintext, *payload,
                    "record {i}, {before_rekey} before rekey"
                );
            }
            assert_eq!(b.records_received(), REKEY_INTERVAL - before_rekey + 8);
        }
    }

    #[test]
    fn sealing_writes_what_in_place_sealing_writes() {
        let (mut copying, _) = pair();
        let (mut direct, _) = pair();
        for len in [0, 1, 100, MAX_PLAINTEXT_LEN] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut expected = vec![3];
            let start = begin_record(&mut expected);
            expected.extend_from_slice(&payload);
            finish_record(&mut copying, &mut expected, start).unwrap();
            let mut out = vec![3];
            seal_record(&mut direct, &payload, &mut out).unwrap();
            assert_eq!(out, expected, "len {len}");
        }
    }
}
