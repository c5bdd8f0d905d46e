//! Nothing is silently lost: random sends, random pumping, then the connection cut at a
//! random byte (or closed by one side). For every message accepted by `send`:
//! confirmed ⇒ delivered; unsent ⇒ not delivered; sent = confirmed + unsent + unconfirmed;
//! nothing delivered twice or out of order.

mod common;

use bytes::Bytes;
use common::pair::{Pair, Side, message};
use proptest::prelude::*;
use switchboard::connection::Closed;
use switchboard::{ChannelConfig, DisconnectReason, SendError};

const CHANNELS: [u16; 2] = [1, 2];

#[derive(Clone, Debug)]
enum Op {
    Send {
        side: Side,
        channel: usize,
        len: usize,
    },
    Transmit {
        side: Side,
    },
    Deliver {
        side: Side,
        bytes: usize,
    },
    Take {
        side: Side,
    },
}

fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Dialer), Just(Side::Listener)]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (side(), 0..2usize, prop_oneof![0usize..300, 300usize..200_000])
            .prop_map(|(side, channel, len)| Op::Send { side, channel, len }),
        2 => side().prop_map(|side| Op::Transmit { side }),
        2 => (side(), 1usize..150_000).prop_map(|(side, bytes)| Op::Deliver { side, bytes }),
        2 => side().prop_map(|side| Op::Take { side }),
    ]
}

#[derive(Clone, Copy, Debug)]
enum Ending {
    /// The wire breaks: each side's in-flight bytes get through up to a point, then both
    /// transports report closed.
    Cut {
        dialer_bytes: usize,
        listener_bytes: usize,
    },
    /// One side closes; everything in flight is still delivered.
    Close(Side),
}

fn ending() -> impl Strategy<Value = Ending> {
    prop_oneof![
        (0usize..300_000, 0usize..300_000).prop_map(|(dialer_bytes, listener_bytes)| Ending::Cut {
            dialer_bytes,
            listener_bytes
        }),
        side().prop_map(Ending::Close),
    ]
}

fn check(side: Side, sent: &[Vec<Bytes>; 2], closed: &Closed, delivered: &[Vec<Bytes>; 2]) {
    let mut confirmed_total = 0;
    for (index, channel) in CHANNELS.iter().enumerate() {
        let sent = &sent[index];
        let delivered = &delivered[index];
        let unsent: Vec<&Bytes> = closed
            .outcome
            .unsent
            .iter()
            .filter(|returned| returned.channel == *channel)
            .map(|returned| &returned.message)
            .collect();
        let unconfirmed: Vec<&Bytes> = closed
            .outcome
            .unconfirmed
            .iter()
            .filter(|returned| returned.channel == *channel)
            .map(|returned| &returned.message)
            .collect();
        // Per channel, send order is: confirmed, then unconfirmed, then unsent.
        let confirmed = sent.len() - unsent.len() - unconfirmed.len();
        confirmed_total += confirmed;
        assert!(
            sent[confirmed..confirmed + unconfirmed.len()]
                .iter()
                .eq(unconfirmed.iter().copied()),
            "{side:?} ch {channel}: unconfirmed not in order"
        );
        assert!(
            sent[confirmed + unconfirmed.len()..]
                .iter()
                .eq(unsent.iter().copied()),
            "{side:?} ch {channel}: unsent not in order"
        );
        // Delivered is a prefix of sent: exactly once, in order.
        assert!(
            delivered.len() <= sent.len(),
            "{side:?} ch {channel}: more delivered than sent"
        );
        assert!(
            delivered.iter().eq(sent[..delivered.len()].iter()),
            "{side:?} ch {channel}: delivered out of order, duplicated or altered"
        );
        assert!(
            delivered.len() >= confirmed,
            "{side:?} ch {channel}: confirmed but not delivered"
        );
        assert!(
            delivered.len() <= confirmed + unconfirmed.len(),
            "{side:?} ch {channel}: an unsent message was delivered"
        );
    }
    assert_eq!(
        closed.outcome.confirmed as usize, confirmed_total,
        "{side:?}: confirmed count"
    );
}

fn run(seed: u64, ops: Vec<Op>, ending: Ending) {
    let channels = vec![
        ChannelConfig {
            receive_window: 100_000,
            ..ChannelConfig::new(1)
        },
        ChannelConfig {
            weight: 3,
            send_queue_messages: 4,
            ..ChannelConfig::new(2)
        },
    ];
    let mut pair = Pair::connected(seed, channels);
    let mut sent: [[Vec<Bytes>; 2]; 2] = Default::default();
    let mut id = 0;
    let index = |side: Side| usize::from(side == Side::Listener);
    for op in ops {
        match op {
            Op::Send { side, channel, len } => {
                id += 1;
                let next = message(id, len);
                match pair
                    .end(side)
                    .connection
                    .send(CHANNELS[channel], next.clone())
                {
                    Ok(()) => sent[index(side)][channel].push(next),
                    Err(SendError::Full(_)) => {}
                    Err(other) => panic!("{other}"),
                }
            }
            Op::Transmit { side } => {
                pair.transmit_one(side);
            }
            Op::Deliver { side, bytes } => {
                pair.deliver(side, bytes);
            }
            Op::Take { side } => {
                pair.take_events(side);
            }
        }
    }
    match ending {
        Ending::Cut {
            dialer_bytes,
            listener_bytes,
        } => {
            pair.transmit(Side::Dialer);
            pair.transmit(Side::Listener);
            pair.deliver(Side::Dialer, dialer_bytes);
            pair.deliver(Side::Listener, listener_bytes);
            pair.take_events(Side::Dialer);
            pair.take_events(Side::Listener);
            pair.dialer.connection.handle_closed();
            pair.listener.connection.handle_closed();
        }
        Ending::Close(side) => {
            let now = pair.now;
            pair.end(side)
                .connection
                .close(now, DisconnectReason::Requested, "test over");
            pair.drive();
        }
    }
    pair.take_events(Side::Dialer);
    pair.take_events(Side::Listener);
    for side in [Side::Dialer, Side::Listener] {
        let receiver = pair.end(side.other());
        let delivered = [
            receiver.messages(CHANNELS[0]),
            receiver.messages(CHANNELS[1]),
        ];
        let closed = pair
            .end(side)
            .closed()
            .expect("every connection ends with Closed")
            .clone();
        check(side, &sent[index(side)], &closed, &delivered);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn every_message_is_confirmed_or_returned(seed in any::<u64>(), ops in proptest::collection::vec(op(), 0..50), ending in ending()) {
        run(seed, ops, ending);
    }
}
