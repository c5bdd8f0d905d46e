//! Nodes with discovery on, for the discovery suites on the simulated network.

use std::net::{IpAddr, Ipv4Addr};

use switchboard::node::NodeConfig;
use switchboard::{Instant, NetAddress};
use switchboard_sim::{NodeIndex, Sim, test_node_config};

/// Outbound slots per node (the default).
pub const MAX_OUTBOUND: usize = 10;

/// Node `index`'s IP: a /16 of its own, so the one-outbound-peer-per-group rule never
/// stands between two honest nodes.
pub fn ip(index: usize) -> IpAddr {
    let index = u16::try_from(index).expect("fewer than 65,536 nodes");
    let [high, low] = index.to_be_bytes();
    IpAddr::V4(Ipv4Addr::new(10 + high, low, 0, 1))
}

/// A node with discovery on (`test_node_config` turns it off) knowing `seeds`.
pub fn discovering(seeds: Vec<NetAddress>) -> NodeConfig {
    let mut config = test_node_config();
    config.discovery.enabled = true;
    config.discovery.seeds = seeds;
    config.limits.max_outbound = MAX_OUTBOUND;
    config
}

/// When node `at` last dialed node `of`'s address, as its book says.
pub fn last_attempt(sim: &Sim, at: NodeIndex, of: NodeIndex) -> Option<Instant> {
    let socket = sim.address(of).socket_addr();
    sim.node(at)
        .addr_book()
        .get(&socket)
        .and_then(|info| info.last_attempt)
}
