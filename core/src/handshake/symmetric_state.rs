//! Noise's `SymmetricState` (rev. 34, §5.2): the chaining key `ck`, the handshake hash `h`
//! and the handshake-phase cipher.

use alloc::vec::Vec;

use super::hash::{Digest64, HASHLEN, hash, hkdf2};
use crate::cipher::{CipherError, CipherState, TransportCipher};

pub(crate) struct SymmetricState {
    chaining_key: Digest64,
    handshake_hash: Digest64,
    cipher: Option<CipherState>,
}

impl SymmetricState {
    /// `InitializeSymmetric(protocol_name)`.
    pub(crate) fn new(protocol_name: &[u8]) -> Self {
        let handshake_hash = if protocol_name.len() <= HASHLEN {
            let mut padded = [0u8; HASHLEN];
            padded
                .iter_mut()
                .zip(protocol_name)
                .for_each(|(slot, byte)| *slot = *byte);
            padded
        } else {
            hash(protocol_name, &[])
        };
        SymmetricState {
            chaining_key: handshake_hash,
            handshake_hash,
            cipher: None,
        }
    }

    /// `MixKey(input_key_material)`.
    pub(crate) fn mix_key(&mut self, input_key_material: &[u8]) {
        let (chaining_key, temp_key) = hkdf2(&self.chaining_key, input_key_material);
        self.chaining_key = chaining_key;
        self.cipher = Some(CipherState::new(&truncate(&temp_key)));
    }

    /// `MixHash(data)`.
    pub(crate) fn mix_hash(&mut self, data: &[u8]) {
        self.handshake_hash = hash(&self.handshake_hash, data);
    }

    /// `EncryptAndHash(plaintext)`, appending the result to `out`.
    pub(crate) fn encrypt_and_hash(
        &mut self,
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), CipherError> {
        let start = out.len();
        match &mut self.cipher {
            Some(cipher) => cipher.encrypt_with_ad(&self.handshake_hash, plaintext, out)?,
            None => out.extend_from_slice(plaintext),
        }
        let written = out.get(start..).unwrap_or_default();
        self.handshake_hash = hash(&self.handshake_hash, written);
        Ok(())
    }

    /// `DecryptAndHash(ciphertext)` in place; returns the plaintext length (the plaintext is
    /// `buffer[..len]`).
    pub(crate) fn decrypt_and_hash(&mut self, buffer: &mut [u8]) -> Result<usize, CipherError> {
        let next_hash = hash(&self.handshake_hash, buffer);
        let len = match &mut self.cipher {
            Some(cipher) => cipher.decrypt_in_place(&self.handshake_hash, buffer)?,
            None => buffer.len(),
        };
        self.handshake_hash = next_hash;
        Ok(len)
    }

    /// The handshake hash `h`.
    pub(crate) fn handshake_hash(&self) -> &Digest64 {
        &self.handshake_hash
    }

    /// `Split()`: the initiator's sending cipher first.
    pub(crate) fn split(&self) -> (CipherState, CipherState) {
        let (first, second) = hkdf2(&self.chaining_key, &[]);
        (
            CipherState::new(&truncate(&first)),
            CipherState::new(&truncate(&second)),
        )
    }

    /// `Split()` arranged for one side.
    pub(crate) fn split_for(&self, initiator: bool) -> TransportCipher {
        let (initiator_to_responder, responder_to_initiator) = self.split();
        if initiator {
            TransportCipher::new(initiator_to_responder, responder_to_initiator)
        } else {
            TransportCipher::new(responder_to_initiator, initiator_to_responder)
        }
    }
}

impl Drop for SymmetricState {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.chaining_key);
    }
}

/// HKDF outputs are `HASHLEN` (64) bytes; a cipher key is their first 32 (Noise §4.3).
fn truncate(output: &Digest64) -> [u8; 32] {
    let mut key = [0u8; 32];
    key.iter_mut()
        .zip(output)
        .for_each(|(slot, byte)| *slot = *byte);
    key
}
