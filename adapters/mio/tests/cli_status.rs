//! `switchboard status` reads a node's `/status` and `/net_info` and prints a table: here
//! from a stub server answering fixed JSON, so the test needs no metrics listener.

#![cfg(unix)]

mod binary;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::thread;

use binary::run;

const STATUS: &str = r#"{"node_id":"3f2a9c0e5b7d11aa22bb33cc44dd55ee66ff778899aabbccddeeff0011223344","listen_addrs":["127.0.0.1:26656"],"external_address":null,"peers":{"inbound":1,"outbound":0}}"#;
const NET_INFO: &str = r#"{"peers":[{"id":"9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d","direction":"inbound","remote_addr":"127.0.0.1:40123","rtt_ms":1.5,"connected_s":42.4,"bytes_sent":1234,"bytes_received":5678,"channels":[{"channel":1,"bytes_sent":1000,"bytes_received":5000,"messages_sent":3,"messages_received":9}]}]}"#;

#[test]
fn status_prints_the_node_and_one_row_per_peer() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    thread::spawn(move || {
        for stream in listener.incoming().take(2) {
            let mut stream = stream.expect("accept");
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut request = String::new();
            reader.read_line(&mut request).expect("request line");
            let mut header = String::new();
            while reader
                .read_line(&mut header)
                .is_ok_and(|_| header != "\r\n")
            {
                header.clear();
            }
            let body = if request.starts_with("GET /net_info ") {
                NET_INFO
            } else {
                STATUS
            };
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(response.as_bytes()).expect("respond");
        }
    });
    let output = run(&["status", "--rpc", &addr.to_string()]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(stdout.contains("3f2a9c0e5b7d11aa22bb33cc"), "{stdout}");
    assert!(stdout.contains("127.0.0.1:26656"), "{stdout}");
    assert!(stdout.contains("1 inbound, 0 outbound"), "{stdout}");
    let row = stdout
        .lines()
        .find(|line| line.starts_with("9e8d7c6b5a4f"))
        .unwrap_or_else(|| panic!("no peer row: {stdout}"));
    for cell in [
        "inbound",
        "127.0.0.1:40123",
        "1.5 ms",
        "42 s",
        "1234",
        "5678",
    ] {
        assert!(row.contains(cell), "{cell} missing from {row:?}");
    }
}

#[test]
fn status_without_a_node_says_where_it_looked() {
    let port = binary::free_port();
    let output = run(&["status", &format!("--rpc=127.0.0.1:{port}")]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("http://127.0.0.1:{port}/status")),
        "{stderr}"
    );
}
