//! The local cluster of `switchboard demo`: N nodes on 127.0.0.1 in one thread, embedded
//! in one `mio::Poll` (each [`Driver`] under its own token range), node 0 acting as the
//! seed. The nodes connect, every node broadcasts, and the run is summarized in
//! [`DemoReport`]'s keys.
//!
//! Every node runs the [`Discovery`] protocol on a router. With [`Bootstrap::Seed`] (the
//! default) the seed's address is all a node is given, and peer exchange does the rest; with
//! [`Bootstrap::Direct`] each node is also *told* a few other nodes' addresses.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mio::{Events, Poll, Token};
use rand_chacha::ChaCha20Rng;
use switchboard::discovery::{Discovery, DiscoveryConfig};
use switchboard::node::{NodeConfig, NodeEvent};
use switchboard::router::Router;
use switchboard::{ChannelConfig, ChannelId, Keypair, NetAddress, PeerId};

use crate::driver::{Driver, DriverConfig, DriverError};
use crate::node_api::NodeApi;

/// The demo's channel.
pub const CHANNEL: ChannelId = 1;

/// Tokens per node: its listener and its connections.
const TOKENS_PER_NODE: usize = 4096;

/// How a node learns whom to connect to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bootstrap {
    /// The seed's address and those of up to `links` nodes started before it, told
    /// directly (no discovery needed).
    Direct {
        /// Addresses besides the seed's.
        links: usize,
    },
    /// The seed's address only, as the [`Discovery`] protocol's `seeds`: the nodes find
    /// each other through peer exchange and fill their outbound slots.
    Seed,
}

/// What the demo runs.
#[derive(Clone, Debug)]
pub struct DemoConfig {
    /// Nodes in the cluster (node 0 is the seed). Default 16.
    pub nodes: usize,
    /// How nodes learn addresses. Default `Seed`.
    pub bootstrap: Bootstrap,
    /// Broadcasts per node. Default 10.
    pub rounds: usize,
    /// Bytes per broadcast message. Default 1 KiB.
    pub message_size: usize,
    /// How long the nodes may take to connect. Default 15 s.
    pub connect_timeout: Duration,
    /// How long the broadcasts may take to arrive. Default 10 s.
    pub deliver_timeout: Duration,
    /// Print progress to stderr.
    pub progress: bool,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            nodes: 16,
            bootstrap: Bootstrap::Seed,
            rounds: 10,
            message_size: 1024,
            connect_timeout: Duration::from_secs(15),
            deliver_timeout: Duration::from_secs(10),
            progress: false,
        }
    }
}

/// The outcome: the keys `demo --json` prints.
#[derive(Clone, Debug, PartialEq)]
pub struct DemoReport {
    /// Nodes started.
    pub nodes: usize,
    /// Nodes in the seed's connected component of the peer graph, when broadcasting began.
    pub connected_nodes: usize,
    /// Fewest peers of any node, when broadcasting began.
    pub min_peers: usize,
    /// Most peers of any node, when broadcasting began.
    pub max_peers: usize,
    /// Broadcasts made.
    pub broadcasts: u64,
    /// Broadcast messages the nodes' applications received.
    pub deliveries: u64,
    /// For each broadcast, the peers its sender had when it broadcast, summed.
    pub expected_deliveries: u64,
    /// Wall seconds of the whole run.
    pub elapsed_s: f64,
    /// Bytes all nodes wrote to their sockets.
    pub bytes_sent: u64,
}

impl DemoReport {
    /// The one JSON object `switchboard demo --json` prints.
    pub fn to_json(&self) -> String {
        format!(
            "{{\"nodes\":{},\"connected_nodes\":{},\"min_peers\":{},\"max_peers\":{},\
             \"broadcasts\":{},\"deliveries\":{},\"expected_deliveries\":{},\
             \"elapsed_s\":{:.3},\"bytes_sent\":{}}}",
            self.nodes,
            self.connected_nodes,
            self.min_peers,
            self.max_peers,
            self.broadcasts,
            self.deliveries,
            self.expected_deliveries,
            self.elapsed_s,
            self.bytes_sent
        )
    }

    /// Whether every node joined and every broadcast reached every peer.
    pub fn is_complete(&self) -> bool {
        self.connected_nodes == self.nodes && self.deliveries == self.expected_deliveries
    }
}

impl fmt::Display for DemoReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} of {} nodes connected ({}–{} peers each)",
            self.connected_nodes, self.nodes, self.min_peers, self.max_peers
        )?;
        writeln!(
            f,
            "{} broadcasts, {} of {} deliveries",
            self.broadcasts, self.deliveries, self.expected_deliveries
        )?;
        write!(
            f,
            "{:.2} s, {:.1} KiB written to sockets",
            self.elapsed_s,
            self.bytes_sent as f64 / 1024.0
        )
    }
}

/// Why the demo could not run.
#[derive(Debug)]
pub enum DemoError {
    /// A node could not start.
    Driver(DriverError),
    /// The poll failed.
    Io(std::io::Error),
    /// No OS randomness for the keys.
    Rng(getrandom::Error),
}

impl fmt::Display for DemoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DemoError::Driver(error) => error.fmt(f),
            DemoError::Io(error) => write!(f, "event loop: {error}"),
            DemoError::Rng(error) => write!(f, "no OS randomness: {error}"),
        }
    }
}

impl std::error::Error for DemoError {}

/// A node config for loopback clusters: channel 1, and per-address limits lifted, since
/// every node shares 127.0.0.1.
pub fn loopback_node_config(nodes: usize) -> NodeConfig {
    let mut config = NodeConfig::new("switchboard-demo", "switchboard-demo/0.1");
    config.add_channel("demo", 1, ChannelConfig::new(CHANNEL));
    let limits = &mut config.limits;
    limits.max_inbound = limits.max_inbound.max(nodes);
    limits.max_pending_handshakes = limits.max_pending_handshakes.max(nodes);
    limits.max_inbound_per_ip = limits.max_inbound_per_ip.max(nodes);
    limits.max_inbound_per_subnet = limits.max_inbound_per_subnet.max(nodes);
    limits.max_pending_per_subnet = limits.max_pending_per_subnet.max(nodes);
    config
}

/// Discovery for loopback clusters: loopback addresses kept in the address book, any number
/// of outbound peers in 127.0.0.1's address group (every node's), and a pace that
/// converges in seconds.
pub fn loopback_discovery_config(seeds: Vec<NetAddress>) -> DiscoveryConfig {
    let mut config = DiscoveryConfig::local_network(seeds);
    config.interval = Duration::from_millis(500);
    config.pex.request_interval = Duration::from_secs(2);
    config
}

/// The addresses node `index` is given at start (`addresses` are every node's).
pub fn bootstrap_addresses(
    bootstrap: Bootstrap,
    index: usize,
    addresses: &[NetAddress],
) -> Vec<NetAddress> {
    if index == 0 {
        return Vec::new();
    }
    let links = match bootstrap {
        // The seed is in the node's discovery config; discovery dials it.
        Bootstrap::Seed => return Vec::new(),
        Bootstrap::Direct { links } => links,
    };
    let earlier = (1..index).rev().take(links);
    std::iter::once(0)
        .chain(earlier)
        .filter_map(|other| addresses.get(other).copied())
        .collect()
}

/// Runs the demo.
pub fn run(config: &DemoConfig) -> Result<DemoReport, DemoError> {
    let started = Instant::now();
    let mut cluster = Cluster::start(config)?;
    cluster.progress = config.progress;
    let addresses: Vec<NetAddress> = cluster
        .drivers
        .iter()
        .filter_map(Driver::net_address)
        .collect();
    let mut expected: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
    for index in 0..config.nodes {
        for addr in bootstrap_addresses(config.bootstrap, index, &addresses) {
            let Some(other) = addresses.iter().position(|known| *known == addr) else {
                continue;
            };
            expected.entry(index).or_default().insert(other);
            expected.entry(other).or_default().insert(index);
            // A refused dial (never for these fresh addresses) shows as missing peers.
            let _ = cluster.drivers[index].dial(addr);
        }
    }

    let deadline = Instant::now() + config.connect_timeout;
    let mut last_progress = Instant::now();
    loop {
        // Seeded nodes are ready with their outbound slots full (or everyone else known).
        let wanted = match config.bootstrap {
            Bootstrap::Seed => {
                let max_outbound = cluster
                    .drivers
                    .first()
                    .map_or(0, |d| d.limits().max_outbound);
                max_outbound.min(config.nodes.saturating_sub(1))
            }
            Bootstrap::Direct { .. } => 0,
        };
        let ready = (0..config.nodes)
            .filter(|index| {
                let peers = cluster.drivers[*index].node().peers().count();
                peers >= expected.get(index).map_or(0, BTreeSet::len) && peers >= wanted
            })
            .count();
        if ready == config.nodes || Instant::now() >= deadline {
            break;
        }
        if config.progress && last_progress.elapsed() >= Duration::from_millis(500) {
            last_progress = Instant::now();
            eprintln!(
                "[{:5.2} s] connecting: {ready}/{} nodes have their peers, {} links up",
                started.elapsed().as_secs_f64(),
                config.nodes,
                cluster.links()
            );
        }
        cluster.turn(Duration::from_millis(50))?;
    }
    let (connected_nodes, min_peers, max_peers) = cluster.topology();
    if config.progress {
        eprintln!(
            "[{:5.2} s] connected: {connected_nodes}/{} nodes, {} links; broadcasting",
            started.elapsed().as_secs_f64(),
            config.nodes,
            cluster.links()
        );
    }

    let mut broadcasts = 0u64;
    let mut expected_deliveries = 0u64;
    for round in 0..config.rounds {
        for index in 0..config.nodes {
            let mut message = vec![0u8; config.message_size.max(8)];
            message[..4].copy_from_slice(&(index as u32).to_be_bytes());
            message[4..8].copy_from_slice(&(round as u32).to_be_bytes());
            let driver = &mut cluster.drivers[index];
            expected_deliveries += driver.broadcast(CHANNEL, Bytes::from(message)) as u64;
            broadcasts += 1;
        }
        cluster.turn(Duration::ZERO)?;
    }
    let deadline = Instant::now() + config.deliver_timeout;
    let mut last_progress = Instant::now();
    while cluster.deliveries < expected_deliveries && Instant::now() < deadline {
        if config.progress && last_progress.elapsed() >= Duration::from_millis(500) {
            last_progress = Instant::now();
            eprintln!(
                "[{:5.2} s] delivered {}/{expected_deliveries}",
                started.elapsed().as_secs_f64(),
                cluster.deliveries
            );
        }
        cluster.turn(Duration::from_millis(50))?;
    }
    if config.progress {
        eprintln!(
            "[{:5.2} s] delivered {}/{expected_deliveries}; shutting down",
            started.elapsed().as_secs_f64(),
            cluster.deliveries
        );
    }
    let bytes_sent = cluster
        .drivers
        .iter()
        .map(|d| d.stats().bytes_written)
        .sum();
    let deliveries = cluster.deliveries;
    cluster.shutdown(started)?;
    Ok(DemoReport {
        nodes: config.nodes,
        connected_nodes,
        min_peers,
        max_peers,
        broadcasts,
        deliveries,
        expected_deliveries,
        elapsed_s: started.elapsed().as_secs_f64(),
        bytes_sent,
    })
}

/// The nodes and their shared poll.
struct Cluster {
    poll: Poll,
    events: Events,
    drivers: Vec<Driver<Router<ChaCha20Rng>>>,
    index_of: BTreeMap<PeerId, usize>,
    deliveries: u64,
    progress: bool,
    /// Set once every node was told to shut down: departures are then expected and counted
    /// (by reason), not printed one by one.
    shutting_down: bool,
    /// Departures during the shutdown, by reason.
    departures: BTreeMap<String, usize>,
}

impl Cluster {
    fn start(config: &DemoConfig) -> Result<Self, DemoError> {
        let poll = Poll::new().map_err(DemoError::Io)?;
        let mut rng = crate::os_seeded_rng().map_err(DemoError::Rng)?;
        let mut drivers = Vec::with_capacity(config.nodes);
        let mut seeds = Vec::new();
        for index in 0..config.nodes {
            let tokens = index * TOKENS_PER_NODE..(index + 1) * TOKENS_PER_NODE;
            let listen = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
            let node = loopback_node_config(config.nodes);
            let discovery = loopback_discovery_config(match config.bootstrap {
                Bootstrap::Seed => seeds.clone(),
                Bootstrap::Direct { .. } => Vec::new(),
            });
            let driver_config =
                DriverConfig::new(node, Keypair::generate(&mut rng), vec![listen], tokens);
            let driver = Driver::with_router(poll.registry(), driver_config, |router| {
                let discovery = Discovery::new(discovery, router.node_mut().rng());
                router.register(discovery).map(drop)
            })
            .map_err(DemoError::Driver)?;
            if index == 0 {
                seeds.extend(driver.net_address());
            }
            drivers.push(driver);
        }
        let index_of = drivers
            .iter()
            .enumerate()
            .map(|(index, driver)| (driver.peer_id(), index))
            .collect();
        Ok(Cluster {
            poll,
            events: Events::with_capacity(4096),
            drivers,
            index_of,
            deliveries: 0,
            progress: false,
            shutting_down: false,
            departures: BTreeMap::new(),
        })
    }

    /// One pass of the loop: wait at most `max_wait`, dispatch, fire timers, take events.
    fn turn(&mut self, max_wait: Duration) -> Result<(), DemoError> {
        let wait = self
            .drivers
            .iter_mut()
            .filter_map(Driver::poll_timeout)
            .min()
            .map_or(max_wait, |wait| wait.min(max_wait));
        match self.poll.poll(&mut self.events, Some(wait)) {
            Ok(()) => {}
            Err(error) if error.kind() == ErrorKind::Interrupted => return Ok(()),
            Err(error) => return Err(DemoError::Io(error)),
        }
        for event in self.events.iter() {
            let Token(token) = event.token();
            if let Some(driver) = self.drivers.get_mut(token / TOKENS_PER_NODE) {
                driver.handle_event(event);
            }
        }
        for index in 0..self.drivers.len() {
            while let Some(event) = self.drivers[index].poll_event() {
                self.on_event(index, event);
            }
        }
        Ok(())
    }

    fn on_event(&mut self, index: usize, event: NodeEvent) {
        match event {
            NodeEvent::Message { channel, .. } if channel == CHANNEL => self.deliveries += 1,
            NodeEvent::PeerDisconnected { reason, .. } if self.shutting_down => {
                *self.departures.entry(format!("{reason:?}")).or_default() += 1;
            }
            NodeEvent::PeerDisconnected { peer, reason, .. } if self.progress => {
                match self.index_of.get(&peer) {
                    Some(other) => eprintln!("node {index}: node {other} left ({reason:?})"),
                    None => eprintln!("node {index}: peer {peer} left ({reason:?})"),
                }
            }
            _ => {}
        }
    }

    /// Connections, counted once.
    fn links(&self) -> usize {
        self.drivers
            .iter()
            .map(|d| d.node().peers().count())
            .sum::<usize>()
            / 2
    }

    /// Nodes in the seed's component, and the fewest and most peers of any node.
    fn topology(&self) -> (usize, usize, usize) {
        let counts: Vec<usize> = self
            .drivers
            .iter()
            .map(|d| d.node().peers().count())
            .collect();
        let mut reached = BTreeSet::from([0usize]);
        let mut frontier = vec![0usize];
        while let Some(index) = frontier.pop() {
            for peer in self.drivers[index].node().peers() {
                if let Some(&other) = self.index_of.get(&peer)
                    && reached.insert(other)
                {
                    frontier.push(other);
                }
            }
        }
        let connected = if self.drivers.is_empty() {
            0
        } else {
            reached.len()
        };
        let min = counts.iter().copied().min().unwrap_or(0);
        let max = counts.iter().copied().max().unwrap_or(0);
        (connected, min, max)
    }

    /// Every node says GOAWAY(Quitting) to its peers; the loop runs until they are written.
    /// With progress on, one line says how the connections ended.
    fn shutdown(mut self, started: Instant) -> Result<(), DemoError> {
        self.shutting_down = true;
        let timeout = Duration::from_secs(2);
        for driver in &mut self.drivers {
            driver.shutdown(timeout);
        }
        let deadline = Instant::now() + timeout;
        while !self.drivers.iter().all(Driver::is_idle) && Instant::now() < deadline {
            self.turn(Duration::from_millis(20))?;
        }
        if self.progress {
            let ends: Vec<String> = self
                .departures
                .iter()
                .map(|(reason, count)| format!("{count} {reason}"))
                .collect();
            let open: usize = self.drivers.iter().map(Driver::socket_count).sum();
            let ended: usize = self.departures.values().sum();
            eprintln!(
                "[{:5.2} s] shut down: {ended} peer connections ended ({}); {open} sockets still open",
                started.elapsed().as_secs_f64(),
                ends.join(", "),
            );
        }
        Ok(())
    }
}
