//! Which records to place straight into a channel's reassembly buffer.
//!
//! A large message arrives as a run of records, each one DATA frame continuing it. Read the
//! usual way, each such record is copied into the record buffer, decrypted there, and its
//! payload copied again into the reassembly buffer. Placed instead where, decrypted in place,
//! its payload already follows the message's bytes so far (a [`Landing`]), it is copied
//! once. Whether a record is such a frame is known only once it is decrypted, so this is a
//! guess, made when the record before was nothing but a fragment inside one channel's
//! message. A wrong guess costs the copy saved (the plaintext is copied out and read as any
//! other record), so after one the guess waits for two such records in a row. Records that
//! also carry PINGs or CREDITs (their writer puts those first: two-way traffic) are never
//! guessed at, nor are channels interleaving large messages record by record.

use crate::channel::ChannelId;
use crate::mux::Landing;

/// The guess, and the record being placed.
#[derive(Default)]
pub(super) struct Landings {
    /// The record being placed, and how many of its ciphertext bytes are still to come.
    current: Option<(Landing, u16)>,
    /// The channel whose message the latest records ended inside, and how many in a row.
    channel: Option<(ChannelId, u8)>,
    /// A guess was wrong: the next needs two records in a row ending inside one message.
    cautious: bool,
}

impl Landings {
    /// The channel whose message the next record should be guessed to continue.
    pub(super) fn guess(&self) -> Option<ChannelId> {
        let needed = if self.cautious { 2 } else { 1 };
        self.channel
            .filter(|&(_, streak)| streak >= needed)
            .map(|(channel, _)| channel)
    }

    /// A record was read the usual way; `tail` is the channel whose message it ended inside,
    /// if it was nothing but a fragment of that message.
    pub(super) fn after_record(&mut self, tail: Option<ChannelId>) {
        self.channel = tail.map(|tail| match self.channel {
            Some((channel, streak)) if channel == tail => (tail, streak.saturating_add(1)),
            _ => (tail, 1),
        });
    }

    pub(super) fn start(&mut self, landing: Landing) {
        let len = u16::try_from(landing.record_len()).unwrap_or(u16::MAX);
        self.current = Some((landing, len));
    }

    /// The record being placed, with the count of its bytes still to come.
    pub(super) fn current(&mut self) -> Option<(&mut Landing, &mut u16)> {
        self.current
            .as_mut()
            .map(|(landing, remaining)| (landing, remaining))
    }

    pub(super) fn take_current(&mut self) -> Option<Landing> {
        self.current.take().map(|(landing, _)| landing)
    }

    /// The guess was right; `completed` when the record ended the message.
    pub(super) fn confirmed(&mut self, completed: bool) {
        self.cautious = false;
        if completed {
            self.channel = None;
        }
    }

    /// The guess was wrong.
    pub(super) fn refuted(&mut self) {
        self.cautious = true;
    }
}
