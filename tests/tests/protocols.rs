//! Application protocols: version negotiation, the router's dispatch and lifecycle, and
//! gossip over 500 nodes — on the simulated network (latency, reads split at random), each
//! node's router built by `Sim::add_node_with_stack`.

mod common;

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use switchboard::Instant;
use switchboard::connection::Event;
use switchboard::frame::Frame;
use switchboard::gossip::{Gossip, GossipConfig, MessageId};
use switchboard::node::{NodeConfig, NodeEvent};
use switchboard::router::{Context, Protocol, ProtocolSpec, RegisterError, Router, TimerKey};
use switchboard::{
    ChannelConfig, ChannelId, ChannelInfo, ConnectionConfig, DisconnectReason, NodeInfo, PeerId,
    SendError, negotiate,
};

use common::rogue::RogueDialer;
use switchboard_sim::{NodeIndex, Sim, SimConfig, SimNode};

type Log = Rc<RefCell<Vec<String>>>;

/// Records every hook it is called with.
struct Recorder {
    spec: ProtocolSpec,
    log: Log,
    refuse: bool,
}

impl Recorder {
    /// A recorder writing to the same log.
    fn fresh(&self) -> Self {
        Recorder {
            spec: self.spec.clone(),
            log: self.log.clone(),
            refuse: self.refuse,
        }
    }

    fn new(spec: ProtocolSpec) -> (Self, Log) {
        let log = Log::default();
        let recorder = Recorder {
            spec,
            log: log.clone(),
            refuse: false,
        };
        (recorder, log)
    }
}

impl Protocol for Recorder {
    fn spec(&self) -> ProtocolSpec {
        self.spec.clone()
    }

    fn started(&mut self, ctx: &mut Context<'_>) {
        self.log.borrow_mut().push("started".into());
        ctx.set_timer(
            TimerKey(0),
            ctx.now().saturating_add(Duration::from_secs(5)),
        )
        .expect("room for the timer");
    }

    fn peer_connected(
        &mut self,
        _ctx: &mut Context<'_>,
        _peer: PeerId,
        version: u16,
    ) -> Result<(), DisconnectReason> {
        self.log.borrow_mut().push(format!("connected v{version}"));
        if self.refuse {
            return Err(DisconnectReason::UselessPeer);
        }
        Ok(())
    }

    fn message(
        &mut self,
        _ctx: &mut Context<'_>,
        _peer: PeerId,
        channel: ChannelId,
        message: Bytes,
    ) {
        let text = String::from_utf8_lossy(&message).into_owned();
        self.log
            .borrow_mut()
            .push(format!("message {channel} {text}"));
    }

    fn peer_disconnected(
        &mut self,
        _ctx: &mut Context<'_>,
        _peer: PeerId,
        reason: DisconnectReason,
    ) {
        self.log
            .borrow_mut()
            .push(format!("disconnected {reason:?}"));
    }

    fn timer(&mut self, _ctx: &mut Context<'_>, key: TimerKey) {
        assert_eq!(key, TimerKey(0));
        self.log.borrow_mut().push("timer".into());
    }

    fn stopped(&mut self, _ctx: &mut Context<'_>) {
        self.log.borrow_mut().push("stopped".into());
    }
}

/// A simulated network with the simulator's default links (1–20 ms, reads split at random).
fn network(seed: u64) -> Sim {
    Sim::new(SimConfig::with_seed(seed))
}

/// Adds a node whose router runs `recorders` (rebuilt from their specs and shared logs, as
/// the simulator builds a node's stack again at a restart).
fn add_recording(sim: &mut Sim, config: NodeConfig, recorders: Vec<Recorder>) -> NodeIndex {
    sim.add_node_with_router(config, move |router| {
        for recorder in &recorders {
            router.register(recorder.fresh())?;
        }
        Ok(())
    })
}

/// Lets the network settle: handshakes, messages and their confirmations.
fn settle(sim: &mut Sim) {
    sim.run_for(Duration::from_millis(500));
}

fn dial(sim: &mut Sim, from: NodeIndex, to: NodeIndex) {
    let (now, addr) = (sim.now(), sim.address(to));
    sim.node_mut(from).dial(now, addr).expect("dial");
}

type SimRouter = Router<ChaCha20Rng>;

/// A node outside any network, for the router alone.
fn bare_node(config: NodeConfig) -> SimNode {
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let keypair = switchboard::Keypair::generate(&mut rng);
    SimNode::new(Instant::ZERO, config, keypair, rng).expect("a valid config")
}

fn quiet_config() -> NodeConfig {
    NodeConfig::new("protocols", "protocols-test")
}

fn entries(log: &Log) -> Vec<String> {
    log.borrow().clone()
}

#[test]
fn the_highest_common_version_is_negotiated_and_only_its_channels_open() {
    let a = ProtocolSpec::new("a", 1..=1, [1]);
    let b_new = ProtocolSpec::new("b", 1..=2, [2]);
    let b_old = ProtocolSpec::new("b", 1..=1, [2]);
    let c = ProtocolSpec::new("c", 1..=1, [3]);
    let mut sim = network(1);

    // Offered by registering alone: the configs name no protocol.
    let first = quiet_config();
    let (a_recorder, a_log) = Recorder::new(a);
    let (b_recorder, b_log) = Recorder::new(b_new);
    let one = add_recording(&mut sim, first, vec![a_recorder, b_recorder]);
    let second = quiet_config();
    let (b1_recorder, b1_log) = Recorder::new(b_old);
    let (c_recorder, c_log) = Recorder::new(c);
    let two = add_recording(&mut sim, second, vec![b1_recorder, c_recorder]);
    dial(&mut sim, one, two);
    settle(&mut sim);

    let ones_view = sim.node(one).node_info().channels.clone();
    let peer_two = sim.node(two).peer_id();
    let theirs = sim.node(one).peer_info(&peer_two).unwrap().info.channels;
    let open = negotiate(&ones_view, &theirs);
    assert_eq!(
        open,
        vec![ChannelInfo {
            id: 2,
            protocol: "b".into(),
            version: 1
        }],
        "exactly b/1"
    );
    let open_channels: Vec<ChannelId> = sim
        .node(one)
        .peer_info(&peer_two)
        .unwrap()
        .channels
        .iter()
        .map(|stats| stats.channel)
        .collect();
    assert_eq!(open_channels, vec![2]);
    assert_eq!(entries(&b_log), ["started", "connected v1"]);
    assert_eq!(entries(&b1_log), ["started", "connected v1"]);
    assert_eq!(
        entries(&a_log),
        ["started"],
        "a is not spoken with this peer"
    );
    assert_eq!(
        entries(&c_log),
        ["started"],
        "c is not spoken with this peer"
    );

    let now = sim.now();
    let refused = sim
        .node_mut(one)
        .send(now, &peer_two, 1, Bytes::from_static(b"a's message"));
    assert!(matches!(refused, Err(SendError::ChannelNotOpen(_))));
}

#[test]
fn a_message_on_a_channel_the_connection_did_not_negotiate_is_a_protocol_error() {
    let offer = |id, protocol: &str, version| ChannelInfo {
        id,
        protocol: protocol.into(),
        version,
    };
    let config = ConnectionConfig::new(vec![ChannelConfig::new(2), ChannelConfig::new(3)]);
    let mut listener_info = NodeInfo::new("net", "listener");
    listener_info.channels = vec![offer(2, "b", 1), offer(3, "c", 1)];
    let mut rogue_info = NodeInfo::new("net", "rogue");
    rogue_info.channels = vec![offer(1, "a", 1), offer(2, "b", 1), offer(2, "b", 2)];
    let mut rogue = RogueDialer::connect_offering(config, listener_info, rogue_info);
    rogue.send_frames(&[Frame::Data {
        channel: 1,
        first: Some(3),
        end: true,
        payload: Bytes::from_static(b"hey"),
    }]);
    let closed = rogue
        .take_events()
        .into_iter()
        .find_map(|event| match event {
            Event::Closed(closed) => Some(closed),
            _ => None,
        });
    assert_eq!(closed.unwrap().reason, DisconnectReason::ProtocolError);
}

#[test]
fn two_protocols_on_one_node_each_get_their_messages_once_and_their_hooks_in_order() {
    let p = ProtocolSpec::new("p", 1..=1, [10]);
    let q = ProtocolSpec::new("q", 1..=1, [20, 21]);
    let mut config = quiet_config();
    config.add_protocol(&p);
    config.add_protocol(&q);
    let mut sim = network(2);
    let sender = add_recording(
        &mut sim,
        config.clone(),
        vec![Recorder::new(p.clone()).0, Recorder::new(q.clone()).0],
    );
    let (p_recorder, p_log) = Recorder::new(p.clone());
    let (q_recorder, q_log) = Recorder::new(q.clone());
    let receiver = add_recording(&mut sim, config, vec![p_recorder, q_recorder]);
    let started = sim.now();
    dial(&mut sim, sender, receiver);
    settle(&mut sim);
    let receiver_id = sim.node(receiver).peer_id();
    let now = sim.now();
    for (index, channel) in [10, 20, 21, 10, 21, 20].into_iter().enumerate() {
        let message = Bytes::from(format!("m{index}"));
        sim.node_mut(sender)
            .send(now, &receiver_id, channel, message)
            .unwrap();
    }
    // Past the protocols' 5 s timers.
    sim.run_until(started + Duration::from_secs(6), |_| false);
    let sender_id = sim.node(sender).peer_id();
    let now = sim.now();
    sim.node_mut(receiver)
        .disconnect(now, &sender_id, DisconnectReason::Requested);
    settle(&mut sim);
    let now = sim.now();
    sim.stack_mut::<SimRouter>(receiver)
        .expect("a router")
        .stop(now);

    assert_eq!(
        entries(&p_log),
        [
            "started",
            "connected v1",
            "message 10 m0",
            "message 10 m3",
            "timer",
            "disconnected Requested",
            "stopped"
        ]
    );
    // Messages keep their order within a channel; across channels the sender's scheduler
    // decides.
    let q_entries = entries(&q_log);
    assert_eq!(q_entries[..2], ["started", "connected v1"]);
    assert_eq!(
        q_entries[6..],
        ["timer", "disconnected Requested", "stopped"]
    );
    let on = |channel: &str| -> Vec<&String> {
        q_entries
            .iter()
            .filter(|entry| entry.starts_with(&format!("message {channel} ")))
            .collect()
    };
    assert_eq!(on("20"), ["message 20 m1", "message 20 m5"]);
    assert_eq!(on("21"), ["message 21 m2", "message 21 m4"]);
    // The application saw the peer come and go, and no protocol message.
    let app: Vec<&NodeEvent> = sim.log(receiver).iter().collect();
    assert!(matches!(app.first(), Some(NodeEvent::PeerConnected { .. })));
    assert!(matches!(
        app.last(),
        Some(NodeEvent::PeerDisconnected { .. })
    ));
    assert_eq!(app.len(), 2);
    assert!(sim.protocol::<Recorder>(receiver).is_some());
}

#[test]
fn a_protocol_that_refuses_a_peer_disconnects_it_and_later_protocols_never_hear_of_it() {
    let p = ProtocolSpec::new("p", 1..=1, [10]);
    let q = ProtocolSpec::new("q", 1..=1, [20]);
    let r = ProtocolSpec::new("r", 1..=1, [30]);
    let mut config = quiet_config();
    for spec in [&p, &q, &r] {
        config.add_protocol(spec);
    }
    let mut sim = network(3);
    let dialer = add_recording(&mut sim, config.clone(), Vec::new());
    let (p_recorder, p_log) = Recorder::new(p);
    let (mut q_recorder, q_log) = Recorder::new(q);
    q_recorder.refuse = true;
    let (r_recorder, r_log) = Recorder::new(r);
    let listener = add_recording(&mut sim, config, vec![p_recorder, q_recorder, r_recorder]);
    dial(&mut sim, dialer, listener);
    settle(&mut sim);
    assert_eq!(
        entries(&p_log),
        ["started", "connected v1", "disconnected UselessPeer"]
    );
    assert_eq!(entries(&q_log), ["started", "connected v1"]);
    assert_eq!(entries(&r_log), ["started"]);
    assert_eq!(sim.node(listener).peers().count(), 0);
}

#[test]
fn registering_offers_the_versions_the_config_lacks_and_refuses_a_channel_it_gives_another() {
    let spec = ProtocolSpec::new("p", 1..=2, [10]);
    let mut config = quiet_config();
    config.add_protocol(&ProtocolSpec::new("p", 1..=1, [10]));
    config.add_protocol(&ProtocolSpec::new("chat", 1..=1, [11]));
    let mut router = Router::new(bare_node(config));
    router.register(Recorder::new(spec).0).unwrap();
    let versions: Vec<u16> = router
        .node()
        .node_info()
        .channels
        .iter()
        .filter(|channel| channel.protocol == "p")
        .map(|channel| channel.version)
        .collect();
    assert_eq!(versions, [1, 2], "v1 from the config, v2 from the router");
    let taken = router.register(Recorder::new(ProtocolSpec::new("q", 1..=1, [11])).0);
    assert_eq!(taken.err(), Some(RegisterError::ChannelTaken(11)));
}

const GOSSIP_NODES: usize = 500;
const GOSSIP_OUTBOUND: usize = 8;
const GOSSIP_MESSAGES: usize = 20;

#[test]
fn gossip_reaches_every_node_of_500_exactly_once_within_two_transmissions_per_edge() {
    let gossip_config = GossipConfig::default();
    let mut config = quiet_config();
    config.add_protocol(&Gossip::new(gossip_config.clone()).spec());
    config.limits.max_outbound = GOSSIP_OUTBOUND;
    config.limits.max_inbound = 64;
    let mut sim = network(5);
    for _ in 0..GOSSIP_NODES {
        let gossip_config = gossip_config.clone();
        sim.add_node_with_stack(config.clone(), move |node, now| {
            let mut router = Router::new(node);
            router.register(Gossip::new(gossip_config.clone())).unwrap();
            router.start(now);
            router
        });
    }
    // Each node dials 8 distinct random others.
    let mut rng = ChaCha20Rng::seed_from_u64(99);
    for from in 0..GOSSIP_NODES {
        let mut targets = BTreeSet::new();
        while targets.len() < GOSSIP_OUTBOUND {
            let to = (rng.next_u32() as usize) % GOSSIP_NODES;
            if to != from {
                targets.insert(to);
            }
        }
        for to in targets {
            let (now, addr) = (sim.now(), sim.address(to));
            let _ = sim.node_mut(from).dial(now, addr);
        }
    }
    sim.run_for(Duration::from_secs(2));
    let edges: usize = (0..GOSSIP_NODES)
        .map(|node| sim.node(node).peers().count())
        .sum::<usize>()
        / 2;
    assert!(
        edges >= GOSSIP_NODES * GOSSIP_OUTBOUND * 9 / 10,
        "{edges} edges"
    );

    let mut published = Vec::new();
    for index in 0..GOSSIP_MESSAGES {
        let origin = (index * 37) % GOSSIP_NODES;
        let message = Bytes::from(format!("gossip message {index}"));
        let id = sim
            .with_protocol(origin, |gossip: &mut Gossip, ctx| {
                gossip.publish(ctx, message)
            })
            .flatten()
            .unwrap();
        published.push((origin, id));
        sim.run_for(Duration::from_millis(100));
    }
    sim.run_for(Duration::from_secs(2));

    let mut transmissions = 0;
    let mut duplicates = 0;
    for node in 0..GOSSIP_NODES {
        let mut received: Vec<MessageId> = Vec::new();
        let gossip = sim.protocol::<Gossip>(node).unwrap();
        transmissions += gossip.stats().transmissions;
        duplicates += gossip.stats().duplicates;
        assert_eq!(gossip.stats().refused, 0);
        sim.with_protocol(node, |gossip: &mut Gossip, _| {
            while let Some(message) = gossip.poll_message() {
                received.push(message.id);
            }
        });
        let expected: Vec<MessageId> = published
            .iter()
            .filter(|(origin, _)| *origin != node)
            .map(|(_, id)| *id)
            .collect();
        let mut got = received.clone();
        got.sort();
        let mut want = expected.clone();
        want.sort();
        assert_eq!(got, want, "node {node}: every message once");
    }
    let per_message = transmissions as f64 / GOSSIP_MESSAGES as f64;
    println!(
        "gossip over {GOSSIP_NODES} nodes, {edges} edges: {per_message:.0} transmissions per \
         message ({:.2} per edge), {duplicates} duplicates suppressed",
        per_message / edges as f64
    );
    assert!(per_message <= 2.0 * edges as f64);
}

#[test]
fn protocol_timers_never_leave_a_deadline_in_the_past_when_the_router_is_stopped() {
    // Found by the router_events fuzz target: a timer that cannot fire (router stopped, or
    // not started yet) stayed in poll_timeout, and an adapter sleeping until it would spin.
    let spec = ProtocolSpec::new("p", 1..=1, [10]);
    let mut router = Router::new(bare_node(quiet_config()));
    router.register(Recorder::new(spec).0).unwrap();
    let started = Instant::ZERO;
    router.start(started);
    let armed = router.poll_timeout().unwrap();
    assert!(armed <= started.saturating_add(Duration::from_secs(5)));
    router.stop(started);
    let later = started.saturating_add(Duration::from_secs(60));
    router.handle_timeout(later);
    assert!(
        router
            .poll_timeout()
            .is_none_or(|deadline| deadline > later)
    );
}
