//! A channel is open only when both ends offer it; both ends compute the same set, so neither
//! ever sends on a channel the other considers closed.

mod common;

use common::pair::{Pair, Side, message};
use switchboard::{ChannelConfig, ConnectionConfig, SendError};

#[test]
fn only_channels_both_ends_offer_are_open() {
    let dialer = ConnectionConfig::new(vec![ChannelConfig::new(1), ChannelConfig::new(2)]);
    let listener = ConnectionConfig::new(vec![ChannelConfig::new(2), ChannelConfig::new(3)]);
    let mut pair = Pair::with_configs(8, dialer, listener);
    pair.drive();
    for side in [Side::Dialer, Side::Listener] {
        let connection = &mut pair.end(side).connection;
        assert!(connection.is_established(), "{side:?}");
        assert!(connection.is_channel_open(2));
        assert!(!connection.is_channel_open(1) && !connection.is_channel_open(3));
        let ids: Vec<u16> = connection
            .channel_stats()
            .iter()
            .map(|stats| stats.channel)
            .collect();
        assert_eq!(ids, [2]);
    }
    let refused = pair.dialer.connection.send(1, message(1, 5));
    assert!(matches!(refused, Err(SendError::ChannelNotOpen(_))));
    pair.dialer.connection.send(2, message(2, 5)).unwrap();
    pair.listener.connection.send(2, message(3, 5)).unwrap();
    pair.drive();
    assert_eq!(pair.listener.messages(2).len(), 1);
    assert_eq!(pair.dialer.messages(2).len(), 1);
    assert!(pair.dialer.closed().is_none() && pair.listener.closed().is_none());
}
