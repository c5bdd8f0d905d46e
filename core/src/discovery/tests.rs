//! Discovery against a fake node: slot filling, seeds, feelers, what dials teach the book,
//! PEX both ways, seed mode, shutdown.

use alloc::vec;
use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr};
use core::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::*;
use crate::addr_book::Table;
use crate::channel::message_cost;
use crate::identity::Keypair;
use crate::node::{Node, NodeConfig, OutboundSlots};
use crate::pex::MAX_MESSAGE_LEN;
use crate::router::fake::{FakeNode, peer_info};

const T0: Instant = Instant::ZERO;

fn peer(n: u8) -> PeerId {
    PeerId::from_bytes([n; 32])
}

/// A public address in group `group` (a /16 of its own), host `host`.
fn addr(group: u8, host: u8) -> NetAddress {
    let ip = IpAddr::V4(Ipv4Addr::new(1, group, 0, host));
    NetAddress::new(None, SocketAddr::new(ip, 26656))
}

fn discovery(config: DiscoveryConfig) -> Discovery {
    Discovery::new(config, &mut ChaCha20Rng::seed_from_u64(1))
}

/// Discovery started on `node`, its first tick taken.
fn started(config: DiscoveryConfig, node: &mut FakeNode) -> Discovery {
    let mut discovery = discovery(config);
    discovery.started(&mut node.ctx(T0));
    node.fire(&mut discovery, T0);
    discovery
}

fn decode(sent: &[(PeerId, ChannelId, Bytes)]) -> Vec<(PeerId, PexMessage)> {
    sent.iter()
        .map(|(to, channel, bytes)| {
            assert_eq!(*channel, PEX_CHANNEL);
            (*to, PexMessage::decode(bytes).expect("well-formed"))
        })
        .collect()
}

#[test]
fn the_pex_window_holds_four_of_the_largest_addrs_answers() {
    let pex = config::pex_channel();
    let largest = message_cost(MAX_MESSAGE_LEN);
    let window = u64::from(pex.receive_window);
    assert_eq!(u64::from(pex.max_message_size), MAX_MESSAGE_LEN as u64);
    assert!(4 * largest <= window && window < 5 * largest, "{window}");
}

#[test]
fn free_slots_are_filled_one_address_group_each() {
    let mut node = FakeNode::new(&[]);
    node.sends.slots.max = 10;
    let mut discovery = discovery(DiscoveryConfig::default());
    for group in 1..=3 {
        for host in 1..=2 {
            assert_eq!(
                discovery.add_address(T0, addr(group, host)),
                AddOutcome::Added
            );
        }
    }
    discovery.started(&mut node.ctx(T0));
    node.fire(&mut discovery, T0);
    let groups: BTreeSet<AddressGroup> = node
        .sends
        .dials
        .iter()
        .map(|addr| address_group(addr.socket_addr().ip()))
        .collect();
    assert_eq!(node.sends.dials.len(), 3, "{:?}", node.sends.dials);
    assert_eq!(groups.len(), 3, "one dial per group");
    assert_eq!(
        node.next_timer(),
        Some(T0 + Duration::from_secs(5)),
        "the next tick"
    );

    // With the rule off, every address is dialed.
    let mut node = FakeNode::new(&[]);
    let config = DiscoveryConfig {
        one_outbound_per_group: false,
        ..DiscoveryConfig::default()
    };
    let mut discovery = self::discovery(config);
    for host in 1..=6 {
        assert_eq!(discovery.add_address(T0, addr(1, host)), AddOutcome::Added);
    }
    discovery.started(&mut node.ctx(T0));
    node.fire(&mut discovery, T0);
    assert_eq!(node.sends.dials.len(), 6);
}

#[test]
fn full_or_pending_slots_dial_nothing_and_seeds_are_dialed_while_the_book_is_thin() {
    let seed = NetAddress::new(Some(peer(9)), "1.9.0.1:26656".parse().unwrap());
    let config = DiscoveryConfig {
        seeds: vec![seed],
        ..DiscoveryConfig::default()
    };
    let mut node = FakeNode::new(&[]);
    node.sends.slots = OutboundSlots {
        connected: 4,
        max: 10,
        dialing: 6,
    };
    let _discovery = started(config.clone(), &mut node);
    assert!(node.sends.dials.is_empty(), "no slot free: nothing dialed");

    let mut node = FakeNode::new(&[]);
    let mut discovery = started(config, &mut node);
    assert_eq!(node.sends.dials, vec![seed], "an empty book dials the seed");
    // Not again before the PEX request interval.
    node.fire(&mut discovery, T0 + Duration::from_secs(5));
    assert_eq!(node.sends.dials.len(), 1);
}

#[test]
fn a_feeler_is_probed_only_with_every_slot_full_and_once_per_interval() {
    let mut node = FakeNode::new(&[]);
    node.sends.slots = OutboundSlots {
        connected: 10,
        max: 10,
        dialing: 0,
    };
    let mut discovery = discovery(DiscoveryConfig::default());
    assert_eq!(discovery.add_address(T0, addr(1, 1)), AddOutcome::Added);
    discovery.started(&mut node.ctx(T0));
    node.fire(&mut discovery, T0);
    assert!(
        node.sends.probes.is_empty(),
        "not before the feeler interval"
    );
    let later = T0 + Duration::from_secs(120);
    node.fire(&mut discovery, later);
    assert_eq!(node.sends.probes, vec![addr(1, 1)]);
    assert!(
        node.sends.dials.is_empty(),
        "a feeler is a probe, not a dial"
    );
    node.fire(&mut discovery, later + Duration::from_secs(5));
    assert_eq!(node.sends.probes.len(), 1, "one per interval");

    // A free slot: the address is dialed, not probed.
    node.sends.slots.connected = 9;
    node.fire(&mut discovery, later + Duration::from_secs(240));
    assert_eq!(node.sends.probes.len(), 1);
}

#[test]
fn every_dial_teaches_the_book() {
    let mut node = FakeNode::new(&[]);
    let mut discovery = discovery(DiscoveryConfig::default());
    let (a, b, c) = (addr(1, 1), addr(2, 1), addr(3, 1));
    for address in [a, b, c] {
        assert_eq!(discovery.add_address(T0, address), AddOutcome::Added);
    }
    let at = T0 + Duration::from_secs(1);
    let report = |discovery: &mut Discovery, node: &mut FakeNode, report| {
        discovery.dialed(&mut node.ctx(at), &report);
    };
    report(
        &mut discovery,
        &mut node,
        DialReport::Started {
            addr: a,
            probe: false,
        },
    );
    assert_eq!(
        discovery
            .addr_book()
            .get(&a.socket_addr())
            .unwrap()
            .last_attempt,
        Some(at)
    );
    report(
        &mut discovery,
        &mut node,
        DialReport::Reached {
            addr: a,
            peer: peer(1),
            probe: true,
        },
    );
    let info = discovery.addr_book().get(&a.socket_addr()).unwrap();
    assert_eq!(info.table, Table::Tried);
    assert_eq!(info.address.peer_id(), Some(peer(1)));
    // Our own limits hold nothing against an address; a timeout does; our own address is
    // forgotten.
    let failed = |addr, reason| DialReport::Failed {
        addr,
        reason,
        probe: false,
    };
    let failures = |discovery: &Discovery| {
        discovery
            .addr_book()
            .get(&b.socket_addr())
            .unwrap()
            .failures
    };
    report(
        &mut discovery,
        &mut node,
        failed(b, DisconnectReason::TooManyPeers),
    );
    assert_eq!(failures(&discovery), 0);
    report(
        &mut discovery,
        &mut node,
        failed(b, DisconnectReason::Timeout),
    );
    assert_eq!(failures(&discovery), 1);
    report(
        &mut discovery,
        &mut node,
        failed(c, DisconnectReason::SelfConnection),
    );
    assert!(!discovery.addr_book().contains(&c.socket_addr()));
}

#[test]
fn an_outbound_peer_is_asked_for_addresses_and_its_answer_fills_the_book_and_slots() {
    let relay = peer(1);
    let relay_addr: SocketAddr = "1.1.0.1:26656".parse().unwrap();
    let mut node = FakeNode::new(&[relay]);
    node.sends.connected = vec![peer_info(relay, relay_addr, Direction::Outbound)];
    let mut discovery = started(DiscoveryConfig::default(), &mut node);
    discovery
        .peer_connected(&mut node.ctx(T0), relay, 1)
        .unwrap();
    assert_eq!(
        decode(&node.take_sent()),
        vec![(relay, PexMessage::GetAddrs)]
    );

    let learned: Vec<NetAddress> = (2..=4).map(|group| addr(group, 1)).collect();
    let answer = Bytes::from(PexMessage::Addrs(learned.clone()).encode());
    discovery.message(&mut node.ctx(T0), relay, PEX_CHANNEL, answer.clone());
    for address in &learned {
        let info = discovery.addr_book().get(&address.socket_addr()).unwrap();
        assert_eq!(info.source, Some(relay_addr.ip()), "bucketed by the relay");
    }
    assert_eq!(
        node.sends.dials.len(),
        3,
        "the new addresses are dialed at once"
    );

    // A second answer nobody asked for breaks the protocol.
    discovery.message(&mut node.ctx(T0), relay, PEX_CHANNEL, answer);
    assert_eq!(
        node.sends.disconnected,
        vec![(relay, DisconnectReason::ProtocolError)]
    );
}

#[test]
fn an_inbound_peer_is_booked_under_its_listen_address_and_private_peers_are_not_shared() {
    let (asker, private, public) = (peer(1), peer(2), peer(3));
    let mut node = FakeNode::new(&[asker]);
    let asker_addr: SocketAddr = "1.1.0.1:5000".parse().unwrap();
    let mut info = peer_info(asker, asker_addr, Direction::Inbound);
    info.listen_addr = Some("1.1.0.1:26656".parse().unwrap());
    node.sends.connected = vec![info];
    let config = DiscoveryConfig {
        seed_mode: true,
        ..DiscoveryConfig::default()
    };
    let mut discovery = started(config, &mut node);
    let accepted = DialReport::Accepted {
        peer: asker,
        remote: asker_addr,
        listen_addr: Some("1.1.0.1:26656".parse().unwrap()),
    };
    discovery.dialed(&mut node.ctx(T0), &accepted);
    discovery
        .peer_connected(&mut node.ctx(T0), asker, 1)
        .unwrap();
    assert!(
        discovery
            .addr_book()
            .contains(&"1.1.0.1:26656".parse().unwrap())
    );
    assert!(node.take_sent().is_empty(), "a seed asks nobody");

    let _ = discovery.add_address(T0, NetAddress::new(Some(public), addr(3, 1).socket_addr()));
    // The private peer: known to the node as private.
    let mut config = NodeConfig::new("test", "fake/1");
    config.private_peers = vec![private];
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let keypair = Keypair::generate(&mut rng);
    node.sends.node = Node::new(T0, config, keypair, rng).unwrap();
    let _ = discovery.add_address(T0, NetAddress::new(Some(private), addr(2, 1).socket_addr()));

    let ask = Bytes::from(PexMessage::GetAddrs.encode());
    discovery.message(&mut node.ctx(T0), asker, PEX_CHANNEL, ask);
    let sent = decode(&node.take_sent());
    let [(to, PexMessage::Addrs(addrs))] = sent.as_slice() else {
        panic!("one answer: {sent:?}");
    };
    assert_eq!(*to, asker);
    assert!(addrs.iter().any(|a| a.peer_id() == Some(public)));
    assert!(
        !addrs.iter().any(|a| a.peer_id() == Some(private)),
        "{addrs:?}"
    );
    assert!(
        !addrs.iter().any(|a| a.peer_id() == Some(asker)),
        "not its own"
    );
    assert_eq!(
        node.sends.hang_ups,
        vec![(asker, PEX_CHANNEL)],
        "a seed hangs up"
    );

    // Past its lifetime a seed's peer is disconnected.
    node.sends.connected[0].stats.established_at = Some(T0);
    node.fire(&mut discovery, T0 + Duration::from_secs(10));
    assert_eq!(
        node.sends.disconnected,
        vec![(asker, DisconnectReason::Requested)]
    );
}

#[test]
fn shutting_down_dials_nothing_and_stops_ticking() {
    let mut node = FakeNode::new(&[]);
    let mut discovery = discovery(DiscoveryConfig::default());
    assert_eq!(discovery.add_address(T0, addr(1, 1)), AddOutcome::Added);
    discovery.started(&mut node.ctx(T0));
    node.sends.shutting_down = true;
    node.fire(&mut discovery, T0);
    assert!(node.sends.dials.is_empty());
    assert_eq!(node.next_timer(), None, "no tick left to wake the adapter");
}

#[test]
fn a_persisted_book_loads_and_a_corrupt_one_is_refused() {
    let mut discovery = discovery(DiscoveryConfig::default());
    assert_eq!(discovery.add_address(T0, addr(1, 1)), AddOutcome::Added);
    let bytes = discovery.addr_book_bytes(T0);
    let mut other = self::discovery(DiscoveryConfig::default());
    other.load_addr_book(T0, &bytes).unwrap();
    assert!(other.addr_book().contains(&addr(1, 1).socket_addr()));
    assert!(other.load_addr_book(T0, &bytes[..10]).is_err());
    assert_eq!(other.addr_book().len(), 1, "the current book is kept");
}

#[test]
fn strangers_on_query_connections_are_never_asked_for_addresses() {
    let stranger = peer(3);
    let mut node = FakeNode::new(&[stranger]);
    node.sends.query_peers.insert(stranger);
    let remote: SocketAddr = "1.3.0.1:26656".parse().unwrap();
    node.sends.connected = vec![peer_info(stranger, remote, Direction::Outbound)];
    let mut discovery = started(DiscoveryConfig::default(), &mut node);
    discovery
        .peer_connected(&mut node.ctx(T0), stranger, 1)
        .unwrap();
    // Slots free, a PEX peer to ask: but it is a stranger's query connection.
    node.fire(&mut discovery, T0 + Duration::from_secs(5));
    assert!(node.take_sent().is_empty(), "no GetAddrs to a query peer");
}
