//! Noise's hash functions for BLAKE2b: `HASH`, `HMAC-HASH` and `HKDF` (Noise rev. 34, §4.3).
//!
//! BLAKE2b's own keyed mode is *not* HMAC; Noise requires HMAC (RFC 2104) over the hash, so
//! it is built here from the plain hash with the 128-byte block size.

use blake2::{Blake2b512, Digest};

/// `HASHLEN` for BLAKE2b.
pub(crate) const HASHLEN: usize = 64;
/// `BLOCKLEN` for BLAKE2b.
const BLOCKLEN: usize = 128;

/// A BLAKE2b-512 digest.
pub(crate) type Digest64 = [u8; HASHLEN];

/// `HASH(a || b)`.
pub(crate) fn hash(a: &[u8], b: &[u8]) -> Digest64 {
    let mut hasher = Blake2b512::new();
    hasher.update(a);
    hasher.update(b);
    hasher.finalize().into()
}

/// HMAC-BLAKE2b with a key of exactly `HASHLEN` bytes, with the padded-key blocks absorbed
/// once so that HKDF's several HMACs under one key do not hash the key again.
struct HmacKey {
    inner: Blake2b512,
    outer: Blake2b512,
}

impl HmacKey {
    fn new(key: &Digest64) -> Self {
        let mut ipad = [0x36u8; BLOCKLEN];
        let mut opad = [0x5cu8; BLOCKLEN];
        for ((i, o), k) in ipad.iter_mut().zip(opad.iter_mut()).zip(key) {
            *i ^= k;
            *o ^= k;
        }
        let mut inner = Blake2b512::new();
        inner.update(ipad);
        let mut outer = Blake2b512::new();
        outer.update(opad);
        zeroize::Zeroize::zeroize(&mut ipad);
        zeroize::Zeroize::zeroize(&mut opad);
        HmacKey { inner, outer }
    }

    fn mac(&self, a: &[u8], b: &[u8]) -> Digest64 {
        let mut inner = self.inner.clone();
        inner.update(a);
        inner.update(b);
        let mut outer = self.outer.clone();
        outer.update(inner.finalize());
        outer.finalize().into()
    }
}

/// `HKDF(chaining_key, input_key_material, 2)`: two `HASHLEN`-byte outputs.
pub(crate) fn hkdf2(chaining_key: &Digest64, input_key_material: &[u8]) -> (Digest64, Digest64) {
    let temp_key = HmacKey::new(chaining_key).mac(input_key_material, &[]);
    let temp = HmacKey::new(&temp_key);
    let output1 = temp.mac(&[1], &[]);
    let output2 = temp.mac(&output1, &[2]);
    (output1, output2)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// HMAC-BLAKE2b-512 computed the textbook way, to check the precomputed-pad shortcut.
    fn reference_hmac(key: &[u8], data: &[u8]) -> Digest64 {
        let mut padded = [0u8; BLOCKLEN];
        padded[..key.len()].copy_from_slice(key);
        let ipad: alloc::vec::Vec<u8> = padded.iter().map(|b| b ^ 0x36).collect();
        let opad: alloc::vec::Vec<u8> = padded.iter().map(|b| b ^ 0x5c).collect();
        let inner = hash(&ipad, data);
        hash(&opad, &inner)
    }

    #[test]
    fn hmac_matches_the_textbook_construction() {
        let key = [0x0bu8; HASHLEN];
        assert_eq!(
            HmacKey::new(&key).mac(b"Hi ", b"There"),
            reference_hmac(&key, b"Hi There")
        );
    }

    #[test]
    fn hkdf_follows_the_noise_definition() {
        let ck = [7u8; HASHLEN];
        let ikm = [9u8; 32];
        let temp_key = reference_hmac(&ck, &ikm);
        let out1 = reference_hmac(&temp_key, &[1]);
        let mut second_input = out1.to_vec();
        second_input.push(2);
        let out2 = reference_hmac(&temp_key, &second_input);
        assert_eq!(hkdf2(&ck, &ikm), (out1, out2));
    }
}
