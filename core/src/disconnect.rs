//! Why a connection ends, as a stable one-byte code both sides understand.

use core::fmt;

/// The reason a node gives its peer before closing a connection.
///
/// The numeric codes are part of the wire protocol (`core/PROTOCOL.md`) and never change
/// meaning; new reasons only ever get new codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[repr(u8)]
pub enum DisconnectReason {
    /// The application asked for the disconnect.
    Requested = 1,
    /// The transport failed (reset, EOF, I/O error).
    NetworkError = 2,
    /// The peer sent something the protocol does not allow.
    ProtocolError = 3,
    /// The peer offers nothing we can use (no common channel).
    UselessPeer = 4,
    /// Our peer limits are reached.
    TooManyPeers = 5,
    /// A connection to this peer already exists.
    AlreadyConnected = 6,
    /// The peer speaks an incompatible protocol version (another major version).
    IncompatibleVersion = 7,
    /// The peer's identity could not be established (e.g. a low-order key).
    InvalidIdentity = 8,
    /// The node is shutting down.
    Quitting = 9,
    /// The peer is not the one that was dialed.
    UnexpectedIdentity = 10,
    /// The peer is ourselves.
    SelfConnection = 11,
    /// A deadline passed: handshake, keepalive or dial.
    Timeout = 12,
    /// The peer or its address is banned.
    Banned = 13,
    /// The peer sent beyond the credit it was granted.
    FlowControl = 14,
    /// The peer sent a message larger than the channel allows.
    MessageTooLarge = 15,
    /// The peer belongs to another network (its `NodeInfo` names another one). Apart from
    /// `IncompatibleVersion`: the remedy differs (fix a configuration, not upgrade a node).
    NetworkMismatch = 16,
    /// The address lies outside the networks this node may connect to
    /// (`NodeConfig::allowed_networks`).
    NotAllowed = 17,
    /// The peer sent more frames that carry nothing (PING, PONG, `CREDIT(0)`, empty
    /// fragments, empty records) than the budget that bounds their cost allows.
    ControlFlood = 18,
    /// The peer stopped reading: what we wrote to it stayed unread past the write-stall
    /// timeout (`ConnectionConfig::write_stall_timeout`), whatever it kept sending.
    WriteStalled = 19,
    /// The node's inbound slots were full and this peer was chosen to make room for a new
    /// one (`NodeConfig::eviction`): nothing held against the peer, which may come back.
    Evicted = 20,
}

impl DisconnectReason {
    /// Every reason, in code order.
    pub const ALL: [DisconnectReason; 20] = [
        DisconnectReason::Requested,
        DisconnectReason::NetworkError,
        DisconnectReason::ProtocolError,
        DisconnectReason::UselessPeer,
        DisconnectReason::TooManyPeers,
        DisconnectReason::AlreadyConnected,
        DisconnectReason::IncompatibleVersion,
        DisconnectReason::InvalidIdentity,
        DisconnectReason::Quitting,
        DisconnectReason::UnexpectedIdentity,
        DisconnectReason::SelfConnection,
        DisconnectReason::Timeout,
        DisconnectReason::Banned,
        DisconnectReason::FlowControl,
        DisconnectReason::MessageTooLarge,
        DisconnectReason::NetworkMismatch,
        DisconnectReason::NotAllowed,
        DisconnectReason::ControlFlood,
        DisconnectReason::WriteStalled,
        DisconnectReason::Evicted,
    ];

    /// The wire code.
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// The reason for a wire code, or `None` for a code this version does not know.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|reason| reason.code() == code)
    }

    /// A short human-readable description.
    pub const fn as_str(self) -> &'static str {
        match self {
            DisconnectReason::Requested => "disconnect requested",
            DisconnectReason::NetworkError => "network error",
            DisconnectReason::ProtocolError => "protocol error",
            DisconnectReason::UselessPeer => "useless peer",
            DisconnectReason::TooManyPeers => "too many peers",
            DisconnectReason::AlreadyConnected => "already connected",
            DisconnectReason::IncompatibleVersion => "incompatible protocol version",
            DisconnectReason::InvalidIdentity => "invalid identity",
            DisconnectReason::Quitting => "node quitting",
            DisconnectReason::UnexpectedIdentity => "unexpected identity",
            DisconnectReason::SelfConnection => "connected to self",
            DisconnectReason::Timeout => "timeout",
            DisconnectReason::Banned => "banned",
            DisconnectReason::FlowControl => "flow control violated",
            DisconnectReason::MessageTooLarge => "message too large",
            DisconnectReason::NetworkMismatch => "network mismatch",
            DisconnectReason::NotAllowed => "outside the allowed networks",
            DisconnectReason::ControlFlood => "too many frames carrying nothing",
            DisconnectReason::WriteStalled => "peer stopped reading",
            DisconnectReason::Evicted => "evicted for a new inbound peer",
        }
    }
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_dense() {
        for (index, reason) in DisconnectReason::ALL.iter().enumerate() {
            assert_eq!(usize::from(reason.code()), index + 1);
            assert_eq!(DisconnectReason::from_code(reason.code()), Some(*reason));
        }
        assert_eq!(DisconnectReason::from_code(0), None);
        // The first code after the last one: unassigned, however many reasons there are.
        let next = u8::try_from(DisconnectReason::ALL.len() + 1).unwrap();
        assert_eq!(DisconnectReason::from_code(next), None);
        assert_eq!(DisconnectReason::from_code(255), None);
    }
}
