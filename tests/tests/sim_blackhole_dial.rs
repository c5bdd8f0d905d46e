//! A dial into a black hole never completes: the listener never sees it, and the dialer's
//! own dial timeout must end it with `DialFailed { reason: Timeout }`.

use std::time::Duration;

use switchboard::DisconnectReason;
use switchboard::node::NodeEvent;
use switchboard_sim::{PartitionMode, Sim, SimConfig, test_node_config};

#[test]
fn a_swallowed_dial_fails_by_the_dial_timeout() {
    let mut sim = Sim::new(SimConfig::with_seed(5));
    let mut config = test_node_config();
    config.dial.dial_timeout = Duration::from_secs(2);
    let a = sim.add_node(config);
    let b = sim.add_node(test_node_config());
    sim.set_swallowing_dials(b, true);
    let b_addr = sim.address(b);
    let dialed_at = sim.now();
    sim.node_mut(a).dial(dialed_at, b_addr).unwrap();
    let inputs_to_b_before = sim.log(b).len();

    sim.run_for(Duration::from_millis(1900));
    assert!(
        sim.log(a).is_empty(),
        "failed before its timeout: {:?}",
        sim.log(a)
    );
    let failed_at = {
        let now = sim.now();
        let mut failed = None;
        sim.run_until(now + Duration::from_secs(1), |sim| {
            let done = sim.log(a).iter().any(|event| {
                matches!(
                    event,
                    NodeEvent::DialFailed {
                        reason: DisconnectReason::Timeout,
                        ..
                    }
                )
            });
            if done && failed.is_none() {
                failed = Some(sim.now());
            }
            done
        });
        failed.expect("no DialFailed within 3 s")
    };
    let waited = failed_at.saturating_duration_since(dialed_at);
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_millis(2100),
        "{waited:?}"
    );
    assert_eq!(sim.log(b).len(), inputs_to_b_before, "b saw the dial");
    assert_eq!(sim.node(b).connection_count(), 0);
}

#[test]
fn a_dial_across_a_black_hole_partition_fails_by_the_dial_timeout() {
    let mut sim = Sim::new(SimConfig::with_seed(6));
    let mut config = test_node_config();
    config.dial.dial_timeout = Duration::from_secs(1);
    let a = sim.add_node(config);
    let b = sim.add_node(test_node_config());
    sim.partition(&[a], PartitionMode::BlackHole);
    let now = sim.now();
    let b_addr = sim.address(b);
    sim.node_mut(a).dial(now, b_addr).unwrap();
    sim.run_for(Duration::from_millis(1500));
    assert!(
        sim.log(a).iter().any(|event| matches!(
            event,
            NodeEvent::DialFailed {
                reason: DisconnectReason::Timeout,
                ..
            }
        )),
        "{:?}",
        sim.log(a)
    );
    assert_eq!(sim.node(b).connection_count(), 0);
}
