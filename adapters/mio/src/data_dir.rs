//! The node's directory on disk: its key file and the address book of its
//! [`Discovery`](switchboard::discovery::Discovery) protocol, persisted across restarts.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// File name of the node key inside the data directory.
pub const KEY_FILE: &str = "node_key";

/// File name of the persisted address book inside the data directory.
pub const ADDRESS_BOOK_FILE: &str = "address_book";

/// A node's data directory.
#[derive(Clone, Debug)]
pub struct DataDir {
    path: PathBuf,
}

impl DataDir {
    /// Opens `path`, creating it (owner-only on unix, since it holds the key) if needed.
    pub fn open(path: impl Into<PathBuf>) -> io::Result<Self> {
        let path = path.into();
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(&path)?;
        Ok(DataDir { path })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the node key lives.
    pub fn key_path(&self) -> PathBuf {
        self.path.join(KEY_FILE)
    }

    /// Where the address book is persisted.
    pub fn address_book_path(&self) -> PathBuf {
        self.path.join(ADDRESS_BOOK_FILE)
    }

    /// The address book persisted by the last run, as the bytes the core serialized;
    /// `None` on a first start. Give them to the driver as
    /// [`DriverConfig::address_book`](crate::DriverConfig::address_book).
    pub fn load_address_book(&self) -> io::Result<Option<Vec<u8>>> {
        match fs::read(self.address_book_path()) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Persists the address book's serialized bytes, atomically (a crash leaves the old
    /// file or the new one, never half of one); `switchboard node` calls it periodically
    /// with [`Driver::address_book`](crate::Driver::address_book)'s bytes.
    pub fn save_address_book(&self, bytes: &[u8]) -> io::Result<()> {
        let temporary = self.path.join(format!("{ADDRESS_BOOK_FILE}.tmp"));
        fs::write(&temporary, bytes)?;
        fs::rename(&temporary, self.address_book_path())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_book_bytes_survive_a_restart() {
        let path = std::env::temp_dir().join(format!("switchboard-data-{}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        let dir = DataDir::open(&path).expect("open");
        assert_eq!(dir.load_address_book().expect("load"), None);
        dir.save_address_book(b"book").expect("save");
        let reopened = DataDir::open(&path).expect("reopen");
        assert_eq!(
            reopened.load_address_book().expect("load"),
            Some(b"book".to_vec())
        );
        let _ = fs::remove_dir_all(path);
    }
}
