//! `switchboard node --metrics ADDR` as an operator uses it: two nodes connected from their
//! config files, the first serving `/metrics` (which `promtool check metrics` accepts and
//! whose counters move with traffic), `/net_info` listing the peer, and `switchboard status`
//! printing it.

#![cfg(unix)]

mod binary;
mod scrape;

use std::time::{Duration, Instant};

use binary::{Home, NodeProcess, free_port, run};
use scrape::{promtool_check, sample};

/// The body of `GET path` on `addr`, which must answer 200.
fn get(addr: &str, path: &str) -> String {
    let (code, _, body) = scrape::get(addr, path);
    assert_eq!(code, 200, "{path}: {body}");
    body
}

#[test]
fn an_operator_scrapes_metrics_and_reads_status() {
    let (first_home, second_home) = (Home::init("ops-first"), Home::init("ops-second"));
    let rpc = format!("127.0.0.1:{}", free_port());
    first_home.set("metrics_laddr", &format!("\"{rpc}\""));
    let mut first = NodeProcess::start(&first_home.path, &[]);
    first.wait_for(&["serving /metrics"]);
    let first_addr = first.dial_address();
    second_home.set("persistent_peers", &format!(r#"["{first_addr}"]"#));
    let mut second = NodeProcess::start(&second_home.path, &[]);
    let second_id = second_home.node_id();
    first.wait_for(&["peer joined", &second_id]);

    // Refreshed once a second: wait until the peer shows in /net_info.
    let deadline = Instant::now() + Duration::from_secs(10);
    let net_info = loop {
        let net_info = get(&rpc, "/net_info");
        if net_info.contains(&second_id) {
            break net_info;
        }
        assert!(
            Instant::now() < deadline,
            "the peer never showed: {net_info}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let net_info: serde_json::Value = serde_json::from_str(&net_info).expect("JSON");
    let peer = &net_info["peers"][0];
    assert_eq!(peer["id"], second_id.as_str());
    assert_eq!(peer["direction"], "inbound");
    assert!(
        peer["remote_addr"]
            .as_str()
            .expect("addr")
            .starts_with("127.0.0.1:")
    );

    let status: serde_json::Value = serde_json::from_str(&get(&rpc, "/status")).expect("JSON");
    assert_eq!(status["node_id"], first_home.node_id().as_str());
    assert_eq!(status["peers"]["inbound"], 1);

    let metrics = get(&rpc, "/metrics");
    promtool_check(&metrics);
    assert_eq!(
        sample(&metrics, "switchboard_peers{direction=\"inbound\"}"),
        Some(1.0)
    );
    let handshakes = sample(
        &metrics,
        "switchboard_handshakes_total{direction=\"inbound\"}",
    );
    assert_eq!(handshakes, Some(1.0), "{metrics}");
    // `switchboard status` prints the same, as a table: the node, then a row for the peer.
    let status = run(&["status", "--rpc", &rpc]);
    assert!(status.status.success());
    let printed = String::from_utf8_lossy(&status.stdout);
    assert!(printed.contains(&first_home.node_id()), "{printed}");
    let row = printed
        .lines()
        .find(|line| line.starts_with(&second_id[..8]))
        .unwrap_or_else(|| panic!("no row for the peer: {printed}"));
    assert!(
        row.contains("inbound") && row.contains("127.0.0.1:"),
        "{row}"
    );

    // Traffic moves the byte counters: keepalive alone sends PINGs every few seconds; the
    // second node leaving is counted with its reason and side.
    let received_before = sample(&metrics, "switchboard_wire_received_bytes_total").expect("bytes");
    assert!(second.stop_with("TERM").success());
    first.wait_for(&["peer left", &second_id]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let metrics = loop {
        let metrics = get(&rpc, "/metrics");
        if sample(&metrics, "switchboard_peers{direction=\"inbound\"}") == Some(0.0) {
            break metrics;
        }
        assert!(Instant::now() < deadline, "the departure never showed");
        std::thread::sleep(Duration::from_millis(200));
    };
    promtool_check(&metrics);
    let quitting = "switchboard_disconnects_total{reason=\"quitting\",side=\"remote\"}";
    assert_eq!(sample(&metrics, quitting), Some(1.0), "{metrics}");
    let received_after = sample(&metrics, "switchboard_wire_received_bytes_total").expect("bytes");
    assert!(received_after >= received_before);
}
