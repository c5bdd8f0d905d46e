//! A persistent peer killed (no GOAWAY, sockets just closed) and restarted on the same
//! address with the same key is redialed and reconnected; a clean shutdown reaches the
//! peer as GOAWAY(Quitting). Also over ::1.

use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use switchboard::node::NodeEvent;
use switchboard::{ChannelConfig, DisconnectReason, Keypair, NetAddress};
use switchboard_mio::{DriverConfig, NodeApi, Runtime};

mod common;
use common::{CHANNEL, V4, driver_config, node_config, wait_connected, wait_for};

fn fast_redial(config: &mut DriverConfig) {
    config.node.dial.backoff_base = Duration::from_millis(50);
    config.node.dial.backoff_cap = Duration::from_millis(300);
}

#[test]
fn killed_persistent_peer_is_redialed_after_restart() {
    let a_config = driver_config(V4, node_config(ChannelConfig::new(CHANNEL)), 0..64);
    let a_key = a_config.keypair.secret_bytes();
    let a = Runtime::spawn(a_config).expect("a starts");
    let a_addr = a.net_address().expect("a listens");

    let mut b_config = driver_config(V4, node_config(ChannelConfig::new(CHANNEL)), 0..64);
    fast_redial(&mut b_config);
    b_config.node.persistent_peers.push(a_addr);
    let b = Runtime::spawn(b_config).expect("b starts");
    wait_connected(b.events(), a_addr.peer_id().expect("id"));

    // Kill a: its sockets close without a word.
    a.abort();
    wait_for(
        b.events(),
        Duration::from_secs(10),
        "PeerDisconnected",
        |event| matches!(event, NodeEvent::PeerDisconnected { .. }).then_some(()),
    );
    // Let a few redials fail against the closed port, then restart a where it was.
    std::thread::sleep(Duration::from_millis(400));
    let restarted = DriverConfig::new(
        node_config(ChannelConfig::new(CHANNEL)),
        Keypair::from_secret_bytes(a_key),
        vec![a_addr.socket_addr()],
        0..64,
    );
    let a = Runtime::spawn(restarted).expect("a restarts on its old address");
    wait_connected(b.events(), a_addr.peer_id().expect("id"));
    wait_connected(a.events(), b.peer_id());

    // A clean shutdown tells b why.
    a.shutdown(std::time::Duration::from_secs(2));
    let reason = wait_for(
        b.events(),
        Duration::from_secs(10),
        "PeerDisconnected",
        |event| match event {
            NodeEvent::PeerDisconnected { reason, .. } => Some(reason),
            _ => None,
        },
    );
    assert_eq!(reason, DisconnectReason::Quitting);
    b.shutdown(std::time::Duration::from_secs(2));
}

#[test]
fn nodes_talk_over_ipv6_loopback() {
    let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
    let a = Runtime::spawn(driver_config(
        v6,
        node_config(ChannelConfig::new(CHANNEL)),
        0..64,
    ))
    .expect("a listens on ::1");
    let b = Runtime::spawn(driver_config(
        v6,
        node_config(ChannelConfig::new(CHANNEL)),
        0..64,
    ))
    .expect("b listens on ::1");
    let a_addr: NetAddress = a.net_address().expect("a listens");
    assert!(a_addr.socket_addr().is_ipv6());
    b.dial(a_addr).expect("dial");
    wait_connected(b.events(), a.peer_id());
    wait_connected(a.events(), b.peer_id());
    b.send(&a.peer_id(), CHANNEL, "over ::1".into())
        .expect("send");
    let message = wait_for(
        a.events(),
        Duration::from_secs(10),
        "Message",
        |event| match event {
            NodeEvent::Message { message, .. } => Some(message),
            _ => None,
        },
    );
    assert_eq!(&message[..], b"over ::1");
}
