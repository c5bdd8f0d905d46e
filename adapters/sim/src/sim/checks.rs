//! What the simulator observes and checks: the trace, components, outbound slots, buffered
//! bytes, the checker's accounting at crashes and at the end, and the tracked traffic the
//! checker follows.

use std::time::Duration;

use switchboard::node::NodeEvent;
use switchboard::{ChannelConfig, PeerId};

use crate::invariants::{CheckerFault, TAG_LEN};

use super::*;

impl Sim {
    /// The hash of every input given to every node so far: equal runs have equal hashes.
    pub fn trace_hash(&self) -> u64 {
        self.trace
    }

    /// Inputs given to nodes so far (the events of the [module documentation](crate::sim)).
    pub fn inputs(&self) -> u64 {
        self.inputs
    }

    /// Bytes delivered to nodes so far (every read's length).
    pub fn bytes_delivered(&self) -> u64 {
        self.bytes_delivered
    }

    /// How long the traffic generator's messages took from `send` to the receiving
    /// application (see [`crate::latency`]), whether or not the checker runs.
    pub fn delivery_latency(&self) -> &LatencyHistogram {
        &self.latency
    }

    /// Connections established so far, each a completed Noise handshake (counted from the
    /// `PeerConnected` events of both ends, so a node that stopped polling undercounts).
    pub fn connections_established(&self) -> u64 {
        self.peer_connected / 2
    }

    /// Events queued (deliveries, timers, writable notices), stale ones included.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// When every live node first had its outbound slots full, as time since the
    /// simulation began. A node's slots are full at `min(max_outbound, (nodes - 1) / 2)`
    /// outbound peers (more cannot all be served when every node dials). `None` if never.
    pub fn outbound_full_after(&self) -> Option<Duration> {
        self.outbound_full_at
            .map(|at| at.saturating_duration_since(self.started))
    }

    /// Time since the simulation began.
    pub fn elapsed(&self) -> Duration {
        self.now.saturating_duration_since(self.started)
    }

    /// The invariant checker, unless [`SimConfig::check_invariants`] is off.
    pub fn checker(&self) -> Option<&Checker> {
        self.checker.as_ref()
    }

    /// The invariant checker, to report what only the caller can see (reconnection).
    pub fn checker_mut(&mut self) -> Option<&mut Checker> {
        self.checker.as_mut()
    }

    /// The violations the checker recorded so far.
    pub fn violations(&self) -> &[Violation] {
        self.checker.as_ref().map_or(&[], Checker::violations)
    }

    /// Connected components of the peer graph among live nodes (a crashed node is in none,
    /// and a seed-mode node, which lets every peer go once it has its addresses, neither).
    pub fn components(&self) -> usize {
        self.component_sizes().len()
    }

    /// Nodes in the largest connected component (counted as [`Sim::components`] counts
    /// them); 0 when every node is down.
    pub fn largest_component(&self) -> usize {
        self.component_sizes().into_iter().max().unwrap_or(0)
    }

    /// Nodes not crashed.
    pub fn live_nodes(&self) -> usize {
        self.alive
    }

    /// Live nodes whose outbound slots are full (as [`Sim::outbound_full_after`] counts
    /// them), as of each node's last input.
    pub fn outbound_full_nodes(&self) -> usize {
        self.full
    }

    /// The size of each component, in no particular order.
    fn component_sizes(&self) -> Vec<usize> {
        let mut parent: Vec<NodeIndex> = (0..self.nodes.len()).collect();
        fn root(parent: &mut [NodeIndex], mut at: NodeIndex) -> NodeIndex {
            while parent[at] != at {
                parent[at] = parent[parent[at]];
                at = parent[at];
            }
            at
        }
        for (index, slot) in self.nodes.iter().enumerate() {
            if !slot.alive {
                continue;
            }
            for peer in slot.host.node().peers() {
                if let Some(&other) = self.by_peer.get(&peer)
                    && self.nodes[other].alive
                {
                    let (a, b) = (root(&mut parent, index), root(&mut parent, other));
                    parent[a] = b;
                }
            }
        }
        let mut sizes = vec![0; self.nodes.len()];
        for (index, slot) in self.nodes.iter().enumerate() {
            if slot.alive && !slot.seed_mode {
                sizes[root(&mut parent, index)] += 1;
            }
        }
        sizes.retain(|&size| size > 0);
        sizes
    }

    /// Test only: applies [`SimConfig::inject`] to an event node `index`'s application took,
    /// once, on the first event it applies to; returns what the checker is handed instead.
    pub(super) fn inject(&mut self, index: NodeIndex, event: NodeEvent) -> Vec<NodeEvent> {
        let tracked = |event: &NodeEvent| match event {
            NodeEvent::Message {
                channel: TRAFFIC_CHANNEL,
                message,
                ..
            } => Tag::tracked(message).is_some(),
            _ => false,
        };
        if let Some((node, held)) = self.held_back.take() {
            // Reorder: after the next tracked delivery from the same peer.
            let same_peer = match (&held, &event) {
                (NodeEvent::Message { peer: a, .. }, NodeEvent::Message { peer: b, .. }) => a == b,
                _ => false,
            };
            if node == index && same_peer && tracked(&event) {
                return vec![event, held];
            }
            self.held_back = Some((node, held));
            return vec![event];
        }
        let Some(fault) = self.config.inject.filter(|_| self.inject_armed) else {
            return vec![event];
        };
        let mut event = event;
        if let NodeEvent::PeerDisconnected {
            peer, reason, by, ..
        } = &mut event
            && fault == CheckerFault::EvictProtected
        {
            *reason = switchboard::DisconnectReason::Evicted;
            *by = switchboard::connection::ClosedBy::Local;
            self.nodes[index].config.trusted_peers.push(*peer);
            self.inject_armed = false;
            return vec![event];
        }
        if let NodeEvent::PeerDisconnected {
            reason,
            unsent,
            unconfirmed,
            ..
        } = &mut event
        {
            let own = |m: &switchboard::ReturnedMessage| {
                m.channel == TRAFFIC_CHANNEL && Tag::tracked(&m.message).is_some()
            };
            if fault == CheckerFault::ReportFlood {
                *reason = switchboard::DisconnectReason::ControlFlood;
                self.inject_armed = false;
            } else if fault == CheckerFault::DropSilently {
                if let Some(at) = unconfirmed.iter().position(own) {
                    unconfirmed.remove(at);
                    self.inject_armed = false;
                } else if let Some(at) = unsent.iter().position(own) {
                    unsent.remove(at);
                    self.inject_armed = false;
                }
            }
            return vec![event];
        }
        let NodeEvent::Message {
            peer,
            channel,
            message,
        } = event
        else {
            return vec![event];
        };
        let event = |message| NodeEvent::Message {
            peer,
            channel,
            message,
        };
        if Tag::tracked(&message).is_none() || channel != TRAFFIC_CHANNEL {
            return vec![event(message)];
        }
        // One tag's worth of bytes cannot be corrupted or cut and still read as tracked.
        let has_body = message.len() > TAG_LEN;
        let altered = match fault {
            CheckerFault::Reorder => {
                self.held_back = Some((index, event(message)));
                Vec::new()
            }
            CheckerFault::Duplicate => vec![event(message.clone()), event(message)],
            CheckerFault::CorruptByte if has_body => {
                let mut changed = message.to_vec();
                if let Some(last) = changed.last_mut() {
                    *last ^= 1;
                }
                vec![event(changed.into())]
            }
            CheckerFault::Truncate if has_body => {
                vec![event(message.slice(..message.len() - 1))]
            }
            CheckerFault::ConfirmWithoutDelivery => Vec::new(),
            CheckerFault::DeliverUnsent => {
                let mut tag = Tag::read(&message).expect("tracked");
                tag.seq = u64::MAX >> 1;
                let forged = tag.message(message.len());
                vec![event(message), event(forged)]
            }
            // Faults injected elsewhere (disconnections, samples), or a message too short.
            _ => return vec![event(message)],
        };
        self.inject_armed = false;
        altered
    }

    /// Samples every connection's buffered bytes — per channel its send queue, the messages
    /// kept until confirmed and the received messages its application has not taken —
    /// against the bound its channel configs give (see `channel_memory_bound`).
    pub fn check_buffers(&mut self) {
        self.check_buffers_of(0, 1);
    }

    /// [`Sim::check_buffers`] for every `stride`-th node from `first` only: a large network
    /// is sampled in turns, since reading a connection's statistics copies them.
    pub fn check_buffers_of(&mut self, first: NodeIndex, stride: usize) {
        let Some(checker) = self.checker.as_mut() else {
            return;
        };
        for index in (first..self.nodes.len()).step_by(stride.max(1)) {
            let slot = &self.nodes[index];
            if !slot.alive {
                continue;
            }
            let peers: Vec<PeerId> = slot.host.node().peers().collect();
            for peer in peers {
                let Some(info) = slot.host.node().peer_info(&peer) else {
                    continue;
                };
                let mut bytes = 0u64;
                let mut bound = 0u64;
                for channel in &info.channels {
                    bytes += channel.queued_bytes as u64
                        + channel.unconfirmed_bytes as u64
                        + channel.receive_buffered_bytes;
                    bound += slot
                        .config
                        .connection
                        .channels
                        .iter()
                        .find(|config| config.id == channel.channel)
                        .map_or(u64::MAX / 64, channel_memory_bound);
                }
                if self.inject_armed && self.config.inject == Some(CheckerFault::ExceedBuffer) {
                    self.inject_armed = false;
                    bytes += bound + 1;
                }
                checker.buffer_sample(self.now, index, bytes, bound);
            }
        }
        // Connections whose output has stayed blocked: the node must have ended each by its
        // write-stall timeout (its `Action::Close` removes the end at once).
        for (end, state) in &self.ends {
            let sampled = end.node >= first && (end.node - first).is_multiple_of(stride.max(1));
            let Some(slot) = self
                .nodes
                .get(end.node)
                .filter(|slot| slot.alive && sampled)
            else {
                continue;
            };
            let timeout = slot.config.connection.write_stall_timeout;
            let mut blocked = state
                .blocked_since
                .map(|since| self.now.saturating_duration_since(since));
            if self.inject_armed && self.config.inject == Some(CheckerFault::HideStall) {
                self.inject_armed = false;
                blocked = Some(timeout + Duration::from_secs(1));
            }
            let Some(blocked) = blocked else {
                continue;
            };
            if blocked > timeout {
                checker.stalled(self.now, end.node, blocked, timeout);
            }
        }
    }

    /// Ends the checker's accounting: resumes every application's polling, drains the
    /// nodes, and settles the connections still open (confirmed so far, the rest pending).
    pub fn finish_checks(&mut self) {
        for index in 0..self.nodes.len() {
            if self.nodes[index].alive && !self.nodes[index].polling {
                self.set_polling(index, true);
            }
        }
        self.settle();
        let Some(checker) = self.checker.as_mut() else {
            return;
        };
        checker.check_liveness(self.now);
        for (index, slot) in self.nodes.iter().enumerate() {
            if !slot.alive {
                continue;
            }
            for receiver in checker.open_connections(index) {
                let peer = self.nodes[receiver].host.node().peer_id();
                let confirmed = slot
                    .host
                    .node()
                    .peer_info(&peer)
                    .and_then(|info| {
                        info.channels
                            .iter()
                            .find(|channel| channel.channel == TRAFFIC_CHANNEL)
                            .map(|channel| channel.messages_confirmed)
                    })
                    .unwrap_or(0);
                checker.connection_open_at_end(self.now, index, receiver, confirmed);
            }
        }
    }

    /// The checker's accounting for a crashing sender: its pending events, then its open
    /// connections, whose statistics' claims the checker holds against what it saw (see
    /// [`Checker::connection_crashed`]).
    pub(super) fn account_crash(&mut self, index: NodeIndex) {
        let Some(checker) = self.checker.as_mut() else {
            return;
        };
        let now = self.now;
        let by_peer = &self.by_peer;
        let slot = &mut self.nodes[index];
        // Its application is gone: connection outcomes count, messages it never took do
        // not (their senders see them unconfirmed).
        while let Some(event) = slot.host.node_mut().poll_event(now) {
            if !matches!(event, NodeEvent::Message { .. }) {
                checker.on_event(now, index, &event, |peer| by_peer.get(peer).copied());
            }
        }
        for receiver in checker.open_connections(index) {
            let peer = self.nodes[receiver].host.node().peer_id();
            let stats = self.nodes[index]
                .host
                .node()
                .peer_info(&peer)
                .and_then(|info| {
                    info.channels
                        .into_iter()
                        .find(|channel| channel.channel == TRAFFIC_CHANNEL)
                });
            let (confirmed, held) = stats.map_or((0, 0), |channel| {
                (
                    channel.messages_confirmed,
                    channel.unconfirmed_messages + channel.queued_messages,
                )
            });
            checker.connection_crashed(now, index, receiver, confirmed, held);
        }
    }

    // ----- traffic -----

    /// Sends a tracked message of `len` bytes from `from` to `to` on the traffic channel
    /// (see [`crate::invariants`]); returns whether `send` accepted it.
    pub fn send_tracked(&mut self, from: NodeIndex, to: NodeIndex, len: usize) -> bool {
        let (Some(peer), Some(checker)) = (
            self.nodes.get(to).map(|slot| slot.host.node().peer_id()),
            self.checker.as_mut(),
        ) else {
            return false;
        };
        let now = self.now;
        let (seq, message) = checker.tag(now, from, len);
        let accepted = self.nodes[from]
            .host
            .node_mut()
            .send(now, &peer, TRAFFIC_CHANNEL, message)
            .is_ok();
        if accepted {
            checker.on_sent(now, from, to, seq);
        }
        self.mark(from);
        accepted
    }

    /// Broadcasts a tracked message of `len` bytes from `from` on the traffic channel, as
    /// one `send` per peer the checker knows `from` is connected to (`Node::broadcast`
    /// returns how many peers took it, not which: the checker records each `send` that
    /// returned `Ok`); returns how many took it.
    pub fn broadcast_tracked(&mut self, from: NodeIndex, len: usize) -> usize {
        let Some(checker) = self.checker.as_mut() else {
            return 0;
        };
        let now = self.now;
        let receivers = checker.open_connections(from);
        let (seq, message) = checker.tag(now, from, len);
        let mut taken = 0;
        for receiver in receivers {
            let peer = self.nodes[receiver].host.node().peer_id();
            let accepted = self.nodes[from]
                .host
                .node_mut()
                .send(now, &peer, TRAFFIC_CHANNEL, message.clone())
                .is_ok();
            if accepted && let Some(checker) = self.checker.as_mut() {
                checker.on_sent(now, from, receiver, seq);
                taken += 1;
            }
        }
        self.mark(from);
        taken
    }
}

/// The per-message overhead of the flow-control cost (`core/PROTOCOL.md` §6.3: a message
/// costs its length plus 64), restated here so the bound below is the checker's own
/// arithmetic from the protocol, not the core's.
const MESSAGE_OVERHEAD: u64 = 64;

/// What one channel of a connection may hold, whatever the peer does, computed from its
/// config alone (`core/PROTOCOL.md` §6.3), with `W` its receive window and `M` its largest
/// message:
/// - its send queue: `send_queue_bytes`, or one message of `M` if larger (an empty queue
///   takes any message);
/// - the messages written and not yet confirmed: at most the peer's window — every
///   simulated node runs the same channel config, so `W` — plus one message started inside
///   it, `M + 64`;
/// - what it holds for its application, complete messages and the one being reassembled:
///   at most `max(W, M + 64)` in cost, so in bytes.
fn channel_memory_bound(config: &ChannelConfig) -> u64 {
    let window = u64::from(config.receive_window);
    let largest = u64::from(config.max_message_size).saturating_add(MESSAGE_OVERHEAD);
    let queue = (config.send_queue_bytes as u64).max(u64::from(config.max_message_size));
    let unconfirmed = window.saturating_add(largest);
    let received = window.max(largest);
    queue.saturating_add(unconfirmed).saturating_add(received)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_is_the_protocols_arithmetic() {
        let config = ChannelConfig {
            send_queue_bytes: 1000,
            max_message_size: 300,
            receive_window: 5000,
            ..ChannelConfig::new(1)
        };
        // queue 1000 + unconfirmed (5000 + 364) + received max(5000, 364).
        assert_eq!(channel_memory_bound(&config), 1000 + 5364 + 5000);
        let large = ChannelConfig {
            max_message_size: 9000,
            ..config
        };
        assert_eq!(channel_memory_bound(&large), 9000 + 14064 + 9064);
    }
}
