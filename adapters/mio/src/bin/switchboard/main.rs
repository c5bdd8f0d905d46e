//! The `switchboard` command: `init` writes a node's home directory, `node` runs it on real
//! sockets, `show-node-id` and `status` tell about it, and `demo` runs a cluster on
//! 127.0.0.1 (see `--help`).

mod cli;
mod config;
mod home;
mod logging;
mod node_command;
mod status_command;

use std::process::ExitCode;

use clap::Parser;
use switchboard_mio::demo::{self, DemoConfig};

use crate::cli::{Cli, Command, DemoArgs};
use crate::config::ConfigFile;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("switchboard: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), String> {
    // Only a node has a config file, which may set its logging.
    let file = match &cli.command {
        Command::Node(args) => {
            ConfigFile::load(&args.home.dir()).map_err(|error| format!("config file {error}"))?
        }
        _ => None,
    };
    let (level, format) = file.as_ref().map_or((None, None), |file| {
        (file.log_level.as_deref(), file.log_format)
    });
    logging::init(&cli.log, level, format)?;
    match cli.command {
        Command::Init(args) => home::init(&args.dir()),
        Command::Node(args) => {
            if file.is_none() {
                tracing::warn!(home = %args.home.dir().display(), "no config.toml; running on the defaults");
            }
            node_command::run(file.unwrap_or_default().node_options(&args))
        }
        Command::ShowNodeId(args) => {
            let (_, keypair) = home::open(&args.dir())?;
            println!("{}", keypair.peer_id());
            Ok(())
        }
        Command::Status(args) => status_command::run(args.rpc),
        Command::Demo(args) => run_demo(&args),
    }
}

fn run_demo(args: &DemoArgs) -> Result<(), String> {
    if let Err(error) = switchboard_mio::fd_limit::raise_nofile_limit() {
        eprintln!("cannot raise the open-file limit: {error}");
    }
    let config = DemoConfig {
        nodes: args.nodes,
        rounds: args.rounds,
        message_size: args.size,
        progress: true,
        ..DemoConfig::default()
    };
    eprintln!(
        "starting {} nodes on 127.0.0.1 (node 0 is the seed), {} broadcasts of {} bytes each",
        config.nodes, config.rounds, config.message_size
    );
    let report = demo::run(&config).map_err(|error| error.to_string())?;
    if args.json {
        println!("{}", report.to_json());
    } else {
        println!("{report}");
    }
    if report.is_complete() {
        Ok(())
    } else {
        Err("the cluster did not fully connect or deliver".to_string())
    }
}
