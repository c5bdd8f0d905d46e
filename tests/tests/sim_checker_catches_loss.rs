//! The checker can fail: with the test-only fault that hides one delivery from it, the
//! sender's confirmation of that message must be reported as a loss, with the seed and the
//! command line that reproduce it.

use std::time::Duration;

use switchboard_sim::{Scenario, ScenarioConfig, ViolationKind};

#[test]
fn a_hidden_delivery_is_reported_as_lost_with_its_seed() {
    let mut config = ScenarioConfig::new(8, 77);
    config.duration = Duration::from_secs(10);
    config.quiet = Duration::from_secs(5);
    config.drop_one_delivery = true;
    let summary = Scenario::new(config).unwrap().run(|_| {});
    assert!(!summary.passed());
    assert_eq!(summary.counters.lost, 1, "{summary}");
    assert_eq!(summary.counters.duplicates + summary.counters.reordered, 0);
    assert_eq!(summary.violations[0].kind, ViolationKind::Lost);
    assert!(
        summary.violations[0]
            .detail
            .contains("confirmed, never delivered"),
        "{}",
        summary.violations[0]
    );
    assert!(
        summary.command_line.contains("--seed 77"),
        "{}",
        summary.command_line
    );
    let text = summary.to_string();
    assert!(
        text.contains("VIOLATIONS") && text.contains("--seed 77"),
        "{text}"
    );
    assert!(summary.to_json().contains("\"messages_lost\":1"));
}

#[test]
fn without_the_fault_the_same_run_passes() {
    let mut config = ScenarioConfig::new(8, 77);
    config.duration = Duration::from_secs(10);
    config.quiet = Duration::from_secs(5);
    let summary = Scenario::new(config).unwrap().run(|_| {});
    assert!(summary.passed(), "{summary}");
    assert!(summary.counters.delivered > 50, "{summary}");
}
