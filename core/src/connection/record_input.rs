//! Reassembly of incoming records into buffers the decrypted plaintext can be handed out
//! from, as `Bytes`, without another copy.

use bytes::{Buf, BytesMut};

use crate::cipher::TAG_LEN;
use crate::length_prefix::HEADER_LEN;
use crate::record::RecordError;

/// How far past the current record one allocation reaches when the input already holds more:
/// one allocation then serves several records of a large read.
const READ_AHEAD: usize = 4 * 65537;

/// The incoming record being reassembled.
#[derive(Default)]
pub(super) struct RecordInput {
    buffer: BytesMut,
}

impl RecordInput {
    /// Moves bytes from the front of `input` (advancing it), never past the end of the
    /// current record, and returns that record's ciphertext once complete.
    pub(super) fn next_record(
        &mut self,
        input: &mut &[u8],
    ) -> Result<Option<BytesMut>, RecordError> {
        self.take(input, HEADER_LEN);
        let Some(header) = self.buffer.first_chunk::<HEADER_LEN>() else {
            return Ok(None);
        };
        let len = usize::from(u16::from_be_bytes(*header));
        if len < TAG_LEN {
            return Err(RecordError::TooShort(len));
        }
        let total = HEADER_LEN.saturating_add(len);
        let wanted = total.saturating_sub(self.buffer.len());
        if self.buffer.capacity().saturating_sub(self.buffer.len()) < wanted {
            let ahead = input.len().saturating_sub(wanted).min(READ_AHEAD);
            self.buffer.reserve(wanted.saturating_add(ahead));
        }
        self.take(input, total);
        if self.buffer.len() < total {
            return Ok(None);
        }
        let mut record = self.buffer.split_to(total);
        record.advance(HEADER_LEN);
        Ok(Some(record))
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

    /// Lets go of the buffer when no partial record is in it, so an idle connection holds
    /// no input memory (records already handed out keep their own share alive).
    pub(super) fn release_if_empty(&mut self) {
        // Even at zero capacity an empty buffer may still share (and so keep alive) the
        // allocation of the last record: replace it whenever it is empty.
        if self.buffer.is_empty() {
            self.buffer = BytesMut::new();
        }
    }
}
