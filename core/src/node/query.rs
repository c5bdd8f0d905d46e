//! Query connections: short-lived connections outside the peer slots, each carrying one
//! protocol's requests to a node we are not peered with (a Kademlia lookup's), in bounded
//! budgets at both ends, declared in the handshake ([`FEATURE_QUERY`], `PROTOCOL.md` §3.1)
//! so both ends agree what the connection is for, and closed once idle.
//!
//! A query connection is a connection like any other to the rest of the node (phases,
//! timers, flow control, one connection per peer); what differs is held here: how it is
//! opened, admitted, timed out and reported.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use core::fmt;
use core::net::SocketAddr;

use rand_core::CryptoRng;

use super::lifecycle::{inbound_ip, own_confirmed, own_messages};
use super::{Action, ConnId, Entry, Node, NodeEvent, PeerReport, Phase};

use crate::connection::{Closed, ClosedBy};
use crate::disconnect::DisconnectReason;
use crate::identity::PeerId;
use crate::net_address::NetAddress;
use crate::node_info::{FEATURE_QUERY, NodeInfo};
use crate::peer_set::Direction;
use crate::time::Instant;

/// Why [`Node::open_query`] refused at once; nothing was dialed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum QueryError {
    /// The address carries our own identity.
    SelfDial,
    /// That peer, or the address's IP, is banned.
    Banned,
    /// The address's IP is outside the allowed networks.
    NotAllowed,
    /// A peer or query connection to that peer exists: use [`Node::send`].
    AlreadyConnected,
    /// A query connection to that address is being opened: wait for its
    /// [`NodeEvent::QueryConnected`] or [`NodeEvent::QueryFailed`].
    Dialing,
    /// [`Limits::max_outbound_queries`](crate::peer_set::Limits::max_outbound_queries)
    /// query connections are in flight or open: try again when one ends.
    BudgetFull,
    /// The node is shutting down.
    ShuttingDown,
    /// The node offers no channel of that protocol.
    UnknownProtocol,
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QueryError::SelfDial => "refusing to dial ourselves",
            QueryError::Banned => "peer or address banned",
            QueryError::NotAllowed => "address outside the allowed networks",
            QueryError::AlreadyConnected => {
                "a connection to that peer exists already: send over it"
            }
            QueryError::Dialing => "a query connection to that address is being opened",
            QueryError::BudgetFull => "the outbound query budget is full",
            QueryError::ShuttingDown => "the node is shutting down",
            QueryError::UnknownProtocol => "the node offers no channel of that protocol",
        })
    }
}

impl core::error::Error for QueryError {}

/// What a query connection's entry holds beside the connection.
#[derive(Debug)]
pub(super) struct Query {
    /// Outbound: the address dialed and the protocol named, for `QueryFailed`.
    dialed: Option<(NetAddress, String)>,
    /// Outbound, until connected: when the dial fails as timed out.
    dial_deadline: Option<Instant>,
    /// Since when nothing was queued, unconfirmed or received.
    quiet_since: Option<Instant>,
    /// Closed by us (idle or timed out): nothing more to decide.
    closing: bool,
}

/// The node's query connections, by kind.
#[derive(Debug, Default)]
pub(super) struct Queries {
    /// Open query connections, by peer.
    open: BTreeMap<PeerId, ConnId>,
    /// Our query dials not yet connected, by address.
    dialing: BTreeMap<SocketAddr, ConnId>,
    /// Open inbound query connections.
    inbound: usize,
    /// Open outbound query connections.
    outbound: usize,
}

impl Queries {
    /// The open query connection to `peer`.
    pub(super) fn conn(&self, peer: &PeerId) -> Option<ConnId> {
        self.open.get(peer).copied()
    }

    /// Whether any query connection is open.
    pub(super) fn any_open(&self) -> bool {
        !self.open.is_empty()
    }

    /// Peers with an open query connection.
    pub(super) fn peers(&self) -> impl Iterator<Item = (&PeerId, &ConnId)> {
        self.open.iter()
    }
}

impl<R: CryptoRng> Node<R> {
    /// Opens a query connection to `addr` for `protocol`: a connection outside the peer
    /// slots and the dial queue (no pacing, no retry; the dial timeout applies), on which
    /// only `protocol`'s channels open. [`NodeEvent::QueryConnected`] follows, then
    /// [`Node::send`] reaches the peer over it until it closes
    /// ([`NodeEvent::QueryDisconnected`], once idle for
    /// [`Limits::query_idle_timeout`](crate::peer_set::Limits::query_idle_timeout)); or
    /// [`NodeEvent::QueryFailed`], once. At most
    /// [`Limits::max_outbound_queries`](crate::peer_set::Limits::max_outbound_queries)
    /// are in flight and open together.
    pub fn open_query(
        &mut self,
        now: Instant,
        addr: NetAddress,
        protocol: &str,
    ) -> Result<(), QueryError> {
        if self.shutting_down {
            return Err(QueryError::ShuttingDown);
        }
        let socket = addr.socket_addr();
        if let Some(peer) = addr.peer_id() {
            if peer == self.local_id {
                return Err(QueryError::SelfDial);
            }
            if self.peers.contains_key(&peer) || self.queries.open.contains_key(&peer) {
                return Err(QueryError::AlreadyConnected);
            }
            if self.peer_set.bans().is_peer_banned(now, &peer) {
                return Err(QueryError::Banned);
            }
        }
        if self.queries.dialing.contains_key(&socket) {
            return Err(QueryError::Dialing);
        }
        let mut info = self.info.clone();
        info.channels.retain(|channel| channel.protocol == protocol);
        if info.channels.is_empty() {
            return Err(QueryError::UnknownProtocol);
        }
        info.features |= FEATURE_QUERY;
        let used = self
            .queries
            .dialing
            .len()
            .saturating_add(self.queries.outbound);
        if used >= self.config.limits.max_outbound_queries {
            return Err(QueryError::BudgetFull);
        }
        self.peer_set
            .admit_outbound_socket(now, socket.ip())
            .map_err(|reason| match reason {
                DisconnectReason::NotAllowed => QueryError::NotAllowed,
                _ => QueryError::Banned,
            })?;
        let Some(conn) = self.insert_dial(now, info, addr, None) else {
            // Our own NodeInfo failed to encode (checked when the node was built), or every
            // connection id is taken: a bug, refused as the protocol's.
            self.peer_set.release(Direction::Outbound, None, None);
            return Err(QueryError::UnknownProtocol);
        };
        if let Some(entry) = self.conns.get_mut(conn) {
            entry.query = Some(Box::new(Query {
                dialed: Some((addr, String::from(protocol))),
                dial_deadline: Some(now.saturating_add(self.config.dial.dial_timeout)),
                quiet_since: None,
                closing: false,
            }));
        }
        self.queries.dialing.insert(socket, conn);
        self.actions.push_back(Action::Dial { conn, addr: socket });
        self.after(now, conn);
        Ok(())
    }

    /// Query connections open or being opened: (inbound, outbound), the outbound count
    /// including our dials in flight. Never above
    /// [`Limits::max_inbound_queries`](crate::peer_set::Limits::max_inbound_queries) and
    /// [`Limits::max_outbound_queries`](crate::peer_set::Limits::max_outbound_queries),
    /// which a checker may hold them to.
    pub fn query_counts(&self) -> (usize, usize) {
        (
            self.queries.inbound,
            self.queries
                .outbound
                .saturating_add(self.queries.dialing.len()),
        )
    }

    /// Whether `peer` is connected over a query connection (not as a peer).
    pub fn is_query_peer(&self, peer: &PeerId) -> bool {
        self.queries.open.contains_key(peer)
    }

    /// Whether the handshake completing on `conn` is a query connection's: ours (opened by
    /// [`Node::open_query`]) or a dialer's that set [`FEATURE_QUERY`].
    pub(super) fn is_query(&self, conn: ConnId, info: &NodeInfo) -> bool {
        self.conns
            .get(conn)
            .is_some_and(|entry| match entry.direction {
                Direction::Outbound => entry.query.is_some(),
                Direction::Inbound => info.is_query(),
            })
    }

    /// A query connection's handshake completed: admits it into its budget (one connection
    /// per peer holding across kinds), or refuses it — never touching a peer slot.
    pub(super) fn on_query_connected(
        &mut self,
        now: Instant,
        conn: ConnId,
        peer: PeerId,
        info: Box<NodeInfo>,
    ) {
        let inbound = self
            .conns
            .get(conn)
            .is_some_and(|entry| entry.direction == Direction::Inbound);
        // A query connection is for one protocol (`PROTOCOL.md` §6.8): a dialer offering
        // several breaks the protocol, or would have strangers' connections open every
        // channel we have.
        let verdict = if inbound && !offers_one_protocol(&info) {
            Err(DisconnectReason::ProtocolError)
        } else {
            self.query_admission(now, conn, peer)
        };
        if let Some(set) = self.candidates.get_mut(&peer) {
            set.remove(&conn);
            if set.is_empty() {
                self.candidates.remove(&peer);
            }
        }
        let Some(entry) = self.conns.get_mut(conn) else {
            return;
        };
        let direction = entry.direction;
        if let Err(reason) = verdict {
            entry.phase = Phase::Dropped;
            entry.connection.close(now, reason, reason.as_str());
            self.peer_set.release(direction, None, inbound_ip(entry));
            let dialed = entry.query.as_mut().and_then(|query| query.dialed.take());
            if let Some((addr, protocol)) = dialed {
                self.queries.dialing.remove(&addr.socket_addr());
                self.events.push_back(NodeEvent::QueryFailed {
                    addr,
                    protocol,
                    reason,
                    detail: String::from(reason.as_str()),
                });
            } else if reason != DisconnectReason::AlreadyConnected {
                self.events.push_back(NodeEvent::InboundRefused {
                    remote: entry.remote,
                    peer: Some(peer),
                    reason,
                    by: ClosedBy::Local,
                    detail: format!("query connection: {reason}"),
                });
            }
            return;
        }
        entry.phase = Phase::Connected;
        entry.slot = Some(self.peer_set.admit_query());
        entry.info = Some(info.clone());
        let query = entry.query.get_or_insert_with(|| {
            Box::new(Query {
                dialed: None,
                dial_deadline: None,
                quiet_since: None,
                closing: false,
            })
        });
        query.dial_deadline = None;
        match direction {
            Direction::Inbound => self.queries.inbound = self.queries.inbound.saturating_add(1),
            Direction::Outbound => {
                self.queries.outbound = self.queries.outbound.saturating_add(1);
                self.queries.dialing.remove(&entry.remote);
            }
        }
        self.queries.open.insert(peer, conn);
        self.events.push_back(NodeEvent::QueryConnected {
            peer,
            info,
            direction,
        });
    }

    /// Whether `conn`, a query connection, may be `peer`'s connection: no other is seen,
    /// it wins the simultaneous open, the peer is not banned, and (inbound) the budget has
    /// room. Never evicts.
    fn query_admission(
        &mut self,
        now: Instant,
        conn: ConnId,
        peer: PeerId,
    ) -> Result<(), DisconnectReason> {
        if self.peers.contains_key(&peer) || self.queries.open.contains_key(&peer) {
            return Err(DisconnectReason::AlreadyConnected);
        }
        self.resolve_rivals(now, conn, peer, true)?;
        if self.peer_set.bans().is_peer_banned(now, &peer) {
            return Err(DisconnectReason::Banned);
        }
        let inbound = self
            .conns
            .get(conn)
            .is_some_and(|entry| entry.direction == Direction::Inbound);
        if inbound && self.queries.inbound >= self.config.limits.max_inbound_queries {
            return Err(DisconnectReason::TooManyPeers);
        }
        Ok(())
    }

    /// `rival`, a connection not yet seen, lost a simultaneous open and was closed: if it
    /// was our query dial, it fails (`AlreadyConnected`: send over the winner).
    pub(super) fn query_dial_lost(&mut self, rival: ConnId) {
        let Some(entry) = self.conns.get_mut(rival) else {
            return;
        };
        let Some((addr, protocol)) = entry.query.as_mut().and_then(|query| query.dialed.take())
        else {
            return;
        };
        self.queries.dialing.remove(&addr.socket_addr());
        self.events.push_back(NodeEvent::QueryFailed {
            addr,
            protocol,
            reason: DisconnectReason::AlreadyConnected,
            detail: String::from("simultaneous open: lost"),
        });
    }

    /// A query connection ended in `phase`: its budget given back, and its end reported.
    pub(super) fn on_query_closed(
        &mut self,
        conn: ConnId,
        phase: Phase,
        peer: Option<PeerId>,
        closed: Closed,
    ) {
        let Some(entry) = self.conns.get_mut(conn) else {
            return;
        };
        let (direction, ip) = (entry.direction, inbound_ip(entry));
        let dialed = entry.query.as_mut().and_then(|query| query.dialed.take());
        match phase {
            Phase::Connected => {
                self.peer_set.release(direction, entry.slot, ip);
                let Some(peer) = peer else {
                    return;
                };
                if self.queries.open.get(&peer) == Some(&conn) {
                    self.queries.open.remove(&peer);
                }
                let count = match direction {
                    Direction::Inbound => &mut self.queries.inbound,
                    Direction::Outbound => &mut self.queries.outbound,
                };
                *count = count.saturating_sub(1);
                let unsent = own_messages(closed.outcome.unsent);
                let unconfirmed = own_messages(closed.outcome.unconfirmed);
                if let Some(report) = self.shutdown_report.as_mut() {
                    // What `send` accepted for a query peer is accounted for at shutdown as
                    // a peer's is.
                    let (_, confirmed) = own_confirmed(closed.outcome.confirmed_by_channel);
                    report.peers.push(PeerReport {
                        peer,
                        reason: closed.reason,
                        confirmed,
                        unsent: unsent.clone(),
                        unconfirmed: unconfirmed.clone(),
                    });
                }
                let event = NodeEvent::QueryDisconnected {
                    peer,
                    reason: closed.reason,
                    by: closed.by,
                    detail: closed.detail,
                    unsent,
                    unconfirmed,
                };
                self.events.push_back(event);
            }
            Phase::Connecting | Phase::Handshaking => {
                self.peer_set.release(direction, None, ip);
                if let Some((addr, protocol)) = dialed {
                    self.queries.dialing.remove(&addr.socket_addr());
                    self.events.push_back(NodeEvent::QueryFailed {
                        addr,
                        protocol,
                        reason: closed.reason,
                        detail: closed.detail,
                    });
                }
            }
            Phase::Dropped => {}
        }
    }
}

/// The deadline a query connection adds to its connection's, after anything touched it:
/// its dial's timeout until connected, then the idle timeout from when it fell quiet. `Err`
/// when it passed: close the connection with that reason and detail.
pub(super) fn deadline(
    entry: &mut Entry,
    now: Instant,
    idle_timeout: core::time::Duration,
) -> Result<Option<Instant>, (DisconnectReason, &'static str)> {
    let Some(query) = entry.query.as_mut() else {
        return Ok(None);
    };
    if query.closing || entry.connection.is_closed() {
        return Ok(None);
    }
    let due = match entry.phase {
        Phase::Connecting | Phase::Handshaking => match query.dial_deadline {
            Some(at) if at <= now => {
                query.closing = true;
                return Err((DisconnectReason::Timeout, "query dial timed out"));
            }
            at => at,
        },
        Phase::Connected => {
            let quiet = entry.connection.is_flushed()
                && !entry.in_read_queue
                && entry.connection.peek_event().is_none();
            if !quiet {
                query.quiet_since = None;
                return Ok(None);
            }
            let at = query
                .quiet_since
                .get_or_insert(now)
                .saturating_add(idle_timeout);
            if at <= now {
                query.closing = true;
                return Err((DisconnectReason::Requested, "query connection idle"));
            }
            Some(at)
        }
        Phase::Dropped => None,
    };
    Ok(due)
}

/// Whether every channel `info` offers is one protocol's (several versions of it allowed).
fn offers_one_protocol(info: &NodeInfo) -> bool {
    let mut names = info.channels.iter().map(|channel| &channel.protocol);
    let first = names.next();
    names.all(|name| Some(name) == first)
}

/// Peers reached over a query connection, for [`Node::send`] and friends: the connection
/// of `peer`, peer or query.
pub(super) fn conn_of(
    peers: &hashbrown::HashMap<PeerId, ConnId, foldhash::fast::FixedState>,
    queries: &Queries,
    peer: &PeerId,
) -> Option<ConnId> {
    peers.get(peer).copied().or_else(|| queries.conn(peer))
}

#[cfg(test)]
mod tests;
