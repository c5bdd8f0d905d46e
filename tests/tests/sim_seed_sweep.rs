//! A sweep of seeds, 30 nodes each with every fault on, every invariant checked in every
//! run (see `switchboard_sim::invariants`). `SWITCHBOARD_SIM_SEEDS=N` sets how many seeds
//! (the README has the long opt-in sweep); a failure names the seed and the command line
//! that reproduces it.

use std::time::Duration;

use switchboard_sim::{FaultConfig, Scenario, ScenarioConfig};

mod common;

/// Seeds in the default test run, kept within the CI budget of a debug build on 2 cores.
const DEFAULT_SEEDS: u64 = 30;

#[test]
fn every_invariant_holds_over_many_seeds_with_every_fault() {
    let seeds: u64 = common::seeds_from_env("SWITCHBOARD_SIM_SEEDS", DEFAULT_SEEDS);
    let mut failures = Vec::new();
    let mut messages = 0;
    for seed in 0..seeds {
        let mut config = ScenarioConfig::new(30, seed);
        config.duration = Duration::from_secs(20);
        config.quiet = Duration::from_secs(10);
        config.faults = FaultConfig::all();
        let summary = Scenario::new(config).unwrap().run(|_| {});
        messages += summary.counters.sent;
        if !summary.passed() {
            failures.push(format!("{summary}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(messages > seeds * 500, "too little traffic: {messages}");
}
