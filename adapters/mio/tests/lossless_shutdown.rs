//! Nothing `send` accepted is lost at shutdown: 5,000 messages of 4 KB are sent, then the
//! sender shuts down, through the standalone `Runtime` and through an embedded `Driver` in
//! the loop its documentation shows. Every message ends confirmed (and delivered) or handed
//! back in the shutdown report, and the loop ends within the shutdown's timeout even when
//! the receiver never reads.

use std::time::{Duration, Instant};

use mio::{Events, Poll};
use switchboard::node::{NodeEvent, ShutdownReport};
use switchboard::{Bytes, ChannelConfig, PeerId};
use switchboard_mio::{Driver, NodeApi, Runtime};

mod common;
use common::{CHANNEL, Receiver, V4, driver_config, node_config, number, wait_connected};

const MESSAGES: u32 = 5_000;
const SIZE: usize = 4_000;

/// Room for all 5,000 in the send queue, so every one is accepted even when the receiver
/// takes nothing.
fn channel() -> ChannelConfig {
    ChannelConfig {
        send_queue_messages: 8_192,
        send_queue_bytes: 32 << 20,
        ..ChannelConfig::new(CHANNEL)
    }
}

fn message(number: u32) -> Bytes {
    let mut body = vec![(number % 251) as u8; SIZE];
    body[..4].copy_from_slice(&number.to_be_bytes());
    Bytes::from(body)
}

/// Every message is confirmed or handed back, once, the handed back ones being those after
/// the confirmed, in order. Returns (confirmed, handed back).
fn check_accounts(report: &ShutdownReport, to: PeerId) -> (u64, usize) {
    assert_eq!(report.peers.len(), 1, "one peer");
    let peer = &report.peers[0];
    assert_eq!(peer.peer, to);
    let returned: Vec<u32> = peer
        .unconfirmed
        .iter()
        .chain(&peer.unsent)
        .map(|returned| number(&returned.message))
        .collect();
    let expected: Vec<u32> = (peer.confirmed as u32..MESSAGES).collect();
    assert!(
        returned == expected,
        "confirmed {}, then {} handed back, not the rest in order",
        peer.confirmed,
        returned.len()
    );
    (peer.confirmed, returned.len())
}

fn runtime_sends_then_shuts_down(
    receiver: &Receiver,
    timeout: Duration,
) -> (ShutdownReport, PeerId, Duration) {
    let sender = Runtime::spawn(driver_config(V4, node_config(channel()), 0..64)).expect("sender");
    sender.dial(receiver.address).expect("dial");
    let to = receiver.address.peer_id().expect("an id");
    wait_connected(sender.events(), to);
    for number in 0..MESSAGES {
        sender
            .send(&to, CHANNEL, message(number))
            .expect("room for all");
    }
    let started = Instant::now();
    let report = sender.shutdown(timeout);
    (report, to, started.elapsed())
}

/// The embedded loop of `Driver`'s documentation, sending 5,000 messages once connected and
/// then shutting down; returns the report and how long the shutdown took.
fn driver_sends_then_shuts_down(
    receiver: &Receiver,
    timeout: Duration,
) -> (ShutdownReport, PeerId, Duration) {
    let mut poll = Poll::new().expect("poll");
    let config = driver_config(V4, node_config(channel()), 0..64);
    let mut driver = Driver::new(poll.registry(), config).expect("sender");
    driver.dial(receiver.address).expect("dial");
    let to = receiver.address.peer_id().expect("an id");
    let mut events = Events::with_capacity(256);
    let mut shutdown_at = None;
    let deadline = Instant::now() + timeout + Duration::from_secs(20);
    loop {
        assert!(Instant::now() < deadline, "the loop never ended: a hang");
        poll.poll(&mut events, driver.poll_timeout()).expect("poll");
        for event in events.iter() {
            driver.handle_event(event);
        }
        while let Some(event) = driver.poll_event() {
            if let NodeEvent::PeerConnected { peer, .. } = event {
                assert_eq!(peer, to);
                for number in 0..MESSAGES {
                    driver
                        .send(&to, CHANNEL, message(number))
                        .expect("room for all");
                }
                driver.shutdown(timeout);
                shutdown_at = Some(Instant::now());
            }
        }
        if shutdown_at.is_some() && driver.is_idle() {
            break;
        }
    }
    let took = shutdown_at.expect("shut down").elapsed();
    let report = driver.take_shutdown_report().expect("a report");
    (report, to, took)
}

/// How a sender shuts down after its 5,000 sends: the report, its peer, how long it took.
type SendsThenShutsDown = fn(&Receiver, Duration) -> (ShutdownReport, PeerId, Duration);

/// To a reader, every message is confirmed and delivered, in order, intact.
fn delivers_everything_to_a_reader(sender: SendsThenShutsDown) {
    let receiver = Receiver::start(Some(Duration::ZERO), channel(), |number, got| {
        *got == message(number)
    });
    let (report, to, _) = sender(&receiver, Duration::from_secs(30));
    let (confirmed, returned) = check_accounts(&report, to);
    assert_eq!((confirmed, returned), (u64::from(MESSAGES), 0));
    assert_eq!(receiver.finish(), MESSAGES);
}

/// To a receiver that takes nothing, every message is handed back in order, and the
/// shutdown ends at its timeout (the test fails on a hang).
fn ends_on_time_and_hands_back_what_a_silent_receiver_never_took(sender: SendsThenShutsDown) {
    let receiver = Receiver::start(None, channel(), |number, got| *got == message(number));
    let timeout = Duration::from_millis(500);
    let (report, to, took) = sender(&receiver, timeout);
    let (confirmed, returned) = check_accounts(&report, to);
    assert_eq!(confirmed, 0);
    assert_eq!(returned, MESSAGES as usize);
    assert!(took >= timeout, "gave up before its timeout: {took:?}");
    assert!(took < timeout + Duration::from_secs(1), "took {took:?}");
    assert_eq!(receiver.finish(), 0);
}

#[test]
fn runtime_shutdown_delivers_everything_to_a_reader() {
    delivers_everything_to_a_reader(runtime_sends_then_shuts_down);
}

#[test]
fn runtime_shutdown_hands_back_what_a_silent_receiver_never_took() {
    ends_on_time_and_hands_back_what_a_silent_receiver_never_took(runtime_sends_then_shuts_down);
}

#[test]
fn driver_shutdown_delivers_everything_to_a_reader() {
    delivers_everything_to_a_reader(driver_sends_then_shuts_down);
}

#[test]
fn driver_shutdown_ends_on_time_and_hands_back_what_a_silent_receiver_never_took() {
    ends_on_time_and_hands_back_what_a_silent_receiver_never_took(driver_sends_then_shuts_down);
}

#[test]
fn runtime_shutdown_reports_a_disconnection_the_application_never_read() {
    let receiver = Receiver::start(None, channel(), |_, _| true);
    let sender = Runtime::spawn(driver_config(V4, node_config(channel()), 0..64)).expect("sender");
    sender.dial(receiver.address).expect("dial");
    let to = receiver.address.peer_id().expect("an id");
    wait_connected(sender.events(), to);
    for number in 0..MESSAGES {
        sender
            .send(&to, CHANNEL, message(number))
            .expect("room for all");
    }
    // The receiver goes away; its disconnection waits unread in the sender's events.
    assert_eq!(receiver.finish(), 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sender.peers().is_empty() {
        assert!(Instant::now() < deadline, "the sender never saw it go");
        std::thread::sleep(Duration::from_millis(10));
    }
    let report = sender.shutdown(Duration::from_secs(1));
    let (confirmed, returned) = check_accounts(&report, to);
    assert_eq!((confirmed, returned), (0, MESSAGES as usize));
}
