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

/// How often [`released`] looks, a round trip to the hub's thread each time.
const SAMPLE: Duration = Duration::from_millis(5);

/// The window the design gives the release, measured from the moment the close began.
///
/// The close starts a timer of `close_timeout` (`Connection::close`: the GOAWAY not taken by
/// then is given up), and the node releases the connection in the pass over its timers
/// that finds it expired. The runtime's loop sleeps in `mio::Poll::poll` exactly until the
/// node's next deadline (`Driver::poll_timeout`); epoll counts whole milliseconds and mio
/// rounds up, so the loop wakes at most 1 ms late. Nothing can release the connection
/// before: the peer never reads, so the GOAWAY never goes out. So the release falls in
/// `[close_timeout, close_timeout + 1 ms]` after the close began. On top of that this test
/// sees it up to one `SAMPLE` late, and both threads run on a machine shared with other
/// builds: `SCHEDULING` is what it allows a wakeup to be late by, the only allowance not
/// derived from the design.
fn release_window() -> (Duration, Duration) {
    const LOOP_GRANULARITY: Duration = Duration::from_millis(1);
    const SCHEDULING: Duration = Duration::from_millis(150);
    (
        CLOSE_TIMEOUT,
        CLOSE_TIMEOUT + LOOP_GRANULARITY + SAMPLE + SCHEDULING,
    )
}

/// Waits until the hub holds no connection; returns how long after `start` that was.
fn released(hub: &Handle, start: Instant) -> Duration {
    let (_, latest) = release_window();
    loop {
        let open = hub
            .with_stack(|node, _| node.connection_count())
            .expect("running");
        if open == 0 {
            return start.elapsed();
        }
        assert!(
            start.elapsed() <= latest,
            "{open} connection(s) still open {:?} after the close, past the {latest:?} the \
             close timeout allows: {:?}",
            start.elapsed(),
            hub.stats()
        );
        std::thread::sleep(SAMPLE);
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
    // The node closes the connection in the same pass that reports it slow, so the close
    // began at most the event's way here before now: the release is due a close timeout
    // later, less that way (held to the same scheduling allowance).
    let took = released(&hub, Instant::now());
    let (earliest, latest) = release_window();
    let slack = latest - earliest;
    assert!(
        took + slack >= earliest && took <= latest,
        "released {took:?} after the slow-peer report, outside {earliest:?}..={latest:?} \
         (less {slack:?} for the report's way)"
    );
}

#[test]
fn disconnecting_a_peer_that_never_reads_releases_it_by_the_close_timeout() {
    let (hub, _poll, peer) = setup(Duration::from_secs(3600));
    block_the_hub(&hub);
    // The close begins when the hub's thread takes the command, after `start`.
    let start = Instant::now();
    hub.disconnect(&peer.peer_id(), DisconnectReason::Banned);
    let took = released(&hub, start);
    let (earliest, latest) = release_window();
    // The GOAWAY was given its whole chance first, and no more.
    assert!(
        took >= earliest && took <= latest,
        "released after {took:?}, outside {earliest:?}..={latest:?}"
    );
}
