//! The address book: every address a node knows, kept so that no one party can fill it.
//!
//! # The attack it resists
//!
//! A node picks its outbound peers from what it has heard. An attacker who fills the address
//! book with its own addresses *eclipses* the node: every outbound connection then goes to
//! the attacker, who controls what the node sees of the network. Addresses are cheap (one
//! peer can relay thousands) and so are IPs inside one network prefix; what is expensive is
//! being present in many prefixes. So the book, as Bitcoin's addrman and CometBFT's
//! addrbook, divides its room by prefix ([`AddressGroup`]: /16 for IPv4, /32 for IPv6) and
//! hashes with a per-node secret key, so an attacker can neither choose nor predict where
//! its addresses land.
//!
//! # Layout
//!
//! Two tables of fixed-size buckets ([`AddrBookConfig`], by default 256 *new* and 64
//! *tried* buckets of 64 slots):
//!
//! - ***new*** holds addresses heard of but never connected to. An address relayed by a
//!   source (the peer that told us) lands in bucket
//!   `H(k, source group, H(k, group, source group) mod 16) mod 256`: everything one source
//!   group relays falls into at most 16 of the 256 buckets, whatever addresses it makes up.
//!   An attacker holding IPs in two /16s fills at most 32 buckets — 1/8 of the table — and
//!   the honest addresses relayed by other groups keep the rest.
//! - ***tried*** holds addresses we connected to. An address lands in bucket
//!   `H(k, group, H(k, address) mod 4) mod 64`: one group fills at most 4 buckets. Only a
//!   successful connection moves an address here ([`AddrBook::mark_good`]), so gossip alone
//!   can never touch it.
//!
//! Within a bucket the slot is hashed as well (`H(k, bucket, address) mod 64`), as in
//! addrman, rather than kept as a list: an address's place is a pure function of the key and
//! the address, so an insertion finds its one slot in O(1) and only ever competes with the
//! one address already there. In *new* it replaces that address only if it is *terrible*
//! (failed too often, or not heard of for 30 days); otherwise the newcomer is dropped. So
//! the table's size is bounded by construction, and flooding a bucket does not flush it.
//!
//! ***Test before evict.*** When a good address's *tried* slot holds another address, the
//! occupant is not evicted on the spot (an attacker who gets a few connections accepted
//! would otherwise churn the tried table). The collision is recorded; the node dials the
//! occupant ([`AddrBook::poll_collision`]). If it answers ([`AddrBook::mark_good`]) it stays
//! and the newcomer stays in *new*; if it fails ([`AddrBook::mark_failed`]) or does not
//! answer within [`AddrBookConfig::collision_timeout`] ([`AddrBook::handle_timeout`]), it
//! goes back to *new* and the newcomer takes its slot.
//!
//! Every operation is O(1) (expected): the slots are computed, the tables keep a dense list
//! of their ids for uniform random picks, and the address index is a `hashbrown` map whose
//! hash is keyed by the book's secret — immune to hash flooding by peers who choose the
//! addresses, and with no random seed, so the same key and the same calls give the same
//! book, bit for bit ([`AddrBook::to_bytes`]). The bucket hash is keyed BLAKE2b with a
//! 64-bit output; the key is persisted with the book so buckets stay stable across
//! restarts.

mod choose;
mod codec;
mod collision;
mod config;
mod group;
mod index;
#[cfg(any(test, fuzzing))]
mod invariants;
#[cfg(test)]
mod tests;

use alloc::vec::Vec;
use core::fmt;
use core::net::{IpAddr, SocketAddr};
use core::time::Duration;

use blake2::Blake2bMac;
use blake2::digest::consts::U8;
use blake2::digest::{FixedOutput, KeyInit, Update};
use hashbrown::HashMap;

pub use codec::AddrBookDecodeError;
pub use collision::TriedCollision;
pub use config::{AddrBookConfig, MAX_BUCKET_SIZE, MAX_BUCKETS, MAX_COLLISIONS};
pub use group::{AddressGroup, address_group};

use crate::net_address::NetAddress;
use crate::time::Instant;
use collision::Collision;
use group::{Encoded, canonical, is_dialable};
use index::{AddrKey, IndexHashState};

/// Which of the two tables an address is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// Heard of, not (recently) connected to.
    New,
    /// Connected to.
    Tried,
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Table::New => "new",
            Table::Tried => "tried",
        })
    }
}

/// What [`AddrBook::add`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum AddOutcome {
    /// Stored in *new*.
    Added,
    /// Already known: its last-seen time (and its peer id, if it had none verified) updated.
    AlreadyKnown,
    /// Its slot holds another address that is not terrible: dropped.
    BucketFull,
    /// Port 0 or an unspecified, multicast or broadcast IP: never stored.
    Invalid,
    /// Not publicly routable, in a book that stores only routable addresses
    /// ([`AddrBookConfig::routable_only`]).
    NotRoutable,
}

/// What [`AddrBook::mark_good`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum GoodOutcome {
    /// The address is in *tried* (it was, or it moved there).
    Tried,
    /// Its *tried* slot holds this other address, which should be tested by dialing it
    /// ([`AddrBook::poll_collision`] hands it out once); the address waits in *new*.
    Collision(NetAddress),
    /// Its *tried* slot is taken and too many collisions are pending: it stays in *new*.
    Deferred,
    /// An address unknown to the book that could not be stored (invalid, not routable in a
    /// book that stores only routable addresses, or its *new* slot taken).
    Rejected,
}

/// What the book knows about one address ([`AddrBook::get`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddrInfo {
    /// The address, with its peer id when known.
    pub address: NetAddress,
    /// Who told us about it (`None`: added locally, or connected to first).
    pub source: Option<IpAddr>,
    /// The table it is in.
    pub table: Table,
    /// When we last heard of it or connected to it.
    pub last_seen: Instant,
    /// When we last dialed it.
    pub last_attempt: Option<Instant>,
    /// When we last connected to it.
    pub last_success: Option<Instant>,
    /// Failed attempts since the last success.
    pub failures: u32,
}

/// Bucket and position of a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Slot {
    bucket: u32,
    position: u32,
}

struct Entry {
    address: NetAddress,
    source: Option<IpAddr>,
    last_seen: Instant,
    last_attempt: Option<Instant>,
    last_success: Option<Instant>,
    failures: u32,
    table: Table,
    slot: Slot,
    /// Index in its table's `ids`.
    list_pos: u32,
}

impl Entry {
    /// A new-table entry first heard of at `now`, its slot still to be set.
    fn fresh(address: NetAddress, source: Option<IpAddr>, now: Instant) -> Self {
        Entry {
            address,
            source,
            last_seen: now,
            last_attempt: None,
            last_success: None,
            failures: 0,
            table: Table::New,
            slot: Slot {
                bucket: 0,
                position: 0,
            },
            list_pos: 0,
        }
    }

    fn info(&self) -> AddrInfo {
        AddrInfo {
            address: self.address,
            source: self.source,
            table: self.table,
            last_seen: self.last_seen,
            last_attempt: self.last_attempt,
            last_success: self.last_success,
            failures: self.failures,
        }
    }

    /// Worthless enough to be replaced by anything and left out of PEX replies (addrman's
    /// `IsTerrible`).
    fn is_terrible(&self, now: Instant, config: &AddrBookConfig) -> bool {
        let since = |t: Instant| now.saturating_duration_since(t);
        if self
            .last_attempt
            .is_some_and(|t| since(t) < Duration::from_secs(60))
        {
            return false;
        }
        if since(self.last_seen) > config.horizon {
            return true;
        }
        match self.last_success {
            None => self.failures >= config.max_retries,
            Some(t) => since(t) > config.min_fail_period && self.failures >= config.max_failures,
        }
    }

    fn attempted_within(&self, now: Instant, period: Duration) -> bool {
        self.last_attempt
            .is_some_and(|t| now.saturating_duration_since(t) < period)
    }
}

/// No entry in a slot.
const EMPTY: u32 = u32::MAX;

/// One table: buckets of slots holding entry ids, and the dense list of its ids for uniform
/// random picks.
struct Slots {
    /// A bucket's slots are allocated on first use.
    buckets: Vec<Vec<u32>>,
    bucket_size: usize,
    ids: Vec<u32>,
}

impl Slots {
    fn new(buckets: usize, bucket_size: usize) -> Self {
        Slots {
            buckets: (0..buckets).map(|_| Vec::new()).collect(),
            bucket_size,
            ids: Vec::new(),
        }
    }

    fn get(&self, slot: Slot) -> Option<u32> {
        let id = *self
            .buckets
            .get(slot.bucket as usize)?
            .get(slot.position as usize)?;
        (id != EMPTY).then_some(id)
    }

    fn set(&mut self, slot: Slot, id: u32) {
        if let Some(bucket) = self.buckets.get_mut(slot.bucket as usize) {
            if bucket.is_empty() {
                bucket.resize(self.bucket_size, EMPTY);
            }
            if let Some(cell) = bucket.get_mut(slot.position as usize) {
                *cell = id;
            }
        }
    }

    /// The occupied slots in table order.
    fn occupied(&self) -> impl Iterator<Item = u32> + '_ {
        self.buckets
            .iter()
            .flatten()
            .copied()
            .filter(|&id| id != EMPTY)
    }
}

/// Bucketed *new* and *tried* tables of peer addresses. See the [module
/// documentation](self) for the design.
///
/// Methods: getters ([`len`](Self::len), [`get`](Self::get), …); mutators the node calls as
/// it learns and dials ([`add`](Self::add), [`mark_attempt`](Self::mark_attempt),
/// [`mark_good`](Self::mark_good), [`mark_failed`](Self::mark_failed),
/// [`remove`](Self::remove)); choosing ([`select`](Self::select) for dialing,
/// [`sample`](Self::sample) for PEX replies); the test-before-evict loop
/// ([`poll_collision`](Self::poll_collision), [`handle_timeout`](Self::handle_timeout),
/// [`poll_timeout`](Self::poll_timeout)); and persistence ([`to_bytes`](Self::to_bytes),
/// [`from_bytes`](Self::from_bytes)).
///
/// ```
/// use core::net::SocketAddr;
/// use rand_chacha::ChaCha8Rng;
/// use rand_core::SeedableRng;
/// use switchboard::addr_book::{AddOutcome, AddrBook, AddrBookConfig, GoodOutcome};
/// use switchboard::{Instant, NetAddress};
///
/// let mut rng = ChaCha8Rng::seed_from_u64(7);
/// let now = Instant::from_nanos(0);
/// // The key is secret, drawn once from the node's RNG and persisted with the book.
/// let mut book = AddrBook::new([42; 32], AddrBookConfig::default());
///
/// // A peer at 198.51.100.7 tells us about an address.
/// let heard: NetAddress = "203.0.113.9:26656".parse().unwrap();
/// let source = "198.51.100.7".parse().ok();
/// assert_eq!(book.add(heard, source, now), AddOutcome::Added);
///
/// // We pick it, dial it, and it answers: it moves to the tried table.
/// let picked = book.select(&mut rng, now, |_| true).unwrap();
/// assert_eq!(picked, heard);
/// assert!(book.mark_attempt(&picked.socket_addr(), now));
/// assert_eq!(book.mark_good(&picked, now), GoodOutcome::Tried);
/// assert_eq!((book.new_len(), book.tried_len()), (0, 1));
///
/// // Persist it, and load it back after a restart.
/// let bytes = book.to_bytes(now);
/// let restored = AddrBook::from_bytes(AddrBookConfig::default(), &bytes, now).unwrap();
/// assert_eq!(restored.to_bytes(now), bytes);
/// ```
pub struct AddrBook {
    config: AddrBookConfig,
    key: [u8; 32],
    /// Keyed BLAKE2b state, cloned for every hash.
    hasher: Blake2bMac<U8>,
    /// Entries by id; `None` marks a free id (listed in `free`).
    entries: Vec<Option<Entry>>,
    free: Vec<u32>,
    /// Canonical address → entry id.
    index: HashMap<AddrKey, u32, IndexHashState>,
    new: Slots,
    tried: Slots,
    /// Oldest first; at most `config.max_collisions`.
    collisions: Vec<Collision>,
}

impl Drop for AddrBook {
    fn drop(&mut self) {
        // The bucketing key is what keeps an attacker from aiming addresses at buckets.
        zeroize::Zeroize::zeroize(&mut self.key);
    }
}

impl fmt::Debug for AddrBook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AddrBook")
            .field("new", &self.new_len())
            .field("tried", &self.tried_len())
            .field("collisions", &self.collisions.len())
            .finish_non_exhaustive()
    }
}

/// Distinguishes this use of the key from any other (the second half of the BLAKE2b key).
const KEY_LABEL: &[u8; 32] = b"switchboard/addr_book/buckets/v1";

impl AddrBook {
    /// An empty book. `key` is the node's secret bucketing key: draw it from the node's RNG
    /// once and keep it (it is persisted by [`AddrBook::to_bytes`]). Anyone who knows it can
    /// compute where addresses land, which is what the bucketing denies an attacker.
    pub fn new(key: [u8; 32], config: AddrBookConfig) -> Self {
        let config = config.clamped();
        let mut mac_key = [0u8; 64];
        for (out, byte) in mac_key.iter_mut().zip(key.iter().chain(KEY_LABEL)) {
            *out = *byte;
        }
        let hasher = <Blake2bMac<U8> as KeyInit>::new(&mac_key.into());
        AddrBook {
            key,
            hasher,
            entries: Vec::new(),
            free: Vec::new(),
            index: HashMap::with_hasher(IndexHashState::new(&key)),
            new: Slots::new(config.new_buckets, config.bucket_size),
            tried: Slots::new(config.tried_buckets, config.bucket_size),
            collisions: Vec::new(),
            config,
        }
    }

    // ---- getters -------------------------------------------------------------------------

    /// The configuration in use (clamped to its ranges).
    pub fn config(&self) -> &AddrBookConfig {
        &self.config
    }

    /// Addresses known, both tables.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether no address is known.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Addresses in *new*.
    pub fn new_len(&self) -> usize {
        self.new.ids.len()
    }

    /// Addresses in *tried*.
    pub fn tried_len(&self) -> usize {
        self.tried.ids.len()
    }

    /// Whether `address` is known (an IPv4-mapped IPv6 address matches its IPv4 form).
    pub fn contains(&self, address: &SocketAddr) -> bool {
        self.id_of(*address).is_some()
    }

    /// What the book knows about `address`.
    pub fn get(&self, address: &SocketAddr) -> Option<AddrInfo> {
        self.entry_by_addr(address).map(Entry::info)
    }

    // ---- mutators ------------------------------------------------------------------------

    /// Records that `source` (the IP of the peer that relayed it; `None` for addresses the
    /// node adds itself, such as configured seeds) told us about `address`.
    ///
    /// A new address goes to its slot in *new*; if another address holds that slot, the
    /// newcomer replaces it only if the occupant is terrible. A known address has its
    /// last-seen time refreshed, and takes the relayed peer id unless we connected to it
    /// (a verified id is never overwritten by gossip).
    pub fn add(&mut self, address: NetAddress, source: Option<IpAddr>, now: Instant) -> AddOutcome {
        let socket = canonical(address.socket_addr());
        if !is_dialable(socket) {
            return AddOutcome::Invalid;
        }
        if !self.accepts(socket) {
            return AddOutcome::NotRoutable;
        }
        if let Some(entry) = self.entry_mut_by_addr(&socket) {
            entry.last_seen = entry.last_seen.max(now);
            if let (Some(id), None) = (address.peer_id(), entry.last_success) {
                entry.address = entry.address.with_peer_id(id);
            }
            return AddOutcome::AlreadyKnown;
        }
        let source = source.map(|ip| ip.to_canonical());
        let slot = self.new_slot(socket, source);
        if let Some(occupant) = self.new.get(slot) {
            if !self.is_terrible(occupant, now) {
                return AddOutcome::BucketFull;
            }
            self.delete(occupant);
        }
        let entry = Entry::fresh(NetAddress::new(address.peer_id(), socket), source, now);
        match self.insert(Entry { slot, ..entry }) {
            Some(_) => AddOutcome::Added,
            None => AddOutcome::BucketFull,
        }
    }

    /// Records a dial of `address` starting now: [`AddrBook::select`] skips it for
    /// [`AddrBookConfig::reselect_after`]. Returns whether the address is known.
    pub fn mark_attempt(&mut self, address: &SocketAddr, now: Instant) -> bool {
        match self.entry_mut_by_addr(address) {
            Some(entry) => {
                entry.last_attempt = Some(now);
                true
            }
            None => false,
        }
    }

    /// Records a successful outbound connection (handshake completed) to `address`, whose
    /// peer id, if given, is the verified one. (An inbound peer's address proves nothing
    /// about where it listens.) An unknown address goes straight to its *tried* slot if
    /// that is free, and otherwise is added to *new* first (as if by [`AddrBook::add`] with
    /// no source).
    ///
    /// The address moves to *tried* if its slot there is free or holds a terrible address
    /// (which goes back to *new*). If the slot holds another address, that occupant is
    /// tested before it is evicted: see [`GoodOutcome::Collision`]. If `address` is itself
    /// the occupant of a pending collision, it has just passed the test and keeps its slot.
    pub fn mark_good(&mut self, address: &NetAddress, now: Instant) -> GoodOutcome {
        let socket = canonical(address.socket_addr());
        if self.id_of(socket).is_none() {
            if !is_dialable(socket) || !self.accepts(socket) {
                return GoodOutcome::Rejected;
            }
            // Proven reachable: straight to tried if its slot is free, else via new.
            let slot = self.tried_slot(socket);
            let stored = if self.tried.get(slot).is_none() {
                let entry = Entry::fresh(NetAddress::new(address.peer_id(), socket), None, now);
                let entry = Entry {
                    table: Table::Tried,
                    slot,
                    ..entry
                };
                self.insert(entry).is_some()
            } else {
                self.add(*address, None, now) == AddOutcome::Added
            };
            if !stored {
                return GoodOutcome::Rejected;
            }
        }
        let Some(id) = self.id_of(socket) else {
            return GoodOutcome::Rejected;
        };
        let Some(entry) = self.entry_mut(id) else {
            return GoodOutcome::Rejected;
        };
        entry.last_success = Some(now);
        entry.last_attempt = Some(now);
        entry.last_seen = entry.last_seen.max(now);
        entry.failures = 0;
        if let Some(peer) = address.peer_id() {
            entry.address = entry.address.with_peer_id(peer);
        }
        if entry.table == Table::Tried {
            self.collisions.retain(|c| c.occupant != socket);
            return GoodOutcome::Tried;
        }
        if let Some(pending) = self.collisions.iter().find(|c| c.candidate == socket) {
            let occupant = pending.occupant;
            return match self.entry_by_addr(&occupant) {
                Some(entry) => GoodOutcome::Collision(entry.address),
                None => GoodOutcome::Deferred,
            };
        }
        let slot = self.tried_slot(socket);
        let Some(occupant) = self.tried.get(slot) else {
            self.unplace(id);
            self.place(id, Table::Tried, slot);
            return GoodOutcome::Tried;
        };
        if self.is_terrible(occupant, now) {
            self.promote(id, occupant);
            return GoodOutcome::Tried;
        }
        if self.collisions.len() >= self.config.max_collisions {
            return GoodOutcome::Deferred;
        }
        let Some(occupant) = self.entry(occupant).map(|entry| entry.address) else {
            return GoodOutcome::Deferred;
        };
        self.collisions.push(Collision {
            candidate: socket,
            occupant: occupant.socket_addr(),
            deadline: now.saturating_add(self.config.collision_timeout),
            tested: false,
        });
        GoodOutcome::Collision(occupant)
    }

    /// Records a failed dial of `address` (refused, timed out, or a failed handshake). If
    /// `address` occupies a *tried* slot another address is waiting for, it failed its test:
    /// it goes back to *new* and the waiting address takes the slot. Returns whether the
    /// address is known.
    pub fn mark_failed(&mut self, address: &SocketAddr, now: Instant) -> bool {
        let socket = canonical(*address);
        let Some(entry) = self.entry_mut_by_addr(&socket) else {
            return false;
        };
        entry.last_attempt = Some(now);
        entry.failures = entry.failures.saturating_add(1);
        self.evict_occupant(socket);
        true
    }

    /// Forgets every recorded dial attempt, keeping failures and successes: a node starting
    /// with a book from an earlier run has no dial in flight, and times restored from before
    /// its clock's epoch would otherwise look recent and hold addresses back from
    /// [`AddrBook::select`] for [`AddrBookConfig::reselect_after`].
    pub fn forget_attempts(&mut self) {
        for entry in self.entries.iter_mut().flatten() {
            entry.last_attempt = None;
        }
    }

    /// Forgets `address` (banned, or a self-address). Returns whether it was known.
    pub fn remove(&mut self, address: &SocketAddr) -> bool {
        match self.id_of(*address) {
            Some(id) => {
                self.delete(id);
                true
            }
            None => false,
        }
    }

    // ---- internals -----------------------------------------------------------------------

    /// Whether the book's routability policy lets `address` in.
    fn accepts(&self, address: SocketAddr) -> bool {
        !self.config.routable_only || address_group(address.ip()).is_routable()
    }

    fn table(&self, table: Table) -> &Slots {
        match table {
            Table::New => &self.new,
            Table::Tried => &self.tried,
        }
    }

    /// The id of `address` (canonicalized).
    fn id_of(&self, address: SocketAddr) -> Option<u32> {
        self.index.get(&AddrKey(canonical(address))).copied()
    }

    fn entry(&self, id: u32) -> Option<&Entry> {
        self.entries.get(id as usize)?.as_ref()
    }

    fn entry_mut(&mut self, id: u32) -> Option<&mut Entry> {
        self.entries.get_mut(id as usize)?.as_mut()
    }

    fn entry_by_addr(&self, address: &SocketAddr) -> Option<&Entry> {
        self.entry(self.id_of(*address)?)
    }

    fn entry_mut_by_addr(&mut self, address: &SocketAddr) -> Option<&mut Entry> {
        let id = self.id_of(*address)?;
        self.entry_mut(id)
    }

    fn is_terrible(&self, id: u32, now: Instant) -> bool {
        self.entry(id)
            .is_some_and(|entry| entry.is_terrible(now, &self.config))
    }

    /// Stores `entry` in its table and slot (which must be free). `None` if the id space is
    /// exhausted, which the bounded table sizes rule out.
    fn insert(&mut self, entry: Entry) -> Option<u32> {
        let (table, slot, address) = (entry.table, entry.slot, entry.address.socket_addr());
        let id = match self.free.pop() {
            Some(id) => {
                *self.entries.get_mut(id as usize)? = Some(entry);
                id
            }
            None => {
                let id = u32::try_from(self.entries.len())
                    .ok()
                    .filter(|&id| id != EMPTY)?;
                self.entries.push(Some(entry));
                id
            }
        };
        self.index.insert(AddrKey(address), id);
        self.place(id, table, slot);
        Some(id)
    }

    /// Puts entry `id` into `slot` of `table` and its list.
    fn place(&mut self, id: u32, table: Table, slot: Slot) {
        let slots = match table {
            Table::New => &mut self.new,
            Table::Tried => &mut self.tried,
        };
        slots.set(slot, id);
        let list_pos = u32::try_from(slots.ids.len()).unwrap_or(EMPTY);
        slots.ids.push(id);
        if let Some(entry) = self.entry_mut(id) {
            entry.table = table;
            entry.slot = slot;
            entry.list_pos = list_pos;
        }
    }

    /// Takes entry `id` out of its slot and list (it stays in the index).
    fn unplace(&mut self, id: u32) {
        let Some(entry) = self.entry(id) else {
            return;
        };
        let (table, slot, list_pos) = (entry.table, entry.slot, entry.list_pos);
        let slots = match table {
            Table::New => &mut self.new,
            Table::Tried => &mut self.tried,
        };
        if slots.get(slot) == Some(id) {
            slots.set(slot, EMPTY);
        }
        let position = list_pos as usize;
        if slots.ids.get(position) != Some(&id) {
            return;
        }
        slots.ids.swap_remove(position);
        if let Some(&moved) = slots.ids.get(position)
            && let Some(entry) = self.entry_mut(moved)
        {
            entry.list_pos = list_pos;
        }
    }

    /// Forgets entry `id` entirely, with the collisions that name it.
    fn delete(&mut self, id: u32) {
        self.unplace(id);
        let Some(entry) = self.entries.get_mut(id as usize).and_then(Option::take) else {
            return;
        };
        let address = entry.address.socket_addr();
        self.index.remove(&AddrKey(address));
        self.free.push(id);
        self.collisions
            .retain(|c| c.candidate != address && c.occupant != address);
    }

    /// A keyed BLAKE2b-64 of the concatenated `parts`.
    fn hash(&self, parts: &[&[u8]]) -> u64 {
        let mut mac = self.hasher.clone();
        for part in parts {
            mac.update(part);
        }
        u64::from_be_bytes(mac.finalize_fixed().into())
    }

    /// Where an address relayed by `source` goes in *new*.
    fn new_slot(&self, address: SocketAddr, source: Option<IpAddr>) -> Slot {
        let group = address_group(address.ip()).encode();
        let source_group = address_group(source.unwrap_or_else(|| address.ip())).encode();
        let lane = reduce(
            self.hash(&[b"n", group.as_slice(), source_group.as_slice()]),
            self.config.new_buckets_per_source_group,
        );
        let bucket = reduce(
            self.hash(&[b"N", source_group.as_slice(), &lane.to_be_bytes()]),
            self.config.new_buckets,
        );
        let position = reduce(
            self.hash(&[
                b"s",
                &bucket.to_be_bytes(),
                Encoded::socket(address).as_slice(),
            ]),
            self.config.bucket_size,
        );
        Slot { bucket, position }
    }

    /// Where an address goes in *tried*.
    fn tried_slot(&self, address: SocketAddr) -> Slot {
        let encoded = Encoded::socket(address);
        let group = address_group(address.ip()).encode();
        let lane = reduce(
            self.hash(&[b"t", encoded.as_slice()]),
            self.config.tried_buckets_per_group,
        );
        let bucket = reduce(
            self.hash(&[b"T", group.as_slice(), &lane.to_be_bytes()]),
            self.config.tried_buckets,
        );
        let position = reduce(
            self.hash(&[b"S", &bucket.to_be_bytes(), encoded.as_slice()]),
            self.config.bucket_size,
        );
        Slot { bucket, position }
    }
}

/// `hash mod n` as a table index (`n` is at most [`MAX_BUCKETS`]).
fn reduce(hash: u64, n: usize) -> u32 {
    let reduced = hash.checked_rem(n as u64).unwrap_or(0);
    u32::try_from(reduced).unwrap_or(0)
}
