//! The address book's dimensions and policies.

use core::time::Duration;

/// Most buckets in either table; [`AddrBookConfig`] clamps to it.
pub const MAX_BUCKETS: usize = 4096;
/// Most slots in one bucket; [`AddrBookConfig`] clamps to it.
pub const MAX_BUCKET_SIZE: usize = 256;
/// Most pending tried-table collisions; [`AddrBookConfig`] clamps to it.
pub const MAX_COLLISIONS: usize = 1024;

/// The address book's dimensions and policies.
///
/// The defaults hold 16,384 *new* and 4,096 *tried* addresses: at most about 3 MB of
/// entries when full, and about 8 KB when empty (a bucket's slots are allocated on first
/// use). Out-of-range values are clamped (see [`MAX_BUCKETS`], [`MAX_BUCKET_SIZE`],
/// [`MAX_COLLISIONS`]; every count at least 1), so any configuration is usable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddrBookConfig {
    /// Buckets of the *new* table (addresses heard of). Default 256.
    pub new_buckets: usize,
    /// Buckets of the *tried* table (addresses connected to). Default 64.
    pub tried_buckets: usize,
    /// Slots per bucket, both tables. Default 64.
    pub bucket_size: usize,
    /// *New* buckets the addresses relayed by one source group can land in: what one
    /// attacker network can fill at most. Default 16 (1/16 of the table).
    pub new_buckets_per_source_group: usize,
    /// *Tried* buckets the addresses of one group can land in. Default 4 (1/16 of the table).
    pub tried_buckets_per_group: usize,
    /// Percent of [`AddrBook::select`](super::AddrBook::select) draws that look in *tried*
    /// first when both tables hold addresses; the rest explore *new*. Default 50.
    pub tried_bias_percent: u8,
    /// An address attempted less than this long ago is not selected. Default 60 s.
    pub reselect_after: Duration,
    /// Tried-table collisions awaiting their test at once; more are deferred. Default 10.
    pub max_collisions: usize,
    /// A collision whose occupant has not answered within this is resolved by evicting the
    /// occupant. Default 5 min.
    pub collision_timeout: Duration,
    /// An address not heard of for this long is terrible. Default 30 days.
    pub horizon: Duration,
    /// Failures after which an address never connected to is terrible. Default 3.
    pub max_retries: u32,
    /// Failures after which an address not connected to within `min_fail_period` is
    /// terrible. Default 10.
    pub max_failures: u32,
    /// See `max_failures`. Default 7 days.
    pub min_fail_period: Duration,
    /// Store only publicly routable addresses (CometBFT's `addr_book_strict`): loopback,
    /// private, carrier-grade NAT, link-local and unique-local addresses
    /// ([`AddressGroup::Local`](super::AddressGroup::Local)) are refused, whoever relays
    /// them, and dropped from a loaded book. Otherwise any peer could make the node dial
    /// its LAN or its own loopback ports. Turn it off for a network that is local: a LAN,
    /// a cluster on one host, a simulation. Default on.
    pub routable_only: bool,
}

impl Default for AddrBookConfig {
    fn default() -> Self {
        AddrBookConfig {
            new_buckets: 256,
            tried_buckets: 64,
            bucket_size: 64,
            new_buckets_per_source_group: 16,
            tried_buckets_per_group: 4,
            tried_bias_percent: 50,
            reselect_after: Duration::from_secs(60),
            max_collisions: 10,
            collision_timeout: Duration::from_secs(5 * 60),
            horizon: Duration::from_secs(30 * 24 * 3600),
            max_retries: 3,
            max_failures: 10,
            min_fail_period: Duration::from_secs(7 * 24 * 3600),
            routable_only: true,
        }
    }
}

impl AddrBookConfig {
    /// The configuration with every count inside its documented range.
    pub(super) fn clamped(self) -> Self {
        let new_buckets = self.new_buckets.clamp(1, MAX_BUCKETS);
        let tried_buckets = self.tried_buckets.clamp(1, MAX_BUCKETS);
        AddrBookConfig {
            new_buckets,
            tried_buckets,
            bucket_size: self.bucket_size.clamp(1, MAX_BUCKET_SIZE),
            new_buckets_per_source_group: self.new_buckets_per_source_group.clamp(1, new_buckets),
            tried_buckets_per_group: self.tried_buckets_per_group.clamp(1, tried_buckets),
            tried_bias_percent: self.tried_bias_percent.min(100),
            max_collisions: self.max_collisions.min(MAX_COLLISIONS),
            ..self
        }
    }

    /// Slots of the *new* table: the most addresses it holds.
    pub fn new_capacity(&self) -> usize {
        let clamped = self.clamped();
        clamped.new_buckets.saturating_mul(clamped.bucket_size)
    }

    /// Slots of the *tried* table: the most addresses it holds.
    pub fn tried_capacity(&self) -> usize {
        let clamped = self.clamped();
        clamped.tried_buckets.saturating_mul(clamped.bucket_size)
    }
}
