//! # switchboard-harness
//!
//! Real processes on a real network: `switchboard-workload` nodes, each a process in its
//! own Linux network namespace on one bridge ([`cluster`]), under faults the kernel and the
//! OS make — SIGKILL and restart, SIGSTOP/SIGCONT, links down, nftables drop rules, a
//! lowered open-file limit ([`faults`]) — every tracked message followed end to end from
//! the nodes' logs ([`record`]) by the simulator's independent checker ([`verdict`]).
//! `docs/testing.md` tells how to run it and read a failure.

pub mod clock;
pub mod cluster;
pub mod faults;
pub mod record;
pub mod verdict;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::clock::{monotonic_nanos, seconds_since};
use crate::cluster::{Cluster, NodeSpec};
use crate::faults::{Fault, FaultKind};
use crate::verdict::{Bounds, Phases, Verdict};

/// A run of the harness.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Nodes (at most 200: one /24).
    pub nodes: usize,
    /// Seeds the fault schedule (printed with every violation).
    pub seed: u64,
    /// How long the schedule of faults runs (the last heals within it, and the settle
    /// time counts from that heal); `None`: a run without faults.
    pub faults: Option<Duration>,
    /// From the start to the first fault: the network forms, address books are saved.
    pub warmup: Duration,
    /// From the heal to the stop: the network reforms, traffic flows.
    pub settle: Duration,
    /// Each node sends a tracked message to each peer this often.
    pub period: Duration,
    /// The broken build: node `.0`'s driver drops the `.1`-th message it takes.
    pub drop_nth_message: Option<(usize, u64)>,
    /// The bounds checked.
    pub bounds: Bounds,
    /// The `switchboard-workload` binary.
    pub workload: PathBuf,
}

impl Scenario {
    /// `nodes` nodes, faults for `faults`, the harness's bounds: liveness 15 s, one
    /// component within 15 s of the heal.
    pub fn new(workload: PathBuf, nodes: usize, seed: u64, faults: Option<Duration>) -> Self {
        Scenario {
            nodes,
            seed,
            faults,
            warmup: Duration::from_secs(6),
            settle: Duration::from_secs(25),
            period: Duration::from_millis(250),
            drop_nth_message: None,
            bounds: Bounds {
                liveness: Duration::from_secs(15),
                component: Duration::from_secs(15),
            },
            workload,
        }
    }

    /// The least traffic delivered between the heal and the stop for the run to pass: from
    /// the component bound on, every node holds a connection to each node it keeps as a
    /// persistent peer or that keeps it as one, and each of those sends it a message a
    /// period. (Peer exchange adds more peers: runs deliver several times the floor.)
    pub fn delivery_floor(&self) -> u64 {
        let window = self.settle.saturating_sub(self.bounds.component);
        let periods = window.as_millis() / self.period.as_millis().max(1);
        let neighbours: usize = (0..self.nodes)
            .map(|node| {
                (0..self.nodes)
                    .filter(|&other| {
                        persistent_peers(node, self.nodes).contains(&other)
                            || persistent_peers(other, self.nodes).contains(&node)
                    })
                    .count()
            })
            .sum();
        (neighbours as u128 * periods) as u64
    }
}

/// What a run did and what the verdict is.
#[derive(Debug)]
pub struct Report {
    /// The scenario.
    pub scenario: Scenario,
    /// The faults put on, in order.
    pub faults: Vec<Fault>,
    /// The run's length, start to stop.
    pub duration: Duration,
    /// The judgement.
    pub verdict: Verdict,
    /// Where the logs were (kept when the run failed, deleted when it passed).
    pub dir: PathBuf,
}

impl Report {
    /// Deletes the logs a failed run kept (a test that expected the failure).
    pub fn remove_logs(&self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// Every failed check; empty when the run passed.
    pub fn failures(&self) -> &[String] {
        &self.verdict.failures
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scenario = &self.scenario;
        let counters = &self.verdict.counters;
        write!(
            f,
            "{} nodes, seed {}, {:.1} s",
            scenario.nodes,
            scenario.seed,
            self.duration.as_secs_f64()
        )?;
        if self.failures().is_empty() {
            writeln!(f)?;
        } else {
            writeln!(f, " (logs kept in {})", self.dir.display())?;
        }
        let mut kinds: BTreeMap<FaultKind, usize> = BTreeMap::new();
        for fault in &self.faults {
            *kinds.entry(fault.kind).or_default() += 1;
        }
        let kinds: Vec<String> = kinds
            .iter()
            .map(|(kind, n)| format!("{kind} {n}"))
            .collect();
        writeln!(f, "faults: {} ({})", self.faults.len(), kinds.join(", "))?;
        writeln!(
            f,
            "messages: sent {}, delivered {}, confirmed {}, returned {} unconfirmed + {} unsent, \
             lost with a kill {}, unknown at a kill {}, pending {}",
            counters.sent,
            counters.delivered,
            counters.confirmed,
            counters.returned_unconfirmed,
            counters.returned_unsent,
            counters.lost_with_crash,
            counters.unknown_with_crash,
            counters.pending
        )?;
        writeln!(
            f,
            "violations: {} (lost {}, duplicate {}, reordered {}, corrupted {}, liveness {})",
            counters.violations,
            counters.lost,
            counters.duplicates,
            counters.reordered,
            counters.corrupted,
            counters.liveness_violations
        )?;
        let connected = self
            .verdict
            .connected_after
            .map_or("never".to_string(), |after| {
                format!("{:.1} s", after.as_secs_f64())
            });
        writeln!(
            f,
            "after the heal: one component in {connected}, {} delivered (floor {})",
            self.verdict.delivered_after_heal,
            scenario.delivery_floor()
        )?;
        let books = self.verdict.restarts.iter().map(|&(_, _, book)| book);
        writeln!(
            f,
            "restarts: {}, addresses reloaded: {} to {}",
            self.verdict.restarts.len(),
            books.clone().min().unwrap_or(0),
            books.max().unwrap_or(0)
        )?;
        for failure in self.failures() {
            writeln!(f, "FAILED: {failure}")?;
        }
        Ok(())
    }
}

/// Ring and chord: node `index` keeps its successor and the node half way round connected,
/// so the network is one component without discovery.
fn persistent_peers(index: usize, nodes: usize) -> Vec<usize> {
    let mut peers: Vec<usize> = [1, nodes / 2]
        .into_iter()
        .map(|step| (index + step) % nodes)
        .filter(|&peer| peer != index)
        .collect();
    peers.dedup();
    peers
}

/// Runs `scenario`: makes the cluster, starts it, puts the faults on and off, stops it and
/// judges the logs. An error is the harness failing to do its part (a command that did not
/// run), not the nodes failing a check (those are in the report).
pub fn run(scenario: Scenario) -> Result<Report, String> {
    cluster::preflight()?;
    let specs = (0..scenario.nodes)
        .map(|index| {
            let mut args = vec![
                "--period-ms".to_string(),
                scenario.period.as_millis().to_string(),
            ];
            if let Some((node, nth)) = scenario.drop_nth_message
                && node == index
            {
                args.extend(["--drop-nth-message".to_string(), nth.to_string()]);
            }
            NodeSpec {
                persistent: persistent_peers(index, scenario.nodes),
                args,
            }
        })
        .collect();
    let mut cluster = Cluster::create(&scenario.workload, specs)?;
    let base = monotonic_nanos();
    for index in 0..cluster.len() {
        cluster.start(index)?;
    }
    std::thread::sleep(scenario.warmup);
    let schedule = match scenario.faults {
        Some(phase) => faults::schedule(scenario.seed, scenario.nodes, phase),
        None => Vec::new(),
    };
    let healed = match scenario.faults {
        Some(_) => put_on_faults(&mut cluster, &schedule, base)?,
        None => base,
    };
    std::thread::sleep(scenario.settle);
    let quiet = monotonic_nanos();
    let stopped = cluster.stop_all(Duration::from_secs(3), Duration::from_secs(15));
    let duration = Duration::from_nanos(monotonic_nanos() - base);
    let logs = cluster.logs()?;
    let kills = schedule
        .iter()
        .filter(|f| f.kind == FaultKind::Kill)
        .count();
    let phases = Phases {
        base,
        healed,
        quiet,
        faults: scenario.faults.is_some(),
    };
    let mut verdict = verdict::judge(&logs, phases, scenario.bounds, kills, scenario.seed);
    if let Err(error) = stopped {
        verdict.failures.push(error);
    }
    if verdict.delivered_after_heal < scenario.delivery_floor() {
        verdict.failures.push(format!(
            "{} messages delivered after the heal, under the floor of {}",
            verdict.delivered_after_heal,
            scenario.delivery_floor()
        ));
    }
    if verdict.failures.is_empty() && std::env::var_os("SWITCHBOARD_HARNESS_KEEP").is_none() {
        cluster.remove_files_on_drop();
    }
    Ok(Report {
        dir: cluster.dir().to_path_buf(),
        scenario,
        faults: schedule,
        duration,
        verdict,
    })
}

/// Puts each fault of `schedule` on at its time and takes it off at its end, printing each
/// step as it goes; returns when the last healed (the start of the phase without any).
fn put_on_faults(cluster: &mut Cluster, schedule: &[Fault], base: u64) -> Result<u64, String> {
    let mut steps: Vec<(Duration, bool, usize)> = Vec::new();
    for (id, fault) in schedule.iter().enumerate() {
        steps.push((fault.at, true, id));
        steps.push((fault.at + fault.lasts, false, id));
    }
    // At one instant heals come first: a node is never held by two faults.
    steps.sort_by_key(|&(at, on, id)| (at, on, id));
    let start = std::time::Instant::now();
    let mut undo: BTreeMap<usize, Option<String>> = BTreeMap::new();
    let mut healed = monotonic_nanos();
    for (at, on, id) in steps {
        if let Some(wait) = at.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
        let fault = &schedule[id];
        let t = seconds_since(base, monotonic_nanos());
        if on {
            eprintln!("[{t:6.1} s] fault {id}: {fault}");
            undo.insert(id, faults::inject(cluster, id, fault)?);
        } else {
            eprintln!("[{t:6.1} s] heal {id}: {}", fault.kind);
            let undo = undo.remove(&id).flatten();
            faults::heal(cluster, id, fault, undo.as_deref())?;
            healed = monotonic_nanos();
        }
    }
    Ok(healed)
}
