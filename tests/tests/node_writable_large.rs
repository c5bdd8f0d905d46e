//! `Writable` means room for the message refused: a large message refused behind a
//! half-empty queue is not answered while it still would not fit — neither an application
//! resending on `Writable` nor a protocol resending from its `writable` hook spins (found by
//! review: both did).

use std::time::Duration;

use switchboard::node::{NodeConfig, NodeEvent};
use switchboard::router::{Context, Protocol, ProtocolSpec};
use switchboard::{Bytes, ChannelConfig, ChannelId, PeerId, SendError};
use switchboard_sim::{Sim, SimConfig, test_node_config};

const BULK: u16 = 2;

fn channel() -> ChannelConfig {
    ChannelConfig {
        send_queue_bytes: 10_000,
        // Two small messages' worth: the rest waits in the queue while b takes nothing.
        receive_window: 2 * 1064,
        ..ChannelConfig::new(BULK)
    }
}

fn config() -> NodeConfig {
    let mut config = test_node_config();
    config.add_channel("bulk", 1, channel());
    config
}

fn writables(sim: &Sim, index: usize) -> usize {
    sim.log(index)
        .iter()
        .filter(|event| matches!(event, NodeEvent::Writable { .. }))
        .count()
}

#[test]
fn no_writable_while_the_refused_message_still_does_not_fit() {
    let mut sim = Sim::new(SimConfig::with_seed(7));
    let a = sim.add_node(config());
    let b = sim.add_node(config());
    let (now, b_address) = (sim.now(), sim.address(b));
    sim.node_mut(a).dial(now, b_address).expect("dial");
    assert!(sim.run_until(sim.now() + Duration::from_secs(2), |sim| {
        sim.node(a).peers().count() == 1
    }));
    let b_id = sim.node(b).peer_id();
    sim.set_polling(b, false);
    let now = sim.now();
    for _ in 0..5 {
        sim.node_mut(a)
            .send(now, &b_id, BULK, Bytes::from(vec![1u8; 1000]))
            .expect("room");
    }
    sim.run_for(Duration::from_millis(500));
    // 2 written (window), 3 queued: 3000 bytes <= half of 10_000. A large message: Full.
    let big = Bytes::from(vec![2u8; 8000]);
    let mut retries = 0;
    for _ in 0..50 {
        let now = sim.now();
        match sim.node_mut(a).send(now, &b_id, BULK, big.clone()) {
            Err(SendError::Full(_)) => {}
            other => panic!("expected Full, got {other:?}"),
        }
        let before = writables(&sim, a);
        sim.run_for(Duration::from_millis(10));
        if writables(&sim, a) > before {
            // The application does as told: sends again.
            retries += 1;
        }
    }
    // b took nothing: the queue never changed, yet each Full was answered by a Writable.
    assert_eq!(
        retries, 0,
        "{retries} Writables while nothing left the queue"
    );
}

/// Keeps one big message and resends it from its `writable` hook, as the docs ask.
#[derive(Default)]
struct Resender {
    kept: Option<(PeerId, Bytes)>,
    writable_calls: u32,
}

impl Protocol for Resender {
    fn spec(&self) -> ProtocolSpec {
        let mut spec = ProtocolSpec::new("resend", 1..=1, [BULK]);
        spec.channels[0] = channel();
        spec
    }

    fn message(&mut self, _: &mut Context<'_>, _: PeerId, _: ChannelId, _: Bytes) {}

    fn writable(&mut self, ctx: &mut Context<'_>, _peer: PeerId, _channel: ChannelId) {
        self.writable_calls += 1;
        if self.writable_calls > 10_000 {
            return; // stop the livelock so the test can report it
        }
        if let Some((peer, message)) = self.kept.take()
            && let Err(SendError::Full(message)) = ctx.send(&peer, BULK, message)
        {
            self.kept = Some((peer, message));
        }
    }
}

#[test]
fn a_protocol_resending_from_writable_does_not_spin() {
    let mut sim = Sim::new(SimConfig::with_seed(3));
    let a = sim.add_node_with_router(test_node_config(), |router| {
        router.register(Resender::default())?;
        Ok(())
    });
    let mut b_config = test_node_config();
    b_config.add_protocol(&Resender::default().spec());
    let b = sim.add_node(b_config);
    let (now, address) = (sim.now(), sim.address(b));
    sim.node_mut(a).dial(now, address).expect("dial");
    assert!(sim.run_until(sim.now() + Duration::from_secs(2), |sim| {
        sim.node(a).peers().count() == 1
    }));
    sim.set_polling(b, false);
    let b_id = sim.node(b).peer_id();
    for _ in 0..5 {
        sim.with_protocol::<Resender, _>(a, |_, ctx| {
            ctx.send(&b_id, BULK, Bytes::from(vec![1u8; 1000]))
                .expect("room")
        });
    }
    sim.run_for(Duration::from_millis(500));
    sim.with_protocol::<Resender, _>(a, |resender, ctx| {
        if let Err(SendError::Full(message)) = ctx.send(&b_id, BULK, Bytes::from(vec![2u8; 8000])) {
            resender.kept = Some((b_id, message));
        }
    });
    sim.run_for(Duration::from_millis(100));
    let resender = sim.protocol::<Resender>(a).expect("registered");
    assert!(resender.kept.is_some(), "still refused: b took nothing");
    assert!(
        resender.writable_calls <= 1,
        "writable hook called {} times with the queue unchanged (livelock)",
        resender.writable_calls
    );
}
