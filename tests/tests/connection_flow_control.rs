//! Credit-based flow control: a receiver that stops taking messages stalls its sender with
//! bounded memory on both ends, and a peer that ignores credit or size limits is cut off with
//! the matching reason.

mod common;

use bytes::Bytes;
use common::pair::{Pair, message};
use common::rogue::RogueDialer;
use switchboard::connection::{ClosedBy, Event};
use switchboard::frame::Frame;
use switchboard::{ChannelConfig, DisconnectReason, SendError};

fn small_channel() -> ChannelConfig {
    ChannelConfig {
        receive_window: 64 * 1024,
        max_message_size: 16 * 1024,
        send_queue_messages: 32,
        ..ChannelConfig::new(1)
    }
}

#[test]
fn a_receiver_that_never_takes_messages_stalls_the_sender_within_its_bound() {
    let channel = small_channel();
    let bound = channel.receive_buffer_bound() + 65_537;
    let mut pair = Pair::connected(4, vec![channel]);
    let mut sent = Vec::new();
    let mut refused_in_a_row = 0;
    for round in 0..200u64 {
        let next = message(round, 1000 + round as usize * 37 % 15_000);
        match pair.dialer.connection.send(1, next.clone()) {
            Ok(()) => {
                sent.push(next);
                refused_in_a_row = 0;
            }
            Err(SendError::Full(back)) => {
                assert!(back == next, "Full hands the message back");
                refused_in_a_row += 1;
            }
            Err(other) => panic!("unexpected {other}"),
        }
        pair.drive_taking(true, false);
        let held = pair.listener.connection.buffered_bytes();
        assert!(held <= bound, "receiver holds {held} bytes, bound {bound}");
    }
    assert!(
        refused_in_a_row > 100,
        "the sender was not stalled: {refused_in_a_row} refusals in a row"
    );
    let window_messages = sent.len();
    // The application wakes up: everything arrives, in order, and the sender drains.
    pair.drive();
    let received = pair.listener.messages(1);
    assert_eq!(received.len(), window_messages);
    assert!(received == sent, "content or order differs");
    let stats = pair.dialer.connection.channel_stats()[0];
    assert_eq!(stats.queued_messages, 0);
    assert_eq!(stats.messages_confirmed, window_messages as u64);
}

fn data(total: usize, payload: Bytes) -> Frame {
    Frame::Data {
        channel: 1,
        first: Some(total as u32),
        end: payload.len() == total,
        payload,
    }
}

#[test]
fn a_peer_that_ignores_credit_is_disconnected_with_flow_control() {
    // Window 4096: messages of 1000 bytes cost 1064; the fourth would start at 3192 + 1064 >
    // 4096, beyond the credit.
    let mut rogue = RogueDialer::connect(ChannelConfig {
        receive_window: 4096,
        ..ChannelConfig::new(1)
    });
    for id in 0..4 {
        rogue.send_frames(&[data(1000, message(id, 1000))]);
    }
    let events = rogue.take_events();
    let messages = events
        .iter()
        .filter(|event| matches!(event, Event::Message { .. }))
        .count();
    assert_eq!(messages, 3);
    let Some(Event::Closed(closed)) = events.last() else {
        panic!("not closed: {events:?}")
    };
    assert_eq!(
        (closed.reason, closed.by),
        (DisconnectReason::FlowControl, ClosedBy::Local)
    );
    // The peer is told why, after the credit for the three messages taken.
    let frames = rogue.read_frames();
    assert!(
        matches!(
            frames.last(),
            Some(Frame::GoAway {
                reason: DisconnectReason::FlowControl,
                ..
            })
        ),
        "{frames:?}"
    );
    assert!(rogue.listener.is_closed());
}

#[test]
fn a_message_above_the_maximum_is_refused_on_both_ends() {
    let channel = small_channel();
    let mut pair = Pair::connected(5, vec![channel]);
    let too_big = message(1, 16 * 1024 + 1);
    assert!(matches!(
        pair.dialer.connection.send(1, too_big),
        Err(SendError::TooLarge(_))
    ));

    let mut rogue = RogueDialer::connect(channel);
    rogue.send_frames(&[data(16 * 1024 + 1, Bytes::from_static(b"x"))]);
    let events = rogue.take_events();
    let Some(Event::Closed(closed)) = events.last() else {
        panic!("not closed: {events:?}")
    };
    assert_eq!(closed.reason, DisconnectReason::MessageTooLarge);
    let Some(Frame::GoAway { reason, text }) = rogue.read_frames().pop() else {
        panic!("no GOAWAY")
    };
    assert_eq!(reason, DisconnectReason::MessageTooLarge);
    assert!(text.contains("16385"), "{text}");
}

#[test]
fn fragments_out_of_sequence_are_protocol_errors() {
    let cases: Vec<Vec<Frame>> = vec![
        // A continuation with no message started.
        vec![Frame::Data {
            channel: 1,
            first: None,
            end: true,
            payload: Bytes::from_static(b"x"),
        }],
        // A new message while one is in progress.
        vec![
            data(10, Bytes::from_static(b"abc")),
            data(10, Bytes::from_static(b"abc")),
        ],
        // More bytes than announced.
        vec![data(2, Bytes::from_static(b"abc"))],
        // A channel that is not open.
        vec![Frame::Data {
            channel: 9,
            first: Some(1),
            end: true,
            payload: Bytes::from_static(b"x"),
        }],
    ];
    for frames in cases {
        let mut rogue = RogueDialer::connect(small_channel());
        rogue.send_frames(&frames);
        let events = rogue.take_events();
        let Some(Event::Closed(closed)) = events.last() else {
            panic!("{frames:?} did not close: {events:?}")
        };
        assert_eq!(closed.reason, DisconnectReason::ProtocolError, "{frames:?}");
    }
}

#[test]
fn garbage_after_the_handshake_is_a_protocol_error_never_a_panic() {
    let mut rogue = RogueDialer::connect(small_channel());
    rogue.listener.handle_input(rogue.now, &[0, 20, 1, 2, 3]);
    rogue.listener.handle_input(rogue.now, &[9; 20]);
    let events = rogue.take_events();
    let Some(Event::Closed(closed)) = events.last() else {
        panic!("not closed: {events:?}")
    };
    assert_eq!(closed.reason, DisconnectReason::ProtocolError);
    assert!(matches!(
        rogue.read_frames().last(),
        Some(Frame::GoAway {
            reason: DisconnectReason::ProtocolError,
            ..
        })
    ));
}
