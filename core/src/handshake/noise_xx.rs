//! Noise's `HandshakeState` (rev. 34, §5.3) for exactly one pattern and suite:
//! `Noise_XX_25519_AESGCM_BLAKE2b`.
//!
//! ```text
//! XX:
//!   -> e
//!   <- e, ee, s, es
//!   -> s, se
//! ```
//!
//! Fixing the pattern keeps the code a straight transcription of the spec, with no pattern
//! interpreter to get wrong. Payloads are raw bytes here; [`super::Handshake`] puts
//! switchboard's `NodeInfo` in them.

use alloc::vec::Vec;
use core::fmt;

use rand_core::CryptoRng;
use x25519_dalek::{PublicKey as DhPublic, StaticSecret};

use super::hash::Digest64;
use super::symmetric_state::SymmetricState;
use crate::cipher::{CipherError, TAG_LEN, TransportCipher};
use crate::identity::{Keypair, PublicKey};

/// The Noise protocol name of switchboard's handshake.
pub const PROTOCOL_NAME: &[u8] = b"Noise_XX_25519_AESGCM_BLAKE2b";

/// Length of an X25519 public key (`DHLEN`).
pub const DH_LEN: usize = 32;

/// Which side of the handshake this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Sends the first message (switchboard: the dialer).
    Initiator,
    /// Receives the first message (switchboard: the listener).
    Responder,
}

/// Why a Noise handshake message was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NoiseError {
    /// A message is shorter than the pattern requires.
    Truncated,
    /// A ciphertext failed authentication (tampered or wrong keys).
    Decrypt,
    /// The peer's public key is a low-order point: the DH result carries no secret.
    WeakKey,
    /// A method was called out of turn (e.g. writing when a read is due).
    OutOfTurn,
    /// The cipher refused (nonce exhausted; cannot happen within a handshake).
    Cipher(CipherError),
}

impl fmt::Display for NoiseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoiseError::Truncated => f.write_str("handshake message truncated"),
            NoiseError::Decrypt => f.write_str("handshake message failed authentication"),
            NoiseError::WeakKey => f.write_str("peer sent a low-order public key"),
            NoiseError::OutOfTurn => f.write_str("handshake method called out of turn"),
            NoiseError::Cipher(error) => write!(f, "handshake cipher: {error}"),
        }
    }
}

impl core::error::Error for NoiseError {}

impl From<CipherError> for NoiseError {
    fn from(error: CipherError) -> Self {
        match error {
            CipherError::Decrypt => NoiseError::Decrypt,
            CipherError::TooShort => NoiseError::Truncated,
            other => NoiseError::Cipher(other),
        }
    }
}

/// The XX handshake in progress, for one side.
///
/// Exposed so that switchboard's handshake can be checked against the public Noise test
/// vectors and other Noise implementations; applications use [`super::Handshake`].
pub struct NoiseXx {
    role: Role,
    symmetric: SymmetricState,
    local_static: StaticSecret,
    local_static_public: PublicKey,
    ephemeral: StaticSecret,
    ephemeral_public: [u8; DH_LEN],
    remote_ephemeral: Option<DhPublic>,
    remote_static: Option<PublicKey>,
    /// Index of the next message pattern: 0, 1, 2; 3 when done; `FAILED` after an error.
    next_message: u8,
}

const FAILED: u8 = u8::MAX;

impl NoiseXx {
    /// Starts a handshake. The ephemeral key is the next 32 bytes of `rng` — which is also
    /// how tests fix it to reproduce test vectors.
    pub fn new<R: CryptoRng + ?Sized>(
        role: Role,
        prologue: &[u8],
        local_static: &Keypair,
        rng: &mut R,
    ) -> Self {
        let mut ephemeral_bytes = [0u8; 32];
        rng.fill_bytes(&mut ephemeral_bytes);
        let ephemeral = StaticSecret::from(ephemeral_bytes);
        zeroize::Zeroize::zeroize(&mut ephemeral_bytes);
        let ephemeral_public = DhPublic::from(&ephemeral).to_bytes();
        let mut symmetric = SymmetricState::new(PROTOCOL_NAME);
        symmetric.mix_hash(prologue);
        NoiseXx {
            role,
            symmetric,
            local_static: local_static.secret().clone(),
            local_static_public: *local_static.public(),
            ephemeral,
            ephemeral_public,
            remote_ephemeral: None,
            remote_static: None,
            next_message: 0,
        }
    }

    /// This side's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// True when it is this side's turn to write.
    pub fn is_my_turn(&self) -> bool {
        match self.role {
            Role::Initiator => self.next_message == 0 || self.next_message == 2,
            Role::Responder => self.next_message == 1,
        }
    }

    /// True once all three messages are done.
    pub fn is_finished(&self) -> bool {
        self.next_message == 3
    }

    /// The peer's static key, once its message carrying `s` has been read.
    pub fn remote_static(&self) -> Option<&PublicKey> {
        self.remote_static.as_ref()
    }

    /// The handshake hash `h` (after the last message: the channel binding value).
    pub fn handshake_hash(&self) -> &Digest64 {
        self.symmetric.handshake_hash()
    }

    /// Index (0, 1 or 2) of the message due next, or `None` when finished or failed.
    pub fn next_message(&self) -> Option<u8> {
        (self.next_message < 3).then_some(self.next_message)
    }

    /// Writes the next message with `payload`, appending it to `out`.
    pub fn write_message(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), NoiseError> {
        if !self.is_my_turn() {
            return Err(NoiseError::OutOfTurn);
        }
        let start = out.len();
        let result = self.write_tokens(payload, out);
        match result {
            Ok(()) => self.next_message = self.next_message.saturating_add(1),
            Err(_) => {
                out.truncate(start);
                self.next_message = FAILED;
            }
        }
        result
    }

    fn write_tokens(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), NoiseError> {
        match self.next_message {
            0 => {
                // -> e
                out.extend_from_slice(&self.ephemeral_public);
                self.symmetric.mix_hash(&self.ephemeral_public);
            }
            1 => {
                // <- e, ee, s, es
                out.extend_from_slice(&self.ephemeral_public);
                self.symmetric.mix_hash(&self.ephemeral_public);
                let remote_ephemeral = self.remote_ephemeral.ok_or(NoiseError::OutOfTurn)?;
                mix_dh(&mut self.symmetric, &self.ephemeral, &remote_ephemeral)?;
                self.symmetric
                    .encrypt_and_hash(self.local_static_public.as_bytes(), out)?;
                mix_dh(&mut self.symmetric, &self.local_static, &remote_ephemeral)?;
            }
            2 => {
                // -> s, se
                self.symmetric
                    .encrypt_and_hash(self.local_static_public.as_bytes(), out)?;
                let remote_ephemeral = self.remote_ephemeral.ok_or(NoiseError::OutOfTurn)?;
                mix_dh(&mut self.symmetric, &self.local_static, &remote_ephemeral)?;
            }
            _ => return Err(NoiseError::OutOfTurn),
        }
        self.symmetric.encrypt_and_hash(payload, out)?;
        Ok(())
    }

    /// Reads the next message in place and returns the payload's range within `message`.
    ///
    /// On error the handshake is dead: every later call fails.
    pub fn read_message(
        &mut self,
        message: &mut [u8],
    ) -> Result<core::ops::Range<usize>, NoiseError> {
        if self.is_my_turn() || self.next_message >= 3 {
            return Err(NoiseError::OutOfTurn);
        }
        let result = self.read_tokens(message);
        match result {
            Ok(_) => self.next_message = self.next_message.saturating_add(1),
            Err(_) => self.next_message = FAILED,
        }
        result
    }

    fn read_tokens(&mut self, message: &mut [u8]) -> Result<core::ops::Range<usize>, NoiseError> {
        let mut offset = 0;
        match self.next_message {
            0 => {
                // -> e
                self.read_remote_ephemeral(message, &mut offset)?;
            }
            1 => {
                // <- e, ee, s, es
                let remote_ephemeral = self.read_remote_ephemeral(message, &mut offset)?;
                mix_dh(&mut self.symmetric, &self.ephemeral, &remote_ephemeral)?;
                let remote_static = self.read_remote_static(message, &mut offset)?;
                mix_dh(&mut self.symmetric, &self.ephemeral, &remote_static)?;
            }
            2 => {
                // -> s, se
                let remote_static = self.read_remote_static(message, &mut offset)?;
                mix_dh(&mut self.symmetric, &self.ephemeral, &remote_static)?;
            }
            _ => return Err(NoiseError::OutOfTurn),
        }
        let payload = message.get_mut(offset..).ok_or(NoiseError::Truncated)?;
        let len = self.symmetric.decrypt_and_hash(payload)?;
        Ok(offset..offset.saturating_add(len))
    }

    fn read_remote_ephemeral(
        &mut self,
        message: &[u8],
        offset: &mut usize,
    ) -> Result<DhPublic, NoiseError> {
        let bytes: [u8; DH_LEN] = message
            .get(*offset..offset.saturating_add(DH_LEN))
            .and_then(|slice| slice.try_into().ok())
            .ok_or(NoiseError::Truncated)?;
        *offset = offset.saturating_add(DH_LEN);
        self.symmetric.mix_hash(&bytes);
        let key = DhPublic::from(bytes);
        self.remote_ephemeral = Some(key);
        Ok(key)
    }

    fn read_remote_static(
        &mut self,
        message: &mut [u8],
        offset: &mut usize,
    ) -> Result<DhPublic, NoiseError> {
        let end = offset.saturating_add(DH_LEN + TAG_LEN);
        let field = message.get_mut(*offset..end).ok_or(NoiseError::Truncated)?;
        let len = self.symmetric.decrypt_and_hash(field)?;
        let bytes: [u8; DH_LEN] = field
            .get(..len)
            .and_then(|slice| slice.try_into().ok())
            .ok_or(NoiseError::Truncated)?;
        *offset = end;
        self.remote_static = Some(PublicKey::from_bytes(bytes));
        Ok(DhPublic::from(bytes))
    }

    /// `Split()` into the transport cipher, once the handshake is finished.
    pub fn into_transport(self) -> Result<TransportCipher, NoiseError> {
        if !self.is_finished() {
            return Err(NoiseError::OutOfTurn);
        }
        Ok(self.symmetric.split_for(self.role == Role::Initiator))
    }
}

/// `MixKey(DH(local, remote))`, refusing a result that is all zeros (a low-order remote key),
/// since such a "shared secret" is known to everyone.
fn mix_dh(
    symmetric: &mut SymmetricState,
    local: &StaticSecret,
    remote: &DhPublic,
) -> Result<(), NoiseError> {
    let shared = local.diffie_hellman(remote);
    if !shared.was_contributory() {
        return Err(NoiseError::WeakKey);
    }
    symmetric.mix_key(shared.as_bytes());
    Ok(())
}

impl fmt::Debug for NoiseXx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NoiseXx")
            .field("role", &self.role)
            .field("next_message", &self.next_message)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::SeedableRng;

    fn run(payloads: [&[u8]; 3]) -> (NoiseXx, NoiseXx) {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        let alice = Keypair::generate(&mut rng);
        let bob = Keypair::generate(&mut rng);
        let mut initiator = NoiseXx::new(Role::Initiator, b"p", &alice, &mut rng);
        let mut responder = NoiseXx::new(Role::Responder, b"p", &bob, &mut rng);
        for (index, payload) in payloads.iter().enumerate() {
            let (writer, reader) = if index % 2 == 0 {
                (&mut initiator, &mut responder)
            } else {
                (&mut responder, &mut initiator)
            };
            let mut message = Vec::new();
            writer.write_message(payload, &mut message).unwrap();
            let range = reader.read_message(&mut message).unwrap();
            assert_eq!(&message[range], *payload);
        }
        (initiator, responder)
    }

    #[test]
    fn both_sides_learn_each_other_and_agree_on_h() {
        let (initiator, responder) = run([b"one", b"two", b"three"]);
        assert!(initiator.is_finished() && responder.is_finished());
        assert_eq!(initiator.handshake_hash(), responder.handshake_hash());
        let alice_key = initiator.local_static_public;
        assert_eq!(responder.remote_static(), Some(&alice_key));
        let mut a = initiator.into_transport().unwrap();
        let mut b = responder.into_transport().unwrap();
        let mut record = Vec::new();
        a.encrypt(b"hi", &mut record).unwrap();
        let len = b.decrypt_in_place(&mut record).unwrap();
        assert_eq!(&record[..len], b"hi");
    }

    #[test]
    fn out_of_turn_calls_are_refused() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(8);
        let key = Keypair::generate(&mut rng);
        let mut responder = NoiseXx::new(Role::Responder, b"", &key, &mut rng);
        assert_eq!(
            responder.write_message(b"", &mut Vec::new()),
            Err(NoiseError::OutOfTurn)
        );
        let mut initiator = NoiseXx::new(Role::Initiator, b"", &key, &mut rng);
        assert_eq!(
            initiator.read_message(&mut [0; 32]),
            Err(NoiseError::OutOfTurn)
        );
        assert!(initiator.into_transport().is_err());
    }

    #[test]
    fn a_low_order_ephemeral_is_refused() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(9);
        let alice = Keypair::generate(&mut rng);
        let bob = Keypair::generate(&mut rng);
        let mut initiator = NoiseXx::new(Role::Initiator, b"", &alice, &mut rng);
        let mut responder = NoiseXx::new(Role::Responder, b"", &bob, &mut rng);
        let mut first = Vec::new();
        initiator.write_message(b"", &mut first).unwrap();
        responder.read_message(&mut [0u8; 32]).unwrap();
        // The responder's `ee` DH with the all-zero point is non-contributory.
        assert_eq!(
            responder.write_message(b"", &mut Vec::new()),
            Err(NoiseError::WeakKey)
        );
        assert!(!responder.is_my_turn());
    }
}
