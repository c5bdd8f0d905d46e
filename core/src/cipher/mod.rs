//! The transport cipher: the two Noise `CipherState`s that `Split()` yields, one per
//! direction, with automatic rekeying.
//!
//! Every [`REKEY_INTERVAL`] records in a direction, both ends apply Noise's `REKEY` to that
//! direction's key at the same record count, so no signalling is needed and a key that leaks
//! exposes at most one interval. Nonces are 64-bit counters that never wrap: running out is
//! [`CipherError::NonceExhausted`] (at one record per nanosecond that takes 584 years).

mod aead;
mod cipher_state;

use alloc::vec::Vec;

pub use aead::AEAD_BACKEND;
pub(crate) use aead::TAG_LEN;
pub use cipher_state::CipherError;
pub(crate) use cipher_state::CipherState;

/// Records per direction between two automatic rekeys.
pub const REKEY_INTERVAL: u64 = 1 << 16;

/// The cipher pair of an established connection.
///
/// Built by the handshake ([`crate::handshake::Established`]); used by the record layer.
pub struct TransportCipher {
    send: CipherState,
    receive: CipherState,
}

impl TransportCipher {
    pub(crate) fn new(send: CipherState, receive: CipherState) -> Self {
        TransportCipher { send, receive }
    }

    /// Encrypts `plaintext` and appends `ciphertext || tag` to `out`.
    ///
    /// The ciphertext is written straight into `out` (after zero-filling the room for it), so
    /// the plaintext is read once, by the cipher, and never copied.
    pub fn encrypt(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), CipherError> {
        self.send.encrypt_with_ad(&[], plaintext, out)?;
        self.after_send();
        Ok(())
    }

    /// Encrypts `buffer` in place: its first `len - 16` bytes are the plaintext, its last 16
    /// bytes receive the tag.
    pub fn encrypt_in_place(&mut self, buffer: &mut [u8]) -> Result<(), CipherError> {
        self.send.encrypt_in_place(&[], buffer)?;
        self.after_send();
        Ok(())
    }

    /// Decrypts `ciphertext || tag` in place and returns the plaintext length; the plaintext
    /// is `buffer[..len]`.
    pub fn decrypt_in_place(&mut self, buffer: &mut [u8]) -> Result<usize, CipherError> {
        let len = self.receive.decrypt_in_place(&[], buffer)?;
        self.after_receive();
        Ok(len)
    }

    /// Decrypts `ciphertext || tag` from `ciphertext` into `out` and returns the plaintext
    /// length; the plaintext is `out[..len]`. `ciphertext` is left untouched.
    ///
    /// This is [`TransportCipher::decrypt_in_place`] without the copy a caller would make to
    /// get a mutable buffer: the cipher reads the ciphertext where it lies (e.g. in the read
    /// buffer) and writes the plaintext into `out`. `out` is a scratch buffer meant to be
    /// reused: it grows when shorter than the plaintext and never shrinks, so after the first
    /// full-size record it is never zero-filled again. Its bytes beyond `len` are left over
    /// from earlier records.
    ///
    /// If the record does not authenticate, the first `ciphertext.len() - 16` bytes of `out`
    /// are zeroed rather than left holding unauthenticated (or earlier) plaintext. On any
    /// error the record counter does not advance.
    pub fn decrypt_to(
        &mut self,
        ciphertext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<usize, CipherError> {
        let len = self.receive.decrypt_to(&[], ciphertext, out)?;
        self.after_receive();
        Ok(len)
    }

    /// Records sent so far (the next sending nonce).
    pub fn records_sent(&self) -> u64 {
        self.send.nonce()
    }

    /// Records received so far (the next receiving nonce).
    pub fn records_received(&self) -> u64 {
        self.receive.nonce()
    }

    /// The automatic rekey of the sending direction, after every record sent by any path.
    fn after_send(&mut self) {
        if self.send.nonce().is_multiple_of(REKEY_INTERVAL) {
            self.send.rekey();
        }
    }

    /// The automatic rekey of the receiving direction, after every record opened by any
    /// path, so both decryption paths stay in step with the sender's count.
    fn after_receive(&mut self) {
        if self.receive.nonce().is_multiple_of(REKEY_INTERVAL) {
            self.receive.rekey();
        }
    }

    /// A cipher from raw keys, so fuzz targets can exercise the record decoder without a
    /// handshake per input. Only exists in fuzzing builds.
    #[cfg(fuzzing)]
    #[doc(hidden)]
    pub fn from_keys_for_fuzzing(send: &[u8; 32], receive: &[u8; 32]) -> Self {
        TransportCipher::new(CipherState::new(send), CipherState::new(receive))
    }

    #[cfg(test)]
    pub(crate) fn set_nonces_for_test(&mut self, send: u64, receive: u64) {
        self.send.set_nonce(send);
        self.receive.set_nonce(receive);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (TransportCipher, TransportCipher) {
        let a = TransportCipher::new(CipherState::new(&[1; 32]), CipherState::new(&[2; 32]));
        let b = TransportCipher::new(CipherState::new(&[2; 32]), CipherState::new(&[1; 32]));
        (a, b)
    }

    #[test]
    fn both_sides_rekey_at_the_same_count() {
        let (mut a, mut b) = pair();
        let mut record = Vec::new();
        for i in 0..(2 * REKEY_INTERVAL + 3) {
            record.clear();
            a.encrypt(&i.to_le_bytes(), &mut record).unwrap();
            let len = b.decrypt_in_place(&mut record).unwrap();
            assert_eq!(record[..len], i.to_le_bytes());
        }
        assert_eq!(a.records_sent(), 2 * REKEY_INTERVAL + 3);
        assert_eq!(b.records_received(), 2 * REKEY_INTERVAL + 3);
    }

    #[test]
    fn a_side_that_skipped_the_rekey_cannot_read() {
        let (mut a, mut b) = pair();
        a.set_nonces_for_test(REKEY_INTERVAL - 1, 0);
        b.set_nonces_for_test(0, REKEY_INTERVAL - 1);
        let mut record = Vec::new();
        a.encrypt(b"last before rekey", &mut record).unwrap();
        assert!(b.decrypt_in_place(&mut record).is_ok());
        // Both rekeyed: in step.
        record.clear();
        a.encrypt(b"first after", &mut record).unwrap();
        assert!(b.decrypt_in_place(&mut record).is_ok());
        // A receiver that never rekeyed (fresh state at the same nonce) fails.
        let (_, mut stale) = pair();
        stale.set_nonces_for_test(0, REKEY_INTERVAL + 1);
        record.clear();
        a.encrypt(b"second after", &mut record).unwrap();
        assert_eq!(
            stale.decrypt_in_place(&mut record),
            Err(CipherError::Decrypt)
        );
    }

    #[test]
    fn exhaustion_is_an_error_in_both_directions() {
        let (mut a, mut b) = pair();
        a.set_nonces_for_test(u64::MAX, 0);
        b.set_nonces_for_test(0, u64::MAX);
        let mut out = Vec::new();
        assert_eq!(a.encrypt(b"x", &mut out), Err(CipherError::NonceExhausted));
        assert!(out.is_empty());
        assert_eq!(
            b.decrypt_in_place(&mut [0; 20]),
            Err(CipherError::NonceExhausted)
        );
    }

    #[test]
    fn both_decryption_paths_share_the_count_and_the_rekeys() {
        let (mut a, mut b) = pair();
        a.set_nonces_for_test(REKEY_INTERVAL - 2, 0);
        b.set_nonces_for_test(0, REKEY_INTERVAL - 2);
        let mut out = Vec::new();
        for i in 0..6u32 {
            let mut record = Vec::new();
            a.encrypt(&i.to_be_bytes(), &mut record).unwrap();
            let plaintext = if i % 2 == 0 {
                let len = b.decrypt_to(&record, &mut out).unwrap();
                &out[..len]
            } else {
                let len = b.decrypt_in_place(&mut record).unwrap();
                &record[..len]
            };
            assert_eq!(plaintext, i.to_be_bytes());
        }
        assert_eq!(b.records_received(), REKEY_INTERVAL + 4);
        // A failure does not count, on this path either.
        let mut record = Vec::new();
        a.encrypt(b"x", &mut record).unwrap();
        record[0] ^= 1;
        assert_eq!(b.decrypt_to(&record, &mut out), Err(CipherError::Decrypt));
        assert_eq!(b.records_received(), REKEY_INTERVAL + 4);
    }
}
