//! Peer exchange (PEX): how a node learns addresses from its peers (`PROTOCOL.md` §7).
//!
//! A node asks a peer for addresses with `GetAddrs`; the peer answers with `Addrs`, at most
//! [`MAX_ADDRS`] of them. The exchange runs on the built-in channel [`PEX_CHANNEL`], which
//! both ends open when both offer it.
//!
//! [`Pex`] is the per-peer bookkeeping and its rules, apart from the address book and the
//! node that glue it in:
//!
//! - we ask a peer at most once per [`PexConfig::request_interval`], and accept one `Addrs`
//!   per request we made;
//! - a peer may ask us at most once per half that interval (the slack absorbs latency);
//!   more often, or an `Addrs` we never asked for, or a malformed message, is a
//!   [`PexViolation`] — the node disconnects the peer and bans it for a while, as CometBFT's
//!   PEX reactor does, because each is either a bug or an attempt to flood our book.
//!
//! ```
//! use core::time::Duration;
//! use switchboard::pex::{Pex, PexConfig, PexIncoming, PexMessage};
//! use switchboard::{Instant, PeerId};
//!
//! let mut pex = Pex::new(PexConfig::default());
//! let peer = PeerId::from_bytes([1; 32]);
//! let now = Instant::from_nanos(0);
//! pex.handle_connected(peer);
//!
//! // Ask once; a second ask within the interval is declined.
//! assert!(pex.request(now, &peer));
//! assert!(!pex.request(now + Duration::from_secs(1), &peer));
//!
//! // The answer is accepted once.
//! let answer = PexMessage::Addrs(vec!["10.0.0.1:26656".parse().unwrap()]).encode();
//! let incoming = pex.handle_message(now, &peer, &answer).unwrap();
//! assert!(matches!(incoming, PexIncoming::Addrs(addrs) if addrs.len() == 1));
//! assert!(pex.handle_message(now, &peer, &answer).is_err(), "unsolicited");
//! ```

mod message;

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

pub use message::{MAX_ADDRS, MAX_MESSAGE_LEN, PexDecodeError, PexMessage};

use crate::channel::ChannelId;
use crate::identity::PeerId;
use crate::net_address::NetAddress;
use crate::time::Instant;

/// The built-in channel PEX runs on: the first of the reserved ids.
pub const PEX_CHANNEL: ChannelId = crate::channel::RESERVED_CHANNELS_START;

/// The protocol name PEX advertises in `NodeInfo`.
pub const PEX_PROTOCOL: &str = "switchboard/pex";

/// PEX's rates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PexConfig {
    /// We ask one peer at most this often; a peer may ask us twice as often. [30 s]
    pub request_interval: Duration,
}

impl Default for PexConfig {
    fn default() -> Self {
        PexConfig {
            request_interval: Duration::from_secs(30),
        }
    }
}

/// A PEX message from a peer, once checked against the rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PexIncoming {
    /// The peer asks for addresses: answer with `Addrs`.
    Request,
    /// The answer to our request.
    Addrs(Vec<NetAddress>),
}

/// A peer broke PEX's rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PexViolation {
    /// The message does not decode.
    Malformed(PexDecodeError),
    /// `Addrs` without an outstanding request.
    Unsolicited,
    /// `GetAddrs` sooner than half the request interval after the last one.
    TooFrequent,
}

impl fmt::Display for PexViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PexViolation::Malformed(error) => write!(f, "malformed PEX message: {error}"),
            PexViolation::Unsolicited => f.write_str("PEX addresses we did not ask for"),
            PexViolation::TooFrequent => f.write_str("PEX requests too frequent"),
        }
    }
}

impl core::error::Error for PexViolation {}

#[derive(Clone, Copy, Debug, Default)]
struct PeerState {
    /// When we last asked this peer.
    asked_at: Option<Instant>,
    /// Whether our last request is still unanswered.
    awaiting: bool,
    /// When the peer last asked us.
    asked_us_at: Option<Instant>,
}

/// PEX's per-peer state. See the [module documentation](self).
#[derive(Clone, Debug, Default)]
pub struct Pex {
    config: PexConfig,
    peers: BTreeMap<PeerId, PeerState>,
}

impl Pex {
    /// No peers yet.
    pub fn new(config: PexConfig) -> Self {
        Pex {
            config,
            peers: BTreeMap::new(),
        }
    }

    /// `peer` connected with the PEX channel open.
    pub fn handle_connected(&mut self, peer: PeerId) {
        self.peers.insert(peer, PeerState::default());
    }

    /// `peer` disconnected: its state is forgotten.
    pub fn handle_disconnected(&mut self, peer: &PeerId) {
        self.peers.remove(peer);
    }

    /// Whether `peer` speaks PEX with us.
    pub fn is_connected(&self, peer: &PeerId) -> bool {
        self.peers.contains_key(peer)
    }

    /// Whether we may ask `peer` now: connected, and not asked within the interval.
    pub fn can_request(&self, now: Instant, peer: &PeerId) -> bool {
        self.peers.get(peer).is_some_and(|state| {
            state
                .asked_at
                .is_none_or(|at| now >= at.saturating_add(self.config.request_interval))
        })
    }

    /// Records a request to `peer` if [`Pex::can_request`]; returns whether to send
    /// [`PexMessage::GetAddrs`].
    pub fn request(&mut self, now: Instant, peer: &PeerId) -> bool {
        if !self.can_request(now, peer) {
            return false;
        }
        let Some(state) = self.peers.get_mut(peer) else {
            return false;
        };
        state.asked_at = Some(now);
        state.awaiting = true;
        true
    }

    /// A message from `peer` on the PEX channel.
    pub fn handle_message(
        &mut self,
        now: Instant,
        peer: &PeerId,
        bytes: &[u8],
    ) -> Result<PexIncoming, PexViolation> {
        let message = PexMessage::decode(bytes).map_err(PexViolation::Malformed)?;
        let state = self.peers.entry(*peer).or_default();
        match message {
            PexMessage::GetAddrs => {
                let spacing = self
                    .config
                    .request_interval
                    .checked_div(2)
                    .unwrap_or_default();
                if state
                    .asked_us_at
                    .is_some_and(|at| now < at.saturating_add(spacing))
                {
                    return Err(PexViolation::TooFrequent);
                }
                state.asked_us_at = Some(now);
                Ok(PexIncoming::Request)
            }
            PexMessage::Addrs(addrs) => {
                if !state.awaiting {
                    return Err(PexViolation::Unsolicited);
                }
                state.awaiting = false;
                Ok(PexIncoming::Addrs(addrs))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    const PEER: PeerId = PeerId::from_bytes([3; 32]);

    fn at(seconds: u64) -> Instant {
        Instant::from_nanos(seconds * 1_000_000_000)
    }

    fn connected() -> Pex {
        let mut pex = Pex::new(PexConfig::default());
        pex.handle_connected(PEER);
        pex
    }

    #[test]
    fn requests_are_paced_per_peer() {
        let mut pex = connected();
        assert!(pex.request(at(0), &PEER));
        assert!(!pex.request(at(29), &PEER));
        assert!(pex.request(at(30), &PEER));
        let other = PeerId::from_bytes([4; 32]);
        assert!(!pex.request(at(30), &other), "not connected");
    }

    #[test]
    fn one_answer_per_request() {
        let mut pex = connected();
        let answer = PexMessage::Addrs(vec!["10.0.0.1:1".parse().unwrap()]).encode();
        assert_eq!(
            pex.handle_message(at(0), &PEER, &answer),
            Err(PexViolation::Unsolicited)
        );
        assert!(pex.request(at(0), &PEER));
        assert!(matches!(
            pex.handle_message(at(1), &PEER, &answer),
            Ok(PexIncoming::Addrs(_))
        ));
        assert_eq!(
            pex.handle_message(at(2), &PEER, &answer),
            Err(PexViolation::Unsolicited)
        );
    }

    #[test]
    fn a_peer_asking_too_often_is_a_violation() {
        let mut pex = connected();
        let ask = PexMessage::GetAddrs.encode();
        assert_eq!(
            pex.handle_message(at(0), &PEER, &ask),
            Ok(PexIncoming::Request)
        );
        assert_eq!(
            pex.handle_message(at(14), &PEER, &ask),
            Err(PexViolation::TooFrequent)
        );
        assert_eq!(
            pex.handle_message(at(15), &PEER, &ask),
            Ok(PexIncoming::Request)
        );
    }

    #[test]
    fn malformed_messages_are_violations() {
        let mut pex = connected();
        assert_eq!(
            pex.handle_message(at(0), &PEER, &[7]),
            Err(PexViolation::Malformed(PexDecodeError::UnknownType(7)))
        );
    }

    #[test]
    fn a_disconnected_peer_is_forgotten() {
        let mut pex = connected();
        assert!(pex.request(at(0), &PEER));
        pex.handle_disconnected(&PEER);
        assert!(!pex.is_connected(&PEER));
        pex.handle_connected(PEER);
        assert!(pex.request(at(1), &PEER), "a new connection starts afresh");
    }
}
