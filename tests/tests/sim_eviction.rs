//! Inbound eviction on the simulated network: a hub whose inbound slots are full admits a
//! latecomer by evicting one inbound peer, never a trusted one (the checker, on in every
//! run, holds every node to that), and the same seed evicts the same peers.

use std::time::Duration;

use switchboard::DisconnectReason;
use switchboard::PeerId;
use switchboard::connection::ClosedBy;
use switchboard::node::NodeEvent;
use switchboard_sim::{Sim, SimConfig, test_node_config};

/// 12 dialers against 8 inbound slots, the first two trusted: which peers the hub evicted,
/// in order.
fn run(seed: u64) -> (Vec<PeerId>, Vec<PeerId>, usize) {
    let mut sim = Sim::new(SimConfig::with_seed(seed));
    let mut dialer_config = test_node_config();
    dialer_config.dial.max_attempts = 1;
    let dialers: Vec<usize> = (0..12)
        .map(|_| sim.add_node(dialer_config.clone()))
        .collect();
    let trusted: Vec<PeerId> = dialers[..2]
        .iter()
        .map(|&d| sim.node(d).peer_id())
        .collect();
    let mut hub_config = test_node_config();
    hub_config.limits.max_inbound = 8;
    hub_config.trusted_peers = trusted.clone();
    let hub = sim.add_node(hub_config);
    let hub_addr = sim.address(hub);
    for &dialer in &dialers {
        let now = sim.now();
        sim.node_mut(dialer).dial(now, hub_addr).unwrap();
        sim.run_for(Duration::from_millis(300));
    }
    sim.run_for(Duration::from_secs(2));
    sim.finish_checks();
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    let evicted: Vec<PeerId> = sim
        .log(hub)
        .iter()
        .filter_map(|event| match event {
            NodeEvent::PeerDisconnected {
                peer,
                reason: DisconnectReason::Evicted,
                by: ClosedBy::Local,
                ..
            } => Some(*peer),
            _ => None,
        })
        .collect();
    let connected = sim.node(hub).peer_counts().0;
    (evicted, trusted, connected)
}

#[test]
fn a_full_hub_evicts_for_latecomers_never_a_trusted_peer_and_the_same_for_a_seed() {
    let (evicted, trusted, inbound) = run(5);
    // 12 dialers, two trusted (exempt), eight slots: the last two evict one each.
    assert_eq!(evicted.len(), 2, "{evicted:?}");
    assert_eq!(inbound, 10, "eight counted plus two trusted");
    for peer in &trusted {
        assert!(!evicted.contains(peer));
    }
    assert_eq!(run(5).0, evicted, "deterministic for a seed");
}
