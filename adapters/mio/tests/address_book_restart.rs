//! The address book on disk: a node that learned its peers through a seed, saved its book
//! to a data directory and restarted with it (same key, no seed) finds its peers again; a
//! corrupt book file is refused and the node starts with an empty one.

use std::time::{Duration, Instant};

use switchboard::ChannelConfig;
use switchboard::node::NodeEvent;
use switchboard_mio::{DataDir, NodeApi, Runtime};

mod common;
use common::{CHANNEL, V4, driver_config, node_config, wait_for};

fn discovering() -> switchboard::node::NodeConfig {
    let mut config = node_config(ChannelConfig::new(CHANNEL));
    config.discovery.one_outbound_per_group = false; // everyone is on 127.0.0.1
    config.discovery.interval = Duration::from_millis(200);
    config.discovery.pex.request_interval = Duration::from_secs(1);
    config
}

#[test]
fn a_node_restarted_with_its_saved_book_and_no_seed_reconnects() {
    let seed = Runtime::spawn(driver_config(V4, discovering(), 0..64)).expect("seed");
    let seed_addr = seed.net_address().expect("listening");
    let mut member_config = driver_config(V4, discovering(), 0..64);
    member_config.node.discovery.seeds = vec![seed_addr];
    let member = Runtime::spawn(member_config).expect("member");
    let member_addr = member.net_address().expect("listening");

    // The traveller learns of `member` through the seed.
    let mut traveller_config = driver_config(V4, discovering(), 0..64);
    traveller_config.node.discovery.seeds = vec![seed_addr];
    let keypair = traveller_config.keypair.clone();
    let traveller = Runtime::spawn(traveller_config).expect("traveller");
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
    let mut restarted = driver_config(V4, discovering(), 0..64);
    restarted.keypair = keypair;
    restarted.address_book = data.load_address_book().expect("readable");
    assert!(restarted.address_book.is_some());
    let restarted = Runtime::spawn(restarted).expect("restarted");
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
    restarted.shutdown(std::time::Duration::from_secs(2));
    member.shutdown(std::time::Duration::from_secs(2));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_corrupt_book_is_refused_and_the_node_starts_empty() {
    let mut config = driver_config(V4, discovering(), 0..64);
    config.address_book = Some(b"not an address book".to_vec());
    let mut poll = mio::Poll::new().expect("poll");
    let driver = switchboard_mio::Driver::new(poll.registry(), config).expect("driver");
    assert!(driver.address_book_error().is_some());
    assert_eq!(driver.node().addr_book().len(), 0);
    let _ = poll.poll(&mut mio::Events::with_capacity(1), Some(Duration::ZERO));
}
