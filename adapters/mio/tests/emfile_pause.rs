//! Out of file descriptors, the driver pauses accepting instead of spinning, and resumes
//! when descriptors are free again. The soft `RLIMIT_NOFILE` is lowered for this process,
//! which is why this is the only test in its binary.

#![cfg(target_os = "linux")]

use std::net::TcpStream;
use std::time::{Duration, Instant};

use mio::{Events, Poll};
use switchboard::ChannelConfig;
use switchboard_mio::{Driver, fd_limit};

mod common;
use common::{CHANNEL, V4, driver_config, node_config};

const CLIENTS: usize = 40;
const SPARE_FDS: u64 = 10;

fn open_fds() -> u64 {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count() as u64
}

/// Drives `driver` for `duration`; returns how many times the loop woke up.
fn drive(poll: &mut Poll, driver: &mut Driver, duration: Duration) -> usize {
    let mut events = Events::with_capacity(256);
    let end = Instant::now() + duration;
    let mut wakeups = 0;
    while Instant::now() < end {
        let left = end.saturating_duration_since(Instant::now());
        let timeout = driver.poll_timeout().map_or(left, |t| t.min(left));
        poll.poll(&mut events, Some(timeout)).expect("poll");
        wakeups += 1;
        for event in events.iter() {
            driver.handle_event(event);
        }
        while driver.poll_event().is_some() {}
    }
    wakeups
}

#[test]
fn accepting_pauses_on_emfile_without_spinning_and_resumes() {
    let (soft, _) = fd_limit::nofile_limit().expect("RLIMIT_NOFILE readable");
    let mut poll = Poll::new().expect("poll");
    let mut config = node_config(ChannelConfig::new(CHANNEL));
    config.limits.max_pending_handshakes = 2 * CLIENTS;
    config.limits.max_pending_per_subnet = 2 * CLIENTS;
    config.limits.max_inbound_per_ip = 2 * CLIENTS;
    config.limits.max_inbound_per_subnet = 2 * CLIENTS;
    let mut driver =
        Driver::new(poll.registry(), driver_config(V4, config, 0..1024)).expect("driver");
    let addr = driver.local_addrs()[0];
    // The kernel completes these connects from the listen backlog, before any accept.
    let clients: Vec<TcpStream> = (0..CLIENTS)
        .map(|_| TcpStream::connect(addr).expect("connect"))
        .collect();

    fd_limit::set_soft_nofile_limit(open_fds() + SPARE_FDS).expect("lower the limit");
    let wakeups = drive(&mut poll, &mut driver, Duration::from_millis(600));
    let paused = driver.stats();
    fd_limit::set_soft_nofile_limit(soft).expect("restore the limit");

    assert!(paused.accept_pauses >= 1, "{paused:?}");
    assert!(
        paused.accepted < CLIENTS as u64,
        "accepted all {CLIENTS} under the lowered limit: {paused:?}"
    );
    // One accept attempt per 100 ms pause: a handful of wakeups, not a spin.
    assert!(
        wakeups <= 30,
        "{wakeups} wakeups in 600 ms while out of descriptors"
    );

    drive(&mut poll, &mut driver, Duration::from_millis(400));
    let resumed = driver.stats();
    assert_eq!(resumed.accepted, CLIENTS as u64, "{resumed:?}");
    assert!(!driver.accept_paused());
    drop(clients);
}
