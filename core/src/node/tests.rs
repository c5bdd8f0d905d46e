//! White-box tests of the node: paths no adapter can reach through the public API.

use alloc::string::ToString;
use alloc::vec;
use core::net::SocketAddr;

use bytes::Bytes;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::*;
use crate::disconnect::DisconnectReason;
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

/// Two nodes joined by an in-memory wire: what one writes, the other reads.
struct Wire {
    a: Node<ChaCha20Rng>,
    b: Node<ChaCha20Rng>,
    /// The connection each end has, once dialed and accepted.
    ends: Option<(ConnId, ConnId)>,
}

/// A node speaking `chat` on channel 1, as both ends of a wire do.
fn chatting(seed: u64) -> Node<ChaCha20Rng> {
    let mut config = NodeConfig::new("net", "test");
    config.add_channel("chat", 1, crate::ChannelConfig::new(1));
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let keypair = Keypair::generate(&mut rng);
    Node::new(Instant::ZERO, config, keypair, rng).unwrap()
}

impl Wire {
    fn new() -> Wire {
        Wire {
            a: chatting(21),
            b: chatting(20),
            ends: None,
        }
    }

    fn b_addr(&self) -> NetAddress {
        NetAddress::new(Some(self.b.peer_id()), SocketAddr::from(([10, 0, 0, 2], 1)))
    }

    /// Carries actions and bytes both ways until nothing moves.
    fn settle(&mut self, now: Instant) {
        let a_remote = SocketAddr::from(([10, 0, 0, 1], 50_000));
        for _ in 0..100 {
            let mut moved = false;
            while let Some(action) = self.a.poll_action() {
                moved = true;
                if let Action::Dial { conn, .. } = action {
                    let accepted = self.b.handle_accepted(now, a_remote).unwrap();
                    self.a.handle_connected(now, conn);
                    self.ends = Some((conn, accepted));
                } else if let (Action::Close { conn }, Some((a_end, b_end))) = (action, self.ends)
                    && conn == a_end
                {
                    self.b.handle_closed(now, b_end);
                }
            }
            while let Some(Action::Close { conn }) = self.b.poll_action() {
                moved = true;
                if let Some((a_end, b_end)) = self.ends
                    && conn == b_end
                {
                    self.a.handle_closed(now, a_end);
                }
            }
            let mut out = Vec::new();
            while let (Some(conn), Some((_, b_end))) =
                (self.a.poll_transmit(now, &mut out), self.ends)
            {
                let _ = conn;
                self.b.handle_input(now, b_end, &out);
                out.clear();
                moved = true;
            }
            while let (Some(conn), Some((a_end, _))) =
                (self.b.poll_transmit(now, &mut out), self.ends)
            {
                let _ = conn;
                self.a.handle_input(now, a_end, &out);
                out.clear();
                moved = true;
            }
            if !moved {
                return;
            }
        }
        panic!("the wire never settled");
    }
}

fn reports(node: &mut Node<ChaCha20Rng>) -> Vec<DialReport> {
    core::iter::from_fn(|| node.poll_dial_report()).collect()
}

#[test]
fn a_probe_proves_the_address_takes_no_slot_and_is_told_to_no_application() {
    let mut wire = Wire::new();
    wire.a.report_dials();
    wire.b.report_dials();
    let now = Instant::ZERO;
    let b_addr = wire.b_addr();
    wire.a.probe(now, b_addr).unwrap();
    assert_eq!(
        wire.a.outbound_slots().dialing,
        0,
        "a probe holds no outbound slot"
    );
    wire.settle(now);
    assert_eq!(
        reports(&mut wire.a),
        vec![
            DialReport::Started {
                addr: b_addr,
                probe: true
            },
            DialReport::Reached {
                addr: b_addr,
                peer: wire.b.peer_id(),
                probe: true
            },
        ]
    );
    assert_eq!(wire.a.peer_counts(), (0, 0));
    assert_eq!(wire.a.connection_count(), 0, "closed once proven");
    let events: Vec<NodeEvent> = core::iter::from_fn(|| wire.a.poll_event(now)).collect();
    assert!(events.is_empty(), "{events:?}");
    // The far end admitted it and heard where it listens; it is gone again.
    let accepted = reports(&mut wire.b);
    assert!(
        matches!(accepted.as_slice(), [DialReport::Accepted { peer, .. }] if *peer == wire.a.peer_id()),
        "{accepted:?}"
    );
    assert_eq!(wire.b.peer_counts(), (0, 0));
}

#[test]
fn a_dial_to_a_probed_address_takes_the_probe_over_and_keeps_the_connection() {
    let mut wire = Wire::new();
    let now = Instant::ZERO;
    let b_addr = wire.b_addr();
    wire.a.probe(now, b_addr).unwrap();
    wire.a.dial(now, b_addr).unwrap();
    assert_eq!(wire.a.outbound_slots().dialing, 1, "a dial for a peer now");
    wire.settle(now);
    assert_eq!(wire.a.peer_counts(), (0, 1));
    assert!(wire.a.view().is_connected(&wire.b.peer_id()));
    assert!(
        wire.a.poll_dial_report().is_none(),
        "nothing recorded unless asked"
    );
}

#[test]
fn disconnect_when_confirmed_waits_for_the_confirmation() {
    let mut wire = Wire::new();
    let now = Instant::ZERO;
    wire.a.dial(now, wire.b_addr()).unwrap();
    wire.settle(now);
    let b = wire.b.peer_id();
    assert!(wire.a.view().is_connected(&b));
    wire.a
        .send(now, &b, 1, Bytes::from_static(b"last words"))
        .unwrap();
    wire.a.disconnect_when_confirmed(now, &b, 1);
    assert!(
        wire.a.view().is_connected(&b),
        "not before its message is even written"
    );
    // B's application takes the message (its credit confirms it), then A hangs up.
    wire.settle(now);
    assert!(wire.a.view().is_connected(&b), "written, not yet confirmed");
    let taken: Vec<NodeEvent> = core::iter::from_fn(|| wire.b.poll_event(now)).collect();
    assert!(
        taken
            .iter()
            .any(|event| matches!(event, NodeEvent::Message { .. }))
    );
    wire.settle(now);
    assert!(!wire.a.view().is_connected(&b), "hung up once confirmed");
}

#[test]
fn dial_reports_are_bounded_when_nobody_takes_them() {
    let mut node = node(3);
    node.report_dials();
    for n in 0..5_000u32 {
        let [_, _, high, low] = n.to_be_bytes();
        node.record_dial(DialReport::Failed {
            addr: NetAddress::new(None, SocketAddr::from(([10, 1, high, low], 1))),
            reason: DisconnectReason::Timeout,
            probe: false,
        });
    }
    let held = reports(&mut node);
    assert_eq!(held.len(), 4096);
    let [_, _, high, low] = (5_000u32 - 4096).to_be_bytes();
    let oldest_kept = NetAddress::new(None, SocketAddr::from(([10, 1, high, low], 1)));
    assert!(
        matches!(held.first(), Some(DialReport::Failed { addr, .. }) if *addr == oldest_kept),
        "the oldest were dropped: {:?}",
        held.first()
    );
}
