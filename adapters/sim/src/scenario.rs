//! A whole-network run: N nodes that find each other by dialing
//! ([`bootstrap_by_dialing`]), seeded traffic on the traffic channel, a seeded fault
//! schedule, and the invariant checker — what the `switchboard-sim` binary and the sweep
//! tests run.
//!
//! # Timeline
//!
//! Faults are drawn during the first `duration - quiet`; then every fault heals at once
//! (partitions healed, crashed nodes restarted, listeners answer, applications poll) and
//! the network has `quiet` to reconnect: at the end it must be one component, or the
//! checker reports [`ViolationKind::NotReconnected`](crate::ViolationKind). Traffic runs
//! throughout; a message sent after the heal must be delivered or returned within
//! [`ScenarioConfig::liveness_bound`] (in a run without faults, from the start — and
//! delivered, never returned, unless discovery's seed nodes let peers go);
//! what is still in flight at the end counts as pending.

use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use std::net::SocketAddr;

use switchboard::discovery::{Discovery, DiscoveryConfig};
use switchboard::node::NodeConfig;
use switchboard::router::{RegisterError, Router};
use switchboard::{Instant, NetAddress};

use crate::faults::{FaultConfig, FaultKind};
use crate::invariants::{TAG_LEN, Tag};
use crate::link::{below, chance};
use crate::sim::{Crashed, PartitionMode, Sim, SimConfig, SimError, SimRouter};
use crate::summary::Summary;
use crate::timeline::Timeline;
use crate::{NodeIndex, test_discovery_config, test_node_config};

/// What a scenario runs.
#[derive(Clone, Debug)]
pub struct ScenarioConfig {
    /// How many nodes.
    pub nodes: usize,
    /// The seed of everything.
    pub seed: u64,
    /// Simulated time to run.
    pub duration: Duration,
    /// Which faults, how often.
    pub faults: FaultConfig,
    /// Each node's outbound cap (and the target of [`bootstrap_by_dialing`]).
    pub max_outbound: usize,
    /// Mean time between two sends of one node; `None` for no traffic.
    pub traffic_interval: Option<Duration>,
    /// One send in this many is a broadcast.
    pub broadcast_one_in: u32,
    /// Length of the messages sent, uniform in this range (at least the
    /// [`TAG_LEN`](crate::invariants::TAG_LEN)-byte tag: shorter ones grow to it).
    pub message_len: (usize, usize),
    /// How long before the end every fault heals; the network must be one component by
    /// the end (checked when `duration > quiet`). The binary caps it at half the duration;
    /// keep to that here for [`ScenarioConfig::command_line`] to reproduce the run.
    pub quiet: Duration,
    /// Keepalive PING interval of every node (its silence timeout is twice this).
    pub ping_interval: Duration,
    /// How often buffered bytes are sampled (about 100 nodes a sample, in turns) and
    /// progress reported.
    pub sample_interval: Duration,
    /// Run the invariant checker (off only for benchmarks).
    pub check_invariants: bool,
    /// Stop as soon as every node's outbound slots are full (the convergence benchmark).
    pub stop_when_outbound_full: bool,
    /// How long after its send a tracked message sent once every fault has healed (from
    /// the start, in a run without faults, where it must be delivered unless discovery is on)
    /// must be delivered or returned: 10 s by default.
    /// Why 10 s: a connection that died silently is noticed by keepalive within
    /// `ping_interval + pong_timeout` (2 + 4 s), which returns its messages; on a live one
    /// a message arrives within a link's latency (≤ 100 ms) plus a write held by the heavy
    /// tail (≤ 2 s), the generator's few hundred bytes a second per link being far below the
    /// slowest link's 100 KB/s; 2 s remain for a receiver catching up on what it buffered.
    /// Only messages sent at least this long before the end are judged.
    pub liveness_bound: Duration,
    /// Test only: a fault injected between the nodes and the checker, which the checker
    /// must report (see [`SimConfig::inject`]).
    pub inject: Option<crate::CheckerFault>,
    /// Nodes find each other by discovery instead of [`bootstrap_by_dialing`]: the first
    /// [`ScenarioConfig::seed_nodes`] nodes are seeds in seed mode, every other node knows
    /// their addresses, exchanges addresses with its peers and fills its outbound slots from
    /// its address book.
    pub discovery: bool,
    /// Sample a [`Timeline`] for the report (off by default: a run without it schedules no
    /// sample). The run's [`Summary::timeline`] holds it.
    pub record_timeline: bool,
}

impl ScenarioConfig {
    /// `nodes` nodes for 60 s with no faults, 8 outbound slots, a message per node every
    /// 500 ms (one in ten a broadcast), 20 s of quiet at the end, 2 s pings.
    pub fn new(nodes: usize, seed: u64) -> Self {
        ScenarioConfig {
            nodes,
            seed,
            duration: Duration::from_secs(60),
            faults: FaultConfig::none(),
            max_outbound: 8,
            traffic_interval: Some(Duration::from_millis(500)),
            broadcast_one_in: 10,
            message_len: (TAG_LEN, 256),
            quiet: Duration::from_secs(20),
            ping_interval: Duration::from_secs(2),
            sample_interval: Duration::from_secs(1),
            check_invariants: true,
            stop_when_outbound_full: false,
            liveness_bound: Duration::from_secs(10),
            inject: None,
            discovery: false,
            record_timeline: false,
        }
    }

    /// With [`ScenarioConfig::discovery`], how many seed nodes: one per 100 nodes, 1 to 4.
    pub fn seed_nodes(&self) -> usize {
        (self.nodes / 100)
            .clamp(1, 4)
            .min(self.nodes.saturating_sub(1))
    }

    /// With [`ScenarioConfig::discovery`], node `index`'s [`Discovery`]: a seed's or a
    /// discovering node's ([`test_discovery_config`]), its timers scaled to a run of seconds
    /// as the connection's are: slots topped up every second, PEX requests 5 s apart, seed
    /// peers kept 3 s, a feeler every 5 s, and an address attempted 5 s ago selectable
    /// again (a node that tried its whole book while faults raged would otherwise sit out
    /// the quiet period). `None` without discovery.
    pub fn discovery_config_for(&self, index: NodeIndex) -> Option<DiscoveryConfig> {
        if !self.discovery {
            return None;
        }
        let seeds = self.seed_nodes();
        let mut discovery = test_discovery_config();
        discovery.interval = Duration::from_secs(1);
        discovery.pex.request_interval = Duration::from_secs(5);
        discovery.seed_peer_lifetime = Duration::from_secs(3);
        discovery.feeler_interval = Some(Duration::from_secs(5));
        discovery.addr_book.reselect_after = Duration::from_secs(5);
        if index < seeds {
            discovery.seed_mode = true;
        } else {
            discovery.seeds = (0..seeds)
                .map(|seed| NetAddress::new(None, SocketAddr::new(Sim::ip_for(seed), crate::PORT)))
                .collect();
        }
        Some(discovery)
    }

    /// The node config every node gets: [`test_node_config`] with the outbound cap, timers
    /// short enough that faults are noticed within seconds (PING every `ping_interval`,
    /// silence timeout twice that, 3 s handshakes, 2 s dial timeout, backoff 250 ms–4 s,
    /// slow peers dropped after 5 s).
    pub fn node_config(&self) -> NodeConfig {
        let mut config = test_node_config();
        config.limits.max_outbound = self.max_outbound;
        config.connection.ping_interval = self.ping_interval;
        config.connection.pong_timeout = self.ping_interval.saturating_mul(2);
        config.connection.handshake_timeout = Duration::from_secs(3);
        config.dial.dial_timeout = Duration::from_secs(2);
        config.dial.backoff_base = Duration::from_millis(250);
        config.dial.backoff_cap = Duration::from_secs(4);
        config.slow_peer_timeout = Duration::from_secs(5);
        config
    }

    /// The network config: the seed, split reads if on, the link model the faults ask
    /// for, the checker.
    pub fn sim_config(&self) -> SimConfig {
        let mut config = SimConfig::with_seed(self.seed);
        config.split_reads = self.faults.has(FaultKind::Split);
        self.faults.apply(&mut config);
        config.check_invariants = self.check_invariants;
        config.keep_log = false;
        config.inject = self.inject;
        config
    }

    /// The command line that reruns this scenario with the binary (the options the binary
    /// has; a scenario changed in other fields needs them set in code).
    pub fn command_line(&self) -> String {
        format!(
            "cargo run --release -p switchboard-sim -- --nodes {} --seed {} --duration {} \
             --faults {} --max-outbound {} --traffic-ms {}{}{}",
            self.nodes,
            self.seed,
            self.duration.as_secs_f64(),
            self.faults,
            self.max_outbound,
            self.traffic_interval
                .map_or(0, |interval| interval.as_millis()),
            if self.stop_when_outbound_full {
                " --until-full"
            } else {
                ""
            },
            if self.discovery { " --discovery" } else { "" }
        )
    }
}

/// What a wake-up token means (low 4 bits; the rest is the argument).
const TRAFFIC: u64 = 0;
const MAINTAIN: u64 = 1;
const FAULTS: u64 = 2;
const SAMPLE: u64 = 3;
const UNDO: u64 = 4;
const HEAL_ALL: u64 = 5;
const TIMELINE: u64 = 6;

fn token(kind: u64, arg: u64) -> u64 {
    arg << 4 | kind
}

/// A fault to undo when its spell ends.
enum Undo {
    Restart(Crashed),
    Poll(NodeIndex),
    Accept(NodeIndex),
    Answer(NodeIndex),
    HealPartition,
}

/// A running scenario. See the [module documentation](self).
pub struct Scenario {
    config: ScenarioConfig,
    sim: Sim,
    rng: ChaCha8Rng,
    undo: std::collections::BTreeMap<u64, Undo>,
    next_undo: u64,
    faulting: bool,
    fault_end: Instant,
    end: Instant,
    sends: u64,
    samples: usize,
    timeline: Option<Timeline>,
}

impl Scenario {
    /// Builds the network: every node added, each scheduled to bootstrap within the first
    /// second. With [`ScenarioConfig::discovery`] each runs [`Discovery`] on a router
    /// ([`ScenarioConfig::discovery_config_for`]); without, each is a bare node.
    pub fn new(config: ScenarioConfig) -> Result<Self, SimError> {
        if config.discovery {
            return Self::new_with_router(config, |_| Ok(()));
        }
        Self::build(config, |sim, config, index| {
            sim.try_add_node_at(config.node_config(), Sim::ip_for(index))
        })
    }

    /// As [`Scenario::new`], every node with a [`Router`] running the protocols `register`
    /// registers — after [`Discovery`], with [`ScenarioConfig::discovery`] — rebuilt at
    /// every restart (see [`Sim::add_node_with_router`]).
    ///
    /// # Panics
    /// When building a node's router, if `register` returns an error.
    ///
    /// [`Router`]: switchboard::router::Router
    pub fn new_with_router<F>(config: ScenarioConfig, register: F) -> Result<Self, SimError>
    where
        F: FnMut(&mut SimRouter) -> Result<(), RegisterError> + Clone + 'static,
    {
        Self::build(config, move |sim, config, index| {
            let discovery = config.discovery_config_for(index);
            let mut register = register.clone();
            let build = move |node, now| {
                let built = Router::with_protocols(node, now, |router| {
                    if let Some(discovery) = &discovery {
                        let protocol = Discovery::new(discovery.clone(), router.node_mut().rng());
                        router.register(protocol)?;
                    }
                    register(router)
                });
                match built {
                    Ok(router) => router,
                    Err(error) => panic!("cannot register a protocol: {error}"),
                }
            };
            sim.try_add_node_with_stack_at(config.node_config(), Sim::ip_for(index), build)
        })
    }

    fn build(
        config: ScenarioConfig,
        mut add: impl FnMut(&mut Sim, &ScenarioConfig, NodeIndex) -> Result<NodeIndex, SimError>,
    ) -> Result<Self, SimError> {
        if config.nodes > 1 << 16 {
            return Err(SimError::TooManyNodes(config.nodes));
        }
        let mut sim = Sim::new(config.sim_config());
        for index in 0..config.nodes {
            add(&mut sim, &config, index)?;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0x5CE7_A510);
        let start = sim.now();
        let second = Duration::from_secs(1).as_nanos() as u64;
        for index in 0..config.nodes {
            let at = start.saturating_add(Duration::from_nanos(below(&mut rng, second)));
            sim.wake_at(at, token(MAINTAIN, index as u64));
            if let Some(interval) = config.traffic_interval {
                let at = at.saturating_add(jitter(&mut rng, interval));
                sim.wake_at(at, token(TRAFFIC, index as u64));
            }
        }
        let end = start.saturating_add(config.duration);
        if config.faults.kinds.is_empty()
            && let Some(checker) = sim.checker_mut()
        {
            // With discovery, seed nodes let their peers go after a while and return what
            // was in flight to them: only nodes that dial alone keep every connection.
            checker.watch_liveness(start, config.liveness_bound, !config.discovery);
        }
        let fault_end = start.saturating_add(config.duration.saturating_sub(config.quiet));
        if !config.faults.kinds.is_empty() {
            sim.wake_at(start.saturating_add(config.faults.tick), token(FAULTS, 0));
        }
        sim.wake_at(fault_end, token(HEAL_ALL, 0));
        sim.wake_at(
            start.saturating_add(config.sample_interval),
            token(SAMPLE, 0),
        );
        let timeline = config.record_timeline.then(|| {
            let faults_until = (!config.faults.kinds.is_empty())
                .then(|| config.duration.saturating_sub(config.quiet));
            let mut timeline = Timeline::new(config.duration, faults_until);
            timeline.sample(&sim);
            sim.wake_at(
                start.saturating_add(timeline.interval()),
                token(TIMELINE, 0),
            );
            timeline
        });
        Ok(Scenario {
            faulting: !config.faults.kinds.is_empty(),
            config,
            sim,
            rng,
            undo: Default::default(),
            next_undo: 0,
            fault_end,
            end,
            sends: 0,
            samples: 0,
            timeline,
        })
    }

    /// The network.
    pub fn sim(&self) -> &Sim {
        &self.sim
    }

    /// Runs to the end; `progress` is called at every sample with the network.
    pub fn run(self, mut progress: impl FnMut(&Sim)) -> Summary {
        self.run_with(|sim| progress(sim))
    }

    /// As [`Scenario::run`], `each_sample` acting on the network at every sample (every
    /// [`ScenarioConfig::sample_interval`]): publishing through a protocol, taking what the
    /// protocols delivered.
    pub fn run_with(mut self, mut each_sample: impl FnMut(&mut Sim)) -> Summary {
        let started = std::time::Instant::now();
        while let Some(woken) = self.sim.run_to_wake(self.end) {
            let (kind, arg) = (woken & 0xF, woken >> 4);
            match kind {
                TRAFFIC => self.traffic(arg as NodeIndex),
                MAINTAIN => {
                    let index = arg as NodeIndex;
                    if self.sim.is_alive(index) && !self.config.discovery {
                        bootstrap_by_dialing(
                            &mut self.sim,
                            &mut self.rng,
                            index,
                            self.config.max_outbound,
                        );
                    }
                    let at = self
                        .sim
                        .now()
                        .saturating_add(jitter(&mut self.rng, Duration::from_secs(1)));
                    self.sim.wake_at(at, token(MAINTAIN, arg));
                }
                FAULTS => self.inject_faults(),
                SAMPLE => {
                    if self.config.check_invariants {
                        let now = self.sim.now();
                        if let Some(checker) = self.sim.checker_mut() {
                            checker.check_liveness(now);
                        }
                        // About 100 nodes a sample, in turns.
                        let stride = self.config.nodes.div_ceil(100);
                        self.sim.check_buffers_of(self.samples % stride, stride);
                        self.samples += 1;
                    }
                    each_sample(&mut self.sim);
                    let at = self.sim.now().saturating_add(self.config.sample_interval);
                    self.sim.wake_at(at, token(SAMPLE, 0));
                }
                TIMELINE => {
                    if let Some(timeline) = &mut self.timeline {
                        timeline.sample(&self.sim);
                        let at = self.sim.now().saturating_add(timeline.interval());
                        self.sim.wake_at(at, token(TIMELINE, 0));
                    }
                }
                UNDO => {
                    if let Some(undo) = self.undo.remove(&arg) {
                        self.apply(undo);
                    }
                }
                _ => self.heal_all(),
            }
            if self.config.stop_when_outbound_full && self.sim.outbound_full_after().is_some() {
                break;
            }
        }
        self.heal_all();
        self.sim.finish_checks();
        let components = self.sim.components();
        if self.config.check_invariants
            && !self.config.stop_when_outbound_full
            && self.config.duration > self.config.quiet
            && components != 1
        {
            let (now, quiet) = (self.sim.now(), self.config.quiet);
            if let Some(checker) = self.sim.checker_mut() {
                checker.not_reconnected(now, components, quiet);
            }
        }
        let mut summary = Summary::new(&self.config, &self.sim, components, started.elapsed());
        summary.timeline = self.timeline.map(|mut timeline| {
            timeline.finish(&self.sim);
            timeline
        });
        summary
    }

    fn traffic(&mut self, index: NodeIndex) {
        if let Some(interval) = self.config.traffic_interval {
            let at = self
                .sim
                .now()
                .saturating_add(jitter(&mut self.rng, interval));
            self.sim.wake_at(at, token(TRAFFIC, index as u64));
        }
        // A crashed node sends nothing, nor does a stalled application.
        if !self.sim.is_alive(index) || !self.sim.is_polling(index) {
            return;
        }
        let (low, high) = self.config.message_len;
        let len = low + below(&mut self.rng, high.saturating_sub(low) as u64) as usize;
        self.sends += 1;
        if self.config.broadcast_one_in > 0
            && self
                .sends
                .is_multiple_of(u64::from(self.config.broadcast_one_in))
        {
            if self.config.check_invariants {
                self.sim.broadcast_tracked(index, len);
            } else {
                let now = self.sim.now();
                let message = untracked(index, now, len);
                self.sim.node_mut(index).broadcast(
                    now,
                    crate::invariants::TRAFFIC_CHANNEL,
                    message,
                );
            }
            return;
        }
        let receivers = match self.sim.checker() {
            Some(checker) => checker.open_connections(index),
            None => {
                let node = self.sim.node(index);
                node.peers()
                    .filter_map(|peer| self.sim.index_of(&peer))
                    .collect()
            }
        };
        if receivers.is_empty() {
            return;
        }
        let to = receivers[below(&mut self.rng, receivers.len() as u64) as usize];
        if self.config.check_invariants {
            self.sim.send_tracked(index, to, len);
        } else {
            let peer = self.sim.node(to).peer_id();
            let now = self.sim.now();
            let message = untracked(index, now, len);
            let _full_or_gone = self.sim.node_mut(index).send(
                now,
                &peer,
                crate::invariants::TRAFFIC_CHANNEL,
                message,
            );
        }
    }

    /// One tick of the fault schedule.
    fn inject_faults(&mut self) {
        if !self.faulting {
            return;
        }
        let faults = self.config.faults.clone();
        let tick = faults.tick.as_secs_f64();
        let live = (0..self.sim.node_count())
            .filter(|&index| self.sim.is_alive(index))
            .count() as f64;
        if faults.has(FaultKind::Reset) {
            for _ in 0..self.count(faults.reset_rate * live * tick) {
                let Some(node) = self.random_live_node() else {
                    break;
                };
                let conns = self.sim.connections(node);
                if !conns.is_empty() {
                    let conn = conns[below(&mut self.rng, conns.len() as u64) as usize];
                    self.sim.reset_connection(node, conn);
                }
            }
        }
        if faults.has(FaultKind::Crash) {
            for _ in 0..self.count(faults.crash_rate * live * tick) {
                // Keep most of the network up: at most a tenth down at once.
                let down = self.sim.node_count() as f64 - live;
                if down + 1.0 > (live / 10.0).max(1.0) {
                    break;
                }
                let Some(node) = self.random_live_node() else {
                    break;
                };
                if let Ok(crashed) = self.sim.crash(node) {
                    self.spell(Undo::Restart(crashed));
                }
            }
        }
        if faults.has(FaultKind::Slow) {
            for _ in 0..self.count(faults.slow_rate * live * tick) {
                if let Some(node) = self.random_live_node() {
                    self.sim.set_polling(node, false);
                    self.spell(Undo::Poll(node));
                }
            }
        }
        if faults.has(FaultKind::Refuse) {
            for _ in 0..self.count(faults.refuse_rate * live * tick) {
                if let Some(node) = self.random_live_node() {
                    self.sim.set_refusing(node, true);
                    self.spell(Undo::Accept(node));
                }
            }
        }
        if faults.has(FaultKind::Blackhole) {
            for _ in 0..self.count(faults.blackhole_rate * live * tick) {
                if let Some(node) = self.random_live_node() {
                    self.sim.set_swallowing_dials(node, true);
                    self.spell(Undo::Answer(node));
                }
            }
        }
        if faults.has(FaultKind::Partition)
            && !self.sim.is_partitioned()
            && chance(&mut self.rng, faults.partition_rate * tick)
        {
            let share = 10 + below(&mut self.rng, 41);
            let side: Vec<NodeIndex> = (0..self.sim.node_count())
                .filter(|_| below(&mut self.rng, 100) < share)
                .collect();
            let mode = if faults.has(FaultKind::Blackhole) && self.rng.next_u32() & 1 == 0 {
                PartitionMode::BlackHole
            } else {
                PartitionMode::Reset
            };
            self.sim.partition(&side, mode);
            self.spell(Undo::HealPartition);
        }
        if faults.has(FaultKind::Clock) && chance(&mut self.rng, faults.clock_rate * tick) {
            let (low, high) = faults.clock_jump;
            let jump = low
                + Duration::from_nanos(below(
                    &mut self.rng,
                    high.saturating_sub(low).as_nanos() as u64,
                ));
            // Never past the heal: the quiet period stays whole.
            let room = self.fault_end.saturating_duration_since(self.sim.now());
            self.sim.jump_clock(jump.min(room));
        }
        let at = self.sim.now().saturating_add(faults.tick);
        if at < self.fault_end {
            self.sim.wake_at(at, token(FAULTS, 0));
        }
    }

    /// How many of a fault happen this tick when `expected` are due on average.
    fn count(&mut self, expected: f64) -> u64 {
        let whole = expected.floor();
        whole as u64 + u64::from(chance(&mut self.rng, expected - whole))
    }

    fn random_live_node(&mut self) -> Option<NodeIndex> {
        let count = self.sim.node_count() as u64;
        for _ in 0..16 {
            let node = below(&mut self.rng, count) as NodeIndex;
            if self.sim.is_alive(node) {
                return Some(node);
            }
        }
        None
    }

    /// Schedules `undo` after a spell drawn from the fault config.
    fn spell(&mut self, undo: Undo) {
        let (low, high) = self.config.faults.spell;
        let length = low
            + Duration::from_nanos(below(
                &mut self.rng,
                high.saturating_sub(low).as_nanos() as u64,
            ));
        self.next_undo += 1;
        self.undo.insert(self.next_undo, undo);
        let at = self.sim.now().saturating_add(length).min(self.fault_end);
        self.sim.wake_at(at, token(UNDO, self.next_undo));
    }

    fn apply(&mut self, undo: Undo) {
        match undo {
            Undo::Restart(crashed) => {
                // With the config the node ran with, its router rebuilt (see
                // `new_with_router`). The index is ours and the config was valid at the
                // start: cannot fail.
                let _restarted = self.sim.restart(crashed);
            }
            Undo::Poll(node) => self.sim.set_polling(node, true),
            Undo::Accept(node) => self.sim.set_refusing(node, false),
            Undo::Answer(node) => self.sim.set_swallowing_dials(node, false),
            Undo::HealPartition => self.sim.heal_partition(),
        }
    }

    /// Ends every fault at once and stops drawing new ones; from now on messages must be
    /// delivered or returned in time ([`ScenarioConfig::liveness_bound`]).
    fn heal_all(&mut self) {
        self.faulting = false;
        for (_, undo) in std::mem::take(&mut self.undo) {
            self.apply(undo);
        }
        let (now, bound) = (self.sim.now(), self.config.liveness_bound);
        if let Some(checker) = self.sim.checker_mut() {
            checker.watch_liveness(now, bound, false);
        }
    }
}

/// How nodes find each other without [`ScenarioConfig::discovery`]: node `index` dials
/// random other nodes, as many as its outbound slots `want` minus its outbound peers and
/// connections still opening. Called for every node within the first second and then about
/// once a second, so failed dials and lost peers are replaced. (With discovery, each node's
/// [`Discovery`] does this from its address book instead.)
pub fn bootstrap_by_dialing(sim: &mut Sim, rng: &mut ChaCha8Rng, index: NodeIndex, want: usize) {
    let node = sim.node(index);
    let (inbound, outbound) = node.peer_counts();
    let opening = node.connection_count().saturating_sub(inbound + outbound);
    let deficit = want.saturating_sub(outbound + opening);
    let count = sim.node_count() as u64;
    if count < 2 {
        return;
    }
    for _ in 0..deficit {
        let mut target = below(rng, count - 1) as NodeIndex;
        if target >= index {
            target += 1;
        }
        let address = sim.address(target);
        let now = sim.now();
        // Refused at once when connected already or banned: the next call tries others.
        let _already = sim.node_mut(index).dial(now, address);
    }
}

/// A generator message with the checker off: tagged with its send time only, for the
/// delivery latency.
fn untracked(sender: NodeIndex, now: Instant, len: usize) -> bytes::Bytes {
    let tag = Tag {
        sender,
        seq: 0,
        sent_at: now,
    };
    tag.message(len)
}

/// `mean` scaled by a uniform factor in [0.5, 1.5).
fn jitter(rng: &mut ChaCha8Rng, mean: Duration) -> Duration {
    let nanos = mean.as_nanos() as u64;
    Duration::from_nanos(nanos / 2 + below(rng, nanos.max(1)))
}
