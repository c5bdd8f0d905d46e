//! Two nodes on the simulated network: dial, connect, exchange messages both ways,
//! disconnect with a reason both sides see.

use std::time::Duration;

use bytes::Bytes;
use switchboard::DisconnectReason;
use switchboard::connection::ClosedBy;
use switchboard::node::{Connectedness, NodeEvent};
use switchboard::peer_set::Direction;
use switchboard_sim::{Sim, SimConfig, test_node_config};

fn messages(log: &[NodeEvent]) -> Vec<Bytes> {
    log.iter()
        .filter_map(|event| match event {
            NodeEvent::Message { message, .. } => Some(message.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn dial_exchange_and_disconnect() {
    let mut sim = Sim::new(SimConfig::with_seed(1));
    let a = sim.add_node(test_node_config());
    let b = sim.add_node(test_node_config());
    let (a_id, b_id) = (sim.node(a).peer_id(), sim.node(b).peer_id());
    let b_addr = sim.address(b);
    let now = sim.now();
    sim.node_mut(a).dial(now, b_addr).unwrap();
    let connected = sim.run_until(now + Duration::from_secs(5), |sim| {
        sim.node(a).peers().count() == 1 && sim.node(b).peers().count() == 1
    });
    assert!(connected);
    assert!(matches!(
        sim.log(a).first(),
        Some(NodeEvent::PeerConnected { peer, direction: Direction::Outbound, .. }) if *peer == b_id
    ));
    assert!(matches!(
        sim.log(b).first(),
        Some(NodeEvent::PeerConnected { peer, direction: Direction::Inbound, .. }) if *peer == a_id
    ));
    assert_eq!(
        sim.node(a).connectedness(sim.now(), &b_id),
        Connectedness::Connected
    );
    let info = sim.node(a).peer_info(&b_id).unwrap();
    assert_eq!(info.direction, Direction::Outbound);
    assert_eq!(info.listen_addr, Some(b_addr.socket_addr()));

    let now = sim.now();
    for i in 0..100u32 {
        sim.node_mut(a)
            .send(now, &b_id, 1, Bytes::from(format!("a→b {i}")))
            .unwrap();
        sim.node_mut(b)
            .send(now, &a_id, 1, Bytes::from(format!("b→a {i}")))
            .unwrap();
    }
    sim.run_for(Duration::from_secs(1));
    let expected = |prefix: &str| -> Vec<Bytes> {
        (0..100)
            .map(|i| Bytes::from(format!("{prefix} {i}")))
            .collect()
    };
    assert_eq!(messages(sim.log(b)), expected("a→b"));
    assert_eq!(messages(sim.log(a)), expected("b→a"));

    let now = sim.now();
    sim.node_mut(b)
        .disconnect(now, &a_id, DisconnectReason::Quitting);
    sim.run_for(Duration::from_secs(1));
    let last = |index| sim.log(index).last().cloned();
    let Some(NodeEvent::PeerDisconnected {
        peer,
        reason,
        by,
        confirmed,
        unsent,
        unconfirmed,
        ..
    }) = last(a)
    else {
        panic!("{:?}", last(a))
    };
    assert_eq!(
        (peer, reason, by),
        (b_id, DisconnectReason::Quitting, ClosedBy::Remote)
    );
    assert_eq!((confirmed, unsent.len(), unconfirmed.len()), (100, 0, 0));
    let Some(NodeEvent::PeerDisconnected {
        peer, reason, by, ..
    }) = last(b)
    else {
        panic!("{:?}", last(b))
    };
    assert_eq!(
        (peer, reason, by),
        (a_id, DisconnectReason::Quitting, ClosedBy::Local)
    );
    assert_eq!(sim.node(a).connection_count(), 0);
    assert_eq!(sim.node(b).connection_count(), 0);
    assert_eq!(sim.node(a).peer_counts(), (0, 0));
}

#[test]
fn the_same_seed_gives_the_same_trace_and_different_seeds_differ() {
    let run = |seed| {
        let mut sim = Sim::new(SimConfig::with_seed(seed));
        let nodes: Vec<_> = (0..6).map(|_| sim.add_node(test_node_config())).collect();
        for (i, &from) in nodes.iter().enumerate() {
            let to = sim.address(nodes[(i + 1) % nodes.len()]);
            let now = sim.now();
            sim.node_mut(from).dial(now, to).unwrap();
        }
        sim.run_for(Duration::from_secs(2));
        let now = sim.now();
        for &from in &nodes {
            sim.node_mut(from)
                .broadcast(now, 1, Bytes::from_static(b"hello"));
        }
        sim.run_for(Duration::from_secs(30));
        assert!(sim.inputs() > 100);
        sim.trace_hash()
    };
    assert_eq!(run(5), run(5));
    assert_ne!(run(5), run(6));
}
