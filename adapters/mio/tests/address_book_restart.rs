//! The address book on disk: a node that learned its peers through a seed, saved its book
//! to a data directory and restarted with it (same key, no seed) finds its peers again; a
//! corrupt book file is refused and the node starts with an empty one; a book given to a node
//! without discovery is an error.

use std::time::{Duration, Instant};

use switchboard::ChannelConfig;
use switchboard::NetAddress;
use switchboard::discovery::{Discovery, DiscoveryConfig};
use switchboard::node::NodeEvent;
use switchboard_mio::{DataDir, Driver, DriverConfig, DriverError, NodeApi};

mod common;
use common::{
    CHANNEL, V4, discovery_config, driver_config, node_config, spawn_discovering, wait_for,
};

fn discovering(seeds: Vec<NetAddress>) -> DiscoveryConfig {
    let mut config = discovery_config();
    config.seeds = seeds;
    config.one_outbound_per_group = false; // everyone is on 127.0.0.1
    config.interval = Duration::from_millis(200);
    config.pex.request_interval = Duration::from_secs(1);
    config
}

fn node() -> DriverConfig {
    driver_config(V4, node_config(ChannelConfig::new(CHANNEL)), 0..64)
}

#[test]
fn a_node_restarted_with_its_saved_book_and_no_seed_reconnects() {
    let seed = spawn_discovering(node(), discovering(vec![]));
    let seed_addr = seed.net_address().expect("listening");
    let member = spawn_discovering(node(), discovering(vec![seed_addr]));
    let member_addr = member.net_address().expect("listening");

    // The traveller learns of `member` through the seed.
    let traveller_config = node();
    let keypair = traveller_config.keypair.clone();
    let traveller = spawn_discovering(traveller_config, discovering(vec![seed_addr]));
    let member_id = member_addr.peer_id().expect("with identity");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !traveller.peers().contains(&member_id) {
        assert!(
            Instant::now() < deadline,
            "the traveller never found the member"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let dir = std::env::temp_dir().join(format!("switchboard-book-{}", std::process::id()));
    let data = DataDir::open(&dir).expect("data dir");
    data.save_address_book(&traveller.address_book().expect("running"))
        .expect("saved");
    traveller.shutdown(std::time::Duration::from_secs(2));
    seed.shutdown(std::time::Duration::from_secs(2));

    // Back with the same key, no seed, only the book from disk.
    let mut restarted = node();
    restarted.keypair = keypair;
    restarted.address_book = data.load_address_book().expect("readable");
    assert!(restarted.address_book.is_some());
    let restarted = spawn_discovering(restarted, discovering(vec![]));
    let peer = wait_for(
        restarted.events(),
        Duration::from_secs(20),
        "PeerConnected",
        |event| match event {
            NodeEvent::PeerConnected { peer, .. } => Some(peer),
            _ => None,
        },
    );
    assert_eq!(peer, member_id, "found the member again, without the seed");
    let slots = restarted.outbound_slots().expect("running");
    assert_eq!(slots.connected, 1, "dialed from the book: {slots:?}");
    restarted.shutdown(std::time::Duration::from_secs(2));
    member.shutdown(std::time::Duration::from_secs(2));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_corrupt_book_is_refused_and_the_node_starts_empty() {
    let mut config = node();
    config.address_book = Some(b"not an address book".to_vec());
    let mut poll = mio::Poll::new().expect("poll");
    let driver = Driver::with_router(poll.registry(), config, |router| {
        let discovery = Discovery::new(discovering(vec![]), router.node_mut().rng());
        router.register(discovery).map(drop)
    })
    .expect("driver");
    assert!(driver.address_book_error().is_some());
    let discovery = driver.discovery().expect("registered");
    assert_eq!(discovery.addr_book().len(), 0);
    let _ = poll.poll(&mut mio::Events::with_capacity(1), Some(Duration::ZERO));
}

#[test]
fn a_book_given_to_a_node_without_discovery_is_an_error() {
    let mut config = node();
    config.address_book = Some(Vec::new());
    let poll = mio::Poll::new().expect("poll");
    let bare = Driver::new(poll.registry(), config.clone());
    assert!(matches!(bare, Err(DriverError::NoDiscovery)), "a bare node");
    let router = Driver::with_router(poll.registry(), config, |_| Ok(()));
    assert!(
        matches!(router, Err(DriverError::NoDiscovery)),
        "a router without it"
    );
}
