//! A peer writing to a node that has disconnected it still learns why: the node's GOAWAY
//! reaches it even when the reset its own writes provoke fails a write before the GOAWAY
//! was read.

use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use switchboard::node::NodeEvent;
use switchboard::{ChannelConfig, DisconnectReason};
use switchboard_mio::{NodeApi, Runtime};

mod common;
use common::{CHANNEL, V4, connect_driven_peer, driver_config, node_config};

#[test]
fn a_write_failing_after_the_peer_closed_still_reads_its_goaway() {
    let config = node_config(ChannelConfig::new(CHANNEL));
    let hub = Runtime::spawn(driver_config(V4, config.clone(), 0..16)).expect("hub");
    let hub_id = hub.peer_id();
    let (_poll, mut peer) = connect_driven_peer(&hub, config);
    let deadline = Instant::now() + Duration::from_secs(10);
    // The hub writes its GOAWAY and closes; the peer, polling nothing, has not read it.
    hub.disconnect(&peer.peer_id(), DisconnectReason::Banned);
    while hub
        .with_stack(|node, _| node.connection_count())
        .expect("running")
        > 0
    {
        assert!(Instant::now() < deadline, "the hub never let go");
        thread::sleep(Duration::from_millis(10));
    }
    // Its first write meets the closed socket, whose reset fails the next.
    let message = Bytes::from_static(b"are you there?");
    let mut reason = None;
    for _ in 0..20 {
        let _ = peer.send(&hub_id, CHANNEL, message.clone());
        while let Some(event) = peer.poll_event() {
            if let NodeEvent::PeerDisconnected { reason: why, .. } = event {
                reason = Some(why);
            }
        }
        if reason.is_some() {
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(reason, Some(DisconnectReason::Banned));
}
