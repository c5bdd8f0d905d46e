//! The two PEX messages and their encoding (`PROTOCOL.md` §7).
//!
//! ```text
//! GetAddrs = 0x01
//! Addrs    = 0x02 ‖ count: u8 (≤ 250) ‖ count × address
//! address  = flags: u8 (bit 0: a PeerId follows) ‖ [PeerId: 32]
//!            ‖ family: u8 (4 or 6) ‖ IP: 4 or 16 ‖ port: u16 BE
//! ```
//!
//! Decoding is total and bounded: at most [`MAX_ADDRS`] addresses are ever allocated, and
//! anything else — an unknown type, a count above the bound, a truncated or padded
//! message — is an error.

use alloc::vec::Vec;
use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::identity::PeerId;
use crate::net_address::NetAddress;

/// The most addresses one `Addrs` message carries.
pub const MAX_ADDRS: usize = 250;

/// The longest encoded PEX message: `Addrs` with [`MAX_ADDRS`] IPv6 addresses with ids.
pub const MAX_MESSAGE_LEN: usize = 2 + MAX_ADDRS * (1 + 32 + 1 + 16 + 2);

const GET_ADDRS: u8 = 0x01;
const ADDRS: u8 = 0x02;
const HAS_PEER_ID: u8 = 0x01;

/// A message of the peer-exchange protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PexMessage {
    /// "Send me addresses you know."
    GetAddrs,
    /// The answer: at most [`MAX_ADDRS`] addresses.
    Addrs(Vec<NetAddress>),
}

/// Why a PEX message could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PexDecodeError {
    /// Nothing at all.
    Empty,
    /// A message type this version does not know.
    UnknownType(u8),
    /// More addresses than [`MAX_ADDRS`].
    TooManyAddresses(u8),
    /// An address family other than 4 or 6.
    UnknownFamily(u8),
    /// Flag bits this version does not know.
    UnknownFlags(u8),
    /// The message ended inside an address.
    Truncated,
    /// Bytes after the last address.
    TrailingBytes,
}

impl fmt::Display for PexDecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PexDecodeError::Empty => f.write_str("empty PEX message"),
            PexDecodeError::UnknownType(kind) => write!(f, "unknown PEX message type {kind:#04x}"),
            PexDecodeError::TooManyAddresses(count) => {
                write!(
                    f,
                    "{count} addresses in one message, at most {MAX_ADDRS} allowed"
                )
            }
            PexDecodeError::UnknownFamily(family) => write!(f, "unknown address family {family}"),
            PexDecodeError::UnknownFlags(flags) => write!(f, "unknown address flags {flags:#04x}"),
            PexDecodeError::Truncated => f.write_str("PEX message truncated"),
            PexDecodeError::TrailingBytes => f.write_str("bytes after the last PEX address"),
        }
    }
}

impl core::error::Error for PexDecodeError {}

impl PexMessage {
    /// The message's bytes. An `Addrs` with more than [`MAX_ADDRS`] addresses is cut to the
    /// first [`MAX_ADDRS`], so an encoded message always decodes.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            PexMessage::GetAddrs => alloc::vec![GET_ADDRS],
            PexMessage::Addrs(addrs) => {
                let addrs = addrs.get(..MAX_ADDRS).unwrap_or(addrs);
                let mut out =
                    Vec::with_capacity(2usize.saturating_add(addrs.len().saturating_mul(52)));
                out.push(ADDRS);
                out.push(u8::try_from(addrs.len()).unwrap_or(u8::MAX));
                for addr in addrs {
                    encode_address(&mut out, addr);
                }
                out
            }
        }
    }

    /// Decodes one message, all of `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<Self, PexDecodeError> {
        let (&kind, body) = bytes.split_first().ok_or(PexDecodeError::Empty)?;
        match kind {
            GET_ADDRS if body.is_empty() => Ok(PexMessage::GetAddrs),
            GET_ADDRS => Err(PexDecodeError::TrailingBytes),
            ADDRS => {
                let (&count, mut rest) = body.split_first().ok_or(PexDecodeError::Truncated)?;
                if usize::from(count) > MAX_ADDRS {
                    return Err(PexDecodeError::TooManyAddresses(count));
                }
                let mut addrs = Vec::with_capacity(usize::from(count));
                for _ in 0..count {
                    let (addr, after) = decode_address(rest)?;
                    addrs.push(addr);
                    rest = after;
                }
                if !rest.is_empty() {
                    return Err(PexDecodeError::TrailingBytes);
                }
                Ok(PexMessage::Addrs(addrs))
            }
            other => Err(PexDecodeError::UnknownType(other)),
        }
    }
}

fn encode_address(out: &mut Vec<u8>, addr: &NetAddress) {
    match addr.peer_id() {
        Some(peer) => {
            out.push(HAS_PEER_ID);
            out.extend_from_slice(peer.as_bytes());
        }
        None => out.push(0),
    }
    let socket = addr.socket_addr();
    match socket.ip() {
        IpAddr::V4(ip) => {
            out.push(4);
            out.extend_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            out.push(6);
            out.extend_from_slice(&ip.octets());
        }
    }
    out.extend_from_slice(&socket.port().to_be_bytes());
}

fn decode_address(bytes: &[u8]) -> Result<(NetAddress, &[u8]), PexDecodeError> {
    let (&flags, rest) = bytes.split_first().ok_or(PexDecodeError::Truncated)?;
    if flags & !HAS_PEER_ID != 0 {
        return Err(PexDecodeError::UnknownFlags(flags));
    }
    let (peer, rest) = if flags & HAS_PEER_ID != 0 {
        let (id, rest) = take::<32>(rest)?;
        (Some(PeerId::from_bytes(id)), rest)
    } else {
        (None, rest)
    };
    let (&family, rest) = rest.split_first().ok_or(PexDecodeError::Truncated)?;
    let (ip, rest) = match family {
        4 => {
            let (octets, rest) = take::<4>(rest)?;
            (IpAddr::V4(Ipv4Addr::from(octets)), rest)
        }
        6 => {
            let (octets, rest) = take::<16>(rest)?;
            (IpAddr::V6(Ipv6Addr::from(octets)), rest)
        }
        other => return Err(PexDecodeError::UnknownFamily(other)),
    };
    let (port, rest) = take::<2>(rest)?;
    let socket = SocketAddr::new(ip, u16::from_be_bytes(port));
    Ok((NetAddress::new(peer, socket), rest))
}

fn take<const N: usize>(bytes: &[u8]) -> Result<([u8; N], &[u8]), PexDecodeError> {
    let (head, rest) = bytes
        .split_first_chunk::<N>()
        .ok_or(PexDecodeError::Truncated)?;
    Ok((*head, rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn sample_addrs() -> Vec<NetAddress> {
        vec![
            "127.0.0.1:26656".parse().unwrap(),
            "[2001:db8::7]:9".parse().unwrap(),
            NetAddress::new(
                Some(PeerId::from_bytes([7; 32])),
                "10.1.2.3:26656".parse().unwrap(),
            ),
        ]
    }

    #[test]
    fn messages_round_trip() {
        for message in [
            PexMessage::GetAddrs,
            PexMessage::Addrs(Vec::new()),
            PexMessage::Addrs(sample_addrs()),
        ] {
            assert_eq!(PexMessage::decode(&message.encode()), Ok(message));
        }
    }

    #[test]
    fn the_largest_message_fits_its_bound_and_more_addresses_are_cut() {
        let many = vec![
            NetAddress::new(
                Some(PeerId::from_bytes([1; 32])),
                "[2001:db8::1]:1".parse().unwrap()
            );
            MAX_ADDRS + 10
        ];
        let bytes = PexMessage::Addrs(many.clone()).encode();
        assert_eq!(bytes.len(), MAX_MESSAGE_LEN);
        assert_eq!(
            PexMessage::decode(&bytes),
            Ok(PexMessage::Addrs(many[..MAX_ADDRS].to_vec()))
        );
    }

    #[test]
    fn malformed_messages_are_named_errors() {
        assert_eq!(PexMessage::decode(&[]), Err(PexDecodeError::Empty));
        assert_eq!(
            PexMessage::decode(&[9]),
            Err(PexDecodeError::UnknownType(9))
        );
        assert_eq!(
            PexMessage::decode(&[1, 0]),
            Err(PexDecodeError::TrailingBytes)
        );
        assert_eq!(
            PexMessage::decode(&[2, 251]),
            Err(PexDecodeError::TooManyAddresses(251))
        );
        assert_eq!(
            PexMessage::decode(&[2, 1, 0, 5]),
            Err(PexDecodeError::UnknownFamily(5))
        );
        assert_eq!(
            PexMessage::decode(&[2, 1, 2]),
            Err(PexDecodeError::UnknownFlags(2))
        );
        let mut padded = PexMessage::Addrs(sample_addrs()).encode();
        padded.push(0);
        assert_eq!(
            PexMessage::decode(&padded),
            Err(PexDecodeError::TrailingBytes)
        );
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = PexMessage::Addrs(sample_addrs()).encode();
        for len in 0..bytes.len() {
            assert!(PexMessage::decode(&bytes[..len]).is_err(), "length {len}");
        }
    }
}
