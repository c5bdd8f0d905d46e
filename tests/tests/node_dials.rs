//! What a hand-driven node says of its dials: why a TCP connect failed, told apart from a
//! peer that hung up mid-handshake, and how reachable a peer it is dialing is (`Connectedness`).

use std::net::SocketAddr;
use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use switchboard::dial_queue::Retry;
use switchboard::node::{Action, ConnId, Connectedness, Node, NodeConfig, NodeEvent};
use switchboard::{DisconnectReason, Instant, Keypair, NetAddress, PeerId};
use switchboard_sim::test_node_config;

type TestNode = Node<ChaCha20Rng>;

fn node(seed: u64, config: NodeConfig) -> TestNode {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let keypair = Keypair::generate(&mut rng);
    Node::new(Instant::ZERO, config, keypair, rng).expect("a valid config")
}

/// An identity nobody runs, at an address nobody listens on.
fn nowhere() -> (PeerId, NetAddress) {
    let peer = Keypair::generate(&mut ChaCha20Rng::seed_from_u64(99)).peer_id();
    let socket: SocketAddr = "10.9.9.9:26656".parse().unwrap();
    (peer, NetAddress::new(Some(peer), socket))
}

/// The dial the node asks for next, past the closes of connections that ended before.
fn take_dial(node: &mut TestNode) -> (ConnId, SocketAddr) {
    loop {
        match node.poll_action() {
            Some(Action::Dial { conn, addr }) => return (conn, addr),
            Some(Action::Close { .. }) => {}
            None => panic!("no dial"),
        }
    }
}

/// The one event the node has, a `DialFailed`: its reason, detail and retry.
fn dial_failure(node: &mut TestNode, now: Instant) -> (DisconnectReason, String, Retry) {
    let events: Vec<NodeEvent> = std::iter::from_fn(|| node.poll_event(now)).collect();
    match <[NodeEvent; 1]>::try_from(events) {
        Ok(
            [
                NodeEvent::DialFailed {
                    reason,
                    detail,
                    retry,
                    ..
                },
            ],
        ) => (reason, detail, retry),
        Ok(other) => panic!("expected one DialFailed, got {other:?}"),
        Err(events) => panic!("expected one DialFailed, got {events:?}"),
    }
}

fn retry_at(retry: Retry) -> Instant {
    match retry {
        Retry::At(due) => due,
        Retry::GivenUp => panic!("given up"),
    }
}

/// Hands everything `from` has to write to `to`'s connection `conn`.
fn pump(from: &mut TestNode, to: &mut TestNode, conn: ConnId, now: Instant) {
    let mut out = Vec::new();
    while from.poll_transmit(now, &mut out).is_some() {
        to.handle_input(now, conn, &out);
        out.clear();
    }
}

#[test]
fn a_refused_connect_fails_the_dial_with_the_os_error_and_a_later_close_as_before() {
    let mut a = node(1, test_node_config());
    let (_, addr) = nowhere();
    let now = Instant::ZERO;
    a.dial(now, addr).unwrap();
    let (conn, dialed) = take_dial(&mut a);
    assert_eq!(dialed, addr.socket_addr());

    a.handle_connect_failed(now, conn, "Connection refused (os error 111)");
    let (reason, detail, retry) = dial_failure(&mut a, now);
    assert_eq!(
        (reason, detail.as_str()),
        (
            DisconnectReason::NetworkError,
            "connect failed: Connection refused (os error 111)"
        )
    );
    assert_eq!(a.poll_action(), Some(Action::Close { conn }));
    assert_eq!(a.connection_count(), 0);

    // The retry connects, and its socket then closes: `handle_closed`, as before.
    let now = retry_at(retry);
    a.handle_timeout(now);
    let (conn, _) = take_dial(&mut a);
    a.handle_connected(now, conn);
    a.handle_closed(now, conn);
    let (reason, detail, retry) = dial_failure(&mut a, now);
    assert_eq!(
        (reason, detail.as_str()),
        (
            DisconnectReason::NetworkError,
            "transport closed during the handshake"
        )
    );

    // A connect failure reported after the connect succeeded is a close like any other.
    let now = retry_at(retry);
    a.handle_timeout(now);
    let (conn, _) = take_dial(&mut a);
    a.handle_connected(now, conn);
    a.handle_connect_failed(now, conn, "Connection reset by peer (os error 104)");
    let (_, detail, _) = dial_failure(&mut a, now);
    assert_eq!(detail, "transport closed during the handshake");
}

#[test]
fn a_peer_can_connect_while_a_dial_to_it_is_queued_or_in_flight() {
    let mut config = test_node_config();
    config.dial.max_attempts = 2;
    let mut a = node(2, config);
    let (peer, addr) = nowhere();
    let now = Instant::ZERO;
    assert_eq!(a.connectedness(now, &peer), Connectedness::NotConnected);

    a.dial(now, addr).unwrap();
    let (conn, _) = take_dial(&mut a);
    assert_eq!(
        a.connectedness(now, &peer),
        Connectedness::CanConnect,
        "in flight"
    );
    a.handle_connect_failed(now, conn, "Connection refused (os error 111)");
    let (_, _, retry) = dial_failure(&mut a, now);
    assert_eq!(
        a.connectedness(now, &peer),
        Connectedness::CanConnect,
        "queued for its retry"
    );

    let now = retry_at(retry);
    a.handle_timeout(now);
    let (conn, _) = take_dial(&mut a);
    a.handle_connect_failed(now, conn, "Connection refused (os error 111)");
    let (_, _, retry) = dial_failure(&mut a, now);
    assert_eq!(retry, Retry::GivenUp);
    assert_eq!(a.connectedness(now, &peer), Connectedness::CannotConnect);

    // Dialed again: under way once more, whatever became of the dials before.
    a.dial(now, addr).unwrap();
    assert_eq!(a.connectedness(now, &peer), Connectedness::CanConnect);
    // A ban outweighs a dial.
    a.ban_peer(now, &peer, Duration::from_secs(60));
    assert_eq!(a.connectedness(now, &peer), Connectedness::CannotConnect);
}

#[test]
fn a_persistent_peer_no_longer_dialed_is_not_reachable() {
    let mut a = node(3, test_node_config());
    let (peer, addr) = nowhere();
    let now = Instant::ZERO;
    a.add_persistent_peer(now, addr);
    let _ = take_dial(&mut a);
    assert_eq!(a.connectedness(now, &peer), Connectedness::CanConnect);
    // Shutting down ends the dial, and no redial will follow.
    a.shutdown(now, Duration::ZERO);
    while a.poll_event(now).is_some() {}
    assert_eq!(a.connectedness(now, &peer), Connectedness::NotConnected);
}

#[test]
fn a_peer_can_connect_while_its_handshake_is_under_way() {
    let mut a = node(4, test_node_config());
    let mut b = node(5, test_node_config());
    let (a_id, b_id) = (a.peer_id(), b.peer_id());
    let now = Instant::ZERO;
    // Dialed by address alone: nothing says whose it is until the handshake does.
    let b_socket: SocketAddr = "10.0.0.2:26656".parse().unwrap();
    a.dial(now, NetAddress::new(None, b_socket)).unwrap();
    let (a_conn, _) = take_dial(&mut a);
    let b_conn = b
        .handle_accepted(now, "10.0.0.1:40000".parse().unwrap())
        .unwrap();
    a.handle_connected(now, a_conn);
    assert_eq!(a.connectedness(now, &b_id), Connectedness::NotConnected);

    pump(&mut a, &mut b, b_conn, now); // message 1
    pump(&mut b, &mut a, a_conn, now); // message 2: `a` learns who `b` is
    assert_eq!(a.connectedness(now, &b_id), Connectedness::CanConnect);

    for _ in 0..3 {
        pump(&mut a, &mut b, b_conn, now);
        pump(&mut b, &mut a, a_conn, now);
        while a.poll_event(now).is_some() {}
        while b.poll_event(now).is_some() {}
    }
    assert_eq!(a.connectedness(now, &b_id), Connectedness::Connected);
    assert_eq!(b.connectedness(now, &a_id), Connectedness::Connected);
}
