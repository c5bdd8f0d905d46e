//! A listening `Connection` established with a bare `Handshake` (so the target holds the
//! attacker's session keys and can seal whatever records it wants), for the connection-level
//! targets (`connection_established`, `landing_differential`). Fixed keys and seed: the same
//! call gives the same session, so one attacker's records fit several such listeners.
//!
//! Included with `#[path]` from each target.

use std::sync::Arc;

use rand_core::SeedableRng;
use switchboard::connection::{Connection, Event};
use switchboard::handshake::Handshake;
use switchboard::{ChannelInfo, ConnectionConfig, Instant, Keypair, NodeInfo, TransportCipher};

/// Information offering `channels` for protocol "p" version 1.
pub fn info_offering(channels: &[u16]) -> NodeInfo {
    let mut info = NodeInfo::new("fuzz", "fuzz");
    for &id in channels {
        info.channels.push(ChannelInfo {
            id,
            protocol: "p".into(),
            version: 1,
        });
    }
    info
}

/// A listener with `config` that the attacker (`keys[0]`, offering the same `info`) dialed
/// at time zero, established and its `Connected` event taken; and the attacker's transport
/// cipher.
pub fn attacked_listener(
    config: Arc<ConnectionConfig>,
    info: NodeInfo,
    keys: &[Keypair; 2],
    seed: u64,
) -> (Connection, TransportCipher) {
    let [attacker_key, listener_key] = keys;
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
    let mut attacker =
        Handshake::initiator(attacker_key, info.clone(), None, &mut rng).expect("a valid NodeInfo");
    let now = Instant::ZERO;
    let mut listener =
        Connection::accept(now, config, listener_key, info, &mut rng).expect("a valid NodeInfo");
    let mut wire = Vec::new();
    assert!(attacker.poll_transmit(&mut wire));
    listener.handle_input(now, &wire);
    wire.clear();
    assert!(listener.poll_transmit(now, &mut wire));
    attacker
        .handle_input(&wire)
        .expect("the listener is honest");
    wire.clear();
    assert!(attacker.poll_transmit(&mut wire));
    listener.handle_input(now, &wire);
    assert!(matches!(
        listener.poll_event(),
        Some(Event::Connected { .. })
    ));
    let cipher = attacker
        .into_established()
        .expect("handshake complete")
        .cipher;
    (listener, cipher)
}
