//! The node: the switch that owns every connection and the policies across them.
//!
//! # The contract
//!
//! The node is sans-IO. The adapter feeds it socket events and time; the application calls
//! it; both drain its outputs.
//!
//! - **Getters**: [`Node::peers`], [`Node::peer_info`], [`Node::node_info`],
//!   [`Node::connectedness`].
//! - **Input** (`handle_*`, all taking `now`): [`Node::handle_accepted`],
//!   [`Node::handle_connected`], [`Node::handle_connect_failed`], [`Node::handle_input`],
//!   [`Node::handle_closed`], [`Node::handle_write_blocked`], [`Node::handle_writable`],
//!   [`Node::handle_timeout`].
//! - **Application** (mutators): [`Node::dial`], [`Node::send`], [`Node::broadcast`],
//!   [`Node::disconnect`], [`Node::ban_peer`], [`Node::ban_ip`],
//!   [`Node::add_persistent_peer`], [`Node::open_query`] (a query connection, outside the
//!   peer slots: see [`query`]).
//! - **Output**: [`Stack::poll_output`] after every input, until it returns
//!   [`Output::Timeout`] (see [the driving contract](Stack#the-driving-contract)). It is
//!   made of the node's own `poll_*`, which it calls in the one right order:
//!   [`Node::poll_event`] (for the application), [`Node::poll_action`] (dial or close a
//!   socket), [`Node::poll_transmit`] (bytes for one connection, only for connections whose
//!   socket is not blocked, so a slow socket backs up into the channel queues), then
//!   [`Node::poll_timeout`] and [`Node::handle_timeout`].
//!
//! A message is taken from its connection only when it leaves as an event: an application
//! that stops taking events ([`Node::pause_events`]) stops granting credit, and its peers'
//! `send`s return `Full`. Flow control reaches end to end.
//!
//! # One connection per peer
//!
//! When a connection to a peer completes its handshake while another exists, a rule both
//! ends compute identically decides: a connection the application already sees is kept;
//! between two it does not see yet, the one dialed by the lower `PeerId` is kept. The other
//! is closed with `AlreadyConnected` and no event. The rule holds across kinds: a peer
//! connection and a query connection to one peer are duplicates too. Since a dialer reports a connection only on
//! the listener's first record (`PROTOCOL.md` §6.6), the listener's refusal is never seen by
//! the dialer's application.

mod admission;
mod commands;
mod config;
mod conn_table;
mod dial_report;
mod dialing;
mod event;
mod eviction;
mod given_up;
mod handshake_admission;
mod input;
mod lifecycle;
mod offer;
mod output;
mod peer_info;
mod primitives;
mod query;
mod shutdown;
mod stack;
#[cfg(test)]
mod tests;

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::net::SocketAddr;
use core::time::Duration;

use foldhash::fast::FixedState;
use hashbrown::HashMap;
use rand_core::CryptoRng;

pub use config::NodeConfig;
use conn_table::ConnTable;
pub use dial_report::DialReport;
pub use event::{Action, ConnId, Connectedness, DialError, NodeEvent};
pub use eviction::EvictionConfig;
use given_up::GivenUp;
pub use given_up::MAX_GIVEN_UP;
use handshake_admission::PendingInbound;
pub use peer_info::PeerInfo;
pub use primitives::{NodeView, OutboundSlots};
pub use query::QueryError;
use query::{Queries, Query};
pub use shutdown::{PeerReport, ShutdownReport};
pub use stack::{Output, Stack};

use crate::ban_list::BanList;
use crate::channel::ChannelId;
use crate::connection::{Connection, ConnectionConfig};
use crate::dial_queue::DialQueue;
use crate::identity::{Keypair, PeerId};
use crate::net_address::NetAddress;
use crate::node_info::{NodeInfo, NodeInfoError};
use crate::peer_set::{Direction, PeerSet, Slot};
use crate::time::Instant;

/// How often expired bans are forgotten.
const BAN_SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// Where a connection stands, from the node's point of view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Outbound, waiting for the adapter's TCP connect.
    Connecting,
    /// In the handshake; counted as pending by the peer set.
    Handshaking,
    /// Seen by the application.
    Connected,
    /// Refused or ended; draining its last bytes, invisible.
    Dropped,
}

struct Entry {
    connection: Connection,
    direction: Direction,
    remote: SocketAddr,
    /// The address dialed, for outbound connections.
    dialed: Option<NetAddress>,
    phase: Phase,
    /// The peer, once the handshake authenticated it.
    peer: Option<PeerId>,
    info: Option<Box<NodeInfo>>,
    /// The deadline registered in `Node::timers`.
    timer: Option<Instant>,
    /// Since when broadcasts to this peer found its queue full.
    full_since: Option<Instant>,
    /// How the peer set counts it, once admitted.
    slot: Option<Slot>,
    /// When the application last took a message of this peer's: what inbound eviction
    /// protects as useful.
    last_useful: Option<Instant>,
    in_transmit_queue: bool,
    in_read_queue: bool,
    /// Close once nothing sent on this channel awaits writing or confirmation
    /// ([`Node::disconnect_when_confirmed`]).
    close_when_confirmed: Option<ChannelId>,
    /// Channels on which a `send` returned `Full` and no `Writable` was reported since,
    /// with the largest message refused: room means room for it.
    full_channels: Vec<(ChannelId, usize)>,
    /// A query connection's own state ([`query`]); `None` for a peer connection.
    query: Option<Box<Query>>,
}

/// The switch. See the [module documentation](self).
pub struct Node<R> {
    config: NodeConfig,
    connection_config: Arc<ConnectionConfig>,
    keypair: Keypair,
    local_id: PeerId,
    info: NodeInfo,
    rng: R,
    conns: ConnTable<Entry>,
    /// Connected peers (seen by the application), hashed with a key drawn from the node's
    /// RNG so that peers cannot choose identities that collide.
    peers: HashMap<PeerId, ConnId, FixedState>,
    /// Connections whose peer is known but not (yet) connected.
    candidates: BTreeMap<PeerId, BTreeSet<ConnId>>,
    peer_set: PeerSet,
    /// Inbound connections in the handshake, by subnet (see [`handshake_admission`]).
    handshakes: PendingInbound,
    /// Keys the subnet hash of inbound eviction; drawn from the RNG at the first eviction.
    eviction_key: Option<u64>,
    dials: DialQueue,
    /// The connection of each dial in flight.
    dialing: BTreeMap<SocketAddr, ConnId>,
    given_up: GivenUp,
    timers: BTreeSet<(Instant, ConnId)>,
    next_ban_sweep: Instant,
    /// [`Node::shutdown`] was called: no dial starts, no socket is admitted.
    shutting_down: bool,
    /// [`Node::pause_events`]: the application takes no events for now.
    events_paused: bool,
    /// While shutting down: when peers still flushing are closed all the same.
    flush_deadline: Option<Instant>,
    /// What the shutdown handed back, peer by peer ([`Node::take_shutdown_report`]).
    shutdown_report: Option<ShutdownReport>,
    slow: BTreeSet<(Instant, ConnId)>,
    transmit_queue: VecDeque<ConnId>,
    read_queue: VecDeque<ConnId>,
    actions: VecDeque<Action>,
    events: VecDeque<NodeEvent>,
    /// Probes queued or in flight ([`Node::probe`]): they hold no outbound slot and are
    /// never admitted.
    probes: BTreeSet<SocketAddr>,
    /// What became of each dial, for the layer above; `None` until it asks
    /// ([`Node::report_dials`]).
    dial_reports: Option<VecDeque<DialReport>>,
    /// Query connections, open and opening ([`Node::open_query`]).
    queries: Queries,
}

impl<R: CryptoRng> Node<R> {
    /// A node with identity `keypair`, drawing all its randomness (ephemeral keys, jitter)
    /// from `rng`: seed it, and the node is deterministic.
    pub fn new(
        now: Instant,
        mut config: NodeConfig,
        keypair: Keypair,
        mut rng: R,
    ) -> Result<Self, NodeInfoError> {
        let mut info = NodeInfo::new(config.network.clone(), config.agent.clone());
        info.listen_addr = config.listen_addr;
        info.channels = config.channels.clone();
        info.encode()?;
        let mut peer_set = PeerSet::new(
            config.limits,
            config.allowed_networks.clone(),
            BanList::new(config.max_bans),
        );
        // The peer set is the one record of who is trusted, private and persistent from
        // here on: the config's lists are moved into it, not copied.
        for peer in core::mem::take(&mut config.trusted_peers) {
            peer_set.add_trusted(peer);
        }
        for peer in core::mem::take(&mut config.private_peers) {
            peer_set.add_private(peer);
        }
        let persistent_peers = core::mem::take(&mut config.persistent_peers);
        let local_id = keypair.peer_id();
        let mut node = Node {
            connection_config: Arc::new(config.connection.clone()),
            dials: DialQueue::new(config.dial),
            config,
            keypair,
            local_id,
            info,
            conns: ConnTable::new(),
            peers: HashMap::with_hasher(FixedState::with_seed(rng.next_u64())),
            rng,
            candidates: BTreeMap::new(),
            peer_set,
            handshakes: PendingInbound::default(),
            eviction_key: None,
            dialing: BTreeMap::new(),
            given_up: GivenUp::default(),
            timers: BTreeSet::new(),
            next_ban_sweep: now,
            shutting_down: false,
            events_paused: false,
            flush_deadline: None,
            shutdown_report: None,
            slow: BTreeSet::new(),
            transmit_queue: VecDeque::new(),
            read_queue: VecDeque::new(),
            actions: VecDeque::new(),
            events: VecDeque::new(),
            probes: BTreeSet::new(),
            dial_reports: None,
            queries: Queries::default(),
        };
        for addr in persistent_peers {
            node.queue_persistent(now, addr);
        }
        Ok(node)
    }

    /// This node's identity.
    pub fn peer_id(&self) -> PeerId {
        self.local_id
    }

    /// What this node tells its peers.
    pub fn node_info(&self) -> &NodeInfo {
        &self.info
    }

    /// The connected peers, in no particular (but deterministic) order.
    pub fn peers(&self) -> impl Iterator<Item = PeerId> + '_ {
        self.peers.keys().copied()
    }

    /// How many peers are connected, inbound and outbound.
    pub fn peer_counts(&self) -> (usize, usize) {
        self.peer_set.counts()
    }

    /// Bans in force at `now`: peers, then IP addresses ([`Node::ban_peer`],
    /// [`Node::ban_ip`]), for an operator's view of the node.
    pub fn ban_counts(&self, now: Instant) -> (usize, usize) {
        self.peer_set.bans().counts(now)
    }

    /// The bans held: what a checker bounds ([`BanList::len`] never above
    /// [`NodeConfig::max_bans`]).
    pub fn bans(&self) -> &BanList {
        self.peer_set.bans()
    }

    /// The most inbound handshakes any one subnet holds at once: never above
    /// [`Limits::max_pending_per_subnet`](crate::peer_set::Limits::max_pending_per_subnet),
    /// which a checker may hold it to.
    pub fn largest_pending_share(&self) -> usize {
        self.handshakes.largest_share()
    }

    /// Connections open or opening, whatever their phase.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Whether [`Node::poll_event`] may still return something: events queued, or
    /// connections holding messages the application has not taken. (It may answer `true`
    /// and then return `None`: a connection's messages can be gone with it.) An adapter
    /// shutting down drains events until this is `false`, so that whatever sits on the node
    /// (a router's protocols) hears of every disconnection.
    pub fn has_events(&self) -> bool {
        !self.events.is_empty() || !self.read_queue.is_empty()
    }

    /// Stops (`true`) or resumes (`false`) handing events to [`Stack::poll_output`]: for an
    /// application that cannot take them for a while, such as one whose channel to another
    /// thread is full. Messages stay on their connections meanwhile, so their senders get
    /// no credit and their `send`s return `Full` (flow control reaches end to end); sockets,
    /// timers and bytes keep flowing, and [`Output::Timeout`] no longer counts the events
    /// waiting.
    pub fn pause_events(&mut self, paused: bool) {
        self.events_paused = paused;
    }

    /// Grants no more credit on any connection ([`Connection::withhold_credit`]): what the
    /// application takes from now on is not confirmed to its senders, who get it back as
    /// unconfirmed. For an adapter shutting down on behalf of an application that can no
    /// longer read (a runtime whose handle was consumed), so that draining the node's
    /// events confirms nothing nobody will see.
    pub fn withhold_credit(&mut self) {
        let conns: Vec<ConnId> = self.conns.ids().collect();
        for conn in conns {
            if let Some(entry) = self.conns.get_mut(conn) {
                entry.connection.withhold_credit();
            }
        }
    }

    /// Whether events are paused ([`Node::pause_events`]).
    pub fn events_paused(&self) -> bool {
        self.events_paused
    }

    /// What the node knows of a connected peer.
    pub fn peer_info(&self, peer: &PeerId) -> Option<PeerInfo> {
        let entry = self.conns.get(*self.peers.get(peer)?)?;
        let info = entry.info.clone()?;
        let stats = entry.connection.stats();
        Some(PeerInfo {
            peer: *peer,
            remote_addr: entry.remote,
            listen_addr: info.listen_addr,
            direction: entry.direction,
            persistent: self.peer_set.is_persistent(peer),
            trusted: self.peer_set.is_trusted(peer),
            private: self.peer_set.is_private(peer),
            info,
            rtt: stats.rtt,
            stats,
            channels: entry.connection.channel_stats(),
        })
    }

    /// How reachable `peer` is. A dial under way outweighs one given up before it: the
    /// application dialed again. Linear in the dials queued, which carry no index by peer.
    pub fn connectedness(&self, now: Instant, peer: &PeerId) -> Connectedness {
        if self.peers.contains_key(peer) {
            Connectedness::Connected
        } else if self.peer_set.bans().is_peer_banned(now, peer) {
            Connectedness::CannotConnect
        } else if self.is_connecting(peer) {
            Connectedness::CanConnect
        } else if self.given_up.contains(peer) {
            Connectedness::CannotConnect
        } else {
            Connectedness::NotConnected
        }
    }
}
