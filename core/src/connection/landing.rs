//! Which records to place straight into a channel's reassembly buffer.
//!
//! A large message arrives as a run of records, each one DATA frame continuing it. Read the
//! usual way, each such record is copied into the record buffer, decrypted there, and its
//! payload copied again into the reassembly buffer. Placed instead where, decrypted in place,
//! its payload already follows the message's bytes so far (a [`Landing`]), it is copied
//! once. Whether a record is such a frame is known only once it is decrypted, so this is a
//! guess, made when the record before led with DATA and its last DATA frame left one
//! channel's message unfinished, the only one it did: a record inside a message, or the
//! record where one message ends and the next starts ([`RecordShape`]). Frames after the
//! fragment (the CREDITs, PINGs and PONGs a writer puts last) are copied out and read as
//! usual; so is a record carrying more after a message's last fragment than a few such
//! frames (the next message's start). A wrong guess costs the copy saved (the plaintext is
//! copied out and read as any other record), so after one the guess waits for two such
//! records in a row, after two wrong guesses in a row for four, and so on up to
//! [`MAX_STREAK_NEEDED`]; a right guess starts over. Channels interleaving large messages
//! record by record are never guessed at, nor are records that lead with control frames,
//! and traffic mixing channels in ways the records' shapes do not show (a large message's
//! fragments shortened to share records with another channel's) is guessed at rarely.

use crate::channel::ChannelId;
use crate::frame::Frame;
use crate::mux::Landing;

/// Most records in a row suggesting the same channel a guess waits for after wrong guesses:
/// 32 records of 64 KiB, 2 MiB.
const MAX_STREAK_NEEDED: u8 = 32;

/// What a record's frames say about the next record.
#[derive(Default)]
pub(super) struct RecordShape {
    /// Whether the record led with a DATA frame; `None` before its first frame.
    led_with_data: Option<bool>,
    /// A DATA frame other than the last left its message unfinished.
    earlier_fragment_unfinished: bool,
    /// The channel of the record's last DATA frame, and whether that frame ended its message.
    last_data: Option<(ChannelId, bool)>,
}

impl RecordShape {
    /// The record's next frame.
    pub(super) fn add(&mut self, frame: &Frame) {
        let data = match frame {
            Frame::Data { channel, end, .. } => Some((*channel, *end)),
            _ => None,
        };
        self.led_with_data.get_or_insert_with(|| data.is_some());
        if let Some(data) = data {
            if self.last_data.is_some_and(|(_, ended)| !ended) {
                self.earlier_fragment_unfinished = true;
            }
            self.last_data = Some(data);
        }
    }

    /// Whether the record carried DATA.
    pub(super) fn has_data(&self) -> bool {
        self.last_data.is_some()
    }

    /// The channel whose message the next record probably continues: the record led with
    /// DATA, and its last DATA frame left a message unfinished — the only one it did (a
    /// record that is one fragment inside a message, or ends one message and starts the
    /// next).
    pub(super) fn suggests(&self) -> Option<ChannelId> {
        match (
            self.led_with_data,
            self.earlier_fragment_unfinished,
            self.last_data,
        ) {
            (Some(true), false, Some((channel, false))) => Some(channel),
            _ => None,
        }
    }
}

/// The guess, and the record being placed.
#[derive(Default)]
pub(super) struct Landings {
    /// The record being placed, and how many of its ciphertext bytes are still to come.
    current: Option<(Landing, u16)>,
    /// The channel whose message the latest records suggested the next continues, and how
    /// many in a row.
    channel: Option<(ChannelId, u8)>,
    /// Wrong guesses since the last right one: the next guess needs 2 to the power of it
    /// such records in a row (at most [`MAX_STREAK_NEEDED`]).
    misses: u8,
}

impl Landings {
    /// The channel whose message the next record should be guessed to continue.
    pub(super) fn guess(&self) -> Option<ChannelId> {
        let needed = 1u8
            .checked_shl(u32::from(self.misses))
            .unwrap_or(MAX_STREAK_NEEDED)
            .min(MAX_STREAK_NEEDED);
        self.channel
            .filter(|&(_, streak)| streak >= needed)
            .map(|(channel, _)| channel)
    }

    /// A record was read; `next` is the channel whose message it suggests the next record
    /// continues.
    pub(super) fn after_record(&mut self, next: Option<ChannelId>) {
        self.channel = next.map(|next| match self.channel {
            Some((channel, streak)) if channel == next => (next, streak.saturating_add(1)),
            _ => (next, 1),
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

    /// The guess was right.
    pub(super) fn confirmed(&mut self) {
        self.misses = 0;
    }

    /// The guess was wrong: the streak that led to it starts over.
    pub(super) fn refuted(&mut self) {
        self.misses = self.misses.saturating_add(1);
        self.channel = None;
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec::Vec;

    use bytes::Bytes;

    use super::*;

    fn data(channel: ChannelId, end: bool) -> Frame {
        Frame::Data {
            channel,
            first: None,
            end,
            payload: Bytes::from_static(b"x"),
        }
    }

    fn shape(frames: &[Frame]) -> Option<ChannelId> {
        let mut shape = RecordShape::default();
        for frame in frames {
            shape.add(frame);
        }
        shape.suggests()
    }

    #[test]
    fn a_record_suggests_a_continuation_when_it_leaves_one_message_unfinished_last() {
        let credit = Frame::Credit {
            channel: 1,
            amount: 5,
        };
        assert_eq!(shape(&[data(3, false)]), Some(3));
        assert_eq!(
            shape(&[data(3, false), credit.clone(), Frame::Ping(1)]),
            Some(3)
        );
        // Messages ending, then one starting: the one started.
        assert_eq!(shape(&[data(3, true), data(3, false)]), Some(3));
        assert_eq!(
            shape(&[data(3, true), data(4, true), data(4, false), credit.clone()]),
            Some(4)
        );
        // Control frames first (how writers used to order them), every message ending, two
        // messages left unfinished: no suggestion.
        assert_eq!(shape(&[credit.clone(), data(3, false)]), None);
        assert_eq!(shape(&[data(3, true)]), None);
        assert_eq!(shape(&[data(3, false), data(4, true)]), None);
        assert_eq!(shape(&[data(3, false), data(4, false)]), None);
        assert_eq!(shape(&[data(3, false), credit, data(3, false)]), None);
        assert_eq!(shape(&[]), None);
    }

    #[test]
    fn after_a_wrong_guess_two_records_in_a_row_are_needed() {
        let mut landings = Landings::default();
        assert_eq!(landings.guess(), None);
        landings.after_record(Some(3));
        assert_eq!(landings.guess(), Some(3));
        landings.refuted();
        assert_eq!(landings.guess(), None, "cautious: one record is not enough");
        // Alternating channels never build a streak.
        let mut guesses = Vec::new();
        for channel in [4, 3, 4, 3] {
            landings.after_record(Some(channel));
            guesses.push(landings.guess());
        }
        assert_eq!(guesses, [None, None, None, None]);
        landings.after_record(Some(3));
        assert_eq!(landings.guess(), Some(3), "two in a row");
        landings.confirmed();
        landings.after_record(None);
        landings.after_record(Some(5));
        assert_eq!(
            landings.guess(),
            Some(5),
            "confident again after a right guess"
        );
    }

    /// How many records in a row suggesting channel 3 the next guess waits for, counted as
    /// the connection goes: a record read, then whether to guess at the next.
    fn streak_needed(landings: &mut Landings) -> usize {
        (1..=64)
            .find(|_| {
                landings.after_record(Some(3));
                landings.guess().is_some()
            })
            .unwrap()
    }

    #[test]
    fn wrong_guesses_in_a_row_double_the_records_needed_up_to_a_bound() {
        let mut landings = Landings::default();
        let mut needed = Vec::new();
        for _ in 0..8 {
            needed.push(streak_needed(&mut landings));
            landings.refuted();
        }
        assert_eq!(needed, [1, 2, 4, 8, 16, 32, 32, 32]);
        landings.confirmed();
        assert_eq!(streak_needed(&mut landings), 1);
    }
}
