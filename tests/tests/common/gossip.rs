//! Gossip on a `Router`, as the simulator suites build it on every (re)started node.

use rand_chacha::ChaCha20Rng;
use switchboard::Instant;
use switchboard::gossip::{Gossip, GossipConfig};
use switchboard::router::Router;
use switchboard_sim::SimNode;

/// Gossip with its default settings.
pub fn gossip() -> Gossip {
    Gossip::new(GossipConfig::default())
}

/// A router running [`gossip`], registered and started: a `Sim::add_node_with_stack` or
/// `Scenario::new_with_stack` builder. The node's config must offer gossip.
pub fn gossiping(node: SimNode, now: Instant) -> Router<ChaCha20Rng> {
    let mut router = Router::new(node);
    router.register(gossip()).expect("offered by the config");
    router.start(now);
    router
}
