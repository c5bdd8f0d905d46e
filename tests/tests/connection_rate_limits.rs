//! Per-channel rate limits on virtual time: a receive rate holds a flooding peer to the limit
//! by withholding credit, with memory bounded as flow control bounds it; a send rate shapes
//! one channel's output without slowing the others; and the same inputs give the same run.
//!
//! Rates count flow-control cost (length + 64 per message), so the measurements do too.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::pair::{Pair, Side, message};
use common::rogue::RogueDialer;
use switchboard::connection::{ClosedBy, Event};
use switchboard::frame::Frame;
use switchboard::{
    ChannelConfig, ChannelId, ConnectionConfig, DisconnectReason, Instant, RateLimit, SendError,
    message_cost,
};

/// The limit under test: 100 KiB/s (cost units).
const RATE: u64 = 100 * 1024;
/// Messages of 4032 bytes: cost 4096.
const LEN: usize = 4096 - 64;
const RUN: Duration = Duration::from_secs(60);
/// The first seconds, when the connect-time burst (window + bucket) drains, are not measured.
const WARM_UP: Duration = Duration::from_secs(10);

/// What one run delivered, sampled at every step: `(now, cumulative cost per channel)`.
type Trace = Vec<(Instant, [u64; 2])>;

/// A sending application wanting to send `rate` of cost per second on a channel, from
/// `start`: it tops the queue up to what it would have sent by now; what `Full` refuses is
/// offered again later. `offered` counts what `send` accepted.
struct Flood {
    channel: ChannelId,
    rate: u64,
    start: Instant,
    offered: u64,
    next_id: u64,
    refusals: u64,
}

impl Flood {
    fn new(channel: ChannelId, rate: u64, start: Instant) -> Self {
        Flood {
            channel,
            rate,
            start,
            offered: 0,
            next_id: 0,
            refusals: 0,
        }
    }

    fn top_up(&mut self, pair: &mut Pair) {
        let elapsed = (pair.now - self.start).as_nanos() as u64;
        let budget = (u128::from(elapsed) * u128::from(self.rate) / 1_000_000_000) as u64;
        let cost = message_cost(LEN);
        while self.offered + cost <= budget {
            match pair
                .dialer
                .connection
                .send(self.channel, message(self.next_id, LEN))
            {
                Ok(()) => {
                    self.offered += cost;
                    self.next_id += 1;
                }
                Err(SendError::Full(_)) => {
                    self.refusals += 1;
                    return;
                }
                Err(other) => panic!("unexpected {other}"),
            }
        }
    }
}

/// The sending application's tick: it tops its queues up at least this often.
const TICK: Duration = Duration::from_millis(10);

/// Moves the clock to the next deadline of either end or the next application tick,
/// whichever is first; `false` at `end`. A fired deadline must move forward: a rate limit's
/// timer that stayed in the past would spin the event loop.
fn step(pair: &mut Pair, end: Instant) -> bool {
    let tick = (pair.now + TICK).min(end);
    if pair.advance_to_timeout(tick) {
        for side in [Side::Dialer, Side::Listener] {
            let deadline = pair.end(side).connection.poll_timeout();
            assert!(
                deadline.is_none_or(|deadline| deadline > pair.now),
                "{side:?}'s deadline {deadline:?} did not move past {:?}",
                pair.now
            );
        }
    } else {
        pair.now = tick;
    }
    pair.now < end
}

/// The cost of the messages `side` has taken since the last call, per channel (1 and 2);
/// forgets them, so a long run holds no copies.
fn take_delivered(pair: &mut Pair, side: Side) -> [u64; 2] {
    let mut cost = [0; 2];
    for event in pair.end(side).events.drain(..) {
        if let Event::Message { channel, message } = event {
            cost[usize::from(channel - 1)] += message_cost(message.len());
        }
    }
    cost
}

/// Cost delivered per second on `channel` between `from` and `to` of a trace.
fn rate_between(trace: &Trace, channel: usize, from: Instant, to: Instant) -> f64 {
    let at = |when: Instant| {
        trace
            .iter()
            .take_while(|(now, _)| *now <= when)
            .last()
            .map_or(0, |(_, cost)| cost[channel])
    };
    (at(to) - at(from)) as f64 / (to - from).as_secs_f64()
}

fn receiver_channel() -> ChannelConfig {
    ChannelConfig {
        receive_window: 64 * 1024,
        max_message_size: 16 * 1024,
        receive_rate: Some(RateLimit::per_second(RATE)),
        ..ChannelConfig::new(1)
    }
}

fn sender_channel(id: ChannelId) -> ChannelConfig {
    ChannelConfig {
        send_queue_messages: 64,
        send_queue_bytes: 256 * 1024,
        max_message_size: 16 * 1024,
        ..ChannelConfig::new(id)
    }
}

/// The dialer floods channel 1 at ten times the listener's receive rate for `run`. Checks
/// the memory bounds at every step; returns the trace and the final flood.
fn flood_a_rate_limited_receiver(seed: u64, run: Duration) -> (Trace, Flood) {
    let receiver = receiver_channel();
    let sender = sender_channel(1);
    let mut pair = Pair::with_configs(
        seed,
        ConnectionConfig::new(vec![sender]),
        ConnectionConfig::new(vec![receiver]),
    );
    pair.drive();
    assert!(pair.listener.connection.is_established());
    take_delivered(&mut pair, Side::Listener);
    let start = pair.now;
    let end = start + run;
    let mut flood = Flood::new(1, 10 * RATE, start);
    // What the receiver may hold: its channel's bound plus a partial record.
    let receiver_bound = receiver.receive_buffer_bound() + 65_537;
    let cost = message_cost(LEN);
    let mut delivered = [0u64; 2];
    let mut trace = Trace::new();
    let (mut most_held, mut most_in_flight) = (0, 0);
    loop {
        flood.top_up(&mut pair);
        // Everything the credit allows arrives before the application takes any of it: the
        // worst moment for the receiver's memory.
        loop {
            pair.drive_taking(true, false);
            let held = pair.listener.connection.buffered_bytes();
            assert!(
                held <= receiver_bound,
                "receiver holds {held} > {receiver_bound}"
            );
            most_held = most_held.max(held);
            if pair.take_events(Side::Listener) == 0 {
                break;
            }
            let taken = take_delivered(&mut pair, Side::Listener);
            delivered[0] += taken[0];
        }
        pair.dialer.events.clear();
        let sent = pair.dialer.connection.channel_stats()[0];
        assert!(sent.queued_bytes <= sender.send_queue_bytes);
        assert!(sent.queued_messages <= sender.send_queue_messages);
        let in_flight = sent.unconfirmed_messages as u64 * cost;
        assert!(
            in_flight <= u64::from(receiver.receive_window) + cost,
            "sender holds {in_flight} of unconfirmed messages"
        );
        most_in_flight = most_in_flight.max(in_flight);
        let withheld = pair.listener.connection.channel_stats()[0].credit_withheld;
        assert!(withheld <= u64::from(receiver.receive_window) + cost);
        trace.push((pair.now, delivered));
        if !step(&mut pair, end) {
            break;
        }
    }
    assert!(pair.listener.connection.is_established());
    eprintln!(
        "receiver held at most {most_held} bytes (bound {receiver_bound}); sender at most \
         {most_in_flight} unconfirmed"
    );
    (trace, flood)
}

#[test]
fn a_peer_flooding_at_ten_times_the_receive_rate_is_held_to_it_with_bounded_memory() {
    let (trace, flood) = flood_a_rate_limited_receiver(21, RUN);
    let start = trace[0].0;
    let end = start + RUN;
    let limit = RATE as f64;
    let measured = rate_between(&trace, 0, start + WARM_UP, end);
    eprintln!(
        "wanted {} B/s, accepted by send {:.0} B/s, delivered {measured:.0} B/s over \
         {:?}..{:?}: {:.4} × the limit",
        10 * RATE,
        flood.offered as f64 / RUN.as_secs_f64(),
        WARM_UP,
        RUN,
        measured / limit
    );
    assert!(
        (0.9 * limit..=1.1 * limit).contains(&measured),
        "{measured:.0} B/s against a limit of {limit}"
    );
    // The whole run: the connect-time burst (window + bucket) at once, then the rate.
    let total = trace.last().unwrap().1[0];
    let burst = u64::from(receiver_channel().receive_window)
        + receiver_channel().receive_rate.unwrap().burst;
    let steady = (total - burst) as f64 / RUN.as_secs_f64();
    eprintln!(
        "whole run: {total} delivered = {burst} connect-time burst + {steady:.0} B/s ({:.4} × the limit)",
        steady / limit
    );
    assert!((0.9 * limit..=1.1 * limit).contains(&steady));
    assert!(
        flood.refusals > 100,
        "the flood was not held back: {} refusals",
        flood.refusals
    );
}

#[test]
fn a_send_rate_shapes_its_channel_and_leaves_the_others_alone() {
    let limited = ChannelConfig {
        send_rate: Some(RateLimit::per_second(RATE)),
        ..sender_channel(1)
    };
    let open = sender_channel(2);
    let mut pair = Pair::with_configs(
        22,
        ConnectionConfig::new(vec![limited, open]),
        ConnectionConfig::new(vec![sender_channel(1), sender_channel(2)]),
    );
    pair.drive();
    assert!(pair.dialer.connection.is_established());
    let start = pair.now;
    let end = start + RUN;
    let mut floods = [
        Flood::new(1, 10 * RATE, start),
        Flood::new(2, 10 * RATE, start),
    ];
    let mut delivered = [0u64; 2];
    let mut trace = Trace::new();
    loop {
        for flood in &mut floods {
            flood.top_up(&mut pair);
        }
        pair.drive();
        pair.dialer.events.clear();
        let taken = take_delivered(&mut pair, Side::Listener);
        delivered[0] += taken[0];
        delivered[1] += taken[1];
        trace.push((pair.now, delivered));
        if !step(&mut pair, end) {
            break;
        }
    }
    let limit = RATE as f64;
    let shaped = rate_between(&trace, 0, start + WARM_UP, end);
    let free = rate_between(&trace, 1, start + WARM_UP, end);
    eprintln!(
        "channel 1 (send rate {limit}): {shaped:.0} B/s = {:.4} × the limit; channel 2 (none): \
         {free:.0} B/s of {:.0} offered",
        shaped / limit,
        10.0 * limit
    );
    assert!(
        (0.9 * limit..=1.1 * limit).contains(&shaped),
        "{shaped:.0} B/s against a limit of {limit}"
    );
    // Channel 2 gets everything it offers, never refused, while channel 1 backs up.
    assert_eq!(floods[1].refusals, 0);
    assert!(
        (0.99 * 10.0 * limit..=1.01 * 10.0 * limit).contains(&free),
        "{free:.0} B/s"
    );
    assert!(floods[0].refusals > 100);
    let stats = pair.dialer.connection.channel_stats();
    assert!(stats[0].queued_bytes <= 256 * 1024);
    assert_eq!(stats[1].queued_messages, 0, "channel 2 keeps up");
}

#[test]
fn the_same_inputs_give_the_same_throttled_run() {
    let run = Duration::from_secs(5);
    let (first, _) = flood_a_rate_limited_receiver(5, run);
    let (second, _) = flood_a_rate_limited_receiver(5, run);
    assert!(first.len() > 40, "{} steps", first.len());
    assert_eq!(first, second);
}

/// Withheld credit is not credit: a peer that sends as if the cost of every message taken had
/// come back at once starts a message beyond what was granted, and is cut off.
#[test]
fn a_peer_spending_credit_the_receive_rate_withholds_is_disconnected_with_flow_control() {
    let mut rogue = RogueDialer::connect(ChannelConfig {
        receive_window: 4096,
        receive_rate: Some(RateLimit {
            bytes_per_second: 1000,
            burst: 1000,
        }),
        ..ChannelConfig::new(1)
    });
    let data = |id| Frame::Data {
        channel: 1,
        first: Some(1000),
        end: true,
        payload: Bytes::from(message(id, 1000).to_vec()),
    };
    // Three messages of cost 1064 fit the window; all three are taken.
    for id in 0..3 {
        rogue.send_frames(&[data(id)]);
    }
    assert_eq!(rogue.take_events().len(), 3);
    // Their 3192 of credit: one burst (1000) now, the rest at 1000/s.
    let frames = rogue.read_frames();
    assert!(
        frames.contains(&Frame::Credit {
            channel: 1,
            amount: 1000
        }),
        "{frames:?}"
    );
    assert_eq!(
        rogue.listener.channel_stats()[0].credit_withheld,
        3 * 1064 - 1000
    );
    let next = rogue.listener.poll_timeout().unwrap();
    assert_eq!(next - rogue.now, Duration::from_secs(1));
    // Granted: 4096 + 1000 = 5096. A fourth message (to 4256) fits; a fifth (to 5320) does
    // not, though it would have without the rate.
    rogue.send_frames(&[data(3)]);
    rogue.send_frames(&[data(4)]);
    let events = rogue.take_events();
    assert!(matches!(events[0], Event::Message { .. }), "{events:?}");
    let Some(Event::Closed(closed)) = events.last() else {
        panic!("not closed: {events:?}")
    };
    assert_eq!(
        (closed.reason, closed.by),
        (DisconnectReason::FlowControl, ClosedBy::Local)
    );
}
