//! What the simulator holds for a node: the bare node, or the stack a test built on it (a
//! router with the protocols under test), and how to build that stack again at a restart.

use std::any::Any;

use switchboard::Instant;
use switchboard::node::Stack;

use super::SimNode;

/// A [`Stack`] the simulator can hold without knowing its type, and hand back as one.
pub(super) trait SimStack: Stack<Rng = <SimNode as Stack>::Rng> {
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<S: Stack<Rng = <SimNode as Stack>::Rng> + Any> SimStack for S {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// Builds a node's stack on a fresh node: when it is added, and again at every restart.
pub(super) type StackBuilder = Box<dyn FnMut(SimNode, Instant) -> Box<dyn SimStack>>;

/// A node as the simulator drives it: the bare node, or the stack built on it.
pub(super) type Host = Box<dyn SimStack>;

/// `node` bare, or under what `build` puts on it.
pub(super) fn host(node: SimNode, now: Instant, build: Option<&mut StackBuilder>) -> Host {
    match build {
        Some(build) => build(node, now),
        None => Box::new(node),
    }
}
