//! The listening side says why an accepted connection never became a peer: a handshake
//! refused by a check, and one that never completes, each reported once as
//! `NodeEvent::InboundRefused` with the remote address and the reason.

use std::time::Duration;

use switchboard::DisconnectReason;
use switchboard::connection::ClosedBy;
use switchboard::node::NodeEvent;
use switchboard_sim::{Sim, SimConfig, test_node_config};

fn refusals(sim: &Sim, index: usize) -> Vec<(std::net::IpAddr, DisconnectReason, ClosedBy)> {
    sim.log(index)
        .iter()
        .filter_map(|event| match event {
            NodeEvent::InboundRefused {
                remote, reason, by, ..
            } => Some((remote.ip(), *reason, *by)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_peer_refused_by_a_check_is_reported_with_its_address_and_reason() {
    let mut sim = Sim::new(SimConfig::with_seed(4));
    let mut full = test_node_config();
    full.limits.max_inbound = 0;
    let listener = sim.add_node(full);
    let dialer = sim.add_node(test_node_config());
    let (now, address) = (sim.now(), sim.address(listener));
    sim.node_mut(dialer).dial(now, address).expect("dial");
    sim.run_for(Duration::from_secs(3));
    let dialer_id = sim.node(dialer).peer_id();
    let reports: Vec<_> = sim
        .log(listener)
        .iter()
        .filter_map(|event| match event {
            NodeEvent::InboundRefused { peer, reason, .. } => Some((*peer, *reason)),
            _ => None,
        })
        .collect();
    // One report per attempt: the dialer retries with backoff, and is refused each time.
    let attempts = sim
        .log(dialer)
        .iter()
        .filter(|event| matches!(event, NodeEvent::DialFailed { .. }))
        .count();
    assert!(attempts >= 1);
    assert_eq!(
        reports,
        vec![(Some(dialer_id), DisconnectReason::TooManyPeers); attempts]
    );
    assert_eq!(
        refusals(&sim, listener),
        vec![
            (
                Sim::ip_for(dialer),
                DisconnectReason::TooManyPeers,
                ClosedBy::Local
            );
            attempts
        ]
    );
}

#[test]
fn a_dialer_that_gives_up_on_us_is_reported_as_the_far_ends_doing() {
    let mut sim = Sim::new(SimConfig::with_seed(4));
    let listener = sim.add_node(test_node_config());
    let mut other = test_node_config();
    other.network = "elsewhere".into();
    let dialer = sim.add_node(other);
    let (now, address) = (sim.now(), sim.address(listener));
    sim.node_mut(dialer).dial(now, address).expect("dial");
    sim.run_for(Duration::from_secs(3));
    // The dialer checks us first and leaves before revealing itself: we see it go.
    let refused = refusals(&sim, listener);
    assert!(!refused.is_empty());
    for (ip, _, by) in refused {
        assert_eq!((ip, by), (Sim::ip_for(dialer), ClosedBy::Remote));
    }
    assert_eq!(sim.node(listener).peers().count(), 0);
}

#[test]
fn an_admitted_peer_is_not_reported() {
    let mut sim = Sim::new(SimConfig::with_seed(5));
    let listener = sim.add_node(test_node_config());
    let dialer = sim.add_node(test_node_config());
    let (now, address) = (sim.now(), sim.address(listener));
    sim.node_mut(dialer).dial(now, address).expect("dial");
    sim.run_for(Duration::from_secs(3));
    assert_eq!(sim.node(listener).peers().count(), 1);
    assert!(refusals(&sim, listener).is_empty());
}
