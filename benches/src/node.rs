//! Node workloads: [`NodeNet`], `Node`s wired to each other in memory (what an idle
//! connection costs the nodes holding it), and [`HubRouting`], one `Node` with N
//! established peers relaying messages between them (whether routing stays O(log n) as the
//! peers grow).
//!
//! Neither uses `switchboard-sim`: the simulator's own per-connection state (its link and
//! arrival maps, the events it logs for every node) would sit in the heap figure with no way
//! to tell it apart, and its main loop visited every node on every step when these were
//! written, which made setting up 10,000 peers slow. Both drivers here deliver bytes at once (zero latency, whole
//! writes), hold nothing per connection that grows while they run (their tables are sized up
//! front), and hand the nodes' `poll_*` outputs on as the node's contract asks.

use std::collections::{HashMap, VecDeque};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant as StdInstant};

use bytes::Bytes;
use rand_chacha::ChaCha20Rng;
use switchboard::connection::{Connection, Event};
use switchboard::node::{Action, ConnId, Node, NodeConfig, NodeEvent};
use switchboard::{
    ChannelConfig, ChannelId, ChannelInfo, ConnectionConfig, Instant, Keypair, NetAddress,
    NodeInfo, PeerId,
};

use crate::{NETWORK, seeded_rng};

/// The port every benchmark node listens on.
pub const NODE_PORT: u16 = 26656;

/// The one channel the benchmark nodes offer.
pub const NODE_CHANNEL: ChannelId = 1;

/// Length of the messages [`HubRouting`] relays: small, as gossip and consensus votes are,
/// so the per-message work of the node shows rather than the cipher's per-byte work.
pub const ROUTE_MESSAGE_LEN: usize = 64;

/// A node config of network [`NETWORK`] offering channel [`NODE_CHANNEL`] with the default
/// limits and the default connection timers (10 s pings); it runs no discovery (the workloads build fixed topologies).
pub fn node_config() -> NodeConfig {
    let mut config = NodeConfig::new(NETWORK, "switchboard-bench/node");
    config.add_channel("bench", 1, ChannelConfig::new(NODE_CHANNEL));
    config
}

fn channel_info() -> ChannelInfo {
    ChannelInfo {
        id: NODE_CHANNEL,
        protocol: "bench".into(),
        version: 1,
    }
}

/// The IP of node (or peer) `index`: `10.a.b.host` with `a.b` = `index`, so every index
/// has a /24 of its own and the per-IP and per-subnet limits never apply between them.
///
/// # Panics
/// If `index` does not fit in 16 bits.
pub fn node_ip(index: usize, host: u8) -> IpAddr {
    let index = u16::try_from(index).expect("at most 65536 nodes");
    let [a, b] = index.to_be_bytes();
    IpAddr::V4(Ipv4Addr::new(10, a, b, host))
}

/// What the application of every node in a [`NodeNet`] was told, summed over the nodes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetEvents {
    /// `PeerConnected`.
    pub connected: u64,
    /// `PeerDisconnected`.
    pub disconnected: u64,
    /// `DialFailed`.
    pub dial_failed: u64,
    /// `Message`.
    pub messages: u64,
    /// `SlowPeer`.
    pub slow: u64,
}

impl NetEvents {
    fn record(&mut self, event: &NodeEvent) {
        let counter = match event {
            NodeEvent::PeerConnected { .. } => &mut self.connected,
            NodeEvent::PeerDisconnected { .. } => &mut self.disconnected,
            NodeEvent::DialFailed { .. } => &mut self.dial_failed,
            NodeEvent::Message { .. } => &mut self.messages,
            NodeEvent::SlowPeer { .. } => &mut self.slow,
            // Kinds of event added later are not counted.
            _ => return,
        };
        *counter += 1;
    }
}

/// `Node`s wired to each other in memory, one thread, a virtual clock.
///
/// Node `i` listens on [`node_ip`]`(i, 1)`. A `Dial` action is accepted by the node at the
/// address dialed (`handle_accepted`) and reported connected to the dialer at once; bytes
/// from `poll_transmit` are handed to the other end's `handle_input` at once; a `Close`
/// reaches the other end as `handle_closed`. Every event is taken (`poll_event`), counted
/// and dropped, as an application that has nothing to keep would.
///
/// The driver's own tables (nodes, links, work queue) are allocated when it is built, at the
/// sizes given, and do not grow while it runs — [`NodeNet::check_no_growth`] asserts it —
/// so a heap count around [`NodeNet::run`] and [`NodeNet::advance`] sees the nodes only.
pub struct NodeNet {
    nodes: Vec<Node<ChaCha20Rng>>,
    seed: u64,
    now: Instant,
    /// (node, its `ConnId`) → (other node, its `ConnId`).
    links: HashMap<(usize, ConnId), (usize, ConnId)>,
    links_capacity: usize,
    /// Nodes touched since they were last drained, each at most once.
    work: VecDeque<usize>,
    queued: Vec<bool>,
    wire: Vec<u8>,
    wire_capacity: usize,
    events: NetEvents,
}

impl NodeNet {
    /// Room for `max_nodes` nodes and `max_connections` connections between them at once;
    /// node keys and randomness come from `seed`.
    pub fn new(seed: u64, max_nodes: usize, max_connections: usize) -> Self {
        let links = HashMap::with_capacity(2 * max_connections);
        let wire = Vec::with_capacity(64 * 1024);
        NodeNet {
            nodes: Vec::with_capacity(max_nodes),
            seed,
            now: Instant::from_nanos(1_000_000_000),
            links_capacity: links.capacity(),
            links,
            work: VecDeque::with_capacity(max_nodes),
            queued: Vec::with_capacity(max_nodes),
            wire_capacity: wire.capacity(),
            wire,
            events: NetEvents::default(),
        }
    }

    /// Adds a node running `config` (its listen address is set to its own) and returns its
    /// index.
    ///
    /// # Panics
    /// Beyond the `max_nodes` given to [`NodeNet::new`], or if the config is invalid.
    pub fn add_node(&mut self, mut config: NodeConfig) -> usize {
        let index = self.nodes.len();
        assert!(
            index < self.nodes.capacity(),
            "more nodes than room was made for"
        );
        let mut rng = seeded_rng(self.seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let keypair = Keypair::generate(&mut rng);
        config.listen_addr = Some(SocketAddr::new(node_ip(index, 1), NODE_PORT));
        let node = Node::new(self.now, config, keypair, rng).expect("a valid node config");
        self.nodes.push(node);
        self.queued.push(false);
        index
    }

    /// Nodes in the network.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the network has no node.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// A node.
    pub fn node(&self, index: usize) -> &Node<ChaCha20Rng> {
        &self.nodes[index]
    }

    /// The virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The events taken so far, summed over the nodes.
    pub fn events(&self) -> NetEvents {
        self.events
    }

    /// The address (with identity) other nodes dial to reach node `index`.
    pub fn address(&self, index: usize) -> NetAddress {
        NetAddress::new(
            Some(self.nodes[index].peer_id()),
            SocketAddr::new(node_ip(index, 1), NODE_PORT),
        )
    }

    /// Node `from` dials node `to` (the dial starts on the next [`NodeNet::run`]).
    ///
    /// # Panics
    /// If the node refuses to dial.
    pub fn dial(&mut self, from: usize, to: usize) {
        let addr = self.address(to);
        self.nodes[from]
            .dial(self.now, addr)
            .expect("the node accepts the dial");
        self.mark(from);
    }

    /// Runs the network until nothing moves at the current instant: every output drained,
    /// every timer due fired (dials waiting for a slot among them).
    pub fn run(&mut self) {
        loop {
            while let Some(index) = self.work.pop_front() {
                self.queued[index] = false;
                self.drain(index);
            }
            let now = self.now;
            let mut fired = false;
            for index in 0..self.nodes.len() {
                if self.nodes[index]
                    .poll_timeout()
                    .is_some_and(|deadline| deadline <= now)
                {
                    self.nodes[index].handle_timeout(now);
                    self.mark(index);
                    fired = true;
                }
            }
            if !fired {
                return;
            }
        }
    }

    /// Advances the virtual time by `duration` in steps of `tick`, running the network after
    /// each step (timers fire up to a tick late).
    pub fn advance(&mut self, duration: Duration, tick: Duration) {
        let end = self.now.saturating_add(duration);
        self.run();
        while self.now < end {
            self.now = self.now.saturating_add(tick).min(end);
            self.run();
        }
    }

    /// Drops every node from index `len` on, with all they hold (their connections' other
    /// ends are not told: this is for heap counts, after which the network is not run).
    pub fn truncate(&mut self, len: usize) {
        self.nodes.truncate(len);
    }

    /// Asserts that the driver's own tables did not grow since it was built.
    pub fn check_no_growth(&self) {
        assert_eq!(
            self.links.capacity(),
            self.links_capacity,
            "link table grew"
        );
        assert_eq!(self.wire.capacity(), self.wire_capacity, "wire buffer grew");
        assert!(self.work.capacity() >= self.nodes.capacity());
    }

    fn mark(&mut self, index: usize) {
        if !self.queued[index] {
            self.queued[index] = true;
            self.work.push_back(index);
        }
    }

    /// Takes everything node `index` has to give, until it has nothing left.
    fn drain(&mut self, index: usize) {
        let now = self.now;
        loop {
            let mut moved = false;
            while let Some(action) = self.nodes[index].poll_action() {
                moved = true;
                self.act(index, action);
            }
            self.wire.clear();
            while let Some(conn) = self.nodes[index].poll_transmit(now, &mut self.wire) {
                moved = true;
                if let Some(&(other, their)) = self.links.get(&(index, conn)) {
                    self.nodes[other].handle_input(now, their, &self.wire);
                    self.mark(other);
                }
                self.wire.clear();
            }
            while let Some(event) = self.nodes[index].poll_event(now) {
                moved = true;
                self.events.record(&event);
            }
            if !moved {
                return;
            }
        }
    }

    fn act(&mut self, index: usize, action: Action) {
        let now = self.now;
        match action {
            Action::Dial { conn, addr } => {
                let target = self.index_of(addr);
                let remote = SocketAddr::new(node_ip(index, 1), 40_000 + (conn.0 % 20_000) as u16);
                let accepted = target.and_then(|target| {
                    self.nodes[target]
                        .handle_accepted(now, remote)
                        .ok()
                        .map(|their| (target, their))
                });
                match accepted {
                    Some((target, their)) => {
                        self.links.insert((index, conn), (target, their));
                        self.links.insert((target, their), (index, conn));
                        self.nodes[index].handle_connected(now, conn);
                        self.mark(target);
                    }
                    None => self.nodes[index].handle_closed(now, conn),
                }
            }
            Action::Close { conn } => {
                if let Some((other, their)) = self.links.remove(&(index, conn)) {
                    self.links.remove(&(other, their));
                    self.nodes[other].handle_closed(now, their);
                    self.mark(other);
                }
            }
        }
    }

    fn index_of(&self, addr: SocketAddr) -> Option<usize> {
        let IpAddr::V4(ip) = addr.ip() else {
            return None;
        };
        let [10, a, b, 1] = ip.octets() else {
            return None;
        };
        let index = usize::from(u16::from_be_bytes([a, b]));
        (addr.port() == NODE_PORT && index < self.nodes.len()).then_some(index)
    }
}

/// The time of every call in [`HubRouting`]: no timer is due, so no PING joins the data.
const HUB_NOW: Instant = Instant::from_nanos(1_000_000_000);

/// One peer of the hub: the far end of one of its connections.
struct HubPeer {
    connection: Connection,
    /// The hub's handle of the connection.
    conn: ConnId,
    id: PeerId,
}

/// One hub `Node` with `n` established, idle peers, relaying messages between them.
///
/// The peers are bare `Connection`s (dialers, one key pair each, own /24 each): the hub is
/// the only `Node`, so 10,000 peers fit in memory and take seconds to set up (one in-memory
/// handshake each). [`HubRouting::relay`] is one routed message:
///
/// 1. peer `a` (drawn at random) sends a 64-byte message to the hub: its `send` and
///    `poll_transmit` (one record);
/// 2. the hub's `handle_input` for `a`'s connection, then `poll_event` hands the application
///    the `Message` from `a`;
/// 3. the application forwards it with `Node::send` to peer `b` (drawn at random, `b ≠ a`),
///    looked up by `PeerId`;
/// 4. the hub's `poll_transmit` until `None`: the message record for `b` and the CREDIT
///    record returning `a`'s window, each handed to its peer, whose events are taken
///    (`b`'s taking of the message returns its credit), and whatever the peer writes back
///    (`b`'s CREDIT record) goes to the hub's `handle_input`.
///
/// Every call the hub gets is one a real adapter and application would make; the peers'
/// work (two records sealed, two opened) is the same per message whatever `n` is.
pub struct HubRouting {
    hub: Node<ChaCha20Rng>,
    peers: Vec<HubPeer>,
    /// The hub's `ConnId`s are dense, from 0: index of the peer of each.
    by_conn: Vec<usize>,
    message: Bytes,
    wire: Vec<u8>,
    random: u64,
    /// Messages go between the first `active` peers only.
    active: usize,
    relayed: u64,
    delivered: u64,
}

impl HubRouting {
    /// A hub with `peers` connected peers (at least 2), keys from `seed`.
    ///
    /// # Panics
    /// If a peer fails to connect.
    pub fn new(seed: u64, peers: usize) -> Self {
        assert!(peers >= 2, "routing needs two peers");
        let mut rng = seeded_rng(seed);
        let hub_key = Keypair::generate(&mut rng);
        let hub_id = hub_key.peer_id();
        let mut config = node_config();
        config.listen_addr = Some(SocketAddr::new(node_ip(0xffff, 1), NODE_PORT));
        config.limits.max_inbound = peers;
        let hub = Node::new(HUB_NOW, config, hub_key, seeded_rng(seed ^ 0x5eed))
            .expect("a valid hub config");
        let connection_config = Arc::new(ConnectionConfig::new(vec![ChannelConfig::new(
            NODE_CHANNEL,
        )]));
        let mut info = NodeInfo::new(NETWORK, "switchboard-bench/peer");
        info.channels.push(channel_info());
        let mut routing = HubRouting {
            hub,
            peers: Vec::with_capacity(peers),
            by_conn: Vec::with_capacity(peers),
            message: Bytes::from((0..ROUTE_MESSAGE_LEN).map(|i| i as u8).collect::<Vec<u8>>()),
            wire: Vec::with_capacity(64 * 1024),
            random: seed | 1,
            active: peers,
            relayed: 0,
            delivered: 0,
        };
        for index in 0..peers {
            let key = Keypair::generate(&mut rng);
            let remote = SocketAddr::new(node_ip(index, 2), 40_000);
            let conn = routing
                .hub
                .handle_accepted(HUB_NOW, remote)
                .expect("the hub admits the socket");
            let connection = Connection::dial(
                HUB_NOW,
                Arc::clone(&connection_config),
                &key,
                info.clone(),
                Some(hub_id),
                &mut rng,
            )
            .expect("a valid peer NodeInfo");
            assert_eq!(conn.0 as usize, routing.by_conn.len(), "dense ConnIds");
            routing.by_conn.push(index);
            routing.peers.push(HubPeer {
                connection,
                conn,
                id: key.peer_id(),
            });
            routing.connect(index);
        }
        assert_eq!(routing.hub.peer_counts(), (peers, 0));
        routing
    }

    /// Runs peer `index`'s handshake with the hub to the end.
    fn connect(&mut self, index: usize) {
        let peer = &mut self.peers[index];
        self.wire.clear();
        while peer.connection.poll_transmit(HUB_NOW, &mut self.wire) {}
        self.hub.handle_input(HUB_NOW, peer.conn, &self.wire);
        let (delivered, _) = self.flush::<false>();
        assert_eq!(delivered, 0, "no message while connecting");
        let peer = &self.peers[index];
        assert!(peer.connection.is_established(), "peer {index} connected");
        match self.hub.poll_event(HUB_NOW) {
            Some(NodeEvent::PeerConnected { peer: id, .. }) if id == peer.id => {}
            other => panic!("expected the hub to report peer {index} connected: {other:?}"),
        }
        assert!(self.hub.poll_event(HUB_NOW).is_none());
    }

    /// Hands everything the hub transmits to its peers, takes their events, and hands back
    /// what they answer, until the hub has nothing to transmit. Returns the messages the
    /// peers received and, with `TIMED`, the time spent in the hub's calls.
    fn flush<const TIMED: bool>(&mut self) -> (u64, Duration) {
        let mut delivered = 0;
        let mut hub_time = Duration::ZERO;
        loop {
            self.wire.clear();
            let started = TIMED.then(StdInstant::now);
            let transmitted = self.hub.poll_transmit(HUB_NOW, &mut self.wire);
            if let Some(started) = started {
                hub_time += started.elapsed();
            }
            let Some(conn) = transmitted else {
                return (delivered, hub_time);
            };
            let peer = &mut self.peers[self.by_conn[conn.0 as usize]];
            peer.connection.handle_input(HUB_NOW, &self.wire);
            while let Some(event) = peer.connection.poll_event() {
                match event {
                    Event::Message { message, .. } => {
                        black_box(message);
                        delivered += 1;
                    }
                    Event::Connected { .. } => {}
                    other => panic!("unexpected event at a peer: {other:?}"),
                }
            }
            self.wire.clear();
            while peer.connection.poll_transmit(HUB_NOW, &mut self.wire) {}
            if !self.wire.is_empty() {
                let started = TIMED.then(StdInstant::now);
                self.hub.handle_input(HUB_NOW, conn, &self.wire);
                if let Some(started) = started {
                    hub_time += started.elapsed();
                }
            }
        }
    }

    /// Connected peers.
    pub fn peers(&self) -> usize {
        self.peers.len()
    }

    /// Routes between the first `active` peers only (2 up to all; all at first), the others
    /// staying connected and idle: with few active among many, the connections' own state
    /// stays in the CPU caches and what grows with the peers is the node's tables alone.
    ///
    /// # Panics
    /// If `active` is below 2 or above the number of peers.
    pub fn set_active_peers(&mut self, active: usize) {
        assert!((2..=self.peers.len()).contains(&active));
        self.active = active;
    }

    /// A xorshift step: cheap, and the same cost whatever the number of peers.
    fn next_random(&mut self) -> u64 {
        let mut x = self.random;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.random = x;
        x
    }

    /// One message relayed by the hub from a random peer to another random peer (see the
    /// [type documentation](HubRouting)).
    pub fn relay(&mut self) {
        self.route::<false>(false);
    }

    /// As [`HubRouting::relay`], and returns the time spent inside the hub's own calls
    /// (`handle_input`, `poll_event`, `send`, `poll_transmit`), each timed with
    /// `std::time::Instant` (some 20–50 ns per reading on Linux, about eight readings per
    /// message): the node's share of a routed message, without the peers' work.
    pub fn relay_timing_hub(&mut self) -> Duration {
        self.route::<true>(false)
    }

    /// One relayed message; with `TIMED`, returns the time spent in the hub's calls.
    fn route<const TIMED: bool>(&mut self, check: bool) -> Duration {
        let n = self.active as u64;
        let random = self.next_random();
        let from = (random % n) as usize;
        let to = ((from as u64 + 1 + (random >> 32) % (n - 1)) % n) as usize;
        let sender = &mut self.peers[from];
        sender
            .connection
            .send(NODE_CHANNEL, self.message.clone())
            .expect("the peer's queue has room");
        self.wire.clear();
        while sender.connection.poll_transmit(HUB_NOW, &mut self.wire) {}
        let started = TIMED.then(StdInstant::now);
        self.hub
            .handle_input(HUB_NOW, sender.conn, black_box(&self.wire));
        let Some(NodeEvent::Message {
            peer,
            channel,
            message,
        }) = self.hub.poll_event(HUB_NOW)
        else {
            panic!("the hub did not hand over the message");
        };
        if check {
            assert_eq!(peer, sender.id, "the message comes from its sender");
            assert_eq!(message, self.message, "the message arrives intact");
        }
        self.hub
            .send(HUB_NOW, &self.peers[to].id, channel, message)
            .expect("the hub's queue to the receiver has room");
        let mut hub_time = started.map_or(Duration::ZERO, |started| started.elapsed());
        let (delivered, flush_time) = self.flush::<TIMED>();
        hub_time += flush_time;
        if check {
            assert_eq!(delivered, 1, "the receiver got the message");
            assert!(self.hub.poll_event(HUB_NOW).is_none(), "no other event");
        }
        self.relayed += 1;
        self.delivered += delivered;
        hub_time
    }

    /// Checks, outside any timed loop, that relayed messages arrive intact, once each, from
    /// their sender, that flow control keeps up (every credit comes back, so queues never
    /// fill), and that every peer stays connected.
    pub fn verify(&mut self) {
        let rounds = (2 * self.peers.len()).max(1000);
        for _ in 0..rounds {
            self.route::<false>(true);
        }
        assert_eq!(self.delivered, self.relayed);
        assert_eq!(self.hub.peer_counts(), (self.peers.len(), 0));
        assert_eq!(self.hub.connection_count(), self.peers.len());
        for peer in &self.peers {
            assert!(peer.connection.is_established());
            let stats = peer.connection.channel_stats();
            assert_eq!(
                stats[0].unconfirmed_messages, 0,
                "the hub took every message"
            );
            assert_eq!(stats[0].queued_messages, 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_connect_and_stay_connected() {
        let mut net = NodeNet::new(1, 6, 16);
        let mut config = node_config();
        config.limits.max_inbound = 8;
        let hub = net.add_node(config);
        let clients: Vec<usize> = (0..5).map(|_| net.add_node(node_config())).collect();
        for &client in &clients {
            net.dial(client, hub);
        }
        net.run();
        net.advance(Duration::from_secs(25), Duration::from_millis(500));
        net.check_no_growth();
        assert_eq!(net.node(hub).peer_counts(), (5, 0));
        for &client in &clients {
            assert_eq!(net.node(client).peer_counts(), (0, 1));
        }
        let events = net.events();
        assert_eq!(events.connected, 10);
        assert_eq!(events.disconnected + events.dial_failed + events.slow, 0);
    }

    #[test]
    fn hub_routes_messages() {
        let mut routing = HubRouting::new(3, 12);
        routing.verify();
        for _ in 0..100 {
            routing.relay();
            assert!(routing.relay_timing_hub() > Duration::ZERO);
        }
        routing.verify();
    }
}
