//! Keepalive on virtual time: a silent peer is dropped at the configured deadline, and an
//! idle healthy pair stays connected for hours with a measured RTT.

mod common;

use std::time::Duration;

use common::pair::{Pair, Side};
use switchboard::connection::ClosedBy;
use switchboard::{ChannelConfig, ConnectionConfig, DisconnectReason};

const PING: Duration = Duration::from_secs(10);
const PONG_TIMEOUT: Duration = Duration::from_secs(20);

fn pair(seed: u64) -> Pair {
    let mut config = ConnectionConfig::new(vec![ChannelConfig::new(1)]);
    config.ping_interval = PING;
    config.pong_timeout = PONG_TIMEOUT;
    let mut pair = Pair::with_configs(seed, config.clone(), config);
    pair.drive();
    assert!(pair.listener.connection.is_established());
    pair
}

#[test]
fn a_silent_peer_is_dropped_with_timeout_at_the_deadline() {
    let mut pair = pair(1);
    let established = pair.listener.connection.stats().established_at.unwrap();
    // From now on the dialer says nothing: its bytes never reach the listener.
    let limit = established + Duration::from_secs(3600);
    while pair.listener.closed().is_none() {
        let deadline = pair
            .listener
            .connection
            .poll_timeout()
            .expect("a live connection has a deadline");
        assert!(deadline <= limit, "the listener never gave up");
        pair.now = pair.now.max(deadline);
        pair.listener.connection.handle_timeout(pair.now);
        pair.transmit(Side::Listener);
        pair.take_events(Side::Listener);
    }
    // The first PING falls due one interval after the last record; then the peer had
    // `pong_timeout` to answer. Deadlines are exact on virtual time, so ± one tick is ± 0.
    let expected = established + PING + PONG_TIMEOUT;
    assert_eq!(
        pair.now, expected,
        "dropped at {:?}, expected {expected:?}",
        pair.now
    );
    let closed = pair.listener.closed().unwrap();
    assert_eq!(
        (closed.reason, closed.by),
        (DisconnectReason::Timeout, ClosedBy::Local)
    );
}

#[test]
fn an_idle_healthy_pair_stays_connected_for_hours_and_measures_its_rtt() {
    let mut pair = pair(2);
    let one_way = Duration::from_millis(20);
    let end = pair.now + Duration::from_secs(6 * 3600);
    let mut wakeups = 0;
    while pair.advance_to_timeout(end) {
        wakeups += 1;
        // Each PING crosses with 20 ms latency each way.
        for _ in 0..3 {
            pair.transmit(Side::Dialer);
            pair.transmit(Side::Listener);
            pair.advance(one_way);
            pair.deliver(Side::Dialer, usize::MAX);
            pair.deliver(Side::Listener, usize::MAX);
        }
        pair.take_events(Side::Dialer);
        pair.take_events(Side::Listener);
    }
    assert!(wakeups >= 2 * 6 * 360 / 2, "only {wakeups} wake-ups in 6 h");
    for side in [Side::Dialer, Side::Listener] {
        let end = pair.end(side);
        assert!(
            end.connection.is_established(),
            "{side:?} dropped: {:?}",
            end.closed()
        );
        assert_eq!(end.connection.stats().rtt, Some(2 * one_way), "{side:?}");
        let deadline = end.connection.poll_timeout().unwrap();
        assert!(
            deadline > pair.now,
            "an idle deadline lies ahead, never in the past"
        );
    }
}
