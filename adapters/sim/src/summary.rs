//! What a scenario run reports: the `switchboard-sim --json` object (keys
//! stable: other tools read them) and a human-readable form.

use std::fmt;
use std::time::Duration;

use crate::invariants::{Counters, Violation};
use crate::latency::LatencyPercentiles;
use crate::scenario::ScenarioConfig;
use crate::sim::Sim;
use crate::timeline::Timeline;

/// The outcome of one scenario run.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// Nodes in the network.
    pub nodes: usize,
    /// The seed.
    pub seed: u64,
    /// The `--faults` spec.
    pub faults: String,
    /// Simulated seconds run.
    pub sim_seconds: f64,
    /// Wall-clock seconds the run took.
    pub wall_seconds: f64,
    /// Inputs handed to nodes (see [`crate::sim`]).
    pub events: u64,
    /// `events / wall_seconds`.
    pub events_per_s: f64,
    /// Connections established, each a completed handshake: the X25519 work of the run.
    pub connections: u64,
    /// The trace hash.
    pub trace_hash: u64,
    /// Simulated seconds until every live node had its outbound slots full; `None` if
    /// never.
    pub outbound_full_s: Option<f64>,
    /// Connected components of the peer graph at the end.
    pub components: usize,
    /// Bytes the links delivered (every read's length).
    pub bytes_delivered: u64,
    /// The traffic's delivery latency (send to the receiving application, simulated time);
    /// `None` if nothing was delivered.
    pub latency: Option<LatencyPercentiles>,
    /// The checker's tallies (all zero without the checker).
    pub counters: Counters,
    /// The violations the checker kept.
    pub violations: Vec<Violation>,
    /// The command line that reproduces the run.
    pub command_line: String,
    /// What the run looked like over time, if [`ScenarioConfig::record_timeline`] asked
    /// for it (not part of the JSON object: [`crate::report`] draws it).
    pub timeline: Option<Timeline>,
}

impl Summary {
    pub(crate) fn new(
        config: &ScenarioConfig,
        sim: &Sim,
        components: usize,
        wall: Duration,
    ) -> Self {
        let wall_seconds = wall.as_secs_f64();
        let events = sim.inputs();
        let counters = sim
            .checker()
            .map(|c| c.counters().clone())
            .unwrap_or_default();
        Summary {
            nodes: config.nodes,
            seed: config.seed,
            faults: config.faults.to_string(),
            sim_seconds: sim.elapsed().as_secs_f64(),
            wall_seconds,
            events,
            events_per_s: if wall_seconds > 0.0 {
                events as f64 / wall_seconds
            } else {
                0.0
            },
            connections: sim.connections_established(),
            trace_hash: sim.trace_hash(),
            outbound_full_s: sim.outbound_full_after().map(|d| d.as_secs_f64()),
            components,
            bytes_delivered: sim.bytes_delivered(),
            latency: sim.delivery_latency().percentiles(),
            counters,
            violations: sim.violations().to_vec(),
            command_line: config.command_line(),
            timeline: None,
        }
    }

    /// Whether every invariant held.
    pub fn passed(&self) -> bool {
        self.counters.violations == 0
    }

    /// Bytes the links delivered per simulated second.
    pub fn bytes_per_sim_s(&self) -> f64 {
        if self.sim_seconds > 0.0 {
            self.bytes_delivered as f64 / self.sim_seconds
        } else {
            0.0
        }
    }

    /// The one-line JSON object of stable keys, then the figures the binary also
    /// print beyond its stable keys: bytes delivered (in all and per simulated second) and
    /// the delivery latency's percentiles in simulated milliseconds (`null` without
    /// deliveries).
    pub fn to_json(&self) -> String {
        let c = &self.counters;
        let outbound_full = self
            .outbound_full_s
            .map_or_else(|| "null".to_string(), |s| format!("{s:.3}"));
        let latency_ms = |pick: fn(&LatencyPercentiles) -> Duration| {
            self.latency.as_ref().map_or_else(
                || "null".to_string(),
                |latency| format!("{:.3}", pick(latency).as_secs_f64() * 1e3),
            )
        };
        format!(
            "{{\"nodes\":{},\"seed\":{},\"faults\":\"{}\",\"sim_seconds\":{:.3},\
             \"wall_seconds\":{:.3},\"events\":{},\"events_per_s\":{:.0},\
             \"connections\":{},\"trace_hash\":\"{:016x}\",\"outbound_full_s\":{},\"components\":{},\
             \"messages_sent\":{},\"messages_delivered\":{},\"messages_confirmed\":{},\
             \"messages_returned_unsent\":{},\"messages_returned_unconfirmed\":{},\
             \"messages_lost\":{},\"duplicates\":{},\"reordered\":{},\"corrupted\":{},\"liveness_violations\":{},\
             \"limit_violations\":{},\"max_conn_buffered_bytes\":{},\
             \"bytes_delivered\":{},\"bytes_per_sim_s\":{:.0},\"latency_p50_ms\":{},\
             \"latency_p90_ms\":{},\"latency_p99_ms\":{},\"latency_max_ms\":{}}}",
            self.nodes,
            self.seed,
            self.faults,
            self.sim_seconds,
            self.wall_seconds,
            self.events,
            self.events_per_s,
            self.connections,
            self.trace_hash,
            outbound_full,
            self.components,
            c.sent,
            c.delivered,
            c.confirmed,
            c.returned_unsent,
            c.returned_unconfirmed,
            c.lost,
            c.duplicates,
            c.reordered,
            c.corrupted,
            c.liveness_violations,
            c.limit_violations,
            c.max_conn_buffered_bytes,
            self.bytes_delivered,
            self.bytes_per_sim_s(),
            latency_ms(|l| l.p50),
            latency_ms(|l| l.p90),
            latency_ms(|l| l.p99),
            latency_ms(|l| l.max),
        )
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.counters;
        writeln!(
            f,
            "{} nodes, seed {}, faults {}: {:.1} simulated s in {:.2} wall s",
            self.nodes, self.seed, self.faults, self.sim_seconds, self.wall_seconds
        )?;
        writeln!(
            f,
            "  events      {} ({:.0}/s), trace hash {:016x}",
            self.events, self.events_per_s, self.trace_hash
        )?;
        writeln!(f, "  connections {} established", self.connections)?;
        match self.outbound_full_s {
            Some(s) => writeln!(f, "  outbound slots all full after {s:.3} simulated s")?,
            None => writeln!(f, "  outbound slots never all full")?,
        }
        writeln!(f, "  components  {}", self.components)?;
        writeln!(
            f,
            "  bytes       {:.1} MB delivered ({:.1} kB per simulated s)",
            self.bytes_delivered as f64 / 1e6,
            self.bytes_per_sim_s() / 1e3
        )?;
        match &self.latency {
            Some(l) => writeln!(
                f,
                "  latency     p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms \
                 (send to the receiving application, {} deliveries)",
                l.p50.as_secs_f64() * 1e3,
                l.p90.as_secs_f64() * 1e3,
                l.p99.as_secs_f64() * 1e3,
                l.max.as_secs_f64() * 1e3,
                l.deliveries
            )?,
            None => writeln!(f, "  latency     no message delivered")?,
        }
        writeln!(
            f,
            "  messages    sent {}, delivered {}, confirmed {}, returned unsent {}, \
             returned unconfirmed {}, pending at the end {}",
            c.sent, c.delivered, c.confirmed, c.returned_unsent, c.returned_unconfirmed, c.pending
        )?;
        writeln!(
            f,
            "  invariants  lost {}, duplicates {}, reordered {}, corrupted {}, \
             liveness {}, limit violations {}, max buffered per connection {} B",
            c.lost,
            c.duplicates,
            c.reordered,
            c.corrupted,
            c.liveness_violations,
            c.limit_violations,
            c.max_conn_buffered_bytes
        )?;
        if self.passed() {
            write!(f, "  all invariants held")
        } else {
            writeln!(f, "  {} VIOLATIONS, first ones:", c.violations)?;
            for violation in self.violations.iter().take(10) {
                writeln!(f, "    {violation}")?;
            }
            write!(f, "  reproduce: {}", self.command_line)
        }
    }
}
