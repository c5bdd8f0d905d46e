//! One authenticated peer blasting legal records as fast as it can produce them, on
//! loopback, at a hub that serves everyone: a hand-driven wire peer sealing 60 KB messages
//! back to back, never reading. Meanwhile two honest nodes keep exchanging messages with
//! the hub, and a stream of fresh handshakes is timed. The hub must stay fair: each
//! connection gets one bounded turn per round, so
//!
//! - ≥ 90 % of the fresh handshakes complete within 1 s,
//! - every honest peer stays connected (its keepalive allows 2 s of silence) and keeps
//!   getting its echoes,
//! - the hub's CPU per attacker byte is within 2× of the attacker's own (sealing and
//!   writing the bytes).
//!
//! A hub that reads one socket until `WouldBlock` fails all three: the attacker sends
//! faster than the hub processes, so the hub never leaves that socket.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mio::{Events, Poll};
use switchboard::frame::Frame;
use switchboard::node::{NodeConfig, NodeEvent};
use switchboard::{ChannelConfig, NodeInfo};
use switchboard_mio::{Driver, NodeApi, Runtime};

mod common;
use common::wire_peer::{WINDOW, WirePeer};
use common::{CHANNEL, V4, driver_config, node_config, wait_connected};

/// How long the attack lasts.
const ATTACK: Duration = Duration::from_secs(3);
/// Payload of each attacker message, one per record.
const ATTACK_MESSAGE: usize = 60_000;
/// Honest messages are shorter than this; the hub echoes them and drops the attacker's.
const ECHOED: usize = 64;
/// Between two honest messages, and between two fresh handshakes.
const HONEST_PERIOD: Duration = Duration::from_millis(50);
const PROBE_PERIOD: Duration = Duration::from_millis(100);

fn config() -> NodeConfig {
    let channel = ChannelConfig {
        // The attacker never needs credit back within the attack.
        receive_window: u32::MAX,
        max_message_size: 64 * 1024,
        ..ChannelConfig::new(CHANNEL)
    };
    let mut config = node_config(channel);
    config.limits.max_inbound_per_ip = 1000;
    config.limits.max_inbound_per_subnet = 1000;
    // Honest ends give up on a peer silent for 2 s: a starved hub loses them.
    config.connection.ping_interval = Duration::from_millis(500);
    config.connection.pong_timeout = Duration::from_millis(1500);
    config
}

/// CPU time this thread has used: `/proc/thread-self/schedstat`'s first field, in ns.
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let nanos = stat
        .split_whitespace()
        .next()
        .and_then(|field| field.parse().ok())
        .unwrap_or(0);
    Duration::from_nanos(nanos)
}

/// What the hub's thread publishes after each round of its loop.
#[derive(Default)]
struct HubGauges {
    cpu_ns: AtomicU64,
    bytes_read: AtomicU64,
}

impl HubGauges {
    fn sample(&self) -> (Duration, u64) {
        (
            Duration::from_nanos(self.cpu_ns.load(Ordering::SeqCst)),
            self.bytes_read.load(Ordering::SeqCst),
        )
    }
}

/// The hub: a `Driver` in the usual loop on a thread of its own, echoing short messages.
fn spawn_hub(
    stop: Arc<AtomicBool>,
    gauges: Arc<HubGauges>,
) -> (
    SocketAddr,
    NodeInfo,
    switchboard::NetAddress,
    thread::JoinHandle<()>,
) {
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = thread::spawn(move || {
        let mut poll = Poll::new().expect("poll");
        let mut driver =
            Driver::new(poll.registry(), driver_config(V4, config(), 0..4096)).expect("hub");
        tx.send((
            driver.local_addrs()[0],
            driver.node().node_info().clone(),
            driver.net_address().expect("listening"),
        ))
        .expect("test waiting");
        let mut events = Events::with_capacity(1024);
        while !stop.load(Ordering::SeqCst) {
            let timeout = driver
                .poll_timeout()
                .map_or(Duration::from_millis(10), |t| {
                    t.min(Duration::from_millis(10))
                });
            poll.poll(&mut events, Some(timeout)).expect("poll");
            for event in events.iter() {
                driver.handle_event(event);
            }
            while let Some(event) = driver.poll_event() {
                if let NodeEvent::Message {
                    peer,
                    channel,
                    message,
                } = event
                    && message.len() < ECHOED
                {
                    let _ = (&mut driver).send(&peer, channel, message);
                }
            }
            gauges
                .cpu_ns
                .store(thread_cpu().as_nanos() as u64, Ordering::SeqCst);
            gauges
                .bytes_read
                .store(driver.stats().bytes_read, Ordering::SeqCst);
        }
    });
    let (addr, info, net) = rx.recv().expect("hub started");
    (addr, info, net, handle)
}

/// An honest node: sends a numbered short message every `HONEST_PERIOD`, counts echoes,
/// and reports whether it ever lost the hub.
fn spawn_honest(
    hub: switchboard::NetAddress,
    stop: Arc<AtomicBool>,
) -> thread::JoinHandle<(u32, u32, Option<String>)> {
    let node = Runtime::spawn(driver_config(V4, config(), 0..16)).expect("honest");
    node.dial(hub).expect("dial");
    let hub_id = hub.peer_id().expect("hub's identity");
    wait_connected(node.events(), hub_id);
    thread::spawn(move || {
        let (mut sent, mut echoed, mut lost) = (0u32, 0u32, None);
        let mut next = Instant::now();
        while !stop.load(Ordering::SeqCst) {
            if Instant::now() >= next {
                let message = Bytes::from(sent.to_be_bytes().to_vec());
                if node.send(&hub_id, CHANNEL, message).is_ok() {
                    sent += 1;
                }
                next += HONEST_PERIOD;
            }
            match node.events().recv_timeout(Duration::from_millis(5)) {
                Ok(NodeEvent::Message { .. }) => echoed += 1,
                Ok(NodeEvent::PeerDisconnected { reason, detail, .. }) => {
                    lost.get_or_insert(format!("{reason}: {detail}"));
                }
                _ => {}
            }
        }
        (sent, echoed, lost)
    })
}

#[test]
fn a_firehose_peer_does_not_starve_the_others() {
    let stop = Arc::new(AtomicBool::new(false));
    let gauges = Arc::new(HubGauges::default());
    let (addr, info, net, hub) = spawn_hub(stop.clone(), gauges.clone());
    let honest_stop = Arc::new(AtomicBool::new(false));
    let honest: Vec<_> = (0..2)
        .map(|_| spawn_honest(net, honest_stop.clone()))
        .collect();

    // The attacker: connected, then sealing and writing as fast as it can.
    let attack_over = Arc::new(AtomicBool::new(false));
    let mut attacker = WirePeer::dial(addr)
        .timeout(Duration::from_secs(5))
        .window(WINDOW)
        .connect(info.clone())
        .expect("attacker's handshake");
    let attacker_thread = {
        let attack_over = attack_over.clone();
        thread::spawn(move || {
            let mut plaintext = Vec::new();
            Frame::Data {
                channel: CHANNEL,
                first: Some(ATTACK_MESSAGE as u32),
                end: true,
                payload: Bytes::from(vec![0xa5; ATTACK_MESSAGE]),
            }
            .encode(&mut plaintext);
            let mut batch = Vec::with_capacity(1 << 20);
            let (mut written, cpu_start) = (0u64, thread_cpu());
            while !attack_over.load(Ordering::SeqCst) {
                batch.clear();
                for _ in 0..16 {
                    attacker.seal_into(&plaintext, &mut batch);
                }
                use std::io::Write;
                if attacker.stream.write_all(&batch).is_err() {
                    break;
                }
                written += batch.len() as u64;
            }
            (written, thread_cpu() - cpu_start)
        })
    };

    // Fresh handshakes, timed, one after the other.
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let prober = {
        let (latencies, attack_over) = (latencies.clone(), attack_over.clone());
        thread::spawn(move || {
            let mut next = Instant::now();
            while !attack_over.load(Ordering::SeqCst) {
                let start = Instant::now();
                let took = WirePeer::dial(addr)
                    .timeout(Duration::from_secs(3))
                    .window(WINDOW)
                    .connect(info.clone())
                    .map(|_| start.elapsed())
                    .unwrap_or(Duration::MAX);
                latencies.lock().unwrap().push(took);
                next += PROBE_PERIOD;
                thread::sleep(next.saturating_duration_since(Instant::now()));
            }
        })
    };

    thread::sleep(Duration::from_millis(200));
    let (hub_cpu_start, hub_read_start) = gauges.sample();
    thread::sleep(ATTACK);
    let (hub_cpu_end, hub_read_end) = gauges.sample();
    attack_over.store(true, Ordering::SeqCst);
    prober.join().unwrap();
    let (attacker_written, attacker_cpu) = attacker_thread.join().unwrap();
    // The honest peers stop before the hub does: its end is no loss of theirs.
    honest_stop.store(true, Ordering::SeqCst);
    let honest: Vec<_> = honest.into_iter().map(|h| h.join().unwrap()).collect();
    stop.store(true, Ordering::SeqCst);
    hub.join().unwrap();

    let latencies = latencies.lock().unwrap().clone();
    let fast = latencies
        .iter()
        .filter(|took| **took <= Duration::from_secs(1))
        .count();
    let hub_read = hub_read_end - hub_read_start;
    let hub_cpu = hub_cpu_end - hub_cpu_start;
    let hub_ns_per_byte = hub_cpu.as_nanos() as f64 / hub_read.max(1) as f64;
    let attacker_ns_per_byte = attacker_cpu.as_nanos() as f64 / attacker_written.max(1) as f64;
    let report = format!(
        "handshakes {fast}/{} within 1 s (slowest {:?}); honest (sent, echoed, lost) {honest:?}; \
         attacker wrote {} MB ({:.2} ns/B of its CPU), hub read {} MB in {ATTACK:?} \
         ({:.2} ns/B of its CPU)",
        latencies.len(),
        latencies.iter().max(),
        attacker_written / 1_000_000,
        attacker_ns_per_byte,
        hub_read / 1_000_000,
        hub_ns_per_byte,
    );
    println!("{report}");
    assert!(latencies.len() >= 10, "too few handshakes tried: {report}");
    assert!(fast * 10 >= latencies.len() * 9, "{report}");
    for (sent, echoed, lost) in &honest {
        assert!(lost.is_none(), "an honest peer lost the hub: {report}");
        // Echoes keep coming: all but the last second's worth at the very least.
        assert!(
            *echoed + (Duration::from_secs(1).as_millis() / HONEST_PERIOD.as_millis()) as u32
                >= *sent,
            "{report}"
        );
    }
    // The attack was one: the hub spent most of the window on the attacker's bytes.
    assert!(hub_read > 50_000_000, "{report}");
    if cfg!(target_os = "linux") {
        assert!(
            hub_ns_per_byte <= 2.0 * attacker_ns_per_byte,
            "the hub pays more than twice the attacker's CPU per byte: {report}"
        );
    }
}
