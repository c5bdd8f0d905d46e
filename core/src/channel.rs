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
        }
    }

    /// Most bytes of received messages this channel buffers before the application takes
    /// them: the window, or one message of the largest size if that is larger
    /// (`PROTOCOL.md` §6.3).
    pub fn receive_buffer_bound(&self) -> u64 {
        u64::from(self.receive_window).max(message_cost(self.max_message_size as usize))
    }
}
