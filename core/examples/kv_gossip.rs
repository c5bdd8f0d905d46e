//! A replicated key/value store as a switchboard protocol: every `set` is gossiped, and
//! every node applies what it hears. Five nodes in a line (0–1–2–3–4), wired in memory, so
//! an update from one end must be forwarded hop by hop to reach the other.
//!
//! Run it: `cargo run -p switchboard --example kv_gossip`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use bytes::Bytes;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use switchboard::gossip::{Gossip, GossipConfig};
use switchboard::node::{Action, ConnId, Node, NodeConfig};
use switchboard::router::{Context, Protocol, ProtocolId, ProtocolSpec, Router};
use switchboard::{ChannelId, Instant, Keypair, NetAddress, PeerId};

/// The store: gossip underneath, a map on top. Updates are `key=value` text.
struct KvStore {
    gossip: Gossip,
    entries: BTreeMap<String, String>,
}

impl KvStore {
    fn new() -> Self {
        KvStore {
            gossip: Gossip::new(GossipConfig {
                name: "kv".into(),
                ..GossipConfig::default()
            }),
            entries: BTreeMap::new(),
        }
    }

    /// Sets `key` here and tells the network.
    fn set(&mut self, ctx: &mut Context<'_>, key: &str, value: &str) {
        self.entries.insert(key.into(), value.into());
        let _ = self
            .gossip
            .publish(ctx, Bytes::from(format!("{key}={value}")));
    }
}

impl Protocol for KvStore {
    fn spec(&self) -> ProtocolSpec {
        self.gossip.spec()
    }

    fn message(&mut self, ctx: &mut Context<'_>, peer: PeerId, channel: ChannelId, message: Bytes) {
        self.gossip.message(ctx, peer, channel, message);
        while let Some(update) = self.gossip.poll_message() {
            let text = String::from_utf8_lossy(&update.message);
            if let Some((key, value)) = text.split_once('=') {
                self.entries.insert(key.into(), value.into());
            }
        }
    }
}

fn ip(index: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, index as u8, 0, 1))
}

fn main() {
    let now = Instant::from_nanos(1_000_000_000);
    let mut routers = Vec::new();
    let mut stores: Vec<ProtocolId<KvStore>> = Vec::new();
    for index in 0..5 {
        let mut config = NodeConfig::new("kv-example", "kv_gossip/1");
        config.listen_addr = Some(SocketAddr::new(ip(index), 26656));
        let mut rng = ChaCha20Rng::seed_from_u64(index as u64);
        let keypair = Keypair::generate(&mut rng);
        let node = Node::new(now, config, keypair, rng).expect("a valid config");
        let mut router = Router::new(node);
        // Registering offers the store's channel in the node's handshake.
        stores.push(router.register(KvStore::new()).expect("a free channel"));
        router.start(now);
        routers.push(router);
    }
    // A line: node i dials node i + 1.
    for index in 0..4 {
        let peer = routers[index + 1].node().peer_id();
        let addr = NetAddress::new(Some(peer), SocketAddr::new(ip(index + 1), 26656));
        routers[index].node_mut().dial(now, addr).expect("dialable");
    }
    let mut links: BTreeMap<(usize, ConnId), (usize, ConnId)> = BTreeMap::new();
    settle(&mut routers, &mut links, now);
    println!("5 nodes connected in a line");

    routers[0].with_protocol(now, stores[0], |kv, ctx| kv.set(ctx, "colour", "teal"));
    routers[4].with_protocol(now, stores[4], |kv, ctx| kv.set(ctx, "answer", "42"));
    settle(&mut routers, &mut links, now);

    for (index, router) in routers.iter().enumerate() {
        let store = router.protocol(stores[index]).expect("registered");
        println!("node {index}: {:?}", store.entries);
        assert_eq!(store.entries.len(), 2, "every node has both keys");
    }
    println!("both updates reached all five nodes");
}

/// Moves bytes, actions and events between the routers until nothing moves.
fn settle(
    routers: &mut [Router<ChaCha20Rng>],
    links: &mut BTreeMap<(usize, ConnId), (usize, ConnId)>,
    now: Instant,
) {
    let mut wire = Vec::new();
    loop {
        let mut moved = false;
        for index in 0..routers.len() {
            // Events first: the protocols they reach may send, and those bytes go out below.
            while routers[index].poll_event(now).is_some() {}
            while let Some(action) = routers[index].node_mut().poll_action() {
                moved = true;
                match action {
                    Action::Dial { conn, addr } => {
                        let target = (0..routers.len())
                            .find(|&i| ip(i) == addr.ip())
                            .expect("a node");
                        let from = SocketAddr::new(ip(index), 40_000);
                        let theirs = routers[target]
                            .node_mut()
                            .handle_accepted(now, from)
                            .expect("accepted");
                        links.insert((index, conn), (target, theirs));
                        links.insert((target, theirs), (index, conn));
                        routers[index].node_mut().handle_connected(now, conn);
                    }
                    Action::Close { conn } => {
                        if let Some((other, theirs)) = links.remove(&(index, conn)) {
                            links.remove(&(other, theirs));
                            routers[other].node_mut().handle_closed(now, theirs);
                        }
                    }
                }
            }
            while let Some(conn) = routers[index].node_mut().poll_transmit(now, &mut wire) {
                moved = true;
                if let Some(&(other, theirs)) = links.get(&(index, conn)) {
                    routers[other].node_mut().handle_input(now, theirs, &wire);
                }
                wire.clear();
            }
        }
        if !moved {
            return;
        }
    }
}
