//! The ops endpoints on real sockets: two runtimes on 127.0.0.1 exchange messages, and the
//! dialing node's `/metrics`, `/status` and `/net_info` are fetched over HTTP.

mod common;
mod scrape;

use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use common::{CHANNEL, V4, driver_config, node_config, wait_connected, wait_for};
use scrape::{get, promtool_check, value};
use switchboard::node::NodeEvent;
use switchboard::{ChannelConfig, DisconnectReason, NetAddress};
use switchboard_mio::ops::{NetInfo, Ops, OpsServer, Status};
use switchboard_mio::{Handle, NodeApi, Runtime};

const WAIT: Duration = Duration::from_secs(20);
const MESSAGE_LEN: usize = 1000;

fn start() -> Handle {
    let config = node_config(ChannelConfig::new(CHANNEL));
    Runtime::spawn(driver_config(V4, config, 0..64)).expect("runtime")
}

/// `a` with its ops, dialed to `b` and connected; every event of `a` read so far observed.
struct Pair {
    a: Handle,
    b: Handle,
    ops: Ops,
    server: OpsServer,
}

impl Pair {
    fn connect() -> Pair {
        let (a, b) = (start(), start());
        let ops = Ops::new(a.local_addrs());
        let server = ops.serve(SocketAddr::new(V4, 0)).expect("ops server");
        a.dial(b.net_address().expect("listening")).expect("dial");
        wait_connected(b.events(), a.peer_id());
        let mut pair = Pair { a, b, ops, server };
        pair.a_waits_for("PeerConnected", |event| {
            matches!(event, NodeEvent::PeerConnected { .. })
        });
        pair
    }

    /// Reads `a`'s events, each observed, until `pick` accepts one.
    fn a_waits_for(&mut self, what: &str, mut pick: impl FnMut(&NodeEvent) -> bool) {
        let ops = &self.ops;
        wait_for(self.a.events(), WAIT, what, |event| {
            ops.observe(&event);
            pick(&event).then_some(())
        });
    }

    /// `a` sends `count` messages to `b`, which reads them all.
    fn a_sends(&self, count: usize) {
        for _ in 0..count {
            self.a
                .send(&self.b.peer_id(), CHANNEL, vec![7; MESSAGE_LEN].into())
                .expect("send");
        }
        for _ in 0..count {
            wait_for(self.b.events(), WAIT, "Message", |event| {
                matches!(event, NodeEvent::Message { .. }).then_some(())
            });
        }
    }

    fn metrics(&self) -> String {
        let (code, _, body) = get(self.server.local_addr(), "/metrics");
        assert_eq!(code, 200, "{body}");
        body
    }
}

#[test]
fn metrics_follow_traffic_per_channel_and_count_a_disconnect_by_reason_and_side() {
    let mut pair = Pair::connect();
    pair.a_sends(10);
    for _ in 0..3 {
        let message = vec![1; MESSAGE_LEN].into();
        pair.b
            .send(&pair.a.peer_id(), CHANNEL, message)
            .expect("send");
        pair.a_waits_for("Message", |event| {
            matches!(event, NodeEvent::Message { .. })
        });
    }
    assert!(pair.ops.refresh(&pair.a));
    let first = pair.metrics();
    let sent = r#"switchboard_channel_sent_messages_total{channel="1"}"#;
    let sent_bytes = r#"switchboard_channel_sent_bytes_total{channel="1"}"#;
    assert_eq!(value(&first, sent), 10.0);
    assert_eq!(value(&first, sent_bytes), 10_000.0);
    let received = r#"switchboard_channel_received_messages_total{channel="1"}"#;
    assert_eq!(value(&first, received), 3.0);
    let delivered = r#"switchboard_messages_delivered_total{channel="1"}"#;
    assert_eq!(value(&first, delivered), 3.0);
    let outbound = r#"switchboard_handshakes_total{direction="outbound"}"#;
    assert_eq!(value(&first, outbound), 1.0);
    assert_eq!(
        value(&first, r#"switchboard_dials_total{outcome="connected"}"#),
        1.0
    );
    let peers = r#"switchboard_peers{direction="outbound"}"#;
    assert_eq!(value(&first, peers), 1.0);
    assert!(value(&first, "switchboard_wire_sent_bytes_total") > 10_000.0);

    pair.a_sends(5);
    assert!(pair.ops.refresh(&pair.a));
    let second = pair.metrics();
    assert_eq!(value(&second, sent), 15.0);
    assert_eq!(value(&second, sent_bytes), 15_000.0);

    pair.b
        .disconnect(&pair.a.peer_id(), DisconnectReason::Requested);
    pair.a_waits_for("PeerDisconnected", |event| {
        matches!(event, NodeEvent::PeerDisconnected { .. })
    });
    assert!(pair.ops.refresh(&pair.a));
    let after = pair.metrics();
    let disconnects = r#"switchboard_disconnects_total{reason="requested",side="remote"}"#;
    assert_eq!(value(&after, disconnects), 1.0);
    assert_eq!(value(&after, peers), 0.0);
    assert_eq!(
        value(&after, sent),
        15.0,
        "a peer leaving takes nothing off the counters"
    );
}

#[test]
fn status_and_net_info_name_the_node_and_its_peer() {
    let pair = Pair::connect();
    let addr = pair.server.local_addr();
    let (code, _, body) = get(addr, "/status");
    assert_eq!(code, 503, "no snapshot before the first refresh: {body}");

    pair.a_sends(2);
    assert!(pair.ops.refresh(&pair.a));
    let (code, content_type, body) = get(addr, "/status");
    assert_eq!((code, content_type.as_str()), (200, "application/json"));
    let status: Status = serde_json::from_str(&body).expect("status JSON");
    assert_eq!(status.node_id, pair.a.peer_id().to_string());
    assert_eq!(status.listen_addrs, pair.a.local_addrs());
    assert_eq!(status.network, "mio-tests");
    assert_eq!((status.peers.inbound, status.peers.outbound), (0, 1));
    // The address advertised: the first listener's, as none was configured.
    assert_eq!(
        status.external_address,
        pair.a.local_addrs().first().copied()
    );
    let raw: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(raw["node_id"], pair.a.peer_id().to_string());
    assert_eq!(raw["peers"]["outbound"], 1);

    let (code, _, body) = get(addr, "/net_info");
    assert_eq!(code, 200);
    let net_info: NetInfo = serde_json::from_str(&body).expect("net_info JSON");
    let [peer] = net_info.peers.as_slice() else {
        panic!("one peer expected: {body}");
    };
    assert_eq!(peer.id, pair.b.peer_id().to_string());
    assert_eq!(peer.direction, "outbound");
    assert_eq!(peer.remote_addr, pair.b.local_addrs()[0]);
    assert!(peer.connected_s >= 0.0 && peer.connected_s < WAIT.as_secs_f64());
    let channel = peer
        .channels
        .iter()
        .find(|channel| channel.channel == CHANNEL)
        .expect("the test channel");
    assert_eq!(channel.messages_sent, 2);
    assert_eq!(channel.bytes_sent, 2 * MESSAGE_LEN as u64);
    assert!(
        peer.bytes_sent > channel.bytes_sent,
        "the wire carries more"
    );

    assert_eq!(get(addr, "/nowhere").0, 404);
}

/// The query-connection and ban gauges follow the node: a query connection `b` opens to
/// `a` counts on each side (and takes no peer slot) until it closes idle; bans count
/// against the configured `max_bans`. Then `promtool` accepts the exposition.
#[test]
fn query_connections_and_bans_are_gauged() {
    let start = |tokens| {
        let mut config = node_config(ChannelConfig::new(CHANNEL));
        config.limits.query_idle_timeout = Duration::from_millis(500);
        config.max_bans = 100;
        Runtime::spawn(driver_config(V4, config, tokens)).expect("runtime")
    };
    let (a, b) = (start(0..64), start(64..128));
    let (a_ops, b_ops) = (Ops::new(a.local_addrs()), Ops::new(b.local_addrs()));
    let exposition = |ops: &Ops, node: &Handle| {
        assert!(ops.refresh(node));
        let state = ops.state().lock().expect("ops state");
        state.metrics.encode()
    };
    let inbound = r#"switchboard_query_connections{direction="inbound"}"#;
    let outbound = r#"switchboard_query_connections{direction="outbound"}"#;
    assert_eq!(value(&exposition(&a_ops, &a), inbound), 0.0);

    let a_addr = a.net_address().expect("listening");
    b.with_node(move |node, now| node.open_query(now, a_addr, "test"))
        .expect("running")
        .expect("query opened");
    for (node, ops) in [(&a, &a_ops), (&b, &b_ops)] {
        wait_for(node.events(), WAIT, "QueryConnected", |event| {
            ops.observe(&event);
            matches!(event, NodeEvent::QueryConnected { .. }).then_some(())
        });
    }
    let metrics = exposition(&a_ops, &a);
    assert_eq!(value(&metrics, inbound), 1.0, "{metrics}");
    assert_eq!(value(&metrics, outbound), 0.0, "{metrics}");
    assert_eq!(
        value(&metrics, r#"switchboard_peers{direction="inbound"}"#),
        0.0
    );
    let metrics = exposition(&b_ops, &b);
    assert_eq!(value(&metrics, outbound), 1.0, "{metrics}");

    // A port nobody listens on: b's query fails, counted by reason.
    let closed = std::net::TcpListener::bind(SocketAddr::new(V4, 0)).expect("bind");
    let closed_addr = NetAddress::new(None, closed.local_addr().expect("address"));
    drop(closed);
    b.with_node(move |node, now| node.open_query(now, closed_addr, "test"))
        .expect("running")
        .expect("query opened");
    wait_for(b.events(), WAIT, "QueryFailed", |event| {
        b_ops.observe(&event);
        matches!(event, NodeEvent::QueryFailed { .. }).then_some(())
    });
    let metrics = exposition(&b_ops, &b);
    let failed = r#"switchboard_query_failures_total{reason="network_error"}"#;
    assert_eq!(value(&metrics, failed), 1.0, "{metrics}");
    promtool_check(&metrics);

    // Idle for 500 ms: closed, by either end.
    let opened = Instant::now();
    wait_for(a.events(), WAIT, "QueryDisconnected", |event| {
        matches!(event, NodeEvent::QueryDisconnected { .. }).then_some(())
    });
    assert!(opened.elapsed() >= Duration::from_millis(400));
    let metrics = exposition(&a_ops, &a);
    assert_eq!(value(&metrics, inbound), 0.0, "{metrics}");

    a.ban_peer(&b.peer_id(), Duration::from_secs(3600));
    a.ban_ip("192.0.2.1".parse().expect("IP"), Duration::from_secs(3600));
    let metrics = exposition(&a_ops, &a);
    assert_eq!(value(&metrics, "switchboard_bans_held"), 2.0, "{metrics}");
    assert_eq!(value(&metrics, "switchboard_bans_max"), 100.0, "{metrics}");
    promtool_check(&metrics);
}

#[test]
fn metrics_are_served_as_prometheus_text_until_the_server_stops() {
    let pair = Pair::connect();
    assert!(pair.ops.refresh(&pair.a));
    let addr = pair.server.local_addr();
    let (code, content_type, body) = get(addr, "/metrics");
    assert_eq!(code, 200);
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    assert!(body.contains("# HELP switchboard_peers "), "{body}");

    pair.server.stop();
    // tiny_http lets go of the listening socket from its own thread, soon after.
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(addr).is_ok() {
        assert!(Instant::now() < deadline, "still listening after stop");
        thread::sleep(Duration::from_millis(10));
    }
}

/// `promtool check metrics` on the exposition, after traffic, a
/// disconnection and a failed dial gave every kind of series a sample.
#[test]
fn promtool_accepts_the_exposition() {
    let mut pair = Pair::connect();
    pair.a_sends(3);
    assert!(pair.ops.refresh(&pair.a)); // the traffic, sampled while connected
    pair.b
        .disconnect(&pair.a.peer_id(), DisconnectReason::Requested);
    pair.a_waits_for("PeerDisconnected", |event| {
        matches!(event, NodeEvent::PeerDisconnected { .. })
    });
    // A port nobody listens on: the dial fails.
    let closed = std::net::TcpListener::bind(SocketAddr::new(V4, 0)).expect("bind");
    let closed_addr = closed.local_addr().expect("address");
    drop(closed);
    pair.a
        .dial(NetAddress::new(None, closed_addr))
        .expect("dial");
    pair.a_waits_for("DialFailed", |event| {
        matches!(event, NodeEvent::DialFailed { .. })
    });
    assert!(pair.ops.refresh(&pair.a));

    let exposition = pair.metrics();
    let failure = r#"switchboard_handshake_failures_total{direction="outbound""#;
    assert!(exposition.contains(failure), "{exposition}");
    promtool_check(&exposition);
}
