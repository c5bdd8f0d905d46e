//! A peer that never reads but keeps sending: a hand-driven wire peer that PINGs the hub
//! every 200 ms — so it is never silent, and keepalive alone would keep it forever — while
//! the hub's writes to it stay blocked. The hub ends it with `WriteStalled` once its output
//! has stayed blocked for the write-stall timeout, and releases its socket at once (no
//! GOAWAY wait: nothing would carry it).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use switchboard::frame::Frame;
use switchboard::node::NodeEvent;
use switchboard::{ChannelConfig, DisconnectReason};
use switchboard_mio::{NodeApi, Runtime};

mod common;
use common::wire_peer::{WINDOW, WirePeer};
use common::{CHANNEL, V4, driver_config, node_config};

const WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(1);
/// How often the hub's state is sampled, a round trip to its thread each time.
const SAMPLE: Duration = Duration::from_millis(5);
/// What the test allows a wakeup to be late by on a machine shared with other builds: the
/// only allowance not derived from the design (the timer fires in the pass over the timers
/// at its deadline; mio rounds the sleep up to the next millisecond).
const SCHEDULING: Duration = Duration::from_millis(150);

#[test]
fn a_peer_that_never_reads_is_dropped_at_the_write_stall_timeout() {
    let mut config = node_config(ChannelConfig::new(CHANNEL));
    // Not the slow-peer rule: that one judges refused broadcasts, and this test sends.
    config.slow_peer_timeout = Duration::from_secs(3600);
    config.connection.write_stall_timeout = WRITE_STALL_TIMEOUT;
    let hub = Runtime::spawn(driver_config(V4, config, 0..16)).expect("hub");
    let info = hub
        .with_stack(|node, _| node.node_info().clone())
        .expect("running");
    let addr: SocketAddr = hub.local_addrs()[0];

    // A small receive buffer, so the hub's writes block after little.
    let mut attacker = WirePeer::dial(addr)
        .receive_buffer(4096)
        .timeout(Duration::from_secs(5))
        .window(WINDOW)
        .connect(info)
        .expect("handshake");
    let deadline = Instant::now() + Duration::from_secs(10);
    while hub.peers().is_empty() {
        assert!(Instant::now() < deadline, "never connected");
        std::thread::sleep(SAMPLE);
    }

    // The hub sends until its socket to the attacker blocks.
    let message = Bytes::from(vec![3u8; 16 * 1024]);
    let blocked_seen = loop {
        assert!(Instant::now() < deadline, "the hub's socket never blocked");
        let _ = hub.send(&attacker.peer_id, CHANNEL, message.clone());
        if hub.stats().expect("running").buffered_bytes > 0 {
            break Instant::now();
        }
    };

    // The attacker keeps talking, never reading, until the hub drops it.
    let mut next_ping = Instant::now();
    let mut value = 0;
    let (reason, at) = loop {
        if Instant::now() >= next_ping {
            value += 1;
            // Once the hub dropped it, writes fail: that is the end this waits for.
            let _ = attacker.send(&[Frame::Ping(value)]);
            next_ping += Duration::from_millis(200);
        }
        match hub.events().recv_timeout(SAMPLE) {
            Ok(NodeEvent::PeerDisconnected { peer, reason, .. }) if peer == attacker.peer_id => {
                break (reason, Instant::now());
            }
            _ => assert!(
                blocked_seen.elapsed() < WRITE_STALL_TIMEOUT * 5,
                "still connected {:?} after the hub's output blocked",
                blocked_seen.elapsed()
            ),
        }
    };
    assert_eq!(reason, DisconnectReason::WriteStalled);
    // The stall began at or before `blocked_seen` (the sample that saw it, up to one
    // `send` round trip late), and ends exactly a timeout later.
    let took = at - blocked_seen;
    assert!(
        took + SAMPLE * 2 >= WRITE_STALL_TIMEOUT
            && took <= WRITE_STALL_TIMEOUT + SAMPLE + SCHEDULING,
        "dropped {took:?} after its output was seen blocked, not within {WRITE_STALL_TIMEOUT:?} \
         + {:?}",
        SAMPLE + SCHEDULING
    );
    // No GOAWAY wait: the socket goes in the same pass.
    let open = hub
        .with_stack(|node, _| node.connection_count())
        .expect("running");
    assert_eq!(open, 0, "the stalled connection still holds its slot");
}
