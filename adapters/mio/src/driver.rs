//! The embedded driver: a `Node` — alone or under a router — bound to mio sockets inside the
//! caller's own event loop (documented, with its loop, on [`Driver`]).

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io::{self, ErrorKind};
use std::net::SocketAddr;
use std::ops::Range;
use std::time::Duration;

use mio::event::Event;
use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use switchboard::addr_book::AddrBookDecodeError;
use switchboard::discovery::Discovery;
use switchboard::node::{
    Action, ConnId, Node, NodeConfig, NodeEvent, Output, ShutdownReport, Stack,
};
use switchboard::peer_set::{Limits, Refused};
use switchboard::router::{Context, Protocol, ProtocolId, RegisterError, Router};
use switchboard::{Instant, Keypair, NetAddress, NodeInfoError, PeerId};
use tracing::{debug, error, warn};

use crate::accept_pause::AcceptPause;
use crate::clock::Clock;
use crate::fd_limit;
use crate::listener;
use crate::socket::{ConnectOutcome, ReadOutcome, Socket, WriteOutcome};

/// Size of the reused read buffer: large reads amortise the syscall and the core's record
/// decoding takes any split.
const READ_BUFFER: usize = 256 * 1024;

/// Bytes one connection hands the node per turn: one read buffer. A turn is one visit in
/// the round robin over connections with bytes to read, so a peer that sends faster than
/// the node processes gets one turn per round, like every other connection, instead of
/// the loop (`PROTOCOL.md` §8.2). A full turn of legal records costs the node about 0.6 ms
/// (2.3 ns a byte measured by the `firehose` test, decrypting and delivering included);
/// bulk throughput is unchanged (`bulk_transfer`), a round costing one more `poll` with a
/// zero timeout.
const READ_BUDGET: usize = READ_BUFFER;

/// How long past a shutdown's timeout the driver waits for the GOAWAYs written at that
/// timeout before it drops the connections left.
const GOAWAY_GRACE: Duration = Duration::from_millis(100);

/// Bytes of one connection's records gathered into one write before it is made.
const COALESCED_WRITE: usize = 256 * 1024;

/// What a [`Driver`] is built from.
#[derive(Clone, Debug)]
pub struct DriverConfig {
    /// The node's configuration. Its connection caps may be lowered to fit the process's
    /// open-file limit (each driver alone: drivers sharing a process share the limit too);
    /// its `listen_addr` is filled from the first listener when unset.
    pub node: NodeConfig,
    /// The node's identity.
    pub keypair: Keypair,
    /// Addresses to listen on (IPv4 and IPv6 alike; port 0 picks a free port). May be empty
    /// for a node that only dials.
    pub listen: Vec<SocketAddr>,
    /// Tokens the driver may use: one per listener, then one per connection. The range
    /// bounds the connections open at once.
    pub tokens: Range<usize>,
    /// How long accepting pauses when the process runs out of file descriptors.
    pub accept_pause: Duration,
    /// Seeds the node's RNG (keys, jitter); `None` seeds it from the OS.
    pub rng_seed: Option<[u8; 32]>,
    /// An address book saved by [`Driver::address_book`] in an earlier run, loaded at
    /// start into the [`Discovery`] protocol registered on the driver's [`Router`] (the
    /// book is that protocol's). A corrupt one is set aside ([`Driver::address_book_error`])
    /// and discovery starts with an empty book; one given to a stack without `Discovery`
    /// is an error ([`DriverError::NoDiscovery`]): nothing would read or save it.
    pub address_book: Option<Vec<u8>>,
}

impl DriverConfig {
    /// A config with a 100 ms accept pause and an OS-seeded RNG.
    pub fn new(
        node: NodeConfig,
        keypair: Keypair,
        listen: Vec<SocketAddr>,
        tokens: Range<usize>,
    ) -> Self {
        DriverConfig {
            node,
            keypair,
            listen,
            tokens,
            accept_pause: Duration::from_millis(100),
            rng_seed: None,
            address_book: None,
        }
    }

    /// A config for a node with a fresh identity (a key drawn from the OS), listening on
    /// `listen`, under tokens `0..10_000`: what a program that keeps no key file and runs
    /// the node on a [`Runtime`](crate::Runtime) (or alone in its poll) needs.
    pub fn with_new_key(
        node: NodeConfig,
        listen: Vec<SocketAddr>,
    ) -> Result<Self, getrandom::Error> {
        let keypair = Keypair::generate(&mut crate::os_seeded_rng()?);
        Ok(DriverConfig::new(node, keypair, listen, 0..10_000))
    }
}

/// Why a [`Driver`] could not start.
#[derive(Debug)]
pub enum DriverError {
    /// The token range holds fewer tokens than listeners plus one connection.
    TokenRange {
        /// Tokens needed at least.
        needed: usize,
        /// Tokens given.
        given: usize,
    },
    /// A listener could not bind.
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// Registering with the poll (or cloning its registry) failed.
    Register(io::Error),
    /// No OS randomness to seed the node's RNG.
    Rng(getrandom::Error),
    /// The node's configuration does not encode into a `NodeInfo`.
    NodeInfo(NodeInfoError),
    /// Building the stack on top of the node failed ([`Driver::new_with_stack`]).
    Stack(Box<dyn std::error::Error + Send + Sync>),
    /// [`DriverConfig::address_book`] was given, but the stack is not a [`Router`] with
    /// [`Discovery`] registered: there is no book to load it into.
    NoDiscovery,
}

impl fmt::Display for DriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DriverError::TokenRange { needed, given } => {
                write!(
                    f,
                    "token range too small: {given} tokens, at least {needed} needed"
                )
            }
            DriverError::Bind { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
            DriverError::Register(source) => write!(f, "cannot register with mio: {source}"),
            DriverError::Rng(source) => write!(f, "no OS randomness: {source}"),
            DriverError::NodeInfo(source) => write!(f, "invalid node configuration: {source}"),
            DriverError::Stack(source) => write!(f, "cannot build the node's stack: {source}"),
            DriverError::NoDiscovery => f.write_str(
                "an address book was given, but no Discovery protocol is registered to hold it",
            ),
        }
    }
}

impl std::error::Error for DriverError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DriverError::Bind { source, .. } | DriverError::Register(source) => Some(source),
            DriverError::Rng(source) => Some(source),
            DriverError::NodeInfo(source) => Some(source),
            DriverError::Stack(source) => Some(&**source),
            DriverError::TokenRange { .. } | DriverError::NoDiscovery => None,
        }
    }
}

/// Counters of what the driver did, for monitoring and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DriverStats {
    /// Bytes written to sockets.
    pub bytes_written: u64,
    /// Bytes read from sockets.
    pub bytes_read: u64,
    /// Sockets accepted (before the node's admission checks).
    pub accepted: u64,
    /// Accepted sockets closed at once: refused by the node or no token left.
    pub refused: u64,
    /// Times accepting paused because file descriptors ran out.
    pub accept_pauses: u64,
    /// Writes the kernel took only partly (or not at all).
    pub blocked_writes: u64,
    /// Gathered writes handed to sockets (tail flushes not counted).
    pub writes: u64,
    /// Reads that returned bytes.
    pub reads: u64,
    /// Bytes held now for sockets that would block (a gauge, not a counter).
    pub buffered_bytes: usize,
}

/// The embedded driver: a [`Node`] bound to mio sockets inside the caller's own event loop.
///
/// The node may carry layers that take its events first: a [`Router`] and its protocols
/// ([`Driver::new_with_stack`]). The driver is generic over that [`Stack`]; the plain
/// `Driver` runs a bare node.
///
/// The caller owns the [`mio::Poll`]. The driver registers its listeners and connections
/// under a range of tokens it is given, so it can share one poll with the caller's other
/// sources (or other drivers). The loop has three calls, in this order, and nothing to get
/// wrong between them: the core decides what leaves the node and when
/// ([`Stack::poll_output`]); the driver carries it out.
///
/// ```no_run
/// use std::time::Duration;
/// use mio::{Events, Poll};
/// use switchboard::node::{NodeConfig, NodeEvent};
/// use switchboard::{ChannelConfig, Keypair};
/// use switchboard_mio::{Driver, DriverConfig, NodeApi};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut poll = Poll::new()?;
/// let mut node = NodeConfig::new("mainnet", "my-app/1.0");
/// node.add_channel("chat", 1, ChannelConfig::new(1));
/// let keypair = Keypair::generate(&mut switchboard_mio::os_seeded_rng()?);
/// let config = DriverConfig::new(node, keypair, vec!["127.0.0.1:26656".parse()?], 0..10_000);
/// let mut driver = Driver::new(poll.registry(), config)?;
/// let mut events = Events::with_capacity(1024);
/// let mut echoed = 0;
/// loop {
///     // 1. Sleep until a socket is ready or the node's next deadline (zero: work waits).
///     poll.poll(&mut events, driver.poll_timeout())?;
///     // 2. Hand the driver its sockets' readiness.
///     for event in events.iter() {
///         if driver.owns(event.token()) {
///             driver.handle_event(event);
///         }
///     }
///     // 3. Take the events; everything else due is carried out on the way.
///     while let Some(event) = driver.poll_event() {
///         if let NodeEvent::Message { peer, message, .. } = event {
///             let _ = driver.send(&peer, 1, message); // echo; `Full`: wait for `Writable`
///             echoed += 1;
///             if echoed == 100 {
///                 // Flush what was sent (confirmed by the peers) for at most 5 s, then
///                 // GOAWAY(Quitting); the same loop runs until it is over.
///                 driver.shutdown(Duration::from_secs(5));
///             }
///         }
///     }
///     if driver.is_idle() {
///         break;
///     }
/// }
/// let report = driver.take_shutdown_report().ok_or("not shut down")?;
/// println!("{} confirmed, {} handed back", report.confirmed(), report.returned());
/// # Ok(())
/// # }
/// ```
pub struct Driver<S = Node<ChaCha20Rng>> {
    stack: S,
    clock: Clock,
    registry: Registry,
    tokens: Range<usize>,
    listeners: Vec<TcpListener>,
    /// Tokens reserved for listeners at the start of the range (kept after shutdown closes
    /// the listeners, so connection tokens keep their meaning).
    listener_tokens: usize,
    local_addrs: Vec<SocketAddr>,
    /// Connection of each connection token, indexed from the first connection token.
    slots: Vec<Option<ConnId>>,
    free_slots: Vec<usize>,
    sockets: HashMap<ConnId, Socket>,
    accept_pause: AcceptPause,
    read_buffer: Box<[u8]>,
    /// Connections whose last turn stopped at [`READ_BUDGET`] with bytes possibly left, in
    /// the order of their next turn (each socket's `unread` says it is here). mio is
    /// edge-triggered: no event will come again for those bytes, so the driver serves them
    /// itself, one turn each per round, and the loop does not sleep meanwhile.
    backlog: VecDeque<ConnId>,
    /// Rounds of the backlog begun so far. A socket read on its readiness event has had its
    /// turn of the next round (its `turn`), so a round never gives it two.
    round: u64,
    /// Whether the application is taking a round's events ([`Driver::poll_event`] has
    /// returned one and not yet `None`): the backlog's round is served when a new one
    /// starts.
    draining: bool,
    out: Vec<u8>,
    stats: DriverStats,
    limits: Limits,
    /// An event the output loop produced while the driver was handling a socket or a
    /// call: the next [`Driver::poll_event`] returns it first.
    held: Option<NodeEvent>,
    /// The stack's deadline, from its last [`Output::Timeout`].
    deadline: Option<Instant>,
    /// When a shutdown closes the peers still flushing, and gives up.
    shutdown_deadline: Option<Instant>,
    address_book_error: Option<AddrBookDecodeError>,
    #[cfg(feature = "fault-injection")]
    fault: DeliveryFault,
}

/// The stack as the router the adapter builds, if it is one: where [`Discovery`] is looked
/// for. A custom stack wrapping a router holds its book itself.
fn as_router<S: Any>(stack: &S) -> Option<&Router<ChaCha20Rng>> {
    (stack as &dyn Any).downcast_ref::<Router<ChaCha20Rng>>()
}

/// [`as_router`], to act on it.
fn as_router_mut<S: Any>(stack: &mut S) -> Option<&mut Router<ChaCha20Rng>> {
    (stack as &mut dyn Any).downcast_mut::<Router<ChaCha20Rng>>()
}

/// Test only: the broken build of [`Driver::drop_nth_message`].
#[cfg(feature = "fault-injection")]
#[derive(Default)]
struct DeliveryFault {
    /// Messages still to hand over before the one dropped; `None`: off, or done.
    countdown: Option<u64>,
    dropped: Option<NodeEvent>,
}

impl Driver {
    /// Binds the listeners, registers them under the first tokens of the range, and starts
    /// the node (whose persistent peers are dialed at once).
    pub fn new(registry: &Registry, config: DriverConfig) -> Result<Self, DriverError> {
        Driver::new_with_stack(registry, config, |node, _| Ok::<_, DriverError>(node))
    }
}

impl Driver<Router<ChaCha20Rng>> {
    /// As [`Driver::new`], with a [`Router`] on the node: `register` registers its
    /// protocols (whose specs the config must offer), then the router starts. The common
    /// case of [`Driver::new_with_stack`]; a registration error is [`DriverError::Stack`].
    pub fn with_router(
        registry: &Registry,
        config: DriverConfig,
        register: impl FnOnce(&mut Router<ChaCha20Rng>) -> Result<(), RegisterError>,
    ) -> Result<Self, DriverError> {
        Driver::new_with_stack(registry, config, |node, now| {
            Router::with_protocols(node, now, register)
        })
    }

    /// The protocol registered as `id`.
    pub fn protocol<P: Protocol>(&self, id: ProtocolId<P>) -> Option<&P> {
        self.stack.protocol(id)
    }

    /// Calls `f` with the protocol registered as `id` and its [`Context`] (to publish,
    /// query, send …), then writes what it queued.
    pub fn with_protocol<P: Protocol, T>(
        &mut self,
        id: ProtocolId<P>,
        f: impl FnOnce(&mut P, &mut Context<'_>) -> T,
    ) -> Option<T> {
        self.with_stack(|router, now| router.with_protocol(now, id, f))
    }
}

impl<S: Stack<Rng = ChaCha20Rng> + 'static> Driver<S> {
    /// As [`Driver::new`], with layers on top of the node: `build` receives the node and the
    /// current time and returns the stack the driver runs — typically a [`Router`] with its
    /// protocols registered and started:
    ///
    /// ```no_run
    /// # use std::net::SocketAddr;
    /// # use bytes::Bytes;
    /// # use mio::Poll;
    /// # use switchboard::node::NodeConfig;
    /// # use switchboard::Keypair;
    /// use switchboard::gossip::{Gossip, GossipConfig};
    /// use switchboard::router::{Protocol, Router};
    /// use switchboard_mio::{Driver, DriverConfig};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let poll = Poll::new()?;
    /// let gossip = Gossip::new(GossipConfig::default());
    /// let node = NodeConfig::new("mainnet", "my-app/1.0"); // registering offers gossip
    /// # let keypair = Keypair::generate(&mut switchboard_mio::os_seeded_rng()?);
    /// # let listen: SocketAddr = "127.0.0.1:0".parse()?;
    /// let config = DriverConfig::new(node, keypair, vec![listen], 0..1_000);
    /// let mut driver = Driver::new_with_stack(poll.registry(), config, |node, now| {
    ///     let mut router = Router::new(node);
    ///     router.register(gossip)?;
    ///     router.start(now);
    ///     Ok::<_, switchboard::router::RegisterError>(router)
    /// })?;
    /// let id = driver.stack().id_of::<Gossip>().ok_or("not registered")?;
    /// driver.with_protocol(id, |gossip, ctx| gossip.publish(ctx, Bytes::from("hello")));
    /// // Run the loop of the type's documentation: the router's protocols see every event
    /// // first, and their timers fire through `handle_timeout`.
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// An error of `build` is returned as [`DriverError::Stack`].
    pub fn new_with_stack<E>(
        registry: &Registry,
        config: DriverConfig,
        build: impl FnOnce(Node<ChaCha20Rng>, Instant) -> Result<S, E>,
    ) -> Result<Self, DriverError>
    where
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let DriverConfig {
            mut node,
            keypair,
            listen,
            tokens,
            accept_pause,
            rng_seed,
            address_book,
        } = config;
        let needed = listen.len() + 1;
        if tokens.len() < needed {
            return Err(DriverError::TokenRange {
                needed,
                given: tokens.len(),
            });
        }
        let registry = registry.try_clone().map_err(DriverError::Register)?;
        let mut listeners = Vec::with_capacity(listen.len());
        let mut local_addrs = Vec::with_capacity(listen.len());
        for (index, addr) in listen.into_iter().enumerate() {
            let mut listener =
                listener::bind(addr).map_err(|source| DriverError::Bind { addr, source })?;
            let local = listener
                .local_addr()
                .map_err(|source| DriverError::Bind { addr, source })?;
            registry
                .register(
                    &mut listener,
                    Token(tokens.start + index),
                    Interest::READABLE,
                )
                .map_err(DriverError::Register)?;
            listeners.push(listener);
            local_addrs.push(local);
        }
        if node.listen_addr.is_none() {
            node.listen_addr = local_addrs.first().copied();
        }
        if let Some((soft, _)) = fd_limit::nofile_limit() {
            fd_limit::clamp_limits(&mut node.limits, node.dial.max_in_flight, soft);
        }
        let seed = match rng_seed {
            Some(seed) => seed,
            None => {
                let mut seed = [0u8; 32];
                getrandom::fill(&mut seed).map_err(DriverError::Rng)?;
                seed
            }
        };
        let limits = node.limits;
        let clock = Clock::new();
        let node = Node::new(clock.now(), node, keypair, ChaCha20Rng::from_seed(seed))
            .map_err(DriverError::NodeInfo)?;
        let mut stack =
            build(node, clock.now()).map_err(|error| DriverError::Stack(error.into()))?;
        let address_book_error = match address_book {
            Some(bytes) => {
                let now = clock.now();
                let router = as_router_mut(&mut stack).ok_or(DriverError::NoDiscovery)?;
                let id = router
                    .id_of::<Discovery>()
                    .ok_or(DriverError::NoDiscovery)?;
                router
                    .with_protocol(now, id, |discovery, _| {
                        discovery.load_addr_book(now, &bytes)
                    })
                    .and_then(Result::err)
            }
            None => None,
        };
        let mut driver = Driver {
            stack,
            clock,
            registry,
            tokens,
            listener_tokens: listeners.len(),
            listeners,
            local_addrs,
            slots: Vec::new(),
            free_slots: Vec::new(),
            sockets: HashMap::new(),
            accept_pause: AcceptPause::new(accept_pause),
            read_buffer: vec![0; READ_BUFFER].into_boxed_slice(),
            backlog: VecDeque::new(),
            round: 0,
            draining: false,
            out: Vec::new(),
            stats: DriverStats::default(),
            limits,
            held: None,
            deadline: None,
            shutdown_deadline: None,
            address_book_error,
            #[cfg(feature = "fault-injection")]
            fault: DeliveryFault::default(),
        };
        driver.drive_held();
        Ok(driver)
    }

    // ----- getters -----

    /// The [`Discovery`] protocol registered on the driver's [`Router`] — where the address
    /// book lives ([`Discovery::addr_book`]); `None` for a stack without one. To act
    /// through it (`add_address`, …), use [`Driver::with_protocol`] with
    /// `driver.stack().id_of::<Discovery>()`.
    pub fn discovery(&self) -> Option<&Discovery> {
        let router = as_router(&self.stack)?;
        router.protocol(router.id_of::<Discovery>()?)
    }

    /// The address book of the registered [`Discovery`] as bytes, to save for the next run
    /// ([`DriverConfig::address_book`]); `None` without `Discovery`.
    ///
    /// The book is the protocol's; the driver carries it across restarts. Load what the
    /// last run saved, register `Discovery`, save now and then and at the end:
    ///
    /// ```no_run
    /// use mio::Poll;
    /// use switchboard::discovery::{Discovery, DiscoveryConfig};
    /// use switchboard::node::NodeConfig;
    /// use switchboard_mio::{DataDir, Driver, DriverConfig, key_file};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let data = DataDir::open("/var/lib/my-app")?;
    /// let keypair = key_file::load(&data.key_path())?;
    /// let node = NodeConfig::new("mainnet", "my-app/1.0");
    /// let mut config = DriverConfig::new(node, keypair, vec!["0.0.0.0:26656".parse()?], 0..10_000);
    /// config.address_book = data.load_address_book()?; // `None` on a first start
    /// let mut discovery = DiscoveryConfig::default();
    /// discovery.seeds = vec![/* "ID@HOST:PORT".parse()? */];
    /// let poll = Poll::new()?;
    /// let driver = Driver::with_router(poll.registry(), config, |router| {
    ///     let discovery = Discovery::new(discovery, router.node_mut().rng());
    ///     router.register(discovery).map(drop)
    /// })?;
    /// if let Some(error) = driver.address_book_error() {
    ///     eprintln!("address book set aside: {error}"); // the node starts with an empty one
    /// }
    /// // … the loop of the type's documentation; every minute or so, and after it ends:
    /// if let Some(book) = driver.address_book() {
    ///     data.save_address_book(&book)?; // atomic: the old file or the new one
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// A [`Runtime`](crate::Runtime) is the same: the config's `address_book`,
    /// [`Runtime::start_with_router`](crate::Runtime::start_with_router) registering
    /// `Discovery`, and [`Handle::address_book`](crate::Handle::address_book).
    pub fn address_book(&self) -> Option<Vec<u8>> {
        Some(self.discovery()?.addr_book_bytes(self.clock.now()))
    }

    /// Why the address book given at start was not loaded, if it was not.
    pub fn address_book_error(&self) -> Option<&AddrBookDecodeError> {
        self.address_book_error.as_ref()
    }

    /// The node, for its getters (`peers`, `peer_info`, `node_info`, …).
    pub fn node(&self) -> &Node<ChaCha20Rng> {
        self.stack.node()
    }

    /// The stack the driver runs: the node itself, or what [`Driver::new_with_stack`] built.
    pub fn stack(&self) -> &S {
        &self.stack
    }

    /// Calls `f` with the stack and the current time (acting through a protocol, …), then
    /// writes what it queued.
    pub fn with_stack<T>(&mut self, f: impl FnOnce(&mut S, Instant) -> T) -> T {
        let now = self.clock.now();
        let result = f(&mut self.stack, now);
        self.flush(now);
        result
    }

    /// Calls `f` with the node and the current time, then writes what it queued: every
    /// application call of the node (`send`, `dial`, `ban_peer`, …) is reached this way, or
    /// through [`NodeApi`]'s shorthands. Events it caused wait for [`Driver::poll_event`].
    ///
    /// [`NodeApi`]: crate::NodeApi
    pub fn with_node<T>(&mut self, f: impl FnOnce(&mut Node<ChaCha20Rng>, Instant) -> T) -> T {
        let now = self.clock.now();
        let result = f(self.stack.node_mut(), now);
        self.flush(now);
        result
    }

    /// Calls `f` with the node, the registered [`Discovery`] and the current time, for a
    /// look that changes nothing ([`NodeApi::inspect`](crate::NodeApi::inspect)).
    pub fn inspect<T>(
        &self,
        f: impl FnOnce(&Node<ChaCha20Rng>, Option<&Discovery>, Instant) -> T,
    ) -> T {
        f(self.stack.node(), self.discovery(), self.clock.now())
    }

    /// This node's identity.
    pub fn peer_id(&self) -> PeerId {
        self.stack.node().peer_id()
    }

    /// The addresses the listeners are bound to (ports resolved).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// The address other nodes dial to reach this one: its identity at its first listener.
    pub fn net_address(&self) -> Option<NetAddress> {
        let addr = *self.local_addrs.first()?;
        Some(NetAddress::new(Some(self.peer_id()), addr))
    }

    /// The connection limits in force, after fitting them under the open-file limit.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// What the driver did so far.
    pub fn stats(&self) -> DriverStats {
        DriverStats {
            buffered_bytes: self.buffered_bytes(),
            ..self.stats
        }
    }

    /// Sockets open (connections, not listeners).
    pub fn socket_count(&self) -> usize {
        self.sockets.len()
    }

    /// Bytes held for sockets that would block: at most one coalesced write each.
    pub fn buffered_bytes(&self) -> usize {
        self.sockets.values().map(Socket::tail_len).sum()
    }

    /// Whether accepting is paused after file descriptors ran out.
    pub fn accept_paused(&self) -> bool {
        self.accept_pause.is_paused()
    }

    /// Whether `token` is one of this driver's.
    pub fn owns(&self, token: Token) -> bool {
        self.tokens.contains(&token.0)
    }

    // ----- handle_* -----

    /// Handles a readiness event for one of this driver's tokens (others are ignored).
    pub fn handle_event(&mut self, event: &Event) {
        let now = self.clock.now();
        let Some(index) = token_index(&self.tokens, event.token()) else {
            return;
        };
        if index < self.listener_tokens {
            self.accept(now, index);
        } else if let Some(conn) = self
            .slots
            .get(index - self.listener_tokens)
            .copied()
            .flatten()
        {
            self.socket_event(now, conn, event);
        }
    }

    /// Starts a clean shutdown: stops listening and shuts the node down
    /// ([`Node::shutdown`]): no dial or accepted socket from now on, handshakes closed, and
    /// each peer flushed — kept until every message sent to it is confirmed, for at most
    /// `timeout` — then closed with `Quitting`. Keep driving the loop until
    /// [`Driver::is_idle`]; then [`Driver::take_shutdown_report`] accounts for every
    /// message `send` accepted, and `driver.with_stack(|stack, now| stack.stop(now))`
    /// runs a router's protocols' `stopped` hooks ([`Stack::stop`]), as the standalone
    /// runtime does. A router keeps running meanwhile, so its protocols hear of every
    /// disconnection.
    pub fn shutdown(&mut self, timeout: Duration) {
        for mut listener in self.listeners.drain(..) {
            let _ = self.registry.deregister(&mut listener);
        }
        let now = self.clock.now();
        if self.shutdown_deadline.is_none() {
            // A little past the node's own flush deadline: the GOAWAYs it writes then get
            // their round, and their sockets the polite close.
            self.shutdown_deadline = Some(now.saturating_add(timeout).saturating_add(GOAWAY_GRACE));
        }
        self.stack.node_mut().shutdown(now, timeout);
        self.flush(now);
    }

    /// Whether no connection is left (peer, handshake or dial) and every event has been
    /// taken: after [`Driver::shutdown`], every peer has been told and its socket closed,
    /// and a router's protocols have heard of each disconnection. Past the shutdown's
    /// timeout a connection whose GOAWAY the kernel never took is dropped, so a shutdown
    /// driven by the usual loop becomes idle at most one `close_timeout` after it.
    pub fn is_idle(&self) -> bool {
        self.stack.node().connection_count() == 0 && !self.stack.has_events() && self.held.is_none()
    }

    /// What the shutdown handed back, peer by peer, once [`Driver::is_idle`]
    /// ([`Node::take_shutdown_report`]). These are the accounts the `PeerDisconnected`
    /// events taken during the shutdown carry, gathered: an application that requeues what
    /// those events hand back uses one or the other, not both.
    pub fn take_shutdown_report(&mut self) -> Option<ShutdownReport> {
        self.stack.node_mut().take_shutdown_report()
    }

    // ----- poll_* -----

    /// The next event for the application; `None` when nothing more is due. Everything
    /// else the stack has — socket actions, bytes to write, timers due, the end of an accept
    /// pause, the next turn of each connection that had more to read than one turn takes —
    /// is carried out on the way: call it until `None` after every wake-up.
    /// Messages leave their connection only here, which returns credit to the sender.
    pub fn poll_event(&mut self) -> Option<NodeEvent> {
        let event = self.next_event()?;
        #[cfg(feature = "fault-injection")]
        if self.fault_drops(&event) {
            // Once: the next event is handed over.
            self.fault.dropped = Some(event);
            return self.next_event();
        }
        Some(event)
    }

    /// The next event, the backlog's turns and the stack's work carried out on the way.
    fn next_event(&mut self) -> Option<NodeEvent> {
        if let Some(event) = self.held.take() {
            self.draining = true;
            return Some(event);
        }
        let now = self.clock.now();
        if !self.draining {
            // A new round: the connections left with bytes to read take their turns.
            self.serve_backlog(now);
        }
        self.resume_accepting(now);
        let event = self.drive(now);
        self.draining = event.is_some();
        event
    }

    /// Test only — a deliberately broken driver: the `nth` `Message` event from now on
    /// (1 is the next) is dropped instead of handed to the application, while its credit
    /// goes to the sender as for any message taken, so the sender holds it delivered. What
    /// the real-process harness must catch; [`Driver::dropped_message`] says which it was.
    #[cfg(feature = "fault-injection")]
    #[doc(hidden)]
    pub fn drop_nth_message(&mut self, nth: u64) {
        self.fault.countdown = nth.checked_sub(1);
    }

    /// Test only: the event [`Driver::drop_nth_message`] dropped, once it did.
    #[cfg(feature = "fault-injection")]
    #[doc(hidden)]
    pub fn dropped_message(&self) -> Option<&NodeEvent> {
        self.fault.dropped.as_ref()
    }

    #[cfg(feature = "fault-injection")]
    fn fault_drops(&mut self, event: &NodeEvent) -> bool {
        if !matches!(event, NodeEvent::Message { .. }) {
            return false;
        }
        match self.fault.countdown {
            Some(0) => {
                self.fault.countdown = None;
                true
            }
            Some(left) => {
                self.fault.countdown = Some(left - 1);
                false
            }
            None => false,
        }
    }

    /// How long the caller's `poll` may sleep: zero while an event waits to be taken or a
    /// connection has bytes left to read, else until the stack's next deadline (`None`:
    /// until a socket or waker event). Carries out whatever is due first, so a loop never
    /// sleeps with work to do.
    pub fn poll_timeout(&mut self) -> Option<Duration> {
        if self.held.is_none() {
            let now = self.clock.now();
            // Reads go on whether or not the application takes events (a paused one
            // included): keepalive and handshakes are served by them.
            self.serve_backlog(now);
            self.held = self.drive(now);
        }
        if self.held.is_some() || !self.backlog.is_empty() {
            return Some(Duration::ZERO);
        }
        let now = self.clock.now();
        [
            self.deadline,
            self.accept_pause.deadline(),
            self.shutdown_deadline,
        ]
        .into_iter()
        .flatten()
        .min()
        .map(|deadline| Clock::until(now, deadline))
    }

    // ----- internals -----

    fn accept(&mut self, now: Instant, index: usize) {
        if self.accept_pause.is_paused() {
            return;
        }
        loop {
            let Some(listener) = self.listeners.get(index) else {
                return;
            };
            match listener.accept() {
                Ok((stream, remote)) => {
                    self.stats.accepted += 1;
                    self.admit(now, stream, remote);
                }
                Err(error) if error.kind() == ErrorKind::WouldBlock => return,
                Err(error) if is_transient_accept_error(&error) => {}
                Err(error) if is_fd_exhaustion(&error) => {
                    warn!(%error, "out of file descriptors: accepting paused");
                    self.accept_pause.pause(now);
                    self.stats.accept_pauses += 1;
                    return;
                }
                // Anything else: try again on the listener's next event, never spin.
                Err(error) => {
                    if let Some(listener) = self.local_addrs.get(index) {
                        warn!(%listener, %error, "accept failed");
                    }
                    return;
                }
            }
        }
    }

    fn admit(&mut self, now: Instant, stream: TcpStream, remote: SocketAddr) {
        if self.free_slots.is_empty()
            && self.first_conn_token() + self.slots.len() >= self.tokens.end
        {
            self.stats.refused += 1;
            warn!(%remote, "accepted socket closed: every token of the driver's range is in use");
            return;
        }
        match self.stack.node_mut().handle_accepted(now, remote) {
            Ok(conn) => {
                if let Err(error) = self.register(conn, stream, false) {
                    warn!(%remote, %error, "accepted socket closed: cannot register it");
                    self.stack.node_mut().handle_closed(now, conn);
                }
            }
            Err(refused @ Refused::Internal) => {
                self.stats.refused += 1;
                error!(%remote, reason = %refused, "accepted socket refused");
            }
            // The node's policies at work (per-IP limits, bans, …): routine under load or
            // attack, so below the default level.
            Err(refused) => {
                self.stats.refused += 1;
                debug!(%remote, reason = %refused, "accepted socket refused");
            }
        }
    }

    fn first_conn_token(&self) -> usize {
        self.tokens.start + self.listener_tokens
    }

    /// Registers `stream` for `conn` under a free token.
    fn register(
        &mut self,
        conn: ConnId,
        mut stream: TcpStream,
        connecting: bool,
    ) -> io::Result<()> {
        let slot = match self.free_slots.pop() {
            Some(slot) => slot,
            None if self.first_conn_token() + self.slots.len() < self.tokens.end => {
                self.slots.push(None);
                self.slots.len() - 1
            }
            None => return Err(io::Error::other("token range exhausted")),
        };
        let token = Token(self.first_conn_token() + slot);
        if let Err(error) =
            self.registry
                .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
        {
            self.free_slots.push(slot);
            return Err(error);
        }
        self.slots[slot] = Some(conn);
        self.sockets
            .insert(conn, Socket::new(stream, token, connecting));
        Ok(())
    }

    /// Forgets `conn`'s socket; `polite` closes it with FIN after writing what it can.
    fn drop_socket(&mut self, conn: ConnId, polite: bool) {
        let Some(mut socket) = self.sockets.remove(&conn) else {
            return;
        };
        let _ = self.registry.deregister(&mut socket.stream);
        if let Some(slot) = socket.token.0.checked_sub(self.first_conn_token())
            && let Some(entry) = self.slots.get_mut(slot)
        {
            *entry = None;
            self.free_slots.push(slot);
        }
        if polite {
            socket.close(&mut self.read_buffer, READ_BUDGET);
        }
    }

    /// The socket failed or closed: tell the node, drop the socket.
    fn fail(&mut self, now: Instant, conn: ConnId) {
        self.drop_socket(conn, false);
        self.stack.node_mut().handle_closed(now, conn);
    }

    /// A write to `conn` failed. A peer that closed on us usually said why first: its
    /// GOAWAY can sit unread in the receive buffer while the reset our writes provoked
    /// fails the write. The node reads what is still there before it hears of the failure,
    /// so it reports the peer's reason, not a bare network error.
    fn fail_writing(&mut self, now: Instant, conn: ConnId) {
        let _ = self.read(now, conn);
        self.fail(now, conn);
    }

    /// Hands the node one turn of what `conn`'s socket holds, up to [`READ_BUDGET`]
    /// bytes; a socket left with bytes joins the backlog for its next turn. `None` if it
    /// has no socket.
    fn read(&mut self, now: Instant, conn: ConnId) -> Option<ReadOutcome> {
        let socket = self.sockets.get_mut(&conn)?;
        let node = self.stack.node_mut();
        let stats = &mut self.stats;
        let outcome = socket.read_some(&mut self.read_buffer, READ_BUDGET, |bytes| {
            stats.bytes_read += bytes.len() as u64;
            stats.reads += 1;
            node.handle_input(now, conn, bytes);
        });
        if matches!(outcome, ReadOutcome::Budget) && !socket.unread {
            socket.unread = true;
            self.backlog.push_back(conn);
        }
        Some(outcome)
    }

    /// One round of the backlog: each connection in it when the round starts gets one
    /// turn, in order (one that had it on a readiness event since waits for the next
    /// round); those still not drained go to the back. What a turn produced is written
    /// between turns, so answers (a PONG, a handshake message) leave at once.
    fn serve_backlog(&mut self, now: Instant) {
        self.round += 1;
        for _ in 0..self.backlog.len() {
            let Some(conn) = self.backlog.pop_front() else {
                return;
            };
            let Some(socket) = self.sockets.get_mut(&conn) else {
                // Closed since it joined.
                continue;
            };
            if socket.turn == self.round {
                self.backlog.push_back(conn);
                continue;
            }
            socket.unread = false;
            socket.turn = self.round;
            match self.read(now, conn) {
                Some(ReadOutcome::Eof | ReadOutcome::Failed) => self.fail(now, conn),
                Some(ReadOutcome::Drained | ReadOutcome::Budget) | None => {}
            }
            self.flush(now);
        }
    }

    fn socket_event(&mut self, now: Instant, conn: ConnId, event: &Event) {
        let Some(socket) = self.sockets.get_mut(&conn) else {
            return;
        };
        if socket.connecting {
            match socket.check_connect() {
                ConnectOutcome::Pending => return,
                ConnectOutcome::Connected => self.stack.node_mut().handle_connected(now, conn),
                ConnectOutcome::Failed(error) => {
                    self.drop_socket(conn, false);
                    let error = error.to_string();
                    return self
                        .stack
                        .node_mut()
                        .handle_connect_failed(now, conn, &error);
                }
            }
        }
        let Some(socket) = self.sockets.get_mut(&conn) else {
            return;
        };
        // A socket in the backlog is read in its turn there, not again out of turn; any
        // other has its turn now, which counts as its turn of the next round.
        if (event.is_readable() || event.is_read_closed() || event.is_error()) && !socket.unread {
            socket.turn = self.round + 1;
            match self.read(now, conn) {
                None => return,
                Some(ReadOutcome::Drained | ReadOutcome::Budget) => {}
                Some(ReadOutcome::Eof | ReadOutcome::Failed) => return self.fail(now, conn),
            }
        }
        let Some(socket) = self.sockets.get_mut(&conn) else {
            return;
        };
        if event.is_writable() && socket.has_tail() {
            let before = socket.tail_len();
            let outcome = socket.flush_tail();
            self.stats.bytes_written += (before - socket.tail_len()) as u64;
            match outcome {
                WriteOutcome::Done => self.stack.node_mut().handle_writable(now, conn),
                WriteOutcome::Blocked => {}
                WriteOutcome::Failed => self.fail_writing(now, conn),
            }
        }
    }

    /// Runs the stack's output loop ([`Stack::poll_output`]) until an event for the
    /// application (returned) or the end of the round (`None`, its deadline kept): actions
    /// carried out, bytes written.
    ///
    /// Records for one connection are gathered into one write of up to `COALESCED_WRITE`
    /// bytes: a loopback TCP sender spends about twice the CPU per byte on 64 KiB writes as
    /// on 256 KiB ones (the kernel's per-write work, and the receiver woken per write).
    fn drive(&mut self, now: Instant) -> Option<NodeEvent> {
        let mut pending: Option<ConnId> = None;
        loop {
            let mark = self.out.len();
            let output = self.stack.poll_output(now, &mut self.out);
            if let Output::Transmit(conn) = output {
                if let Some(current) = pending.filter(|current| *current != conn) {
                    // Another connection's record: write what came before it.
                    self.write(now, current, mark);
                    self.out.drain(..mark);
                }
                pending = Some(conn);
                if self.out.len() >= COALESCED_WRITE {
                    self.write(now, conn, self.out.len());
                    self.out.clear();
                    pending = None;
                }
                continue;
            }
            if let Some(conn) = pending.take() {
                self.write(now, conn, self.out.len());
                self.out.clear();
            }
            match output {
                Output::Event(event) => return Some(event),
                Output::Action(action) => self.act(now, action),
                Output::Timeout(_) if self.end_shutdown_if_due(now) => {}
                Output::Timeout(deadline) => {
                    self.deadline = deadline;
                    return None;
                }
                Output::Transmit(_) => {}
            }
        }
    }

    /// The output loop run where no event can be handed out (building the driver): any
    /// event it makes waits for the next [`Driver::poll_event`].
    fn drive_held(&mut self) {
        if self.held.is_none() {
            let now = self.clock.now();
            self.held = self.drive(now);
        }
    }

    /// The output loop with events left where they are: what an application call queued is
    /// written at once, as a program that sends and then stops driving expects, whatever
    /// events wait.
    fn flush(&mut self, now: Instant) {
        let node = self.stack.node_mut();
        let paused = node.events_paused();
        node.pause_events(true);
        let _ = self.drive(now);
        self.stack.node_mut().pause_events(paused);
    }

    /// Past a shutdown's timeout and its grace — the node's own flush deadline has closed
    /// and told every peer by then — the connections left (a GOAWAY the kernel would not
    /// take) are dropped as failed sockets, so the shutdown ends on time. Whether it did.
    fn end_shutdown_if_due(&mut self, now: Instant) -> bool {
        if self.shutdown_deadline.is_none_or(|deadline| deadline > now) {
            return false;
        }
        self.shutdown_deadline = None;
        let conns: Vec<ConnId> = self.sockets.keys().copied().collect();
        for conn in conns {
            self.fail(now, conn);
        }
        true
    }

    /// Accepting resumes once its pause is over.
    fn resume_accepting(&mut self, now: Instant) {
        if self.accept_pause.resume_if_due(now) {
            for index in 0..self.listeners.len() {
                self.accept(now, index);
            }
        }
    }

    /// Writes the first `len` bytes of the output buffer to `conn`'s socket.
    fn write(&mut self, now: Instant, conn: ConnId, len: usize) {
        let Some(socket) = self.sockets.get_mut(&conn) else {
            // The socket failed already; the node knows.
            return;
        };
        let bytes = &self.out[..len];
        self.stats.writes += 1;
        let before = socket.tail_len();
        let outcome = socket.write(bytes);
        let written = (before + bytes.len()).saturating_sub(socket.tail_len());
        self.stats.bytes_written += written as u64;
        match outcome {
            WriteOutcome::Done => {}
            WriteOutcome::Blocked => {
                self.stats.blocked_writes += 1;
                self.stack.node_mut().handle_write_blocked(now, conn);
            }
            WriteOutcome::Failed => self.fail_writing(now, conn),
        }
    }

    fn act(&mut self, now: Instant, action: Action) {
        match action {
            Action::Dial { conn, addr } => {
                let registered =
                    TcpStream::connect(addr).and_then(|stream| self.register(conn, stream, true));
                if let Err(error) = registered {
                    let error = error.to_string();
                    self.stack
                        .node_mut()
                        .handle_connect_failed(now, conn, &error);
                }
            }
            Action::Close { conn } => self.drop_socket(conn, true),
        }
    }
}

/// `token`'s offset in `range`.
fn token_index(range: &Range<usize>, token: Token) -> Option<usize> {
    range.contains(&token.0).then(|| token.0 - range.start)
}

/// Errors of `accept` that concern one connection, not the listener: skip and go on.
fn is_transient_accept_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        ErrorKind::Interrupted | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    )
}

/// Out of file descriptors (or kernel memory for sockets): accepting must pause.
fn is_fd_exhaustion(error: &io::Error) -> bool {
    #[cfg(unix)]
    {
        matches!(
            error.raw_os_error(),
            Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
        )
    }
    #[cfg(not(unix))]
    {
        let _ = error;
        false
    }
}
