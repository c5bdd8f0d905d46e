//! Dials that reach the wrong node fail with their reason; banned peers and IPs cannot
//! reconnect until the ban expires.

use std::time::Duration;

use switchboard::node::{DialError, NodeEvent};
use switchboard::{DisconnectReason, NetAddress};
use switchboard_sim::{Sim, SimConfig, test_node_config};

fn last_dial_failure(sim: &Sim, index: usize) -> Option<DisconnectReason> {
    sim.log(index).iter().rev().find_map(|event| match event {
        NodeEvent::DialFailed { reason, .. } => Some(*reason),
        _ => None,
    })
}

#[test]
fn self_dials_and_unexpected_identities_fail_with_their_reasons() {
    let mut sim = Sim::new(SimConfig::with_seed(11));
    let mut config = test_node_config();
    config.dial.max_attempts = 1;
    let a = sim.add_node(config.clone());
    let b = sim.add_node(config.clone());
    let c = sim.add_node(config);
    let now = sim.now();
    // Our own identity: refused at once.
    let own = sim.address(a);
    assert_eq!(sim.node_mut(a).dial(now, own), Err(DialError::SelfDial));
    // Our own address without an identity: the handshake finds out.
    let own_socket = NetAddress::new(None, own.socket_addr());
    sim.node_mut(a).dial(now, own_socket).unwrap();
    sim.run_for(Duration::from_secs(2));
    assert_eq!(
        last_dial_failure(&sim, a),
        Some(DisconnectReason::SelfConnection)
    );
    // b's address, expecting c's identity.
    let wrong = NetAddress::new(Some(sim.node(c).peer_id()), sim.address(b).socket_addr());
    let now = sim.now();
    sim.node_mut(a).dial(now, wrong).unwrap();
    sim.run_for(Duration::from_secs(2));
    assert_eq!(
        last_dial_failure(&sim, a),
        Some(DisconnectReason::UnexpectedIdentity)
    );
    assert_eq!(sim.node(a).peers().count(), 0);
    assert_eq!(sim.node(b).peers().count(), 0, "b never saw a peer");
    // b only learns that an unidentified dialer left during the handshake.
    assert!(
        sim.log(b).iter().all(|event| matches!(
            event,
            NodeEvent::InboundRefused {
                peer: None,
                by: switchboard::connection::ClosedBy::Remote,
                ..
            }
        )),
        "{:?}",
        sim.log(b)
    );
}

#[test]
fn a_peer_on_another_network_fails_the_dial_as_a_network_mismatch_naming_both() {
    let mut sim = Sim::new(SimConfig::with_seed(13));
    let mut config = test_node_config();
    config.dial.max_attempts = 1;
    let a = sim.add_node(config.clone());
    config.network = "elsewhere".into();
    let b = sim.add_node(config);
    let b_addr = sim.address(b);
    let now = sim.now();
    sim.node_mut(a).dial(now, b_addr).unwrap();
    sim.run_for(Duration::from_secs(2));
    let failure = sim.log(a).iter().find_map(|event| match event {
        NodeEvent::DialFailed { reason, detail, .. } => Some((*reason, detail.clone())),
        _ => None,
    });
    assert_eq!(
        failure,
        Some((
            DisconnectReason::NetworkMismatch,
            String::from("network mismatch: ours \"sim\", theirs \"elsewhere\"")
        ))
    );
    assert_eq!(sim.node(b).peers().count(), 0);
}

#[test]
fn banned_peers_and_ips_stay_out_until_the_ban_expires() {
    let mut sim = Sim::new(SimConfig::with_seed(12));
    let mut config = test_node_config();
    config.dial.max_attempts = 1;
    let a = sim.add_node(config.clone());
    let b = sim.add_node(config.clone());
    let c = sim.add_node(config);
    let (a_addr, b_id) = (sim.address(a), sim.node(b).peer_id());
    let now = sim.now();
    sim.node_mut(b).dial(now, a_addr).unwrap();
    sim.run_for(Duration::from_secs(1));
    assert_eq!(sim.node(a).peers().count(), 1);
    let now = sim.now();
    sim.node_mut(a)
        .ban_peer(now, &b_id, Duration::from_secs(60));
    sim.run_for(Duration::from_secs(1));
    assert!(matches!(
        sim.log(b).last(),
        Some(NodeEvent::PeerDisconnected {
            reason: DisconnectReason::Banned,
            ..
        })
    ));
    // b tries again during the ban: refused after the handshake.
    let now = sim.now();
    sim.node_mut(b).dial(now, a_addr).unwrap();
    sim.run_for(Duration::from_secs(1));
    assert_eq!(last_dial_failure(&sim, b), Some(DisconnectReason::Banned));
    // c's IP is banned: refused at accept.
    let c_ip = sim.address(c).socket_addr().ip();
    let now = sim.now();
    sim.node_mut(a).ban_ip(now, c_ip, Duration::from_secs(60));
    sim.node_mut(c).dial(now, a_addr).unwrap();
    sim.run_for(Duration::from_secs(1));
    assert_eq!(
        last_dial_failure(&sim, c),
        Some(DisconnectReason::NetworkError)
    );
    // After the bans expire both get in.
    sim.run_for(Duration::from_secs(60));
    let now = sim.now();
    sim.node_mut(b).dial(now, a_addr).unwrap();
    sim.node_mut(c).dial(now, a_addr).unwrap();
    sim.run_for(Duration::from_secs(1));
    assert_eq!(sim.node(a).peers().count(), 2);
}
