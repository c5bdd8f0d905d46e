//! Gossip as the simulator suites register it on every (re)started node's router.

use switchboard::gossip::{Gossip, GossipConfig};

/// Gossip with its default settings.
pub fn gossip() -> Gossip {
    Gossip::new(GossipConfig::default())
}
