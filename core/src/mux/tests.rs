use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use bytes::Bytes;

use super::*;
use crate::frame::FrameReader;
use crate::time::Instant;

fn info(ids: &[ChannelId]) -> Vec<ChannelInfo> {
    ids.iter()
        .map(|&id| ChannelInfo {
            id,
            protocol: String::from("p"),
            version: 1,
        })
        .collect()
}

/// Two multiplexers with the same channels, and a way to move frames between them.
fn pair(configs: &[ChannelConfig]) -> (Mux, Mux) {
    let ids: Vec<ChannelId> = configs.iter().map(|config| config.id).collect();
    let a = Mux::new(configs, &info(&ids), &info(&ids));
    let b = Mux::new(configs, &info(&ids), &info(&ids));
    (a, b)
}

/// Writes one record's worth of frames from `from` and hands them to `to`; returns the
/// messages completed.
fn exchange(from: &mut Mux, to: &mut Mux) -> Result<Vec<(ChannelId, Bytes)>, MuxError> {
    let mut out = Vec::new();
    from.write_frames(&mut out, crate::record::MAX_PLAINTEXT_LEN);
    let mut messages = Vec::new();
    for frame in FrameReader::new(Bytes::from(out)) {
        match frame.unwrap() {
            Frame::Data {
                channel,
                first,
                end,
                payload,
            } => {
                if let Some(message) = to.handle_data(channel, first, end, payload)? {
                    messages.push((channel, message));
                }
            }
            Frame::Credit { channel, amount } => to.handle_credit(channel, amount)?,
            other => panic!("unexpected {other:?}"),
        }
    }
    Ok(messages)
}

#[test]
fn open_channels_are_those_both_ends_offer_with_defaults_for_unconfigured_ones() {
    let configs = [ChannelConfig {
        weight: 5,
        ..ChannelConfig::new(2)
    }];
    // Offered 1, 2 and 3 (only 2 configured); the peer offers 2, 3 and 4.
    let mux = Mux::new(&configs, &info(&[1, 2, 3]), &info(&[2, 3, 4]));
    let open: Vec<ChannelId> = mux.channels.iter().map(|channel| channel.send.id).collect();
    assert_eq!(open, [2, 3]);
    assert_eq!(mux.channels[0].send.weight, 5);
    let defaults = ChannelConfig::new(3);
    let send = &mux.channels[1].send;
    assert_eq!(
        (
            send.weight,
            send.max_message_size,
            send.queue_messages,
            send.queue_bytes
        ),
        (
            defaults.weight,
            defaults.max_message_size,
            defaults.send_queue_messages,
            defaults.send_queue_bytes
        )
    );
}

#[test]
fn nothing_is_sent_before_the_window_arrives_and_credit_confirms_in_order() {
    let config = ChannelConfig {
        receive_window: 1000,
        ..ChannelConfig::new(1)
    };
    let (mut a, mut b) = pair(&[config]);
    a.send(1, Bytes::from_static(&[1; 100])).unwrap();
    a.send(1, Bytes::from_static(&[2; 700])).unwrap();
    a.send(1, Bytes::from_static(&[3; 100])).unwrap();
    assert!(!a.channels[0].send.is_ready(), "no window yet");
    // b's first frames announce its window.
    assert!(exchange(&mut b, &mut a).unwrap().is_empty());
    // 164 + 764 = 928 fit in 1000; the third (cost 164) does not.
    let delivered = exchange(&mut a, &mut b).unwrap();
    assert_eq!(delivered.len(), 2);
    assert_eq!(a.channels[0].send.stats().unconfirmed_messages, 2);
    assert_eq!(a.channels[0].send.stats().unconfirmed_bytes, 800);
    let held: Vec<ChannelStats> = b.stats().collect();
    assert_eq!(
        held[0].receive_buffered_bytes, 800,
        "both await b's application"
    );
    assert!(held[0].receive_buffered_bytes <= config.receive_buffer_bound());
    assert!(!a.channels[0].send.is_ready());
    // b's application takes the first message only: one confirmation, and room for the third.
    b.handle_taken(1, 100);
    exchange(&mut b, &mut a).unwrap();
    let stats = a.channels[0].send.stats();
    assert_eq!(
        (
            stats.messages_confirmed,
            stats.unconfirmed_messages,
            stats.unconfirmed_bytes
        ),
        (1, 1, 700)
    );
    assert_eq!(exchange(&mut a, &mut b).unwrap().len(), 1);
}

#[test]
fn a_message_larger_than_the_window_starts_when_nothing_is_in_flight() {
    let config = ChannelConfig {
        receive_window: 1000,
        ..ChannelConfig::new(1)
    };
    let (mut a, mut b) = pair(&[config]);
    exchange(&mut b, &mut a).unwrap();
    a.send(1, Bytes::from(vec![7; 5000])).unwrap();
    a.send(1, Bytes::from(vec![8; 5000])).unwrap();
    let delivered = exchange(&mut a, &mut b).unwrap();
    assert_eq!(
        delivered.len(),
        1,
        "the second waits until the first is taken"
    );
    assert_eq!(b.buffered_bytes(), 5000);
    b.handle_taken(1, 5000);
    exchange(&mut b, &mut a).unwrap();
    assert_eq!(exchange(&mut a, &mut b).unwrap().len(), 1);
}

#[test]
fn a_window_of_zero_is_a_flow_control_error_and_a_late_window_is_accepted() {
    let config = ChannelConfig::new(1);
    let (mut a, _b) = pair(&[config]);
    assert_eq!(a.handle_credit(1, 0), Err(MuxError::ZeroWindow(1)));
    assert_eq!(
        MuxError::ZeroWindow(1).reason(),
        DisconnectReason::FlowControl
    );
    // A window is the first CREDIT whenever it comes: messages queued before it wait for it.
    let (mut a, mut b) = pair(&[config]);
    a.send(1, Bytes::from_static(&[1; 10])).unwrap();
    assert!(
        exchange(&mut a, &mut b).unwrap().is_empty(),
        "no window yet"
    );
    a.handle_credit(1, 1000).unwrap();
    assert_eq!(exchange(&mut a, &mut b).unwrap().len(), 1);
}

#[test]
fn starting_beyond_credit_and_unearned_credit_are_flow_control_errors() {
    let config = ChannelConfig {
        receive_window: 1000,
        ..ChannelConfig::new(1)
    };
    let (mut a, mut b) = pair(&[config]);
    exchange(&mut b, &mut a).unwrap();
    // Two messages of cost 564: the second starts at 564 + 564 > 1000.
    assert!(
        b.handle_data(1, Some(500), true, Bytes::from(vec![0; 500]))
            .is_ok()
    );
    assert_eq!(
        b.handle_data(1, Some(500), true, Bytes::from(vec![0; 500])),
        Err(MuxError::FlowControl(1))
    );
    // Credit for messages never written.
    assert_eq!(a.handle_credit(1, 64), Err(MuxError::CreditOverflow(1)));
    assert_eq!(a.handle_credit(9, 64), Err(MuxError::ChannelNotOpen(9)));
}

#[test]
fn deficit_round_robin_shares_records_by_weight() {
    let configs = [
        ChannelConfig {
            weight: 1,
            send_queue_bytes: 1 << 30,
            receive_window: u32::MAX,
            ..ChannelConfig::new(1)
        },
        ChannelConfig {
            weight: 2,
            send_queue_bytes: 1 << 30,
            receive_window: u32::MAX,
            ..ChannelConfig::new(2)
        },
    ];
    let (mut a, mut b) = pair(&configs);
    exchange(&mut b, &mut a).unwrap();
    for _ in 0..3 {
        a.send(1, Bytes::from(vec![1; 4 << 20])).unwrap();
        a.send(2, Bytes::from(vec![2; 4 << 20])).unwrap();
    }
    let mut out = Vec::new();
    let mut bytes = [0usize; 2];
    for _ in 0..60 {
        out.clear();
        a.write_frames(&mut out, crate::record::MAX_PLAINTEXT_LEN);
        for frame in FrameReader::new(Bytes::from(core::mem::take(&mut out))) {
            if let Ok(Frame::Data {
                channel, payload, ..
            }) = frame
            {
                bytes[usize::from(channel - 1)] += payload.len();
            }
        }
    }
    let ratio = bytes[1] as f64 / bytes[0] as f64;
    assert!(
        (1.9..=2.1).contains(&ratio),
        "weight 2 : weight 1 = {ratio:.3}"
    );
}

/// As [`exchange`], the rate limits of `from` first brought up to `now`.
fn exchange_at(
    now: Instant,
    from: &mut Mux,
    to: &mut Mux,
) -> Result<Vec<(ChannelId, Bytes)>, MuxError> {
    from.handle_timeout(now);
    exchange(from, to)
}

fn seconds(millis: u64) -> Instant {
    Instant::from_nanos(millis * 1_000_000)
}

/// Cost-1000 messages: 936 bytes.
fn thousand(id: u8) -> Bytes {
    Bytes::from(vec![
        id;
        1000 - crate::channel::MESSAGE_COST_OVERHEAD as usize
    ])
}

#[test]
fn channels_without_limits_have_no_deadline() {
    let (mut a, mut b) = pair(&[ChannelConfig::new(1)]);
    exchange(&mut b, &mut a).unwrap();
    a.send(1, thousand(1)).unwrap();
    exchange_at(seconds(1), &mut a, &mut b).unwrap();
    b.handle_taken(1, 936);
    assert_eq!((a.poll_timeout(), b.poll_timeout()), (None, None));
    assert_eq!(b.stats().next().unwrap().credit_withheld, 0);
}

#[test]
fn a_receive_rate_withholds_credit_and_grants_it_in_bursts_at_the_rate() {
    let config = ChannelConfig {
        receive_window: 10_000,
        receive_rate: Some(crate::RateLimit {
            bytes_per_second: 10_000,
            burst: 2_000,
        }),
        ..ChannelConfig::new(1)
    };
    let (mut a, mut b) = pair(&[config]);
    // The window is granted at once, whatever the rate: ten messages arrive.
    exchange_at(seconds(1_000), &mut b, &mut a).unwrap();
    for id in 0..20 {
        a.send(1, thousand(id)).unwrap();
    }
    assert_eq!(
        exchange_at(seconds(1_000), &mut a, &mut b).unwrap().len(),
        10
    );
    for _ in 0..10 {
        b.handle_taken(1, 936);
    }
    assert_eq!(b.buffered_bytes(), 0, "taken: nothing is held for them");
    assert_eq!(b.stats().next().unwrap().credit_withheld, 10_000);
    assert_eq!(
        b.poll_timeout(),
        Some(Instant::ZERO),
        "a full bucket is due at once"
    );
    // A full bucket releases one burst: two messages' worth.
    assert!(
        exchange_at(seconds(1_000), &mut b, &mut a)
            .unwrap()
            .is_empty()
    );
    assert_eq!(a.stats().next().unwrap().messages_confirmed, 2);
    assert_eq!(b.stats().next().unwrap().credit_withheld, 8_000);
    for (_, message) in exchange_at(seconds(1_000), &mut a, &mut b).unwrap() {
        b.handle_taken(1, message.len());
    }
    assert_eq!(b.stats().next().unwrap().messages_received, 12);
    // The next burst is due when the bucket is full again: 2000 at 10000/s.
    assert_eq!(b.poll_timeout(), Some(seconds(1_200)));
    b.handle_timeout(seconds(1_199));
    assert!(!b.wants_to_write(), "nothing before the deadline");
    exchange_at(seconds(1_200), &mut b, &mut a).unwrap();
    assert_eq!(a.stats().next().unwrap().messages_confirmed, 4);
    assert_eq!(b.stats().next().unwrap().credit_withheld, 8_000);
    // Run until nothing is held back: all 20 messages are taken and confirmed.
    let mut now = seconds(1_200);
    while let Some(deadline) = b.poll_timeout() {
        now = deadline;
        exchange_at(now, &mut b, &mut a).unwrap();
        for (_, message) in exchange_at(now, &mut a, &mut b).unwrap() {
            b.handle_taken(1, message.len());
        }
    }
    assert_eq!(a.stats().next().unwrap().messages_confirmed, 20);
    // Their 20 000 of credit: the first burst (2000) at once, 18 000 at 10 000/s.
    assert_eq!(now, seconds(2_800));
    assert_eq!(b.stats().next().unwrap().credit_withheld, 0);
}

#[test]
fn a_send_rate_skips_its_channel_while_the_bucket_is_empty_and_others_go_on() {
    let open = |id| ChannelConfig {
        receive_window: u32::MAX,
        send_queue_messages: 1 << 20,
        send_queue_bytes: 1 << 30,
        ..ChannelConfig::new(id)
    };
    let limited = ChannelConfig {
        send_rate: Some(crate::RateLimit {
            bytes_per_second: 10_000,
            burst: 2_000,
        }),
        ..open(1)
    };
    let (mut a, mut b) = pair(&[limited, open(2)]);
    exchange(&mut b, &mut a).unwrap();
    for id in 0..50 {
        a.send(1, thousand(id)).unwrap();
        a.send(2, thousand(id)).unwrap();
    }
    let start = seconds(1_000);
    let delivered = exchange_at(start, &mut a, &mut b).unwrap();
    let on = |channel: ChannelId, delivered: &[(ChannelId, Bytes)]| {
        delivered.iter().filter(|(on, _)| *on == channel).count()
    };
    // The burst lets two messages through on channel 1; channel 2 fills the record.
    assert_eq!(on(1, &delivered), 2);
    assert!(on(2, &delivered) >= 50, "{}", on(2, &delivered));
    let deadline = a.poll_timeout().unwrap();
    assert!(deadline > start, "the empty bucket is a future deadline");
    a.handle_timeout(Instant::from_nanos(deadline.as_nanos() - 1));
    assert!(!a.wants_to_write());
    // Over 3 s more, channel 1 sends at its rate: 30 messages of cost 1000, give or take one.
    let mut sent = 2;
    let end = seconds(4_000);
    while let Some(deadline) = a.poll_timeout().filter(|deadline| *deadline <= end) {
        sent += on(1, &exchange_at(deadline, &mut a, &mut b).unwrap());
    }
    assert!((31..=33).contains(&sent), "{sent} messages in 3 s");
}

/// The DATA frames of one record written by `mux` into `space` bytes: `(channel, first,
/// end, payload length)` each.
fn data_frames(mux: &mut Mux, space: usize) -> Vec<(ChannelId, bool, bool, usize)> {
    let mut out = Vec::new();
    mux.write_frames(&mut out, space);
    FrameReader::new(Bytes::from(out))
        .filter_map(|frame| match frame.unwrap() {
            Frame::Data {
                channel,
                first,
                end,
                payload,
            } => Some((channel, first.is_some(), end, payload.len())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_message_of_one_quantum_goes_out_in_one_frame_and_the_overdraft_is_repaid() {
    let configs = [1, 2].map(|id| ChannelConfig {
        receive_window: 1 << 20,
        ..ChannelConfig::new(id)
    });
    let (mut a, mut b) = pair(&configs);
    exchange(&mut b, &mut a).unwrap();
    // A whole quantum of payload, so its frame (header included) exceeds the allowance.
    for _ in 0..3 {
        a.send(1, Bytes::from(vec![1; QUANTUM_PER_WEIGHT])).unwrap();
        a.send(2, Bytes::from(vec![2; 1000])).unwrap();
    }
    let frames = data_frames(&mut a, crate::record::MAX_PLAINTEXT_LEN);
    // Channel 1's messages are never cut for the few header bytes...
    assert!(
        frames
            .iter()
            .filter(|frame| frame.0 == 1)
            .all(|&(_, first, end, len)| first && end && len == QUANTUM_PER_WEIGHT),
        "{frames:?}"
    );
    // ...and the overdraft costs it: after its first turn, channel 2 gets the next one.
    assert_eq!(frames[0].0, 1);
    assert_eq!(frames[1].0, 2);
}

#[test]
fn a_message_that_fits_half_a_record_is_not_split_across_records() {
    let config = ChannelConfig {
        receive_window: 1 << 20,
        ..ChannelConfig::new(1)
    };
    let (mut a, mut b) = pair(&[config]);
    exchange(&mut b, &mut a).unwrap();
    for _ in 0..3 {
        a.send(1, Bytes::from(vec![1; 30_000])).unwrap();
    }
    // Two fill most of a record; the third would have to be split: it waits for the next.
    let first_record = data_frames(&mut a, crate::record::MAX_PLAINTEXT_LEN);
    assert_eq!(
        first_record,
        [(1, true, true, 30_000), (1, true, true, 30_000)]
    );
    // A message larger than half a record still fills what is left of one.
    a.send(1, Bytes::from(vec![1; 50_000])).unwrap();
    let second_record = data_frames(&mut a, crate::record::MAX_PLAINTEXT_LEN);
    assert_eq!(second_record.first(), Some(&(1, true, true, 30_000)));
    assert!(
        matches!(second_record.get(1), Some(&(1, true, false, len)) if len > 30_000),
        "{second_record:?}"
    );
}

#[test]
fn a_lone_channel_fills_a_record_with_one_frame_and_shares_the_next_when_joined() {
    let configs = [1, 2].map(|id| ChannelConfig {
        receive_window: 4 << 20,
        max_message_size: 4 << 20,
        ..ChannelConfig::new(id)
    });
    let (mut a, mut b) = pair(&configs);
    exchange(&mut b, &mut a).unwrap();
    a.send(1, Bytes::from(vec![1; 1 << 20])).unwrap();
    let alone = data_frames(&mut a, crate::record::MAX_PLAINTEXT_LEN);
    assert_eq!(alone.len(), 1, "{alone:?}");
    // Channel 2 joins: the next record is shared turn by turn again.
    a.send(2, Bytes::from(vec![2; 1 << 20])).unwrap();
    let shared = data_frames(&mut a, crate::record::MAX_PLAINTEXT_LEN);
    let channels: Vec<ChannelId> = shared.iter().map(|frame| frame.0).collect();
    assert!(channels.contains(&1) && channels.contains(&2), "{shared:?}");
    assert!(shared.iter().all(|frame| frame.3 <= QUANTUM_PER_WEIGHT));
}

#[test]
fn overdrafts_are_repaid_so_saturated_channels_of_equal_weight_get_equal_wire_bytes() {
    static ZEROS: [u8; QUANTUM_PER_WEIGHT] = [0; QUANTUM_PER_WEIGHT];
    let configs = [1, 2].map(|id| ChannelConfig {
        receive_window: u32::MAX,
        ..ChannelConfig::new(id)
    });
    let (mut a, mut b) = pair(&configs);
    exchange(&mut b, &mut a).unwrap();
    // Channel 1's messages are a whole quantum (each turn overdraws by its header); channel
    // 2's 1,000-byte messages overdraw by most of a frame at the end of every turn.
    let sizes = [QUANTUM_PER_WEIGHT, 1000];
    let mut wire = [0usize; 2];
    for _ in 0..2000 {
        for (index, &size) in sizes.iter().enumerate() {
            let channel = index as ChannelId + 1;
            while a.send(channel, Bytes::from_static(&ZEROS[..size])).is_ok() {}
        }
        for (channel, first, _, len) in data_frames(&mut a, crate::record::MAX_PLAINTEXT_LEN) {
            let index = usize::from(channel) - 1;
            let total = first.then(|| sizes[index] as u32);
            wire[index] += crate::frame::data_header_len(channel, total, len) + len;
        }
    }
    // Unrepaid, channel 2 would be ahead by ~680 bytes a turn: over a megabyte by now.
    let gap = wire[0].abs_diff(wire[1]);
    assert!(
        gap <= 2 * (QUANTUM_PER_WEIGHT + 64),
        "wire bytes {wire:?}: a gap of {gap}"
    );
}

/// A channel receiving a message of `total` bytes whose first fragment, `first` bytes of
/// `message`, has arrived.
fn receiving(message: &[u8], first: usize) -> Mux {
    let config = ChannelConfig {
        max_message_size: 1 << 20,
        receive_window: 1 << 20,
        ..ChannelConfig::new(3)
    };
    let (_, mut mux) = pair(&[config]);
    let total = u32::try_from(message.len()).unwrap();
    let head = Bytes::copy_from_slice(&message[..first]);
    assert_eq!(mux.handle_data(3, Some(total), false, head), Ok(None));
    mux
}

/// Lands `plaintext` (and a stand-in tag) as a record on channel 3, as the connection does
/// with a ciphertext it then decrypts in place.
fn land(mux: &mut Mux, plaintext: &[u8]) -> Option<Landed> {
    let record_len = plaintext.len() + crate::cipher::TAG_LEN;
    let landing = mux.begin_landing(3, record_len)?;
    let (head, tail) = plaintext.split_at(plaintext.len() / 2);
    mux.extend_landing(&landing, head);
    mux.extend_landing(&landing, tail);
    mux.extend_landing(&landing, &[0xAA; crate::cipher::TAG_LEN]);
    assert_eq!(mux.landed_record(&landing).unwrap().len(), record_len);
    Some(mux.finish_landing(landing, Bytes::copy_from_slice).unwrap())
}

/// Lands `plaintext`, which must lead with the last fragment of `message`, checks the
/// message completes byte for byte, and returns what followed the fragment.
fn land_completing(mux: &mut Mux, plaintext: &[u8], message: &[u8]) -> Bytes {
    match land(mux, plaintext) {
        Some(Landed::Fragment {
            message: Some(whole),
            rest,
        }) => {
            assert!(whole == message);
            rest
        }
        _ => panic!("the last fragment lands and completes the message"),
    }
}

/// Delivers `message[from..]` as its last fragment on channel 3 and checks the message it
/// completes is `message`, byte for byte.
fn assert_rest_completes_it(mux: &mut Mux, message: &[u8], from: usize) {
    let rest = Bytes::copy_from_slice(&message[from..]);
    let whole = mux.handle_data(3, None, true, rest).unwrap().unwrap();
    assert!(whole == message);
}

fn continuation(channel: ChannelId, end: bool, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::new();
    Frame::Data {
        channel,
        first: None,
        end,
        payload: Bytes::copy_from_slice(payload),
    }
    .encode(&mut frame);
    frame
}

fn credit(channel: ChannelId, amount: u32) -> Frame {
    Frame::Credit { channel, amount }
}

/// `frames`, encoded one after the other.
fn encoded(frames: &[Frame]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for frame in frames {
        frame.encode(&mut bytes);
    }
    bytes
}

#[test]
fn records_continuing_a_message_land_in_place_and_complete_it() {
    let message: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut mux = receiving(&message, 30_000);
    // A full record's fragment (3-byte length), then the last one (2-byte length).
    let middle = continuation(3, false, &message[30_000..90_000]);
    assert!(matches!(
        land(&mut mux, &middle),
        Some(Landed::Fragment { message: None, .. })
    ));
    let last = continuation(3, true, &message[90_000..]);
    assert!(land_completing(&mut mux, &last, &message).is_empty());
    // Nothing is being reassembled now: no landing.
    assert!(mux.begin_landing(3, 1000).is_none());
}

#[test]
fn control_frames_after_a_landed_fragment_are_handed_back() {
    let message: Vec<u8> = (0..100_000u32).map(|i| (i % 241) as u8).collect();
    let mut mux = receiving(&message, 30_000);
    let mut plaintext = continuation(3, false, &message[30_000..80_000]);
    let control = encoded(&[credit(3, 777), Frame::Pong(5)]);
    plaintext.extend_from_slice(&control);
    match land(&mut mux, &plaintext) {
        Some(Landed::Fragment {
            message: None,
            rest,
        }) => assert_eq!(rest[..], control[..]),
        _ => panic!("the fragment lands"),
    }
    assert_rest_completes_it(&mut mux, &message, 80_000);
}

#[test]
fn a_record_that_is_not_the_fragment_guessed_is_handed_back_and_the_message_kept() {
    let message: Vec<u8> = (0..50_000u32).map(|i| (i % 253) as u8).collect();
    let mut mux = receiving(&message, 20_000);
    // A PING before the fragment, a fragment of another channel, one with the wrong end
    // flag: each the length of a landable record, none the frame guessed.
    let mut ping_first = Vec::new();
    Frame::Ping(9).encode(&mut ping_first);
    ping_first.extend(continuation(3, false, &message[20_000..25_000]));
    let other_channel = continuation(4, false, &message[20_000..25_000]);
    let wrong_end = continuation(3, true, &message[20_000..25_000]);
    for plaintext in [ping_first, other_channel, wrong_end] {
        match land(&mut mux, &plaintext) {
            Some(Landed::Refuted(back)) => assert_eq!(back[..], plaintext[..]),
            _ => panic!("refuted"),
        }
    }
    // The bytes the guesses overwrote were put back: the message completes intact.
    assert_rest_completes_it(&mut mux, &message, 20_000);
}

#[test]
fn no_landing_for_a_record_longer_than_the_rest_of_the_message_and_a_few_control_frames() {
    let message = vec![5u8; 40_000];
    let mut mux = receiving(&message, 30_000);
    // 10,000 bytes remain: a record longer than them by more than the room past the
    // message's end is not landed.
    assert!(
        mux.begin_landing(3, 10_100 + crate::cipher::TAG_LEN)
            .is_none()
    );
    assert!(
        mux.begin_landing(3, 9_000 + crate::cipher::TAG_LEN)
            .is_some()
    );
}

#[test]
fn at_most_64_bytes_may_follow_a_landed_last_fragment() {
    let message = vec![5u8; 40_000];
    // The last 10,000 bytes' frame header: type, flags, channel, a 2-byte length.
    let fragment = 5 + 10_000 + crate::cipher::TAG_LEN;
    for (after, lands) in [(64, true), (65, false)] {
        // A larger message first, received and dropped: its buffer, reused, has room for
        // more than 64 bytes past the next message's end.
        let larger = vec![6u8; 100_000];
        let mut mux = receiving(&larger, 60_000);
        assert_rest_completes_it(&mut mux, &larger, 60_000);
        let head = Bytes::copy_from_slice(&message[..30_000]);
        assert_eq!(mux.handle_data(3, Some(40_000), false, head), Ok(None));
        assert_eq!(
            mux.begin_landing(3, fragment + after).is_some(),
            lands,
            "{after} bytes after the fragment"
        );
    }
}

#[test]
fn the_last_fragment_lands_whatever_the_size_of_its_length_field() {
    // Lengths just under a varint boundary that the control frames after them would cross:
    // the header is that of the fragment, not of the fragment and what follows.
    for left in [120, 127, 16_380, 16_383] {
        let message: Vec<u8> = (0..40_000u32).map(|i| (i % 233) as u8).collect();
        let mut mux = receiving(&message, 40_000 - left);
        let mut plaintext = continuation(3, true, &message[40_000 - left..]);
        let control = encoded(&[Frame::Pong(1), Frame::Ping(2)]);
        plaintext.extend_from_slice(&control);
        let rest = land_completing(&mut mux, &plaintext, &message);
        assert_eq!(rest[..], control[..], "{left} bytes left");
    }
}

#[test]
fn the_last_fragment_lands_with_the_control_frames_after_it() {
    let message: Vec<u8> = (0..70_000u32).map(|i| (i % 239) as u8).collect();
    let mut mux = receiving(&message, 30_000);
    let mut plaintext = continuation(3, true, &message[30_000..]);
    let control = encoded(&[
        credit(3, 1 << 20),
        credit(4, 1 << 20),
        credit(5, 1 << 20),
        Frame::Pong(u64::MAX),
        Frame::Ping(u64::MAX),
    ]);
    plaintext.extend_from_slice(&control);
    let rest = land_completing(&mut mux, &plaintext, &message);
    assert_eq!(rest[..], control[..]);
}

#[test]
fn write_frames_reports_exactly_the_bytes_it_wrote_near_varint_boundaries() {
    // A fragment length of 16,384 needs a 3-byte varint, 16,383 a 2-byte one: room for one
    // of them may be filled by a frame with the other.
    for space in 16_380..16_395 {
        let config = ChannelConfig {
            max_message_size: 1 << 20,
            receive_window: 1 << 20,
            weight: 8,
            ..ChannelConfig::new(1)
        };
        let (mut a, mut b) = pair(&[config]);
        exchange(&mut b, &mut a).unwrap();
        a.send(1, Bytes::from(vec![1u8; 100_000])).unwrap();
        let mut out = Vec::new();
        let written = a.write_frames(&mut out, space);
        assert_eq!(written, out.len(), "space {space}");
        assert!(written <= space);
    }
}

#[test]
fn debug_shows_a_message_s_length_not_its_bytes() {
    use alloc::format;
    let message = Bytes::from(vec![0xab; 4096]);
    let errors = [
        (SendError::Full(message.clone()), "Full(<4096 bytes>)"),
        (
            SendError::TooLarge(message.clone()),
            "TooLarge(<4096 bytes>)",
        ),
        (
            SendError::ChannelNotOpen(message.clone()),
            "ChannelNotOpen(<4096 bytes>)",
        ),
        (
            SendError::NotConnected(Bytes::new()),
            "NotConnected(<0 bytes>)",
        ),
    ];
    for (error, debug) in errors {
        assert_eq!(format!("{error:?}"), debug);
    }
    let returned = ReturnedMessage {
        channel: 7,
        message,
    };
    assert_eq!(
        format!("{returned:?}"),
        "ReturnedMessage { channel: 7, message: <4096 bytes> }"
    );
    // An outcome, as a `PeerDisconnected` carries them, stays as short.
    let outcome = SendOutcome {
        unsent: vec![returned],
        ..SendOutcome::default()
    };
    assert!(format!("{outcome:?}").len() < 200, "{outcome:?}");
}
