//! Address groups: the unit an attacker pays for.
//!
//! Anyone can own many addresses inside one network prefix; owning addresses in many prefixes
//! costs real money. So the book buckets addresses by prefix, and the Node allows at most one
//! outbound peer per group.

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The network an address belongs to, for bucketing and for outbound diversity.
///
/// Publicly routable IPv4 addresses are grouped by /16, publicly routable IPv6 addresses by
/// /32 (as Bitcoin's addrman and CometBFT's addrbook do). An IPv4-mapped IPv6 address
/// (`::ffff:a.b.c.d`) is grouped as the IPv4 address it maps.
///
/// Addresses that are not publicly routable (loopback, RFC 1918 private, carrier-grade NAT
/// `100.64/10`, link-local, IPv6 unique-local `fc00::/7`) each form a group of their own:
/// a LAN, a simulated network on `10.x` or a cluster on `127.0.0.1` is then not squeezed
/// into one or two groups, and an attacker on the Internet gains nothing from it, because
/// the *new* table confines what one source may insert by the source's group, whatever the
/// addresses it relays (see [`AddrBook`](super::AddrBook)). A node applying "one outbound
/// peer per group" may want to exempt these ([`AddressGroup::is_routable`]); a loopback
/// cluster shares one IP across ports.
///
/// ```
/// use core::net::IpAddr;
/// use switchboard::addr_book::{AddressGroup, address_group};
///
/// let ip: IpAddr = "203.0.113.7".parse().unwrap();
/// assert_eq!(address_group(ip), AddressGroup::Ipv4([203, 0]));
/// let mapped: IpAddr = "::ffff:203.0.200.1".parse().unwrap();
/// assert_eq!(address_group(mapped), address_group(ip));
/// assert_eq!(address_group(ip).to_string(), "203.0.0.0/16");
/// assert!(!address_group("10.0.0.1".parse().unwrap()).is_routable());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AddressGroup {
    /// The first two octets (the /16) of a routable IPv4 address.
    Ipv4([u8; 2]),
    /// The first four octets (the /32) of a routable IPv6 address.
    Ipv6([u8; 4]),
    /// A non-routable address, a group by itself.
    Local(IpAddr),
}

/// The group of `ip`. See [`AddressGroup`].
pub fn address_group(ip: IpAddr) -> AddressGroup {
    match ip.to_canonical() {
        IpAddr::V4(v4) if is_local_v4(v4) => AddressGroup::Local(IpAddr::V4(v4)),
        IpAddr::V4(v4) => {
            let [a, b, _, _] = v4.octets();
            AddressGroup::Ipv4([a, b])
        }
        IpAddr::V6(v6) if is_local_v6(v6) => AddressGroup::Local(IpAddr::V6(v6)),
        IpAddr::V6(v6) => {
            let [a, b, c, d, ..] = v6.octets();
            AddressGroup::Ipv6([a, b, c, d])
        }
    }
}

impl AddressGroup {
    /// Whether the group is a public network prefix rather than a single local address.
    pub fn is_routable(&self) -> bool {
        !matches!(self, AddressGroup::Local(_))
    }

    /// A tagged byte encoding, input of the bucket hashes: at most 17 bytes.
    pub(super) fn encode(&self) -> Encoded {
        let mut out = Encoded::default();
        match self {
            AddressGroup::Ipv4(prefix) => {
                out.push(&[1]);
                out.push(prefix);
            }
            AddressGroup::Ipv6(prefix) => {
                out.push(&[2]);
                out.push(prefix);
            }
            AddressGroup::Local(ip) => {
                out.push(&[3]);
                out.push_ip(*ip);
            }
        }
        out
    }
}

impl fmt::Display for AddressGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddressGroup::Ipv4([a, b]) => write!(f, "{a}.{b}.0.0/16"),
            AddressGroup::Ipv6([a, b, c, d]) => {
                let first = u16::from_be_bytes([*a, *b]);
                let second = u16::from_be_bytes([*c, *d]);
                write!(f, "{first:x}:{second:x}::/32")
            }
            AddressGroup::Local(ip) => write!(f, "{ip} (local)"),
        }
    }
}

fn is_local_v4(ip: Ipv4Addr) -> bool {
    let [a, b, _, _] = ip.octets();
    let carrier_grade_nat = a == 100 && (b & 0xc0) == 64;
    ip.is_loopback() || ip.is_private() || ip.is_link_local() || carrier_grade_nat
}

fn is_local_v6(ip: Ipv6Addr) -> bool {
    let [first, ..] = ip.segments();
    let unique_local = (first & 0xfe00) == 0xfc00;
    let link_local = (first & 0xffc0) == 0xfe80;
    ip.is_loopback() || unique_local || link_local
}

/// `address` with an IPv4-mapped IPv6 address replaced by the IPv4 address, so that one
/// endpoint has one key in the book.
pub(super) fn canonical(address: SocketAddr) -> SocketAddr {
    SocketAddr::new(address.ip().to_canonical(), address.port())
}

/// Whether the book accepts `address` at all: a port and a unicast IP to dial.
pub(super) fn is_dialable(address: SocketAddr) -> bool {
    let ip = address.ip();
    let broadcast = matches!(ip, IpAddr::V4(v4) if v4.is_broadcast());
    address.port() != 0 && !ip.is_unspecified() && !ip.is_multicast() && !broadcast
}

/// A short byte string built on the stack: the hash inputs and the codec's addresses.
#[derive(Default)]
pub(super) struct Encoded {
    bytes: [u8; 20],
    len: usize,
}

impl Encoded {
    /// The tagged encoding of a socket address: `4 ‖ ip ‖ port` or `6 ‖ ip ‖ port`.
    pub(super) fn socket(address: SocketAddr) -> Self {
        let mut out = Encoded::default();
        out.push_ip(address.ip());
        out.push(&address.port().to_be_bytes());
        out
    }

    fn push_ip(&mut self, ip: IpAddr) {
        match ip {
            IpAddr::V4(v4) => {
                self.push(&[4]);
                self.push(&v4.octets());
            }
            IpAddr::V6(v6) => {
                self.push(&[6]);
                self.push(&v6.octets());
            }
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        let end = self.len.saturating_add(bytes.len());
        if let Some(target) = self.bytes.get_mut(self.len..end) {
            target.copy_from_slice(bytes);
            self.len = end;
        }
    }

    pub(super) fn as_slice(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&[])
    }
}
