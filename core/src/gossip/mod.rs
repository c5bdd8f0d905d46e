//! Gossip: a message published by one node reaches every node of a connected network, once.
//!
//! [`Gossip`] is a [`Protocol`]: registered on a [`Router`](crate::router::Router), it
//! floods a channel. Each message is identified by its BLAKE2b-256 hash; a node that
//! receives a message it has not seen hands it to the application
//! ([`Gossip::poll_message`]) and forwards it once to its other peers (all of them, or
//! [`GossipConfig::fanout`] of them chosen per message); a message seen before is dropped
//! and counted. The seen-cache is bounded in count and age, so a flood of distinct messages
//! cannot grow memory.
//!
//! Flooding sends each message over every link at most once in each direction: at most
//! 2 × edges transmissions per message, and usually about edges + nodes.

mod seen_cache;

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use blake2::digest::consts::U32;
use blake2::{Blake2b, Digest};
use bytes::Bytes;

use crate::channel::{ChannelConfig, ChannelId};
use crate::identity::PeerId;
use crate::mux::SendError;
use crate::router::{Context, Protocol, ProtocolSpec};
use seen_cache::SeenCache;

/// A gossip message's id: the BLAKE2b-256 hash of its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub [u8; 32]);

impl MessageId {
    /// The id of `message`.
    pub fn of(message: &[u8]) -> Self {
        MessageId(Blake2b::<U32>::digest(message).into())
    }
}

/// How a [`Gossip`] protocol floods.
#[derive(Clone, Debug)]
pub struct GossipConfig {
    /// The protocol name advertised. Default `"gossip"`.
    pub name: String,
    /// The channel it floods, with its limits. Default channel 0x100 with default limits.
    pub channel: ChannelConfig,
    /// Forward each message to at most this many peers (chosen per message, differently at
    /// every node); `None` forwards to all. Default `None`: with a fan-out, delivery to every
    /// node is likely, not certain.
    pub fanout: Option<usize>,
    /// Message ids remembered at most. Default 100,000.
    pub seen_capacity: usize,
    /// How long an id is remembered. Default 2 minutes.
    pub seen_ttl: Duration,
    /// Received messages kept for the application at most; beyond, the oldest are dropped
    /// and counted. Default 10,000.
    pub max_pending: usize,
}

impl Default for GossipConfig {
    fn default() -> Self {
        GossipConfig {
            name: String::from("gossip"),
            channel: ChannelConfig::new(0x100),
            fanout: None,
            seen_capacity: 100_000,
            seen_ttl: Duration::from_secs(120),
            max_pending: 10_000,
        }
    }
}

/// What gossip did so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GossipStats {
    /// Messages published here.
    pub published: u64,
    /// Messages received for the first time (handed to the application).
    pub delivered: u64,
    /// Messages received again and dropped.
    pub duplicates: u64,
    /// Copies sent to peers, publications and forwards together.
    pub transmissions: u64,
    /// Copies a peer's full queue refused (that peer may get it from another).
    pub refused: u64,
    /// Received messages dropped because the application did not take them.
    pub dropped: u64,
}

/// A message gossip delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GossipMessage {
    /// The peer it came from.
    pub from: PeerId,
    /// Its id.
    pub id: MessageId,
    /// Its bytes.
    pub message: Bytes,
}

/// The gossip protocol. See the [module documentation](self).
#[derive(Clone, Debug)]
pub struct Gossip {
    config: GossipConfig,
    seen: SeenCache,
    pending: VecDeque<GossipMessage>,
    stats: GossipStats,
}

impl Gossip {
    /// A gossip protocol flooding `config.channel`.
    pub fn new(config: GossipConfig) -> Self {
        Gossip {
            seen: SeenCache::new(config.seen_capacity, config.seen_ttl),
            pending: VecDeque::new(),
            stats: GossipStats::default(),
            config,
        }
    }

    /// The channel it floods.
    pub fn channel(&self) -> ChannelId {
        self.config.channel.id
    }

    /// Publishes `message` to the network; `None` if it was seen lately (published or
    /// received), which gossip never sends twice.
    pub fn publish(&mut self, ctx: &mut Context<'_>, message: Bytes) -> Option<MessageId> {
        let id = MessageId::of(&message);
        if !self.seen.insert(ctx.now(), id) {
            return None;
        }
        self.stats.published = self.stats.published.saturating_add(1);
        self.forward(ctx, id, &message, None);
        Some(id)
    }

    /// The next message received, oldest first.
    pub fn poll_message(&mut self) -> Option<GossipMessage> {
        self.pending.pop_front()
    }

    /// What gossip did so far.
    pub fn stats(&self) -> GossipStats {
        self.stats
    }

    /// Message ids remembered now (at most [`GossipConfig::seen_capacity`]).
    pub fn seen_len(&self) -> usize {
        self.seen.len()
    }

    fn forward(
        &mut self,
        ctx: &mut Context<'_>,
        id: MessageId,
        message: &Bytes,
        from: Option<PeerId>,
    ) {
        // The peer list outlives `ctx`'s borrow: no copy of it per message unless a fan-out
        // must pick among the peers.
        let others = ctx
            .peers()
            .iter()
            .map(|(peer, _)| *peer)
            .filter(|peer| Some(*peer) != from);
        match self.config.fanout {
            Some(fanout) if ctx.peers().len() > fanout => {
                let mut targets: Vec<PeerId> = others.collect();
                targets.sort_by_key(|peer| spread(&id, peer));
                targets.truncate(fanout);
                for peer in targets {
                    self.transmit(ctx, &peer, message);
                }
            }
            _ => {
                for peer in others {
                    self.transmit(ctx, &peer, message);
                }
            }
        }
    }

    fn transmit(&mut self, ctx: &mut Context<'_>, peer: &PeerId, message: &Bytes) {
        match ctx.send(peer, self.config.channel.id, message.clone()) {
            Ok(()) => self.stats.transmissions = self.stats.transmissions.saturating_add(1),
            Err(SendError::Full(_)) => self.stats.refused = self.stats.refused.saturating_add(1),
            Err(_) => {}
        }
    }
}

/// A per-message, per-peer sort key, so a fan-out picks different peers for different
/// messages without an RNG.
fn spread(id: &MessageId, peer: &PeerId) -> u64 {
    let mut key = [0u8; 8];
    for (slot, (a, b)) in key.iter_mut().zip(id.0.iter().zip(peer.as_bytes())) {
        *slot = a ^ b;
    }
    u64::from_le_bytes(key).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

impl Protocol for Gossip {
    fn spec(&self) -> ProtocolSpec {
        ProtocolSpec {
            name: self.config.name.clone(),
            versions: 1..=1,
            channels: alloc::vec![self.config.channel],
        }
    }

    fn message(
        &mut self,
        ctx: &mut Context<'_>,
        peer: PeerId,
        _channel: ChannelId,
        message: Bytes,
    ) {
        let id = MessageId::of(&message);
        if !self.seen.insert(ctx.now(), id) {
            self.stats.duplicates = self.stats.duplicates.saturating_add(1);
            return;
        }
        self.stats.delivered = self.stats.delivered.saturating_add(1);
        self.forward(ctx, id, &message, Some(peer));
        if self.pending.len() >= self.config.max_pending.max(1) {
            self.pending.pop_front();
            self.stats.dropped = self.stats.dropped.saturating_add(1);
        }
        self.pending.push_back(GossipMessage {
            from: peer,
            id,
            message,
        });
    }
}
