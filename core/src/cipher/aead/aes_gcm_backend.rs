//! The portable backend: RustCrypto's `aes-gcm` (AES-NI and CLMUL when the CPU has them,
//! constant-time software otherwise).

use aes_gcm::aead::{AeadInOut, KeyInit, inout::InOutBuf};

use super::{AeadFailed, SecretKey, TAG_LEN};
use aes_gcm::{Aes256Gcm, Nonce, Tag};

/// An AES-256-GCM key.
///
/// Only the 32 key bytes are stored; the expanded key schedule and GHASH key (1.1 KiB with
/// `aes-gcm`'s runtime CPU detection) are derived on the stack for each record, at ~0.1 µs —
/// under 0.5% of sealing a full record. Stored expanded, the two directions of a connection
/// would hold 2.2 KiB: most of an idle connection's memory budget (3 KiB), for every peer.
pub(crate) struct AeadKey(SecretKey);

impl AeadKey {
    pub(crate) fn new(key: &[u8; 32]) -> Self {
        AeadKey(SecretKey(*key))
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new((&self.0.0).into())
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

fn noise_nonce(counter: u64) -> Nonce<aes_gcm::aead::consts::U12> {
    Nonce::from(super::noise_nonce(counter))
}
