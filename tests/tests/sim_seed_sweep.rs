//! A sweep of seeds, 30 nodes each with every fault on, every invariant checked in every
//! run (see `switchboard_sim::invariants`), liveness after the heal included; each run must
//! have delivered at least half of what it sent, and the sweep nine tenths. `SWITCHBOARD_SIM_SEEDS=N` sets how many seeds
//! (the README has the long opt-in sweep); a failure names the seed and the command line
//! that reproduces it.

use std::time::Duration;

use switchboard_sim::{Counters, FaultConfig, Scenario, ScenarioConfig};

mod common;

/// Seeds in the default test run, kept within the CI budget of a debug build on 2 cores.
const DEFAULT_SEEDS: u64 = 30;

#[test]
fn every_invariant_holds_over_many_seeds_with_every_fault() {
    let seeds: u64 = common::seeds_from_env("SWITCHBOARD_SIM_SEEDS", DEFAULT_SEEDS);
    let mut failures = Vec::new();
    let mut total = Counters::default();
    for seed in 0..seeds {
        let mut config = ScenarioConfig::new(30, seed);
        // Faults for 10 s, then 14 s of quiet: messages sent in its first 4 s are judged
        // by the 10 s liveness bound.
        config.duration = Duration::from_secs(24);
        config.quiet = Duration::from_secs(14);
        config.faults = FaultConfig::all();
        let summary = Scenario::new(config).unwrap().run(|_| {});
        let c = &summary.counters;
        total.sent += c.sent;
        total.delivered += c.delivered;
        total.confirmed += c.confirmed;
        total.limit_violations += c.limit_violations;
        total.max_conn_buffered_bytes =
            total.max_conn_buffered_bytes.max(c.max_conn_buffered_bytes);
        total.returned_unconfirmed += c.returned_unconfirmed;
        total.returned_unsent += c.returned_unsent;
        total.lost_with_crash += c.lost_with_crash;
        total.pending += c.pending;
        total.lost += c.lost;
        total.duplicates += c.duplicates;
        total.reordered += c.reordered;
        total.corrupted += c.corrupted;
        total.liveness_violations += c.liveness_violations;
        total.violations += c.violations;
        // Deliveries happened in every run, not only sends.
        if !summary.passed() || c.delivered < c.sent / 2 {
            failures.push(format!("{summary}"));
        }
    }
    eprintln!("{seeds} seeds: {total:?}");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(total.sent > seeds * 500, "too little traffic: {total:?}");
    // Most of what was sent arrived; the rest came back, went with a crash or was in
    // flight at the end.
    assert!(total.delivered * 10 > total.sent * 9, "{total:?}");
    assert_eq!((total.lost, total.duplicates, total.reordered), (0, 0, 0));
    assert_eq!((total.corrupted, total.liveness_violations), (0, 0));
}
