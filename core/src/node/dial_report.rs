//! What became of each dial, and who dialed us: what a protocol keeping a record of
//! addresses learns from.
//!
//! An address book learns from every dial the node makes — the application's, persistent
//! peers', its own — not only from those it asked for: a dial started counts as an attempt,
//! a handshake completed proves the address alive under an identity (admitted or not), a
//! failure counts against it or, when the address is ours or lies, removes it. It learns
//! from the peers that dial us too: an inbound peer admitted says where it listens. The
//! reports are taken when the handshake completes, so they hold even when the connection
//! is gone by the time the layer above hears of it (a feeler hangs up at once). The node
//! records these as [`DialReport`]s for the layer above it; a
//! [`Router`](crate::router::Router) hands each to its protocols'
//! [`Protocol::dialed`](crate::router::Protocol::dialed) hook. Nothing is recorded until
//! someone asks ([`Node::report_dials`](super::Node::report_dials)), so a node driven alone
//! holds none.

use core::net::SocketAddr;

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
    /// An inbound peer was admitted: where it says it listens, and where it dialed us from.
    /// Not a dial of ours.
    Accepted {
        /// Who.
        peer: PeerId,
        /// The connection's remote address.
        remote: SocketAddr,
        /// The address it says it listens on, if any.
        listen_addr: Option<SocketAddr>,
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
