//! The address index: socket address → entry id, in a hash map whose hash is keyed by the
//! book's secret.
//!
//! Addresses arrive from peers, so a fixed hash would let them choose addresses that all
//! collide and turn every lookup into a scan (hash flooding); a randomly seeded one would
//! make the book differ from run to run. The hash here is the vector multiply-shift scheme
//! (Dietzfelbinger; Thorup, "High Speed Hashing for Integers and Strings", §3.3): an address
//! is three 64-bit words `x₁ x₂ x₃`, and its hash is the top 64 bits of
//! `a₀ + a₁x₁ + a₂x₂ + a₃x₃ mod 2¹²⁸` with secret 128-bit `aᵢ` drawn from the book's key.
//! That family is strongly universal: without the key, any two addresses collide with
//! probability 2⁻⁶⁴ on the full hash and 2⁻ᵇ on the `b` bits a table uses. It costs three
//! multiplications.

use core::hash::{BuildHasher, Hash, Hasher};
use core::net::{IpAddr, SocketAddr};

use blake2::Blake2b512;
use blake2::digest::Digest;

/// A canonical socket address (see [`super::group::canonical`]) as an index key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct AddrKey(pub(super) SocketAddr);

impl Hash for AddrKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let (ip, family) = match self.0.ip() {
            IpAddr::V4(v4) => (u128::from(v4.to_bits()), 4u64),
            IpAddr::V6(v6) => (v6.to_bits(), 6u64),
        };
        state.write_u64((ip >> 64) as u64);
        state.write_u64(ip as u64);
        state.write_u64(u64::from(self.0.port()) | (family << 16));
    }
}

/// The secret multipliers `a₀…a₃`, derived from the book's key.
#[derive(Clone)]
pub(super) struct IndexHashState {
    multipliers: [u128; 4],
}

impl IndexHashState {
    pub(super) fn new(key: &[u8; 32]) -> Self {
        let digest = Blake2b512::new()
            .chain_update(b"switchboard/addr_book/index/v1")
            .chain_update(key)
            .finalize();
        let mut multipliers = [0u128; 4];
        for (multiplier, bytes) in multipliers.iter_mut().zip(digest.chunks_exact(16)) {
            let mut word = [0u8; 16];
            word.copy_from_slice(bytes);
            *multiplier = u128::from_le_bytes(word);
        }
        IndexHashState { multipliers }
    }
}

impl BuildHasher for IndexHashState {
    type Hasher = IndexHasher;

    fn build_hasher(&self) -> IndexHasher {
        let [first, ..] = self.multipliers;
        IndexHasher {
            multipliers: self.multipliers,
            sum: first,
            next: 1,
        }
    }
}

/// One hash in progress. Only [`AddrKey`]'s three words reach it; longer input would reuse
/// the multipliers cyclically (still deterministic, no longer universal).
pub(super) struct IndexHasher {
    multipliers: [u128; 4],
    sum: u128,
    next: usize,
}

impl Hasher for IndexHasher {
    fn write_u64(&mut self, word: u64) {
        let multiplier = self.multipliers.get(self.next).copied().unwrap_or(0);
        self.sum = self
            .sum
            .wrapping_add(multiplier.wrapping_mul(u128::from(word)));
        self.next = if self.next >= 3 {
            1
        } else {
            self.next.saturating_add(1)
        };
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            for (out, byte) in word.iter_mut().zip(chunk) {
                *out = *byte;
            }
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn finish(&self) -> u64 {
        (self.sum >> 64) as u64
    }
}
