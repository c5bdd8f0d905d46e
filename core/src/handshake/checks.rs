//! What a node verifies about its peer once the handshake has authenticated it,
//! and the error for each way the handshake can fail.

use alloc::string::String;
use core::fmt;

use super::noise_xx::NoiseError;
use crate::disconnect::DisconnectReason;
use crate::identity::PeerId;
use crate::node_info::{NodeInfo, NodeInfoError, ProtocolVersion};

/// Why a handshake failed. [`HandshakeError::reason`] is the code to give the peer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeError {
    /// A handshake message's length prefix is outside what that message may be.
    MessageLength {
        /// Which message (0, 1 or 2).
        message: u8,
        /// The announced length.
        len: usize,
    },
    /// The Noise layer refused a message.
    Noise(NoiseError),
    /// The peer's `NodeInfo` payload is malformed.
    NodeInfo(NodeInfoError),
    /// The peer is us.
    SelfConnection,
    /// The peer is not the one that was dialed.
    UnexpectedIdentity {
        /// The identity dialed.
        expected: PeerId,
        /// The identity that answered.
        actual: PeerId,
    },
    /// The peer's major protocol version differs from ours.
    IncompatibleVersion {
        /// Ours.
        local: ProtocolVersion,
        /// Theirs.
        remote: ProtocolVersion,
    },
    /// The peer belongs to another network.
    NetworkMismatch {
        /// Ours.
        local: String,
        /// Theirs.
        remote: String,
    },
    /// No channel opens: no protocol is offered by both sides at a common version on a
    /// common channel id ([`crate::negotiate`]).
    NoCommonChannel,
    /// The handshake already failed; nothing more is accepted.
    AlreadyFailed,
}

impl HandshakeError {
    /// The disconnect reason that goes with this failure.
    pub fn reason(&self) -> DisconnectReason {
        match self {
            HandshakeError::Noise(NoiseError::WeakKey) => DisconnectReason::InvalidIdentity,
            HandshakeError::MessageLength { .. }
            | HandshakeError::Noise(_)
            | HandshakeError::NodeInfo(_)
            | HandshakeError::AlreadyFailed => DisconnectReason::ProtocolError,
            HandshakeError::SelfConnection => DisconnectReason::SelfConnection,
            HandshakeError::UnexpectedIdentity { .. } => DisconnectReason::UnexpectedIdentity,
            HandshakeError::IncompatibleVersion { .. } => DisconnectReason::IncompatibleVersion,
            HandshakeError::NetworkMismatch { .. } => DisconnectReason::NetworkMismatch,
            HandshakeError::NoCommonChannel => DisconnectReason::UselessPeer,
        }
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::MessageLength { message, len } => {
                write!(f, "handshake message {message} has invalid length {len}")
            }
            HandshakeError::Noise(error) => write!(f, "{error}"),
            HandshakeError::NodeInfo(error) => write!(f, "peer's node info: {error}"),
            HandshakeError::SelfConnection => f.write_str("connected to ourselves"),
            HandshakeError::UnexpectedIdentity { expected, actual } => {
                write!(f, "dialed {expected} but {actual} answered")
            }
            HandshakeError::IncompatibleVersion { local, remote } => {
                write!(f, "peer speaks protocol {remote}, we speak {local}")
            }
            HandshakeError::NetworkMismatch { local, remote } => {
                write!(f, "network mismatch: ours {local:?}, theirs {remote:?}")
            }
            HandshakeError::NoCommonChannel => f.write_str("no channel in common with the peer"),
            HandshakeError::AlreadyFailed => f.write_str("handshake already failed"),
        }
    }
}

impl core::error::Error for HandshakeError {}

impl From<NoiseError> for HandshakeError {
    fn from(error: NoiseError) -> Self {
        HandshakeError::Noise(error)
    }
}

impl From<NodeInfoError> for HandshakeError {
    fn from(error: NodeInfoError) -> Self {
        HandshakeError::NodeInfo(error)
    }
}

/// Our side of the comparison.
pub(crate) struct LocalView<'a> {
    pub(crate) id: PeerId,
    pub(crate) info: &'a NodeInfo,
    pub(crate) expected_peer: Option<PeerId>,
}

/// Runs the checks in a fixed order, so both ends of a doomed connection report the same
/// first failure: self, identity, version, network, channels.
pub(crate) fn check_peer(
    local: &LocalView<'_>,
    remote_id: PeerId,
    remote: &NodeInfo,
) -> Result<(), HandshakeError> {
    if remote_id == local.id {
        return Err(HandshakeError::SelfConnection);
    }
    if let Some(expected) = local.expected_peer
        && expected != remote_id
    {
        return Err(HandshakeError::UnexpectedIdentity {
            expected,
            actual: remote_id,
        });
    }
    if remote.version.major != local.info.version.major {
        return Err(HandshakeError::IncompatibleVersion {
            local: local.info.version,
            remote: remote.version,
        });
    }
    if remote.network != local.info.network {
        return Err(HandshakeError::NetworkMismatch {
            local: local.info.network.clone(),
            remote: remote.network.clone(),
        });
    }
    if crate::negotiation::negotiate(&local.info.channels, &remote.channels).is_empty() {
        return Err(HandshakeError::NoCommonChannel);
    }
    Ok(())
}
