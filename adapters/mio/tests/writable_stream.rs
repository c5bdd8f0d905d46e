//! Backpressure without a busy loop: a sender streams 64 MiB in 64 KiB messages through a
//! queue that holds a fraction of it. Each `send` that returns `Full` is answered by exactly
//! one `NodeEvent::Writable` once the queue has room, and the sender sleeps in between: its
//! loop wakes a bounded number of times. The receiver checks every byte and the order.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use mio::{Events, Poll};
use switchboard::node::NodeEvent;
use switchboard::{Bytes, ChannelConfig, SendError};
use switchboard_mio::{Driver, NodeApi};

mod common;
use common::{CHANNEL, V4, driver_config, node_config};

const MESSAGE: usize = 64 << 10;
const COUNT: u32 = 1024; // 64 MiB

fn message(number: u32) -> Bytes {
    let mut body = vec![(number.wrapping_mul(31) % 251) as u8; MESSAGE];
    body[..4].copy_from_slice(&number.to_be_bytes());
    Bytes::from(body)
}

/// A queue of 16 messages (1 MiB): the sender hits `Full` again and again.
fn channel() -> ChannelConfig {
    ChannelConfig::new(CHANNEL)
}

#[test]
fn a_stream_resumes_on_writable_without_a_busy_loop() {
    let (address_sender, address) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = stop.clone();
    let receiver = thread::spawn(move || {
        let mut poll = Poll::new().expect("poll");
        let config = driver_config(V4, node_config(channel()), 0..16);
        let mut driver = Driver::new(poll.registry(), config).expect("receiver");
        address_sender
            .send(driver.net_address().expect("listening"))
            .expect("address");
        let mut events = Events::with_capacity(64);
        let mut next = 0u32;
        while !stopping.load(Ordering::Acquire) {
            poll.poll(&mut events, Some(Duration::from_millis(20)))
                .expect("poll");
            for event in events.iter() {
                driver.handle_event(event);
            }
            while let Some(event) = driver.poll_event() {
                if let NodeEvent::Message { message: got, .. } = event {
                    assert!(
                        got == message(next),
                        "message {next} out of order or corrupt"
                    );
                    next += 1;
                }
            }
        }
        next
    });
    let address = address.recv().expect("receiver address");
    let to = address.peer_id().expect("an id");

    let mut poll = Poll::new().expect("poll");
    let config = driver_config(V4, node_config(channel()), 0..16);
    let mut driver = Driver::new(poll.registry(), config).expect("sender");
    driver.dial(address).expect("dial");
    let mut events = Events::with_capacity(64);
    let (mut next, mut connected, mut waiting) = (0u32, false, false);
    let (mut wakeups, mut fulls, mut writables) = (0u64, 0u64, 0u64);
    let deadline = Instant::now() + Duration::from_secs(60);
    let started = Instant::now();
    while next < COUNT {
        assert!(Instant::now() < deadline, "stalled at message {next}");
        // The documented loop, no cap on the sleep: a missing wake-up hangs here.
        poll.poll(&mut events, driver.poll_timeout()).expect("poll");
        wakeups += 1;
        for event in events.iter() {
            driver.handle_event(event);
        }
        while let Some(event) = driver.poll_event() {
            match event {
                NodeEvent::PeerConnected { .. } => connected = true,
                NodeEvent::Writable { peer, channel } => {
                    assert_eq!((peer, channel), (to, CHANNEL));
                    assert!(waiting, "a Writable that no Full asked for");
                    waiting = false;
                    writables += 1;
                }
                _ => {}
            }
        }
        while connected && !waiting && next < COUNT {
            match driver.send(&to, CHANNEL, message(next)) {
                Ok(()) => next += 1,
                Err(SendError::Full(_)) => {
                    fulls += 1;
                    waiting = true;
                }
                Err(other) => panic!("{other}"),
            }
        }
    }
    let elapsed = started.elapsed();
    driver.shutdown(Duration::from_secs(30));
    while !driver.is_idle() {
        poll.poll(&mut events, driver.poll_timeout()).expect("poll");
        for event in events.iter() {
            driver.handle_event(event);
        }
        while driver.poll_event().is_some() {}
    }
    let report = driver.take_shutdown_report().expect("report");
    assert!(
        report.is_complete(),
        "every message confirmed before the close"
    );
    stop.store(true, Ordering::Release);
    assert_eq!(receiver.join().expect("receiver"), COUNT);
    assert!(fulls >= 16, "the queue never filled: {fulls} Fulls");
    assert_eq!(writables, fulls, "one Writable per Full");
    // Each wake-up is a socket event or a deadline (83 for the 1,024 messages here, when
    // measured); a loop retrying `Full` would spin through hundreds of thousands.
    eprintln!(
        "{COUNT} messages in {elapsed:?}: {wakeups} wake-ups, {fulls} Fulls, {writables} Writables"
    );
    assert!(
        wakeups <= u64::from(COUNT) / 2,
        "{wakeups} wake-ups for {COUNT} messages"
    );
}
