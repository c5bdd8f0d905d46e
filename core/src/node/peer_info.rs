//! What a node knows about one connected peer.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::net::SocketAddr;
use core::time::Duration;

use crate::connection::ConnectionStats;
use crate::identity::PeerId;
use crate::mux::ChannelStats;
use crate::node_info::NodeInfo;
use crate::peer_set::Direction;

/// A connected peer: addresses, direction, flags, counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    /// Who.
    pub peer: PeerId,
    /// The remote socket address of the connection.
    pub remote_addr: SocketAddr,
    /// The address it says it listens on, if any.
    pub listen_addr: Option<SocketAddr>,
    /// Which side dialed.
    pub direction: Direction,
    /// Redialed forever, exempt from the outbound cap.
    pub persistent: bool,
    /// Admitted above the inbound cap.
    pub trusted: bool,
    /// Never shared with other peers.
    pub private: bool,
    /// What it said about itself.
    pub info: Box<NodeInfo>,
    /// Connection counters.
    pub stats: ConnectionStats,
    /// Smoothed round-trip time.
    pub rtt: Option<Duration>,
    /// Per-channel counters.
    pub channels: Vec<ChannelStats>,
}
