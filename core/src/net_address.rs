//! Where a peer can be reached: `PeerId@ip:port`.

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use core::str::FromStr;

use crate::identity::{ParsePeerIdError, PeerId};

/// A peer's network address, with its [`PeerId`] when known.
///
/// Text form: `PEERID@IP:PORT`, where the `PEERID@` part is optional (dialing an address whose
/// identity is not yet known) and IPv6 addresses are bracketed:
///
/// ```
/// use switchboard::NetAddress;
///
/// let id = "9f".repeat(32);
/// let v4: NetAddress = format!("{id}@127.0.0.1:26656").parse().unwrap();
/// assert_eq!(v4.to_string(), format!("{id}@127.0.0.1:26656"));
///
/// let v6: NetAddress = "[::1]:7000".parse().unwrap();
/// assert!(v6.peer_id().is_none());
/// assert_eq!(v6.to_string(), "[::1]:7000");
///
/// let error = "127.0.0.1".parse::<NetAddress>().unwrap_err();
/// assert_eq!(error.to_string(), "missing \":PORT\" after the IP address");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NetAddress {
    peer_id: Option<PeerId>,
    ip: IpAddr,
    port: u16,
}

impl NetAddress {
    /// An address with an optional expected identity.
    pub const fn new(peer_id: Option<PeerId>, socket: SocketAddr) -> Self {
        NetAddress {
            peer_id,
            ip: socket.ip(),
            port: socket.port(),
        }
    }

    /// The identity expected at this address, if known.
    pub const fn peer_id(&self) -> Option<PeerId> {
        self.peer_id
    }

    /// The socket address to dial.
    pub const fn socket_addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip, self.port)
    }

    /// The same address with `peer_id` as its identity.
    pub const fn with_peer_id(self, peer_id: PeerId) -> Self {
        NetAddress {
            peer_id: Some(peer_id),
            ..self
        }
    }
}

impl fmt::Display for NetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(id) = &self.peer_id {
            write!(f, "{id}@")?;
        }
        match self.ip {
            IpAddr::V4(ip) => write!(f, "{ip}:{}", self.port),
            IpAddr::V6(ip) => write!(f, "[{ip}]:{}", self.port),
        }
    }
}

impl fmt::Debug for NetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NetAddress({self})")
    }
}

/// Why a string is not a [`NetAddress`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseNetAddressError {
    /// The input is empty.
    Empty,
    /// The part before `@` is not a peer id.
    PeerId(ParsePeerIdError),
    /// No `:PORT` follows the IP address.
    MissingPort,
    /// The port is not a number in 1..=65535.
    InvalidPort,
    /// The host is not an IPv4 or bracketed IPv6 address (names are not resolved here).
    InvalidIp,
    /// An IPv6 address without brackets, which would make the port ambiguous.
    UnbracketedIpv6,
}

impl fmt::Display for ParseNetAddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseNetAddressError::Empty => f.write_str("empty address"),
            ParseNetAddressError::PeerId(error) => write!(f, "invalid peer id: {error}"),
            ParseNetAddressError::MissingPort => {
                f.write_str("missing \":PORT\" after the IP address")
            }
            ParseNetAddressError::InvalidPort => f.write_str("port must be a number in 1..=65535"),
            ParseNetAddressError::InvalidIp => {
                f.write_str("host must be an IPv4 address or a bracketed IPv6 address")
            }
            ParseNetAddressError::UnbracketedIpv6 => {
                f.write_str("IPv6 addresses must be bracketed, as in [::1]:26656")
            }
        }
    }
}

impl core::error::Error for ParseNetAddressError {}

impl FromStr for NetAddress {
    type Err = ParseNetAddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(ParseNetAddressError::Empty);
        }
        let (peer_id, host_port) = match s.split_once('@') {
            Some((id, rest)) => (
                Some(id.parse().map_err(ParseNetAddressError::PeerId)?),
                rest,
            ),
            None => (None, s),
        };
        let (ip, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
            let (ip, rest) = bracketed
                .split_once(']')
                .ok_or(ParseNetAddressError::InvalidIp)?;
            let ip: Ipv6Addr = ip.parse().map_err(|_| ParseNetAddressError::InvalidIp)?;
            let port = rest
                .strip_prefix(':')
                .ok_or(ParseNetAddressError::MissingPort)?;
            (IpAddr::V6(ip), port)
        } else {
            let (ip, port) = host_port
                .rsplit_once(':')
                .ok_or(ParseNetAddressError::MissingPort)?;
            if ip.contains(':') {
                return Err(ParseNetAddressError::UnbracketedIpv6);
            }
            let ip: Ipv4Addr = ip.parse().map_err(|_| ParseNetAddressError::InvalidIp)?;
            (IpAddr::V4(ip), port)
        };
        let port = parse_port(port)?;
        Ok(NetAddress { peer_id, ip, port })
    }
}

fn parse_port(text: &str) -> Result<u16, ParseNetAddressError> {
    // `u16::from_str` accepts a leading '+', which would break the text round trip.
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseNetAddressError::InvalidPort);
    }
    match text.parse::<u16>() {
        Ok(0) | Err(_) => Err(ParseNetAddressError::InvalidPort),
        Ok(port) => Ok(port),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::string::ToString;

    const ID: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    #[test]
    fn round_trips() {
        for text in [
            format!("{ID}@127.0.0.1:26656"),
            format!("{ID}@[::1]:1"),
            format!("{ID}@[2001:db8::8a2e:370:7334]:65535"),
            "10.0.0.1:80".to_string(),
            "[fe80::1]:9".to_string(),
        ] {
            let address: NetAddress = text.parse().unwrap();
            assert_eq!(address.to_string(), text);
        }
    }

    #[test]
    fn errors_name_the_problem() {
        use ParseNetAddressError::*;
        let cases: [(&str, ParseNetAddressError); 10] = [
            ("", Empty),
            ("127.0.0.1", MissingPort),
            ("127.0.0.1:", InvalidPort),
            ("127.0.0.1:0", InvalidPort),
            ("127.0.0.1:+80", InvalidPort),
            ("127.0.0.1:65536", InvalidPort),
            ("localhost:80", InvalidIp),
            ("::1:80", UnbracketedIpv6),
            ("[::1]80", MissingPort),
            ("abc@1.2.3.4:5", PeerId(ParsePeerIdError::Length(3))),
        ];
        for (text, expected) in cases {
            assert_eq!(text.parse::<NetAddress>(), Err(expected), "{text}");
        }
    }
}
