//! The multiplexer: ordered, reliable messages on prioritized channels over one connection,
//! with per-channel credit-based flow control (`PROTOCOL.md` §6).
//!
//! Sending, each channel has a bounded queue ([`SendError::Full`] hands the message back
//! instead of buffering without end), and records are filled by weighted deficit round robin,
//! so a channel saturated with bulk data cannot starve a high-priority one: a channel of
//! weight `w` may write up to `w ×` [`QUANTUM_PER_WEIGHT`] bytes per turn.
//!
//! Receiving, a peer may only start a message within the credit we granted, and we grant
//! credit when the application *takes* a message. The bytes of undelivered messages per
//! channel are therefore bounded by [`ChannelConfig::receive_buffer_bound`] whatever the peer
//! sends (and the memory holding them by eight times that: a message may be a slice of the
//! buffer its read arrived in when it is an eighth of it, see `connection::may_hold`;
//! messages copied out or reassembled hold at most twice their bytes), and the credit doubles
//! as delivery confirmation: the sender keeps each written message (a `Bytes` clone) until
//! its credit comes back, and so knows which messages the peer's application received.
//!
//! Rate limits ([`crate::RateLimit`]) are token buckets beside that machinery, costing an
//! unlimited channel one `Option` check: a receive rate withholds the credit of taken
//! messages until its bucket allows it (so the peer is slowed without anything buffered
//! beyond the window), a send rate makes deficit round robin skip the channel while its
//! bucket is empty. [`Mux::poll_timeout`] names when either can next make progress and
//! [`Mux::handle_timeout`] makes it.

mod receive;
mod send;

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::fmt;

use bytes::Bytes;

use crate::channel::{ChannelConfig, ChannelId};
use crate::disconnect::DisconnectReason;
use crate::frame::Frame;
use crate::node_info::ChannelInfo;
use crate::time::Instant;
use receive::ReceiveChannel;
pub(crate) use receive::{Landed, Landing};
use send::{Blocked, SendChannel};

/// A CREDIT frame is at most 1 + 3 + 5 bytes.
const MAX_CREDIT_FRAME: usize = 9;

/// Bytes a channel of weight 1 may write per round-robin turn.
///
/// Large enough that a lone bulk channel fills a record in four frames, small enough that a
/// weight-1 channel delays another channel's turn by at most a quarter of a record.
pub const QUANTUM_PER_WEIGHT: usize = 16 * 1024;

/// Why `send` refused a message; the message is handed back in every case.
///
/// Its `Debug` shows the message's length, not its bytes (`Full(<4096 bytes>)`): an error
/// ends up in logs and `unwrap` panics, where a 64 KiB payload would bury the message and
/// spill the application's data.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// The channel's send queue is at its bound. On a node, send again after
    /// [`NodeEvent::Writable`](crate::node::NodeEvent::Writable) for that peer and channel
    /// (a protocol: after its `writable` hook), or wait with `Handle::send_timeout` of
    /// `switchboard-mio`; on a bare [`Connection`](crate::Connection), after its
    /// `poll_transmit` wrote more.
    Full(Bytes),
    /// The message exceeds the channel's maximum message size.
    TooLarge(Bytes),
    /// The channel is not open on this connection (not negotiated by both ends).
    ChannelNotOpen(Bytes),
    /// The connection is not established, or already closing.
    NotConnected(Bytes),
}

impl SendError {
    /// The refused message.
    pub fn into_message(self) -> Bytes {
        match self {
            SendError::Full(message)
            | SendError::TooLarge(message)
            | SendError::ChannelNotOpen(message)
            | SendError::NotConnected(message) => message,
        }
    }
}

impl fmt::Debug for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (variant, message) = match self {
            SendError::Full(message) => ("Full", message),
            SendError::TooLarge(message) => ("TooLarge", message),
            SendError::ChannelNotOpen(message) => ("ChannelNotOpen", message),
            SendError::NotConnected(message) => ("NotConnected", message),
        };
        f.debug_tuple(variant)
            .field(&LengthOnly(message.len()))
            .finish()
    }
}

/// Debugs as `<n bytes>`: what the `Debug` of a type carrying a message shows in its place.
struct LengthOnly(usize);

impl fmt::Debug for LengthOnly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes>", self.0)
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::Full(_) => "channel send queue full",
            SendError::TooLarge(_) => "message larger than the channel allows",
            SendError::ChannelNotOpen(_) => "channel not open on this connection",
            SendError::NotConnected(_) => "connection not established",
        })
    }
}

impl core::error::Error for SendError {}

/// A peer broke the multiplexing rules; each maps to the [`DisconnectReason`] we send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MuxError {
    /// A frame on a channel that is not open.
    ChannelNotOpen(ChannelId),
    /// A message announced larger than the channel allows.
    MessageTooLarge {
        /// The channel.
        channel: ChannelId,
        /// The announced length.
        len: usize,
        /// The channel's maximum.
        max: u32,
    },
    /// A message started beyond the credit granted.
    FlowControl(ChannelId),
    /// Credit returned for more than we sent.
    CreditOverflow(ChannelId),
    /// A window of 0 announced: no message could ever start on the channel, since no credit
    /// may follow a window but the cost of messages taken.
    ZeroWindow(ChannelId),
    /// A DATA fragment that does not continue or start a message as announced.
    UnexpectedFragment(ChannelId),
}

impl MuxError {
    /// The reason to give the peer.
    pub fn reason(&self) -> DisconnectReason {
        match self {
            MuxError::MessageTooLarge { .. } => DisconnectReason::MessageTooLarge,
            MuxError::FlowControl(_) | MuxError::CreditOverflow(_) | MuxError::ZeroWindow(_) => {
                DisconnectReason::FlowControl
            }
            MuxError::ChannelNotOpen(_) | MuxError::UnexpectedFragment(_) => {
                DisconnectReason::ProtocolError
            }
        }
    }
}

impl fmt::Display for MuxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MuxError::ChannelNotOpen(channel) => {
                write!(f, "frame on channel {channel}, which is not open")
            }
            MuxError::MessageTooLarge { channel, len, max } => {
                write!(
                    f,
                    "message of {len} bytes on channel {channel} exceeds its maximum {max}"
                )
            }
            MuxError::FlowControl(channel) => {
                write!(f, "message on channel {channel} sent beyond its credit")
            }
            MuxError::CreditOverflow(channel) => {
                write!(
                    f,
                    "credit on channel {channel} returned for messages never sent"
                )
            }
            MuxError::UnexpectedFragment(channel) => {
                write!(f, "DATA fragment on channel {channel} out of sequence")
            }
            MuxError::ZeroWindow(channel) => {
                write!(f, "window of 0 announced on channel {channel}")
            }
        }
    }
}

impl core::error::Error for MuxError {}

/// Counters of one channel of a connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChannelStats {
    /// The channel.
    pub channel: ChannelId,
    /// Messages completely written to the connection.
    pub messages_sent: u64,
    /// Bytes of those messages.
    pub bytes_sent: u64,
    /// Messages the peer's application took (confirmed by credit).
    pub messages_confirmed: u64,
    /// Complete messages received.
    pub messages_received: u64,
    /// Bytes of those messages.
    pub bytes_received: u64,
    /// Messages waiting in the send queue now.
    pub queued_messages: usize,
    /// Bytes waiting in the send queue now.
    pub queued_bytes: usize,
    /// Messages written and not yet confirmed now.
    pub unconfirmed_messages: usize,
    /// Bytes of those messages, kept until confirmed: at most the peer's window plus one
    /// message.
    pub unconfirmed_bytes: usize,
    /// Bytes held for received messages the application has not taken, a partly received
    /// one included: at most [`ChannelConfig::receive_buffer_bound`](crate::ChannelConfig::receive_buffer_bound).
    pub receive_buffered_bytes: u64,
    /// Credit the channel's receive rate holds back now: the cost of messages taken whose
    /// credit the peer has not been granted yet. Always 0 without a receive rate.
    pub credit_withheld: u64,
}

/// A message handed back when a connection ends without it being confirmed.
///
/// Its `Debug` shows the message's length, not its bytes, as [`SendError`]'s does: a
/// `PeerDisconnected` event logged whole would otherwise print every returned payload.
#[derive(Clone, PartialEq, Eq)]
pub struct ReturnedMessage {
    /// The channel it was sent on.
    pub channel: ChannelId,
    /// The message.
    pub message: Bytes,
}

impl fmt::Debug for ReturnedMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReturnedMessage")
            .field("channel", &self.channel)
            .field("message", &LengthOnly(self.message.len()))
            .finish()
    }
}

/// What became of every message accepted by `send` on a connection that ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SendOutcome {
    /// Never completely written: certainly not delivered. In send order per channel.
    pub unsent: Vec<ReturnedMessage>,
    /// Written, not confirmed: perhaps delivered. In send order per channel.
    pub unconfirmed: Vec<ReturnedMessage>,
    /// How many were confirmed: the peer's application took them.
    pub confirmed: u64,
    /// The same, per channel (every open channel, in id order).
    pub confirmed_by_channel: Vec<(ChannelId, u64)>,
}

struct Channel {
    send: SendChannel,
    receive: ReceiveChannel,
}

/// The channels of one established connection.
pub(crate) struct Mux {
    /// Open channels, sorted by id.
    channels: Vec<Channel>,
    /// The channel whose round-robin turn it is.
    cursor: usize,
    /// Index of the channel last looked up by id.
    last_used: usize,
    /// No CREDIT is written any more ([`Mux::withhold_credit`]).
    credit_withheld: bool,
}

impl Mux {
    /// Opens the channels negotiated from both ends' `NodeInfo`s ([`crate::negotiate`], a
    /// rule both ends compute alike) with the limits `configs` gives each (the defaults for
    /// a channel it omits).
    pub(crate) fn new(
        configs: &[ChannelConfig],
        offered: &[ChannelInfo],
        remote: &[ChannelInfo],
    ) -> Self {
        let mut channels: Vec<Channel> = crate::negotiation::negotiate(offered, remote)
            .iter()
            .map(|local| {
                let config = configs
                    .iter()
                    .find(|config| config.id == local.id)
                    .copied()
                    .unwrap_or_else(|| ChannelConfig::new(local.id));
                Channel {
                    send: SendChannel::new(&config),
                    receive: ReceiveChannel::new(&config),
                }
            })
            .collect();
        channels.sort_by_key(|channel| channel.send.id);
        channels.dedup_by_key(|channel| channel.send.id);
        channels.shrink_to_fit();
        Mux {
            channels,
            cursor: 0,
            last_used: 0,
            credit_withheld: false,
        }
    }

    /// The open channel `id`. Traffic comes in runs on one channel, so the last channel
    /// looked up is tried before the binary search.
    fn channel(&mut self, id: ChannelId) -> Option<&mut Channel> {
        let cached = self
            .channels
            .get(self.last_used)
            .is_some_and(|channel| channel.send.id == id);
        if !cached {
            self.last_used = self
                .channels
                .binary_search_by_key(&id, |channel| channel.send.id)
                .ok()?;
        }
        self.channels.get_mut(self.last_used)
    }

    /// Lets go of drained queue and reassembly buffers (called when the connection is idle).
    pub(crate) fn release_idle_buffers(&mut self) {
        for channel in &mut self.channels {
            channel.send.release_idle_buffers();
            channel.receive.release_idle_buffer();
        }
    }

    pub(crate) fn is_open(&self, id: ChannelId) -> bool {
        self.channels
            .binary_search_by_key(&id, |channel| channel.send.id)
            .is_ok()
    }

    pub(crate) fn send(&mut self, id: ChannelId, message: Bytes) -> Result<(), SendError> {
        match self.channel(id) {
            Some(channel) => channel.send.send(message),
            None => Err(SendError::ChannelNotOpen(message)),
        }
    }

    /// Whether channel `id`'s send queue has room again after a `Full` of a `refused`-byte
    /// message (see `SendChannel::has_room`); a channel that is not open has none.
    pub(crate) fn has_room(&self, id: ChannelId, refused: usize) -> bool {
        self.channels
            .binary_search_by_key(&id, |channel| channel.send.id)
            .ok()
            .and_then(|index| self.channels.get(index))
            .is_some_and(|channel| channel.send.has_room(refused))
    }

    /// Whether every message accepted on every channel was written and confirmed.
    pub(crate) fn is_flushed(&self) -> bool {
        self.channels
            .iter()
            .all(|channel| channel.send.is_flushed())
    }

    /// A DATA frame; returns the message it completes, if any.
    pub(crate) fn handle_data(
        &mut self,
        id: ChannelId,
        first: Option<u32>,
        end: bool,
        payload: Bytes,
    ) -> Result<Option<Bytes>, MuxError> {
        self.channel(id)
            .ok_or(MuxError::ChannelNotOpen(id))?
            .receive
            .handle_data(first, end, payload)
    }

    /// Starts placing a record of `record_len` ciphertext bytes straight into channel `id`'s
    /// reassembly buffer, guessing it continues the message being reassembled there (see
    /// [`Landing`]); `None` if it cannot.
    pub(crate) fn begin_landing(&mut self, id: ChannelId, record_len: usize) -> Option<Landing> {
        self.channel(id)?.receive.begin_landing(record_len)
    }

    /// More of the landing record's ciphertext.
    pub(crate) fn extend_landing(&mut self, landing: &Landing, ciphertext: &[u8]) {
        if let Some(channel) = self.channel(landing.channel) {
            channel.receive.extend_landing(ciphertext);
        }
    }

    /// The landed record, whole, to decrypt in place.
    pub(crate) fn landed_record(&mut self, landing: &Landing) -> Option<&mut [u8]> {
        self.channel(landing.channel)?
            .receive
            .landed_record(landing)
    }

    /// The landed record is decrypted: whether it led with the fragment guessed (and the
    /// message it completes), or else its plaintext, to be read as any other record's; what
    /// is to be read is copied out by `keep`.
    pub(crate) fn finish_landing(
        &mut self,
        landing: Landing,
        keep: impl FnOnce(&[u8]) -> Bytes,
    ) -> Result<Landed, MuxError> {
        let id = landing.channel;
        let channel = self.channel(id).ok_or(MuxError::ChannelNotOpen(id))?;
        Ok(channel.receive.finish_landing(landing, keep))
    }

    pub(crate) fn handle_credit(&mut self, id: ChannelId, amount: u32) -> Result<(), MuxError> {
        self.channel(id)
            .ok_or(MuxError::ChannelNotOpen(id))?
            .send
            .handle_credit(amount)
    }

    /// The application took a message of `len` bytes from channel `id`.
    pub(crate) fn handle_taken(&mut self, id: ChannelId, len: usize) {
        if let Some(channel) = self.channel(id) {
            channel.receive.handle_taken(len);
        }
    }

    /// Brings the rate limits up to `now`: refills the buckets and grants the withheld
    /// credit they allow. Cheap, and a no-op on channels without limits; call it at the
    /// deadline of [`Mux::poll_timeout`] and before writing.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        for channel in &mut self.channels {
            channel.send.refill(now);
            channel.receive.release_credit(now);
        }
    }

    /// When a rate limit next lets a channel make progress: a send-limited channel with
    /// something to write, or a receive-limited one with credit to release. `None` when no
    /// rate holds anything back.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.channels
            .iter()
            .flat_map(|channel| [channel.send.poll_timeout(), channel.receive.poll_timeout()])
            .flatten()
            .min()
    }

    /// Whether [`Mux::write_frames`] has anything to write.
    pub(crate) fn wants_to_write(&self) -> bool {
        self.channels.iter().any(|channel| {
            (!self.credit_withheld && channel.receive.has_pending_credit())
                || channel.send.is_ready()
        })
    }

    /// Grants no more credit: what the application takes from now on is never confirmed
    /// to the sender (see `Connection::withhold_credit`).
    pub(crate) fn withhold_credit(&mut self) {
        self.credit_withheld = true;
    }

    /// Appends frames to `out` using at most `space` bytes: data chosen by deficit round
    /// robin, then pending credit (room kept for it). Returns the bytes written.
    pub(crate) fn write_frames(&mut self, out: &mut Vec<u8>, space: usize) -> usize {
        // DATA first, CREDIT after (room kept for it): a record of one fragment followed by
        // control frames is one the receiver can place straight into its reassembly buffer
        // (`connection/landing.rs`), which it cannot when the fragment comes second.
        let credit_room = self.credit_room().min(space);
        let data = self.write_data(out, space.saturating_sub(credit_room));
        data.saturating_add(self.write_credits(out, space.saturating_sub(data)))
    }

    /// Room the pending CREDIT frames take at most.
    fn credit_room(&self) -> usize {
        if self.credit_withheld {
            return 0;
        }
        self.channels
            .iter()
            .filter(|channel| channel.receive.has_pending_credit())
            .count()
            .saturating_mul(MAX_CREDIT_FRAME)
    }

    fn write_credits(&mut self, out: &mut Vec<u8>, space: usize) -> usize {
        let start = out.len();
        if self.credit_withheld {
            return 0;
        }
        for channel in &mut self.channels {
            if out
                .len()
                .saturating_sub(start)
                .saturating_add(MAX_CREDIT_FRAME)
                > space
            {
                break;
            }
            if let Some(amount) = channel.receive.take_pending_credit() {
                Frame::Credit {
                    channel: channel.receive.id,
                    amount,
                }
                .encode(out);
            }
        }
        out.len().saturating_sub(start)
    }

    fn write_data(&mut self, out: &mut Vec<u8>, mut space: usize) -> usize {
        let count = self.channels.len();
        let mut written = 0usize;
        // Consecutive channels visited that had nothing to send: a whole lap ends the fill.
        let mut idle_visits = 0;
        while idle_visits < count {
            if self.cursor >= count {
                self.cursor = 0;
            }
            let Some(channel) = self.channels.get_mut(self.cursor) else {
                break;
            };
            let send = &mut channel.send;
            if !send.is_ready() {
                send.deficit = 0;
                self.cursor = self.cursor.saturating_add(1);
                idle_visits = idle_visits.saturating_add(1);
                continue;
            }
            if send.deficit == 0 && !self.start_turn(self.cursor) {
                // The last turn's overdraft took this one.
                self.cursor = self.cursor.saturating_add(1);
                continue;
            }
            let Some(channel) = self.channels.get_mut(self.cursor) else {
                break;
            };
            let send = &mut channel.send;
            match send.write_fragment(send.deficit, space, out) {
                Ok(bytes) => {
                    written = written.saturating_add(bytes);
                    space = space.saturating_sub(bytes);
                    send.debt = bytes.saturating_sub(send.deficit);
                    send.deficit = send.deficit.saturating_sub(bytes);
                    idle_visits = 0;
                    if send.deficit == 0 {
                        self.cursor = self.cursor.saturating_add(1);
                    }
                }
                Err(Blocked::NoRoom) => break,
                Err(Blocked::Idle | Blocked::TurnSpent) => {
                    // The turn's allowance is spent: the next channel's turn.
                    send.deficit = 0;
                    self.cursor = self.cursor.saturating_add(1);
                }
            }
        }
        // A lone channel's turn lasts one record: the next may find company.
        for channel in &mut self.channels {
            if channel.send.deficit > channel.send.quantum() {
                channel.send.deficit = 0;
            }
        }
        written
    }

    /// Starts channel `index`'s turn: its quantum less what the last turn overdrew, or, when
    /// no other channel has anything to write, the rest of the record (alone, a channel's
    /// turns would only cut its messages into more frames, each a reassembly copy at the
    /// peer). Returns false when the overdraft takes the whole turn.
    fn start_turn(&mut self, index: usize) -> bool {
        let alone = !self.others_ready(index);
        let Some(channel) = self.channels.get_mut(index) else {
            return false;
        };
        let send = &mut channel.send;
        let debt = core::mem::take(&mut send.debt);
        send.deficit = send.quantum().saturating_sub(debt);
        if send.deficit > 0 && alone {
            send.deficit = usize::MAX;
        }
        send.deficit > 0
    }

    /// Whether a channel other than the one at `index` has a frame to write.
    fn others_ready(&self, index: usize) -> bool {
        self.channels
            .iter()
            .enumerate()
            .any(|(other, channel)| other != index && channel.send.is_ready())
    }

    /// Bytes held for received messages not yet taken, all channels.
    pub(crate) fn buffered_bytes(&self) -> u64 {
        self.channels
            .iter()
            .map(|channel| channel.receive.buffered())
            .fold(0, u64::saturating_add)
    }

    pub(crate) fn stats(&self) -> impl Iterator<Item = ChannelStats> + '_ {
        self.channels.iter().map(|channel| ChannelStats {
            messages_received: channel.receive.messages_received,
            bytes_received: channel.receive.bytes_received,
            credit_withheld: channel.receive.withheld(),
            receive_buffered_bytes: channel.receive.buffered(),
            ..channel.send.stats()
        })
    }

    /// Ends every channel, handing back what was not confirmed.
    pub(crate) fn finish(&mut self) -> SendOutcome {
        let mut outcome = SendOutcome::default();
        for channel in &mut self.channels {
            let id = channel.send.id;
            let (unsent, unconfirmed) = channel.send.drain_returned();
            let confirmed = channel.send.messages_confirmed;
            outcome.confirmed = outcome.confirmed.saturating_add(confirmed);
            outcome.confirmed_by_channel.push((id, confirmed));
            extend_returned(&mut outcome.unsent, id, unsent);
            extend_returned(&mut outcome.unconfirmed, id, unconfirmed);
        }
        outcome
    }
}

fn extend_returned(out: &mut Vec<ReturnedMessage>, channel: ChannelId, messages: VecDeque<Bytes>) {
    out.extend(
        messages
            .into_iter()
            .map(|message| ReturnedMessage { channel, message }),
    );
}

#[cfg(test)]
mod tests;
