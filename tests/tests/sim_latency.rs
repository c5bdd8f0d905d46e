//! The simulator measures what its traffic's delivery took, from `send` to the receiving
//! application, and the scenario summary reports it with the bytes the links carried.

use std::time::Duration;

use bytes::Bytes;
use switchboard_sim::{Scenario, ScenarioConfig, Sim, SimConfig, test_node_config};

/// Two nodes joined by a link of exactly `latency` each way, unlimited bandwidth.
fn connected_pair(latency: Duration) -> (Sim, usize, usize) {
    let mut config = SimConfig::with_seed(11);
    config.latency = (latency, latency);
    config.heavy_tail = None;
    config.bandwidth = None;
    let mut sim = Sim::new(config);
    let a = sim.add_node(test_node_config());
    let b = sim.add_node(test_node_config());
    let b_addr = sim.address(b);
    let now = sim.now();
    sim.node_mut(a).dial(now, b_addr).unwrap();
    let now = sim.now();
    assert!(sim.run_until(now + Duration::from_secs(1), |sim| {
        sim.node(a).peers().count() == 1 && sim.node(b).peers().count() == 1
    }));
    (sim, a, b)
}

#[test]
fn every_delivery_takes_the_link_latency_and_percentiles_say_so() {
    let latency = Duration::from_millis(5);
    let (mut sim, a, b) = connected_pair(latency);
    assert_eq!(sim.delivery_latency().count(), 0);
    for round in 0..100 {
        assert!(sim.send_tracked(a, b, 24 + round));
        assert!(sim.send_tracked(b, a, 1_000));
        sim.run_for(Duration::from_millis(3));
    }
    sim.run_for(Duration::from_millis(50));
    let measured = sim.delivery_latency();
    assert_eq!(measured.count(), 200);
    let percentiles = measured.percentiles().unwrap();
    // Nothing arrives before the link's latency; nothing queues behind a 1 KB message on an
    // unlimited link, so every delivery takes just that (buckets are 1/64 wide).
    let floor = latency - latency / 64;
    for quantile in [percentiles.p50, percentiles.p90, percentiles.p99] {
        assert!(quantile >= floor && quantile <= latency, "{percentiles:?}");
    }
    assert_eq!(percentiles.max, latency, "{percentiles:?}");
    assert_eq!(percentiles.deliveries, 200);
}

#[test]
fn a_tests_own_messages_are_not_measured() {
    let (mut sim, a, b) = connected_pair(Duration::from_millis(2));
    let b_id = sim.node(b).peer_id();
    let now = sim.now();
    sim.node_mut(a)
        .send(
            now,
            &b_id,
            1,
            Bytes::from_static(b"not a generator message"),
        )
        .unwrap();
    sim.run_for(Duration::from_millis(50));
    assert_eq!(sim.delivery_latency().count(), 0);
    assert!(sim.bytes_delivered() > 0);
}

#[test]
fn the_summary_reports_latency_and_bytes_with_the_checker_on_or_off() {
    for check_invariants in [true, false] {
        let mut config = ScenarioConfig::new(12, 5);
        config.duration = Duration::from_secs(10);
        config.quiet = Duration::from_secs(5);
        config.check_invariants = check_invariants;
        let summary = Scenario::new(config).unwrap().run(|_| {});
        let latency = summary.latency.expect("messages were delivered");
        // Links of 1–20 ms: a delivery takes at least the shortest.
        assert!(latency.p50 >= Duration::from_millis(1), "{latency:?}");
        assert!(latency.p50 <= latency.p90 && latency.p90 <= latency.p99);
        assert!(latency.p99 <= latency.max && latency.max < Duration::from_secs(1));
        if check_invariants {
            assert_eq!(latency.deliveries, summary.counters.delivered);
        }
        assert!(summary.bytes_delivered > latency.deliveries * 24);
        let json = summary.to_json();
        for key in [
            "\"bytes_delivered\":",
            "\"bytes_per_sim_s\":",
            "\"latency_p50_ms\":",
            "\"latency_p99_ms\":",
            "\"latency_max_ms\":",
        ] {
            assert!(json.contains(key), "{key} missing from {json}");
        }
        let text = summary.to_string();
        assert!(text.contains("latency     p50"), "{text}");
    }
}
