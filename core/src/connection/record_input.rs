//! Reassembly of incoming records into buffers the decrypted plaintext can be handed out
//! from, as `Bytes`, without another copy.

use bytes::{Buf, BytesMut};

use crate::cipher::TAG_LEN;
use crate::length_prefix::HEADER_LEN;
use crate::record::RecordError;

/// How far past the current record one allocation reaches when the input already holds more:
/// one allocation then serves several records of a large read.
const READ_AHEAD: usize = 4 * 65537;

/// Buffers up to this capacity are let go once drained, at the end of each read.
const SMALL_BUFFER: usize = 4096;

/// Largest buffer allocated: a whole record and the read-ahead.
const MAX_ALLOCATION: usize = READ_AHEAD + 65537;

/// The incoming record being reassembled.
///
/// Records are split off one buffer, which serves several records of a large read. Once the
/// application has dropped the messages of those records, the buffer is reclaimed (its
/// partial record moved back to its start) rather than allocated anew, and steady traffic
/// allocates nothing per record or per read.
#[derive(Default)]
pub(super) struct RecordInput {
    buffer: BytesMut,
    /// Size of the allocation `buffer` lies in (what a record split off it keeps alive); 0
    /// when there is none.
    allocation: usize,
}

impl RecordInput {
    /// Moves bytes from the front of `input` (advancing it), never past the end of the
    /// current record, and returns that record's ciphertext once complete.
    pub(super) fn next_record(
        &mut self,
        input: &mut &[u8],
    ) -> Result<Option<BytesMut>, RecordError> {
        let Some(len) = self.announced_len(input) else {
            // Not even the header is complete: keep what there is of it.
            self.reserve_for(HEADER_LEN, input.len());
            self.take(input, HEADER_LEN);
            return Ok(None);
        };
        if len < TAG_LEN {
            return Err(RecordError::TooShort(len));
        }
        let total = HEADER_LEN.saturating_add(len);
        self.reserve_for(total, input.len());
        self.take(input, total);
        if self.buffer.len() < total {
            return Ok(None);
        }
        let mut record = self.buffer.split_to(total);
        record.advance(HEADER_LEN);
        Ok(Some(record))
    }

    /// The ciphertext length the current record's header announces, from the bytes buffered
    /// and those of `input`; `None` while the header is incomplete.
    fn announced_len(&self, input: &[u8]) -> Option<usize> {
        let buffered = self.buffer.get(..HEADER_LEN.min(self.buffer.len()))?;
        let from_input = input.get(..HEADER_LEN.saturating_sub(buffered.len()))?;
        let mut header = [0u8; HEADER_LEN];
        for (byte, from) in header.iter_mut().zip(buffered.iter().chain(from_input)) {
            *byte = *from;
        }
        Some(usize::from(u16::from_be_bytes(header)))
    }

    /// Makes room for what `input_len` bytes of input bring to the current record of `total`
    /// bytes (header included), and for up to [`READ_AHEAD`] bytes after it: in the same buffer if no
    /// record handed out shares it any more (the partial record moves to its start), else in
    /// a new one.
    fn reserve_for(&mut self, total: usize, input_len: usize) {
        let len = self.buffer.len();
        // What this read brings, at once: records split off earlier in the read are still
        // held (the application takes their messages after it), so a later reservation in
        // the same read could not reclaim. Not more: the rest of a record that has not
        // arrived is reserved when it does, once this read's records are let go.
        let wanted = total.saturating_sub(len).min(input_len);
        let ahead = input_len.saturating_sub(wanted).min(READ_AHEAD);
        let needed = wanted.saturating_add(ahead);
        if self.buffer.try_reclaim(needed) {
            return;
        }
        // Four times what is needed (a buffer is reclaimed only where its partial record and
        // the next read fit beside or before it), so that later reads, which may bring twice
        // as much, find the reclaimed buffer large enough.
        let total_needed = len.saturating_add(needed);
        let capacity = total_needed
            .saturating_mul(4)
            .min(MAX_ALLOCATION)
            .max(total_needed);
        let mut fresh = BytesMut::with_capacity(capacity);
        fresh.extend_from_slice(&self.buffer);
        self.allocation = fresh.capacity();
        self.buffer = fresh;
    }

    /// Size of the allocation the records returned so far lie in: what each of them, and
    /// every message sliced from it, keeps alive.
    pub(super) fn allocation(&self) -> usize {
        self.allocation
    }

    fn take(&mut self, input: &mut &[u8], target: usize) {
        let wanted = target.saturating_sub(self.buffer.len()).min(input.len());
        let (head, rest) = input.split_at(wanted);
        self.buffer.extend_from_slice(head);
        *input = rest;
    }

    /// Bytes of an incomplete record held.
    pub(super) fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// Lets go of a small buffer with no partial record in it. Small buffers come back from
    /// the allocator hot (it hands out the chunk just freed), while a kept one is cold by the
    /// time its connection reads again when thousands take turns: keeping them cost 8% per
    /// relayed message at 10,000 peers. Large buffers (bulk reads) are kept and reclaimed.
    pub(super) fn release_if_small_and_empty(&mut self) {
        if self.allocation <= SMALL_BUFFER {
            self.release_if_empty();
        }
    }

    /// Lets go of the buffer when no partial record is in it, so an idle connection holds
    /// no input memory (records already handed out keep their own share alive).
    pub(super) fn release_if_empty(&mut self) {
        // Even at zero capacity an empty buffer may still share (and so keep alive) the
        // allocation of the last record: replace it whenever it is empty.
        if self.buffer.is_empty() {
            self.buffer = BytesMut::new();
            self.allocation = 0;
        }
    }
}
