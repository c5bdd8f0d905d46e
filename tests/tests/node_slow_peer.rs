//! Broadcast never blocks: a peer whose application stops reading is skipped while its queue
//! is full, reported slow after the slow-peer timeout and disconnected, while the others keep
//! receiving every broadcast.

use std::time::Duration;

use bytes::Bytes;
use switchboard::ChannelConfig;
use switchboard::node::NodeEvent;
use switchboard_sim::{Sim, SimConfig};

fn config() -> switchboard::node::NodeConfig {
    let mut config = switchboard::node::NodeConfig::new("sim", "slow-test");
    config.add_channel(
        "gossip",
        1,
        ChannelConfig {
            receive_window: 64 * 1024,
            send_queue_messages: 64,
            send_queue_bytes: 64 * 1024,
            ..ChannelConfig::new(1)
        },
    );
    config.slow_peer_timeout = Duration::from_secs(2);
    config
}

#[test]
fn a_slow_reader_is_skipped_reported_and_dropped_while_others_keep_up() {
    let mut sim = Sim::new(SimConfig::with_seed(31));
    let a = sim.add_node(config());
    let fast = sim.add_node(config());
    let slow = sim.add_node(config());
    let slow_id = sim.node(slow).peer_id();
    let now = sim.now();
    for peer in [fast, slow] {
        let addr = sim.address(peer);
        sim.node_mut(a).dial(now, addr).unwrap();
    }
    assert!(sim.run_until(
        now + Duration::from_secs(2),
        |sim| sim.node(a).peers().count() == 2
    ));
    sim.set_polling(slow, false);

    let mut taken = Vec::new();
    let mut broadcasts = 0;
    let mut slow_reported_at = None;
    for round in 0..600u32 {
        let now = sim.now();
        let message = Bytes::from(format!("{round:04}-").repeat(200));
        taken.push(sim.node_mut(a).broadcast(now, 1, message));
        broadcasts += 1;
        sim.run_for(Duration::from_millis(10));
        if slow_reported_at.is_none()
            && sim
                .log(a)
                .iter()
                .any(|event| matches!(event, NodeEvent::SlowPeer { peer } if *peer == slow_id))
        {
            slow_reported_at = Some(round);
        }
    }
    // At first both take it; once the slow peer's window and queue are full only one does.
    assert_eq!(taken[0], 2);
    assert!(taken.contains(&1), "the slow peer was never skipped");
    let reported = slow_reported_at.expect("no SlowPeer event");
    assert!(
        sim.node(a).peer_info(&slow_id).is_none(),
        "the slow peer was not disconnected"
    );
    let first_skip = taken.iter().position(|&count| count == 1).unwrap() as u32;
    // Reported 2 s (200 rounds of 10 ms) after it first refused, within a round or two.
    assert!(
        (199..=203).contains(&(reported - first_skip)),
        "skipped at round {first_skip}, reported at {reported}"
    );
    // The fast peer received every broadcast, in order.
    sim.run_for(Duration::from_secs(1));
    let received: Vec<Bytes> = sim
        .log(fast)
        .iter()
        .filter_map(|event| match event {
            NodeEvent::Message { message, .. } => Some(message.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(received.len(), broadcasts);
    assert!(
        received
            .iter()
            .enumerate()
            .all(|(round, message)| message.starts_with(format!("{round:04}-").as_bytes()))
    );
}

#[test]
fn pending_handshakes_are_bounded() {
    let mut sim = Sim::new(SimConfig::with_seed(32));
    let mut hub_config = config();
    hub_config.limits.max_pending_handshakes = 5;
    let hub = sim.add_node(hub_config);
    let hub_addr = sim.address(hub);
    let mut dialer_config = config();
    dialer_config.dial.max_attempts = 1;
    let dialers: Vec<usize> = (0..10)
        .map(|_| sim.add_node(dialer_config.clone()))
        .collect();
    let now = sim.now();
    for &dialer in &dialers {
        sim.node_mut(dialer).dial(now, hub_addr).unwrap();
    }
    sim.run_for(Duration::from_secs(3));
    assert_eq!(
        sim.node(hub).peer_counts(),
        (5, 0),
        "five handshakes at a time, the rest refused at accept"
    );
    let refused = dialers
        .iter()
        .filter(|&&d| {
            sim.log(d)
                .iter()
                .any(|event| matches!(event, NodeEvent::DialFailed { .. }))
        })
        .count();
    assert_eq!(refused, 5);
}
