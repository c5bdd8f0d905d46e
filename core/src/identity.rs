//! Who a node is: its static X25519 key pair and the [`PeerId`] derived from it.

use core::fmt;
use core::str::FromStr;

use blake2::digest::consts::U32;
use blake2::{Blake2b, Digest};
use rand_core::CryptoRng;
use x25519_dalek::StaticSecret;

/// A node's static X25519 public key: the identity the Noise handshake authenticates.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// The key from its 32 raw bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        PublicKey(bytes)
    }

    /// The 32 raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The [`PeerId`] of this key.
    pub fn peer_id(&self) -> PeerId {
        PeerId::from_public_key(self)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey(")?;
        write_hex(f, &self.0)?;
        write!(f, ")")
    }
}

/// A node's static X25519 key pair.
///
/// The secret is zeroized when the key pair is dropped. `Debug` never prints it.
///
/// ```
/// use switchboard::Keypair;
///
/// let keypair = Keypair::from_secret_bytes([7; 32]);
/// let restored = Keypair::from_secret_bytes(keypair.secret_bytes());
/// assert_eq!(keypair.peer_id(), restored.peer_id());
/// ```
#[derive(Clone)]
pub struct Keypair {
    secret: StaticSecret,
    public: PublicKey,
    peer_id: PeerId,
}

impl Keypair {
    /// A fresh key pair drawn from `rng`.
    ///
    /// Exactly 32 bytes are drawn, which makes the key reproducible from a seeded RNG.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        let keypair = Self::from_secret_bytes(bytes);
        zeroize::Zeroize::zeroize(&mut bytes);
        keypair
    }

    /// The key pair whose secret scalar is `bytes` (clamped on use, as X25519 specifies).
    pub fn from_secret_bytes(bytes: [u8; 32]) -> Self {
        let secret = StaticSecret::from(bytes);
        let public = PublicKey(x25519_dalek::PublicKey::from(&secret).to_bytes());
        Keypair {
            secret,
            peer_id: public.peer_id(),
            public,
        }
    }

    /// The secret key bytes, for persisting the key (keep them private).
    pub fn secret_bytes(&self) -> [u8; 32] {
        self.secret.to_bytes()
    }

    /// The public half.
    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// The node's [`PeerId`].
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    pub(crate) fn secret(&self) -> &StaticSecret {
        &self.secret
    }
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keypair")
            .field("peer_id", &self.peer_id)
            .finish_non_exhaustive()
    }
}

/// A node's identity on the network: BLAKE2b-256 of its static public key.
///
/// Displayed and parsed as 64 lowercase hex characters (uppercase is accepted when
/// parsing). Ordering is bytewise, which is what the simultaneous-open rule compares.
///
/// ```
/// use switchboard::{Keypair, PeerId};
///
/// let id = Keypair::from_secret_bytes([1; 32]).peer_id();
/// let text = id.to_string();
/// assert_eq!(text.len(), 64);
/// assert_eq!(text.parse::<PeerId>().unwrap(), id);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerId([u8; 32]);

impl PeerId {
    /// The id of a static public key.
    pub fn from_public_key(key: &PublicKey) -> Self {
        let digest = Blake2b::<U32>::digest(key.as_bytes());
        PeerId(digest.into())
    }

    /// The id from its 32 raw bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        PeerId(bytes)
    }

    /// The 32 raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl fmt::Debug for PeerId {
    /// Short form: the first 8 hex digits, enough to tell peers apart in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId(")?;
        write_hex(f, self.0.get(..4).unwrap_or_default())?;
        write!(f, "…)")
    }
}

/// Why a string is not a [`PeerId`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParsePeerIdError {
    /// Not exactly 64 characters; the length found.
    Length(usize),
    /// A character that is not a hex digit, at this byte offset.
    NotHex(usize),
}

impl fmt::Display for ParsePeerIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParsePeerIdError::Length(len) => {
                write!(f, "peer id must be 64 hex characters, found {len}")
            }
            ParsePeerIdError::NotHex(at) => {
                write!(f, "peer id has a non-hex character at offset {at}")
            }
        }
    }
}

impl core::error::Error for ParsePeerIdError {}

impl FromStr for PeerId {
    type Err = ParsePeerIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.as_bytes();
        if text.len() != 64 {
            return Err(ParsePeerIdError::Length(text.len()));
        }
        let mut bytes = [0u8; 32];
        for ((byte, pair), index) in bytes
            .iter_mut()
            .zip(text.chunks_exact(2))
            .zip((0..).step_by(2))
        {
            let [high, low] = [pair.first(), pair.get(1)].map(|c| c.copied().and_then(hex_value));
            let high = high.ok_or(ParsePeerIdError::NotHex(index))?;
            let low = low.ok_or_else(|| ParsePeerIdError::NotHex(index.saturating_add(1)))?;
            *byte = (high << 4) | low;
        }
        Ok(PeerId(bytes))
    }
}

fn hex_value(c: u8) -> Option<u8> {
    // The subtractions cannot wrap inside the matched ranges.
    match c {
        b'0'..=b'9' => Some(c.wrapping_sub(b'0')),
        b'a'..=b'f' => Some(c.wrapping_sub(b'a' - 10)),
        b'A'..=b'F' => Some(c.wrapping_sub(b'A' - 10)),
        _ => None,
    }
}

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    bytes.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn peer_id_is_blake2b_256_of_the_public_key() {
        let keypair = Keypair::from_secret_bytes([3; 32]);
        let expected: [u8; 32] = Blake2b::<U32>::digest(keypair.public().as_bytes()).into();
        assert_eq!(keypair.peer_id().as_bytes(), &expected);
    }

    #[test]
    fn peer_id_parse_errors_are_precise() {
        assert_eq!("abc".parse::<PeerId>(), Err(ParsePeerIdError::Length(3)));
        let mut text = Keypair::from_secret_bytes([9; 32]).peer_id().to_string();
        text.replace_range(10..11, "g");
        assert_eq!(text.parse::<PeerId>(), Err(ParsePeerIdError::NotHex(10)));
        let upper = Keypair::from_secret_bytes([9; 32])
            .peer_id()
            .to_string()
            .to_uppercase();
        assert_eq!(
            upper
                .parse::<PeerId>()
                .map(|id| id.to_string().to_uppercase()),
            Ok(upper)
        );
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let keypair = Keypair::from_secret_bytes([0x5a; 32]);
        let shown = alloc::format!("{keypair:?}");
        assert!(!shown.contains("5a5a"), "{shown}");
    }

    #[test]
    fn generate_draws_from_the_rng() {
        use rand_core::SeedableRng;
        let a = Keypair::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(1));
        let b = Keypair::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(1));
        let c = Keypair::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(2));
        assert_eq!(a.peer_id(), b.peer_id());
        assert_ne!(a.peer_id(), c.peer_id());
    }
}
