//! What a hand-driven node says of its dials: why a TCP connect failed, told apart from a
//! peer that hung up mid-handshake.

use std::net::SocketAddr;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use switchboard::dial_queue::Retry;
use switchboard::node::{Action, ConnId, Node, NodeConfig, NodeEvent};
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
