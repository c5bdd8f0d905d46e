//! What a clean shutdown hands back: the accounts of every peer it closed.

use alloc::vec::Vec;
use core::time::Duration;

use rand_core::CryptoRng;

use super::{ConnId, Node, NodeEvent, Phase};

use crate::disconnect::DisconnectReason;
use crate::identity::PeerId;
use crate::mux::ReturnedMessage;
use crate::time::Instant;

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

impl<R: CryptoRng> Node<R> {
    /// Starts a clean shutdown. From now on no dial starts (the application's, persistent
    /// peers' redials, discovery's) and no accepted socket is admitted — otherwise a node
    /// that lost its peers would go on to fill its slots again while it shuts down. Every
    /// dial queued or in flight is reported given up (`DialFailed`, `Quitting`; the address
    /// book holds nothing against the address) and handshakes are closed.
    ///
    /// Connected peers are first **flushed**: for up to `flush`, each keeps its connection
    /// until every message `send` accepted for it was written and confirmed by its
    /// application, and is then closed with `Quitting` (told in a GOAWAY). At the deadline
    /// the peers still flushing are closed all the same. Each peer's `PeerDisconnected`
    /// hands back what was not confirmed, as always, and the same accounts are gathered in
    /// the [`ShutdownReport`] ([`Node::take_shutdown_report`]): nothing `send` accepted is
    /// unaccounted for. A `flush` of zero closes every peer at once.
    ///
    /// Keep driving the node, taking its events, until it has no connection left
    /// ([`Node::connection_count`]).
    pub fn shutdown(&mut self, now: Instant, flush: Duration) {
        if self.shutting_down {
            return;
        }
        self.shutting_down = true;
        self.shutdown_report = Some(ShutdownReport::default());
        for addr in self.dials.take_waiting() {
            self.report_dial_cancelled(addr);
        }
        if !flush.is_zero() {
            self.flush_deadline = Some(now.saturating_add(flush));
        }
        let conns: Vec<ConnId> = self.conns.ids().collect();
        for conn in conns {
            let flushes = self.flush_deadline.is_some()
                && self.conns.get(conn).is_some_and(|entry| {
                    entry.phase == Phase::Connected && entry.connection.is_established()
                });
            if flushes {
                // Closed by `settle` once flushed (perhaps at once), or at the deadline.
                self.after(now, conn);
            } else {
                self.close_connection(now, conn, DisconnectReason::Quitting, "shutting down");
            }
        }
    }

    /// The accounts of a shutdown, once ([`Node::shutdown`]): for every peer connected when
    /// it began (and any admitted since), what was confirmed and what was handed back.
    /// Complete once [`Node::connection_count`] is zero; `None` before a shutdown.
    pub fn take_shutdown_report(&mut self) -> Option<ShutdownReport> {
        self.shutdown_report.take()
    }

    /// Whether [`Node::shutdown`] was called.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down
    }
}
