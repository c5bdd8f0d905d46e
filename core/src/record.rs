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
pub fn seal_record(
    cipher: &mut TransportCipher,
    plaintext: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), RecordError> {
    if plaintext.len() > MAX_PLAINTEXT_LEN {
        return Err(RecordError::PlaintextTooLong(plaintext.len()));
    }
    let start = begin_record(out);
    out.extend_from_slice(plaintext);
    finish_record(cipher, out, start)
}

/// Reassembles and decrypts records from a byte stream.
///
/// Its buffer holds one record at most and is reused, so after warm-up decoding allocates
/// nothing.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cipher::CipherState;
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
}
