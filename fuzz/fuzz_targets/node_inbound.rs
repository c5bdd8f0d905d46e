//! One `Node` with small limits, driven as its adapter and application would drive it by an
//! arbitrary sequence of socket events, clock steps and application calls: sockets accepted
//! from a handful of addresses (so the per-IP, per-subnet and pending limits are hit), raw
//! bytes, closes, blocked and writable sockets, dials, sends, broadcasts, disconnects and
//! bans. With three inbound slots, four pending handshakes and two per subnet, sockets from
//! the same few subnets reach the pending-handshake room-making and, once handshaken, inbound
//! eviction. Genuine peers — a bare `Handshake` with one of four fixed identities, so their
//! session keys are ours — complete real handshakes on accepted sockets (as dialers) and
//! on the node's dials (as listeners), then write records sealed with those keys, so
//! arbitrary frames reach the node's established connections. The node runs discovery on a
//! router, and the genuine peers speak PEX: their frames and well-formed `GetAddrs` and
//! `Addrs` reach discovery's PEX handling, its book, its dials and feelers (the allow-list
//! keeps the dials to the wires' addresses).
//!
//! After every step, whatever the peers did: the peer counts stay within the limits and
//! agree with `peers()`; every connection the node knows was announced (accepted or
//! `Action::Dial`) and not yet `Action::Close`d; `poll_transmit` and `Action`s name only
//! such connections, never a blocked or unconnected socket nor one the transport closed;
//! a refused socket names a limit (or ban) that live connections really reach, so no
//! counter leaks; what the node writes to a genuine peer authenticates and parses;
//! `PeerConnected` and `PeerDisconnected` alternate per peer, agree with `peers()` once all
//! events are taken, and messages come only from connected peers; no timer is left due
//! after `handle_timeout`; and once the events are drained, every socket the transport
//! closed has been freed.
//!
//! Query connections too: genuine dialers that set the query bit (`FEATURE_QUERY`) reach
//! query admission (a budget of two, outside the peer slots), and the node opens its own
//! (`open_query`, a budget of two). After every step the query counts stay within their
//! budgets and the peer counts still agree with `peers()` (no query connection holds a
//! slot); `QueryConnected` and `QueryDisconnected` alternate per peer, never for a peer
//! connected as a peer (one connection per peer across kinds), and agree with
//! `is_query_peer` and the inbound query count once all events are taken.
#![no_main]

#[path = "common/genuine_peer.rs"]
mod genuine_peer;
#[path = "common/wires.rs"]
mod wires;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use arbitrary::Arbitrary;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use switchboard::dial_queue::DialConfig;
use switchboard::discovery::{Discovery, DiscoveryConfig};
use switchboard::frame::Frame;
use switchboard::node::{
    Connectedness, DialError, EvictionConfig, Node, NodeConfig, NodeEvent, QueryError,
};
use switchboard::peer_set::{Direction, IpNet, Limits, Refused};
use switchboard::pex::{MAX_ADDRS, PEX_CHANNEL, PEX_PROTOCOL, PexMessage};
use switchboard::router::Router;
use switchboard::{
    ChannelConfig, ChannelInfo, DisconnectReason, FEATURE_QUERY, Instant, NetAddress, NodeInfo,
    PeerId, SendError,
};

use genuine_peer::{ATTACKERS, Conn, IPS, KEYS, MAX_MESSAGE, Peer, PeerFrame, ip, peer, reason};
use wires::Wires;

/// The one channel both ends offer.
const CHANNEL: u16 = 1;

#[derive(Arbitrary, Debug)]
enum Operation {
    /// A socket accepted from address `ip % 8`.
    Accept {
        ip: u8,
        port: u16,
    },
    /// The same, then a genuine dialer with identity `key` on it.
    AcceptPeer {
        ip: u8,
        port: u16,
        key: u8,
    },
    /// The same, the genuine dialer opening a query connection (the query bit set).
    AcceptQuery {
        ip: u8,
        port: u16,
        key: u8,
    },
    /// The node opens a query connection to address `ip % 8`, with identity `peer`.
    OpenQuery {
        ip: u8,
        peer: Option<u8>,
    },
    /// A genuine peer with identity `key` takes over connection `conn` (dialer on an
    /// accepted socket, listener on a dial) and the two talk until neither has more to say.
    Handshake {
        conn: u8,
        key: u8,
    },
    /// Raw bytes read from `conn`'s socket.
    Input {
        conn: u8,
        bytes: Vec<u8>,
    },
    /// A plaintext the genuine peer on `conn` seals as one record, read in two pieces.
    Record {
        conn: u8,
        plaintext: Vec<u8>,
        cut: u16,
    },
    /// Well-formed frames the genuine peer on `conn` seals as one record.
    Frames {
        conn: u8,
        frames: Vec<PeerFrame>,
        cut: u16,
    },
    Connected {
        conn: u8,
    },
    Closed {
        conn: u8,
    },
    Blocked {
        conn: u8,
    },
    Writable {
        conn: u8,
    },
    Advance {
        ms: u16,
    },
    /// Jumps to the node's next deadline.
    Wake,
    /// Drains `poll_transmit`, handing each connection's bytes to its genuine peer.
    Transmit,
    /// Writes what the genuine peers have to say to the node.
    Deliver,
    /// Takes up to `max` events (all when 0).
    TakeEvents {
        max: u8,
    },
    Dial {
        ip: u8,
        peer: Option<u8>,
    },
    Send {
        peer: u8,
        channel: u8,
        len: u16,
    },
    Broadcast {
        channel: u8,
        len: u16,
    },
    Disconnect {
        peer: u8,
        code: u8,
    },
    BanPeer {
        peer: u8,
        ms: u16,
    },
    BanIp {
        ip: u8,
        ms: u16,
    },
    /// Shuts the node down: from then on it must neither dial nor admit anyone.
    Shutdown,
    /// The genuine peer on `conn` sends a well-formed PEX message: `GetAddrs`, or `Addrs`
    /// naming the wires' addresses (`ip % 8`) and genuine identities.
    Pex {
        conn: u8,
        addrs: Option<Vec<(u8, u16, Option<u8>)>>,
        cut: u16,
    },
}

/// Channels the fuzzer writes on: the open one, unknown ones, a reserved one.
fn channel(index: u8) -> u16 {
    [CHANNEL, 0, 2, 0xFF00][usize::from(index) % 4]
}

/// As `switchboard_sim::test_node_config`, with small limits and fast timers.
fn node_config() -> NodeConfig {
    let mut config = NodeConfig::new("sim", "switchboard-fuzz");
    config.add_channel(
        "chat",
        1,
        ChannelConfig {
            send_queue_messages: 4,
            send_queue_bytes: 4096,
            max_message_size: MAX_MESSAGE,
            receive_window: 4096,
            ..ChannelConfig::new(CHANNEL)
        },
    );
    config.connection.ping_interval = Duration::from_secs(2);
    config.connection.pong_timeout = Duration::from_secs(4);
    config.connection.handshake_timeout = Duration::from_secs(3);
    // Few enough protections that three inbound peers leave one to evict.
    config.eviction = EvictionConfig {
        enabled: true,
        protect_by_subnet: 1,
        protect_by_rtt: 0,
        protect_by_use: 1,
    };
    config.limits = Limits {
        max_inbound: 3,
        max_outbound: 2,
        max_pending_handshakes: 4,
        max_pending_per_subnet: 2,
        max_inbound_per_ip: 2,
        max_inbound_per_subnet: 3,
        max_outbound_queries: 2,
        max_inbound_queries: 2,
        query_idle_timeout: Duration::from_secs(2),
    };
    config.dial = DialConfig {
        max_in_flight: 2,
        dial_timeout: Duration::from_secs(2),
        backoff_base: Duration::from_millis(500),
        backoff_cap: Duration::from_secs(4),
        max_attempts: 3,
    };
    config.slow_peer_timeout = Duration::from_secs(1);
    config.violation_ban = Duration::from_secs(5);
    // What PEX hands out may name any address: only the wires' are dialed.
    config.allowed_networks = IPS
        .iter()
        .map(|&addr| IpNet {
            addr,
            prefix: if addr.is_ipv4() { 32 } else { 128 },
        })
        .collect();
    config
}

fn attacker_info() -> NodeInfo {
    let mut info = NodeInfo::new("sim", "attacker");
    info.channels.push(ChannelInfo {
        id: CHANNEL,
        protocol: "chat".into(),
        version: 1,
    });
    info.channels.push(ChannelInfo {
        id: PEX_CHANNEL,
        protocol: PEX_PROTOCOL.into(),
        version: 1,
    });
    info
}

/// Discovery ticking every second, asking a peer for addresses at most every 2 s, its book
/// keeping the wires' private and documentation addresses, feelers every 3 s.
fn discovery_config() -> DiscoveryConfig {
    let mut config = DiscoveryConfig::default();
    config.interval = Duration::from_secs(1);
    config.feeler_interval = Some(Duration::from_secs(3));
    config.pex.request_interval = Duration::from_secs(2);
    config.addr_book.routable_only = false;
    config
}

/// A dialer opening a query connection for "chat".
fn query_info() -> NodeInfo {
    let mut info = attacker_info();
    info.features |= FEATURE_QUERY;
    // A query connection offers the one protocol it is for (`PROTOCOL.md` §6.8).
    info.channels.retain(|channel| channel.id == CHANNEL);
    info
}

struct Fuzz {
    /// The node, with discovery on its router: the genuine peers speak PEX.
    router: Router<ChaCha20Rng>,
    limits: Limits,
    wires: Wires,
    /// Until when each address is banned.
    ip_bans: BTreeMap<IpAddr, Instant>,
    /// When a connection with each address was last seen open (after a step): a breach on
    /// it — which only an open connection can commit — bans the address for
    /// `violation_ban` (`violation_ban_ip`) from then at the latest.
    open_at: BTreeMap<IpAddr, Instant>,
    violation_ban: Duration,
    /// The connected peers, as the events told.
    connected: BTreeSet<PeerId>,
    /// The peers connected over a query connection, and which side dialed, as told.
    queries: BTreeMap<PeerId, Direction>,
    /// Connections the wires had announced when the node was shut down.
    conns_at_shutdown: Option<usize>,
}

impl Fuzz {
    fn new() -> Self {
        let config = node_config();
        let limits = config.limits;
        let violation_ban = config.violation_ban;
        let now = Instant::from_nanos(1_000_000_000);
        let mut node = Node::new(
            now,
            config,
            KEYS.node.clone(),
            ChaCha20Rng::seed_from_u64(1),
        )
        .expect("a valid config");
        let discovery = Discovery::new(discovery_config(), node.rng());
        let router =
            Router::with_protocols(node, now, |router| router.register(discovery).map(drop))
                .expect("discovery registers");
        Fuzz {
            router,
            limits,
            wires: Wires::new(now),
            ip_bans: BTreeMap::new(),
            open_at: BTreeMap::new(),
            violation_ban,
            connected: BTreeSet::new(),
            queries: BTreeMap::new(),
            conns_at_shutdown: None,
        }
    }

    /// Takes the node's actions, as the adapter must after every input.
    fn actions(&mut self) {
        self.wires.actions(self.router.node_mut());
    }

    fn accept(&mut self, ip: u8, port: u16) -> Option<usize> {
        let ip = self::ip(ip);
        match self
            .router
            .node_mut()
            .handle_accepted(self.wires.now, SocketAddr::new(ip, port))
        {
            // A node shutting down admits no one.
            Ok(_) if self.conns_at_shutdown.is_some() => panic!("admitted while shutting down"),
            Ok(id) => {
                self.wires.announce(Conn::new(id, Some(ip)));
                self.actions();
                Some(self.wires.conns.len() - 1)
            }
            Err(refused) => {
                self.justify(ip, refused);
                None
            }
        }
    }

    /// A refused socket: the limit named must really be reached by connections alive (a
    /// counter that leaked would refuse sockets forever).
    fn justify(&self, ip: IpAddr, refused: Refused) {
        let alive_from = |same: &dyn Fn(IpAddr) -> bool| {
            self.wires
                .conns
                .iter()
                .filter(|conn| !conn.closed && conn.accepted_from.is_some_and(same))
                .count()
        };
        let subnet = |ip: IpAddr| match ip {
            IpAddr::V4(ip) => u128::from(ip.to_bits() >> 8),
            IpAddr::V6(ip) => ip.to_bits() >> 80 | 1 << 127,
        };
        let limits = &self.limits;
        match refused {
            Refused::ShuttingDown => assert!(
                self.conns_at_shutdown.is_some(),
                "refused as shutting down, never shut down"
            ),
            Refused::PendingHandshakes => assert!(
                self.router.node().connection_count() >= limits.max_pending_handshakes,
                "refused as pending with {} connections",
                self.router.node().connection_count()
            ),
            Refused::PerIp => {
                let alive = alive_from(&|other| other == ip);
                assert!(
                    alive >= limits.max_inbound_per_ip,
                    "refused per IP with {alive}"
                )
            }
            // Its share of the pending handshakes: at least that many connections (some
            // perhaps established) from the subnet are alive.
            Refused::PendingPerSubnet => {
                let alive = alive_from(&|other| subnet(other) == subnet(ip));
                assert!(
                    alive >= limits.max_pending_per_subnet,
                    "refused per subnet's pending share with {alive}"
                )
            }
            Refused::PerSubnet => {
                let alive = alive_from(&|other| subnet(other) == subnet(ip));
                assert!(
                    alive >= limits.max_inbound_per_subnet,
                    "refused per subnet with {alive}"
                )
            }
            // Banned by the application, or for a breach on a connection from there.
            Refused::Banned => assert!(
                self.ip_bans
                    .get(&ip)
                    .is_some_and(|until| *until > self.wires.now)
                    || self
                        .open_at
                        .get(&ip)
                        .is_some_and(|at| at.saturating_add(self.violation_ban) > self.wires.now),
                "{ip} refused as banned"
            ),
            Refused::NotAllowed => panic!("{ip} refused as not allowed"),
            other => panic!("{ip} refused for a reason this target does not model: {other}"),
        }
    }

    /// A genuine peer with identity `key` takes over connection `index`.
    fn handshake(&mut self, index: usize, key: u8) {
        self.wires
            .handshake(self.router.node_mut(), index, key, attacker_info, |_| {
                vec![CHANNEL, PEX_CHANNEL]
            });
    }

    /// A genuine dialer with identity `key` opens a query connection on `index`.
    fn query_handshake(&mut self, index: usize, key: u8) {
        self.wires
            .handshake(self.router.node_mut(), index, key, query_info, |_| {
                vec![CHANNEL]
            });
    }

    /// The genuine peer of connection `index` seals `plaintext` and writes it in two reads.
    fn record(&mut self, index: usize, plaintext: &[u8], cut: u16) {
        let Some((id, wire, cut)) = self.wires.seal(index, plaintext, cut) else {
            return;
        };
        let (head, tail) = wire.split_at(cut);
        self.router
            .node_mut()
            .handle_input(self.wires.now, id, head);
        self.actions();
        self.check();
        self.router
            .node_mut()
            .handle_input(self.wires.now, id, tail);
    }

    fn take_events(&mut self, max: u8) {
        let mut taken = 0;
        loop {
            if max != 0 && taken == max {
                return;
            }
            let Some(event) = self.router.poll_event(self.wires.now) else {
                break;
            };
            taken += 1;
            match event {
                NodeEvent::PeerConnected { peer, .. } => {
                    assert!(KEYS.ids[..ATTACKERS].contains(&peer), "{peer} is nobody");
                    assert!(!self.queries.contains_key(&peer), "{peer} twice, two kinds");
                    assert!(self.connected.insert(peer), "{peer} connected twice");
                }
                NodeEvent::QueryConnected {
                    peer, direction, ..
                } => {
                    assert!(KEYS.ids[..ATTACKERS].contains(&peer), "{peer} is nobody");
                    assert!(!self.connected.contains(&peer), "{peer} twice, two kinds");
                    let before = self.queries.insert(peer, direction);
                    assert!(before.is_none(), "{peer} query-connected twice");
                }
                NodeEvent::QueryDisconnected { peer, .. } => {
                    assert!(
                        self.queries.remove(&peer).is_some(),
                        "{peer} query-disconnected, not connected"
                    );
                }
                NodeEvent::QueryFailed { addr, .. } => {
                    assert!(IPS.contains(&addr.socket_addr().ip()));
                }
                NodeEvent::PeerDisconnected { peer, .. } => {
                    assert!(
                        self.connected.remove(&peer),
                        "{peer} disconnected, not connected"
                    );
                }
                NodeEvent::Message {
                    peer,
                    channel,
                    message,
                } => {
                    assert!(
                        self.connected.contains(&peer) || self.queries.contains_key(&peer),
                        "message from absent {peer}"
                    );
                    assert_eq!(channel, CHANNEL);
                    assert!(message.len() <= MAX_MESSAGE as usize);
                }
                NodeEvent::SlowPeer { peer } => {
                    assert!(self.connected.contains(&peer), "absent {peer} is slow");
                }
                NodeEvent::Writable { peer, .. } => {
                    assert!(
                        self.connected.contains(&peer) || self.queries.contains_key(&peer),
                        "absent {peer} writable"
                    );
                }
                NodeEvent::InboundRefused { peer, .. } => {
                    assert!(
                        peer.is_none_or(|peer| !self.connected.contains(&peer)
                            && !self.queries.contains_key(&peer)),
                        "a connected peer refused"
                    );
                }
                // Discovery dials what PEX taught it; the allow-list refuses what lies
                // outside the wires' addresses before any socket is opened.
                NodeEvent::DialFailed { addr, reason, .. } => {
                    assert!(
                        IPS.contains(&addr.socket_addr().ip())
                            || reason == DisconnectReason::NotAllowed,
                        "a dial to {addr} failed with {reason}"
                    );
                }
                other => panic!("an event this target does not model: {other:?}"),
            }
            self.actions();
        }
        // All taken: the events told every change of `peers()`.
        let peers: BTreeSet<PeerId> = self.router.node().peers().collect();
        assert_eq!(peers, self.connected, "peers() disagrees with the events");
        for peer in self.queries.keys() {
            assert!(
                self.router.node().is_query_peer(peer),
                "{peer}'s query connection"
            );
        }
        let inbound = self
            .queries
            .values()
            .filter(|direction| **direction == Direction::Inbound)
            .count();
        let (node_inbound, node_outbound) = self.router.node().query_counts();
        assert_eq!(node_inbound, inbound, "inbound query count");
        assert!(
            node_outbound >= self.queries.len() - inbound,
            "outbound query count"
        );
    }

    fn timeout(&mut self) {
        self.router.handle_timeout(self.wires.now);
        self.actions();
        if let Some(deadline) = self.router.node().poll_timeout() {
            assert!(
                deadline > self.wires.now,
                "a timer due at {deadline:?} survived its timeout"
            );
        }
    }

    /// What holds after every step.
    fn check(&mut self) {
        self.actions();
        for conn in &self.wires.conns {
            if !conn.closed
                && !conn.transport_closed
                && let Some(ip) = conn.accepted_from.or(conn.dialed)
            {
                self.open_at.insert(ip, self.wires.now);
            }
        }
        if let Some(conns) = self.conns_at_shutdown {
            assert_eq!(
                self.wires.conns.len(),
                conns,
                "a connection opened while shutting down"
            );
        }
        let (inbound, outbound) = self.router.node().peer_counts();
        assert!(
            inbound <= self.limits.max_inbound,
            "{inbound} inbound peers"
        );
        assert!(
            outbound <= self.limits.max_outbound,
            "{outbound} outbound peers"
        );
        let peers: Vec<PeerId> = self.router.node().peers().collect();
        assert_eq!(
            peers.len(),
            inbound + outbound,
            "peers() and peer_counts() disagree"
        );
        let (queries_in, queries_out) = self.router.node().query_counts();
        assert!(
            queries_in <= self.limits.max_inbound_queries,
            "{queries_in} inbound queries"
        );
        assert!(
            queries_out <= self.limits.max_outbound_queries,
            "{queries_out} outbound queries"
        );
        for peer in &peers {
            assert!(
                !self.router.node().is_query_peer(peer),
                "{peer} is both kinds"
            );
        }
        for peer in &peers {
            let info = self
                .router
                .node()
                .peer_info(peer)
                .expect("a connected peer has info");
            assert_eq!(info.peer, *peer);
            assert_eq!(
                self.router.node().connectedness(self.wires.now, peer),
                Connectedness::Connected
            );
        }
        assert_eq!(
            self.router.node().connection_count(),
            self.wires.conns.len() - self.wires.closes,
            "connections: announced minus closed"
        );
    }

    fn apply(&mut self, operation: Operation) {
        match operation {
            Operation::Accept { ip, port } => {
                self.accept(ip, port);
            }
            Operation::AcceptPeer { ip, port, key } => {
                if let Some(index) = self.accept(ip, port) {
                    self.handshake(index, key);
                }
            }
            Operation::AcceptQuery { ip, port, key } => {
                if let Some(index) = self.accept(ip, port) {
                    self.query_handshake(index, key);
                }
            }
            Operation::OpenQuery { ip, peer } => {
                let addr =
                    NetAddress::new(peer.map(self::peer), SocketAddr::new(self::ip(ip), 26656));
                let opened = self
                    .router
                    .node_mut()
                    .open_query(self.wires.now, addr, "chat");
                if self.conns_at_shutdown.is_some() {
                    assert_eq!(opened, Err(QueryError::ShuttingDown));
                }
            }
            Operation::Handshake { conn, key } => {
                if let Some(index) = self.wires.conn(conn) {
                    self.handshake(index, key);
                }
            }
            Operation::Input { conn, bytes } => {
                if let Some(index) = self.wires.conn(conn) {
                    let conn = &mut self.wires.conns[index];
                    conn.tainted |= !matches!(conn.peer, Peer::Established(_));
                    conn.connected = true;
                    let id = conn.id;
                    self.router
                        .node_mut()
                        .handle_input(self.wires.now, id, &bytes);
                }
            }
            Operation::Record {
                conn,
                plaintext,
                cut,
            } => {
                if let Some(index) = self.wires.conn(conn) {
                    self.record(index, &plaintext, cut);
                }
            }
            Operation::Frames { conn, frames, cut } => {
                if let Some(index) = self.wires.conn(conn)
                    && let Peer::Established(session) = &self.wires.conns[index].peer
                {
                    let mut plaintext = Vec::new();
                    for frame in frames {
                        frame.to_frame(session, channel).encode(&mut plaintext);
                    }
                    self.record(index, &plaintext, cut);
                }
            }
            Operation::Connected { conn } => {
                if let Some(index) = self.wires.conn(conn) {
                    let conn = &mut self.wires.conns[index];
                    conn.connected = true;
                    let id = conn.id;
                    self.router.node_mut().handle_connected(self.wires.now, id);
                }
            }
            Operation::Closed { conn } => {
                if let Some(index) = self.wires.conn(conn) {
                    let conn = &mut self.wires.conns[index];
                    conn.transport_closed = true;
                    let id = conn.id;
                    self.router.node_mut().handle_closed(self.wires.now, id);
                }
            }
            Operation::Blocked { conn } => {
                if let Some(index) = self.wires.conn(conn) {
                    let conn = &mut self.wires.conns[index];
                    conn.blocked = true;
                    let id = conn.id;
                    self.router
                        .node_mut()
                        .handle_write_blocked(self.wires.now, id);
                }
            }
            Operation::Writable { conn } => {
                if let Some(index) = self.wires.conn(conn) {
                    let conn = &mut self.wires.conns[index];
                    conn.blocked = false;
                    let id = conn.id;
                    self.router.node_mut().handle_writable(self.wires.now, id);
                }
            }
            Operation::Advance { ms } => {
                self.wires.now = self
                    .wires
                    .now
                    .saturating_add(Duration::from_millis(ms.into()));
                self.timeout();
            }
            Operation::Wake => {
                if let Some(deadline) = self.router.poll_timeout() {
                    self.wires.now = self.wires.now.max(deadline);
                }
                self.timeout();
            }
            Operation::Transmit => {
                self.wires.transmit(self.router.node_mut());
            }
            Operation::Deliver => {
                self.wires.deliver(self.router.node_mut());
            }
            Operation::TakeEvents { max } => self.take_events(max),
            Operation::Dial { ip, peer } => {
                let addr =
                    NetAddress::new(peer.map(self::peer), SocketAddr::new(self::ip(ip), 26656));
                let dialed = self.router.node_mut().dial(self.wires.now, addr);
                if self.conns_at_shutdown.is_some() {
                    assert_eq!(dialed, Err(DialError::ShuttingDown));
                }
            }
            Operation::Send { peer, channel, len } => {
                let peer = self::peer(peer);
                let connected = self.router.node().peers().any(|p| p == peer)
                    || self.router.node().is_query_peer(&peer);
                let message = Bytes::from(vec![0x5A; usize::from(len)]);
                let sent = self.router.node_mut().send(
                    self.wires.now,
                    &peer,
                    self::channel(channel),
                    message,
                );
                assert!(
                    connected || matches!(sent, Err(SendError::NotConnected(_))),
                    "send to an absent peer: {sent:?}"
                );
            }
            Operation::Broadcast { channel, len } => {
                let peers = self.router.node().peers().count();
                let message = Bytes::from(vec![0xB7; usize::from(len)]);
                let taken = self.router.node_mut().broadcast(
                    self.wires.now,
                    self::channel(channel),
                    message,
                );
                assert!(taken <= peers);
            }
            Operation::Disconnect { peer, code } => {
                self.router
                    .node_mut()
                    .disconnect(self.wires.now, &self::peer(peer), reason(code));
            }
            Operation::BanPeer { peer, ms } => {
                let peer = self::peer(peer);
                self.router.node_mut().ban_peer(
                    self.wires.now,
                    &peer,
                    Duration::from_millis(ms.into()),
                );
            }
            Operation::Shutdown => {
                self.router
                    .node_mut()
                    .shutdown(self.wires.now, Duration::from_millis(500));
                self.conns_at_shutdown.get_or_insert(self.wires.conns.len());
            }
            Operation::Pex { conn, addrs, cut } => {
                let message = match addrs {
                    None => PexMessage::GetAddrs,
                    Some(addrs) => PexMessage::Addrs(
                        addrs
                            .into_iter()
                            .take(MAX_ADDRS)
                            .map(|(ip, port, peer)| {
                                NetAddress::new(
                                    peer.map(self::peer),
                                    SocketAddr::new(self::ip(ip), port),
                                )
                            })
                            .collect(),
                    ),
                };
                let payload = Bytes::from(message.encode());
                let mut plaintext = Vec::new();
                Frame::Data {
                    channel: PEX_CHANNEL,
                    first: Some(payload.len() as u32),
                    end: true,
                    payload,
                }
                .encode(&mut plaintext);
                if let Some(index) = self.wires.conn(conn) {
                    self.record(index, &plaintext, cut);
                }
            }
            Operation::BanIp { ip, ms } => {
                let ip = self::ip(ip);
                let duration = Duration::from_millis(ms.into());
                // A ban held is extended, never shortened.
                let until = self.wires.now.saturating_add(duration);
                let held = self.ip_bans.entry(ip).or_insert(until);
                *held = (*held).max(until);
                self.router.node_mut().ban_ip(self.wires.now, ip, duration);
            }
        }
        self.check();
    }
}

fuzz_target!(|operations: Vec<Operation>| {
    let mut fuzz = Fuzz::new();
    for operation in operations.into_iter().take(512) {
        fuzz.apply(operation);
    }
    // An application that takes every event sees every socket the transport closed freed.
    fuzz.take_events(0);
    fuzz.check();
    for conn in &fuzz.wires.conns {
        assert!(
            !conn.transport_closed || conn.closed,
            "{} outlived its socket",
            conn.id
        );
    }
});
