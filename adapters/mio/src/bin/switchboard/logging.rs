//! Logs on `tracing`, to stderr: wall-clock time, level, message and fields, as text or
//! one JSON object per line.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::cli::{LogArgs, LogFormat};

/// The filter when neither `--log-level`, `RUST_LOG` nor the config file gives one.
pub const DEFAULT_LOG_LEVEL: &str = "info";

/// Installs the subscriber. The filter is `--log-level`, else `RUST_LOG`, else the config
/// file's `log_level`, else [`DEFAULT_LOG_LEVEL`]; the format `--log-format`, else the
/// file's.
pub fn init(
    args: &LogArgs,
    file_level: Option<&str>,
    file_format: Option<LogFormat>,
) -> Result<(), String> {
    let env = std::env::var(EnvFilter::DEFAULT_ENV)
        .ok()
        .filter(|value| !value.is_empty());
    let (source, directives) = match (&args.log_level, env, file_level) {
        (Some(flag), _, _) => ("--log-level", flag.clone()),
        (None, Some(env), _) => (EnvFilter::DEFAULT_ENV, env),
        (None, None, Some(file)) => ("log_level", file.to_string()),
        (None, None, None) => ("default", DEFAULT_LOG_LEVEL.to_string()),
    };
    let filter = EnvFilter::try_new(&directives)
        .map_err(|error| format!("{source} {directives:?}: {error}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let installed = match args.log_format.or(file_format).unwrap_or_default() {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    installed.map_err(|error| format!("cannot install the logger: {error}"))
}
