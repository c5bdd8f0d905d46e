//! What the protocol hands the application and its callers: ids, events, failures, errors,
//! counters.

use core::fmt;

use bytes::Bytes;

use super::wire::RefuseReason;
use crate::disconnect::DisconnectReason;
use crate::identity::PeerId;
use crate::node::{NodeEvent, QueryError};

/// Our request's id, unique for the protocol's lifetime.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

/// A peer's request awaiting our answer: hand it to [`RequestResponse::respond`] or
/// [`RequestResponse::refuse`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InboundRequest {
    /// Who asked.
    pub peer: PeerId,
    /// The id it chose.
    pub id: u64,
}

/// What the protocol tells the application, as a
/// [`ProtocolEvent`](crate::router::ProtocolEvent) (`downcast_ref::<RequestEvent>()`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestEvent {
    /// A peer asks (only without a handler): answer with [`RequestResponse::respond`].
    Request {
        /// The request, to answer.
        request: InboundRequest,
        /// The question.
        body: Bytes,
    },
    /// Our request's answer.
    Response {
        /// The peer asked.
        peer: PeerId,
        /// The request.
        id: RequestId,
        /// The answer.
        body: Bytes,
    },
    /// Our request ended without an answer.
    Failed {
        /// The peer asked.
        peer: PeerId,
        /// The request.
        id: RequestId,
        /// Why.
        failure: RequestFailure,
    },
}

impl RequestEvent {
    /// The request/response event `event` carries, if it is one
    /// ([`NodeEvent::Protocol`](crate::node::NodeEvent::Protocol) holding a `RequestEvent`).
    /// A node running several request/response protocols tells them apart by
    /// [`ProtocolEvent::protocol`](crate::router::ProtocolEvent::protocol).
    pub fn of(event: &NodeEvent) -> Option<&RequestEvent> {
        match event {
            NodeEvent::Protocol(event) => event.downcast_ref(),
            _ => None,
        }
    }

    /// Our request this event ends ([`RequestEvent::Response`] or [`RequestEvent::Failed`]);
    /// `None` for a peer's request.
    pub fn id(&self) -> Option<RequestId> {
        match self {
            RequestEvent::Response { id, .. } | RequestEvent::Failed { id, .. } => Some(*id),
            RequestEvent::Request { .. } => None,
        }
    }
}

/// Why a request ended without an answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestFailure {
    /// No answer within [`RequestResponseConfig::timeout`]; an answer arriving later is
    /// dropped.
    TimedOut,
    /// The peer disconnected first, for this reason.
    PeerGone(DisconnectReason),
    /// The peer refused it.
    Refused(RefuseReason),
    /// The query connection to the peer ([`RequestResponse::request_to`]) could not be
    /// opened, for this reason: the request was never sent.
    Unreachable(DisconnectReason),
}

impl fmt::Display for RequestFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestFailure::TimedOut => f.write_str("timed out"),
            RequestFailure::PeerGone(reason) => write!(f, "peer disconnected: {reason}"),
            RequestFailure::Refused(reason) => write!(f, "refused: {reason}"),
            RequestFailure::Unreachable(reason) => {
                write!(f, "no query connection to the peer: {reason}")
            }
        }
    }
}

/// Why a request was not sent; nothing is pending for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestError {
    /// The peer is not connected, or does not speak this protocol.
    NotConnected(Bytes),
    /// As many requests are in flight as the config allows, to this peer or in all.
    TooManyInFlight(Bytes),
    /// The body does not fit the channel's maximum message size.
    TooLarge(Bytes),
    /// [`RequestResponse::request_to`]: the address carries no peer id (the answer must
    /// come from the peer asked, which the handshake proves).
    NoPeerId(Bytes),
    /// [`RequestResponse::request_to`]: no query connection can be opened to the address.
    Query(QueryError, Bytes),
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::NotConnected(_) => {
                f.write_str("the peer is not connected or does not speak the protocol")
            }
            RequestError::TooManyInFlight(_) => f.write_str("too many requests in flight"),
            RequestError::TooLarge(_) => {
                f.write_str("the request exceeds the channel's maximum message size")
            }
            RequestError::NoPeerId(_) => f.write_str("the address carries no peer id"),
            RequestError::Query(error, _) => write!(f, "no query connection: {error}"),
        }
    }
}

impl core::error::Error for RequestError {}

/// An answer to a request that is no longer awaited: answered already, or its peer left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownRequest(pub InboundRequest);

impl fmt::Display for UnknownRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "request {} of {} is not awaiting an answer",
            self.0.id, self.0.peer
        )
    }
}

impl core::error::Error for UnknownRequest {}

/// What the protocol did so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestStats {
    /// Our requests sent (queued on the connection).
    pub requests_sent: u64,
    /// Answers received to them.
    pub responses: u64,
    /// Our requests that failed (timed out, peer gone, refused).
    pub failed: u64,
    /// Answers that came after their request had ended (a timeout), dropped.
    pub late: u64,
    /// Peers' requests received.
    pub requests_received: u64,
    /// Peers' requests refused as busy, beyond [`RequestResponseConfig::max_inbound_per_peer`].
    pub refused_busy: u64,
}
