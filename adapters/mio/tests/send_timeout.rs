//! `Handle::send_timeout`: a simple program streams through a full queue with no retry loop
//! of its own — each call waits for room (the caller's thread blocks, never the node's) —
//! and a send into a queue that never drains gives up with `Full` at its timeout.

use std::time::{Duration, Instant};

use switchboard::{Bytes, ChannelConfig, SendError};
use switchboard_mio::{NodeApi, Runtime};

mod common;
use common::{CHANNEL, Receiver, V4, driver_config, node_config, wait_connected};

const MESSAGES: u32 = 3_000;

/// A queue of 8 messages and a window of ~16: the sender waits for room again and again.
fn channel() -> ChannelConfig {
    ChannelConfig {
        send_queue_messages: 8,
        receive_window: 16 * (1024 + 64),
        ..ChannelConfig::new(CHANNEL)
    }
}

fn message(number: u32) -> Bytes {
    let mut body = vec![(number % 253) as u8; 1024];
    body[..4].copy_from_slice(&number.to_be_bytes());
    Bytes::from(body)
}

#[test]
fn send_timeout_waits_for_room_and_keeps_the_order() {
    // The receiver takes nothing for its first 300 ms: the sender's queue fills at once.
    let silence = Duration::from_millis(300);
    let receiver = Receiver::start(Some(silence), channel(), |number, got| {
        *got == message(number)
    });
    let sender = Runtime::spawn(driver_config(V4, node_config(channel()), 0..64)).expect("sender");
    sender.dial(receiver.address).expect("dial");
    let to = receiver.address.peer_id().expect("an id");
    wait_connected(sender.events(), to);
    let started = Instant::now();
    let mut longest_wait = Duration::ZERO;
    for number in 0..MESSAGES {
        let call = Instant::now();
        sender
            .send_timeout(&to, CHANNEL, message(number), Duration::from_secs(10))
            .expect("room within 10 s");
        longest_wait = longest_wait.max(call.elapsed());
    }
    let report = sender.shutdown(Duration::from_secs(10));
    assert!(report.is_complete(), "all confirmed before the close");
    assert_eq!(receiver.finish(), MESSAGES);
    // One call waited out (most of) the receiver's silence, then it went on.
    assert!(
        longest_wait >= silence / 2,
        "no call waited: {longest_wait:?}"
    );
    eprintln!(
        "{MESSAGES} messages in {:?}, longest wait {longest_wait:?}",
        started.elapsed()
    );
}

#[test]
fn send_timeout_gives_up_with_full_at_its_timeout() {
    let receiver = Receiver::start(None, channel(), |_, _| true);
    let sender = Runtime::spawn(driver_config(V4, node_config(channel()), 0..64)).expect("sender");
    sender.dial(receiver.address).expect("dial");
    let to = receiver.address.peer_id().expect("an id");
    wait_connected(sender.events(), to);
    // Window and queue fill; nothing is ever taken.
    let mut number = 0;
    while sender.send(&to, CHANNEL, message(number)).is_ok() {
        number += 1;
    }
    let timeout = Duration::from_millis(300);
    let started = Instant::now();
    let result = sender.send_timeout(&to, CHANNEL, message(number), timeout);
    let took = started.elapsed();
    assert!(matches!(result, Err(SendError::Full(ref back)) if *back == message(number)));
    assert!(took >= timeout, "gave up early: {took:?}");
    assert!(took < timeout + Duration::from_secs(1), "took {took:?}");
    let _ = sender.shutdown(Duration::ZERO);
    assert_eq!(receiver.finish(), 0);
}
