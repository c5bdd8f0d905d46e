//! White-box tests of the node: paths no adapter can reach through the public API.

use alloc::string::ToString;
use core::net::SocketAddr;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::*;
use crate::node_info::MAX_AGENT_LEN;
use crate::peer_set::Refused;

fn node(seed: u64) -> Node<ChaCha20Rng> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let keypair = Keypair::generate(&mut rng);
    let config = NodeConfig::new("net", "test");
    match Node::new(Instant::ZERO, config, keypair, rng) {
        Ok(node) => node,
        Err(error) => panic!("{error}"),
    }
}

#[test]
fn an_accept_that_cannot_create_its_connection_is_an_internal_refusal_and_frees_its_slot() {
    let mut node = node(1);
    let remote = SocketAddr::from(([10, 0, 0, 1], 40_000));
    // The one way in from outside: our own NodeInfo no longer encodes (it was checked when
    // the node was built, so only a bug gets here).
    node.info.agent = "a".repeat(MAX_AGENT_LEN + 1);
    let refused = node.handle_accepted(Instant::ZERO, remote);
    assert_eq!(refused, Err(Refused::Internal));
    assert_eq!(
        Refused::Internal.to_string(),
        "internal error: the connection could not be created"
    );
    assert_eq!(node.peer_set.pending(), 0, "the pending slot is released");
    assert_eq!(node.connection_count(), 0);
    // Nothing else was counted against the address: it is admitted as soon as the node can.
    node.info.agent = "test".into();
    for _ in 0..node.peer_set.limits().max_inbound_per_ip {
        assert!(node.handle_accepted(Instant::ZERO, remote).is_ok());
    }
}

#[test]
fn ban_counts_count_peer_and_ip_bans_until_they_expire() {
    let mut node = node(1);
    let now = Instant::ZERO;
    assert_eq!(node.ban_counts(now), (0, 0));
    let peer = PeerId::from_bytes([7; 32]);
    node.ban_peer(now, &peer, Duration::from_secs(10));
    node.ban_ip(
        now,
        SocketAddr::from(([10, 0, 0, 1], 1)).ip(),
        Duration::from_secs(20),
    );
    assert_eq!(node.ban_counts(now), (1, 1));
    assert_eq!(node.ban_counts(now + Duration::from_secs(10)), (0, 1));
    assert_eq!(node.ban_counts(now + Duration::from_secs(20)), (0, 0));
}

#[test]
fn a_full_handshake_budget_drops_the_oldest_of_the_largest_subnet_and_silent_sockets_time_out() {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let keypair = Keypair::generate(&mut rng);
    let mut config = NodeConfig::new("net", "test");
    config.limits.max_pending_handshakes = 4;
    config.limits.max_pending_per_subnet = 3;
    let first_byte = config.connection.first_byte_timeout;
    let Ok(mut node) = Node::new(Instant::ZERO, config, keypair, rng) else {
        panic!("node");
    };
    let at = |a: u8, c: u8, ms: u64| {
        (
            Instant::ZERO + Duration::from_millis(ms),
            SocketAddr::from(([10, 0, c, a], 40_000)),
        )
    };
    let accept = |node: &mut Node<ChaCha20Rng>, (now, remote)| node.handle_accepted(now, remote);
    // Subnet 10.0.1/24 takes its share of three, 10.0.2/24 the last slot.
    let first = accept(&mut node, at(1, 1, 0)).ok();
    let second = accept(&mut node, at(1, 1, 1)).ok();
    assert!(accept(&mut node, at(2, 1, 2)).is_ok());
    assert_eq!(
        accept(&mut node, at(3, 1, 3)),
        Err(Refused::PendingPerSubnet)
    );
    assert!(accept(&mut node, at(1, 2, 4)).is_ok());
    assert_eq!(node.largest_pending_share(), 3);
    // Full: a newcomer from 10.0.2/24 (one there) takes the place of 10.0.1/24's oldest;
    // one from 10.0.1/24, now as large as 10.0.2/24, is refused; one from elsewhere takes
    // the place of the oldest of the two.
    assert_eq!(accept(&mut node, at(1, 1, 5)), Err(Refused::PerIp));
    assert!(accept(&mut node, at(2, 2, 5)).is_ok());
    assert_eq!(
        accept(&mut node, at(3, 1, 6)),
        Err(Refused::PendingHandshakes)
    );
    assert!(accept(&mut node, at(1, 3, 7)).is_ok());
    assert_eq!(node.peer_set.pending(), 4);
    assert_eq!(node.largest_pending_share(), 2);
    let closed: Vec<Action> = core::iter::from_fn(|| node.poll_action()).collect();
    let dropped = [first, second].map(|conn| Action::Close {
        conn: conn.unwrap(),
    });
    assert_eq!(closed, dropped);
    // None of them says a word: all are let go at the first-byte deadline, well before the
    // handshake timeout.
    let deadline = Instant::ZERO + first_byte + Duration::from_millis(7);
    let earliest = Instant::ZERO + first_byte + Duration::from_millis(2);
    assert_eq!(node.poll_timeout(), Some(earliest));
    node.handle_timeout(deadline);
    assert_eq!(node.peer_set.pending(), 0);
    assert_eq!(node.largest_pending_share(), 0);
    assert_eq!(node.connection_count(), 0);
}
