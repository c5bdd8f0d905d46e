//! Operating a node: Prometheus metrics ([`Metrics`]), JSON snapshots ([`Status`],
//! [`NetInfo`]) and the HTTP server that exposes them ([`OpsServer`]: `/metrics`,
//! `/status`, `/net_info`).
//!
//! The core keeps no metrics of its own: it has events and getters. [`Ops`] turns them
//! into the state the server reads, from the side that drives the node — each event the
//! application reads goes through [`Ops::observe`], and about once a second
//! [`Ops::refresh`] samples the node on its own thread. The server only reads that state,
//! so a scrape costs the node nothing.
//!
//! ```no_run
//! use std::sync::mpsc::RecvTimeoutError;
//! use std::time::{Duration, Instant};
//! use switchboard::node::NodeConfig;
//! use switchboard_mio::ops::Ops;
//! use switchboard_mio::{DriverConfig, Runtime};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = NodeConfig::new("mainnet", "my-app/1.0");
//! let handle = Runtime::spawn(DriverConfig::with_new_key(config, vec!["0.0.0.0:26656".parse()?])?)?;
//! let ops = Ops::new(handle.local_addrs());
//! ops.refresh(&handle);
//! let _server = ops.serve("127.0.0.1:26660".parse()?)?; // stops when dropped
//! let mut next_refresh = Instant::now() + Duration::from_secs(1);
//! loop {
//!     match handle.events().recv_timeout(next_refresh.saturating_duration_since(Instant::now())) {
//!         Ok(event) => {
//!             ops.observe(&event);
//!             // … the application's own handling of `event` …
//!         }
//!         Err(RecvTimeoutError::Timeout) => {}
//!         Err(RecvTimeoutError::Disconnected) => break, // the node stopped
//!     }
//!     if Instant::now() >= next_refresh {
//!         ops.refresh(&handle);
//!         next_refresh += Duration::from_secs(1);
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! With a [`Driver`](crate::Driver) in your own loop it is the same: `ops.observe(&event)`
//! after each `poll_event`, `ops.refresh(&mut driver)` on a one-second timer of yours.

mod metrics;
mod server;
mod status;

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use switchboard::discovery::Discovery;
use switchboard::node::NodeEvent;
use switchboard::peer_set::Direction;

pub use metrics::{CONTENT_TYPE, Metrics};
pub use server::OpsServer;
pub use status::{ChannelStatus, NetInfo, PeerCounts, PeerStatus, Status};

use crate::node_api::NodeApi;

/// What the ops server shows: the metrics and the last snapshots (`None` until the first
/// refresh).
#[derive(Debug, Default)]
pub struct OpsState {
    /// The metrics, fed by events and samples.
    pub metrics: Metrics,
    /// The last `/status`.
    pub status: Option<Status>,
    /// The last `/net_info`.
    pub net_info: Option<NetInfo>,
}

/// The glue between a running node and its [`OpsServer`]: holds the shared [`OpsState`]
/// and keeps it current.
#[derive(Debug)]
pub struct Ops {
    state: Arc<Mutex<OpsState>>,
    listen_addrs: Vec<SocketAddr>,
}

impl Ops {
    /// Empty state for a node listening on `listen_addrs` (its adapter's `local_addrs()`,
    /// which the node itself does not know).
    pub fn new(listen_addrs: &[SocketAddr]) -> Ops {
        Ops {
            state: Arc::default(),
            listen_addrs: listen_addrs.to_vec(),
        }
    }

    /// Counts `event` ([`Metrics::observe`]): call it with every event the application
    /// reads from the node.
    pub fn observe(&self, event: &NodeEvent) {
        lock(&self.state).metrics.observe(event);
    }

    /// Samples the node where it runs ([`Metrics::sample`]) and takes new [`Status`] and
    /// [`NetInfo`] snapshots; `false` when the node is gone. The address book's gauges come
    /// from the [`Discovery`] protocol, when one is registered. One round trip:
    /// call it about once a second, not per event.
    pub fn refresh(&self, node: impl NodeApi) -> bool {
        let state = Arc::clone(&self.state);
        let listen_addrs = self.listen_addrs.clone();
        node.inspect(move |node, discovery, now| {
            let status = Status::of(node, &listen_addrs);
            let net_info = NetInfo::of(node, now);
            let mut state = lock(&state);
            state
                .metrics
                .sample(node, discovery.map(Discovery::addr_book), now);
            state.status = Some(status);
            state.net_info = Some(net_info);
        })
        .is_some()
    }

    /// The shared state, for a server of your own or a look in tests.
    pub fn state(&self) -> &Arc<Mutex<OpsState>> {
        &self.state
    }

    /// Starts an [`OpsServer`] on `addr` showing this state.
    pub fn serve(&self, addr: SocketAddr) -> io::Result<OpsServer> {
        OpsServer::start(addr, Arc::clone(&self.state))
    }
}

/// Locks the state, poisoned or not: a panic elsewhere leaves counters and snapshots
/// readable, and the next refresh replaces the snapshots whole.
fn lock(state: &Mutex<OpsState>) -> MutexGuard<'_, OpsState> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The lowercase name of a direction, as the metrics' labels and `/net_info` spell it.
fn direction_name(direction: Direction) -> &'static str {
    match direction {
        Direction::Inbound => "inbound",
        Direction::Outbound => "outbound",
    }
}
