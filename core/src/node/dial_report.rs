//! What became of each dial, for the protocols that keep a record of addresses.
//!
//! An address book learns from every dial the node makes — the application's, persistent
//! peers', its own — not only from those it asked for: a dial started counts as an attempt,
//! a handshake completed proves the address alive under an identity (admitted or not), a
//! failure counts against it or, when the address is ours or lies, removes it. The node
//! records these as [`DialReport`]s for the layer above it; a
//! [`Router`](crate::router::Router) hands each to its protocols'
//! [`Protocol::dialed`](crate::router::Protocol::dialed) hook. Nothing is recorded until
//! someone asks ([`Node::report_dials`](super::Node::report_dials)), so a node driven alone
//! holds none.

use crate::disconnect::DisconnectReason;
use crate::identity::PeerId;
use crate::net_address::NetAddress;

/// What happened to one dial. `probe` tells a probe ([`Node::probe`](super::Node::probe))
/// from a dial for a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DialReport {
    /// The dial started: the adapter was asked to connect.
    Started {
        /// The address dialed.
        addr: NetAddress,
        /// Whether it is a probe.
        probe: bool,
    },
    /// The handshake with the address completed: it is alive, and `peer` is there, whether
    /// or not the connection was then admitted. A probe whose far end refused us for want
    /// of slots (`TooManyPeers`) after the handshake is reported here too: it proved itself.
    Reached {
        /// The address dialed.
        addr: NetAddress,
        /// Who answered there.
        peer: PeerId,
        /// Whether it is a probe.
        probe: bool,
    },
    /// The dial failed, before or during the handshake, or was refused by our own limits.
    Failed {
        /// The address dialed.
        addr: NetAddress,
        /// Why.
        reason: DisconnectReason,
        /// Whether it is a probe.
        probe: bool,
    },
}

impl DialReport {
    /// The address the report is about.
    pub fn addr(&self) -> &NetAddress {
        match self {
            DialReport::Started { addr, .. }
            | DialReport::Reached { addr, .. }
            | DialReport::Failed { addr, .. } => addr,
        }
    }
}
