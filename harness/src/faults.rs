//! The faults, made by the kernel and the OS, never by the nodes' code: a schedule drawn
//! from a seed (the same seed, the same schedule), and how each fault is put on and taken
//! off a [`Cluster`].

use std::fmt;
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

use crate::cluster::{Cluster, run};

/// What goes wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FaultKind {
    /// SIGKILL, then a restart from the data directory when the fault ends.
    Kill,
    /// SIGSTOP, SIGCONT when the fault ends.
    Pause,
    /// The nodes' ports on the bridge set down (each node cut off), up when it ends.
    LinkDown,
    /// nftables drops every packet between two nodes, both ways.
    BlackHole,
    /// nftables drops a share of the packets from one node to another, that way only.
    OneWayLoss,
    /// The node's open-file limit lowered (`prlimit`) to the descriptors it has open: no
    /// socket can be accepted or dialed; restored when it ends.
    FdLimit,
}

impl FaultKind {
    /// Every kind, each put on at least once in a run with faults.
    pub const ALL: [FaultKind; 6] = [
        FaultKind::Kill,
        FaultKind::Pause,
        FaultKind::LinkDown,
        FaultKind::BlackHole,
        FaultKind::OneWayLoss,
        FaultKind::FdLimit,
    ];
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FaultKind::Kill => "kill+restart",
            FaultKind::Pause => "pause",
            FaultKind::LinkDown => "link down",
            FaultKind::BlackHole => "black hole",
            FaultKind::OneWayLoss => "one-way loss",
            FaultKind::FdLimit => "fd limit",
        })
    }
}

/// One fault of the schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    /// What.
    pub kind: FaultKind,
    /// From the start of the fault phase.
    pub at: Duration,
    /// How long it lasts.
    pub lasts: Duration,
    /// The nodes it hits: one; for a black hole or a one-way loss two (from, to); one to
    /// three for links down.
    pub nodes: Vec<usize>,
    /// A one-way loss's share of packets dropped, in percent (100 for the other kinds).
    pub loss_percent: u32,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:5.1} s +{:.1} s {} on {:?}",
            self.at.as_secs_f64(),
            self.lasts.as_secs_f64(),
            self.kind,
            self.nodes
        )?;
        if self.kind == FaultKind::OneWayLoss {
            write!(f, " ({} %)", self.loss_percent)?;
        }
        Ok(())
    }
}

/// The faults of a `phase` on `nodes` nodes, drawn from `seed`: one starts every 2 to 5 s,
/// lasting 2 to 8 s (a killed node is down 1 to 4 s), on nodes no other fault holds; the
/// first six are every kind once, in a random order; the last cuts up to three nodes off
/// (links down) for the phase's last 10 s; all are over by the end of the phase.
pub fn schedule(seed: u64, nodes: usize, phase: Duration) -> Vec<Fault> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let between =
        |rng: &mut ChaCha8Rng, low: u64, high: u64| low + rng.next_u64() % (high - low + 1);
    let mut first = FaultKind::ALL.to_vec();
    for at in (1..first.len()).rev() {
        first.swap(at, between(&mut rng, 0, at as u64) as usize);
    }
    let mut faults: Vec<Fault> = Vec::new();
    let mut at = Duration::from_millis(between(&mut rng, 1000, 3000));
    let phase_ms = phase.as_millis() as u64;
    while (at.as_millis() as u64) + 2000 < phase_ms {
        let kind = if faults.len() < first.len() {
            first[faults.len()]
        } else {
            FaultKind::ALL[between(&mut rng, 0, 5) as usize]
        };
        let (low, high) = match kind {
            FaultKind::Kill => (1000, 4000),
            _ => (2000, 8000),
        };
        let room = phase_ms - at.as_millis() as u64;
        let lasts =
            Duration::from_millis(between(&mut rng, low, high).min(room.saturating_sub(500)));
        let busy: Vec<usize> = faults
            .iter()
            .filter(|fault| fault.at + fault.lasts + Duration::from_millis(500) > at)
            .flat_map(|fault| fault.nodes.iter().copied())
            .collect();
        let mut free: Vec<usize> = (0..nodes).filter(|node| !busy.contains(node)).collect();
        let wanted = match kind {
            FaultKind::BlackHole | FaultKind::OneWayLoss => 2,
            FaultKind::LinkDown => between(&mut rng, 1, 3) as usize,
            _ => 1,
        };
        if free.len() >= wanted.max(1) && free.len() > 2 {
            let mut hit = Vec::new();
            for _ in 0..wanted {
                let pick = between(&mut rng, 0, free.len() as u64 - 1) as usize;
                hit.push(free.swap_remove(pick));
            }
            let loss_percent = match kind {
                FaultKind::OneWayLoss => [30, 60, 100][between(&mut rng, 0, 2) as usize],
                _ => 100,
            };
            faults.push(Fault {
                kind,
                at,
                lasts,
                nodes: hit,
                loss_percent,
            });
        }
        at += Duration::from_millis(between(&mut rng, 2000, 5000));
    }
    // The last heal is a partition's: what the network must recover from in its bound.
    // Longer than the nodes' pong timeout, so their connections across it have died.
    if let Some(at) = phase.checked_sub(FINAL_PARTITION) {
        let busy: Vec<usize> = faults
            .iter()
            .filter(|fault| fault.at + fault.lasts + Duration::from_millis(500) > at)
            .flat_map(|fault| fault.nodes.iter().copied())
            .collect();
        let free: Vec<usize> = (0..nodes).filter(|node| !busy.contains(node)).collect();
        let cut = free.len().min(3).min(nodes / 3);
        if cut > 0 {
            let start = between(&mut rng, 0, (free.len() - cut) as u64) as usize;
            faults.push(Fault {
                kind: FaultKind::LinkDown,
                at,
                lasts: FINAL_PARTITION,
                nodes: free[start..start + cut].to_vec(),
                loss_percent: 100,
            });
        }
    }
    faults
}

/// How long the schedule's last fault, links down ending with the phase, lasts.
const FINAL_PARTITION: Duration = Duration::from_secs(10);

/// The nftables table a fault's rules live in, in the namespace of its first node.
fn table(id: usize) -> String {
    format!("harness{id}")
}

/// Puts fault number `id` on; what [`heal`] needs to undo it (the open-file limit the
/// node had).
pub fn inject(cluster: &mut Cluster, id: usize, fault: &Fault) -> Result<Option<String>, String> {
    let first = fault.nodes[0];
    match fault.kind {
        FaultKind::Kill => cluster.kill(first).map(|()| None),
        FaultKind::Pause => cluster.signal(first, libc::SIGSTOP).map(|()| None),
        FaultKind::LinkDown => {
            for &node in &fault.nodes {
                let port = format!("s{node}");
                run(
                    "ip",
                    &["-n", cluster.switch(), "link", "set", &port, "down"],
                )?;
            }
            Ok(None)
        }
        FaultKind::BlackHole | FaultKind::OneWayLoss => {
            let other = Cluster::address(fault.nodes[1]);
            let table = table(id);
            let share = match fault.loss_percent {
                100.. => String::new(),
                percent => format!("numgen random mod 100 < {percent} "),
            };
            let mut rules = format!(
                "table inet {table} {{\n  chain out {{ type filter hook output priority 0; \
                 ip daddr {other} {share}drop; }}\n"
            );
            if fault.kind == FaultKind::BlackHole {
                rules += &format!(
                    "  chain in {{ type filter hook input priority 0; ip saddr {other} drop; }}\n"
                );
            }
            rules += "}\n";
            let path = cluster.dir().join(format!("{table}.nft"));
            std::fs::write(&path, rules).map_err(|error| error.to_string())?;
            let path = path.to_string_lossy().into_owned();
            run(
                "ip",
                &["netns", "exec", cluster.netns(first), "nft", "-f", &path],
            )
            .map(|_| None)
        }
        FaultKind::FdLimit => {
            let pid = cluster.pid(first).ok_or("node not running")?.to_string();
            let soft = run(
                "prlimit",
                &[
                    "--pid",
                    &pid,
                    "--nofile",
                    "--raw",
                    "--noheadings",
                    "--output=SOFT",
                ],
            )?;
            let open = std::fs::read_dir(format!("/proc/{pid}/fd"))
                .map_err(|error| error.to_string())?
                .count();
            let limit = format!("--nofile={open}:");
            run("prlimit", &["--pid", &pid, &limit])?;
            Ok(Some(soft.trim().to_string()))
        }
    }
}

/// Takes fault number `id` off again.
pub fn heal(
    cluster: &mut Cluster,
    id: usize,
    fault: &Fault,
    undo: Option<&str>,
) -> Result<(), String> {
    let first = fault.nodes[0];
    match fault.kind {
        FaultKind::Kill => cluster.start(first),
        FaultKind::Pause => cluster.signal(first, libc::SIGCONT),
        FaultKind::LinkDown => {
            for &node in &fault.nodes {
                let port = format!("s{node}");
                run("ip", &["-n", cluster.switch(), "link", "set", &port, "up"])?;
            }
            Ok(())
        }
        FaultKind::BlackHole | FaultKind::OneWayLoss => run(
            "ip",
            &[
                "netns",
                "exec",
                cluster.netns(first),
                "nft",
                "delete",
                "table",
                "inet",
                &table(id),
            ],
        )
        .map(drop),
        FaultKind::FdLimit => {
            let pid = cluster.pid(first).ok_or("node not running")?.to_string();
            let limit = format!("--nofile={}:", undo.ok_or("no limit to restore")?);
            run("prlimit", &["--pid", &pid, &limit]).map(drop)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_one_schedule_every_kind_first_and_no_node_held_twice() {
        let phase = Duration::from_secs(70);
        for seed in 0..50 {
            let faults = schedule(seed, 12, phase);
            assert_eq!(faults, schedule(seed, 12, phase), "seed {seed}");
            let first: Vec<FaultKind> = faults.iter().take(6).map(|f| f.kind).collect();
            for kind in FaultKind::ALL {
                assert!(
                    first.contains(&kind),
                    "seed {seed}: no {kind} among {first:?}"
                );
            }
            let last = faults.last().expect("faults");
            assert_eq!(
                (last.kind, last.at + last.lasts),
                (FaultKind::LinkDown, phase)
            );
            for (index, fault) in faults.iter().enumerate() {
                assert!(fault.at + fault.lasts <= phase, "seed {seed}: {fault}");
                let mut nodes = fault.nodes.clone();
                nodes.dedup();
                assert_eq!(nodes.len(), fault.nodes.len(), "seed {seed}: {fault}");
                for other in &faults[..index] {
                    let overlap = other.at + other.lasts > fault.at;
                    let shared = other.nodes.iter().any(|node| fault.nodes.contains(node));
                    assert!(!(overlap && shared), "seed {seed}: {other} and {fault}");
                }
            }
        }
        assert_ne!(schedule(1, 12, phase), schedule(2, 12, phase));
    }
}
