//! The router: an application written as a set of [`Protocol`]s instead of one event loop.
//!
//! As Tendermint's reactors, go-ethereum's `p2p.Protocol`s, darkfi's protocol registry and
//! carrier's components do, each protocol owns some channels and reacts to its peers
//! coming and going, to messages on its channels, to their queues having room again and to
//! its own timers. The router sits on top of a [`Node`]: [`Router::poll_event`] takes the
//! node's events, hands each to the protocols it concerns, and returns the rest (dial
//! failures, slow peers, messages on channels no protocol owns, and — for the application's
//! information — every peer connecting and disconnecting) along with what the protocols
//! emit for the application ([`Context::emit`]). The adapter keeps driving the node's
//! sockets through [`Router::node_mut`]; plain event polling on the node stays available
//! for applications that want no router.
//!
//! A protocol is declared once, by registering it: [`Router::register`] offers its channels
//! in the node's handshake. A protocol hears of a peer only when the connection negotiated
//! the protocol ([`crate::negotiate`]), with the version negotiated.
//!
//! ```
//! use switchboard::node::{Node, NodeConfig};
//! use switchboard::router::{Context, Protocol, ProtocolSpec, Router};
//! use switchboard::{Bytes, ChannelId, Instant, Keypair, PeerId};
//! # use rand_chacha::ChaCha20Rng;
//! # use rand_core::SeedableRng;
//!
//! /// Answers every message with the same bytes.
//! struct Echo;
//!
//! impl Protocol for Echo {
//!     fn spec(&self) -> ProtocolSpec {
//!         ProtocolSpec::new("echo", 1..=1, [7])
//!     }
//!     fn message(&mut self, ctx: &mut Context<'_>, peer: PeerId, channel: ChannelId, message: Bytes) {
//!         let _ = ctx.send(&peer, channel, message);
//!     }
//! }
//!
//! let config = NodeConfig::new("mainnet", "echo/1");
//! let mut rng = ChaCha20Rng::seed_from_u64(1);
//! let keypair = Keypair::generate(&mut rng);
//! let now = Instant::ZERO;
//! let node = Node::new(now, config, keypair, rng).unwrap();
//! let mut router = Router::new(node);
//! let echo = router.register(Echo).unwrap();
//! router.start(now);
//! assert!(router.protocol(echo).is_some());
//! // Drive router.node_mut() from your event loop; take router.poll_event(now) until None.
//! ```

#[cfg(test)]
pub(crate) mod fake;
mod protocol;
#[cfg(test)]
mod tests;
mod timers;

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::marker::PhantomData;

use rand_core::CryptoRng;

pub use protocol::{Context, Protocol, ProtocolEvent, ProtocolSpec};
pub use timers::{MAX_TIMERS, TimerKey, TooManyTimers};

use crate::channel::ChannelId;
use crate::identity::PeerId;
use crate::negotiation::negotiate;
use crate::node::{Node, NodeEvent, Stack};
use crate::node_info::NodeInfoError;
use crate::time::Instant;
use protocol::NodeOps;
use timers::Timers;

/// The handle of a registered protocol, typed so that [`Router::protocol`] hands back the
/// protocol itself.
pub struct ProtocolId<P> {
    index: usize,
    kind: PhantomData<fn() -> P>,
}

impl<P> Clone for ProtocolId<P> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<P> Copy for ProtocolId<P> {}

impl<P> fmt::Debug for ProtocolId<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProtocolId({})", self.index)
    }
}

/// Why a protocol could not be registered.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegisterError {
    /// Another protocol already owns this channel: a registered one, or one the node's
    /// config offers under another name.
    ChannelTaken(ChannelId),
    /// Another protocol has this name.
    NameTaken,
    /// The router already started: protocols are registered before [`Router::start`].
    Started,
    /// The protocol's channels are not all offered yet, and the node already has
    /// connections, whose handshakes offered what the node offered then. A node dials its
    /// config's persistent peers as it is built: offer such a node's protocols in its config
    /// ([`NodeConfig::add_protocol`](crate::node::NodeConfig::add_protocol)).
    NodeRunning,
    /// The node's `NodeInfo` with the protocol's channels would not encode (a name too
    /// long, too many channels).
    Info(NodeInfoError),
}

impl fmt::Display for RegisterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegisterError::ChannelTaken(channel) => {
                write!(f, "channel {channel} belongs to another protocol")
            }
            RegisterError::NameTaken => f.write_str("a protocol of this name is registered"),
            RegisterError::Started => f.write_str("the router already started"),
            RegisterError::NodeRunning => f.write_str(
                "the node already has connections: offer the protocol in its config, or \
                 register it before the node connects",
            ),
            RegisterError::Info(error) => {
                write!(f, "the node cannot offer the protocol's channels: {error}")
            }
        }
    }
}

impl core::error::Error for RegisterError {}

struct Registered {
    protocol: Box<dyn Protocol>,
    spec: ProtocolSpec,
    /// The spec's name, shared by the events the protocol emits so that an emit copies no
    /// string.
    name: Arc<str>,
    timers: Timers,
    /// Its peers and the version each speaks, in `PeerId` order.
    peers: Vec<(PeerId, u16)>,
}

impl Registered {
    /// The protocol and the context its hooks get, borrowed apart.
    fn split<'a>(
        &'a mut self,
        now: Instant,
        node: &'a mut dyn NodeOps,
        emitted: &'a mut VecDeque<ProtocolEvent>,
    ) -> (&'a mut dyn Protocol, Context<'a>) {
        let ctx = Context {
            now,
            node,
            peers: &self.peers,
            timers: &mut self.timers,
            name: &self.name,
            emitted,
        };
        (&mut *self.protocol, ctx)
    }
}

/// Dispatches a [`Node`]'s events to registered [`Protocol`]s. See the
/// [module documentation](self).
pub struct Router<R> {
    node: Node<R>,
    protocols: Vec<Registered>,
    /// Which protocol owns each channel.
    owners: BTreeMap<ChannelId, usize>,
    /// What the protocols emitted, for [`Router::poll_event`] to return before it takes
    /// the node's next event.
    emitted: VecDeque<ProtocolEvent>,
    started: bool,
    stopped: bool,
}

impl<R: CryptoRng> Router<R> {
    /// A router over `node`, with no protocols yet.
    pub fn new(mut node: Node<R>) -> Self {
        node.report_dials();
        Router {
            node,
            protocols: Vec::new(),
            owners: BTreeMap::new(),
            emitted: VecDeque::new(),
            started: false,
            stopped: false,
        }
    }

    /// A router over `node` running the protocols `register` registers, started at `now`
    /// once they are all registered: what adapters build, so no router runs unstarted.
    pub fn with_protocols(
        node: Node<R>,
        now: Instant,
        register: impl FnOnce(&mut Self) -> Result<(), RegisterError>,
    ) -> Result<Self, RegisterError> {
        let mut router = Router::new(node);
        register(&mut router)?;
        router.start(now);
        Ok(router)
    }

    /// The node.
    pub fn node(&self) -> &Node<R> {
        &self.node
    }

    /// The node, for the adapter's socket calls (`handle_*`, `poll_transmit`,
    /// `poll_action`) and the application's own (`dial`, `ban_peer`, …). Take its events
    /// through [`Router::poll_event`], not the node's, or the protocols miss them.
    pub fn node_mut(&mut self) -> &mut Node<R> {
        &mut self.node
    }

    /// Registers `protocol`, and offers its channels ([`Protocol::spec`]) in the node's
    /// handshake unless its config offers them already — which needs a node without
    /// connections yet ([`RegisterError::NodeRunning`]).
    pub fn register<P: Protocol>(&mut self, protocol: P) -> Result<ProtocolId<P>, RegisterError> {
        if self.started {
            return Err(RegisterError::Started);
        }
        let spec = protocol.spec();
        if self
            .protocols
            .iter()
            .any(|other| other.spec.name == spec.name)
        {
            return Err(RegisterError::NameTaken);
        }
        if let Some(taken) = spec
            .channels
            .iter()
            .find(|config| self.owners.contains_key(&config.id))
        {
            return Err(RegisterError::ChannelTaken(taken.id));
        }
        // Last: a refused registration leaves the node as it was.
        self.node.offer_protocol(&spec)?;
        let index = self.protocols.len();
        for config in &spec.channels {
            self.owners.insert(config.id, index);
        }
        self.protocols.push(Registered {
            protocol: Box::new(protocol),
            name: Arc::from(spec.name.as_str()),
            spec,
            timers: Timers::default(),
            peers: Vec::new(),
        });
        Ok(ProtocolId {
            index,
            kind: PhantomData,
        })
    }

    /// The protocol registered as `id`.
    pub fn protocol<P: Protocol>(&self, id: ProtocolId<P>) -> Option<&P> {
        let registered = self.protocols.get(id.index)?;
        let any: &dyn core::any::Any = &*registered.protocol;
        any.downcast_ref::<P>()
    }

    /// The id of the first protocol of type `P` registered: for code that holds the router
    /// but not the id `register` returned (a simulator that rebuilds the router at every
    /// restart, a helper generic over the router's protocols).
    pub fn id_of<P: Protocol>(&self) -> Option<ProtocolId<P>> {
        let index = self.protocols.iter().position(|registered| {
            let any: &dyn core::any::Any = &*registered.protocol;
            any.is::<P>()
        })?;
        Some(ProtocolId {
            index,
            kind: PhantomData,
        })
    }

    /// Calls `f` with the protocol registered as `id` and a [`Context`], so the application
    /// can act through the protocol (publish, query, …).
    pub fn with_protocol<P: Protocol, T>(
        &mut self,
        now: Instant,
        id: ProtocolId<P>,
        f: impl FnOnce(&mut P, &mut Context<'_>) -> T,
    ) -> Option<T> {
        let registered = self.protocols.get_mut(id.index)?;
        let (protocol, mut ctx) = registered.split(now, &mut self.node, &mut self.emitted);
        let any: &mut dyn core::any::Any = protocol;
        let protocol = any.downcast_mut::<P>()?;
        Some(f(protocol, &mut ctx))
    }

    /// Calls every protocol's [`Protocol::started`], in registration order.
    pub fn start(&mut self, now: Instant) {
        if self.started {
            return;
        }
        self.started = true;
        for index in 0..self.protocols.len() {
            self.call(now, index, |protocol, ctx| protocol.started(ctx));
        }
    }

    /// Calls every protocol's [`Protocol::stopped`]; no hook follows. The node is left as
    /// it is (disconnect its peers, or drop it).
    pub fn stop(&mut self, now: Instant) {
        if !self.started || self.stopped {
            return;
        }
        self.stopped = true;
        for index in 0..self.protocols.len() {
            self.call(now, index, |protocol, ctx| protocol.stopped(ctx));
        }
    }

    /// The earliest deadline: the node's, or a protocol's timer. Protocol timers count only
    /// while the router runs (between [`Router::start`] and [`Router::stop`]): they cannot
    /// fire otherwise, and a deadline that cannot fire would have the adapter spin.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let timers = self
            .protocols
            .iter()
            .filter(|_| self.running())
            .filter_map(|registered| registered.timers.earliest());
        self.node.poll_timeout().into_iter().chain(timers).min()
    }

    /// Fires the node's timers and the protocol timers due by `now`: earliest deadline
    /// first, then protocols in registration order, then keys in ascending order, so a run
    /// repeats exactly. Only the timers due when the call starts fire: one a hook sets for
    /// `now` or earlier fires at the next call (which [`Router::poll_timeout`] asks for at
    /// once), so a protocol re-arming a timer for `now` cannot hold the router in here.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.node.handle_timeout(now);
        if !self.running() {
            return;
        }
        let mut due: Vec<(Instant, usize, TimerKey)> = Vec::new();
        for (index, registered) in self.protocols.iter().enumerate() {
            due.extend(registered.timers.due(now).map(|(at, key)| (at, index, key)));
        }
        due.sort_unstable();
        for (at, index, key) in due {
            // An earlier hook may have cancelled or moved it.
            let still_set = self
                .protocols
                .get_mut(index)
                .is_some_and(|registered| registered.timers.take(key, at));
            if still_set {
                self.call(now, index, |protocol, ctx| protocol.timer(ctx, key));
            }
        }
    }

    /// The next event for the application: what the protocols emitted ([`Context::emit`]),
    /// and the node's events the protocols did not consume — dial failures, slow peers,
    /// messages and [`NodeEvent::Writable`]s on channels no protocol running with that peer
    /// owns, and every peer's connection and disconnection (which the protocols concerned
    /// have already been told of). In order: what a protocol emits while it handles one of
    /// the node's events comes out after that event, if it comes out, and before the
    /// node's next.
    ///
    /// The protocols may send while they handle events, even when this returns `None`: take
    /// the node's `poll_transmit` after it, as after any input.
    pub fn poll_event(&mut self, now: Instant) -> Option<NodeEvent> {
        loop {
            if let Some(emitted) = self.emitted.pop_front() {
                return Some(NodeEvent::Protocol(emitted));
            }
            self.handle_reports(now);
            if !self.emitted.is_empty() {
                continue;
            }
            let event = self.node.poll_event(now)?;
            if let Some(event) = self.dispatch(now, event) {
                return Some(event);
            }
        }
    }

    /// Hands each dial report the node holds to every protocol's [`Protocol::dialed`] (and
    /// drops them while the router is not running).
    pub fn handle_reports(&mut self, now: Instant) {
        while let Some(report) = self.node.poll_dial_report() {
            if self.running() {
                for index in 0..self.protocols.len() {
                    self.call(now, index, |protocol, ctx| protocol.dialed(ctx, &report));
                }
            }
        }
    }

    /// Hands `event` to the protocols it concerns; returns it if it is the application's
    /// too.
    fn dispatch(&mut self, now: Instant, event: NodeEvent) -> Option<NodeEvent> {
        if !self.running() {
            return Some(event);
        }
        match event {
            NodeEvent::PeerConnected { peer, ref info, .. }
            | NodeEvent::QueryConnected { peer, ref info, .. } => {
                let open = negotiate(&self.node.node_info().channels, &info.channels);
                self.connect(now, peer, &open);
                Some(event)
            }
            NodeEvent::QueryFailed {
                addr,
                ref protocol,
                reason,
                ..
            } => {
                let opener = self
                    .protocols
                    .iter()
                    .position(|registered| registered.spec.name == *protocol);
                if let Some(index) = opener {
                    self.call(now, index, |protocol, ctx| {
                        protocol.query_failed(ctx, addr, reason)
                    });
                }
                Some(event)
            }
            NodeEvent::PeerDisconnected { peer, reason, .. }
            | NodeEvent::QueryDisconnected { peer, reason, .. } => {
                for index in 0..self.protocols.len() {
                    let had = self
                        .protocols
                        .get_mut(index)
                        .is_some_and(|registered| remove_peer(&mut registered.peers, &peer));
                    if had {
                        self.call(now, index, |protocol, ctx| {
                            protocol.peer_disconnected(ctx, peer, reason)
                        });
                    }
                }
                Some(event)
            }
            NodeEvent::Message {
                peer,
                channel,
                message,
            } => match self.owner(channel, &peer) {
                Some(index) => {
                    self.call(now, index, |protocol, ctx| {
                        protocol.message(ctx, peer, channel, message)
                    });
                    None
                }
                None => Some(NodeEvent::Message {
                    peer,
                    channel,
                    message,
                }),
            },
            NodeEvent::Writable { peer, channel } => match self.owner(channel, &peer) {
                Some(index) => {
                    self.call(now, index, |protocol, ctx| {
                        protocol.writable(ctx, peer, channel)
                    });
                    None
                }
                None => Some(event),
            },
            event => Some(event),
        }
    }

    /// The protocol that owns `channel` and runs with `peer`: the one a message or a
    /// `Writable` on that channel from that peer is for.
    fn owner(&self, channel: ChannelId, peer: &PeerId) -> Option<usize> {
        self.owners.get(&channel).copied().filter(|&index| {
            self.protocols
                .get(index)
                .is_some_and(|registered| find_peer(&registered.peers, peer).is_some())
        })
    }

    fn running(&self) -> bool {
        self.started && !self.stopped
    }

    /// Tells the protocols negotiated on `peer`'s connection, in registration order, until
    /// one refuses it.
    fn connect(&mut self, now: Instant, peer: PeerId, open: &[crate::ChannelInfo]) {
        for index in 0..self.protocols.len() {
            let version = self.protocols.get(index).and_then(|registered| {
                open.iter()
                    .find(|channel| {
                        channel.protocol == registered.spec.name
                            && registered.spec.has_channel(channel.id)
                    })
                    .map(|channel| channel.version)
            });
            let Some(version) = version else {
                continue;
            };
            if let Some(registered) = self.protocols.get_mut(index) {
                insert_peer(&mut registered.peers, peer, version);
            }
            let verdict = self.call(now, index, |protocol, ctx| {
                protocol.peer_connected(ctx, peer, version)
            });
            if let Some(Err(reason)) = verdict {
                // Refused: this protocol never had the peer; those before it hear of its
                // disconnection when the node reports it.
                if let Some(registered) = self.protocols.get_mut(index) {
                    remove_peer(&mut registered.peers, &peer);
                }
                self.node.disconnect(now, &peer, reason);
                return;
            }
        }
    }

    fn call<T>(
        &mut self,
        now: Instant,
        index: usize,
        f: impl FnOnce(&mut dyn Protocol, &mut Context<'_>) -> T,
    ) -> Option<T> {
        let registered = self.protocols.get_mut(index)?;
        let (protocol, mut ctx) = registered.split(now, &mut self.node, &mut self.emitted);
        Some(f(protocol, &mut ctx))
    }
}

/// The router as an adapter drives it: its node below, its protocols taking events and
/// adding their timers.
impl<R: CryptoRng> Stack for Router<R> {
    type Rng = R;

    fn node(&self) -> &Node<R> {
        &self.node
    }

    fn node_mut(&mut self) -> &mut Node<R> {
        &mut self.node
    }

    fn poll_event(&mut self, now: Instant) -> Option<NodeEvent> {
        Router::poll_event(self, now)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        Router::poll_timeout(self)
    }

    fn handle_timeout(&mut self, now: Instant) {
        Router::handle_timeout(self, now);
    }

    fn has_events(&self) -> bool {
        !self.emitted.is_empty() || self.node.has_events()
    }

    fn handle_reports(&mut self, now: Instant) {
        Router::handle_reports(self, now);
    }

    fn stop(&mut self, now: Instant) {
        Router::stop(self, now);
    }
}

fn find_peer(peers: &[(PeerId, u16)], peer: &PeerId) -> Option<usize> {
    peers.binary_search_by_key(peer, |(id, _)| *id).ok()
}

fn insert_peer(peers: &mut Vec<(PeerId, u16)>, peer: PeerId, version: u16) {
    match peers.binary_search_by_key(&peer, |(id, _)| *id) {
        Ok(at) => {
            if let Some(entry) = peers.get_mut(at) {
                entry.1 = version;
            }
        }
        Err(at) => peers.insert(at, (peer, version)),
    }
}

fn remove_peer(peers: &mut Vec<(PeerId, u16)>, peer: &PeerId) -> bool {
    match find_peer(peers, peer) {
        Some(at) => {
            peers.remove(at);
            true
        }
        None => false,
    }
}
