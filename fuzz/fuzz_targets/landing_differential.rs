//! Records placed straight into a reassembly buffer (`core/src/connection/landing.rs`) must
//! change nothing but the copies made. Two listeners, established with the same keys and
//! randomness, get the same records sealed by one attacker (fragments that follow the rules,
//! arbitrary DATA, CREDIT, PING and GOAWAY frames and raw bytes, records cut short inside
//! their last frame, many records per read): one in reads
//! cut wherever the fuzzer says, where records get guessed and landed; the other one record
//! at a time with its first byte on its own, which the landing path never takes. After every
//! step both must have handed out the same events — the same messages, byte for byte, and
//! the same close — written the same bytes back, and hold no more than their bounds.
#![no_main]

#[path = "common/attacked_listener.rs"]
mod attacked_listener;

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use arbitrary::Arbitrary;
use attacked_listener::{attacked_listener, info_offering};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use switchboard::connection::{Connection, Event};
use switchboard::frame::Frame;
use switchboard::record::seal_record;
use switchboard::{
    ChannelConfig, ConnectionConfig, DisconnectReason, Instant, Keypair, TransportCipher,
};

#[derive(Arbitrary, Debug)]
enum Operation {
    /// Records, each sealed from its frames, written in one stream: to the cut listener in
    /// reads ending at `cuts` (taken modulo the stream's length).
    Records {
        records: Vec<FuzzRecord>,
        cuts: Vec<u32>,
    },
    Timeout {
        advance_ms: u16,
    },
}

#[derive(Arbitrary, Debug)]
struct FuzzRecord {
    frames: Vec<FuzzFrame>,
    /// Bytes cut off the end of the plaintext (taken modulo 4): its last frame then claims
    /// more than the record holds.
    cut_short: u8,
}

#[derive(Arbitrary, Debug)]
enum FuzzFrame {
    /// The next piece of the message the attacker is writing on the channel, or the first
    /// piece of a new one of `total` bytes.
    Fragment {
        channel: u8,
        total: u32,
        len: u16,
    },
    /// A DATA frame with arbitrary fields.
    Data {
        channel: u8,
        first: Option<u32>,
        end: bool,
        len: u16,
    },
    Credit {
        channel: u8,
        amount: u32,
    },
    Ping(u64),
    GoAway {
        code: u8,
    },
    /// Bytes as they are, frames or not.
    Raw(Vec<u8>),
}

/// Channel 1 takes messages of up to 1 MiB (many records each); channel 2 is small, so
/// its limits are hit.
fn channels() -> Vec<ChannelConfig> {
    vec![
        ChannelConfig {
            receive_window: 1 << 20,
            max_message_size: 1 << 20,
            ..ChannelConfig::new(1)
        },
        ChannelConfig {
            receive_window: 4096,
            max_message_size: 8192,
            ..ChannelConfig::new(2)
        },
    ]
}

static KEYS: LazyLock<[Keypair; 2]> = LazyLock::new(|| {
    [
        Keypair::from_secret_bytes([3; 32]),
        Keypair::from_secret_bytes([4; 32]),
    ]
});

/// A listener established with the attacker; the same every time (fixed keys and seed),
/// so the attacker's session keys fit both listeners.
fn established() -> (Connection, TransportCipher, Arc<ConnectionConfig>) {
    let config = Arc::new(ConnectionConfig::new(channels()));
    let (listener, cipher) = attacked_listener(config.clone(), info_offering(&[1, 2]), &KEYS, 9);
    (listener, cipher, config)
}

/// What an application sees of an event, comparable across the two listeners.
#[derive(Debug, PartialEq)]
enum Seen {
    Message(u16, Bytes),
    Closed(DisconnectReason, String),
    Connected,
}

fn take(listener: &mut Connection) -> Vec<Seen> {
    std::iter::from_fn(|| listener.poll_event())
        .map(|event| match event {
            Event::Message { channel, message } => Seen::Message(channel, message),
            Event::Closed(closed) => Seen::Closed(closed.reason, closed.detail),
            Event::Connected { .. } => Seen::Connected,
            other => panic!("an event this target does not compare: {other:?}"),
        })
        .collect()
}

/// Bytes left of the message the attacker is writing on each channel.
#[derive(Default)]
struct Attacker {
    sending: [Option<usize>; 3],
    payload_byte: u8,
}

impl Attacker {
    /// Appends `frame` to `plaintext`.
    fn encode(&mut self, frame: FuzzFrame, plaintext: &mut Vec<u8>) {
        self.payload_byte = self.payload_byte.wrapping_add(1);
        let payload = |len: usize, byte: u8| Bytes::from(vec![byte; len]);
        let frame = match frame {
            FuzzFrame::Fragment {
                channel,
                total,
                len,
            } => {
                let channel = usize::from(channel % 3);
                let total = (total % (1 << 20)) as usize;
                let (first, left) = match self.sending[channel] {
                    Some(left) => (None, left),
                    None => (Some(total as u32), total),
                };
                let len = usize::from(len).min(left);
                self.sending[channel] = (len < left).then_some(left - len);
                Frame::Data {
                    channel: channel as u16,
                    first,
                    end: len == left,
                    payload: payload(len, self.payload_byte),
                }
            }
            FuzzFrame::Data {
                channel,
                first,
                end,
                len,
            } => Frame::Data {
                channel: u16::from(channel % 3),
                first,
                end,
                payload: payload(len.into(), self.payload_byte),
            },
            FuzzFrame::Credit { channel, amount } => Frame::Credit {
                channel: u16::from(channel % 3),
                amount,
            },
            FuzzFrame::Ping(value) => Frame::Ping(value),
            FuzzFrame::GoAway { code } => Frame::GoAway {
                reason: DisconnectReason::from_code(code).unwrap_or(DisconnectReason::Requested),
                text: String::from("fuzz"),
            },
            FuzzFrame::Raw(bytes) => return plaintext.extend_from_slice(&bytes),
        };
        frame.encode(plaintext);
    }
}

fuzz_target!(|operations: Vec<Operation>| {
    let (mut cut, mut cipher, config) = established();
    let (mut whole, _, _) = established();
    let bound = config
        .channels
        .iter()
        .map(ChannelConfig::receive_buffer_bound)
        .sum::<u64>()
        + 2 * 65537;
    let mut attacker = Attacker::default();
    let mut now = Instant::ZERO;
    for operation in operations {
        match operation {
            Operation::Records { records, cuts } => {
                let mut stream = Vec::new();
                let mut ends = Vec::new();
                for record in records {
                    let mut plaintext = Vec::new();
                    for frame in record.frames {
                        attacker.encode(frame, &mut plaintext);
                    }
                    let cut_short = usize::from(record.cut_short % 4);
                    plaintext.truncate(plaintext.len().saturating_sub(cut_short));
                    if seal_record(&mut cipher, &plaintext, &mut stream).is_ok() {
                        ends.push(stream.len());
                    }
                }
                // The usual path: one record at a time, its first byte alone.
                let mut start = 0;
                for end in ends {
                    whole.handle_input(now, &stream[start..start + 1]);
                    whole.handle_input(now, &stream[start + 1..end]);
                    start = end;
                }
                // Reads cut anywhere, records landing where they are guessed.
                let mut points: Vec<usize> = cuts
                    .iter()
                    .map(|&at| at as usize % (stream.len() + 1))
                    .collect();
                points.sort_unstable();
                let mut start = 0;
                for point in points.into_iter().chain([stream.len()]) {
                    cut.handle_input(now, &stream[start..point]);
                    start = point;
                }
            }
            Operation::Timeout { advance_ms } => {
                now = now.saturating_add(Duration::from_millis(advance_ms.into()));
                cut.handle_timeout(now);
                whole.handle_timeout(now);
            }
        }
        assert_eq!(take(&mut cut), take(&mut whole), "the same events");
        // And the same answers: credit, PONGs, GOAWAY.
        let (mut cut_out, mut whole_out) = (Vec::new(), Vec::new());
        while cut.poll_transmit(now, &mut cut_out) {}
        while whole.poll_transmit(now, &mut whole_out) {}
        assert_eq!(cut_out, whole_out, "the same bytes written");
        assert_eq!(cut.is_closed(), whole.is_closed());
        assert_eq!(
            cut.stats().records_received,
            whole.stats().records_received,
            "the same records read"
        );
        for listener in [&cut, &whole] {
            assert!(listener.buffered_bytes() <= bound);
        }
    }
});
