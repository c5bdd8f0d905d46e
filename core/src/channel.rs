//! Channel descriptors: what each multiplexed channel of a connection may carry and hold.

/// A channel's id. Ids `0xFF00..=0xFFFF` are reserved for built-in protocols.
pub type ChannelId = u16;

/// First channel id reserved for built-in protocols (PEX, gossip).
pub const RESERVED_CHANNELS_START: ChannelId = 0xFF00;

/// Flow-control cost of a message beyond its length, in bytes.
///
/// A message costs `len + MESSAGE_COST_OVERHEAD` of its channel's window, so empty messages
/// are not free: the receiver's bookkeeping per buffered message is paid for, and a window
/// bounds the number of buffered messages as well as their bytes (`PROTOCOL.md` §6.3).
pub const MESSAGE_COST_OVERHEAD: u64 = 64;

/// The flow-control cost of a message of `len` bytes.
pub fn message_cost(len: usize) -> u64 {
    (len as u64).saturating_add(MESSAGE_COST_OVERHEAD)
}

/// A rate limit on one direction of a channel: a token bucket refilled at
/// `bytes_per_second` and holding at most `burst` (`PROTOCOL.md` §6.3).
///
/// Rates count flow-control cost ([`message_cost`]: a message's length plus
/// [`MESSAGE_COST_OVERHEAD`]), so a flood of empty messages is limited as well as a flood of
/// bytes. A message larger than the burst still passes: it may start whenever the bucket holds
/// anything, and the debt it leaves delays what follows, so the long-run rate is exact.
///
/// - On the **receive** side the limit is enforced by withholding credit: the cost of a
///   message the application took is granted back to the peer only as the bucket allows,
///   possibly split over several CREDIT frames. Nothing is buffered beyond the window, and a
///   peer sending faster than the rate is simply held to it. The window itself is granted at
///   connect: a peer may send `receive_window + burst` at once, then `bytes_per_second`.
/// - On the **send** side our own DATA is shaped: a channel whose bucket is empty is skipped
///   by the scheduler until it refills, while its messages wait in its queue (so `send`
///   returns `Full` when that fills).
///
/// ```
/// use switchboard::{ChannelConfig, RateLimit};
///
/// // Accept at most 100 KiB/s from each peer on this channel.
/// let blocks = ChannelConfig {
///     receive_rate: Some(RateLimit::per_second(100 * 1024)),
///     ..ChannelConfig::new(2)
/// };
/// assert_eq!(blocks.receive_rate.unwrap().burst, 10 * 1024);
/// assert_eq!(RateLimit::per_second(1000).burst, RateLimit::MIN_DEFAULT_BURST);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RateLimit {
    /// Sustained rate, in cost units per second. Zero allows only the initial burst.
    pub bytes_per_second: u64,
    /// Capacity of the bucket, in cost units: how much may pass at once after a quiet period.
    /// Zero is taken as 1.
    pub burst: u64,
}

impl RateLimit {
    /// The least burst [`RateLimit::per_second`] chooses: small messages pass without
    /// waiting for the bucket to refill.
    pub const MIN_DEFAULT_BURST: u64 = 4 * 1024;

    /// `bytes_per_second` with a burst of a tenth of a second's worth (at least
    /// [`RateLimit::MIN_DEFAULT_BURST`]): smooth at the scale of 100 ms, yet a whole small
    /// message at once.
    pub const fn per_second(bytes_per_second: u64) -> Self {
        let tenth = bytes_per_second / 10;
        RateLimit {
            bytes_per_second,
            burst: if tenth > Self::MIN_DEFAULT_BURST {
                tenth
            } else {
                Self::MIN_DEFAULT_BURST
            },
        }
    }
}

/// One channel's configuration. Both ends of a connection configure the channels they
/// offer; a channel is open on a connection when both offer it.
///
/// ```
/// use switchboard::ChannelConfig;
///
/// // A consensus channel that must not wait behind bulk transfers.
/// let votes = ChannelConfig { weight: 8, max_message_size: 64 * 1024, ..ChannelConfig::new(1) };
/// assert_eq!(votes.receive_window, 1 << 20);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelConfig {
    /// The channel id.
    pub id: ChannelId,
    /// Scheduling weight, ≥ 1: under contention a channel gets a share of the connection's
    /// bandwidth proportional to its weight (deficit round robin). Default 1.
    pub weight: u16,
    /// Most messages waiting in the send queue. Default 1024.
    pub send_queue_messages: usize,
    /// Most bytes waiting in the send queue. An empty queue accepts one message of any size
    /// up to `max_message_size`, so this may be smaller than a message. Default 1 MiB.
    pub send_queue_bytes: usize,
    /// Largest message, sent or received. Both ends must agree: a peer that sends a larger
    /// one is disconnected with `MessageTooLarge`. Default 4 MiB.
    pub max_message_size: u32,
    /// Receive window, in cost units ([`message_cost`]): how much the peer may send ahead of
    /// what our application has taken. Announced to the peer at the start, so the ends need
    /// not agree. Default 1 MiB; at least 1.
    pub receive_window: u32,
    /// Most this end sends on the channel, over time. Local policy, invisible to the peer.
    /// Default `None`: unlimited.
    pub send_rate: Option<RateLimit>,
    /// Most the peer may send on the channel, over time, enforced by withholding credit.
    /// Local policy: the peer only sees credit arrive at that pace. Default `None`: unlimited.
    pub receive_rate: Option<RateLimit>,
}

impl ChannelConfig {
    /// A channel with the default limits.
    pub const fn new(id: ChannelId) -> Self {
        ChannelConfig {
            id,
            weight: 1,
            send_queue_messages: 1024,
            send_queue_bytes: 1 << 20,
            max_message_size: 4 << 20,
            receive_window: 1 << 20,
            send_rate: None,
            receive_rate: None,
        }
    }

    /// Most bytes of received messages this channel buffers before the application takes
    /// them: the window, or one message of the largest size if that is larger
    /// (`PROTOCOL.md` §6.3).
    pub fn receive_buffer_bound(&self) -> u64 {
        u64::from(self.receive_window).max(message_cost(self.max_message_size as usize))
    }
}
