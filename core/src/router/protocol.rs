//! What an application protocol is: its spec (name, versions, channels), its lifecycle
//! hooks, and the [`Context`] through which it acts on the node.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;
use core::fmt;
use core::net::SocketAddr;
use core::ops::RangeInclusive;

use bytes::Bytes;
use rand_core::CryptoRng;

use super::timers::{TimerKey, Timers, TooManyTimers};
use crate::channel::{ChannelConfig, ChannelId};
use crate::disconnect::DisconnectReason;
use crate::identity::PeerId;
use crate::mux::SendError;
use crate::net_address::NetAddress;
use crate::node::{DialError, DialReport, Node, NodeView, OutboundSlots, PeerInfo, QueryError};
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

/// A value a protocol handed to the application ([`Context::emit`]), in the node's event
/// stream as [`NodeEvent::Protocol`](crate::node::NodeEvent::Protocol): the application
/// hears of what its protocols learn (a gossip message, a finished query) as it hears of
/// peers, instead of polling each protocol.
///
/// The value is type-erased, so that one event type carries every protocol's values, and
/// shared (`Arc`), so that the event stays `Clone` and `Send` whatever the value: take it
/// back with [`ProtocolEvent::downcast_ref`]. Two events are equal when they come from the
/// same emit (clones of one another): values need not be comparable, so equality is the
/// value's address, not its contents.
#[derive(Clone)]
pub struct ProtocolEvent {
    protocol: Arc<str>,
    /// The value's type, for `Debug`: the value itself may not be printable.
    type_name: &'static str,
    value: Arc<dyn Any + Send + Sync>,
}

impl ProtocolEvent {
    /// The name of the protocol that emitted it ([`ProtocolSpec::name`]).
    pub fn protocol(&self) -> &str {
        &self.protocol
    }

    /// The value, if it is a `T`.
    pub fn downcast_ref<T: Any>(&self) -> Option<&T> {
        self.value.downcast_ref()
    }
}

impl fmt::Debug for ProtocolEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProtocolEvent")
            .field("protocol", &self.protocol)
            .field("value", &format_args!("{}", self.type_name))
            .finish()
    }
}

impl PartialEq for ProtocolEvent {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.value, &other.value) && self.protocol == other.protocol
    }
}

impl Eq for ProtocolEvent {}

/// What a protocol may ask of the node while it handles a hook: [`Node`]'s methods of the
/// same names, behind a trait object so that a context does not carry the node's RNG type.
pub(crate) trait NodeOps {
    fn send(
        &mut self,
        now: Instant,
        peer: &PeerId,
        channel: ChannelId,
        message: Bytes,
    ) -> Result<(), SendError>;
    fn disconnect(&mut self, now: Instant, peer: &PeerId, reason: DisconnectReason);
    fn disconnect_when_confirmed(&mut self, now: Instant, peer: &PeerId, channel: ChannelId);
    fn dial(&mut self, now: Instant, addr: NetAddress) -> Result<(), DialError>;
    fn probe(&mut self, now: Instant, addr: NetAddress) -> Result<(), DialError>;
    fn close(&mut self, now: Instant, peer: &PeerId, reason: DisconnectReason, detail: &str);
    fn connected(&self) -> Vec<PeerInfo>;
    fn peer_info(&self, peer: &PeerId) -> Option<PeerInfo>;
    fn outbound_slots(&self) -> OutboundSlots;
    fn dials_in_flight(&self) -> Vec<(SocketAddr, bool)>;
    fn is_shutting_down(&self) -> bool;
    fn view(&self) -> NodeView<'_>;
    fn rng_and_view(&mut self) -> (&mut dyn CryptoRng, NodeView<'_>);
    fn open_query(
        &mut self,
        now: Instant,
        addr: NetAddress,
        protocol: &str,
    ) -> Result<(), QueryError>;
    fn is_query(&self, peer: &PeerId) -> bool;
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

    fn disconnect_when_confirmed(&mut self, now: Instant, peer: &PeerId, channel: ChannelId) {
        Node::disconnect_when_confirmed(self, now, peer, channel);
    }

    fn dial(&mut self, now: Instant, addr: NetAddress) -> Result<(), DialError> {
        Node::dial(self, now, addr)
    }

    fn probe(&mut self, now: Instant, addr: NetAddress) -> Result<(), DialError> {
        Node::probe(self, now, addr)
    }

    fn close(&mut self, now: Instant, peer: &PeerId, reason: DisconnectReason, detail: &str) {
        Node::disconnect_because(self, now, peer, reason, detail);
    }

    fn connected(&self) -> Vec<PeerInfo> {
        self.peers()
            .filter_map(|peer| Node::peer_info(self, &peer))
            .collect()
    }

    fn peer_info(&self, peer: &PeerId) -> Option<PeerInfo> {
        Node::peer_info(self, peer)
    }

    fn outbound_slots(&self) -> OutboundSlots {
        Node::outbound_slots(self)
    }

    fn dials_in_flight(&self) -> Vec<(SocketAddr, bool)> {
        Node::dials_in_flight(self).collect()
    }

    fn is_shutting_down(&self) -> bool {
        Node::is_shutting_down(self)
    }

    fn view(&self) -> NodeView<'_> {
        Node::view(self)
    }

    fn rng_and_view(&mut self) -> (&mut dyn CryptoRng, NodeView<'_>) {
        let (rng, view) = Node::rng_and_view(self);
        (rng, view)
    }

    fn open_query(
        &mut self,
        now: Instant,
        addr: NetAddress,
        protocol: &str,
    ) -> Result<(), QueryError> {
        Node::open_query(self, now, addr, protocol)
    }

    fn is_query(&self, peer: &PeerId) -> bool {
        Node::is_query_peer(self, peer)
    }
}

/// A protocol's handle on the node during one hook: the time, its peers, sending, its
/// timers, and the application.
pub struct Context<'a> {
    pub(crate) now: Instant,
    pub(crate) node: &'a mut dyn NodeOps,
    /// The peers that speak this protocol with us, and the version each speaks.
    pub(crate) peers: &'a [(PeerId, u16)],
    pub(crate) timers: &'a mut Timers,
    /// The protocol's name, shared by the events it emits.
    pub(crate) name: &'a Arc<str>,
    /// The router's queue of emitted events.
    pub(crate) emitted: &'a mut VecDeque<ProtocolEvent>,
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

    /// Disconnects `peer` once what was sent to it on `channel` is confirmed
    /// ([`Node::disconnect_when_confirmed`]): to answer and hang up.
    pub fn disconnect_when_confirmed(&mut self, peer: &PeerId, channel: ChannelId) {
        self.node.disconnect_when_confirmed(self.now, peer, channel);
    }

    /// Queues a dial for a peer ([`Node::dial`]).
    pub fn dial(&mut self, addr: NetAddress) -> Result<(), DialError> {
        self.node.dial(self.now, addr)
    }

    /// Dials `addr` to prove it alive, never to keep it ([`Node::probe`]); what became of
    /// it comes to [`Protocol::dialed`].
    pub fn probe(&mut self, addr: NetAddress) -> Result<(), DialError> {
        self.node.probe(self.now, addr)
    }

    /// Disconnects `peer` with `reason`, telling it `detail` (in the GOAWAY).
    pub fn disconnect_because(&mut self, peer: &PeerId, reason: DisconnectReason, detail: &str) {
        self.node.close(self.now, peer, reason, detail);
    }

    /// What the node says of addresses and peers: connected, being dialed, banned,
    /// private ([`NodeView`]).
    pub fn view(&self) -> NodeView<'_> {
        self.node.view()
    }

    /// Every connected peer, whatever protocols it speaks ([`Node::peer_info`] each).
    pub fn connected(&self) -> Vec<PeerInfo> {
        self.node.connected()
    }

    /// What the node knows of a connected peer.
    pub fn peer_info(&self, peer: &PeerId) -> Option<PeerInfo> {
        self.node.peer_info(peer)
    }

    /// The outbound slots ([`Node::outbound_slots`]).
    pub fn outbound_slots(&self) -> OutboundSlots {
        self.node.outbound_slots()
    }

    /// The addresses being dialed, each with whether it is a persistent peer's
    /// ([`Node::dials_in_flight`]).
    pub fn dials_in_flight(&self) -> Vec<(SocketAddr, bool)> {
        self.node.dials_in_flight()
    }

    /// Whether the node is shutting down: no dial starts any more.
    pub fn is_shutting_down(&self) -> bool {
        self.node.is_shutting_down()
    }

    /// The node's seeded random number generator ([`Node::rng`]).
    pub fn rng(&mut self) -> &mut dyn CryptoRng {
        self.node.rng_and_view().0
    }

    /// The RNG and the view at once ([`Node::rng_and_view`]): to draw a choice among
    /// candidates the view judges.
    pub fn rng_and_view(&mut self) -> (&mut dyn CryptoRng, NodeView<'_>) {
        self.node.rng_and_view()
    }

    /// Opens a query connection to `addr` for this protocol ([`Node::open_query`]): outside
    /// the peer slots, only this protocol's channels open on it. The peer arrives through
    /// [`Protocol::peer_connected`] ([`Context::is_query`] tells it from a peer), or
    /// [`Protocol::query_failed`] says why not, once.
    pub fn open_query(&mut self, addr: NetAddress) -> Result<(), QueryError> {
        self.node.open_query(self.now, addr, self.name)
    }

    /// Whether `peer` is connected over a query connection rather than as a peer.
    pub fn is_query(&self, peer: &PeerId) -> bool {
        self.node.is_query(peer)
    }

    /// Calls [`Protocol::timer`] with `key` at `at`, replacing the timer `key` held. A
    /// protocol holds at most [`MAX_TIMERS`](super::MAX_TIMERS) timers: setting one more is
    /// refused, not made room for, since dropping a timer the protocol counts on would fail
    /// silently later (cancel one, or key them by purpose rather than by request).
    pub fn set_timer(&mut self, key: TimerKey, at: Instant) -> Result<(), TooManyTimers> {
        self.timers.set(key, at)
    }

    /// Cancels the timer `key` (nothing if it is not set).
    pub fn cancel_timer(&mut self, key: TimerKey) {
        self.timers.cancel(key);
    }

    /// When the timer `key` fires, if it is set.
    pub fn timer(&self, key: TimerKey) -> Option<Instant> {
        self.timers.get(key)
    }

    /// Hands `value` to the application: [`Router::poll_event`](super::Router::poll_event)
    /// returns it as [`NodeEvent::Protocol`](crate::node::NodeEvent::Protocol), after the
    /// events it already returned and before those the router takes from the node later —
    /// so an event emitted while a peer connects comes out after that peer's
    /// `PeerConnected`, and before its disconnection.
    ///
    /// ```
    /// use switchboard::node::{Node, NodeConfig, NodeEvent};
    /// use switchboard::router::{Context, Protocol, ProtocolSpec, Router};
    /// use switchboard::{ChannelId, Instant, Keypair, PeerId};
    /// # use bytes::Bytes;
    /// # use rand_chacha::ChaCha20Rng;
    /// # use rand_core::SeedableRng;
    ///
    /// /// Tells the application when it is up.
    /// struct Hello;
    ///
    /// #[derive(Debug, PartialEq)]
    /// struct Ready(u32);
    ///
    /// impl Protocol for Hello {
    ///     fn spec(&self) -> ProtocolSpec {
    ///         ProtocolSpec::new("hello", 1..=1, [3])
    ///     }
    ///     fn started(&mut self, ctx: &mut Context<'_>) {
    ///         ctx.emit(Ready(1));
    ///     }
    ///     fn message(&mut self, _: &mut Context<'_>, _: PeerId, _: ChannelId, _: Bytes) {}
    /// }
    ///
    /// let mut rng = ChaCha20Rng::seed_from_u64(1);
    /// let keypair = Keypair::generate(&mut rng);
    /// let config = NodeConfig::new("mainnet", "hello/1");
    /// let node = Node::new(Instant::ZERO, config, keypair, rng).unwrap();
    /// let mut router = Router::with_protocols(node, Instant::ZERO, |router| {
    ///     router.register(Hello).map(drop)
    /// })
    /// .unwrap();
    /// let Some(NodeEvent::Protocol(event)) = router.poll_event(Instant::ZERO) else {
    ///     panic!("the protocol's event");
    /// };
    /// assert_eq!(event.protocol(), "hello");
    /// assert_eq!(event.downcast_ref::<Ready>(), Some(&Ready(1)));
    /// assert_eq!(event.downcast_ref::<u32>(), None);
    /// ```
    pub fn emit<T: Any + Send + Sync>(&mut self, value: T) {
        self.emitted.push_back(ProtocolEvent {
            protocol: self.name.clone(),
            type_name: core::any::type_name::<T>(),
            value: Arc::new(value),
        });
    }
}

/// An application protocol (a reactor): the router calls its hooks, in this order for each
/// peer — [`Protocol::peer_connected`], then any number of [`Protocol::message`]s and
/// [`Protocol::writable`]s, then [`Protocol::peer_disconnected`] — between
/// [`Protocol::started`] and [`Protocol::stopped`]. A query connection's peer
/// ([`Context::open_query`], or a stranger's to us) goes through the same hooks. Every hook gets a [`Context`] to act
/// through; none may block.
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

    /// A query connection this protocol opened ([`Context::open_query`]) to `addr` failed
    /// before it connected, for `reason` (`AlreadyConnected`: a connection to that peer
    /// won the race; if it speaks this protocol, it is among [`Context::peers`]).
    fn query_failed(
        &mut self,
        _ctx: &mut Context<'_>,
        _addr: NetAddress,
        _reason: DisconnectReason,
    ) {
    }

    /// `peer`'s queue on `channel`, one of this protocol's, has room again after a send
    /// returned [`SendError::Full`]: send what was refused. Once per run of `Full`s.
    fn writable(&mut self, _ctx: &mut Context<'_>, _peer: PeerId, _channel: ChannelId) {}

    /// What became of a dial the node made — any dial, the application's and other
    /// protocols' too ([`DialReport`]): what an address book learns from.
    fn dialed(&mut self, _ctx: &mut Context<'_>, _report: &DialReport) {}

    /// The time set with [`Context::set_timer`] for `key` came; the timer is no longer set.
    fn timer(&mut self, _ctx: &mut Context<'_>, _key: TimerKey) {}

    /// The router stopped; no hook follows.
    fn stopped(&mut self, _ctx: &mut Context<'_>) {}
}
