//! Two attacks on a node's admission, made on real loopback sockets as an attacker would make
//! them — hand-driven sockets bound to chosen addresses in `127.0.0.0/8`, so each attacker
//! picks its address and /24 — while an honest peer already connected keeps exchanging
//! messages with the node, whose delivery is measured throughout.
//!
//! - **Handshake slowloris**: 30 addresses in 8 /24s hold two sockets each that send a few
//!   bytes of the handshake's first message and then nothing, reconnecting whenever the node
//!   drops one. A fresh honest node must still connect within 2 s.
//! - **Inbound squatting**: 39 identities from 5 /24s complete the handshake and answer PINGs
//!   but say nothing, holding the inbound slots (with a trusted and a persistent peer among
//!   them, in the same /24s, connected last); evicted squatters come back. A fresh honest
//!   node from another /24 must be admitted within 2 s, and the trusted and persistent peers
//!   must never be evicted.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use switchboard::connection::{Closed, ClosedBy, Connection, Event};
use switchboard::node::{NodeConfig, NodeEvent};
use switchboard::{
    ChannelConfig, ChannelInfo, ConnectionConfig, DisconnectReason, Keypair, NetAddress, NodeInfo,
    PeerId,
};
use switchboard_mio::{Handle, NodeApi, Runtime};

mod common;
use common::wire_peer::WirePeer;
use common::{CHANNEL, V4, driver_config, wait_connected};

/// What an honest node must connect within, attack or not.
const ADMITTED_WITHIN: Duration = Duration::from_secs(2);

/// `127.s.h.1`-style attacker addresses: /24 number `subnet`, host `host`.
fn attacker_ip(subnet: u8, host: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 77, subnet, host)
}

/// A socket from `source` to `hub`, non-blocking once connected.
fn connect_from(source: Ipv4Addr, hub: SocketAddr) -> std::io::Result<TcpStream> {
    let stream = WirePeer::dial(hub).from(IpAddr::V4(source)).socket()?;
    stream.set_nonblocking(true)?;
    Ok(stream)
}

/// The hub's config: default limits but for what a loopback test needs.
fn hub_config() -> NodeConfig {
    let mut config = NodeConfig::new("mio-tests", "switchboard-mio-tests");
    config.add_channel("test", 1, ChannelConfig::new(CHANNEL));
    config
}

/// An honest node's config: its own /24 is 127.0.0/24, like the hub's.
fn honest_config() -> NodeConfig {
    let mut config = hub_config();
    config.limits.max_inbound_per_ip = 64;
    config
}

fn switchboard_now(start: Instant) -> switchboard::Instant {
    switchboard::Instant::from_nanos(start.elapsed().as_nanos() as u64)
}

/// A peer that behaves like an honest one but says nothing: a dialer `Connection` — the
/// core's own state machine, not a hand-driven [`WirePeer`] — on a socket bound to an
/// address of the attacker's choosing. It keeps its slot the way a real node would (its
/// connection answers PINGs, keeps itself alive, and hears its GOAWAY) while the test pumps
/// forty of them on one thread without blocking, reconnecting the evicted ones mid-attack:
/// nothing a blocking, hand-driven peer does.
struct ConnectionPeer {
    stream: TcpStream,
    connection: Connection,
    unwritten: Vec<u8>,
    closed: Option<Closed>,
    connected: bool,
}

impl ConnectionPeer {
    fn dial(
        start: Instant,
        source: Ipv4Addr,
        hub: SocketAddr,
        keypair: &Keypair,
        rng: &mut ChaCha20Rng,
    ) -> Self {
        let config = ConnectionConfig::new(vec![ChannelConfig::new(CHANNEL)]);
        let mut info = NodeInfo::new("mio-tests", "squatter");
        info.channels.push(ChannelInfo {
            id: CHANNEL,
            protocol: "test".into(),
            version: 1,
        });
        let connection = Connection::dial(
            switchboard_now(start),
            Arc::new(config),
            keypair,
            info,
            None,
            rng,
        )
        .expect("connection");
        ConnectionPeer {
            stream: connect_from(source, hub).expect("connect"),
            connection,
            unwritten: Vec::new(),
            closed: None,
            connected: false,
        }
    }

    /// Reads, writes and fires timers until nothing is left to do now.
    fn pump(&mut self, start: Instant) {
        let now = switchboard_now(start);
        let mut buffer = [0u8; 16 * 1024];
        loop {
            match self.stream.read(&mut buffer) {
                Ok(0) => {
                    self.connection.handle_closed();
                    break;
                }
                Ok(n) => self.connection.handle_input(now, &buffer[..n]),
                Err(error) if error.kind() == ErrorKind::WouldBlock => break,
                Err(_) => {
                    self.connection.handle_closed();
                    break;
                }
            }
        }
        if self.connection.poll_timeout().is_some_and(|at| at <= now) {
            self.connection.handle_timeout(now);
        }
        while self.connection.poll_transmit(now, &mut self.unwritten) {}
        while !self.unwritten.is_empty() {
            match self.stream.write(&self.unwritten) {
                Ok(n) => drop(self.unwritten.drain(..n)),
                Err(_) => break,
            }
        }
        while let Some(event) = self.connection.poll_event() {
            match event {
                Event::Connected { .. } => self.connected = true,
                Event::Closed(closed) => self.closed = Some(*closed),
                _ => {}
            }
        }
    }

    fn is_over(&self) -> bool {
        self.closed.is_some() || self.connection.is_closed()
    }
}

/// An honest node the hub dialed (so it holds no inbound slot), and the hub sending it a
/// numbered message every 20 ms: how late the worst one arrived, and whether all did.
struct Resident {
    node: Handle,
    sent: u32,
    received: u32,
    worst: Duration,
    sent_at: Vec<Instant>,
}

impl Resident {
    fn connect(hub: &Handle) -> Self {
        let node = Runtime::spawn(driver_config(V4, honest_config(), 0..16)).expect("resident");
        hub.dial(node.net_address().expect("listening"))
            .expect("dial");
        wait_connected(hub.events(), node.peer_id());
        Resident {
            node,
            sent: 0,
            received: 0,
            worst: Duration::ZERO,
            sent_at: Vec::new(),
        }
    }

    /// Sends the next message if 20 ms passed, and takes what arrived.
    fn exchange(&mut self, hub: &Handle) {
        let due = self
            .sent_at
            .last()
            .is_none_or(|at| at.elapsed() >= Duration::from_millis(20));
        if due {
            let message = Bytes::from(self.sent.to_be_bytes().to_vec());
            hub.send(&self.node.peer_id(), CHANNEL, message)
                .expect("the resident stays connected and has room");
            self.sent_at.push(Instant::now());
            self.sent += 1;
        }
        while let Ok(event) = self.node.events().try_recv() {
            match event {
                NodeEvent::Message { message, .. } => {
                    let number = u32::from_be_bytes(message[..4].try_into().expect("4 bytes"));
                    assert_eq!(number, self.received, "in order");
                    self.worst = self.worst.max(self.sent_at[number as usize].elapsed());
                    self.received += 1;
                }
                NodeEvent::PeerDisconnected { reason, .. } => {
                    panic!("the resident lost the hub: {reason}")
                }
                _ => {}
            }
        }
    }
}

/// Dials the hub from a fresh honest node; how long until the hub admitted it.
fn fresh_node_admitted(hub: &Handle) -> (Handle, Duration) {
    let fresh = Runtime::spawn(driver_config(V4, honest_config(), 0..16)).expect("fresh");
    let started = Instant::now();
    fresh
        .dial(hub.net_address().expect("listening"))
        .expect("dial");
    let deadline = started + Duration::from_secs(15);
    loop {
        if hub.peers().contains(&fresh.peer_id()) {
            return (fresh, started.elapsed());
        }
        assert!(Instant::now() < deadline, "never admitted");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Takes the hub's events (so its bounded channel never holds it up): the peers it reported
/// evicted.
fn take_evictions(hub: &Handle, evictions: &mut Vec<PeerId>) {
    while let Ok(event) = hub.events().try_recv() {
        if let NodeEvent::PeerDisconnected {
            peer,
            reason: DisconnectReason::Evicted,
            by,
            ..
        } = event
        {
            assert_eq!(by, ClosedBy::Local);
            evictions.push(peer);
        }
    }
}

#[test]
fn a_handshake_slowloris_from_eight_subnets_does_not_keep_a_fresh_node_out() {
    let hub = Runtime::spawn(driver_config(V4, hub_config(), 0..256)).expect("hub");
    let hub_addr = hub.local_addrs()[0];
    let mut resident = Resident::connect(&hub);
    // 30 addresses over 8 /24s (4, 4, 4, 4, 4, 4, 3, 3), two sockets each: 60 sockets for a
    // budget of 50. Each sends the first 8 bytes of a handshake's first message (past the
    // first-byte deadline) and then nothing, and comes back when dropped.
    let addresses: Vec<Ipv4Addr> = (0..30u8).map(|i| attacker_ip(i % 8, 1 + i / 8)).collect();
    let slow = |source: Ipv4Addr| -> Option<TcpStream> {
        let mut stream = connect_from(source, hub_addr).ok()?;
        stream.write_all(&[0, 32, 1, 2, 3, 4, 5, 6]).ok()?;
        Some(stream)
    };
    let mut sockets: Vec<(Ipv4Addr, Option<TcpStream>)> = addresses
        .iter()
        .flat_map(|&ip| [(ip, slow(ip)), (ip, slow(ip))])
        .collect();
    let mut held = 0;
    let mut reconnects = 0u32;
    let attack_for = |secs| Instant::now() + Duration::from_secs(secs);
    let mut until = attack_for(3);
    let mut fresh = None;
    let mut waits = Vec::new();
    loop {
        // The attacker: a socket the hub closed is opened again at once.
        for (ip, socket) in &mut sockets {
            let dropped = socket.as_mut().is_none_or(|stream| {
                let mut byte = [0u8; 1];
                match stream.read(&mut byte) {
                    Ok(0) => true,
                    Err(error) => error.kind() != ErrorKind::WouldBlock,
                    Ok(_) => false,
                }
            });
            if dropped {
                *socket = slow(*ip);
                reconnects += 1;
            }
        }
        resident.exchange(&hub);
        let pending = hub
            .with_node(|node, _| node.largest_pending_share())
            .expect("running");
        assert!(pending <= hub_config().limits.max_pending_per_subnet);
        if Instant::now() >= until {
            match fresh.take() {
                // The budget is full of the attacker's sockets: the first fresh node comes.
                None if waits.is_empty() => {
                    held = hub
                        .with_node(|node, _| node.connection_count())
                        .expect("running");
                    let (node, took) = fresh_node_admitted(&hub);
                    waits.push(took);
                    fresh = Some(node);
                    until = attack_for(4);
                }
                // A second one, while the attack (and its reconnections) went on.
                Some(first) if waits.len() == 1 => {
                    let (node, took) = fresh_node_admitted(&hub);
                    waits.push(took);
                    assert!(hub.peers().contains(&first.peer_id()), "the first stays");
                    fresh = Some(node);
                    until = attack_for(1);
                }
                _ => break,
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let stats = hub.stats().expect("running");
    eprintln!(
        "slowloris: {held} connections held when the first fresh node came; fresh nodes \
         admitted after {waits:?}; {reconnects} reconnections by the attacker; resident got \
         {}/{} messages, the latest {:?} after its send; hub refused {} sockets",
        resident.received, resident.sent, resident.worst, stats.refused
    );
    assert!(
        held >= 50,
        "the attack filled the budget: {held} connections"
    );
    for took in &waits {
        assert!(*took <= ADMITTED_WITHIN, "admitted after {took:?}");
    }
    assert!(
        resident.received + 5 >= resident.sent,
        "the resident kept receiving"
    );
    assert!(
        resident.worst < Duration::from_millis(500),
        "{:?}",
        resident.worst
    );
}

#[test]
fn squatters_holding_the_inbound_slots_are_evicted_for_a_fresh_node_but_never_protected_peers() {
    let start = Instant::now();
    let mut rng = ChaCha20Rng::seed_from_u64(20);
    let trusted_key = Keypair::generate(&mut rng);
    let persistent_key = Keypair::generate(&mut rng);
    let mut config = hub_config();
    // The trusted and persistent peers share the squatters' /24s: ten in the last one.
    config.limits.max_inbound_per_subnet = 10;
    config.trusted_peers.push(trusted_key.peer_id());
    // Persistent by identity; the hub's own dials to it reach a socket that never answers
    // (kept open, so that its port is not the hub's own).
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead_port = silent.local_addr().expect("addr");
    config.persistent_peers.push(NetAddress::new(
        Some(persistent_key.peer_id()),
        SocketAddr::new(V4, dead_port.port()),
    ));
    let hub = Runtime::spawn(driver_config(V4, config, 0..256)).expect("hub");
    let hub_addr = hub.local_addrs()[0];
    let mut resident = Resident::connect(&hub);
    // 39 identities from 5 /24s, two per address: 8, 8, 8, 7 and 8 in the last /24, where
    // the persistent and trusted peers come last, youngest of the largest /24.
    let mut squatters: Vec<(Ipv4Addr, Keypair, Option<ConnectionPeer>)> = Vec::new();
    for i in 0..39u8 {
        let subnet = if i < 31 { i / 8 } else { 4 };
        let host = 1 + (i % 8) / 2 + if subnet == 4 { 4 } else { 0 };
        squatters.push((attacker_ip(subnet, host), Keypair::generate(&mut rng), None));
    }
    let mut protected: Vec<(PeerId, ConnectionPeer)> = Vec::new();
    let wait_until = |peer: &mut ConnectionPeer| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !peer.connected {
            assert!(
                !peer.is_over() && Instant::now() < deadline,
                "not connected"
            );
            peer.pump(start);
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    for (at, (ip, key, slot)) in squatters.iter_mut().enumerate() {
        if at == 38 {
            let mut persistent = ConnectionPeer::dial(
                start,
                attacker_ip(4, 1),
                hub_addr,
                &persistent_key,
                &mut rng,
            );
            wait_until(&mut persistent);
            protected.push((persistent_key.peer_id(), persistent));
        }
        let mut squatter = ConnectionPeer::dial(start, *ip, hub_addr, key, &mut rng);
        wait_until(&mut squatter);
        *slot = Some(squatter);
    }
    let mut trusted =
        ConnectionPeer::dial(start, attacker_ip(4, 2), hub_addr, &trusted_key, &mut rng);
    wait_until(&mut trusted);
    protected.push((trusted_key.peer_id(), trusted));
    // Every slot is taken (38 squatters', the persistent peer's, the 39th squatter's; the
    // trusted peer above the cap; the resident is outbound).
    let full = hub
        .with_node(|node, _| node.peer_counts())
        .expect("running");
    assert_eq!(full.0, 41, "inbound slots held: {full:?}");
    let mut waits = Vec::new();
    let mut evicted = 0u32;
    let mut evictions: Vec<PeerId> = Vec::new();
    let mut fresh_nodes = Vec::new();
    let attack_end = Instant::now() + Duration::from_secs(6);
    let mut next_fresh = Instant::now() + Duration::from_millis(500);
    while Instant::now() < attack_end {
        for (ip, key, slot) in &mut squatters {
            let peer = slot.as_mut().expect("dialed");
            peer.pump(start);
            if peer.is_over() {
                // Evicted (told so in a GOAWAY), or refused at accept while its evicted
                // connection still held its address's place.
                if let Some(closed) = &peer.closed
                    && closed.reason == DisconnectReason::Evicted
                {
                    assert_eq!(closed.by, ClosedBy::Remote);
                    evicted += 1;
                }
                // The attacker comes back at once, with the same identity and address.
                *slot = Some(ConnectionPeer::dial(start, *ip, hub_addr, key, &mut rng));
            }
        }
        for (id, peer) in &mut protected {
            peer.pump(start);
            assert!(!peer.is_over(), "{id} lost: {:?}", peer.closed);
        }
        resident.exchange(&hub);
        take_evictions(&hub, &mut evictions);
        if Instant::now() >= next_fresh && fresh_nodes.len() < 2 {
            let (node, took) = fresh_node_admitted(&hub);
            waits.push(took);
            fresh_nodes.push(node);
            next_fresh = Instant::now() + Duration::from_millis(1500);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    take_evictions(&hub, &mut evictions);
    let connected = hub.peers();
    eprintln!(
        "squatting: fresh nodes admitted after {waits:?}; {evicted} squatters evicted \
         ({} evictions reported by the hub); resident got {}/{} messages, the latest {:?} \
         after its send",
        evictions.len(),
        resident.received,
        resident.sent,
        resident.worst
    );
    // Two, both from 127.0.0.1: the hub admits two inbound connections per address.
    assert_eq!(waits.len(), 2);
    for took in &waits {
        assert!(*took <= ADMITTED_WITHIN, "admitted after {took:?}");
    }
    for node in &fresh_nodes {
        assert!(
            connected.contains(&node.peer_id()),
            "a fresh node was evicted"
        );
    }
    for (id, _) in &protected {
        assert!(connected.contains(id));
        assert!(!evictions.contains(id), "{id} evicted");
    }
    assert!(
        evicted >= 2,
        "each fresh node evicted a squatter: {evicted}"
    );
    assert!(
        resident.received + 5 >= resident.sent,
        "the resident kept receiving"
    );
    assert!(
        resident.worst < Duration::from_millis(500),
        "{:?}",
        resident.worst
    );
    drop(silent);
}
