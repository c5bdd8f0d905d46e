//! One seed reproduces a run exactly: the same seed gives the same trace hash and the same
//! summary (latency percentiles included), with every fault on; different seeds give
//! different traces.

use std::time::Duration;

use switchboard_sim::{FaultConfig, Scenario, ScenarioConfig, Summary};

fn run(seed: u64) -> Summary {
    let mut config = ScenarioConfig::new(20, seed);
    config.duration = Duration::from_secs(20);
    config.quiet = Duration::from_secs(10);
    config.faults = FaultConfig::all();
    Scenario::new(config).unwrap().run(|_| {})
}

#[test]
fn the_same_seed_gives_the_same_trace_and_different_seeds_differ() {
    let first = run(42);
    let second = run(42);
    assert!(first.passed(), "{first}");
    assert!(first.events > 10_000, "{first}");
    assert_eq!(first.trace_hash, second.trace_hash);
    assert_eq!(first.events, second.events);
    assert_eq!(first.counters, second.counters);
    assert_eq!(first.outbound_full_s, second.outbound_full_s);
    assert_eq!(first.latency, second.latency);
    assert_eq!(first.bytes_delivered, second.bytes_delivered);
    let other = run(43);
    assert_ne!(first.trace_hash, other.trace_hash);
}
