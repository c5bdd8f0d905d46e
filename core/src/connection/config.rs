//! What a connection is configured with.

use alloc::vec::Vec;
use core::time::Duration;

use crate::channel::ChannelConfig;

/// Settings shared by the connections of a node (hand them out in an `Arc`).
///
/// ```
/// use switchboard::{ChannelConfig, ConnectionConfig};
///
/// let config = ConnectionConfig::new(vec![ChannelConfig::new(1), ChannelConfig::new(2)]);
/// assert_eq!(config.ping_interval.as_secs(), 10);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionConfig {
    /// Limits of the channels this end offers. Which channels are offered is the local
    /// `NodeInfo`'s list; a channel is open on a connection when both ends' `NodeInfo`s list
    /// it. An offered channel missing here gets [`ChannelConfig::new`]'s defaults; one here
    /// but not offered stays closed. Of duplicate ids the first counts.
    pub channels: Vec<ChannelConfig>,
    /// How often a PING goes out, traffic or not. Default 10 s.
    pub ping_interval: Duration,
    /// How long the peer may stay silent after a PING fell due before the connection closes
    /// with `Timeout`. Default 20 s.
    pub pong_timeout: Duration,
    /// How long the handshake may take. Default 10 s.
    pub handshake_timeout: Duration,
    /// How long an accepted connection may stay without sending its first byte before it
    /// closes with `Timeout`. A dialer writes its first handshake message as soon as its
    /// connect completes, so an honest one is heard from within a round trip; a socket that
    /// stays silent is holding a pending-handshake slot for nothing, and is let go well before
    /// the handshake timeout. Applies to the listener only (the dialer speaks first). Default
    /// 3 s: a round trip over the worst links, with room to spare.
    pub first_byte_timeout: Duration,
    /// How long a connection we closed may wait for the transport to take its GOAWAY
    /// before it ends without it. A peer that stops reading would otherwise hold the
    /// connection (and its socket) forever: its GOAWAY never goes out. Default 5 s; at
    /// least 1 ms is honoured, so the GOAWAY always gets its chance.
    pub close_timeout: Duration,
    /// How long what we wrote may stay unread — the transport refusing more, as reported
    /// by the adapter (`Node::handle_write_blocked` until `Node::handle_writable`) — before
    /// the connection ends with `WriteStalled`, without waiting for a GOAWAY nothing would
    /// carry. A peer that never reads cannot then keep its slot by sending now and then,
    /// as it could while only silence was judged.
    ///
    /// Default 30 s: the silence a peer is allowed (`ping_interval` + `pong_timeout`), so a
    /// peer stuck in reading is treated like one stuck in writing. A blocked socket is
    /// writable again once the transport took the write pending when it blocked (the mio
    /// driver's: at most 256 KiB, the node handing out nothing more meanwhile), so an honest
    /// peer that reads at all — at 9 KB/s or more — never stays blocked that long; raise it
    /// for slower links.
    pub write_stall_timeout: Duration,
    /// Frames that carry nothing (PING, PONG, `CREDIT(0)`, empty fragments and records) the
    /// peer may send per second, and at once; one more ends the connection with
    /// `ControlFlood` (`PROTOCOL.md` §8.1). They cost the receiver a dispatch each and the
    /// sender three bytes, and nothing else bounds them. Default
    /// [`FREE_FRAMES_PER_SECOND`](super::FREE_FRAMES_PER_SECOND), 10,000: a hundred times
    /// what an honest peer pinging every 20 ms sends.
    pub free_frames_per_second: u32,
}

impl ConnectionConfig {
    /// The given channels with the default timers.
    pub fn new(channels: Vec<ChannelConfig>) -> Self {
        ConnectionConfig {
            channels,
            ping_interval: Duration::from_secs(10),
            pong_timeout: Duration::from_secs(20),
            handshake_timeout: Duration::from_secs(10),
            first_byte_timeout: Duration::from_secs(3),
            close_timeout: Duration::from_secs(5),
            write_stall_timeout: Duration::from_secs(30),
            free_frames_per_second: super::FREE_FRAMES_PER_SECOND,
        }
    }
}
