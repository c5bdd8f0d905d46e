//! Helpers shared by the adapter's integration tests. Everything listens and dials on
//! loopback only (127.0.0.1 and ::1).

#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use mio::Poll;
use switchboard::discovery::{Discovery, DiscoveryConfig};
use switchboard::node::{NodeConfig, NodeEvent};
use switchboard::router::Router;
use switchboard::{Bytes, NetAddress};
use switchboard::{ChannelConfig, Keypair, PeerId};
use switchboard_mio::{ChaCha20Rng, Driver, DriverConfig, Events, Handle, NodeApi, Runtime};

pub mod wire_peer;

/// The test channel.
pub const CHANNEL: u16 = 1;

/// A node config with channel 1 (given limits), for a network on loopback: peer limits per
/// address lifted.
pub fn node_config(channel: ChannelConfig) -> NodeConfig {
    let mut config = NodeConfig::new("mio-tests", "switchboard-mio-tests");
    config.add_channel("test", 1, channel);
    config.limits.max_inbound_per_ip = 64;
    config.limits.max_inbound_per_subnet = 64;
    config.limits.max_pending_per_subnet = 64;
    config
}

/// Discovery for a network on loopback: loopback addresses kept in the address book.
pub fn discovery_config() -> DiscoveryConfig {
    let mut config = DiscoveryConfig::default();
    config.addr_book.routable_only = false;
    config
}

/// A node on its own thread running `discovery` (on a router, the one protocol there).
pub fn spawn_discovering(
    config: DriverConfig,
    discovery: DiscoveryConfig,
) -> Handle<Router<ChaCha20Rng>> {
    let (handle, _) = Runtime::default()
        .start_with_router(config, move |router| {
            let discovery = Discovery::new(discovery, router.node_mut().rng());
            router.register(discovery)
        })
        .expect("node starts");
    handle
}

/// A driver config listening on `ip`, port 0, with a fresh key.
pub fn driver_config(ip: IpAddr, node: NodeConfig, tokens: std::ops::Range<usize>) -> DriverConfig {
    let mut rng = switchboard_mio::os_seeded_rng().expect("OS randomness");
    DriverConfig::new(
        node,
        Keypair::generate(&mut rng),
        vec![SocketAddr::new(ip, 0)],
        tokens,
    )
}

/// 127.0.0.1.
pub const V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// Waits for the first event `pick` accepts, failing the test after `timeout`.
pub fn wait_for<T>(
    events: &Events,
    timeout: Duration,
    what: &str,
    mut pick: impl FnMut(NodeEvent) -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = events
            .recv_timeout(left)
            .unwrap_or_else(|error| panic!("no {what} within {timeout:?}: {error}"));
        if let Some(found) = pick(event) {
            return found;
        }
    }
}

/// Waits until a `PeerConnected` for `peer` arrives.
pub fn wait_connected(events: &Events, peer: PeerId) {
    wait_for(events, Duration::from_secs(20), "PeerConnected", |event| {
        matches!(event, NodeEvent::PeerConnected { peer: p, .. } if p == peer).then_some(())
    });
}

/// A peer `Driver` on 127.0.0.1, on a poll of its own, dialed to `hub` and driven until
/// both ends are connected — and then driven no more unless the test does: it reads and
/// answers nothing by itself.
pub fn connect_driven_peer(hub: &Handle, config: NodeConfig) -> (Poll, Driver) {
    let mut poll = Poll::new().expect("poll");
    let mut peer = Driver::new(poll.registry(), driver_config(V4, config, 0..16)).expect("peer");
    peer.dial(hub.net_address().expect("listening"))
        .expect("dial");
    let mut events = mio::Events::with_capacity(64);
    let deadline = Instant::now() + Duration::from_secs(10);
    while hub.peers().is_empty() || peer.node().peers().next().is_none() {
        assert!(Instant::now() < deadline, "never connected");
        poll.poll(&mut events, Some(Duration::from_millis(10)))
            .expect("poll");
        for event in events.iter() {
            peer.handle_event(event);
        }
        while peer.poll_event().is_some() {}
    }
    (poll, peer)
}

/// The number a test message carries in its first 4 bytes.
pub fn number(message: &[u8]) -> u32 {
    u32::from_be_bytes(message[..4].try_into().expect("4 bytes"))
}

/// A receiving node on 127.0.0.1, on its own thread and poll, offering `channel`. From
/// `reads_after` on (`None`: never) it takes every message, requiring them numbered 0, 1,
/// 2, … in order and `check`ed; before, it takes none (its events paused), so nothing it
/// is sent is confirmed. The thread returns how many messages it took, once stopped.
pub struct Receiver {
    pub address: NetAddress,
    stop: Arc<AtomicBool>,
    thread: thread::JoinHandle<u32>,
}

impl Receiver {
    pub fn start(
        reads_after: Option<Duration>,
        channel: ChannelConfig,
        check: fn(u32, &Bytes) -> bool,
    ) -> Self {
        let (address_sender, address) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = thread::spawn(move || {
            let mut poll = Poll::new().expect("poll");
            let config = driver_config(V4, node_config(channel), 0..64);
            let mut driver = Driver::new(poll.registry(), config).expect("receiver");
            let reads_at = reads_after.map(|after| Instant::now() + after);
            driver.with_node(|node, _| node.pause_events(true));
            address_sender
                .send(driver.net_address().expect("listening"))
                .expect("address");
            let mut events = mio::Events::with_capacity(64);
            let mut next = 0u32;
            while !stopping.load(Ordering::Acquire) {
                if reads_at.is_some_and(|at| Instant::now() >= at) {
                    driver.with_node(|node, _| node.pause_events(false));
                }
                let timeout = driver
                    .poll_timeout()
                    .map_or(Duration::from_millis(20), |t| {
                        t.min(Duration::from_millis(20))
                    });
                poll.poll(&mut events, Some(timeout)).expect("poll");
                for event in events.iter() {
                    driver.handle_event(event);
                }
                while let Some(event) = driver.poll_event() {
                    if let NodeEvent::Message { message, .. } = event {
                        assert_eq!(number(&message), next, "out of order");
                        assert!(check(next, &message), "message {next} corrupted");
                        next += 1;
                    }
                }
            }
            next
        });
        let address = address.recv().expect("receiver address");
        Receiver {
            address,
            stop,
            thread,
        }
    }

    /// Stops it; how many messages it took.
    pub fn finish(self) -> u32 {
        self.stop.store(true, Ordering::Release);
        self.thread.join().expect("receiver thread")
    }
}
