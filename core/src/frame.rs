//! Frames: what the plaintext of a record is made of (`PROTOCOL.md` §5).
//!
//! A record carries one or more frames back to back, so small messages and control frames
//! share records. Every field is bounded and every decode is total: [`FrameReader`] yields a
//! [`FrameError`] for anything malformed, never panics, and never allocates — a DATA
//! payload is a [`Bytes`] slice of the decrypted record, not a copy.
//!
//! ```
//! use bytes::Bytes;
//! use switchboard::frame::{Frame, FrameReader};
//!
//! let mut plaintext = Vec::new();
//! Frame::Ping(7).encode(&mut plaintext);
//! Frame::Credit { channel: 3, amount: 1024 }.encode(&mut plaintext);
//!
//! let frames: Vec<Frame> = FrameReader::new(Bytes::from(plaintext))
//!     .collect::<Result<_, _>>()
//!     .unwrap();
//! assert_eq!(frames, [Frame::Ping(7), Frame::Credit { channel: 3, amount: 1024 }]);
//! ```

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use bytes::Bytes;

use crate::channel::ChannelId;
use crate::disconnect::DisconnectReason;
use crate::varint::{self, VarintError};

/// Frame type codes.
const DATA: u8 = 0x01;
const CREDIT: u8 = 0x02;
const PING: u8 = 0x03;
const PONG: u8 = 0x04;
const GOAWAY: u8 = 0x05;

/// DATA flag: this fragment starts a message and carries the message's total length.
const FLAG_FIRST: u8 = 0x01;
/// DATA flag: this fragment ends its message.
const FLAG_END: u8 = 0x02;

/// Longest GOAWAY text, in bytes.
pub const MAX_GOAWAY_TEXT: usize = 256;
/// Largest message length a DATA frame can announce. Channels set smaller limits.
pub const MAX_MESSAGE_LEN: u32 = u32::MAX;

/// Bytes of a DATA frame around its payload, at most: type, flags, channel (3), total (5),
/// fragment length (3).
pub const MAX_DATA_OVERHEAD: usize = 1 + 1 + 3 + 5 + 3;

/// One frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// A fragment of a message on a channel.
    Data {
        /// The channel.
        channel: ChannelId,
        /// `Some(total length)` on the first fragment of a message.
        first: Option<u32>,
        /// This fragment completes the message.
        end: bool,
        /// The fragment's bytes.
        payload: Bytes,
    },
    /// The receiver grants `amount` more bytes of credit on `channel` (`PROTOCOL.md` §6.3).
    Credit {
        /// The channel.
        channel: ChannelId,
        /// Credit granted, in cost units (message length + per-message overhead).
        amount: u32,
    },
    /// Asks for a PONG echoing the value.
    Ping(u64),
    /// Answers a PING.
    Pong(u64),
    /// The sender is closing the connection, and why.
    GoAway {
        /// Why.
        reason: DisconnectReason,
        /// Human-readable detail, at most [`MAX_GOAWAY_TEXT`] bytes.
        text: String,
    },
}

impl Frame {
    /// Appends the frame's wire form to `out`. A GOAWAY text longer than
    /// [`MAX_GOAWAY_TEXT`] is cut at the last character boundary that fits.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Frame::Data {
                channel,
                first,
                end,
                payload,
            } => {
                encode_data_header(*channel, *first, *end, payload.len(), out);
                out.extend_from_slice(payload);
            }
            Frame::Credit { channel, amount } => {
                out.push(CREDIT);
                varint::encode(u64::from(*channel), out);
                varint::encode(u64::from(*amount), out);
            }
            Frame::Ping(value) => {
                out.push(PING);
                out.extend_from_slice(&value.to_be_bytes());
            }
            Frame::Pong(value) => {
                out.push(PONG);
                out.extend_from_slice(&value.to_be_bytes());
            }
            Frame::GoAway { reason, text } => {
                let text = truncate_to_char_boundary(text, MAX_GOAWAY_TEXT);
                out.push(GOAWAY);
                out.push(reason.code());
                varint::encode(text.len() as u64, out);
                out.extend_from_slice(text.as_bytes());
            }
        }
    }
}

/// Appends the header of a DATA frame whose `len` payload bytes the caller appends next.
pub fn encode_data_header(
    channel: ChannelId,
    first: Option<u32>,
    end: bool,
    len: usize,
    out: &mut Vec<u8>,
) {
    let mut flags = 0;
    if first.is_some() {
        flags |= FLAG_FIRST;
    }
    if end {
        flags |= FLAG_END;
    }
    out.push(DATA);
    out.push(flags);
    varint::encode(u64::from(channel), out);
    if let Some(total) = first {
        varint::encode(u64::from(total), out);
    }
    varint::encode(len as u64, out);
}

/// Bytes [`encode_data_header`] writes.
pub fn data_header_len(channel: ChannelId, first: Option<u32>, len: usize) -> usize {
    let total = first.map_or(0, |total| varint::encoded_len(u64::from(total)));
    2usize
        .saturating_add(varint::encoded_len(u64::from(channel)))
        .saturating_add(total)
        .saturating_add(varint::encoded_len(len as u64))
}

fn truncate_to_char_boundary(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end = end.saturating_sub(1);
    }
    text.get(..end).unwrap_or_default()
}

/// Why a record's plaintext is not a valid frame sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// A frame type this version does not define.
    UnknownType(u8),
    /// A DATA frame with flag bits this version does not define.
    UnknownFlags(u8),
    /// The record ended inside a frame.
    Truncated,
    /// A field exceeded its bound; which field.
    FieldTooLarge(&'static str),
    /// A varint used more bytes than needed; which field.
    NotMinimal(&'static str),
    /// A GOAWAY text that is not UTF-8.
    InvalidText,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::UnknownType(kind) => write!(f, "unknown frame type 0x{kind:02x}"),
            FrameError::UnknownFlags(flags) => write!(f, "unknown DATA flags 0x{flags:02x}"),
            FrameError::Truncated => f.write_str("record ends inside a frame"),
            FrameError::FieldTooLarge(field) => write!(f, "frame field {field} out of range"),
            FrameError::NotMinimal(field) => write!(f, "frame field {field} not minimally encoded"),
            FrameError::InvalidText => f.write_str("GOAWAY text is not UTF-8"),
        }
    }
}

impl core::error::Error for FrameError {}

/// Reads the frames of one record's plaintext, in order.
///
/// Yields `Err` at most once: after an error the rest of the record is unusable and the
/// iterator ends.
pub struct FrameReader {
    record: Bytes,
    position: usize,
}

impl FrameReader {
    /// A reader over a decrypted record.
    pub fn new(record: Bytes) -> Self {
        FrameReader {
            record,
            position: 0,
        }
    }

    fn read(&mut self) -> Result<Frame, FrameError> {
        let mut input: &[u8] = self.record.get(self.position..).unwrap_or_default();
        let start_len = input.len();
        let (&kind, rest) = input.split_first().ok_or(FrameError::Truncated)?;
        input = rest;
        let frame = match kind {
            DATA => {
                let header = DataHeader::decode(&mut input)?;
                let start = self
                    .position
                    .saturating_add(start_len.saturating_sub(input.len()));
                let end = start.saturating_add(header.len);
                if end > self.record.len() {
                    return Err(FrameError::Truncated);
                }
                input = input.get(header.len..).unwrap_or_default();
                Frame::Data {
                    channel: header.channel,
                    first: header.first,
                    end: header.end,
                    payload: self.record.slice(start..end),
                }
            }
            CREDIT => {
                let channel = read_channel(&mut input)?;
                let amount = read_varint(&mut input, u64::from(u32::MAX), "amount")?;
                let amount =
                    u32::try_from(amount).map_err(|_| FrameError::FieldTooLarge("amount"))?;
                Frame::Credit { channel, amount }
            }
            PING | PONG => {
                let (value, rest) = input
                    .split_first_chunk::<8>()
                    .ok_or(FrameError::Truncated)?;
                input = rest;
                let value = u64::from_be_bytes(*value);
                if kind == PING {
                    Frame::Ping(value)
                } else {
                    Frame::Pong(value)
                }
            }
            GOAWAY => {
                let (&code, rest) = input.split_first().ok_or(FrameError::Truncated)?;
                input = rest;
                // PROTOCOL.md §5: an unknown code reads as ProtocolError.
                let reason =
                    DisconnectReason::from_code(code).unwrap_or(DisconnectReason::ProtocolError);
                let len = read_varint(&mut input, MAX_GOAWAY_TEXT as u64, "text length")?;
                let len = usize::try_from(len).map_err(|_| FrameError::FieldTooLarge("text"))?;
                let (text, rest) = input.split_at_checked(len).ok_or(FrameError::Truncated)?;
                input = rest;
                let text = core::str::from_utf8(text).map_err(|_| FrameError::InvalidText)?;
                Frame::GoAway {
                    reason,
                    text: String::from(text),
                }
            }
            other => return Err(FrameError::UnknownType(other)),
        };
        self.position = self
            .position
            .saturating_add(start_len.saturating_sub(input.len()));
        Ok(frame)
    }
}

impl Iterator for FrameReader {
    type Item = Result<Frame, FrameError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.position >= self.record.len() {
            return None;
        }
        let frame = self.read();
        if frame.is_err() {
            self.position = self.record.len();
        }
        Some(frame)
    }
}

/// The fields of a DATA frame before its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DataHeader {
    pub(crate) channel: ChannelId,
    pub(crate) first: Option<u32>,
    pub(crate) end: bool,
    /// Payload bytes, which follow the header.
    pub(crate) len: usize,
}

impl DataHeader {
    /// Reads a DATA frame's fields from `input`, which starts just after the frame type,
    /// advancing it to the payload. The payload length is checked against what `input`
    /// holds after the header, not read: a header is trusted only with its payload inside.
    pub(crate) fn decode(input: &mut &[u8]) -> Result<Self, FrameError> {
        let (&flags, rest) = input.split_first().ok_or(FrameError::Truncated)?;
        *input = rest;
        if flags & !(FLAG_FIRST | FLAG_END) != 0 {
            return Err(FrameError::UnknownFlags(flags));
        }
        let channel = read_channel(input)?;
        let first = if flags & FLAG_FIRST != 0 {
            let total = read_varint(input, u64::from(MAX_MESSAGE_LEN), "total")?;
            Some(u32::try_from(total).map_err(|_| FrameError::FieldTooLarge("total"))?)
        } else {
            None
        };
        let available = input.len() as u64;
        let len = read_varint(input, available, "length")?;
        let len = usize::try_from(len).map_err(|_| FrameError::FieldTooLarge("length"))?;
        // The bound above counted the length field's own bytes.
        if len > input.len() {
            return Err(FrameError::Truncated);
        }
        Ok(DataHeader {
            channel,
            first,
            end: flags & FLAG_END != 0,
            len,
        })
    }

    /// Reads a whole DATA frame header, type included, from the front of `plaintext`;
    /// returns it and its length in bytes.
    pub(crate) fn decode_frame_start(plaintext: &[u8]) -> Option<(Self, usize)> {
        let (&kind, mut rest) = plaintext.split_first()?;
        if kind != DATA {
            return None;
        }
        let header = DataHeader::decode(&mut rest).ok()?;
        Some((header, plaintext.len().saturating_sub(rest.len())))
    }
}

fn read_channel(input: &mut &[u8]) -> Result<ChannelId, FrameError> {
    let channel = read_varint(input, u64::from(ChannelId::MAX), "channel")?;
    ChannelId::try_from(channel).map_err(|_| FrameError::FieldTooLarge("channel"))
}

fn read_varint(input: &mut &[u8], max: u64, field: &'static str) -> Result<u64, FrameError> {
    varint::decode(input, max).map_err(|error| match error {
        VarintError::Truncated => FrameError::Truncated,
        VarintError::TooLarge => FrameError::FieldTooLarge(field),
        VarintError::NotMinimal => FrameError::NotMinimal(field),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn all_kinds() -> Vec<Frame> {
        vec![
            Frame::Data {
                channel: 0,
                first: Some(5),
                end: true,
                payload: Bytes::from_static(b"hello"),
            },
            Frame::Data {
                channel: 0xFFFF,
                first: Some(u32::MAX),
                end: false,
                payload: Bytes::new(),
            },
            Frame::Data {
                channel: 300,
                first: None,
                end: true,
                payload: Bytes::from(vec![7; 1000]),
            },
            Frame::Credit {
                channel: 9,
                amount: u32::MAX,
            },
            Frame::Ping(u64::MAX),
            Frame::Pong(0),
            Frame::GoAway {
                reason: DisconnectReason::Quitting,
                text: String::from("bye ✓"),
            },
        ]
    }

    #[test]
    fn every_kind_round_trips_in_one_record() {
        let frames = all_kinds();
        let mut wire = Vec::new();
        for frame in &frames {
            frame.encode(&mut wire);
        }
        let decoded: Vec<Frame> = FrameReader::new(Bytes::from(wire))
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(decoded, frames);
    }

    #[test]
    fn header_length_is_exact() {
        for (channel, first, len) in [
            (0, None, 0),
            (0xFFFF, Some(u32::MAX), 65519),
            (200, Some(3), 3),
        ] {
            let mut out = Vec::new();
            encode_data_header(channel, first, true, len, &mut out);
            assert_eq!(out.len(), data_header_len(channel, first, len));
            assert!(out.len() <= MAX_DATA_OVERHEAD);
        }
    }

    #[test]
    fn every_truncation_is_an_error() {
        for frame in all_kinds() {
            let mut wire = Vec::new();
            frame.encode(&mut wire);
            for cut in 1..wire.len() {
                let mut reader = FrameReader::new(Bytes::copy_from_slice(&wire[..cut]));
                assert!(
                    matches!(reader.next(), Some(Err(_))),
                    "{frame:?} cut at {cut}"
                );
                assert!(reader.next().is_none(), "an error ends the record");
            }
        }
    }

    #[test]
    fn malformed_fields_name_the_problem() {
        let cases: [(&[u8], FrameError); 6] = [
            (&[0x09], FrameError::UnknownType(0x09)),
            (&[DATA, 0x04, 0, 0], FrameError::UnknownFlags(0x04)),
            (
                &[DATA, 0, 0x80, 0x80, 0x04, 0],
                FrameError::FieldTooLarge("channel"),
            ),
            (&[DATA, 0, 1, 5, 1, 2], FrameError::FieldTooLarge("length")),
            (&[CREDIT, 0x81, 0x00, 1], FrameError::NotMinimal("channel")),
            (&[GOAWAY, 1, 2, 0xFF, 0xFE], FrameError::InvalidText),
        ];
        for (wire, expected) in cases {
            let mut reader = FrameReader::new(Bytes::copy_from_slice(wire));
            assert_eq!(reader.next(), Some(Err(expected)), "{wire:?}");
        }
    }

    #[test]
    fn unknown_goaway_codes_read_as_protocol_error_and_long_text_is_cut() {
        let mut wire = vec![GOAWAY, 200, 0];
        let long = "é".repeat(200);
        Frame::GoAway {
            reason: DisconnectReason::Timeout,
            text: long,
        }
        .encode(&mut wire);
        let frames: Vec<Frame> = FrameReader::new(Bytes::from(wire))
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            frames[0],
            Frame::GoAway {
                reason: DisconnectReason::ProtocolError,
                text: String::new()
            }
        );
        let Frame::GoAway { text, .. } = &frames[1] else {
            panic!("not a GOAWAY")
        };
        assert_eq!(text.len(), MAX_GOAWAY_TEXT);
    }

    #[test]
    fn data_payload_is_a_slice_of_the_record() {
        let mut wire = Vec::new();
        Frame::Data {
            channel: 1,
            first: Some(3),
            end: true,
            payload: Bytes::from_static(b"abc"),
        }
        .encode(&mut wire);
        let record = Bytes::from(wire);
        let Some(Ok(Frame::Data { payload, .. })) = FrameReader::new(record.clone()).next() else {
            panic!("not DATA")
        };
        let offset = payload.as_ptr() as usize - record.as_ptr() as usize;
        assert_eq!(&record[offset..offset + 3], b"abc");
    }
}
