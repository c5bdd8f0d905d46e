//! A receiver whose application stops taking events: the sender's `send` returns `Full`
//! once the credit window, the sender's queue and the receiver's event buffer are used up,
//! and the sender's memory stays bounded; when the receiver reads again, sending resumes.

use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use switchboard::node::NodeEvent;
use switchboard::{ChannelConfig, SendError};
use switchboard_mio::{NodeApi, Runtime, fd_limit};

mod common;
use common::{CHANNEL, V4, driver_config, node_config, wait_connected};

const MESSAGE: usize = 64 * 1024;
const EVENT_CAPACITY: usize = 16;

#[test]
fn slow_reader_makes_send_return_full_and_memory_stays_bounded() {
    let _ = fd_limit::raise_nofile_limit();
    let channel = ChannelConfig::new(CHANNEL);
    let receiver = Runtime {
        event_capacity: EVENT_CAPACITY,
        ..Runtime::default()
    }
    .start(driver_config(V4, node_config(channel), 0..16))
    .expect("receiver");
    let sender = Runtime::spawn(driver_config(V4, node_config(channel), 0..16)).expect("sender");
    sender
        .dial(receiver.net_address().expect("listening"))
        .expect("dial");
    wait_connected(sender.events(), receiver.peer_id());
    wait_connected(receiver.events(), sender.peer_id());
    // From here on the receiver's application takes nothing.

    let peer = receiver.peer_id();
    let message = Bytes::from(vec![7u8; MESSAGE]);
    let mut accepted = 0usize;
    let mut full_since: Option<Instant> = None;
    let started = Instant::now();
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "send never stayed Full"
        );
        match sender.send(&peer, CHANNEL, message.clone()) {
            Ok(()) => {
                accepted += 1;
                full_since = None;
            }
            Err(SendError::Full(_)) => {
                let since = *full_since.get_or_insert_with(Instant::now);
                // Full for a whole second while the loops keep running: it stays full.
                if since.elapsed() >= Duration::from_secs(1) {
                    break;
                }
                thread::sleep(Duration::from_millis(10));
            }
            Err(error) => panic!("unexpected {error:?}"),
        }
    }
    // What the sender accepted fits in: the receiver's window (1 MiB), the events it
    // buffered for its application (16 + 1 held), and the sender's queue (1 MiB) — not
    // growing with time.
    let bound = (channel.receive_window as usize)
        + (EVENT_CAPACITY + 1) * MESSAGE
        + channel.send_queue_bytes
        + 2 * MESSAGE;
    assert!(
        accepted * MESSAGE <= bound,
        "accepted {accepted} messages of {MESSAGE} B, bound {bound} B"
    );
    let stats = sender.stats().expect("sender running");
    assert!(stats.buffered_bytes <= 65_537, "{stats:?}");

    // The receiver reads again: everything arrives and sending resumes.
    let mut received = 0usize;
    let deadline = Instant::now() + Duration::from_secs(30);
    while received < accepted {
        assert!(
            Instant::now() < deadline,
            "{received} of {accepted} arrived"
        );
        if let Ok(NodeEvent::Message { message, .. }) =
            receiver.events().recv_timeout(Duration::from_millis(100))
        {
            assert_eq!(message.len(), MESSAGE);
            received += 1;
        }
    }
    let resumed = Instant::now();
    while sender.send(&peer, CHANNEL, message.clone()).is_err() {
        assert!(
            resumed.elapsed() < Duration::from_secs(10),
            "send stayed Full"
        );
        thread::sleep(Duration::from_millis(10));
    }
    eprintln!(
        "accepted {accepted} messages ({} KiB) before Full",
        accepted * MESSAGE / 1024
    );
}

#[test]
fn a_runtime_whose_application_takes_no_events_still_shuts_down_at_once() {
    // Its event channel is full and nobody will read it again: the runtime must neither
    // wait its whole shutdown timeout for the application nor skip the GOAWAYs.
    let channel = ChannelConfig::new(CHANNEL);
    let hub = Runtime {
        event_capacity: 1,
        shutdown_timeout: Duration::from_secs(10),
    }
    .start(driver_config(V4, node_config(channel), 0..16))
    .expect("hub");
    let hub_addr = hub.net_address().expect("listens");
    let peers: Vec<_> = (0..2)
        .map(|_| Runtime::spawn(driver_config(V4, node_config(channel), 0..16)).expect("peer"))
        .collect();
    for peer in &peers {
        peer.dial(hub_addr).expect("dial");
        wait_connected(peer.events(), hub.peer_id());
    }
    let started = Instant::now();
    while hub.peers().len() < 2 {
        assert!(started.elapsed() < Duration::from_secs(10), "not connected");
        thread::sleep(Duration::from_millis(5));
    }
    let hub_id = hub.peer_id();
    let started = Instant::now();
    hub.shutdown(std::time::Duration::from_secs(2));
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "shutdown took {took:?}");
    // And not by cutting corners: each peer was told why.
    for peer in &peers {
        let reason = common::wait_for(
            peer.events(),
            Duration::from_secs(10),
            "the hub's disconnection",
            |event| match event {
                NodeEvent::PeerDisconnected { peer, reason, .. } if peer == hub_id => Some(reason),
                _ => None,
            },
        );
        assert_eq!(reason, switchboard::DisconnectReason::Quitting);
    }
}
