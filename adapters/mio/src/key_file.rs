//! The node's key file: the X25519 secret as 64 hex digits and a newline.
//!
//! The key *is* the node's identity, so the file is created readable by its owner only
//! (mode 0600 on unix), and an existing file that the group or others may read is refused:
//! a leaked key lets anyone impersonate the node, and refusing makes the operator fix it
//! rather than run on a key that may already be compromised.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use rand_core::CryptoRng;
use switchboard::Keypair;

/// Why the key file could not be used.
#[derive(Debug)]
pub enum KeyFileError {
    /// Reading or writing it failed.
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Its group or others may read or write it.
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// It does not hold 64 hex digits.
    Malformed {
        /// The file.
        path: PathBuf,
    },
}

impl fmt::Display for KeyFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyFileError::Io { path, source } => {
                write!(f, "key file {}: {source}", path.display())
            }
            KeyFileError::Permissions { path, mode } => write!(
                f,
                "key file {} is accessible to others (mode {mode:o}); run `chmod 600 {}`",
                path.display(),
                path.display()
            ),
            KeyFileError::Malformed { path } => write!(
                f,
                "key file {} does not hold a key (64 hex digits)",
                path.display()
            ),
        }
    }
}

impl std::error::Error for KeyFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            KeyFileError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Whether the key was read or made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyOrigin {
    /// Read from an existing file.
    Loaded,
    /// Generated and written to a new file.
    Generated,
}

/// Loads the key at `path`, or generates one from `rng` and writes it there (owner-only).
pub fn load_or_generate<R: CryptoRng + ?Sized>(
    path: &Path,
    rng: &mut R,
) -> Result<(Keypair, KeyOrigin), KeyFileError> {
    match load(path) {
        Ok(keypair) => Ok((keypair, KeyOrigin::Loaded)),
        Err(KeyFileError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            let keypair = Keypair::generate(rng);
            save(path, &keypair)?;
            Ok((keypair, KeyOrigin::Generated))
        }
        Err(error) => Err(error),
    }
}

/// Loads the key at `path`, refusing a file others may access.
pub fn load(path: &Path) -> Result<Keypair, KeyFileError> {
    let io_error = |source| KeyFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let metadata = fs::metadata(path).map_err(io_error)?;
    check_permissions(path, &metadata)?;
    let text = fs::read_to_string(path).map_err(io_error)?;
    let secret = parse_hex(text.trim()).ok_or_else(|| KeyFileError::Malformed {
        path: path.to_path_buf(),
    })?;
    Ok(Keypair::from_secret_bytes(secret))
}

/// Writes `keypair` to a new file at `path`, owner-only; an existing file is not replaced.
pub fn save(path: &Path, keypair: &Keypair) -> Result<(), KeyFileError> {
    let io_error = |source| KeyFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io_error)?;
    let hex: String = keypair
        .secret_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    file.write_all(format!("{hex}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io_error)
}

#[cfg(unix)]
fn check_permissions(path: &Path, metadata: &fs::Metadata) -> Result<(), KeyFileError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::Permissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path, _metadata: &fs::Metadata) -> Result<(), KeyFileError> {
    Ok(())
}

fn parse_hex(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut secret = [0u8; 32];
    for (byte, pair) in secret.iter_mut().zip(bytes.chunks_exact(2)) {
        let pair = std::str::from_utf8(pair).ok()?;
        *byte = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("switchboard-key-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[test]
    fn generated_key_is_loaded_back() {
        let dir = temp_dir("roundtrip");
        let path = dir.join("node_key");
        let mut rng = crate::os_seeded_rng().expect("rng");
        let (made, origin) = load_or_generate(&path, &mut rng).expect("generate");
        assert_eq!(origin, KeyOrigin::Generated);
        let (loaded, origin) = load_or_generate(&path, &mut rng).expect("load");
        assert_eq!(origin, KeyOrigin::Loaded);
        assert_eq!(made.peer_id(), loaded.peer_id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).expect("metadata").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let _ = fs::remove_dir_all(dir);
    }

    #[cfg(unix)]
    #[test]
    fn readable_by_others_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = temp_dir("perms");
        let path = dir.join("node_key");
        let mut rng = crate::os_seeded_rng().expect("rng");
        load_or_generate(&path, &mut rng).expect("generate");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(matches!(
            load(&path),
            Err(KeyFileError::Permissions { mode: 0o644, .. })
        ));
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn garbage_is_malformed() {
        let dir = temp_dir("garbage");
        let path = dir.join("node_key");
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&path).expect("create");
        file.write_all(b"not a key\n").expect("write");
        assert!(matches!(load(&path), Err(KeyFileError::Malformed { .. })));
        let _ = fs::remove_dir_all(dir);
    }
}
