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
//!   [`Node::add_persistent_peer`].
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
//! is closed with `AlreadyConnected` and no event. Since a dialer reports a connection only on
//! the listener's first record (`PROTOCOL.md` §6.6), the listener's refusal is never seen by
//! the dialer's application.

mod config;
mod conn_table;
mod discovery;
mod event;
mod eviction;
mod given_up;
mod handshake_admission;
mod offer;
mod peer_info;
mod shutdown;
mod stack;
#[cfg(test)]
mod tests;

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::net::{IpAddr, SocketAddr};
use core::time::Duration;

use bytes::Bytes;
use foldhash::fast::FixedState;
use hashbrown::HashMap;
use rand_core::CryptoRng;

pub use config::NodeConfig;
use conn_table::ConnTable;
pub use discovery::DiscoveryConfig;
pub use event::{Action, ConnId, Connectedness, DialError, NodeEvent};
pub use eviction::EvictionConfig;
use given_up::GivenUp;
pub use given_up::MAX_GIVEN_UP;
use handshake_admission::PendingInbound;
pub use peer_info::PeerInfo;
pub use shutdown::{PeerReport, ShutdownReport};
pub use stack::{Output, Stack};

use crate::addr_book::AddrBook;
use crate::ban_list::{BanList, Banned};
use crate::channel::{ChannelId, RESERVED_CHANNELS_START};
use crate::connection::{Closed, ClosedBy, Connection, ConnectionConfig, Event};
use crate::dial_queue::{DialQueue, Retry};
use crate::disconnect::DisconnectReason;
use crate::identity::{Keypair, PeerId};
use crate::mux::{ReturnedMessage, SendError};
use crate::net_address::NetAddress;
use crate::node_info::{NodeInfo, NodeInfoError};
use crate::peer_set::{Direction, PeerSet, Refused, Slot, subnet};
use crate::pex::{PEX_CHANNEL, PEX_PROTOCOL, Pex};
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
    /// Seed mode: close once the PEX answer queued for the peer is confirmed.
    close_when_answered: bool,
    /// Channels on which a `send` returned `Full` and no `Writable` was reported since,
    /// with the largest message refused: room means room for it.
    full_channels: Vec<(ChannelId, usize)>,
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
    persistent: BTreeMap<SocketAddr, NetAddress>,
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
    book: AddrBook,
    pex: Pex,
    next_discovery: Instant,
    next_seed_dial: Instant,
    /// When the next feeler may be dialed (see [`discovery`]).
    next_feeler: Instant,
    /// Feelers queued or in flight (see [`discovery`]): the periodic one and those testing
    /// a tried-table occupant ([`AddrBook::poll_collision`]). They hold no outbound slot and
    /// are never admitted.
    feelers: BTreeSet<SocketAddr>,
}

impl<R: CryptoRng> Node<R> {
    /// A node with identity `keypair`, drawing all its randomness (ephemeral keys, jitter)
    /// from `rng`: seed it, and the node is deterministic.
    pub fn new(
        now: Instant,
        config: NodeConfig,
        keypair: Keypair,
        mut rng: R,
    ) -> Result<Self, NodeInfoError> {
        let mut config = config;
        if config.discovery.enabled && !config.channels.iter().any(|c| c.id == PEX_CHANNEL) {
            config.add_channel(PEX_PROTOCOL, 1, DiscoveryConfig::pex_channel());
        }
        let mut book_key = [0u8; 32];
        rng.fill_bytes(&mut book_key);
        let book = AddrBook::new(book_key, config.discovery.addr_book);
        let pex = Pex::new(config.discovery.pex);
        let mut info = NodeInfo::new(config.network.clone(), config.agent.clone());
        info.listen_addr = config.listen_addr;
        info.channels = config.channels.clone();
        info.encode()?;
        let mut peer_set = PeerSet::new(
            config.limits,
            config.allowed_networks.clone(),
            BanList::new(config.max_bans),
        );
        for peer in &config.trusted_peers {
            peer_set.add_trusted(*peer);
        }
        for peer in &config.private_peers {
            peer_set.add_private(*peer);
        }
        let local_id = keypair.peer_id();
        let next_feeler = now.saturating_add(config.discovery.feeler_interval.unwrap_or_default());
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
            persistent: BTreeMap::new(),
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
            book,
            pex,
            next_discovery: now,
            next_seed_dial: now,
            next_feeler,
            feelers: BTreeSet::new(),
        };
        for addr in node.config.persistent_peers.clone() {
            node.queue_persistent(now, addr);
        }
        Ok(node)
    }

    // ----- getters -----

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

    /// Whether a dial to an address carrying `peer`'s identity is queued or in flight, or a
    /// handshake with `peer` is under way — feelers aside, which never connect anyone.
    fn is_connecting(&self, peer: &PeerId) -> bool {
        let is_feeler = |addr: &NetAddress| self.feelers.contains(&addr.socket_addr());
        let handshaking = self.candidates.get(peer).is_some_and(|conns| {
            conns.iter().any(|conn| {
                self.conns
                    .get(*conn)
                    .is_some_and(|entry| !entry.dialed.as_ref().is_some_and(is_feeler))
            })
        });
        handshaking
            || self
                .dials
                .addresses()
                .any(|addr| addr.peer_id() == Some(*peer) && !is_feeler(addr))
    }

    // ----- handle_* -----

    /// The adapter accepted a socket from `remote`. Refused at once (close the socket) when
    /// the address is filtered or banned, or a per-address or pending limit is hit — or, a
    /// bug, when the connection cannot be created ([`Refused::Internal`]). With the pending
    /// handshakes at their limit, the oldest handshake of the subnet holding the most is
    /// dropped for it instead, if that subnet holds more than its own
    /// ([`Limits::max_pending_handshakes`](crate::peer_set::Limits::max_pending_handshakes)).
    pub fn handle_accepted(&mut self, now: Instant, remote: SocketAddr) -> Result<ConnId, Refused> {
        if self.shutting_down {
            return Err(Refused::ShuttingDown);
        }
        let group = subnet(remote.ip());
        let admitted = self.peer_set.admit_inbound_socket(now, remote.ip());
        let over_share =
            self.handshakes.count(group) >= self.peer_set.limits().max_pending_per_subnet;
        match admitted {
            Ok(()) if over_share => {
                self.peer_set
                    .release(Direction::Inbound, None, Some(remote.ip()));
                return Err(Refused::PendingPerSubnet);
            }
            Ok(()) => {}
            Err(Refused::PendingHandshakes) if over_share => {
                return Err(Refused::PendingPerSubnet);
            }
            Err(Refused::PendingHandshakes) => {
                let victim = self
                    .handshakes
                    .victim(group)
                    .ok_or(Refused::PendingHandshakes)?;
                self.close_connection(
                    now,
                    victim,
                    DisconnectReason::TooManyPeers,
                    "pending handshakes full: dropped, its subnet holding the most",
                );
                self.peer_set.admit_inbound_socket(now, remote.ip())?;
            }
            Err(refused) => return Err(refused),
        }
        let connection = Connection::accept(
            now,
            self.connection_config.clone(),
            &self.keypair,
            self.info.clone(),
            &mut self.rng,
        )
        .ok();
        let conn = connection.and_then(|connection| {
            self.insert(
                connection,
                Direction::Inbound,
                remote,
                None,
                Phase::Handshaking,
            )
        });
        let Some(conn) = conn else {
            // Unreachable in practice (our own NodeInfo was checked when the node was built,
            // and 2^32 connection slots are not open at once), but never leak the slot, nor
            // blame a limit that was not reached.
            self.peer_set
                .release(Direction::Inbound, None, Some(remote.ip()));
            return Err(Refused::Internal);
        };
        self.handshakes.insert(conn, group, now);
        self.after(now, conn);
        Ok(conn)
    }

    /// The TCP connect of an outbound `conn` completed.
    pub fn handle_connected(&mut self, now: Instant, conn: ConnId) {
        if let Some(entry) = self.conns.get_mut(conn)
            && entry.phase == Phase::Connecting
        {
            entry.phase = Phase::Handshaking;
        }
        self.after(now, conn);
    }

    /// The TCP connect of an outbound `conn` failed; `error` is what the OS said (an
    /// `io::Error`'s text, such as `Connection refused (os error 111)`). Its dial fails with
    /// `NetworkError` and the detail `connect failed: {error}`, which tells a refused or
    /// unreachable address from a peer that hung up mid-handshake, as
    /// [`Node::handle_closed`] cannot. For a connection past its connect it is
    /// `handle_closed`.
    pub fn handle_connect_failed(&mut self, now: Instant, conn: ConnId, error: &str) {
        let Some(entry) = self.conns.get_mut(conn) else {
            return;
        };
        if entry.phase != Phase::Connecting {
            return self.handle_closed(now, conn);
        }
        let detail = format!("connect failed: {error}");
        entry
            .connection
            .close(now, DisconnectReason::NetworkError, &detail);
        self.after(now, conn);
    }

    /// Bytes read from `conn`'s socket.
    pub fn handle_input(&mut self, now: Instant, conn: ConnId, input: &[u8]) {
        let Some(entry) = self.conns.get_mut(conn) else {
            return;
        };
        if entry.phase == Phase::Connecting {
            entry.phase = Phase::Handshaking;
        }
        entry.connection.handle_input(now, input);
        self.after(now, conn);
    }

    /// `conn`'s socket closed or failed (EOF, reset, write error). A connect that failed is
    /// better reported by [`Node::handle_connect_failed`], which says why.
    pub fn handle_closed(&mut self, now: Instant, conn: ConnId) {
        if let Some(entry) = self.conns.get_mut(conn) {
            entry.connection.handle_closed();
        }
        self.after(now, conn);
    }

    /// `conn`'s socket would block: stop handing out its bytes until
    /// [`Node::handle_writable`]. A connection left blocked past
    /// [`ConnectionConfig::write_stall_timeout`] ends with `WriteStalled`.
    pub fn handle_write_blocked(&mut self, now: Instant, conn: ConnId) {
        if let Some(entry) = self.conns.get_mut(conn) {
            entry.connection.handle_write_blocked(now);
        }
        // Re-arms the connection's timer for the write-stall deadline.
        self.settle(now, conn);
    }

    /// `conn`'s socket can take bytes again.
    pub fn handle_writable(&mut self, now: Instant, conn: ConnId) {
        if let Some(entry) = self.conns.get_mut(conn) {
            entry.connection.handle_writable();
        }
        self.after(now, conn);
    }

    /// Fires every timer due by `now`; a call before any deadline does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(deadline, conn)) = self.timers.first() {
            if deadline > now {
                break;
            }
            self.timers.pop_first();
            if let Some(entry) = self.conns.get_mut(conn) {
                entry.timer = None;
                entry.connection.handle_timeout(now);
            }
            self.after(now, conn);
        }
        while let Some(&(since, conn)) = self.slow.first() {
            if since.saturating_add(self.config.slow_peer_timeout) > now {
                break;
            }
            self.slow.pop_first();
            let Some(entry) = self.conns.get_mut(conn) else {
                continue;
            };
            if entry.full_since != Some(since) || entry.phase != Phase::Connected {
                continue;
            }
            entry.full_since = None;
            if let Some(peer) = entry.peer {
                self.events.push_back(NodeEvent::SlowPeer { peer });
            }
            entry.connection.close(
                now,
                DisconnectReason::Timeout,
                "too slow: send queue full past the slow-peer timeout",
            );
            self.after(now, conn);
        }
        for (addr, retry) in self.dials.handle_timeout(now, &mut self.rng) {
            // A dial that outlived its timeout: report the failure (a feeler's cancels the
            // retry just queued, before closing can start it), then close its socket.
            let conn = self.dialing.remove(&addr.socket_addr());
            self.report_dial_failure(
                now,
                addr,
                DisconnectReason::Timeout,
                String::from("dial timed out"),
                retry,
            );
            if let Some(conn) = conn
                && let Some(entry) = self.conns.get_mut(conn)
            {
                entry.dialed = None;
                entry
                    .connection
                    .close(now, DisconnectReason::Timeout, "dial timed out");
                self.after(now, conn);
            }
        }
        if self.flush_deadline.is_some_and(|deadline| deadline <= now) {
            self.flush_deadline = None;
            let conns: Vec<ConnId> = self.conns.ids().collect();
            for conn in conns {
                self.close_connection(now, conn, DisconnectReason::Quitting, "shutting down");
            }
        }
        // Bans are checked against their expiry whenever consulted; forgetting expired ones
        // only frees memory, so a sweep a minute keeps timers O(log n) with many bans.
        if now >= self.next_ban_sweep {
            self.peer_set.bans_mut().expire(now);
            self.next_ban_sweep = now.saturating_add(BAN_SWEEP_INTERVAL);
        }
        self.discovery_timeout(now);
        self.start_dials(now);
    }

    // ----- application -----

    /// Queues a dial to `addr` (deduplicated, paced by the dial queue).
    pub fn dial(&mut self, now: Instant, addr: NetAddress) -> Result<(), DialError> {
        if self.shutting_down {
            return Err(DialError::ShuttingDown);
        }
        self.check_dial(now, &addr)?;
        let persistent = self.persistent.contains_key(&addr.socket_addr());
        self.queue_dial(now, addr, persistent);
        self.start_dials(now);
        Ok(())
    }

    fn check_dial(&self, now: Instant, addr: &NetAddress) -> Result<(), DialError> {
        if let Some(peer) = addr.peer_id() {
            if peer == self.local_id {
                return Err(DialError::SelfDial);
            }
            if self.peers.contains_key(&peer) {
                return Err(DialError::AlreadyConnected);
            }
            if self.peer_set.bans().is_peer_banned(now, &peer) {
                return Err(DialError::Banned);
            }
        }
        if self
            .peer_set
            .bans()
            .is_ip_banned(now, addr.socket_addr().ip())
        {
            return Err(DialError::Banned);
        }
        Ok(())
    }

    /// Keeps `addr` connected: dialed now and redialed with backoff whenever its connection
    /// ends, exempt from the outbound cap.
    pub fn add_persistent_peer(&mut self, now: Instant, addr: NetAddress) {
        self.queue_persistent(now, addr);
        self.start_dials(now);
    }

    /// Records `addr` as persistent and queues its dial (unless its peer is connected),
    /// without starting it: [`Node::new`] leaves its persistent peers' dials to the first
    /// round of timers, so protocols registered on the fresh node are offered to them.
    fn queue_persistent(&mut self, now: Instant, addr: NetAddress) {
        self.persistent.insert(addr.socket_addr(), addr);
        if let Some(peer) = addr.peer_id() {
            self.peer_set.add_persistent(peer);
            if self.peers.contains_key(&peer) {
                return;
            }
        }
        self.queue_dial(now, addr, true);
    }

    /// Queues a dial that is not a feeler — turning a feeler to the same address, queued or
    /// in flight, into this dial: its connection is kept, its failure reported.
    pub(super) fn queue_dial(&mut self, due: Instant, addr: NetAddress, persistent: bool) {
        self.feelers.remove(&addr.socket_addr());
        self.dials.push(due, addr, persistent);
    }

    /// Queues a feeler to `addr`, unless a dial to it is queued already: that one is brought
    /// forward and stays what it was.
    pub(super) fn queue_feeler(&mut self, now: Instant, addr: NetAddress) {
        if self.dials.push(now, addr, false) {
            self.feelers.insert(addr.socket_addr());
        }
    }

    /// Drops `addr` from the dial queue, feeler or not.
    fn forget_dial(&mut self, addr: SocketAddr) {
        self.feelers.remove(&addr);
        self.dials.remove(addr);
    }

    /// Dials in flight that hold an outbound slot: all but feelers.
    fn outbound_dials(&self) -> usize {
        self.dialing
            .keys()
            .filter(|addr| !self.feelers.contains(addr))
            .count()
    }

    /// Queues `message` for `peer` on `channel`; hands it back on error.
    pub fn send(
        &mut self,
        now: Instant,
        peer: &PeerId,
        channel: ChannelId,
        message: Bytes,
    ) -> Result<(), SendError> {
        let Some(&conn) = self.peers.get(peer) else {
            return Err(SendError::NotConnected(message));
        };
        let Some(entry) = self.conns.get_mut(conn) else {
            return Err(SendError::NotConnected(message));
        };
        let sent = entry.connection.send(channel, message);
        if let Err(SendError::Full(refused)) = &sent {
            match entry
                .full_channels
                .iter_mut()
                .find(|(id, _)| *id == channel)
            {
                Some((_, largest)) => *largest = (*largest).max(refused.len()),
                None => entry.full_channels.push((channel, refused.len())),
            }
        }
        self.after(now, conn);
        sent
    }

    /// Queues `message` on `channel` for every connected peer that has the channel open,
    /// without ever blocking: a peer whose queue is full is skipped (and reported slow if it
    /// stays full past the slow-peer timeout). Returns how many peers took it.
    pub fn broadcast(&mut self, now: Instant, channel: ChannelId, message: Bytes) -> usize {
        let conns: Vec<ConnId> = self.peers.values().copied().collect();
        let mut taken = 0usize;
        for conn in conns {
            let Some(entry) = self.conns.get_mut(conn) else {
                continue;
            };
            if !entry.connection.is_channel_open(channel) {
                continue;
            }
            match entry.connection.send(channel, message.clone()) {
                Ok(()) => {
                    taken = taken.saturating_add(1);
                    if let Some(since) = entry.full_since.take() {
                        self.slow.remove(&(since, conn));
                    }
                }
                Err(SendError::Full(_)) => {
                    if entry.full_since.is_none() {
                        entry.full_since = Some(now);
                        self.slow.insert((now, conn));
                    }
                }
                Err(_) => {}
            }
            self.after(now, conn);
        }
        taken
    }

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

    /// Disconnects `peer` with `reason`; its [`NodeEvent::PeerDisconnected`] follows.
    pub fn disconnect(&mut self, now: Instant, peer: &PeerId, reason: DisconnectReason) {
        if let Some(&conn) = self.peers.get(peer) {
            self.close_connection(now, conn, reason, "disconnect requested");
        }
    }

    /// Bans `peer` for `duration`, disconnecting it if connected.
    pub fn ban_peer(&mut self, now: Instant, peer: &PeerId, duration: Duration) {
        self.peer_set
            .bans_mut()
            .ban(Banned::Peer(*peer), now.saturating_add(duration));
        self.disconnect(now, peer, DisconnectReason::Banned);
    }

    /// Bans `ip` for `duration`, disconnecting its peers.
    pub fn ban_ip(&mut self, now: Instant, ip: IpAddr, duration: Duration) {
        self.peer_set
            .bans_mut()
            .ban(Banned::Ip(ip), now.saturating_add(duration));
        let banned: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, conn)| {
                self.conns
                    .get(**conn)
                    .is_some_and(|entry| entry.remote.ip() == ip)
            })
            .map(|(peer, _)| *peer)
            .collect();
        for peer in banned {
            self.disconnect(now, &peer, DisconnectReason::Banned);
        }
    }

    // ----- poll_* -----

    /// The next socket action.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Appends bytes for one connection to `out` and returns which, or `None` when no
    /// writable connection has anything to send. Connections take turns.
    #[must_use = "the bytes appended must be written to the returned connection"]
    pub fn poll_transmit(&mut self, now: Instant, out: &mut Vec<u8>) -> Option<ConnId> {
        while let Some(conn) = self.transmit_queue.pop_front() {
            let Some(entry) = self.conns.get_mut(conn) else {
                continue;
            };
            entry.in_transmit_queue = false;
            if entry.connection.is_write_blocked() || entry.phase == Phase::Connecting {
                continue;
            }
            let wrote = entry.connection.poll_transmit(now, out);
            if wrote {
                entry.in_transmit_queue = true;
                self.transmit_queue.push_back(conn);
            }
            // Not `after`: a connection that had nothing to write leaves the queue until
            // something touches it again.
            self.settle(now, conn);
            if wrote {
                return Some(conn);
            }
        }
        None
    }

    /// The next event for the application. Messages are taken from their connection only
    /// here, which is what returns credit to the sender.
    #[must_use]
    pub fn poll_event(&mut self, now: Instant) -> Option<NodeEvent> {
        loop {
            if let Some(event) = self.events.pop_front() {
                return Some(event);
            }
            let conn = self.read_queue.pop_front()?;
            let Some(entry) = self.conns.get_mut(conn) else {
                continue;
            };
            entry.in_read_queue = false;
            let (Some(peer), Some(Event::Message { .. })) =
                (entry.peer, entry.connection.peek_event())
            else {
                self.after(now, conn);
                continue;
            };
            let Some(Event::Message { channel, message }) = entry.connection.poll_event() else {
                continue;
            };
            if channel < RESERVED_CHANNELS_START {
                // Useful to the application (not to the node's own protocols, such as PEX):
                // what inbound eviction protects.
                entry.last_useful = Some(now);
            }
            self.after(now, conn);
            if channel == PEX_CHANNEL && self.config.discovery.enabled {
                self.handle_pex(now, conn, peer, &message);
                continue;
            }
            return Some(NodeEvent::Message {
                peer,
                channel,
                message,
            });
        }
    }

    /// The earliest deadline at which [`Node::handle_timeout`] must be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let connections = self.timers.first().map(|&(deadline, _)| deadline);
        let slow = self
            .slow
            .first()
            .map(|&(since, _)| since.saturating_add(self.config.slow_peer_timeout));
        // Shutting down, queued dials and discovery wait for nothing: their deadlines would
        // wake the adapter for work that is not done.
        let (dials, discovery) = if self.shutting_down {
            (None, None)
        } else {
            (self.dials.poll_timeout(), self.discovery_deadline())
        };
        let flush = self.flush_deadline.filter(|_| !self.peers.is_empty());
        [connections, slow, dials, discovery, flush]
            .into_iter()
            .flatten()
            .min()
    }

    // ----- internals -----

    fn insert(
        &mut self,
        connection: Connection,
        direction: Direction,
        remote: SocketAddr,
        dialed: Option<NetAddress>,
        phase: Phase,
    ) -> Option<ConnId> {
        self.conns.insert(Entry {
            connection,
            direction,
            remote,
            dialed,
            phase,
            peer: None,
            info: None,
            timer: None,
            full_since: None,
            slot: None,
            last_useful: None,
            in_transmit_queue: false,
            in_read_queue: false,
            close_when_answered: false,
            full_channels: Vec::new(),
        })
    }

    /// Starts the dials that are due, as far as the dial queue allows.
    fn start_dials(&mut self, now: Instant) {
        if self.shutting_down {
            return;
        }
        while let Some(addr) = self.dials.poll_dial(now) {
            if let Err(error) = self.check_dial(now, &addr) {
                self.dials.remove(addr.socket_addr());
                let reason = match error {
                    DialError::SelfDial => DisconnectReason::SelfConnection,
                    DialError::AlreadyConnected => DisconnectReason::AlreadyConnected,
                    DialError::Banned => DisconnectReason::Banned,
                    DialError::ShuttingDown => DisconnectReason::Quitting,
                };
                self.report_dial_failure(now, addr, reason, error.to_string(), Retry::GivenUp);
                continue;
            }
            let persistent = self.persistent.contains_key(&addr.socket_addr())
                || addr
                    .peer_id()
                    .is_some_and(|peer| self.peer_set.is_persistent(&peer));
            let feeler = self.feelers.contains(&addr.socket_addr());
            if !persistent && !feeler && !self.peer_set.has_outbound_slot(self.outbound_dials()) {
                // Refused before dialing: the remote never sees a connection it would lose.
                self.dials.remove(addr.socket_addr());
                let detail = String::from("outbound slots full");
                self.report_dial_failure(
                    now,
                    addr,
                    DisconnectReason::TooManyPeers,
                    detail,
                    Retry::GivenUp,
                );
                continue;
            }
            let ip = addr.socket_addr().ip();
            if let Err(reason) = self.peer_set.admit_outbound_socket(now, ip) {
                self.dials.remove(addr.socket_addr());
                let detail = format!("{reason}: {ip}");
                self.report_dial_failure(now, addr, reason, detail, Retry::GivenUp);
                continue;
            }
            // The attempt counts from here, not from the address's selection: a dial
            // refused above (the slots filled meanwhile) leaves it free to be chosen again,
            // where counting it would shut it out for the book's `reselect_after`.
            self.book.mark_attempt(&addr.socket_addr(), now);
            let connection = Connection::dial(
                now,
                self.connection_config.clone(),
                &self.keypair,
                self.info.clone(),
                addr.peer_id(),
                &mut self.rng,
            );
            let conn = connection.ok().and_then(|connection| {
                self.insert(
                    connection,
                    Direction::Outbound,
                    addr.socket_addr(),
                    Some(addr),
                    Phase::Connecting,
                )
            });
            let Some(conn) = conn else {
                self.peer_set.release(Direction::Outbound, None, None);
                self.forget_dial(addr.socket_addr());
                continue;
            };
            self.dialing.insert(addr.socket_addr(), conn);
            self.actions.push_back(Action::Dial {
                conn,
                addr: addr.socket_addr(),
            });
            self.after(now, conn);
        }
    }

    /// Reports a dial that failed or was given up, the address already out of the dial
    /// queue or queued for its retry — unless it was a feeler, which fails quietly.
    fn report_dial_failure(
        &mut self,
        now: Instant,
        addr: NetAddress,
        reason: DisconnectReason,
        detail: String,
        retry: Retry,
    ) {
        let feeler = self.feelers.contains(&addr.socket_addr());
        self.discovery_dial_failed(now, &addr, reason);
        if feeler {
            // A feeler fails quietly: the book learned of it, nobody retries it.
            self.forget_dial(addr.socket_addr());
            return;
        }
        if retry == Retry::GivenUp
            && let Some(peer) = addr.peer_id()
        {
            self.given_up.insert(peer);
        }
        self.events.push_back(NodeEvent::DialFailed {
            addr,
            reason,
            detail,
            retry,
        });
    }

    /// Closes `conn` (if it is still there) with `reason`, and lets the node see to it.
    fn close_connection(
        &mut self,
        now: Instant,
        conn: ConnId,
        reason: DisconnectReason,
        detail: &str,
    ) {
        if let Some(entry) = self.conns.get_mut(conn) {
            entry.connection.close(now, reason, detail);
            self.after(now, conn);
        }
    }

    /// A dial the shutdown ends: given up with `Quitting`, the address's record in the book
    /// untouched; a feeler ends quietly, as it fails.
    fn report_dial_cancelled(&mut self, addr: NetAddress) {
        if self.feelers.remove(&addr.socket_addr()) {
            return;
        }
        self.events.push_back(NodeEvent::DialFailed {
            addr,
            reason: DisconnectReason::Quitting,
            detail: String::from("shutting down"),
            retry: Retry::GivenUp,
        });
    }

    /// Brings the node up to date with connection `conn` after anything touched it: as
    /// [`Node::settle`], and queues it to transmit.
    fn after(&mut self, now: Instant, conn: ConnId) {
        self.settle(now, conn);
        if let Some(entry) = self.conns.get_mut(conn)
            && !entry.in_transmit_queue
            && entry.phase != Phase::Connecting
        {
            entry.in_transmit_queue = true;
            self.transmit_queue.push_back(conn);
        }
    }

    /// Takes `conn`'s non-message events, queues it for reading, re-arms its timer, and
    /// forgets it once it is closed and drained.
    fn settle(&mut self, now: Instant, conn: ConnId) {
        loop {
            let Some(entry) = self.conns.get_mut(conn) else {
                return;
            };
            if entry.peer.is_none()
                && let Some(peer) = entry.connection.peer()
            {
                entry.peer = Some(peer);
                self.candidates.entry(peer).or_default().insert(conn);
            }
            match entry.connection.peek_event() {
                None => break,
                Some(Event::Message { .. }) => {
                    if entry.phase == Phase::Connected {
                        if !entry.in_read_queue {
                            entry.in_read_queue = true;
                            self.read_queue.push_back(conn);
                        }
                        break;
                    }
                    // A message on a connection the application never saw: discarded, and
                    // (the connection being closed) never confirmed to its sender.
                    let _ = entry.connection.poll_event();
                }
                Some(_) => match entry.connection.poll_event() {
                    Some(Event::Connected { peer, info }) => {
                        self.on_connected(now, conn, peer, info)
                    }
                    Some(Event::Closed(closed)) => self.on_closed(now, conn, *closed),
                    _ => {}
                },
            }
        }
        let Some(entry) = self.conns.get_mut(conn) else {
            return;
        };
        if !entry.full_channels.is_empty()
            && let Some(peer) = entry.peer.filter(|_| entry.phase == Phase::Connected)
        {
            let (connection, events) = (&entry.connection, &mut self.events);
            entry.full_channels.retain(|&(channel, refused)| {
                let room = connection.has_send_room(channel, refused);
                if room {
                    events.push_back(NodeEvent::Writable { peer, channel });
                }
                !room
            });
        }
        if self.flush_deadline.is_some()
            && entry.phase == Phase::Connected
            && entry.connection.is_established()
            && entry.connection.is_flushed()
        {
            entry
                .connection
                .close(now, DisconnectReason::Quitting, "shutting down");
            self.after(now, conn);
            return;
        }
        if entry.close_when_answered && discovery::answer_confirmed(entry) {
            entry.close_when_answered = false;
            entry
                .connection
                .close(now, DisconnectReason::Requested, "seed: addresses sent");
            self.after(now, conn);
            return;
        }
        if entry.connection.is_closed() && entry.connection.peek_event().is_none() {
            self.remove(conn);
            return;
        }
        let deadline = entry.connection.poll_timeout();
        if entry.timer != deadline {
            if let Some(old) = entry.timer {
                self.timers.remove(&(old, conn));
            }
            if let Some(new) = deadline {
                self.timers.insert((new, conn));
            }
            entry.timer = deadline;
        }
    }

    fn remove(&mut self, conn: ConnId) {
        self.handshakes.remove(conn);
        let Some(entry) = self.conns.remove(conn) else {
            return;
        };
        if let Some(deadline) = entry.timer {
            self.timers.remove(&(deadline, conn));
        }
        if let Some(since) = entry.full_since {
            self.slow.remove(&(since, conn));
        }
        self.actions.push_back(Action::Close { conn });
    }

    fn dialer_of(&self, conn: ConnId, peer: PeerId) -> Option<PeerId> {
        let entry = self.conns.get(conn)?;
        Some(match entry.direction {
            Direction::Outbound => self.local_id,
            Direction::Inbound => peer,
        })
    }

    /// A handshake completed: admit the peer, or refuse the connection invisibly — as a
    /// feeler's always is, its purpose served.
    fn on_connected(&mut self, now: Instant, conn: ConnId, peer: PeerId, info: Box<NodeInfo>) {
        self.handshakes.remove(conn);
        let mut feeler = false;
        if let Some(addr) = self.conns.get(conn).and_then(|entry| entry.dialed) {
            feeler = self.feelers.contains(&addr.socket_addr());
            self.discovery_dial_succeeded(now, addr, peer);
        }
        let admission = if feeler {
            Err(DisconnectReason::TooManyPeers)
        } else {
            self.admission(now, conn, peer)
        };
        let Some(entry) = self.conns.get_mut(conn) else {
            return;
        };
        if let Some(set) = self.candidates.get_mut(&peer) {
            set.remove(&conn);
            if set.is_empty() {
                self.candidates.remove(&peer);
            }
        }
        let slot = match admission {
            Ok(slot) => slot,
            Err(reason) => {
                // Not admitted: closed without a `PeerConnected`, its pending slot released.
                entry.phase = Phase::Dropped;
                entry.connection.close(now, reason, reason.as_str());
                let dialed = entry.dialed.take();
                if let Some(addr) = dialed {
                    self.dialing.remove(&addr.socket_addr());
                    self.dials.remove(addr.socket_addr());
                }
                self.peer_set
                    .release(entry.direction, None, inbound_ip(entry));
                // A dial the node was asked for learns why — unless it lost a simultaneous
                // open (its peer is connected: nothing failed) or was a feeler. Normally
                // refused before dialing; here when it took over a feeler in flight with
                // every slot full.
                if let Some(addr) = dialed
                    && !feeler
                    && reason != DisconnectReason::AlreadyConnected
                {
                    let detail = String::from(reason.as_str());
                    self.report_dial_failure(now, addr, reason, detail, Retry::GivenUp);
                } else if entry.direction == Direction::Inbound
                    && reason != DisconnectReason::AlreadyConnected
                {
                    self.events.push_back(NodeEvent::InboundRefused {
                        remote: entry.remote,
                        peer: Some(peer),
                        reason,
                        by: ClosedBy::Local,
                        detail: String::from(reason.as_str()),
                    });
                }
                return;
            }
        };
        entry.phase = Phase::Connected;
        entry.slot = Some(slot);
        entry.info = Some(info.clone());
        if let Some(addr) = entry.dialed {
            self.dialing.remove(&addr.socket_addr());
            self.dials.handle_success(addr.socket_addr());
        }
        let direction = entry.direction;
        self.peers.insert(peer, conn);
        self.given_up.remove(&peer);
        self.events.push_back(NodeEvent::PeerConnected {
            peer,
            info,
            direction,
        });
        self.discovery_connected(now, conn, peer);
    }

    /// Admits `conn` as `peer`'s connection, or says why not; closes the losers of a
    /// simultaneous open as a side effect.
    fn admission(
        &mut self,
        now: Instant,
        conn: ConnId,
        peer: PeerId,
    ) -> Result<Slot, DisconnectReason> {
        if self.peers.contains_key(&peer) {
            return Err(DisconnectReason::AlreadyConnected);
        }
        let lower = self.local_id.min(peer);
        let wins = self.dialer_of(conn, peer) == Some(lower);
        let rivals: Vec<ConnId> = self
            .candidates
            .get(&peer)
            .map(|set| set.iter().copied().filter(|other| *other != conn).collect())
            .unwrap_or_default();
        for rival in rivals {
            let rival_wins = self.dialer_of(rival, peer) == Some(lower);
            if rival_wins && !wins {
                return Err(DisconnectReason::AlreadyConnected);
            }
            // This connection wins (or both were dialed by the same side and it finished
            // first): the rival, not yet seen by anyone, is closed.
            if let Some(entry) = self.conns.get_mut(rival) {
                entry.phase = Phase::Dropped;
                entry.connection.close(
                    now,
                    DisconnectReason::AlreadyConnected,
                    "simultaneous open: lost",
                );
                if let Some(addr) = entry.dialed.take() {
                    self.dialing.remove(&addr.socket_addr());
                    self.feelers.remove(&addr.socket_addr());
                    self.dials.remove(addr.socket_addr());
                }
                self.peer_set
                    .release(entry.direction, None, inbound_ip(entry));
            }
            if let Some(set) = self.candidates.get_mut(&peer) {
                set.remove(&rival);
            }
            self.handshakes.remove(rival);
        }
        if self.peer_set.bans().is_peer_banned(now, &peer) {
            return Err(DisconnectReason::Banned);
        }
        let direction = self
            .conns
            .get(conn)
            .map(|entry| entry.direction)
            .ok_or(DisconnectReason::ProtocolError)?;
        match self.peer_set.admit_peer(now, &peer, direction) {
            Err(DisconnectReason::TooManyPeers)
                if direction == Direction::Inbound && self.config.eviction.enabled =>
            {
                let victim = self
                    .eviction_victim(now)
                    .ok_or(DisconnectReason::TooManyPeers)?;
                self.evict(now, victim);
                self.peer_set.admit_peer(now, &peer, direction)
            }
            admitted => admitted,
        }
    }

    /// The inbound peer to evict for a new one ([`EvictionConfig`]): among the connected
    /// inbound peers holding a counted slot, neither persistent nor trusted.
    fn eviction_victim(&mut self, now: Instant) -> Option<ConnId> {
        let rng = &mut self.rng;
        let key = *self.eviction_key.get_or_insert_with(|| rng.next_u64());
        let candidates = self
            .peers
            .iter()
            .filter(|(peer, _)| {
                !self.peer_set.is_persistent(peer) && !self.peer_set.is_trusted(peer)
            })
            .filter_map(|(_, &conn)| {
                let entry = self.conns.get(conn)?;
                let counted = entry.direction == Direction::Inbound
                    && entry.slot == Some(Slot::Counted)
                    && entry.connection.is_established();
                if !counted {
                    return None;
                }
                let stats = entry.connection.stats();
                Some(eviction::Candidate {
                    conn,
                    subnet: subnet(entry.remote.ip()),
                    connected_at: stats.established_at.unwrap_or(now),
                    rtt: stats.rtt,
                    last_useful: entry.last_useful,
                })
            })
            .collect();
        eviction::select(&self.config.eviction, key, candidates)
    }

    /// Evicts inbound `conn` (a GOAWAY with `Evicted`; its `PeerDisconnected` follows) and
    /// gives its slot back at once, for the new peer to take while it drains.
    fn evict(&mut self, now: Instant, conn: ConnId) {
        if let Some(entry) = self.conns.get_mut(conn)
            && let Some(slot @ Slot::Counted) = entry.slot
        {
            entry.slot = Some(Slot::Released);
            self.peer_set.release(entry.direction, Some(slot), None);
        }
        self.close_connection(
            now,
            conn,
            DisconnectReason::Evicted,
            "inbound slots full: evicted for a new peer",
        );
    }

    /// A connection ended.
    fn on_closed(&mut self, now: Instant, conn: ConnId, closed: Closed) {
        self.handshakes.remove(conn);
        let Some(entry) = self.conns.get_mut(conn) else {
            return;
        };
        let phase = entry.phase;
        entry.phase = Phase::Dropped;
        let peer = entry.peer;
        let direction = entry.direction;
        let ip = inbound_ip(entry);
        let remote = entry.remote;
        let slot = entry.slot;
        let dialed = entry.dialed.take();
        if let Some(peer) = peer
            && let Some(set) = self.candidates.get_mut(&peer)
        {
            set.remove(&conn);
            if set.is_empty() {
                self.candidates.remove(&peer);
            }
        }
        if closed.by == ClosedBy::Local
            && matches!(
                closed.reason,
                DisconnectReason::ProtocolError
                    | DisconnectReason::FlowControl
                    | DisconnectReason::MessageTooLarge
            )
            && let Some(peer) = peer
        {
            let until = now.saturating_add(self.config.violation_ban);
            let bans = self.peer_set.bans_mut();
            bans.ban(Banned::Peer(peer), until);
            if self.config.violation_ban_ip {
                bans.ban(Banned::Ip(remote.ip()), until);
            }
        }
        match phase {
            Phase::Connected => {
                self.peer_set.release(direction, slot, ip);
                if let Some(peer) = peer {
                    self.peers.remove(&peer);
                    self.pex.handle_disconnected(&peer);
                    let mut confirmed_by_channel = closed.outcome.confirmed_by_channel;
                    confirmed_by_channel.retain(|(channel, _)| *channel < RESERVED_CHANNELS_START);
                    let unsent = own_messages(closed.outcome.unsent);
                    let unconfirmed = own_messages(closed.outcome.unconfirmed);
                    let confirmed = confirmed_by_channel
                        .iter()
                        .map(|(_, count)| *count)
                        .fold(0, u64::saturating_add);
                    let event = NodeEvent::PeerDisconnected {
                        peer,
                        reason: closed.reason,
                        by: closed.by,
                        detail: closed.detail,
                        unsent,
                        unconfirmed,
                        confirmed,
                        confirmed_by_channel,
                    };
                    if let Some(report) = self.shutdown_report.as_mut() {
                        report
                            .peers
                            .extend(PeerReport::from_disconnected(event.clone()));
                    }
                    self.events.push_back(event);
                }
                let remote = self.conns.get(conn).map(|entry| entry.remote);
                let persistent = self
                    .persistent
                    .values()
                    .find(|addr| {
                        addr.peer_id().is_some_and(|id| Some(id) == peer)
                            || Some(addr.socket_addr()) == remote
                    })
                    .copied();
                if let Some(addr) = persistent {
                    let due = now.saturating_add(self.config.dial.backoff_base);
                    self.queue_dial(due, addr, true);
                }
            }
            Phase::Connecting | Phase::Handshaking => {
                self.peer_set.release(direction, None, ip);
                if direction == Direction::Inbound && !self.shutting_down {
                    let remote = self.conns.get(conn).map(|entry| entry.remote);
                    if let Some(remote) = remote {
                        self.events.push_back(NodeEvent::InboundRefused {
                            remote,
                            peer,
                            reason: closed.reason,
                            by: closed.by,
                            detail: closed.detail.clone(),
                        });
                    }
                }
                if let Some(addr) = dialed {
                    self.dialing.remove(&addr.socket_addr());
                    let feeler = self.feelers.contains(&addr.socket_addr());
                    let refused_when_full = closed.by == ClosedBy::Remote
                        && closed.reason == DisconnectReason::TooManyPeers;
                    if feeler
                        && refused_when_full
                        && let Some(peer) = peer
                    {
                        // A far end with its inbound slots full refuses us only once the
                        // handshake has authenticated it and passed our checks: the feeler
                        // proved the address alive, as if it had been admitted.
                        self.discovery_dial_succeeded(now, addr, peer);
                        self.forget_dial(addr.socket_addr());
                    } else if self.shutting_down {
                        // Our doing, not the address's: no retry, nothing held against it.
                        self.dials.remove(addr.socket_addr());
                        self.report_dial_cancelled(addr);
                    } else {
                        let retry =
                            self.dials
                                .handle_failure(now, addr.socket_addr(), &mut self.rng);
                        self.report_dial_failure(now, addr, closed.reason, closed.detail, retry);
                    }
                }
            }
            Phase::Dropped => {}
        }
        self.start_dials(now);
    }
}

/// The application's messages among those returned: the node's own built-in protocols
/// (reserved channels, e.g. PEX) send messages the application never sent, so they are not
/// its to count or retry.
fn own_messages(mut returned: Vec<ReturnedMessage>) -> Vec<ReturnedMessage> {
    returned.retain(|message| message.channel < RESERVED_CHANNELS_START);
    returned
}

fn inbound_ip(entry: &Entry) -> Option<IpAddr> {
    (entry.direction == Direction::Inbound).then(|| entry.remote.ip())
}
