//! A protocol's answer into a full queue is not lost: `Context::send` hands it back
//! (`Full`), the protocol keeps it, and the router calls its `writable` hook once the
//! queue has room, where it sends what it kept — end to end, on the simulated network.

use std::collections::VecDeque;
use std::time::Duration;

use switchboard::node::{NodeConfig, NodeEvent};
use switchboard::router::{Context, Protocol, ProtocolSpec};
use switchboard::{Bytes, ChannelId, PeerId, SendError};
use switchboard_sim::{Sim, SimConfig, test_node_config};

const ASK: ChannelId = 5;
const REQUESTS: u32 = 40;

/// Answers every request with its number, keeping the answers a full queue refused.
#[derive(Default)]
struct Answerer {
    kept: VecDeque<(PeerId, Bytes)>,
    refused: u32,
    writable_calls: u32,
}

fn spec() -> ProtocolSpec {
    let mut spec = ProtocolSpec::new("answer", 1..=1, [ASK]);
    // A queue of 4 answers and a window of two: the asker's silence fills it at once.
    spec.channels[0].send_queue_messages = 4;
    spec.channels[0].receive_window = 2 * 72;
    spec
}

impl Answerer {
    fn send_kept(&mut self, ctx: &mut Context<'_>) {
        while let Some((peer, answer)) = self.kept.pop_front() {
            if let Err(SendError::Full(answer)) = ctx.send(&peer, ASK, answer) {
                self.refused += 1;
                self.kept.push_front((peer, answer));
                return;
            }
        }
    }
}

impl Protocol for Answerer {
    fn spec(&self) -> ProtocolSpec {
        spec()
    }

    fn message(&mut self, ctx: &mut Context<'_>, peer: PeerId, _: ChannelId, message: Bytes) {
        self.kept.push_back((peer, message));
        self.send_kept(ctx);
    }

    fn writable(&mut self, ctx: &mut Context<'_>, _peer: PeerId, channel: ChannelId) {
        assert_eq!(channel, ASK);
        self.writable_calls += 1;
        self.send_kept(ctx);
    }
}

fn asker_config() -> NodeConfig {
    let mut config = test_node_config();
    config.add_protocol(&spec());
    config
}

#[test]
fn an_answer_refused_as_full_goes_out_from_the_writable_hook() {
    let mut sim = Sim::new(SimConfig::with_seed(3));
    let answerer = sim.add_node_with_router(test_node_config(), |router| {
        router.register(Answerer::default())?;
        Ok(())
    });
    let asker = sim.add_node(asker_config());
    let (now, address) = (sim.now(), sim.address(answerer));
    sim.node_mut(asker).dial(now, address).expect("dial");
    assert!(sim.run_until(sim.now() + Duration::from_secs(2), |sim| {
        sim.node(asker).peers().count() == 1 && sim.node(answerer).peers().count() == 1
    }));
    // The asker's application stops taking messages: answers pile up at the answerer.
    sim.set_polling(asker, false);
    let to = sim.node(answerer).peer_id();
    for number in 0..REQUESTS {
        let now = sim.now();
        sim.node_mut(asker)
            .send(now, &to, ASK, Bytes::from(number.to_be_bytes().to_vec()))
            .expect("room for the requests");
        sim.run_for(Duration::from_millis(50));
    }
    let answerer_state = sim.protocol::<Answerer>(answerer).expect("registered");
    assert!(answerer_state.refused > 0, "the queue never filled");
    assert!(!answerer_state.kept.is_empty(), "nothing waited for room");
    assert_eq!(
        answerer_state.writable_calls, 0,
        "room without the asker taking"
    );

    sim.set_polling(asker, true);
    sim.run_for(Duration::from_secs(2));
    let answers: Vec<u32> = sim
        .log(asker)
        .iter()
        .filter_map(|event| match event {
            NodeEvent::Message {
                channel: ASK,
                message,
                ..
            } => Some(u32::from_be_bytes(
                message[..4].try_into().expect("4 bytes"),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(
        answers,
        (0..REQUESTS).collect::<Vec<_>>(),
        "every answer, in order"
    );
    let answerer_state = sim.protocol::<Answerer>(answerer).expect("registered");
    assert!(answerer_state.kept.is_empty());
    assert!(answerer_state.writable_calls >= 1);
    // The application saw none of it: Writable on a protocol's channel is the protocol's.
    assert!(
        !sim.log(answerer)
            .iter()
            .any(|event| matches!(event, NodeEvent::Writable { .. }))
    );
}
