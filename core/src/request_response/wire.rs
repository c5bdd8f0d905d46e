//! The request/response messages on the wire (`PROTOCOL.md` §9): a type byte, the request's
//! id, then the body or the refusal's reason. Decoding is total: any byte string is a
//! message or a [`WireError`].

use core::fmt;

use bytes::{BufMut, Bytes, BytesMut};

const REQUEST: u8 = 0x01;
const RESPONSE: u8 = 0x02;
const REFUSED: u8 = 0x03;

/// Type byte and request id: what every message carries before its body.
pub const HEADER_LEN: usize = 1 + 8;

/// Why a peer refused a request, as it said on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefuseReason {
    /// It holds as many of our requests as it answers at once (code 1): ask again later.
    Busy,
    /// Its application will not answer this request (code 2).
    Declined,
    /// A code this version does not know, kept as sent: later versions may add reasons.
    Other(u8),
}

impl RefuseReason {
    fn code(self) -> u8 {
        match self {
            RefuseReason::Busy => 1,
            RefuseReason::Declined => 2,
            RefuseReason::Other(code) => code,
        }
    }

    fn from_code(code: u8) -> Self {
        match code {
            1 => RefuseReason::Busy,
            2 => RefuseReason::Declined,
            other => RefuseReason::Other(other),
        }
    }
}

impl fmt::Display for RefuseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RefuseReason::Busy => f.write_str("busy: too many of our requests in flight"),
            RefuseReason::Declined => f.write_str("declined by the peer's application"),
            RefuseReason::Other(code) => write!(f, "refused (reason code {code})"),
        }
    }
}

/// One request/response message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WireMessage {
    /// A question, under an id its sender chose.
    Request {
        /// The id the answer must carry.
        id: u64,
        /// The question.
        body: Bytes,
    },
    /// The answer to request `id`.
    Response {
        /// The request's id.
        id: u64,
        /// The answer.
        body: Bytes,
    },
    /// Request `id` will not be answered.
    Refused {
        /// The request's id.
        id: u64,
        /// Why.
        reason: RefuseReason,
    },
}

/// A message that is not a request/response message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireError {
    /// Shorter than a type byte and an id.
    Truncated,
    /// A type byte other than 1, 2 and 3.
    UnknownType(u8),
    /// A refusal of other than 10 bytes.
    BadRefusal,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Truncated => f.write_str("request/response message shorter than 9 bytes"),
            WireError::UnknownType(kind) => {
                write!(f, "unknown request/response message type {kind:#04x}")
            }
            WireError::BadRefusal => f.write_str("refusal of other than 10 bytes"),
        }
    }
}

impl core::error::Error for WireError {}

impl WireMessage {
    /// Decodes `message`; the body shares its bytes.
    pub fn decode(message: &Bytes) -> Result<Self, WireError> {
        let (&kind, rest) = message.split_first().ok_or(WireError::Truncated)?;
        let (id, tail) = rest.split_first_chunk::<8>().ok_or(WireError::Truncated)?;
        let id = u64::from_be_bytes(*id);
        let body = || message.slice(HEADER_LEN..);
        match kind {
            REQUEST => Ok(WireMessage::Request { id, body: body() }),
            RESPONSE => Ok(WireMessage::Response { id, body: body() }),
            REFUSED => match tail {
                [code] => Ok(WireMessage::Refused {
                    id,
                    reason: RefuseReason::from_code(*code),
                }),
                _ => Err(WireError::BadRefusal),
            },
            other => Err(WireError::UnknownType(other)),
        }
    }

    /// The message as sent.
    pub fn encode(&self) -> Bytes {
        let (kind, id, body): (u8, u64, &[u8]) = match self {
            WireMessage::Request { id, body } => (REQUEST, *id, body),
            WireMessage::Response { id, body } => (RESPONSE, *id, body),
            WireMessage::Refused { id, reason } => (REFUSED, *id, &[reason.code()]),
        };
        let mut out = BytesMut::with_capacity(HEADER_LEN.saturating_add(body.len()));
        out.put_u8(kind);
        out.put_u64(id);
        out.put_slice(body);
        out.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_round_trips() {
        let messages = [
            WireMessage::Request {
                id: 7,
                body: Bytes::from_static(b"question"),
            },
            WireMessage::Response {
                id: u64::MAX,
                body: Bytes::new(),
            },
            WireMessage::Refused {
                id: 0,
                reason: RefuseReason::Busy,
            },
            WireMessage::Refused {
                id: 1,
                reason: RefuseReason::Declined,
            },
            WireMessage::Refused {
                id: 2,
                reason: RefuseReason::Other(200),
            },
        ];
        for message in messages {
            assert_eq!(WireMessage::decode(&message.encode()), Ok(message));
        }
    }

    #[test]
    fn the_layout_is_type_id_body() {
        let encoded = WireMessage::Request {
            id: 0x0102_0304_0506_0708,
            body: Bytes::from_static(b"hi"),
        }
        .encode();
        assert_eq!(&encoded[..], b"\x01\x01\x02\x03\x04\x05\x06\x07\x08hi");
    }

    #[test]
    fn malformed_messages_are_errors() {
        let cases: [(&[u8], WireError); 5] = [
            (b"", WireError::Truncated),
            (b"\x01\x00\x00\x00\x00\x00\x00\x00", WireError::Truncated),
            (
                b"\x04\x00\x00\x00\x00\x00\x00\x00\x00",
                WireError::UnknownType(4),
            ),
            (
                b"\x03\x00\x00\x00\x00\x00\x00\x00\x00",
                WireError::BadRefusal,
            ),
            (
                b"\x03\x00\x00\x00\x00\x00\x00\x00\x00\x01\x02",
                WireError::BadRefusal,
            ),
        ];
        for (bytes, error) in cases {
            assert_eq!(
                WireMessage::decode(&Bytes::copy_from_slice(bytes)),
                Err(error)
            );
        }
    }
}
