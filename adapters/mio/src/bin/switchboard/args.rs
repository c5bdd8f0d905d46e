//! The command line, parsed by hand: two subcommands with a handful of flags each do not
//! justify an argument-parsing dependency.

use std::net::SocketAddr;
use std::path::PathBuf;

use switchboard::NetAddress;
use switchboard_mio::demo::DemoConfig;

pub const USAGE: &str = "\
usage:
  switchboard node [--listen ADDR]... [--seed ADDR]... [--persistent ADDR]...
                   [--key FILE] [--data-dir DIR] [--network NAME]
      Runs a node and logs peers joining and leaving. ADDR is ip:port, or id@ip:port to
      require that identity; IPv6 as [::1]:26656. Defaults: --listen 0.0.0.0:26656,
      --data-dir ./switchboard-data, --key DATA_DIR/node_key (made on first start, mode 0600).
  switchboard demo [--nodes N] [--rounds R] [--size BYTES] [--json]
      Starts N nodes on 127.0.0.1 (default 16; node 0 is the seed), connects them, has every
      node broadcast R messages (default 10) of BYTES bytes (default 1024), and prints a
      summary, or with --json one JSON object.";

/// `switchboard node`'s options.
#[derive(Debug)]
pub struct NodeOptions {
    pub listen: Vec<SocketAddr>,
    pub seeds: Vec<NetAddress>,
    pub persistent: Vec<NetAddress>,
    pub key: Option<PathBuf>,
    pub data_dir: PathBuf,
    pub network: String,
}

/// What to do.
#[derive(Debug)]
pub enum Command {
    Help,
    Node(NodeOptions),
    Demo { config: DemoConfig, json: bool },
}

pub fn parse(args: &[String]) -> Result<Command, String> {
    match args.first().map(String::as_str) {
        Some("node") => parse_node(&args[1..]).map(Command::Node),
        Some("demo") => parse_demo(&args[1..]),
        Some("-h" | "--help" | "help") => Ok(Command::Help),
        Some(other) => Err(format!("unknown command {other:?}")),
        None => Err("a command is needed".to_string()),
    }
}

fn parse_node(args: &[String]) -> Result<NodeOptions, String> {
    let mut options = NodeOptions {
        listen: Vec::new(),
        seeds: Vec::new(),
        persistent: Vec::new(),
        key: None,
        data_dir: PathBuf::from("switchboard-data"),
        network: "switchboard".to_string(),
    };
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        let mut value = || rest.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => options.listen.push(parse_value(flag, value()?)?),
            "--seed" => options.seeds.push(parse_value(flag, value()?)?),
            "--persistent" => options.persistent.push(parse_value(flag, value()?)?),
            "--key" => options.key = Some(PathBuf::from(value()?)),
            "--data-dir" => options.data_dir = PathBuf::from(value()?),
            "--network" => options.network = value()?.clone(),
            _ => return Err(format!("unknown flag {flag:?} for node")),
        }
    }
    if options.listen.is_empty() {
        options.listen.push(SocketAddr::from(([0, 0, 0, 0], 26656)));
    }
    Ok(options)
}

fn parse_demo(args: &[String]) -> Result<Command, String> {
    let mut config = DemoConfig {
        progress: true,
        ..DemoConfig::default()
    };
    let mut json = false;
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        let mut value = || rest.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--nodes" => config.nodes = parse_in(flag, value()?, 1, 1000)?,
            "--rounds" => config.rounds = parse_in(flag, value()?, 0, 100_000)?,
            "--size" => config.message_size = parse_in(flag, value()?, 8, 4 << 20)?,
            "--json" => json = true,
            _ => return Err(format!("unknown flag {flag:?} for demo")),
        }
    }
    Ok(Command::Demo { config, json })
}

fn parse_value<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    value
        .parse()
        .map_err(|error| format!("{flag} {value:?}: {error}"))
}

fn parse_in(flag: &str, value: &str, low: usize, high: usize) -> Result<usize, String> {
    value
        .parse()
        .ok()
        .filter(|number| (low..=high).contains(number))
        .ok_or_else(|| format!("{flag} takes a number in {low}..={high}, not {value:?}"))
}
