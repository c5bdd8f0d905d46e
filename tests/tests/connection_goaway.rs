//! Closing: the GOAWAY's reason and text reach the other side, each side reports one
//! `Closed` event, and a transport that drops reports `NetworkError`.

mod common;

use common::pair::{Pair, Side, message};
use std::time::Duration;
use switchboard::connection::{ClosedBy, Event};

use switchboard::{ChannelConfig, ConnectionConfig, DisconnectReason};

#[test]
fn the_reason_and_text_reach_the_other_side() {
    let mut pair = Pair::connected(3, vec![ChannelConfig::new(1)]);
    pair.dialer.connection.send(1, message(1, 100)).unwrap();
    pair.drive();
    pair.dialer.connection.close(
        pair.now,
        DisconnectReason::Quitting,
        "restarting for an upgrade",
    );
    pair.drive();
    let remote = pair.listener.closed().expect("the listener saw the GOAWAY");
    assert_eq!(remote.reason, DisconnectReason::Quitting);
    assert_eq!(remote.by, ClosedBy::Remote);
    assert_eq!(remote.detail, "restarting for an upgrade");
    let local = pair.dialer.closed().unwrap();
    assert_eq!(
        (local.reason, local.by),
        (DisconnectReason::Quitting, ClosedBy::Local)
    );
    assert_eq!(local.outcome.confirmed, 1);
    for side in [Side::Dialer, Side::Listener] {
        let end = pair.end(side);
        assert!(end.connection.is_closed(), "{side:?}");
        let closes = end
            .events
            .iter()
            .filter(|event| matches!(event, Event::Closed(_)))
            .count();
        assert_eq!(closes, 1, "{side:?}");
        assert!(
            matches!(end.events.last(), Some(Event::Closed(_))),
            "Closed is the last event"
        );
        assert!(end.connection.send(1, message(2, 1)).is_err());
    }
}

#[test]
fn a_dropped_transport_is_a_network_error_and_returns_what_was_queued() {
    let mut pair = Pair::connected(4, vec![ChannelConfig::new(1)]);
    pair.dialer.connection.send(1, message(1, 10)).unwrap();
    pair.dialer.connection.handle_closed();
    pair.take_events(Side::Dialer);
    let closed = pair.dialer.closed().unwrap();
    assert_eq!(
        (closed.reason, closed.by),
        (DisconnectReason::NetworkError, ClosedBy::Remote)
    );
    assert_eq!(closed.outcome.unsent.len(), 1);
    assert!(closed.outcome.unsent[0].message == message(1, 10));
}

#[test]
fn closing_during_the_handshake_reports_without_a_goaway() {
    let mut pair = Pair::new(5, vec![ChannelConfig::new(1)]);
    pair.dialer
        .connection
        .close(pair.now, DisconnectReason::Requested, "changed my mind");
    pair.take_events(Side::Dialer);
    assert_eq!(
        pair.dialer.closed().unwrap().reason,
        DisconnectReason::Requested
    );
    assert!(
        !pair.transmit_one(Side::Dialer),
        "nothing to send without keys"
    );
}

/// The dialer reports `Connected` only on the listener's first record, so a listener that
/// refuses a peer it has just authenticated (a duplicate connection, a full peer set) closes
/// it without the dialer's application ever seeing it.
#[test]
fn a_listener_that_refuses_at_once_is_never_seen_connected_by_the_dialer() {
    let mut pair = Pair::new(6, vec![ChannelConfig::new(1)]);
    for _ in 0..3 {
        pair.transmit(Side::Dialer);
        pair.deliver(Side::Dialer, usize::MAX);
        pair.take_events(Side::Listener);
        if pair.listener.connection.is_established() {
            break;
        }
        pair.transmit(Side::Listener);
        pair.deliver(Side::Listener, usize::MAX);
    }
    assert!(matches!(
        pair.listener.events.first(),
        Some(Event::Connected { .. })
    ));
    assert!(
        !pair.dialer.connection.is_established(),
        "not before the listener's first record"
    );
    pair.listener
        .connection
        .close(pair.now, DisconnectReason::AlreadyConnected, "duplicate");
    pair.drive();
    assert_eq!(pair.dialer.events.len(), 1, "{:?}", pair.dialer.events);
    let closed = pair.dialer.closed().unwrap();
    assert_eq!(
        (closed.reason, closed.by),
        (DisconnectReason::AlreadyConnected, ClosedBy::Remote)
    );
}

/// A pair whose handshake messages 1 and 2 have crossed; the dialer's message 3 is next.
fn after_message_2(seed: u64) -> Pair {
    let mut pair = Pair::new(seed, vec![ChannelConfig::new(1)]);
    pair.transmit(Side::Dialer);
    pair.deliver(Side::Dialer, usize::MAX);
    pair.transmit(Side::Listener);
    pair.deliver(Side::Listener, usize::MAX);
    pair
}

#[test]
fn a_dialer_whose_listener_never_speaks_times_out() {
    // Messages 1 and 2 cross; message 3 and everything after it is lost.
    let mut pair = after_message_2(7);
    pair.transmit(Side::Dialer);
    pair.dialer.outbox.clear();
    let deadline = pair.dialer.connection.poll_timeout().unwrap();
    pair.now = deadline;
    pair.dialer.connection.handle_timeout(deadline);
    pair.take_events(Side::Dialer);
    assert_eq!(pair.dialer.events.len(), 1);
    assert_eq!(
        pair.dialer.closed().unwrap().reason,
        DisconnectReason::Timeout
    );
}

#[test]
fn a_dialer_closing_before_writing_message_3_still_says_why() {
    // The dialer holds the listener's identity from message 2 and closes (a duplicate
    // connection, say) before its message 3 went out: message 3 is written first, so the
    // listener can read the GOAWAY after it (it used to take the GOAWAY for message 3 and
    // close with a handshake error instead).
    let mut pair = after_message_2(11);
    assert!(pair.dialer.connection.peer().is_some());
    pair.dialer.connection.close(
        pair.now,
        DisconnectReason::AlreadyConnected,
        "already connected",
    );
    pair.drive();
    let remote = pair.listener.closed().expect("the listener closed");
    assert_eq!(
        (remote.reason, remote.by, remote.detail.as_str()),
        (
            DisconnectReason::AlreadyConnected,
            ClosedBy::Remote,
            "already connected"
        )
    );
}

#[test]
fn a_goaway_the_transport_never_takes_is_given_up_after_the_close_timeout() {
    let mut pair = Pair::connected(5, vec![ChannelConfig::new(1)]);
    pair.advance(Duration::from_secs(3));
    let closed_at = pair.now;
    // The peer stopped reading: the transport takes nothing more, so nobody polls the
    // dialer for the GOAWAY.
    pair.dialer
        .connection
        .close(pair.now, DisconnectReason::Banned, "misbehaving");
    pair.take_events(Side::Dialer);
    assert!(pair.dialer.closed().is_some(), "reported at once");
    let close_timeout = ConnectionConfig::new(Vec::new()).close_timeout;
    let deadline = closed_at + close_timeout;
    assert_eq!(pair.dialer.connection.poll_timeout(), Some(deadline));
    pair.dialer
        .connection
        .handle_timeout(closed_at + (close_timeout - Duration::from_nanos(1)));
    assert!(!pair.dialer.connection.is_closed(), "still waiting");
    pair.dialer.connection.handle_timeout(deadline);
    assert!(pair.dialer.connection.is_closed(), "given up");
    assert_eq!(pair.dialer.connection.poll_timeout(), None);
    let mut out = Vec::new();
    assert!(!pair.dialer.connection.poll_transmit(deadline, &mut out));
    assert!(out.is_empty());
    // No second report.
    pair.take_events(Side::Dialer);
    let closes = pair
        .dialer
        .events
        .iter()
        .filter(|event| matches!(event, Event::Closed(_)))
        .count();
    assert_eq!(closes, 1);
}

#[test]
fn a_zero_close_timeout_still_gives_the_goaway_its_chance() {
    let mut config = ConnectionConfig::new(vec![ChannelConfig::new(1)]);
    config.close_timeout = Duration::ZERO;
    let mut pair = Pair::with_configs(6, config.clone(), config);
    pair.drive();
    let now = pair.now;
    pair.dialer
        .connection
        .close(now, DisconnectReason::Timeout, "peer silent");
    // A node's pass over its timers fires every deadline due by `now`, this one included
    // were it `now`: the GOAWAY must survive it.
    pair.dialer.connection.handle_timeout(now);
    assert!(!pair.dialer.connection.is_closed());
    pair.drive();
    let remote = pair.listener.closed().expect("the listener saw the GOAWAY");
    assert_eq!(
        (remote.reason, remote.by),
        (DisconnectReason::Timeout, ClosedBy::Remote)
    );
}
