//! `switchboard-sim`: runs a simulated switchboard network and prints what happened.
//!
//! ```text
//! switchboard-sim [--nodes N] [--seed S] [--seeds K] [--duration SECS] [--faults SPEC]
//!                 [--max-outbound M] [--traffic-ms MS] [--until-full] [--discovery] [--json]
//!                 [--report DIR]
//! ```
//!
//! Faults are drawn until 20 s before the end (or half-way, for runs shorter than 40 s);
//! then they heal and the network must reconnect. `--until-full` stops as soon as every node's outbound slots are full (the convergence
//! measurement; no reconnection check then).
//!
//! With `--seeds K` it sweeps seeds S..S+K; with `--json` it prints one JSON object per
//! seed, one per line (JSON Lines), with the keys of [`Summary`](switchboard_sim::Summary). Progress goes to stderr on
//! runs longer than two seconds. When an invariant fails it prints the seed and the command
//! line that reproduces it to stderr and exits with status 1; bad arguments exit with 2.
//!
//! With `--report DIR` the run also samples a timeline and writes it as a self-contained
//! HTML page of plots (see `switchboard_sim::report`): `DIR/report.html`, or for a sweep
//! one page per seed, `DIR/report-seed-S.html` — a sweep is searched for its odd seed, and
//! a page per seed is what one opens beside another. A page that cannot be written exits
//! with 2.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use switchboard_sim::{ParseFaultsError, ReportError, Scenario, ScenarioConfig, Summary, report};

const USAGE: &str = "usage: switchboard-sim [--nodes N] [--seed S] [--seeds K] \
[--duration SECS] [--faults all|none|reset,partition,crash,latency,bandwidth,blackhole,slow,\
clock,refuse,split] [--max-outbound M] [--traffic-ms MS (0: no traffic)] [--until-full] [--discovery: seeds + PEX instead of random dials] [--json] \
[--report DIR: HTML plots of the run]";

struct Args {
    config: ScenarioConfig,
    seeds: u64,
    json: bool,
    report: Option<PathBuf>,
}

#[derive(Debug)]
enum ArgError {
    Missing(String),
    Invalid(String, String),
    Unknown(String),
    Faults(ParseFaultsError),
    Help,
}

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgError::Missing(flag) => write!(f, "{flag} needs a value"),
            ArgError::Invalid(flag, value) => write!(f, "{flag}: cannot use {value:?}"),
            ArgError::Unknown(arg) => write!(f, "unknown argument {arg:?}"),
            ArgError::Faults(error) => write!(f, "--faults: {error}"),
            ArgError::Help => f.write_str(USAGE),
        }
    }
}

fn parse(args: impl Iterator<Item = String>) -> Result<Args, ArgError> {
    let mut config = ScenarioConfig::new(100, 1);
    let mut seeds = 1;
    let mut json = false;
    let mut report = None;
    let mut args = args.peekable();
    while let Some(flag) = args.next() {
        if flag == "--json" {
            json = true;
            continue;
        }
        if flag == "--until-full" {
            config.stop_when_outbound_full = true;
            continue;
        }
        if flag == "--discovery" {
            config.discovery = true;
            continue;
        }
        if flag == "--help" || flag == "-h" {
            return Err(ArgError::Help);
        }
        let value = match flag.as_str() {
            "--nodes" | "--seed" | "--seeds" | "--duration" | "--faults" | "--max-outbound"
            | "--traffic-ms" | "--report" => {
                args.next().ok_or_else(|| ArgError::Missing(flag.clone()))?
            }
            _ => return Err(ArgError::Unknown(flag)),
        };
        let invalid = || ArgError::Invalid(flag.clone(), value.clone());
        match flag.as_str() {
            "--nodes" => config.nodes = value.parse().map_err(|_| invalid())?,
            "--seed" => config.seed = value.parse().map_err(|_| invalid())?,
            "--seeds" => seeds = value.parse().map_err(|_| invalid())?,
            "--duration" => {
                let secs: f64 = value.parse().map_err(|_| invalid())?;
                config.duration = Duration::try_from_secs_f64(secs).map_err(|_| invalid())?;
            }
            "--faults" => config.faults = value.parse().map_err(ArgError::Faults)?,
            "--max-outbound" => config.max_outbound = value.parse().map_err(|_| invalid())?,
            "--report" => {
                config.record_timeline = true;
                report = Some(PathBuf::from(value));
            }
            _ => {
                let ms: u64 = value.parse().map_err(|_| invalid())?;
                config.traffic_interval = (ms > 0).then(|| Duration::from_millis(ms));
            }
        }
    }
    // Half the run at most is quiet, so a short run still sees faults.
    config.quiet = config.quiet.min(config.duration / 2);
    if config.nodes == 0 || seeds == 0 {
        return Err(ArgError::Invalid("--nodes/--seeds".into(), "0".into()));
    }
    Ok(Args {
        config,
        seeds,
        json,
        report,
    })
}

/// Why a report page was not written.
#[derive(Debug)]
enum WriteReportError {
    Draw(ReportError),
    Write(PathBuf, std::io::Error),
}

impl fmt::Display for WriteReportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteReportError::Draw(error) => error.fmt(f),
            WriteReportError::Write(path, error) => {
                write!(f, "cannot write {}: {error}", path.display())
            }
        }
    }
}

fn write_report(path: &Path, summary: &Summary) -> Result<(), WriteReportError> {
    let page = report::html(summary).map_err(WriteReportError::Draw)?;
    std::fs::write(path, page).map_err(|error| WriteReportError::Write(path.into(), error))?;
    eprintln!("switchboard-sim: report written to {}", path.display());
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(ArgError::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("switchboard-sim: {error}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if let Some(dir) = &args.report
        && let Err(error) = std::fs::create_dir_all(dir)
    {
        eprintln!(
            "switchboard-sim: --report: cannot create {}: {error}",
            dir.display()
        );
        return ExitCode::from(2);
    }
    let mut failed = Vec::new();
    for offset in 0..args.seeds {
        let mut config = args.config.clone();
        config.seed = args.config.seed.wrapping_add(offset);
        let scenario = match Scenario::new(config.clone()) {
            Ok(scenario) => scenario,
            Err(error) => {
                eprintln!("switchboard-sim: {error}");
                return ExitCode::from(2);
            }
        };
        let started = Instant::now();
        let mut last_report = started;
        let summary = scenario.run(|sim| {
            if last_report.elapsed() >= Duration::from_secs(2) {
                last_report = Instant::now();
                eprintln!(
                    "switchboard-sim: seed {} at {:.1}/{:.0} simulated s, {} events, \
                     {:.1} wall s{}",
                    sim.seed(),
                    sim.elapsed().as_secs_f64(),
                    config.duration.as_secs_f64(),
                    sim.inputs(),
                    started.elapsed().as_secs_f64(),
                    sim.outbound_full_after()
                        .map(|d| format!(", outbound full at {:.2} s", d.as_secs_f64()))
                        .unwrap_or_default()
                );
            }
        });
        if args.json {
            println!("{}", summary.to_json());
        } else {
            println!("{summary}");
        }
        if let Some(dir) = &args.report {
            let name = if args.seeds == 1 {
                "report.html".to_string()
            } else {
                format!("report-seed-{}.html", summary.seed)
            };
            if let Err(error) = write_report(&dir.join(name), &summary) {
                eprintln!("switchboard-sim: --report: {error}");
                return ExitCode::from(2);
            }
        }
        if !summary.passed() {
            eprintln!(
                "switchboard-sim: INVARIANT VIOLATED with seed {}; reproduce with:\n  {}",
                summary.seed, summary.command_line
            );
            for violation in summary.violations.iter().take(5) {
                eprintln!("  {violation}");
            }
            failed.push(summary.seed);
        }
    }
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!("switchboard-sim: failing seeds: {failed:?}");
        ExitCode::from(1)
    }
}
