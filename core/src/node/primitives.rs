//! What the node offers the protocols above it beyond sending: probing an address, what
//! became of each dial, closing a peer once what was sent to it is confirmed, and what a
//! discovery protocol reads to choose whom to dial — the outbound slots, the dials in
//! flight, bans, the node's own randomness.
//!
//! Discovery ([`crate::discovery`]) is built on these alone, as any other discovery
//! protocol can be.

use alloc::collections::{BTreeMap, VecDeque};
use core::net::SocketAddr;

use foldhash::fast::FixedState;
use hashbrown::HashMap;
use rand_core::CryptoRng;

use super::{ConnId, DialError, DialReport, Node};
use crate::channel::ChannelId;
use crate::dial_queue::DialQueue;
use crate::identity::PeerId;
use crate::net_address::NetAddress;
use crate::peer_set::PeerSet;
use crate::time::Instant;

/// Dial reports held for the layer above at most: it takes them at every event, so only a
/// layer that stopped taking them loses the oldest.
const MAX_DIAL_REPORTS: usize = 4096;

/// The outbound slots, as a protocol filling them sees them. A seed dialed for addresses
/// holds one while connected (a seed in seed mode hangs up soon), so slots may read full a
/// moment before the peers that stay fill them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutboundSlots {
    /// Outbound peers counted against the cap (persistent peers are not).
    pub connected: usize,
    /// The cap ([`Limits::max_outbound`](crate::peer_set::Limits::max_outbound)).
    pub max: usize,
    /// Dials in flight that will take a slot if they succeed (probes take none).
    pub dialing: usize,
}

impl OutboundSlots {
    /// Slots neither taken nor about to be.
    pub fn free(&self) -> usize {
        self.max
            .saturating_sub(self.connected)
            .saturating_sub(self.dialing)
    }

    /// Whether every slot is taken by a connected peer.
    pub fn full(&self) -> bool {
        self.connected >= self.max
    }
}

impl<R: CryptoRng> Node<R> {
    /// Dials `addr` as a **probe**: the handshake proves the address alive and tells who is
    /// there ([`DialReport::Reached`]), and the connection is then closed, never admitted as
    /// a peer, holding no outbound slot and reported to no application — Bitcoin Core's
    /// feeler connections. A far end whose inbound slots are full completes the handshake
    /// and refuses us; that proves it alive all the same. A failed probe is reported
    /// ([`DialReport::Failed`]) and not retried.
    ///
    /// A dial for a peer to the same address ([`Node::dial`], a persistent peer's) takes
    /// the probe's place and is kept; a probe to an address already queued only brings
    /// that dial forward. It is paced by the dial queue as any dial, and checked when it
    /// starts (an address that is ours, banned or connected fails then).
    pub fn probe(&mut self, now: Instant, addr: NetAddress) -> Result<(), DialError> {
        if self.shutting_down {
            return Err(DialError::ShuttingDown);
        }
        self.queue_probe(now, addr);
        self.start_dials(now);
        Ok(())
    }

    /// Starts recording what becomes of each dial, for [`Node::poll_dial_report`]: what a
    /// layer keeping an address book calls once (a [`Router`](crate::router::Router) does).
    pub fn report_dials(&mut self) {
        self.dial_reports.get_or_insert_with(VecDeque::new);
    }

    /// The next dial report, oldest first ([`Node::report_dials`]).
    pub fn poll_dial_report(&mut self) -> Option<DialReport> {
        self.dial_reports.as_mut()?.pop_front()
    }

    pub(super) fn record_dial(&mut self, report: DialReport) {
        if let Some(reports) = self.dial_reports.as_mut() {
            if reports.len() >= MAX_DIAL_REPORTS {
                reports.pop_front();
            }
            reports.push_back(report);
        }
    }

    /// Disconnects `peer` (`Requested`) once nothing sent to it on `channel` awaits writing
    /// or its confirmation — at once if nothing does: what a node answering and hanging up
    /// (a seed handing out addresses) needs, since closing at once would hand the answer
    /// back unsent.
    pub fn disconnect_when_confirmed(&mut self, now: Instant, peer: &PeerId, channel: ChannelId) {
        let Some(conn) = super::query::conn_of(&self.peers, &self.queries, peer) else {
            return;
        };
        if let Some(entry) = self.conns.get_mut(conn) {
            entry.close_when_confirmed = Some(channel);
        }
        self.after(now, conn);
    }

    /// The outbound slots: taken, the cap, dials in flight for them.
    pub fn outbound_slots(&self) -> OutboundSlots {
        let (_, connected) = self.peer_set.counts();
        OutboundSlots {
            connected,
            max: self.peer_set.limits().max_outbound,
            dialing: self.outbound_dials(),
        }
    }

    /// The addresses dialed right now (connecting or in the handshake), probes included,
    /// each with whether it is a persistent peer's.
    pub fn dials_in_flight(&self) -> impl Iterator<Item = (SocketAddr, bool)> + '_ {
        self.dialing
            .keys()
            .map(|addr| (*addr, self.peer_set.is_persistent_socket(addr)))
    }

    /// What a protocol choosing an address asks of the node ([`NodeView`]).
    pub fn view(&self) -> NodeView<'_> {
        NodeView {
            local_id: self.local_id,
            listen_addr: self.info.listen_addr,
            peers: &self.peers,
            dialing: &self.dialing,
            dials: &self.dials,
            peer_set: &self.peer_set,
        }
    }

    /// The node's random number generator: a protocol drawing a secret (an address book's
    /// bucketing key) draws it from here, so a seeded node stays deterministic.
    pub fn rng(&mut self) -> &mut R {
        &mut self.rng
    }

    /// The RNG and the view at once: to draw a random choice among addresses the view
    /// judges (an address book's selection).
    pub fn rng_and_view(&mut self) -> (&mut R, NodeView<'_>) {
        let view = NodeView {
            local_id: self.local_id,
            listen_addr: self.info.listen_addr,
            peers: &self.peers,
            dialing: &self.dialing,
            dials: &self.dials,
            peer_set: &self.peer_set,
        };
        (&mut self.rng, view)
    }
}

/// What the node says of addresses and peers, borrowed: whether each is connected, being
/// dialed, banned, private — what a protocol judging candidates to dial or to share asks.
#[derive(Clone, Copy)]
pub struct NodeView<'a> {
    local_id: PeerId,
    listen_addr: Option<SocketAddr>,
    peers: &'a HashMap<PeerId, ConnId, FixedState>,
    dialing: &'a BTreeMap<SocketAddr, ConnId>,
    dials: &'a DialQueue,
    peer_set: &'a PeerSet,
}

impl NodeView<'_> {
    /// This node's identity.
    pub fn local_peer_id(&self) -> PeerId {
        self.local_id
    }

    /// Where this node accepts connections, as it tells its peers.
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.listen_addr
    }

    /// Whether `peer` is connected.
    pub fn is_connected(&self, peer: &PeerId) -> bool {
        self.peers.contains_key(peer)
    }

    /// Whether a dial to `addr` is queued or in flight.
    pub fn is_dialing(&self, addr: SocketAddr) -> bool {
        self.dialing.contains_key(&addr) || self.dials.contains(addr)
    }

    /// Whether `addr`'s IP, or the peer it names, is banned at `now`.
    pub fn is_banned(&self, now: Instant, addr: &NetAddress) -> bool {
        let bans = self.peer_set.bans();
        bans.is_ip_banned(now, addr.socket_addr().ip())
            || addr
                .peer_id()
                .is_some_and(|peer| bans.is_peer_banned(now, &peer))
    }

    /// Whether `peer` is private: never shared with other peers.
    pub fn is_private(&self, peer: &PeerId) -> bool {
        self.peer_set.is_private(peer)
    }
}
