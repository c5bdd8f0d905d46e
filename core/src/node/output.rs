//! What leaves the node (`poll_*`): socket actions, bytes, events, the next deadline.

use alloc::vec::Vec;

use rand_core::CryptoRng;

use super::{Action, ConnId, Node, NodeEvent, Phase};

use crate::channel::RESERVED_CHANNELS_START;
use crate::connection::Event;
use crate::time::Instant;

impl<R: CryptoRng> Node<R> {
    /// The next socket action.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Appends bytes for one connection to `out` and returns which, or `None` when no
    /// writable connection has anything to send. Connections take turns.
    #[must_use = "the bytes appended must be written to the returned connection"]
    pub fn poll_transmit(&mut self, now: Instant, out: &mut Vec<u8>) -> Option<ConnId> {
        while let Some(conn) = self.transmit_queue.pop_front() {
            let Some(entry) = self.conns.get_mut(conn) else {
                continue;
            };
            entry.in_transmit_queue = false;
            if entry.connection.is_write_blocked() || entry.phase == Phase::Connecting {
                continue;
            }
            let wrote = entry.connection.poll_transmit(now, out);
            if wrote {
                entry.in_transmit_queue = true;
                self.transmit_queue.push_back(conn);
            }
            // Not `after`: a connection that had nothing to write leaves the queue until
            // something touches it again.
            self.settle(now, conn);
            if wrote {
                return Some(conn);
            }
        }
        None
    }

    /// The next event for the application. Messages are taken from their connection only
    /// here, which is what returns credit to the sender.
    #[must_use]
    pub fn poll_event(&mut self, now: Instant) -> Option<NodeEvent> {
        loop {
            if let Some(event) = self.events.pop_front() {
                return Some(event);
            }
            let conn = self.read_queue.pop_front()?;
            let Some(entry) = self.conns.get_mut(conn) else {
                continue;
            };
            entry.in_read_queue = false;
            let (Some(peer), Some(Event::Message { .. })) =
                (entry.peer, entry.connection.peek_event())
            else {
                self.after(now, conn);
                continue;
            };
            let Some(Event::Message { channel, message }) = entry.connection.poll_event() else {
                continue;
            };
            if channel < RESERVED_CHANNELS_START {
                // Useful to the application (not to the node's own protocols, such as PEX):
                // what inbound eviction protects.
                entry.last_useful = Some(now);
            }
            self.after(now, conn);
            return Some(NodeEvent::Message {
                peer,
                channel,
                message,
            });
        }
    }

    /// The earliest deadline at which [`Node::handle_timeout`] must be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let connections = self.timers.first().map(|&(deadline, _)| deadline);
        let slow = self
            .slow
            .first()
            .map(|&(since, _)| since.saturating_add(self.config.slow_peer_timeout));
        // Shutting down, queued dials wait for nothing: their deadline would wake the adapter
        // for work that is not done.
        let dials = self.dials.poll_timeout().filter(|_| !self.shutting_down);
        let flush = self
            .flush_deadline
            .filter(|_| !self.peers.is_empty() || self.queries.any_open());
        [connections, slow, dials, flush]
            .into_iter()
            .flatten()
            .min()
    }
}
