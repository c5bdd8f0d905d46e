//! The receiving half of one channel: reassembly of fragmented messages and the credit the
//! peer may use.

use alloc::boxed::Box;

use bytes::{Bytes, BytesMut};

use super::MuxError;
use crate::channel::{ChannelConfig, ChannelId, message_cost};
use crate::cipher::TAG_LEN;
use crate::frame::{DataHeader, data_header_len};
use crate::time::Instant;
use crate::token_bucket::TokenBucket;

/// Longest header of a DATA frame that continues a message: type, flags, channel (3),
/// fragment length (3).
const MAX_CONTINUATION_HEADER: usize = 8;

/// The most a record landing a message's last fragment may carry after it: the control
/// frames writers put after the data — a CREDIT for each of a few channels, a PING and a
/// PONG (9 bytes each). A record carrying more (the start of the next message) is read the
/// usual way, as its bytes would otherwise be copied twice.
const MAX_AFTER_LAST_FRAGMENT: usize = 64;

/// Room kept past a message's end in its reassembly buffer, so the record carrying its last
/// fragment can land too: what may follow the fragment, and the tag.
const LANDING_TAIL_ROOM: usize = MAX_AFTER_LAST_FRAGMENT + TAG_LEN;

/// Messages shorter than this get no [`LANDING_TAIL_ROOM`]: their last fragment is read the
/// usual way. Landing saves little on them, and the room would cost more than flow control
/// counts per message (64 bytes): a peer sending 1-byte messages in two fragments each made
/// every undelivered one hold an 81-byte buffer, 2.8 times the receive bound in all.
const MIN_LANDING_MESSAGE: usize = 4096;

/// A record whose ciphertext is being placed straight into a channel's reassembly buffer, so
/// that, decrypted in place, its payload already follows the message's bytes so far: one copy
/// of a large message's bytes on the receiving side instead of two (into the record buffer,
/// then out of it). Made by [`ReceiveChannel::begin_landing`] on a guess — that the record
/// leads with a DATA frame continuing the message — which the plaintext confirms or refutes.
pub(crate) struct Landing {
    pub(super) channel: ChannelId,
    /// Where the ciphertext starts in the reassembly buffer: the header's length before the
    /// end of the message so far.
    start: u32,
    /// Ciphertext bytes, tag included.
    record_len: u16,
    /// The length the guessed fragment's header must have. (Kept small: every connection
    /// holds one slot for a landing.)
    header_len: u8,
    /// The message bytes the frame header lands on, put back once it is read.
    saved: [u8; MAX_CONTINUATION_HEADER],
}

impl Landing {
    /// The channel whose message the record is guessed to continue.
    pub(crate) fn channel(&self) -> ChannelId {
        self.channel
    }

    /// Ciphertext bytes, tag included.
    pub(crate) fn record_len(&self) -> usize {
        usize::from(self.record_len)
    }

    fn start(&self) -> usize {
        self.start as usize
    }

    fn header_len(&self) -> usize {
        usize::from(self.header_len)
    }
}

/// How a landed record turned out.
pub(crate) enum Landed {
    /// It led with the fragment guessed: the message, if the fragment completed it, and a
    /// copy of the frames after the fragment (control frames, mostly), to read as usual.
    Fragment { message: Option<Bytes>, rest: Bytes },
    /// It was something else: a copy of its plaintext, to read as any record.
    Refuted(Bytes),
}

/// A message being reassembled: its announced length. Its bytes so far are in
/// [`ReceiveChannel::assembly`].
struct Partial {
    total: usize,
}

impl Partial {
    /// Whether a continuation of `len` bytes after the `so_far` received fits the message,
    /// and is flagged as ending it exactly when it does.
    fn continues(&self, so_far: usize, len: usize, end: bool) -> bool {
        let received = so_far.saturating_add(len);
        received <= self.total && end == (received == self.total)
    }
}

/// The receiving half of a channel. As the sending half, it keeps only the settings and
/// counters it uses (see [`SendChannel`](super::send::SendChannel)).
pub(super) struct ReceiveChannel {
    pub(super) id: ChannelId,
    max_message_size: u32,
    /// The window announced to the peer.
    receive_window: u32,
    partial: Option<Partial>,
    /// Where fragmented messages are reassembled. Each complete message is split off it, so
    /// once the application has dropped a message its memory is reused for the next one
    /// (reclaiming a buffer no message shares any more moves it back to its start instead of
    /// allocating): a steady stream of large messages allocates nothing per message.
    assembly: BytesMut,
    /// The other reassembly buffer: a message usually starts before the application took the
    /// one before it (both come out of one read), so buffers alternate. Both are released by
    /// [`ReceiveChannel::release_idle_buffer`].
    spare: BytesMut,
    /// Cumulative cost of the messages the peer started.
    consumed: u64,
    /// Cumulative credit granted, the initial window included (sent or about to be).
    granted: u64,
    /// Credit granted but not yet sent in a CREDIT frame.
    pending_credit: u64,
    /// Bytes of complete messages handed to the event queue and not yet taken.
    undelivered: u64,
    /// The receive rate, if limited: credit is granted only as this bucket allows. Boxed,
    /// so an unlimited channel pays one pointer.
    rate: Option<Box<TokenBucket>>,
    /// Cost of messages taken whose credit the receive rate still holds back.
    withheld: u64,
    /// Complete messages received, and their bytes.
    pub(super) messages_received: u64,
    pub(super) bytes_received: u64,
}

impl ReceiveChannel {
    /// A channel whose window is announced with the first CREDIT frame.
    pub(super) fn new(config: &ChannelConfig) -> Self {
        let window = u64::from(config.receive_window.max(1));
        ReceiveChannel {
            id: config.id,
            max_message_size: config.max_message_size,
            receive_window: config.receive_window,
            partial: None,
            assembly: BytesMut::new(),
            spare: BytesMut::new(),
            consumed: 0,
            granted: window,
            pending_credit: window,
            undelivered: 0,
            rate: config
                .receive_rate
                .map(|limit| Box::new(TokenBucket::new(limit))),
            withheld: 0,
            messages_received: 0,
            bytes_received: 0,
        }
    }

    /// A DATA frame; returns the message it completes, if any.
    pub(super) fn handle_data(
        &mut self,
        first: Option<u32>,
        end: bool,
        payload: Bytes,
    ) -> Result<Option<Bytes>, MuxError> {
        let channel = self.id;
        let partial = match (first, self.partial.take()) {
            (Some(total), None) => {
                let total = total as usize;
                if total > self.max_message_size as usize {
                    return Err(MuxError::MessageTooLarge {
                        channel,
                        len: total,
                        max: self.max_message_size,
                    });
                }
                // PROTOCOL.md §6.3: a message may start only within the credit granted.
                let window = u64::from(self.receive_window.max(1));
                let needed = message_cost(total).min(window);
                if self.consumed.saturating_add(needed) > self.granted {
                    return Err(MuxError::FlowControl(channel));
                }
                self.consumed = self.consumed.saturating_add(message_cost(total));
                if end && payload.len() == total {
                    // The whole message in one frame: hand out the slice of the record.
                    return Ok(Some(self.deliver(payload)));
                }
                self.reserve_assembly(total);
                Partial { total }
            }
            (None, Some(partial)) => partial,
            (Some(_), Some(_)) | (None, None) => return Err(MuxError::UnexpectedFragment(channel)),
        };
        if !partial.continues(self.assembly.len(), payload.len(), end) {
            return Err(MuxError::UnexpectedFragment(channel));
        }
        self.assembly.extend_from_slice(&payload);
        if end {
            let message = self.assembly.split().freeze();
            return Ok(Some(self.deliver(message)));
        }
        self.partial = Some(partial);
        Ok(None)
    }

    /// Room for a whole message of `total` bytes, reserved once, when it starts: in the
    /// current buffer or the spare if either can be reclaimed, else newly allocated.
    /// [`LANDING_TAIL_ROOM`] more (for a message of at least [`MIN_LANDING_MESSAGE`]
    /// bytes), so that the record carrying the last fragment can land too.
    fn reserve_assembly(&mut self, total: usize) {
        let room = if total >= MIN_LANDING_MESSAGE {
            total.saturating_add(LANDING_TAIL_ROOM)
        } else {
            total
        };
        if self.assembly.try_reclaim(room) {
            return;
        }
        core::mem::swap(&mut self.assembly, &mut self.spare);
        if !self.assembly.try_reclaim(room) {
            self.assembly = BytesMut::with_capacity(room);
        }
    }

    /// Starts placing a record of `record_len` ciphertext bytes into the reassembly buffer,
    /// on the guess that it leads with a DATA frame continuing the message being
    /// reassembled. `None` when no message is, or the record would not fit in the buffer.
    ///
    /// The frame's header length depends on the fragment length it announces, which depends
    /// on the header length. It is computed as if the fragment filled the record, or, in a
    /// record longer than the rest of the message, as if it were that rest (the last
    /// fragment, followed by at most [`MAX_AFTER_LAST_FRAGMENT`] bytes of control frames);
    /// frames after a fragment that does not end the message (a CREDIT, a PING) shorten it
    /// by a few bytes, which changes the header only for fragments under 16 KiB. The record
    /// must fit in the buffer, whose room past the message's end takes the tag and those
    /// control frames ([`LANDING_TAIL_ROOM`]).
    pub(super) fn begin_landing(&mut self, record_len: usize) -> Option<Landing> {
        let total = self.partial.as_ref()?.total;
        let channel = self.id;
        let plaintext_len = record_len.checked_sub(TAG_LEN)?;
        let so_far = self.assembly.len();
        let remaining = total.checked_sub(so_far)?;
        // At least type, flags, channel and length: one byte each.
        let (header_len, room) = (4..=MAX_CONTINUATION_HEADER).find_map(|header_len| {
            let room = plaintext_len.checked_sub(header_len)?;
            (data_header_len(channel, None, room.min(remaining)) == header_len)
                .then_some((header_len, room))
        })?;
        let start = so_far.checked_sub(header_len)?;
        if remaining == 0
            || room.saturating_sub(remaining) > MAX_AFTER_LAST_FRAGMENT
            || start.checked_add(record_len)? > self.assembly.capacity()
        {
            return None;
        }
        let mut saved = [0; MAX_CONTINUATION_HEADER];
        saved
            .get_mut(..header_len)?
            .copy_from_slice(self.assembly.get(start..so_far)?);
        let landing = Landing {
            channel,
            start: u32::try_from(start).ok()?,
            record_len: u16::try_from(record_len).ok()?,
            header_len: u8::try_from(header_len).ok()?,
            saved,
        };
        self.assembly.truncate(start);
        Some(landing)
    }

    /// More of the landing record's ciphertext.
    pub(super) fn extend_landing(&mut self, ciphertext: &[u8]) {
        self.assembly.extend_from_slice(ciphertext);
    }

    /// The landed record, whole, to decrypt in place.
    pub(super) fn landed_record(&mut self, landing: &Landing) -> Option<&mut [u8]> {
        let end = landing.start().checked_add(landing.record_len())?;
        self.assembly.get_mut(landing.start()..end)
    }

    /// The landed record is decrypted. If it leads with the frame guessed — a fragment of
    /// this channel's message, not its first, with the header length guessed, within the
    /// message and flagged as ending it exactly when it does, all that the usual path checks
    /// of a continuation — its payload joins the message. If not, the message is put back
    /// as it was and the record handed back to be read as any other. What is handed back
    /// (the frames after the fragment, or the whole plaintext) is copied out by `keep` before
    /// the next landing overwrites it.
    pub(super) fn finish_landing(
        &mut self,
        landing: Landing,
        keep: impl FnOnce(&[u8]) -> Bytes,
    ) -> Landed {
        let start = landing.start();
        let header_len = landing.header_len();
        let so_far = start.saturating_add(header_len);
        let plaintext_end = start
            .saturating_add(landing.record_len())
            .saturating_sub(TAG_LEN);
        let plaintext = self.assembly.get(start..plaintext_end).unwrap_or_default();
        let fragment = DataHeader::decode_frame_start(plaintext)
            .filter(|&(header, len)| {
                len == header_len
                    && header.channel == self.id
                    && header.first.is_none()
                    && self
                        .partial
                        .as_ref()
                        .is_some_and(|partial| partial.continues(so_far, header.len, header.end))
            })
            .map(|(header, _)| header);
        let kept = match fragment {
            Some(header) => plaintext
                .get(header_len.saturating_add(header.len)..)
                .unwrap_or_default(),
            None => plaintext,
        };
        let kept = if kept.is_empty() {
            Bytes::new()
        } else {
            keep(kept)
        };
        if let (Some(header), Some(saved)) = (
            self.assembly.get_mut(start..so_far),
            landing.saved.get(..header_len),
        ) {
            header.copy_from_slice(saved);
        }
        let Some(header) = fragment else {
            self.assembly.truncate(so_far);
            return Landed::Refuted(kept);
        };
        self.assembly.truncate(so_far.saturating_add(header.len));
        let message = header.end.then(|| {
            self.partial = None;
            let message = self.assembly.split().freeze();
            self.deliver(message)
        });
        Landed::Fragment {
            message,
            rest: kept,
        }
    }

    /// Lets go of the reassembly buffers when no message is being reassembled, so an idle
    /// channel holds no heap.
    pub(super) fn release_idle_buffer(&mut self) {
        self.spare = BytesMut::new();
        if self.partial.is_none() {
            self.assembly = BytesMut::new();
        }
    }

    fn deliver(&mut self, message: Bytes) -> Bytes {
        let len = message.len() as u64;
        self.undelivered = self.undelivered.saturating_add(len);
        self.messages_received = self.messages_received.saturating_add(1);
        self.bytes_received = self.bytes_received.saturating_add(len);
        message
    }

    /// The application took a message of `len` bytes: its cost becomes credit, at once or,
    /// under a receive rate, as [`ReceiveChannel::release_credit`] lets it go.
    pub(super) fn handle_taken(&mut self, len: usize) {
        self.undelivered = self.undelivered.saturating_sub(len as u64);
        let cost = message_cost(len);
        if self.rate.is_some() {
            self.withheld = self.withheld.saturating_add(cost);
        } else {
            self.grant(cost);
        }
    }

    fn grant(&mut self, amount: u64) {
        self.granted = self.granted.saturating_add(amount);
        self.pending_credit = self.pending_credit.saturating_add(amount);
    }

    /// Grants as much withheld credit as the receive rate allows by `now`: nothing until the
    /// bucket holds all of it or is full, so credit goes out in chunks of up to a burst
    /// rather than a trickle of tiny frames.
    pub(super) fn release_credit(&mut self, now: Instant) {
        if self.withheld == 0 {
            return;
        }
        let Some(bucket) = &mut self.rate else {
            return;
        };
        bucket.refill(now);
        let threshold = self.withheld.min(bucket.capacity());
        let level = u64::try_from(bucket.level()).unwrap_or(0);
        if level < threshold {
            return;
        }
        let amount = self.withheld.min(level);
        bucket.take(amount);
        self.withheld = self.withheld.saturating_sub(amount);
        self.grant(amount);
    }

    /// When [`ReceiveChannel::release_credit`] can next grant withheld credit.
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        if self.withheld == 0 {
            return None;
        }
        let bucket = self.rate.as_ref()?;
        bucket.time_until(self.withheld.min(bucket.capacity()))
    }

    /// Credit the receive rate holds back now.
    pub(super) fn withheld(&self) -> u64 {
        self.withheld
    }

    /// Credit waiting to be sent, at most one frame's worth; the caller encodes it.
    pub(super) fn take_pending_credit(&mut self) -> Option<u32> {
        if self.pending_credit == 0 {
            return None;
        }
        let amount = u32::try_from(self.pending_credit).unwrap_or(u32::MAX);
        self.pending_credit = self.pending_credit.saturating_sub(u64::from(amount));
        Some(amount)
    }

    pub(super) fn has_pending_credit(&self) -> bool {
        self.pending_credit > 0
    }

    /// Bytes held for this channel: complete messages not yet taken and the partial one.
    pub(super) fn buffered(&self) -> u64 {
        let partial = if self.partial.is_some() {
            self.assembly.capacity() as u64
        } else {
            0
        };
        self.undelivered.saturating_add(partial)
    }
}
