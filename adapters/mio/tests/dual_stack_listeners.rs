//! An IPv4 and an IPv6 wildcard listener on the same port coexist (the IPv6 one is
//! IPv6-only), and peers reach the node through each: over 127.0.0.1 and over ::1.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};

use switchboard::{ChannelConfig, NetAddress};
use switchboard_mio::{DriverConfig, NodeApi, Runtime};

mod common;
use common::{CHANNEL, V4, driver_config, node_config, wait_connected};

#[test]
fn ipv4_and_ipv6_wildcard_listeners_share_a_port() {
    // A port free on both families, found by binding it and letting go.
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|probe| probe.local_addr())
        .expect("a free port")
        .port();
    let listen = vec![
        SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
        SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
    ];
    let mut rng = switchboard_mio::os_seeded_rng().expect("OS randomness");
    let hub = Runtime::spawn(DriverConfig::new(
        node_config(ChannelConfig::new(CHANNEL)),
        switchboard::Keypair::generate(&mut rng),
        listen.clone(),
        0..64,
    ))
    .expect("0.0.0.0 and [::] on one port: the IPv6 listener is IPv6-only");
    assert_eq!(hub.local_addrs(), listen);

    for ip in [V4, IpAddr::V6(Ipv6Addr::LOCALHOST)] {
        let peer = Runtime::spawn(driver_config(
            ip,
            node_config(ChannelConfig::new(CHANNEL)),
            0..64,
        ))
        .expect("peer");
        let target = NetAddress::new(Some(hub.peer_id()), SocketAddr::new(ip, port));
        peer.dial(target).expect("dial");
        wait_connected(peer.events(), hub.peer_id());
        wait_connected(hub.events(), peer.peer_id());
        peer.shutdown(std::time::Duration::from_secs(2));
    }
    hub.shutdown(std::time::Duration::from_secs(2));
}
