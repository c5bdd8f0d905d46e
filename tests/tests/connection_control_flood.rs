//! The budget of frames that carry nothing (PING, PONG, `CREDIT(0)`, empty records; empty
//! fragments are charged alike, see the unit test beside the budget), against a rogue peer speaking raw records: a burst of
//! `FREE_FRAMES_PER_SECOND` passes, the next frame ends the connection with `ControlFlood`,
//! and the budget refills at its rate. Also measures what such frames cost the listener
//! beside what sealing them costs the attacker (printed; `--nocapture` to see them).

mod common;

use std::time::Instant as Clock;

use common::rogue::RogueDialer;
use switchboard::connection::{ClosedBy, Event, FREE_FRAMES_PER_SECOND};
use switchboard::frame::Frame;
use switchboard::record::MAX_PLAINTEXT_LEN;
use switchboard::{ChannelConfig, DisconnectReason};

fn credit_zero() -> Frame {
    Frame::Credit {
        channel: 1,
        amount: 0,
    }
}

/// `count` frames in records as full as they go.
fn records(frames: &[Frame], count: usize) -> Vec<Vec<Frame>> {
    let mut one = Vec::new();
    frames[0].encode(&mut one);
    let per_record = MAX_PLAINTEXT_LEN / one.len();
    let all: Vec<Frame> = frames.iter().cycle().take(count).cloned().collect();
    all.chunks(per_record).map(<[Frame]>::to_vec).collect()
}

/// A rogue that has announced its window on channel 1, as any peer's first record does: a
/// `CREDIT(0)` after it is a frame that carries nothing (a window of 0 would be a
/// `FlowControl` error of its own).
fn rogue() -> RogueDialer {
    let mut rogue = RogueDialer::connect(ChannelConfig::new(1));
    rogue.send_frames(&[Frame::Credit {
        channel: 1,
        amount: 1 << 20,
    }]);
    assert!(
        rogue
            .take_events()
            .iter()
            .all(|event| !matches!(event, Event::Closed(_)))
    );
    rogue
}

fn closed_by_flood(events: &[Event]) -> bool {
    events.iter().any(|event| {
        matches!(event, Event::Closed(closed)
            if closed.reason == DisconnectReason::ControlFlood && closed.by == ClosedBy::Local)
    })
}

#[test]
fn a_burst_passes_and_the_next_frame_is_a_flood() {
    for frames in [vec![credit_zero()], vec![Frame::Ping(1), Frame::Pong(2)]] {
        let mut rogue = rogue();
        let burst = FREE_FRAMES_PER_SECOND as usize;
        rogue.send_records(&records(&frames, burst));
        let events = rogue.take_events();
        assert!(
            !closed_by_flood(&events),
            "{frames:?}: the burst itself was refused"
        );
        // Half a second later half the burst is back: that much passes, and one more not.
        rogue.now = rogue
            .now
            .saturating_add(std::time::Duration::from_millis(500));
        rogue.send_records(&records(&frames, burst / 2));
        assert!(
            !closed_by_flood(&rogue.take_events()),
            "{frames:?}: the refill"
        );
        rogue.send_frames(&frames[..1]);
        let events = rogue.take_events();
        assert!(closed_by_flood(&events), "{frames:?}: {events:?}");
        let Some(Frame::GoAway { reason, .. }) = rogue.read_frames().pop() else {
            panic!("no GOAWAY");
        };
        assert_eq!(reason, DisconnectReason::ControlFlood);
    }
}

#[test]
fn empty_records_are_charged_too() {
    let mut rogue = RogueDialer::connect(ChannelConfig::new(1));
    let mut wire = Vec::new();
    for _ in 0..=FREE_FRAMES_PER_SECOND {
        wire.extend(rogue.seal_plaintext(&[]));
    }
    rogue.listener.handle_input(rogue.now, &wire);
    assert!(closed_by_flood(&rogue.take_events()));
}

/// One 64 KiB record of `CREDIT(0)`: what it costs the listener and the attacker, with a
/// record under the budget (every frame handled: the cost a record had before the budget)
/// and over it (cut off).
#[test]
fn what_a_flood_record_costs() {
    let mut frame = Vec::new();
    credit_zero().encode(&mut frame);
    let full: Vec<u8> = frame.repeat(MAX_PLAINTEXT_LEN / frame.len());
    let under: Vec<u8> = frame.repeat(FREE_FRAMES_PER_SECOND as usize - 1);
    for (name, plaintext) in [("under the budget", &under), ("a full record", &full)] {
        let mut rogue = rogue();
        let start = Clock::now();
        let wire = rogue.seal_plaintext(plaintext);
        let seal = start.elapsed();
        let start = Clock::now();
        rogue.listener.handle_input(rogue.now, &wire);
        let handle = start.elapsed();
        let flood = closed_by_flood(&rogue.take_events());
        assert_eq!(flood, plaintext.len() == full.len(), "{name}");
        println!(
            "{name}: {} frames, {} bytes: sealing {:.2} ns/B, handling {:.2} ns/B{}",
            plaintext.len() / frame.len(),
            wire.len(),
            seal.as_nanos() as f64 / wire.len() as f64,
            handle.as_nanos() as f64 / wire.len() as f64,
            if flood {
                " (cut off by the budget)"
            } else {
                ""
            },
        );
    }
}
