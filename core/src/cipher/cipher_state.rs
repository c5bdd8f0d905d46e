//! Noise's `CipherState` (rev. 34, §5.1): a key and a 64-bit nonce counter.

use alloc::vec::Vec;
use core::fmt;

use super::aead::{AeadFailed, AeadKey, TAG_LEN};

/// Errors of one direction's cipher state (a [`TransportCipher`](super::TransportCipher) half).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CipherError {
    /// Every nonce below 2^64 − 1 has been used; the key must not encrypt again.
    NonceExhausted,
    /// The ciphertext failed authentication.
    Decrypt,
    /// The ciphertext is shorter than an authentication tag.
    TooShort,
    /// The plaintext is longer than the AEAD accepts.
    TooLong,
}

impl fmt::Display for CipherError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CipherError::NonceExhausted => "nonce space exhausted",
            CipherError::Decrypt => "decryption failed: ciphertext not authentic",
            CipherError::TooShort => "ciphertext shorter than its authentication tag",
            CipherError::TooLong => "plaintext longer than the cipher accepts",
        })
    }
}

impl core::error::Error for CipherError {}

/// A key `k` and nonce `n`. Nonces are never reused: `n` only grows, and 2^64 − 1 is
/// reserved for `REKEY`, so reaching it is [`CipherError::NonceExhausted`], never a wrap.
pub(crate) struct CipherState {
    key: AeadKey,
    nonce: u64,
}

impl CipherState {
    /// `InitializeKey(k)`.
    pub(crate) fn new(key: &[u8; 32]) -> Self {
        CipherState {
            key: AeadKey::new(key),
            nonce: 0,
        }
    }

    pub(crate) fn nonce(&self) -> u64 {
        self.nonce
    }

    /// `SetNonce(n)`.
    #[cfg(test)]
    pub(crate) fn set_nonce(&mut self, nonce: u64) {
        self.nonce = nonce;
    }

    /// Takes the next nonce, refusing the reserved last one.
    fn next_nonce(&mut self) -> Result<u64, CipherError> {
        let nonce = self.nonce;
        if nonce == u64::MAX {
            return Err(CipherError::NonceExhausted);
        }
        self.nonce = nonce.wrapping_add(1);
        Ok(nonce)
    }

    /// `EncryptWithAd(ad, plaintext)`, appending `ciphertext || tag` to `out`.
    ///
    /// The cipher reads `plaintext` where it lies and writes the ciphertext straight into
    /// `out`, instead of copying the plaintext into `out` and encrypting the copy: the room
    /// must be initialized first (safe Rust), but zero-filling it is a write-only pass,
    /// cheaper than a copy's read and write. On error `out` is left as it was.
    pub(crate) fn encrypt_with_ad(
        &mut self,
        associated_data: &[u8],
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), CipherError> {
        let start = out.len();
        let end = start
            .checked_add(plaintext.len())
            .and_then(|end| end.checked_add(TAG_LEN))
            .ok_or(CipherError::TooLong)?;
        let nonce = self.next_nonce()?;
        out.resize(end, 0);
        let sealed = out
            .get_mut(start..)
            .and_then(|record| record.split_at_mut_checked(plaintext.len()))
            // Sized just above; a miss would be a bug, refused like an over-long input.
            .ok_or(AeadFailed)
            .and_then(|(body, tag_slot)| {
                let tag = self.key.seal_to(nonce, associated_data, plaintext, body)?;
                tag_slot.copy_from_slice(&tag);
                Ok(())
            });
        sealed.map_err(|AeadFailed| {
            out.truncate(start);
            CipherError::TooLong
        })
    }

    /// Encrypts `buffer[..len - TAG_LEN]` in place and writes the tag into its last
    /// `TAG_LEN` bytes. `buffer` must be at least `TAG_LEN` long.
    pub(crate) fn encrypt_in_place(
        &mut self,
        associated_data: &[u8],
        buffer: &mut [u8],
    ) -> Result<(), CipherError> {
        let body_len = buffer
            .len()
            .checked_sub(TAG_LEN)
            .ok_or(CipherError::TooShort)?;
        let nonce = self.next_nonce()?;
        let (body, tag_slot) = buffer.split_at_mut(body_len);
        let tag = self
            .key
            .seal_in_place(nonce, associated_data, body)
            .map_err(|AeadFailed| CipherError::TooLong)?;
        tag_slot.copy_from_slice(&tag);
        Ok(())
    }

    /// `DecryptWithAd(ad, ciphertext)` in place: on success `buffer[..len - TAG_LEN]` holds
    /// the plaintext and its length is returned. The nonce advances only on success, as
    /// Noise requires.
    pub(crate) fn decrypt_in_place(
        &mut self,
        associated_data: &[u8],
        buffer: &mut [u8],
    ) -> Result<usize, CipherError> {
        let body_len = buffer
            .len()
            .checked_sub(TAG_LEN)
            .ok_or(CipherError::TooShort)?;
        if self.nonce == u64::MAX {
            return Err(CipherError::NonceExhausted);
        }
        let (body, tag) = buffer.split_at_mut(body_len);
        let tag: &[u8; TAG_LEN] = (&*tag).try_into().map_err(|_| CipherError::TooShort)?;
        self.key
            .open_in_place(self.nonce, associated_data, body, tag)
            .map_err(|AeadFailed| CipherError::Decrypt)?;
        self.nonce = self.nonce.wrapping_add(1);
        Ok(body_len)
    }

    /// `DecryptWithAd(ad, ciphertext)` from `ciphertext` into `out`: on success
    /// `out[..len]` holds the plaintext and its length is returned; the nonce advances only
    /// on success, as Noise requires.
    ///
    /// `out` is a reusable scratch buffer: it grows when shorter than the plaintext and never
    /// shrinks, so a buffer reused across records is zero-filled once, at its largest size,
    /// and from then on decryption is the only pass over it. If the ciphertext does not
    /// authenticate, `out[..ciphertext.len() - TAG_LEN]` is zeroed (see `AeadKey::open_to`)
    /// rather than left holding unauthenticated or earlier plaintext.
    pub(crate) fn decrypt_to(
        &mut self,
        associated_data: &[u8],
        ciphertext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<usize, CipherError> {
        let body_len = ciphertext
            .len()
            .checked_sub(TAG_LEN)
            .ok_or(CipherError::TooShort)?;
        if self.nonce == u64::MAX {
            return Err(CipherError::NonceExhausted);
        }
        let (body, tag) = ciphertext.split_at(body_len);
        let tag: &[u8; TAG_LEN] = tag.try_into().map_err(|_| CipherError::TooShort)?;
        if out.len() < body_len {
            out.resize(body_len, 0);
        }
        // Grown just above, so the range exists; a miss would be a bug, refused as a failure.
        let plaintext = out.get_mut(..body_len).ok_or(CipherError::Decrypt)?;
        self.key
            .open_to(self.nonce, associated_data, body, plaintext, tag)
            .map_err(|AeadFailed| CipherError::Decrypt)?;
        self.nonce = self.nonce.wrapping_add(1);
        Ok(body_len)
    }

    /// `Rekey()`: `k = REKEY(k)`, the default Noise definition — the first 32 bytes of
    /// `ENCRYPT(k, 2^64 − 1, "", zeros)`. The nonce is left as it is.
    pub(crate) fn rekey(&mut self) {
        let mut key = [0u8; 32];
        // Sealing 32 bytes cannot exceed AES-GCM's limit, and the tag is not part of the
        // new key, so the result carries nothing to act on.
        let _tag = self.key.seal_in_place(u64::MAX, &[], &mut key);
        self.key = AeadKey::new(&key);
        zeroize::Zeroize::zeroize(&mut key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn round_trip_and_nonce_advance() {
        let mut sender = CipherState::new(&[1; 32]);
        let mut receiver = CipherState::new(&[1; 32]);
        for round in 0..3u8 {
            let mut record = Vec::new();
            sender
                .encrypt_with_ad(b"ad", &[round; 40], &mut record)
                .unwrap();
            assert_eq!(record.len(), 40 + TAG_LEN);
            let len = receiver.decrypt_in_place(b"ad", &mut record).unwrap();
            assert_eq!(&record[..len], &[round; 40]);
        }
        assert_eq!((sender.nonce(), receiver.nonce()), (3, 3));
    }

    #[test]
    fn failed_decrypt_leaves_the_nonce() {
        let mut sender = CipherState::new(&[1; 32]);
        let mut receiver = CipherState::new(&[1; 32]);
        let mut record = Vec::new();
        sender.encrypt_with_ad(&[], b"hello", &mut record).unwrap();
        let mut tampered = record.clone();
        tampered[0] ^= 1;
        assert_eq!(
            receiver.decrypt_in_place(&[], &mut tampered),
            Err(CipherError::Decrypt)
        );
        assert_eq!(receiver.nonce(), 0);
        assert_eq!(receiver.decrypt_in_place(&[], &mut record), Ok(5));
        assert_eq!(
            receiver.decrypt_in_place(&[], &mut [0; 3]),
            Err(CipherError::TooShort)
        );
    }

    #[test]
    fn the_last_nonce_is_reserved() {
        let mut sender = CipherState::new(&[2; 32]);
        let mut receiver = CipherState::new(&[2; 32]);
        sender.set_nonce(u64::MAX - 1);
        receiver.set_nonce(u64::MAX - 1);
        let mut record = Vec::new();
        sender.encrypt_with_ad(&[], b"last", &mut record).unwrap();
        assert_eq!(receiver.decrypt_in_place(&[], &mut record), Ok(4));
        let mut out = Vec::new();
        assert_eq!(
            sender.encrypt_with_ad(&[], b"x", &mut out),
            Err(CipherError::NonceExhausted)
        );
        assert_eq!(
            sender.encrypt_in_place(&[], &mut [0; 17]),
            Err(CipherError::NonceExhausted)
        );
        assert_eq!(
            receiver.decrypt_in_place(&[], &mut [0; 17]),
            Err(CipherError::NonceExhausted)
        );
        assert_eq!(sender.nonce(), u64::MAX);
    }

    #[test]
    fn rekey_changes_the_key_but_not_the_nonce() {
        let mut a = CipherState::new(&[3; 32]);
        let mut b = CipherState::new(&[3; 32]);
        a.rekey();
        assert_eq!(a.nonce(), 0);
        let mut record = Vec::new();
        a.encrypt_with_ad(&[], b"after rekey", &mut record).unwrap();
        let mut stale = record.clone();
        assert_eq!(
            b.decrypt_in_place(&[], &mut stale),
            Err(CipherError::Decrypt)
        );
        b.rekey();
        assert_eq!(b.decrypt_in_place(&[], &mut record), Ok(11));
    }

    #[test]
    fn in_place_encryption_matches_appending_encryption() {
        let mut appending = CipherState::new(&[4; 32]);
        let mut in_place = CipherState::new(&[4; 32]);
        let mut expected = Vec::new();
        appending
            .encrypt_with_ad(b"h", b"same bytes", &mut expected)
            .unwrap();
        let mut buffer = vec![0u8; 10 + TAG_LEN];
        buffer[..10].copy_from_slice(b"same bytes");
        in_place.encrypt_in_place(b"h", &mut buffer).unwrap();
        assert_eq!(buffer, expected);
    }

    #[test]
    fn decrypting_into_a_buffer_matches_decrypting_in_place() {
        let mut sender = CipherState::new(&[5; 32]);
        let mut in_place = CipherState::new(&[5; 32]);
        let mut into = CipherState::new(&[5; 32]);
        let mut out = Vec::new();
        for len in [40, 0, 7, 40] {
            let plaintext: Vec<u8> = (0..len).map(|i| i as u8 ^ 0x5A).collect();
            let mut record = Vec::new();
            sender
                .encrypt_with_ad(b"ad", &plaintext, &mut record)
                .unwrap();
            let ciphertext = record.clone();
            assert_eq!(into.decrypt_to(b"ad", &ciphertext, &mut out), Ok(len));
            assert_eq!(in_place.decrypt_in_place(b"ad", &mut record), Ok(len));
            assert_eq!(out[..len], record[..len]);
            assert_eq!(out[..len], plaintext[..]);
            // Grown to the largest plaintext, never shrunk.
            assert_eq!(out.len(), 40);
        }
        assert_eq!(into.nonce(), 4);
    }

    #[test]
    fn a_failed_decrypt_into_a_buffer_zeroes_it_and_leaves_the_nonce() {
        let mut sender = CipherState::new(&[6; 32]);
        let mut receiver = CipherState::new(&[6; 32]);
        let mut record = Vec::new();
        sender.encrypt_with_ad(&[], b"secret", &mut record).unwrap();
        // `out` holds bytes of an earlier plaintext; none may survive a failure.
        let mut out = vec![0xEE; 10];
        let mut tampered = record.clone();
        tampered[1] ^= 1;
        assert_eq!(
            receiver.decrypt_to(&[], &tampered, &mut out),
            Err(CipherError::Decrypt)
        );
        assert_eq!(out[..6], [0; 6]);
        assert_eq!(
            receiver.decrypt_to(b"wrong ad", &record, &mut out),
            Err(CipherError::Decrypt)
        );
        assert_eq!(receiver.nonce(), 0);
        assert_eq!(receiver.decrypt_to(&[], &record, &mut out), Ok(6));
        assert_eq!(&out[..6], b"secret");
        assert_eq!(
            receiver.decrypt_to(&[], &[0; TAG_LEN - 1], &mut out),
            Err(CipherError::TooShort)
        );
        receiver.set_nonce(u64::MAX);
        assert_eq!(
            receiver.decrypt_to(&[], &record, &mut out),
            Err(CipherError::NonceExhausted)
        );
    }
}
