//! A non-blocking connect to a closed port fails through the writable-readiness check
//! (`take_error`/`peer_addr`) and reaches the application as `DialFailed`.

use std::net::TcpListener;
use std::time::Duration;

use switchboard::DisconnectReason;
use switchboard::node::NodeEvent;
use switchboard::{ChannelConfig, NetAddress};
use switchboard_mio::{NodeApi, Runtime};

mod common;
use common::{CHANNEL, V4, driver_config, node_config, wait_for};

#[test]
fn dial_to_a_closed_port_reports_dial_failed() {
    // A port that was just free: bind, note it, close.
    let closed = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port");
    let node = Runtime::spawn(driver_config(
        V4,
        node_config(ChannelConfig::new(CHANNEL)),
        0..16,
    ))
    .expect("node");
    node.dial(NetAddress::new(None, closed))
        .expect("dial queued");
    let failed = wait_for(
        node.events(),
        Duration::from_secs(10),
        "DialFailed",
        |event| match event {
            NodeEvent::DialFailed {
                addr,
                reason,
                detail,
                ..
            } => Some((addr, reason, detail)),
            _ => None,
        },
    );
    let (addr, reason, detail) = failed;
    assert_eq!(addr.socket_addr(), closed);
    // The OS's own words, not "transport closed during the handshake".
    assert_eq!(reason, DisconnectReason::NetworkError);
    assert!(
        detail.starts_with("connect failed: ") && detail.to_lowercase().contains("refused"),
        "{detail}"
    );
    assert!(node.peers().is_empty());
    assert_eq!(node.stats().expect("running").accepted, 0);
}
