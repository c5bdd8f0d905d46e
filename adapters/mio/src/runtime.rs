//! The standalone runtime: a [`Driver`] on its own thread, commanded through a [`Handle`].
//!
//! Commands reach the loop over a channel and a [`mio::Waker`]. Events come back over a
//! *bounded* channel: when the application stops taking them, the loop stops taking
//! messages from the node, which stops granting credit, and the peers' `send`s return
//! `Full`. Flow control still reaches end to end, through the thread boundary.
//!
//! ```no_run
//! use std::time::Duration;
//! use switchboard::node::{NodeConfig, NodeEvent};
//! use switchboard::{ChannelConfig, Keypair};
//! use switchboard_mio::{DriverConfig, NodeApi, Runtime};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut node = NodeConfig::new("mainnet", "my-app/1.0");
//! node.add_channel("chat", 1, ChannelConfig::new(1));
//! let keypair = Keypair::generate(&mut switchboard_mio::os_seeded_rng()?);
//! let config = DriverConfig::new(node, keypair, vec!["127.0.0.1:0".parse()?], 0..10_000);
//! let handle = Runtime::spawn(config)?;
//! handle.dial("127.0.0.1:26656".parse()?)?;
//! while let Ok(event) = handle.events().recv() {
//!     if let NodeEvent::PeerConnected { peer, .. } = event {
//!         handle.send(&peer, 1, "hello".into())?;
//!         break;
//!     }
//! }
//! // Flushed (confirmed by the peer) or handed back within 5 s, then GOAWAY(Quitting).
//! let report = handle.shutdown(Duration::from_secs(5));
//! assert_eq!(report.returned(), 0);
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvError, RecvTimeoutError, SyncSender, TryRecvError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use mio::{Events as MioEvents, Poll, Token, Waker};
use rand_chacha::ChaCha20Rng;
use switchboard::node::{Node, NodeEvent, PeerReport, ShutdownReport, Stack};
use switchboard::router::{Context, Protocol, ProtocolId, RegisterError, Router};
use switchboard::{Bytes, ChannelId, Instant, NetAddress, PeerId, SendError};

use crate::driver::{Driver, DriverConfig, DriverError, DriverStats};
use crate::node_api::NodeApi;

/// The waker's token: the driver's range must not include it.
const WAKER: Token = Token(usize::MAX);

/// Options of the standalone runtime.
#[derive(Clone, Copy, Debug)]
pub struct Runtime {
    /// Events buffered for the application before the loop stops taking messages from
    /// peers (and so stops granting them credit). Default 1024.
    ///
    /// A message counts as taken — *confirmed* to its sender — when it enters this buffer
    /// (or is the one event the loop holds back while the buffer is full), not when the
    /// application reads it: up to this many messages plus one that the sender holds as
    /// delivered are lost if the application drops its [`Handle`] (or the process dies)
    /// before reading them. Messages arriving once a shutdown began are not confirmed. An application that needs confirmation to mean "processed"
    /// sets this low (1 is allowed), or runs the node on a [`Driver`] in its own loop,
    /// where a message is taken only by [`Driver::poll_event`].
    pub event_capacity: usize,
    /// How long the shutdown that dropping the [`Handle`] starts flushes its peers' messages
    /// ([`Handle::shutdown`] takes its own). Default 2 s.
    pub shutdown_timeout: Duration,
}

impl Default for Runtime {
    fn default() -> Self {
        Runtime {
            event_capacity: 1024,
            shutdown_timeout: Duration::from_secs(2),
        }
    }
}

/// Why the runtime could not start.
#[derive(Debug)]
pub enum RuntimeError {
    /// The poll, its waker or the thread could not be created.
    Io(std::io::Error),
    /// The driver could not start.
    Driver(DriverError),
}

impl fmt::Display for RuntimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuntimeError::Io(error) => write!(f, "cannot start the event loop: {error}"),
            RuntimeError::Driver(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for RuntimeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RuntimeError::Io(error) => Some(error),
            RuntimeError::Driver(error) => Some(error),
        }
    }
}

impl From<DriverError> for RuntimeError {
    fn from(error: DriverError) -> Self {
        RuntimeError::Driver(error)
    }
}

/// A closure [`Handle::with_stack`] sends to the loop.
type DriverCall<S> = Box<dyn FnOnce(&mut Driver<S>) + Send>;

/// What the application asks of the loop: every call of the node is a closure run there
/// ([`Handle::with_node`], [`NodeApi`]); only what waits, or ends the loop, is more.
enum Command<S> {
    /// Runs on the loop's thread with the driver (and answers through its own channel).
    Call(DriverCall<S>),
    /// A send that waits for room ([`Handle::send_timeout`]).
    SendTimeout(ParkedSend),
    Shutdown {
        /// `None`: the runtime's own [`Runtime::shutdown_timeout`] (a dropped handle).
        timeout: Option<Duration>,
        reply: Option<mpsc::Sender<ShutdownReport>>,
    },
    Abort,
}

/// A [`Handle::send_timeout`] whose queue was full: retried on every round of the loop
/// until it is taken or its deadline passes.
struct ParkedSend {
    peer: PeerId,
    channel: ChannelId,
    message: Bytes,
    deadline: std::time::Instant,
    reply: mpsc::Sender<Result<(), SendError>>,
}

impl Runtime {
    /// Starts a node with the default options on its own thread.
    pub fn spawn(config: DriverConfig) -> Result<Handle, RuntimeError> {
        Runtime::default().start(config)
    }

    /// Starts a node with these options on its own thread. The listeners are bound before
    /// this returns, so their addresses are known and binding errors reported here.
    pub fn start(self, config: DriverConfig) -> Result<Handle, RuntimeError> {
        self.start_with_stack(config, |node, _| Ok::<_, DriverError>(node))
    }

    /// As [`Runtime::start`], with a [`Router`] on the node: `register` registers its
    /// protocols on the loop's thread, then the router starts (see
    /// [`Driver::with_router`]). A clean shutdown ends with the protocols' `stopped` hooks.
    ///
    /// The protocols get their messages as the loop takes the node's events, which it does
    /// while the application's event channel has room ([`Runtime::event_capacity`]): an
    /// application must keep reading [`Handle::events`] — if only to drop them — or its
    /// protocols stall with it (that is how a slow application slows its peers down).
    ///
    /// What `register` returns comes back beside the [`Handle`]: the [`ProtocolId`]s
    /// [`Router::register`] gave, to reach each protocol through [`Handle::with_protocol`].
    /// [`Router::id_of`] finds a protocol by its type too, but only the first of a type (two
    /// [`RequestResponse`](switchboard::request_response::RequestResponse)s, say); `()` when
    /// none is needed.
    ///
    /// ```no_run
    /// use switchboard::node::NodeConfig;
    /// use switchboard::request_response::{RequestResponse, RequestResponseConfig};
    /// use switchboard::router::RegisterError;
    /// use switchboard_mio::{DriverConfig, Runtime};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let node = NodeConfig::new("mainnet", "my-app/1.0"); // registering offers the protocols
    /// let config = DriverConfig::with_new_key(node, vec!["127.0.0.1:0".parse()?])?;
    /// let (handle, (blocks, txs)) = Runtime::default().start_with_router(config, |router| {
    ///     let blocks = router.register(RequestResponse::new(RequestResponseConfig::new("blocks", 20)))?;
    ///     let txs = router.register(RequestResponse::new(RequestResponseConfig::new("txs", 21)))?;
    ///     Ok::<_, RegisterError>((blocks, txs))
    /// })?;
    /// let in_flight = handle.with_protocol(txs, |txs, _| txs.in_flight());
    /// # let _ = (blocks, in_flight);
    /// # Ok(())
    /// # }
    /// ```
    pub fn start_with_router<T: Send + 'static>(
        self,
        config: DriverConfig,
        register: impl FnOnce(&mut Router<ChaCha20Rng>) -> Result<T, RegisterError> + Send + 'static,
    ) -> Result<(Handle<Router<ChaCha20Rng>>, T), RuntimeError> {
        self.start_stack(config, |node, now| {
            // As `Router::with_protocols`, keeping what `register` returns.
            let mut router = Router::new(node);
            let registered = register(&mut router)?;
            router.start(now);
            Ok::<_, RegisterError>((router, registered))
        })
    }

    /// As [`Runtime::start`], with layers on top of the node, as
    /// [`Driver::new_with_stack`]: `build` runs on the loop's thread (so the stack need not
    /// be `Send`, only `build`) and typically returns a [`Router`] with its protocols
    /// registered and started. Act on the stack through [`Handle::with_stack`] or, for a
    /// router, [`Handle::with_protocol`].
    ///
    /// ```no_run
    /// use switchboard::gossip::{Gossip, GossipConfig};
    /// use switchboard::node::NodeConfig;
    /// use switchboard::router::{Protocol, RegisterError, Router};
    /// use switchboard::Keypair;
    /// use switchboard_mio::{DriverConfig, Runtime};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let node = NodeConfig::new("mainnet", "my-app/1.0"); // registering offers gossip
    /// let keypair = Keypair::generate(&mut switchboard_mio::os_seeded_rng()?);
    /// let config = DriverConfig::new(node, keypair, vec!["127.0.0.1:0".parse()?], 0..10_000);
    /// let handle = Runtime::default().start_with_stack(config, |node, now| {
    ///     let mut router = Router::new(node);
    ///     router.register(Gossip::new(GossipConfig::default()))?;
    ///     router.start(now);
    ///     Ok::<_, RegisterError>(router)
    /// })?;
    /// let gossip = handle.with_stack(|router, _| router.id_of::<Gossip>()).flatten().ok_or("no gossip")?;
    /// handle.with_protocol(gossip, |gossip, ctx| gossip.publish(ctx, "x=1".into()));
    /// # Ok(())
    /// # }
    /// ```
    pub fn start_with_stack<S, E>(
        self,
        config: DriverConfig,
        build: impl FnOnce(Node<ChaCha20Rng>, Instant) -> Result<S, E> + Send + 'static,
    ) -> Result<Handle<S>, RuntimeError>
    where
        S: Stack<Rng = ChaCha20Rng> + 'static,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let started = self.start_stack(config, |node, now| {
            build(node, now).map(|stack| (stack, ()))
        });
        started.map(|(handle, ())| handle)
    }

    /// Starts the loop's thread, which builds the stack with `build`: the handle, and the
    /// rest of what `build` returned, carried out of the thread.
    fn start_stack<S, E, T>(
        self,
        config: DriverConfig,
        build: impl FnOnce(Node<ChaCha20Rng>, Instant) -> Result<(S, T), E> + Send + 'static,
    ) -> Result<(Handle<S>, T), RuntimeError>
    where
        S: Stack<Rng = ChaCha20Rng> + 'static,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
        T: Send + 'static,
    {
        let poll = Poll::new().map_err(RuntimeError::Io)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(RuntimeError::Io)?);
        let (commands, command_receiver) = mpsc::channel();
        let (event_sender, event_receiver) = mpsc::sync_channel(self.event_capacity.max(1));
        let stalled = Arc::new(AtomicBool::new(false));
        let loop_stalled = stalled.clone();
        let shutdown_timeout = self.shutdown_timeout;
        // The driver is built on the loop's thread, which reports how that went before it
        // runs the loop.
        let (started, start) = mpsc::channel();
        let thread = thread::Builder::new()
            .name(format!(
                "switchboard-{}",
                short_id(&config.keypair.peer_id())
            ))
            .spawn(move || {
                let mut output = None;
                let built = Driver::new_with_stack(poll.registry(), config, |node, now| {
                    let (stack, rest) = build(node, now)?;
                    output = Some(rest);
                    Ok::<_, E>(stack)
                });
                // `output` is set whenever the driver was built, from what `build` returned.
                let built = built.and_then(|driver| match output {
                    Some(output) => Ok((driver, output)),
                    None => Err(DriverError::Stack("built without its output".into())),
                });
                let (driver, output) = match built {
                    Ok(built) => built,
                    Err(error) => {
                        let _ = started.send(Err(error));
                        return;
                    }
                };
                let addrs = driver.local_addrs().to_vec();
                let _ = started.send(Ok((driver.peer_id(), addrs, output)));
                EventLoop {
                    poll,
                    driver,
                    commands: command_receiver,
                    events: event_sender,
                    stalled: loop_stalled,
                    held: None,
                    parked: Vec::new(),
                    unread: Vec::new(),
                    shutdown_timeout,
                    shutdown: None,
                }
                .run();
            })
            .map_err(RuntimeError::Io)?;
        let (peer_id, local_addrs, output) = match start.recv() {
            Ok(Ok(started)) => started,
            Ok(Err(error)) => {
                let _ = thread.join();
                return Err(RuntimeError::Driver(error));
            }
            // The thread ended without a word: building the stack panicked.
            Err(_) => {
                let panic = match thread.join() {
                    Err(payload) => panic_message(payload.as_ref()),
                    Ok(()) => "no panic".into(),
                };
                return Err(RuntimeError::Io(std::io::Error::other(format!(
                    "the event loop's thread ended while starting: {panic}"
                ))));
            }
        };
        let handle = Handle {
            commands,
            waker: waker.clone(),
            events: Events {
                receiver: event_receiver,
                stalled,
                waker,
            },
            peer_id,
            local_addrs,
            thread: Some(thread),
        };
        Ok((handle, output))
    }
}

/// What a panic said, when it said it with a string.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|message| (*message).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

fn short_id(peer: &PeerId) -> String {
    peer.to_string().chars().take(8).collect()
}

/// The application's side of a running node. Dropping it shuts the node down cleanly.
///
/// The node's calls (`send`, `dial`, `peers`, …) come from [`NodeApi`]; each is a round
/// trip to the loop's thread (some microseconds). To send many messages at once, make one
/// trip: `handle.with_node(move |node, now| for m in batch { let _ = node.send(now, &peer,
/// channel, m); })`.
///
/// A `Handle` is `Send` but not `Sync` (its event receiver is single-consumer): to read
/// events on a thread of their own while other code sends, move the handle into that
/// thread and have it hand the handle back (or the report of `shutdown`) when it is done.
pub struct Handle<S = Node<ChaCha20Rng>> {
    commands: mpsc::Sender<Command<S>>,
    waker: Arc<Waker>,
    events: Events,
    peer_id: PeerId,
    local_addrs: Vec<SocketAddr>,
    thread: Option<JoinHandle<()>>,
}

impl Handle<Router<ChaCha20Rng>> {
    /// Calls `f` on the loop's thread with the protocol registered as `id` and its
    /// [`Context`], and returns its result; `None` when the runtime
    /// has stopped or `id` is not this router's.
    pub fn with_protocol<P: Protocol, T: Send + 'static>(
        &self,
        id: ProtocolId<P>,
        f: impl FnOnce(&mut P, &mut Context<'_>) -> T + Send + 'static,
    ) -> Option<T> {
        self.with_stack(move |router, now| router.with_protocol(now, id, f))
            .flatten()
    }
}

impl<S: Stack<Rng = ChaCha20Rng> + 'static> Handle<S> {
    /// This node's identity.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// The addresses the node listens on.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// The address other nodes dial to reach this one.
    pub fn net_address(&self) -> Option<NetAddress> {
        let addr = *self.local_addrs.first()?;
        Some(NetAddress::new(Some(self.peer_id), addr))
    }

    /// The node's events: connections, disconnections, messages, failed dials.
    pub fn events(&self) -> &Events {
        &self.events
    }

    /// Calls `f` on the loop's thread with the node and the current time, and returns its
    /// answer (`None` when the runtime has stopped): every call of the node is reached this
    /// way, the common ones through [`NodeApi`] (`handle.send(..)`, `handle.peers()`, …).
    pub fn with_node<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Node<ChaCha20Rng>, Instant) -> T + Send + 'static,
    ) -> Option<T> {
        self.call(move |driver| driver.with_node(f))
    }

    /// As [`NodeApi::inspect`]: `f` on the loop's thread with the node, its
    /// [`Discovery`](switchboard::discovery::Discovery) if one is registered, and the
    /// current time.
    pub fn inspect<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Node<ChaCha20Rng>, Option<&switchboard::discovery::Discovery>, Instant) -> T
        + Send
        + 'static,
    ) -> Option<T> {
        self.call(move |driver| Driver::inspect(driver, f))
    }

    /// As [`NodeApi::send`], but a full queue is waited on, for at most `timeout`: the
    /// caller's thread blocks, never the loop. `Full` only once `timeout` passed; sends
    /// from one thread keep their order.
    pub fn send_timeout(
        &self,
        peer: &PeerId,
        channel: ChannelId,
        message: Bytes,
        timeout: Duration,
    ) -> Result<(), SendError> {
        let (reply, answer) = mpsc::channel();
        let kept = message.clone();
        let parked = ParkedSend {
            peer: *peer,
            channel,
            message,
            deadline: std::time::Instant::now() + timeout.min(LONGEST_WAIT),
            reply,
        };
        self.request(Command::SendTimeout(parked), answer)
            .unwrap_or(Err(SendError::NotConnected(kept)))
    }

    /// The driver's counters, or `None` when the runtime has stopped.
    pub fn stats(&self) -> Option<DriverStats> {
        self.call(|driver| driver.stats())
    }

    /// The address book of the [`Discovery`](switchboard::discovery::Discovery) protocol
    /// on the node's router as bytes, to save for the next run
    /// ([`DriverConfig::address_book`], [`Driver::address_book`]); `None` without
    /// `Discovery`, or once the loop ended.
    pub fn address_book(&self) -> Option<Vec<u8>> {
        self.call(|driver| driver.address_book()).flatten()
    }

    /// Calls `f` on the loop's thread with the stack and the current time, and returns its
    /// result (`None` when the runtime has stopped): for what sits above the node (a
    /// router's protocols).
    pub fn with_stack<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut S, Instant) -> T + Send + 'static,
    ) -> Option<T> {
        self.call(move |driver| driver.with_stack(f))
    }

    /// Stops cleanly: no new peer or dial, each peer flushed — kept until every message
    /// sent to it was confirmed by its application, for at most `timeout` — then told
    /// GOAWAY(`Quitting`); the thread ends. Returns once it has, with the accounts of every
    /// peer whose disconnection the application has not read: those the shutdown closed,
    /// and before them those whose `PeerDisconnected` still waited in [`Handle::events`]
    /// (the handle is consumed, so they could never be read). With the `PeerDisconnected`
    /// events taken before, nothing `send` accepted is unaccounted for. Other events still
    /// waiting (messages received, …) are dropped with the handle. An empty report when the
    /// runtime had stopped already.
    pub fn shutdown(mut self, timeout: Duration) -> ShutdownReport {
        let (reply, answer) = mpsc::channel();
        self.stop(Command::Shutdown {
            timeout: Some(timeout),
            reply: Some(reply),
        });
        let mut report = answer.recv().unwrap_or_default();
        let unread: Vec<PeerReport> = self
            .events
            .receiver
            .try_iter()
            .filter_map(PeerReport::from_disconnected)
            .collect();
        report.peers.splice(0..0, unread);
        report
    }

    /// Stops at once, as a crash would: sockets are closed without a word to the peers.
    pub fn abort(mut self) {
        self.stop(Command::Abort);
    }

    fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Driver<S>) -> T + Send + 'static,
    ) -> Option<T> {
        let (reply, answer) = mpsc::channel();
        let call = move |driver: &mut Driver<S>| {
            let _ = reply.send(f(driver));
        };
        self.request(Command::Call(Box::new(call)), answer)
    }
}

impl<S> Handle<S> {
    fn stop(&mut self, command: Command<S>) {
        self.command(command);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    fn command(&self, command: Command<S>) {
        if self.commands.send(command).is_ok() {
            let _ = self.waker.wake();
        }
    }

    fn request<T>(&self, command: Command<S>, answer: Receiver<T>) -> Option<T> {
        self.commands.send(command).ok()?;
        self.waker.wake().ok()?;
        answer.recv().ok()
    }
}

impl<S> Drop for Handle<S> {
    fn drop(&mut self) {
        if self.thread.is_some() {
            // The loop flushes for its `Runtime::shutdown_timeout`.
            self.stop(Command::Shutdown {
                timeout: None,
                reply: None,
            });
        }
    }
}

/// The node's events, in order. Taking one lets a stalled loop resume taking messages.
pub struct Events {
    receiver: Receiver<NodeEvent>,
    stalled: Arc<AtomicBool>,
    waker: Arc<Waker>,
}

impl Events {
    /// The next event, waiting for it; `Err` once the runtime has stopped.
    pub fn recv(&self) -> Result<NodeEvent, RecvError> {
        let event = self.receiver.recv();
        self.taken();
        event
    }

    /// The next event, waiting at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<NodeEvent, RecvTimeoutError> {
        let event = self.receiver.recv_timeout(timeout);
        if event.is_ok() {
            self.taken();
        }
        event
    }

    /// The next event if one is waiting.
    pub fn try_recv(&self) -> Result<NodeEvent, TryRecvError> {
        let event = self.receiver.try_recv();
        if event.is_ok() {
            self.taken();
        }
        event
    }

    fn taken(&self) {
        if self.stalled.swap(false, Ordering::AcqRel) {
            let _ = self.waker.wake();
        }
    }
}

/// The loop thread's state.
struct EventLoop<S> {
    poll: Poll,
    driver: Driver<S>,
    commands: Receiver<Command<S>>,
    events: SyncSender<NodeEvent>,
    /// Set when the events channel was full: the application wakes the loop when it takes.
    stalled: Arc<AtomicBool>,
    /// An event taken from the node that did not fit in the channel; events are paused
    /// meanwhile.
    held: Option<NodeEvent>,
    /// Sends waiting for room, oldest first.
    parked: Vec<ParkedSend>,
    /// The accounts of the disconnections taken from the node during the shutdown, which
    /// nobody can read any more: the shutdown's report.
    unread: Vec<PeerReport>,
    shutdown_timeout: Duration,
    /// A shutdown under way: when it gives up, and who waits for its report.
    shutdown: Option<(std::time::Instant, Option<mpsc::Sender<ShutdownReport>>)>,
}

impl<S: Stack<Rng = ChaCha20Rng> + 'static> EventLoop<S> {
    fn run(mut self) {
        let mut events = MioEvents::with_capacity(1024);
        loop {
            let now = std::time::Instant::now();
            let deadlines = self
                .parked
                .iter()
                .map(|parked| parked.deadline)
                .chain(self.shutdown.as_ref().map(|(deadline, _)| *deadline));
            let timeout = deadlines
                .map(|deadline| deadline.saturating_duration_since(now))
                .chain(self.driver.poll_timeout())
                .min();
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(error) if error.kind() == ErrorKind::Interrupted => continue,
                // The poll itself failed: nothing can be driven any more.
                Err(_) => return,
            }
            for event in events.iter() {
                if event.token() != WAKER {
                    self.driver.handle_event(event);
                }
            }
            if let Next::Abort = self.run_commands() {
                return;
            }
            let shutting_down = self.shutdown.is_some();
            self.forward_events(shutting_down);
            // After the round's writes (in `forward_events`), which are what make room.
            self.retry_parked();
            if let Some((deadline, _)) = &self.shutdown
                && (self.driver.is_idle() || std::time::Instant::now() >= *deadline)
            {
                // The stack's last hooks (a router's protocols' `stopped`); an abort, like a
                // crash, runs none.
                self.driver.with_stack(|stack, now| stack.stop(now));
                let mut report = ShutdownReport::default();
                report.peers.append(&mut self.unread);
                if let Some((_, Some(reply))) = self.shutdown.take() {
                    let _ = reply.send(report);
                }
                return;
            }
        }
    }

    fn run_commands(&mut self) -> Next {
        loop {
            let command = match self.commands.try_recv() {
                Ok(command) => command,
                Err(TryRecvError::Empty) => return Next::Continue,
                // Every handle is gone: nobody can command this node any more.
                Err(TryRecvError::Disconnected) => {
                    self.start_shutdown(None, None);
                    return Next::Continue;
                }
            };
            match command {
                Command::Call(call) => call(&mut self.driver),
                Command::SendTimeout(parked) => self.parked.push(parked),
                Command::Shutdown { timeout, reply } => self.start_shutdown(timeout, reply),
                Command::Abort => return Next::Abort,
            }
        }
    }

    fn start_shutdown(
        &mut self,
        timeout: Option<Duration>,
        reply: Option<mpsc::Sender<ShutdownReport>>,
    ) {
        if self.shutdown.is_some() {
            return;
        }
        let timeout = timeout.unwrap_or(self.shutdown_timeout).min(LONGEST_WAIT);
        // Sends still waiting cannot be taken any more: handed back now.
        for parked in self.parked.drain(..) {
            let _ = parked.reply.send(Err(SendError::Full(parked.message)));
        }
        // Nobody will read what the loop takes from now on (the handle is consumed or
        // dropped): nothing taken is confirmed, so its senders get it back unconfirmed.
        self.driver.with_node(|node, _| node.withhold_credit());
        self.driver.shutdown(timeout);
        // The driver gives up at `timeout`; the loop waits a little past it, for the
        // round in which the driver does.
        let deadline = std::time::Instant::now() + timeout + SHUTDOWN_GRACE;
        self.shutdown = Some((deadline, reply));
    }

    /// Tries the waiting sends again, oldest first; one still full keeps those behind it
    /// on the same peer and channel waiting too, so they stay in order.
    fn retry_parked(&mut self) {
        if self.parked.is_empty() {
            return;
        }
        let now = std::time::Instant::now();
        let mut blocked: Vec<(PeerId, ChannelId)> = Vec::new();
        let mut waiting = Vec::with_capacity(self.parked.len());
        for mut parked in std::mem::take(&mut self.parked) {
            let key = (parked.peer, parked.channel);
            if blocked.contains(&key) {
                waiting.push(parked);
                continue;
            }
            match self
                .driver
                .send(&parked.peer, parked.channel, parked.message)
            {
                Err(SendError::Full(message)) if now < parked.deadline => {
                    parked.message = message;
                    blocked.push(key);
                    waiting.push(parked);
                }
                result => {
                    let _ = parked.reply.send(result);
                }
            }
        }
        self.parked = waiting;
    }

    /// Moves the node's events into the channel until it is full, then pauses them
    /// ([`Node::pause_events`]) until the application takes one. While shutting down,
    /// nobody can take events any more (the handle that reads them is being dropped or
    /// consumed): they are taken from the node, so a router's protocols hear of every
    /// disconnection and the driver becomes idle, and dropped — the shutdown's report
    /// holds the accounts of the disconnections among them.
    fn forward_events(&mut self, shutting_down: bool) {
        if shutting_down {
            // Every disconnection taken from now on — those of the shutdown and those that
            // waited unread in the node — goes in the report, once; the event held back
            // when the channel was full first, being the oldest.
            let held = self.held.take();
            self.driver.with_node(|node, _| node.pause_events(false));
            let drained = held
                .into_iter()
                .chain(std::iter::from_fn(|| self.driver.poll_event()));
            self.unread
                .extend(drained.filter_map(PeerReport::from_disconnected));
            return;
        }
        loop {
            let resuming = self.held.is_some();
            let Some(event) = self.held.take().or_else(|| self.driver.poll_event()) else {
                return;
            };
            match self.events.try_send(event) {
                Ok(()) => {}
                Err(mpsc::TrySendError::Full(event)) => {
                    self.stalled.store(true, Ordering::Release);
                    // The application may have taken one between the two: try once more,
                    // or it would wait for a wake that nobody sends.
                    match self.events.try_send(event) {
                        Ok(()) => self.stalled.store(false, Ordering::Release),
                        Err(mpsc::TrySendError::Full(event)) => {
                            self.held = Some(event);
                            self.driver.with_node(|node, _| node.pause_events(true));
                            return;
                        }
                        Err(mpsc::TrySendError::Disconnected(_)) => {}
                    }
                }
                // The application dropped its events: keep draining so credit flows.
                Err(mpsc::TrySendError::Disconnected(_)) => {}
            }
            if resuming {
                self.driver.with_node(|node, _| node.pause_events(false));
            }
        }
    }
}

/// How long past its timeout the loop waits for a shutdown to end, for the driver's round
/// that closes what is left.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(300);

/// The longest a shutdown flushes or a send waits (a year): a longer timeout — up to
/// `Duration::MAX` — means "as long as it takes" and must not overflow the clock.
const LONGEST_WAIT: Duration = Duration::from_secs(365 * 24 * 3600);

enum Next {
    Continue,
    Abort,
}
