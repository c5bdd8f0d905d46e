//! Inbound eviction: when every inbound slot is taken, which inbound peer makes room for a
//! newly authenticated one.
//!
//! Without it, whoever fills the inbound slots first holds them for as long as it answers
//! PINGs: a few dozen cheap identities lock every new node out. Following Bitcoin Core's
//! `SelectNodeToEvict`, the peers an attacker cannot easily imitate are protected first — by
//! several criteria, so that beating one buys the attacker nothing — and the peer evicted
//! comes from the subnet holding the most of the rest, where an attacker's identities, bound
//! to the few subnets it rents, end up.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::cmp::Reverse;
use core::hash::BuildHasher;
use core::time::Duration;

use foldhash::fast::FixedState;

use crate::peer_set::Subnet;
use crate::time::Instant;

use super::ConnId;

/// Inbound eviction settings ([`NodeConfig::eviction`](super::NodeConfig::eviction)).
///
/// Persistent and trusted peers are never evicted, whatever these say. Of the other inbound
/// peers, these are protected in turn, each criterion choosing among those the previous ones
/// left, and half of what remains by time connected; the peer evicted is the most recently
/// connected of the subnet ([`subnet`](crate::peer_set::subnet)) holding the most of the
/// rest. With the defaults and 40 inbound slots, 16 peers are protected by the criteria and
/// 12 more by age, and the victim is one of the 12 left.
///
/// So a node with few inbound slots may evict no one: with the defaults, 16 inbound peers
/// can all be protected by the criteria, and a newcomer is then refused as without eviction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EvictionConfig {
    /// Whether a new inbound peer may evict an existing one when the inbound slots are full
    /// (else it is refused with `TooManyPeers`). Default `true`.
    pub enabled: bool,
    /// Peers protected one per subnet, the subnets chosen by a hash keyed with the node's
    /// secret: an attacker cannot tell which subnets to take the place of, and renting a new
    /// subnet does not buy protection. Default 4.
    pub protect_by_subnet: usize,
    /// Peers with the lowest round-trip time protected: a nearby peer is costly to imitate,
    /// as the attacker must be as close. Default 8.
    pub protect_by_rtt: usize,
    /// Peers whose messages the application took most recently protected: peers useful to
    /// it, which an attacker can only imitate by being as useful. Default 4.
    pub protect_by_use: usize,
}

impl Default for EvictionConfig {
    fn default() -> Self {
        EvictionConfig {
            enabled: true,
            protect_by_subnet: 4,
            protect_by_rtt: 8,
            protect_by_use: 4,
        }
    }
}

/// An inbound peer that may be evicted: neither persistent nor trusted.
#[derive(Clone, Copy, Debug)]
pub(super) struct Candidate {
    pub(super) conn: ConnId,
    pub(super) subnet: Subnet,
    /// When its handshake completed.
    pub(super) connected_at: Instant,
    pub(super) rtt: Option<Duration>,
    /// When the application last took a message of its.
    pub(super) last_useful: Option<Instant>,
}

/// The peer to evict among `candidates`, or `None` when every one is protected. `key` keys
/// the subnet hash. A function of its arguments alone: ties are broken by connection time,
/// then connection id.
pub(super) fn select(
    config: &EvictionConfig,
    key: u64,
    mut candidates: Vec<Candidate>,
) -> Option<ConnId> {
    // Oldest first: each criterion keeps the longest-connected among equals.
    candidates.sort_by_key(|c| (c.connected_at, c.conn));
    let hasher = FixedState::with_seed(key);
    let mut subnets: Vec<(u64, Subnet)> = candidates
        .iter()
        .map(|c| (hasher.hash_one(c.subnet), c.subnet))
        .collect();
    subnets.sort_unstable();
    subnets.dedup();
    for (_, subnet) in subnets.into_iter().take(config.protect_by_subnet) {
        if let Some(at) = candidates.iter().position(|c| c.subnet == subnet) {
            candidates.remove(at);
        }
    }
    protect(&mut candidates, config.protect_by_rtt, |c| {
        c.rtt.map(Reverse)
    });
    protect(&mut candidates, config.protect_by_use, |c| c.last_useful);
    // Half of the rest by time connected: peers that stayed long are likely honest, and an
    // attacker arriving now would wait as long to take their place.
    let by_age = candidates.len() / 2;
    candidates.drain(..by_age);
    // Per subnet: how many, and its most recent arrival.
    let mut counts: BTreeMap<Subnet, (usize, Instant)> = BTreeMap::new();
    for c in &candidates {
        let (count, youngest) = counts.entry(c.subnet).or_insert((0, c.connected_at));
        *count = count.saturating_add(1);
        *youngest = (*youngest).max(c.connected_at);
    }
    // The subnet holding the most; of equals, the one with the most recent arrival.
    let (subnet, _) = counts
        .into_iter()
        .max_by_key(|(subnet, (count, youngest))| (*count, *youngest, *subnet))?;
    candidates
        .iter()
        .rev()
        .find(|c| c.subnet == subnet)
        .map(|c| c.conn)
}

/// Removes from `candidates` (oldest first) the `count` with the greatest `score`, those
/// without one never: a stable sort keeps the oldest of equal scores first.
fn protect<T: Ord>(
    candidates: &mut Vec<Candidate>,
    count: usize,
    score: impl Fn(&Candidate) -> Option<T>,
) {
    let mut ranked: Vec<(usize, T)> = candidates
        .iter()
        .enumerate()
        .filter_map(|(at, c)| score(c).map(|s| (at, s)))
        .collect();
    ranked.sort_by(|(_, a), (_, b)| b.cmp(a));
    let mut protected: Vec<usize> = ranked.into_iter().take(count).map(|(at, _)| at).collect();
    protected.sort_unstable();
    for at in protected.into_iter().rev() {
        candidates.remove(at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer_set::subnet;
    use core::net::{IpAddr, Ipv4Addr};

    fn candidate(id: u64, c: u8, connected: u64) -> Candidate {
        Candidate {
            conn: ConnId(id),
            subnet: subnet(IpAddr::V4(Ipv4Addr::new(198, 51, c, 1))),
            connected_at: Instant::from_nanos(connected),
            rtt: None,
            last_useful: None,
        }
    }

    fn no_protection() -> EvictionConfig {
        EvictionConfig {
            enabled: true,
            protect_by_subnet: 0,
            protect_by_rtt: 0,
            protect_by_use: 0,
        }
    }

    #[test]
    fn the_youngest_of_the_largest_subnet_goes_after_half_are_kept_by_age() {
        // Four old peers of subnet 1 are kept by age; of the rest, subnet 2 holds the most.
        let mut candidates: Vec<Candidate> = (0..4).map(|i| candidate(i, 1, i)).collect();
        candidates.extend((4..7).map(|i| candidate(i, 2, i * 10)));
        candidates.push(candidate(7, 3, 100));
        assert_eq!(
            select(&no_protection(), 0, candidates.clone()),
            Some(ConnId(6))
        );
        // Ten peers, five kept by age (ids 0..=4); left: 5, 6 (subnet 2), 7, 8, 9 (subnet 3).
        candidates.push(candidate(8, 3, 200));
        candidates.push(candidate(9, 3, 300));
        assert_eq!(
            select(&no_protection(), 0, candidates.clone()),
            Some(ConnId(9))
        );
        // Equal counts (9 leaves, 10 comes from subnet 4; left: 5, 6 and 7, 8 and 10): the
        // subnet with the most recent arrival, subnet 3.
        candidates.retain(|c| c.conn != ConnId(9));
        candidates.push(candidate(10, 4, 250));
        assert_eq!(select(&no_protection(), 0, candidates), Some(ConnId(8)));
        assert_eq!(select(&no_protection(), 0, Vec::new()), None);
    }

    #[test]
    fn each_criterion_protects_and_the_choice_is_a_function_of_its_inputs() {
        let mut candidates: Vec<Candidate> = (0..8).map(|i| candidate(i, 1, 1000 + i)).collect();
        // The youngest of subnet 1 (id 7) would go; a low RTT or recent use protects it.
        assert_eq!(
            select(&no_protection(), 0, candidates.clone()),
            Some(ConnId(7))
        );
        candidates[7].rtt = Some(Duration::from_millis(1));
        candidates[6].rtt = Some(Duration::from_millis(50));
        let by_rtt = EvictionConfig {
            protect_by_rtt: 1,
            ..no_protection()
        };
        assert_eq!(select(&by_rtt, 0, candidates.clone()), Some(ConnId(6)));
        candidates[6].last_useful = Some(Instant::from_nanos(5));
        let by_use = EvictionConfig {
            protect_by_use: 1,
            ..by_rtt
        };
        assert_eq!(select(&by_use, 0, candidates.clone()), Some(ConnId(5)));
        // One peer per subnet by keyed hash: a lone peer of another subnet is never chosen
        // while protected, whatever the key.
        candidates.push(candidate(8, 2, 2000));
        let by_subnet = EvictionConfig {
            protect_by_subnet: 2,
            ..no_protection()
        };
        for key in 0..16 {
            let chosen = select(&by_subnet, key, candidates.clone());
            assert_ne!(chosen, Some(ConnId(8)), "key {key}");
            assert_eq!(chosen, select(&by_subnet, key, candidates.clone()));
        }
    }
}
