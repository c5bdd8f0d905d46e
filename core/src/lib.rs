//! # switchboard
//!
//! The sans-IO core of a peer-to-peer networking library: every protocol is a deterministic
//! state machine fed bytes, socket events and the current time, handing back bytes to write,
//! deadlines and events. The core never touches a socket, a thread, a clock or OS
//! randomness — time arrives as [`Instant`], randomness through a caller-supplied seeded RNG
//! — so the same inputs always give the same outputs, in a real event loop or in a simulated
//! network.
//!
//! ## Start here
//!
//! - **A node on real sockets, on its own thread**: `switchboard_mio::Runtime` (crate
//!   `switchboard-mio`) — spawn it, then `send`, `dial`, read its events, shut it down.
//! - **A node inside your own `mio` loop**: `switchboard_mio::Driver`, three calls per turn.
//! - **Your own event loop or adapter**: [`node::Node`], the switch, driven through
//!   [`node::Stack::poll_output`] — the one driving contract, documented there.
//! - **Protocols** (request handlers, gossip, …) on a node: [`router::Router`] and
//!   [`router::Protocol`].
//! - **Tests under faults**: `switchboard_sim::Sim` (crate `switchboard-sim`), a
//!   deterministic simulated network with the same nodes.
//!
//! The state machines, bottom up:
//!
//! | module | state machine |
//! |---|---|
//! | [`handshake`] | `Noise_XX_25519_AESGCM_BLAKE2b` carrying each side's [`NodeInfo`], then the peer checks |
//! | [`cipher`] | the transport [`CipherState`](cipher::TransportCipher) pair, with automatic rekeying |
//! | [`record`] | `u16 length ‖ ciphertext` records, decoded from input split anywhere |
//! | [`frame`] | DATA, CREDIT, PING, PONG and GOAWAY frames inside a record's plaintext |
//! | `mux` | prioritized channels (deficit round robin) with credit flow control and delivery confirmation |
//! | `keepalive` | PING cadence, silence timeout, RTT estimate |
//! | [`connection`] | one transport connection from first byte to close, built from all of the above |
//!
//! The wire format is specified byte by byte in `core/PROTOCOL.md`.
//!
//! ## Panic policy
//!
//! A panic is a bug in switchboard, never a reaction to what a peer sends. Every decoder is
//! total: malformed input yields an error that names the problem and the
//! [`DisconnectReason`] to give the peer. No decoder allocates more than its documented bound.
//!
//! ## Stability
//!
//! Events and errors are `#[non_exhaustive]`, so a new kind of either is not a breaking
//! change; match them with a wildcard arm. [`node::Action`] is exhaustive on purpose: an
//! adapter must carry out every action, and a new one should break its build, not be
//! ignored.

#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects
    )
)]
// An error built eagerly for `ok_or` allocates on the success path too: the hot path must not.
#![deny(clippy::or_fun_call)]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod addr_book;
pub mod ban_list;
mod channel;
pub mod cipher;
pub mod connection;
pub mod dial_queue;
mod disconnect;
pub mod discovery;
pub mod frame;
pub mod gossip;
pub mod handshake;
mod identity;
mod keepalive;
mod length_prefix;
mod mux;
mod negotiation;
mod net_address;
pub mod node;
mod node_info;
pub mod peer_set;
pub mod pex;
pub mod record;
pub mod request_response;
pub mod router;
mod time;
mod token_bucket;
mod varint;

/// Every message is a `Bytes`, sent and received: re-exported so that an application needs
/// no dependency of its own on `bytes`, nor to keep one at the version switchboard uses.
pub use bytes::Bytes;
pub use channel::{
    ChannelConfig, ChannelId, MESSAGE_COST_OVERHEAD, RESERVED_CHANNELS_START, RateLimit,
    message_cost,
};
pub use cipher::TransportCipher;
pub use connection::{Connection, ConnectionConfig};
pub use disconnect::DisconnectReason;
pub use identity::{Keypair, ParsePeerIdError, PeerId, PublicKey};
pub use mux::{
    ChannelStats, MuxError, QUANTUM_PER_WEIGHT, ReturnedMessage, SendError, SendOutcome,
};
pub use negotiation::negotiate;
pub use net_address::{NetAddress, ParseNetAddressError};
pub use node_info::{
    ChannelInfo, FEATURE_QUERY, Field, MAX_AGENT_LEN, MAX_CHANNELS, MAX_ENCODED_LEN,
    MAX_NETWORK_LEN, MAX_PROTOCOL_NAME_LEN, NodeInfo, NodeInfoError, PROTOCOL_VERSION,
    ProtocolVersion,
};
pub use time::Instant;
