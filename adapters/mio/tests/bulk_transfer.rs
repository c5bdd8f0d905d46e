//! Two nodes, each driven by an embedded `Driver` in its own thread and `mio::Poll`, move
//! 1 GiB on one channel in 1 MiB messages, over 127.0.0.1 and over ::1; the receiver checks
//! every byte and the order, and the sender's records went out gathered, several to a write
//! (`SWITCHBOARD_BULK_MIB` sets another amount).

use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mio::{Events, Poll};
use switchboard::node::NodeEvent;
use switchboard::{ChannelConfig, PeerId, SendError};
use switchboard_mio::{Driver, NodeApi};

mod common;
use common::{CHANNEL, V4, driver_config, node_config};

const MESSAGE: usize = 1 << 20;
/// Distinct message bodies: offsets into one random pattern.
const OFFSETS: usize = 4096;

fn pattern() -> Vec<u8> {
    // xorshift: cheap, and no two offsets give the same body.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    (0..MESSAGE + OFFSETS)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn body(pattern: &[u8], index: u64) -> &[u8] {
    let offset = (index as usize).wrapping_mul(7919) % OFFSETS;
    &pattern[offset + 8..offset + MESSAGE]
}

fn channel() -> ChannelConfig {
    ChannelConfig {
        send_queue_bytes: 4 << 20,
        receive_window: 4 << 20,
        ..ChannelConfig::new(CHANNEL)
    }
}

/// Runs one turn of an embedded loop.
fn turn(poll: &mut Poll, events: &mut Events, driver: &mut Driver) {
    let timeout = driver
        .poll_timeout()
        .map_or(Duration::from_millis(10), |t| {
            t.min(Duration::from_millis(10))
        });
    poll.poll(events, Some(timeout)).expect("poll");
    for event in events.iter() {
        driver.handle_event(event);
    }
}

#[test]
fn two_nodes_move_a_gibibyte_on_one_channel_byte_for_byte_over_ipv4() {
    move_a_gibibyte(V4);
}

#[test]
fn two_nodes_move_a_gibibyte_on_one_channel_byte_for_byte_over_ipv6() {
    move_a_gibibyte(IpAddr::V6(Ipv6Addr::LOCALHOST));
}

fn move_a_gibibyte(ip: IpAddr) {
    let mib: u64 = std::env::var("SWITCHBOARD_BULK_MIB")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(1024);
    let pattern = Arc::new(pattern());
    let done = Arc::new(AtomicBool::new(false));

    let mut receiver_poll = Poll::new().expect("poll");
    let mut receiver = Driver::new(
        receiver_poll.registry(),
        driver_config(ip, node_config(channel()), 0..16),
    )
    .expect("receiver");
    let receiver_addr = receiver.net_address().expect("listening");

    let sender_pattern = pattern.clone();
    let sender_done = done.clone();
    let sender = thread::spawn(move || {
        let mut poll = Poll::new().expect("poll");
        let mut driver = Driver::new(
            poll.registry(),
            driver_config(ip, node_config(channel()), 0..16),
        )
        .expect("sender");
        driver.dial(receiver_addr).expect("dial");
        let mut events = Events::with_capacity(64);
        let mut peer: Option<PeerId> = None;
        let mut next = 0u64;
        let mut max_buffered = 0usize;
        while !sender_done.load(Ordering::Acquire) {
            turn(&mut poll, &mut events, &mut driver);
            while let Some(event) = driver.poll_event() {
                if let NodeEvent::PeerConnected { peer: p, .. } = event {
                    peer = Some(p);
                }
            }
            let Some(peer) = peer else { continue };
            while next < mib {
                let mut message = Vec::with_capacity(MESSAGE);
                message.extend_from_slice(&next.to_be_bytes());
                message.extend_from_slice(body(&sender_pattern, next));
                match driver.send(&peer, CHANNEL, Bytes::from(message)) {
                    Ok(()) => next += 1,
                    Err(SendError::Full(_)) => break,
                    Err(error) => panic!("send failed: {error:?}"),
                }
            }
            max_buffered = max_buffered.max(driver.buffered_bytes());
        }
        (next, max_buffered, driver.stats())
    });

    let started = Instant::now();
    let deadline = started + Duration::from_secs(240);
    let mut events = Events::with_capacity(64);
    let mut received = 0u64;
    let mut last_report = Instant::now();
    while received < mib {
        assert!(
            Instant::now() < deadline,
            "only {received} of {mib} MiB arrived in time"
        );
        turn(&mut receiver_poll, &mut events, &mut receiver);
        while let Some(event) = receiver.poll_event() {
            let NodeEvent::Message {
                message, channel, ..
            } = event
            else {
                continue;
            };
            assert_eq!(channel, CHANNEL);
            assert_eq!(
                message.len(),
                MESSAGE,
                "message {received} has the wrong length"
            );
            assert_eq!(message[..8], received.to_be_bytes(), "message out of order");
            assert!(
                message[8..] == *body(&pattern, received),
                "message {received} corrupted"
            );
            received += 1;
        }
        if last_report.elapsed() >= Duration::from_secs(5) {
            last_report = Instant::now();
            eprintln!("bulk: {received}/{mib} MiB");
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    done.store(true, Ordering::Release);
    let (sent, max_buffered, stats) = sender.join().expect("sender thread");
    assert_eq!(sent, mib);
    // The unwritten tail never exceeds one gathered write: up to 256 KiB, plus the record
    // that crossed that mark (≤ 64 KiB + its 2-byte length).
    assert!(
        max_buffered <= 256 * 1024 + 65_537,
        "tail of {max_buffered} bytes"
    );
    // Full records are 64 KiB: gathering makes a write carry several.
    let per_write = stats.bytes_written / stats.writes.max(1);
    eprintln!(
        "bulk over {ip}: {mib} MiB in {elapsed:.2} s ({:.0} MiB/s); sender: {} writes, {} KiB each on \
         average, {} blocked",
        mib as f64 / elapsed,
        stats.writes,
        per_write / 1024,
        stats.blocked_writes
    );
    assert!(
        per_write >= 128 * 1024,
        "{per_write} bytes per write: records are not gathered"
    );
}
