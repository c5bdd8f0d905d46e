//! The connection handshake: Noise XX with each side's [`NodeInfo`] inside, then the checks
//! of `PROTOCOL.md` §2.
//!
//! ```text
//! dialer (initiator)                         listener (responder)
//!   len || e                          ->
//!                                     <-     len || e, ee, s, es, Enc(NodeInfo)
//!   checks; len || s, se, Enc(NodeInfo) ->
//!                                            checks
//! ```
//!
//! The dialer checks the listener before sending message 3, so a listener that fails the
//! checks never learns the dialer's identity. The listener checks the dialer after message 3,
//! when transport keys exist, so it can tell the dialer why it refuses
//! ([`Handshake::into_rejection_transport`]).
//!
//! The state machine is sans-IO: feed it bytes with [`Handshake::handle_input`] in pieces of
//! any size, and take bytes to send with [`Handshake::poll_transmit`].
//!
//! ```
//! use switchboard::handshake::Handshake;
//! use switchboard::{ChannelInfo, Keypair, NodeInfo};
//! # use rand_core::{Infallible, TryCryptoRng, TryRng};
//! # struct Counter(u8);
//! # impl TryRng for Counter {
//! #     type Error = Infallible;
//! #     fn try_next_u32(&mut self) -> Result<u32, Infallible> { Ok(self.0 as u32) }
//! #     fn try_next_u64(&mut self) -> Result<u64, Infallible> { Ok(self.0 as u64) }
//! #     fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
//! #         for b in dst { self.0 = self.0.wrapping_add(1); *b = self.0; } Ok(())
//! #     }
//! # }
//! # impl TryCryptoRng for Counter {}
//! # let mut rng = Counter(0);
//!
//! let mut info = NodeInfo::new("testnet", "example");
//! info.channels.push(ChannelInfo { id: 1, protocol: "chat".into(), version: 1 });
//! let dialer_key = Keypair::generate(&mut rng);
//! let listener_key = Keypair::generate(&mut rng);
//!
//! let mut dialer =
//!     Handshake::initiator(&dialer_key, info.clone(), Some(listener_key.peer_id()), &mut rng)?;
//! let mut listener = Handshake::responder(&listener_key, info, &mut rng)?;
//!
//! let mut wire = Vec::new();
//! while !(dialer.is_established() && listener.is_established()) {
//!     while dialer.poll_transmit(&mut wire) {}
//!     listener.handle_input(&wire)?;
//!     wire.clear();
//!     while listener.poll_transmit(&mut wire) {}
//!     dialer.handle_input(&wire)?;
//!     wire.clear();
//! }
//! let established = dialer.into_established().unwrap();
//! assert_eq!(established.peer_id, listener_key.peer_id());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod checks;
mod hash;
pub mod noise_xx;
mod symmetric_state;

use alloc::vec::Vec;
use core::fmt;
use core::ops::RangeInclusive;

use rand_core::CryptoRng;

pub use checks::HandshakeError;
use checks::{LocalView, check_peer};
use noise_xx::{DH_LEN, NoiseXx, Role};

use crate::cipher::{TAG_LEN, TransportCipher};
use crate::identity::{Keypair, PeerId, PublicKey};
use crate::length_prefix::LengthPrefixed;
use crate::node_info::{MAX_ENCODED_LEN, NodeInfo, NodeInfoError};

/// The Noise prologue: binds the handshake to this protocol and its version.
pub const PROLOGUE: &[u8] = b"switchboard/1";

/// Allowed lengths of each handshake message body (after its 2-byte length prefix).
const MESSAGE_LEN: [RangeInclusive<usize>; 3] = [
    // e, with an empty payload.
    DH_LEN..=DH_LEN,
    // e, Enc(s), Enc(NodeInfo)
    (DH_LEN + DH_LEN + TAG_LEN + TAG_LEN)..=(DH_LEN + DH_LEN + TAG_LEN + MAX_ENCODED_LEN + TAG_LEN),
    // Enc(s), Enc(NodeInfo)
    (DH_LEN + TAG_LEN + TAG_LEN)..=(DH_LEN + TAG_LEN + MAX_ENCODED_LEN + TAG_LEN),
];

/// A completed, verified handshake.
pub struct Established {
    /// The transport cipher for records.
    pub cipher: TransportCipher,
    /// The peer's identity.
    pub peer_id: PeerId,
    /// The peer's static public key.
    pub public_key: PublicKey,
    /// What the peer said about itself.
    pub info: NodeInfo,
    /// Noise's final handshake hash: a unique, secret-derived id of this session, usable for
    /// channel binding.
    pub handshake_hash: [u8; 64],
}

impl fmt::Debug for Established {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Established")
            .field("peer_id", &self.peer_id)
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

enum State {
    /// Messages still to be exchanged.
    InProgress,
    Established(PeerId, NodeInfo),
    /// The responder refused a peer after message 3: keys exist to say why.
    Rejected,
    Failed,
}

/// One side of the handshake.
pub struct Handshake {
    noise: NoiseXx,
    local_id: PeerId,
    local_info: NodeInfo,
    encoded_info: Vec<u8>,
    expected_peer: Option<PeerId>,
    incoming: LengthPrefixed,
    outgoing: Vec<u8>,
    state: State,
}

impl Handshake {
    /// The dialer's side. `expected_peer` is the identity dialed, when known; the handshake
    /// fails with [`HandshakeError::UnexpectedIdentity`] if someone else answers. Message 1 is
    /// ready in [`Handshake::poll_transmit`] at once.
    pub fn initiator<R: CryptoRng + ?Sized>(
        keypair: &Keypair,
        local_info: NodeInfo,
        expected_peer: Option<PeerId>,
        rng: &mut R,
    ) -> Result<Self, NodeInfoError> {
        let mut handshake = Self::new(Role::Initiator, keypair, local_info, expected_peer, rng)?;
        // Message 1 holds only our ephemeral key: writing it involves no DH and cannot fail;
        // if it did, the handshake would refuse all input.
        if write_framed(&mut handshake.noise, &[], &mut handshake.outgoing).is_err() {
            handshake.state = State::Failed;
        }
        Ok(handshake)
    }

    /// The listener's side.
    pub fn responder<R: CryptoRng + ?Sized>(
        keypair: &Keypair,
        local_info: NodeInfo,
        rng: &mut R,
    ) -> Result<Self, NodeInfoError> {
        Self::new(Role::Responder, keypair, local_info, None, rng)
    }

    fn new<R: CryptoRng + ?Sized>(
        role: Role,
        keypair: &Keypair,
        local_info: NodeInfo,
        expected_peer: Option<PeerId>,
        rng: &mut R,
    ) -> Result<Self, NodeInfoError> {
        let encoded_info = local_info.encode()?;
        Ok(Handshake {
            noise: NoiseXx::new(role, PROLOGUE, keypair, rng),
            local_id: keypair.peer_id(),
            local_info,
            encoded_info,
            expected_peer,
            incoming: LengthPrefixed::default(),
            outgoing: Vec::new(),
            state: State::InProgress,
        })
    }

    /// Feeds bytes received from the peer. Returns how many were consumed: all of them,
    /// unless the handshake completed part-way, in which case the rest are the first
    /// transport records and belong to the record decoder.
    pub fn handle_input(&mut self, input: &[u8]) -> Result<usize, HandshakeError> {
        let mut rest = input;
        while matches!(self.state, State::InProgress) && !rest.is_empty() {
            let Some(index) = self.noise.next_message() else {
                break;
            };
            let allowed = MESSAGE_LEN
                .get(usize::from(index))
                .ok_or(HandshakeError::AlreadyFailed)?;
            match self.incoming.feed(&mut rest, allowed) {
                Ok(true) => {}
                Ok(false) => break,
                Err(error) => {
                    self.state = State::Failed;
                    return Err(HandshakeError::MessageLength {
                        message: index,
                        len: error.0,
                    });
                }
            }
            let outcome = self.read_message(index);
            self.incoming.clear();
            if let Err(refusal) = outcome {
                let (state, error) = match refusal {
                    Refusal::Failed(error) => (State::Failed, error),
                    Refusal::Rejected(error) => (State::Rejected, error),
                };
                self.state = state;
                return Err(error);
            }
        }
        match self.state {
            State::Failed | State::Rejected => Err(HandshakeError::AlreadyFailed),
            _ => Ok(input.len().saturating_sub(rest.len())),
        }
    }

    /// Reads message `index`, complete in `incoming`, and answers it.
    fn read_message(&mut self, index: u8) -> Result<(), Refusal> {
        let body = self.incoming.body_mut();
        let payload = self.noise.read_message(body).map_err(Refusal::failed)?;
        if index == 0 {
            // We are the listener: answer with our identity and NodeInfo.
            return write_framed(&mut self.noise, &self.encoded_info, &mut self.outgoing)
                .map_err(Refusal::Failed);
        }
        let payload = self.incoming.body_mut().get(payload).unwrap_or_default();
        // A malformed NodeInfo in message 3 arrives with transport keys in hand (the message
        // decrypted and authenticated): the listener tells the dialer why, as for a failed
        // check. In message 2 the dialer has nothing to say it with.
        let remote_info = NodeInfo::decode(payload).map_err(|error| {
            if index == 1 {
                Refusal::failed(error)
            } else {
                Refusal::Rejected(error.into())
            }
        })?;
        let remote_id = self
            .noise
            .remote_static()
            .map(PublicKey::peer_id)
            .ok_or(Refusal::Failed(HandshakeError::AlreadyFailed))?;
        let local = LocalView {
            id: self.local_id,
            info: &self.local_info,
            expected_peer: self.expected_peer,
        };
        if let Err(error) = check_peer(&local, remote_id, &remote_info) {
            // The dialer (reading message 2) refuses before revealing itself; the listener
            // (reading message 3) refuses with transport keys in hand.
            return Err(if index == 1 {
                Refusal::Failed(error)
            } else {
                Refusal::Rejected(error)
            });
        }
        if index == 1 {
            // We are the dialer and the listener passed: send message 3.
            write_framed(&mut self.noise, &self.encoded_info, &mut self.outgoing)
                .map_err(Refusal::Failed)?;
        }
        self.state = State::Established(remote_id, remote_info);
        Ok(())
    }

    /// Appends the bytes waiting to be sent to `out`; returns whether there were any.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> bool {
        if self.outgoing.is_empty() {
            return false;
        }
        out.append(&mut self.outgoing);
        true
    }

    /// True once the peer is authenticated and verified. The initiator may still have
    /// message 3 to transmit: drain [`Handshake::poll_transmit`] first.
    pub fn is_established(&self) -> bool {
        matches!(self.state, State::Established(..))
    }

    /// What this end says about itself.
    pub fn local_info(&self) -> &NodeInfo {
        &self.local_info
    }

    /// The peer's identity once its static key has been received (before the checks).
    pub fn remote_peer_id(&self) -> Option<PeerId> {
        self.noise.remote_static().map(PublicKey::peer_id)
    }

    /// The established session, if [`Handshake::is_established`].
    pub fn into_established(self) -> Option<Established> {
        let State::Established(peer_id, info) = self.state else {
            return None;
        };
        let public_key = *self.noise.remote_static()?;
        let handshake_hash = *self.noise.handshake_hash();
        let cipher = self.noise.into_transport().ok()?;
        Some(Established {
            cipher,
            peer_id,
            public_key,
            info,
            handshake_hash,
        })
    }

    /// After the responder refused a peer that completed the handshake (a failed check on
    /// message 3), the transport cipher, so the refusal can be sent encrypted before closing.
    pub fn into_rejection_transport(self) -> Option<TransportCipher> {
        match self.state {
            State::Rejected => self.noise.into_transport().ok(),
            _ => None,
        }
    }
}

/// How reading a message failed, which decides whether transport keys survive.
enum Refusal {
    /// Before the handshake finished: nothing more can be said to the peer.
    Failed(HandshakeError),
    /// The listener refused a dialer after message 3: keys exist to tell it why.
    Rejected(HandshakeError),
}

impl Refusal {
    fn failed(error: impl Into<HandshakeError>) -> Self {
        Refusal::Failed(error.into())
    }
}

/// Writes the next Noise message with `payload` into `out`, behind its length prefix.
fn write_framed(
    noise: &mut NoiseXx,
    payload: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), HandshakeError> {
    let index = noise.next_message().unwrap_or(0);
    let start = out.len();
    out.extend_from_slice(&[0; 2]);
    if let Err(error) = noise.write_message(payload, out) {
        out.truncate(start);
        return Err(error.into());
    }
    let body_len = out.len().saturating_sub(start.saturating_add(2));
    let Ok(len) = u16::try_from(body_len) else {
        out.truncate(start);
        return Err(HandshakeError::MessageLength {
            message: index,
            len: body_len,
        });
    };
    if let Some(prefix) = out.get_mut(start..start.saturating_add(2)) {
        prefix.copy_from_slice(&len.to_be_bytes());
    }
    Ok(())
}

impl fmt::Debug for Handshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::InProgress => "in progress",
            State::Established(..) => "established",
            State::Rejected => "rejected",
            State::Failed => "failed",
        };
        f.debug_struct("Handshake")
            .field("role", &self.noise.role())
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
