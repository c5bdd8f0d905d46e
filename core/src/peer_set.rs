//! The peer set's policies: connection limits, per-address limits, the network allow-list,
//! bans (a [`BanList`]), and the trusted and persistent exemptions.
//!
//! It holds counts and lists only; the [`Node`](crate::node::Node) asks it before admitting
//! a socket or a handshaken peer and tells it when connections come and go.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;
use core::fmt;
use core::net::{IpAddr, SocketAddr};
use core::time::Duration;

use crate::ban_list::BanList;
use crate::disconnect::DisconnectReason;
use crate::identity::PeerId;
use crate::net_address::NetAddress;
use crate::time::Instant;

/// Connection limits, with their defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Established inbound peers, trusted peers not counted. Default 40.
    pub max_inbound: usize,
    /// Established outbound peers (persistent peers may exceed it). Default 10.
    pub max_outbound: usize,
    /// Connections in the handshake, both directions. Default 50. When it is full, an
    /// accepted socket still gets in by dropping the oldest inbound handshake of the subnet
    /// holding the most, if that subnet holds more than the newcomer's: a flood from a few
    /// subnets cannot keep everyone else out.
    pub max_pending_handshakes: usize,
    /// Inbound connections in the handshake from one subnet (see [`subnet`]): its share of
    /// `max_pending_handshakes`. Default 10, a fifth: filling the budget takes at least five
    /// subnets, and then the newcomer from elsewhere makes room for itself.
    pub max_pending_per_subnet: usize,
    /// Inbound connections from one IP address, in the handshake or established: also an
    /// address's share of the pending handshakes. Default 2.
    pub max_inbound_per_ip: usize,
    /// Inbound connections from one subnet ([`subnet`]), in the handshake or established.
    /// Default 8.
    pub max_inbound_per_subnet: usize,
    /// Query connections we dial (`Node::open_query`), in flight and open together; they
    /// hold no outbound slot. Default 16: a lookup asks a few nodes at a time (Kademlia's
    /// α = 3), so 16 serve several lookups at once, and each costs a socket.
    pub max_outbound_queries: usize,
    /// Query connections others dial to us, open at once: admitted outside the inbound peer
    /// slots, never evicting anyone, refused (`TooManyPeers`) beyond. Default 32: twice the
    /// outbound budget, so two nodes' worth of lookups at once are served, and below
    /// `max_inbound`, so at most that many sockets again are spent on strangers. An inbound
    /// query connection counts against `max_inbound_per_ip` and `max_inbound_per_subnet`
    /// as any inbound socket does.
    pub max_inbound_queries: usize,
    /// A query connection with nothing queued, unconfirmed or received for this long is
    /// closed (`Requested`), by either end. Default 5 s.
    pub query_idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_inbound: 40,
            max_outbound: 10,
            max_pending_handshakes: 50,
            max_pending_per_subnet: 10,
            max_inbound_per_ip: 2,
            max_inbound_per_subnet: 8,
            max_outbound_queries: 16,
            max_inbound_queries: 32,
            query_idle_timeout: Duration::from_secs(5),
        }
    }
}

/// Why an accepted socket was refused before any handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refused {
    /// Too many connections are in the handshake, and none could be dropped for this one
    /// (the newcomer's subnet holds as many as any other).
    PendingHandshakes,
    /// Too many inbound connections from this subnet are in the handshake.
    PendingPerSubnet,
    /// Too many inbound connections from this IP.
    PerIp,
    /// Too many inbound connections from this subnet.
    PerSubnet,
    /// The address is outside the allowed networks.
    NotAllowed,
    /// The address is banned.
    Banned,
    /// The node is shutting down.
    ShuttingDown,
    /// The socket passed every policy but the node could not create its connection: its own
    /// `NodeInfo` failed to encode, or every connection id is taken. Never the remote's
    /// doing and not expected to happen — a bug to log, not a refusal to count.
    Internal,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refused::PendingHandshakes => "too many pending handshakes",
            Refused::PendingPerSubnet => "too many pending handshakes from this subnet",
            Refused::PerIp => "too many connections from this IP",
            Refused::PerSubnet => "too many connections from this subnet",
            Refused::NotAllowed => "address outside the allowed networks",
            Refused::Banned => "address banned",
            Refused::ShuttingDown => "shutting down",
            Refused::Internal => "internal error: the connection could not be created",
        })
    }
}

impl core::error::Error for Refused {}

/// A network prefix: an address and how many leading bits of it count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpNet {
    /// The network address.
    pub addr: IpAddr,
    /// Prefix length in bits (at most 32 for IPv4, 128 for IPv6).
    pub prefix: u8,
}

impl IpNet {
    /// Whether `ip` lies inside this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_eq(
                u128::from(net.to_bits()),
                u128::from(ip.to_bits()),
                32,
                self.prefix,
            ),
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(net.to_bits(), ip.to_bits(), 128, self.prefix)
            }
            _ => false,
        }
    }
}

fn prefix_eq(a: u128, b: u128, width: u32, prefix: u8) -> bool {
    let prefix = u32::from(prefix).min(width);
    let shift = width.saturating_sub(prefix);
    a.checked_shr(shift).unwrap_or(0) == b.checked_shr(shift).unwrap_or(0)
}

/// The subnet an inbound address is counted under: see [`subnet`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subnet {
    v6: bool,
    prefix: u128,
}

/// The subnet of `ip` for the per-subnet limits, the pending-handshake shares and inbound
/// eviction: the /24 of an IPv4 address (an IPv4-mapped IPv6 address counts as the IPv4
/// address), the /48 of an IPv6 address. Finer than the address book's groups
/// ([`address_group`](crate::addr_book::address_group), /16 and /32), because these limits
/// cap what one cheaply rented block may hold; coarser than /64 for IPv6, because a single
/// customer is commonly given a /56 or a /48, which holds 256 or 65536 /64s. Loopback and
/// private addresses are no exception: a LAN shares its /24 as an attacker's block would,
/// and tests can pick their subnet among `127.x.y.z`.
pub fn subnet(ip: IpAddr) -> Subnet {
    match ip.to_canonical() {
        IpAddr::V4(ip) => Subnet {
            v6: false,
            prefix: u128::from(ip.to_bits() >> 8),
        },
        IpAddr::V6(ip) => Subnet {
            v6: true,
            prefix: ip.to_bits() >> 80,
        },
    }
}

/// Which way a connection was opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// The peer dialed us.
    Inbound,
    /// We dialed the peer.
    Outbound,
}

/// How an admitted peer is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// Against the cap of its direction.
    Counted,
    /// Not counted against the cap of its direction: a trusted inbound peer, a persistent
    /// outbound peer.
    Exempt,
    /// Given back before the connection ended: an evicted inbound peer's slot, handed at
    /// once to the peer that evicted it while the evicted connection still drains. Its
    /// address still counts against the per-IP and per-subnet limits until it ends.
    Released,
    /// A query connection: counted in the node's query budgets, never here
    /// ([`Limits::max_inbound_queries`]). An inbound one's address counts against the per-IP
    /// and per-subnet limits until it ends.
    Query,
}

/// Policy state of a node's connections.
#[derive(Debug, Default)]
pub struct PeerSet {
    limits: Limits,
    allowed: Vec<IpNet>,
    pending: usize,
    inbound: usize,
    outbound: usize,
    exempt_inbound: usize,
    exempt_outbound: usize,
    per_ip: BTreeMap<IpAddr, usize>,
    per_subnet: BTreeMap<Subnet, usize>,
    bans: BanList,
    trusted: BTreeSet<PeerId>,
    /// Persistent peers' addresses: the one record of who is persistent, which the dial
    /// queue (retry forever), the outbound cap (exempt) and eviction (never) all consult.
    persistent: BTreeMap<SocketAddr, NetAddress>,
    private: BTreeSet<PeerId>,
}

impl PeerSet {
    /// Policies with `limits`, accepting from `allowed` networks (all when empty), refusing
    /// what `bans` holds.
    pub fn new(limits: Limits, allowed: Vec<IpNet>, bans: BanList) -> Self {
        PeerSet {
            limits,
            allowed,
            bans,
            ..PeerSet::default()
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    fn is_allowed(&self, ip: IpAddr) -> bool {
        self.allowed.is_empty() || self.allowed.iter().any(|net| net.contains(ip))
    }

    /// The bans the set refuses.
    pub fn bans(&self) -> &BanList {
        &self.bans
    }

    /// The bans, to add to or sweep.
    pub fn bans_mut(&mut self) -> &mut BanList {
        &mut self.bans
    }

    /// Admits an accepted socket from `ip` into the handshake, counting it. The pending
    /// budget is checked last: refused with [`Refused::PendingHandshakes`], the socket passed
    /// every other check, and would be admitted once a pending handshake ends.
    pub fn admit_inbound_socket(&mut self, now: Instant, ip: IpAddr) -> Result<(), Refused> {
        if !self.is_allowed(ip) {
            return Err(Refused::NotAllowed);
        }
        if self.bans.is_ip_banned(now, ip) {
            return Err(Refused::Banned);
        }
        if self.per_ip.get(&ip).copied().unwrap_or(0) >= self.limits.max_inbound_per_ip {
            return Err(Refused::PerIp);
        }
        if self.per_subnet.get(&subnet(ip)).copied().unwrap_or(0)
            >= self.limits.max_inbound_per_subnet
        {
            return Err(Refused::PerSubnet);
        }
        if self.pending >= self.limits.max_pending_handshakes {
            return Err(Refused::PendingHandshakes);
        }
        self.pending = self.pending.saturating_add(1);
        increment(&mut self.per_ip, ip);
        increment(&mut self.per_subnet, subnet(ip));
        Ok(())
    }

    /// Admits an outbound dial to `ip` into the handshake, counting it, or says why not:
    /// `NotAllowed` or `Banned`, the reason its `DialFailed` reports.
    pub fn admit_outbound_socket(
        &mut self,
        now: Instant,
        ip: IpAddr,
    ) -> Result<(), DisconnectReason> {
        if !self.is_allowed(ip) {
            return Err(DisconnectReason::NotAllowed);
        }
        if self.bans.is_ip_banned(now, ip) {
            return Err(DisconnectReason::Banned);
        }
        self.pending = self.pending.saturating_add(1);
        Ok(())
    }

    /// Whether an outbound slot is free for a non-persistent peer (pending dials count).
    pub fn has_outbound_slot(&self, pending_outbound: usize) -> bool {
        self.outbound.saturating_add(pending_outbound) < self.limits.max_outbound
    }

    /// A handshake completed with `peer`: admits it as an established peer (no longer
    /// pending), or says why not (still pending until [`PeerSet::release`]).
    pub fn admit_peer(
        &mut self,
        now: Instant,
        peer: &PeerId,
        direction: Direction,
    ) -> Result<Slot, DisconnectReason> {
        if self.bans.is_peer_banned(now, peer) {
            return Err(DisconnectReason::Banned);
        }
        let slot = match direction {
            // Exempt, as persistent outbound peers are: a trusted peer never takes the slot
            // of an ordinary one, so evicting one always makes room.
            Direction::Inbound if self.trusted.contains(peer) => {
                self.exempt_inbound = self.exempt_inbound.saturating_add(1);
                Slot::Exempt
            }
            Direction::Inbound => {
                if self.inbound >= self.limits.max_inbound {
                    return Err(DisconnectReason::TooManyPeers);
                }
                self.inbound = self.inbound.saturating_add(1);
                Slot::Counted
            }
            Direction::Outbound if self.is_persistent(peer) => {
                self.exempt_outbound = self.exempt_outbound.saturating_add(1);
                Slot::Exempt
            }
            Direction::Outbound => {
                if self.outbound >= self.limits.max_outbound {
                    return Err(DisconnectReason::TooManyPeers);
                }
                self.outbound = self.outbound.saturating_add(1);
                Slot::Counted
            }
        };
        self.pending = self.pending.saturating_sub(1);
        Ok(slot)
    }

    /// A handshake completed on a query connection: no longer pending, and holding no slot.
    pub fn admit_query(&mut self) -> Slot {
        self.pending = self.pending.saturating_sub(1);
        Slot::Query
    }

    /// A connection ended. `slot` is what [`PeerSet::admit_peer`] gave it, `None` if it
    /// was never admitted; `inbound_ip` is the remote IP of an inbound connection.
    pub fn release(
        &mut self,
        direction: Direction,
        slot: Option<Slot>,
        inbound_ip: Option<IpAddr>,
    ) {
        match (slot, direction) {
            (None, _) => self.pending = self.pending.saturating_sub(1),
            (Some(Slot::Exempt), Direction::Inbound) => {
                self.exempt_inbound = self.exempt_inbound.saturating_sub(1)
            }
            (Some(Slot::Exempt), Direction::Outbound) => {
                self.exempt_outbound = self.exempt_outbound.saturating_sub(1)
            }
            (Some(Slot::Released | Slot::Query), _) => {}
            (Some(Slot::Counted), Direction::Inbound) => {
                self.inbound = self.inbound.saturating_sub(1)
            }
            (Some(Slot::Counted), Direction::Outbound) => {
                self.outbound = self.outbound.saturating_sub(1)
            }
        }
        if let Some(ip) = inbound_ip {
            decrement(&mut self.per_ip, ip);
            decrement(&mut self.per_subnet, subnet(ip));
        }
    }

    /// Established peers per direction (trusted inbound and persistent outbound peers
    /// included).
    pub fn counts(&self) -> (usize, usize) {
        (
            self.inbound.saturating_add(self.exempt_inbound),
            self.outbound.saturating_add(self.exempt_outbound),
        )
    }

    /// Connections in the handshake.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// Marks `peer` trusted: admitted above the inbound cap, never counted against it.
    pub fn add_trusted(&mut self, peer: PeerId) {
        self.trusted.insert(peer);
    }

    /// Marks `addr` persistent: kept connected, its peer (if it names one) exempt from the
    /// outbound cap.
    pub fn add_persistent(&mut self, addr: NetAddress) {
        self.persistent.insert(addr.socket_addr(), addr);
    }

    /// Whether `peer` is persistent: a persistent address names it. Linear in the
    /// persistent addresses, which an operator lists by hand.
    pub fn is_persistent(&self, peer: &PeerId) -> bool {
        self.persistent
            .values()
            .any(|addr| addr.peer_id() == Some(*peer))
    }

    /// Whether `socket` is a persistent peer's address: what is redialed forever. (An
    /// address merely naming a persistent peer is not: anyone may relay such addresses.)
    pub fn is_persistent_socket(&self, socket: &SocketAddr) -> bool {
        self.persistent.contains_key(socket)
    }

    /// Whether `addr` is a persistent peer's address, or names a persistent peer: exempt
    /// from the outbound cap.
    pub fn is_persistent_addr(&self, addr: &NetAddress) -> bool {
        self.persistent.contains_key(&addr.socket_addr())
            || addr.peer_id().is_some_and(|peer| self.is_persistent(&peer))
    }

    /// The persistent address of the peer `peer` (if known) connected from `remote`: what
    /// to redial when its connection ends.
    pub fn persistent_address(
        &self,
        peer: Option<PeerId>,
        remote: SocketAddr,
    ) -> Option<NetAddress> {
        self.persistent
            .values()
            .find(|addr| {
                addr.peer_id().is_some_and(|id| Some(id) == peer) || addr.socket_addr() == remote
            })
            .copied()
    }

    /// Marks `peer` private: never shared with other peers.
    pub fn add_private(&mut self, peer: PeerId) {
        self.private.insert(peer);
    }

    /// Whether `peer` is private.
    pub fn is_private(&self, peer: &PeerId) -> bool {
        self.private.contains(peer)
    }

    /// Whether `peer` is trusted.
    pub fn is_trusted(&self, peer: &PeerId) -> bool {
        self.trusted.contains(peer)
    }
}

fn increment<K: Ord>(map: &mut BTreeMap<K, usize>, key: K) {
    let count = map.entry(key).or_default();
    *count = count.saturating_add(1);
}

fn decrement<K: Ord>(map: &mut BTreeMap<K, usize>, key: K) {
    if let Some(count) = map.get_mut(&key) {
        *count = count.saturating_sub(1);
        if *count == 0 {
            map.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ban_list::Banned;
    use core::net::Ipv4Addr;

    fn ip(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    #[test]
    fn per_ip_subnet_and_pending_limits_refuse_and_release() {
        let limits = Limits {
            max_pending_handshakes: 5,
            max_inbound_per_ip: 2,
            max_inbound_per_subnet: 3,
            ..Limits::default()
        };
        let mut set = PeerSet::new(limits, Vec::new(), BanList::default());
        let now = Instant::ZERO;
        assert_eq!(set.admit_inbound_socket(now, ip(10, 0, 0, 1)), Ok(()));
        assert_eq!(set.admit_inbound_socket(now, ip(10, 0, 0, 1)), Ok(()));
        assert_eq!(
            set.admit_inbound_socket(now, ip(10, 0, 0, 1)),
            Err(Refused::PerIp)
        );
        assert_eq!(set.admit_inbound_socket(now, ip(10, 0, 0, 2)), Ok(()));
        assert_eq!(
            set.admit_inbound_socket(now, ip(10, 0, 0, 3)),
            Err(Refused::PerSubnet)
        );
        assert_eq!(set.admit_inbound_socket(now, ip(10, 0, 1, 1)), Ok(()));
        assert_eq!(set.admit_inbound_socket(now, ip(10, 0, 2, 1)), Ok(()));
        assert_eq!(
            set.admit_inbound_socket(now, ip(10, 0, 3, 1)),
            Err(Refused::PendingHandshakes)
        );
        set.release(Direction::Inbound, None, Some(ip(10, 0, 0, 1)));
        assert_eq!(set.admit_inbound_socket(now, ip(10, 0, 0, 1)), Ok(()));
    }

    #[test]
    fn caps_exempt_trusted_and_persistent_peers_and_bans_expire() {
        let limits = Limits {
            max_inbound: 1,
            max_outbound: 1,
            ..Limits::default()
        };
        let mut set = PeerSet::new(limits, Vec::new(), BanList::default());
        let now = Instant::from_nanos(10);
        let [a, b, c, d] = [1u8, 2, 3, 4].map(|n| PeerId::from_bytes([n; 32]));
        set.add_trusted(b);
        set.add_persistent(NetAddress::new(
            Some(d),
            SocketAddr::from(([10, 0, 0, 4], 1)),
        ));
        assert_eq!(
            set.admit_peer(now, &a, Direction::Inbound),
            Ok(Slot::Counted)
        );
        assert_eq!(
            set.admit_peer(now, &c, Direction::Inbound),
            Err(DisconnectReason::TooManyPeers)
        );
        assert_eq!(
            set.admit_peer(now, &b, Direction::Inbound),
            Ok(Slot::Exempt)
        );
        assert_eq!(set.counts(), (2, 0));
        assert_eq!(
            set.admit_peer(now, &c, Direction::Outbound),
            Ok(Slot::Counted)
        );
        assert_eq!(
            set.admit_peer(now, &a, Direction::Outbound),
            Err(DisconnectReason::TooManyPeers)
        );
        assert_eq!(
            set.admit_peer(now, &d, Direction::Outbound),
            Ok(Slot::Exempt)
        );
        set.bans_mut().ban(Banned::Peer(a), Instant::from_nanos(20));
        assert_eq!(
            set.admit_peer(now, &a, Direction::Inbound),
            Err(DisconnectReason::Banned)
        );
        assert!(!set.bans().is_peer_banned(Instant::from_nanos(20), &a));
        set.bans_mut()
            .ban(Banned::Ip(ip(1, 2, 3, 4)), Instant::from_nanos(20));
        assert_eq!(
            set.admit_inbound_socket(now, ip(1, 2, 3, 4)),
            Err(Refused::Banned)
        );
        set.bans_mut().expire(Instant::from_nanos(20));
        assert_eq!(set.admit_inbound_socket(now, ip(1, 2, 3, 4)), Ok(()));
    }

    #[test]
    fn the_allow_list_filters_by_prefix() {
        let allowed = alloc::vec![IpNet {
            addr: ip(192, 168, 0, 0),
            prefix: 16,
        }];
        let mut set = PeerSet::new(Limits::default(), allowed, BanList::default());
        assert_eq!(
            set.admit_inbound_socket(Instant::ZERO, ip(192, 168, 44, 1)),
            Ok(())
        );
        assert_eq!(
            set.admit_inbound_socket(Instant::ZERO, ip(192, 169, 0, 1)),
            Err(Refused::NotAllowed)
        );
        assert_eq!(
            set.admit_outbound_socket(Instant::ZERO, ip(8, 8, 8, 8)),
            Err(DisconnectReason::NotAllowed)
        );
        assert_eq!(
            set.admit_outbound_socket(Instant::ZERO, ip(192, 168, 0, 9)),
            Ok(())
        );
        set.bans_mut()
            .ban(Banned::Ip(ip(192, 168, 0, 9)), Instant::from_nanos(1));
        assert_eq!(
            set.admit_outbound_socket(Instant::ZERO, ip(192, 168, 0, 9)),
            Err(DisconnectReason::Banned)
        );
    }
}
