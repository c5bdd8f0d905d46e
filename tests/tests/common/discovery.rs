//! Nodes with discovery on, for the discovery suites on the simulated network.

use std::net::{IpAddr, Ipv4Addr};

use switchboard::NetAddress;
use switchboard::node::NodeConfig;
use switchboard_sim::test_node_config;

/// Outbound slots per node (the default of SPEC §4).
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
