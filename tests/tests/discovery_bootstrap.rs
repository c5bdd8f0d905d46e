//! Discovery end to end on the simulated network: nodes that know one seed find the
//! network and fill their outbound slots; a node restarted with its persisted address book
//! (loaded by hand, or carried across a crash by the simulator's persistence hooks through
//! the protocol) finds it again without the seed.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use switchboard::Instant;
use switchboard::discovery::Discovery;

mod common;
use common::discovery::{Discovering, MAX_OUTBOUND, book, discovering, ip};
use switchboard_sim::{NodeIndex, Sim, SimConfig};

/// Regular nodes in the bootstrap sweep.
const NODES: usize = 200;
/// The simulated time the network is given to fill every node's outbound slots.
const BOOTSTRAP_BOUND: Duration = Duration::from_secs(300);

fn seed_node_config() -> Discovering {
    let mut config = discovering(Vec::new());
    config.discovery.seed_mode = true;
    config
}

/// The network: a seed node (index 0) and `nodes` nodes knowing only the seed.
fn network(sim_seed: u64, nodes: usize) -> (Sim, NodeIndex, Vec<NodeIndex>) {
    let mut sim = Sim::new(SimConfig::with_seed(sim_seed));
    let seed = seed_node_config().add_at(&mut sim, IpAddr::V4(Ipv4Addr::new(172, 16, 0, 1)));
    let seed_addr = sim.address(seed);
    let members = (0..nodes)
        .map(|index| discovering(vec![seed_addr]).add_at(&mut sim, ip(index)))
        .collect();
    (sim, seed, members)
}

fn outbound_full(sim: &Sim, members: &[NodeIndex]) -> bool {
    members
        .iter()
        .all(|&node| sim.node(node).peer_counts().1 >= MAX_OUTBOUND)
}

/// Connected components of the peer graph among `members`.
fn components(sim: &Sim, members: &[NodeIndex]) -> usize {
    let index_of: std::collections::BTreeMap<_, _> = members
        .iter()
        .map(|&node| (sim.node(node).peer_id(), node))
        .collect();
    let mut seen = BTreeSet::new();
    let mut components = 0;
    for &start in members {
        if !seen.insert(start) {
            continue;
        }
        components += 1;
        let mut stack = vec![start];
        while let Some(node) = stack.pop() {
            for peer in sim.node(node).peers() {
                if let Some(&next) = index_of.get(&peer)
                    && seen.insert(next)
                {
                    stack.push(next);
                }
            }
        }
    }
    components
}

fn elapsed(start: Instant, end: Instant) -> Duration {
    Duration::from_nanos(end.as_nanos() - start.as_nanos())
}

#[test]
fn nodes_knowing_one_seed_fill_their_outbound_slots_in_one_component() {
    let sweeps: u64 = common::seeds_from_env("SWITCHBOARD_DISCOVERY_SEEDS", 5);
    let mut times = Vec::new();
    for sim_seed in 0..sweeps {
        let (mut sim, seed, members) = network(sim_seed, NODES);
        let start = sim.now();
        let end = start.saturating_add(BOOTSTRAP_BOUND);
        let full = sim.run_until(end, |sim| outbound_full(sim, &members));
        let took = elapsed(start, sim.now());
        assert!(
            full,
            "seed {sim_seed}: outbound slots not full after {BOOTSTRAP_BOUND:?}: {:?}",
            members
                .iter()
                .map(|&node| sim.node(node).peer_counts().1)
                .filter(|&outbound| outbound < MAX_OUTBOUND)
                .collect::<Vec<_>>()
        );
        assert_eq!(components(&sim, &members), 1, "seed {sim_seed}");
        for &node in &members {
            let (inbound, outbound) = sim.node(node).peer_counts();
            assert!(inbound <= 40 && outbound <= MAX_OUTBOUND, "limits hold");
        }
        // The seed hands out addresses and lets go: it holds no peers for long.
        assert!(sim.node(seed).peer_counts().1 == 0, "a seed dials no one");
        times.push(took);
    }
    times.sort();
    let mean = times.iter().sum::<Duration>() / times.len() as u32;
    println!(
        "{NODES} nodes, one seed each, outbound slots ({MAX_OUTBOUND}) full after: \
         min {:.1} s, mean {:.1} s, max {:.1} s (simulated, {} seeds)",
        times[0].as_secs_f64(),
        mean.as_secs_f64(),
        times[times.len() - 1].as_secs_f64(),
        times.len()
    );
}

#[test]
fn a_node_restarted_with_its_persisted_book_reconnects_without_the_seed() {
    let (mut sim, seed, members) = network(7, 40);
    let end = sim.now().saturating_add(BOOTSTRAP_BOUND);
    assert!(sim.run_until(end, |sim| outbound_full(sim, &members)));

    // Persist one node's book, then take the node and the seed away.
    let leaving = members[0];
    let persisted = book(&sim, leaving).to_bytes(sim.now());
    assert!(book(&sim, leaving).tried_len() >= MAX_OUTBOUND);
    sim.reset_links(leaving);
    sim.set_refusing(leaving, true);
    sim.reset_links(seed);
    sim.set_refusing(seed, true);

    // The restarted node: no seeds configured, only the persisted book.
    let restarted = discovering(Vec::new()).add_at(&mut sim, ip(50_000));
    let now = sim.now();
    sim.with_protocol(restarted, |discovery: &mut Discovery, _| {
        discovery.load_addr_book(now, &persisted)
    })
    .expect("a node running discovery")
    .expect("the persisted book loads");
    let end = now.saturating_add(Duration::from_secs(120));
    let reconnected = sim.run_until(end, |sim| {
        sim.node(restarted).peer_counts().1 >= MAX_OUTBOUND
    });
    assert!(
        reconnected,
        "outbound peers after restart: {:?}",
        sim.node(restarted).peer_counts()
    );
    let seed_id = sim.node(seed).peer_id();
    assert!(sim.node(restarted).peers().all(|peer| peer != seed_id));
}

/// Persists a crashing node's address book through its discovery, and loads it into the
/// discovery rebuilt at its restart.
fn persist_books(sim: &mut Sim) {
    sim.set_persistence(
        Box::new(|router, now| {
            let id = router
                .id_of::<Discovery>()
                .expect("a node running discovery");
            router
                .protocol(id)
                .expect("registered")
                .addr_book_bytes(now)
        }),
        Box::new(|router, now, bytes| {
            let id = router
                .id_of::<Discovery>()
                .expect("a node running discovery");
            router
                .with_protocol(now, id, |discovery, _| discovery.load_addr_book(now, bytes))
                .expect("registered")
                .expect("the persisted book loads");
        }),
    );
}

#[test]
fn a_crashed_node_restarts_with_the_book_its_discovery_persisted_and_reconnects_without_the_seed() {
    let (mut sim, seed, members) = network(8, 40);
    persist_books(&mut sim);
    let end = sim.now().saturating_add(BOOTSTRAP_BOUND);
    assert!(sim.run_until(end, |sim| outbound_full(sim, &members)));

    let node = members[0];
    let (known, tried) = (book(&sim, node).len(), book(&sim, node).tried_len());
    assert!(tried >= MAX_OUTBOUND, "{tried} tried");
    let crashed = sim.crash(node).expect("alive");
    assert!(
        crashed
            .persisted
            .as_ref()
            .is_some_and(|bytes| !bytes.is_empty())
    );
    // The seed goes away: only the persisted book leads the node back.
    sim.reset_links(seed);
    sim.set_refusing(seed, true);
    sim.run_for(Duration::from_secs(2));

    sim.restart(crashed).expect("crashed");
    // The router and its discovery are new; the book is the one persisted.
    assert_eq!(sim.restarts(node), 1);
    assert_eq!(
        (book(&sim, node).len(), book(&sim, node).tried_len()),
        (known, tried)
    );
    let now = sim.now();
    let reconnected = sim.run_until(now.saturating_add(Duration::from_secs(120)), |sim| {
        sim.node(node).peer_counts().1 >= MAX_OUTBOUND
    });
    assert!(
        reconnected,
        "outbound peers after the restart: {:?}",
        sim.node(node).peer_counts()
    );
    let seed_id = sim.node(seed).peer_id();
    assert!(sim.node(node).peers().all(|peer| peer != seed_id));
}

#[test]
fn a_corrupt_persisted_book_is_an_error_and_the_node_keeps_its_book() {
    let (mut sim, _seed, members) = network(3, 12);
    sim.run_for(Duration::from_secs(60));
    let node = members[0];
    let now = sim.now();
    let mut bytes = book(&sim, node).to_bytes(now);
    let before = book(&sim, node).len();
    assert!(before > 0);
    let load = |sim: &mut Sim, bytes: &[u8]| {
        sim.with_protocol(node, |discovery: &mut Discovery, _| {
            discovery.load_addr_book(now, bytes)
        })
        .expect("a node running discovery")
    };
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    assert!(load(&mut sim, &bytes).is_err());
    bytes.truncate(middle);
    assert!(load(&mut sim, &bytes).is_err());
    assert_eq!(book(&sim, node).len(), before);
}

#[test]
fn the_nodes_own_pex_messages_never_enter_the_applications_accounting() {
    use bytes::Bytes;
    use switchboard::DisconnectReason;
    use switchboard::node::NodeEvent;

    let (mut sim, _seed, members) = network(5, 2);
    let end = sim.now().saturating_add(Duration::from_secs(30));
    let (a, b) = (members[0], members[1]);
    let b_id = sim.node(b).peer_id();
    assert!(sim.run_until(end, |sim| sim.node(a).peers().any(|peer| peer == b_id)));
    let now = sim.now();
    for index in 0..100u32 {
        let message = Bytes::from(index.to_be_bytes().to_vec());
        sim.node_mut(a).send(now, &b_id, 1, message).unwrap();
    }
    sim.run_for(Duration::from_secs(2));
    let now = sim.now();
    sim.node_mut(a)
        .disconnect(now, &b_id, DisconnectReason::Requested);
    sim.run_for(Duration::from_secs(1));
    let outcome = sim.log(a).iter().rev().find_map(|event| match event {
        NodeEvent::PeerDisconnected {
            peer,
            confirmed,
            unsent,
            unconfirmed,
            ..
        } if *peer == b_id => Some((*confirmed, unsent.len(), unconfirmed.len())),
        _ => None,
    });
    // PEX ran on this connection (GetAddrs one way, Addrs the other), yet the application
    // is told of exactly the 100 messages it sent.
    assert_eq!(outcome, Some((100, 0, 0)));
}
