//! Protocol breaches on real sockets, committed by hand-driven peers (`common::wire_peer`) from
//! many loopback source addresses, each bound before it connects: the node bans the key
//! and — by default — the address, so a fresh key from that address is refused before any
//! handshake; a flood of breaches keeps the ban list at its bound (its bytes per ban are
//! measured in `tests/tests/ban_list_memory.rs`); and an honest peer's connection carries
//! its messages through it all.

mod common;

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::wire_peer::{WirePeer, info};
use common::{CHANNEL, V4, driver_config, node_config, number, wait_connected};
use switchboard::ban_list::DEFAULT_MAX_BANS;
use switchboard::frame::Frame;
use switchboard::node::{NodeConfig, NodeEvent};
use switchboard::pex::PEX_CHANNEL;
use switchboard::{Bytes, ChannelConfig, DisconnectReason, PeerId};
use switchboard_mio::{Handle, NodeApi, Runtime};

/// An unknown frame type: a protocol error the node bans for (`PROTOCOL.md` §6.1).
const BREACH: &[u8] = &[0x09];

fn ip(c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, c, d))
}

fn start(config: NodeConfig) -> (Handle, SocketAddr) {
    let handle = Runtime::spawn(driver_config(V4, config, 0..1024)).expect("node starts");
    let address = handle.local_addrs()[0];
    (handle, address)
}

/// An honest node on 127.0.0.1 connected to `target`.
fn honest_peer(target: &Handle) -> Handle {
    let honest = Runtime::spawn(driver_config(
        V4,
        node_config(ChannelConfig::new(CHANNEL)),
        0..16,
    ))
    .expect("honest peer starts");
    honest
        .dial(target.net_address().expect("listening"))
        .expect("dial");
    wait_connected(honest.events(), target.peer_id());
    honest
}

/// A wire peer from `from` with the key of `seed`, offering PEX if `pex`, once admitted.
fn connect(from: IpAddr, to: SocketAddr, pex: bool, seed: u64) -> io::Result<WirePeer> {
    WirePeer::dial(to)
        .from(from)
        .seed(seed)
        .wait_admitted()
        .connect(info("mio-tests", pex))
}

/// Connects from `from`, commits the breach, and checks the node closed with
/// `ProtocolError`.
fn breach(from: IpAddr, to: SocketAddr, seed: u64) {
    let mut attacker = connect(from, to, false, seed)
        .unwrap_or_else(|error| panic!("{from} seed {seed} refused: {error}"));
    attacker.send_plaintext(BREACH).expect("breach written");
    let frames = attacker.wait_closed();
    assert!(
        frames.iter().any(|frame| matches!(
            frame,
            Frame::GoAway {
                reason: DisconnectReason::ProtocolError,
                ..
            }
        )),
        "{frames:?}"
    );
}

#[test]
fn a_breach_bans_the_key_and_the_address_and_a_new_key_from_it_is_refused() {
    let (target, to) = start(node_config(ChannelConfig::new(CHANNEL)));
    let honest = honest_peer(&target);
    for n in 1..=20u8 {
        let from = ip(4, n);
        breach(from, to, u64::from(n));
        let again = connect(from, to, false, 1000 + u64::from(n));
        assert!(again.is_err(), "a fresh key from {from} was admitted");
    }
    connect(ip(4, 100), to, false, 5000).expect("another address");
    assert_eq!(
        target.with_node(|node, now| node.ban_counts(now)),
        Some((20, 20))
    );
    // The honest peer stayed connected and is still heard.
    honest
        .send(
            &target.peer_id(),
            CHANNEL,
            Bytes::from_static(&[0, 0, 0, 0]),
        )
        .expect("send");
    let from_honest = honest.peer_id();
    common::wait_for(
        target.events(),
        Duration::from_secs(10),
        "message",
        |event| match event {
            NodeEvent::PeerDisconnected { peer, .. } if peer == from_honest => {
                panic!("the honest peer was disconnected")
            }
            NodeEvent::Message { peer, .. } if peer == from_honest => Some(()),
            _ => None,
        },
    );
}

#[test]
fn a_malformed_pex_message_is_a_breach_banned_like_the_others() {
    // PEX is discovery's channel: a node that runs it.
    let config = node_config(ChannelConfig::new(CHANNEL));
    let target = common::spawn_discovering(
        driver_config(V4, config, 0..1024),
        common::discovery_config(),
    );
    let to = target.local_addrs()[0];
    let from = ip(9, 1);
    let mut attacker = connect(from, to, true, 1).expect("admitted");
    // `Addrs` announcing 251 addresses, one more than a message may hold.
    let malformed = Bytes::from_static(&[0x02, 251]);
    attacker
        .send(&[Frame::Data {
            channel: PEX_CHANNEL,
            first: Some(malformed.len() as u32),
            end: true,
            payload: malformed,
        }])
        .expect("written");
    let frames = attacker.wait_closed();
    assert!(
        frames.iter().any(|frame| matches!(
            frame,
            Frame::GoAway { reason: DisconnectReason::ProtocolError, text }
                if text.contains("malformed PEX message")
        )),
        "{frames:?}"
    );
    assert_eq!(
        target.with_node(|node, now| node.ban_counts(now)),
        Some((1, 1))
    );
    assert!(connect(from, to, true, 2).is_err());
}

#[test]
fn with_address_bans_off_only_the_key_is_banned() {
    let mut config = node_config(ChannelConfig::new(CHANNEL));
    config.violation_ban_ip = false;
    let (target, to) = start(config);
    breach(ip(6, 1), to, 1);
    connect(ip(6, 1), to, false, 2).expect("a fresh key from the same address is admitted");
    assert_eq!(
        target.with_node(|node, now| node.ban_counts(now)),
        Some((1, 0))
    );
}

/// Breaches committed by the flood.
const BREACHES: u64 = 10_000;
/// Source addresses the flood uses, in turn.
const ADDRESSES: u64 = 100;
/// The ban list's bound: the default, which the flood fills more than twice over.
const MAX_BANS: usize = DEFAULT_MAX_BANS;

#[test]
fn ten_thousand_breaches_from_a_hundred_addresses_keep_the_ban_list_at_its_bound() {
    let mut config = node_config(ChannelConfig::new(CHANNEL));
    // Address bans would stop each address after its first breach; the flood is of keys.
    config.violation_ban_ip = false;
    assert_eq!(config.max_bans, MAX_BANS);
    let (target, to) = start(config);
    let honest = honest_peer(&target);
    let (target_id, honest_id): (PeerId, PeerId) = (target.peer_id(), honest.peer_id());
    let flooding = AtomicBool::new(true);
    let attackers_done = AtomicUsize::new(0);
    let started = Instant::now();
    let mut arrivals = Vec::new();
    let mut highest = 0;
    let (sent, honest) = thread::scope(|scope| {
        // The honest peer sends a numbered message every 5 ms while the flood lasts.
        let sender = scope.spawn(|| {
            let mut sent = 0u32;
            while flooding.load(Ordering::Acquire) {
                honest
                    .send_timeout(
                        &target_id,
                        CHANNEL,
                        Bytes::from(sent.to_be_bytes().to_vec()),
                        Duration::from_secs(5),
                    )
                    .expect("the honest peer's send");
                sent += 1;
                thread::sleep(Duration::from_millis(5));
            }
            (sent, honest)
        });
        // Four attackers at once, each taking every fourth breach.
        for worker in 0..4u64 {
            let done = &attackers_done;
            scope.spawn(move || {
                for n in (worker..BREACHES).step_by(4) {
                    breach(ip(5, 1 + (n % ADDRESSES) as u8), to, n);
                }
                done.fetch_add(1, Ordering::AcqRel);
            });
        }
        // The target's side: when each honest message arrived, in order, and the bans held.
        let mut next_sample = Instant::now();
        while attackers_done.load(Ordering::Acquire) < 4 {
            if Instant::now() >= next_sample {
                let (peers, ips) = target
                    .with_node(|node, now| node.ban_counts(now))
                    .expect("running");
                assert!(peers + ips <= MAX_BANS, "{peers} + {ips} bans");
                highest = highest.max(peers + ips);
                next_sample += Duration::from_millis(50);
            }
            let Ok(event) = target.events().recv_timeout(Duration::from_millis(10)) else {
                continue;
            };
            match event {
                NodeEvent::Message { peer, message, .. } if peer == honest_id => {
                    assert_eq!(number(&message) as usize, arrivals.len(), "in order");
                    arrivals.push(Instant::now());
                }
                NodeEvent::PeerDisconnected { peer, reason, .. } if peer == honest_id => {
                    panic!("the honest peer was disconnected: {reason:?}")
                }
                _ => {}
            }
        }
        flooding.store(false, Ordering::Release);
        sender.join().expect("sender")
    });
    let flood = started.elapsed();
    // The last honest messages, sent as the flood ended.
    while (arrivals.len() as u32) < sent {
        match target.events().recv_timeout(Duration::from_secs(5)) {
            Ok(NodeEvent::Message { peer, message, .. }) if peer == honest_id => {
                assert_eq!(number(&message) as usize, arrivals.len(), "in order");
                arrivals.push(Instant::now());
            }
            Ok(_) => {}
            Err(error) => panic!("{} of {sent} honest messages: {error}", arrivals.len()),
        }
    }
    let held = target
        .with_node(|node, _| (node.bans().len(), node.bans().capacity()))
        .expect("running");
    assert_eq!(held, (MAX_BANS, MAX_BANS), "the flood fills the list");
    assert_eq!(arrivals.len() as u32, sent, "every honest message arrived");
    let gap = arrivals
        .windows(2)
        .map(|pair| pair[1] - pair[0])
        .max()
        .unwrap_or_default();
    println!(
        "{BREACHES} breaches from {ADDRESSES} addresses in {flood:?} ({:.0}/s); \
         bans held {} (at most {highest} sampled); honest: {sent} messages, longest gap {gap:?}",
        BREACHES as f64 / flood.as_secs_f64(),
        held.0,
    );
    // A message every 5 ms: a gap of a second would mean the flood starved the connection.
    assert!(
        gap < Duration::from_secs(1),
        "honest messages stalled {gap:?}"
    );
    assert!(honest.peers().contains(&target_id));
}
