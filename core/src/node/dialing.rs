//! Dials: the application's, persistent peers' and discovery's, queued, paced and
//! started as the outbound slots allow, and their failures reported.

use alloc::format;
use alloc::string::{String, ToString};
use core::net::SocketAddr;

use rand_core::CryptoRng;

use super::{Action, DialError, DialReport, Node, NodeEvent};

use crate::dial_queue::Retry;
use crate::disconnect::DisconnectReason;
use crate::identity::PeerId;
use crate::net_address::NetAddress;
use crate::peer_set::Direction;
use crate::time::Instant;

impl<R: CryptoRng> Node<R> {
    /// Queues a dial to `addr` (deduplicated, paced by the dial queue).
    pub fn dial(&mut self, now: Instant, addr: NetAddress) -> Result<(), DialError> {
        if self.shutting_down {
            return Err(DialError::ShuttingDown);
        }
        self.check_dial(now, &addr)?;
        self.queue_dial(now, addr);
        self.start_dials(now);
        Ok(())
    }

    pub(super) fn check_dial(&self, now: Instant, addr: &NetAddress) -> Result<(), DialError> {
        if let Some(peer) = addr.peer_id() {
            if peer == self.local_id {
                return Err(DialError::SelfDial);
            }
            if self.peers.contains_key(&peer) || self.is_query_peer(&peer) {
                return Err(DialError::AlreadyConnected);
            }
            if self.peer_set.bans().is_peer_banned(now, &peer) {
                return Err(DialError::Banned);
            }
        }
        if self
            .peer_set
            .bans()
            .is_ip_banned(now, addr.socket_addr().ip())
        {
            return Err(DialError::Banned);
        }
        Ok(())
    }

    /// Keeps `addr` connected: dialed now and redialed with backoff whenever its connection
    /// ends, exempt from the outbound cap.
    pub fn add_persistent_peer(&mut self, now: Instant, addr: NetAddress) {
        self.queue_persistent(now, addr);
        self.start_dials(now);
    }

    /// Records `addr` as persistent and queues its dial (unless its peer is connected),
    /// without starting it: [`Node::new`] leaves its persistent peers' dials to the first
    /// round of timers, so protocols registered on the fresh node are offered to them.
    pub(super) fn queue_persistent(&mut self, now: Instant, addr: NetAddress) {
        self.peer_set.add_persistent(addr);
        if addr
            .peer_id()
            .is_some_and(|peer| self.peers.contains_key(&peer))
        {
            return;
        }
        self.queue_dial(now, addr);
    }

    /// Queues a dial that is not a probe — turning a probe to the same address, queued or
    /// in flight, into this dial: its connection is kept, its failure reported.
    pub(super) fn queue_dial(&mut self, due: Instant, addr: NetAddress) {
        self.probes.remove(&addr.socket_addr());
        self.dials.push(due, addr);
    }

    /// Queues a probe to `addr`, unless a dial to it is queued already: that one is brought
    /// forward and stays what it was.
    pub(super) fn queue_probe(&mut self, now: Instant, addr: NetAddress) {
        if self.dials.push(now, addr) {
            self.probes.insert(addr.socket_addr());
        }
    }

    /// Drops `addr` from the dial queue, probe or not.
    pub(super) fn forget_dial(&mut self, addr: SocketAddr) {
        self.probes.remove(&addr);
        self.dials.remove(addr);
    }

    /// Dials in flight that hold an outbound slot: all but probes.
    pub(super) fn outbound_dials(&self) -> usize {
        self.dialing
            .keys()
            .filter(|addr| !self.probes.contains(addr))
            .count()
    }

    /// Whether a dial to an address carrying `peer`'s identity is queued or in flight, or a
    /// handshake with `peer` is under way — probes aside, which never connect anyone.
    pub(super) fn is_connecting(&self, peer: &PeerId) -> bool {
        let is_probe = |addr: &NetAddress| self.probes.contains(&addr.socket_addr());
        let handshaking = self.candidates.get(peer).is_some_and(|conns| {
            conns.iter().any(|conn| {
                self.conns
                    .get(*conn)
                    .is_some_and(|entry| !entry.dialed.as_ref().is_some_and(is_probe))
            })
        });
        handshaking
            || self
                .dials
                .addresses()
                .any(|addr| addr.peer_id() == Some(*peer) && !is_probe(addr))
    }

    /// Starts the dials that are due, as far as the dial queue allows.
    pub(super) fn start_dials(&mut self, now: Instant) {
        if self.shutting_down {
            return;
        }
        while let Some(addr) = self.dials.poll_dial(now) {
            let check = self.check_dial(now, &addr);
            if check == Err(DialError::AlreadyConnected)
                && addr
                    .peer_id()
                    .is_some_and(|peer| !self.peers.contains_key(&peer))
            {
                self.dial_lost_to_query(now, addr);
                continue;
            }
            if let Err(error) = check {
                self.dials.remove(addr.socket_addr());
                let reason = match error {
                    DialError::SelfDial => DisconnectReason::SelfConnection,
                    DialError::AlreadyConnected => DisconnectReason::AlreadyConnected,
                    DialError::Banned => DisconnectReason::Banned,
                    DialError::ShuttingDown => DisconnectReason::Quitting,
                };
                self.report_dial_failure(addr, reason, error.to_string(), Retry::GivenUp);
                continue;
            }
            let persistent = self.peer_set.is_persistent_addr(&addr);
            let probe = self.probes.contains(&addr.socket_addr());
            if !persistent && !probe && !self.peer_set.has_outbound_slot(self.outbound_dials()) {
                // Refused before dialing: the remote never sees a connection it would lose.
                self.dials.remove(addr.socket_addr());
                let detail = String::from("outbound slots full");
                self.report_dial_failure(
                    addr,
                    DisconnectReason::TooManyPeers,
                    detail,
                    Retry::GivenUp,
                );
                continue;
            }
            let ip = addr.socket_addr().ip();
            if let Err(reason) = self.peer_set.admit_outbound_socket(now, ip) {
                self.dials.remove(addr.socket_addr());
                let detail = format!("{reason}: {ip}");
                self.report_dial_failure(addr, reason, detail, Retry::GivenUp);
                continue;
            }
            // The attempt counts from here, not from the address's selection: a dial
            // refused above (the slots filled meanwhile) leaves it free to be chosen again,
            // where counting it would shut it out for the book's `reselect_after`.
            self.record_dial(DialReport::Started { addr, probe });
            let Some(conn) = self.insert_dial(now, self.info.clone(), addr, Some(addr)) else {
                self.peer_set.release(Direction::Outbound, None, None);
                self.forget_dial(addr.socket_addr());
                continue;
            };
            self.dialing.insert(addr.socket_addr(), conn);
            self.actions.push_back(Action::Dial {
                conn,
                addr: addr.socket_addr(),
            });
            self.after(now, conn);
        }
    }

    /// A dial for a peer refused, or beaten in a simultaneous open, by a query connection to
    /// that peer: it failed — the peer is not connected — and is retried as any failed dial
    /// (a persistent peer's forever), since the query connection closes once idle.
    pub(super) fn dial_lost_to_query(&mut self, now: Instant, addr: NetAddress) {
        let socket = addr.socket_addr();
        let persistent = self.peer_set.is_persistent_socket(&socket);
        let retry = self
            .dials
            .handle_failure(now, socket, persistent, &mut self.rng);
        let detail = String::from("a query connection to that peer is open");
        self.report_dial_failure(addr, DisconnectReason::AlreadyConnected, detail, retry);
    }

    /// Reports a dial that failed or was given up, the address already out of the dial
    /// queue or queued for its retry — unless it was a probe, which fails quietly.
    pub(super) fn report_dial_failure(
        &mut self,
        addr: NetAddress,
        reason: DisconnectReason,
        detail: String,
        retry: Retry,
    ) {
        let probe = self.probes.contains(&addr.socket_addr());
        self.probes.remove(&addr.socket_addr());
        self.record_dial(DialReport::Failed {
            addr,
            reason,
            probe,
        });
        if probe {
            // A probe fails quietly: the book learned of it, nobody retries it.
            self.forget_dial(addr.socket_addr());
            return;
        }
        if retry == Retry::GivenUp
            && let Some(peer) = addr.peer_id()
        {
            self.given_up.insert(peer);
        }
        self.events.push_back(NodeEvent::DialFailed {
            addr,
            reason,
            detail,
            retry,
        });
    }

    /// A dial the shutdown ends: given up with `Quitting`, the address's record in the book
    /// untouched; a probe ends quietly, as it fails.
    pub(super) fn report_dial_cancelled(&mut self, addr: NetAddress) {
        if self.probes.remove(&addr.socket_addr()) {
            return;
        }
        self.events.push_back(NodeEvent::DialFailed {
            addr,
            reason: DisconnectReason::Quitting,
            detail: String::from("shutting down"),
            retry: Retry::GivenUp,
        });
    }
}
