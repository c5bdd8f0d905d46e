//! What an adapter drives: a node alone, or a node with a router on top.

use rand_core::CryptoRng;

use super::{Node, NodeEvent};
use crate::time::Instant;

/// A [`Node`] and whatever sits on top of it taking its events and adding deadlines of its
/// own — nothing, or a [`Router`](crate::router::Router) with its protocols.
///
/// Adapters feed sockets to [`Stack::node_mut`] (`handle_*`, `poll_action`,
/// `poll_transmit`) and take events, deadlines and timers from the stack. An adapter
/// written against `Stack` therefore runs an application's protocols as readily as a bare
/// node: the router sees every event before the application does, and its protocols'
/// timers fire through the adapter's loop like the node's own.
///
/// Taking events may make the stack send (a protocol answers a message; the node answers
/// a peer-exchange request and owes credit for what was taken) even when
/// [`Stack::poll_event`] ends up returning `None`: an adapter writes the node's
/// `poll_transmit` after taking events, as after any input.
///
/// ```
/// use switchboard::node::{Node, NodeConfig, NodeEvent, Stack};
/// use switchboard::router::Router;
/// use switchboard::{Instant, Keypair};
/// # use rand_chacha::ChaCha20Rng;
/// # use rand_core::SeedableRng;
///
/// /// One turn of an adapter's loop, the same for a node and for a router.
/// fn turn<S: Stack>(stack: &mut S, now: Instant) -> Vec<NodeEvent> {
///     if stack.poll_timeout().is_some_and(|due| due <= now) {
///         stack.handle_timeout(now);
///     }
///     let events = std::iter::from_fn(|| stack.poll_event(now)).collect();
///     let mut out = Vec::new();
///     while let Some(_conn) = stack.node_mut().poll_transmit(now, &mut out) {
///         out.clear(); // write to that connection's socket
///     }
///     events
/// }
///
/// let mut rng = ChaCha20Rng::seed_from_u64(1);
/// let keypair = Keypair::generate(&mut rng);
/// let node = Node::new(Instant::ZERO, NodeConfig::new("mainnet", "app/1"), keypair, rng).unwrap();
/// let mut router = Router::new(node);
/// router.start(Instant::ZERO);
/// assert!(turn(&mut router, Instant::ZERO).is_empty());
/// ```
pub trait Stack {
    /// The node's random number generator.
    type Rng: CryptoRng;

    /// The node at the bottom of the stack.
    fn node(&self) -> &Node<Self::Rng>;

    /// The node, for the adapter's socket calls and the application's own (`dial`,
    /// `send`, …). Take events through [`Stack::poll_event`], not the node's, or the layers
    /// above it miss them.
    fn node_mut(&mut self) -> &mut Node<Self::Rng>;

    /// The next event for the application, after the layers above the node took theirs.
    fn poll_event(&mut self, now: Instant) -> Option<NodeEvent>;

    /// The earliest deadline, the node's or a layer's.
    fn poll_timeout(&self) -> Option<Instant>;

    /// Fires the node's timers and the layers' due by `now`.
    fn handle_timeout(&mut self, now: Instant);

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
