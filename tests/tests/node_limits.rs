//! Peer limits on the simulated network: the inbound cap, the per-IP limit, and trusted
//! peers admitted above the cap.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use switchboard::DisconnectReason;
use switchboard::node::{Connectedness, NodeEvent};
use switchboard::peer_set::IpNet;
use switchboard_sim::{Sim, SimConfig, test_node_config};

fn dial_failures(sim: &Sim, index: usize) -> Vec<DisconnectReason> {
    sim.log(index)
        .iter()
        .filter_map(|event| match event {
            NodeEvent::DialFailed { reason, .. } => Some(*reason),
            _ => None,
        })
        .collect()
}

#[test]
fn sixty_dialers_against_max_inbound_forty() {
    let mut sim = Sim::new(SimConfig::with_seed(3));
    let mut hub_config = test_node_config();
    hub_config.limits.max_inbound = 40;
    hub_config.limits.max_pending_handshakes = 100;
    // The cap itself, not eviction (`sim_eviction` tests that): the latecomers are refused.
    hub_config.eviction.enabled = false;
    let hub = sim.add_node(hub_config);
    let hub_addr = sim.address(hub);
    let mut dialer_config = test_node_config();
    dialer_config.dial.max_attempts = 1;
    let dialers: Vec<usize> = (0..60)
        .map(|_| sim.add_node(dialer_config.clone()))
        .collect();
    let now = sim.now();
    for &dialer in &dialers {
        sim.node_mut(dialer).dial(now, hub_addr).unwrap();
    }
    sim.run_for(Duration::from_secs(5));
    assert_eq!(sim.node(hub).peer_counts(), (40, 0));
    let connected = dialers
        .iter()
        .filter(|&&d| sim.node(d).peers().count() == 1)
        .count();
    assert_eq!(connected, 40);
    let refused: Vec<usize> = dialers
        .iter()
        .copied()
        .filter(|&d| sim.node(d).peers().count() == 0)
        .collect();
    assert_eq!(refused.len(), 20);
    for dialer in refused {
        assert_eq!(
            dial_failures(&sim, dialer),
            [DisconnectReason::TooManyPeers],
            "dialer {dialer}"
        );
        // The refused never saw a connection, so never a disconnection either.
        assert!(sim.log(dialer).iter().all(|event| !matches!(
            event,
            NodeEvent::PeerConnected { .. } | NodeEvent::PeerDisconnected { .. }
        )));
    }
    // The hub's application saw exactly the admitted ones.
    let hub_connects = sim
        .log(hub)
        .iter()
        .filter(|event| matches!(event, NodeEvent::PeerConnected { .. }))
        .count();
    assert_eq!(hub_connects, 40);
}

#[test]
fn per_ip_limit_and_trusted_peers() {
    let mut sim = Sim::new(SimConfig::with_seed(4));
    let mut hub_config = test_node_config();
    hub_config.limits.max_inbound = 2;
    hub_config.limits.max_inbound_per_ip = 2;
    hub_config.eviction.enabled = false;
    // Trust is by identity: add the hub after the trusted node exists.
    let shared_ip = IpAddr::V4(Ipv4Addr::new(10, 9, 9, 9));
    let mut dialer_config = test_node_config();
    dialer_config.dial.max_attempts = 1;
    let same_ip: Vec<usize> = (0..4)
        .map(|_| sim.add_node_at(dialer_config.clone(), shared_ip))
        .collect();
    let others: Vec<usize> = (0..3)
        .map(|_| sim.add_node(dialer_config.clone()))
        .collect();
    let trusted = others[2];
    hub_config.trusted_peers.push(sim.node(trusted).peer_id());
    let hub = sim.add_node(hub_config);
    let hub_addr = sim.address(hub);
    let now = sim.now();
    for &dialer in &same_ip {
        sim.node_mut(dialer).dial(now, hub_addr).unwrap();
    }
    sim.run_for(Duration::from_secs(5));
    let from_shared = same_ip
        .iter()
        .filter(|&&d| sim.node(d).peers().count() == 1)
        .count();
    assert_eq!(from_shared, 2, "two per IP");
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for &dialer in &same_ip {
        for reason in dial_failures(&sim, dialer) {
            *reasons.entry(format!("{reason:?}")).or_default() += 1;
        }
    }
    // Refused at accept: the socket closes before any handshake.
    assert_eq!(reasons.get("NetworkError"), Some(&2), "{reasons:?}");
    // The hub is full (2 inbound): an ordinary peer is refused, a trusted one admitted.
    let now = sim.now();
    sim.node_mut(others[0]).dial(now, hub_addr).unwrap();
    sim.node_mut(trusted).dial(now, hub_addr).unwrap();
    sim.run_for(Duration::from_secs(5));
    assert_eq!(
        dial_failures(&sim, others[0]),
        [DisconnectReason::TooManyPeers]
    );
    assert_eq!(sim.node(trusted).peers().count(), 1);
    assert_eq!(sim.node(hub).peer_counts(), (3, 0));
}

#[test]
fn outbound_slots_bound_dials_but_not_persistent_peers() {
    let mut sim = Sim::new(SimConfig::with_seed(5));
    let targets: Vec<usize> = (0..4).map(|_| sim.add_node(test_node_config())).collect();
    let mut config = test_node_config();
    config.limits.max_outbound = 2;
    config.persistent_peers.push(sim.address(targets[3]));
    let a = sim.add_node(config);
    sim.run_for(Duration::from_secs(1));
    let now = sim.now();
    for &target in &targets[..3] {
        let addr = sim.address(target);
        sim.node_mut(a).dial(now, addr).unwrap();
    }
    sim.run_for(Duration::from_secs(2));
    // Two ordinary peers fill the slots; the persistent one is on top; the third is refused
    // before any socket is opened, so its target never saw it.
    assert_eq!(sim.node(a).peer_counts(), (0, 3));
    assert_eq!(dial_failures(&sim, a), [DisconnectReason::TooManyPeers]);
    assert_eq!(
        sim.node(targets[2]).connection_count() + sim.log(targets[2]).len(),
        0
    );
}

#[test]
fn a_dial_outside_the_allowed_networks_fails_as_not_allowed_not_banned() {
    let mut sim = Sim::new(SimConfig::with_seed(4));
    let b = sim.add_node(test_node_config());
    let c = sim.add_node(test_node_config());
    let (b_addr, c_addr) = (sim.address(b), sim.address(c));
    let mut config = test_node_config();
    // Only c's address is allowed.
    config.allowed_networks = vec![IpNet {
        addr: c_addr.socket_addr().ip(),
        prefix: 32,
    }];
    let a = sim.add_node(config);
    let now = sim.now();
    sim.node_mut(a).dial(now, b_addr).unwrap();
    sim.node_mut(a).dial(now, c_addr).unwrap();
    sim.run_for(Duration::from_secs(1));
    let failures: Vec<(DisconnectReason, String)> = sim
        .log(a)
        .iter()
        .filter_map(|event| match event {
            NodeEvent::DialFailed { reason, detail, .. } => Some((*reason, detail.clone())),
            _ => None,
        })
        .collect();
    let b_ip = b_addr.socket_addr().ip();
    assert_eq!(
        failures,
        [(
            DisconnectReason::NotAllowed,
            format!("outside the allowed networks: {b_ip}")
        )]
    );
    assert_eq!(
        sim.node(a).peers().collect::<Vec<_>>(),
        [sim.node(c).peer_id()]
    );
    assert_eq!(
        sim.node(a).connectedness(sim.now(), &sim.node(b).peer_id()),
        Connectedness::CannotConnect,
        "given up"
    );
}
