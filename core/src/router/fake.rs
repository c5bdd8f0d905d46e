//! A fake node for protocols' unit tests: it records what a protocol sends and whom it
//! disconnects, refuses sends as a test tells it to, and lends the [`Context`] a hook gets —
//! so a protocol's state machine is tested alone, without connections.

use alloc::collections::{BTreeSet, VecDeque};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;

use bytes::Bytes;

use super::protocol::NodeOps;
use super::timers::Timers;
use super::{Context, ProtocolEvent};
use crate::channel::ChannelId;
use crate::disconnect::DisconnectReason;
use crate::identity::PeerId;
use crate::mux::SendError;
use crate::net_address::NetAddress;
use crate::node::QueryError;
use crate::time::Instant;

/// What the protocol did to the node.
#[derive(Default)]
pub(crate) struct Sends {
    pub(crate) sent: Vec<(PeerId, ChannelId, Bytes)>,
    pub(crate) disconnected: Vec<(PeerId, DisconnectReason)>,
    /// Sends refused as `Full` while set.
    pub(crate) full: bool,
    /// Query connections opened, in order.
    pub(crate) queries_opened: Vec<NetAddress>,
    /// While set, `open_query` refuses with it.
    pub(crate) query_refusal: Option<QueryError>,
    /// Peers connected over a query connection.
    pub(crate) query_peers: BTreeSet<PeerId>,
}

impl NodeOps for Sends {
    fn send(
        &mut self,
        _now: Instant,
        peer: &PeerId,
        channel: ChannelId,
        message: Bytes,
    ) -> Result<(), SendError> {
        if self.full {
            return Err(SendError::Full(message));
        }
        self.sent.push((*peer, channel, message));
        Ok(())
    }

    fn disconnect(&mut self, _now: Instant, peer: &PeerId, reason: DisconnectReason) {
        self.disconnected.push((*peer, reason));
    }

    fn open_query(
        &mut self,
        _now: Instant,
        addr: NetAddress,
        _protocol: &str,
    ) -> Result<(), QueryError> {
        if let Some(refusal) = self.query_refusal {
            return Err(refusal);
        }
        self.queries_opened.push(addr);
        Ok(())
    }

    fn is_query(&self, peer: &PeerId) -> bool {
        self.query_peers.contains(peer)
    }
}

/// A node with `peers` speaking the protocol under test.
pub(crate) struct FakeNode {
    pub(crate) sends: Sends,
    pub(crate) peers: Vec<(PeerId, u16)>,
    pub(crate) timers: Timers,
    emitted: VecDeque<ProtocolEvent>,
    name: Arc<str>,
}

impl FakeNode {
    pub(crate) fn new(peers: &[PeerId]) -> Self {
        FakeNode {
            sends: Sends::default(),
            peers: peers.iter().map(|peer| (*peer, 1)).collect(),
            timers: Timers::default(),
            emitted: VecDeque::new(),
            name: Arc::from("test"),
        }
    }

    /// The context a hook called at `now` gets.
    pub(crate) fn ctx(&mut self, now: Instant) -> Context<'_> {
        Context {
            now,
            node: &mut self.sends,
            peers: &self.peers,
            timers: &mut self.timers,
            name: &self.name,
            emitted: &mut self.emitted,
        }
    }

    /// Takes what the protocol emitted so far, as `T`s (others are skipped).
    pub(crate) fn take_emitted<T: Any + Clone>(&mut self) -> Vec<T> {
        self.take_events()
            .iter()
            .filter_map(|event| event.downcast_ref::<T>().cloned())
            .collect()
    }

    /// Takes what the protocol emitted so far, as the router hands it on.
    pub(crate) fn take_events(&mut self) -> Vec<ProtocolEvent> {
        self.emitted.drain(..).collect()
    }

    /// Takes what the protocol sent so far.
    pub(crate) fn take_sent(&mut self) -> Vec<(PeerId, ChannelId, Bytes)> {
        core::mem::take(&mut self.sends.sent)
    }

    /// When the protocol's timers next fire.
    pub(crate) fn next_timer(&self) -> Option<Instant> {
        self.timers.earliest()
    }
}
