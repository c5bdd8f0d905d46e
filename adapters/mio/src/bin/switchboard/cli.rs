//! The command line, declared with clap's derive: each subcommand's flags, their help and
//! the parsers that say which part of a bad value is wrong.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use switchboard::NetAddress;
use switchboard_mio::demo::DemoConfig;

/// The node's home directory when `--home` is not given: `$HOME/.switchboard`, as
/// CometBFT's `~/.cometbft`.
const HOME_DIR: &str = ".switchboard";

#[derive(Debug, Parser)]
#[command(
    name = "switchboard",
    version,
    about = "Runs a switchboard peer-to-peer node, or a demo cluster of them",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub log: LogArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Writes a home directory: a new node key (mode 0600) and a commented config.toml.
    /// What exists already is kept.
    Init(HomeArgs),
    /// Runs a node from the home directory's config.toml; flags override the file.
    Node(NodeArgs),
    /// Prints the node id of the home directory's key.
    ShowNodeId(HomeArgs),
    /// Prints a running node's status and peers, read from its /status and /net_info.
    Status(StatusArgs),
    /// Starts a cluster on 127.0.0.1, connects it by peer exchange from one seed, has every
    /// node broadcast, and prints what was delivered.
    Demo(DemoArgs),
}

/// Logging, for every subcommand.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// Log filter: a level (error, warn, info, debug, trace) or RUST_LOG-style directives
    /// such as "info,switchboard_mio=debug". Overrides RUST_LOG, which overrides the
    /// config file's log_level [default: info].
    #[arg(long, global = true, value_name = "FILTER")]
    pub log_level: Option<String>,
    /// Log line format; overrides the config file's log_format [default: text].
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One line per event: time, level, message, fields.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Args)]
pub struct HomeArgs {
    /// The node's home directory: node_key, config.toml, address_book
    /// [default: $HOME/.switchboard].
    #[arg(long, value_name = "DIR")]
    pub home: Option<PathBuf>,
}

impl HomeArgs {
    pub fn dir(&self) -> PathBuf {
        self.home.clone().unwrap_or_else(|| {
            std::env::var_os("HOME").map_or_else(
                || PathBuf::from(HOME_DIR),
                |home| PathBuf::from(home).join(HOME_DIR),
            )
        })
    }
}

/// `switchboard node`'s flags: each overrides its config file key. A list flag given once
/// or more replaces the file's list.
#[derive(Debug, Args)]
pub struct NodeArgs {
    #[command(flatten)]
    pub home: HomeArgs,
    /// Listen on IP:PORT (repeatable; IPv6 as [::]:26656; port 0 picks one) [config: laddr].
    #[arg(long, value_name = "IP:PORT", value_parser = parse_listen_addr)]
    pub listen: Vec<SocketAddr>,
    /// The address peers should dial, told to them [config: external_address].
    #[arg(long, value_name = "IP:PORT", value_parser = parse_listen_addr)]
    pub external_address: Option<SocketAddr>,
    /// A seed node, dialed while the address book is small (repeatable) [config: seeds].
    #[arg(long, value_name = "ID@IP:PORT")]
    pub seed: Vec<NetAddress>,
    /// A peer kept connected, redialed whenever it drops (repeatable)
    /// [config: persistent_peers].
    #[arg(long, value_name = "ID@IP:PORT")]
    pub persistent_peer: Vec<NetAddress>,
    /// Network id: peers of other networks are refused [config: network].
    #[arg(long, value_name = "NAME")]
    pub network: Option<String>,
    /// Serve Prometheus metrics at /metrics and JSON at /status and /net_info on IP:PORT
    /// [config: metrics_laddr].
    #[arg(long, value_name = "IP:PORT", value_parser = parse_listen_addr)]
    pub metrics: Option<SocketAddr>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The node's metrics address (its metrics_laddr).
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:26660", value_parser = parse_listen_addr)]
    pub rpc: SocketAddr,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Nodes in the cluster; node 0 is the seed.
    #[arg(long, default_value_t = DemoConfig::default().nodes, value_parser = in_range::<1, 1000>)]
    pub nodes: usize,
    /// Broadcasts per node.
    #[arg(long, default_value_t = DemoConfig::default().rounds, value_parser = in_range::<0, 100_000>)]
    pub rounds: usize,
    /// Bytes per message.
    #[arg(long, default_value_t = DemoConfig::default().message_size, value_parser = in_range::<8, { 4 << 20 }>)]
    pub size: usize,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// A number in `LOW..=HIGH`.
fn in_range<const LOW: usize, const HIGH: usize>(text: &str) -> Result<usize, String> {
    text.parse()
        .ok()
        .filter(|number| (LOW..=HIGH).contains(number))
        .ok_or_else(|| format!("expected a number in {LOW}..={HIGH}"))
}

/// Parses a socket address to listen on, saying which part is wrong when it is: the port,
/// the IP, or the brackets IPv6 needs. CometBFT's `tcp://` prefix is accepted.
pub fn parse_listen_addr(text: &str) -> Result<SocketAddr, String> {
    let text = text.strip_prefix("tcp://").unwrap_or(text);
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(format!(
            "{text:?} has no port: write IP:PORT, as 0.0.0.0:26656"
        ));
    };
    let port = match port.parse::<u16>() {
        Ok(port) => port,
        Err(_) if !port.is_empty() && port.bytes().all(|byte| byte.is_ascii_digit()) => {
            return Err(format!(
                "port {port} is out of range: a port is 0..=65535 (0 picks a free one)"
            ));
        }
        Err(_) => return Err(format!("port {port:?} is not a number")),
    };
    let ip = host
        .strip_prefix('[')
        .and_then(|host| host.strip_suffix(']'))
        .unwrap_or(host);
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V6(_)) if !host.starts_with('[') => {
            Err(format!("IPv6 address {ip} needs brackets: [{ip}]:{port}"))
        }
        Ok(ip) => Ok(SocketAddr::new(ip, port)),
        Err(_) => Err(format!(
            "{ip:?} is not an IP address (host names are not resolved)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addr_errors_name_the_wrong_part() {
        assert_eq!(
            parse_listen_addr("tcp://0.0.0.0:26656"),
            Ok(SocketAddr::from(([0, 0, 0, 0], 26656)))
        );
        assert!(
            parse_listen_addr("1.2.3.4:99999")
                .unwrap_err()
                .contains("port 99999")
        );
        assert!(
            parse_listen_addr("1.2.3.4:x")
                .unwrap_err()
                .contains("port \"x\"")
        );
        assert!(
            parse_listen_addr("1.2.3:80")
                .unwrap_err()
                .contains("not an IP")
        );
        assert!(
            parse_listen_addr("::1:80")
                .unwrap_err()
                .contains("brackets")
        );
        assert!(
            parse_listen_addr("1.2.3.4")
                .unwrap_err()
                .contains("no port")
        );
    }
}
