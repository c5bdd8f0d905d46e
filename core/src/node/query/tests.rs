//! Query connections between nodes wired in memory: budgets at both ends, no peer slot
//! taken, idle close, one connection per peer across kinds.

use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use core::time::Duration;

use bytes::Bytes;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::super::{Action, ConnId, DialError, Node, NodeConfig, NodeEvent};
use super::QueryError;
use crate::channel::ChannelConfig;
use crate::connection::ClosedBy;
use crate::dial_queue::Retry;
use crate::disconnect::DisconnectReason;
use crate::identity::{Keypair, PeerId};
use crate::net_address::NetAddress;
use crate::peer_set::Direction;
use crate::time::Instant;

const ASK: u16 = 30;
const OTHER: u16 = 31;

fn ip(index: usize) -> IpAddr {
    // One /24 each: the per-subnet limits stay out of the way.
    IpAddr::V4(Ipv4Addr::new(10, 0, u8::try_from(index).expect("few"), 1))
}

fn config() -> NodeConfig {
    let mut config = NodeConfig::new("query-tests", "tests");
    config.add_channel("ask", 1, ChannelConfig::new(ASK));
    config.add_channel("other", 1, ChannelConfig::new(OTHER));
    config
}

/// Nodes wired in memory, each at `ip(index)`; events kept per node.
struct Net {
    nodes: Vec<Node<ChaCha20Rng>>,
    links: BTreeMap<(usize, ConnId), (usize, ConnId)>,
    events: Vec<Vec<NodeEvent>>,
    now: Instant,
}

impl Net {
    fn new(configs: Vec<NodeConfig>) -> Self {
        let nodes: Vec<Node<ChaCha20Rng>> = configs
            .into_iter()
            .enumerate()
            .map(|(index, config)| {
                let mut rng = ChaCha20Rng::seed_from_u64(index as u64 + 1);
                let keypair = Keypair::generate(&mut rng);
                Node::new(Instant::ZERO, config, keypair, rng).expect("valid")
            })
            .collect();
        Net {
            events: nodes.iter().map(|_| Vec::new()).collect(),
            nodes,
            links: BTreeMap::new(),
            now: Instant::ZERO,
        }
    }

    fn id(&self, index: usize) -> PeerId {
        self.nodes[index].peer_id()
    }

    fn addr(&self, index: usize) -> NetAddress {
        NetAddress::new(Some(self.id(index)), SocketAddr::new(ip(index), 26656))
    }

    fn open_query(&mut self, from: usize, to: usize) -> Result<(), QueryError> {
        let (now, addr) = (self.now, self.addr(to));
        self.nodes[from].open_query(now, addr, "ask")
    }

    /// Carries actions and bytes, and takes events, until nothing moves.
    fn pump(&mut self) {
        let mut wire = Vec::new();
        let now = self.now;
        loop {
            let mut moved = false;
            for index in 0..self.nodes.len() {
                while let Some(event) = self.nodes[index].poll_event(now) {
                    moved = true;
                    self.events[index].push(event);
                }
                while let Some(action) = self.nodes[index].poll_action() {
                    moved = true;
                    match action {
                        Action::Dial { conn, addr } => {
                            let Some(target) = (0..self.nodes.len()).find(|&t| ip(t) == addr.ip())
                            else {
                                let error = "nothing listens there";
                                self.nodes[index].handle_connect_failed(now, conn, error);
                                continue;
                            };
                            let from = SocketAddr::new(ip(index), 40_000);
                            match self.nodes[target].handle_accepted(now, from) {
                                Ok(theirs) => {
                                    self.links.insert((index, conn), (target, theirs));
                                    self.links.insert((target, theirs), (index, conn));
                                    self.nodes[index].handle_connected(now, conn);
                                }
                                Err(refused) => {
                                    let error = alloc::format!("{refused}");
                                    self.nodes[index].handle_connect_failed(now, conn, &error);
                                }
                            }
                        }
                        Action::Close { conn } => {
                            if let Some((other, theirs)) = self.links.remove(&(index, conn)) {
                                self.links.remove(&(other, theirs));
                                self.nodes[other].handle_closed(now, theirs);
                            }
                        }
                    }
                }
                while let Some(conn) = self.nodes[index].poll_transmit(now, &mut wire) {
                    moved = true;
                    if let Some(&(other, theirs)) = self.links.get(&(index, conn)) {
                        self.nodes[other].handle_input(now, theirs, &wire);
                    }
                    wire.clear();
                }
            }
            if !moved {
                return;
            }
        }
    }

    /// Lets `by` pass in steps of at most 100 ms, firing timers and pumping.
    fn advance(&mut self, by: Duration) {
        let end = self.now + by;
        while self.now < end {
            self.now = (self.now + Duration::from_millis(100)).min(end);
            for node in &mut self.nodes {
                node.handle_timeout(self.now);
            }
            self.pump();
        }
    }

    fn take(&mut self, index: usize) -> Vec<NodeEvent> {
        core::mem::take(&mut self.events[index])
    }
}

fn query_connected(events: &[NodeEvent]) -> Vec<(PeerId, Direction)> {
    events
        .iter()
        .filter_map(|event| match event {
            NodeEvent::QueryConnected {
                peer, direction, ..
            } => Some((*peer, *direction)),
            _ => None,
        })
        .collect()
}

fn query_failed(events: &[NodeEvent]) -> Vec<DisconnectReason> {
    events
        .iter()
        .filter_map(|event| match event {
            NodeEvent::QueryFailed { reason, .. } => Some(*reason),
            _ => None,
        })
        .collect()
}

#[test]
fn a_query_connection_takes_no_peer_slot_and_carries_its_protocol_only() {
    let mut full = config();
    full.limits.max_outbound = 0;
    let mut listener = config();
    listener.limits.max_inbound = 0;
    let mut net = Net::new(vec![full, listener]);
    // No slot on either side for a peer: a dial is refused, a query connection is not.
    let (now, addr) = (net.now, net.addr(1));
    net.nodes[0].dial(now, addr).expect("queued");
    net.pump();
    assert!(matches!(
        net.take(0).as_slice(),
        [NodeEvent::DialFailed {
            reason: DisconnectReason::TooManyPeers,
            ..
        }]
    ));
    net.open_query(0, 1).expect("opened");
    net.pump();
    let (a, b) = (net.id(0), net.id(1));
    assert_eq!(
        query_connected(&net.take(0)),
        [(b, Direction::Outbound)],
        "the dialer"
    );
    let listener_events = net.take(1);
    assert_eq!(query_connected(&listener_events), [(a, Direction::Inbound)]);
    let Some(NodeEvent::QueryConnected { info, .. }) = listener_events.first() else {
        panic!("{listener_events:?}");
    };
    assert!(info.is_query());
    assert!(
        info.channels
            .iter()
            .all(|channel| channel.protocol == "ask")
    );
    for node in &net.nodes {
        assert_eq!(node.peer_counts(), (0, 0), "no peer slot taken");
        assert_eq!(node.peers().count(), 0);
    }
    assert_eq!(net.nodes[0].query_counts(), (0, 1));
    assert_eq!(net.nodes[1].query_counts(), (1, 0));
    assert!(net.nodes[0].is_query_peer(&b) && net.nodes[1].is_query_peer(&a));
    // `send` reaches a query peer on its protocol's channel, and nothing else opened;
    // `broadcast` ignores it.
    let now = net.now;
    assert!(net.nodes[1].broadcast(now, ASK, Bytes::from_static(b"all")) == 0);
    let refused = net.nodes[0].send(now, &b, OTHER, Bytes::from_static(b"no"));
    assert!(refused.is_err(), "only the query's protocol opens");
    net.nodes[0]
        .send(now, &b, ASK, Bytes::from_static(b"question"))
        .expect("sent");
    net.pump();
    assert_eq!(
        net.take(1),
        [NodeEvent::Message {
            peer: a,
            channel: ASK,
            message: Bytes::from_static(b"question"),
        }]
    );
}

#[test]
fn the_dialers_budget_counts_dials_in_flight_and_frees_when_one_ends() {
    let mut dialer = config();
    dialer.limits.max_outbound_queries = 2;
    let mut net = Net::new(vec![dialer, config(), config(), config()]);
    net.open_query(0, 1).expect("first");
    net.open_query(0, 2).expect("second");
    assert_eq!(net.nodes[0].query_counts(), (0, 2), "in flight count");
    assert_eq!(net.open_query(0, 1), Err(QueryError::Dialing));
    assert_eq!(net.open_query(0, 3), Err(QueryError::BudgetFull));
    net.pump();
    assert_eq!(query_connected(&net.take(0)).len(), 2);
    assert_eq!(net.open_query(0, 1), Err(QueryError::AlreadyConnected));
    assert_eq!(net.open_query(0, 3), Err(QueryError::BudgetFull));
    assert_eq!(net.nodes[0].query_counts(), (0, 2));
    // One ends: its slot is free for the next.
    let (now, two) = (net.now, net.id(2));
    net.nodes[0].disconnect(now, &two, DisconnectReason::Requested);
    net.pump();
    assert!(matches!(
        net.take(0).as_slice(),
        [NodeEvent::QueryDisconnected { peer, by: ClosedBy::Local, .. }] if *peer == two
    ));
    assert_eq!(net.nodes[0].query_counts(), (0, 1));
    net.open_query(0, 3).expect("room again");
    let (now, two_addr, own) = (net.now, net.addr(2), net.addr(0));
    assert_eq!(
        net.nodes[0].open_query(now, two_addr, "nope"),
        Err(QueryError::UnknownProtocol)
    );
    assert_eq!(
        net.nodes[0].open_query(now, own, "ask"),
        Err(QueryError::SelfDial)
    );
}

#[test]
fn a_listener_with_its_query_budget_full_refuses_and_still_admits_a_peer() {
    let mut listener = config();
    listener.limits.max_inbound_queries = 1;
    listener.limits.max_inbound = 1;
    let mut net = Net::new(vec![listener, config(), config(), config()]);
    net.open_query(1, 0).expect("first");
    net.pump();
    net.open_query(2, 0).expect("second");
    net.pump();
    assert_eq!(query_connected(&net.take(1)).len(), 1);
    assert_eq!(
        query_failed(&net.take(2)),
        [DisconnectReason::TooManyPeers],
        "refused, budget full"
    );
    assert!(matches!(
        net.take(0).as_slice(),
        [
            NodeEvent::QueryConnected { .. },
            NodeEvent::InboundRefused {
                reason: DisconnectReason::TooManyPeers,
                ..
            }
        ]
    ));
    assert_eq!(
        net.nodes[0].query_counts(),
        (1, 0),
        "never above the budget"
    );
    assert_eq!(net.nodes[0].peer_counts(), (0, 0));
    // Its one inbound peer slot is free for a peer all along.
    let (now, addr) = (net.now, net.addr(0));
    net.nodes[3].dial(now, addr).expect("queued");
    net.pump();
    assert_eq!(net.nodes[0].peer_counts(), (1, 0));
    assert_eq!(net.nodes[3].peer_counts(), (0, 1));
}

#[test]
fn a_query_connection_closes_once_idle_and_activity_keeps_it_open() {
    let mut net = Net::new(vec![config(), config()]);
    let idle = net.nodes[0].config.limits.query_idle_timeout;
    net.open_query(0, 1).expect("opened");
    net.pump();
    net.take(0);
    net.take(1);
    let (a, b) = (net.id(0), net.id(1));
    // Active at 4 s: still open 5 s after it connected.
    net.advance(idle - Duration::from_secs(1));
    let now = net.now;
    net.nodes[1]
        .send(now, &a, ASK, Bytes::from_static(b"answer"))
        .expect("sent");
    net.advance(Duration::from_secs(2));
    assert!(net.nodes[0].is_query_peer(&b), "reused while active");
    assert_eq!(net.take(0).len(), 1, "the message, no disconnection");
    // Quiet since then: closed once idle, by either end, with the reason said.
    net.advance(idle);
    for (index, other) in [(0, b), (1, a)] {
        let events = net.take(index);
        let closed = events.iter().find_map(|event| match event {
            NodeEvent::QueryDisconnected {
                peer,
                reason,
                detail,
                unsent,
                unconfirmed,
                ..
            } if *peer == other => {
                Some((*reason, detail.clone(), unsent.len() + unconfirmed.len()))
            }
            _ => None,
        });
        let Some((reason, detail, returned)) = closed else {
            panic!("node {index}: {events:?}");
        };
        assert_eq!(reason, DisconnectReason::Requested);
        assert_eq!(returned, 0);
        if detail != "query connection idle" {
            assert_eq!(index, 1, "the far end reads our GOAWAY's text: {detail}");
        }
        assert_eq!(net.nodes[index].query_counts(), (0, 0));
        assert_eq!(net.nodes[index].connection_count(), 0);
    }
}

#[test]
fn keepalive_does_not_keep_an_idle_query_connection_open() {
    let mut fast = config();
    fast.connection.ping_interval = Duration::from_millis(500);
    let mut net = Net::new(vec![fast.clone(), fast]);
    let idle = net.nodes[0].config.limits.query_idle_timeout;
    net.open_query(0, 1).expect("opened");
    net.pump();
    let b = net.id(1);
    assert!(net.nodes[0].is_query_peer(&b));
    // Pings and pongs every 500 ms, no message: closed once idle all the same.
    net.advance(idle + Duration::from_secs(1));
    assert!(!net.nodes[0].is_query_peer(&b), "idle despite keepalive");
    assert_eq!(
        net.nodes[1].query_counts(),
        (0, 0),
        "the listener's slot is free"
    );
}

/// Whether `events` tell of `peer` connecting as a peer.
fn peer_connected(events: &[NodeEvent], peer: PeerId) -> bool {
    events
        .iter()
        .any(|event| matches!(event, NodeEvent::PeerConnected { peer: p, .. } if *p == peer))
}

#[test]
fn a_persistent_peer_behind_a_query_connection_is_dialed_again_once_it_idles() {
    let mut net = Net::new(vec![config(), config()]);
    net.open_query(1, 0).expect("opened");
    net.pump();
    let (a, b) = (net.id(0), net.id(1));
    assert!(net.nodes[0].is_query_peer(&b));
    // B becomes persistent while its query connection is open: the dial is refused by it,
    // and retried — not given up.
    let (now, b_addr) = (net.now, net.addr(1));
    net.nodes[0].add_persistent_peer(now, b_addr);
    net.pump();
    let events = net.take(0);
    let refused = events.iter().find_map(|event| match event {
        NodeEvent::DialFailed { reason, retry, .. } => Some((*reason, *retry)),
        _ => None,
    });
    assert!(
        matches!(
            refused,
            Some((DisconnectReason::AlreadyConnected, Retry::At(_)))
        ),
        "{events:?}"
    );
    // Once the query connection idles away, the redial connects them as peers.
    let idle = net.nodes[0].config.limits.query_idle_timeout;
    net.advance(idle + Duration::from_secs(20));
    assert!(peer_connected(&net.take(0), b), "B connected as a peer");
    assert!(net.nodes[1].peers().any(|p| p == a));
}

#[test]
fn a_dial_beaten_by_a_query_connection_is_reported_and_retried() {
    let mut net = Net::new(vec![config(), config()]);
    // The query's dialer has the lower id, so its connection wins the simultaneous open.
    let (asker, dialer) = if net.id(0) < net.id(1) {
        (0, 1)
    } else {
        (1, 0)
    };
    let now = net.now;
    let target = net.addr(asker);
    net.nodes[dialer].dial(now, target).expect("queued");
    net.open_query(asker, dialer).expect("opened");
    net.pump();
    let asker_id = net.id(asker);
    assert!(
        net.nodes[dialer].is_query_peer(&asker_id),
        "the query connection won"
    );
    let events = net.take(dialer);
    let answered = events.iter().any(|event| {
        matches!(
            event,
            NodeEvent::DialFailed {
                reason: DisconnectReason::AlreadyConnected,
                retry: Retry::At(_),
                ..
            }
        )
    });
    assert!(answered, "the dial is told why, and retried: {events:?}");
    let idle = net.nodes[0].config.limits.query_idle_timeout;
    net.advance(idle + Duration::from_secs(20));
    assert!(
        peer_connected(&net.take(dialer), asker_id),
        "connected as peers after all"
    );
}

#[test]
fn only_a_persistent_peers_own_address_is_redialed_forever() {
    let mut net = Net::new(vec![config(), config()]);
    let b = net.id(1);
    let now = net.now;
    // B persistent at an address where nothing listens; another address naming B (as a
    // peer could relay) is an ordinary dial.
    let persistent = NetAddress::new(Some(b), SocketAddr::new(ip(7), 26656));
    let relayed = NetAddress::new(Some(b), SocketAddr::new(ip(8), 26656));
    net.nodes[0].add_persistent_peer(now, persistent);
    net.nodes[0].dial(now, relayed).expect("queued");
    net.advance(Duration::from_secs(120));
    let events = net.take(0);
    let given_up = |addr: NetAddress| {
        events.iter().any(|event| {
            matches!(event, NodeEvent::DialFailed { addr: a, retry: Retry::GivenUp, .. } if *a == addr)
        })
    };
    assert!(
        given_up(relayed),
        "the relayed address gives up: {events:?}"
    );
    assert!(!given_up(persistent), "the persistent address never does");
}

#[test]
fn a_query_connection_offering_several_protocols_is_refused_as_a_breach() {
    let mut net = Net::new(vec![config(), config()]);
    // Node 0 dials as a peer would, but declares a query: both its protocols offered.
    net.nodes[0].info.features |= crate::node_info::FEATURE_QUERY;
    let (now, b_addr) = (net.now, net.addr(1));
    net.nodes[0].dial(now, b_addr).expect("queued");
    net.pump();
    let a = net.id(0);
    assert!(!net.nodes[1].is_query_peer(&a));
    assert_eq!(net.nodes[1].query_counts(), (0, 0));
    let refused = net.take(1).into_iter().find_map(|event| match event {
        NodeEvent::InboundRefused { reason, .. } => Some(reason),
        _ => None,
    });
    assert_eq!(refused, Some(DisconnectReason::ProtocolError));
    assert!(net.nodes[1].bans().is_peer_banned(net.now, &a), "a breach");
}

#[test]
fn one_connection_per_peer_holds_across_kinds() {
    let mut net = Net::new(vec![config(), config()]);
    let (a, b) = (net.id(0), net.id(1));
    net.open_query(0, 1).expect("opened");
    net.pump();
    // While the query connection is open, neither end dials a peer connection to the other.
    let (now, to_b, to_a) = (net.now, net.addr(1), net.addr(0));
    assert_eq!(
        net.nodes[0].dial(now, to_b),
        Err(DialError::AlreadyConnected)
    );
    assert_eq!(
        net.nodes[1].dial(now, to_a),
        Err(DialError::AlreadyConnected)
    );
    net.nodes[0].disconnect(now, &b, DisconnectReason::Requested);
    net.pump();
    net.take(0);
    net.take(1);
    // Both at once, a query one way and a peer connection the other: both ends keep the
    // same one, by the rule both compute, and a lost query dial is reported.
    for first in [0, 1] {
        let (now, to_b, to_a) = (net.now, net.addr(1), net.addr(0));
        if first == 0 {
            net.nodes[0].open_query(now, to_b, "ask").expect("query");
            net.nodes[1].dial(now, to_a).expect("dial");
        } else {
            net.nodes[1].dial(now, to_a).expect("dial");
            net.nodes[0].open_query(now, to_b, "ask").expect("query");
        }
        net.pump();
        let (events_a, events_b) = (net.take(0), net.take(1));
        let query_a = query_connected(&events_a).len();
        let query_b = query_connected(&events_b).len();
        let peer_a = net.nodes[0].peers().count();
        let peer_b = net.nodes[1].peers().count();
        assert_eq!((query_a, peer_a), (query_b, peer_b), "both ends agree");
        assert_eq!(query_a + peer_a, 1, "one connection: {events_a:?}");
        assert_eq!(net.nodes[0].connection_count(), 1);
        if peer_a == 1 {
            assert_eq!(
                query_failed(&events_a),
                [DisconnectReason::AlreadyConnected]
            );
            assert_eq!(net.nodes[0].query_counts(), (0, 0), "its budget given back");
        }
        // Apart again for the next round.
        let now = net.now;
        net.nodes[0].disconnect(now, &b, DisconnectReason::Requested);
        net.nodes[1].disconnect(now, &a, DisconnectReason::Requested);
        net.pump();
        net.advance(Duration::from_secs(1));
        net.take(0);
        net.take(1);
        assert_eq!(net.nodes[0].connection_count(), 0);
    }
}
