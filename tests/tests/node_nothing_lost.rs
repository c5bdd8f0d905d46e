//! Nothing is silently lost, node to node, over many seeds with connections reset
//! mid-stream: for every connection, sent = confirmed + unconfirmed + unsent; every confirmed
//! message was delivered exactly once; no unsent message was delivered.

use std::time::Duration;

use bytes::Bytes;
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use switchboard::node::NodeEvent;
use switchboard_sim::{Sim, SimConfig, test_node_config};

mod common;

fn id_of(message: &Bytes) -> u64 {
    u64::from_be_bytes(message[..8].try_into().unwrap())
}

fn run(seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut sim = Sim::new(SimConfig::with_seed(seed));
    let b = sim.add_node(test_node_config());
    let mut config = test_node_config();
    config.dial.backoff_base = Duration::from_millis(200);
    config.persistent_peers.push(sim.address(b));
    let a = sim.add_node(config);
    let b_id = sim.node(b).peer_id();

    // Per connection of a's: the ids a's `send` accepted on it.
    let mut epochs: Vec<Vec<u64>> = Vec::new();
    let mut next_id = 0u64;
    let mut seen_events = 0;
    for _tick in 0..300 {
        sim.run_for(Duration::from_millis(10));
        // New a-side events: a connection opened or closed.
        for event in &sim.log(a)[seen_events..] {
            if let NodeEvent::PeerConnected { .. } = event {
                epochs.push(Vec::new());
            }
        }
        seen_events = sim.log(a).len();
        if sim.node(a).peers().count() == 1 {
            let now = sim.now();
            for _ in 0..rng.next_u32() % 8 {
                let len = 8 + (rng.next_u32() % 3000) as usize;
                let mut message = vec![0u8; len];
                message[..8].copy_from_slice(&next_id.to_be_bytes());
                if sim
                    .node_mut(a)
                    .send(now, &b_id, 1, Bytes::from(message))
                    .is_ok()
                {
                    epochs.last_mut().expect("connected").push(next_id);
                }
                next_id += 1;
            }
        }
        if rng.next_u32() % 40 == 0 {
            sim.reset_links(b);
        }
    }
    sim.reset_links(b);
    sim.run_for(Duration::from_millis(1));

    let delivered: Vec<u64> = sim
        .log(b)
        .iter()
        .filter_map(|event| match event {
            NodeEvent::Message { message, .. } => Some(id_of(message)),
            _ => None,
        })
        .collect();
    assert!(
        delivered.windows(2).all(|pair| pair[0] < pair[1]),
        "seed {seed}: duplicated or reordered"
    );
    let outcomes: Vec<_> = sim
        .log(a)
        .iter()
        .filter_map(|event| match event {
            NodeEvent::PeerDisconnected {
                confirmed,
                unsent,
                unconfirmed,
                ..
            } => Some((*confirmed, unsent.clone(), unconfirmed.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        outcomes.len(),
        epochs.len(),
        "seed {seed}: every connection ends with an outcome"
    );
    for (epoch, (sent, (confirmed, unsent, unconfirmed))) in epochs.iter().zip(outcomes).enumerate()
    {
        let confirmed = confirmed as usize;
        let unconfirmed: Vec<u64> = unconfirmed.iter().map(|m| id_of(&m.message)).collect();
        let unsent: Vec<u64> = unsent.iter().map(|m| id_of(&m.message)).collect();
        assert_eq!(
            sent.len(),
            confirmed + unconfirmed.len() + unsent.len(),
            "seed {seed} epoch {epoch}"
        );
        assert_eq!(
            sent[confirmed..confirmed + unconfirmed.len()],
            unconfirmed[..],
            "seed {seed} epoch {epoch}"
        );
        assert_eq!(
            sent[confirmed + unconfirmed.len()..],
            unsent[..],
            "seed {seed} epoch {epoch}"
        );
        for id in &sent[..confirmed] {
            assert!(
                delivered.binary_search(id).is_ok(),
                "seed {seed}: confirmed {id} never delivered"
            );
        }
        for id in &unsent {
            assert!(
                delivered.binary_search(id).is_err(),
                "seed {seed}: unsent {id} was delivered"
            );
        }
    }
}

/// 100 seeds in the default test run (about 30 s in a debug build on 2 cores); set
/// `SWITCHBOARD_SEEDS=1000` for the full sweep.
#[test]
fn resets_mid_stream_lose_nothing_silently() {
    let seeds: u64 = common::seeds_from_env("SWITCHBOARD_SEEDS", 100);
    for seed in 0..seeds {
        run(seed);
    }
}
