//! A crashed node's peers see its links reset; it restarts with the same key (same
//! `PeerId`), reconnects, and the persistence hook carries its saved state across.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use switchboard::node::NodeEvent;
use switchboard_sim::{Sim, SimConfig, SimError, test_node_config};

#[test]
fn a_crashed_node_restarts_with_its_key_and_persisted_state() {
    let mut sim = Sim::new(SimConfig::with_seed(9));
    // On a router (without protocols): what the persistence hooks save and restore.
    let a = sim.add_node_with_router(test_node_config(), |_| Ok(()));
    let mut config = test_node_config();
    config.dial.backoff_base = Duration::from_millis(200);
    config.dial.backoff_cap = Duration::from_secs(1);
    config.persistent_peers.push(sim.address(a));
    let b = sim.add_node(config);
    let a_id = sim.node(a).peer_id();
    let b_id = sim.node(b).peer_id();
    // The state a real node would persist is its address book; here, its peer list.
    let restored: Rc<RefCell<Option<Vec<u8>>>> = Rc::default();
    let sink = restored.clone();
    sim.set_persistence(
        Box::new(|router, _now| {
            router
                .node()
                .peers()
                .flat_map(|peer| peer.to_string().into_bytes())
                .collect()
        }),
        Box::new(move |_router, _now, bytes| *sink.borrow_mut() = Some(bytes.to_vec())),
    );
    sim.run_for(Duration::from_secs(1));
    assert_eq!(sim.node(a).peers().collect::<Vec<_>>(), [b_id]);

    let crashed = sim.crash(a).unwrap();
    assert_eq!(crashed.persisted, Some(b_id.to_string().into_bytes()));
    assert!(!sim.is_alive(a));
    assert!(matches!(sim.crash(a), Err(SimError::NotAlive(_))));
    sim.run_for(Duration::from_millis(100));
    assert!(
        sim.log(b).iter().any(|event| matches!(
            event,
            NodeEvent::PeerDisconnected { peer, .. } if *peer == a_id
        )),
        "b never saw a's links reset: {:?}",
        sim.log(b)
    );
    assert_eq!(sim.node(b).peers().count(), 0);

    // Down for a while: b's persistent redials are refused.
    sim.run_for(Duration::from_secs(2));
    assert_eq!(sim.node(b).peers().count(), 0);

    assert_eq!(sim.restart(crashed).unwrap(), a);
    assert_eq!(sim.node(a).peer_id(), a_id, "same key after the restart");
    assert_eq!(*restored.borrow(), Some(b_id.to_string().into_bytes()));
    let now = sim.now();
    assert!(
        sim.run_until(now + Duration::from_secs(3), |sim| {
            sim.node(a).peers().count() == 1 && sim.node(b).peers().count() == 1
        }),
        "b did not reconnect to the restarted a"
    );
    assert_eq!(sim.node(b).peers().collect::<Vec<_>>(), [a_id]);
    sim.finish_checks();
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}
