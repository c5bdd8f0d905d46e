//! How discovery is configured.

use alloc::vec::Vec;
use core::time::Duration;

use crate::addr_book::AddrBookConfig;
use crate::channel::{ChannelConfig, message_cost};
use crate::net_address::NetAddress;
use crate::pex::{MAX_MESSAGE_LEN, PEX_CHANNEL, PexConfig};

/// How a node finds peers ([`Discovery`](super::Discovery)). [`DiscoveryConfig::default`]
/// has no seeds.
#[derive(Clone, Debug)]
pub struct DiscoveryConfig {
    /// Seed nodes (bootnodes), dialed while the book holds fewer than
    /// [`DiscoveryConfig::seed_threshold`] addresses or no outbound peer is connected.
    pub seeds: Vec<NetAddress>,
    /// See `seeds`. Default 16.
    pub seed_threshold: usize,
    /// Answer `GetAddrs` and disconnect; do not fill outbound slots. Default off.
    pub seed_mode: bool,
    /// In seed mode, a peer that has not asked for addresses within this is disconnected.
    /// Default 10 s.
    pub seed_peer_lifetime: Duration,
    /// How often outbound slots are topped up. Default 5 s.
    pub interval: Duration,
    /// With every outbound slot full, how often to dial one more address from the book as a
    /// *feeler* (Bitcoin Core's feeler connections): a probe, whose handshake proves the
    /// address alive and which is closed at once, never admitted, holding no slot, never
    /// reported. The far end learns our address from it — how nodes whose books know only
    /// each other find a network whose slots are full. Checked at each `interval`; `None`
    /// turns feelers off. Default 2 minutes, as Bitcoin Core.
    pub feeler_interval: Option<Duration>,
    /// At most one outbound peer per address group (/16 IPv4, /32 IPv6), persistent peers
    /// aside: what keeps one network from holding several of our outbound slots. Turn it
    /// off only where every peer shares a group — a cluster on one host or one LAN.
    /// Default on.
    pub one_outbound_per_group: bool,
    /// PEX pacing.
    pub pex: PexConfig,
    /// The address book's bounds.
    pub addr_book: AddrBookConfig,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        DiscoveryConfig {
            seeds: Vec::new(),
            seed_threshold: 16,
            seed_mode: false,
            seed_peer_lifetime: Duration::from_secs(10),
            interval: Duration::from_secs(5),
            feeler_interval: Some(Duration::from_secs(120)),
            one_outbound_per_group: true,
            pex: PexConfig::default(),
            addr_book: AddrBookConfig::default(),
        }
    }
}

impl DiscoveryConfig {
    /// Discovery among nodes on one host or one LAN (a test cluster, a demo): the book keeps
    /// private and loopback addresses (`addr_book.routable_only` off), and outbound peers
    /// may share an address group (`one_outbound_per_group` off), since they all do. The
    /// node's own per-address limits still apply: on one host every peer comes from one IP,
    /// so raise `Limits::max_inbound_per_ip` and `max_inbound_per_subnet` too.
    pub fn local_network(seeds: Vec<NetAddress>) -> Self {
        let mut config = DiscoveryConfig {
            seeds,
            one_outbound_per_group: false,
            ..DiscoveryConfig::default()
        };
        config.addr_book.routable_only = false;
        config
    }
}

/// The PEX channel's limits: its largest message, and a window that holds four of them,
/// counted in cost units (length + 64) so that four really fit.
pub(super) fn pex_channel() -> ChannelConfig {
    let mut limits = ChannelConfig::new(PEX_CHANNEL);
    limits.max_message_size = u32::try_from(MAX_MESSAGE_LEN).unwrap_or(u32::MAX);
    limits.receive_window =
        u32::try_from(message_cost(MAX_MESSAGE_LEN).saturating_mul(4)).unwrap_or(u32::MAX);
    limits
}
