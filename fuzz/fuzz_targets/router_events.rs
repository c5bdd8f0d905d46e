//! A `Router` over one `Node` (small limits, no discovery) with three protocols — `check`
//! (versions 1..=2 on channels 1 and 2) and `aux` (versions 2..=3 on channel 3), both
//! `Checker`s, and a `Gossip` on channel 0x100 with a tiny seen-cache — plus channel 5
//! offered but owned by no protocol. It is driven by an arbitrary sequence of operations:
//! sockets accepted, genuine peers (as in `node_inbound`) handshaking with an arbitrary
//! subset of a pool of channel offers (protocols at versions we speak, do not speak, on
//! mismatched ids), so negotiation varies per peer; sealed records of arbitrary frames on any
//! channel (owned, unowned, not negotiated, unknown); raw bytes, closes, dials, clock steps
//! and timeouts; `poll_event` draining; gossip publishes and takes through `with_protocol`;
//! protocol-initiated sends, disconnects and timers (from inside hooks, by a fuzzed plan, and
//! through `with_protocol`); refusal policies; `stop`, then `start` again.
//!
//! The `Checker` asserts its hooks' order: `started` once and first, nothing after `stopped`,
//! never `peer_connected` twice without `peer_disconnected` between, never a message or a
//! disconnection for a peer it does not hold, messages only on its channels, a version it
//! speaks, `timer` only for a key set and due, a timer refused exactly when it would be one
//! more than `MAX_TIMERS`, and `Context::peers()` equal to its own record at every hook. After every step: each protocol's live `Context::peers()` equals the checker's
//! record and the harness's model (a peer negotiated the protocol — by an oracle written from
//! `PROTOCOL.md` §6.2, not `negotiate` — connected while the router ran, and neither it nor an
//! earlier protocol refused it); once the events are drained, the model equals what the
//! node's `peers()` implies; `poll_event` hands out a message only when no protocol holding
//! the peer owns the channel; the gossip seen-cache stays within its capacity and
//! `delivered` = taken + dropped (+ at most `max_pending` waiting); a publish sends at most
//! one copy per peer (fan-out bounded); and after `handle_timeout(now)` the node's deadline is
//! never in the past and `Router::poll_timeout` is the earliest of it and the checkers' timers
//! (one a hook set for `now` during the call is due at once). What the node writes to a genuine peer authenticates, parses and
//! names only the channels negotiated with it.
#![no_main]

#[path = "common/genuine_peer.rs"]
mod genuine_peer;
#[path = "common/wires.rs"]
mod wires;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use arbitrary::Arbitrary;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use switchboard::dial_queue::DialConfig;
use switchboard::gossip::{Gossip, GossipConfig, MessageId};
use switchboard::node::{Node, NodeConfig, NodeEvent};
use switchboard::peer_set::Limits;
use switchboard::router::{
    Context, MAX_TIMERS, Protocol, ProtocolId, ProtocolSpec, RegisterError, Router, TimerKey,
    TooManyTimers,
};
use switchboard::{
    ChannelConfig, ChannelId, ChannelInfo, DisconnectReason, Instant, NetAddress, NodeInfo, PeerId,
};

use genuine_peer::{ATTACKERS, Conn, IPS, KEYS, MAX_MESSAGE, Peer, PeerFrame, ip, peer, reason};
use wires::Wires;

const CHECK_CHANNELS: [u16; 2] = [1, 2];
const AUX_CHANNEL: u16 = 3;
const GOSSIP_CHANNEL: u16 = 0x100;
/// Offered by the node, owned by no protocol.
const CHAT_CHANNEL: u16 = 5;
const SEEN_CAPACITY: usize = 4;
const SEEN_TTL: Duration = Duration::from_secs(3);
const MAX_PENDING: usize = 3;
/// The protocols, in registration order.
const CHECK: usize = 0;
const AUX: usize = 1;
const GOSSIP: usize = 2;
const NAMES: [&str; 3] = ["check", "aux", "gossip"];

/// What a genuine peer may offer in its `NodeInfo`: a fuzzed subset, in this order, minus
/// the entries that conflict with an earlier one (same id, other protocol or same version).
const OFFERS: [(u16, &str, u16); 14] = [
    (1, "check", 1),
    (2, "check", 1),
    (1, "check", 2),
    (2, "check", 2),
    (1, "check", 3),
    (3, "aux", 2),
    (3, "aux", 3),
    (3, "aux", 1),
    (GOSSIP_CHANNEL, "gossip", 1),
    (GOSSIP_CHANNEL, "gossip", 2),
    (CHAT_CHANNEL, "chat", 1),
    (2, "aux", 2),
    (1, "gossip", 1),
    (7, "other", 1),
];

/// Channels the fuzzer writes and sends on: owned, unowned, not offered, reserved.
fn channel(index: u8) -> u16 {
    [
        1,
        2,
        AUX_CHANNEL,
        GOSSIP_CHANNEL,
        CHAT_CHANNEL,
        0,
        7,
        0xFF00,
    ][usize::from(index) % 8]
}

/// A checker's timer: keys collide often enough to replace each other, and are many enough
/// to reach `MAX_TIMERS`.
fn timer_key(key: u8) -> TimerKey {
    TimerKey(u32::from(key) % (MAX_TIMERS as u32 + 8))
}

/// Which genuine peer `peer` is (`ATTACKERS` for anybody else).
fn key_index(peer: &PeerId) -> usize {
    KEYS.ids[..ATTACKERS]
        .iter()
        .position(|id| id == peer)
        .unwrap_or(ATTACKERS)
}

/// Whether a checker with refusal mask `mask` refuses `peer` speaking `version`.
fn refuses(mask: u8, peer: &PeerId, version: u16) -> bool {
    let bit = key_index(peer) + 4 * usize::from(version & 1);
    bit < 8 && mask & (1 << bit) != 0
}

fn offer(mask: u16) -> Vec<ChannelInfo> {
    let mut channels: Vec<ChannelInfo> = Vec::new();
    for (bit, (id, protocol, version)) in OFFERS.iter().enumerate() {
        if mask & (1 << bit) == 0 {
            continue;
        }
        let conflicts = channels.iter().any(|other| {
            other.id == *id && (other.protocol != *protocol || other.version == *version)
        });
        if !conflicts {
            channels.push(ChannelInfo {
                id: *id,
                protocol: (*protocol).into(),
                version: *version,
            });
        }
    }
    channels
}

/// Negotiation as `PROTOCOL.md` §6.2 words it: per protocol both name, the highest version
/// both offer on some channel, and the channels both list at that version. Per protocol
/// name: (version, channels).
fn oracle(local: &[ChannelInfo], remote: &[ChannelInfo]) -> BTreeMap<String, (u16, Vec<u16>)> {
    let both = |id: u16, protocol: &str, version: u16| {
        let has = |list: &[ChannelInfo]| {
            list.iter()
                .any(|c| c.id == id && c.protocol == protocol && c.version == version)
        };
        has(local) && has(remote)
    };
    let mut out = BTreeMap::new();
    let names: BTreeSet<&str> = local.iter().map(|c| c.protocol.as_str()).collect();
    for name in names {
        let version = local
            .iter()
            .filter(|c| c.protocol == name && both(c.id, name, c.version))
            .map(|c| c.version)
            .max();
        if let Some(version) = version {
            let mut channels: Vec<u16> = local
                .iter()
                .filter(|c| c.protocol == name && c.version == version)
                .filter(|c| both(c.id, name, version))
                .map(|c| c.id)
                .collect();
            channels.sort_unstable();
            channels.dedup();
            out.insert(name.to_string(), (version, channels));
        }
    }
    out
}

fn limits(id: ChannelId) -> ChannelConfig {
    ChannelConfig {
        send_queue_messages: 4,
        send_queue_bytes: 4096,
        max_message_size: MAX_MESSAGE,
        receive_window: 4096,
        ..ChannelConfig::new(id)
    }
}

fn check_spec() -> ProtocolSpec {
    ProtocolSpec {
        name: NAMES[CHECK].into(),
        versions: 1..=2,
        channels: CHECK_CHANNELS.iter().map(|&id| limits(id)).collect(),
    }
}

fn aux_spec() -> ProtocolSpec {
    ProtocolSpec {
        name: NAMES[AUX].into(),
        versions: 2..=3,
        channels: vec![limits(AUX_CHANNEL)],
    }
}

fn gossip_config(fanout: Option<u8>) -> GossipConfig {
    GossipConfig {
        name: NAMES[GOSSIP].into(),
        channel: limits(GOSSIP_CHANNEL),
        fanout: fanout.map(|n| usize::from(n % 4)),
        seen_capacity: SEEN_CAPACITY,
        seen_ttl: SEEN_TTL,
        max_pending: MAX_PENDING,
    }
}

fn node_config(gossip: &Gossip) -> NodeConfig {
    let mut config = NodeConfig::new("sim", "switchboard-fuzz");
    config.add_protocol(&check_spec());
    config.add_protocol(&aux_spec());
    config.add_protocol(&gossip.spec());
    config.add_channel("chat", 1, limits(CHAT_CHANNEL));
    config.connection.ping_interval = Duration::from_secs(2);
    config.connection.pong_timeout = Duration::from_secs(4);
    config.connection.handshake_timeout = Duration::from_secs(3);
    config.limits = Limits {
        max_inbound: 3,
        max_outbound: 2,
        max_pending_handshakes: 4,
        max_pending_per_subnet: 4,
        max_inbound_per_ip: 2,
        max_inbound_per_subnet: 3,
        ..Limits::default()
    };
    config.dial = DialConfig {
        max_in_flight: 2,
        dial_timeout: Duration::from_secs(2),
        backoff_base: Duration::from_millis(500),
        backoff_cap: Duration::from_secs(4),
        max_attempts: 3,
    };
    config.slow_peer_timeout = Duration::from_secs(1);
    config.violation_ban = Duration::from_secs(5);
    config
}

/// Something a checker does from inside a hook, by the fuzzed plan.
#[derive(Arbitrary, Clone, Copy, Debug)]
enum HookAction {
    Nothing,
    Send { peer: u8, channel: u8, len: u16 },
    Disconnect { peer: u8, code: u8 },
    SetTimer { key: u8, ms: u16 },
    CancelTimer { key: u8 },
}

/// A protocol that records its hooks and asserts their order.
struct Checker {
    spec: ProtocolSpec,
    /// Refusal policy: see [`refuses`].
    refuse: u8,
    /// What to do in the next hooks, one action per hook.
    plan: VecDeque<HookAction>,
    started: bool,
    stopped: bool,
    /// The timers it asked for.
    timers: BTreeMap<TimerKey, Instant>,
    /// Its peers, as its hooks told (accepted ones only), with their versions.
    peers: BTreeMap<PeerId, u16>,
}

impl Checker {
    fn new(spec: ProtocolSpec, refuse: u8) -> Self {
        Checker {
            spec,
            refuse,
            plan: VecDeque::new(),
            started: false,
            stopped: false,
            timers: BTreeMap::new(),
            peers: BTreeMap::new(),
        }
    }

    fn name(&self) -> &str {
        &self.spec.name
    }

    /// A hook other than `started`/`stopped` is called: only while running.
    fn alive(&self, hook: &str) {
        assert!(self.started, "{}: {hook} before started", self.name());
        assert!(!self.stopped, "{}: {hook} after stopped", self.name());
    }

    /// `ctx.peers()` is its record, plus `extra` (a peer being connected).
    fn agree(&self, ctx: &Context<'_>, extra: Option<(PeerId, u16)>) {
        let mut expected: BTreeMap<PeerId, u16> = self.peers.clone();
        if let Some((peer, version)) = extra {
            expected.insert(peer, version);
        }
        let expected: Vec<(PeerId, u16)> = expected.into_iter().collect();
        assert_eq!(
            ctx.peers(),
            &expected[..],
            "{}: Context::peers() disagrees with the hooks",
            self.name()
        );
    }

    fn set_timer(&mut self, ctx: &mut Context<'_>, key: u8, ms: u16) {
        let key = timer_key(key);
        let at = ctx.now().saturating_add(Duration::from_millis(ms.into()));
        let full = self.timers.len() >= MAX_TIMERS && !self.timers.contains_key(&key);
        let set = ctx.set_timer(key, at);
        assert_eq!(set, if full { Err(TooManyTimers) } else { Ok(()) });
        if set.is_ok() {
            self.timers.insert(key, at);
        }
        assert_eq!(ctx.timer(key), self.timers.get(&key).copied());
    }

    fn cancel_timer(&mut self, ctx: &mut Context<'_>, key: u8) {
        let key = timer_key(key);
        self.timers.remove(&key);
        ctx.cancel_timer(key);
        assert_eq!(ctx.timer(key), None);
    }

    fn act(&mut self, ctx: &mut Context<'_>) {
        let Some(action) = self.plan.pop_front() else {
            return;
        };
        match action {
            HookAction::Nothing => {}
            HookAction::Send { peer, channel, len } => {
                let message = Bytes::from(vec![0x3C; usize::from(len)]);
                let _ = ctx.send(&self::peer(peer), self::channel(channel), message);
            }
            HookAction::Disconnect { peer, code } => {
                ctx.disconnect(&self::peer(peer), reason(code));
            }
            HookAction::SetTimer { key, ms } => self.set_timer(ctx, key, ms),
            HookAction::CancelTimer { key } => self.cancel_timer(ctx, key),
        }
    }
}

impl Protocol for Checker {
    fn spec(&self) -> ProtocolSpec {
        self.spec.clone()
    }

    fn started(&mut self, ctx: &mut Context<'_>) {
        assert!(!self.started, "{}: started twice", self.name());
        assert!(!self.stopped, "{}: started after stopped", self.name());
        self.started = true;
        self.agree(ctx, None);
        self.act(ctx);
    }

    fn peer_connected(
        &mut self,
        ctx: &mut Context<'_>,
        peer: PeerId,
        version: u16,
    ) -> Result<(), DisconnectReason> {
        self.alive("peer_connected");
        assert!(
            self.spec.versions.contains(&version),
            "{}: connected at version {version}",
            self.name()
        );
        assert!(
            !self.peers.contains_key(&peer),
            "{}: {peer} connected twice",
            self.name()
        );
        self.agree(ctx, Some((peer, version)));
        self.act(ctx);
        if refuses(self.refuse, &peer, version) {
            return Err(reason(self.refuse));
        }
        self.peers.insert(peer, version);
        Ok(())
    }

    fn message(&mut self, ctx: &mut Context<'_>, peer: PeerId, channel: ChannelId, message: Bytes) {
        self.alive("message");
        assert!(
            self.peers.contains_key(&peer),
            "{}: message from {peer}, not connected",
            self.name()
        );
        assert!(
            self.spec.has_channel(channel),
            "{}: message on channel {channel}",
            self.name()
        );
        assert!(message.len() <= MAX_MESSAGE as usize);
        self.agree(ctx, None);
        self.act(ctx);
    }

    fn peer_disconnected(&mut self, ctx: &mut Context<'_>, peer: PeerId, _: DisconnectReason) {
        self.alive("peer_disconnected");
        assert!(
            self.peers.remove(&peer).is_some(),
            "{}: {peer} disconnected, not connected",
            self.name()
        );
        self.agree(ctx, None);
        self.act(ctx);
    }

    fn timer(&mut self, ctx: &mut Context<'_>, key: TimerKey) {
        self.alive("timer");
        let at = self.timers.remove(&key);
        assert!(
            at.is_some_and(|at| at <= ctx.now()),
            "{}: {key} at {:?}, asked for {at:?}",
            self.name(),
            ctx.now()
        );
        self.agree(ctx, None);
        self.act(ctx);
    }

    fn stopped(&mut self, ctx: &mut Context<'_>) {
        assert!(self.started, "{}: stopped before started", self.name());
        assert!(!self.stopped, "{}: stopped twice", self.name());
        self.stopped = true;
        self.agree(ctx, None);
    }
}

#[derive(Arbitrary, Debug)]
enum Operation {
    /// A socket accepted from address `ip % 8`.
    Accept {
        ip: u8,
        port: u16,
    },
    /// The same, then a genuine dialer with identity `key` offering `offer` on it.
    AcceptPeer {
        ip: u8,
        port: u16,
        key: u8,
        offer: u16,
    },
    /// A genuine peer takes over connection `conn` and the two talk.
    Handshake {
        conn: u8,
        key: u8,
        offer: u16,
    },
    /// Raw bytes read from `conn`'s socket.
    Input {
        conn: u8,
        bytes: Vec<u8>,
    },
    /// Well-formed frames the genuine peer on `conn` seals as one record, read in two pieces.
    Frames {
        conn: u8,
        frames: Vec<PeerFrame>,
        cut: u16,
    },
    /// The genuine peer on `conn` sends one whole message, then the router's events are
    /// taken (the short way to dispatch).
    Message {
        conn: u8,
        channel: u8,
        len: u16,
        fill: u8,
    },
    Closed {
        conn: u8,
    },
    Blocked {
        conn: u8,
    },
    Writable {
        conn: u8,
    },
    Dial {
        ip: u8,
        peer: Option<u8>,
    },
    Advance {
        ms: u16,
    },
    /// Jumps to the router's next deadline.
    Wake,
    /// Drains `poll_transmit` and lets the genuine peers answer.
    Pump,
    /// Takes up to `max` events from the router (all when 0).
    Events {
        max: u8,
    },
    /// Publishes `len` bytes of `fill` through `with_protocol`.
    Publish {
        len: u16,
        fill: u8,
    },
    /// Takes up to `max` gossip messages (all when 0).
    TakeGossip {
        max: u8,
    },
    /// The next hooks of checker `aux` (else `check`) do these.
    Plan {
        aux: bool,
        actions: Vec<HookAction>,
    },
    Refuse {
        aux: bool,
        mask: u8,
    },
    /// Through `with_protocol`: a checker sets (or cancels) a timer, sends, disconnects.
    Timer {
        aux: bool,
        key: u8,
        ms: Option<u16>,
    },
    ProtocolSend {
        aux: bool,
        peer: u8,
        channel: u8,
        len: u16,
    },
    ProtocolDisconnect {
        aux: bool,
        peer: u8,
        code: u8,
    },
    /// The application disconnects or bans a peer on the node.
    Disconnect {
        peer: u8,
        code: u8,
    },
    BanPeer {
        peer: u8,
        ms: u16,
    },
    Start,
    Stop,
}

#[derive(Arbitrary, Debug)]
struct Input {
    /// Start the router only at the first `Start` (peers connected before are never told).
    start_late: bool,
    refuse: [u8; 2],
    fanout: Option<u8>,
    operations: Vec<Operation>,
}

/// What the harness expects of one connected peer.
struct Expected {
    /// Negotiated per protocol (by the oracle): version and channels.
    open: BTreeMap<String, (u16, Vec<u16>)>,
    /// Connected while the router ran (so the protocols heard of it).
    told: bool,
    /// Refused by this protocol (so it and those after it never had it).
    refused_by: Option<usize>,
}

struct Fuzz {
    router: Router<ChaCha20Rng>,
    checkers: [ProtocolId<Checker>; 2],
    gossip: ProtocolId<Gossip>,
    fanout: Option<usize>,
    local: Vec<ChannelInfo>,
    wires: Wires,
    started: bool,
    stopped: bool,
    refuse: [u8; 2],
    /// Connected peers, as the router's events told.
    connected: BTreeMap<PeerId, Expected>,
    /// Each protocol's peers and versions, as the harness's model has them.
    model: [BTreeMap<PeerId, u16>; 3],
    /// Every peer gossip ever had.
    gossip_peers: BTreeSet<PeerId>,
    gossip_taken: u64,
}

impl Fuzz {
    fn new(input: &Input) -> Self {
        let now = Instant::from_nanos(1_000_000_000);
        let gossip = Gossip::new(gossip_config(input.fanout));
        let config = node_config(&gossip);
        let local = config.channels.clone();
        let node = Node::new(
            now,
            config,
            KEYS.node.clone(),
            ChaCha20Rng::seed_from_u64(1),
        )
        .expect("a valid config");
        let mut router = Router::new(node);
        let check = router
            .register(Checker::new(check_spec(), input.refuse[0]))
            .expect("check registers");
        let aux = router
            .register(Checker::new(aux_spec(), input.refuse[1]))
            .expect("aux registers");
        let gossip = router.register(gossip).expect("gossip registers");
        // What registration must refuse.
        let named = |name: &str, channel: u16| ProtocolSpec {
            name: name.into(),
            versions: 2..=2,
            channels: vec![limits(channel)],
        };
        assert_eq!(
            router.register(Checker::new(named("check", 9), 0)).err(),
            Some(RegisterError::NameTaken)
        );
        assert_eq!(
            router
                .register(Checker::new(named("x", AUX_CHANNEL), 0))
                .err(),
            Some(RegisterError::ChannelTaken(AUX_CHANNEL))
        );
        assert_eq!(
            router
                .register(Checker::new(named("y", CHAT_CHANNEL), 0))
                .err(),
            Some(RegisterError::ChannelTaken(CHAT_CHANNEL))
        );
        let mut fuzz = Fuzz {
            router,
            checkers: [check, aux],
            gossip,
            fanout: input.fanout.map(|n| usize::from(n % 4)),
            local,
            wires: Wires::new(now),
            started: false,
            stopped: false,
            refuse: input.refuse,
            connected: BTreeMap::new(),
            model: Default::default(),
            gossip_peers: BTreeSet::new(),
            gossip_taken: 0,
        };
        if !input.start_late {
            fuzz.start();
        }
        fuzz
    }

    fn running(&self) -> bool {
        self.started && !self.stopped
    }

    fn start(&mut self) {
        self.router.start(self.wires.now);
        self.started = true;
        assert_eq!(
            self.router.register(Checker::new(check_spec(), 0)).err(),
            Some(RegisterError::Started)
        );
    }

    /// Takes the node's actions, as the adapter must after every input.
    fn actions(&mut self) {
        self.wires.actions(self.router.node_mut());
    }

    fn pump(&mut self) {
        self.wires.pump(self.router.node_mut());
    }

    fn accept(&mut self, ip: u8, port: u16) -> Option<usize> {
        let addr = SocketAddr::new(self::ip(ip), port);
        let id = self
            .router
            .node_mut()
            .handle_accepted(self.wires.now, addr)
            .ok()?;
        self.wires.announce(Conn::new(id, Some(addr.ip())));
        self.actions();
        Some(self.wires.conns.len() - 1)
    }

    /// A genuine peer with identity `key`, offering `offer`, takes over connection `index`.
    fn handshake(&mut self, index: usize, key: u8, offer: u16) {
        let local = &self.local;
        self.wires.handshake(
            self.router.node_mut(),
            index,
            key,
            || {
                let mut info = NodeInfo::new("sim", "genuine");
                info.channels = self::offer(offer);
                info
            },
            |info| {
                oracle(local, &info.channels)
                    .values()
                    .flat_map(|(_, ids)| ids.clone())
                    .collect()
            },
        );
    }

    /// The genuine peer of connection `index` seals `plaintext` and writes it in two reads.
    fn record(&mut self, index: usize, plaintext: &[u8], cut: u16) {
        let Some((id, wire, cut)) = self.wires.seal(index, plaintext, cut) else {
            return;
        };
        let (head, tail) = wire.split_at(cut);
        let now = self.wires.now;
        self.router.node_mut().handle_input(now, id, head);
        self.actions();
        self.check();
        self.router.node_mut().handle_input(now, id, tail);
    }

    /// Which protocol owns `channel`.
    fn owner(channel: ChannelId) -> Option<usize> {
        match channel {
            1 | 2 => Some(CHECK),
            AUX_CHANNEL => Some(AUX),
            GOSSIP_CHANNEL => Some(GOSSIP),
            _ => None,
        }
    }

    /// A peer connected (event taken while the router runs): which protocols hear of it.
    fn connect_model(&mut self, peer: PeerId, expected: &mut Expected) {
        for (protocol, name) in NAMES.iter().enumerate() {
            let Some(&(version, _)) = expected.open.get(*name) else {
                continue;
            };
            if protocol != GOSSIP && refuses(self.refuse[protocol], &peer, version) {
                expected.refused_by = Some(protocol);
                return;
            }
            self.model[protocol].insert(peer, version);
            if protocol == GOSSIP {
                self.gossip_peers.insert(peer);
            }
        }
    }

    fn events(&mut self, max: u8) {
        let mut taken = 0;
        loop {
            if max != 0 && taken == max {
                return;
            }
            let Some(event) = self.router.poll_event(self.wires.now) else {
                break;
            };
            taken += 1;
            match event {
                NodeEvent::PeerConnected { peer, info, .. } => {
                    assert!(KEYS.ids[..ATTACKERS].contains(&peer), "{peer} is nobody");
                    let mut expected = Expected {
                        open: oracle(&self.local, &info.channels),
                        told: self.running(),
                        refused_by: None,
                    };
                    if expected.told {
                        self.connect_model(peer, &mut expected);
                    }
                    assert!(
                        self.connected.insert(peer, expected).is_none(),
                        "{peer} connected twice"
                    );
                }
                NodeEvent::PeerDisconnected { peer, .. } => {
                    assert!(
                        self.connected.remove(&peer).is_some(),
                        "{peer} disconnected, not connected"
                    );
                    if self.running() {
                        for model in &mut self.model {
                            model.remove(&peer);
                        }
                    }
                }
                NodeEvent::Message {
                    peer,
                    channel,
                    message,
                } => {
                    let expected = self
                        .connected
                        .get(&peer)
                        .unwrap_or_else(|| panic!("message from absent {peer}"));
                    assert!(
                        expected
                            .open
                            .values()
                            .any(|(_, ids)| ids.contains(&channel)),
                        "message on channel {channel}, not negotiated with {peer}"
                    );
                    assert!(message.len() <= MAX_MESSAGE as usize);
                    if self.running()
                        && let Some(owner) = Self::owner(channel)
                    {
                        assert!(
                            !self.model[owner].contains_key(&peer),
                            "a message on {channel} from {peer}, held by {}, not dispatched",
                            NAMES[owner]
                        );
                    }
                }
                NodeEvent::SlowPeer { peer } => {
                    assert!(self.connected.contains_key(&peer), "absent {peer} is slow");
                }
                NodeEvent::InboundRefused { .. } => {}
                NodeEvent::Writable { peer, channel } => {
                    assert!(self.connected.contains_key(&peer), "absent {peer} writable");
                    if self.running()
                        && let Some(owner) = Self::owner(channel)
                    {
                        assert!(
                            !self.model[owner].contains_key(&peer),
                            "Writable on {channel} for {peer}, held by {}, not dispatched",
                            NAMES[owner]
                        );
                    }
                }
                NodeEvent::DialFailed { addr, .. } => {
                    assert!(IPS.contains(&addr.socket_addr().ip()));
                }
                other => panic!("an event this target does not model: {other:?}"),
            }
            self.actions();
            self.check();
        }
        // All taken: the events told every change of `peers()`, and each protocol holds
        // exactly the peers that negotiated it and that it (and those before it) accepted.
        let peers: BTreeSet<PeerId> = self.router.node().peers().collect();
        let connected: BTreeSet<PeerId> = self.connected.keys().copied().collect();
        assert_eq!(peers, connected, "peers() disagrees with the events");
        if self.running() {
            for (protocol, model) in self.model.iter().enumerate() {
                let expected: BTreeMap<PeerId, u16> = self
                    .connected
                    .iter()
                    .filter(|(_, expected)| {
                        expected.told && expected.refused_by.is_none_or(|by| protocol < by)
                    })
                    .filter_map(|(peer, expected)| {
                        let (version, _) = expected.open.get(NAMES[protocol])?;
                        Some((*peer, *version))
                    })
                    .collect();
                assert_eq!(
                    model, &expected,
                    "{}: the model disagrees with the node's peers",
                    NAMES[protocol]
                );
            }
        }
    }

    fn timeout(&mut self) {
        let now = self.wires.now;
        self.router.handle_timeout(now);
        self.actions();
        let node = self.router.node().poll_timeout();
        if let Some(deadline) = node {
            assert!(
                deadline > now,
                "the node's deadline is {deadline:?} after handle_timeout({now:?})"
            );
        }
        // The checkers' timers count only while the router runs (they cannot fire
        // otherwise); gossip sets none.
        let timers = if self.running() {
            [false, true]
                .into_iter()
                .filter_map(|aux| {
                    self.with_checker(aux, |checker, _| checker.timers.values().min().copied())
                })
                .min()
        } else {
            None
        };
        let expected = node.into_iter().chain(timers).min();
        assert_eq!(
            self.router.poll_timeout(),
            expected,
            "Router::poll_timeout after handle_timeout({now:?}) (running: {})",
            self.running()
        );
    }

    fn with_checker<T>(
        &mut self,
        aux: bool,
        f: impl FnOnce(&mut Checker, &mut Context<'_>) -> T,
    ) -> T {
        let id = self.checkers[usize::from(aux)];
        self.router
            .with_protocol(self.wires.now, id, f)
            .expect("the checker is registered")
    }

    fn publish(&mut self, len: u16, fill: u8) {
        let message = Bytes::from(vec![fill; usize::from(len)]);
        let fanout = self.fanout;
        let (before, after, peers, id) = self
            .router
            .with_protocol(self.wires.now, self.gossip, |gossip, ctx| {
                let before = gossip.stats();
                let peers = ctx.peers().len();
                let id = gossip.publish(ctx, message.clone());
                (before, gossip.stats(), peers, id)
            })
            .expect("gossip is registered");
        if let Some(id) = id {
            assert_eq!(id, MessageId::of(&message));
        }
        assert_eq!(after.published, before.published + u64::from(id.is_some()));
        let copies =
            (after.transmissions - before.transmissions) + (after.refused - before.refused);
        let bound = fanout.map_or(peers, |fanout| fanout.min(peers));
        assert!(
            copies <= bound as u64,
            "a publish made {copies} copies for {peers} peers"
        );
        assert!(id.is_some() || copies == 0, "a refused publish sent");
    }

    fn take_gossip(&mut self, max: u8) {
        let messages = self
            .router
            .with_protocol(self.wires.now, self.gossip, |gossip, _| {
                let mut messages = Vec::new();
                while max == 0 || messages.len() < usize::from(max) {
                    let Some(message) = gossip.poll_message() else {
                        break;
                    };
                    messages.push(message);
                }
                messages
            })
            .expect("gossip is registered");
        for message in messages {
            self.gossip_taken += 1;
            assert_eq!(message.id, MessageId::of(&message.message));
            assert!(
                self.gossip_peers.contains(&message.from),
                "gossip delivered a message from {}, never its peer",
                message.from
            );
        }
        if max == 0 {
            let stats = self.router.protocol(self.gossip).expect("gossip").stats();
            assert_eq!(
                stats.delivered,
                self.gossip_taken + stats.dropped,
                "gossip delivered {} messages, handed out {}, dropped {}",
                stats.delivered,
                self.gossip_taken,
                stats.dropped
            );
        }
    }

    /// What holds after every step.
    fn check(&mut self) {
        self.actions();
        assert_eq!(
            self.router.node().connection_count(),
            self.wires.conns.len() - self.wires.closes,
            "connections: announced minus closed"
        );
        // Each protocol's live `Context::peers()` is its record and the model's.
        for protocol in [CHECK, AUX] {
            let (live, record, started, stopped) =
                self.with_checker(protocol == AUX, |checker, ctx| {
                    (
                        ctx.peers().to_vec(),
                        checker.peers.clone(),
                        checker.started,
                        checker.stopped,
                    )
                });
            let record: Vec<(PeerId, u16)> = record.into_iter().collect();
            assert_eq!(
                live, record,
                "{}: Context::peers() and hooks",
                NAMES[protocol]
            );
            let model: Vec<(PeerId, u16)> =
                self.model[protocol].iter().map(|(p, v)| (*p, *v)).collect();
            assert_eq!(
                live, model,
                "{}: Context::peers() and model",
                NAMES[protocol]
            );
            assert_eq!(started, self.started, "{}: started", NAMES[protocol]);
            assert_eq!(stopped, self.stopped, "{}: stopped", NAMES[protocol]);
        }
        let (live, seen, stats) = self
            .router
            .with_protocol(self.wires.now, self.gossip, |gossip, ctx| {
                (ctx.peers().to_vec(), gossip.seen_len(), gossip.stats())
            })
            .expect("gossip is registered");
        let model: Vec<(PeerId, u16)> = self.model[GOSSIP].iter().map(|(p, v)| (*p, *v)).collect();
        assert_eq!(live, model, "gossip: Context::peers() and model");
        assert!(seen <= SEEN_CAPACITY, "{seen} ids in the seen-cache");
        let accounted = self.gossip_taken + stats.dropped;
        assert!(
            stats.delivered >= accounted && stats.delivered - accounted <= MAX_PENDING as u64,
            "gossip delivered {}, handed out {}, dropped {}",
            stats.delivered,
            self.gossip_taken,
            stats.dropped
        );
    }

    fn apply(&mut self, operation: Operation) {
        match operation {
            Operation::Accept { ip, port } => {
                self.accept(ip, port);
            }
            Operation::AcceptPeer {
                ip,
                port,
                key,
                offer,
            } => {
                if let Some(index) = self.accept(ip, port) {
                    self.handshake(index, key, offer);
                }
            }
            Operation::Handshake { conn, key, offer } => {
                if let Some(index) = self.wires.conn(conn) {
                    self.handshake(index, key, offer);
                }
            }
            Operation::Input { conn, bytes } => {
                if let Some(index) = self.wires.conn(conn) {
                    let conn = &mut self.wires.conns[index];
                    conn.tainted |= !matches!(conn.peer, Peer::Established(_));
                    conn.connected = true;
                    let id = conn.id;
                    self.router
                        .node_mut()
                        .handle_input(self.wires.now, id, &bytes);
                }
            }
            Operation::Frames { conn, frames, cut } => {
                if let Some(index) = self.wires.conn(conn)
                    && let Peer::Established(session) = &self.wires.conns[index].peer
                {
                    let mut plaintext = Vec::new();
                    for fuzz_frame in frames {
                        fuzz_frame.to_frame(session, channel).encode(&mut plaintext);
                    }
                    self.record(index, &plaintext, cut);
                }
            }
            Operation::Message {
                conn,
                channel,
                len,
                fill,
            } => {
                if let Some(index) = self.wires.conn(conn)
                    && let Peer::Established(session) = &self.wires.conns[index].peer
                {
                    let mut plaintext = Vec::new();
                    PeerFrame::Message { channel, len, fill }
                        .to_frame(session, self::channel)
                        .encode(&mut plaintext);
                    self.record(index, &plaintext, u16::MAX);
                    self.pump();
                    self.events(0);
                }
            }
            Operation::Closed { conn } => {
                if let Some(index) = self.wires.conn(conn) {
                    let conn = &mut self.wires.conns[index];
                    conn.transport_closed = true;
                    let id = conn.id;
                    self.router.node_mut().handle_closed(self.wires.now, id);
                }
            }
            Operation::Blocked { conn } => {
                if let Some(index) = self.wires.conn(conn) {
                    let conn = &mut self.wires.conns[index];
                    conn.blocked = true;
                    let id = conn.id;
                    self.router
                        .node_mut()
                        .handle_write_blocked(self.wires.now, id);
                }
            }
            Operation::Writable { conn } => {
                if let Some(index) = self.wires.conn(conn) {
                    let conn = &mut self.wires.conns[index];
                    conn.blocked = false;
                    let id = conn.id;
                    self.router.node_mut().handle_writable(self.wires.now, id);
                }
            }
            Operation::Dial { ip, peer } => {
                let addr =
                    NetAddress::new(peer.map(self::peer), SocketAddr::new(self::ip(ip), 26656));
                let _ = self.router.node_mut().dial(self.wires.now, addr);
            }
            Operation::Advance { ms } => {
                self.wires.now = self
                    .wires
                    .now
                    .saturating_add(Duration::from_millis(ms.into()));
                self.timeout();
            }
            Operation::Wake => {
                if let Some(deadline) = self.router.poll_timeout() {
                    self.wires.now = self.wires.now.max(deadline);
                }
                self.timeout();
            }
            Operation::Pump => self.pump(),
            Operation::Events { max } => self.events(max),
            Operation::Publish { len, fill } => self.publish(len, fill),
            Operation::TakeGossip { max } => self.take_gossip(max),
            Operation::Plan { aux, actions } => {
                self.with_checker(aux, |checker, _| checker.plan = actions.into());
            }
            Operation::Refuse { aux, mask } => {
                self.refuse[usize::from(aux)] = mask;
                self.with_checker(aux, |checker, _| checker.refuse = mask);
            }
            Operation::Timer { aux, key, ms } => self.with_checker(aux, |checker, ctx| match ms {
                Some(ms) => checker.set_timer(ctx, key, ms),
                None => checker.cancel_timer(ctx, key),
            }),
            Operation::ProtocolSend {
                aux,
                peer,
                channel,
                len,
            } => {
                let peer = self::peer(peer);
                let connected = self.router.node().peers().any(|p| p == peer);
                let sent = self.with_checker(aux, |_, ctx| {
                    let message = Bytes::from(vec![0x5A; usize::from(len)]);
                    ctx.send(&peer, self::channel(channel), message)
                });
                assert!(
                    connected || sent.is_err(),
                    "a protocol sent to an absent peer"
                );
            }
            Operation::ProtocolDisconnect { aux, peer, code } => {
                self.with_checker(aux, |_, ctx| {
                    ctx.disconnect(&self::peer(peer), reason(code))
                });
            }
            Operation::Disconnect { peer, code } => {
                let now = self.wires.now;
                self.router
                    .node_mut()
                    .disconnect(now, &self::peer(peer), reason(code));
            }
            Operation::BanPeer { peer, ms } => {
                let now = self.wires.now;
                self.router.node_mut().ban_peer(
                    now,
                    &self::peer(peer),
                    Duration::from_millis(ms.into()),
                );
            }
            Operation::Start => {
                // After a stop, a no-op: the checkers assert `started` comes once.
                self.start();
            }
            Operation::Stop => {
                self.router.stop(self.wires.now);
                if self.started {
                    self.stopped = true;
                }
            }
        }
        self.check();
    }
}

fuzz_target!(|input: Input| {
    let mut fuzz = Fuzz::new(&input);
    for operation in input.operations.into_iter().take(512) {
        fuzz.apply(operation);
    }
    fuzz.pump();
    fuzz.events(0);
    fuzz.take_gossip(0);
    fuzz.check();
});
