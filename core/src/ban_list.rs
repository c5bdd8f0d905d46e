//! The ban list: peers and IP addresses refused until a deadline, in bounded memory.
//!
//! A node bans a peer that breaks the protocol, and — unless configured otherwise — the IP
//! address it came from, since a new key costs an attacker nothing. Each breach costs the
//! attacker one handshake and us one entry, so without a bound an attacker rotating keys
//! grows the list for as long as it keeps going. The list holds at most its capacity of
//! entries (peers and IPs together); when a ban arrives at a full list, the ban with the
//! shortest time left goes, which is the newcomer itself if it would expire first. Bans
//! of one length (the violation ban) therefore leave oldest first, while a long ban the
//! application set outlives a flood of short ones.

use alloc::collections::{BTreeMap, BTreeSet};
use core::net::IpAddr;

use crate::identity::PeerId;
use crate::time::Instant;

/// Entries a [`BanList`] holds by default: 4,096, about 630 KiB when full (157 B an entry
/// measured, both indexes and their B-tree nodes counted), a fifth of a full address book.
/// It is what a flood of breaches can take: a debug build on loopback took 1,700 breaches
/// a second, a million bans over the ten minutes of a violation ban, so under a flood the
/// oldest bans go. An attacker rotating keys gains nothing from that (its old keys are
/// abandoned), and each of its breaches bans its address afresh. Below flood rates 4,096
/// holds every ban: seven a second for ten minutes.
pub const DEFAULT_MAX_BANS: usize = 4096;

/// What is banned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Banned {
    /// An identity: refused after the handshake, never dialed.
    Peer(PeerId),
    /// An address: refused before the handshake, never dialed. IPv4-mapped IPv6 addresses
    /// are stored as the IPv4 address they map.
    Ip(IpAddr),
}

/// Bans with their deadlines, at most [`BanList::capacity`] of them. See the
/// [module documentation](self).
#[derive(Clone, Debug)]
pub struct BanList {
    capacity: usize,
    until: BTreeMap<Banned, Instant>,
    /// The same entries ordered by deadline: the one to evict first, and the expired ones.
    by_deadline: BTreeSet<(Instant, Banned)>,
}

impl Default for BanList {
    fn default() -> Self {
        BanList::new(DEFAULT_MAX_BANS)
    }
}

impl BanList {
    /// An empty list holding at most `capacity` bans (at least 1).
    pub fn new(capacity: usize) -> Self {
        BanList {
            capacity: capacity.max(1),
            until: BTreeMap::new(),
            by_deadline: BTreeSet::new(),
        }
    }

    /// The most bans held.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Bans held, expired ones not yet forgotten included ([`BanList::expire`]).
    pub fn len(&self) -> usize {
        self.until.len()
    }

    /// Whether no ban is held.
    pub fn is_empty(&self) -> bool {
        self.until.is_empty()
    }

    /// Bans `banned` until `until`. A ban already held is extended, never shortened. At
    /// capacity, the ban with the shortest time left is dropped — the new one, if it would
    /// end first.
    pub fn ban(&mut self, banned: Banned, until: Instant) {
        let banned = canonical(banned);
        if let Some(&held) = self.until.get(&banned) {
            if held >= until {
                return;
            }
            self.by_deadline.remove(&(held, banned));
        } else if self.until.len() >= self.capacity {
            match self.by_deadline.first().copied() {
                Some((first, _)) if first > until => return,
                Some(evicted) => {
                    self.by_deadline.remove(&evicted);
                    self.until.remove(&evicted.1);
                }
                None => {}
            }
        }
        self.until.insert(banned, until);
        self.by_deadline.insert((until, banned));
    }

    /// Whether `banned` is banned at `now`.
    pub fn is_banned(&self, now: Instant, banned: Banned) -> bool {
        self.until
            .get(&canonical(banned))
            .is_some_and(|until| *until > now)
    }

    /// Whether `peer` is banned at `now`.
    pub fn is_peer_banned(&self, now: Instant, peer: &PeerId) -> bool {
        self.is_banned(now, Banned::Peer(*peer))
    }

    /// Whether `ip` is banned at `now`.
    pub fn is_ip_banned(&self, now: Instant, ip: IpAddr) -> bool {
        self.is_banned(now, Banned::Ip(ip))
    }

    /// Bans in force at `now`: peers, then IPs. Expired bans linger until
    /// [`BanList::expire`]; they are left out here, for an operator's gauge that does not
    /// lag the sweep.
    pub fn counts(&self, now: Instant) -> (usize, usize) {
        let in_force = self
            .by_deadline
            .iter()
            .rev()
            .take_while(|(until, _)| *until > now);
        in_force.fold((0, 0), |(peers, ips), (_, banned)| match banned {
            Banned::Peer(_) => (peers.saturating_add(1), ips),
            Banned::Ip(_) => (peers, ips.saturating_add(1)),
        })
    }

    /// Forgets the bans that ended by `now`.
    pub fn expire(&mut self, now: Instant) {
        while let Some(&(until, banned)) = self.by_deadline.first() {
            if until > now {
                break;
            }
            self.by_deadline.remove(&(until, banned));
            self.until.remove(&banned);
        }
    }
}

fn canonical(banned: Banned) -> Banned {
    match banned {
        Banned::Ip(ip) => Banned::Ip(ip.to_canonical()),
        peer => peer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    fn at(secs: u64) -> Instant {
        Instant::from_nanos(secs * 1_000_000_000)
    }

    fn peer(n: u16) -> Banned {
        let mut bytes = [0; 32];
        bytes[..2].copy_from_slice(&n.to_be_bytes());
        Banned::Peer(PeerId::from_bytes(bytes))
    }

    fn ip(n: u8) -> Banned {
        Banned::Ip(IpAddr::V4(Ipv4Addr::new(127, 0, 0, n)))
    }

    #[test]
    fn bans_end_at_their_deadline_and_are_extended_never_shortened() {
        let mut list = BanList::new(8);
        list.ban(peer(1), at(10));
        list.ban(ip(1), at(20));
        assert!(list.is_banned(at(9), peer(1)));
        assert!(!list.is_banned(at(10), peer(1)));
        list.ban(ip(1), at(5));
        assert!(list.is_banned(at(19), ip(1)), "not shortened");
        list.ban(ip(1), at(30));
        assert!(list.is_banned(at(29), ip(1)), "extended");
        assert_eq!(list.counts(at(0)), (1, 1));
        assert_eq!(list.counts(at(10)), (0, 1));
        assert_eq!(list.len(), 2, "expired, not yet forgotten");
        list.expire(at(10));
        assert_eq!(list.len(), 1);
        list.expire(at(30));
        assert!(list.is_empty());
    }

    #[test]
    fn an_ipv4_mapped_address_is_the_ipv4_address() {
        let mut list = BanList::new(8);
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        list.ban(Banned::Ip(mapped), at(10));
        assert!(list.is_banned(at(0), ip(1)));
        assert!(list.is_ip_banned(at(0), mapped));
    }

    #[test]
    fn a_full_list_drops_the_ban_with_the_shortest_time_left() {
        let mut list = BanList::new(3);
        list.ban(peer(1), at(100));
        list.ban(peer(2), at(50));
        list.ban(ip(1), at(70));
        list.ban(peer(3), at(60));
        assert_eq!(list.len(), 3);
        assert!(!list.is_banned(at(0), peer(2)), "the shortest went");
        assert!(list.is_banned(at(0), peer(3)));
        list.ban(peer(4), at(10));
        assert!(
            !list.is_banned(at(0), peer(4)),
            "the newcomer is the shortest"
        );
        assert!(list.is_banned(at(0), peer(3)));
        list.ban(peer(3), at(200));
        assert_eq!(list.len(), 3, "an extension evicts nothing");
        assert!(list.is_banned(at(0), ip(1)));
    }

    #[test]
    fn ten_thousand_breaches_from_a_hundred_addresses_keep_the_list_at_capacity() {
        let mut list = BanList::new(DEFAULT_MAX_BANS);
        for breach in 0..10_000u16 {
            let now = Instant::from_nanos(u64::from(breach) * 1_000_000);
            let until = now.saturating_add(core::time::Duration::from_secs(600));
            list.ban(peer(breach), until);
            list.ban(ip(u8::try_from(breach % 100).unwrap()), until);
            assert!(list.len() <= DEFAULT_MAX_BANS);
        }
        assert_eq!(list.len(), DEFAULT_MAX_BANS);
        assert_eq!(list.until.len(), list.by_deadline.len());
        assert!(list.is_banned(at(10), peer(9_999)), "the newest is kept");
        assert!(!list.is_banned(at(10), peer(0)), "the oldest went");
        for n in 0..100 {
            assert!(
                list.is_banned(at(10), ip(n)),
                "every address, re-banned each round"
            );
        }
    }
}
