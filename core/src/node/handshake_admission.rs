//! Which inbound connections are in the handshake, by subnet: the per-subnet shares of the
//! pending-handshake budget, and which handshake to drop when the budget is full.
//!
//! A handshake holds its slot until it completes or times out. Without shares, a few
//! subnets' silent sockets keep the whole budget full and every newcomer is refused
//! (a slowloris). With them, a full budget makes room: the newcomer takes the place of the
//! oldest handshake of the subnet holding the most, provided that subnet holds more than the
//! newcomer's own. An attacker then keeps out only newcomers from its own subnets, and an
//! honest dialer, whose handshake takes a round trip, is almost never the oldest.

use alloc::collections::{BTreeMap, BTreeSet};

use crate::peer_set::Subnet;
use crate::time::Instant;

use super::ConnId;

/// The inbound handshakes under way. See the [module documentation](self).
#[derive(Debug, Default)]
pub(super) struct PendingInbound {
    by_conn: BTreeMap<ConnId, (Subnet, Instant)>,
    /// Per subnet, its handshakes by age (ties by id): never an empty set.
    by_subnet: BTreeMap<Subnet, BTreeSet<(Instant, ConnId)>>,
}

impl PendingInbound {
    /// Inbound handshakes from `subnet`.
    pub(super) fn count(&self, subnet: Subnet) -> usize {
        self.by_subnet.get(&subnet).map_or(0, BTreeSet::len)
    }

    /// The most any one subnet holds (for a checker's invariant).
    pub(super) fn largest_share(&self) -> usize {
        self.by_subnet
            .values()
            .map(BTreeSet::len)
            .max()
            .unwrap_or(0)
    }

    /// `conn`, accepted at `now` from `subnet`, entered the handshake.
    pub(super) fn insert(&mut self, conn: ConnId, subnet: Subnet, now: Instant) {
        if self.by_conn.insert(conn, (subnet, now)).is_none() {
            self.by_subnet
                .entry(subnet)
                .or_default()
                .insert((now, conn));
        }
    }

    /// `conn` left the handshake (admitted, refused, closed); nothing if it was not in it.
    pub(super) fn remove(&mut self, conn: ConnId) {
        let Some((subnet, since)) = self.by_conn.remove(&conn) else {
            return;
        };
        if let Some(set) = self.by_subnet.get_mut(&subnet) {
            set.remove(&(since, conn));
            if set.is_empty() {
                self.by_subnet.remove(&subnet);
            }
        }
    }

    /// The handshake to drop for a newcomer from `newcomer`: the oldest of the subnet holding
    /// the most (of those holding equally many, the one whose oldest is oldest), if that
    /// subnet holds more than the newcomer's. `None`: the newcomer's subnet is among the
    /// largest, and it is the one refused. Depends on the handshakes alone, so it is
    /// deterministic.
    pub(super) fn victim(&self, newcomer: Subnet) -> Option<ConnId> {
        let own = self.count(newcomer);
        let (len, oldest) = self
            .by_subnet
            .values()
            .filter_map(|set| set.first().map(|oldest| (set.len(), *oldest)))
            .max_by(|(a_len, a_oldest), (b_len, b_oldest)| {
                a_len.cmp(b_len).then_with(|| b_oldest.cmp(a_oldest))
            })?;
        (len > own).then_some(oldest.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer_set::subnet;
    use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    fn v4(c: u8) -> Subnet {
        subnet(IpAddr::V4(Ipv4Addr::new(203, 0, c, 1)))
    }

    #[test]
    fn the_victim_is_the_oldest_of_the_largest_subnet_and_never_from_an_equal_one() {
        let mut pending = PendingInbound::default();
        let at = Instant::from_nanos;
        // Subnet 1: three handshakes; subnet 2: three, the oldest of all; subnet 3: one.
        pending.insert(ConnId(1), v4(1), at(20));
        pending.insert(ConnId(2), v4(1), at(30));
        pending.insert(ConnId(3), v4(1), at(40));
        pending.insert(ConnId(4), v4(2), at(10));
        pending.insert(ConnId(5), v4(2), at(50));
        pending.insert(ConnId(6), v4(2), at(60));
        pending.insert(ConnId(7), v4(3), at(5));
        assert_eq!(pending.largest_share(), 3);
        // A tie between subnets 1 and 2 goes to the older handshake, in subnet 2.
        assert_eq!(pending.victim(v4(9)), Some(ConnId(4)));
        assert_eq!(pending.victim(v4(3)), Some(ConnId(4)));
        // A newcomer from a largest subnet is the one refused.
        assert_eq!(pending.victim(v4(1)), None);
        pending.remove(ConnId(4));
        assert_eq!(pending.count(v4(2)), 2);
        assert_eq!(pending.victim(v4(2)), Some(ConnId(1)));
        pending.remove(ConnId(4));
        for conn in [1, 2, 3, 5, 6, 7] {
            pending.remove(ConnId(conn));
        }
        assert_eq!(pending.largest_share(), 0);
        assert_eq!(pending.victim(v4(1)), None);
    }

    #[test]
    fn ipv6_addresses_share_a_subnet_per_48() {
        let a = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0xff, 0, 0, 0, 1));
        let b = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0x1, 7, 0, 0, 1));
        let c = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 1));
        assert_eq!(subnet(a), subnet(b));
        assert_ne!(subnet(a), subnet(c));
        let mapped = IpAddr::V6(Ipv4Addr::new(203, 0, 7, 9).to_ipv6_mapped());
        assert_eq!(subnet(mapped), v4(7));
    }
}
