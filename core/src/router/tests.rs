//! The router over real nodes wired in memory: emitted events in the event stream, named
//! timers, the `writable` hook's dispatch, and protocols offered by registering them.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use core::time::Duration;
use std::cell::RefCell;
use std::rc::Rc;

use bytes::Bytes;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::*;
use crate::channel::ChannelConfig;
use crate::identity::Keypair;
use crate::net_address::NetAddress;
use crate::node::{Action, ConnId, DialReport, NodeConfig, Output};
use crate::node_info::{ChannelInfo, MAX_PROTOCOL_NAME_LEN};

const OWNED: ChannelId = 10;
const PLAIN: ChannelId = 11;

type Log = Rc<RefCell<Vec<String>>>;

/// Records its hooks; emits what it hears, and sets the timers it is told to at start.
struct Probe {
    name: &'static str,
    channel: ChannelId,
    log: Log,
    /// (key, delay) set in `started`.
    timers: Vec<(u32, Duration)>,
    /// Keys whose `timer` hook cancels another key: (fired, cancelled).
    cancels: Option<(u32, u32)>,
    /// A key whose `timer` hook sets itself again for `now`.
    rearms: Option<u32>,
    /// Whether it notes the dial reports it hears.
    notes_dials: bool,
}

impl Probe {
    fn new(name: &'static str, channel: ChannelId, log: &Log) -> Self {
        Probe {
            name,
            channel,
            log: log.clone(),
            timers: Vec::new(),
            cancels: None,
            rearms: None,
            notes_dials: false,
        }
    }

    fn note(&self, entry: String) {
        self.log.borrow_mut().push(entry);
    }
}

impl Protocol for Probe {
    fn spec(&self) -> ProtocolSpec {
        ProtocolSpec::new(self.name, 1..=1, [self.channel])
    }

    fn started(&mut self, ctx: &mut Context<'_>) {
        for &(key, delay) in &self.timers {
            ctx.set_timer(TimerKey(key), ctx.now().saturating_add(delay))
                .expect("room for the timer");
        }
    }

    fn peer_connected(
        &mut self,
        ctx: &mut Context<'_>,
        _peer: PeerId,
        _version: u16,
    ) -> Result<(), crate::DisconnectReason> {
        ctx.emit(String::from("connected"));
        Ok(())
    }

    fn message(&mut self, ctx: &mut Context<'_>, _peer: PeerId, _: ChannelId, message: Bytes) {
        self.note(format!("{} message", self.name));
        ctx.emit(message);
    }

    fn writable(&mut self, _ctx: &mut Context<'_>, _peer: PeerId, channel: ChannelId) {
        self.note(format!("{} writable {channel}", self.name));
    }

    fn dialed(&mut self, _ctx: &mut Context<'_>, report: &DialReport) {
        if !self.notes_dials {
            return;
        }
        let what = match report {
            DialReport::Started { .. } => "started",
            DialReport::Reached { .. } => "reached",
            DialReport::Accepted { .. } => "accepted",
            DialReport::Failed { .. } => "failed",
        };
        self.note(format!("{} dial {what}", self.name));
    }

    fn timer(&mut self, ctx: &mut Context<'_>, key: TimerKey) {
        self.note(format!("{} {}", self.name, key.0));
        if let Some((fired, cancelled)) = self.cancels
            && fired == key.0
        {
            ctx.cancel_timer(TimerKey(cancelled));
        }
        if self.rearms == Some(key.0) {
            ctx.set_timer(key, ctx.now()).expect("room for the timer");
        }
    }
}

fn node(seed: u64, config: NodeConfig) -> Node<ChaCha20Rng> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let keypair = Keypair::generate(&mut rng);
    Node::new(Instant::ZERO, config, keypair, rng).expect("a valid config")
}

/// A router over a fresh node whose config offers nothing but what `offered` adds.
fn router(seed: u64, offered: impl FnOnce(&mut NodeConfig)) -> Router<ChaCha20Rng> {
    let mut config = NodeConfig::new("router-tests", "tests");
    offered(&mut config);
    Router::new(node(seed, config))
}

fn ip(index: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        10,
        0,
        0,
        u8::try_from(index + 1).expect("few"),
    ))
}

/// Two routers wired in memory: each node's actions and bytes are carried to the other,
/// and events are taken only when a test asks, so it decides what the node has queued.
struct Pair {
    routers: [Router<ChaCha20Rng>; 2],
    links: BTreeMap<(usize, ConnId), (usize, ConnId)>,
    now: Instant,
}

impl Pair {
    fn new(a: Router<ChaCha20Rng>, b: Router<ChaCha20Rng>) -> Self {
        Pair {
            routers: [a, b],
            links: BTreeMap::new(),
            now: Instant::ZERO,
        }
    }

    fn dial(&mut self, from: usize, to: usize) {
        let peer = self.routers[to].node().peer_id();
        let addr = NetAddress::new(Some(peer), SocketAddr::new(ip(to), 26656));
        self.routers[from]
            .node_mut()
            .dial(self.now, addr)
            .expect("dialable");
    }

    /// Carries actions and bytes until nothing moves; takes no event.
    fn pump(&mut self) {
        let mut wire = Vec::new();
        let now = self.now;
        loop {
            let mut moved = false;
            for index in 0..2 {
                while let Some(action) = self.routers[index].node_mut().poll_action() {
                    moved = true;
                    match action {
                        Action::Dial { conn, addr } => {
                            let target = usize::from(addr.ip() == ip(1));
                            let from = SocketAddr::new(ip(index), 40_000);
                            let theirs = self.routers[target]
                                .node_mut()
                                .handle_accepted(now, from)
                                .expect("accepted");
                            self.links.insert((index, conn), (target, theirs));
                            self.links.insert((target, theirs), (index, conn));
                            self.routers[index].node_mut().handle_connected(now, conn);
                        }
                        Action::Close { conn } => {
                            if let Some((other, theirs)) = self.links.remove(&(index, conn)) {
                                self.links.remove(&(other, theirs));
                                self.routers[other].node_mut().handle_closed(now, theirs);
                            }
                        }
                    }
                }
                while let Some(conn) = self.routers[index].node_mut().poll_transmit(now, &mut wire)
                {
                    moved = true;
                    if let Some(&(other, theirs)) = self.links.get(&(index, conn)) {
                        self.routers[other]
                            .node_mut()
                            .handle_input(now, theirs, &wire);
                    }
                    wire.clear();
                }
            }
            if !moved {
                return;
            }
        }
    }

    /// Every event router `index` has for its application now.
    fn events(&mut self, index: usize) -> Vec<NodeEvent> {
        let now = self.now;
        core::iter::from_fn(|| self.routers[index].poll_event(now)).collect()
    }

    /// Connects the two, and takes the events that brings.
    fn connect(&mut self) {
        self.dial(0, 1);
        for _ in 0..4 {
            self.pump();
            self.events(0);
            self.events(1);
        }
        assert_eq!(self.routers[0].node().peers().count(), 1, "connected");
    }

    fn peer_id(&self, index: usize) -> PeerId {
        self.routers[index].node().peer_id()
    }

    fn send(&mut self, from: usize, channel: ChannelId, message: &'static [u8]) {
        let to = self.peer_id(1 - from);
        let now = self.now;
        self.routers[from]
            .node_mut()
            .send(now, &to, channel, Bytes::from_static(message))
            .expect("room");
    }
}

fn offer_plain(config: &mut NodeConfig) {
    config.add_channel("plain", 1, ChannelConfig::new(PLAIN));
}

/// A router over a fresh node running one `Probe` on `OWNED`, registered without the config
/// offering it, and started; `PLAIN` offered by the config for the application.
fn probe_router(seed: u64, log: &Log) -> Router<ChaCha20Rng> {
    let mut router = router(seed, offer_plain);
    router
        .register(Probe::new("probe", OWNED, log))
        .expect("registers");
    router.start(Instant::ZERO);
    router
}

#[test]
fn dial_reports_reach_the_protocols_while_the_application_takes_no_events() {
    let log = Log::default();
    let mut router = router(1, offer_plain);
    let mut probe = Probe::new("probe", OWNED, &log);
    probe.notes_dials = true;
    router.register(probe).expect("registers");
    router.start(Instant::ZERO);
    router.node_mut().pause_events(true);
    let now = Instant::ZERO;
    let addr = NetAddress::new(None, SocketAddr::new(ip(9), 26656));
    router.node_mut().dial(now, addr).expect("queued");
    let mut out = Vec::new();
    let mut dialed = None;
    while let Output::Action(Action::Dial { conn, .. }) | Output::Transmit(conn) =
        router.poll_output(now, &mut out)
    {
        dialed.get_or_insert(conn);
    }
    let conn = dialed.expect("a dial");
    router
        .node_mut()
        .handle_connect_failed(now, conn, "connection refused");
    while !matches!(router.poll_output(now, &mut out), Output::Timeout(_)) {}
    assert_eq!(
        *log.borrow(),
        vec!["probe dial started", "probe dial failed"],
        "the book learns of its dials though events are paused"
    );
    assert!(
        router.node().has_events(),
        "the DialFailed waits for the application"
    );
}

fn emitted(event: &NodeEvent) -> Option<String> {
    let NodeEvent::Protocol(event) = event else {
        return None;
    };
    assert_eq!(event.protocol(), "probe");
    let text = match (
        event.downcast_ref::<String>(),
        event.downcast_ref::<Bytes>(),
    ) {
        (Some(text), _) => text.clone(),
        (None, Some(bytes)) => String::from_utf8_lossy(bytes).into_owned(),
        (None, None) => panic!("an unexpected value: {event:?}"),
    };
    Some(text)
}

/// What the application saw, as short names.
fn names(events: &[NodeEvent]) -> Vec<String> {
    events
        .iter()
        .map(|event| match event {
            NodeEvent::PeerConnected { .. } => String::from("PeerConnected"),
            NodeEvent::Message { channel, .. } => format!("Message {channel}"),
            NodeEvent::Writable { channel, .. } => format!("Writable {channel}"),
            other => emitted(other).unwrap_or_else(|| format!("{other:?}")),
        })
        .collect()
}

#[test]
fn an_emitted_event_comes_out_after_the_event_that_caused_it_and_before_the_next() {
    let log = Log::default();
    let mut pair = Pair::new(probe_router(1, &log), probe_router(2, &log));
    pair.dial(0, 1);
    pair.pump();
    pair.pump();
    assert_eq!(names(&pair.events(1)), ["PeerConnected", "connected"]);
    pair.events(0);
    // Two messages arrive before the application looks: the protocol's, then the
    // application's. What the protocol emits for the first comes out before the second.
    pair.send(0, OWNED, b"for the probe");
    pair.pump();
    pair.send(0, PLAIN, b"for the application");
    pair.pump();
    assert_eq!(
        names(&pair.events(1)),
        ["for the probe", format!("Message {PLAIN}").as_str()]
    );
    assert_eq!(*log.borrow(), ["probe message"]);
}

#[test]
fn emitted_events_keep_their_order_and_compare_by_identity() {
    struct Twice;
    impl Protocol for Twice {
        fn spec(&self) -> ProtocolSpec {
            ProtocolSpec::new("twice", 1..=1, [OWNED])
        }
        fn started(&mut self, ctx: &mut Context<'_>) {
            ctx.emit(1u32);
            ctx.emit(1u32);
        }
        fn message(&mut self, _: &mut Context<'_>, _: PeerId, _: ChannelId, _: Bytes) {}
    }
    let mut router = Router::with_protocols(
        node(3, NodeConfig::new("router-tests", "tests")),
        Instant::ZERO,
        |router| router.register(Twice).map(drop),
    )
    .expect("registers");
    let id = router.id_of::<Twice>().expect("registered");
    router.with_protocol(Instant::ZERO, id, |_, ctx| ctx.emit("later"));
    let events: Vec<NodeEvent> = core::iter::from_fn(|| router.poll_event(Instant::ZERO)).collect();
    let values: Vec<String> = events
        .iter()
        .map(|event| match event {
            NodeEvent::Protocol(event) => event
                .downcast_ref::<u32>()
                .map(|n| format!("{n}"))
                .or_else(|| event.downcast_ref::<&str>().map(|s| String::from(*s)))
                .expect("a u32 or a str"),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(values, ["1", "1", "later"]);
    // Equal values from two emits are two events; a clone is the same event.
    assert_ne!(events[0], events[1]);
    assert_eq!(events[0], events[0].clone());
    assert_eq!(
        format!("{:?}", events[0]),
        "Protocol(ProtocolEvent { protocol: \"twice\", value: u32 })"
    );
}

#[test]
fn a_writable_on_a_protocols_channel_goes_to_the_protocol_and_any_other_to_the_application() {
    let log = Log::default();
    let mut pair = Pair::new(probe_router(1, &log), probe_router(2, &log));
    pair.connect();
    let peer = pair.peer_id(0);
    let stranger = Keypair::generate(&mut ChaCha20Rng::seed_from_u64(9)).peer_id();
    let router = &mut pair.routers[1];
    let writable = |peer, channel| NodeEvent::Writable { peer, channel };
    // The node does not produce `Writable` yet: the events are handed to the dispatch.
    assert_eq!(router.dispatch(Instant::ZERO, writable(peer, OWNED)), None);
    assert_eq!(*log.borrow(), [format!("probe writable {OWNED}")]);
    for (peer, channel) in [(peer, PLAIN), (stranger, OWNED)] {
        let event = writable(peer, channel);
        assert_eq!(router.dispatch(Instant::ZERO, event.clone()), Some(event));
    }
    assert_eq!(log.borrow().len(), 1);
}

#[test]
fn timers_fire_by_deadline_then_registration_then_key_and_poll_timeout_is_the_earliest() {
    let log = Log::default();
    let ms = Duration::from_millis;
    let mut first = Probe::new("first", OWNED, &log);
    first.timers = vec![(7, ms(20)), (3, ms(20)), (1, ms(30)), (9, ms(10))];
    let mut second = Probe::new("second", PLAIN, &log);
    second.timers = vec![(0, ms(20)), (5, ms(5))];
    let mut router = router(4, |_| {});
    router.register(first).expect("first");
    router.register(second).expect("second");
    assert_eq!(
        router.poll_timeout(),
        None,
        "not started: no timer can fire"
    );
    router.start(Instant::ZERO);
    assert_eq!(router.poll_timeout(), Some(Instant::ZERO + ms(5)));
    router.handle_timeout(Instant::ZERO + ms(25));
    assert_eq!(
        *log.borrow(),
        ["second 5", "first 9", "first 3", "first 7", "second 0"]
    );
    assert_eq!(router.poll_timeout(), Some(Instant::ZERO + ms(30)));
    router.handle_timeout(Instant::ZERO + ms(30));
    assert_eq!(log.borrow().last().map(String::as_str), Some("first 1"));
    assert_eq!(router.poll_timeout(), None);
}

#[test]
fn a_timer_cancelled_by_an_earlier_hook_does_not_fire_and_one_set_for_now_waits_a_call() {
    let log = Log::default();
    let ms = Duration::from_millis;
    let mut probe = Probe::new("probe", OWNED, &log);
    probe.timers = vec![(1, ms(10)), (2, ms(10)), (3, ms(10))];
    probe.cancels = Some((1, 2));
    probe.rearms = Some(3);
    let mut router = router(5, |_| {});
    router.register(probe).expect("registers");
    router.start(Instant::ZERO);
    let now = Instant::ZERO + ms(10);
    router.handle_timeout(now);
    assert_eq!(*log.borrow(), ["probe 1", "probe 3"]);
    // Timer 3 set itself for `now` again: due at once, fired by the next call only.
    assert_eq!(router.poll_timeout(), Some(now));
    router.handle_timeout(now);
    assert_eq!(*log.borrow(), ["probe 1", "probe 3", "probe 3"]);
}

#[test]
fn a_protocol_holds_at_most_max_timers_and_setting_a_held_key_replaces_it() {
    let mut router = router(6, |_| {});
    let id = router
        .register(Probe::new("probe", OWNED, &Log::default()))
        .expect("registers");
    router.start(Instant::ZERO);
    let at = |ms| Instant::ZERO + Duration::from_millis(ms);
    let outcome = router.with_protocol(Instant::ZERO, id, |_, ctx| {
        for key in 0..MAX_TIMERS {
            let key = u32::try_from(key).expect("small");
            ctx.set_timer(TimerKey(key), at(100 + u64::from(key)))
                .expect("within the bound");
        }
        let refused = ctx.set_timer(TimerKey(1_000), at(1));
        // A held key is replaced, bound or not; a cancelled one frees its place.
        let replaced = ctx.set_timer(TimerKey(0), at(2));
        ctx.cancel_timer(TimerKey(1));
        let freed = ctx.set_timer(TimerKey(1_000), at(3));
        (
            refused,
            replaced,
            freed,
            ctx.timer(TimerKey(0)),
            ctx.timer(TimerKey(1)),
        )
    });
    assert_eq!(
        outcome,
        Some((Err(TooManyTimers), Ok(()), Ok(()), Some(at(2)), None))
    );
    assert_eq!(router.poll_timeout(), Some(at(2)));
    assert_eq!(
        TooManyTimers.to_string(),
        "a protocol holds at most 64 timers"
    );
}

#[test]
fn registering_offers_the_protocols_channels_in_the_handshake() {
    let mut router = router(7, |_| {});
    let before = router.node().node_info().channels.clone();
    let spec = ProtocolSpec::new("probe", 1..=2, [OWNED]);
    struct Versions(ProtocolSpec);
    impl Protocol for Versions {
        fn spec(&self) -> ProtocolSpec {
            self.0.clone()
        }
        fn message(&mut self, _: &mut Context<'_>, _: PeerId, _: ChannelId, _: Bytes) {}
    }
    router.register(Versions(spec.clone())).expect("registers");
    let offered: Vec<ChannelInfo> = spec.offers().collect();
    assert_eq!(offered.len(), 2, "once per version");
    let mut expected = before;
    expected.extend(offered);
    assert_eq!(router.node().node_info().channels, expected);
    // Offered already (by the config, as an application without a router would): nothing
    // is offered twice.
    let mut router = router_offering(8, &spec);
    let before = router.node().node_info().channels.clone();
    router.register(Versions(spec)).expect("registers");
    assert_eq!(router.node().node_info().channels, before);
}

fn router_offering(seed: u64, spec: &ProtocolSpec) -> Router<ChaCha20Rng> {
    router(seed, |config| config.add_protocol(spec))
}

#[test]
fn a_registration_the_node_cannot_offer_is_refused_and_changes_nothing() {
    let log = Log::default();
    // A channel the config offers for another protocol.
    let mut router = router(9, |config| {
        config.add_protocol(&ProtocolSpec::new("other", 1..=1, [OWNED]));
    });
    let before = router.node().node_info().clone();
    assert_eq!(
        router.register(Probe::new("probe", OWNED, &log)).err(),
        Some(RegisterError::ChannelTaken(OWNED))
    );
    // A name too long for the handshake.
    let long: &'static str = "x".repeat(MAX_PROTOCOL_NAME_LEN + 1).leak();
    let refused = router.register(Probe::new(long, PLAIN, &log)).err();
    assert!(
        matches!(refused, Some(RegisterError::Info(_))),
        "{refused:?}"
    );
    assert_eq!(router.node().node_info(), &before);
    assert!(router.register(Probe::new("probe", PLAIN, &log)).is_ok());
}

#[test]
fn a_node_with_a_connection_offers_nothing_more_but_takes_what_its_config_offered() {
    let log = Log::default();
    let spec = ProtocolSpec::new("probe", 1..=1, [OWNED]);
    let offering = router(11, |config| {
        offer_plain(config);
        config.add_protocol(&spec);
    });
    let mut pair = Pair::new(router(10, offer_plain), offering);
    pair.connect();
    let before = pair.routers[0].node().node_info().clone();
    assert_eq!(
        pair.routers[0]
            .register(Probe::new("probe", OWNED, &log))
            .err(),
        Some(RegisterError::NodeRunning)
    );
    assert_eq!(pair.routers[0].node().node_info(), &before);
    assert!(
        RegisterError::NodeRunning
            .to_string()
            .contains("already has connections")
    );
    // The listener's config offered it: registering with connections up is fine.
    assert!(
        pair.routers[1]
            .register(Probe::new("probe", OWNED, &log))
            .is_ok()
    );
}

#[test]
fn a_protocol_offered_only_by_registering_opens_its_channel_to_a_peer() {
    let log = Log::default();
    let mut pair = Pair::new(probe_router(12, &log), probe_router(13, &log));
    pair.connect();
    let peer = pair.peer_id(1);
    let channels: Vec<ChannelId> = pair.routers[0]
        .node()
        .peer_info(&peer)
        .expect("connected")
        .channels
        .iter()
        .map(|stats| stats.channel)
        .collect();
    assert_eq!(channels, [OWNED, PLAIN]);
    pair.send(0, OWNED, b"hello");
    pair.pump();
    assert_eq!(names(&pair.events(1)), ["hello"]);
}

#[test]
fn a_timer_moved_later_or_cancelled_leaves_no_deadline_behind() {
    let mut router = router(14, |_| {});
    let id = router
        .register(Probe::new("probe", OWNED, &Log::default()))
        .expect("registers");
    router.start(Instant::ZERO);
    let at = |ms| Instant::ZERO + Duration::from_millis(ms);
    router.with_protocol(Instant::ZERO, id, |_, ctx| {
        ctx.set_timer(TimerKey(1), at(10)).expect("room");
        ctx.set_timer(TimerKey(2), at(20)).expect("room");
        ctx.set_timer(TimerKey(1), at(30)).expect("room");
        ctx.cancel_timer(TimerKey(2));
    });
    assert_eq!(router.poll_timeout(), Some(at(30)));
}

/// Opens query connections when told, and notes who connects (and of which kind) and
/// which of its queries failed.
struct Querier {
    log: Log,
}

impl Protocol for Querier {
    fn spec(&self) -> ProtocolSpec {
        ProtocolSpec::new("querier", 1..=1, [OWNED])
    }

    fn peer_connected(
        &mut self,
        ctx: &mut Context<'_>,
        peer: PeerId,
        _version: u16,
    ) -> Result<(), crate::DisconnectReason> {
        let kind = if ctx.is_query(&peer) { "query" } else { "peer" };
        self.log.borrow_mut().push(format!("connected {kind}"));
        Ok(())
    }

    fn message(&mut self, _: &mut Context<'_>, _: PeerId, _: ChannelId, _: Bytes) {}

    fn peer_disconnected(
        &mut self,
        _ctx: &mut Context<'_>,
        _peer: PeerId,
        reason: crate::DisconnectReason,
    ) {
        self.log.borrow_mut().push(format!("disconnected {reason}"));
    }

    fn query_failed(
        &mut self,
        _ctx: &mut Context<'_>,
        addr: NetAddress,
        reason: crate::DisconnectReason,
    ) {
        self.log
            .borrow_mut()
            .push(format!("failed {} {reason}", addr.socket_addr()));
    }
}

fn querier_router(seed: u64, log: &Log) -> Router<ChaCha20Rng> {
    let mut router = router(seed, offer_plain);
    router
        .register(Querier { log: log.clone() })
        .expect("registers");
    router.start(Instant::ZERO);
    router
}

#[test]
fn query_connections_reach_the_protocol_that_opened_them_and_its_failures_too() {
    let (log_a, log_b): (Log, Log) = Default::default();
    let mut pair = Pair::new(querier_router(1, &log_a), querier_router(2, &log_b));
    let to_b = NetAddress::new(Some(pair.peer_id(1)), SocketAddr::new(ip(1), 26656));
    let id = pair.routers[0].id_of::<Querier>().expect("registered");
    let opened = pair.routers[0].with_protocol(Instant::ZERO, id, |_, ctx| ctx.open_query(to_b));
    assert_eq!(opened, Some(Ok(())));
    for _ in 0..4 {
        pair.pump();
        pair.events(0);
        pair.events(1);
    }
    // Both ends' protocols hear of the query peer through their usual hook, and can tell it
    // from a peer; the application still sees the events.
    assert_eq!(*log_a.borrow(), ["connected query"]);
    assert_eq!(*log_b.borrow(), ["connected query"]);
    assert_eq!(pair.routers[0].node().peers().count(), 0);
    let now = pair.now;
    let b = pair.peer_id(1);
    pair.routers[0]
        .node_mut()
        .disconnect(now, &b, crate::DisconnectReason::Requested);
    pair.pump();
    pair.events(1);
    let events = pair.events(0);
    assert!(
        events
            .iter()
            .any(|event| matches!(event, NodeEvent::QueryDisconnected { .. })),
        "{events:?}"
    );
    assert_eq!(
        log_a.borrow().last().map(String::as_str),
        Some("disconnected disconnect requested")
    );
    // A query dial that fails is told to the protocol that opened it, once.
    let nowhere = NetAddress::new(None, SocketAddr::new(ip(7), 26656));
    let opened = pair.routers[0].with_protocol(now, id, |_, ctx| ctx.open_query(nowhere));
    assert_eq!(opened, Some(Ok(())));
    let Some(Action::Dial { conn, .. }) = pair.routers[0].node_mut().poll_action() else {
        panic!("a dial");
    };
    pair.routers[0]
        .node_mut()
        .handle_connect_failed(now, conn, "connection refused");
    let events = pair.events(0);
    assert!(
        events.iter().any(|event| matches!(
            event,
            NodeEvent::QueryFailed { protocol, .. } if protocol == "querier"
        )),
        "{events:?}"
    );
    assert_eq!(
        log_a.borrow().last().map(String::as_str),
        Some("failed 10.0.0.8:26656 network error")
    );
    assert_eq!(log_b.borrow().len(), 2, "connected, then disconnected");
}
