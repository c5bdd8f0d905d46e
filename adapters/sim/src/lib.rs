//! # switchboard-sim
//!
//! A deterministic simulation testing harness for switchboard [`Node`]s, in the spirit of
//! FoundationDB's simulator and TigerBeetle's VOPR: one seed reproduces any run exactly.
//!
//! - [`Sim`] is the network: a virtual clock, N nodes, TCP-like links that deliver each
//!   direction's bytes in order (per-link latency with an optional heavy tail, per-link
//!   bandwidth, reads cut at random points), and faults — refused and black-holed dials,
//!   resets, partitions that reset or black-hole, crashes and restarts with the same key,
//!   slow applications, clock jumps. It runs on one event queue, so its cost is per event
//!   (see [`sim`] for what an event is). Every input given to a node is folded into a trace
//!   hash that proves two runs equal. A node may carry the application's protocols:
//!   [`Sim::add_node_with_router`] puts a `Router` on it (rebuilt at every restart; any
//!   other layer: [`Sim::add_node_with_stack`]; discovery alone:
//!   [`Sim::add_node_with_discovery`]), and
//!   [`Sim::with_protocol`] reaches them — a protocol is tested under the same faults, and
//!   reproduced by the same seed, as the node.
//! - [`invariants`] checks the node's promises inside every simulation: no duplicate or
//!   reordered delivery, nothing silently lost, peer limits, buffered bytes per connection,
//!   reconnection after faults heal.
//! - [`scenario`] runs a whole network with seeded traffic and a seeded fault schedule
//!   ([`faults`]) and reports a [`summary::Summary`] — what the `switchboard-sim` binary
//!   prints, with the traffic's delivery latency percentiles ([`latency`]) — and, when
//!   asked, a [`timeline`] of the run that [`report`] draws as a self-contained HTML page.
//!
//! ```
//! use std::time::Duration;
//! use switchboard_sim::{Sim, SimConfig, test_node_config};
//!
//! let mut sim = Sim::new(SimConfig::with_seed(7));
//! let a = sim.add_node(test_node_config());
//! let b = sim.add_node(test_node_config());
//! let b_addr = sim.address(b);
//! let now = sim.now();
//! sim.node_mut(a).dial(now, b_addr).unwrap();
//! sim.run_for(Duration::from_secs(1));
//! assert_eq!(sim.node(a).peers().count(), 1);
//! ```
//!
//! [`Node`]: switchboard::node::Node

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod faults;
pub mod invariants;
pub mod latency;
mod link;
mod queue;
pub mod report;
pub mod scenario;
pub mod sim;
pub mod summary;
pub mod timeline;

use switchboard::ChannelConfig;
use switchboard::discovery::DiscoveryConfig;
use switchboard::node::NodeConfig;

pub use faults::{FaultConfig, FaultKind, ParseFaultsError};
pub use invariants::{Checker, CheckerFault, Counters, Tag, Violation, ViolationKind};
pub use latency::{LatencyHistogram, LatencyPercentiles};
pub use link::HeavyTail;
pub use report::ReportError;
pub use scenario::{Scenario, ScenarioConfig};
pub use sim::{
    Crashed, PartitionMode, RestoreHook, SaveHook, Sim, SimConfig, SimError, SimNode, SimRouter,
};
pub use summary::Summary;
pub use timeline::{Timeline, TimelineSample};

/// The port every simulated node listens on.
pub const PORT: u16 = 26656;

/// A node's index in the simulation.
pub type NodeIndex = usize;

/// A node config for tests: network `sim`, channel 1 (`chat/1`). It runs no discovery: the
/// node dials only what the test asks for (a discovering node: [`Sim::add_node_with_discovery`]
/// with [`test_discovery_config`]).
pub fn test_node_config() -> NodeConfig {
    let mut config = NodeConfig::new("sim", "switchboard-sim");
    config.add_channel("chat", 1, ChannelConfig::new(1));
    config
}

/// A discovery config for the simulated network: the default, no seeds, its address book
/// keeping private addresses (`routable_only` off) — the simulated network is a local one,
/// nodes sitting at `10.x.y.1` ([`Sim::ip_for`]); a test placing nodes at public addresses
/// may turn it back on.
pub fn test_discovery_config() -> DiscoveryConfig {
    let mut config = DiscoveryConfig::default();
    config.addr_book.routable_only = false;
    config
}
