//! The node's application calls, declared once for the embedded [`Driver`] and the
//! standalone [`Handle`].

use std::net::IpAddr;
use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use switchboard::discovery::Discovery;
use switchboard::node::{DialError, Node, OutboundSlots, PeerInfo, Stack};
use switchboard::{Bytes, ChannelId, DisconnectReason, Instant, NetAddress, PeerId, SendError};

use crate::driver::Driver;
use crate::runtime::Handle;

/// The application's calls on a node, wherever it runs: on a [`Driver`] in your loop (the
/// call is made at once) or behind a [`Handle`] (made on the loop's thread, the caller
/// waiting for the answer). Each is the [`Node`] method of the same name, given the
/// current time; anything else the node offers is one [`NodeApi::with_node`] away.
///
/// Implemented for `&mut Driver` and `&Handle`, so `driver.send(..)` and `handle.send(..)`
/// both read as plain method calls once the trait is in scope.
///
/// ```no_run
/// use switchboard_mio::{Handle, NodeApi};
///
/// fn greet_everyone(handle: &Handle) {
///     for peer in handle.peers() {
///         let _ = handle.send(&peer, 1, "hello".into());
///     }
///     let inbound = handle.with_node(|node, _| node.peer_counts().0);
///     println!("{inbound:?} inbound peers");
/// }
/// ```
pub trait NodeApi: Sized {
    /// Calls `f` with the node and the current time where the node runs, and returns its
    /// answer; `None` when the node is gone (a runtime that stopped). What `f` queued goes
    /// out with the loop's next round.
    fn with_node<T: Send + 'static>(
        self,
        f: impl FnOnce(&mut Node<ChaCha20Rng>, Instant) -> T + Send + 'static,
    ) -> Option<T>;

    /// Calls `f` where the node runs with the node, its [`Discovery`] protocol (on a
    /// router that registered one: the address book is there) and the current time, for a
    /// look that changes nothing (metrics, status); `None` when the node is gone.
    fn inspect<T: Send + 'static>(
        self,
        f: impl FnOnce(&Node<ChaCha20Rng>, Option<&Discovery>, Instant) -> T + Send + 'static,
    ) -> Option<T>;

    /// Queues `message` for `peer` on `channel` ([`Node::send`]). `Full` hands it back:
    /// send again after [`NodeEvent::Writable`](switchboard::node::NodeEvent::Writable)
    /// for that peer and channel. `NotConnected` when the node is gone.
    fn send(self, peer: &PeerId, channel: ChannelId, message: Bytes) -> Result<(), SendError> {
        let (peer, kept) = (*peer, message.clone());
        self.with_node(move |node, now| node.send(now, &peer, channel, message))
            .unwrap_or(Err(SendError::NotConnected(kept)))
    }

    /// Queues `message` for every connected peer with room ([`Node::broadcast`]); how many
    /// took it (0 when the node is gone).
    fn broadcast(self, channel: ChannelId, message: Bytes) -> usize {
        self.with_node(move |node, now| node.broadcast(now, channel, message))
            .unwrap_or(0)
    }

    /// Dials `addr`, paced and deduplicated by the dial queue ([`Node::dial`]);
    /// `ShuttingDown` when the node is gone.
    fn dial(self, addr: NetAddress) -> Result<(), DialError> {
        self.with_node(move |node, now| node.dial(now, addr))
            .unwrap_or(Err(DialError::ShuttingDown))
    }

    /// Keeps `addr` connected, redialing it whenever its connection ends
    /// ([`Node::add_persistent_peer`]).
    fn add_persistent_peer(self, addr: NetAddress) {
        self.with_node(move |node, now| node.add_persistent_peer(now, addr));
    }

    /// Disconnects `peer`, telling it `reason` in a GOAWAY ([`Node::disconnect`]).
    fn disconnect(self, peer: &PeerId, reason: DisconnectReason) {
        let peer = *peer;
        self.with_node(move |node, now| node.disconnect(now, &peer, reason));
    }

    /// Bans `peer` for `duration`, disconnecting it ([`Node::ban_peer`]).
    fn ban_peer(self, peer: &PeerId, duration: Duration) {
        let peer = *peer;
        self.with_node(move |node, now| node.ban_peer(now, &peer, duration));
    }

    /// Bans `ip` for `duration`, disconnecting its peers ([`Node::ban_ip`]).
    fn ban_ip(self, ip: IpAddr, duration: Duration) {
        self.with_node(move |node, now| node.ban_ip(now, ip, duration));
    }

    /// The connected peers (none when the node is gone).
    fn peers(self) -> Vec<PeerId> {
        self.with_node(|node, _| node.peers().collect())
            .unwrap_or_default()
    }

    /// The outbound slots: taken, the cap, dials in flight for them
    /// ([`Node::outbound_slots`]) — how full discovery has got them. `None` when the node is
    /// gone.
    fn outbound_slots(self) -> Option<OutboundSlots> {
        self.with_node(|node, _| node.outbound_slots())
    }

    /// What the node knows of a connected peer: its address, direction, RTT, counters per
    /// channel ([`Node::peer_info`]).
    fn peer_info(self, peer: &PeerId) -> Option<PeerInfo> {
        let peer = *peer;
        self.with_node(move |node, _| node.peer_info(&peer))
            .flatten()
    }
}

impl<S: Stack<Rng = ChaCha20Rng> + 'static> NodeApi for &mut Driver<S> {
    fn with_node<T: Send + 'static>(
        self,
        f: impl FnOnce(&mut Node<ChaCha20Rng>, Instant) -> T + Send + 'static,
    ) -> Option<T> {
        Some(Driver::with_node(self, f))
    }

    fn inspect<T: Send + 'static>(
        self,
        f: impl FnOnce(&Node<ChaCha20Rng>, Option<&Discovery>, Instant) -> T + Send + 'static,
    ) -> Option<T> {
        Some(Driver::inspect(self, f))
    }
}

impl<S: Stack<Rng = ChaCha20Rng> + 'static> NodeApi for &Handle<S> {
    fn with_node<T: Send + 'static>(
        self,
        f: impl FnOnce(&mut Node<ChaCha20Rng>, Instant) -> T + Send + 'static,
    ) -> Option<T> {
        Handle::with_node(self, f)
    }

    fn inspect<T: Send + 'static>(
        self,
        f: impl FnOnce(&Node<ChaCha20Rng>, Option<&Discovery>, Instant) -> T + Send + 'static,
    ) -> Option<T> {
        Handle::inspect(self, f)
    }
}
