//! What a node tells its adapter and its application.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::net::SocketAddr;

use bytes::Bytes;

use crate::channel::ChannelId;
use crate::connection::ClosedBy;
use crate::dial_queue::Retry;
use crate::disconnect::DisconnectReason;
use crate::identity::PeerId;
use crate::mux::ReturnedMessage;
use crate::net_address::NetAddress;
use crate::node_info::NodeInfo;
use crate::peer_set::Direction;
use crate::router::ProtocolEvent;

/// The adapter's handle of one transport connection; never reused within a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}

/// Something the adapter must do with a socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Open a TCP connection to `addr` for `conn`, then report
    /// [`Node::handle_connected`](super::Node::handle_connected) or
    /// [`Node::handle_connect_failed`](super::Node::handle_connect_failed) with the OS's
    /// error.
    Dial {
        /// The connection's handle.
        conn: ConnId,
        /// Where to connect.
        addr: SocketAddr,
    },
    /// Close the socket of `conn` (after writing what was already taken from
    /// `poll_transmit`); the handle is dead.
    Close {
        /// The connection's handle.
        conn: ConnId,
    },
}

/// An event for the application.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NodeEvent {
    /// A peer passed the handshake and every policy.
    PeerConnected {
        /// Who.
        peer: PeerId,
        /// What it said about itself.
        info: Box<NodeInfo>,
        /// Which side dialed.
        direction: Direction,
    },
    /// A connected peer's connection ended. Every message the application sent to it and
    /// not confirmed is handed back: `unsent` were certainly not delivered, `unconfirmed`
    /// perhaps were. The node's own messages (built-in protocols on reserved channels, such
    /// as PEX) are neither counted nor returned: the application never sent them.
    PeerDisconnected {
        /// Who.
        peer: PeerId,
        /// Why.
        reason: DisconnectReason,
        /// Which end ended it.
        by: ClosedBy,
        /// Detail: the peer's GOAWAY text or our own description.
        detail: String,
        /// Messages never completely written.
        unsent: Vec<ReturnedMessage>,
        /// Messages written and not confirmed.
        unconfirmed: Vec<ReturnedMessage>,
        /// How many messages sent on this connection the peer's application took.
        confirmed: u64,
        /// The same, per channel: every channel the connection opened, in id order (the
        /// built-in protocols' reserved channels left out, as they are from `confirmed`).
        /// An application running several protocols on one connection — or a `Router`
        /// whose protocols send beside it — tells its own channel's count from theirs here.
        confirmed_by_channel: Vec<(ChannelId, u64)>,
    },
    /// A message from a connected peer.
    Message {
        /// From whom.
        peer: PeerId,
        /// On which channel.
        channel: ChannelId,
        /// The message.
        message: Bytes,
    },
    /// A dial failed before the peer was connected.
    DialFailed {
        /// The address dialed.
        addr: NetAddress,
        /// Why.
        reason: DisconnectReason,
        /// Detail.
        detail: String,
        /// Whether and when it is retried.
        retry: Retry,
    },
    /// A send to `peer` on `channel` returned [`SendError::Full`](crate::SendError::Full),
    /// and that queue has room again: send once more. Exactly one follows each run of
    /// `Full`s, whoever sent (the application, or a protocol: a
    /// [`Router`](crate::router::Router) hands it to the channel's owner instead).
    Writable {
        /// To whom.
        peer: PeerId,
        /// On which channel.
        channel: ChannelId,
    },
    /// An accepted connection ended before its peer was admitted: its handshake failed or
    /// timed out, a check refused it (another network, a banned or unexpected identity, the
    /// inbound slots full, …), or the far end gave up. The inbound twin of `DialFailed`,
    /// for logs and metrics: nothing the application sent is involved. (A socket the node
    /// refuses on accept never becomes a connection: `handle_accepted` says why.)
    InboundRefused {
        /// Where it came from.
        remote: SocketAddr,
        /// Who, when the handshake got far enough to authenticate it.
        peer: Option<PeerId>,
        /// Why.
        reason: DisconnectReason,
        /// Which end ended it.
        by: ClosedBy,
        /// Detail: our description, or the far end's GOAWAY text.
        detail: String,
    },
    /// A peer refused broadcasts (its queue full) for longer than the slow-peer timeout; it
    /// is being disconnected.
    SlowPeer {
        /// Who.
        peer: PeerId,
    },
    /// A query connection ([`Node::open_query`](super::Node::open_query)) completed its
    /// handshake, ours or a stranger's: `peer` can be sent to on the channels of the one
    /// protocol it offered, outside the peer slots. It is not a peer (not in
    /// [`Node::peers`](super::Node::peers), never broadcast to) and is closed once idle for
    /// [`Limits::query_idle_timeout`](crate::peer_set::Limits::query_idle_timeout).
    QueryConnected {
        /// Who.
        peer: PeerId,
        /// What it said about itself: the dialer's offers only the query's protocol.
        info: Box<NodeInfo>,
        /// Which side dialed.
        direction: Direction,
    },
    /// A query connection ended (idle, closed by either end, or failed). What was sent on it
    /// and not confirmed is handed back, as [`NodeEvent::PeerDisconnected`] does.
    QueryDisconnected {
        /// Who.
        peer: PeerId,
        /// Why: `Requested` with a detail saying so when it was idle.
        reason: DisconnectReason,
        /// Which end ended it.
        by: ClosedBy,
        /// Detail: the peer's GOAWAY text or our own description.
        detail: String,
        /// Messages never completely written.
        unsent: Vec<ReturnedMessage>,
        /// Messages written and not confirmed.
        unconfirmed: Vec<ReturnedMessage>,
    },
    /// A query connection we opened ([`Node::open_query`](super::Node::open_query)) failed
    /// before it connected; reported once, never retried.
    QueryFailed {
        /// The address dialed.
        addr: NetAddress,
        /// The protocol it was opened for.
        protocol: String,
        /// Why: `AlreadyConnected` when a connection to that peer won the race (send over
        /// it), `TooManyPeers` when the listener's query budget was full, `Timeout` past the
        /// dial timeout.
        reason: DisconnectReason,
        /// Detail.
        detail: String,
    },
    /// A value one of a [`Router`](crate::router::Router)'s protocols handed to the
    /// application ([`Context::emit`](crate::router::Context::emit)); a node alone never
    /// has one.
    Protocol(ProtocolEvent),
}

/// Why [`Node::dial`](super::Node::dial) refused at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DialError {
    /// The address carries our own identity.
    SelfDial,
    /// That peer is connected already.
    AlreadyConnected,
    /// That peer, or the address's IP, is banned.
    Banned,
    /// The node is shutting down ([`Node::shutdown`](super::Node::shutdown)).
    ShuttingDown,
}

impl fmt::Display for DialError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DialError::SelfDial => "refusing to dial ourselves",
            DialError::AlreadyConnected => "peer already connected",
            DialError::Banned => "peer or address banned",
            DialError::ShuttingDown => "the node is shutting down",
        })
    }
}

impl core::error::Error for DialError {}

/// How reachable a peer is, as IPFS's `Connectedness`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Connectedness {
    /// No connection and nothing known.
    NotConnected,
    /// Connected now.
    Connected,
    /// Not connected, but a dial to it is queued or in flight (to an address carrying its
    /// identity), or a handshake with it is under way. A probe, which only tests an address
    /// and never connects, does not count.
    CanConnect,
    /// Banned, or its dials were given up (and it is not dialed again) — among the last
    /// [`MAX_GIVEN_UP`](super::MAX_GIVEN_UP) peers given up.
    CannotConnect,
}
