//! The connections a node announced to a node-level fuzz target (`node_inbound`,
//! `router_events`), their genuine peers, and the moves both targets make with them: taking
//! the node's actions, moving bytes both ways until nothing moves, a genuine peer taking a
//! connection over, sealing a record. Each target keeps its own checks of what the node says.
//!
//! Included with `#[path]` beside `genuine_peer.rs`, which it builds on.

use std::collections::BTreeMap;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use switchboard::handshake::Handshake;
use switchboard::node::{Action, ConnId, Node};
use switchboard::record::seal_record;
use switchboard::{Instant, NodeInfo};

use crate::genuine_peer::{ATTACKERS, Conn, IPS, KEYS, Peer};

/// The node under test, its clock, and every connection it announced, in order.
pub struct Wires {
    pub now: Instant,
    pub conns: Vec<Conn>,
    index: BTreeMap<ConnId, usize>,
    /// `Action::Close`s taken.
    pub closes: usize,
    /// The genuine peers' randomness (ephemeral keys).
    rng: ChaCha20Rng,
}

impl Wires {
    pub fn new(now: Instant) -> Self {
        Wires {
            now,
            conns: Vec::new(),
            index: BTreeMap::new(),
            closes: 0,
            rng: ChaCha20Rng::seed_from_u64(2),
        }
    }

    /// The connection an operation's `index` picks, if there is any.
    pub fn conn(&self, index: u8) -> Option<usize> {
        (!self.conns.is_empty()).then(|| usize::from(index) % self.conns.len())
    }

    pub fn announce(&mut self, conn: Conn) {
        assert!(
            self.index.insert(conn.id, self.conns.len()).is_none(),
            "{} announced twice",
            conn.id
        );
        self.conns.push(conn);
    }

    pub fn lookup(&mut self, id: ConnId, what: &str) -> &mut Conn {
        let index = *self
            .index
            .get(&id)
            .unwrap_or_else(|| panic!("{what} names {id}, never announced"));
        &mut self.conns[index]
    }

    /// Takes the node's actions, as the adapter must after every input.
    pub fn actions(&mut self, node: &mut Node<ChaCha20Rng>) {
        while let Some(action) = node.poll_action() {
            match action {
                Action::Dial { conn, addr } => {
                    assert!(IPS.contains(&addr.ip()), "dial to {addr}, never asked for");
                    let mut dialed = Conn::new(conn, None);
                    dialed.dialed = Some(addr.ip());
                    self.announce(dialed);
                }
                Action::Close { conn } => {
                    let entry = self.lookup(conn, "Action::Close");
                    assert!(!entry.closed, "{conn} closed twice");
                    entry.closed = true;
                    self.closes += 1;
                }
            }
        }
    }

    /// Drains `poll_transmit`; each connection's genuine peer reads its bytes.
    pub fn transmit(&mut self, node: &mut Node<ChaCha20Rng>) -> bool {
        let mut wrote = false;
        for _ in 0..10_000 {
            let mut out = Vec::new();
            let Some(id) = node.poll_transmit(self.now, &mut out) else {
                return wrote;
            };
            wrote = true;
            assert!(!out.is_empty(), "{id} transmitted nothing");
            let conn = self.lookup(id, "poll_transmit");
            assert!(!conn.closed, "{id} transmitted after Action::Close");
            assert!(!conn.blocked, "{id} transmitted while blocked");
            assert!(
                conn.connected,
                "{id} transmitted before its socket connected"
            );
            assert!(
                !conn.transport_closed,
                "{id} transmitted after its socket closed"
            );
            conn.read(&out);
            self.actions(node);
        }
        panic!("poll_transmit never ends");
    }

    /// The genuine peers write what they have to say.
    pub fn deliver(&mut self, node: &mut Node<ChaCha20Rng>) -> bool {
        let mut wrote = false;
        for index in 0..self.conns.len() {
            let conn = &mut self.conns[index];
            if conn.to_node.is_empty() || conn.closed || conn.transport_closed {
                continue;
            }
            let bytes = std::mem::take(&mut conn.to_node);
            conn.connected = true;
            let id = conn.id;
            node.handle_input(self.now, id, &bytes);
            self.actions(node);
            wrote = true;
        }
        wrote
    }

    /// Moves bytes both ways until nothing moves (or 16 rounds).
    pub fn pump(&mut self, node: &mut Node<ChaCha20Rng>) {
        for _ in 0..16 {
            let transmitted = self.transmit(node);
            if !self.deliver(node) && !transmitted {
                break;
            }
        }
    }

    /// A genuine peer with identity `key`, announcing `info` and expecting `open` channels
    /// negotiated, takes over connection `index` (unless the connection is gone or already
    /// has one), then bytes move until nothing does.
    pub fn handshake(
        &mut self,
        node: &mut Node<ChaCha20Rng>,
        index: usize,
        key: u8,
        info: impl FnOnce() -> NodeInfo,
        open: impl FnOnce(&NodeInfo) -> Vec<u16>,
    ) {
        let conn = &mut self.conns[index];
        if conn.closed || conn.transport_closed {
            return;
        }
        if matches!(conn.peer, Peer::None) {
            let key = &KEYS.attackers[usize::from(key) % ATTACKERS];
            let info = info();
            conn.open = open(&info);
            // Nothing in common: both ends refuse the handshake (`NoCommonChannel`).
            conn.tainted |= conn.open.is_empty();
            let handshake = if conn.outbound {
                Handshake::responder(key, info, &mut self.rng)
            } else {
                Handshake::initiator(key, info, None, &mut self.rng)
            };
            let mut handshake = handshake.expect("a valid NodeInfo");
            handshake.poll_transmit(&mut conn.to_node);
            conn.peer = Peer::Handshaking(Box::new(handshake));
            let unread = std::mem::take(&mut conn.unread);
            conn.read(&unread);
            if !conn.connected {
                conn.connected = true;
                let id = conn.id;
                node.handle_connected(self.now, id);
                self.actions(node);
            }
        }
        self.pump(node);
    }

    /// The genuine peer of connection `index` seals `plaintext` after what it has yet to
    /// write: the connection and those bytes, cut in two at `cut` for two reads. `None` if the
    /// peer has no session or the plaintext is too long for a record.
    pub fn seal(
        &mut self,
        index: usize,
        plaintext: &[u8],
        cut: u16,
    ) -> Option<(ConnId, Vec<u8>, usize)> {
        let conn = &mut self.conns[index];
        let Peer::Established(session) = &mut conn.peer else {
            return None;
        };
        let mut wire = std::mem::take(&mut conn.to_node);
        if seal_record(&mut session.cipher, plaintext, &mut wire).is_err() {
            conn.to_node = wire;
            return None;
        }
        let cut = usize::from(cut).min(wire.len());
        Some((conn.id, wire, cut))
    }
}
