//! `switchboard node`'s log lines for what goes wrong, each one line with its fields: a
//! failed dial with the OS's error and when it is retried, and an inbound handshake the
//! node refused with where it came from and why, and (at debug) a socket refused on accept.

#![cfg(unix)]

mod binary;

use std::net::TcpStream;
use std::time::Duration;

use binary::{Home, NodeProcess, field, free_port};
use switchboard::ChannelConfig;
use switchboard::node::NodeConfig;
use switchboard_mio::{DriverConfig, NodeApi, Runtime};

#[test]
fn a_failed_dial_logs_the_os_error_and_the_retry_time() {
    let home = Home::init("dial-failed");
    let port = free_port();
    home.set("persistent_peers", &format!(r#"["127.0.0.1:{port}"]"#));
    let mut node = NodeProcess::start(&home.path, &[]);
    let line = node.wait_for(&["dial failed", &format!("addr=127.0.0.1:{port}")]);
    assert_eq!(field(&line, "reason"), "\"network error\"", "{line}");
    assert!(field(&line, "detail").contains("(os error 111)"), "{line}");
    let retry = field(&line, "retry");
    assert!(
        retry.starts_with("\"in ") && retry.ends_with("s\""),
        "{line}"
    );
    assert!(!line.contains("Instant"), "a Debug dump: {line}");
}

#[test]
fn a_refused_inbound_handshake_logs_the_remote_and_the_reason() {
    let home = Home::init("inbound-refused");
    home.set("max_num_inbound_peers", "0");
    let mut node = NodeProcess::start(&home.path, &[]);
    let target = node.dial_address().parse().expect("ID@IP:PORT");
    // A node on the same network and channel: only the inbound cap refuses it.
    let mut config = NodeConfig::new("switchboard", "cli-log-test");
    config.add_channel("switchboard", 1, ChannelConfig::new(1));
    let listen = vec!["127.0.0.1:0".parse().expect("address")];
    let dialer = Runtime::spawn(DriverConfig::with_new_key(config, listen).expect("key"))
        .expect("dialer starts");
    dialer.dial(target).expect("dial");
    let line = node.wait_for(&["inbound handshake refused", &dialer.peer_id().to_string()]);
    assert!(field(&line, "remote").starts_with("127.0.0.1:"), "{line}");
    assert_eq!(field(&line, "reason"), "\"too many peers\"", "{line}");
    assert_eq!(field(&line, "by"), "us", "{line}");
    dialer.shutdown(Duration::from_secs(1));
}

#[test]
fn a_socket_refused_on_accept_is_logged_at_debug() {
    let home = Home::init("accept-refused");
    home.set("max_inbound_per_ip", "0");
    let mut node = NodeProcess::start(&home.path, &["--log-level", "debug"]);
    let dial = node.dial_address();
    let addr = dial.split('@').nth(1).expect("ID@IP:PORT");
    let _socket = TcpStream::connect(addr).expect("connect");
    let line = node.wait_for(&["accepted socket refused", "DEBUG"]);
    assert!(field(&line, "remote").starts_with("127.0.0.1:"), "{line}");
    assert!(
        line.contains("reason=too many connections from this IP"),
        "{line}"
    );
}

#[test]
fn a_query_connection_is_logged_at_debug_when_it_opens_and_when_it_closes_idle() {
    let home = Home::init("query-connection");
    // Sooner than the dialer's own 5 s: the node closes it, which shows the key reached it.
    home.set("query_idle_timeout", "\"500ms\"");
    let mut node = NodeProcess::start(&home.path, &["--log-level", "debug"]);
    let target: switchboard::NetAddress = node.dial_address().parse().expect("ID@IP:PORT");
    let mut config = NodeConfig::new("switchboard", "cli-log-test");
    config.add_channel("switchboard", 1, ChannelConfig::new(1));
    let listen = vec!["127.0.0.1:0".parse().expect("address")];
    let dialer = Runtime::spawn(DriverConfig::with_new_key(config, listen).expect("key"))
        .expect("dialer starts");
    dialer
        .with_node(move |node, now| node.open_query(now, target, "switchboard"))
        .expect("running")
        .expect("query opened");
    let dialer_id = dialer.peer_id().to_string();
    let line = node.wait_for(&["query connection opened", &dialer_id]);
    assert!(line.contains("DEBUG"), "{line}");
    assert_eq!(field(&line, "direction"), "inbound", "{line}");
    assert_eq!(field(&line, "offers"), "switchboard", "{line}");
    assert_eq!(field(&line, "agent"), "cli-log-test", "{line}");
    let line = node.wait_for(&["query connection closed", &dialer_id]);
    assert_eq!(field(&line, "reason"), "\"disconnect requested\"", "{line}");
    assert_eq!(field(&line, "by"), "us", "{line}");
    assert_eq!(
        field(&line, "detail"),
        "\"query connection idle\"",
        "{line}"
    );
    dialer.shutdown(Duration::from_secs(1));
}
