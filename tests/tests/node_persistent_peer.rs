//! A persistent peer is redialed whenever its connection dies; while it stays unreachable
//! the backoff grows to its cap, and after the network heals it reconnects within that bound.

use std::time::Duration;

use switchboard::Instant;
use switchboard::dial_queue::Retry;
use switchboard::node::NodeEvent;
use switchboard_sim::{Sim, SimConfig, test_node_config};

#[test]
fn killed_ten_times_redialed_ten_times_then_backoff_grows_capped_and_heals() {
    let mut sim = Sim::new(SimConfig::with_seed(21));
    let b = sim.add_node(test_node_config());
    let mut config = test_node_config();
    config.dial.backoff_base = Duration::from_secs(1);
    config.dial.backoff_cap = Duration::from_secs(8);
    config.dial.max_attempts = 1; // persistence overrides it
    config.persistent_peers.push(sim.address(b));
    let a = sim.add_node(config);
    let b_id = sim.node(b).peer_id();
    let connected =
        |sim: &Sim| sim.node(a).peers().count() == 1 && sim.node(b).peers().count() == 1;
    assert!(sim.run_until(sim.now() + Duration::from_secs(2), connected));

    for kill in 0..10 {
        sim.reset_links(b);
        let killed_at = sim.now();
        sim.run_for(Duration::from_millis(1));
        assert_eq!(sim.node(a).peers().count(), 0, "kill {kill}");
        // Redialed after the base backoff (1 s), plus a handshake.
        assert!(
            sim.run_until(killed_at + Duration::from_secs(3), connected),
            "kill {kill}: not back within 3 s"
        );
        assert!(
            sim.now() - killed_at >= Duration::from_secs(1),
            "kill {kill}: redialed before the backoff"
        );
    }
    let disconnects = sim
        .log(a)
        .iter()
        .filter(|event| matches!(event, NodeEvent::PeerDisconnected { peer, .. } if *peer == b_id))
        .count();
    assert_eq!(disconnects, 10);

    // Unreachable for two minutes: every failure schedules a retry, spaced ever wider up to
    // the cap (8 s ± 50%).
    let log_start = sim.log(a).len();
    sim.set_partitioned(a, b, true);
    sim.run_for(Duration::from_secs(120));
    let retries: Vec<Instant> = sim.log(a)[log_start..]
        .iter()
        .filter_map(|event| match event {
            NodeEvent::DialFailed {
                retry: Retry::At(at),
                ..
            } => Some(*at),
            NodeEvent::DialFailed {
                retry: Retry::GivenUp,
                ..
            } => panic!("a persistent peer was given up"),
            _ => None,
        })
        .collect();
    assert!(retries.len() >= 12, "{} retries in 120 s", retries.len());
    let gaps: Vec<Duration> = retries.windows(2).map(|pair| pair[1] - pair[0]).collect();
    assert!(
        gaps.iter()
            .all(|gap| *gap <= Duration::from_secs(12) + Duration::from_millis(100)),
        "{gaps:?}"
    );
    let late = &gaps[gaps.len() - 5..];
    assert!(
        late.iter().all(|gap| *gap >= Duration::from_secs(4)),
        "the backoff did not grow: {gaps:?}"
    );
    assert!(gaps[0] < Duration::from_secs(4), "{gaps:?}");

    // Healed: back within the capped backoff.
    sim.set_partitioned(a, b, false);
    let healed = sim.now();
    assert!(
        sim.run_until(healed + Duration::from_secs(13), connected),
        "not reconnected within 12 s of healing"
    );
}
