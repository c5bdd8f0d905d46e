//! What a node is configured with.

use alloc::string::String;
use alloc::vec::Vec;
use core::net::SocketAddr;
use core::time::Duration;

use crate::ban_list::DEFAULT_MAX_BANS;
use crate::channel::ChannelConfig;
use crate::connection::ConnectionConfig;
use crate::dial_queue::DialConfig;
use crate::identity::PeerId;
use crate::net_address::NetAddress;
use crate::node_info::ChannelInfo;
use crate::peer_set::{IpNet, Limits};
use crate::router::ProtocolSpec;

use super::EvictionConfig;

/// A node's configuration. [`NodeConfig::new`] gives the defaults.
///
/// ```
/// use switchboard::node::NodeConfig;
/// use switchboard::ChannelConfig;
///
/// let mut config = NodeConfig::new("mainnet", "my-app/1.0");
/// config.add_channel("blocks", 1, ChannelConfig::new(1));
/// config.limits.max_outbound = 8;
/// assert_eq!(config.limits.max_inbound, 40);
/// ```
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// Network id: nodes of other networks are refused.
    pub network: String,
    /// Software name and version, told to peers.
    pub agent: String,
    /// Where this node accepts connections, told to peers.
    pub listen_addr: Option<SocketAddr>,
    /// Channels offered (advertised in the `NodeInfo`).
    pub channels: Vec<ChannelInfo>,
    /// Per-channel limits and connection timers.
    pub connection: ConnectionConfig,
    /// Peer limits.
    pub limits: Limits,
    /// Networks connections may come from or go to; empty allows all.
    pub allowed_networks: Vec<IpNet>,
    /// Dial pacing and backoff.
    pub dial: DialConfig,
    /// Peers kept connected: redialed forever with backoff, exempt from the outbound cap.
    pub persistent_peers: Vec<NetAddress>,
    /// Peers never shared with other peers.
    pub private_peers: Vec<PeerId>,
    /// Peers admitted above the inbound cap, and never evicted.
    pub trusted_peers: Vec<PeerId>,
    /// Whether and how a new inbound peer may evict an existing one when the inbound slots
    /// are full. On by default.
    pub eviction: EvictionConfig,
    /// How long a peer may keep refusing broadcasts (its queue full) before it is reported
    /// as slow and disconnected. Default 10 s.
    pub slow_peer_timeout: Duration,
    /// How long a peer that broke the protocol is banned. Default 10 min.
    pub violation_ban: Duration,
    /// Whether a breach bans the peer's IP address too, for `violation_ban`: a new key
    /// costs an attacker nothing, an address does. Honest users behind the same NAT as the
    /// offender are refused meanwhile; a node serving many users behind one address turns
    /// it off, as does a cluster sharing one host's address. Default on (Bitcoin Core
    /// discourages a misbehaving peer's address).
    pub violation_ban_ip: bool,
    /// Bans held at most, peers and IPs together ([`crate::ban_list`]): a full list drops
    /// the ban with the shortest time left. Default [`DEFAULT_MAX_BANS`].
    pub max_bans: usize,
}

impl NodeConfig {
    /// A node of `network` running `agent`, with no channels yet and default policies.
    pub fn new(network: impl Into<String>, agent: impl Into<String>) -> Self {
        NodeConfig {
            network: network.into(),
            agent: agent.into(),
            listen_addr: None,
            channels: Vec::new(),
            connection: ConnectionConfig::new(Vec::new()),
            limits: Limits::default(),
            allowed_networks: Vec::new(),
            dial: DialConfig::default(),
            persistent_peers: Vec::new(),
            private_peers: Vec::new(),
            trusted_peers: Vec::new(),
            eviction: EvictionConfig::default(),
            slow_peer_timeout: Duration::from_secs(10),
            violation_ban: Duration::from_secs(600),
            violation_ban_ip: true,
            max_bans: DEFAULT_MAX_BANS,
        }
    }

    /// Offers `spec`'s channels once per version it speaks, so that peers negotiate the
    /// highest version both speak; what is offered already is not offered twice. For an
    /// application without a router: [`Router::register`](crate::router::Router::register)
    /// offers its protocols itself.
    pub fn add_protocol(&mut self, spec: &ProtocolSpec) {
        for offer in spec.offers() {
            if !self.channels.contains(&offer) {
                self.channels.push(offer);
            }
        }
        for config in &spec.channels {
            if !self.connection.channels.iter().any(|c| c.id == config.id) {
                self.connection.channels.push(*config);
            }
        }
    }

    /// Offers `channel` (its id and limits) as version `version` of `protocol`: a channel
    /// opens on a connection when both ends offer it under the same protocol
    /// ([`crate::negotiate`]).
    pub fn add_channel(
        &mut self,
        protocol: impl Into<String>,
        version: u16,
        channel: ChannelConfig,
    ) {
        self.channels.push(ChannelInfo {
            id: channel.id,
            protocol: protocol.into(),
            version,
        });
        self.connection.channels.push(channel);
    }
}
