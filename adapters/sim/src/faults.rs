//! Which faults a scenario injects, and how often: [`FaultConfig`], parsed from the
//! `--faults` spec string (`all`, `none`, or a comma list of [`FaultKind`] names).
//!
//! Every fault is drawn from the scenario's seeded RNG, so a seed reproduces the schedule.
//! Rates of per-node faults are per node and per simulated second (they scale with the
//! network); partitions and clock jumps are per simulated second.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::link::HeavyTail;
use crate::sim::SimConfig;

/// One kind of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FaultKind {
    /// A random connection is reset (both ends see it close; bytes in flight are lost).
    Reset,
    /// The network splits in two for a while; existing links across are reset and dials
    /// across are refused. With `blackhole` on as well, half the partitions black-hole
    /// instead (see [`crate::PartitionMode`]).
    Partition,
    /// A node crashes (its peers' links reset) and restarts later with the same key.
    Crash,
    /// Links get 1–100 ms latency and a heavy tail (1 % of writes delayed up to 2 s).
    Latency,
    /// Link directions get 100 KB/s – 10 MB/s bandwidth; senders see their sockets block.
    Bandwidth,
    /// A node's listener swallows dials (they never complete: the dialer's dial timeout
    /// must fire) for a while; partitions may black-hole traffic.
    Blackhole,
    /// A node's application stops polling events for a while (a slow receiver).
    Slow,
    /// Virtual time jumps forward at once (a paused VM): every timer fires late.
    Clock,
    /// A node's listener refuses connections for a while.
    Refuse,
    /// Delivered bytes are cut into reads at random points.
    Split,
}

impl FaultKind {
    /// Every kind, in spec order.
    pub const ALL: [FaultKind; 10] = [
        FaultKind::Reset,
        FaultKind::Partition,
        FaultKind::Crash,
        FaultKind::Latency,
        FaultKind::Bandwidth,
        FaultKind::Blackhole,
        FaultKind::Slow,
        FaultKind::Clock,
        FaultKind::Refuse,
        FaultKind::Split,
    ];

    /// The name used in spec strings.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Reset => "reset",
            FaultKind::Partition => "partition",
            FaultKind::Crash => "crash",
            FaultKind::Latency => "latency",
            FaultKind::Bandwidth => "bandwidth",
            FaultKind::Blackhole => "blackhole",
            FaultKind::Slow => "slow",
            FaultKind::Clock => "clock",
            FaultKind::Refuse => "refuse",
            FaultKind::Split => "split",
        }
    }
}

/// A `--faults` spec that does not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseFaultsError {
    /// The word that is not a fault kind.
    pub unknown: String,
}

impl fmt::Display for ParseFaultsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = FaultKind::ALL.iter().map(|kind| kind.name()).collect();
        write!(
            f,
            "unknown fault {:?}: expected all, none, or a comma list of {}",
            self.unknown,
            names.join(",")
        )
    }
}

impl std::error::Error for ParseFaultsError {}

/// Which faults are on, and their rates and durations.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultConfig {
    /// The kinds switched on.
    pub kinds: BTreeSet<FaultKind>,
    /// How often the schedule draws new faults.
    pub tick: Duration,
    /// Resets per node per second.
    pub reset_rate: f64,
    /// Crashes per node per second.
    pub crash_rate: f64,
    /// Slow-application spells per node per second.
    pub slow_rate: f64,
    /// Refusing-listener spells per node per second.
    pub refuse_rate: f64,
    /// Black-holing-listener spells per node per second.
    pub blackhole_rate: f64,
    /// Partitions per second (one at a time).
    pub partition_rate: f64,
    /// Clock jumps per second.
    pub clock_rate: f64,
    /// How long a crashed node, a slow application, a refusing or black-holing listener or
    /// a partition lasts: uniform in this range.
    pub spell: (Duration, Duration),
    /// How far the clock jumps: uniform in this range.
    pub clock_jump: (Duration, Duration),
}

impl FaultConfig {
    /// No faults.
    pub fn none() -> Self {
        FaultConfig {
            kinds: BTreeSet::new(),
            tick: Duration::from_secs(1),
            reset_rate: 0.02,
            crash_rate: 0.005,
            slow_rate: 0.005,
            refuse_rate: 0.005,
            blackhole_rate: 0.005,
            partition_rate: 0.05,
            clock_rate: 0.02,
            spell: (Duration::from_secs(1), Duration::from_secs(6)),
            clock_jump: (Duration::from_secs(1), Duration::from_secs(20)),
        }
    }

    /// Every fault kind.
    pub fn all() -> Self {
        FaultConfig {
            kinds: FaultKind::ALL.into_iter().collect(),
            ..FaultConfig::none()
        }
    }

    /// Whether `kind` is on.
    pub fn has(&self, kind: FaultKind) -> bool {
        self.kinds.contains(&kind)
    }

    /// Sets the link model these faults ask for on `config` (latency, bandwidth).
    pub fn apply(&self, config: &mut SimConfig) {
        if self.has(FaultKind::Latency) {
            config.latency = (Duration::from_millis(1), Duration::from_millis(100));
            config.heavy_tail = Some(HeavyTail {
                probability: 0.01,
                max: Duration::from_secs(2),
            });
        }
        if self.has(FaultKind::Bandwidth) {
            config.bandwidth = Some((100_000, 10_000_000));
        }
    }
}

impl FromStr for FaultConfig {
    type Err = ParseFaultsError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let spec = spec.trim();
        match spec {
            "all" => return Ok(FaultConfig::all()),
            "none" | "" => return Ok(FaultConfig::none()),
            _ => {}
        }
        let mut config = FaultConfig::none();
        for word in spec.split(',').map(str::trim) {
            let kind = FaultKind::ALL
                .into_iter()
                .find(|kind| kind.name() == word)
                .ok_or_else(|| ParseFaultsError {
                    unknown: word.to_string(),
                })?;
            config.kinds.insert(kind);
        }
        Ok(config)
    }
}

/// The spec string: `none`, `all`, or the kinds in spec order.
impl fmt::Display for FaultConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kinds.is_empty() {
            return f.write_str("none");
        }
        if self.kinds.len() == FaultKind::ALL.len() {
            return f.write_str("all");
        }
        let names: Vec<&str> = self.kinds.iter().map(|kind| kind.name()).collect();
        f.write_str(&names.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_round_trip() {
        for spec in ["all", "none", "reset,crash", "partition,blackhole,clock"] {
            let config: FaultConfig = spec.parse().unwrap();
            assert_eq!(config.to_string(), spec);
        }
        let config: FaultConfig = "crash, reset".parse().unwrap();
        assert_eq!(config.to_string(), "reset,crash");
        assert_eq!(
            "reset,bogus".parse::<FaultConfig>(),
            Err(ParseFaultsError {
                unknown: "bogus".into()
            })
        );
    }
}
