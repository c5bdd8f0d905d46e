//! Weighted deficit round robin: a saturated bulk channel cannot starve another channel, and
//! saturated channels share the connection by weight.

mod common;

use common::pair::{Pair, Side, message};
use switchboard::{ChannelConfig, SendError};

const BULK: u16 = 1;
const URGENT: u16 = 2;

fn bulk(id: u16, weight: u16) -> ChannelConfig {
    ChannelConfig {
        weight,
        send_queue_bytes: 16 << 20,
        receive_window: 16 << 20,
        ..ChannelConfig::new(id)
    }
}

/// Queues `len`-byte messages on `channel` until the queue refuses one.
fn saturate(pair: &mut Pair, channel: u16, len: usize, next_id: &mut u64) {
    loop {
        *next_id += 1;
        match pair.dialer.connection.send(channel, message(*next_id, len)) {
            Ok(()) => {}
            Err(SendError::Full(_)) => return,
            Err(other) => panic!("send refused: {other}"),
        }
    }
}

/// One record from the dialer to the listener, whose events are taken and whose credit goes
/// back at once.
fn one_record(pair: &mut Pair) {
    assert!(
        pair.transmit_one(Side::Dialer),
        "the dialer had nothing to send"
    );
    pair.deliver(Side::Dialer, usize::MAX);
    pair.take_events(Side::Listener);
    pair.transmit(Side::Listener);
    pair.deliver(Side::Listener, usize::MAX);
    pair.take_events(Side::Dialer);
}

/// The bound, stated: while a weight-1 channel is saturated with 4 MiB messages, a message of
/// up to one quantum of its own channel (16 KiB × weight, less a 13-byte frame header; at most
/// 48 KiB) sent on an idle
/// channel is carried whole by the very next record. The bulk channel may finish its turn
/// first — at most one quantum, 16 KiB — and the rest of the 65519-byte record holds the
/// urgent message.
#[test]
fn an_urgent_message_rides_the_next_record_behind_a_saturated_bulk_channel() {
    let cases = [
        (3, 1usize, 1),
        (7, 1024, 1),
        (11, 16 * 1024 - 13, 1),
        (20, 40 * 1024, 3),
    ];
    for (offset, urgent_len, weight) in cases {
        let urgent_channel = ChannelConfig {
            weight,
            ..ChannelConfig::new(URGENT)
        };
        let mut pair = Pair::connected(offset, vec![bulk(BULK, 1), urgent_channel]);
        let mut next_id = 0;
        saturate(&mut pair, BULK, 4 << 20, &mut next_id);
        for _ in 0..offset {
            one_record(&mut pair);
        }
        let urgent = message(u64::MAX, urgent_len);
        pair.dialer.connection.send(URGENT, urgent.clone()).unwrap();
        one_record(&mut pair);
        assert!(
            pair.listener.messages(URGENT) == [urgent],
            "a {urgent_len}-byte message was not in the first record after it was sent"
        );
        assert!(
            pair.listener.messages(BULK).len() < 2,
            "the bulk channel kept sending 4 MiB messages"
        );
    }
}

#[test]
fn saturated_channels_share_the_connection_by_weight() {
    let mut pair = Pair::connected(9, vec![bulk(1, 1), bulk(2, 3)]);
    let mut next_id = 0;
    for _ in 0..400 {
        saturate(&mut pair, 1, 64 * 1024, &mut next_id);
        saturate(&mut pair, 2, 64 * 1024, &mut next_id);
        one_record(&mut pair);
    }
    let received = |channel| -> f64 {
        pair.listener
            .connection
            .channel_stats()
            .iter()
            .find(|stats| stats.channel == channel)
            .map(|stats| stats.bytes_received as f64)
            .unwrap()
    };
    // Whole messages only are counted, so allow a message's worth of slack on 26 MB.
    let ratio = received(2) / received(1);
    assert!(
        (2.8..=3.2).contains(&ratio),
        "weight 3 : weight 1 got {ratio:.3} : 1"
    );
}
