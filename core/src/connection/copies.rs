//! Where bytes are copied out of a buffer that cannot be handed out: the messages of records
//! too sparse to be held by them, and what follows a fragment landed in its reassembly buffer.

use bytes::{Bytes, BytesMut};

/// First allocation of the buffer; each fresh one is twice the last, up to [`MAX_ALLOCATION`].
const FIRST_ALLOCATION: usize = 1024;
const MAX_ALLOCATION: usize = 256 * 1024;

/// Slices are copied one after the other into one buffer and split off it, each its own
/// `Bytes`; once those are dropped, the buffer is reclaimed (moved back to its start) instead
/// of allocated anew. It starts small, so a connection that copied one message holds a
/// kilobyte, not a record's worth.
///
/// A connection keeps two, so that each holds one kind of bytes: messages the application
/// holds (nothing but message bytes, so the buffer cannot amplify what flow control counts),
/// and the frames after a landed fragment, read at once (messages among them are held in
/// that buffer only under the same rule as in any record's, see `may_hold`).
#[derive(Default)]
pub(super) struct Copies {
    buffer: BytesMut,
    /// Size of the buffer's allocation; 0 when there is none.
    allocation: usize,
    next_allocation: usize,
    /// The read the latest copy was made in (see [`Copies::copy`]).
    read: u64,
}

impl Copies {
    /// A copy of `bytes`, made during `read` (any number that differs from one read of the
    /// connection to the next), as its own `Bytes`.
    ///
    /// A read's first copy moves back to the start of the buffer if no copy in it is held any
    /// more, so a read's copies have the whole buffer (the previous read's were taken and,
    /// usually, dropped) rather than what the last read left of it. That is checked here,
    /// not as each read begins: looking is a cache miss on the buffer's shared header and on
    /// this struct, which reads copying nothing need not pay (at 10,000 connections, two per
    /// relayed message).
    pub(super) fn copy(&mut self, bytes: &[u8], read: u64) -> Bytes {
        if self.read != read {
            self.read = read;
            if self.allocation > 0 {
                let _ = self.buffer.try_reclaim(self.allocation);
            }
        }
        if !self.buffer.try_reclaim(bytes.len()) {
            let capacity = self.next_allocation.max(FIRST_ALLOCATION);
            self.buffer = BytesMut::with_capacity(capacity.max(bytes.len()));
            self.allocation = self.buffer.capacity();
            self.next_allocation = capacity.saturating_mul(2).min(MAX_ALLOCATION);
        }
        self.buffer.extend_from_slice(bytes);
        self.buffer.split().freeze()
    }

    /// Size of the allocation the latest copy lies in: what it, and every slice of it, keeps
    /// alive.
    pub(super) fn allocation(&self) -> usize {
        self.allocation
    }

    /// Lets go of the buffer (the connection is idle).
    pub(super) fn release(&mut self) {
        *self = Copies::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_share_a_buffer_that_is_reused_once_they_are_dropped() {
        let mut copies = Copies::default();
        let first = copies.copy(b"hello", 1);
        let second = copies.copy(b"world", 1);
        assert_eq!((&first[..], &second[..]), (&b"hello"[..], &b"world"[..]));
        // Both in one allocation, one after the other.
        assert_eq!(second.as_ptr() as usize, first.as_ptr() as usize + 5);
        let start = first.as_ptr() as usize;
        drop((first, second));
        // More than is left after them: the buffer is reclaimed to its start, not replaced.
        let third = copies.copy(&[7; 1020], 1);
        assert_eq!(third.as_ptr() as usize, start);
        drop(third);
        // Within a read, copies follow each other; a new read starts over, however much is
        // left, when nothing is held.
        let fourth = copies.copy(b"x", 1);
        assert_eq!(fourth.as_ptr() as usize, start + 1020);
        drop(fourth);
        assert_eq!(copies.copy(b"y", 1).as_ptr() as usize, start + 1021);
        assert_eq!(copies.copy(b"z", 2).as_ptr() as usize, start);
    }

    #[test]
    fn a_held_copy_makes_the_next_buffer_larger_but_bounded() {
        let mut copies = Copies::default();
        let mut held = alloc::vec::Vec::new();
        for _ in 0..200 {
            held.push(copies.copy(&[1; 1000], 1));
        }
        assert!(copies.next_allocation <= MAX_ALLOCATION);
        assert!(held.iter().all(|copy| copy[..] == [1; 1000]));
    }
}
