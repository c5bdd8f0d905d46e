//! What an adapter drives: a node alone, or a node with a router on top.

use rand_core::CryptoRng;

use alloc::vec::Vec;

use super::{Action, ConnId, Node, NodeEvent};
use crate::time::Instant;

/// What a [`Stack`] has for its adapter, one item per [`Stack::poll_output`] call.
///
/// `Action` is exhaustive on purpose, and so is this: an adapter must handle every output.
#[derive(Debug)]
pub enum Output {
    /// An event for the application.
    Event(NodeEvent),
    /// Open or close a socket.
    Action(Action),
    /// Bytes for this connection were appended to the buffer given to
    /// [`Stack::poll_output`]: write them to its socket (consecutive `Transmit`s of one
    /// connection may be gathered into one write).
    Transmit(ConnId),
    /// Nothing else is due now: wait for the next input, or until this instant, then call
    /// [`Stack::poll_output`] again (it fires the timers due). `None`: wait for input only.
    /// The timers due by the `now` given fired in this round, so the instant normally lies
    /// ahead of it; one at or before `now` (a protocol's hook set a timer for `now`) means
    /// "call again at once", as an adapter sleeping until it does naturally.
    Timeout(Option<Instant>),
}

/// A [`Node`] and whatever sits on top of it taking its events and adding deadlines of its
/// own — nothing, or a [`Router`](crate::router::Router) with its protocols.
///
/// # The driving contract
///
/// An adapter (or an application embedding the node in its own loop) does two things:
///
/// 1. feeds every input to the node: `handle_accepted`, `handle_connected`, `handle_input`,
///    `handle_closed`, `handle_write_blocked`, `handle_writable` (through
///    [`Stack::node_mut`]), and makes whatever application calls it likes (`send`, `dial`,
///    …);
/// 2. then calls [`Stack::poll_output`] until it returns [`Output::Timeout`], carrying out
///    each output, and sleeps until that deadline or the next input.
///
/// That is all: the order in which events, socket actions and bytes leave the stack, and
/// when timers fire, is decided here, once, for every adapter. An application that cannot
/// take events for a while (a full channel to another thread) pauses them with
/// [`Node::pause_events`]: messages then stay on their connections, their senders get no
/// credit, and flow control reaches them; everything else keeps flowing.
///
/// ```
/// use switchboard::node::{Action, Node, NodeConfig, NodeEvent, Output, Stack};
/// use switchboard::router::Router;
/// use switchboard::{Instant, Keypair};
/// # use rand_chacha::ChaCha20Rng;
/// # use rand_core::SeedableRng;
///
/// /// After any input: everything due, in order; returns the deadline to sleep until.
/// fn drive<S: Stack>(stack: &mut S, now: Instant, out: &mut Vec<u8>) -> Option<Instant> {
///     loop {
///         match stack.poll_output(now, out) {
///             Output::Event(event) => { /* hand it to the application */ }
///             Output::Action(Action::Dial { conn, addr }) => { /* connect a socket */ }
///             Output::Action(Action::Close { conn }) => { /* close it */ }
///             Output::Transmit(conn) => out.clear(), // write `out` to conn's socket
///             Output::Timeout(deadline) => return deadline,
///         }
///     }
/// }
///
/// let mut rng = ChaCha20Rng::seed_from_u64(1);
/// let keypair = Keypair::generate(&mut rng);
/// let node = Node::new(Instant::ZERO, NodeConfig::new("mainnet", "app/1"), keypair, rng).unwrap();
/// let mut router = Router::new(node);
/// router.start(Instant::ZERO);
/// let wake_at = drive(&mut router, Instant::ZERO, &mut Vec::new());
/// assert!(wake_at.is_none_or(|at| at > Instant::ZERO));
/// ```
pub trait Stack {
    /// The node's random number generator.
    type Rng: CryptoRng;

    /// The node at the bottom of the stack.
    fn node(&self) -> &Node<Self::Rng>;

    /// The node, for the adapter's socket calls and the application's own (`dial`,
    /// `send`, …). Take its outputs through [`Stack::poll_output`], not the node's, or the
    /// layers above it miss their events.
    fn node_mut(&mut self) -> &mut Node<Self::Rng>;

    /// The next event for the application, after the layers above the node took theirs.
    /// [`Stack::poll_output`] calls it; adapters need not.
    fn poll_event(&mut self, now: Instant) -> Option<NodeEvent>;

    /// The earliest deadline, the node's or a layer's.
    fn poll_timeout(&self) -> Option<Instant>;

    /// Fires the node's timers and the layers' due by `now`. [`Stack::poll_output`] calls
    /// it; adapters need not.
    fn handle_timeout(&mut self, now: Instant);

    /// Whether [`Stack::poll_event`] may still return something: the node's events, or a
    /// layer's own (a router's emitted ones). An adapter shutting down takes events until
    /// this is `false`, so every layer hears of every disconnection.
    fn has_events(&self) -> bool {
        self.node().has_events()
    }

    /// The next thing due, after any input: events first (taking one may make the stack
    /// send: a protocol's answer, credit for a message taken), then socket actions, then
    /// bytes to write; when none is left, the timers due by `now` fire and, once they have
    /// nothing more to say, [`Output::Timeout`] ends the round. See the
    /// [driving contract](Stack#the-driving-contract).
    fn poll_output(&mut self, now: Instant, buffer: &mut Vec<u8>) -> Output {
        let mut fired = false;
        loop {
            self.handle_reports(now);
            if !self.node().events_paused()
                && let Some(event) = self.poll_event(now)
            {
                return Output::Event(event);
            }
            if let Some(action) = self.node_mut().poll_action() {
                return Output::Action(action);
            }
            if let Some(conn) = self.node_mut().poll_transmit(now, buffer) {
                return Output::Transmit(conn);
            }
            let deadline = self.poll_timeout();
            match deadline {
                // Fired once per round at most: a deadline still due after its timers ran
                // would be a bug, and must not spin here.
                Some(due) if due <= now && !fired => {
                    fired = true;
                    self.handle_timeout(now);
                }
                _ => return Output::Timeout(deadline),
            }
        }
    }

    /// Hands the layers what the node reports for them alone (a router: each
    /// [`DialReport`](super::DialReport) to its protocols' `dialed` hook), whether or not the
    /// application takes events: an address book learns of its dials while the application
    /// is paused. [`Stack::poll_output`] calls it; nothing for a bare node.
    fn handle_reports(&mut self, now: Instant) {
        let _ = now;
    }

    /// The adapter is done with the stack (its node shut down cleanly, every event taken):
    /// the layers run their last hooks (a router's protocols' `stopped`, once however often
    /// this is called). Nothing for a bare node.
    fn stop(&mut self, now: Instant) {
        let _ = now;
    }
}

impl<R: CryptoRng> Stack for Node<R> {
    type Rng = R;

    fn node(&self) -> &Node<R> {
        self
    }

    fn node_mut(&mut self) -> &mut Node<R> {
        self
    }

    fn poll_event(&mut self, now: Instant) -> Option<NodeEvent> {
        Node::poll_event(self, now)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        Node::poll_timeout(self)
    }

    fn handle_timeout(&mut self, now: Instant) {
        Node::handle_timeout(self, now);
    }
}
