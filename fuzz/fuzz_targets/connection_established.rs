//! An established listener `Connection` against an attacker that completed a real handshake
//! (a bare `Handshake`, so its session keys are ours): arbitrary record plaintexts sealed
//! with those keys, so they authenticate and reach the frame parser and the multiplexer,
//! interleaved with raw unencrypted bytes and the listener application's sends, event
//! taking, transmits, timers and closes. Whatever the peer sends, after every step:
//! buffering stays within the channels' bounds plus one record, `Closed` is the one last
//! event and accounts for every message sent, closed stays closed, and what the listener
//! writes authenticates, parses and keeps within the credit the attacker granted.
#![no_main]

#[path = "common/attacked_listener.rs"]
mod attacked_listener;

use std::collections::VecDeque;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use arbitrary::Arbitrary;
use attacked_listener::{attacked_listener, info_offering};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use switchboard::connection::{Connection, Event};
use switchboard::frame::{Frame, FrameReader};
use switchboard::record::{RecordDecoder, seal_record};
use switchboard::{
    ChannelConfig, ConnectionConfig, DisconnectReason, Instant, Keypair, SendError,
    TransportCipher, message_cost,
};

#[derive(Arbitrary, Debug)]
enum Operation {
    /// A plaintext the attacker seals as one record.
    Record(Vec<u8>),
    /// The same from well-formed frames, written to the listener in two reads split at `cut`.
    Frames {
        frames: Vec<FuzzFrame>,
        cut: u16,
    },
    /// Bytes written to the listener as they are.
    RawBytes(Vec<u8>),
    /// The listener's application sends `len` bytes on channel `channel % 4`.
    Send {
        channel: u8,
        len: u16,
    },
    TakeEvents,
    /// One `poll_transmit` of the listener, read by the attacker.
    Transmit,
    Timeout {
        advance_ms: u16,
    },
    Close {
        code: u8,
    },
    TransportClosed,
}

#[derive(Arbitrary, Debug)]
enum FuzzFrame {
    /// A whole message in one DATA frame.
    Message {
        channel: u8,
        len: u16,
    },
    /// The next piece of the message the attacker is writing on the channel, or the first
    /// piece of a new one of `total` bytes.
    Fragment {
        channel: u8,
        total: u16,
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
    /// Returns the credit of the oldest message the listener wrote on the channel.
    Confirm {
        channel: u8,
    },
    Ping(u64),
    Pong(u64),
    GoAway {
        code: u8,
        text: String,
    },
}

fn reason(code: u8) -> DisconnectReason {
    DisconnectReason::from_code(code).unwrap_or(DisconnectReason::Requested)
}

fn data(channel: u16, first: Option<u32>, end: bool, len: usize) -> Frame {
    let payload = Bytes::from(vec![0xD5; len]);
    Frame::Data {
        channel,
        first,
        end,
        payload,
    }
}

/// What the attacker knows of one channel.
#[derive(Default)]
struct ChannelState {
    /// The credit the attacker granted the listener, as the protocol counts it.
    window: Option<u64>,
    limit: u64,
    started: u64,
    /// Cost of the message the listener is writing.
    receiving: Option<u64>,
    /// Costs of the messages the listener wrote and the attacker has not confirmed.
    to_confirm: VecDeque<u64>,
    /// Bytes left of the message the attacker is writing in fragments.
    sending: Option<usize>,
}

struct Attacker {
    cipher: TransportCipher,
    decoder: RecordDecoder,
    channels: [ChannelState; 4],
    goaway_received: bool,
}

impl Attacker {
    fn frame(&mut self, frame: FuzzFrame) -> Frame {
        let index = |channel: u8| usize::from(channel % 4);
        match frame {
            FuzzFrame::Message { channel, len } => {
                data(u16::from(channel % 4), Some(len.into()), true, len.into())
            }
            FuzzFrame::Fragment {
                channel,
                total,
                len,
            } => {
                let sending = &mut self.channels[index(channel)].sending;
                let (first, left) = match *sending {
                    Some(left) => (None, left),
                    None => (Some(total.into()), total.into()),
                };
                let len = usize::from(len).min(left);
                *sending = (len < left).then_some(left - len);
                data(u16::from(channel % 4), first, len == left, len)
            }
            FuzzFrame::Data {
                channel,
                first,
                end,
                len,
            } => data(u16::from(channel % 4), first, end, len.into()),
            FuzzFrame::Credit { channel, amount } => Frame::Credit {
                channel: u16::from(channel % 4),
                amount,
            },
            FuzzFrame::Confirm { channel } => {
                let cost = self.channels[index(channel)].to_confirm.pop_front();
                Frame::Credit {
                    channel: u16::from(channel % 4),
                    amount: cost.map_or(0, |cost| cost as u32),
                }
            }
            FuzzFrame::Ping(value) => Frame::Ping(value),
            FuzzFrame::Pong(value) => Frame::Pong(value),
            FuzzFrame::GoAway { code, text } => Frame::GoAway {
                reason: reason(code),
                text,
            },
        }
    }

    /// Checks one record's worth of the listener's output against the protocol.
    fn receive(&mut self, config: &ConnectionConfig, mut wire: &[u8]) {
        while let Some(plaintext) = self
            .decoder
            .decode(&mut self.cipher, &mut wire)
            .expect("the listener's records authenticate")
        {
            for frame in FrameReader::new(Bytes::copy_from_slice(plaintext)) {
                assert!(!self.goaway_received, "the listener wrote after its GOAWAY");
                match frame.expect("the listener writes well-formed frames") {
                    Frame::Data {
                        channel,
                        first,
                        end,
                        ..
                    } => {
                        let channel_config = channel_config(config, channel)
                            .expect("the listener writes on open channels only");
                        let state = &mut self.channels[usize::from(channel)];
                        if let Some(total) = first {
                            assert!(total <= channel_config.max_message_size);
                            let window = state.window.expect("DATA before the window is known");
                            let cost = message_cost(total as usize);
                            assert!(
                                state.started + cost.min(window) <= state.limit,
                                "the listener started a message beyond its credit"
                            );
                            state.started += cost;
                            state.receiving = Some(cost);
                        }
                        if end {
                            let cost = state.receiving.take().expect("a message was started");
                            state.to_confirm.push_back(cost);
                        }
                    }
                    Frame::GoAway { .. } => self.goaway_received = true,
                    _ => {}
                }
            }
        }
        assert!(wire.is_empty() && self.decoder.buffered() == 0);
    }

    /// Seals `plaintext` and writes it to the listener, split at `cut`.
    fn send(&mut self, fuzz: &mut Fuzz, plaintext: &[u8], cut: usize) {
        let mut wire = Vec::new();
        if seal_record(&mut self.cipher, plaintext, &mut wire).is_err() {
            return;
        }
        let records = fuzz.listener.stats().records_received;
        let (head, tail) = wire.split_at(cut.min(wire.len()));
        fuzz.listener.handle_input(fuzz.now, head);
        fuzz.check();
        fuzz.listener.handle_input(fuzz.now, tail);
        // Raw bytes may have put the listener out of step with the records (then nothing
        // more decrypts). A record read that leaves the listener established was applied
        // whole: track its credit.
        let read = fuzz.listener.stats().records_received > records;
        if read && fuzz.listener.is_established() {
            for frame in FrameReader::new(Bytes::copy_from_slice(plaintext)) {
                match frame.expect("a malformed frame closes the connection") {
                    Frame::Credit { channel, amount } => {
                        let state = self
                            .channels
                            .get_mut(usize::from(channel))
                            .expect("credit on an open channel");
                        state.limit += u64::from(amount);
                        state.window.get_or_insert(u64::from(amount).max(1));
                    }
                    Frame::GoAway { .. } => panic!("a GOAWAY closes the connection"),
                    _ => {}
                }
            }
        }
    }
}

/// The listener and what the harness knows about it.
struct Fuzz {
    config: Arc<ConnectionConfig>,
    listener: Connection,
    now: Instant,
    buffer_bound: u64,
    was_closed: bool,
    saw_closed: bool,
    accepted: u64,
}

impl Fuzz {
    /// What must hold after every step, whatever the peer sent.
    fn check(&mut self) {
        let buffered = self.listener.buffered_bytes();
        assert!(
            buffered <= self.buffer_bound,
            "{buffered} bytes buffered, bound {}",
            self.buffer_bound
        );
        assert!(!self.was_closed || self.listener.is_closed(), "reopened");
        self.was_closed = self.listener.is_closed();
    }

    fn take_events(&mut self) {
        while let Some(event) = self.listener.poll_event() {
            assert!(!self.saw_closed, "{event:?} after Closed");
            match event {
                Event::Connected { .. } => panic!("connected twice"),
                Event::Message { channel, message } => {
                    let config = channel_config(&self.config, channel)
                        .expect("messages arrive on open channels only");
                    assert!(message.len() <= config.max_message_size as usize);
                }
                Event::Closed(closed) => {
                    self.saw_closed = true;
                    let outcome = &closed.outcome;
                    let returned = (outcome.unsent.len() + outcome.unconfirmed.len()) as u64;
                    assert_eq!(
                        outcome.confirmed + returned,
                        self.accepted,
                        "the outcome accounts for every message sent"
                    );
                }
                other => panic!("an event this target does not model: {other:?}"),
            }
        }
        assert!(!self.saw_closed || !self.listener.is_established());
        self.check();
    }

    fn send(&mut self, channel: u16, len: usize) {
        let result = self.listener.send(channel, Bytes::from(vec![0x5A; len]));
        let established = self.listener.is_established();
        let max = channel_config(&self.config, channel).map(|c| c.max_message_size as usize);
        match (result, established, max) {
            (Err(SendError::NotConnected(_)), false, _) => {}
            (Err(SendError::ChannelNotOpen(_)), true, None) => {}
            (Err(SendError::TooLarge(_)), true, Some(max)) if len > max => {}
            (Err(SendError::Full(_)), true, Some(max)) if len <= max => {}
            (Ok(()), true, Some(max)) if len <= max => self.accepted += 1,
            (result, ..) => panic!("send of {len} bytes on {channel}: {result:?}"),
        }
    }
}

fn channel_config(config: &ConnectionConfig, id: u16) -> Option<&ChannelConfig> {
    config.channels.iter().find(|channel| channel.id == id)
}

/// The static keys, made once: the handshake's six Diffie-Hellmans are the bulk of an
/// execution already.
static KEYS: LazyLock<[Keypair; 2]> = LazyLock::new(|| {
    [
        Keypair::from_secret_bytes([1; 32]),
        Keypair::from_secret_bytes([2; 32]),
    ]
});

/// Both ends offer channels 1 (small limits, so the fuzzer hits them) and 2 (defaults).
fn setup() -> (Fuzz, Attacker) {
    let config = Arc::new(ConnectionConfig::new(vec![
        ChannelConfig {
            receive_window: 4096,
            max_message_size: 8192,
            ..ChannelConfig::new(1)
        },
        ChannelConfig::new(2),
    ]));
    let (listener, cipher) = attacked_listener(config.clone(), info_offering(&[1, 2]), &KEYS, 3);
    let now = Instant::ZERO;
    assert!(listener.is_channel_open(1) && listener.is_channel_open(2));

    let buffer_bound = config
        .channels
        .iter()
        .map(ChannelConfig::receive_buffer_bound)
        .sum::<u64>()
        + 65537;
    let mut fuzz = Fuzz {
        config,
        listener,
        now,
        buffer_bound,
        was_closed: false,
        saw_closed: false,
        accepted: 0,
    };
    let mut attacker = Attacker {
        cipher,
        decoder: RecordDecoder::new(),
        channels: Default::default(),
        goaway_received: false,
    };
    // Like any peer, the attacker announces its receive windows first, so the listener's
    // sends flow from the start.
    let mut windows = Vec::new();
    for channel in [1, 2] {
        let amount = 1 << 16;
        Frame::Credit { channel, amount }.encode(&mut windows);
    }
    attacker.send(&mut fuzz, &windows, usize::MAX);
    assert!(fuzz.listener.is_established());
    (fuzz, attacker)
}

fuzz_target!(|operations: Vec<Operation>| {
    let (mut fuzz, mut attacker) = setup();
    for operation in operations {
        match operation {
            Operation::Record(plaintext) => attacker.send(&mut fuzz, &plaintext, usize::MAX),
            Operation::Frames { frames, cut } => {
                let mut plaintext = Vec::new();
                for frame in frames {
                    attacker.frame(frame).encode(&mut plaintext);
                }
                attacker.send(&mut fuzz, &plaintext, usize::from(cut));
            }
            Operation::RawBytes(bytes) => fuzz.listener.handle_input(fuzz.now, &bytes),
            Operation::Send { channel, len } => fuzz.send(u16::from(channel % 4), len.into()),
            Operation::TakeEvents => fuzz.take_events(),
            Operation::Transmit => {
                let mut out = Vec::new();
                let wrote = fuzz.listener.poll_transmit(fuzz.now, &mut out);
                assert_eq!(wrote, !out.is_empty());
                attacker.receive(&fuzz.config, &out);
            }
            Operation::Timeout { advance_ms } => {
                fuzz.now = fuzz
                    .now
                    .saturating_add(Duration::from_millis(advance_ms.into()));
                fuzz.listener.handle_timeout(fuzz.now);
            }
            Operation::Close { code } => fuzz.listener.close(fuzz.now, reason(code), "fuzz"),
            Operation::TransportClosed => fuzz.listener.handle_closed(),
        }
        fuzz.check();
    }
    fuzz.take_events();
    assert!(!fuzz.listener.is_closed() || fuzz.saw_closed);
});
