//! What an application protocol is: its spec (name, versions, channels), its lifecycle
//! hooks, and the [`Context`] through which it acts on the node.

use alloc::string::String;
use alloc::vec::Vec;
use core::any::Any;
use core::ops::RangeInclusive;

use bytes::Bytes;
use rand_core::CryptoRng;

use crate::channel::{ChannelConfig, ChannelId};
use crate::disconnect::DisconnectReason;
use crate::identity::PeerId;
use crate::mux::SendError;
use crate::node::Node;
use crate::node_info::ChannelInfo;
use crate::time::Instant;

/// A protocol's name, the versions it speaks, and the channels it uses (the same channels at
/// every version). [`Router::register`](super::Router::register) offers it in the node's
/// handshake; an application without a router offers it with
/// [`NodeConfig::add_protocol`](crate::node::NodeConfig::add_protocol). A connection opens
/// the channels of the highest version both ends speak ([`crate::negotiate`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtocolSpec {
    /// 1..=32 bytes of UTF-8, unique among the node's protocols.
    pub name: String,
    /// The versions spoken, oldest to newest.
    pub versions: RangeInclusive<u16>,
    /// The channels, with their limits.
    pub channels: Vec<ChannelConfig>,
}

impl ProtocolSpec {
    /// `name` at `versions` on `channels` (default limits each).
    pub fn new(
        name: impl Into<String>,
        versions: RangeInclusive<u16>,
        channels: impl IntoIterator<Item = ChannelId>,
    ) -> Self {
        ProtocolSpec {
            name: name.into(),
            versions,
            channels: channels.into_iter().map(ChannelConfig::new).collect(),
        }
    }

    /// Whether `channel` is one of its channels.
    pub fn has_channel(&self, channel: ChannelId) -> bool {
        self.channels.iter().any(|config| config.id == channel)
    }

    /// What a node offers for it: each channel once per version spoken, so that peers
    /// negotiate the highest version both speak.
    pub(crate) fn offers(&self) -> impl Iterator<Item = ChannelInfo> + '_ {
        self.channels.iter().flat_map(move |config| {
            self.versions.clone().map(move |version| ChannelInfo {
                id: config.id,
                protocol: self.name.clone(),
                version,
            })
        })
    }
}

/// What a protocol may ask of the node while it handles a hook.
pub(crate) trait NodeOps {
    fn send(
        &mut self,
        now: Instant,
        peer: &PeerId,
        channel: ChannelId,
        message: Bytes,
    ) -> Result<(), SendError>;
    fn disconnect(&mut self, now: Instant, peer: &PeerId, reason: DisconnectReason);
}

impl<R: CryptoRng> NodeOps for Node<R> {
    fn send(
        &mut self,
        now: Instant,
        peer: &PeerId,
        channel: ChannelId,
        message: Bytes,
    ) -> Result<(), SendError> {
        Node::send(self, now, peer, channel, message)
    }

    fn disconnect(&mut self, now: Instant, peer: &PeerId, reason: DisconnectReason) {
        Node::disconnect(self, now, peer, reason);
    }
}

/// A protocol's handle on the node during one hook: the time, its peers, and sending.
pub struct Context<'a> {
    pub(crate) now: Instant,
    pub(crate) node: &'a mut dyn NodeOps,
    /// The peers that speak this protocol with us, and the version each speaks.
    pub(crate) peers: &'a [(PeerId, u16)],
    pub(crate) timer: &'a mut Option<Instant>,
}

impl<'a> Context<'a> {
    /// The current time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The peers this protocol runs with, and the version each speaks, in `PeerId` order.
    pub fn peers(&self) -> &'a [(PeerId, u16)] {
        self.peers
    }

    /// Queues `message` for `peer`; hands it back when the peer's queue is full or the peer
    /// is gone, as [`Node::send`].
    pub fn send(
        &mut self,
        peer: &PeerId,
        channel: ChannelId,
        message: Bytes,
    ) -> Result<(), SendError> {
        self.node.send(self.now, peer, channel, message)
    }

    /// Disconnects `peer` with `reason`.
    pub fn disconnect(&mut self, peer: &PeerId, reason: DisconnectReason) {
        self.node.disconnect(self.now, peer, reason);
    }

    /// Calls [`Protocol::timer`] at `at` (replacing any earlier request).
    pub fn set_timer(&mut self, at: Instant) {
        *self.timer = Some(at);
    }

    /// Cancels the timer.
    pub fn cancel_timer(&mut self) {
        *self.timer = None;
    }
}

/// An application protocol (a reactor): the router calls its hooks, in this order for each
/// peer — [`Protocol::peer_connected`], then any number of [`Protocol::message`]s, then
/// [`Protocol::peer_disconnected`] — between [`Protocol::started`] and
/// [`Protocol::stopped`]. Every hook gets a [`Context`] to act through; none may block.
pub trait Protocol: Any {
    /// Its name, versions and channels: the router asks once, when the protocol registers,
    /// and offers them in the node's handshake.
    fn spec(&self) -> ProtocolSpec;

    /// The router started.
    fn started(&mut self, _ctx: &mut Context<'_>) {}

    /// `peer` connected speaking `version` of this protocol. An error refuses the peer: it
    /// is disconnected with that reason, and no later protocol hears of it.
    fn peer_connected(
        &mut self,
        _ctx: &mut Context<'_>,
        _peer: PeerId,
        _version: u16,
    ) -> Result<(), DisconnectReason> {
        Ok(())
    }

    /// A message from `peer` on one of this protocol's channels.
    fn message(&mut self, ctx: &mut Context<'_>, peer: PeerId, channel: ChannelId, message: Bytes);

    /// `peer` disconnected.
    fn peer_disconnected(
        &mut self,
        _ctx: &mut Context<'_>,
        _peer: PeerId,
        _reason: DisconnectReason,
    ) {
    }

    /// The time set with [`Context::set_timer`] came.
    fn timer(&mut self, _ctx: &mut Context<'_>) {}

    /// The router stopped; no hook follows.
    fn stopped(&mut self, _ctx: &mut Context<'_>) {}
}
