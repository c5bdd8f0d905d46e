//! A peer packing records with frames that carry nothing — 64 KiB records of `CREDIT(0)`,
//! about 21,800 frames each, cheap to seal and dear to handle — is disconnected with
//! `ControlFlood` once it overdraws its budget (`FREE_FRAMES_PER_SECOND`, a burst of as
//! many), within its first record; an honest peer of the same hub keeps exchanging
//! messages meanwhile. The attacker is hand-driven, speaking the wire protocol.

use std::time::{Duration, Instant};

use bytes::Bytes;
use switchboard::frame::Frame;
use switchboard::node::NodeEvent;
use switchboard::{ChannelConfig, DisconnectReason};
use switchboard_mio::{NodeApi, Runtime};

mod common;
use common::wire_peer::{WINDOW, WirePeer};
use common::{CHANNEL, V4, driver_config, node_config, wait_connected};

#[test]
fn a_peer_flooding_credit_zero_frames_is_disconnected() {
    let config = node_config(ChannelConfig::new(CHANNEL));
    let hub = Runtime::spawn(driver_config(V4, config.clone(), 0..16)).expect("hub");
    let honest = Runtime::spawn(driver_config(V4, config, 0..16)).expect("honest");
    honest
        .dial(hub.net_address().expect("listening"))
        .expect("dial");
    wait_connected(honest.events(), hub.peer_id());
    wait_connected(hub.events(), honest.peer_id());

    let info = hub
        .with_stack(|node, _| node.node_info().clone())
        .expect("running");
    let mut attacker = WirePeer::dial(hub.local_addrs()[0])
        .timeout(Duration::from_secs(5))
        .window(WINDOW)
        .connect(info)
        .expect("handshake");
    // As many 3-byte CREDIT(0) frames as a record holds.
    let mut plaintext = Vec::new();
    let credit_zero = Frame::Credit {
        channel: CHANNEL,
        amount: 0,
    };
    let mut frame = Vec::new();
    credit_zero.encode(&mut frame);
    while plaintext.len() + frame.len() <= switchboard::record::MAX_PLAINTEXT_LEN {
        plaintext.extend_from_slice(&frame);
    }
    let frames = plaintext.len() / frame.len();
    assert!(frames > 21_000, "{frames} frames a record");

    let start = Instant::now();
    let mut records = 0;
    let mut honest_heard = false;
    let (reason, detail) = loop {
        if attacker.send_plaintext(&plaintext).is_ok() {
            records += 1;
        }
        match hub.events().try_recv() {
            Ok(NodeEvent::PeerDisconnected {
                peer,
                reason,
                detail,
                ..
            }) if peer == attacker.peer_id => break (reason, detail),
            Ok(NodeEvent::Message { peer, .. }) if peer == honest.peer_id() => {
                honest_heard = true;
            }
            _ => {}
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the flooder is still connected after {records} records"
        );
        // The honest peer is served meanwhile: one echo-less send a record.
        let _ = honest.send(&hub.peer_id(), CHANNEL, Bytes::from_static(b"still here"));
    };
    assert_eq!(reason, DisconnectReason::ControlFlood, "{detail}");
    assert!(
        hub.peers().contains(&honest.peer_id()),
        "the honest peer was lost"
    );
    assert!(!hub.peers().contains(&attacker.peer_id));
    // The honest peer's messages reached the hub's application.
    if !honest_heard {
        common::wait_for(
            hub.events(),
            Duration::from_secs(5),
            "honest message",
            |event| {
                matches!(event, NodeEvent::Message { peer, .. } if peer == honest.peer_id())
                    .then_some(())
            },
        );
    }
}
