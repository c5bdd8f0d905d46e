//! Protocols run over real loopback sockets: drivers built with a `Router` on their node
//! hand the protocols their peers, messages and timers, write what the protocols send, and
//! pass on to the application what no protocol owns.

use std::time::{Duration, Instant};

use bytes::Bytes;
use mio::{Events, Poll, Token};
use switchboard::gossip::{Gossip, GossipConfig};
use switchboard::node::{NodeConfig, NodeEvent};
use switchboard::router::{Context, Protocol, ProtocolId, ProtocolSpec, RegisterError, Router};
use switchboard::{ChannelConfig, ChannelId, DisconnectReason, PeerId};
use switchboard_mio::{Driver, DriverConfig, DriverError, Handle, Runtime, RuntimeError};

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
}

impl Protocol for PingPong {
    fn spec(&self) -> ProtocolSpec {
        ProtocolSpec::new("ping-pong", 1..=1, [PING_CHANNEL])
    }

    fn started(&mut self, ctx: &mut Context<'_>) {
        ctx.set_timer(ctx.now() + Self::TIMER);
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

    fn timer(&mut self, ctx: &mut Context<'_>) {
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
    node.discovery.enabled = false;
    let start = index * TOKENS_PER_DRIVER;
    driver_config(V4, node, start..start + TOKENS_PER_DRIVER)
}

/// A driver whose router runs `protocol`.
fn router_driver<P: Protocol>(
    poll: &Poll,
    index: usize,
    protocol: P,
) -> (Driver<Router<rand_chacha::ChaCha20Rng>>, ProtocolId<P>) {
    let config = config_for(&protocol.spec(), index);
    let driver = Driver::with_router(poll.registry(), config, |router| {
        router.register(protocol)?;
        Ok(())
    })
    .expect("driver");
    let id = driver.stack().id_of::<P>().expect("registered");
    (driver, id)
}

/// One turn of the loop: sleep as the drivers ask (at most `cap`), hand each its events,
/// fire its timers, and give its application events to `on_event`.
fn turn(
    poll: &mut Poll,
    events: &mut Events,
    drivers: &mut [&mut Driver<Router<rand_chacha::ChaCha20Rng>>],
    cap: Duration,
    mut on_event: impl FnMut(usize, NodeEvent),
) {
    let timeout = drivers
        .iter_mut()
        .filter_map(|driver| driver.poll_timeout())
        .min()
        .map_or(cap, |wait| wait.min(cap));
    poll.poll(events, Some(timeout)).expect("poll");
    for event in events.iter() {
        let Token(token) = event.token();
        if let Some(driver) = drivers.get_mut(token / TOKENS_PER_DRIVER) {
            driver.handle_event(event);
        }
    }
    for (index, driver) in drivers.iter_mut().enumerate() {
        driver.handle_timeout();
        while let Some(event) = driver.poll_event() {
            on_event(index, event);
        }
    }
}

#[test]
fn a_protocol_answers_over_loopback_and_its_timer_fires() {
    let mut poll = Poll::new().expect("poll");
    let mut events = Events::with_capacity(256);
    let (mut a, a_ping) = router_driver(&poll, 0, PingPong::default());
    let (mut b, b_ping) = router_driver(&poll, 1, PingPong::default());
    let (a_id, b_id) = (a.peer_id(), b.peer_id());
    a.dial(b.net_address().expect("b listens")).expect("dial");

    // Connection events still reach the application, after the protocols heard of them.
    let started = Instant::now();
    let mut connected = [false; 2];
    while connected != [true; 2] {
        assert!(started.elapsed() < Duration::from_secs(20), "no connection");
        turn(
            &mut poll,
            &mut events,
            &mut [&mut a, &mut b],
            Duration::from_millis(50),
            |index, event| {
                if let NodeEvent::PeerConnected { .. } = event {
                    connected[index] = true;
                }
            },
        );
    }
    assert_eq!(a.protocol(a_ping).expect("a's").peers, vec![(b_id, 1)]);
    assert_eq!(b.protocol(b_ping).expect("b's").peers, vec![(a_id, 1)]);

    // The ping is taken from its connection inside `poll_event`, where the router hands it to
    // the protocol, which queues the pong: the driver writes it before `poll_event` says
    // `None`, though no event came out.
    a.with_protocol(a_ping, |_, ctx| {
        ctx.send(&b_id, PING_CHANNEL, Bytes::from_static(b"ping-1"))
    })
    .expect("a's protocol")
    .expect("room for the ping");
    let read_before = b.stats().bytes_read;
    let started = Instant::now();
    while b.stats().bytes_read == read_before {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "b never read the ping"
        );
        poll.poll(&mut events, Some(Duration::from_millis(50)))
            .expect("poll");
        for event in events.iter() {
            if event.token().0 >= TOKENS_PER_DRIVER {
                b.handle_event(event);
            }
        }
    }
    let written_before = b.stats().bytes_written;
    assert!(
        b.poll_event().is_none(),
        "the ping is the protocol's, not the application's"
    );
    assert!(
        b.stats().bytes_written > written_before,
        "the pong was not written when poll_event returned"
    );

    // A message on a channel no protocol owns goes to the application.
    a.send(&b_id, CHANNEL, Bytes::from_static(b"for the application"))
        .expect("room");
    let started = Instant::now();
    let mut plain = None;
    while a.protocol(a_ping).expect("a's").pongs.is_empty() || plain.is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no pong or plain message"
        );
        turn(
            &mut poll,
            &mut events,
            &mut [&mut a, &mut b],
            Duration::from_secs(30),
            |index, event| {
                if let (
                    1,
                    NodeEvent::Message {
                        channel, message, ..
                    },
                ) = (index, event)
                {
                    plain = Some((channel, message));
                }
            },
        );
    }
    assert_eq!(
        a.protocol(a_ping).expect("a's").pongs,
        vec![Bytes::from_static(b"pong-1")]
    );
    assert_eq!(
        plain,
        Some((CHANNEL, Bytes::from_static(b"for the application")))
    );

    // The protocols' timers are the driver's deadlines: the loop, sleeping as long as the
    // drivers allow (keepalive alone would allow seconds), wakes for them: the timer set at
    // start, then another set on a quiet connection.
    let started = Instant::now();
    while a.protocol(a_ping).expect("a's").timer_fired == 0 {
        turn(
            &mut poll,
            &mut events,
            &mut [&mut a, &mut b],
            Duration::from_secs(30),
            |_, _| {},
        );
    }
    let fired_after = started.elapsed();
    assert!(
        fired_after < Duration::from_secs(2),
        "the start timer fired after {fired_after:?}"
    );
    a.with_protocol(a_ping, |_, ctx| ctx.set_timer(ctx.now() + PingPong::TIMER))
        .expect("a's protocol");
    let started = Instant::now();
    while a.protocol(a_ping).expect("a's").timer_fired == 1 {
        turn(
            &mut poll,
            &mut events,
            &mut [&mut a, &mut b],
            Duration::from_secs(30),
            |_, _| {},
        );
    }
    let fired_after = started.elapsed();
    assert!(
        fired_after >= PingPong::TIMER && fired_after < Duration::from_secs(2),
        "the timer fired after {fired_after:?}"
    );

    // What the timer sent was written: its pong comes back.
    let started = Instant::now();
    while a.protocol(a_ping).expect("a's").pongs.len() < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no pong for the timer's ping"
        );
        turn(
            &mut poll,
            &mut events,
            &mut [&mut a, &mut b],
            Duration::from_millis(50),
            |_, _| {},
        );
    }
    assert_eq!(
        a.protocol(a_ping).expect("a's").pongs[1],
        Bytes::from_static(b"pong-timer-2")
    );

    // Disconnection reaches the far end's protocol with the reason.
    a.disconnect(&b_id, DisconnectReason::Requested);
    let started = Instant::now();
    while b.protocol(b_ping).expect("b's").disconnected.is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "b's protocol never heard"
        );
        turn(
            &mut poll,
            &mut events,
            &mut [&mut a, &mut b],
            Duration::from_millis(50),
            |_, _| {},
        );
    }
    assert_eq!(
        b.protocol(b_ping).expect("b's").disconnected,
        vec![(a_id, DisconnectReason::Requested)]
    );
}

#[test]
fn a_driver_shutting_down_is_idle_only_once_its_protocols_heard_of_every_peer() {
    let mut poll = Poll::new().expect("poll");
    let mut events = Events::with_capacity(256);
    let (mut a, a_ping) = router_driver(&poll, 0, PingPong::default());
    let (mut b, _) = router_driver(&poll, 1, PingPong::default());
    let b_id = b.peer_id();
    a.dial(b.net_address().expect("b listens")).expect("dial");
    let started = Instant::now();
    while a.protocol(a_ping).expect("a's").peers.is_empty() {
        assert!(started.elapsed() < Duration::from_secs(20), "no connection");
        turn(
            &mut poll,
            &mut events,
            &mut [&mut a, &mut b],
            Duration::from_millis(50),
            |_, _| {},
        );
    }
    // On loopback the GOAWAY is written, and the peer gone, within `shutdown` itself: the
    // disconnection is still an event to take, and the driver is not idle before it is.
    a.shutdown();
    assert!(!a.is_idle(), "idle with the disconnection untaken");
    let started = Instant::now();
    while !a.is_idle() {
        assert!(started.elapsed() < Duration::from_secs(10), "never idle");
        turn(
            &mut poll,
            &mut events,
            &mut [&mut a, &mut b],
            Duration::from_millis(50),
            |_, _| {},
        );
    }
    assert_eq!(
        a.protocol(a_ping).expect("a's").disconnected,
        vec![(b_id, DisconnectReason::Quitting)]
    );
}

#[test]
fn gossip_crosses_a_line_of_three_nodes_over_loopback() {
    let mut poll = Poll::new().expect("poll");
    let mut events = Events::with_capacity(256);
    let gossip = || Gossip::new(GossipConfig::default());
    let (mut a, a_gossip) = router_driver(&poll, 0, gossip());
    let (mut b, _) = router_driver(&poll, 1, gossip());
    let (mut c, c_gossip) = router_driver(&poll, 2, gossip());
    // a – b – c: a's message reaches c only if b's router forwards it.
    a.dial(b.net_address().expect("b listens")).expect("dial");
    c.dial(b.net_address().expect("b listens")).expect("dial");
    let started = Instant::now();
    while b.peers().count() < 2 || a.peers().count() < 1 || c.peers().count() < 1 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the line did not form"
        );
        turn(
            &mut poll,
            &mut events,
            &mut [&mut a, &mut b, &mut c],
            Duration::from_millis(50),
            |_, _| {},
        );
    }
    assert!(
        a.peers().all(|peer| peer != c.peer_id()),
        "a and c must not be neighbours"
    );

    let published = a
        .with_protocol(a_gossip, |gossip, ctx| {
            gossip.publish(ctx, Bytes::from_static(b"x=1"))
        })
        .expect("a's gossip")
        .expect("not seen before");
    let started = Instant::now();
    let received = loop {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "c never got the message"
        );
        turn(
            &mut poll,
            &mut events,
            &mut [&mut a, &mut b, &mut c],
            Duration::from_secs(30),
            |_, _| {},
        );
        if let Some(message) = c
            .with_protocol(c_gossip, |gossip, _| gossip.poll_message())
            .expect("c's gossip")
        {
            break message;
        }
    };
    assert_eq!(received.id, published);
    assert_eq!(received.message, Bytes::from_static(b"x=1"));
}

#[test]
fn a_failing_stack_build_is_a_driver_error() {
    let poll = Poll::new().expect("poll");
    let config = config_for(&ProtocolSpec::new("other", 1..=1, [9]), 0);
    let built = Driver::new_with_stack(poll.registry(), config, |node, _| {
        let mut router = Router::new(node);
        // Not offered by the config: registration fails, and so does the driver.
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
fn router_runtime(
    index: usize,
) -> (
    Handle<Router<rand_chacha::ChaCha20Rng>>,
    ProtocolId<PingPong>,
) {
    let config = config_for(&PingPong::default().spec(), index);
    let handle = Runtime::default()
        .start_with_router(config, |router| {
            router.register(PingPong::default())?;
            Ok(())
        })
        .expect("runtime");
    let id = handle
        .with_stack(|router, _| router.id_of::<PingPong>())
        .flatten()
        .expect("registered");
    (handle, id)
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
    let started = Instant::now();
    loop {
        let pongs = a
            .with_protocol(a_ping, |ping, _| ping.pongs.clone())
            .expect("running");
        if !pongs.is_empty() {
            assert_eq!(pongs, vec![Bytes::from_static(b"pong-rt")]);
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "no pong");
        std::thread::sleep(Duration::from_millis(5));
    }
    let timers = b
        .with_protocol(b_ping, |ping, _| ping.timer_fired)
        .expect("running");
    assert!(timers <= 1, "the timer is set once");

    a.shutdown();
    let started = Instant::now();
    while b
        .with_protocol(b_ping, |ping, _| ping.disconnected.clone())
        .expect("running")
        .is_empty()
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "b's protocol never heard"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let b_stack = b.with_stack(|router, _| router.node().peers().count());
    assert_eq!(b_stack, Some(0));
    b.shutdown();
}

#[test]
fn a_runtime_whose_stack_fails_to_build_does_not_start() {
    let config = config_for(&ProtocolSpec::new("other", 1..=1, [9]), 0);
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
