use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use bytes::Bytes;

use super::*;
use crate::frame::FrameReader;

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
    let open: Vec<ChannelId> = mux
        .channels
        .iter()
        .map(|channel| channel.send.config.id)
        .collect();
    assert_eq!(open, [2, 3]);
    assert_eq!(mux.channels[0].send.config.weight, 5);
    assert_eq!(mux.channels[1].send.config, ChannelConfig::new(3));
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
    assert!(!a.channels[0].send.is_ready());
    // b's application takes the first message only: one confirmation, and room for the third.
    b.handle_taken(1, 100);
    exchange(&mut b, &mut a).unwrap();
    let stats = a.channels[0].send.stats();
    assert_eq!(
        (stats.messages_confirmed, stats.unconfirmed_messages),
        (1, 1)
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
