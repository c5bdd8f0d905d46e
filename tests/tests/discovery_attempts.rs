//! An address's attempt is counted when its dial starts, not when discovery picks it: a
//! dial that waits its turn (dials in flight are capped) or never starts does not keep the
//! address out of the next selections for the book's `reselect_after`.

use std::time::Duration;

use switchboard::peer_set::IpNet;
use switchboard_sim::{Sim, SimConfig};

mod common;
use common::discovery::{add_address, book, discovering, ip, last_attempt};

const DIAL_TIMEOUT: Duration = Duration::from_secs(2);

#[test]
fn a_dial_waiting_its_turn_is_attempted_when_it_starts() {
    let mut sim = Sim::new(SimConfig::with_seed(9));
    let mut config = discovering(Vec::new());
    config.node.limits.max_outbound = 2;
    config.node.dial.max_in_flight = 1;
    config.node.dial.dial_timeout = DIAL_TIMEOUT;
    config.discovery.interval = Duration::from_secs(1);
    let node = config.add_at(&mut sim, ip(0));
    // Dials to both are swallowed: each holds the one dial slot until it times out.
    let [first, second] = [1, 2].map(|index| {
        let silent = discovering(Vec::new()).add_at(&mut sim, ip(index));
        sim.set_swallowing_dials(silent, true);
        silent
    });
    let [first_addr, second_addr] = [first, second].map(|silent| sim.address(silent));

    let _ = add_address(&mut sim, node, first_addr);
    sim.run_for(Duration::from_millis(10));
    let first_dialed = last_attempt(&sim, node, first).expect("dialed at once");

    // `second` is picked at the next discovery tick and waits for the first dial to time
    // out before it starts.
    let _ = add_address(&mut sim, node, second_addr);
    sim.run_for(Duration::from_millis(1_500));
    assert_eq!(
        last_attempt(&sim, node, second),
        None,
        "picked, waiting: not attempted yet"
    );
    sim.run_until(first_dialed + DIAL_TIMEOUT + DIAL_TIMEOUT / 2, |_| false);
    assert_eq!(
        last_attempt(&sim, node, second),
        Some(first_dialed + DIAL_TIMEOUT)
    );
}

#[test]
fn an_address_outside_the_allowed_networks_leaves_the_book_on_its_first_dial() {
    let mut sim = Sim::new(SimConfig::with_seed(10));
    let mut config = discovering(Vec::new());
    config.discovery.interval = Duration::from_secs(1);
    // Only the node's own /16 is allowed: its peer's address never can be dialed.
    config.node.allowed_networks = vec![IpNet {
        addr: ip(0),
        prefix: 16,
    }];
    let node = config.add_at(&mut sim, ip(0));
    let outside = discovering(Vec::new()).add_at(&mut sim, ip(1));
    let outside_addr = sim.address(outside);
    let _ = add_address(&mut sim, node, outside_addr);
    assert!(book(&sim, node).contains(&outside_addr.socket_addr()));
    sim.run_for(Duration::from_secs(3));
    assert!(
        !book(&sim, node).contains(&outside_addr.socket_addr()),
        "an address the allow-list refuses is forgotten, not retried"
    );
    assert_eq!(sim.node(node).peers().count(), 0);
}
