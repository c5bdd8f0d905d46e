//! Protocols run over real loopback sockets: drivers built with a `Router` on their node
//! hand the protocols their peers, messages and timers, write what the protocols send, and
//! pass on to the application what no protocol owns.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mio::{Events, Poll, Token};
use rand_chacha::ChaCha20Rng;
use switchboard::gossip::{Gossip, GossipConfig};
use switchboard::node::{NodeConfig, NodeEvent};
use switchboard::request_response::{RequestEvent, RequestResponse, RequestResponseConfig};
use switchboard::router::{
    Context, Protocol, ProtocolId, ProtocolSpec, RegisterError, Router, TimerKey,
};
use switchboard::{ChannelConfig, ChannelId, DisconnectReason, PeerId};
use switchboard_mio::{Driver, DriverConfig, DriverError, Handle, NodeApi, Runtime, RuntimeError};

mod common;
use common::{CHANNEL, V4, driver_config, node_config};

const PING_CHANNEL: ChannelId = 7;
const TOKENS_PER_DRIVER: usize = 16;

/// Answers `ping…` with `pong…`, keeps the pongs it hears, and counts its timer; from
/// its second timer on, the timer pings every peer.
#[derive(Default)]
struct PingPong {
    peers: Vec<(PeerId, u16)>,
    pongs: Vec<Bytes>,
    disconnected: Vec<(PeerId, DisconnectReason)>,
    timer_fired: u32,
}

impl PingPong {
    /// Fires 150 ms after the router starts.
    const TIMER: Duration = Duration::from_millis(150);
    /// Its only timer.
    const TICK: TimerKey = TimerKey(0);
}

impl Protocol for PingPong {
    fn spec(&self) -> ProtocolSpec {
        ProtocolSpec::new("ping-pong", 1..=1, [PING_CHANNEL])
    }

    fn started(&mut self, ctx: &mut Context<'_>) {
        ctx.set_timer(Self::TICK, ctx.now() + Self::TIMER)
            .expect("room for the timer");
    }

    fn peer_connected(
        &mut self,
        _ctx: &mut Context<'_>,
        peer: PeerId,
        version: u16,
    ) -> Result<(), DisconnectReason> {
        self.peers.push((peer, version));
        Ok(())
    }

    fn message(
        &mut self,
        ctx: &mut Context<'_>,
        peer: PeerId,
        _channel: ChannelId,
        message: Bytes,
    ) {
        if let Some(rest) = message.strip_prefix(b"ping") {
            let pong = [&b"pong"[..], rest].concat();
            ctx.send(&peer, PING_CHANNEL, Bytes::from(pong))
                .expect("room for the pong");
        } else {
            self.pongs.push(message);
        }
    }

    fn peer_disconnected(
        &mut self,
        _ctx: &mut Context<'_>,
        peer: PeerId,
        reason: DisconnectReason,
    ) {
        self.disconnected.push((peer, reason));
    }

    fn timer(&mut self, ctx: &mut Context<'_>, _key: TimerKey) {
        self.timer_fired += 1;
        if self.timer_fired >= 2 {
            for (peer, _) in ctx.peers() {
                let ping = format!("ping-timer-{}", self.timer_fired);
                ctx.send(peer, PING_CHANNEL, Bytes::from(ping))
                    .expect("room for the ping");
            }
        }
    }
}

/// A config offering `protocol` (and the plain test channel, which no protocol owns), with
/// discovery off so only the test's dials connect.
fn config_for(spec: &ProtocolSpec, index: usize) -> DriverConfig {
    let mut node: NodeConfig = node_config(ChannelConfig::new(CHANNEL));
    node.add_protocol(spec);
    let start = index * TOKENS_PER_DRIVER;
    driver_config(V4, node, start..start + TOKENS_PER_DRIVER)
}

type RouterDriver = Driver<Router<ChaCha20Rng>>;

/// Drivers in one poll, each under its own token range, and the loop that runs them: the
/// README's loop, sleeping as long as the drivers allow (up to a cap).
struct Loopback {
    poll: Poll,
    events: Events,
    drivers: Vec<RouterDriver>,
    /// The events the applications took: (driver, event).
    log: Vec<(usize, NodeEvent)>,
}

impl Loopback {
    fn new() -> Self {
        Loopback {
            poll: Poll::new().expect("poll"),
            events: Events::with_capacity(256),
            drivers: Vec::new(),
            log: Vec::new(),
        }
    }

    /// Adds a driver whose router runs `protocol`: its index and the protocol's id.
    fn add<P: Protocol>(&mut self, protocol: P) -> (usize, ProtocolId<P>) {
        let index = self.drivers.len();
        let config = config_for(&protocol.spec(), index);
        let driver = Driver::with_router(self.poll.registry(), config, |router| {
            router.register(protocol)?;
            Ok(())
        })
        .expect("driver");
        let id = driver.stack().id_of::<P>().expect("registered");
        self.drivers.push(driver);
        (index, id)
    }

    fn dial(&mut self, from: usize, to: usize) {
        let addr = self.drivers[to].net_address().expect("listens");
        self.drivers[from].dial(addr).expect("dial");
    }

    /// One turn: sleep as the drivers ask (at most `cap`), hand each its socket events, fire
    /// its timers, take its application events.
    fn turn(&mut self, cap: Duration) {
        let timeout = self
            .drivers
            .iter_mut()
            .filter_map(|driver| driver.poll_timeout())
            .min()
            .map_or(cap, |wait| wait.min(cap));
        self.poll
            .poll(&mut self.events, Some(timeout))
            .expect("poll");
        for event in self.events.iter() {
            let Token(token) = event.token();
            if let Some(driver) = self.drivers.get_mut(token / TOKENS_PER_DRIVER) {
                driver.handle_event(event);
            }
        }
        for (index, driver) in self.drivers.iter_mut().enumerate() {
            while let Some(event) = driver.poll_event() {
                self.log.push((index, event));
            }
        }
    }

    /// Turns, each sleeping at most `cap`, until `done` holds; fails if it has not after
    /// `limit` (checked between turns). Returns how long it took.
    fn run_until(
        &mut self,
        cap: Duration,
        limit: Duration,
        what: &str,
        mut done: impl FnMut(&mut Self) -> bool,
    ) -> Duration {
        let started = Instant::now();
        while !done(self) {
            assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
            self.turn(cap);
        }
        started.elapsed()
    }

    /// As [`Loopback::run_until`], waking at least every 50 ms, for at most 10 s.
    fn wait_for(&mut self, what: &str, done: impl FnMut(&mut Self) -> bool) {
        self.run_until(
            Duration::from_millis(50),
            Duration::from_secs(10),
            what,
            done,
        );
    }

    fn ping_pong(&self, index: usize, id: ProtocolId<PingPong>) -> &PingPong {
        self.drivers[index].protocol(id).expect("registered")
    }
}

#[test]
fn a_protocol_answers_over_loopback_and_its_timer_fires() {
    let mut net = Loopback::new();
    let (a, a_ping) = net.add(PingPong::default());
    let (b, b_ping) = net.add(PingPong::default());
    let (a_id, b_id) = (net.drivers[a].peer_id(), net.drivers[b].peer_id());
    net.dial(a, b);

    // Connection events still reach the application, after the protocols heard of them.
    net.wait_for("PeerConnected at both ends", |net| {
        let connected = |index| {
            net.log
                .iter()
                .any(|(at, event)| *at == index && matches!(event, NodeEvent::PeerConnected { .. }))
        };
        connected(a) && connected(b)
    });
    assert_eq!(net.ping_pong(a, a_ping).peers, vec![(b_id, 1)]);
    assert_eq!(net.ping_pong(b, b_ping).peers, vec![(a_id, 1)]);

    // The ping is taken from its connection inside `poll_event`, where the router hands it to
    // the protocol, which queues the pong: the driver writes it before `poll_event` says
    // `None`, though no event came out.
    net.drivers[a]
        .with_protocol(a_ping, |_, ctx| {
            ctx.send(&b_id, PING_CHANNEL, Bytes::from_static(b"ping-1"))
        })
        .expect("a's protocol")
        .expect("room for the ping");
    let read_before = net.drivers[b].stats().bytes_read;
    let started = Instant::now();
    while net.drivers[b].stats().bytes_read == read_before {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "b never read the ping"
        );
        net.poll
            .poll(&mut net.events, Some(Duration::from_millis(50)))
            .expect("poll");
        for event in net.events.iter() {
            if event.token().0 / TOKENS_PER_DRIVER == b {
                net.drivers[b].handle_event(event);
            }
        }
    }
    let written_before = net.drivers[b].stats().bytes_written;
    assert!(
        net.drivers[b].poll_event().is_none(),
        "the ping is the protocol's, not the application's"
    );
    assert!(
        net.drivers[b].stats().bytes_written > written_before,
        "the pong was not written when poll_event returned"
    );

    // A message on a channel no protocol owns goes to the application.
    net.drivers[a]
        .send(&b_id, CHANNEL, Bytes::from_static(b"for the application"))
        .expect("room");
    let plain = |net: &Loopback| {
        net.log.iter().find_map(|(at, event)| match event {
            NodeEvent::Message {
                channel, message, ..
            } if *at == b => Some((*channel, message.clone())),
            _ => None,
        })
    };
    net.wait_for("the pong and the plain message", |net| {
        !net.ping_pong(a, a_ping).pongs.is_empty() && plain(net).is_some()
    });
    assert_eq!(
        net.ping_pong(a, a_ping).pongs,
        vec![Bytes::from_static(b"pong-1")]
    );
    assert_eq!(
        plain(&net),
        Some((CHANNEL, Bytes::from_static(b"for the application")))
    );

    // The protocols' timers are the driver's deadlines: the loop, sleeping as long as the
    // drivers allow (keepalive alone would allow seconds), wakes for them — the timer set at
    // start, then another set on a quiet connection.
    let long_sleeps = Duration::from_secs(30);
    let took = net.run_until(long_sleeps, long_sleeps, "the start timer", |net| {
        net.ping_pong(a, a_ping).timer_fired == 1
    });
    assert!(
        took < Duration::from_secs(2),
        "the start timer fired after {took:?}"
    );
    net.drivers[a]
        .with_protocol(a_ping, |_, ctx| {
            ctx.set_timer(PingPong::TICK, ctx.now() + PingPong::TIMER)
        })
        .expect("a's protocol")
        .expect("room for the timer");
    let took = net.run_until(long_sleeps, long_sleeps, "the second timer", |net| {
        net.ping_pong(a, a_ping).timer_fired == 2
    });
    assert!(
        took >= PingPong::TIMER && took < Duration::from_secs(2),
        "the timer fired after {took:?}"
    );

    // What the timer sent was written: its pong comes back.
    net.wait_for("the pong of the timer's ping", |net| {
        net.ping_pong(a, a_ping).pongs.len() == 2
    });
    assert_eq!(
        net.ping_pong(a, a_ping).pongs[1],
        Bytes::from_static(b"pong-timer-2")
    );

    // Disconnection reaches the far end's protocol with the reason.
    net.drivers[a].disconnect(&b_id, DisconnectReason::Requested);
    net.wait_for("b's protocol hearing of the disconnection", |net| {
        !net.ping_pong(b, b_ping).disconnected.is_empty()
    });
    assert_eq!(
        net.ping_pong(b, b_ping).disconnected,
        vec![(a_id, DisconnectReason::Requested)]
    );
}

#[test]
fn a_driver_shutting_down_is_idle_only_once_its_protocols_heard_of_every_peer() {
    let mut net = Loopback::new();
    let (a, a_ping) = net.add(PingPong::default());
    let (b, _) = net.add(PingPong::default());
    let b_id = net.drivers[b].peer_id();
    net.dial(a, b);
    net.wait_for("a connection", |net| {
        !net.ping_pong(a, a_ping).peers.is_empty()
    });
    // On loopback the GOAWAY is written, and the peer gone, within `shutdown` itself: the
    // disconnection is still an event to take, and the driver is not idle before it is.
    net.drivers[a].shutdown(std::time::Duration::from_secs(2));
    assert!(
        !net.drivers[a].is_idle(),
        "idle with the disconnection untaken"
    );
    net.wait_for("an idle driver", |net| net.drivers[a].is_idle());
    assert_eq!(
        net.ping_pong(a, a_ping).disconnected,
        vec![(b_id, DisconnectReason::Quitting)]
    );
}

#[test]
fn gossip_crosses_a_line_of_three_nodes_over_loopback() {
    let mut net = Loopback::new();
    let gossip = || Gossip::new(GossipConfig::default());
    let (a, a_gossip) = net.add(gossip());
    let (b, _) = net.add(gossip());
    let (c, c_gossip) = net.add(gossip());
    // a – b – c: a's message reaches c only if b's router forwards it.
    net.dial(a, b);
    net.dial(c, b);
    net.wait_for("the line", |net| {
        let peers = |index: usize| net.drivers[index].node().peers().count();
        (peers(a), peers(b), peers(c)) == (1, 2, 1)
    });
    let c_id = net.drivers[c].peer_id();
    assert!(
        net.drivers[a].node().peers().all(|peer| peer != c_id),
        "a and c must not be neighbours"
    );

    let published = net.drivers[a]
        .with_protocol(a_gossip, |gossip, ctx| {
            gossip.publish(ctx, Bytes::from_static(b"x=1"))
        })
        .expect("a's gossip")
        .expect("not seen before");
    let mut received = None;
    net.wait_for("the message at c", |net| {
        received = net.drivers[c]
            .with_protocol(c_gossip, |gossip, _| gossip.poll_message())
            .expect("c's gossip");
        received.is_some()
    });
    let received = received.expect("received");
    assert_eq!(received.id, published);
    assert_eq!(received.message, Bytes::from_static(b"x=1"));
}

#[test]
fn a_failing_stack_build_is_a_driver_error() {
    let poll = Poll::new().expect("poll");
    let config = config_for(&ProtocolSpec::new("other", 1..=1, [PING_CHANNEL]), 0);
    let built = Driver::new_with_stack(poll.registry(), config, |node, _| {
        let mut router = Router::new(node);
        // Its channel offered by the config for another protocol: registration fails, and
        // so does the driver.
        router.register(PingPong::default())?;
        Ok::<_, RegisterError>(router)
    });
    match built {
        Err(error @ DriverError::Stack(_)) => {
            assert!(error.to_string().contains("channel 7"), "{error}");
        }
        Err(other) => panic!("another error: {other}"),
        Ok(_) => panic!("the driver started without its protocol"),
    }
}

/// A standalone runtime whose router runs `PingPong`, and the protocol's id.
fn router_runtime(index: usize) -> (Handle<Router<ChaCha20Rng>>, ProtocolId<PingPong>) {
    let config = config_for(&PingPong::default().spec(), index);
    Runtime::default()
        .start_with_router(config, |router| router.register(PingPong::default()))
        .expect("runtime")
}

/// Asks `handle`'s protocol every 5 ms until `done` holds; fails after 10 s.
fn wait_for_protocol(
    handle: &Handle<Router<ChaCha20Rng>>,
    id: ProtocolId<PingPong>,
    what: &str,
    done: impl Fn(&PingPong) -> bool + Send + Copy + 'static,
) {
    let started = Instant::now();
    while !handle
        .with_protocol(id, move |ping, _| done(ping))
        .expect("running")
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{what}: not within 10 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_standalone_runtime_runs_protocols_commanded_through_its_handle() {
    let (a, a_ping) = router_runtime(0);
    let (b, b_ping) = router_runtime(1);
    let b_id = b.peer_id();
    a.dial(b.net_address().expect("b listens")).expect("dial");
    common::wait_connected(a.events(), b_id);
    // The protocol heard of the peer (the router runs on the loop's thread) before the
    // application did.
    let peers = a
        .with_protocol(a_ping, |ping, _| ping.peers.clone())
        .expect("running");
    assert_eq!(peers, vec![(b_id, 1)]);

    a.with_protocol(a_ping, move |_, ctx| {
        ctx.send(&b_id, PING_CHANNEL, Bytes::from_static(b"ping-rt"))
    })
    .expect("running")
    .expect("room for the ping");
    wait_for_protocol(&a, a_ping, "the pong", |ping| !ping.pongs.is_empty());
    let pongs = a.with_protocol(a_ping, |ping, _| ping.pongs.clone());
    assert_eq!(pongs, Some(vec![Bytes::from_static(b"pong-rt")]));

    // The protocol's timer is among the loop's deadlines: it fires.
    wait_for_protocol(&b, b_ping, "b's start timer", |ping| ping.timer_fired == 1);

    a.shutdown(std::time::Duration::from_secs(2));
    wait_for_protocol(&b, b_ping, "b's protocol hearing of a's shutdown", |ping| {
        !ping.disconnected.is_empty()
    });
    let peers_left = b.with_stack(|router, _| router.node().peers().count());
    assert_eq!(peers_left, Some(0));
    b.shutdown(std::time::Duration::from_secs(2));
}

/// Two protocols of one type on a runtime: `RequestResponse`s named "double" and "square",
/// each answering with its own handler when `answers`. The ids come back with the handle.
fn two_request_responses(
    index: usize,
    answers: bool,
) -> (
    Handle<Router<ChaCha20Rng>>,
    [ProtocolId<RequestResponse>; 2],
) {
    let start = index * TOKENS_PER_DRIVER;
    let config = driver_config(
        V4,
        node_config(ChannelConfig::new(CHANNEL)),
        start..start + TOKENS_PER_DRIVER,
    );
    Runtime::default()
        .start_with_router(config, move |router| {
            let mut register = |name: &str, channel, op: fn(u8) -> u8| {
                let config = RequestResponseConfig::new(name, channel);
                router.register(match answers {
                    true => RequestResponse::with_handler(config, move |_, question: &Bytes| {
                        Some(question.iter().map(|n| op(*n)).collect())
                    }),
                    false => RequestResponse::new(config),
                })
            };
            Ok([
                register("double", 20, |n| n * 2)?,
                register("square", 21, |n| n * n)?,
            ])
        })
        .expect("runtime")
}

#[test]
fn two_protocols_of_one_type_are_each_reached_by_the_id_start_with_router_returns() {
    let (server, _) = two_request_responses(0, true);
    let (client, [double, square]) = two_request_responses(1, false);
    let server_id = server.peer_id();
    client
        .dial(server.net_address().expect("listens"))
        .expect("dial");
    common::wait_connected(client.events(), server_id);
    // By type, only the first is found: the second is reached by its id alone.
    let by_type = client.with_stack(|router, _| router.id_of::<RequestResponse>());
    assert_eq!(
        format!("{:?}", by_type.flatten()),
        format!("{:?}", Some(double))
    );

    let ask = |id: ProtocolId<RequestResponse>| {
        client
            .with_protocol(id, move |rr, ctx| {
                rr.request(ctx, server_id, Bytes::from_static(&[7]))
            })
            .expect("running")
            .expect("asked")
    };
    let mut asked = vec![("double", ask(double)), ("square", ask(square))];
    let mut answers = Vec::new();
    while !asked.is_empty() {
        let event = common::wait_for(client.events(), Duration::from_secs(10), "an answer", Some);
        let (NodeEvent::Protocol(protocol_event), Some(RequestEvent::Response { id, body, .. })) =
            (&event, RequestEvent::of(&event))
        else {
            continue;
        };
        let name = protocol_event.protocol().to_owned();
        asked.retain(|asked| *asked != (name.as_str(), *id));
        answers.push((name, body.to_vec()));
    }
    answers.sort();
    assert_eq!(
        answers,
        vec![
            ("double".to_owned(), vec![14]),
            ("square".to_owned(), vec![49])
        ]
    );
    client.shutdown(Duration::from_secs(2));
    server.shutdown(Duration::from_secs(2));
}

#[test]
fn a_runtime_whose_stack_fails_to_build_does_not_start() {
    let config = config_for(&ProtocolSpec::new("other", 1..=1, [PING_CHANNEL]), 0);
    let started = Runtime::default().start_with_stack(config, |node, _| {
        let mut router = Router::new(node);
        router.register(PingPong::default())?;
        Ok::<_, RegisterError>(router)
    });
    match started {
        Err(RuntimeError::Driver(DriverError::Stack(error))) => {
            assert!(error.to_string().contains("channel 7"), "{error}");
        }
        Err(other) => panic!("another error: {other}"),
        Ok(_) => panic!("the runtime started without its protocol"),
    }
}

/// Logs its lifecycle hooks, in order.
struct HookLog(Arc<Mutex<Vec<&'static str>>>);

impl Protocol for HookLog {
    fn spec(&self) -> ProtocolSpec {
        ProtocolSpec::new("hook-log", 1..=1, [8])
    }

    fn peer_connected(
        &mut self,
        _: &mut Context<'_>,
        _: PeerId,
        _: u16,
    ) -> Result<(), DisconnectReason> {
        self.0.lock().expect("log").push("connected");
        Ok(())
    }

    fn message(&mut self, _: &mut Context<'_>, _: PeerId, _: ChannelId, _: Bytes) {}

    fn peer_disconnected(&mut self, _: &mut Context<'_>, _: PeerId, _: DisconnectReason) {
        self.0.lock().expect("log").push("disconnected");
    }

    fn stopped(&mut self, _: &mut Context<'_>) {
        self.0.lock().expect("log").push("stopped");
    }
}

#[test]
fn a_runtime_shut_down_cleanly_stops_its_router_last_and_an_aborted_one_never() {
    for clean in [true, false] {
        let log = Arc::new(Mutex::new(Vec::new()));
        let hooks = HookLog(log.clone());
        let spec = hooks.spec();
        let (handle, _) = Runtime::default()
            .start_with_router(config_for(&spec, 0), |router| router.register(hooks))
            .expect("runtime");
        let peer_log = Arc::new(Mutex::new(Vec::new()));
        let peer_hooks = HookLog(peer_log.clone());
        let (peer, _) = Runtime::default()
            .start_with_router(config_for(&spec, 1), |router| router.register(peer_hooks))
            .expect("peer");
        peer.dial(handle.net_address().expect("listens"))
            .expect("dial");
        common::wait_connected(peer.events(), handle.peer_id());
        let started = Instant::now();
        while log.lock().expect("log").is_empty() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "never connected"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        if clean {
            handle.shutdown(std::time::Duration::from_secs(2));
        } else {
            handle.abort();
        }
        let expected: &[&str] = if clean {
            // The protocol hears of its peer's disconnection before it is stopped.
            &["connected", "disconnected", "stopped"]
        } else {
            &["connected"]
        };
        assert_eq!(
            *log.lock().expect("log"),
            expected,
            "clean shutdown: {clean}"
        );
        peer.shutdown(std::time::Duration::from_secs(2));
    }
}

#[test]
fn a_panicking_stack_build_is_reported_with_its_message() {
    let config = config_for(&PingPong::default().spec(), 0);
    let started = Runtime::default().start_with_stack(
        config,
        |_, _| -> Result<Router<ChaCha20Rng>, RegisterError> {
            panic!("the protocol's config file is missing")
        },
    );
    match started {
        Err(error) => assert!(
            error
                .to_string()
                .contains("the protocol's config file is missing"),
            "{error}"
        ),
        Ok(_) => panic!("started"),
    }
}
