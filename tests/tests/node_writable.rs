//! Backpressure with a wake-up: a `send` that returned `Full` is answered, once the queue
//! has room again, by exactly one `NodeEvent::Writable` for that peer and channel.

use std::time::Duration;

use switchboard::node::{NodeConfig, NodeEvent};
use switchboard::{Bytes, ChannelConfig, PeerId, SendError};
use switchboard_sim::{NodeIndex, Sim, SimConfig, test_node_config};

const BULK: u16 = 2;

fn config() -> NodeConfig {
    let mut config = test_node_config();
    config.add_channel(
        "bulk",
        1,
        ChannelConfig {
            send_queue_messages: 8,
            // Two of the test's messages: the rest wait in the queue until b takes them.
            receive_window: 2 * 1064,
            ..ChannelConfig::new(BULK)
        },
    );
    config
}

fn writables(sim: &Sim, index: NodeIndex) -> Vec<(PeerId, u16)> {
    sim.log(index)
        .iter()
        .filter_map(|event| match event {
            NodeEvent::Writable { peer, channel } => Some((*peer, *channel)),
            _ => None,
        })
        .collect()
}

/// Sends until `Full`; how many were taken.
fn fill(sim: &mut Sim, from: NodeIndex, to: PeerId) -> usize {
    let now = sim.now();
    let mut taken = 0;
    loop {
        match sim
            .node_mut(from)
            .send(now, &to, BULK, Bytes::from(vec![7u8; 1000]))
        {
            Ok(()) => taken += 1,
            Err(SendError::Full(_)) => return taken,
            Err(other) => panic!("unexpected {other}"),
        }
    }
}

#[test]
fn full_then_exactly_one_writable_per_run_of_fulls() {
    let mut sim = Sim::new(SimConfig::with_seed(7));
    let a = sim.add_node(config());
    let b = sim.add_node(config());
    let (now, b_address) = (sim.now(), sim.address(b));
    sim.node_mut(a).dial(now, b_address).expect("dial");
    assert!(sim.run_until(sim.now() + Duration::from_secs(2), |sim| {
        sim.node(a).peers().count() == 1
    }));
    let b_id = sim.node(b).peer_id();
    // b stops taking messages: a's queue stays full, and no Writable may come.
    sim.set_polling(b, false);
    assert!(fill(&mut sim, a, b_id) >= 8);
    // Every later `Full` of the same run asks for nothing more.
    assert_eq!(fill(&mut sim, a, b_id), 0);
    // The window's worth (two messages) leaves the queue; topped up again, the queue
    // stays full, as b takes nothing: no Writable.
    sim.run_for(Duration::from_secs(2));
    assert_eq!(fill(&mut sim, a, b_id), 2);
    sim.run_for(Duration::from_secs(2));
    assert_eq!(
        fill(&mut sim, a, b_id),
        0,
        "b took nothing, yet there is room"
    );
    assert!(
        writables(&sim, a).is_empty(),
        "Writable with the queue still full"
    );

    // b takes its messages again: credit flows, the queue drains, one Writable.
    sim.set_polling(b, true);
    sim.run_for(Duration::from_secs(2));
    assert_eq!(writables(&sim, a), vec![(b_id, BULK)]);
    // Room indeed: a whole queue's worth is taken again.
    assert!(fill(&mut sim, a, b_id) >= 4);
    sim.run_for(Duration::from_secs(2));
    assert_eq!(writables(&sim, a).len(), 2, "one Writable per run of Fulls");
}

#[test]
fn no_writable_without_a_full() {
    let mut sim = Sim::new(SimConfig::with_seed(8));
    let a = sim.add_node(config());
    let b = sim.add_node(config());
    let (now, b_address) = (sim.now(), sim.address(b));
    sim.node_mut(a).dial(now, b_address).expect("dial");
    sim.run_for(Duration::from_secs(2));
    let b_id = sim.node(b).peer_id();
    let now = sim.now();
    for _ in 0..4 {
        sim.node_mut(a)
            .send(now, &b_id, BULK, Bytes::from_static(b"x"))
            .expect("room");
    }
    sim.run_for(Duration::from_secs(2));
    assert!(writables(&sim, a).is_empty());
}
