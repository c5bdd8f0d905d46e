//! # switchboard-sim
//!
//! A deterministic simulated network for switchboard [`Node`]s: a virtual clock, N nodes,
//! TCP-like links with per-link latency that deliver each direction's bytes in order, cut
//! into reads at random points, and faults — refused dials, connection resets, partitions.
//! Everything random comes from one seed, so a seed reproduces a run exactly; every input
//! given to a node is folded into a trace hash that proves it.
//!
//! ```
//! use std::time::Duration;
//! use switchboard_sim::{Sim, SimConfig, test_node_config};
//!
//! let mut sim = Sim::new(SimConfig::with_seed(7));
//! let a = sim.add_node(test_node_config());
//! let b = sim.add_node(test_node_config());
//! let b_addr = sim.address(b);
//! let now = sim.now();
//! sim.node_mut(a).dial(now, b_addr).unwrap();
//! sim.run_for(Duration::from_secs(1));
//! assert_eq!(sim.node(a).peers().count(), 1);
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use rand_chacha::{ChaCha8Rng, ChaCha20Rng};
use rand_core::{Rng, SeedableRng};
use switchboard::node::{Action, ConnId, Node, NodeConfig, NodeEvent};
use switchboard::{ChannelConfig, ChannelInfo, Instant, Keypair, NetAddress};

/// The port every simulated node listens on.
pub const PORT: u16 = 26656;

/// A node's index in the simulation.
pub type NodeIndex = usize;

/// The network's behaviour.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Seeds every random choice: keys, latencies, read splits, faults.
    pub seed: u64,
    /// One-way latency of a link is drawn uniformly from this range (per link, at connect).
    pub latency: (Duration, Duration),
    /// Cut delivered bytes into reads at random points.
    pub split_reads: bool,
}

impl SimConfig {
    /// 1–20 ms links with split reads.
    pub fn with_seed(seed: u64) -> Self {
        SimConfig {
            seed,
            latency: (Duration::from_millis(1), Duration::from_millis(20)),
            split_reads: true,
        }
    }
}

/// A node config for tests: network `sim`, channel 1 (`chat/1`), discovery off (the node
/// dials only what the test asks for).
pub fn test_node_config() -> NodeConfig {
    let mut config = NodeConfig::new("sim", "switchboard-sim");
    config.discovery.enabled = false;
    config.add_channel(
        ChannelInfo {
            id: 1,
            protocol: "chat".into(),
            version: 1,
        },
        ChannelConfig::new(1),
    );
    config
}

/// One end of a simulated TCP connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct End {
    node: NodeIndex,
    conn: ConnId,
}

/// What happens at a scheduled instant.
#[derive(Clone, Debug)]
enum Delivery {
    Bytes(Vec<u8>),
    Connected,
    Closed,
}

struct SimNode {
    node: Node<ChaCha20Rng>,
    ip: IpAddr,
    alive: bool,
    /// Events the application took, in order.
    log: Vec<NodeEvent>,
    /// Whether the application polls events (a slow receiver does not).
    polling: bool,
}

/// The simulated network. See the [crate documentation](self).
pub struct Sim {
    config: SimConfig,
    now: Instant,
    rng: ChaCha8Rng,
    nodes: Vec<SimNode>,
    /// Each end's peer end and one-way latency.
    links: BTreeMap<End, (End, Duration)>,
    /// Per direction, when its last bytes arrive (in-order delivery).
    last_arrival: BTreeMap<End, Instant>,
    /// Scheduled deliveries: (when, sequence number) → (to, what).
    schedule: BTreeMap<(Instant, u64), (End, Delivery)>,
    sequence: u64,
    /// Node pairs that cannot reach each other.
    partitions: BTreeSet<(NodeIndex, NodeIndex)>,
    /// Nodes whose listeners refuse connections.
    refusing: BTreeSet<NodeIndex>,
    trace: u64,
    inputs: u64,
}

impl Sim {
    /// An empty network at virtual time 1 s.
    pub fn new(config: SimConfig) -> Self {
        Sim {
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            config,
            now: Instant::from_nanos(1_000_000_000),
            nodes: Vec::new(),
            links: BTreeMap::new(),
            last_arrival: BTreeMap::new(),
            schedule: BTreeMap::new(),
            sequence: 0,
            partitions: BTreeSet::new(),
            refusing: BTreeSet::new(),
            trace: 0xcbf2_9ce4_8422_2325,
            inputs: 0,
        }
    }

    /// Adds a node at the next free IP, each in its own /24 (10.x.y.1), so per-subnet limits
    /// do not apply between nodes unless a test places them with [`Sim::add_node_at`].
    pub fn add_node(&mut self, config: NodeConfig) -> NodeIndex {
        let index = self.nodes.len();
        let ip = IpAddr::V4(Ipv4Addr::new(10, (index >> 8) as u8, index as u8, 1));
        self.add_node_at(config, ip)
    }

    /// Adds a node with a given IP (several may share one, to test per-IP limits).
    pub fn add_node_at(&mut self, mut config: NodeConfig, ip: IpAddr) -> NodeIndex {
        let index = self.nodes.len();
        let mut rng = ChaCha20Rng::seed_from_u64(
            self.config.seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        let keypair = Keypair::generate(&mut rng);
        config.listen_addr = Some(SocketAddr::new(ip, PORT));
        let node = Node::new(self.now, config, keypair, rng).expect("a valid node config");
        self.nodes.push(SimNode {
            node,
            ip,
            alive: true,
            log: Vec::new(),
            polling: true,
        });
        index
    }

    /// The virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// A node.
    pub fn node(&self, index: NodeIndex) -> &Node<ChaCha20Rng> {
        &self.nodes[index].node
    }

    /// A node, to call its application methods (`dial`, `send`, …).
    pub fn node_mut(&mut self, index: NodeIndex) -> &mut Node<ChaCha20Rng> {
        &mut self.nodes[index].node
    }

    /// The address (with identity) other nodes dial to reach `index`.
    pub fn address(&self, index: NodeIndex) -> NetAddress {
        let node = &self.nodes[index];
        NetAddress::new(Some(node.node.peer_id()), SocketAddr::new(node.ip, PORT))
    }

    /// The events node `index`'s application took so far.
    pub fn log(&self, index: NodeIndex) -> &[NodeEvent] {
        &self.nodes[index].log
    }

    /// Stops or resumes polling node `index`'s events (a slow application).
    pub fn set_polling(&mut self, index: NodeIndex, polling: bool) {
        self.nodes[index].polling = polling;
    }

    /// Cuts (or heals) the network between `a` and `b`: new dials fail, and existing links
    /// between them are reset.
    pub fn set_partitioned(&mut self, a: NodeIndex, b: NodeIndex, partitioned: bool) {
        let key = (a.min(b), a.max(b));
        if partitioned {
            self.partitions.insert(key);
            let cut: Vec<End> = self
                .links
                .iter()
                .filter(|(from, (to, _))| (from.node.min(to.node), from.node.max(to.node)) == key)
                .map(|(from, _)| *from)
                .collect();
            for end in cut {
                self.reset_end(end);
            }
        } else {
            self.partitions.remove(&key);
        }
    }

    /// Makes node `index` refuse (or accept again) incoming connections.
    pub fn set_refusing(&mut self, index: NodeIndex, refusing: bool) {
        if refusing {
            self.refusing.insert(index);
        } else {
            self.refusing.remove(&index);
        }
    }

    /// Resets every link of node `index` (both ends see the connection close).
    pub fn reset_links(&mut self, index: NodeIndex) {
        let ends: Vec<End> = self
            .links
            .keys()
            .filter(|end| end.node == index)
            .copied()
            .collect();
        for end in ends {
            self.reset_end(end);
        }
    }

    /// The hash of every input given to every node so far: equal runs have equal hashes.
    pub fn trace_hash(&self) -> u64 {
        self.trace
    }

    /// Inputs given to nodes so far (deliveries, timeouts, connects, closes).
    pub fn inputs(&self) -> u64 {
        self.inputs
    }

    /// Runs the network for `duration` of virtual time.
    pub fn run_for(&mut self, duration: Duration) {
        let end = self.now.saturating_add(duration);
        self.run_until(end, |_| false);
    }

    /// Runs until `done` holds (checked after every step) or virtual time reaches `end`.
    /// Returns whether `done` held.
    pub fn run_until(&mut self, end: Instant, mut done: impl FnMut(&Sim) -> bool) -> bool {
        let mut steps_at_this_instant = 0u32;
        let mut instant = self.now;
        loop {
            if self.now == instant {
                steps_at_this_instant += 1;
                assert!(
                    steps_at_this_instant < 100_000,
                    "livelock: virtual time stuck at {:?} (seed {})",
                    self.now,
                    self.config.seed
                );
            } else {
                instant = self.now;
                steps_at_this_instant = 0;
            }
            self.drain_outputs();
            if done(self) {
                return true;
            }
            let next_delivery = self.schedule.first_key_value().map(|(&(at, _), _)| at);
            let next_timer = self
                .nodes
                .iter()
                .filter(|node| node.alive)
                .filter_map(|node| node.node.poll_timeout())
                .min();
            let Some(next) = [next_delivery, next_timer].into_iter().flatten().min() else {
                self.now = end;
                return false;
            };
            if next > end {
                self.now = end;
                return false;
            }
            self.now = self.now.max(next);
            self.step();
        }
    }

    /// Processes everything due now: deliveries, then timers.
    fn step(&mut self) {
        let now = self.now;
        while let Some((&(at, seq), _)) = self.schedule.first_key_value() {
            if at > now {
                break;
            }
            let Some((to, delivery)) = self.schedule.remove(&(at, seq)) else {
                break;
            };
            if !self.nodes[to.node].alive {
                continue;
            }
            self.record(to, &delivery);
            let node = &mut self.nodes[to.node].node;
            match delivery {
                Delivery::Bytes(bytes) => node.handle_input(now, to.conn, &bytes),
                Delivery::Connected => node.handle_connected(now, to.conn),
                Delivery::Closed => {
                    self.links.remove(&to);
                    node.handle_closed(now, to.conn);
                }
            }
        }
        for index in 0..self.nodes.len() {
            let node = &mut self.nodes[index];
            if node.alive
                && node
                    .node
                    .poll_timeout()
                    .is_some_and(|deadline| deadline <= now)
            {
                node.node.handle_timeout(now);
                self.fold(index as u64, u64::MAX, 0);
            }
        }
    }

    fn record(&mut self, to: End, delivery: &Delivery) {
        let (kind, len) = match delivery {
            Delivery::Bytes(bytes) => (1, bytes.len() as u64),
            Delivery::Connected => (2, 0),
            Delivery::Closed => (3, 0),
        };
        self.fold(to.node as u64, to.conn.0, kind << 32 | len);
    }

    fn fold(&mut self, node: u64, conn: u64, what: u64) {
        self.inputs += 1;
        for word in [self.now.as_nanos(), node, conn, what] {
            for byte in word.to_le_bytes() {
                self.trace ^= u64::from(byte);
                self.trace = self.trace.wrapping_mul(0x0100_0000_01b3);
            }
        }
    }

    /// Takes every node's actions, transmits and (for polling nodes) events until none is
    /// left.
    fn drain_outputs(&mut self) {
        let mut buffer = Vec::new();
        loop {
            let mut moved = false;
            for index in 0..self.nodes.len() {
                if !self.nodes[index].alive {
                    continue;
                }
                while let Some(action) = self.nodes[index].node.poll_action() {
                    moved = true;
                    self.act(index, action);
                }
                let now = self.now;
                while let Some(conn) = self.nodes[index].node.poll_transmit(now, &mut buffer) {
                    moved = true;
                    let from = End { node: index, conn };
                    self.send_bytes(from, std::mem::take(&mut buffer));
                }
                if self.nodes[index].polling {
                    while let Some(event) = self.nodes[index].node.poll_event(now) {
                        moved = true;
                        self.nodes[index].log.push(event);
                    }
                }
            }
            if !moved {
                return;
            }
        }
    }

    fn act(&mut self, index: NodeIndex, action: Action) {
        match action {
            Action::Dial { conn, addr } => {
                let from = End { node: index, conn };
                let target = self
                    .nodes
                    .iter()
                    .position(|node| node.alive && SocketAddr::new(node.ip, PORT) == addr);
                let latency = self.draw_latency();
                let reachable = target.filter(|&target| {
                    !self.refusing.contains(&target)
                        && !self
                            .partitions
                            .contains(&(index.min(target), index.max(target)))
                });
                let accepted = reachable.and_then(|target| {
                    let remote =
                        SocketAddr::new(self.nodes[index].ip, 40_000 + (conn.0 % 20_000) as u16);
                    let now = self.now;
                    self.nodes[target]
                        .node
                        .handle_accepted(now, remote)
                        .ok()
                        .map(|accepted| End {
                            node: target,
                            conn: accepted,
                        })
                });
                match accepted {
                    Some(to) => {
                        self.links.insert(from, (to, latency));
                        self.links.insert(to, (from, latency));
                        self.schedule_at(
                            self.now.saturating_add(latency.saturating_mul(2)),
                            from,
                            Delivery::Connected,
                        );
                    }
                    None => {
                        self.schedule_at(self.now.saturating_add(latency), from, Delivery::Closed)
                    }
                }
            }
            Action::Close { conn } => {
                let end = End { node: index, conn };
                if let Some((peer, latency)) = self.links.remove(&end) {
                    let at = self.arrival(end, latency);
                    self.schedule_at(at, peer, Delivery::Closed);
                }
            }
        }
    }

    fn send_bytes(&mut self, from: End, bytes: Vec<u8>) {
        let Some(&(to, latency)) = self.links.get(&from) else {
            return;
        };
        let at = self.arrival(from, latency);
        if !self.config.split_reads || bytes.len() < 2 {
            self.schedule_at(at, to, Delivery::Bytes(bytes));
            return;
        }
        // Cut into up to three reads at random points, arriving together in order.
        let mut rest = bytes.as_slice();
        for _ in 0..2 {
            if rest.len() < 2 {
                break;
            }
            let cut = 1 + (self.rng.next_u64() as usize) % (rest.len() - 1);
            let (head, tail) = rest.split_at(cut);
            self.schedule_at(at, to, Delivery::Bytes(head.to_vec()));
            rest = tail;
        }
        self.schedule_at(at, to, Delivery::Bytes(rest.to_vec()));
    }

    /// When bytes sent now from `from` arrive: after the latency, never before earlier ones.
    fn arrival(&mut self, from: End, latency: Duration) -> Instant {
        let at = self.now.saturating_add(latency);
        let at = self
            .last_arrival
            .get(&from)
            .map_or(at, |last| at.max(*last));
        self.last_arrival.insert(from, at);
        at
    }

    fn reset_end(&mut self, end: End) {
        if let Some((peer, _)) = self.links.remove(&end) {
            self.links.remove(&peer);
            let now = self.now;
            // Both ends learn at once; bytes in flight are lost.
            self.schedule.retain(|_, (to, _)| *to != end && *to != peer);
            self.schedule_at(now, end, Delivery::Closed);
            self.schedule_at(now, peer, Delivery::Closed);
        }
    }

    fn draw_latency(&mut self) -> Duration {
        let (low, high) = self.config.latency;
        let span = high.saturating_sub(low).as_nanos() as u64;
        let extra = if span == 0 {
            0
        } else {
            self.rng.next_u64() % span
        };
        low + Duration::from_nanos(extra)
    }

    fn schedule_at(&mut self, at: Instant, to: End, delivery: Delivery) {
        self.sequence += 1;
        self.schedule.insert((at, self.sequence), (to, delivery));
    }
}
