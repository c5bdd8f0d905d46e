//! # switchboard-mio
//!
//! Binds the sans-IO `switchboard` core to real sockets. The mio event-loop driver (embedded
//! and standalone modes) arrives with the adapter issue; today the crate ships the
//! `switchboard` binary, whose `demo` runs the handshake and encrypted records between two
//! endpoints over loopback TCP, and the helpers it needs.

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// A cryptographically secure RNG seeded from the operating system, for the core's key
/// generation and handshakes. The core itself never touches OS randomness; adapters do,
/// once, here.
pub fn os_seeded_rng() -> Result<ChaCha20Rng, getrandom::Error> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)?;
    Ok(ChaCha20Rng::from_seed(seed))
}

/// The README's examples, compiled and run as doctests so the README stays true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeExamples;
