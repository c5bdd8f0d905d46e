//! A peer answering PEX with loopback and private addresses, on real sockets: 50 loopback
//! addresses where the test listens (so every dial is seen) and 10 private ones. A node with
//! the default, routable-only address book stores none of them and dials none; a node
//! configured for a local network stores them and dials them, as any node did before
//! (one `Addrs` answer made a node dial ~60 attacker-chosen local ports in 25 s).

mod common;

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::wire_peer::{WirePeer, info};
use common::{CHANNEL, V4, discovery_config, driver_config, node_config, spawn_discovering};
use switchboard::discovery::Discovery;
use switchboard::frame::Frame;
use switchboard::pex::{MAX_MESSAGE_LEN, PEX_CHANNEL, PexMessage};
use switchboard::{Bytes, ChannelConfig, NetAddress};
use switchboard_mio::NodeApi;

/// Loopback addresses handed out, each with a listener counting the node's dials.
const LOOPBACK: u8 = 50;
/// Private addresses handed out besides: not dialable from here, seen in the book only.
const PRIVATE: u8 = 10;
/// How long the node has to dial what it was told.
const WATCH: Duration = Duration::from_secs(3);

/// Listeners on 127.0.7.1..=50, each accepting and dropping connections, recording which
/// were dialed.
struct Watch {
    addresses: Vec<SocketAddr>,
    dialed: Arc<Mutex<BTreeSet<SocketAddr>>>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Watch {
    fn start() -> Self {
        let listeners: Vec<TcpListener> = (1..=LOOPBACK)
            .map(|n| {
                let listener = TcpListener::bind((Ipv4Addr::new(127, 0, 7, n), 0)).expect("bind");
                listener.set_nonblocking(true).expect("nonblocking");
                listener
            })
            .collect();
        let addresses = listeners
            .iter()
            .map(|listener| listener.local_addr().expect("address"))
            .collect();
        let dialed = Arc::new(Mutex::new(BTreeSet::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen, stopping) = (dialed.clone(), stop.clone());
        let thread = thread::spawn(move || {
            while !stopping.load(Ordering::Acquire) {
                for listener in &listeners {
                    // Dropped at once: the node's handshake fails and it moves on.
                    while listener.accept().is_ok() {
                        let address = listener.local_addr().expect("address");
                        seen.lock().expect("lock").insert(address);
                    }
                }
                thread::sleep(Duration::from_millis(5));
            }
        });
        Watch {
            addresses,
            dialed,
            stop,
            thread: Some(thread),
        }
    }

    fn dialed(&self) -> usize {
        self.dialed.lock().expect("lock").len()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Runs the attack on a node whose book is routable-only or not: how many of the watched
/// addresses it dialed within [`WATCH`], and how many of the 60 its book holds.
fn attack(routable_only: bool) -> (usize, usize) {
    let watch = Watch::start();
    let config = node_config(ChannelConfig::new(CHANNEL));
    let mut discovery = discovery_config();
    discovery.addr_book.routable_only = routable_only;
    discovery.interval = Duration::from_millis(200);
    discovery.pex.request_interval = Duration::from_secs(1);
    let target = spawn_discovering(driver_config(V4, config, 0..256), discovery);
    let from = IpAddr::V4(Ipv4Addr::new(127, 0, 8, 1));
    // Our windows, in our first record once admitted: the node may then send on both
    // channels.
    let window = u32::try_from(MAX_MESSAGE_LEN).expect("fits") * 4;
    let mut attacker = WirePeer::dial(target.local_addrs()[0])
        .from(from)
        .seed(1)
        .wait_admitted()
        .window(window)
        .connect(info("mio-tests", true))
        .expect("admitted");
    // The node runs short of outbound peers, so it asks its only peer for addresses.
    attacker
        .wait_frame(Duration::from_secs(10), |frame| match frame {
            Frame::Data {
                channel, payload, ..
            } if *channel == PEX_CHANNEL => {
                (PexMessage::decode(payload) == Ok(PexMessage::GetAddrs)).then_some(())
            }
            _ => None,
        })
        .expect("GetAddrs");
    let private = (1..=PRIVATE).map(|n| SocketAddr::from(([10, 9, 0, n], 26656)));
    let addresses: Vec<NetAddress> = watch
        .addresses
        .iter()
        .copied()
        .chain(private)
        .map(|socket| NetAddress::new(None, socket))
        .collect();
    let answer = Bytes::from(PexMessage::Addrs(addresses.clone()).encode());
    attacker
        .send(&[Frame::Data {
            channel: PEX_CHANNEL,
            first: Some(answer.len() as u32),
            end: true,
            payload: answer,
        }])
        .expect("Addrs");
    let deadline = Instant::now() + WATCH;
    while Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    let dialed = watch.dialed();
    let stored = target
        .inspect(move |_, discovery, _| {
            let book = discovery.map(Discovery::addr_book).expect("registered");
            addresses
                .iter()
                .filter(|address| book.contains(&address.socket_addr()))
                .count()
        })
        .expect("running");
    assert!(
        target.peers().contains(&attacker.peer_id),
        "the answer is no breach"
    );
    (dialed, stored)
}

#[test]
fn a_routable_only_node_stores_and_dials_none_of_sixty_local_addresses() {
    let (dialed, stored) = attack(true);
    println!("routable only: {dialed} of {LOOPBACK} dialed, {stored} stored");
    assert_eq!((dialed, stored), (0, 0));
}

#[test]
fn a_node_on_a_local_network_stores_and_dials_them() {
    // The same attack without the policy: what the policy prevents.
    let (dialed, stored) = attack(false);
    println!("local network: {dialed} of {LOOPBACK} dialed in {WATCH:?}, {stored} stored");
    // A few lose their slot in the book to another of the 60 (its buckets are hashed).
    assert!(stored >= usize::from(LOOPBACK), "{stored} stored");
    // Seen: 48 of 50 in 3 s, ten at a time (the outbound cap).
    assert!(dialed >= 20, "{dialed} dialed");
}
