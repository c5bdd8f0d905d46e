//! What a clean shutdown hands back: the accounts of every peer it closed.

use alloc::vec::Vec;

use super::NodeEvent;
use crate::disconnect::DisconnectReason;
use crate::identity::PeerId;
use crate::mux::ReturnedMessage;

/// The accounts of a [`Node::shutdown`](super::Node::shutdown), taken with
/// [`Node::take_shutdown_report`](super::Node::take_shutdown_report): one entry per peer
/// closed while shutting down, so every message `send` accepted and not yet accounted for
/// by an earlier `PeerDisconnected` is counted confirmed here or handed back.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Each peer, in the order its connection ended.
    pub peers: Vec<PeerReport>,
}

impl ShutdownReport {
    /// Messages confirmed, all peers.
    pub fn confirmed(&self) -> u64 {
        self.peers
            .iter()
            .map(|peer| peer.confirmed)
            .fold(0, u64::saturating_add)
    }

    /// Messages handed back (unsent and unconfirmed), all peers.
    pub fn returned(&self) -> usize {
        self.peers
            .iter()
            .map(|peer| peer.unsent.len().saturating_add(peer.unconfirmed.len()))
            .fold(0, usize::saturating_add)
    }

    /// Whether every message was confirmed: nothing handed back.
    pub fn is_complete(&self) -> bool {
        self.returned() == 0
    }
}

impl PeerReport {
    /// The accounts a [`NodeEvent::PeerDisconnected`] carries; `None` for any other event.
    /// For an adapter folding disconnections nobody read into a report.
    pub fn from_disconnected(event: NodeEvent) -> Option<PeerReport> {
        match event {
            NodeEvent::PeerDisconnected {
                peer,
                reason,
                unsent,
                unconfirmed,
                confirmed,
                ..
            } => Some(PeerReport {
                peer,
                reason,
                confirmed,
                unsent,
                unconfirmed,
            }),
            _ => None,
        }
    }
}

/// One peer's accounts at shutdown, as its `PeerDisconnected` gave them.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerReport {
    /// Who.
    pub peer: PeerId,
    /// Why its connection ended: `Quitting` when we closed it, or the peer's own reason.
    pub reason: DisconnectReason,
    /// Messages sent on the connection that the peer's application took.
    pub confirmed: u64,
    /// Messages never completely written: certainly not delivered.
    pub unsent: Vec<ReturnedMessage>,
    /// Messages written and not confirmed: perhaps delivered.
    pub unconfirmed: Vec<ReturnedMessage>,
}
