//! Feelers: a node whose outbound slots are full still dials one address from its book now
//! and then, proves it alive and hangs up — and the far end, learning our address from the
//! handshake, can reach a network it had no address for.

use std::time::Duration;

use switchboard::addr_book::Table;
use switchboard::node::NodeEvent;
use switchboard::peer_set::Direction;
use switchboard_sim::{NodeIndex, Sim, SimConfig};

mod common;
use common::discovery::{discovering, ip};

const FEELER_INTERVAL: Duration = Duration::from_secs(10);

/// Four nodes with one outbound slot each: `a`, `b` and `d` in a ring (`a` → `b` → `d` →
/// `a`, every slot full), then `a` learns `c`'s address; `c` knows nobody.
fn network(feeler_interval: Option<Duration>) -> (Sim, [NodeIndex; 4]) {
    let mut sim = Sim::new(SimConfig::with_seed(5));
    let nodes = [0, 1, 2, 3].map(|index| {
        let mut config = discovering(Vec::new());
        config.limits.max_outbound = 1;
        config.discovery.interval = Duration::from_secs(1);
        config.discovery.feeler_interval = feeler_interval;
        sim.add_node_at(config, ip(index))
    });
    let [a, b, c, d] = nodes;
    let now = sim.now();
    for (from, to) in [(a, b), (b, d), (d, a)] {
        let addr = sim.address(to);
        let _ = sim.node_mut(from).add_address(now, addr);
    }
    assert!(sim.run_until(now + Duration::from_secs(5), |sim| {
        [a, b, d]
            .iter()
            .all(|&node| sim.node(node).peer_counts() == (1, 1))
    }));
    let (now, c_addr) = (sim.now(), sim.address(c));
    let _ = sim.node_mut(a).add_address(now, c_addr);
    (sim, nodes)
}

fn connections_with(sim: &Sim, at: NodeIndex, peer: NodeIndex) -> Vec<(bool, Direction)> {
    let peer = sim.node(peer).peer_id();
    sim.log(at)
        .iter()
        .filter_map(|event| match event {
            NodeEvent::PeerConnected {
                peer: p, direction, ..
            } if *p == peer => Some((true, *direction)),
            NodeEvent::PeerDisconnected { peer: p, .. } if *p == peer => {
                Some((false, Direction::Inbound))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_feeler_proves_an_address_and_lets_a_node_that_knew_nobody_join() {
    let (mut sim, [a, b, c, _]) = network(Some(FEELER_INTERVAL));
    let c_socket = sim.address(c).socket_addr();
    sim.run_for(FEELER_INTERVAL * 3);

    // The feeler's handshake proved `c` alive: tried, with a success.
    let info = sim
        .node(a)
        .addr_book()
        .get(&c_socket)
        .expect("c in a's book");
    assert_eq!(info.table, Table::Tried, "{info:?}");
    assert!(info.last_success.is_some(), "{info:?}");
    // `c` saw `a` connect and hang up, then learned from that handshake where `a` listens
    // and dialed it with its own free slot: now they are peers, `c` outbound.
    assert_eq!(
        connections_with(&sim, c, a),
        [
            (true, Direction::Inbound),
            (false, Direction::Inbound),
            (true, Direction::Outbound)
        ]
    );
    // `a` never reported the feeler: its only event about `c` is `c`'s own dial.
    assert_eq!(connections_with(&sim, a, c), [(true, Direction::Inbound)]);
    assert_eq!(sim.node(a).peer_counts(), (2, 1));
    assert!(sim.node(a).peers().any(|p| p == sim.node(b).peer_id()));
    let counters = sim.checker().expect("checker on").counters();
    assert_eq!(counters.limit_violations, 0);
}

#[test]
fn without_feelers_a_node_that_knew_nobody_stays_alone() {
    let (mut sim, [a, _, c, _]) = network(None);
    let c_socket = sim.address(c).socket_addr();
    sim.run_for(FEELER_INTERVAL * 3);
    let info = sim
        .node(a)
        .addr_book()
        .get(&c_socket)
        .expect("c in a's book");
    assert_eq!(info.table, Table::New);
    assert_eq!(info.last_attempt, None);
    assert_eq!(sim.node(c).peers().count(), 0);
}

#[test]
fn feelers_wait_for_full_slots_and_keep_to_their_interval() {
    let (mut sim, [a, _, c, _]) = network(Some(FEELER_INTERVAL));
    // Before the interval passes, no feeler.
    sim.run_for(FEELER_INTERVAL / 2);
    let c_socket = sim.address(c).socket_addr();
    let attempts = |sim: &Sim| {
        sim.node(a)
            .addr_book()
            .get(&c_socket)
            .and_then(|info| info.last_attempt)
    };
    assert_eq!(attempts(&sim), None);
    sim.run_for(FEELER_INTERVAL);
    let first = attempts(&sim).expect("one feeler within the interval");
    // `c` is a peer now (it dialed `a`): a later feeler skips connected addresses.
    sim.run_for(FEELER_INTERVAL * 2);
    assert_eq!(attempts(&sim), Some(first));
}
