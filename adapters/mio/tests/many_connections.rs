//! One node holds 1,000 concurrent connections, each from a different node (one connection
//! per peer), all in one thread and one `mio::Poll`: 1,001 embedded drivers under
//! disjoint token ranges.

use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};
use switchboard::ChannelConfig;
use switchboard_mio::{Driver, NodeApi, fd_limit};

mod common;
use common::{CHANNEL, V4, driver_config, node_config};

const DIALERS: usize = 1000;
const HUB_TOKENS: usize = 2 * DIALERS;
const DIALER_TOKENS: usize = 2;

#[test]
fn one_node_holds_a_thousand_connections() {
    // Each connection costs two descriptors here (both ends live in this process), each
    // driver one more for its registry; 256 cover the listener, the poll, stdio and the
    // test harness. Fewer would make the drivers clamp their caps (`fd_limit`) and the
    // test would measure something else, so it raises the soft limit or fails.
    let needed = (3 * DIALERS + 256) as u64;
    let (soft, hard) = fd_limit::nofile_limit().expect("RLIMIT_NOFILE readable");
    if soft < needed {
        let raised = fd_limit::set_soft_nofile_limit(needed).unwrap_or_else(|error| {
            panic!("cannot raise the open-file limit from {soft} to {needed}: {error}")
        });
        assert!(
            raised >= needed,
            "the open-file limit is {soft} (hard limit {hard}) and cannot be raised to the \
             {needed} this test needs: raise the hard limit (`ulimit -Hn {needed}`) to run it"
        );
    }
    let mut poll = Poll::new().expect("poll");
    let mut hub_config = node_config(ChannelConfig::new(CHANNEL));
    hub_config.limits.max_inbound = DIALERS + 10;
    hub_config.limits.max_pending_handshakes = DIALERS + 10;
    hub_config.limits.max_pending_per_subnet = DIALERS + 10;
    hub_config.limits.max_inbound_per_ip = DIALERS + 10;
    hub_config.limits.max_inbound_per_subnet = DIALERS + 10;
    let mut hub = Driver::new(
        poll.registry(),
        driver_config(V4, hub_config, 0..HUB_TOKENS),
    )
    .expect("hub");
    assert_eq!(
        hub.limits().max_inbound,
        DIALERS + 10,
        "clamped by the fd limit"
    );
    let hub_addr = hub.net_address().expect("hub listens");

    let mut dialers: Vec<Driver> = (0..DIALERS)
        .map(|index| {
            let start = HUB_TOKENS + index * DIALER_TOKENS;
            let mut config = driver_config(V4, node_config(ChannelConfig::new(CHANNEL)), 0..0);
            config.listen.clear();
            config.tokens = start..start + DIALER_TOKENS;
            config.node.dial.dial_timeout = Duration::from_secs(60);
            let mut dialer = Driver::new(poll.registry(), config).expect("dialer");
            dialer.dial(hub_addr).expect("dial");
            dialer
        })
        .collect();

    let started = Instant::now();
    let mut events = Events::with_capacity(4096);
    while hub.node().peers().count() < DIALERS
        || dialers.iter().any(|d| d.node().peers().count() != 1)
    {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "only {} of {DIALERS} connected",
            hub.node().peers().count()
        );
        poll.poll(&mut events, Some(Duration::from_millis(20)))
            .expect("poll");
        for event in events.iter() {
            let Token(token) = event.token();
            if token < HUB_TOKENS {
                hub.handle_event(event);
            } else if let Some(dialer) = dialers.get_mut((token - HUB_TOKENS) / DIALER_TOKENS) {
                dialer.handle_event(event);
            }
        }
        for driver in std::iter::once(&mut hub).chain(dialers.iter_mut()) {
            while driver.poll_event().is_some() {}
        }
    }
    assert_eq!(hub.node().peers().count(), DIALERS);
    assert_eq!(hub.socket_count(), DIALERS);
    assert_eq!(hub.stats().accepted, DIALERS as u64);
    assert_eq!(hub.stats().refused, 0);
    eprintln!(
        "{DIALERS} connections established in {:.2} s",
        started.elapsed().as_secs_f64()
    );
}
