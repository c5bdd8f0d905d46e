//! Request/response: ask a peer a question and get its answer — or learn, once, why not.
//!
//! [`RequestResponse`] is a [`Protocol`]: registered on a [`Router`](crate::router::Router),
//! it runs one channel on which every request carries an id its sender chose and every
//! answer carries that id back (`PROTOCOL.md` §9). Each request ends exactly once, as a
//! [`RequestEvent`] the application takes from the node's event stream
//! ([`NodeEvent::Protocol`](crate::node::NodeEvent::Protocol)): [`RequestEvent::Response`],
//! or [`RequestEvent::Failed`] when it timed out, the peer left, or the peer refused.
//!
//! Everything is bounded, so that neither a busy application nor a hostile peer grows it:
//! requests in flight per peer and in all (a request beyond them is refused at once with
//! [`RequestError::TooManyInFlight`]); requests a peer may have us answer at once (beyond,
//! they are refused on the wire as [`RefuseReason::Busy`]); and a peer's queue that is full
//! holds back only messages already counted in those bounds.
//!
//! Answers come from a handler ([`RequestResponse::with_handler`], answered on the spot) or
//! from the application, which hears [`RequestEvent::Request`] and answers later with
//! [`RequestResponse::respond`] or [`RequestResponse::refuse`].
//!
//! [`RequestResponse::request`] asks a connected peer. [`RequestResponse::request_to`] asks
//! any node by its address (one carrying its peer id): over the connection we have to it, or
//! else over a *query connection* opened for the purpose (`PROTOCOL.md` §6.8) — outside the
//! peer slots, in a budget of its own ([`Limits::max_outbound_queries`]), closed once idle —
//! which is how a node whose slots are full still asks strangers (a lookup's hops).
//!
//! [`Limits::max_outbound_queries`]: crate::peer_set::Limits::max_outbound_queries
//!
//! ```
//! use switchboard::node::{Node, NodeConfig};
//! use switchboard::request_response::{RequestResponse, RequestResponseConfig};
//! use switchboard::router::Router;
//! use switchboard::{Bytes, Instant, Keypair};
//! # use rand_chacha::ChaCha20Rng;
//! # use rand_core::SeedableRng;
//!
//! // Answers every question with its bytes reversed.
//! let reverse = RequestResponse::with_handler(RequestResponseConfig::new("reverse", 20), |_peer, question| {
//!     Some(question.iter().rev().copied().collect::<Vec<u8>>().into())
//! });
//! let mut rng = ChaCha20Rng::seed_from_u64(1);
//! let keypair = Keypair::generate(&mut rng);
//! let node = Node::new(Instant::ZERO, NodeConfig::new("mainnet", "app/1"), keypair, rng).unwrap();
//! let mut router = Router::new(node);
//! let reverse = router.register(reverse).unwrap();
//! router.start(Instant::ZERO);
//! // Later, with a peer connected: ask it, and hear the answer as a RequestEvent.
//! # let peer = switchboard::PeerId::from_bytes([1; 32]);
//! let asked = router.with_protocol(Instant::ZERO, reverse, |rr, ctx| {
//!     rr.request(ctx, peer, Bytes::from_static(b"olleh"))
//! });
//! # assert!(asked.unwrap().is_err(), "no such peer here");
//! ```
//!
//! Answering from the application instead: take [`RequestEvent::Request`] out of the event
//! stream ([`RequestEvent::of`]) and answer through the router (with `switchboard-mio`, the
//! same closure through `Handle::with_protocol`):
//!
//! ```
//! use switchboard::node::NodeEvent;
//! use switchboard::request_response::{RequestEvent, RequestResponse};
//! use switchboard::router::Router;
//! use switchboard::Instant;
//! # use rand_chacha::ChaCha20Rng;
//!
//! fn on_event(router: &mut Router<ChaCha20Rng>, now: Instant, event: &NodeEvent) {
//!     if let Some(RequestEvent::Request { request, body }) = RequestEvent::of(event) {
//!         let (request, answer) = (*request, body.clone()); // an echo
//!         if let Some(id) = router.id_of::<RequestResponse>() {
//!             // An error only if the request ended meanwhile (its peer left).
//!             let _ = router.with_protocol(now, id, |rr, ctx| rr.respond(ctx, request, answer));
//!         }
//!     }
//! }
//! ```

mod event;
mod held;
mod wire;

#[cfg(test)]
mod tests;

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::string::String;
use core::fmt;
use core::time::Duration;

use bytes::Bytes;

pub use event::{
    InboundRequest, RequestError, RequestEvent, RequestFailure, RequestId, RequestStats,
    UnknownRequest,
};
pub use wire::{HEADER_LEN, RefuseReason, WireError, WireMessage};

use held::{Held, RETRY};

use crate::channel::{ChannelConfig, ChannelId};
use crate::disconnect::DisconnectReason;
use crate::identity::PeerId;
use crate::mux::SendError;
use crate::net_address::NetAddress;
use crate::router::{Context, Protocol, ProtocolSpec, TimerKey};
use crate::time::Instant;

/// The timer of the earliest request deadline.
const DEADLINE: TimerKey = TimerKey(0);
/// How a [`RequestResponse`] protocol runs.
#[derive(Clone, Debug)]
pub struct RequestResponseConfig {
    /// The protocol name advertised; both ends must use the same.
    pub name: String,
    /// Its channel, with its limits: a request's or answer's body is at most the channel's
    /// maximum message size less [`HEADER_LEN`].
    pub channel: ChannelConfig,
    /// How long a request waits for its answer. Default 10 s: a peer that answers at all
    /// answers within a few round trips, and keepalive notices a dead one within 30 s.
    pub timeout: Duration,
    /// Our requests awaiting an answer from one peer, at most. Default 16.
    pub max_in_flight_per_peer: usize,
    /// Our requests awaiting an answer, in all. Default 256.
    pub max_in_flight: usize,
    /// A peer's requests we hold unanswered at once, at most; beyond, they are refused as
    /// [`RefuseReason::Busy`]. Default 16, mirroring what we ask of others.
    pub max_inbound_per_peer: usize,
}

impl RequestResponseConfig {
    /// Protocol `name` on `channel` (default limits), with the default bounds. Any channel
    /// id below [`RESERVED_CHANNELS_START`](crate::channel::RESERVED_CHANNELS_START)
    /// (`0xFF00`) that no other protocol of the node uses will do.
    pub fn new(name: impl Into<String>, channel: ChannelId) -> Self {
        RequestResponseConfig {
            name: name.into(),
            channel: ChannelConfig::new(channel),
            timeout: Duration::from_secs(10),
            max_in_flight_per_peer: 16,
            max_in_flight: 256,
            max_inbound_per_peer: 16,
        }
    }
}

/// Answers a request on the spot: `Some(answer)`, or `None` to refuse it as declined.
pub type Handler = Box<dyn FnMut(PeerId, &Bytes) -> Option<Bytes>>;

/// The request/response protocol. See the [module documentation](self).
pub struct RequestResponse {
    config: RequestResponseConfig,
    handler: Option<Handler>,
    next_id: u64,
    /// Our requests awaiting an answer, and each one's deadline.
    outbound: BTreeMap<(PeerId, u64), Instant>,
    deadlines: BTreeSet<(Instant, PeerId, u64)>,
    /// Peers' requests awaiting our answer.
    inbound: BTreeSet<(PeerId, u64)>,
    /// Messages a full queue refused, per peer, sent in order when it has room: each one a
    /// request in `outbound` or an answer counted against its peer's inbound share, so
    /// bounded with them.
    blocked: BTreeMap<PeerId, VecDeque<Blocked>>,
    /// Requests to peers not connected ([`RequestResponse::request_to`]), held until the
    /// query connection opens: each one in `outbound` too, so bounded and timed with them.
    held: BTreeMap<PeerId, Held>,
    stats: RequestStats,
}

/// A message waiting for room in its peer's queue.
struct Blocked {
    message: Bytes,
    /// An answer (counted against the asker's inbound share until sent), or a request.
    answer: bool,
}

impl RequestResponse {
    /// A protocol whose application answers requests ([`RequestEvent::Request`]).
    pub fn new(config: RequestResponseConfig) -> Self {
        RequestResponse {
            config,
            handler: None,
            next_id: 0,
            outbound: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            inbound: BTreeSet::new(),
            blocked: BTreeMap::new(),
            held: BTreeMap::new(),
            stats: RequestStats::default(),
        }
    }

    /// A protocol whose `handler` answers every request as it arrives.
    pub fn with_handler(
        config: RequestResponseConfig,
        handler: impl FnMut(PeerId, &Bytes) -> Option<Bytes> + 'static,
    ) -> Self {
        RequestResponse {
            handler: Some(Box::new(handler)),
            ..RequestResponse::new(config)
        }
    }

    /// Its channel.
    pub fn channel(&self) -> ChannelId {
        self.config.channel.id
    }

    /// What it did so far.
    pub fn stats(&self) -> RequestStats {
        self.stats
    }

    /// Our requests awaiting an answer.
    pub fn in_flight(&self) -> usize {
        self.outbound.len()
    }

    /// Asks `peer`: its answer, or why there is none, comes later as one [`RequestEvent`].
    pub fn request(
        &mut self,
        ctx: &mut Context<'_>,
        peer: PeerId,
        body: Bytes,
    ) -> Result<RequestId, RequestError> {
        if !ctx.peers().iter().any(|(p, _)| *p == peer) {
            return Err(RequestError::NotConnected(body));
        }
        if self.outbound.len() >= self.config.max_in_flight
            || self.in_flight_to(&peer) >= self.config.max_in_flight_per_peer
        {
            return Err(RequestError::TooManyInFlight(body));
        }
        if body.len() > self.max_body() {
            return Err(RequestError::TooLarge(body));
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let message = WireMessage::Request {
            id,
            body: body.clone(),
        }
        .encode();
        if self.transmit(ctx, peer, message, false).is_err() {
            // Its channel closed between the peer list and the send: nothing is pending.
            return Err(RequestError::NotConnected(body));
        }
        let deadline = ctx.now().saturating_add(self.config.timeout);
        self.outbound.insert((peer, id), deadline);
        self.deadlines.insert((deadline, peer, id));
        self.stats.requests_sent = self.stats.requests_sent.saturating_add(1);
        self.arm(ctx);
        Ok(RequestId(id))
    }

    fn max_body(&self) -> usize {
        usize::try_from(self.config.channel.max_message_size)
            .unwrap_or(usize::MAX)
            .saturating_sub(HEADER_LEN)
    }

    /// Answers `request` with `body`.
    pub fn respond(
        &mut self,
        ctx: &mut Context<'_>,
        request: InboundRequest,
        body: Bytes,
    ) -> Result<(), UnknownRequest> {
        self.answer(
            ctx,
            request,
            WireMessage::Response {
                id: request.id,
                body,
            },
        )
    }

    /// Tells `request`'s peer it will not be answered ([`RefuseReason::Declined`]).
    pub fn refuse(
        &mut self,
        ctx: &mut Context<'_>,
        request: InboundRequest,
    ) -> Result<(), UnknownRequest> {
        self.answer(
            ctx,
            request,
            WireMessage::Refused {
                id: request.id,
                reason: RefuseReason::Declined,
            },
        )
    }

    fn answer(
        &mut self,
        ctx: &mut Context<'_>,
        request: InboundRequest,
        message: WireMessage,
    ) -> Result<(), UnknownRequest> {
        if !self.inbound.remove(&(request.peer, request.id)) {
            return Err(UnknownRequest(request));
        }
        // A peer gone meanwhile: the answer has no one to go to, and that is not the
        // answerer's error.
        let _ = self.transmit(ctx, request.peer, message.encode(), true);
        Ok(())
    }

    fn in_flight_to(&self, peer: &PeerId) -> usize {
        self.outbound.range((*peer, 0)..=(*peer, u64::MAX)).count()
    }

    /// The peer's requests we hold: unanswered, or answered but waiting for room.
    fn inbound_from(&self, peer: &PeerId) -> usize {
        let waiting = self
            .blocked
            .get(peer)
            .map_or(0, |queue| queue.iter().filter(|b| b.answer).count());
        self.inbound
            .range((*peer, 0)..=(*peer, u64::MAX))
            .count()
            .saturating_add(waiting)
    }

    /// Sends `message` to `peer`, or keeps it for when the peer's queue has room (behind
    /// whatever waits already, so the peer sees our messages in order). Fails only when the
    /// peer is gone or the message can never be sent.
    fn transmit(
        &mut self,
        ctx: &mut Context<'_>,
        peer: PeerId,
        message: Bytes,
        answer: bool,
    ) -> Result<(), SendError> {
        if let Some(queue) = self.blocked.get_mut(&peer) {
            queue.push_back(Blocked { message, answer });
            return Ok(());
        }
        match ctx.send(&peer, self.config.channel.id, message) {
            Ok(()) => Ok(()),
            Err(SendError::Full(message)) => {
                self.blocked
                    .entry(peer)
                    .or_default()
                    .push_back(Blocked { message, answer });
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    /// Sets the timer for the earliest deadline, or cancels it.
    fn arm(&self, ctx: &mut Context<'_>) {
        match self.deadlines.first() {
            // One key, set at most once at a time: the protocol's timer budget cannot run out.
            Some(&(at, _, _)) => {
                let _ = ctx.set_timer(DEADLINE, at);
            }
            None => ctx.cancel_timer(DEADLINE),
        }
    }

    /// Ends our request `(peer, id)` with `outcome`, if it is still awaited.
    fn finish(
        &mut self,
        ctx: &mut Context<'_>,
        peer: PeerId,
        id: u64,
        outcome: Result<Bytes, RequestFailure>,
    ) {
        let Some(deadline) = self.outbound.remove(&(peer, id)) else {
            self.stats.late = self.stats.late.saturating_add(1);
            return;
        };
        self.deadlines.remove(&(deadline, peer, id));
        if let Some(held) = self.held.get_mut(&peer) {
            held.requests.retain(|(held_id, _)| *held_id != id);
            if held.requests.is_empty() {
                self.held.remove(&peer);
            }
        }
        let id = RequestId(id);
        let event = match outcome {
            Ok(body) => {
                self.stats.responses = self.stats.responses.saturating_add(1);
                RequestEvent::Response { peer, id, body }
            }
            Err(failure) => {
                self.stats.failed = self.stats.failed.saturating_add(1);
                RequestEvent::Failed { peer, id, failure }
            }
        };
        ctx.emit(event);
    }

    fn handle_request(&mut self, ctx: &mut Context<'_>, peer: PeerId, id: u64, body: Bytes) {
        self.stats.requests_received = self.stats.requests_received.saturating_add(1);
        if self.inbound.contains(&(peer, id)) {
            // Two requests under one id could never be told apart by their answers.
            ctx.disconnect(&peer, DisconnectReason::ProtocolError);
            return;
        }
        if self.inbound_from(&peer) >= self.config.max_inbound_per_peer {
            self.stats.refused_busy = self.stats.refused_busy.saturating_add(1);
            let refusal = WireMessage::Refused {
                id,
                reason: RefuseReason::Busy,
            };
            // Only if there is room now: a refusal kept for later would be a message per
            // request beyond the bound, which is what the bound is for.
            if !self.blocked.contains_key(&peer) {
                let _ = ctx.send(&peer, self.config.channel.id, refusal.encode());
            }
            return;
        }
        let request = InboundRequest { peer, id };
        self.inbound.insert((peer, id));
        let answer = self.handler.as_mut().map(|handler| handler(peer, &body));
        match answer {
            None => ctx.emit(RequestEvent::Request { request, body }),
            Some(Some(answer)) => {
                let _ = self.respond(ctx, request, answer);
            }
            Some(None) => {
                let _ = self.refuse(ctx, request);
            }
        }
    }
}

impl fmt::Debug for RequestResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestResponse")
            .field("name", &self.config.name)
            .field("channel", &self.config.channel.id)
            .field("handler", &self.handler.is_some())
            .field("in_flight", &self.outbound.len())
            .field("inbound", &self.inbound.len())
            .field("held", &self.held())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Protocol for RequestResponse {
    fn spec(&self) -> ProtocolSpec {
        ProtocolSpec {
            name: self.config.name.clone(),
            versions: 1..=1,
            channels: alloc::vec![self.config.channel],
        }
    }

    fn peer_connected(
        &mut self,
        ctx: &mut Context<'_>,
        peer: PeerId,
        _version: u16,
    ) -> Result<(), DisconnectReason> {
        self.release_held(ctx, peer);
        Ok(())
    }

    fn query_failed(&mut self, ctx: &mut Context<'_>, addr: NetAddress, reason: DisconnectReason) {
        let Some(peer) = addr.peer_id() else {
            return;
        };
        if self.held.get(&peer).is_some_and(|held| held.addr == addr) {
            if ctx.peers().iter().any(|(p, _)| *p == peer) {
                // A connection to the peer won the race, and it speaks the protocol.
                self.release_held(ctx, peer);
            } else if reason == DisconnectReason::AlreadyConnected && ctx.is_query(&peer) {
                if let Some(held) = self.held.get_mut(&peer) {
                    held.opening = false;
                }
            } else {
                self.fail_held(ctx, peer, &RequestFailure::Unreachable(reason));
            }
        }
        self.retry_waiting(ctx);
        self.arm(ctx);
    }

    fn message(&mut self, ctx: &mut Context<'_>, peer: PeerId, _: ChannelId, message: Bytes) {
        match WireMessage::decode(&message) {
            Ok(WireMessage::Request { id, body }) => self.handle_request(ctx, peer, id, body),
            Ok(WireMessage::Response { id, body }) => self.finish(ctx, peer, id, Ok(body)),
            Ok(WireMessage::Refused { id, reason }) => {
                self.finish(ctx, peer, id, Err(RequestFailure::Refused(reason)));
            }
            Err(_) => ctx.disconnect(&peer, DisconnectReason::ProtocolError),
        }
        self.arm(ctx);
    }

    fn peer_disconnected(&mut self, ctx: &mut Context<'_>, peer: PeerId, reason: DisconnectReason) {
        let ids: alloc::vec::Vec<u64> = self
            .outbound
            .range((peer, 0)..=(peer, u64::MAX))
            .map(|(&(_, id), _)| id)
            .collect();
        for id in ids {
            self.finish(ctx, peer, id, Err(RequestFailure::PeerGone(reason)));
        }
        self.inbound.retain(|(asker, _)| *asker != peer);
        self.blocked.remove(&peer);
        // A query connection's end may have freed the query slot a held request waits for.
        self.retry_waiting(ctx);
        self.arm(ctx);
    }

    fn writable(&mut self, ctx: &mut Context<'_>, peer: PeerId, channel: ChannelId) {
        let Some(mut queue) = self.blocked.remove(&peer) else {
            return;
        };
        while let Some(blocked) = queue.pop_front() {
            match ctx.send(&peer, channel, blocked.message) {
                Ok(()) => {}
                Err(SendError::Full(message)) => {
                    queue.push_front(Blocked {
                        message,
                        answer: blocked.answer,
                    });
                    self.blocked.insert(peer, queue);
                    return;
                }
                // Gone: `peer_disconnected` follows and ends its requests.
                Err(_) => return,
            }
        }
    }

    fn timer(&mut self, ctx: &mut Context<'_>, key: TimerKey) {
        if key == RETRY {
            return self.retry_waiting(ctx);
        }
        let now = ctx.now();
        while let Some(&(deadline, peer, id)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            self.finish(ctx, peer, id, Err(RequestFailure::TimedOut));
        }
        self.arm(ctx);
    }
}
