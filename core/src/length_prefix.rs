//! Reassembly of `u16 big-endian length || body` units from input that arrives in pieces of
//! any size — the outer framing of both handshake messages and records.

use alloc::vec::Vec;
use core::ops::RangeInclusive;

/// Bytes of the length prefix.
pub(crate) const HEADER_LEN: usize = 2;

/// A length prefix outside the range the current unit allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LengthOutOfRange(pub(crate) usize);

/// One unit being reassembled. Holds at most `HEADER_LEN + 65535` bytes, and only as many
/// as the announced length, which is checked before anything is buffered.
///
/// The storage is initialized once and reused: its length grows to the largest unit seen
/// and never shrinks, and `filled` says how much of it holds the current unit. So after
/// warm-up, buffering a unit is one copy into memory that is already initialized — no
/// zero-fill, no allocation — and the idle storage can be lent out as scratch space
/// ([`LengthPrefixed::clear_to_scratch`]).
#[derive(Default)]
pub(crate) struct LengthPrefixed {
    /// Header and body bytes received so far in `buffer[..filled]`; the rest is left over.
    buffer: Vec<u8>,
    /// Bytes of the current unit in `buffer`.
    filled: usize,
    /// The body length, once the header is complete.
    body_len: Option<usize>,
}

impl LengthPrefixed {
    /// Takes bytes from the front of `input` up to the end of the current unit, advancing
    /// `input` past them. Returns `Ok(true)` once the unit is complete.
    pub(crate) fn feed(
        &mut self,
        input: &mut &[u8],
        allowed: &RangeInclusive<usize>,
    ) -> Result<bool, LengthOutOfRange> {
        let body_len = match self.body_len {
            Some(len) => len,
            None => {
                self.take(input, HEADER_LEN);
                let header: [u8; HEADER_LEN] = match self.unit().try_into() {
                    Ok(header) => header,
                    Err(_) => return Ok(false),
                };
                let len = usize::from(u16::from_be_bytes(header));
                if !allowed.contains(&len) {
                    return Err(LengthOutOfRange(len));
                }
                self.body_len = Some(len);
                len
            }
        };
        self.take(input, HEADER_LEN.saturating_add(body_len));
        Ok(self.is_complete())
    }

    /// Moves bytes from `input` until the unit holds `target` bytes or `input` is empty.
    fn take(&mut self, input: &mut &[u8], target: usize) {
        let wanted = target.saturating_sub(self.filled);
        let (head, rest) = input.split_at(wanted.min(input.len()));
        let end = self.filled.saturating_add(head.len());
        if self.buffer.len() < end {
            // Straight to the whole target, so a unit arriving in many pieces grows (and
            // zero-fills) the storage once.
            self.buffer.resize(target, 0);
        }
        if let Some(slot) = self.buffer.get_mut(self.filled..end) {
            slot.copy_from_slice(head);
            self.filled = end;
            *input = rest;
        }
    }

    /// The bytes of the current unit received so far, header included.
    fn unit(&self) -> &[u8] {
        self.buffer.get(..self.filled).unwrap_or_default()
    }

    pub(crate) fn is_complete(&self) -> bool {
        self.body_len
            .is_some_and(|len| self.filled == HEADER_LEN.saturating_add(len))
    }

    /// The body received so far (all of it once complete).
    pub(crate) fn body_mut(&mut self) -> &mut [u8] {
        self.buffer
            .get_mut(HEADER_LEN..self.filled)
            .unwrap_or_default()
    }

    /// Forgets the unit, keeping the storage (and its initialized bytes) for the next one.
    pub(crate) fn clear(&mut self) {
        self.filled = 0;
        self.body_len = None;
    }

    /// Bytes currently buffered.
    pub(crate) fn buffered(&self) -> usize {
        self.filled
    }

    /// Forgets the unit in progress, if any, and lends the storage as scratch space. What
    /// the borrower writes is forgotten too: the next unit overwrites it. The borrower may
    /// grow the storage but should not shrink it, or the next large unit zero-fills it again.
    pub(crate) fn clear_to_scratch(&mut self) -> &mut Vec<u8> {
        self.clear();
        &mut self.buffer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reassembles_from_single_bytes_and_stops_at_the_boundary() {
        let wire = b"\x00\x05hellonext".to_vec();
        let mut unit = LengthPrefixed::default();
        let mut complete = false;
        let mut rest: &[u8] = &wire;
        while !complete {
            let (byte, tail) = rest.split_at(1);
            let mut piece = byte;
            complete = unit.feed(&mut piece, &(0..=10)).unwrap();
            assert!(piece.is_empty());
            rest = tail;
        }
        assert_eq!(unit.body_mut(), b"hello");
        assert_eq!(rest, b"next");
        let mut more: &[u8] = b"ab";
        assert!(unit.feed(&mut more, &(0..=10)).unwrap());
        assert_eq!(more, b"ab", "a complete unit takes nothing more");
    }

    #[test]
    fn an_out_of_range_length_is_refused_before_buffering() {
        let mut unit = LengthPrefixed::default();
        let mut input: &[u8] = &[0xFF, 0xFF, 1, 2, 3];
        assert_eq!(
            unit.feed(&mut input, &(16..=100)),
            Err(LengthOutOfRange(65535))
        );
        assert_eq!(unit.buffered(), 2);
    }

    #[test]
    fn the_storage_is_reused_and_lent_only_as_scratch() {
        let mut unit = LengthPrefixed::default();
        let mut input: &[u8] = b"\x00\x06abcdef";
        assert!(unit.feed(&mut input, &(0..=10)).unwrap());
        unit.clear();
        // A shorter unit in pieces overwrites the storage without shrinking it.
        for piece in [&b"\x00"[..], b"\x02", b"x", b"y"] {
            let mut input = piece;
            unit.feed(&mut input, &(0..=10)).unwrap();
            assert!(input.is_empty());
        }
        assert!(unit.is_complete());
        assert_eq!(unit.body_mut(), b"xy");
        assert_eq!(unit.buffered(), 4);
        // Lending the storage forgets the unit, and the next unit ignores what was written.
        let scratch = unit.clear_to_scratch();
        assert_eq!(scratch.len(), 8);
        scratch.fill(0xFF);
        assert_eq!(unit.buffered(), 0);
        let mut input: &[u8] = b"\x00\x01z";
        assert!(unit.feed(&mut input, &(0..=10)).unwrap());
        assert_eq!(unit.body_mut(), b"z");
    }
}
