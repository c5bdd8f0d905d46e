//! Gossip under every fault: a network bootstrapped by peer exchange runs a `Router` with
//! gossip on every node while the scenario crashes and restarts nodes, partitions, resets
//! and slows links, and stalls applications. No node's application is handed one message
//! twice in one life (a restart forgets what the node saw), every invariant the scenario's
//! checker watches holds, and once the faults have healed and the network is one component
//! again, a message published anywhere reaches every node.

use std::collections::BTreeSet;
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use switchboard::gossip::{Gossip, MessageId};
use switchboard::{Instant, PeerId};
use switchboard_sim::{FaultConfig, NodeIndex, Scenario, ScenarioConfig, Sim};

mod common;
use common::gossip::gossip;

const NODES: usize = 40;
/// Seeds in the default run (`SWITCHBOARD_SIM_SEEDS` sets more).
const DEFAULT_SEEDS: u64 = 3;
/// The run: faults for the first 20 s, then 20 s without.
const DURATION: Duration = Duration::from_secs(40);
const QUIET: Duration = Duration::from_secs(20);
/// When the last messages are published, and by when every node must have them: ten
/// seconds after the faults end (the network has reconnected by then, which is checked),
/// and five seconds to flood.
const LAST_PUBLISHED_AT: Duration = Duration::from_secs(30);
const LAST_CHECKED_AT: Duration = Duration::from_secs(35);
/// Nodes publishing the last messages.
const LAST_PUBLISHERS: usize = 3;

/// What one node's application was handed in its current life.
#[derive(Default)]
struct Life {
    restarts: u64,
    seen: BTreeSet<MessageId>,
}

/// What the test watches from the scenario's samples.
struct Watch {
    rng: ChaCha8Rng,
    /// Seed-mode nodes answer address requests and hang up: no members of the gossip mesh.
    seed_nodes: usize,
    lives: Vec<Life>,
    published: u64,
    /// Messages handed twice to one node in one life.
    duplicates: Vec<String>,
    /// The last messages, with their publishers, once published.
    last: Option<Vec<(NodeIndex, MessageId)>>,
    /// Components of the network when the last messages were published.
    components_at_last: usize,
    /// Nodes that had not received every last message by [`LAST_CHECKED_AT`].
    missing: Vec<String>,
    checked: bool,
}

impl Watch {
    fn new(seed: u64, seed_nodes: usize) -> Self {
        Watch {
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x0060_551B),
            seed_nodes,
            lives: (0..NODES).map(|_| Life::default()).collect(),
            published: 0,
            duplicates: Vec::new(),
            last: None,
            components_at_last: 0,
            missing: Vec::new(),
            checked: false,
        }
    }

    /// Takes what every live node's gossip delivered, noting a message handed twice in one
    /// life.
    fn take_deliveries(&mut self, sim: &mut Sim) {
        for index in 0..NODES {
            if !sim.is_alive(index) {
                continue;
            }
            let life = &mut self.lives[index];
            let restarts = sim.restarts(index);
            if life.restarts != restarts {
                *life = Life {
                    restarts,
                    seen: BTreeSet::new(),
                };
            }
            while let Some(message) = sim
                .with_protocol(index, |gossip: &mut Gossip, _| gossip.poll_message())
                .flatten()
            {
                if !life.seen.insert(message.id) {
                    self.duplicates.push(format!(
                        "node {index} (life {restarts}) was handed {:?} twice, the second time \
                         from {}",
                        &message.message,
                        short(&message.from)
                    ));
                }
            }
        }
    }

    fn publish(&mut self, sim: &mut Sim, index: NodeIndex) -> Option<MessageId> {
        self.published += 1;
        let text = format!(
            "message {} from node {index} at {:?}",
            self.published,
            sim.now()
        );
        sim.with_protocol(index, |gossip: &mut Gossip, ctx| {
            gossip.publish(ctx, text.into())
        })
        .flatten()
    }

    /// One sample of the scenario: deliveries taken; a message published from a random live
    /// member; the last messages published, then checked, at their times.
    fn sample(&mut self, sim: &mut Sim, start: Instant) {
        self.take_deliveries(sim);
        let elapsed = sim.now().saturating_duration_since(start);
        let members = (NODES - self.seed_nodes) as u64;
        let member = self.seed_nodes + (self.rng.next_u64() % members) as usize;
        if sim.is_alive(member) {
            self.publish(sim, member);
        }
        if self.last.is_none() && elapsed >= LAST_PUBLISHED_AT {
            self.components_at_last = sim.components();
            let seed_nodes = self.seed_nodes;
            let mut publishers = Vec::new();
            for nth in 0..LAST_PUBLISHERS {
                let index = seed_nodes + (nth * 13 + 5) % (NODES - seed_nodes);
                if let Some(id) = self.publish(sim, index) {
                    publishers.push((index, id));
                }
            }
            self.last = Some(publishers);
        }
        if !self.checked && elapsed >= LAST_CHECKED_AT {
            self.checked = true;
            self.check_last(sim);
        }
    }

    /// Every member has every last message it did not publish itself.
    fn check_last(&mut self, sim: &Sim) {
        let last = self.last.clone().unwrap_or_default();
        for index in self.seed_nodes..NODES {
            let absent: Vec<String> = last
                .iter()
                .filter(|(publisher, id)| {
                    *publisher != index && !self.lives[index].seen.contains(id)
                })
                .map(|(publisher, _)| format!("node {publisher}'s"))
                .collect();
            if !absent.is_empty() || !sim.is_alive(index) {
                self.missing.push(format!(
                    "node {index} (alive {}, life {}): missing {}",
                    sim.is_alive(index),
                    sim.restarts(index),
                    absent.join(", ")
                ));
            }
        }
    }
}

fn short(peer: &PeerId) -> String {
    peer.to_string()[..8].to_string()
}

#[test]
fn gossip_delivers_once_per_life_under_every_fault_and_everywhere_once_healed() {
    let seeds: u64 = common::seeds_from_env("SWITCHBOARD_SIM_SEEDS", DEFAULT_SEEDS);
    let mut failures = Vec::new();
    let mut published = 0;
    for seed in 0..seeds {
        let mut config = ScenarioConfig::new(NODES, seed);
        config.duration = DURATION;
        config.quiet = QUIET;
        config.faults = FaultConfig::all();
        config.discovery = true;
        config.sample_interval = Duration::from_secs(1);
        let mut watch = Watch::new(seed, config.seed_nodes());
        let scenario =
            Scenario::new_with_router(config, |router| router.register(gossip()).map(drop))
                .expect("a valid scenario");
        let start = scenario.sim().now();
        let summary = scenario.run_with(|sim| watch.sample(sim, start));
        published += watch.published;
        let mut problems = Vec::new();
        if !summary.passed() || summary.components != 1 {
            problems.push(format!("{summary}"));
        }
        if !watch.checked || watch.last.as_ref().is_none_or(Vec::is_empty) {
            problems.push("the last messages were never published or checked".into());
        }
        if watch.components_at_last != 1 {
            problems.push(format!(
                "{} components when the last messages were published",
                watch.components_at_last
            ));
        }
        problems.extend(watch.duplicates);
        problems.extend(watch.missing);
        if !problems.is_empty() {
            failures.push(format!("seed {seed}:\n{}", problems.join("\n")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(
        published >= seeds * 30,
        "only {published} messages published"
    );
}
