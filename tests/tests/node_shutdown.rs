//! A node shutting down tells every peer `Quitting`, and then stays alone: it dials no one
//! (not its persistent peers, not the application's dials) and admits no one (not a peer
//! redialing it), and once its connections are gone it asks for no wake-up.

use std::time::Duration;

use switchboard::discovery::Discovery;
use switchboard::node::{DialError, NodeEvent};
use switchboard::{DisconnectReason, NetAddress};
use switchboard_sim::{NodeIndex, Sim, SimConfig, test_discovery_config, test_node_config};

/// The peer reasons `index`'s application saw its peers disconnect with, and whether each
/// was the far end's doing.
fn disconnections(sim: &Sim, index: NodeIndex) -> Vec<(DisconnectReason, bool)> {
    sim.log(index)
        .iter()
        .filter_map(|event| match event {
            NodeEvent::PeerDisconnected { reason, by, .. } => Some((
                *reason,
                matches!(by, switchboard::connection::ClosedBy::Remote),
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn a_node_shutting_down_says_quitting_and_neither_redials_nor_readmits() {
    let mut sim = Sim::new(SimConfig::with_seed(31));
    let mut quick_redials = test_node_config();
    quick_redials.dial.backoff_base = Duration::from_millis(100);
    quick_redials.dial.backoff_cap = Duration::from_millis(400);
    // `dialed` is the node's persistent peer; `redialing` keeps the node as its own.
    let dialed = sim.add_node(test_node_config());
    let mut config = quick_redials.clone();
    config.persistent_peers.push(sim.address(dialed));
    let node = sim.add_node(config);
    let mut config = quick_redials;
    config.persistent_peers.push(sim.address(node));
    let redialing = sim.add_node(config);
    let both = |sim: &Sim| sim.node(node).peers().count() == 2;
    assert!(sim.run_until(sim.now() + Duration::from_secs(2), both));
    let connected_before = sim
        .log(node)
        .iter()
        .filter(|event| matches!(event, NodeEvent::PeerConnected { .. }))
        .count();

    let now = sim.now();
    sim.node_mut(node).shutdown(now, Duration::from_secs(2));
    assert!(sim.node(node).is_shutting_down());
    let stranger = NetAddress::new(None, "10.9.9.1:26656".parse().expect("an address"));
    assert_eq!(
        sim.node_mut(node).dial(now, stranger),
        Err(DialError::ShuttingDown)
    );
    // The persistent peer's redial is queued by now; the application adding another
    // persistent peer (which starts due dials) must not start it, nor dial the new one.
    sim.run_for(Duration::from_secs(1));
    let (now, redialing_address) = (sim.now(), sim.address(redialing));
    sim.node_mut(node)
        .add_persistent_peer(now, redialing_address);
    // Long enough for dozens of redials in both directions at a 400 ms backoff cap.
    sim.run_for(Duration::from_secs(20));

    assert_eq!(sim.node(node).connection_count(), 0);
    let connected_after = sim
        .log(node)
        .iter()
        .filter(|event| matches!(event, NodeEvent::PeerConnected { .. }))
        .count();
    assert_eq!(
        connected_after, connected_before,
        "reconnected while shutting down"
    );
    assert_eq!(sim.node(dialed).peers().count(), 0);
    assert_eq!(sim.node(redialing).peers().count(), 0);
    for peer in [dialed, redialing] {
        assert_eq!(
            disconnections(&sim, peer),
            [(DisconnectReason::Quitting, true)],
            "node {peer} was told why"
        );
    }
    assert_eq!(
        sim.node(node).poll_timeout(),
        None,
        "a node with nothing left to do asks for no wake-up"
    );
    sim.finish_checks();
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

#[test]
fn dials_queued_or_in_flight_at_shutdown_are_given_up_without_blame() {
    let mut sim = Sim::new(SimConfig::with_seed(32));
    // Listeners that swallow dials: a dial to them stays in flight until its timeout.
    let silent: Vec<NodeIndex> = (0..2).map(|_| sim.add_node(test_node_config())).collect();
    for &index in &silent {
        sim.set_swallowing_dials(index, true);
    }
    let mut config = test_node_config();
    config.dial.max_in_flight = 1;
    config.dial.dial_timeout = Duration::from_secs(30);
    // Discovery keeps the address book the dials teach.
    let node = sim.add_node_with_discovery(config, test_discovery_config());
    let addresses: Vec<NetAddress> = silent.iter().map(|&index| sim.address(index)).collect();
    let now = sim.now();
    for &addr in &addresses {
        let added = sim.with_protocol(node, |discovery: &mut Discovery, _| {
            discovery.add_address(now, addr)
        });
        assert_eq!(added, Some(switchboard::addr_book::AddOutcome::Added));
        sim.node_mut(node).dial(now, addr).expect("dial");
    }
    // One dial in flight, the other queued behind `max_in_flight`.
    sim.run_for(Duration::from_millis(100));
    assert_eq!(sim.node(node).connection_count(), 1);

    let now = sim.now();
    sim.node_mut(node).shutdown(now, Duration::from_secs(2));
    sim.run_for(Duration::from_secs(60));
    let failed: Vec<_> = sim
        .log(node)
        .iter()
        .filter_map(|event| match event {
            NodeEvent::DialFailed {
                addr,
                reason,
                retry,
                ..
            } => Some((addr.socket_addr(), *reason, *retry)),
            _ => None,
        })
        .collect();
    let mut expected: Vec<_> = addresses
        .iter()
        .map(|addr| {
            (
                addr.socket_addr(),
                DisconnectReason::Quitting,
                switchboard::dial_queue::Retry::GivenUp,
            )
        })
        .collect();
    let mut failed_sorted = failed.clone();
    failed_sorted.sort_by_key(|(addr, ..)| *addr);
    expected.sort_by_key(|(addr, ..)| *addr);
    assert_eq!(failed_sorted, expected, "each dial reported once, given up");
    for addr in &addresses {
        let info = sim
            .protocol::<Discovery>(node)
            .expect("discovery")
            .addr_book()
            .get(&addr.socket_addr())
            .expect("in the book");
        assert_eq!(
            info.failures, 0,
            "{addr}: the shutdown is not the address's fault"
        );
    }
    assert_eq!(sim.node(node).connection_count(), 0);
    assert_eq!(sim.node(node).poll_timeout(), None);
}

/// Messages sent to `to` on `BULK`, each numbered.
fn send_numbered(sim: &mut Sim, from: NodeIndex, to: switchboard::PeerId, count: u32) {
    let now = sim.now();
    for number in 0..count {
        sim.node_mut(from)
            .send(
                now,
                &to,
                BULK,
                switchboard::Bytes::from(number.to_be_bytes().to_vec()),
            )
            .expect("room in the queue");
    }
}

const BULK: u16 = 2;

fn bulk_config() -> switchboard::node::NodeConfig {
    let mut config = test_node_config();
    config.add_channel(
        "bulk",
        1,
        switchboard::ChannelConfig {
            send_queue_messages: 1024,
            receive_window: 4096,
            ..switchboard::ChannelConfig::new(BULK)
        },
    );
    config
}

fn received(sim: &Sim, index: NodeIndex) -> usize {
    sim.log(index)
        .iter()
        .filter(|event| matches!(event, NodeEvent::Message { channel: BULK, .. }))
        .count()
}

#[test]
fn a_shutdown_flushes_its_peers_before_saying_quitting() {
    let mut sim = Sim::new(SimConfig::with_seed(5));
    let (a, b) = (sim.add_node(bulk_config()), sim.add_node(bulk_config()));
    let (now, b_address) = (sim.now(), sim.address(b));
    sim.node_mut(a).dial(now, b_address).expect("dial");
    assert!(sim.run_until(sim.now() + Duration::from_secs(2), |sim| {
        sim.node(a).peers().count() == 1 && sim.node(b).peers().count() == 1
    }));
    let b_id = sim.node(b).peer_id();
    // Far more than one window (4096 cost units, ~60 of these): most wait in the queue.
    send_numbered(&mut sim, a, b_id, 1000);
    let now = sim.now();
    sim.node_mut(a).shutdown(now, Duration::from_secs(30));
    assert!(sim.run_until(sim.now() + Duration::from_secs(30), |sim| {
        sim.node(a).connection_count() == 0
    }));
    let report = sim.node_mut(a).take_shutdown_report().expect("a report");
    assert_eq!(report.peers.len(), 1);
    assert_eq!(report.confirmed(), 1000, "{report:?}");
    assert!(report.is_complete());
    assert_eq!(received(&sim, b), 1000);
    sim.run_for(Duration::from_secs(1)); // the GOAWAY's way to b
    assert_eq!(
        disconnections(&sim, b),
        vec![(DisconnectReason::Quitting, true)]
    );
}

#[test]
fn a_shutdown_past_its_deadline_hands_back_what_was_not_confirmed() {
    let mut sim = Sim::new(SimConfig::with_seed(6));
    let (a, b) = (sim.add_node(bulk_config()), sim.add_node(bulk_config()));
    let (now, b_address) = (sim.now(), sim.address(b));
    sim.node_mut(a).dial(now, b_address).expect("dial");
    assert!(sim.run_until(sim.now() + Duration::from_secs(2), |sim| {
        sim.node(a).peers().count() == 1 && sim.node(b).peers().count() == 1
    }));
    let b_id = sim.node(b).peer_id();
    // b's application takes nothing: only its window's worth can be written, none confirmed.
    sim.set_polling(b, false);
    send_numbered(&mut sim, a, b_id, 1000);
    let started = sim.now();
    sim.node_mut(a).shutdown(started, Duration::from_secs(3));
    assert!(sim.run_until(sim.now() + Duration::from_secs(10), |sim| {
        sim.node(a).connection_count() == 0
    }));
    let report = sim.node_mut(a).take_shutdown_report().expect("a report");
    let peer = &report.peers[0];
    assert_eq!(peer.reason, DisconnectReason::Quitting);
    assert_eq!(peer.confirmed, 0);
    assert!(!peer.unconfirmed.is_empty() && !peer.unsent.is_empty());
    assert_eq!(peer.unsent.len() + peer.unconfirmed.len(), 1000);
    // Handed back in send order: the unconfirmed first, then the unsent.
    let numbers: Vec<u32> = peer
        .unconfirmed
        .iter()
        .chain(&peer.unsent)
        .map(|returned| u32::from_be_bytes(returned.message[..4].try_into().expect("4 bytes")))
        .collect();
    assert_eq!(numbers, (0..1000).collect::<Vec<_>>());
    // Closed at the deadline, not before.
    let a_ended = sim.now();
    assert!(a_ended >= started + Duration::from_secs(3));
}
