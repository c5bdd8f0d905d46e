//! The JSON of `/status` and `/net_info`: snapshots of a node, taken where it runs.
//!
//! Both sides of the wire use these types: the server serializes them, and a client (the
//! `switchboard status` command) can deserialize the same structs instead of restating
//! their field names.

use std::net::SocketAddr;

use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};
use switchboard::Instant;
use switchboard::node::{Node, PeerInfo};

use super::direction_name;

/// What `/status` answers: who the node is and how many peers it has.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// The node's identity, in hex.
    pub node_id: String,
    /// The addresses it listens on.
    pub listen_addrs: Vec<SocketAddr>,
    /// The address it tells its peers to dial, when it advertises one.
    pub external_address: Option<SocketAddr>,
    /// The network it belongs to: peers of another network are refused.
    pub network: String,
    /// Connected peers.
    pub peers: PeerCounts,
}

/// Connected peers, by which side dialed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerCounts {
    /// The peers that dialed us.
    pub inbound: usize,
    /// The peers we dialed.
    pub outbound: usize,
}

impl Status {
    /// `node`'s status. The listening addresses come from the adapter (`local_addrs` of a
    /// `Handle` or `Driver`): the node itself never sees its sockets. The external address
    /// is the one its `NodeInfo` advertises.
    pub fn of<R: CryptoRng>(node: &Node<R>, listen_addrs: &[SocketAddr]) -> Status {
        let (inbound, outbound) = node.peer_counts();
        let info = node.node_info();
        Status {
            node_id: node.peer_id().to_string(),
            listen_addrs: listen_addrs.to_vec(),
            external_address: info.listen_addr,
            network: info.network.clone(),
            peers: PeerCounts { inbound, outbound },
        }
    }
}

/// What `/net_info` answers: every connected peer with its traffic.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NetInfo {
    /// The connected peers, ordered by identity so that two snapshots compare line by line.
    pub peers: Vec<PeerStatus>,
}

/// One connected peer in [`NetInfo`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PeerStatus {
    /// Its identity, in hex.
    pub id: String,
    /// `"inbound"` (it dialed us) or `"outbound"`.
    pub direction: String,
    /// The far end of the connection.
    pub remote_addr: SocketAddr,
    /// The address it says it listens on, if any.
    pub listen_addr: Option<SocketAddr>,
    /// Smoothed round-trip time in milliseconds, once measured.
    pub rtt_ms: Option<f64>,
    /// Seconds since its handshake completed.
    pub connected_s: f64,
    /// Bytes written to its socket, handshake, framing and encryption included.
    pub bytes_sent: u64,
    /// Bytes read from its socket, the same way.
    pub bytes_received: u64,
    /// Per channel, in id order.
    pub channels: Vec<ChannelStatus>,
}

/// One channel of a [`PeerStatus`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelStatus {
    /// The channel's id.
    pub channel: u16,
    /// Bytes of messages completely written.
    pub bytes_sent: u64,
    /// Bytes of complete messages received.
    pub bytes_received: u64,
    /// Messages completely written.
    pub messages_sent: u64,
    /// Complete messages received.
    pub messages_received: u64,
    /// Messages waiting in the send queue now.
    pub queued_messages: usize,
}

impl NetInfo {
    /// `node`'s connected peers at `now`.
    pub fn of<R: CryptoRng>(node: &Node<R>, now: Instant) -> NetInfo {
        let mut peers: Vec<PeerStatus> = node
            .peers()
            .filter_map(|peer| node.peer_info(&peer))
            .map(|info| PeerStatus::of(&info, now))
            .collect();
        peers.sort_by(|a, b| a.id.cmp(&b.id));
        NetInfo { peers }
    }
}

impl PeerStatus {
    fn of(info: &PeerInfo, now: Instant) -> PeerStatus {
        // `established_at` is set when the handshake completes, before the peer is
        // admitted: a connected peer always has it.
        let connected = info.stats.established_at.map_or(0.0, |since| {
            now.saturating_duration_since(since).as_secs_f64()
        });
        let channels = info.channels.iter().map(|stats| ChannelStatus {
            channel: stats.channel,
            bytes_sent: stats.bytes_sent,
            bytes_received: stats.bytes_received,
            messages_sent: stats.messages_sent,
            messages_received: stats.messages_received,
            queued_messages: stats.queued_messages,
        });
        PeerStatus {
            id: info.peer.to_string(),
            direction: direction_name(info.direction).to_owned(),
            remote_addr: info.remote_addr,
            listen_addr: info.listen_addr,
            rtt_ms: info.rtt.map(|rtt| rtt.as_secs_f64() * 1000.0),
            connected_s: connected,
            bytes_sent: info.stats.wire_bytes_sent,
            bytes_received: info.stats.wire_bytes_received,
            channels: channels.collect(),
        }
    }
}
