//! Discovery: the address book, PEX, seeds, seed mode and feelers, as a [`Protocol`] on the
//! router — built only on what the node offers every protocol ([`Context`]): dials, probes,
//! dial reports, the outbound slots, the connected peers. A node without it dials only what
//! its application asks for; one with its own discovery registers that instead.
//!
//! Every [`DiscoveryConfig::interval`] it tops up the outbound slots from the [`AddrBook`],
//! at most one outbound peer per address group (persistent peers aside), so that one
//! network — one attacker — holds at most one of our outbound connections. While slots stay
//! empty it asks a peer for addresses (`GetAddrs`, paced per peer by [`Pex`]); while the
//! book is nearly empty it dials the configured seeds. Addresses learned are stored with
//! the IP of the peer that relayed them, which is what the book's buckets are keyed on.
//! Every dial the node makes — ours, the application's, persistent peers' — teaches the
//! book ([`Protocol::dialed`]): a dial started is an attempt, a completed handshake moves
//! the address to the *tried* table, a failure counts against it.
//!
//! In seed mode it answers `GetAddrs` and then disconnects the peer once the answer is
//! confirmed (darkfi's seed protocol, CometBFT's seed mode): it hands out addresses without
//! holding slots for long.
//!
//! With every outbound slot full it still probes one address from its book every
//! [`DiscoveryConfig::feeler_interval`] — a *feeler* (Bitcoin Core's feeler connections,
//! [`Context::probe`]): the handshake proves the address alive (it moves to *tried*) and the
//! connection is dropped at once, never admitted as a peer. The far end learns our address
//! from the handshake. That is what lets a group of nodes whose books know only each other —
//! nodes that restarted without their book and bootstrapped from a seed that lost its own —
//! find the rest of the network again: the rest never dials them otherwise, its slots being
//! full, and they have no address to dial it by. The occupants of tried-table collisions are
//! probed the same way (test-before-evict).
//!
//! ```
//! use switchboard::discovery::{Discovery, DiscoveryConfig};
//! use switchboard::node::{Node, NodeConfig};
//! use switchboard::router::Router;
//! use switchboard::{Instant, Keypair};
//! # use rand_chacha::ChaCha20Rng;
//! # use rand_core::SeedableRng;
//!
//! let mut rng = ChaCha20Rng::seed_from_u64(1);
//! let keypair = Keypair::generate(&mut rng);
//! let mut node = Node::new(Instant::ZERO, NodeConfig::new("mainnet", "app/1"), keypair, rng)
//!     .unwrap();
//! let mut config = DiscoveryConfig::default();
//! config.seeds = vec!["203.0.113.7:26656".parse().unwrap()];
//! let discovery = Discovery::new(config, node.rng());
//! let router = Router::with_protocols(node, Instant::ZERO, |router| {
//!     router.register(discovery).map(drop)
//! })
//! .unwrap();
//! let id = router.id_of::<Discovery>().unwrap();
//! assert_eq!(router.protocol(id).unwrap().addr_book().len(), 0);
//! ```

mod config;
#[cfg(test)]
mod tests;

use alloc::collections::BTreeSet;
use alloc::string::ToString;
use alloc::vec::Vec;
use core::net::SocketAddr;

use bytes::Bytes;
use rand_core::CryptoRng;

pub use config::DiscoveryConfig;

use crate::addr_book::{AddOutcome, AddrBook, AddrBookDecodeError, AddressGroup, address_group};
use crate::channel::ChannelId;
use crate::disconnect::DisconnectReason;
use crate::identity::PeerId;
use crate::net_address::NetAddress;
use crate::node::DialReport;
use crate::peer_set::Direction;
use crate::pex::{MAX_ADDRS, PEX_CHANNEL, PEX_PROTOCOL, Pex, PexIncoming, PexMessage};
use crate::router::{Context, Protocol, ProtocolSpec, TimerKey};
use crate::time::Instant;

/// Tops up the outbound slots, dials seeds, probes a feeler, tests collisions.
const TICK: TimerKey = TimerKey(0);
/// The earliest tried-table collision deadline, at which an occupant that did not answer
/// loses its place.
const COLLISION: TimerKey = TimerKey(1);

/// The discovery protocol. See the [module documentation](self).
pub struct Discovery {
    config: DiscoveryConfig,
    book: AddrBook,
    pex: Pex,
    /// When the seeds may be dialed again.
    next_seed_dial: Option<Instant>,
    /// When the next feeler may be probed; set when the protocol starts.
    next_feeler: Option<Instant>,
}

impl Discovery {
    /// Discovery with an empty book, whose secret bucketing key is drawn from `rng` — the
    /// node's ([`Node::rng`](crate::node::Node::rng)), so a seeded node stays deterministic.
    pub fn new<R: CryptoRng + ?Sized>(config: DiscoveryConfig, rng: &mut R) -> Self {
        let mut key = [0u8; 32];
        rng.fill_bytes(&mut key);
        Discovery {
            book: AddrBook::new(key, config.addr_book),
            pex: Pex::new(config.pex),
            config,
            next_seed_dial: None,
            next_feeler: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &DiscoveryConfig {
        &self.config
    }

    /// The address book.
    pub fn addr_book(&self) -> &AddrBook {
        &self.book
    }

    /// The address book as bytes, to persist (see [`AddrBook::to_bytes`]).
    pub fn addr_book_bytes(&self, now: Instant) -> Vec<u8> {
        self.book.to_bytes(now)
    }

    /// Replaces the address book with one persisted by [`Discovery::addr_book_bytes`], its
    /// dial attempts forgotten ([`AddrBook::forget_attempts`]). On error the current book
    /// is kept.
    pub fn load_addr_book(
        &mut self,
        now: Instant,
        bytes: &[u8],
    ) -> Result<(), AddrBookDecodeError> {
        let mut book = AddrBook::from_bytes(self.config.addr_book, bytes, now)?;
        book.forget_attempts();
        self.book = book;
        Ok(())
    }

    /// Tells the book about `addr`, as if configured (no source).
    pub fn add_address(&mut self, now: Instant, addr: NetAddress) -> AddOutcome {
        self.book.add(addr, None, now)
    }

    /// The interval's work: collisions, seeds, slot filling, a feeler — or, for a seed,
    /// hanging up on peers past their lifetime.
    fn tick(&mut self, ctx: &mut Context<'_>) {
        let now = ctx.now();
        if self.config.seed_mode {
            self.expire_seed_peers(ctx);
        } else {
            self.test_collisions(ctx);
            self.fill_outbound(ctx);
            self.start_feeler(ctx);
        }
        // Shutting down, nothing is dialed: no tick would do anything.
        if !ctx.is_shutting_down() {
            let _ = ctx.set_timer(TICK, now.saturating_add(self.config.interval));
        }
    }

    /// Keeps the collision timer on the book's earliest collision deadline.
    fn arm_collisions(&self, ctx: &mut Context<'_>) {
        match self.book.poll_timeout() {
            Some(deadline) if !ctx.is_shutting_down() => {
                let _ = ctx.set_timer(COLLISION, deadline);
            }
            _ => ctx.cancel_timer(COLLISION),
        }
    }

    /// Probes the occupants of tried-table collisions to see if they are still there. An
    /// occupant with a dial already queued is tested by that dial, brought forward; should
    /// it be refused for want of an outbound slot, the collision is resolved at its
    /// deadline, as for an occupant that does not answer.
    fn test_collisions(&mut self, ctx: &mut Context<'_>) {
        let now = ctx.now();
        while let Some(occupant) = self.book.poll_collision() {
            let connected = occupant
                .peer_id()
                .is_some_and(|peer| ctx.view().is_connected(&peer));
            if connected {
                let _ = self.book.mark_good(&occupant, now);
                continue;
            }
            let _ = ctx.probe(occupant);
        }
    }

    /// Dials addresses from the book (or the seeds) until the outbound slots in use and in
    /// flight reach the cap, and asks a peer for more addresses while they do not.
    fn fill_outbound(&mut self, ctx: &mut Context<'_>) {
        if self.config.seed_mode {
            return;
        }
        let slots = ctx.outbound_slots();
        let mut want = slots.free();
        if want == 0 {
            return;
        }
        if self.book.len() < self.config.seed_threshold || slots.connected == 0 {
            self.dial_seeds(ctx);
        }
        let taken = Taken::of(ctx);
        let diverse = self.config.one_outbound_per_group;
        let mut groups = taken.groups;
        while want > 0 {
            let Some(addr) = self.select_dial(ctx, &taken.addresses, diverse.then_some(&groups))
            else {
                break;
            };
            groups.insert(address_group(addr.socket_addr().ip()));
            // A dial refused here (the node shutting down) still spends its turn, so the
            // loop ends within `want` choices.
            let _ = ctx.dial(addr);
            want = want.saturating_sub(1);
        }
        self.request_addresses(ctx);
    }

    /// With every outbound slot full and the feeler interval passed, probes one address
    /// from the book (see the [module documentation](self)).
    fn start_feeler(&mut self, ctx: &mut Context<'_>) {
        let now = ctx.now();
        let Some(interval) = self.config.feeler_interval else {
            return;
        };
        if self.next_feeler.is_some_and(|at| now < at) || !ctx.outbound_slots().full() {
            return;
        }
        self.next_feeler = Some(now.saturating_add(interval));
        let taken = Taken::of(ctx);
        if let Some(addr) = self.select_dial(ctx, &taken.addresses, None) {
            let _ = ctx.probe(addr);
        }
    }

    /// An address from the book worth dialing: not ourselves, not a peer or an address we
    /// are connected to or dialing, not banned, and — given `groups` — in none of them.
    fn select_dial(
        &mut self,
        ctx: &mut Context<'_>,
        connected: &BTreeSet<SocketAddr>,
        groups: Option<&BTreeSet<AddressGroup>>,
    ) -> Option<NetAddress> {
        let now = ctx.now();
        let (rng, view) = ctx.rng_and_view();
        let (local, listen) = (view.local_peer_id(), view.listen_addr());
        self.book.select(rng, now, |addr| {
            let socket = addr.socket_addr();
            addr.peer_id()
                .is_none_or(|peer| peer != local && !view.is_connected(&peer))
                && Some(socket) != listen
                && !connected.contains(&socket)
                && !view.is_dialing(socket)
                && !view.is_banned(now, addr)
                && groups.is_none_or(|groups| !groups.contains(&address_group(socket.ip())))
        })
    }

    /// Dials the seeds, at most once per PEX request interval.
    fn dial_seeds(&mut self, ctx: &mut Context<'_>) {
        let now = ctx.now();
        if self.config.seeds.is_empty() || self.next_seed_dial.is_some_and(|at| now < at) {
            return;
        }
        self.next_seed_dial = Some(now.saturating_add(self.config.pex.request_interval));
        for seed in self.config.seeds.clone() {
            let connected = seed
                .peer_id()
                .is_some_and(|peer| ctx.view().is_connected(&peer));
            if !connected {
                let _ = ctx.dial(seed);
            }
        }
    }

    /// Asks one connected PEX peer that may be asked now for addresses.
    fn request_addresses(&mut self, ctx: &mut Context<'_>) {
        let now = ctx.now();
        let candidates: Vec<PeerId> = ctx
            .peers()
            .iter()
            .map(|(peer, _)| *peer)
            // Strangers on query connections are not asked: only peers' answers are kept.
            .filter(|peer| !ctx.is_query(peer) && self.pex.can_request(now, peer))
            .collect();
        let Some(count) = u32::try_from(candidates.len()).ok().filter(|n| *n > 0) else {
            return;
        };
        let pick =
            usize::try_from(ctx.rng().next_u32().checked_rem(count).unwrap_or(0)).unwrap_or(0);
        if let Some(&peer) = candidates.get(pick)
            && self.pex.request(now, &peer)
        {
            send_pex(ctx, &peer, &PexMessage::GetAddrs);
        }
    }

    /// A `GetAddrs` or `Addrs` from `peer`; anything else breaks the protocol.
    fn handle_pex(&mut self, ctx: &mut Context<'_>, peer: PeerId, bytes: &[u8]) {
        let now = ctx.now();
        let Some(remote) = ctx.peer_info(&peer).map(|info| info.remote_addr) else {
            return;
        };
        match self.pex.handle_message(now, &peer, bytes) {
            Ok(PexIncoming::Request) => {
                let (rng, view) = ctx.rng_and_view();
                let addrs = self.book.sample(rng, now, MAX_ADDRS, |addr| {
                    addr.peer_id()
                        .is_none_or(|id| id != peer && !view.is_private(&id))
                        && addr.socket_addr() != remote
                });
                send_pex(ctx, &peer, &PexMessage::Addrs(addrs));
                if self.config.seed_mode {
                    // Closing now would return the answer unsent: close once the peer's
                    // node took it (its credit confirms it), or at the seed lifetime.
                    ctx.disconnect_when_confirmed(&peer, PEX_CHANNEL);
                }
            }
            Ok(PexIncoming::Addrs(addrs)) => {
                let view = ctx.view();
                let (local, listen) = (view.local_peer_id(), view.listen_addr());
                for addr in addrs {
                    let ours = addr.peer_id() == Some(local) || Some(addr.socket_addr()) == listen;
                    if !ours {
                        let _ = self.book.add(addr, Some(remote.ip()), now);
                    }
                }
                self.fill_outbound(ctx);
            }
            Err(violation) => {
                ctx.disconnect_because(
                    &peer,
                    DisconnectReason::ProtocolError,
                    &violation.to_string(),
                );
            }
        }
    }

    /// Seed mode: disconnects peers connected longer than the seed peer lifetime.
    fn expire_seed_peers(&mut self, ctx: &mut Context<'_>) {
        let now = ctx.now();
        let lifetime = self.config.seed_peer_lifetime;
        let expired: Vec<PeerId> = ctx
            .connected()
            .into_iter()
            .filter(|info| {
                info.stats
                    .established_at
                    .is_some_and(|at| now >= at.saturating_add(lifetime))
            })
            .map(|info| info.peer)
            .collect();
        for peer in expired {
            ctx.disconnect_because(&peer, DisconnectReason::Requested, "seed: lifetime over");
        }
    }
}

impl Protocol for Discovery {
    /// PEX (`switchboard/pex` version 1) on its reserved channel, [`PEX_CHANNEL`].
    fn spec(&self) -> ProtocolSpec {
        ProtocolSpec {
            name: PEX_PROTOCOL.into(),
            versions: 1..=1,
            channels: alloc::vec![config::pex_channel()],
        }
    }

    fn started(&mut self, ctx: &mut Context<'_>) {
        let now = ctx.now();
        if let Some(interval) = self.config.feeler_interval {
            self.next_feeler = Some(now.saturating_add(interval));
        }
        let _ = ctx.set_timer(TICK, now);
    }

    /// A peer speaking PEX connected: an outbound one is asked for addresses while slots
    /// or the book want them. (An inbound one's own address reached the book from its
    /// [`DialReport::Accepted`].)
    fn peer_connected(
        &mut self,
        ctx: &mut Context<'_>,
        peer: PeerId,
        _version: u16,
    ) -> Result<(), DisconnectReason> {
        let now = ctx.now();
        self.pex.handle_connected(peer);
        if ctx.is_query(&peer) {
            return Ok(());
        }
        let Some(info) = ctx.peer_info(&peer) else {
            return Ok(());
        };
        let slots = ctx.outbound_slots();
        let needs_addresses = !slots.full() || self.book.len() < self.config.seed_threshold;
        if !self.config.seed_mode
            && needs_addresses
            && info.direction == Direction::Outbound
            && self.pex.request(now, &peer)
        {
            send_pex(ctx, &peer, &PexMessage::GetAddrs);
        }
        Ok(())
    }

    fn message(
        &mut self,
        ctx: &mut Context<'_>,
        peer: PeerId,
        _channel: ChannelId,
        message: Bytes,
    ) {
        self.handle_pex(ctx, peer, &message);
        self.arm_collisions(ctx);
    }

    fn peer_disconnected(
        &mut self,
        _ctx: &mut Context<'_>,
        peer: PeerId,
        _reason: DisconnectReason,
    ) {
        self.pex.handle_disconnected(&peer);
    }

    /// Every dial teaches the book: an attempt, a live address, or a failure — not held
    /// against the address when it was our own doing (our limits, a peer we have, a ban),
    /// and the address forgotten when it is ours, lies about its identity, or is one our
    /// allow-list never lets us dial. An inbound peer's listen address goes in too, relayed
    /// by itself and bucketed by its own group: how a feeler's far end learns of it.
    fn dialed(&mut self, ctx: &mut Context<'_>, report: &DialReport) {
        let now = ctx.now();
        match *report {
            DialReport::Started { addr, .. } => {
                let _ = self.book.mark_attempt(&addr.socket_addr(), now);
            }
            DialReport::Reached { addr, peer, .. } => {
                let _ = self.book.mark_good(&addr.with_peer_id(peer), now);
            }
            DialReport::Accepted {
                peer,
                remote,
                listen_addr: Some(listen),
            } => {
                let _ = self
                    .book
                    .add(NetAddress::new(Some(peer), listen), Some(remote.ip()), now);
            }
            DialReport::Accepted { .. } => {}
            DialReport::Failed { addr, reason, .. } => {
                let socket = addr.socket_addr();
                match reason {
                    DisconnectReason::TooManyPeers
                    | DisconnectReason::AlreadyConnected
                    | DisconnectReason::Banned
                    | DisconnectReason::Quitting => {}
                    DisconnectReason::SelfConnection
                    | DisconnectReason::UnexpectedIdentity
                    | DisconnectReason::NotAllowed => {
                        self.book.remove(&socket);
                    }
                    _ => {
                        self.book.mark_failed(&socket, now);
                    }
                }
            }
        }
        self.arm_collisions(ctx);
    }

    fn timer(&mut self, ctx: &mut Context<'_>, key: TimerKey) {
        if key == TICK {
            self.tick(ctx);
        } else {
            self.book.handle_timeout(ctx.now());
        }
        self.arm_collisions(ctx);
    }
}

/// Sends a PEX message to `peer`. A full PEX queue drops it: addresses are advisory, and a
/// peer that does not read its PEX channel gets no more of them.
fn send_pex(ctx: &mut Context<'_>, peer: &PeerId, message: &PexMessage) {
    let _ = ctx.send(peer, PEX_CHANNEL, Bytes::from(message.encode()));
}

/// What outbound selection must avoid.
struct Taken {
    /// The address groups of outbound peers and dials in flight, persistent ones aside.
    groups: BTreeSet<AddressGroup>,
    /// The addresses of every connected peer: an outbound one's, an inbound one's listen
    /// address.
    addresses: BTreeSet<SocketAddr>,
}

impl Taken {
    fn of(ctx: &Context<'_>) -> Taken {
        let mut taken = Taken {
            groups: BTreeSet::new(),
            addresses: BTreeSet::new(),
        };
        for info in ctx.connected() {
            match info.direction {
                Direction::Outbound => {
                    taken.addresses.insert(info.remote_addr);
                    if !info.persistent {
                        taken.groups.insert(address_group(info.remote_addr.ip()));
                    }
                }
                Direction::Inbound => {
                    if let Some(listen) = info.listen_addr {
                        taken.addresses.insert(listen);
                    }
                }
            }
        }
        for (addr, persistent) in ctx.dials_in_flight() {
            if !persistent {
                taken.groups.insert(address_group(addr.ip()));
            }
        }
        taken
    }
}
