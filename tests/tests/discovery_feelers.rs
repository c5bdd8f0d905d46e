//! Feelers: a node whose outbound slots are full still dials one address from its book now
//! and then, proves it alive and hangs up — and the far end, learning our address from the
//! handshake, can reach a network it had no address for. A feeler holds no slot, is never
//! reported, is not retried, and gives way to any dial the node asks for to that address.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use switchboard::addr_book::{AddrInfo, Table};
use switchboard::node::{Connectedness, NodeEvent};
use switchboard::peer_set::Direction;
use switchboard::{DisconnectReason, NetAddress};
use switchboard_sim::{NodeIndex, Sim, SimConfig, test_node_config};

mod common;
use common::discovery::{Discovering, add_address, book, discovering, ip, last_attempt};

const FEELER_INTERVAL: Duration = Duration::from_secs(10);

/// A discovering node with one outbound slot, discovery every second, feelers as given.
fn one_slot(feeler_interval: Option<Duration>) -> Discovering {
    let mut config = discovering(Vec::new());
    config.node.limits.max_outbound = 1;
    config.discovery.interval = Duration::from_secs(1);
    config.discovery.feeler_interval = feeler_interval;
    config.node.dial.dial_timeout = Duration::from_secs(5);
    config
}

/// Four nodes with one outbound slot each: `a`, `b` and `d` in a ring (`a` → `b` → `d` →
/// `a`, every slot full), then `a` learns `c`'s address; `c` knows nobody.
fn network(feeler_interval: Option<Duration>) -> (Sim, [NodeIndex; 4]) {
    network_where(feeler_interval, |_| {})
}

/// As [`network`], with `c`'s configuration changed by `configure_c`.
fn network_where(
    feeler_interval: Option<Duration>,
    configure_c: impl FnOnce(&mut Discovering),
) -> (Sim, [NodeIndex; 4]) {
    let mut sim = Sim::new(SimConfig::with_seed(5));
    let mut configs = [0, 1, 2, 3].map(|_| one_slot(feeler_interval));
    configure_c(&mut configs[2]);
    let mut index = 0;
    let nodes = configs.map(|config| {
        index += 1;
        config.add_at(&mut sim, ip(index - 1))
    });
    let [a, b, c, d] = nodes;
    let now = sim.now();
    for (from, to) in [(a, b), (b, d), (d, a)] {
        let addr = sim.address(to);
        let _ = add_address(&mut sim, from, addr);
    }
    assert!(sim.run_until(now + Duration::from_secs(5), |sim| {
        [a, b, d]
            .iter()
            .all(|&node| sim.node(node).peer_counts() == (1, 1))
    }));
    let c_addr = sim.address(c);
    let _ = add_address(&mut sim, a, c_addr);
    (sim, nodes)
}

/// `at`'s events about `peer`, in order: `Some(direction)` for a connect, `None` for a
/// disconnect.
fn connections_with(sim: &Sim, at: NodeIndex, peer: NodeIndex) -> Vec<Option<Direction>> {
    let peer = sim.node(peer).peer_id();
    sim.log(at)
        .iter()
        .filter_map(|event| match event {
            NodeEvent::PeerConnected {
                peer: p, direction, ..
            } if *p == peer => Some(Some(*direction)),
            NodeEvent::PeerDisconnected { peer: p, .. } if *p == peer => Some(None),
            _ => None,
        })
        .collect()
}

/// What node `at`'s address book says of node `of`'s address.
fn book_entry(sim: &Sim, at: NodeIndex, of: NodeIndex) -> AddrInfo {
    book(sim, at)
        .get(&sim.address(of).socket_addr())
        .expect("in the book")
}

/// Runs until node `index` opens one more connection than it has (a dial starting).
fn run_until_dial(sim: &mut Sim, index: NodeIndex, within: Duration) {
    let before = sim.connections(index).len();
    let end = sim.now() + within;
    assert!(sim.run_until(end, |sim| sim.connections(index).len() > before));
}

#[test]
fn a_feeler_proves_an_address_and_lets_a_node_that_knew_nobody_join() {
    let (mut sim, [a, b, c, _]) = network(Some(FEELER_INTERVAL));
    sim.run_for(FEELER_INTERVAL * 3);

    // The feeler's handshake proved `c` alive: tried, with a success.
    let info = book_entry(&sim, a, c);
    assert_eq!(info.table, Table::Tried, "{info:?}");
    assert!(info.last_success.is_some(), "{info:?}");
    // `c` saw `a` connect and hang up, then learned from that handshake where `a` listens
    // and dialed it with its own free slot: now they are peers, `c` outbound.
    assert_eq!(
        connections_with(&sim, c, a),
        [Some(Direction::Inbound), None, Some(Direction::Outbound)]
    );
    // `a` never reported the feeler: its only event about `c` is `c`'s own dial.
    assert_eq!(connections_with(&sim, a, c), [Some(Direction::Inbound)]);
    assert_eq!(sim.node(a).peer_counts(), (2, 1));
    assert!(sim.node(a).peers().any(|p| p == sim.node(b).peer_id()));
    let counters = sim.checker().expect("checker on").counters();
    assert_eq!(counters.limit_violations, 0);
}

#[test]
fn a_feeler_refused_by_a_full_listener_still_proves_it_alive() {
    // `c` admits no inbound peer: it completes the handshake, then refuses with
    // `TooManyPeers` — which only a live node holding `c`'s key can do.
    let (mut sim, [a, _, c, _]) = network_where(Some(FEELER_INTERVAL), |config| {
        config.node.limits.max_inbound = 0
    });
    sim.run_for(FEELER_INTERVAL * 3);

    let info = book_entry(&sim, a, c);
    assert_eq!(info.table, Table::Tried, "{info:?}");
    assert!(info.last_success.is_some(), "{info:?}");
    assert_eq!(info.failures, 0, "{info:?}");
    // `c` never admitted `a`, and `a` reported nothing.
    assert_eq!(connections_with(&sim, c, a), []);
    assert_eq!(connections_with(&sim, a, c), []);
    assert!(
        !sim.log(a)
            .iter()
            .any(|event| matches!(event, NodeEvent::DialFailed { .. })),
        "a feeler is never reported"
    );
    assert_eq!(sim.node(c).peers().count(), 0);
}

#[test]
fn a_feeler_refused_for_another_reason_proves_nothing() {
    // `c` has banned `a`'s key: it answers the handshake, then refuses with `Banned`. The
    // address is alive, but of no use to `a`: it stays where it was.
    let (mut sim, [a, _, c, _]) = network(Some(FEELER_INTERVAL));
    let (now, a_id) = (sim.now(), sim.node(a).peer_id());
    sim.node_mut(c)
        .ban_peer(now, &a_id, Duration::from_secs(3600));
    sim.run_for(FEELER_INTERVAL * 3);
    let info = book_entry(&sim, a, c);
    assert!(info.last_attempt.is_some(), "the feeler ran: {info:?}");
    assert_eq!(info.table, Table::New, "{info:?}");
    assert_eq!(info.last_success, None, "{info:?}");
}

#[test]
fn a_peer_only_a_feeler_dials_is_not_said_to_be_connecting() {
    // A feeler never connects anyone: from its dial through its handshake (which names the
    // peer) to its hang-up, nothing is under way that would connect `c`.
    let (mut sim, [a, _, c, _]) = network(Some(FEELER_INTERVAL));
    let c_id = sim.node(c).peer_id();
    let end = sim.now() + FEELER_INTERVAL * 2;
    let mut feeler_seen = false;
    let proved = sim.run_until(end, |sim| {
        let connectedness = sim.node(a).connectedness(sim.now(), &c_id);
        assert_eq!(connectedness, Connectedness::NotConnected);
        feeler_seen |= sim.connections(a).len() > 2;
        book_entry(sim, a, c).last_success.is_some()
    });
    assert!(proved && feeler_seen);
}

#[test]
fn a_dial_taking_over_a_feeler_is_said_to_be_connecting() {
    // `c` swallows dials: the feeler to it stays in flight until its dial timeout.
    let (mut sim, [a, _, c, _]) = network(Some(FEELER_INTERVAL));
    sim.set_swallowing_dials(c, true);
    let c_id = sim.node(c).peer_id();
    let end = sim.now() + FEELER_INTERVAL * 2;
    assert!(sim.run_until(end, |sim| last_attempt(sim, a, c).is_some()));
    let now = sim.now();
    assert_eq!(
        sim.node(a).connectedness(now, &c_id),
        Connectedness::NotConnected
    );
    let c_addr = sim.address(c);
    sim.node_mut(a).dial(now, c_addr).unwrap();
    assert_eq!(
        sim.node(a).connectedness(now, &c_id),
        Connectedness::CanConnect
    );
}

#[test]
fn without_feelers_a_node_that_knew_nobody_stays_alone() {
    let (mut sim, [a, _, c, _]) = network(None);
    sim.run_for(FEELER_INTERVAL * 3);
    let info = book_entry(&sim, a, c);
    assert_eq!(info.table, Table::New);
    assert_eq!(info.last_attempt, None);
    assert_eq!(sim.node(c).peers().count(), 0);
}

#[test]
fn feelers_keep_to_their_interval() {
    // `a`'s slot is full (`b`); four more addresses it knows belong to nodes that never
    // dial back (discovery off), so each stays a candidate for every feeler.
    let mut sim = Sim::new(SimConfig::with_seed(6));
    let a = one_slot(Some(FEELER_INTERVAL)).add_at(&mut sim, ip(0));
    let others: Vec<NodeIndex> = (1..=5)
        .map(|index| sim.add_node_at(test_node_config(), ip(index)))
        .collect();
    let now = sim.now();
    let b_addr = sim.address(others[0]);
    let _ = add_address(&mut sim, a, b_addr);
    assert!(sim.run_until(now + Duration::from_secs(5), |sim| {
        sim.node(a).peer_counts() == (0, 1)
    }));
    for &other in &others[1..] {
        let addr = sim.address(other);
        let _ = add_address(&mut sim, a, addr);
    }
    sim.run_for(FEELER_INTERVAL * 3 + FEELER_INTERVAL / 2);
    let feelers: usize = others[1..]
        .iter()
        .map(|&other| connections_with(&sim, other, a).len() / 2)
        .sum();
    // One feeler per interval since the node started: at 10, 20 and 30 s.
    assert_eq!(feelers, 3);
    assert_eq!(sim.node(a).peer_counts(), (0, 1));
}

#[test]
fn no_feeler_while_a_slot_is_free() {
    // `a` has two slots, one used by `b`. The only other address it knows, `c`, shares
    // `b`'s /16, so one-outbound-per-group keeps it from filling the second slot — and a
    // feeler, which ignores groups, must wait for full slots.
    let public = |c: u8, d: u8| IpAddr::V4(Ipv4Addr::new(40, 1, c, d));
    let mut sim = Sim::new(SimConfig::with_seed(7));
    let mut config = one_slot(Some(FEELER_INTERVAL));
    config.node.limits.max_outbound = 2;
    let a = config.add_at(&mut sim, IpAddr::V4(Ipv4Addr::new(30, 0, 0, 1)));
    let b = sim.add_node_at(test_node_config(), public(0, 1));
    let c = sim.add_node_at(test_node_config(), public(0, 2));
    for other in [b, c] {
        let addr = sim.address(other);
        let _ = add_address(&mut sim, a, addr);
    }
    sim.run_for(FEELER_INTERVAL * 4);
    assert_eq!(sim.node(a).peer_counts(), (0, 1));
    assert_eq!(last_attempt(&sim, a, c), None);
}

#[test]
fn a_feeler_in_flight_holds_no_outbound_slot() {
    let (mut sim, [a, b, c, _]) = network(Some(FEELER_INTERVAL));
    // `c` swallows dials: the feeler stays in flight for its whole dial timeout (5 s).
    sim.set_swallowing_dials(c, true);
    run_until_dial(&mut sim, a, FEELER_INTERVAL * 2);
    // `a` loses `b`; the slot is free while the feeler is still in flight, and the
    // application's dial to `b` takes it at once.
    let (now, b_id, b_addr) = (sim.now(), sim.node(b).peer_id(), sim.address(b));
    sim.node_mut(a)
        .disconnect(now, &b_id, DisconnectReason::Requested);
    sim.run_for(Duration::from_millis(200));
    let now = sim.now();
    sim.node_mut(a).dial(now, b_addr).unwrap();
    sim.run_for(Duration::from_secs(1));
    assert_eq!(sim.node(a).peer_counts().1, 1, "{:?}", sim.log(a).last());
    let refused = sim.log(a).iter().any(|event| {
        matches!(
            event,
            NodeEvent::DialFailed {
                reason: DisconnectReason::TooManyPeers,
                ..
            }
        )
    });
    assert!(!refused, "a dial was refused for want of a slot");
}

#[test]
fn a_feeler_completing_after_a_slot_freed_is_still_dropped() {
    let (mut sim, [a, b, c, _]) = network(Some(FEELER_INTERVAL));
    run_until_dial(&mut sim, a, FEELER_INTERVAL * 2);
    // The slot frees while the feeler's handshake runs; nothing else is worth dialing (`b`
    // was dialed too recently to be picked again).
    let (now, b_id) = (sim.now(), sim.node(b).peer_id());
    sim.node_mut(a)
        .disconnect(now, &b_id, DisconnectReason::Requested);
    sim.run_for(Duration::from_secs(3));
    let as_outbound = connections_with(&sim, a, c).contains(&Some(Direction::Outbound));
    assert!(
        !as_outbound,
        "the feeler was admitted: {:?}",
        connections_with(&sim, a, c)
    );
}

#[test]
fn a_persistent_peer_added_while_a_feeler_runs_is_kept() {
    let (mut sim, [a, _, c, _]) = network(Some(FEELER_INTERVAL));
    run_until_dial(&mut sim, a, FEELER_INTERVAL * 2);
    // The feeler to `c` is in flight; the application makes `c` a persistent peer.
    let (now, c_addr) = (sim.now(), sim.address(c));
    let c_addr = c_addr.with_peer_id(sim.node(c).peer_id());
    sim.node_mut(a).add_persistent_peer(now, c_addr);
    sim.run_for(Duration::from_secs(2));
    assert_eq!(
        connections_with(&sim, a, c).first(),
        Some(&Some(Direction::Outbound)),
        "the dial the application asked for was dropped as a feeler"
    );
    assert_eq!(
        sim.node(a).peer_counts(),
        (1, 2),
        "persistent: beyond the cap"
    );
}

#[test]
fn a_failed_feeler_is_neither_reported_nor_retried() {
    let (mut sim, [a, _, c, _]) = network(Some(FEELER_INTERVAL));
    sim.set_refusing(c, true);
    run_until_dial(&mut sim, a, FEELER_INTERVAL * 2);
    // Refused within a link's latency; the book marks the failed attempt.
    sim.run_for(Duration::from_millis(100));
    let felt = last_attempt(&sim, a, c).expect("the feeler dialed c");
    // Until the next feeler interval, nothing dials `c` again, and nothing was reported.
    sim.run_for(FEELER_INTERVAL - Duration::from_secs(2));
    assert_eq!(last_attempt(&sim, a, c), Some(felt));
    let reported = sim
        .log(a)
        .iter()
        .any(|event| matches!(event, NodeEvent::DialFailed { .. }));
    assert!(!reported, "{:?}", sim.log(a));
    let info = book_entry(&sim, a, c);
    assert_eq!(info.failures, 1, "{info:?}");
}

#[test]
fn an_app_dial_taking_over_a_feeler_with_every_slot_full_is_refused_and_told() {
    let (mut sim, [a, _, c, _]) = network(Some(FEELER_INTERVAL));
    run_until_dial(&mut sim, a, FEELER_INTERVAL * 2);
    // The feeler to `c` is in flight; the application dials `c` too, every slot full.
    let (now, c_addr) = (sim.now(), sim.address(c));
    sim.node_mut(a).dial(now, c_addr).unwrap();
    sim.run_for(Duration::from_secs(1));
    let told = sim.log(a).iter().any(|event| {
        matches!(
            event,
            NodeEvent::DialFailed {
                addr,
                reason: DisconnectReason::TooManyPeers,
                ..
            } if addr.socket_addr() == c_addr.socket_addr()
        )
    });
    assert!(told, "the dial vanished: {:?}", sim.log(a));
    assert_eq!(sim.node(a).peer_counts().1, 1);
}

#[test]
fn a_feeler_timing_out_is_not_retried_even_without_backoff() {
    let mut sim = Sim::new(SimConfig::with_seed(8));
    let mut config = one_slot(Some(FEELER_INTERVAL));
    config.node.dial.backoff_base = Duration::ZERO;
    let a = config.add_at(&mut sim, ip(0));
    let [b, c] = [1, 2].map(|index| sim.add_node_at(test_node_config(), ip(index)));
    sim.set_swallowing_dials(c, true);
    let now = sim.now();
    for other in [b, c] {
        let addr = sim.address(other);
        let _ = add_address(&mut sim, a, addr);
    }
    // `a` fills its slot: `b` answers, a dial to `c` would hang.
    assert!(sim.run_until(now + Duration::from_secs(30), |sim| {
        sim.node(a).peer_counts() == (0, 1)
    }));
    let settled = sim.connections(a).len();
    run_until_dial(&mut sim, a, FEELER_INTERVAL * 2);
    // The feeler to `c` times out after 5 s; a retry due at once must not start.
    sim.run_for(Duration::from_secs(6));
    assert_eq!(sim.connections(a).len(), settled, "a dial still open");
    let reported = sim
        .log(a)
        .iter()
        .any(|event| matches!(event, NodeEvent::DialFailed { .. }));
    assert!(!reported, "{:?}", sim.log(a));
}

/// A tried table of one slot (every address proved alive contests the one there), a new
/// table too large to collide in, and two outbound slots, so the dial testing an occupant
/// has one to take.
fn one_tried_slot() -> Discovering {
    let mut config = one_slot(None);
    config.node.limits.max_outbound = 2;
    config.discovery.addr_book.tried_buckets = 1;
    config.discovery.addr_book.bucket_size = 1;
    config.discovery.addr_book.new_buckets = 4096;
    config
}

#[test]
fn a_collision_test_brings_a_waiting_retry_forward() {
    // A tried table of one slot: every address proved alive contests the one there. Two
    // outbound slots, so the dial testing the occupant has one to take.
    let mut sim = Sim::new(SimConfig::with_seed(10));
    let mut config = one_tried_slot();
    config.discovery.addr_book.reselect_after = Duration::from_secs(1);
    config.node.dial.backoff_base = Duration::from_secs(60);
    config.node.dial.backoff_cap = Duration::from_secs(120);
    let n = config.add_at(&mut sim, ip(0));
    let [occupant, newcomer] = [1, 2].map(|index| sim.add_node_at(test_node_config(), ip(index)));
    let (occupant_addr, newcomer_addr) = (sim.address(occupant), sim.address(newcomer));
    let now = sim.now();
    let _ = add_address(&mut sim, n, occupant_addr);
    assert!(sim.run_until(now + Duration::from_secs(5), |sim| {
        sim.node(n).peer_counts() == (0, 1)
    }));
    // The occupant goes away and refuses the redial: its retry waits 30–90 s.
    sim.set_refusing(occupant, true);
    let (now, occupant_id) = (sim.now(), sim.node(occupant).peer_id());
    sim.node_mut(n)
        .disconnect(now, &occupant_id, DisconnectReason::Requested);
    sim.run_for(Duration::from_secs(3));
    let failed_at = last_attempt(&sim, n, occupant).expect("redialed");
    // The newcomer proves alive and contests the occupant's tried slot: the collision test
    // must dial the occupant now, not when its retry comes due.
    let now = sim.now();
    let _ = add_address(&mut sim, n, newcomer_addr);
    assert!(sim.run_until(now + Duration::from_secs(5), |sim| {
        sim.node(n).peer_counts() == (0, 1)
    }));
    sim.run_for(Duration::from_secs(3));
    let tested_at = last_attempt(&sim, n, occupant).expect("in the book");
    assert!(
        tested_at > failed_at && tested_at < failed_at + Duration::from_secs(15),
        "occupant last dialed at {tested_at:?}, after its failure at {failed_at:?}"
    );
}

#[test]
fn a_collision_test_keeps_an_occupant_whose_inbound_slots_are_full() {
    // A tried table of one slot, as above; reselecting an address waits a minute, so the
    // node does not redial the occupant once it lets it go.
    let mut sim = Sim::new(SimConfig::with_seed(11));
    let mut config = one_tried_slot();
    config.discovery.addr_book.reselect_after = Duration::from_secs(60);
    config.discovery.addr_book.collision_timeout = Duration::from_secs(20);
    let n = config.add_at(&mut sim, ip(0));
    let mut full_after_one = test_node_config();
    full_after_one.limits.max_inbound = 1;
    let occupant = sim.add_node_at(full_after_one, ip(1));
    let [newcomer, other] = [2, 3].map(|index| sim.add_node_at(test_node_config(), ip(index)));
    let (occupant_addr, newcomer_addr) = (sim.address(occupant), sim.address(newcomer));
    let now = sim.now();
    let _ = add_address(&mut sim, n, occupant_addr);
    assert!(sim.run_until(now + Duration::from_secs(5), |sim| {
        sim.node(n).peer_counts() == (0, 1)
    }));
    // `n` lets the occupant go, and another node takes its one inbound slot.
    let (now, occupant_id) = (sim.now(), sim.node(occupant).peer_id());
    sim.node_mut(n)
        .disconnect(now, &occupant_id, DisconnectReason::Requested);
    sim.run_for(Duration::from_secs(1));
    let now = sim.now();
    sim.node_mut(other)
        .dial(now, occupant_addr)
        .expect("dial the occupant");
    assert!(sim.run_until(now + Duration::from_secs(5), |sim| {
        sim.node(occupant).peer_counts() == (1, 0)
    }));
    // The newcomer proves alive and contests the occupant's tried slot; the collision test
    // finds the occupant full, which it can only say once its key has answered.
    let now = sim.now();
    let _ = add_address(&mut sim, n, newcomer_addr);
    assert!(sim.run_until(now + Duration::from_secs(5), |sim| {
        sim.node(n).peer_counts() == (0, 1)
    }));
    sim.run_for(Duration::from_secs(40));
    let book = book(&sim, n);
    let table = |addr: NetAddress| book.get(&addr.socket_addr()).map(|info| info.table);
    assert_eq!(
        table(occupant_addr),
        Some(Table::Tried),
        "the occupant stays"
    );
    assert_eq!(table(newcomer_addr), Some(Table::New), "the newcomer waits");
    assert_eq!(sim.node(occupant).peer_counts(), (1, 0), "still full");
}
