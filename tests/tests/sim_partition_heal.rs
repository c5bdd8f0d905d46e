//! Partitions split the network, and it reconnects into one component after they heal —
//! whether the partition reset the links across it or black-holed them (then only the
//! nodes' keepalive can notice).

use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use switchboard_sim::scenario::bootstrap_by_dialing;
use switchboard_sim::{PartitionMode, ScenarioConfig, Sim};

const NODES: usize = 16;

/// Runs `seconds`, each node redialing once a second as the scenario does.
fn run_with_redial(sim: &mut Sim, rng: &mut ChaCha8Rng, seconds: u64) {
    for _ in 0..seconds {
        for index in 0..sim.node_count() {
            if sim.is_alive(index) {
                bootstrap_by_dialing(sim, rng, index, 4);
            }
        }
        sim.run_for(Duration::from_secs(1));
    }
}

fn network(seed: u64) -> (Sim, ChaCha8Rng) {
    let mut scenario = ScenarioConfig::new(NODES, seed);
    scenario.max_outbound = 4;
    scenario.ping_interval = Duration::from_secs(1);
    let mut sim = Sim::new(scenario.sim_config());
    for _ in 0..NODES {
        sim.add_node(scenario.node_config());
    }
    (sim, ChaCha8Rng::seed_from_u64(seed))
}

fn split_and_heal(mode: PartitionMode, seed: u64) {
    let (mut sim, mut rng) = network(seed);
    run_with_redial(&mut sim, &mut rng, 10);
    assert_eq!(sim.components(), 1);
    let side: Vec<usize> = (0..NODES / 2).collect();
    sim.partition(&side, mode);
    // Reset: at once. Black hole: within the silence timeout (2 pings) plus a ping.
    run_with_redial(&mut sim, &mut rng, 6);
    assert_eq!(sim.components(), 2, "{mode:?}: the halves stayed linked");
    sim.heal_partition();
    let healed = sim.now();
    let mut reconnected = None;
    for second in 1..=10 {
        run_with_redial(&mut sim, &mut rng, 1);
        if sim.components() == 1 {
            reconnected = Some(second);
            break;
        }
    }
    assert!(
        reconnected.is_some(),
        "{mode:?}: {} components 10 s after healing at {healed:?}",
        sim.components()
    );
    sim.finish_checks();
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

#[test]
fn a_resetting_partition_heals_into_one_component() {
    split_and_heal(PartitionMode::Reset, 1);
}

#[test]
fn a_black_hole_partition_is_noticed_by_keepalive_and_heals() {
    split_and_heal(PartitionMode::BlackHole, 2);
}
