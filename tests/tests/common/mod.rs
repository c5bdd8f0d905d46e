//! Helpers shared by the integration test files.
//!
//! Every file under `tests/` is its own crate and includes this module separately, so each
//! one uses only some of the helpers; the rest would be dead code there.
#![allow(dead_code)]

pub mod discovery;
pub mod gossip;
pub mod pair;
pub mod rogue;

use switchboard::handshake::{Established, Handshake};
use switchboard::{ChannelInfo, Keypair, NodeInfo};

/// How many seeds a sweep runs: the environment variable `var` if it holds a number (the
/// long sweeps run by hand), else `default` (what CI affords).
pub fn seeds_from_env(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// Lowercase hex of `bytes`, so byte-for-byte comparisons print readable diffs.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The bytes of a hex string; panics (with the offending text) on anything but even-length
/// hex, since a malformed constant is a bug in the test itself.
pub fn unhex(text: &str) -> Vec<u8> {
    assert!(text.len().is_multiple_of(2), "odd-length hex: {text:?}");
    (0..text.len())
        .step_by(2)
        .map(|at| {
            u8::from_str_radix(&text[at..at + 2], 16)
                .unwrap_or_else(|_| panic!("not hex at offset {at}: {text:?}"))
        })
        .collect()
}

/// A fixed-size array from a hex string of exactly `2 * N` digits.
pub fn unhex_array<const N: usize>(text: &str) -> [u8; N] {
    let bytes = unhex(text);
    bytes
        .as_slice()
        .try_into()
        .unwrap_or_else(|_| panic!("expected {N} bytes, got {}: {text:?}", bytes.len()))
}

/// A `NodeInfo` on the test network with one `chat` channel (id 1), so any two of them pass
/// the handshake checks.
pub fn node_info(agent: &str) -> NodeInfo {
    let mut info = NodeInfo::new("switchboard-tests", agent);
    info.channels.push(ChannelInfo {
        id: 1,
        protocol: "chat".into(),
        version: 1,
    });
    info
}

/// Splits the `u16` big-endian length prefix off a unit that must be exactly one
/// `length || body` unit, checking the prefix against the body's real length.
pub fn unframe(unit: &[u8]) -> &[u8] {
    assert!(
        unit.len() >= 2,
        "a unit of {} bytes has no prefix",
        unit.len()
    );
    let (prefix, body) = unit.split_at(2);
    assert_eq!(
        usize::from(u16::from_be_bytes([prefix[0], prefix[1]])),
        body.len(),
        "length prefix does not match the body"
    );
    body
}

/// `u16 big-endian length || body`.
pub fn frame(body: &[u8]) -> Vec<u8> {
    let len = u16::try_from(body.len()).expect("a unit body fits in u16");
    let mut unit = len.to_be_bytes().to_vec();
    unit.extend_from_slice(body);
    unit
}

/// The three handshake messages exactly as they went on the wire, prefixes included.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transcript {
    /// Dialer → listener: `len || e`.
    pub message1: Vec<u8>,
    /// Listener → dialer: `len || e, ee, s, es, Enc(NodeInfo)`.
    pub message2: Vec<u8>,
    /// Dialer → listener: `len || s, se, Enc(NodeInfo)`.
    pub message3: Vec<u8>,
}

/// Keys and handshakes built from one seed: the dialer's key, the listener's key, then both
/// ephemeral keys, all drawn from one `ChaCha20Rng`, so a seed fixes every byte sent.
pub struct Peers {
    /// The dialer's static key.
    pub dialer_key: Keypair,
    /// The listener's static key.
    pub listener_key: Keypair,
    /// The dialer's handshake, message 1 waiting in `poll_transmit`.
    pub dialer: Handshake,
    /// The listener's handshake.
    pub listener: Handshake,
}

impl Peers {
    /// Two fresh handshakes from `seed`; the dialer expects the listener's identity.
    pub fn new(seed: u64) -> Self {
        use rand_core::SeedableRng;
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
        let dialer_key = Keypair::generate(&mut rng);
        let listener_key = Keypair::generate(&mut rng);
        let dialer = Handshake::initiator(
            &dialer_key,
            node_info("dialer"),
            Some(listener_key.peer_id()),
            &mut rng,
        )
        .expect("the dialer's NodeInfo is valid");
        let listener = Handshake::responder(&listener_key, node_info("listener"), &mut rng)
            .expect("the listener's NodeInfo is valid");
        Peers {
            dialer_key,
            listener_key,
            dialer,
            listener,
        }
    }
}

/// Everything `poll_transmit` has waiting.
pub fn drain(handshake: &mut Handshake) -> Vec<u8> {
    let mut out = Vec::new();
    while handshake.poll_transmit(&mut out) {}
    out
}

/// Runs the handshake of `seed` with every message delivered whole, returning what was sent
/// and both established sessions (dialer first).
pub fn handshake(seed: u64) -> (Transcript, Established, Established) {
    let Peers {
        mut dialer,
        mut listener,
        ..
    } = Peers::new(seed);
    let message1 = drain(&mut dialer);
    assert_eq!(listener.handle_input(&message1), Ok(message1.len()));
    let message2 = drain(&mut listener);
    assert_eq!(dialer.handle_input(&message2), Ok(message2.len()));
    let message3 = drain(&mut dialer);
    assert_eq!(listener.handle_input(&message3), Ok(message3.len()));
    let dialer = dialer
        .into_established()
        .expect("the dialer is established");
    let listener = listener
        .into_established()
        .expect("the listener is established");
    let transcript = Transcript {
        message1,
        message2,
        message3,
    };
    (transcript, dialer, listener)
}
