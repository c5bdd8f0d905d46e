//! A peer that completes the handshake and then never reads again: once the hub's socket to
//! it is write-blocked, its GOAWAY can never go out. The slow-peer timeout and `disconnect`
//! still release the connection and its socket, by the close timeout, instead of holding
//! them for as long as the peer likes.

use std::time::{Duration, Instant};

use bytes::Bytes;
use mio::Poll;
use switchboard::node::NodeEvent;
use switchboard::{ChannelConfig, DisconnectReason};
use switchboard_mio::{Driver, Handle, NodeApi, Runtime};

mod common;
use common::{CHANNEL, V4, connect_driven_peer, driver_config, node_config};

const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// A hub runtime, and a peer `Driver` driven only until it is connected, never read
/// again. The window is above loopback's kernel buffers, so the hub's socket blocks.
fn setup(slow_peer_timeout: Duration) -> (Handle, Poll, Driver) {
    let channel = ChannelConfig {
        receive_window: 64 << 20,
        ..ChannelConfig::new(CHANNEL)
    };
    let mut config = node_config(channel);
    config.discovery.enabled = false;
    config.slow_peer_timeout = slow_peer_timeout;
    config.connection.close_timeout = CLOSE_TIMEOUT;
    let hub = Runtime::spawn(driver_config(V4, config.clone(), 0..16)).expect("hub");
    let (poll, peer) = connect_driven_peer(&hub, config);
    (hub, poll, peer)
}

/// Fills the hub's socket to the peer until the hub holds bytes it cannot write.
fn block_the_hub(hub: &Handle) {
    let message = Bytes::from(vec![1u8; 64 * 1024]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while hub.stats().expect("running").buffered_bytes == 0
        || hub.broadcast(CHANNEL, message.clone()) > 0
    {
        assert!(Instant::now() < deadline, "the hub's socket never blocked");
        let _ = hub.broadcast(CHANNEL, message.clone());
    }
}

/// Waits until the hub holds no connection; returns how long that took.
fn released(hub: &Handle) -> Duration {
    let start = Instant::now();
    loop {
        let open = hub
            .with_stack(|node, _| node.connection_count())
            .expect("running");
        if open == 0 {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < CLOSE_TIMEOUT * 15,
            "{open} connection(s) still open {:?} after the close: {:?}",
            start.elapsed(),
            hub.stats()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_slow_peer_that_never_reads_is_dropped() {
    let (hub, _poll, peer) = setup(Duration::from_millis(500));
    block_the_hub(&hub);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match hub.events().recv_timeout(Duration::from_millis(100)) {
            Ok(NodeEvent::SlowPeer { peer: slow }) => {
                assert_eq!(slow, peer.peer_id());
                break;
            }
            _ => assert!(Instant::now() < deadline, "never reported slow"),
        }
    }
    released(&hub);
}

#[test]
fn disconnecting_a_peer_that_never_reads_releases_it_by_the_close_timeout() {
    let (hub, _poll, peer) = setup(Duration::from_secs(3600));
    block_the_hub(&hub);
    hub.disconnect(&peer.peer_id(), DisconnectReason::Banned);
    let took = released(&hub);
    // The GOAWAY was given its chance first.
    assert!(took >= CLOSE_TIMEOUT / 2, "released after {took:?}");
}
