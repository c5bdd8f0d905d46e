//! The simulator: nodes, links and one event queue.
//!
//! # Events
//!
//! An **event** is one input handed to a node: `handle_accepted`, `handle_connected`,
//! `handle_input` (one read), `handle_closed`, `handle_writable` or `handle_timeout`.
//! [`Sim::inputs`] counts them and folds each (time, node, connection, kind, length) into the
//! trace hash. Everything that will become an event sits in one queue ordered by
//! (time, sequence number): byte and close deliveries, TCP connects, socket-writable
//! notices, and each node's next timer (its `poll_timeout`, re-armed after every input).
//! The loop pops the earliest, hands it to its node, then takes that node's outputs
//! ([`Stack::poll_output`]: events, actions, transmits, timers due) until its round ends,
//! as the node's contract asks. Its cost is per event: idle nodes cost nothing.
//!
//! # Application calls
//!
//! A test calls a node's application methods through [`Sim::node_mut`]; that marks the node
//! for draining, which happens when the simulation next runs.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use rand_chacha::{ChaCha8Rng, ChaCha20Rng};
use rand_core::SeedableRng;
use switchboard::connection::ClosedBy;
use switchboard::discovery::{Discovery, DiscoveryConfig};
use switchboard::node::{Node, NodeConfig, NodeEvent, Output, Stack};
use switchboard::router::{Context, Protocol, RegisterError, Router};
use switchboard::{DisconnectReason, Instant, Keypair, NetAddress, NodeInfoError, PeerId};

use crate::invariants::{Checker, CheckerFault, TRAFFIC_CHANNEL, Tag, Violation};
use crate::latency::LatencyHistogram;
use crate::link::{End, EndState, LinkId, LinkModel, below};
use crate::queue::EventQueue;
use crate::{HeavyTail, NodeIndex, PORT};
use host::{Host, StackBuilder, host};

mod checks;
mod host;
mod injection;
mod network;

/// The nodes the simulator runs.
pub type SimNode = Node<ChaCha20Rng>;

/// The router the simulator builds for a node with protocols ([`Sim::add_node_with_router`],
/// [`Sim::add_node_with_discovery`]).
pub type SimRouter = Router<ChaCha20Rng>;

/// Saves a node's persistent state (its [`Discovery`]'s address book, say) when it crashes,
/// given its router and the virtual time. A node that runs no [`SimRouter`] persists nothing.
pub type SaveHook = Box<dyn FnMut(&SimRouter, Instant) -> Vec<u8>>;

/// Loads persisted state into a restarted node's router, rebuilt and started, before it
/// handles any input.
pub type RestoreHook = Box<dyn FnMut(&mut SimRouter, Instant, &[u8])>;

/// The network's behaviour.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Seeds every random choice: keys, latencies, read splits, faults.
    pub seed: u64,
    /// One-way latency of a link is drawn uniformly from this range (per link, at connect).
    pub latency: (Duration, Duration),
    /// Cut delivered bytes into reads at random points.
    pub split_reads: bool,
    /// Extra delay of single writes, in order (see [`HeavyTail`]); `None` for none.
    pub heavy_tail: Option<HeavyTail>,
    /// Bytes per second of each link direction, drawn uniformly from this range per link;
    /// `None` for unlimited.
    pub bandwidth: Option<(u64, u64)>,
    /// A socket's send buffer: past it the node is told the socket would block.
    pub socket_buffer: u64,
    /// Run the invariant checker (see [`crate::invariants`]); off only for benchmarks.
    pub check_invariants: bool,
    /// Keep every event the applications took, for [`Sim::log`]; off for large runs.
    pub keep_log: bool,
    /// Test only: a fault injected once where the simulator hands the checker what the
    /// nodes did, which the checker must report (see [`CheckerFault`]).
    pub inject: Option<CheckerFault>,
}

impl SimConfig {
    /// 1–20 ms links with split reads, unlimited bandwidth, the checker on.
    pub fn with_seed(seed: u64) -> Self {
        let model = LinkModel::default();
        SimConfig {
            seed,
            latency: model.latency,
            split_reads: true,
            heavy_tail: model.heavy_tail,
            bandwidth: model.bandwidth,
            socket_buffer: model.socket_buffer,
            check_invariants: true,
            keep_log: true,
            inject: None,
        }
    }

    fn link_model(&self) -> LinkModel {
        LinkModel {
            latency: self.latency,
            heavy_tail: self.heavy_tail,
            bandwidth: self.bandwidth,
            socket_buffer: self.socket_buffer,
        }
    }
}

/// How a partition treats traffic across it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartitionMode {
    /// Links across are reset at once and dials across are refused (a router answering
    /// with RSTs or ICMP unreachable).
    Reset,
    /// Nothing crosses and nobody is told, as when a route vanishes: dials across never
    /// complete (the dialer's dial timeout fires); bytes written across are held (TCP keeps
    /// retransmitting them) and count against the socket buffer, so a busy writer blocks;
    /// on heal they arrive, in order. Only the nodes' keepalive can notice meanwhile.
    BlackHole,
}

/// Why the simulator refused a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SimError {
    /// The node config is not valid (its `NodeInfo` does not encode).
    Config(NodeInfoError),
    /// No node has this index.
    NoSuchNode(NodeIndex),
    /// The node is crashed (or, for a restart, not crashed).
    NotAlive(NodeIndex),
    /// More nodes than [`Sim::ip_for`] has distinct addresses for (65,536).
    TooManyNodes(usize),
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimError::Config(error) => write!(f, "invalid node config: {error}"),
            SimError::NoSuchNode(index) => write!(f, "no node {index}"),
            SimError::NotAlive(index) => write!(f, "node {index} is crashed"),
            SimError::TooManyNodes(count) => {
                write!(
                    f,
                    "{count} nodes: at most 65,536 have addresses of their own"
                )
            }
        }
    }
}

impl std::error::Error for SimError {}

/// A crashed node, to hand back to [`Sim::restart`]. `persisted` holds what the save hook
/// of [`Sim::set_persistence`] returned at the crash; the caller may replace it (a disk
/// that lost its last write) before restarting.
#[derive(Debug)]
pub struct Crashed {
    /// The node's index (kept across the restart).
    pub index: NodeIndex,
    /// The node's persisted state, if a save hook is set.
    pub persisted: Option<Vec<u8>>,
}

/// What happens at a scheduled instant.
enum Event {
    Deliver {
        to: End,
        link: LinkId,
        what: Delivery,
    },
    Timer {
        node: NodeIndex,
        at: Instant,
    },
    Writable {
        end: End,
        link: LinkId,
    },
}

#[derive(Clone, Debug)]
enum Delivery {
    Bytes(Vec<u8>),
    Connected,
    Closed,
    /// A connect refused (nothing listening, a refusing listener, a reset partition).
    Refused,
}

/// Something a black hole swallowed, released on heal.
struct Held {
    from: End,
    to: End,
    link: LinkId,
    latency: Duration,
    what: Delivery,
}

struct NodeSlot {
    host: Host,
    /// Builds the stack on the node again at a restart; `None` for a bare node.
    build: Option<StackBuilder>,
    keypair: Keypair,
    config: NodeConfig,
    ip: IpAddr,
    alive: bool,
    /// Events the application took, in order.
    log: Vec<NodeEvent>,
    /// Whether the application polls events (a slow receiver does not).
    polling: bool,
    /// The deadline a `Timer` event is queued for.
    armed: Option<Instant>,
    dirty: bool,
    restarts: u64,
    /// Whether its outbound slots were full when last drained.
    full: bool,
    /// Whether it runs [`Discovery`] in seed mode: it dials no one and lets its peers go,
    /// so it counts as full and belongs to no component. Read from the protocol when the
    /// stack is built (its config does not change).
    seed_mode: bool,
}

/// The simulated network. See the [crate documentation](crate).
pub struct Sim {
    config: SimConfig,
    model: LinkModel,
    now: Instant,
    rng: ChaCha8Rng,
    nodes: Vec<NodeSlot>,
    by_addr: BTreeMap<SocketAddr, NodeIndex>,
    by_peer: BTreeMap<PeerId, NodeIndex>,
    /// Every open or opening connection end.
    ends: BTreeMap<End, EndState>,
    next_link: LinkId,
    queue: EventQueue<Event>,
    /// The caller's wake-ups ([`Sim::wake_at`]).
    wakes: EventQueue<u64>,
    dirty: Vec<NodeIndex>,
    /// Node pairs cut by [`Sim::set_partitioned`].
    pairs: BTreeMap<(NodeIndex, NodeIndex), PartitionMode>,
    /// A split of the whole network ([`Sim::partition`]): side per node, and the mode.
    split: Option<(Vec<bool>, PartitionMode)>,
    held: Vec<Held>,
    /// Nodes whose listeners refuse connections.
    refusing: BTreeSet<NodeIndex>,
    /// Nodes whose listeners swallow dials.
    swallowing: BTreeSet<NodeIndex>,
    save: Option<SaveHook>,
    restore: Option<RestoreHook>,
    checker: Option<Checker>,
    /// Test only: [`SimConfig::inject`] has not fired yet; the delivery it holds back.
    inject_armed: bool,
    held_back: Option<(NodeIndex, NodeEvent)>,
    buffer: Vec<u8>,
    trace: u64,
    inputs: u64,
    /// Bytes handed to nodes' `handle_input`.
    bytes_delivered: u64,
    /// Traffic messages' send-to-application latency.
    latency: LatencyHistogram,
    /// `PeerConnected` events the applications took: two per handshake completed.
    peer_connected: u64,
    alive: usize,
    full: usize,
    full_stale: bool,
    started: Instant,
    outbound_full_at: Option<Instant>,
}

impl Sim {
    /// An empty network at virtual time 1 s.
    pub fn new(config: SimConfig) -> Self {
        let now = Instant::from_nanos(1_000_000_000);
        Sim {
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            model: config.link_model(),
            checker: config.check_invariants.then(|| Checker::new(config.seed)),
            inject_armed: config.inject.is_some(),
            held_back: None,
            config,
            now,
            nodes: Vec::new(),
            by_addr: BTreeMap::new(),
            by_peer: BTreeMap::new(),
            ends: BTreeMap::new(),
            next_link: 0,
            queue: EventQueue::new(),
            wakes: EventQueue::new(),
            dirty: Vec::new(),
            pairs: BTreeMap::new(),
            split: None,
            held: Vec::new(),
            refusing: BTreeSet::new(),
            swallowing: BTreeSet::new(),
            save: None,
            restore: None,
            buffer: Vec::new(),
            trace: 0xcbf2_9ce4_8422_2325,
            inputs: 0,
            bytes_delivered: 0,
            latency: LatencyHistogram::default(),
            peer_connected: 0,
            alive: 0,
            full: 0,
            full_stale: false,
            started: now,
            outbound_full_at: None,
        }
    }

    // ----- nodes -----

    /// Adds a node at the next free IP, each in its own /24 (10.x.y.1), so per-subnet limits
    /// do not apply between nodes unless a test places them with [`Sim::add_node_at`].
    ///
    /// # Panics
    /// If the config is invalid; [`Sim::try_add_node_at`] returns the error instead.
    pub fn add_node(&mut self, config: NodeConfig) -> NodeIndex {
        let ip = Self::ip_for(self.nodes.len());
        self.add_node_at(config, ip)
    }

    /// Adds a node with a given IP (several may share one, to test per-IP limits; a dial to
    /// a shared address reaches the first added).
    ///
    /// # Panics
    /// If the config is invalid; [`Sim::try_add_node_at`] returns the error instead.
    pub fn add_node_at(&mut self, config: NodeConfig, ip: IpAddr) -> NodeIndex {
        match self.try_add_node_at(config, ip) {
            Ok(index) => index,
            Err(error) => panic!("{error}"),
        }
    }

    /// The IP [`Sim::add_node`] gives node `index`: `10.x.y.1`, a /24 of its own for the
    /// first 65,536 nodes (later ones repeat them).
    pub fn ip_for(index: NodeIndex) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, (index >> 8) as u8, index as u8, 1))
    }

    /// Adds a node with a given IP, or says why its config is invalid.
    pub fn try_add_node_at(
        &mut self,
        config: NodeConfig,
        ip: IpAddr,
    ) -> Result<NodeIndex, SimError> {
        self.insert(config, ip, None)
    }

    /// Adds a node as [`Sim::add_node`] does, with layers on top: `build` gets the node and
    /// the virtual time and returns the stack the simulator drives — typically a [`Router`]
    /// with the protocols under test, registered and started. The simulator hands the
    /// stack the node's events and fires its timers; reach its protocols through
    /// [`Sim::with_protocol`] and [`Sim::protocol`]. `build` runs again on the fresh node
    /// of every restart: a crash loses the protocols' state as it loses the node's.
    ///
    /// ```
    /// use switchboard::gossip::{Gossip, GossipConfig};
    /// use switchboard::node::NodeConfig;
    /// use switchboard::router::Router;
    /// use switchboard_sim::{Sim, SimConfig};
    /// # use std::time::Duration;
    ///
    /// let config = NodeConfig::new("sim", "gossip/1");
    /// let gossiping = |node, now| {
    ///     let mut router = Router::new(node);
    ///     // Registering offers gossip's channel in the node's handshake.
    ///     router.register(Gossip::new(GossipConfig::default())).expect("a free channel");
    ///     router.start(now);
    ///     router
    /// };
    /// let mut sim = Sim::new(SimConfig::with_seed(1));
    /// let a = sim.add_node_with_stack(config.clone(), gossiping);
    /// let b = sim.add_node_with_stack(config, gossiping);
    /// let (now, b_address) = (sim.now(), sim.address(b));
    /// sim.node_mut(a).dial(now, b_address).unwrap();
    /// sim.run_for(Duration::from_secs(2));
    /// sim.with_protocol(a, |gossip: &mut Gossip, ctx| gossip.publish(ctx, "x=1".into()));
    /// sim.run_for(Duration::from_secs(1));
    /// let received = sim.with_protocol(b, |gossip: &mut Gossip, _| gossip.poll_message());
    /// assert_eq!(&received.flatten().unwrap().message[..], b"x=1");
    /// ```
    ///
    /// # Panics
    /// If the config is invalid.
    pub fn add_node_with_stack<S>(
        &mut self,
        config: NodeConfig,
        build: impl FnMut(SimNode, Instant) -> S + 'static,
    ) -> NodeIndex
    where
        S: Stack<Rng = ChaCha20Rng> + 'static,
    {
        let ip = Self::ip_for(self.nodes.len());
        match self.try_add_node_with_stack_at(config, ip, build) {
            Ok(index) => index,
            Err(error) => panic!("{error}"),
        }
    }

    /// [`Sim::add_node_with_stack`] with a given IP, or says why the config is invalid.
    pub fn try_add_node_with_stack_at<S>(
        &mut self,
        config: NodeConfig,
        ip: IpAddr,
        mut build: impl FnMut(SimNode, Instant) -> S + 'static,
    ) -> Result<NodeIndex, SimError>
    where
        S: Stack<Rng = ChaCha20Rng> + 'static,
    {
        let build: StackBuilder = Box::new(move |node, now| Box::new(build(node, now)));
        self.insert(config, ip, Some(build))
    }

    /// Adds a node with a [`Router`] on it: `register` registers its protocols (at every
    /// restart too, on the fresh router), then the router starts. The common case of
    /// [`Sim::add_node_with_stack`].
    ///
    /// # Panics
    /// If the config is invalid or a protocol cannot register (`register` returns an error).
    pub fn add_node_with_router(
        &mut self,
        config: NodeConfig,
        mut register: impl FnMut(&mut Router<ChaCha20Rng>) -> Result<(), RegisterError> + 'static,
    ) -> NodeIndex {
        self.add_node_with_stack(config, move |node, now| {
            match Router::with_protocols(node, now, &mut register) {
                Ok(router) => router,
                Err(error) => panic!("cannot register a protocol: {error}"),
            }
        })
    }

    /// Adds a node running [`Discovery`] with `discovery` (on a [`SimRouter`], rebuilt with
    /// a fresh book at every restart; a persisted book comes back through
    /// [`Sim::set_persistence`]). On the simulated network's private addresses the book
    /// must keep them: start from [`test_discovery_config`](crate::test_discovery_config).
    /// Reach the protocol through [`Sim::protocol`] and [`Sim::with_protocol`]. A node with
    /// discovery and protocols of its own: [`Sim::add_node_with_router`], registering
    /// `Discovery::new(config, router.node_mut().rng())` there.
    ///
    /// ```
    /// use std::time::Duration;
    /// use switchboard::discovery::Discovery;
    /// use switchboard_sim::{Sim, SimConfig, test_discovery_config, test_node_config};
    ///
    /// let mut sim = Sim::new(SimConfig::with_seed(3));
    /// let mut seed = test_discovery_config();
    /// seed.seed_mode = true;
    /// let seed = sim.add_node_with_discovery(test_node_config(), seed);
    /// let mut discovery = test_discovery_config();
    /// discovery.seeds = vec![sim.address(seed)];
    /// let a = sim.add_node_with_discovery(test_node_config(), discovery.clone());
    /// let b = sim.add_node_with_discovery(test_node_config(), discovery);
    /// sim.run_for(Duration::from_secs(30));
    /// // Each learned the other from the seed, and dialed it.
    /// assert_eq!(sim.node(a).peers().count(), 1);
    /// let book = sim.protocol::<Discovery>(a).unwrap().addr_book();
    /// assert!(book.contains(&sim.address(b).socket_addr()));
    /// ```
    ///
    /// # Panics
    /// If the config is invalid.
    pub fn add_node_with_discovery(
        &mut self,
        config: NodeConfig,
        discovery: DiscoveryConfig,
    ) -> NodeIndex {
        let ip = Self::ip_for(self.nodes.len());
        self.add_node_with_discovery_at(config, discovery, ip)
    }

    /// [`Sim::add_node_with_discovery`] with a given IP.
    ///
    /// # Panics
    /// If the config is invalid.
    pub fn add_node_with_discovery_at(
        &mut self,
        config: NodeConfig,
        discovery: DiscoveryConfig,
        ip: IpAddr,
    ) -> NodeIndex {
        let build = move |node, now| {
            let discovering = Router::with_protocols(node, now, |router| {
                let protocol = Discovery::new(discovery.clone(), router.node_mut().rng());
                router.register(protocol).map(drop)
            });
            match discovering {
                Ok(router) => router,
                Err(error) => panic!("cannot register discovery: {error}"),
            }
        };
        match self.try_add_node_with_stack_at(config, ip, build) {
            Ok(index) => index,
            Err(error) => panic!("{error}"),
        }
    }

    /// Node `index`'s stack as `S` (a bare node is a [`SimNode`]); `None` if it is
    /// something else. A crashed node's is its state at the crash.
    ///
    /// # Panics
    /// If there is no node `index`.
    pub fn stack<S: 'static>(&self, index: NodeIndex) -> Option<&S> {
        self.nodes[index].host.as_any().downcast_ref()
    }

    /// As [`Sim::stack`], to act on it; the node is drained when the simulation next runs.
    /// `None` while the node is crashed: there is nothing to act on until its restart.
    ///
    /// # Panics
    /// If there is no node `index`.
    pub fn stack_mut<S: 'static>(&mut self, index: NodeIndex) -> Option<&mut S> {
        if !self.nodes[index].alive {
            return None;
        }
        self.mark(index);
        self.nodes[index].host.as_any_mut().downcast_mut()
    }

    /// The first protocol of type `P` on node `index`'s router (a crashed node's: as it was
    /// at the crash).
    ///
    /// # Panics
    /// If there is no node `index`.
    pub fn protocol<P: Protocol>(&self, index: NodeIndex) -> Option<&P> {
        let router = self.stack::<SimRouter>(index)?;
        router.protocol(router.id_of::<P>()?)
    }

    /// Calls `f` with the first protocol of type `P` on node `index`'s router and its
    /// [`Context`] (to publish, send, set its timer …); `None` if the node runs no such
    /// protocol or is crashed. What it queues is sent when the simulation next runs.
    ///
    /// # Panics
    /// If there is no node `index`.
    pub fn with_protocol<P: Protocol, T>(
        &mut self,
        index: NodeIndex,
        f: impl FnOnce(&mut P, &mut Context<'_>) -> T,
    ) -> Option<T> {
        let now = self.now;
        let router = self.stack_mut::<SimRouter>(index)?;
        let id = router.id_of::<P>()?;
        router.with_protocol(now, id, f)
    }

    fn insert(
        &mut self,
        mut config: NodeConfig,
        ip: IpAddr,
        mut build: Option<StackBuilder>,
    ) -> Result<NodeIndex, SimError> {
        let index = self.nodes.len();
        let mut rng = self.node_rng(index, 0);
        let keypair = Keypair::generate(&mut rng);
        config.listen_addr = Some(SocketAddr::new(ip, PORT));
        let node =
            Node::new(self.now, config.clone(), keypair.clone(), rng).map_err(SimError::Config)?;
        self.by_addr
            .entry(SocketAddr::new(ip, PORT))
            .or_insert(index);
        self.by_peer.insert(node.peer_id(), index);
        let host = host(node, self.now, build.as_mut());
        let seed_mode = runs_seed_mode(&host);
        self.nodes.push(NodeSlot {
            host,
            build,
            keypair,
            config,
            ip,
            alive: true,
            log: Vec::new(),
            polling: true,
            armed: None,
            dirty: false,
            restarts: 0,
            full: false,
            seed_mode,
        });
        self.alive += 1;
        self.full_stale = true;
        self.mark(index);
        Ok(index)
    }

    pub(super) fn node_rng(&self, index: NodeIndex, restarts: u64) -> ChaCha20Rng {
        ChaCha20Rng::seed_from_u64(
            self.config.seed
                ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
                ^ restarts.wrapping_mul(0xD1B5_4A32_D192_ED03),
        )
    }

    /// How many nodes were added (crashed ones included).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Whether node `index` runs (not crashed).
    pub fn is_alive(&self, index: NodeIndex) -> bool {
        self.nodes.get(index).is_some_and(|slot| slot.alive)
    }

    /// How many times node `index` was restarted: which life of it runs now (0 until its
    /// first restart), so a test can tell state the node kept from state it lost.
    pub fn restarts(&self, index: NodeIndex) -> u64 {
        self.nodes.get(index).map_or(0, |slot| slot.restarts)
    }

    /// The index of the node with identity `peer`.
    pub fn index_of(&self, peer: &PeerId) -> Option<NodeIndex> {
        self.by_peer.get(peer).copied()
    }

    /// The virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.config.seed
    }

    /// A node (a crashed one is its state at the crash).
    ///
    /// # Panics
    /// If there is no node `index`.
    pub fn node(&self, index: NodeIndex) -> &SimNode {
        self.nodes[index].host.node()
    }

    /// A node, to call its application methods (`dial`, `send`, …); it is drained when the
    /// simulation next runs.
    ///
    /// # Panics
    /// If there is no node `index`.
    pub fn node_mut(&mut self, index: NodeIndex) -> &mut SimNode {
        self.mark(index);
        self.nodes[index].host.node_mut()
    }

    /// The config node `index` was built with.
    ///
    /// # Panics
    /// If there is no node `index`.
    pub fn node_config(&self, index: NodeIndex) -> &NodeConfig {
        &self.nodes[index].config
    }

    /// The address (with identity) other nodes dial to reach `index`.
    ///
    /// # Panics
    /// If there is no node `index`.
    pub fn address(&self, index: NodeIndex) -> NetAddress {
        let slot = &self.nodes[index];
        NetAddress::new(
            Some(slot.host.node().peer_id()),
            SocketAddr::new(slot.ip, PORT),
        )
    }

    /// The events node `index`'s application took so far (empty unless
    /// [`SimConfig::keep_log`]).
    ///
    /// # Panics
    /// If there is no node `index`.
    pub fn log(&self, index: NodeIndex) -> &[NodeEvent] {
        &self.nodes[index].log
    }

    // ----- running -----

    /// Asks [`Sim::run_to_wake`] to return `token` at `at`.
    pub fn wake_at(&mut self, at: Instant, token: u64) {
        self.wakes.push(at, token);
    }

    /// Runs the network for `duration` of virtual time.
    pub fn run_for(&mut self, duration: Duration) {
        let end = self.now.saturating_add(duration);
        self.run_until(end, |_| false);
    }

    /// Runs until `done` holds (checked after every event) or virtual time reaches `end`.
    /// Returns whether `done` held. Wake-ups ([`Sim::wake_at`]) stay queued.
    ///
    /// # Panics
    /// On a livelock: millions of events without virtual time advancing (a bug).
    pub fn run_until(&mut self, end: Instant, mut done: impl FnMut(&Sim) -> bool) -> bool {
        self.settle();
        let mut guard = Livelock::new(self.now);
        loop {
            if done(self) {
                return true;
            }
            match self.queue.peek_time() {
                Some(at) if at <= end => self.step(&mut guard),
                _ => {
                    self.now = self.now.max(end);
                    return false;
                }
            }
        }
    }

    /// Runs until the next wake-up due by `end` and returns its token (virtual time is then
    /// the wake-up's), or `None` at `end`. Events due at the wake-up's instant run first.
    ///
    /// # Panics
    /// On a livelock: millions of events without virtual time advancing (a bug).
    pub fn run_to_wake(&mut self, end: Instant) -> Option<u64> {
        self.settle();
        let mut guard = Livelock::new(self.now);
        loop {
            let event = self.queue.peek_time().filter(|&at| at <= end);
            let wake = self.wakes.peek_time().filter(|&at| at <= end);
            match (event, wake) {
                (Some(event), Some(wake)) if event <= wake => self.step(&mut guard),
                (Some(_), None) => self.step(&mut guard),
                (_, Some(_)) => {
                    let (at, token) = self.wakes.pop()?;
                    self.now = self.now.max(at);
                    return Some(token);
                }
                (None, None) => {
                    self.now = self.now.max(end);
                    return None;
                }
            }
        }
    }

    /// Pops one event, hands it to its node and drains what that caused.
    fn step(&mut self, guard: &mut Livelock) {
        let Some((at, event)) = self.queue.pop() else {
            return;
        };
        self.now = self.now.max(at);
        guard.tick(self.now, self.nodes.len(), self.config.seed);
        match event {
            Event::Deliver { to, link, what } => self.deliver(to, link, what),
            Event::Timer { node, at } => {
                let now = self.now;
                let slot = &mut self.nodes[node];
                if !slot.alive || slot.armed != Some(at) {
                    return;
                }
                slot.armed = None;
                // The deadline may have moved later since this wake-up was queued; when it
                // has not, the node's round (`drain`) fires it.
                if slot
                    .host
                    .poll_timeout()
                    .is_some_and(|deadline| deadline <= now)
                {
                    self.fold(node as u64, u64::MAX, 0);
                }
                self.mark(node);
            }
            Event::Writable { end, link } => {
                let now = self.now;
                let half = self.model.socket_buffer / 2;
                let Some(state) = self.ends.get_mut(&end) else {
                    return;
                };
                if state.link != link || !state.blocked || state.backlog(now) > half {
                    return;
                }
                state.blocked = false;
                state.blocked_since = None;
                self.nodes[end.node]
                    .host
                    .node_mut()
                    .handle_writable(now, end.conn);
                self.fold(end.node as u64, end.conn.0, 5 << 32);
                self.mark(end.node);
            }
        }
        self.settle();
    }

    fn deliver(&mut self, to: End, link: LinkId, what: Delivery) {
        let Some(state) = self.ends.get(&to) else {
            return;
        };
        if state.link != link || !self.nodes[to.node].alive {
            return;
        }
        let now = self.now;
        let node = self.nodes[to.node].host.node_mut();
        let (kind, len) = match what {
            Delivery::Bytes(bytes) => {
                if state.reset {
                    return;
                }
                node.handle_input(now, to.conn, &bytes);
                self.bytes_delivered += bytes.len() as u64;
                (1, bytes.len() as u64)
            }
            Delivery::Connected => {
                if state.reset {
                    return;
                }
                node.handle_connected(now, to.conn);
                (2, 0)
            }
            Delivery::Closed => {
                self.ends.remove(&to);
                node.handle_closed(now, to.conn);
                (3, 0)
            }
            Delivery::Refused => {
                self.ends.remove(&to);
                node.handle_connect_failed(now, to.conn, "connection refused");
                (6, 0)
            }
        };
        self.fold(to.node as u64, to.conn.0, kind << 32 | len);
        self.mark(to.node);
    }

    pub(super) fn fold(&mut self, node: u64, conn: u64, what: u64) {
        self.inputs += 1;
        for word in [self.now.as_nanos(), node, conn, what] {
            for byte in word.to_le_bytes() {
                self.trace ^= u64::from(byte);
                self.trace = self.trace.wrapping_mul(0x0100_0000_01b3);
            }
        }
    }

    pub(super) fn mark(&mut self, index: NodeIndex) {
        if let Some(slot) = self.nodes.get_mut(index)
            && !slot.dirty
        {
            slot.dirty = true;
            self.dirty.push(index);
        }
    }

    /// Drains every node touched since the last settle, and those they touch.
    pub(super) fn settle(&mut self) {
        while let Some(index) = self.dirty.pop() {
            self.nodes[index].dirty = false;
            if self.nodes[index].alive {
                self.drain(index);
            }
        }
        if self.full_stale {
            self.full_stale = false;
            self.full = 0;
            for index in 0..self.nodes.len() {
                self.nodes[index].full = false;
                self.update_full(index);
            }
        }
    }

    /// Takes node `index`'s outputs until its round ends (events only while its
    /// application polls), re-arms its timer and checks its peer limits.
    pub(super) fn drain(&mut self, index: NodeIndex) {
        let now = self.now;
        let polling = self.nodes[index].polling;
        self.nodes[index].host.node_mut().pause_events(!polling);
        let deadline = loop {
            match self.nodes[index].host.poll_output(now, &mut self.buffer) {
                Output::Event(event) => self.observe(index, event),
                Output::Action(action) => self.act(index, action),
                Output::Transmit(conn) => {
                    // An exact-size copy; the buffer keeps its capacity for the next one.
                    let bytes = self.buffer.clone();
                    self.buffer.clear();
                    self.send_bytes(End { node: index, conn }, bytes);
                }
                Output::Timeout(deadline) => break deadline,
            }
        };
        // One wake-up queued per node, at or before its deadline: a deadline moving later
        // (traffic postponing a PING) queues nothing; the early wake-up re-arms.
        let slot = &mut self.nodes[index];
        if let Some(deadline) = deadline
            && slot.armed.is_none_or(|armed| deadline < armed)
        {
            slot.armed = Some(deadline);
            self.queue.push(
                deadline.max(now),
                Event::Timer {
                    node: index,
                    at: deadline,
                },
            );
        }
        self.check_limits(index);
        self.update_full(index);
    }

    pub(super) fn observe(&mut self, index: NodeIndex, event: NodeEvent) {
        if self.config.inject.is_some() {
            for event in self.inject(index, event) {
                self.observe_one(index, event);
            }
        } else {
            self.observe_one(index, event);
        }
    }

    fn observe_one(&mut self, index: NodeIndex, event: NodeEvent) {
        if let NodeEvent::PeerDisconnected {
            peer,
            reason: DisconnectReason::Evicted,
            by: ClosedBy::Local,
            ..
        } = &event
            && let Some(checker) = self.checker.as_mut()
        {
            let config = &self.nodes[index].config;
            let protected = config.trusted_peers.contains(peer)
                || config
                    .persistent_peers
                    .iter()
                    .any(|addr| addr.peer_id() == Some(*peer));
            if protected {
                checker.protected_evicted(self.now, index, *peer);
            }
        }
        match &event {
            NodeEvent::PeerConnected { .. } => self.peer_connected += 1,
            NodeEvent::Message {
                channel: TRAFFIC_CHANNEL,
                message,
                ..
            } => {
                if let Some(tag) = Tag::read(message) {
                    self.latency
                        .record(self.now.saturating_duration_since(tag.sent_at));
                }
            }
            _ => {}
        }
        if let Some(checker) = self.checker.as_mut() {
            let by_peer = &self.by_peer;
            checker.on_event(self.now, index, &event, |peer| by_peer.get(peer).copied());
        }
        if self.config.keep_log {
            self.nodes[index].log.push(event);
        }
    }

    pub(super) fn check_limits(&mut self, index: NodeIndex) {
        let Some(checker) = self.checker.as_mut() else {
            return;
        };
        let slot = &self.nodes[index];
        // The ban list stays within its bound, however many breaches a node saw.
        let mut held = slot.host.node().bans().len();
        if self.inject_armed && self.config.inject == Some(CheckerFault::ExceedBans) {
            self.inject_armed = false;
            held += slot.config.max_bans + 1;
        }
        if held > slot.config.max_bans {
            checker.bans_exceeded(self.now, index, held, slot.config.max_bans);
        }
        let limits = slot.config.limits;
        let mut held = slot.host.node().largest_pending_share();
        if self.inject_armed && self.config.inject == Some(CheckerFault::ExceedPendingShare) {
            self.inject_armed = false;
            held += limits.max_pending_per_subnet + 1;
        }
        if held > limits.max_pending_per_subnet {
            checker.pending_share_exceeded(self.now, index, held, limits.max_pending_per_subnet);
        }
        // Query connections stay within their budgets and hold no peer slot: every slot the
        // peer set counts belongs to a peer (an evicted peer still draining is a peer whose
        // slot was given back, so peers may outnumber slots, never the reverse).
        let node = slot.host.node();
        let (mut queries_in, queries_out) = node.query_counts();
        if self.inject_armed && self.config.inject == Some(CheckerFault::ExceedQueryBudget) {
            self.inject_armed = false;
            queries_in += limits.max_inbound_queries + 1;
        }
        let budgets = (limits.max_inbound_queries, limits.max_outbound_queries);
        if queries_in > budgets.0 || queries_out > budgets.1 {
            checker.query_budget_exceeded(self.now, index, (queries_in, queries_out), budgets);
        }
        let (counted_in, counted_out) = node.peer_counts();
        let mut counted = counted_in + counted_out;
        if self.inject_armed && self.config.inject == Some(CheckerFault::QueryTakesSlot) {
            self.inject_armed = false;
            counted += 1;
        }
        let peers = node.peers().count();
        if counted > peers {
            checker.slot_without_peer(self.now, index, counted, peers);
        }
        let (mut inbound, outbound) = slot.host.node().peer_counts();
        if self.inject_armed && self.config.inject == Some(CheckerFault::ExceedPeerLimit) {
            self.inject_armed = false;
            inbound += limits.max_inbound + 1;
        }
        if inbound <= limits.max_inbound && outbound <= limits.max_outbound {
            return;
        }
        // Over a cap: only trusted (inbound) and persistent (outbound) peers may be.
        let (mut trusted, mut persistent) = (0, 0);
        let node = slot.host.node();
        for peer in node.peers() {
            if let Some(info) = node.peer_info(&peer) {
                trusted += usize::from(info.trusted);
                persistent += usize::from(info.persistent);
            }
        }
        let bounds = (
            limits.max_inbound + trusted,
            limits.max_outbound + persistent,
        );
        if inbound > bounds.0 || outbound > bounds.1 {
            checker.limit_exceeded(self.now, index, (inbound, outbound), bounds);
        }
    }

    pub(super) fn update_full(&mut self, index: NodeIndex) {
        let target = self.nodes[index]
            .config
            .limits
            .max_outbound
            .min(self.nodes.len().saturating_sub(1) / 2);
        let slot = &mut self.nodes[index];
        // A seed-mode node dials no one: it counts as full once alive.
        let full = slot.alive && (slot.seed_mode || slot.host.node().peer_counts().1 >= target);
        if full != slot.full {
            slot.full = full;
            if full {
                self.full += 1;
            } else {
                self.full -= 1;
            }
        }
        self.update_outbound_full();
    }

    pub(super) fn update_outbound_full(&mut self) {
        if self.outbound_full_at.is_none() && self.alive > 0 && self.full == self.alive {
            self.outbound_full_at = Some(self.now);
        }
    }
}

/// Panics when virtual time stops advancing while events keep coming: a node whose
/// deadline stays in the past, or two nodes ping-ponging at one instant.
struct Livelock {
    instant: Instant,
    events: u64,
}

impl Livelock {
    fn new(now: Instant) -> Self {
        Livelock {
            instant: now,
            events: 0,
        }
    }

    fn tick(&mut self, now: Instant, nodes: usize, seed: u64) {
        if now != self.instant {
            self.instant = now;
            self.events = 0;
            return;
        }
        self.events += 1;
        assert!(
            self.events < 1_000_000 + 1_000 * nodes as u64,
            "livelock: virtual time stuck at {now:?} (seed {seed})"
        );
    }
}

impl fmt::Debug for Sim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sim")
            .field("seed", &self.config.seed)
            .field("now", &self.now)
            .field("nodes", &self.nodes.len())
            .field("inputs", &self.inputs)
            .finish_non_exhaustive()
    }
}

/// Whether `host` runs [`Discovery`] in seed mode.
fn runs_seed_mode(host: &Host) -> bool {
    host.as_any()
        .downcast_ref::<SimRouter>()
        .and_then(|router| router.protocol(router.id_of::<Discovery>()?))
        .is_some_and(|discovery| discovery.config().seed_mode)
}
