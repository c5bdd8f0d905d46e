//! Requests to peers we are not connected to ([`RequestResponse::request_to`]): held while
//! a query connection opens for them — or, with the query budget full, until a query slot
//! frees — and sent, or failed, once it is decided.

use alloc::collections::{VecDeque, btree_map};
use alloc::vec::Vec;
use core::time::Duration;

use bytes::Bytes;

use super::{RequestError, RequestFailure, RequestId, RequestResponse, WireMessage};
use crate::disconnect::DisconnectReason;
use crate::identity::PeerId;
use crate::net_address::NetAddress;
use crate::node::QueryError;
use crate::router::{Context, TimerKey};

/// The timer that retries opening query connections while requests wait for a query slot
/// another protocol (or an inbound stranger) may free without our hearing of it.
pub(super) const RETRY: TimerKey = TimerKey(1);
/// How often waiting requests try for a query slot.
pub(super) const RETRY_INTERVAL: Duration = Duration::from_millis(100);

/// Requests held for one peer while its query connection opens.
pub(super) struct Held {
    pub(super) addr: NetAddress,
    /// Whether the query connection is being opened; `false` while waiting for a query slot.
    pub(super) opening: bool,
    /// The encoded requests, in the order asked.
    pub(super) requests: VecDeque<(u64, Bytes)>,
}

impl RequestResponse {
    /// Asks the peer at `addr` (which must carry its peer id) whether or not it is
    /// connected: over its peer or query connection if one speaks this protocol, else over
    /// a query connection opened for it ([`Context::open_query`]), the request held until it
    /// connects — or, with the query budget full, until a query slot frees. The bounds and
    /// the timeout apply from now, held or not; a query connection that cannot be opened
    /// ends the request as [`RequestFailure::Unreachable`]. Its answer, or why there is none,
    /// comes later as one [`RequestEvent`].
    pub fn request_to(
        &mut self,
        ctx: &mut Context<'_>,
        addr: NetAddress,
        body: Bytes,
    ) -> Result<RequestId, RequestError> {
        let Some(peer) = addr.peer_id() else {
            return Err(RequestError::NoPeerId(body));
        };
        if ctx.peers().iter().any(|(p, _)| *p == peer) {
            return self.request(ctx, peer, body);
        }
        if self.outbound.len() >= self.config.max_in_flight
            || self.in_flight_to(&peer) >= self.config.max_in_flight_per_peer
        {
            return Err(RequestError::TooManyInFlight(body));
        }
        if body.len() > self.max_body() {
            return Err(RequestError::TooLarge(body));
        }
        if let btree_map::Entry::Vacant(vacant) = self.held.entry(peer) {
            let opening = match ctx.open_query(addr) {
                Ok(()) => true,
                // Another protocol's query connection is opening there (it will not carry
                // ours), or the budget is full: wait, and try again.
                Err(QueryError::Dialing | QueryError::BudgetFull) => false,
                // A query connection of another protocol's: ours once it idles away.
                Err(QueryError::AlreadyConnected) if ctx.is_query(&peer) => false,
                Err(QueryError::AlreadyConnected) => {
                    return Err(RequestError::NotConnected(body));
                }
                Err(error) => return Err(RequestError::Query(error, body)),
            };
            vacant.insert(Held {
                addr,
                opening,
                requests: VecDeque::new(),
            });
            if !opening {
                let _ = ctx.set_timer(RETRY, ctx.now().saturating_add(RETRY_INTERVAL));
            }
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let message = WireMessage::Request { id, body }.encode();
        if let Some(held) = self.held.get_mut(&peer) {
            held.requests.push_back((id, message));
        }
        let deadline = ctx.now().saturating_add(self.config.timeout);
        self.outbound.insert((peer, id), deadline);
        self.deadlines.insert((deadline, peer, id));
        self.arm(ctx);
        Ok(RequestId(id))
    }

    /// Requests held for a query connection ([`RequestResponse::request_to`]), not yet sent.
    pub fn held(&self) -> usize {
        self.held.values().map(|held| held.requests.len()).sum()
    }

    /// Sends the requests held for `peer`, now connected.
    pub(super) fn release_held(&mut self, ctx: &mut Context<'_>, peer: PeerId) {
        let Some(held) = self.held.remove(&peer) else {
            return;
        };
        for (id, message) in held.requests {
            if self.transmit(ctx, peer, message, false).is_err() {
                self.finish(
                    ctx,
                    peer,
                    id,
                    Err(RequestFailure::PeerGone(DisconnectReason::Requested)),
                );
                continue;
            }
            self.stats.requests_sent = self.stats.requests_sent.saturating_add(1);
        }
    }

    /// Ends every request held for `peer` with `failure`.
    pub(super) fn fail_held(
        &mut self,
        ctx: &mut Context<'_>,
        peer: PeerId,
        failure: &RequestFailure,
    ) {
        let Some(held) = self.held.remove(&peer) else {
            return;
        };
        for (id, _) in held.requests {
            self.finish(ctx, peer, id, Err(failure.clone()));
        }
    }

    /// Tries again to open the query connections of requests waiting for a query slot.
    pub(super) fn retry_waiting(&mut self, ctx: &mut Context<'_>) {
        let waiting: Vec<(PeerId, NetAddress)> = self
            .held
            .iter()
            .filter(|(_, held)| !held.opening)
            .map(|(peer, held)| (*peer, held.addr))
            .collect();
        for (peer, addr) in waiting {
            if ctx.peers().iter().any(|(p, _)| *p == peer) {
                self.release_held(ctx, peer);
                continue;
            }
            match ctx.open_query(addr) {
                Ok(()) => {
                    if let Some(held) = self.held.get_mut(&peer) {
                        held.opening = true;
                    }
                }
                Err(QueryError::Dialing) => {}
                // Full: so will the next ones be.
                Err(QueryError::BudgetFull) => break,
                Err(QueryError::AlreadyConnected) if ctx.is_query(&peer) => {}
                Err(error) => {
                    let failure = RequestFailure::Unreachable(query_reason(error));
                    self.fail_held(ctx, peer, &failure);
                }
            }
        }
        if self.held.values().any(|held| !held.opening) {
            let _ = ctx.set_timer(RETRY, ctx.now().saturating_add(RETRY_INTERVAL));
        } else {
            ctx.cancel_timer(RETRY);
        }
    }
}

/// The reason a request held for a query connection ends with, when opening it is refused.
pub(super) fn query_reason(error: QueryError) -> DisconnectReason {
    match error {
        QueryError::SelfDial => DisconnectReason::SelfConnection,
        QueryError::Banned => DisconnectReason::Banned,
        QueryError::NotAllowed => DisconnectReason::NotAllowed,
        QueryError::AlreadyConnected => DisconnectReason::AlreadyConnected,
        QueryError::ShuttingDown => DisconnectReason::Quitting,
        QueryError::Dialing | QueryError::BudgetFull | QueryError::UnknownProtocol => {
            DisconnectReason::UselessPeer
        }
    }
}
