//! Eclipse resistance on the simulated network: an attacker holding 1,000 addresses in two
//! /16 networks floods a victim through PEX while the victim keeps losing its connections.
//! The victim never holds more than one outbound peer per network, so at most 2 of its 10
//! outbound peers are the attacker's, and the honest addresses it had already connected to
//! stay in its *tried* table.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use switchboard::NetAddress;
use switchboard::addr_book::Table;
use switchboard::peer_set::Direction;
use switchboard_sim::{NodeIndex, PORT, Sim, SimConfig};

mod common;
use common::discovery::{MAX_OUTBOUND, add_address, book, discovering, ip};

const HONEST: usize = 30;
/// The attacker's two networks.
const ATTACKER_GROUPS: [[u8; 2]; 2] = [[66, 1], [66, 2]];
const ATTACKER_ADDRESSES: usize = 1000;
/// Live attacker nodes per network: enough that the victim, refilling its slots from a
/// *new* table the flood fills, does pick some (the test asserts it does, or the bound
/// would prove nothing) — and could pick several from one network if it let itself.
const ATTACKER_NODES_PER_GROUP: u8 = 8;

fn is_attacker(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => {
            let [a, b, _, _] = ip.octets();
            ATTACKER_GROUPS.contains(&[a, b])
        }
        IpAddr::V6(_) => false,
    }
}

/// The victim's outbound peers inside the attacker's networks.
fn attacker_outbound(sim: &Sim, victim: NodeIndex) -> usize {
    let node = sim.node(victim);
    node.peers()
        .filter_map(|peer| node.peer_info(&peer))
        .filter(|info| info.direction == Direction::Outbound && is_attacker(info.remote_addr.ip()))
        .count()
}

#[test]
fn a_pex_flood_from_two_networks_holds_at_most_two_outbound_slots_and_evicts_no_tried_address() {
    let mut sim = Sim::new(SimConfig::with_seed(11));
    let mut seed_config = discovering(Vec::new());
    seed_config.discovery.seed_mode = true;
    let seed = seed_config.add_at(&mut sim, IpAddr::V4(Ipv4Addr::new(172, 16, 0, 1)));
    let seed_addr = sim.address(seed);
    let honest: Vec<NodeIndex> = (0..HONEST)
        .map(|index| discovering(vec![seed_addr]).add_at(&mut sim, ip(index)))
        .collect();
    let victim = honest[0];

    // The honest network forms first; the victim's outbound peers are all honest.
    let end = sim.now().saturating_add(Duration::from_secs(120));
    assert!(sim.run_until(end, |sim| sim.node(victim).peer_counts().1 == MAX_OUTBOUND));
    let honest_tried: Vec<SocketAddr> = honest
        .iter()
        .map(|&node| SocketAddr::new(ip(node - 1), PORT))
        .filter(|addr| {
            book(&sim, victim)
                .get(addr)
                .is_some_and(|info| info.table == Table::Tried)
        })
        .collect();
    assert!(honest_tried.len() >= MAX_OUTBOUND, "{honest_tried:?}");

    // The attacker: live nodes in its two networks, each with 1,000 of its addresses to
    // hand out, all known to the victim and connecting to it.
    let mut attackers = Vec::new();
    for [a, b] in ATTACKER_GROUPS {
        for host in 1..=ATTACKER_NODES_PER_GROUP {
            let ip = IpAddr::V4(Ipv4Addr::new(a, b, 0, host));
            attackers.push(discovering(Vec::new()).add_at(&mut sim, ip));
        }
    }
    let now = sim.now();
    for &attacker in &attackers {
        for index in 0..ATTACKER_ADDRESSES {
            let [a, b] = ATTACKER_GROUPS[index % 2];
            let [c, d] = u16::try_from(index / 2 + 256).unwrap().to_be_bytes();
            let fake = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(a, b, c, d)), PORT);
            let _ = add_address(&mut sim, attacker, NetAddress::new(None, fake));
        }
        let attacker_addr = sim.address(attacker);
        let _ = add_address(&mut sim, victim, attacker_addr);
        let victim_addr = sim.address(victim);
        sim.node_mut(attacker).dial(now, victim_addr).unwrap();
    }

    // Ten rounds of churn: the victim loses every connection and refills its slots from a
    // book the attacker keeps flooding.
    let mut worst = 0;
    let mut attacker_seen = 0;
    for _ in 0..10 {
        sim.reset_links(victim);
        let end = sim.now().saturating_add(Duration::from_secs(60));
        sim.run_until(end, |sim| {
            let count = attacker_outbound(sim, victim);
            worst = worst.max(count);
            attacker_seen += usize::from(count > 0);
            false
        });
    }
    let book = book(&sim, victim);
    let attacker_known = (0..ATTACKER_ADDRESSES)
        .filter(|index| {
            let [a, b] = ATTACKER_GROUPS[index % 2];
            let [c, d] = u16::try_from(index / 2 + 256).unwrap().to_be_bytes();
            book.contains(&SocketAddr::new(
                IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
                PORT,
            ))
        })
        .count();
    println!(
        "victim: at most {worst} of {MAX_OUTBOUND} outbound peers from the attacker's networks; \
         {attacker_known} of its {ATTACKER_ADDRESSES} addresses in a book of {} (new {}, tried {})",
        book.len(),
        book.new_len(),
        book.tried_len()
    );
    assert!(
        attacker_seen > 0,
        "the attacker did reach the victim's outbound slots"
    );
    assert!(attacker_known > 0, "the flood did reach the victim's book");
    assert!(
        worst <= 2,
        "{worst} outbound peers from 2 attacker networks"
    );
    for addr in &honest_tried {
        assert_eq!(
            book.get(addr).map(|info| info.table),
            Some(Table::Tried),
            "honest {addr} evicted from tried"
        );
    }
    assert_eq!(sim.node(victim).peer_counts().1, MAX_OUTBOUND);
}
