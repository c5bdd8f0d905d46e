//! The sending half of one channel: its bounded queue, its flow-control credit and the
//! messages written but not yet confirmed.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;

use bytes::Bytes;

use super::{ChannelStats, MuxError, SendError};
use crate::channel::{ChannelConfig, ChannelId, MESSAGE_COST_OVERHEAD, message_cost};
use crate::frame::{data_header_len, encode_data_header};
use crate::record::MAX_PLAINTEXT_LEN;
use crate::time::Instant;
use crate::token_bucket::TokenBucket;

/// Least fragment a send-rate-limited channel is allowed per frame, whatever its burst: a
/// frame's header stays small beside its payload.
const MIN_RATE_LIMITED_FRAGMENT: usize = 512;

/// Largest message (frame header included) that, when its turn lets it go out whole, is not
/// split across two records: if it does not fit in what is left of a record it starts the
/// next one instead. Half a record, so a record given up on is at least half full. A message
/// that arrives whole in one record is handed to the application as a slice of it, without a
/// copy.
const UNSPLIT_FRAME_MAX: usize = MAX_PLAINTEXT_LEN / 2;

/// What limited a [`SendChannel::write_fragment`] call that wrote nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Blocked {
    /// Nothing to send, or no credit to start the next message.
    Idle,
    /// The record has no room for the next frame: the next record will.
    NoRoom,
    /// The turn's allowance is too small for even a minimal frame.
    TurnSpent,
}

/// The sending half of a channel. Only the settings it uses are kept, not a whole
/// [`ChannelConfig`], nor a whole [`ChannelStats`]: a relay touches the channels of
/// connections drawn at random among thousands, and every cache line a channel spans is a
/// miss.
pub(super) struct SendChannel {
    pub(super) id: ChannelId,
    /// Round-robin weight.
    pub(super) weight: u16,
    pub(super) max_message_size: u32,
    /// Bounds of the queue: messages, bytes.
    pub(super) queue_messages: usize,
    pub(super) queue_bytes: usize,
    /// Messages accepted by `send` and not completely written; the front may be partly
    /// written.
    queue: VecDeque<Bytes>,
    queued_bytes: usize,
    /// Bytes of the front message already written.
    head_written: usize,
    /// Messages completely written, oldest first, until credit confirms them.
    unconfirmed: VecDeque<Bytes>,
    /// The peer's receive window, from its first CREDIT; `None` until then.
    window: Option<u64>,
    /// Cumulative credit received, window included.
    limit: u64,
    /// Cumulative cost of the messages started.
    started: u64,
    /// Credit returned beyond the window and not yet matched to a confirmed message.
    returned: u64,
    /// Deficit round robin: bytes this channel may still write in its current turn.
    pub(super) deficit: usize,
    /// Bytes written beyond the last turn's allowance to finish a message, taken from the
    /// next turn's.
    pub(super) debt: usize,
    /// The send rate, if limited: a frame is written only while this bucket holds tokens.
    /// Boxed, so an unlimited channel pays one pointer.
    rate: Option<Box<TokenBucket>>,
    /// Messages completely written, and their bytes.
    messages_sent: u64,
    bytes_sent: u64,
    /// Messages the peer's application took (confirmed by credit).
    pub(super) messages_confirmed: u64,
}

impl SendChannel {
    pub(super) fn new(config: &ChannelConfig) -> Self {
        SendChannel {
            id: config.id,
            weight: config.weight,
            max_message_size: config.max_message_size,
            queue_messages: config.send_queue_messages,
            queue_bytes: config.send_queue_bytes,
            queue: VecDeque::new(),
            queued_bytes: 0,
            head_written: 0,
            unconfirmed: VecDeque::new(),
            window: None,
            limit: 0,
            started: 0,
            returned: 0,
            deficit: 0,
            debt: 0,
            rate: config
                .send_rate
                .map(|limit| Box::new(TokenBucket::new(limit))),
            messages_sent: 0,
            bytes_sent: 0,
            messages_confirmed: 0,
        }
    }

    pub(super) fn send(&mut self, message: Bytes) -> Result<(), SendError> {
        if message.len() > self.max_message_size as usize {
            return Err(SendError::TooLarge(message));
        }
        // An empty queue takes any message up to the maximum size, so a byte bound smaller
        // than a message never makes that message unsendable.
        let full = !self.queue.is_empty()
            && (self.queue.len() >= self.queue_messages
                || self.queued_bytes.saturating_add(message.len()) > self.queue_bytes);
        if full {
            return Err(SendError::Full(message));
        }
        self.queued_bytes = self.queued_bytes.saturating_add(message.len());
        self.queue.push_back(message);
        Ok(())
    }

    /// Whether the next message may start: `PROTOCOL.md` §6.3's rule, started cost plus the
    /// message's cost (at most one window) within the credit received.
    fn may_start(&self, message: &Bytes) -> bool {
        let Some(window) = self.window else {
            return false;
        };
        let needed = message_cost(message.len()).min(window);
        self.started.saturating_add(needed) <= self.limit
    }

    /// Has a frame to write now.
    pub(super) fn is_ready(&self) -> bool {
        self.has_credit_to_write() && self.rate.as_ref().is_none_or(|bucket| bucket.level() > 0)
    }

    /// Has a frame that flow control lets us write (the send rate aside).
    fn has_credit_to_write(&self) -> bool {
        match self.queue.front() {
            Some(front) => self.head_written > 0 || self.may_start(front),
            None => false,
        }
    }

    /// Brings the send rate's bucket up to `now`.
    pub(super) fn refill(&mut self, now: Instant) {
        if let Some(bucket) = &mut self.rate {
            bucket.refill(now);
        }
    }

    /// When the send rate lets this channel write again, if only the rate holds it back.
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        let bucket = self.rate.as_ref()?;
        if bucket.level() > 0 || !self.has_credit_to_write() {
            return None;
        }
        bucket.time_until(1)
    }

    /// Most bytes one frame of this channel may take: a rate-limited channel writes at most
    /// its burst per frame, so the debt a frame leaves is at most one burst.
    pub(super) fn max_frame(&self) -> usize {
        self.rate.as_ref().map_or(usize::MAX, |bucket| {
            usize::try_from(bucket.capacity())
                .unwrap_or(usize::MAX)
                .max(MIN_RATE_LIMITED_FRAGMENT)
        })
    }

    /// Bytes this channel may write per round-robin turn.
    pub(super) fn quantum(&self) -> usize {
        super::QUANTUM_PER_WEIGHT.saturating_mul(usize::from(self.weight.max(1)))
    }

    /// Writes one DATA frame from the front message into `out`, returning the bytes written
    /// (header included): at most `allowance` (the turn's deficit) and `space` (the record's
    /// room left). Two exceptions keep messages whole. A message that fits in one turn's
    /// quantum is finished even past the allowance (the caller takes the overdraft from the
    /// next turn), rather than split for want of a few bytes. And a message that would be
    /// split across records although it fits in half of one waits for the next record.
    pub(super) fn write_fragment(
        &mut self,
        allowance: usize,
        space: usize,
        out: &mut Vec<u8>,
    ) -> Result<usize, Blocked> {
        if !self.is_ready() {
            return Err(Blocked::Idle);
        }
        let quantum = self.quantum();
        let max_frame = self.max_frame();
        let Some(front) = self.queue.front() else {
            return Err(Blocked::Idle);
        };
        let remaining = front.len().saturating_sub(self.head_written);
        let first =
            (self.head_written == 0).then(|| u32::try_from(front.len()).unwrap_or(u32::MAX));
        let whole = data_header_len(self.id, first, remaining).saturating_add(remaining);
        // Whether the rest of the message goes out in one frame this turn, room permitting.
        let whole_this_turn = (remaining <= quantum || whole <= allowance) && whole <= max_frame;
        if first.is_some() && whole_this_turn && whole > space && whole <= UNSPLIT_FRAME_MAX {
            return Err(Blocked::NoRoom);
        }
        let limit = if whole_this_turn {
            whole.min(space)
        } else {
            allowance.min(space).min(max_frame)
        };
        let header = data_header_len(self.id, first, remaining.min(limit));
        let len = remaining.min(limit.saturating_sub(header));
        // A frame must carry a byte, unless the message is empty.
        if header > limit || (len == 0 && remaining > 0) {
            return Err(if limit == space {
                Blocked::NoRoom
            } else {
                Blocked::TurnSpent
            });
        }
        let end = len == remaining;
        let start = self.head_written;
        let stop = start.saturating_add(len);
        encode_data_header(self.id, first, end, len, out);
        out.extend_from_slice(front.get(start..stop).unwrap_or_default());
        if first.is_some() {
            self.started = self.started.saturating_add(message_cost(front.len()));
        }
        if let Some(bucket) = &mut self.rate {
            // The message's cost, paid as its bytes go out: the overhead with the first.
            let overhead = if first.is_some() {
                MESSAGE_COST_OVERHEAD
            } else {
                0
            };
            bucket.take((len as u64).saturating_add(overhead));
        }
        self.head_written = stop;
        if end {
            self.complete_front();
        }
        // The header as written: near a varint boundary it can be a byte shorter than the
        // one room was computed for.
        Ok(data_header_len(self.id, first, len).saturating_add(len))
    }

    fn complete_front(&mut self) {
        if let Some(message) = self.queue.pop_front() {
            self.queued_bytes = self.queued_bytes.saturating_sub(message.len());
            self.messages_sent = self.messages_sent.saturating_add(1);
            self.bytes_sent = self.bytes_sent.saturating_add(message.len() as u64);
            self.unconfirmed.push_back(message);
        }
        self.head_written = 0;
    }

    /// A CREDIT frame from the peer: the first announces its window, later ones return the
    /// cost of messages its application took, which confirms them in order.
    pub(super) fn handle_credit(&mut self, amount: u32) -> Result<(), MuxError> {
        let amount = u64::from(amount);
        self.limit = self.limit.saturating_add(amount);
        if self.window.is_none() {
            if amount == 0 {
                return Err(MuxError::ZeroWindow(self.id));
            }
            self.window = Some(amount);
            return Ok(());
        }
        self.returned = self.returned.saturating_add(amount);
        while let Some(front) = self.unconfirmed.front() {
            let cost = message_cost(front.len());
            if cost > self.returned {
                break;
            }
            self.returned = self.returned.saturating_sub(cost);
            self.unconfirmed.pop_front();
            self.messages_confirmed = self.messages_confirmed.saturating_add(1);
        }
        // Credit is only ever returned for whole messages we wrote: more than that means the
        // peer's accounting and ours disagree.
        if self.returned > 0 && self.unconfirmed.is_empty() {
            return Err(MuxError::CreditOverflow(self.id));
        }
        Ok(())
    }

    /// Hands back every message not confirmed, as `(unsent, unconfirmed)`. A partly written
    /// message counts as unsent: its last fragment never left, so the peer cannot deliver it.
    pub(super) fn drain_returned(&mut self) -> (VecDeque<Bytes>, VecDeque<Bytes>) {
        self.head_written = 0;
        self.queued_bytes = 0;
        (
            core::mem::take(&mut self.queue),
            core::mem::take(&mut self.unconfirmed),
        )
    }

    /// Whether a sender told `Full` for a message of `refused` bytes should try again: the
    /// queue is empty, or at most half full by count and by bytes *and* that message fits.
    /// Half, not one slot: a sender woken for every message freed would wake once per
    /// message; woken at half, it refills the queue in one go. The message's own size
    /// counts too, or a large one refused behind a half-empty queue would be told to retry
    /// at once, and again, and again.
    pub(super) fn has_room(&self, refused: usize) -> bool {
        self.queue.is_empty()
            || (self.queue.len() <= self.queue_messages / 2
                && self.queued_bytes <= self.queue_bytes / 2
                && self.queued_bytes.saturating_add(refused) <= self.queue_bytes)
    }

    /// Whether every message accepted was written and confirmed.
    pub(super) fn is_flushed(&self) -> bool {
        self.queue.is_empty() && self.unconfirmed.is_empty()
    }

    /// Lets go of queue buffers that are empty, so an idle channel holds no heap.
    pub(super) fn release_idle_buffers(&mut self) {
        if self.queue.is_empty() {
            self.queue = VecDeque::new();
        }
        if self.unconfirmed.is_empty() {
            self.unconfirmed = VecDeque::new();
        }
    }

    /// The sending half's counters; the receiving half fills in its own.
    pub(super) fn stats(&self) -> ChannelStats {
        ChannelStats {
            channel: self.id,
            messages_sent: self.messages_sent,
            bytes_sent: self.bytes_sent,
            messages_confirmed: self.messages_confirmed,
            queued_messages: self.queue.len(),
            queued_bytes: self.queued_bytes,
            unconfirmed_messages: self.unconfirmed.len(),
            unconfirmed_bytes: self
                .unconfirmed
                .iter()
                .map(Bytes::len)
                .fold(0, usize::saturating_add),
            ..ChannelStats::default()
        }
    }
}
