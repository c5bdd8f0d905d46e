//! The `switchboard` command: `switchboard node …` runs a node on real sockets, and
//! `switchboard demo …` runs a cluster of nodes on 127.0.0.1 (see `--help`).

mod args;
mod node_command;

use std::process::ExitCode;

use switchboard_mio::demo;

use crate::args::{Command, USAGE};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args::parse(&args) {
        Ok(Command::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::Node(options)) => node_command::run(options),
        Ok(Command::Demo { config, json }) => run_demo(&config, json),
        Err(message) => Err(format!("{message}\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("switchboard: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run_demo(config: &demo::DemoConfig, json: bool) -> Result<(), String> {
    if let Err(error) = switchboard_mio::fd_limit::raise_nofile_limit() {
        eprintln!("cannot raise the open-file limit: {error}");
    }
    eprintln!(
        "starting {} nodes on 127.0.0.1 (node 0 is the seed), {} broadcasts of {} bytes each",
        config.nodes, config.rounds, config.message_size
    );
    let report = demo::run(config).map_err(|error| error.to_string())?;
    if json {
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
