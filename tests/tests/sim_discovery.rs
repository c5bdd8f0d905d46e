//! The simulator with discovery instead of random dials: seed-mode seeds, peer exchange,
//! outbound slots filled from the address book — under every fault, every invariant
//! checked, and after the faults heal the network is one component with full slots.

use std::time::Duration;

use switchboard_sim::{FaultConfig, Scenario, ScenarioConfig};

mod common;

/// Seeds in the default run (`SWITCHBOARD_SIM_SEEDS` sets more).
const DEFAULT_SEEDS: u64 = 5;

#[test]
fn a_network_bootstrapped_by_pex_keeps_every_invariant_under_every_fault() {
    let seeds: u64 = common::seeds_from_env("SWITCHBOARD_SIM_SEEDS", DEFAULT_SEEDS);
    let mut failures = Vec::new();
    for seed in 0..seeds {
        let mut config = ScenarioConfig::new(60, seed);
        config.duration = Duration::from_secs(30);
        config.quiet = Duration::from_secs(15);
        config.faults = FaultConfig::all();
        config.discovery = true;
        let summary = Scenario::new(config).unwrap().run(|_| {});
        if !summary.passed() || summary.components != 1 || summary.outbound_full_s.is_none() {
            failures.push(format!("{summary}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn without_faults_pex_fills_every_outbound_slot_within_seconds() {
    let mut config = ScenarioConfig::new(200, 1);
    config.duration = Duration::from_secs(20);
    config.discovery = true;
    config.stop_when_outbound_full = true;
    let summary = Scenario::new(config).unwrap().run(|_| {});
    assert!(summary.passed(), "{summary}");
    let full = summary.outbound_full_s.expect("every slot filled");
    assert!(full < 10.0, "{full} s");
    assert_eq!(summary.components, 1);
}
