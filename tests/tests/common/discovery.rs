//! Nodes running discovery, for the discovery suites on the simulated network.

use std::net::{IpAddr, Ipv4Addr};

use switchboard::addr_book::{AddOutcome, AddrBook};
use switchboard::discovery::{Discovery, DiscoveryConfig};
use switchboard::node::NodeConfig;
use switchboard::{Instant, NetAddress};
use switchboard_sim::{NodeIndex, Sim, test_discovery_config, test_node_config};

/// Outbound slots per node (the default).
pub const MAX_OUTBOUND: usize = 10;

/// Node `index`'s IP: a /16 of its own, so the one-outbound-peer-per-group rule never
/// stands between two honest nodes.
pub fn ip(index: usize) -> IpAddr {
    let index = u16::try_from(index).expect("fewer than 65,536 nodes");
    let [high, low] = index.to_be_bytes();
    IpAddr::V4(Ipv4Addr::new(10 + high, low, 0, 1))
}

/// A node running discovery: its own config and its discovery's, for a test to adjust
/// before adding it.
pub struct Discovering {
    /// The node's config: `test_node_config` with [`MAX_OUTBOUND`] slots.
    pub node: NodeConfig,
    /// Its discovery's: `test_discovery_config` knowing the seeds.
    pub discovery: DiscoveryConfig,
}

impl Discovering {
    /// Adds the node at `ip`.
    pub fn add_at(self, sim: &mut Sim, ip: IpAddr) -> NodeIndex {
        sim.add_node_with_discovery_at(self.node, self.discovery, ip)
    }
}

/// A node running discovery knowing `seeds`.
pub fn discovering(seeds: Vec<NetAddress>) -> Discovering {
    let mut node = test_node_config();
    node.limits.max_outbound = MAX_OUTBOUND;
    let mut discovery = test_discovery_config();
    discovery.seeds = seeds;
    Discovering { node, discovery }
}

/// Node `index`'s address book (a crashed node's: as it was at the crash).
pub fn book(sim: &Sim, index: NodeIndex) -> &AddrBook {
    sim.protocol::<Discovery>(index)
        .expect("a node running discovery")
        .addr_book()
}

/// Tells node `index`'s book about `addr`, as if configured.
pub fn add_address(sim: &mut Sim, index: NodeIndex, addr: NetAddress) -> AddOutcome {
    sim.with_protocol(index, |discovery: &mut Discovery, ctx| {
        discovery.add_address(ctx.now(), addr)
    })
    .expect("a live node running discovery")
}

/// When node `at` last dialed node `of`'s address, as its book says.
pub fn last_attempt(sim: &Sim, at: NodeIndex, of: NodeIndex) -> Option<Instant> {
    let socket = sim.address(of).socket_addr();
    book(sim, at)
        .get(&socket)
        .and_then(|info| info.last_attempt)
}
