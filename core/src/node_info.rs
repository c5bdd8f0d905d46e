//! What a node says about itself in the handshake, and its bounded binary encoding.
//!
//! The encoding is specified byte by byte in `core/PROTOCOL.md` §3. Every field has a hard
//! bound, so a decoder never allocates more than [`MAX_ENCODED_LEN`] bytes' worth, whatever
//! a peer sends.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The protocol version this crate speaks.
pub const PROTOCOL_VERSION: ProtocolVersion = ProtocolVersion { major: 1, minor: 0 };

/// Longest network id, in bytes.
pub const MAX_NETWORK_LEN: usize = 64;
/// Longest agent string, in bytes.
pub const MAX_AGENT_LEN: usize = 64;
/// Longest channel protocol name, in bytes.
pub const MAX_PROTOCOL_NAME_LEN: usize = 32;
/// Most channels a node may advertise.
pub const MAX_CHANNELS: usize = 64;
/// Upper bound of an encoded `NodeInfo`, trailing extension bytes included.
pub const MAX_ENCODED_LEN: usize = 4096;
/// Bit 0 of [`NodeInfo::features`], set by a dialer opening a query connection
/// (`PROTOCOL.md` §3.1): a short-lived connection for one protocol's requests, admitted
/// outside the peer slots and closed when idle.
pub const FEATURE_QUERY: u64 = 1;

/// A protocol version. Peers are compatible when their major versions are equal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProtocolVersion {
    /// Incremented on incompatible changes.
    pub major: u16,
    /// Incremented on compatible additions.
    pub minor: u16,
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// One channel a node offers: its id, the protocol it carries, and that protocol's version.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ChannelInfo {
    /// The channel id.
    pub id: u16,
    /// Name of the protocol on the channel, 1..=32 bytes of UTF-8.
    pub protocol: String,
    /// Version of that protocol.
    pub version: u16,
}

impl ChannelInfo {
    /// Two entries may share an id only as versions of one protocol (`PROTOCOL.md` §3).
    fn conflicts_with(&self, other: &ChannelInfo) -> bool {
        self.id == other.id && (self.protocol != other.protocol || self.version == other.version)
    }
}

/// A node's self-description, exchanged encrypted in handshake messages 2 and 3.
///
/// ```
/// use switchboard::{ChannelInfo, NodeInfo};
///
/// let mut info = NodeInfo::new("mainnet", "my-node/0.1");
/// info.channels.push(ChannelInfo { id: 1, protocol: "blocks".into(), version: 1 });
/// let bytes = info.encode().unwrap();
/// assert_eq!(NodeInfo::decode(&bytes).unwrap(), info);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodeInfo {
    /// Protocol version spoken.
    pub version: ProtocolVersion,
    /// Network id: nodes of different networks refuse each other. 1..=64 bytes of UTF-8.
    pub network: String,
    /// Free-form software name and version, at most 64 bytes of UTF-8.
    pub agent: String,
    /// Where the node accepts connections, if it does.
    pub listen_addr: Option<SocketAddr>,
    /// Feature flags; bits not understood are ignored. Bit 0 is [`FEATURE_QUERY`].
    pub features: u64,
    /// Channels offered, at most 64. An id appears more than once only for several versions
    /// of the same protocol; which one a connection speaks is negotiated ([`crate::negotiate`]).
    pub channels: Vec<ChannelInfo>,
}

impl NodeInfo {
    /// A node of `network` running `agent`, speaking [`PROTOCOL_VERSION`], with no listen
    /// address, features or channels yet.
    pub fn new(network: impl Into<String>, agent: impl Into<String>) -> Self {
        NodeInfo {
            version: PROTOCOL_VERSION,
            network: network.into(),
            agent: agent.into(),
            listen_addr: None,
            features: 0,
            channels: Vec::new(),
        }
    }

    /// Whether the sender opens a query connection ([`FEATURE_QUERY`]).
    pub fn is_query(&self) -> bool {
        self.features & FEATURE_QUERY != 0
    }

    /// The channel with `id`, if offered (the first entry, if several versions are).
    pub fn channel(&self, id: u16) -> Option<&ChannelInfo> {
        self.channels.iter().find(|channel| channel.id == id)
    }

    /// Checks every bound without encoding.
    pub fn validate(&self) -> Result<(), NodeInfoError> {
        check_text(&self.network, 1, MAX_NETWORK_LEN, Field::Network)?;
        check_text(&self.agent, 0, MAX_AGENT_LEN, Field::Agent)?;
        if self.channels.len() > MAX_CHANNELS {
            return Err(NodeInfoError::TooManyChannels(self.channels.len()));
        }
        for (index, channel) in self.channels.iter().enumerate() {
            check_text(&channel.protocol, 1, MAX_PROTOCOL_NAME_LEN, Field::Protocol)?;
            let earlier = self.channels.get(..index).unwrap_or_default();
            if earlier.iter().any(|other| other.conflicts_with(channel)) {
                return Err(NodeInfoError::DuplicateChannel(channel.id));
            }
        }
        Ok(())
    }

    /// The wire encoding (`PROTOCOL.md` §3), or why this `NodeInfo` exceeds a bound.
    pub fn encode(&self) -> Result<Vec<u8>, NodeInfoError> {
        self.validate()?;
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(&self.version.major.to_be_bytes());
        out.extend_from_slice(&self.version.minor.to_be_bytes());
        put_text(&mut out, &self.network);
        put_text(&mut out, &self.agent);
        match self.listen_addr {
            None => out.push(0),
            Some(SocketAddr::V4(addr)) => {
                out.push(4);
                out.extend_from_slice(&addr.ip().octets());
                out.extend_from_slice(&addr.port().to_be_bytes());
            }
            Some(SocketAddr::V6(addr)) => {
                out.push(6);
                out.extend_from_slice(&addr.ip().octets());
                out.extend_from_slice(&addr.port().to_be_bytes());
            }
        }
        out.extend_from_slice(&self.features.to_be_bytes());
        out.push(u8::try_from(self.channels.len()).unwrap_or(u8::MAX));
        for channel in &self.channels {
            out.extend_from_slice(&channel.id.to_be_bytes());
            out.extend_from_slice(&channel.version.to_be_bytes());
            put_text(&mut out, &channel.protocol);
        }
        Ok(out)
    }

    fn encoded_len(&self) -> usize {
        let address = match self.listen_addr {
            None => 1,
            Some(SocketAddr::V4(_)) => 7,
            Some(SocketAddr::V6(_)) => 19,
        };
        let channels: usize = self
            .channels
            .iter()
            .map(|channel| 5usize.saturating_add(channel.protocol.len()))
            .sum();
        [
            4,
            1,
            self.network.len(),
            1,
            self.agent.len(),
            address,
            8,
            1,
            channels,
        ]
        .iter()
        .fold(0usize, |sum, part| sum.saturating_add(*part))
    }

    /// Decodes `bytes`. Bytes after the last channel are an extension area that this version
    /// ignores (later minor versions append fields there); the whole input must still fit in
    /// [`MAX_ENCODED_LEN`].
    pub fn decode(bytes: &[u8]) -> Result<Self, NodeInfoError> {
        if bytes.len() > MAX_ENCODED_LEN {
            return Err(NodeInfoError::TooLong(bytes.len()));
        }
        let mut reader = Reader(bytes);
        let version = ProtocolVersion {
            major: reader.u16()?,
            minor: reader.u16()?,
        };
        let network = reader.text(1, MAX_NETWORK_LEN, Field::Network)?;
        let agent = reader.text(0, MAX_AGENT_LEN, Field::Agent)?;
        let listen_addr = match reader.u8()? {
            0 => None,
            4 => {
                let ip: [u8; 4] = reader.array()?;
                Some(SocketAddr::new(
                    IpAddr::V4(Ipv4Addr::from(ip)),
                    reader.u16()?,
                ))
            }
            6 => {
                let ip: [u8; 16] = reader.array()?;
                Some(SocketAddr::new(
                    IpAddr::V6(Ipv6Addr::from(ip)),
                    reader.u16()?,
                ))
            }
            tag => return Err(NodeInfoError::AddressKind(tag)),
        };
        let features = u64::from_be_bytes(reader.array()?);
        let count = usize::from(reader.u8()?);
        if count > MAX_CHANNELS {
            return Err(NodeInfoError::TooManyChannels(count));
        }
        let mut channels: Vec<ChannelInfo> = Vec::with_capacity(count);
        for _ in 0..count {
            let id = reader.u16()?;
            let version = reader.u16()?;
            let protocol = reader.text(1, MAX_PROTOCOL_NAME_LEN, Field::Protocol)?;
            let channel = ChannelInfo {
                id,
                protocol,
                version,
            };
            if channels.iter().any(|other| other.conflicts_with(&channel)) {
                return Err(NodeInfoError::DuplicateChannel(id));
            }
            channels.push(channel);
        }
        Ok(NodeInfo {
            version,
            network,
            agent,
            listen_addr,
            features,
            channels,
        })
    }
}

/// A text field of [`NodeInfo`], named in errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// [`NodeInfo::network`].
    Network,
    /// [`NodeInfo::agent`].
    Agent,
    /// [`ChannelInfo::protocol`].
    Protocol,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::Network => "network id",
            Field::Agent => "agent",
            Field::Protocol => "channel protocol name",
        })
    }
}

/// Why a `NodeInfo` cannot be encoded or decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NodeInfoError {
    /// The input ended inside a field.
    Truncated,
    /// The input is longer than [`MAX_ENCODED_LEN`].
    TooLong(usize),
    /// A text field's length is outside its bounds.
    TextLength {
        /// Which field.
        field: Field,
        /// Its length.
        len: usize,
    },
    /// A text field is not UTF-8.
    NotUtf8(Field),
    /// The listen-address kind byte is not 0, 4 or 6.
    AddressKind(u8),
    /// More than [`MAX_CHANNELS`] channels.
    TooManyChannels(usize),
    /// Two channels share an id.
    DuplicateChannel(u16),
}

impl fmt::Display for NodeInfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeInfoError::Truncated => f.write_str("node info truncated"),
            NodeInfoError::TooLong(len) => {
                write!(f, "node info of {len} bytes exceeds {MAX_ENCODED_LEN}")
            }
            NodeInfoError::TextLength { field, len } => {
                write!(f, "{field} length {len} is out of bounds")
            }
            NodeInfoError::NotUtf8(field) => write!(f, "{field} is not UTF-8"),
            NodeInfoError::AddressKind(kind) => write!(f, "unknown listen address kind {kind}"),
            NodeInfoError::TooManyChannels(count) => {
                write!(f, "{count} channels exceed the limit of {MAX_CHANNELS}")
            }
            NodeInfoError::DuplicateChannel(id) => write!(f, "channel {id} listed twice"),
        }
    }
}

impl core::error::Error for NodeInfoError {}

fn check_text(text: &str, min: usize, max: usize, field: Field) -> Result<(), NodeInfoError> {
    if (min..=max).contains(&text.len()) {
        Ok(())
    } else {
        Err(NodeInfoError::TextLength {
            field,
            len: text.len(),
        })
    }
}

/// Writes a text already checked to be at most 255 bytes.
fn put_text(out: &mut Vec<u8>, text: &str) {
    out.push(u8::try_from(text.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(text.as_bytes());
}

/// A cursor over the input that fails with `Truncated` instead of slicing out of bounds.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], NodeInfoError> {
        let (head, rest) = self
            .0
            .split_at_checked(len)
            .ok_or(NodeInfoError::Truncated)?;
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], NodeInfoError> {
        self.take(N)?
            .try_into()
            .map_err(|_| NodeInfoError::Truncated)
    }

    fn u8(&mut self) -> Result<u8, NodeInfoError> {
        Ok(u8::from_be_bytes(self.array()?))
    }

    fn u16(&mut self) -> Result<u16, NodeInfoError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn text(&mut self, min: usize, max: usize, field: Field) -> Result<String, NodeInfoError> {
        let len = usize::from(self.u8()?);
        if !(min..=max).contains(&len) {
            return Err(NodeInfoError::TextLength { field, len });
        }
        let bytes = self.take(len)?;
        core::str::from_utf8(bytes)
            .map(String::from)
            .map_err(|_| NodeInfoError::NotUtf8(field))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn full() -> NodeInfo {
        let mut info = NodeInfo::new("n".repeat(MAX_NETWORK_LEN), "a".repeat(MAX_AGENT_LEN));
        info.listen_addr = Some("[2001:db8::1]:26656".parse().unwrap());
        info.features = u64::MAX;
        info.channels = (0..MAX_CHANNELS as u16)
            .map(|id| ChannelInfo {
                id,
                protocol: "p".repeat(MAX_PROTOCOL_NAME_LEN),
                version: id,
            })
            .collect();
        info
    }

    #[test]
    fn the_largest_node_info_fits_the_bound() {
        let bytes = full().encode().unwrap();
        assert!(bytes.len() <= MAX_ENCODED_LEN, "{}", bytes.len());
        assert_eq!(bytes.len(), full().encoded_len());
        assert_eq!(NodeInfo::decode(&bytes).unwrap(), full());
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = full().encode().unwrap();
        for len in 0..bytes.len() {
            assert!(
                NodeInfo::decode(&bytes[..len]).is_err(),
                "prefix of {len} decoded"
            );
        }
    }

    #[test]
    fn trailing_extension_bytes_are_ignored_within_the_bound() {
        let mut bytes = NodeInfo::new("net", "").encode().unwrap();
        bytes.extend_from_slice(&[0xAB; 10]);
        assert_eq!(NodeInfo::decode(&bytes).unwrap(), NodeInfo::new("net", ""));
        bytes.resize(MAX_ENCODED_LEN + 1, 0);
        assert_eq!(
            NodeInfo::decode(&bytes),
            Err(NodeInfoError::TooLong(MAX_ENCODED_LEN + 1))
        );
    }

    #[test]
    fn bounds_are_enforced_on_encode() {
        assert_eq!(
            NodeInfo::new("", "").encode(),
            Err(NodeInfoError::TextLength {
                field: Field::Network,
                len: 0
            })
        );
        let mut info = NodeInfo::new("net", "");
        info.channels = vec![
            ChannelInfo {
                id: 7,
                protocol: "x".into(),
                version: 1,
            },
            ChannelInfo {
                id: 7,
                protocol: "y".into(),
                version: 1,
            },
        ];
        assert_eq!(info.encode(), Err(NodeInfoError::DuplicateChannel(7)));
        let mut many = full();
        many.channels.push(ChannelInfo {
            id: 999,
            protocol: "z".into(),
            version: 0,
        });
        assert_eq!(
            many.encode(),
            Err(NodeInfoError::TooManyChannels(MAX_CHANNELS + 1))
        );
    }

    #[test]
    fn malformed_fields_are_named() {
        let mut bytes = NodeInfo::new("net", "").encode().unwrap();
        bytes[5] = 0xFF; // first byte of the network id
        assert_eq!(
            NodeInfo::decode(&bytes),
            Err(NodeInfoError::NotUtf8(Field::Network))
        );
        let mut bytes = NodeInfo::new("net", "").encode().unwrap();
        bytes[9] = 5; // listen address kind
        assert_eq!(NodeInfo::decode(&bytes), Err(NodeInfoError::AddressKind(5)));
    }
}
