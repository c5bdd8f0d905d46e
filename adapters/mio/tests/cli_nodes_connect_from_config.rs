//! Two `switchboard node` processes connect from their config files alone: the second
//! lists the first in `persistent_peers`. Each logs the other joining, with its fields, and
//! the first logs the second leaving when it stops.

#![cfg(unix)]

mod binary;

use binary::{Home, NodeProcess, field};

#[test]
fn two_nodes_connect_from_config_and_log_joins_and_leaves() {
    let (first_home, second_home) = (Home::init("pair-first"), Home::init("pair-second"));
    let mut first = NodeProcess::start(&first_home.path, &[]);
    let first_addr = first.dial_address();
    second_home.set("persistent_peers", &format!(r#"["{first_addr}"]"#));
    let mut second = NodeProcess::start(&second_home.path, &[]);
    let (first_id, second_id) = (first_home.node_id(), second_home.node_id());

    let joined = second.wait_for(&["peer joined", &first_id]);
    assert_eq!(field(&joined, "direction"), "outbound", "{joined}");
    assert_eq!(
        field(&joined, "addr"),
        first_addr.split('@').nth(1).expect("ID@IP:PORT"),
        "{joined}"
    );
    let joined = first.wait_for(&["peer joined", &second_id]);
    assert_eq!(field(&joined, "direction"), "inbound", "{joined}");
    assert!(field(&joined, "addr").starts_with("127.0.0.1:"), "{joined}");
    assert_eq!(field(&joined, "peers"), "1", "{joined}");

    assert!(second.stop_with("TERM").success());
    let left = first.wait_for(&["peer left", &second_id]);
    assert_eq!(field(&left, "reason"), "\"node quitting\"", "{left}");
    assert_eq!(field(&left, "by"), "peer", "{left}");
    assert_eq!(field(&left, "peers"), "0", "{left}");
}
