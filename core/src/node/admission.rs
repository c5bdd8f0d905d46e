//! A completed handshake: admitting the peer (one connection per peer, the peer set's
//! caps, inbound eviction) or refusing it invisibly.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use rand_core::CryptoRng;

use super::lifecycle::inbound_ip;
use super::{ConnId, DialReport, Node, NodeEvent, Phase, eviction};

use crate::connection::ClosedBy;
use crate::dial_queue::Retry;
use crate::disconnect::DisconnectReason;
use crate::identity::PeerId;
use crate::node_info::NodeInfo;
use crate::peer_set::{Direction, Slot, subnet};
use crate::time::Instant;

impl<R: CryptoRng> Node<R> {
    pub(super) fn dialer_of(&self, conn: ConnId, peer: PeerId) -> Option<PeerId> {
        let entry = self.conns.get(conn)?;
        Some(match entry.direction {
            Direction::Outbound => self.local_id,
            Direction::Inbound => peer,
        })
    }

    /// A handshake completed: admit the peer, or refuse the connection invisibly — as a
    /// probe's always is, its purpose served.
    pub(super) fn on_connected(
        &mut self,
        now: Instant,
        conn: ConnId,
        peer: PeerId,
        info: Box<NodeInfo>,
    ) {
        self.handshakes.remove(conn);
        if self.is_query(conn, &info) {
            return self.on_query_connected(now, conn, peer, info);
        }
        let mut probe = false;
        if let Some(addr) = self.conns.get(conn).and_then(|entry| entry.dialed) {
            probe = self.probes.contains(&addr.socket_addr());
            self.probes.remove(&addr.socket_addr());
            self.record_dial(DialReport::Reached { addr, peer, probe });
        }
        let admission = if probe {
            Err(DisconnectReason::TooManyPeers)
        } else {
            self.admission(now, conn, peer)
        };
        let Some(entry) = self.conns.get_mut(conn) else {
            return;
        };
        if let Some(set) = self.candidates.get_mut(&peer) {
            set.remove(&conn);
            if set.is_empty() {
                self.candidates.remove(&peer);
            }
        }
        let slot = match admission {
            Ok(slot) => slot,
            Err(reason) => {
                // Not admitted: closed without a `PeerConnected`, its pending slot released.
                entry.phase = Phase::Dropped;
                entry.connection.close(now, reason, reason.as_str());
                let dialed = entry.dialed.take();
                if let Some(addr) = dialed {
                    self.dialing.remove(&addr.socket_addr());
                }
                self.peer_set
                    .release(entry.direction, None, inbound_ip(entry));
                // A dial the node was asked for learns why — unless it lost a simultaneous
                // open (its peer is connected: nothing failed) or was a probe. Normally
                // refused before dialing; here when it took over a probe in flight with
                // every slot full. Losing to an open query connection is a failure: the
                // peer is not connected.
                let lost_to_query = self.queries.conn(&peer).is_some();
                let inbound = entry.direction == Direction::Inbound;
                let remote = entry.remote;
                match dialed {
                    Some(addr)
                        if !probe
                            && reason == DisconnectReason::AlreadyConnected
                            && lost_to_query =>
                    {
                        self.dial_lost_to_query(now, addr);
                    }
                    Some(addr) => {
                        self.dials.remove(addr.socket_addr());
                        if !probe && reason != DisconnectReason::AlreadyConnected {
                            let detail = String::from(reason.as_str());
                            self.report_dial_failure(addr, reason, detail, Retry::GivenUp);
                        }
                    }
                    None => {}
                }
                if inbound && reason != DisconnectReason::AlreadyConnected {
                    self.events.push_back(NodeEvent::InboundRefused {
                        remote,
                        peer: Some(peer),
                        reason,
                        by: ClosedBy::Local,
                        detail: String::from(reason.as_str()),
                    });
                }
                return;
            }
        };
        entry.phase = Phase::Connected;
        entry.slot = Some(slot);
        entry.info = Some(info.clone());
        if let Some(addr) = entry.dialed {
            self.dialing.remove(&addr.socket_addr());
            self.dials.handle_success(addr.socket_addr());
        }
        let direction = entry.direction;
        if direction == Direction::Inbound {
            let (remote, listen_addr) = (entry.remote, info.listen_addr);
            self.record_dial(DialReport::Accepted {
                peer,
                remote,
                listen_addr,
            });
        }
        self.peers.insert(peer, conn);
        self.given_up.remove(&peer);
        self.events.push_back(NodeEvent::PeerConnected {
            peer,
            info,
            direction,
        });
    }

    /// Admits `conn` as `peer`'s connection, or says why not; closes the losers of a
    /// simultaneous open as a side effect.
    pub(super) fn admission(
        &mut self,
        now: Instant,
        conn: ConnId,
        peer: PeerId,
    ) -> Result<Slot, DisconnectReason> {
        if self.peers.contains_key(&peer) || self.is_query_peer(&peer) {
            return Err(DisconnectReason::AlreadyConnected);
        }
        self.resolve_rivals(now, conn, peer, false)?;
        if self.peer_set.bans().is_peer_banned(now, &peer) {
            return Err(DisconnectReason::Banned);
        }
        let direction = self
            .conns
            .get(conn)
            .map(|entry| entry.direction)
            .ok_or(DisconnectReason::ProtocolError)?;
        match self.peer_set.admit_peer(now, &peer, direction) {
            Err(DisconnectReason::TooManyPeers)
                if direction == Direction::Inbound && self.config.eviction.enabled =>
            {
                let victim = self
                    .eviction_victim(now)
                    .ok_or(DisconnectReason::TooManyPeers)?;
                self.evict(now, victim);
                self.peer_set.admit_peer(now, &peer, direction)
            }
            admitted => admitted,
        }
    }

    /// The simultaneous-open rule, for `conn` completing as `peer`'s connection while
    /// others to `peer`, not yet seen, are in the handshake (peer or query connections
    /// alike): refused if a rival wins, else the rivals are closed. A dial for a peer that
    /// loses to a query connection (`query`) failed — its peer is not connected — and is
    /// reported and retried as any failed dial; one that loses to a peer connection is
    /// answered by that connection's `PeerConnected`.
    pub(super) fn resolve_rivals(
        &mut self,
        now: Instant,
        conn: ConnId,
        peer: PeerId,
        query: bool,
    ) -> Result<(), DisconnectReason> {
        let lower = self.local_id.min(peer);
        let wins = self.dialer_of(conn, peer) == Some(lower);
        let rivals: Vec<ConnId> = self
            .candidates
            .get(&peer)
            .map(|set| set.iter().copied().filter(|other| *other != conn).collect())
            .unwrap_or_default();
        for rival in rivals {
            let rival_wins = self.dialer_of(rival, peer) == Some(lower);
            if rival_wins && !wins {
                return Err(DisconnectReason::AlreadyConnected);
            }
            // This connection wins (or both were dialed by the same side and it finished
            // first): the rival, not yet seen by anyone, is closed.
            let mut lost_dial = None;
            if let Some(entry) = self.conns.get_mut(rival) {
                entry.phase = Phase::Dropped;
                entry.connection.close(
                    now,
                    DisconnectReason::AlreadyConnected,
                    "simultaneous open: lost",
                );
                lost_dial = entry.dialed.take();
                self.peer_set
                    .release(entry.direction, None, inbound_ip(entry));
            }
            if let Some(addr) = lost_dial {
                let socket = addr.socket_addr();
                self.dialing.remove(&socket);
                if query && !self.probes.contains(&socket) {
                    self.dial_lost_to_query(now, addr);
                } else {
                    self.probes.remove(&socket);
                    self.dials.remove(socket);
                }
            }
            self.query_dial_lost(rival);
            if let Some(set) = self.candidates.get_mut(&peer) {
                set.remove(&rival);
            }
            self.handshakes.remove(rival);
        }
        Ok(())
    }

    /// The inbound peer to evict for a new one ([`EvictionConfig`]): among the connected
    /// inbound peers holding a counted slot, neither persistent nor trusted.
    pub(super) fn eviction_victim(&mut self, now: Instant) -> Option<ConnId> {
        let rng = &mut self.rng;
        let key = *self.eviction_key.get_or_insert_with(|| rng.next_u64());
        let candidates = self
            .peers
            .iter()
            .filter(|(peer, _)| {
                !self.peer_set.is_persistent(peer) && !self.peer_set.is_trusted(peer)
            })
            .filter_map(|(_, &conn)| {
                let entry = self.conns.get(conn)?;
                let counted = entry.direction == Direction::Inbound
                    && entry.slot == Some(Slot::Counted)
                    && entry.connection.is_established();
                if !counted {
                    return None;
                }
                let stats = entry.connection.stats();
                Some(eviction::Candidate {
                    conn,
                    subnet: subnet(entry.remote.ip()),
                    connected_at: stats.established_at.unwrap_or(now),
                    rtt: stats.rtt,
                    last_useful: entry.last_useful,
                })
            })
            .collect();
        eviction::select(&self.config.eviction, key, candidates)
    }

    /// Evicts inbound `conn` (a GOAWAY with `Evicted`; its `PeerDisconnected` follows) and
    /// gives its slot back at once, for the new peer to take while it drains.
    pub(super) fn evict(&mut self, now: Instant, conn: ConnId) {
        if let Some(entry) = self.conns.get_mut(conn)
            && let Some(slot @ Slot::Counted) = entry.slot
        {
            entry.slot = Some(Slot::Released);
            self.peer_set.release(entry.direction, Some(slot), None);
        }
        self.close_connection(
            now,
            conn,
            DisconnectReason::Evicted,
            "inbound slots full: evicted for a new peer",
        );
    }
}
