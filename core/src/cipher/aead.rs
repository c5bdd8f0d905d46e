//! The one seam between switchboard and its AEAD implementation.
//!
//! Everything above this file sees only [`AeadKey`]: construct from 32 bytes, seal and open
//! in place (the shape `ring`'s API has too), or from one buffer into another.
//! Swapping the backend (e.g. `ring`, which seals several times faster than `aes-gcm` on
//! x86-64) means changing this file alone. The nonce is Noise's AESGCM nonce: four zero bytes
//! followed by the 64-bit counter, big-endian.
//!
//! The out-of-place forms exist so the record layer need not copy a record only to encrypt
//! or decrypt the copy: the cipher reads and writes every byte anyway, so reading from the
//! source and writing to the destination fuses the copy into it. A backend with in-place
//! operations only (`ring`) would implement them as a copy followed by the in-place
//! operation — what the record layer paid before.

use aes_gcm::aead::{AeadInOut, KeyInit, inout::InOutBuf};
use aes_gcm::{Aes256Gcm, Nonce, Tag};

/// Length of an AES-GCM authentication tag.
pub(crate) const TAG_LEN: usize = 16;

/// The AEAD refused: on open, the ciphertext, tag, nonce or associated data was not what the
/// sender sealed; on seal, the input was longer than AES-GCM allows (2^36 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AeadFailed;

/// An AES-256-GCM key.
///
/// Only the 32 key bytes are stored; the expanded key schedule and GHASH key (1.1 KiB with
/// `aes-gcm`'s runtime CPU detection) are derived on the stack for each record, at ~0.1 µs —
/// under 0.5% of sealing a full record. Stored expanded, the two directions of a connection
/// would hold 2.2 KiB: most of an idle connection's memory budget (3 KiB), for every peer.
pub(crate) struct AeadKey([u8; 32]);

impl AeadKey {
    pub(crate) fn new(key: &[u8; 32]) -> Self {
        AeadKey(*key)
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new((&self.0).into())
    }

    /// Encrypts `buffer` in place and returns the tag.
    pub(crate) fn seal_in_place(
        &self,
        nonce: u64,
        associated_data: &[u8],
        buffer: &mut [u8],
    ) -> Result<[u8; TAG_LEN], AeadFailed> {
        self.cipher()
            .encrypt_inout_detached(&noise_nonce(nonce), associated_data, InOutBuf::from(buffer))
            .map(Into::into)
            .map_err(|_| AeadFailed)
    }

    /// Decrypts `buffer` in place if `tag` authenticates it; on failure `buffer` is
    /// unchanged.
    pub(crate) fn open_in_place(
        &self,
        nonce: u64,
        associated_data: &[u8],
        buffer: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), AeadFailed> {
        self.cipher()
            .decrypt_inout_detached(
                &noise_nonce(nonce),
                associated_data,
                InOutBuf::from(buffer),
                &Tag::from(*tag),
            )
            .map_err(|_| AeadFailed)
    }

    /// Encrypts `plaintext` into `ciphertext` (same length, distinct buffers) and returns the
    /// tag. Refuses buffers of different lengths like an over-long input; on failure
    /// `ciphertext` holds no meaningful bytes.
    pub(crate) fn seal_to(
        &self,
        nonce: u64,
        associated_data: &[u8],
        plaintext: &[u8],
        ciphertext: &mut [u8],
    ) -> Result<[u8; TAG_LEN], AeadFailed> {
        let buffer = InOutBuf::new(plaintext, ciphertext).map_err(|_| AeadFailed)?;
        self.cipher()
            .encrypt_inout_detached(&noise_nonce(nonce), associated_data, buffer)
            .map(Into::into)
            .map_err(|_| AeadFailed)
    }

    /// Decrypts `ciphertext` into `plaintext` (same length, distinct buffers) if `tag`
    /// authenticates it.
    ///
    /// On failure `plaintext` is zeroed: whatever the backend does (`aes-gcm` checks the tag
    /// before decrypting, others decrypt first), no unauthenticated byte — nor an earlier
    /// record's plaintext — is left for a careless caller to read. Failure ends the
    /// connection, so the zeroing costs nothing that matters.
    pub(crate) fn open_to(
        &self,
        nonce: u64,
        associated_data: &[u8],
        ciphertext: &[u8],
        plaintext: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), AeadFailed> {
        let opened = match InOutBuf::new(ciphertext, &mut *plaintext) {
            Ok(buffer) => self
                .cipher()
                .decrypt_inout_detached(
                    &noise_nonce(nonce),
                    associated_data,
                    buffer,
                    &Tag::from(*tag),
                )
                .map_err(|_| AeadFailed),
            Err(_) => Err(AeadFailed),
        };
        if opened.is_err() {
            plaintext.fill(0);
        }
        opened
    }
}

impl Drop for AeadKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

fn noise_nonce(counter: u64) -> Nonce<aes_gcm::aead::consts::U12> {
    let mut nonce = [0u8; 12];
    let (_, counter_bytes) = nonce.split_at_mut(4);
    counter_bytes.copy_from_slice(&counter.to_be_bytes());
    Nonce::from(nonce)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_place_matches_in_place() {
        let key = AeadKey::new(&[7; 32]);
        let plaintext = *b"out of place, in place";
        let mut in_place = plaintext;
        let tag = key.seal_in_place(9, b"ad", &mut in_place).unwrap();
        let mut ciphertext = [0; 22];
        assert_eq!(key.seal_to(9, b"ad", &plaintext, &mut ciphertext), Ok(tag));
        assert_eq!(ciphertext, in_place);
        let mut opened = [0; 22];
        assert_eq!(
            key.open_to(9, b"ad", &ciphertext, &mut opened, &tag),
            Ok(())
        );
        assert_eq!(opened, plaintext);
    }

    #[test]
    fn out_of_place_refuses_buffers_of_different_lengths() {
        let key = AeadKey::new(&[7; 32]);
        assert_eq!(key.seal_to(0, &[], &[1; 4], &mut [0; 5]), Err(AeadFailed));
        let mut opened = [0xEE; 3];
        assert_eq!(
            key.open_to(0, &[], &[1; 4], &mut opened, &[0; TAG_LEN]),
            Err(AeadFailed)
        );
        assert_eq!(opened, [0; 3]);
    }
}
