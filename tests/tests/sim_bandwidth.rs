//! A link's bandwidth bounds throughput: a write arrives after the bytes queued before it
//! have gone out, and a sender whose socket buffer fills is told its socket would block.

use std::time::Duration;

use bytes::Bytes;
use switchboard::node::NodeEvent;
use switchboard_sim::{Sim, SimConfig, test_node_config};

#[test]
fn a_megabyte_over_100_kb_per_second_takes_ten_seconds() {
    let mut config = SimConfig::with_seed(3);
    config.latency = (Duration::from_millis(10), Duration::from_millis(10));
    config.bandwidth = Some((100_000, 100_000));
    config.socket_buffer = 64 * 1024;
    let mut sim = Sim::new(config);
    let a = sim.add_node(test_node_config());
    let b = sim.add_node(test_node_config());
    let (b_addr, b_id) = (sim.address(b), sim.node(b).peer_id());
    let now = sim.now();
    sim.node_mut(a).dial(now, b_addr).unwrap();
    let now = sim.now();
    assert!(sim.run_until(
        now + Duration::from_secs(1),
        |sim| sim.node(a).peers().count() == 1
    ));

    let start = sim.now();
    for _ in 0..10 {
        let now = sim.now();
        sim.node_mut(a)
            .send(now, &b_id, 1, Bytes::from(vec![7u8; 100_000]))
            .unwrap();
    }
    let received = |sim: &Sim| {
        sim.log(b)
            .iter()
            .filter(|event| matches!(event, NodeEvent::Message { .. }))
            .count()
    };
    assert!(sim.run_until(start + Duration::from_secs(20), |sim| received(sim) == 10));
    let took = sim.now().saturating_duration_since(start);
    // 1,000,000 bytes of payload plus record and frame overhead at 100,000 B/s.
    assert!(
        took >= Duration::from_secs(10) && took < Duration::from_millis(10_500),
        "{took:?}"
    );
}
