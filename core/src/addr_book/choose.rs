//! Choosing addresses: [`AddrBook::select`] for the next dial, [`AddrBook::sample`] for a
//! PEX reply. Both draw uniformly from the tables' dense id lists, so their work does not
//! depend on how full the buckets are, and both are bounded.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use rand_core::Rng;

use super::{AddrBook, Entry, Table};
use crate::net_address::NetAddress;
use crate::time::Instant;

/// Draws in [`AddrBook::select`] before it falls back to scanning.
pub(super) const SELECT_PROBES: u32 = 64;
/// Entries per table the fallback scan of [`AddrBook::select`] looks at, at most.
pub(super) const SELECT_SCAN: usize = 256;
/// The chance, in 1/65,536, that a draw accepts an address after `n` failures:
/// 0.66^min(n, 8), as addrman's `GetChance`.
const CHANCE: [u32; 9] = [65536, 43254, 28547, 18841, 12435, 8207, 5417, 3575, 2360];

impl AddrBook {
    /// An address to dial: from *tried* with probability `tried_bias_percent`
    /// ([`AddrBookConfig`](super::AddrBookConfig)) when both tables hold addresses, so the
    /// node mostly returns to peers that worked and still explores new ones. Addresses
    /// `filter` rejects (connected peers, groups already used by an outbound peer, banned
    /// ones) and addresses attempted within `reselect_after` are skipped; addresses that
    /// failed recently are less likely (0.66 per failure, as addrman).
    ///
    /// The work is bounded: 64 random draws, then a scan of at most 256 entries per table.
    /// `None` means nothing eligible was found; when `filter` rejects nearly everything in a
    /// large book, that can happen although an eligible address exists.
    #[must_use]
    pub fn select<R: Rng + ?Sized>(
        &self,
        rng: &mut R,
        now: Instant,
        mut filter: impl FnMut(&NetAddress) -> bool,
    ) -> Option<NetAddress> {
        if self.is_empty() {
            return None;
        }
        let mut eligible = |entry: &Entry| {
            !entry.attempted_within(now, self.config.reselect_after) && filter(&entry.address)
        };
        for probe in 1..=SELECT_PROBES {
            let ids = &self.table(self.pick_table(rng)).ids;
            let Some(entry) = ids
                .get(random_below(rng, ids.len()))
                .and_then(|&id| self.entry(id))
            else {
                continue;
            };
            if !eligible(entry) {
                continue;
            }
            let failures = (entry.failures as usize).min(CHANCE.len().saturating_sub(1));
            let chance = CHANCE.get(failures).copied().unwrap_or(0);
            // Each draw is more willing than the last, so the loop ends with an answer.
            if rng.next_u32() & 0xFFFF < chance.saturating_mul(probe) {
                return Some(entry.address);
            }
        }
        let first = self.pick_table(rng);
        let second = match first {
            Table::New => Table::Tried,
            Table::Tried => Table::New,
        };
        for table in [first, second] {
            let ids = &self.table(table).ids;
            let start = random_below(rng, ids.len());
            let scan = ids.iter().skip(start).chain(ids.iter().take(start));
            for &id in scan.take(SELECT_SCAN) {
                if let Some(entry) = self.entry(id).filter(|entry| eligible(entry)) {
                    return Some(entry.address);
                }
            }
        }
        None
    }

    /// At most `max` distinct addresses in random order, both tables, for a PEX reply,
    /// leaving out terrible ones and those `filter` rejects (private peers, the asking peer).
    /// The work is bounded by `4 × max + 64` draws.
    #[must_use]
    pub fn sample<R: Rng + ?Sized>(
        &self,
        rng: &mut R,
        now: Instant,
        max: usize,
        mut filter: impl FnMut(&NetAddress) -> bool,
    ) -> Vec<NetAddress> {
        let new_len = self.new.ids.len();
        let total = self.len();
        let draws = total.min(max.saturating_mul(4).saturating_add(64));
        let mut out = Vec::with_capacity(max.min(total));
        // A partial Fisher–Yates shuffle of the virtual list `new ids ‖ tried ids`; `moved`
        // holds the positions the shuffle has written.
        let mut moved: BTreeMap<usize, usize> = BTreeMap::new();
        for i in 0..draws {
            if out.len() >= max {
                break;
            }
            let j = i.saturating_add(random_below(rng, total.saturating_sub(i)));
            let at_i = moved.get(&i).copied().unwrap_or(i);
            let at_j = moved.get(&j).copied().unwrap_or(j);
            moved.insert(j, at_i);
            let id = match at_j.checked_sub(new_len) {
                None => self.new.ids.get(at_j),
                Some(tried) => self.tried.ids.get(tried),
            };
            if let Some(entry) = id.and_then(|&id| self.entry(id))
                && !entry.is_terrible(now, &self.config)
                && filter(&entry.address)
            {
                out.push(entry.address);
            }
        }
        out
    }

    /// The table a draw looks in: *tried* with the configured bias when both hold entries.
    fn pick_table<R: Rng + ?Sized>(&self, rng: &mut R) -> Table {
        match (self.new.ids.is_empty(), self.tried.ids.is_empty()) {
            (_, true) => Table::New,
            (true, false) => Table::Tried,
            (false, false) => {
                if random_below(rng, 100) < usize::from(self.config.tried_bias_percent) {
                    Table::Tried
                } else {
                    Table::New
                }
            }
        }
    }
}

/// A uniform draw in `0..n` (0 when `n` is 0); the modulo bias is below `n / 2^64`.
fn random_below<R: Rng + ?Sized>(rng: &mut R, n: usize) -> usize {
    let draw = rng.next_u64().checked_rem(n as u64).unwrap_or(0);
    usize::try_from(draw).unwrap_or(0)
}
