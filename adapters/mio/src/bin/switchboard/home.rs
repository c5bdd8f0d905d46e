//! The node's home directory: `switchboard init` writes it, `switchboard node` and
//! `switchboard show-node-id` read it.
//!
//! Only `init` makes a key. A node started on a directory without one refuses and says to
//! run `init`: a key made by a `node` that then fails to listen, or by a typo in `--home`,
//! would be an identity nobody meant to create.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::Path;

use switchboard::Keypair;
use switchboard_mio::key_file::{self, KeyFileError, KeyOrigin};
use switchboard_mio::{DataDir, os_seeded_rng};
use tracing::info;

use crate::config::{CONFIG_FILE, template};

/// Writes `home`: a new key unless one is there, and the commented config file unless one
/// is there.
pub fn init(home: &Path) -> Result<(), String> {
    let data_dir =
        DataDir::open(home).map_err(|error| format!("home {}: {error}", home.display()))?;
    let mut rng = os_seeded_rng().map_err(|error| format!("no OS randomness: {error}"))?;
    let key_path = data_dir.key_path();
    let (keypair, origin) =
        key_file::load_or_generate(&key_path, &mut rng).map_err(|error| error.to_string())?;
    let node_id = keypair.peer_id();
    match origin {
        KeyOrigin::Generated => info!(path = %key_path.display(), %node_id, "generated node key"),
        KeyOrigin::Loaded => info!(path = %key_path.display(), %node_id, "kept the node key found"),
    }
    let config_path = home.join(CONFIG_FILE);
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&config_path)
    {
        Ok(mut file) => {
            file.write_all(template().as_bytes())
                .map_err(|error| format!("{}: {error}", config_path.display()))?;
            info!(path = %config_path.display(), "wrote the config file");
        }
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
            info!(path = %config_path.display(), "kept the config file found");
        }
        Err(error) => return Err(format!("{}: {error}", config_path.display())),
    }
    Ok(())
}

/// `home` and its key, or an error saying to run `init`.
pub fn open(home: &Path) -> Result<(DataDir, Keypair), String> {
    let uninitialised = || {
        format!(
            "no node key in {}: run `switchboard init --home {}` first",
            home.display(),
            home.display()
        )
    };
    if !home.is_dir() {
        return Err(uninitialised());
    }
    let data_dir =
        DataDir::open(home).map_err(|error| format!("home {}: {error}", home.display()))?;
    match key_file::load(&data_dir.key_path()) {
        Ok(keypair) => Ok((data_dir, keypair)),
        Err(KeyFileError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            Err(uninitialised())
        }
        Err(error) => Err(error.to_string()),
    }
}
