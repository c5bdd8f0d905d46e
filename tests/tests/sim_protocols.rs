//! Protocols in the deterministic simulator: nodes built with a `Router` on them
//! (`Sim::add_node_with_router`) run gossip over a discovered network, their timers fire at
//! their virtual deadlines, what they emit reaches the application in order with the
//! node's events, a protocol offered only by registering it talks to its peers, a restart
//! rebuilds the router on the fresh node, and the same seed repeats the whole run —
//! protocols included — byte for byte.

use std::time::Duration;

use bytes::Bytes;
use switchboard::discovery::Discovery;
use switchboard::gossip::{Gossip, MessageId};
use switchboard::node::NodeEvent;
use switchboard::router::{Context, Protocol, ProtocolSpec, Router, TimerKey};
use switchboard::{ChannelId, Instant, PeerId};
use switchboard_sim::{NodeIndex, ScenarioConfig, Sim, SimConfig, SimNode, test_node_config};

mod common;
use common::gossip::gossip;

const NODES: usize = 24;

/// Builds the network — the simulator scenario's nodes of a discovering network (seed-mode
/// node 0, discovery timers scaled to seconds, 4 outbound slots), each running discovery
/// and gossip — and lets it discover itself from its seed node.
fn network(seed: u64) -> Sim {
    let mut scenario = ScenarioConfig::new(NODES, seed);
    scenario.discovery = true;
    scenario.max_outbound = 4;
    let mut sim = Sim::new(SimConfig::with_seed(seed));
    for index in 0..NODES {
        let discovery = scenario.discovery_config_for(index).expect("discovery on");
        sim.add_node_with_router(scenario.node_config(), move |router| {
            let discovery = Discovery::new(discovery.clone(), router.node_mut().rng());
            router.register(discovery)?;
            router.register(gossip()).map(drop)
        });
    }
    let end = sim.now() + Duration::from_secs(60);
    assert!(
        sim.run_until(end, |sim| sim.outbound_full_after().is_some()),
        "seed {seed}: the outbound slots never filled"
    );
    sim.run_for(Duration::from_secs(2));
    assert_eq!(sim.components(), 1, "seed {seed}");
    sim
}

/// Every message each node's gossip handed to its application, by id, in order.
fn take_received(sim: &mut Sim) -> Vec<Vec<MessageId>> {
    (0..sim.node_count())
        .map(|index| {
            std::iter::from_fn(|| {
                sim.with_protocol(index, |gossip: &mut Gossip, _| gossip.poll_message())
                    .expect("a gossip node")
            })
            .map(|message| message.id)
            .collect()
        })
        .collect()
}

/// Publishes one message from each of `from`, runs, and returns what every node received.
fn publish_and_collect(sim: &mut Sim, from: &[NodeIndex]) -> (Vec<MessageId>, Vec<Vec<MessageId>>) {
    let published = from
        .iter()
        .enumerate()
        .map(|(nth, &index)| {
            let text = format!("message {nth} from {index} at {:?}", sim.now());
            sim.with_protocol(index, |gossip: &mut Gossip, ctx| {
                gossip.publish(ctx, text.into())
            })
            .expect("a gossip node")
            .expect("new")
        })
        .collect();
    sim.run_for(Duration::from_secs(3));
    (published, take_received(sim))
}

fn assert_everyone_got(
    seed: u64,
    from: &[NodeIndex],
    published: &[MessageId],
    received: &[Vec<MessageId>],
) {
    // Node 0 is the seed: it answers address requests and hangs up, so it is no member of
    // the gossip mesh.
    for (index, got) in received.iter().enumerate().skip(1) {
        let mut expected: Vec<MessageId> = from
            .iter()
            .zip(published)
            .filter(|(publisher, _)| **publisher != index)
            .map(|(_, id)| *id)
            .collect();
        let mut got = got.clone();
        expected.sort_unstable();
        got.sort_unstable();
        assert_eq!(
            got, expected,
            "seed {seed}: node {index} got the wrong messages"
        );
    }
}

#[test]
fn gossip_floods_a_discovered_network_and_the_run_repeats_exactly() {
    let from = [3, 11, 17, 23];
    let runs: Vec<(u64, Vec<Vec<MessageId>>)> = (0..2)
        .map(|_| {
            let mut sim = network(5);
            take_received(&mut sim);
            let (published, received) = publish_and_collect(&mut sim, &from);
            assert_everyone_got(5, &from, &published, &received);
            let duplicates: u64 = (0..NODES)
                .map(|index| {
                    sim.protocol::<Gossip>(index)
                        .expect("gossip")
                        .stats()
                        .duplicates
                })
                .sum();
            assert!(
                duplicates > 0,
                "flooding over a meshed network meets duplicates"
            );
            sim.finish_checks();
            assert!(sim.violations().is_empty(), "{:?}", sim.violations());
            (sim.trace_hash(), received)
        })
        .collect();
    assert_eq!(runs[0], runs[1], "the same seed ran differently");
    // Another seed is another run (or the comparison above proves nothing).
    let mut other = network(6);
    take_received(&mut other);
    publish_and_collect(&mut other, &from);
    assert_ne!(other.trace_hash(), runs[0].0);
}

#[test]
fn gossip_reaches_every_node_over_several_seeds() {
    for seed in 20..26 {
        let mut sim = network(seed);
        take_received(&mut sim);
        let from = [1, 1 + (seed as usize) % (NODES - 1), NODES - 1];
        let (published, received) = publish_and_collect(&mut sim, &from);
        assert_everyone_got(seed, &from, &published, &received);
    }
}

#[test]
fn a_restarted_node_gets_a_fresh_router_and_rejoins_the_gossip() {
    let mut sim = network(7);
    let (published, _) = publish_and_collect(&mut sim, &[3]);
    let restarted = 9;
    let before = sim.protocol::<Gossip>(restarted).expect("gossip").stats();
    assert_eq!(before.delivered, 1);

    let crashed = sim.crash(restarted).expect("alive");
    // A crashed node's protocols can be looked at, not acted through.
    assert_eq!(
        sim.protocol::<Gossip>(restarted)
            .map(|gossip| gossip.stats().delivered),
        Some(1)
    );
    let publish = |gossip: &mut Gossip, ctx: &mut Context<'_>| gossip.publish(ctx, "late".into());
    assert!(sim.with_protocol(restarted, publish).is_none());
    sim.run_for(Duration::from_secs(1));
    sim.restart(crashed).expect("crashed");
    // Built again on the fresh node: nothing delivered, nothing remembered.
    let fresh = sim
        .protocol::<Gossip>(restarted)
        .expect("gossip after the restart");
    assert_eq!((fresh.stats().delivered, fresh.seen_len()), (0, 0));
    let end = sim.now() + Duration::from_secs(30);
    assert!(
        sim.run_until(end, |sim| sim.node(restarted).peers().count() >= 2),
        "the restarted node did not reconnect"
    );
    sim.run_for(Duration::from_secs(2));
    take_received(&mut sim);

    let from = [3];
    let (again, received) = publish_and_collect(&mut sim, &from);
    assert_ne!(again, published, "a new message");
    assert_everyone_got(7, &from, &again, &received);
}

/// Records the virtual time of each timer it gets: two of them, each re-armed every
/// period of its own.
#[derive(Default)]
struct Ticker {
    started_at: Option<Instant>,
    fired_at: Vec<(TimerKey, Instant)>,
}

impl Ticker {
    const FAST: TimerKey = TimerKey(0);
    const SLOW: TimerKey = TimerKey(1);
    const CHANNEL: ChannelId = 40;

    fn period(key: TimerKey) -> Duration {
        Duration::from_millis(if key == Self::FAST { 250 } else { 400 })
    }

    fn arm(ctx: &mut Context<'_>, key: TimerKey) {
        ctx.set_timer(key, ctx.now() + Self::period(key))
            .expect("room for the timer");
    }
}

impl Protocol for Ticker {
    fn spec(&self) -> ProtocolSpec {
        ProtocolSpec::new("ticker", 1..=1, [Self::CHANNEL])
    }

    fn started(&mut self, ctx: &mut Context<'_>) {
        self.started_at = Some(ctx.now());
        Self::arm(ctx, Self::FAST);
        Self::arm(ctx, Self::SLOW);
    }

    fn message(&mut self, _: &mut Context<'_>, _: PeerId, _: ChannelId, _: Bytes) {}

    fn timer(&mut self, ctx: &mut Context<'_>, key: TimerKey) {
        self.fired_at.push((key, ctx.now()));
        Self::arm(ctx, key);
    }
}

#[test]
fn protocol_timers_fire_at_their_virtual_deadlines() {
    let mut sim = Sim::new(SimConfig::with_seed(3));
    let ticking = sim.add_node_with_router(test_node_config(), |router| {
        router.register(Ticker::default())?;
        Ok(())
    });
    // A lone node: nothing but its own timers wakes it.
    sim.run_for(Duration::from_millis(1_100));
    let ticker = sim.protocol::<Ticker>(ticking).expect("ticker");
    let start = ticker.started_at.expect("started");
    let at = |ms| start + Duration::from_millis(ms);
    let (fast, slow) = (Ticker::FAST, Ticker::SLOW);
    let expected = [
        (fast, at(250)),
        (slow, at(400)),
        (fast, at(500)),
        (fast, at(750)),
        (slow, at(800)),
        (fast, at(1_000)),
    ];
    assert_eq!(ticker.fired_at, expected);
    // A bare node has no router, and a router is not a bare node.
    let bare = sim.add_node(test_node_config());
    assert!(sim.protocol::<Ticker>(bare).is_none());
    assert!(sim.stack::<SimNode>(bare).is_some());
    assert!(sim.stack::<SimNode>(ticking).is_none());
    assert!(sim.protocol::<Gossip>(ticking).is_none());
}

/// Answers `ping` with `pong`, and records when each pong came back.
#[derive(Default)]
struct Echo {
    pongs_at: Vec<Instant>,
}

impl Echo {
    const CHANNEL: ChannelId = 41;
}

impl Protocol for Echo {
    fn spec(&self) -> ProtocolSpec {
        ProtocolSpec::new("echo", 1..=1, [Self::CHANNEL])
    }

    fn message(&mut self, ctx: &mut Context<'_>, peer: PeerId, _: ChannelId, message: Bytes) {
        if &message[..] == b"ping" {
            ctx.send(&peer, Self::CHANNEL, Bytes::from_static(b"pong"))
                .expect("room for the pong");
        } else {
            self.pongs_at.push(ctx.now());
        }
    }
}

#[test]
fn a_protocol_answer_goes_out_at_once_one_round_trip_per_exchange() {
    // Fixed 10 ms links, whole reads: a ping and its pong take exactly 20 ms if neither
    // node holds back what its protocol queued (while taking events, or when the test acts
    // through `with_protocol`) until some later, unrelated wake-up.
    let mut config = SimConfig::with_seed(11);
    config.latency = (Duration::from_millis(10), Duration::from_millis(10));
    config.heavy_tail = None;
    config.split_reads = false;
    let mut sim = Sim::new(config);
    let node = test_node_config();
    let echo = |router: &mut Router<rand_chacha::ChaCha20Rng>| {
        router.register(Echo::default())?;
        Ok(())
    };
    let a = sim.add_node_with_router(node.clone(), echo);
    let b = sim.add_node_with_router(node, echo);
    let (now, b_address) = (sim.now(), sim.address(b));
    sim.node_mut(a).dial(now, b_address).expect("dial");
    sim.run_for(Duration::from_secs(1));
    let b_id = sim.node(b).peer_id();
    for round in 1..=3 {
        let sent_at = sim.now();
        sim.with_protocol(a, |_: &mut Echo, ctx| {
            ctx.send(&b_id, Echo::CHANNEL, Bytes::from_static(b"ping"))
        })
        .expect("a's echo")
        .expect("room for the ping");
        sim.run_for(Duration::from_millis(500));
        let pongs = &sim.protocol::<Echo>(a).expect("a's echo").pongs_at;
        assert_eq!(pongs.len(), round);
        assert_eq!(
            pongs[round - 1].saturating_duration_since(sent_at),
            Duration::from_millis(20),
            "round {round}"
        );
    }
}

#[test]
fn a_protocol_offered_only_by_registering_it_connects_and_exchanges_messages() {
    let mut sim = Sim::new(SimConfig::with_seed(12));
    let echo = |router: &mut Router<rand_chacha::ChaCha20Rng>| {
        router.register(Echo::default())?;
        Ok(())
    };
    // Neither config names the protocol.
    let a = sim.add_node_with_router(test_node_config(), echo);
    let b = sim.add_node_with_router(test_node_config(), echo);
    let offers_echo = |sim: &Sim, index| {
        sim.node(index)
            .node_info()
            .channels
            .iter()
            .any(|channel| channel.protocol == "echo" && channel.id == Echo::CHANNEL)
    };
    assert!(offers_echo(&sim, a) && offers_echo(&sim, b));
    let (now, b_address) = (sim.now(), sim.address(b));
    sim.node_mut(a).dial(now, b_address).expect("dial");
    sim.run_for(Duration::from_secs(1));
    let b_id = sim.node(b).peer_id();
    sim.with_protocol(a, |_: &mut Echo, ctx| {
        assert_eq!(ctx.peers(), [(b_id, 1)], "the connection negotiated echo");
        ctx.send(&b_id, Echo::CHANNEL, Bytes::from_static(b"ping"))
    })
    .expect("a's echo")
    .expect("room for the ping");
    sim.run_for(Duration::from_millis(500));
    assert_eq!(sim.protocol::<Echo>(a).expect("a's echo").pongs_at.len(), 1);
}

/// Tells the application of each peer it gets, each message, and each peer it loses.
struct Herald;

#[derive(Debug, PartialEq)]
enum Heard {
    Joined(PeerId),
    Said(Bytes),
    Left(PeerId),
}

impl Herald {
    const CHANNEL: ChannelId = 42;
}

impl Protocol for Herald {
    fn spec(&self) -> ProtocolSpec {
        ProtocolSpec::new("herald", 1..=1, [Self::CHANNEL])
    }

    fn peer_connected(
        &mut self,
        ctx: &mut Context<'_>,
        peer: PeerId,
        _: u16,
    ) -> Result<(), switchboard::DisconnectReason> {
        ctx.emit(Heard::Joined(peer));
        Ok(())
    }

    fn message(&mut self, ctx: &mut Context<'_>, _: PeerId, _: ChannelId, message: Bytes) {
        ctx.emit(Heard::Said(message));
    }

    fn peer_disconnected(
        &mut self,
        ctx: &mut Context<'_>,
        peer: PeerId,
        _: switchboard::DisconnectReason,
    ) {
        ctx.emit(Heard::Left(peer));
    }
}

#[test]
fn what_a_protocol_emits_reaches_the_application_in_order_with_the_nodes_events() {
    let mut sim = Sim::new(SimConfig::with_seed(13));
    let herald = |router: &mut Router<rand_chacha::ChaCha20Rng>| {
        router.register(Herald)?;
        Ok(())
    };
    let a = sim.add_node_with_router(test_node_config(), herald);
    let b = sim.add_node_with_router(test_node_config(), herald);
    let (now, b_address) = (sim.now(), sim.address(b));
    sim.node_mut(a).dial(now, b_address).expect("dial");
    sim.run_for(Duration::from_secs(1));
    let (a_id, b_id) = (sim.node(a).peer_id(), sim.node(b).peer_id());
    sim.with_protocol(a, |_: &mut Herald, ctx| {
        ctx.send(&b_id, Herald::CHANNEL, Bytes::from_static(b"hear ye"))
    })
    .expect("a's herald")
    .expect("room");
    sim.run_for(Duration::from_millis(500));
    let now = sim.now();
    sim.node_mut(b)
        .disconnect(now, &a_id, switchboard::DisconnectReason::Requested);
    sim.run_for(Duration::from_millis(500));

    let seen: Vec<String> = sim
        .log(b)
        .iter()
        .map(|event| match event {
            NodeEvent::PeerConnected { peer, .. } => format!("PeerConnected {}", peer == &a_id),
            NodeEvent::PeerDisconnected { peer, .. } => {
                format!("PeerDisconnected {}", peer == &a_id)
            }
            NodeEvent::Protocol(emitted) => {
                assert_eq!(emitted.protocol(), "herald");
                match emitted
                    .downcast_ref::<Heard>()
                    .expect("what the herald heard")
                {
                    Heard::Joined(peer) => format!("Joined {}", peer == &a_id),
                    Heard::Said(message) => format!("Said {}", String::from_utf8_lossy(message)),
                    Heard::Left(peer) => format!("Left {}", peer == &a_id),
                }
            }
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        seen,
        [
            "PeerConnected true",
            "Joined true",
            "Said hear ye",
            "PeerDisconnected true",
            "Left true"
        ]
    );
}
