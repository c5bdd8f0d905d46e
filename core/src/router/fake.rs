//! A fake node for protocols' unit tests: it records what a protocol sends and whom it
//! disconnects, refuses sends as a test tells it to, and lends the [`Context`] a hook gets —
//! so a protocol's state machine is tested alone, without connections.

use alloc::boxed::Box;
use alloc::collections::{BTreeSet, VecDeque};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;
use core::net::SocketAddr;

use bytes::Bytes;
use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, SeedableRng};

use super::protocol::NodeOps;
use super::timers::Timers;
use super::{Context, Protocol, ProtocolEvent, TimerKey};
use crate::channel::ChannelId;
use crate::connection::ConnectionStats;
use crate::disconnect::DisconnectReason;
use crate::identity::Keypair;
use crate::identity::PeerId;
use crate::mux::SendError;
use crate::net_address::NetAddress;
use crate::node::{DialError, Node, NodeConfig, NodeView, OutboundSlots, PeerInfo, QueryError};
use crate::node_info::NodeInfo;
use crate::peer_set::Direction;
use crate::time::Instant;

/// What the protocol did to the node, and what the node shows it.
pub(crate) struct Sends {
    pub(crate) sent: Vec<(PeerId, ChannelId, Bytes)>,
    pub(crate) disconnected: Vec<(PeerId, DisconnectReason)>,
    /// Peers to be disconnected once what was sent on the channel is confirmed.
    pub(crate) hang_ups: Vec<(PeerId, ChannelId)>,
    /// Sends refused as `Full` while set.
    pub(crate) full: bool,
    pub(crate) dials: Vec<NetAddress>,
    pub(crate) probes: Vec<NetAddress>,
    /// What [`Context::connected`] and [`Context::peer_info`] show.
    pub(crate) connected: Vec<PeerInfo>,
    pub(crate) slots: OutboundSlots,
    pub(crate) in_flight: Vec<(SocketAddr, bool)>,
    pub(crate) shutting_down: bool,
    /// A real node without connections: its view (bans, dial queue) and its RNG.
    pub(crate) node: Node<ChaCha20Rng>,
    /// Query connections opened, in order.
    pub(crate) queries_opened: Vec<NetAddress>,
    /// While set, `open_query` refuses with it.
    pub(crate) query_refusal: Option<QueryError>,
    /// Peers connected over a query connection.
    pub(crate) query_peers: BTreeSet<PeerId>,
}

impl Default for Sends {
    fn default() -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let keypair = Keypair::generate(&mut rng);
        let config = NodeConfig::new("test", "fake/1");
        #[allow(clippy::expect_used)]
        let node = Node::new(Instant::ZERO, config, keypair, rng).expect("a valid config");
        Sends {
            sent: Vec::new(),
            disconnected: Vec::new(),
            hang_ups: Vec::new(),
            full: false,
            dials: Vec::new(),
            probes: Vec::new(),
            connected: Vec::new(),
            slots: OutboundSlots {
                connected: 0,
                max: 10,
                dialing: 0,
            },
            in_flight: Vec::new(),
            shutting_down: false,
            node,
            queries_opened: Vec::new(),
            query_refusal: None,
            query_peers: BTreeSet::new(),
        }
    }
}

impl NodeOps for Sends {
    fn send(
        &mut self,
        _now: Instant,
        peer: &PeerId,
        channel: ChannelId,
        message: Bytes,
    ) -> Result<(), SendError> {
        if self.full {
            return Err(SendError::Full(message));
        }
        self.sent.push((*peer, channel, message));
        Ok(())
    }

    fn disconnect(&mut self, _now: Instant, peer: &PeerId, reason: DisconnectReason) {
        self.disconnected.push((*peer, reason));
    }

    fn close(&mut self, _now: Instant, peer: &PeerId, reason: DisconnectReason, _detail: &str) {
        self.disconnected.push((*peer, reason));
    }

    fn disconnect_when_confirmed(&mut self, _now: Instant, peer: &PeerId, channel: ChannelId) {
        self.hang_ups.push((*peer, channel));
    }

    /// Recorded, and queued on the real node so that its view counts it as dialing.
    fn dial(&mut self, now: Instant, addr: NetAddress) -> Result<(), DialError> {
        if self.shutting_down {
            return Err(DialError::ShuttingDown);
        }
        self.node.dial(now, addr)?;
        self.dials.push(addr);
        Ok(())
    }

    fn probe(&mut self, now: Instant, addr: NetAddress) -> Result<(), DialError> {
        if self.shutting_down {
            return Err(DialError::ShuttingDown);
        }
        self.node.probe(now, addr)?;
        self.probes.push(addr);
        Ok(())
    }

    fn connected(&self) -> Vec<PeerInfo> {
        self.connected.clone()
    }

    fn peer_info(&self, peer: &PeerId) -> Option<PeerInfo> {
        self.connected
            .iter()
            .find(|info| info.peer == *peer)
            .cloned()
    }

    fn outbound_slots(&self) -> OutboundSlots {
        self.slots
    }

    fn dials_in_flight(&self) -> Vec<(SocketAddr, bool)> {
        self.in_flight.clone()
    }

    fn is_shutting_down(&self) -> bool {
        self.shutting_down
    }

    fn view(&self) -> NodeView<'_> {
        self.node.view()
    }

    fn rng_and_view(&mut self) -> (&mut dyn CryptoRng, NodeView<'_>) {
        let (rng, view) = self.node.rng_and_view();
        (rng, view)
    }

    fn open_query(
        &mut self,
        _now: Instant,
        addr: NetAddress,
        _protocol: &str,
    ) -> Result<(), QueryError> {
        if let Some(refusal) = self.query_refusal {
            return Err(refusal);
        }
        self.queries_opened.push(addr);
        Ok(())
    }

    fn is_query(&self, peer: &PeerId) -> bool {
        self.query_peers.contains(peer)
    }
}

/// What a connected peer looks like to a protocol: `peer` at `remote`, listening there too.
pub(crate) fn peer_info(peer: PeerId, remote: SocketAddr, direction: Direction) -> PeerInfo {
    PeerInfo {
        peer,
        remote_addr: remote,
        listen_addr: Some(remote),
        direction,
        persistent: false,
        trusted: false,
        private: false,
        info: Box::new(NodeInfo::new("test", "fake/1")),
        stats: ConnectionStats::default(),
        rtt: None,
        channels: Vec::new(),
    }
}

/// A node with `peers` speaking the protocol under test.
pub(crate) struct FakeNode {
    pub(crate) sends: Sends,
    pub(crate) peers: Vec<(PeerId, u16)>,
    pub(crate) timers: Timers,
    emitted: VecDeque<ProtocolEvent>,
    name: Arc<str>,
}

impl FakeNode {
    pub(crate) fn new(peers: &[PeerId]) -> Self {
        FakeNode {
            sends: Sends::default(),
            peers: peers.iter().map(|peer| (*peer, 1)).collect(),
            timers: Timers::default(),
            emitted: VecDeque::new(),
            name: Arc::from("test"),
        }
    }

    /// The context a hook called at `now` gets.
    pub(crate) fn ctx(&mut self, now: Instant) -> Context<'_> {
        Context {
            now,
            node: &mut self.sends,
            peers: &self.peers,
            timers: &mut self.timers,
            name: &self.name,
            emitted: &mut self.emitted,
        }
    }

    /// Takes what the protocol emitted so far, as `T`s (others are skipped).
    pub(crate) fn take_emitted<T: Any + Clone>(&mut self) -> Vec<T> {
        self.take_events()
            .iter()
            .filter_map(|event| event.downcast_ref::<T>().cloned())
            .collect()
    }

    /// Takes what the protocol emitted so far, as the router hands it on.
    pub(crate) fn take_events(&mut self) -> Vec<ProtocolEvent> {
        self.emitted.drain(..).collect()
    }

    /// Takes what the protocol sent so far.
    pub(crate) fn take_sent(&mut self) -> Vec<(PeerId, ChannelId, Bytes)> {
        core::mem::take(&mut self.sends.sent)
    }

    /// Fires `protocol`'s timers due by `now`, as the router does.
    pub(crate) fn fire<P: Protocol>(&mut self, protocol: &mut P, now: Instant) {
        let due: Vec<(Instant, TimerKey)> = self.timers.due(now).collect();
        for (at, key) in due {
            if self.timers.take(key, at) {
                protocol.timer(&mut self.ctx(now), key);
            }
        }
    }

    /// When the protocol's timers next fire.
    pub(crate) fn next_timer(&self) -> Option<Instant> {
        self.timers.earliest()
    }
}
