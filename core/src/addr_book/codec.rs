//! The address book's file format.
//!
//! ```text
//! offset  size  field
//! 0       4     magic "SBAB"
//! 4       1     version (1)
//! 5       32    the secret bucketing key
//! 37      4     tried entries, u32 big-endian (at most the tried capacity)
//! 41      4     new entries, u32 big-endian (at most the new capacity)
//! 45      …     the tried entries in table order, then the new entries in table order
//! end−32  32    BLAKE2b-256 of every byte before it
//!
//! entry:  flags u8   bit 0 IPv6 address, 1 peer id, 2 source, 3 IPv6 source,
//!                    4 last attempt, 5 last success (other bits must be 0)
//!         ip         4 or 16 bytes, then the port, u16
//!         peer id    32 bytes, if flagged
//!         source ip  4 or 16 bytes, if flagged
//!         ages       u64 nanoseconds before the save of: last seen; last attempt and last
//!                    success, if flagged
//!         failures   u32
//! ```
//!
//! All integers are big-endian. Times are stored as ages relative to the `now` of
//! [`AddrBook::to_bytes`] and restored relative to the `now` of [`AddrBook::from_bytes`],
//! so the file does not depend on the adapter's clock epoch (the time the node was down
//! does not count). The key is stored so that every address keeps its bucket across
//! restarts (as addrman does): keep the file private. The checksum detects corruption, not
//! tampering. Slots are not stored: they are recomputed from the key and the configuration,
//! so a book saved under another configuration loads too, losing only the addresses that
//! no longer fit.

use alloc::vec::Vec;
use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use blake2::Blake2b;
use blake2::digest::Digest;
use blake2::digest::consts::U32;

use super::group::{canonical, is_dialable};
use super::{AddrBook, AddrBookConfig, Entry, Table};
use crate::identity::PeerId;
use crate::net_address::NetAddress;
use crate::time::Instant;

const MAGIC: &[u8; 4] = b"SBAB";
const VERSION: u8 = 1;
const HEADER_LEN: usize = 45;
const CHECKSUM_LEN: usize = 32;
/// The longest entry: flags, IPv6 and port, peer id, IPv6 source, three ages, failures.
const MAX_ENTRY_LEN: usize = 1 + 18 + 32 + 16 + 24 + 4;

const FLAG_V6: u8 = 1;
const FLAG_PEER_ID: u8 = 1 << 1;
const FLAG_SOURCE: u8 = 1 << 2;
const FLAG_SOURCE_V6: u8 = 1 << 3;
const FLAG_LAST_ATTEMPT: u8 = 1 << 4;
const FLAG_LAST_SUCCESS: u8 = 1 << 5;
const KNOWN_FLAGS: u8 = (1 << 6) - 1;

/// Why bytes are not an address book.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddrBookDecodeError {
    /// Shorter than a header and a checksum.
    TooShort {
        /// The input's length.
        len: usize,
    },
    /// Longer than a full book under the configuration can be.
    TooLarge {
        /// The input's length.
        len: usize,
        /// The most a book under the configuration encodes to.
        max: usize,
    },
    /// Not an address book file.
    BadMagic,
    /// A format version this build does not read.
    UnsupportedVersion(u8),
    /// The checksum does not match: the file is corrupt.
    ChecksumMismatch,
    /// A table holds more entries than the configuration has room for.
    TooManyEntries {
        /// Which table.
        table: Table,
        /// Entries in the file.
        count: u32,
        /// Room under the configuration.
        capacity: usize,
    },
    /// The entries run past the end of the file.
    Truncated,
    /// An entry has flag bits this version does not define.
    InvalidFlags(u8),
    /// An entry's address is one the book never stores (port 0, unspecified, multicast,
    /// broadcast, or an IPv4-mapped IPv6 address).
    InvalidAddress,
    /// An address appears twice.
    DuplicateAddress,
    /// Bytes remain between the last entry and the checksum.
    TrailingBytes,
}

impl fmt::Display for AddrBookDecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddrBookDecodeError::TooShort { len } => {
                write!(f, "address book of {len} bytes is shorter than its header")
            }
            AddrBookDecodeError::TooLarge { len, max } => write!(
                f,
                "address book of {len} bytes exceeds the {max} bytes its configuration allows"
            ),
            AddrBookDecodeError::BadMagic => f.write_str("not an address book (bad magic)"),
            AddrBookDecodeError::UnsupportedVersion(version) => {
                write!(f, "unsupported address book version {version}")
            }
            AddrBookDecodeError::ChecksumMismatch => {
                f.write_str("address book checksum mismatch (corrupt file)")
            }
            AddrBookDecodeError::TooManyEntries {
                table,
                count,
                capacity,
            } => write!(
                f,
                "{count} {table} entries exceed the table's capacity of {capacity}"
            ),
            AddrBookDecodeError::Truncated => f.write_str("address book entries are truncated"),
            AddrBookDecodeError::InvalidFlags(flags) => {
                write!(f, "address book entry has unknown flags {flags:#04x}")
            }
            AddrBookDecodeError::InvalidAddress => {
                f.write_str("address book entry holds an address that cannot be dialed")
            }
            AddrBookDecodeError::DuplicateAddress => {
                f.write_str("address book holds the same address twice")
            }
            AddrBookDecodeError::TrailingBytes => {
                f.write_str("address book has bytes after its last entry")
            }
        }
    }
}

impl core::error::Error for AddrBookDecodeError {}

/// The longest encoding of a full book under `config`: inputs above it are refused unread.
fn max_encoded_len(config: &AddrBookConfig) -> usize {
    config
        .new_capacity()
        .saturating_add(config.tried_capacity())
        .saturating_mul(MAX_ENTRY_LEN)
        .saturating_add(HEADER_LEN + CHECKSUM_LEN)
}

impl AddrBook {
    /// The book as bytes, for the adapter to persist: a magic and a version byte, the
    /// secret key (keep the file private), every entry, and a BLAKE2b-256 checksum; the
    /// layout is documented in `core/src/addr_book/codec.rs`. Times are saved as ages
    /// relative to `now`, so the file does not depend on the adapter's clock epoch.
    /// Pending collisions are not saved. The same book gives the same bytes.
    pub fn to_bytes(&self, now: Instant) -> Vec<u8> {
        let tried_len = u32::try_from(self.tried_len()).unwrap_or(u32::MAX);
        let new_len = u32::try_from(self.new_len()).unwrap_or(u32::MAX);
        let mut out = Vec::with_capacity(
            self.len()
                .saturating_mul(MAX_ENTRY_LEN)
                .saturating_add(HEADER_LEN + CHECKSUM_LEN),
        );
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&self.key);
        out.extend_from_slice(&tried_len.to_be_bytes());
        out.extend_from_slice(&new_len.to_be_bytes());
        for id in self.tried.occupied().chain(self.new.occupied()) {
            if let Some(entry) = self.entry(id) {
                encode_entry(&mut out, entry, now);
            }
        }
        let checksum = Blake2b::<U32>::digest(&out);
        out.extend_from_slice(&checksum);
        out
    }

    /// A book from the bytes of [`AddrBook::to_bytes`], under `config` (which may differ
    /// from the one it was saved under: slots are recomputed, and an address whose slot is
    /// taken is dropped, a tried one first trying *new*). Times are restored relative to
    /// `now`.
    ///
    /// Total: any input yields a book or an error, never a panic; input longer than a full
    /// book under `config` is refused before it is read, and nothing is allocated beyond
    /// the book's own bounded tables.
    pub fn from_bytes(
        config: AddrBookConfig,
        bytes: &[u8],
        now: Instant,
    ) -> Result<AddrBook, AddrBookDecodeError> {
        let max = max_encoded_len(&config);
        if bytes.len() > max {
            return Err(AddrBookDecodeError::TooLarge {
                len: bytes.len(),
                max,
            });
        }
        let body_len = bytes
            .len()
            .checked_sub(CHECKSUM_LEN)
            .filter(|&len| len >= HEADER_LEN)
            .ok_or(AddrBookDecodeError::TooShort { len: bytes.len() })?;
        let (body, checksum) = bytes.split_at(body_len);
        let mut reader = Reader(body);
        if reader.take(MAGIC.len())? != MAGIC {
            return Err(AddrBookDecodeError::BadMagic);
        }
        let version = reader.u8()?;
        if version != VERSION {
            return Err(AddrBookDecodeError::UnsupportedVersion(version));
        }
        if Blake2b::<U32>::digest(body).as_slice() != checksum {
            return Err(AddrBookDecodeError::ChecksumMismatch);
        }
        let key = reader.array::<32>()?;
        let tried_count = reader.u32()?;
        let new_count = reader.u32()?;
        for (table, count, capacity) in [
            (Table::Tried, tried_count, config.tried_capacity()),
            (Table::New, new_count, config.new_capacity()),
        ] {
            if count as usize > capacity {
                return Err(AddrBookDecodeError::TooManyEntries {
                    table,
                    count,
                    capacity,
                });
            }
        }
        let mut book = AddrBook::new(key, config);
        for (table, count) in [(Table::Tried, tried_count), (Table::New, new_count)] {
            for _ in 0..count {
                let entry = decode_entry(&mut reader, table, now)?;
                book.restore(entry)?;
            }
        }
        if !reader.0.is_empty() {
            return Err(AddrBookDecodeError::TrailingBytes);
        }
        Ok(book)
    }

    /// Stores a decoded entry at its slot under this book's key and configuration.
    /// An address the book's policy refuses (saved by a node on a local network) is dropped.
    fn restore(&mut self, mut entry: Entry) -> Result<(), AddrBookDecodeError> {
        let address = entry.address.socket_addr();
        if self.id_of(address).is_some() {
            return Err(AddrBookDecodeError::DuplicateAddress);
        }
        if !self.accepts(address) {
            return Ok(());
        }
        if entry.table == Table::Tried {
            let slot = self.tried_slot(address);
            if self.tried.get(slot).is_none() {
                entry.slot = slot;
                self.insert(entry);
                return Ok(());
            }
        }
        let slot = self.new_slot(address, entry.source);
        if self.new.get(slot).is_none() {
            entry.table = Table::New;
            entry.slot = slot;
            self.insert(entry);
        }
        Ok(())
    }
}

fn encode_entry(out: &mut Vec<u8>, entry: &Entry, now: Instant) {
    let address = entry.address.socket_addr();
    let mut flags = 0;
    if address.is_ipv6() {
        flags |= FLAG_V6;
    }
    if entry.address.peer_id().is_some() {
        flags |= FLAG_PEER_ID;
    }
    match entry.source {
        Some(IpAddr::V4(_)) => flags |= FLAG_SOURCE,
        Some(IpAddr::V6(_)) => flags |= FLAG_SOURCE | FLAG_SOURCE_V6,
        None => {}
    }
    if entry.last_attempt.is_some() {
        flags |= FLAG_LAST_ATTEMPT;
    }
    if entry.last_success.is_some() {
        flags |= FLAG_LAST_SUCCESS;
    }
    out.push(flags);
    push_ip(out, address.ip());
    out.extend_from_slice(&address.port().to_be_bytes());
    if let Some(peer) = entry.address.peer_id() {
        out.extend_from_slice(peer.as_bytes());
    }
    if let Some(source) = entry.source {
        push_ip(out, source);
    }
    let age = |t: Instant| now.saturating_duration_since(t).as_nanos();
    let ages = [
        Some(entry.last_seen),
        entry.last_attempt,
        entry.last_success,
    ];
    for time in ages.into_iter().flatten() {
        let nanos = u64::try_from(age(time)).unwrap_or(u64::MAX);
        out.extend_from_slice(&nanos.to_be_bytes());
    }
    out.extend_from_slice(&entry.failures.to_be_bytes());
}

fn push_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => out.extend_from_slice(&v4.octets()),
        IpAddr::V6(v6) => out.extend_from_slice(&v6.octets()),
    }
}

fn decode_entry(
    reader: &mut Reader<'_>,
    table: Table,
    now: Instant,
) -> Result<Entry, AddrBookDecodeError> {
    let flags = reader.u8()?;
    if flags & !KNOWN_FLAGS != 0 || (flags & FLAG_SOURCE_V6 != 0 && flags & FLAG_SOURCE == 0) {
        return Err(AddrBookDecodeError::InvalidFlags(flags));
    }
    let ip = reader.ip(flags & FLAG_V6 != 0)?;
    let address = SocketAddr::new(ip, reader.u16()?);
    if !is_dialable(address) || canonical(address) != address {
        return Err(AddrBookDecodeError::InvalidAddress);
    }
    let peer = match flags & FLAG_PEER_ID {
        0 => None,
        _ => Some(PeerId::from_bytes(reader.array::<32>()?)),
    };
    let source = match flags & FLAG_SOURCE {
        0 => None,
        _ => Some(reader.ip(flags & FLAG_SOURCE_V6 != 0)?),
    };
    if source.is_some_and(|ip| ip.to_canonical() != ip) {
        return Err(AddrBookDecodeError::InvalidAddress);
    }
    let mut time = || -> Result<Instant, AddrBookDecodeError> {
        let age = reader.u64()?;
        Ok(Instant::from_nanos(now.as_nanos().saturating_sub(age)))
    };
    let last_seen = time()?;
    let last_attempt = match flags & FLAG_LAST_ATTEMPT {
        0 => None,
        _ => Some(time()?),
    };
    let last_success = match flags & FLAG_LAST_SUCCESS {
        0 => None,
        _ => Some(time()?),
    };
    Ok(Entry {
        last_attempt,
        last_success,
        failures: reader.u32()?,
        table,
        ..Entry::fresh(NetAddress::new(peer, address), source, last_seen)
    })
}

/// Reads the front of a byte slice, failing with [`AddrBookDecodeError::Truncated`].
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], AddrBookDecodeError> {
        if n > self.0.len() {
            return Err(AddrBookDecodeError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], AddrBookDecodeError> {
        self.take(N)?
            .try_into()
            .map_err(|_| AddrBookDecodeError::Truncated)
    }

    fn u8(&mut self) -> Result<u8, AddrBookDecodeError> {
        Ok(u8::from_be_bytes(self.array()?))
    }

    fn u16(&mut self) -> Result<u16, AddrBookDecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, AddrBookDecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, AddrBookDecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn ip(&mut self, v6: bool) -> Result<IpAddr, AddrBookDecodeError> {
        Ok(if v6 {
            IpAddr::V6(Ipv6Addr::from(self.array::<16>()?))
        } else {
            IpAddr::V4(Ipv4Addr::from(self.array::<4>()?))
        })
    }
}
