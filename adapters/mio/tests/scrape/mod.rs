//! Scraping the ops endpoints as a client would, for the tests that check them: a plain
//! HTTP GET, one sample out of a Prometheus exposition, and `promtool`'s verdict on it.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::{Command, Stdio};
use std::time::Duration;

/// `GET path` over a fresh connection: the status code, the content type and the body.
pub fn get(addr: impl ToSocketAddrs + std::fmt::Display, path: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(&addr).expect("connect to the ops server");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    let (head, body) = response.split_once("\r\n\r\n").expect("a head and a body");
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("a status code");
    let content_type = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-type")
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_default();
    (code, content_type, body.to_owned())
}

/// The value of the sample `series` (name and labels as exposed), failing when absent.
pub fn value(exposition: &str, series: &str) -> f64 {
    sample(exposition, series).unwrap_or_else(|| {
        panic!(
            "no sample {series} in:
{exposition}"
        )
    })
}

/// The value of the sample `series`, if exposed.
pub fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

/// `promtool check metrics` accepts `exposition`; fails the test if promtool is missing.
pub fn promtool_check(exposition: &str) {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = child.unwrap_or_else(|error| {
        panic!(
            "cannot run promtool ({error}): install it with `apt-get install -y prometheus` \
             (Debian package `prometheus`, which provides /usr/bin/promtool)"
        )
    });
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(exposition.as_bytes())
        .expect("write to promtool");
    let output = child.wait_with_output().expect("promtool");
    assert!(
        output.status.success(),
        "promtool check metrics refused the exposition:\n{}{}\n---\n{exposition}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
}
