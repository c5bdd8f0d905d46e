//! Closing: the GOAWAY's reason and text reach the other side, each side reports one
//! `Closed` event, and a transport that drops reports `NetworkError`.

mod common;

use common::pair::{Pair, Side, message};
use switchboard::connection::{ClosedBy, Event};
use switchboard::{ChannelConfig, DisconnectReason};

#[test]
fn the_reason_and_text_reach_the_other_side() {
    let mut pair = Pair::connected(3, vec![ChannelConfig::new(1)]);
    pair.dialer.connection.send(1, message(1, 100)).unwrap();
    pair.drive();
    pair.dialer
        .connection
        .close(DisconnectReason::Quitting, "restarting for an upgrade");
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
        .close(DisconnectReason::Requested, "changed my mind");
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
