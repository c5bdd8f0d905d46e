//! The config file, `config.toml` in the node's home directory: CometBFT's key names where
//! the concept is the same, each mapped onto the core's configuration. A key left out keeps
//! the core's default; `switchboard init` writes every key with that default, so the file
//! shows what the node runs with.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::ValueEnum;
use serde::{Deserialize, Deserializer};
use switchboard::discovery::DiscoveryConfig;
use switchboard::node::NodeConfig;
use switchboard::peer_set::IpNet;
use switchboard::{ChannelConfig, NetAddress, PeerId, RateLimit};

use crate::cli::{LogFormat, NodeArgs, parse_listen_addr};
use crate::logging::DEFAULT_LOG_LEVEL;

/// The config file's name in the home directory.
pub const CONFIG_FILE: &str = "config.toml";

/// The channel every `switchboard node` offers, so two of them have one in common.
const CHANNEL: u16 = 1;

/// Whether a node runs discovery when the file does not say (`pex`).
const DEFAULT_PEX: bool = true;

/// The network id when the file names none.
const DEFAULT_NETWORK: &str = "switchboard";

/// Where a node listens when neither the file nor `--listen` says: CometBFT's P2P port.
const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 26656);

/// What the node tells its peers it runs.
const AGENT: &str = concat!("switchboard/", env!("CARGO_PKG_VERSION"));

/// The file's top level.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    network: Option<String>,
    pub log_level: Option<String>,
    pub log_format: Option<LogFormat>,
    #[serde(default, deserialize_with = "optional_addr")]
    metrics_laddr: Option<SocketAddr>,
    #[serde(default)]
    p2p: P2p,
}

/// The `[p2p]` table, CometBFT's name for it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct P2p {
    #[serde(default, deserialize_with = "listen_addrs")]
    laddr: Option<Vec<SocketAddr>>,
    #[serde(default, deserialize_with = "optional_addr")]
    external_address: Option<SocketAddr>,
    #[serde(default, deserialize_with = "peer_addrs")]
    seeds: Vec<NetAddress>,
    #[serde(default, deserialize_with = "peer_addrs")]
    persistent_peers: Vec<NetAddress>,
    #[serde(default, deserialize_with = "peer_ids")]
    private_peer_ids: Vec<PeerId>,
    #[serde(default, deserialize_with = "peer_ids")]
    unconditional_peer_ids: Vec<PeerId>,
    max_num_inbound_peers: Option<usize>,
    max_num_outbound_peers: Option<usize>,
    max_pending_handshakes: Option<usize>,
    max_pending_per_subnet: Option<usize>,
    inbound_eviction: Option<bool>,
    max_inbound_per_ip: Option<usize>,
    max_inbound_per_subnet: Option<usize>,
    max_inbound_queries: Option<usize>,
    max_outbound_queries: Option<usize>,
    #[serde(default, with = "humantime_serde")]
    query_idle_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "networks")]
    allowed_networks: Vec<IpNet>,
    seed_mode: Option<bool>,
    pex: Option<bool>,
    addr_book_strict: Option<bool>,
    #[serde(default, with = "humantime_serde")]
    violation_ban: Option<Duration>,
    violation_ban_ip: Option<bool>,
    max_bans: Option<usize>,
    #[serde(default, with = "humantime_serde")]
    handshake_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    write_stall_timeout: Option<Duration>,
    free_frames_per_second: Option<u32>,
    #[serde(default, with = "humantime_serde")]
    dial_timeout: Option<Duration>,
    send_rate: Option<u64>,
    recv_rate: Option<u64>,
}

/// Why the config file could not be used.
#[derive(Debug)]
pub enum ConfigError {
    /// Reading it failed.
    Read { path: PathBuf, source: io::Error },
    /// An unknown key, a bad value, or bad TOML; the error gives the line and column.
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { path, source } => write!(f, "{}: {source}", path.display()),
            ConfigError::Parse { path, source } => write!(f, "{}: {source}", path.display()),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Everything `switchboard node` runs with: the file and the flags merged.
#[derive(Debug)]
pub struct NodeOptions {
    /// The home directory: key, config, address book.
    pub home: PathBuf,
    pub node: NodeConfig,
    /// The `Discovery` protocol's configuration (seeds, seed mode, the book's bounds).
    pub discovery: DiscoveryConfig,
    /// Whether `Discovery` runs (`pex`): without it the node dials only its persistent
    /// peers, and keeps no address book.
    pub pex: bool,
    pub listen: Vec<SocketAddr>,
    /// Where metrics and the JSON status are served (`--metrics` / `metrics_laddr`);
    /// `None`: not served.
    pub metrics: Option<SocketAddr>,
}

impl ConfigFile {
    /// Reads `home`'s config file; `None` when there is none.
    pub fn load(home: &Path) -> Result<Option<ConfigFile>, ConfigError> {
        let path = home.join(CONFIG_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(source) if source.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(ConfigError::Read { path, source }),
        };
        ConfigFile::parse(&text)
            .map(Some)
            .map_err(|source| ConfigError::Parse {
                path,
                source: Box::new(source),
            })
    }

    fn parse(text: &str) -> Result<ConfigFile, toml::de::Error> {
        toml::from_str(text)
    }

    /// The node's configuration: the core's defaults, then the file's keys, then `args`.
    pub fn node_options(self, args: &NodeArgs) -> NodeOptions {
        let ConfigFile {
            network,
            metrics_laddr,
            p2p,
            ..
        } = self;
        let network = args.network.clone().or(network);
        let mut node = NodeConfig::new(network.as_deref().unwrap_or(DEFAULT_NETWORK), AGENT);
        let mut channel = ChannelConfig::new(CHANNEL);
        channel.send_rate = p2p
            .send_rate
            .filter(|&rate| rate > 0)
            .map(RateLimit::per_second);
        channel.receive_rate = p2p
            .recv_rate
            .filter(|&rate| rate > 0)
            .map(RateLimit::per_second);
        node.add_channel("switchboard", 1, channel);
        node.listen_addr = args.external_address.or(p2p.external_address);
        let mut discovery = DiscoveryConfig {
            seeds: or_file(&args.seed, p2p.seeds),
            ..DiscoveryConfig::default()
        };
        node.persistent_peers = or_file(&args.persistent_peer, p2p.persistent_peers);
        node.private_peers = p2p.private_peer_ids;
        node.trusted_peers = p2p.unconditional_peer_ids;
        node.allowed_networks = p2p.allowed_networks;
        let limits = &mut node.limits;
        let set = |value: Option<usize>, field: &mut usize| *field = value.unwrap_or(*field);
        set(p2p.max_num_inbound_peers, &mut limits.max_inbound);
        set(p2p.max_num_outbound_peers, &mut limits.max_outbound);
        set(
            p2p.max_pending_handshakes,
            &mut limits.max_pending_handshakes,
        );
        set(
            p2p.max_pending_per_subnet,
            &mut limits.max_pending_per_subnet,
        );
        set(p2p.max_inbound_per_ip, &mut limits.max_inbound_per_ip);
        set(
            p2p.max_inbound_per_subnet,
            &mut limits.max_inbound_per_subnet,
        );
        set(p2p.max_inbound_queries, &mut limits.max_inbound_queries);
        set(p2p.max_outbound_queries, &mut limits.max_outbound_queries);
        limits.query_idle_timeout = p2p.query_idle_timeout.unwrap_or(limits.query_idle_timeout);
        node.eviction.enabled = p2p.inbound_eviction.unwrap_or(node.eviction.enabled);
        discovery.seed_mode = p2p.seed_mode.unwrap_or(discovery.seed_mode);
        let pex = p2p.pex.unwrap_or(DEFAULT_PEX);
        let book = &mut discovery.addr_book;
        book.routable_only = p2p.addr_book_strict.unwrap_or(book.routable_only);
        node.violation_ban = p2p.violation_ban.unwrap_or(node.violation_ban);
        node.violation_ban_ip = p2p.violation_ban_ip.unwrap_or(node.violation_ban_ip);
        node.max_bans = p2p.max_bans.unwrap_or(node.max_bans);
        let connection = &mut node.connection;
        connection.handshake_timeout = p2p
            .handshake_timeout
            .unwrap_or(connection.handshake_timeout);
        connection.write_stall_timeout = p2p
            .write_stall_timeout
            .unwrap_or(connection.write_stall_timeout);
        connection.free_frames_per_second = p2p
            .free_frames_per_second
            .unwrap_or(connection.free_frames_per_second);
        node.dial.dial_timeout = p2p.dial_timeout.unwrap_or(node.dial.dial_timeout);
        let listen = if args.listen.is_empty() {
            p2p.laddr.unwrap_or_else(|| vec![DEFAULT_LISTEN])
        } else {
            args.listen.clone()
        };
        NodeOptions {
            home: args.home.dir(),
            node,
            discovery,
            pex,
            listen,
            metrics: args.metrics.or(metrics_laddr),
        }
    }
}

/// The flag's list when it was given, else the file's.
fn or_file<T: Clone>(flag: &[T], file: Vec<T>) -> Vec<T> {
    if flag.is_empty() { file } else { flag.to_vec() }
}

/// The file `switchboard init` writes: every key, commented, with the value a node runs
/// with when the key is left out.
pub fn template() -> String {
    let defaults = NodeConfig::new(DEFAULT_NETWORK, AGENT);
    let discovery = DiscoveryConfig::default();
    let limits = defaults.limits;
    let duration = |value| humantime::format_duration(value).to_string();
    let log_format = LogFormat::default()
        .to_possible_value()
        .map(|value| value.get_name().to_string())
        .unwrap_or_default();
    format!(
        r#"# switchboard node configuration, written by `switchboard init`.
# Flags of `switchboard node` override these keys (see `switchboard node --help`).
# Addresses are IP:PORT (IPv6 as [::1]:26656), peers ID@IP:PORT, durations "10s", "500ms".

# Network id: peers of another network are refused in the handshake.
network = "{DEFAULT_NETWORK}"

# Log filter: a level (error, warn, info, debug, trace) or RUST_LOG-style directives such
# as "info,switchboard_mio=debug". RUST_LOG and --log-level override it.
log_level = "{DEFAULT_LOG_LEVEL}"
# "text" or "json" (one object per line).
log_format = "{log_format}"

# Where Prometheus metrics (/metrics) and the JSON status (/status, /net_info) are served,
# as IP:PORT; "" serves none. CometBFT serves its metrics on port 26660.
metrics_laddr = ""

[p2p]
# Addresses to listen on; 0.0.0.0 and [::] listen on every interface.
laddr = ["{DEFAULT_LISTEN}"]
# The address peers should dial, told to them in the handshake; "" tells the first
# listener's address.
external_address = ""
# Nodes dialed while the address book is small, to learn addresses from.
seeds = []
# Peers kept connected: redialed with backoff whenever they drop, above the outbound cap.
persistent_peers = []
# Peer ids never passed on to other peers by peer exchange.
private_peer_ids = []
# Peer ids admitted even when the inbound slots are full.
unconditional_peer_ids = []
# Connected peers, each way.
max_num_inbound_peers = {}
max_num_outbound_peers = {}
# Connections in the handshake at once, both ways; and how many of them one subnet, a /24
# (IPv4) or /48 (IPv6), may hold. When they are full, a newcomer takes the place of the
# oldest handshake of the subnet holding the most.
max_pending_handshakes = {}
max_pending_per_subnet = {}
# With the inbound slots full, a new inbound peer evicts one from the subnet holding the
# most (never an unconditional or persistent peer); false refuses it instead.
inbound_eviction = {}
# Inbound connections from one IP address, and from one /24 (IPv4) or /48 (IPv6).
max_inbound_per_ip = {}
max_inbound_per_subnet = {}
# Query connections: short-lived connections outside the peer slots that carry one
# protocol's requests to a node we are not peered with. At most this many open to us from
# others (beyond, refused) and opened by us, in flight or open; each is closed once idle
# for query_idle_timeout.
max_inbound_queries = {}
max_outbound_queries = {}
query_idle_timeout = "{}"
# Networks peers may connect from or be dialed at, as ["10.0.0.0/8", "fd00::/8"]; []
# allows all.
allowed_networks = []
# A seed node: answers address requests, then disconnects; keeps no peers.
seed_mode = {}
# Address book, peer exchange and seeds; false dials only persistent_peers.
pex = {}
# Keep only publicly routable addresses in the address book: loopback and private
# addresses learned from peers are dropped, never dialed. false on a LAN or one host.
addr_book_strict = {}
# How long a peer that breaks the protocol is banned.
violation_ban = "{}"
# Whether such a peer's IP address is banned as well (false where honest peers share one
# address, behind a NAT or on one host).
violation_ban_ip = {}
# Bans held at most (peers and addresses); beyond, the one with the least time left goes.
max_bans = {}
# How long the encrypted handshake may take.
handshake_timeout = "{}"
# A peer whose unread output stays blocked this long is disconnected, whatever it sends.
write_stall_timeout = "{}"
# Frames that carry nothing (PING, PONG, empty ones) a peer may send per second, and at
# once; one more disconnects it (ControlFlood).
free_frames_per_second = {}
# How long a dial may take, TCP connect and handshake.
dial_timeout = "{}"
# Bytes per second sent to, and accepted from, each peer; 0 is unlimited.
send_rate = 0
recv_rate = 0
"#,
        limits.max_inbound,
        limits.max_outbound,
        limits.max_pending_handshakes,
        limits.max_pending_per_subnet,
        defaults.eviction.enabled,
        limits.max_inbound_per_ip,
        limits.max_inbound_per_subnet,
        limits.max_inbound_queries,
        limits.max_outbound_queries,
        duration(limits.query_idle_timeout),
        discovery.seed_mode,
        DEFAULT_PEX,
        discovery.addr_book.routable_only,
        duration(defaults.violation_ban),
        defaults.violation_ban_ip,
        defaults.max_bans,
        duration(defaults.connection.handshake_timeout),
        duration(defaults.connection.write_stall_timeout),
        defaults.connection.free_frames_per_second,
        duration(defaults.dial.dial_timeout),
    )
}

/// Parses each string of a list with `parse`, naming the string that fails.
fn each<'de, D: Deserializer<'de>, T>(
    deserializer: D,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Vec<T>, D::Error> {
    Vec::<String>::deserialize(deserializer)?
        .iter()
        .map(|text| {
            parse(text).map_err(|error| serde::de::Error::custom(format!("{text:?}: {error}")))
        })
        .collect()
}

fn listen_addrs<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<SocketAddr>>, D::Error> {
    each(d, parse_listen_addr).map(Some)
}

fn peer_addrs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<NetAddress>, D::Error> {
    each(d, |text| text.parse().map_err(|error| format!("{error}")))
}

fn peer_ids<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<PeerId>, D::Error> {
    each(d, |text| text.parse().map_err(|error| format!("{error}")))
}

fn networks<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    each(d, parse_ip_net)
}

/// An address, or `""` for none.
fn optional_addr<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    let text = String::deserialize(d)?;
    if text.is_empty() {
        return Ok(None);
    }
    parse_listen_addr(&text)
        .map(Some)
        .map_err(|error| serde::de::Error::custom(format!("{text:?}: {error}")))
}

/// A network as `IP/PREFIX`, e.g. `10.0.0.0/8` or `fd00::/8`.
fn parse_ip_net(text: &str) -> Result<IpNet, String> {
    let (addr, prefix) = text
        .split_once('/')
        .ok_or("expected IP/PREFIX, as 10.0.0.0/8")?;
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| format!("{addr:?} is not an IP address"))?;
    let bits = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = prefix
        .parse()
        .ok()
        .filter(|prefix| *prefix <= bits)
        .ok_or_else(|| format!("prefix {prefix:?} is not a number in 0..={bits}"))?;
    Ok(IpNet { addr, prefix })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn node_args(flags: &[&str]) -> NodeArgs {
        let cli = Cli::try_parse_from(["switchboard", "node"].iter().chain(flags)).expect("flags");
        match cli.command {
            Command::Node(args) => args,
            other => panic!("not node: {other:?}"),
        }
    }

    #[test]
    fn the_template_runs_the_defaults() {
        let file = ConfigFile::parse(&template()).expect("the template parses");
        assert_eq!(file.log_level.as_deref(), Some(DEFAULT_LOG_LEVEL));
        let from_template = file.node_options(&node_args(&[]));
        let from_nothing = ConfigFile::default().node_options(&node_args(&[]));
        assert_eq!(
            format!("{:?}", from_template.node),
            format!("{:?}", from_nothing.node)
        );
        assert_eq!(
            format!("{:?}", from_template.discovery),
            format!("{:?}", from_nothing.discovery)
        );
        assert_eq!(from_template.pex, from_nothing.pex);
        assert_eq!(from_template.listen, vec![DEFAULT_LISTEN]);
        assert_eq!(from_template.metrics, None);
    }

    #[test]
    fn keys_reach_the_core_and_flags_override_them() {
        let id = "ab".repeat(32);
        let file = ConfigFile::parse(&format!(
            r#"
            network = "testnet"
            metrics_laddr = "127.0.0.1:26660"
            [p2p]
            laddr = ["127.0.0.1:0", "[::1]:0"]
            seeds = ["{id}@127.0.0.1:1"]
            unconditional_peer_ids = ["{id}"]
            max_num_inbound_peers = 3
            allowed_networks = ["10.0.0.0/8"]
            pex = false
            addr_book_strict = false
            max_inbound_queries = 4
            max_outbound_queries = 2
            query_idle_timeout = "1s"
            violation_ban = "1h"
            violation_ban_ip = false
            max_bans = 64
            handshake_timeout = "500ms"
            write_stall_timeout = "7s"
            free_frames_per_second = 500
            send_rate = 1000
            "#
        ))
        .expect("parses");
        let options = file.node_options(&node_args(&["--listen=127.0.0.1:7", "--network", "x"]));
        let node = &options.node;
        assert_eq!(node.network, "x");
        assert_eq!(options.listen, vec![SocketAddr::from(([127, 0, 0, 1], 7))]);
        assert_eq!(
            options.metrics,
            Some(SocketAddr::from(([127, 0, 0, 1], 26660)))
        );
        assert_eq!(options.discovery.seeds.len(), 1);
        assert_eq!(node.trusted_peers, vec![id.parse().unwrap()]);
        assert_eq!(node.limits.max_inbound, 3);
        assert_eq!(node.allowed_networks[0].prefix, 8);
        assert!(!options.pex);
        assert!(!options.discovery.addr_book.routable_only);
        assert_eq!(node.limits.max_inbound_queries, 4);
        assert_eq!(node.limits.max_outbound_queries, 2);
        assert_eq!(node.limits.query_idle_timeout, Duration::from_secs(1));
        assert_eq!(node.violation_ban, Duration::from_secs(3600));
        assert!(!node.violation_ban_ip);
        assert_eq!(node.max_bans, 64);
        assert_eq!(node.connection.write_stall_timeout, Duration::from_secs(7));
        assert_eq!(node.connection.free_frames_per_second, 500);
        assert_eq!(
            node.connection.handshake_timeout,
            Duration::from_millis(500)
        );
        assert_eq!(
            node.connection.channels[0].send_rate,
            Some(RateLimit::per_second(1000))
        );
    }

    #[test]
    fn errors_name_the_key_and_the_line() {
        let error = ConfigFile::parse("network = \"a\"\n[p2p]\nmax_peers = 3\n").unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("max_peers") && message.contains("line 3"),
            "{message}"
        );
        let error = ConfigFile::parse("[p2p]\n\nladdr = [\"1.2.3.4:99999\"]\n").unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("laddr") && message.contains("line 3"),
            "{message}"
        );
        assert!(message.contains("port 99999"), "{message}");
        let error = ConfigFile::parse("[p2p]\ndial_timeout = \"soon\"\n").unwrap_err();
        assert!(error.to_string().contains("line 2"), "{error}");
    }
}
