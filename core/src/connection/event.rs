//! What a connection tells its owner.

use alloc::boxed::Box;
use alloc::string::String;

use bytes::Bytes;

use crate::channel::ChannelId;
use crate::disconnect::DisconnectReason;
use crate::identity::PeerId;
use crate::mux::SendOutcome;
use crate::node_info::NodeInfo;

/// An event from [`Connection::poll_event`](super::Connection::poll_event).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The handshake completed and the peer passed every check.
    Connected {
        /// The peer's identity.
        peer: PeerId,
        /// What the peer said about itself (boxed: events stay small, and messages are the
        /// events that are many).
        info: Box<NodeInfo>,
    },
    /// A complete message. Taking it from `poll_event` returns its credit to the peer, which
    /// confirms it to the sender.
    Message {
        /// The channel it arrived on.
        channel: ChannelId,
        /// The message: a slice of the decrypted record when it fit in one.
        message: Bytes,
    },
    /// The connection ended; the last event.
    Closed(Box<Closed>),
}

/// Which end ended the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClosedBy {
    /// This end: the application, a failed check, a timeout, or a peer that broke the
    /// protocol.
    Local,
    /// The peer sent GOAWAY, or the transport closed under us.
    Remote,
}

/// How a connection ended, and what became of every message sent on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Closed {
    /// Why.
    pub reason: DisconnectReason,
    /// Which end.
    pub by: ClosedBy,
    /// Detail: the peer's GOAWAY text, or a description of our own reason.
    pub detail: String,
    /// Every message accepted by `send`: confirmed (counted), unsent or unconfirmed.
    pub outcome: SendOutcome,
}
