//! Every message sent on a connection is delivered exactly once, in order per channel, byte
//! for byte — whatever the sizes (0 B to 4 MiB), the channels, the points where the wire is
//! split into reads, and the order in which the two ends are polled.

mod common;

use std::collections::VecDeque;

use bytes::Bytes;
use common::pair::{Pair, Side, message};
use proptest::prelude::*;
use switchboard::{ChannelConfig, SendError};

const CHANNELS: [u16; 3] = [1, 7, 300];

fn channels() -> Vec<ChannelConfig> {
    vec![
        ChannelConfig {
            weight: 4,
            ..ChannelConfig::new(1)
        },
        ChannelConfig::new(7),
        // Small queue and window: `Full` and credit stalls happen often.
        ChannelConfig {
            send_queue_messages: 3,
            send_queue_bytes: 64 * 1024,
            receive_window: 8 * 1024,
            ..ChannelConfig::new(300)
        },
    ]
}

#[derive(Clone, Debug)]
enum Op {
    /// `side` sends a message of `len` bytes on channel `CHANNELS[channel]`.
    Send {
        side: Side,
        channel: usize,
        len: usize,
    },
    /// `side` writes at most `records` records.
    Transmit { side: Side, records: usize },
    /// Up to `bytes` of `side`'s output reach the other end, in one read.
    Deliver { side: Side, bytes: usize },
    /// `side`'s application takes its events.
    Take { side: Side },
}

fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Dialer), Just(Side::Listener)]
}

fn message_len() -> impl Strategy<Value = usize> {
    prop_oneof![
        8 => 0usize..=200,
        4 => 200usize..=70_000,
        1 => 70_000usize..=(4 << 20),
        1 => Just(4 << 20),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (side(), 0..CHANNELS.len(), message_len())
            .prop_map(|(side, channel, len)| Op::Send { side, channel, len }),
        3 => (side(), 1usize..4).prop_map(|(side, records)| Op::Transmit { side, records }),
        3 => (side(), prop_oneof![1usize..64, 64usize..100_000, Just(usize::MAX)])
            .prop_map(|(side, bytes)| Op::Deliver { side, bytes }),
        2 => side().prop_map(|side| Op::Take { side }),
    ]
}

/// What one end sent: per channel, the accepted messages in order, and those refused with
/// `Full` waiting to be retried.
#[derive(Default)]
struct Sender {
    sent: [Vec<Bytes>; 3],
    retry: [VecDeque<Bytes>; 3],
    next_id: u64,
}

impl Sender {
    fn offer(&mut self, pair: &mut Pair, side: Side, channel: usize) {
        while let Some(next) = self.retry[channel].pop_front() {
            match pair
                .end(side)
                .connection
                .send(CHANNELS[channel], next.clone())
            {
                Ok(()) => self.sent[channel].push(next),
                Err(SendError::Full(back)) => {
                    self.retry[channel].push_front(back);
                    return;
                }
                Err(other) => panic!("send refused: {other}"),
            }
        }
    }
}

fn run(seed: u64, ops: Vec<Op>) {
    let mut pair = Pair::connected(seed, channels());
    let mut senders = [Sender::default(), Sender::default()];
    let index = |side: Side| if side == Side::Dialer { 0 } else { 1 };
    for op in ops {
        match op {
            Op::Send { side, channel, len } => {
                let sender = &mut senders[index(side)];
                let id = sender.next_id + if side == Side::Dialer { 0 } else { 1 << 32 };
                sender.next_id += 1;
                sender.retry[channel].push_back(message(id, len));
                sender.offer(&mut pair, side, channel);
            }
            Op::Transmit { side, records } => {
                for _ in 0..records {
                    if !pair.transmit_one(side) {
                        break;
                    }
                }
            }
            Op::Deliver { side, bytes } => {
                pair.deliver(side, bytes);
            }
            Op::Take { side } => {
                pair.take_events(side);
            }
        }
    }
    // Drain: keep retrying refused sends until everything went through.
    for _ in 0..10_000 {
        pair.drive();
        let mut waiting = false;
        for side in [Side::Dialer, Side::Listener] {
            for channel in 0..CHANNELS.len() {
                senders[index(side)].offer(&mut pair, side, channel);
                waiting |= !senders[index(side)].retry[channel].is_empty();
            }
        }
        if !waiting {
            break;
        }
    }
    pair.drive();
    for side in [Side::Dialer, Side::Listener] {
        let receiver = pair.end(side.other());
        assert!(
            receiver.closed().is_none(),
            "closed: {:?}",
            receiver.closed()
        );
        for (channel, sent) in CHANNELS.iter().zip(&senders[index(side)].sent) {
            let received = receiver.messages(*channel);
            assert_eq!(
                received.len(),
                sent.len(),
                "{side:?} → channel {channel}: count"
            );
            for (number, (got, want)) in received.iter().zip(sent).enumerate() {
                assert!(
                    got == want,
                    "{side:?} → channel {channel}: message {number} differs"
                );
            }
        }
        // Everything delivered was taken, so everything was confirmed.
        let stats = pair.end(side).connection.channel_stats();
        for channel in &stats {
            assert_eq!(
                channel.messages_confirmed, channel.messages_sent,
                "{side:?} {channel:?}"
            );
            assert_eq!(channel.unconfirmed_messages, 0);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn every_message_arrives_once_in_order_and_intact(seed in any::<u64>(), ops in proptest::collection::vec(op(), 1..60)) {
        run(seed, ops);
    }
}

#[test]
fn a_four_mib_message_and_an_empty_one_cross_in_one_byte_reads_of_the_tail() {
    let mut pair = Pair::connected(1, channels());
    let big = message(1, 4 << 20);
    pair.dialer.connection.send(1, big.clone()).unwrap();
    // The 4 MiB message fills the 1 MiB queue bound: nothing more until it is written.
    assert!(matches!(
        pair.dialer.connection.send(1, Bytes::new()),
        Err(SendError::Full(_))
    ));
    pair.transmit(Side::Dialer);
    pair.dialer.connection.send(1, Bytes::new()).unwrap();
    pair.transmit(Side::Dialer);
    let total = pair.dialer.outbox.len();
    pair.deliver(Side::Dialer, total - 100);
    while !pair.dialer.outbox.is_empty() {
        pair.deliver(Side::Dialer, 1);
    }
    pair.take_events(Side::Listener);
    assert_eq!(
        pair.listener.messages(1).len(),
        1,
        "the empty message waits for credit"
    );
    pair.drive();
    let received = pair.listener.messages(1);
    assert_eq!(received.len(), 2);
    assert_eq!(received[0].len(), big.len());
    let differs = received[0].iter().zip(big.iter()).position(|(a, b)| a != b);
    assert_eq!(differs, None, "first differing byte");
    assert!(received[1].is_empty());
}

/// Sends `lens` on channel 1 (with a small message on channel 7 after each if `interleave`)
/// and delivers the dialer's bytes in reads of the sizes `reads` gives, in turn, until
/// everything arrived; returns the pair and what was sent.
fn large_messages_in_reads(
    seed: u64,
    lens: &[usize],
    interleave: bool,
    reads: &[usize],
) -> (Pair, Vec<Bytes>, Vec<Bytes>) {
    let mut pair = Pair::connected(seed, channels());
    let (mut large, mut small) = (Vec::new(), Vec::new());
    let mut to_send = VecDeque::new();
    for (id, &len) in lens.iter().enumerate() {
        let id = id as u64;
        large.push(message(id, len));
        to_send.push_back((1, message(id, len)));
        if interleave {
            small.push(message(1000 + id, 50));
            to_send.push_back((7, message(1000 + id, 50)));
        }
    }
    let mut read = reads.iter().cycle();
    for _ in 0..10_000 {
        pair.send_queued(Side::Dialer, &mut to_send);
        pair.transmit(Side::Dialer);
        if to_send.is_empty()
            && pair.dialer.outbox.is_empty()
            && pair.listener.messages(1).len() == large.len()
        {
            break;
        }
        while !pair.dialer.outbox.is_empty() {
            pair.deliver(Side::Dialer, *read.next().unwrap());
        }
        // The listener takes what arrived and returns the credit.
        pair.take_events(Side::Listener);
        pair.transmit(Side::Listener);
        pair.deliver(Side::Listener, usize::MAX);
        pair.take_events(Side::Dialer);
    }
    (pair, large, small)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Records of large messages are decrypted straight into their reassembly buffer when
    /// the records before them suggest so; however the reads cut the stream (mid-header,
    /// mid-record, many records at once), and whatever else shares the records, every
    /// message arrives intact, in order, once.
    #[test]
    fn large_messages_arrive_intact_however_the_reads_cut_them(
        seed in any::<u64>(),
        lens in proptest::collection::vec(65_000usize..400_000, 1..4),
        interleave in any::<bool>(),
        reads in proptest::collection::vec(prop_oneof![1usize..4, 4usize..70_000, 70_000usize..300_000], 1..12),
    ) {
        let (mut pair, large, small) = large_messages_in_reads(seed, &lens, interleave, &reads);
        prop_assert!(pair.listener.closed().is_none(), "closed: {:?}", pair.listener.closed());
        prop_assert!(pair.listener.messages(1) == large, "channel 1 differs");
        prop_assert!(pair.listener.messages(7) == small, "channel 7 differs");
        pair.drive();
        prop_assert!(pair.listener.closed().is_none());
    }
}

#[test]
fn records_of_large_messages_land_in_their_reassembly_buffer() {
    // Four 1 MiB messages, in 256 KiB reads as the mio adapter makes them.
    let (pair, large, _) = large_messages_in_reads(3, &[1 << 20; 4], false, &[256 * 1024]);
    assert!(pair.listener.messages(1) == large);
    let stats = pair.listener.connection.stats();
    // Each message is 17 records: the first (the message's start) is read the usual way,
    // the 16 after it land.
    assert_eq!(stats.records_misguessed, 0);
    assert!(
        stats.records_landed >= 4 * 16,
        "{} of {} records landed",
        stats.records_landed,
        stats.records_received
    );
}
