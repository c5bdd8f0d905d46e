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

/// Runs one seed: `a` and `b` dial each other at the same instant. Checks that they end
/// with one connection, the same on both sides, with neither application seeing the loser;
/// returns whether the kept connection is the one the lower `PeerId` dialed.
fn simultaneous_open(config: SimConfig) -> bool {
    let seed = config.seed;
    let mut sim = Sim::new(config);
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
    (a_id < b_id) == (a_view.direction == Direction::Outbound)
}

/// 1,000 seeds (about 3 s); `SWITCHBOARD_SEEDS` overrides.
///
/// Links of 1–20 ms: each dial's link draws its own latency, so in many seeds one handshake
/// completes at a node before that node's own dial has learned whom it reached (see below),
/// and the connection kept is whichever the application saw first. Only the outcome every
/// seed shares is asserted here.
#[test]
fn simultaneous_open_over_many_seeds_keeps_one_connection() {
    let seeds: u64 = common::seeds_from_env("SWITCHBOARD_SEEDS", 1000);
    for seed in 0..seeds {
        simultaneous_open(SimConfig::with_seed(seed));
    }
}

/// The rule between two connections neither application sees yet is deterministic: the
/// one the lower `PeerId` dialed is kept, at both ends (`core/src/node/mod.rs`, "One
/// connection per peer"). It decides whenever each node, admitting the first handshake to
/// complete there, already knows whom its own dial reached, and the rival is therefore a
/// candidate. With the two links' one-way latencies `l1` (a's dial) and `l2` (b's): in the
/// sim a listener accepts at once and a dialer is connected a round trip later, `2·l1`; its
/// message 1 reaches b at `3·l1`, message 2 is back at `4·l1`, when a learns whom its dial
/// reached; b's dial's message 3 reaches a at `5·l2`, when a admits it. So the rule decides
/// at a when `4·l1 < 5·l2`, and at b when `4·l2 < 5·l1`: both when the latencies differ by
/// less than a factor 1.25. The seeds of the sweep above where they differ by more are the
/// ones excluded (about 4 in 10 fall to the first rule there). Here both links draw from
/// 20–24 ms (a factor of at most 1.2) without heavy-tail delays, and the
/// lower id's dial must win in every seed.
#[test]
fn when_both_handshakes_race_the_lower_ids_dial_is_kept_in_every_seed() {
    let seeds: u64 = common::seeds_from_env("SWITCHBOARD_SEEDS", 1000);
    for seed in 0..seeds {
        let mut config = SimConfig::with_seed(seed);
        config.latency = (Duration::from_millis(20), Duration::from_millis(24));
        config.heavy_tail = None;
        assert!(
            simultaneous_open(config),
            "seed {seed}: the higher id's dial was kept"
        );
    }
}
