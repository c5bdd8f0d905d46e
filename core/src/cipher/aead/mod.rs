//! The one seam between switchboard and its AEAD implementation.
//!
//! Everything above this module sees only [`AeadKey`]: construct from 32 bytes, seal and
//! open in place, or from one buffer into another. Two backends implement it, chosen at
//! build time: RustCrypto's `aes-gcm` (the portable default) and, with the `ring` feature,
//! `ring`'s AES-256-GCM (assembly, several times faster on x86-64 and AArch64). Nothing else
//! in the crate knows which is in use. The nonce is Noise's AESGCM nonce: four zero bytes
//! followed by the 64-bit counter, big-endian.
//!
//! The out-of-place forms exist so the record layer need not copy a record only to encrypt
//! or decrypt the copy: a backend that can read from the source and write to the destination
//! fuses the copy into the cipher's pass (`aes-gcm`); one with in-place operations only
//! (`ring`) copies first, which its speed more than pays for.

#[cfg(not(feature = "ring"))]
mod aes_gcm_backend;
#[cfg(feature = "ring")]
mod ring_backend;

#[cfg(not(feature = "ring"))]
pub(crate) use aes_gcm_backend::AeadKey;
#[cfg(feature = "ring")]
pub(crate) use ring_backend::AeadKey;

/// The AEAD implementation compiled in: `"aes-gcm"` or `"ring"`.
#[cfg(not(feature = "ring"))]
pub const AEAD_BACKEND: &str = "aes-gcm";
/// The AEAD implementation compiled in: `"aes-gcm"` or `"ring"`.
#[cfg(feature = "ring")]
pub const AEAD_BACKEND: &str = "ring";

/// Length of an AES-GCM authentication tag.
pub(crate) const TAG_LEN: usize = 16;

/// The AEAD refused: on open, the ciphertext, tag, nonce or associated data was not what the
/// sender sealed; on seal, the input was longer than AES-GCM allows (2^36 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AeadFailed;

/// The 32 key bytes a backend's `AeadKey` keeps (each derives its key schedule per record
/// from them), wiped when dropped.
struct SecretKey([u8; 32]);

impl Drop for SecretKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

/// Noise's AESGCM nonce for `counter`.
fn noise_nonce(counter: u64) -> [u8; 12] {
    let mut nonce = [0u8; 12];
    let (_, counter_bytes) = nonce.split_at_mut(4);
    counter_bytes.copy_from_slice(&counter.to_be_bytes());
    nonce
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
