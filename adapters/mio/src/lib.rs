//! # switchboard-mio
//!
//! Binds the sans-IO `switchboard` core to real sockets through mio, two ways:
//!
//! - **Embedded** ([`Driver`]): you own the `mio::Poll`; the driver registers its listeners
//!   and connections under a token range you give it, and your loop calls
//!   [`Driver::poll_timeout`], [`Driver::handle_event`] and [`Driver::poll_event`]. No
//!   thread, no hidden channel. The driver runs a bare node or a
//!   node with protocols on it ([`Driver::with_router`]; any layer:
//!   [`Driver::new_with_stack`]).
//! - **Standalone** ([`Runtime`]): the same driver on its own thread, commanded through a
//!   [`Handle`] and woken through a `mio::Waker`; [`Runtime::start_with_router`] runs a
//!   router there, its protocols reached through [`Handle::with_protocol`].
//!
//! Around them: metrics and status over HTTP for operators ([`ops`]), the key file ([`key_file`]), the data directory ([`DataDir`]), the
//! open-file limit ([`fd_limit`]) and the loopback cluster of `switchboard demo`
//! ([`demo`]).
//!
//! The adapter logs through `tracing` what only it sees — an accepted socket refused and
//! why (at debug: routine under load), an `accept` that failed, file descriptors running
//! out — so an application that installs a subscriber hears of them. The core never logs:
//! it reports through its events.

#![deny(unsafe_code)]
#![deny(missing_docs)]

mod accept_pause;
mod clock;
mod data_dir;
pub mod demo;
mod driver;
pub mod fd_limit;
pub mod key_file;
mod listener;
mod node_api;
pub mod ops;
mod runtime;
mod socket;

use rand_core::SeedableRng;

pub use clock::Clock;
pub use data_dir::DataDir;
pub use driver::{Driver, DriverConfig, DriverError, DriverStats};
pub use node_api::NodeApi;
/// The RNG every node of this adapter runs on, re-exported so a user naming
/// `Handle<Router<ChaCha20Rng>>` need not depend on the exact `rand_chacha` version.
pub use rand_chacha::ChaCha20Rng;
pub use runtime::{Events, Handle, Runtime, RuntimeError};

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

/// The API tour's examples (`docs/api-tour.md`), compiled and run the same way.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/api-tour.md")]
pub struct ApiTourExamples;
