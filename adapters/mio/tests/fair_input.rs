//! The driver's round robin, observed step by step: a peer whose socket holds megabytes
//! gets one turn of at most 256 KiB per round of the loop, beside a peer that sent one
//! small record, which is served in the same round; the loop is told not to sleep while
//! bytes are left (mio is edge-triggered: no new event would announce them), and the rest
//! is read in later rounds. A driver reading one socket until `WouldBlock` reads it all in
//! the first round.

use std::io::Write;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mio::{Events, Poll};
use switchboard::ChannelConfig;
use switchboard::frame::Frame;
use switchboard_mio::Driver;

mod common;
use common::wire_peer::{WINDOW, WirePeer};
use common::{CHANNEL, V4, driver_config, node_config};

/// What one connection may hand the node per turn (the driver's `READ_BUDGET`).
const TURN: u64 = 256 * 1024;
/// What the flooding peer has written before the hub looks.
const FLOOD: usize = 4 << 20;

/// One round of the usual loop with a zero timeout: readiness, then the events.
fn round(poll: &mut Poll, events: &mut Events, hub: &mut Driver) {
    poll.poll(events, Some(Duration::ZERO)).expect("poll");
    for event in events.iter() {
        hub.handle_event(event);
    }
    while hub.poll_event().is_some() {}
}

/// Drives `hub` until `connect` (run on its own thread) returns its peer.
fn connect(poll: &mut Poll, events: &mut Events, hub: &mut Driver) -> WirePeer {
    let (addr, info) = (hub.local_addrs()[0], hub.node().node_info().clone());
    let peer = thread::spawn(move || {
        WirePeer::dial(addr)
            .timeout(Duration::from_secs(5))
            .window(WINDOW)
            .connect(info)
    });
    while !peer.is_finished() {
        poll.poll(events, Some(Duration::from_millis(1)))
            .expect("poll");
        for event in events.iter() {
            hub.handle_event(event);
        }
        while hub.poll_event().is_some() {}
    }
    let peer = peer.join().unwrap().expect("handshake");
    let deadline = Instant::now() + Duration::from_secs(5);
    while hub.node().peer_info(&peer.peer_id).is_none() {
        assert!(Instant::now() < deadline, "never connected");
        round(poll, events, hub);
    }
    peer
}

fn received(hub: &Driver, peer: &WirePeer) -> u64 {
    hub.node()
        .peer_info(&peer.peer_id)
        .expect("connected")
        .stats
        .wire_bytes_received
}

#[test]
fn a_socket_with_megabytes_gets_one_turn_per_round() {
    let channel = ChannelConfig {
        receive_window: 64 << 20,
        max_message_size: 64 * 1024,
        ..ChannelConfig::new(CHANNEL)
    };
    let config = node_config(channel);
    let mut poll = Poll::new().expect("poll");
    let mut events = Events::with_capacity(64);
    let mut hub = Driver::new(poll.registry(), driver_config(V4, config, 0..16)).expect("hub");
    let mut flooder = connect(&mut poll, &mut events, &mut hub);
    let mut quiet = connect(&mut poll, &mut events, &mut hub);
    round(&mut poll, &mut events, &mut hub);

    // The flooder writes megabytes of legal messages (as much as the kernel holds; the
    // rest follows as the hub reads); the quiet peer one PING.
    let mut plaintext = Vec::new();
    Frame::Data {
        channel: CHANNEL,
        first: Some(60_000),
        end: true,
        payload: Bytes::from(vec![1; 60_000]),
    }
    .encode(&mut plaintext);
    let mut wire = Vec::new();
    while wire.len() < FLOOD {
        flooder.seal_into(&plaintext, &mut wire);
    }
    let flood_len = wire.len() as u64;
    let writer = thread::spawn(move || flooder.stream.write_all(&wire).map(|()| flooder));
    quiet.send(&[Frame::Ping(1)]).expect("ping");
    thread::sleep(Duration::from_millis(200));

    let quiet_before = received(&hub, &quiet);
    let read_before = hub.stats().bytes_read;
    round(&mut poll, &mut events, &mut hub);
    let first_round = hub.stats().bytes_read - read_before;
    assert!(
        received(&hub, &quiet) > quiet_before,
        "the quiet peer's record waited behind the flood"
    );
    assert!(
        first_round <= 2 * TURN,
        "{first_round} bytes read in one round: more than a turn each for two peers"
    );
    // Bytes are left, and no readiness event will say so: the loop must not sleep.
    assert_eq!(hub.poll_timeout(), Some(Duration::ZERO));

    // Later rounds read the rest, a turn at a time.
    let mut rounds = 1;
    let deadline = Instant::now() + Duration::from_secs(20);
    while hub.stats().bytes_read - read_before < flood_len {
        assert!(
            Instant::now() < deadline,
            "the flood was never read to its end"
        );
        let before = hub.stats().bytes_read;
        round(&mut poll, &mut events, &mut hub);
        assert!(hub.stats().bytes_read - before <= 2 * TURN);
        rounds += 1;
    }
    let flooder = writer.join().unwrap().expect("flood written");
    assert!(rounds as u64 >= flood_len / (2 * TURN), "{rounds} rounds");
    assert!(
        hub.node().peer_info(&flooder.peer_id).is_some(),
        "legal traffic, still connected"
    );
}
