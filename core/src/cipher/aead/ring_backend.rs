//! The fast backend (feature `ring`): `ring`'s AES-256-GCM, in assembly with AES-NI, CLMUL
//! and AVX where the CPU has them.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, Tag, UnboundKey};

use super::{AeadFailed, SecretKey, TAG_LEN, noise_nonce};

/// An AES-256-GCM key.
///
/// As with the portable backend, only the 32 key bytes are stored and the key schedule is
/// derived for each record (tens of nanoseconds with AES-NI), so an idle connection holds
/// no expanded keys.
pub(crate) struct AeadKey(SecretKey);

impl AeadKey {
    pub(crate) fn new(key: &[u8; 32]) -> Self {
        AeadKey(SecretKey(*key))
    }

    fn key(&self) -> Result<LessSafeKey, AeadFailed> {
        UnboundKey::new(&AES_256_GCM, &self.0.0)
            .map(LessSafeKey::new)
            .map_err(|_| AeadFailed)
    }

    /// Encrypts `buffer` in place and returns the tag.
    pub(crate) fn seal_in_place(
        &self,
        nonce: u64,
        associated_data: &[u8],
        buffer: &mut [u8],
    ) -> Result<[u8; TAG_LEN], AeadFailed> {
        let tag = self
            .key()?
            .seal_in_place_separate_tag(nonce_for(nonce), Aad::from(associated_data), buffer)
            .map_err(|_| AeadFailed)?;
        tag_bytes(&tag)
    }

    /// Decrypts `buffer` in place if `tag` authenticates it; on failure `buffer` is zeroed
    /// (`ring` decrypts before it checks), so no unauthenticated byte is left readable.
    pub(crate) fn open_in_place(
        &self,
        nonce: u64,
        associated_data: &[u8],
        buffer: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), AeadFailed> {
        let tag = Tag::try_from(&tag[..]).map_err(|_| AeadFailed)?;
        let opened = self.key().and_then(|key| {
            key.open_in_place_separate_tag(
                nonce_for(nonce),
                Aad::from(associated_data),
                tag,
                buffer,
                0..,
            )
            .map(|_| ())
            .map_err(|_| AeadFailed)
        });
        if opened.is_err() {
            buffer.fill(0);
        }
        opened
    }

    /// Encrypts `plaintext` into `ciphertext` (same length, distinct buffers): a copy, then
    /// the in-place seal. Refuses buffers of different lengths.
    pub(crate) fn seal_to(
        &self,
        nonce: u64,
        associated_data: &[u8],
        plaintext: &[u8],
        ciphertext: &mut [u8],
    ) -> Result<[u8; TAG_LEN], AeadFailed> {
        if plaintext.len() != ciphertext.len() {
            return Err(AeadFailed);
        }
        ciphertext.copy_from_slice(plaintext);
        self.seal_in_place(nonce, associated_data, ciphertext)
    }

    /// Decrypts `ciphertext` into `plaintext` (same length, distinct buffers) if `tag`
    /// authenticates it; on failure `plaintext` is zeroed.
    pub(crate) fn open_to(
        &self,
        nonce: u64,
        associated_data: &[u8],
        ciphertext: &[u8],
        plaintext: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), AeadFailed> {
        if ciphertext.len() != plaintext.len() {
            plaintext.fill(0);
            return Err(AeadFailed);
        }
        plaintext.copy_from_slice(ciphertext);
        self.open_in_place(nonce, associated_data, plaintext, tag)
    }
}

fn nonce_for(counter: u64) -> Nonce {
    Nonce::assume_unique_for_key(noise_nonce(counter))
}

fn tag_bytes(tag: &Tag) -> Result<[u8; TAG_LEN], AeadFailed> {
    <[u8; TAG_LEN]>::try_from(tag.as_ref()).map_err(|_| AeadFailed)
}
