//! A 16-node cluster on 127.0.0.1 (the demo's) converges, and every broadcast reaches
//! every peer its sender had.

use switchboard_mio::demo::{self, DemoConfig};

#[test]
fn sixteen_nodes_converge_and_every_broadcast_reaches_every_peer() {
    let report = demo::run(&DemoConfig::default()).expect("the demo runs");
    assert_eq!(report.nodes, 16);
    assert_eq!(report.connected_nodes, 16, "{report}");
    assert!(report.min_peers >= 1, "{report}");
    assert_eq!(
        report.max_peers, 15,
        "the seed has every other node: {report}"
    );
    assert_eq!(report.broadcasts, 16 * 10);
    assert!(report.expected_deliveries >= report.broadcasts, "{report}");
    assert_eq!(report.deliveries, report.expected_deliveries, "{report}");
    assert!(report.bytes_sent > report.deliveries * 1024, "{report}");
    let json = report.to_json();
    for key in [
        "nodes",
        "connected_nodes",
        "min_peers",
        "max_peers",
        "broadcasts",
        "deliveries",
        "expected_deliveries",
        "elapsed_s",
        "bytes_sent",
    ] {
        assert!(
            json.contains(&format!("\"{key}\":")),
            "{key} missing from {json}"
        );
    }
}

/// What a person reads: the `switchboard demo` binary prints its progress and a summary in
/// a few lines — the shutdown's hundreds of expected departures as one count, not a line
/// each.
#[test]
fn the_demo_binary_prints_a_few_readable_lines() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("demo")
        .output()
        .expect("the binary runs");
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines = stderr.lines().count() + stdout.lines().count();
    assert!(lines <= 25, "{lines} lines:\n{stderr}{stdout}");
    let shut_down = stderr
        .lines()
        .find(|line| line.contains("shut down:"))
        .unwrap_or_else(|| panic!("no shutdown summary:\n{stderr}"));
    assert!(shut_down.contains("Quitting"), "{shut_down}");
    assert!(
        stdout.contains("16 of 16 nodes connected"),
        "no summary:\n{stdout}"
    );
}
