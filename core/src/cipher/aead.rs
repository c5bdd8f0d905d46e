//! The one seam between switchboard and its AEAD implementation.
//!
//! Everything above this file sees only [`AeadKey`]: construct from 32 bytes, seal and open
//! in place (the shape `ring`'s API has too).
//! Swapping the backend (e.g. `ring`, which seals several times faster than `aes-gcm` on
//! x86-64) means changing this file alone. The nonce is Noise's AESGCM nonce: four zero bytes
//! followed by the 64-bit counter, big-endian.

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
}

fn noise_nonce(counter: u64) -> Nonce<aes_gcm::aead::consts::U12> {
    let mut nonce = [0u8; 12];
    let (_, counter_bytes) = nonce.split_at_mut(4);
    counter_bytes.copy_from_slice(&counter.to_be_bytes());
    Nonce::from(nonce)
}

impl Drop for AeadKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}
