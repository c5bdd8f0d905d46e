//! Two nodes dialing each other at the same instant end with exactly one connection, the
//! same one on both sides, and neither application sees the loser.

use std::time::Duration;

use switchboard::node::NodeEvent;
use switchboard::peer_set::Direction;
use switchboard_sim::{Sim, SimConfig, test_node_config};

mod common;

fn connects_and_disconnects(log: &[NodeEvent]) -> (usize, usize) {
    let connects = log
        .iter()
        .filter(|event| matches!(event, NodeEvent::PeerConnected { .. }))
        .count();
    let disconnects = log
        .iter()
        .filter(|event| matches!(event, NodeEvent::PeerDisconnected { .. }))
        .count();
    (connects, disconnects)
}

/// 1,000 seeds (about 3 s); `SWITCHBOARD_SEEDS` overrides.
#[test]
fn simultaneous_open_over_many_seeds_keeps_one_connection() {
    let seeds: u64 = common::seeds_from_env("SWITCHBOARD_SEEDS", 1000);
    let mut kept_lower_dial = 0u64;
    for seed in 0..seeds {
        let mut sim = Sim::new(SimConfig::with_seed(seed));
        let a = sim.add_node(test_node_config());
        let b = sim.add_node(test_node_config());
        let (a_addr, b_addr) = (sim.address(a), sim.address(b));
        let now = sim.now();
        sim.node_mut(a).dial(now, b_addr).unwrap();
        sim.node_mut(b).dial(now, a_addr).unwrap();
        sim.run_for(Duration::from_secs(3));
        let (a_id, b_id) = (sim.node(a).peer_id(), sim.node(b).peer_id());
        let a_view = sim
            .node(a)
            .peer_info(&b_id)
            .unwrap_or_else(|| panic!("seed {seed}: a not connected"));
        let b_view = sim
            .node(b)
            .peer_info(&a_id)
            .unwrap_or_else(|| panic!("seed {seed}: b not connected"));
        // The same connection: one side's outbound is the other's inbound.
        assert_ne!(a_view.direction, b_view.direction, "seed {seed}");
        assert_eq!(sim.node(a).connection_count(), 1, "seed {seed}");
        assert_eq!(sim.node(b).connection_count(), 1, "seed {seed}");
        assert_eq!(
            connects_and_disconnects(sim.log(a)),
            (1, 0),
            "seed {seed}: {:?}",
            sim.log(a)
        );
        assert_eq!(
            connects_and_disconnects(sim.log(b)),
            (1, 0),
            "seed {seed}: {:?}",
            sim.log(b)
        );
        let lower_dialed = (a_id < b_id) == (a_view.direction == Direction::Outbound);
        kept_lower_dial += u64::from(lower_dialed);
    }
    // With both dials racing, the one kept is the lower id's whenever both completed the
    // handshake; that is most seeds.
    assert!(kept_lower_dial > seeds / 2, "{kept_lower_dial} of {seeds}");
}
