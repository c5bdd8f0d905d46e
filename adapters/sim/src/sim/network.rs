//! The network: dials, TCP connects and refusals, in-order transmission through the link
//! model, black holes that hold bytes until heal, resets.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use switchboard::Instant;
use switchboard::node::{Action, ConnId};

use super::*;

impl Sim {
    pub(super) fn ends_of(&self, index: NodeIndex) -> impl Iterator<Item = End> + '_ {
        let low = End {
            node: index,
            conn: ConnId(0),
        };
        let high = End {
            node: index,
            conn: ConnId(u64::MAX),
        };
        self.ends.range(low..=high).map(|(end, _)| *end)
    }

    /// How traffic between `a` and `b` is cut, if it is.
    pub(super) fn cut(&self, a: NodeIndex, b: NodeIndex) -> Option<PartitionMode> {
        if let Some(mode) = self.pairs.get(&(a.min(b), a.max(b))) {
            return Some(*mode);
        }
        let (sides, mode) = self.split.as_ref()?;
        let side = |index: NodeIndex| sides.get(index).copied().unwrap_or(false);
        (side(a) != side(b)).then_some(*mode)
    }

    pub(super) fn next_link(&mut self) -> LinkId {
        self.next_link += 1;
        self.next_link
    }

    pub(super) fn act(&mut self, index: NodeIndex, action: Action) {
        match action {
            Action::Dial { conn, addr } => self.dial(End { node: index, conn }, addr),
            Action::Close { conn } => {
                let end = End { node: index, conn };
                let Some(mut state) = self.ends.remove(&end) else {
                    return;
                };
                if state.reset {
                    return;
                }
                if let Some(peer) = state.peer
                    && self
                        .ends
                        .get(&peer)
                        .is_some_and(|far| far.link == state.link)
                {
                    // The FIN follows the bytes already written.
                    self.transmit(end, &mut state, peer, Delivery::Closed);
                }
            }
        }
    }

    pub(super) fn dial(&mut self, from: End, addr: SocketAddr) {
        let link = self.next_link();
        let latency = self.model.draw_latency(&mut self.rng);
        let now = self.now;
        let target = self
            .by_addr
            .get(&addr)
            .copied()
            .filter(|&target| self.nodes[target].alive);
        let mut state = EndState::new(link, None, latency, now);
        let Some(target) = target else {
            // Nothing listens there: refused after one latency.
            self.ends.insert(from, state);
            self.push_delivery(now.saturating_add(latency), from, link, Delivery::Refused);
            return;
        };
        let cut = self.cut(from.node, target);
        if cut == Some(PartitionMode::BlackHole) || self.swallowing.contains(&target) {
            // The SYN vanishes: only the dialer's dial timeout ends this.
            self.ends.insert(from, state);
            return;
        }
        if cut.is_some() || self.refusing.contains(&target) {
            // A reset partition or a refusing listener: the connect is refused.
            self.ends.insert(from, state);
            self.push_delivery(now.saturating_add(latency), from, link, Delivery::Refused);
            return;
        }
        let accepted = {
            let remote = SocketAddr::new(
                self.nodes[from.node].ip,
                40_000 + (from.conn.0 % 20_000) as u16,
            );
            let accepted = self.nodes[target]
                .host
                .node_mut()
                .handle_accepted(now, remote);
            self.fold(target as u64, 0, 4 << 32);
            self.mark(target);
            accepted.ok()
        };
        let Some(accepted) = accepted else {
            // Accepted by the kernel, then closed by the node's admission.
            self.ends.insert(from, state);
            self.push_delivery(now.saturating_add(latency), from, link, Delivery::Closed);
            return;
        };
        let to = End {
            node: target,
            conn: accepted,
        };
        state.peer = Some(to);
        state.bandwidth = self.model.draw_bandwidth(&mut self.rng);
        let mut far = EndState::new(link, Some(from), latency, now);
        far.bandwidth = self.model.draw_bandwidth(&mut self.rng);
        self.ends.insert(from, state);
        self.ends.insert(to, far);
        self.push_delivery(
            now.saturating_add(latency.saturating_mul(2)),
            from,
            link,
            Delivery::Connected,
        );
    }

    pub(super) fn send_bytes(&mut self, from: End, bytes: Vec<u8>) {
        let Some(mut state) = self.ends.get(&from).cloned() else {
            return;
        };
        let Some(to) = state.peer.filter(|_| !state.reset) else {
            return;
        };
        self.transmit(from, &mut state, to, Delivery::Bytes(bytes));
        let now = self.now;
        let buffer = self.model.socket_buffer;
        if !state.blocked && state.backlog(now) > buffer {
            state.blocked = true;
            state.blocked_since = Some(now);
            self.nodes[from.node]
                .host
                .node_mut()
                .handle_write_blocked(now, from.conn);
            if state.bandwidth.is_some() && state.held_bytes == 0 {
                let at = state.drained_to(buffer / 2);
                self.queue.push(
                    at.max(now),
                    Event::Writable {
                        end: from,
                        link: state.link,
                    },
                );
            }
        }
        if let Some(slot) = self.ends.get_mut(&from) {
            *slot = state;
        }
    }

    /// Schedules (or, across a black hole, holds) `what` from `from` to `to`, in order
    /// behind what `from` wrote before.
    pub(super) fn transmit(&mut self, from: End, state: &mut EndState, to: End, what: Delivery) {
        let len = match &what {
            Delivery::Bytes(bytes) => bytes.len(),
            _ => 0,
        };
        if self.cut(from.node, to.node) == Some(PartitionMode::BlackHole) {
            state.held_bytes += len as u64;
            self.held.push(Held {
                from,
                to,
                link: state.link,
                latency: state.latency,
                what,
            });
            return;
        }
        let extra = self.model.draw_extra(&mut self.rng, state.latency);
        let at = state.arrival(self.now, len, extra);
        match what {
            Delivery::Bytes(bytes) if self.config.split_reads && bytes.len() >= 2 => {
                // Cut into up to three reads at random points, arriving together in order.
                let mut rest = bytes.as_slice();
                for _ in 0..2 {
                    if rest.len() < 2 {
                        break;
                    }
                    let cut = 1 + below(&mut self.rng, rest.len() as u64 - 1) as usize;
                    let (head, tail) = rest.split_at(cut);
                    self.push_delivery(at, to, state.link, Delivery::Bytes(head.to_vec()));
                    rest = tail;
                }
                self.push_delivery(at, to, state.link, Delivery::Bytes(rest.to_vec()));
            }
            what => self.push_delivery(at, to, state.link, what),
        }
    }

    pub(super) fn push_delivery(&mut self, at: Instant, to: End, link: LinkId, what: Delivery) {
        self.queue.push(at, Event::Deliver { to, link, what });
    }

    /// Releases what black holes held and are no longer cut, in order.
    pub(super) fn release_held(&mut self) {
        if self.held.is_empty() {
            return;
        }
        let held = std::mem::take(&mut self.held);
        let now = self.now;
        let mut unblocked = BTreeSet::new();
        for item in held {
            if self.cut(item.from.node, item.to.node) == Some(PartitionMode::BlackHole) {
                self.held.push(item);
                continue;
            }
            let len = match &item.what {
                Delivery::Bytes(bytes) => bytes.len(),
                _ => 0,
            };
            let at = match self.ends.get_mut(&item.from) {
                Some(state) if state.link == item.link => {
                    state.held_bytes = state.held_bytes.saturating_sub(len as u64);
                    if state.blocked {
                        unblocked.insert((item.from, item.link));
                    }
                    state.arrival(now, len, Duration::ZERO)
                }
                // The writer closed or crashed since; its bytes and FIN still travel.
                _ => now.saturating_add(item.latency),
            };
            self.push_delivery(at, item.to, item.link, item.what);
        }
        for (end, link) in unblocked {
            let at = self
                .ends
                .get(&end)
                .map_or(now, |state| state.drained_to(self.model.socket_buffer / 2));
            self.queue.push(at.max(now), Event::Writable { end, link });
        }
    }

    /// Resets the link of `end`: both ends learn at once; bytes in flight are lost.
    pub(super) fn reset_end(&mut self, end: End) {
        let now = self.now;
        let Some(state) = self.ends.get_mut(&end) else {
            return;
        };
        if state.reset {
            return;
        }
        state.reset = true;
        let (link, peer) = (state.link, state.peer);
        self.push_delivery(now, end, link, Delivery::Closed);
        if let Some(peer) = peer
            && let Some(far) = self.ends.get_mut(&peer)
            && far.link == link
            && !far.reset
        {
            far.reset = true;
            self.push_delivery(now, peer, link, Delivery::Closed);
        }
    }

    /// Resets every link crossing a [`PartitionMode::Reset`] cut.
    pub(super) fn reset_crossing(&mut self) {
        let crossing: Vec<End> = self
            .ends
            .iter()
            .filter(|(from, state)| {
                state
                    .peer
                    .is_some_and(|to| self.cut(from.node, to.node) == Some(PartitionMode::Reset))
            })
            .map(|(end, _)| *end)
            .collect();
        for end in crossing {
            self.reset_end(end);
        }
    }
}
