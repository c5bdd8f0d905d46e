//! Discovery inside the node: the address book, PEX, seeds, and outbound slot filling.
//!
//! Every [`DiscoveryConfig::interval`] the node tops up its outbound slots from the
//! [`AddrBook`], at most one outbound peer per address group (persistent peers aside), so
//! that one network — one attacker — holds at most one of our outbound connections. While
//! slots stay empty it asks a peer for addresses (`GetAddrs`, paced per peer by [`Pex`]);
//! while the book is nearly empty it dials the configured seeds. Addresses learned are
//! stored with the IP of the peer that relayed them, which is what the book's buckets are
//! keyed on. Outbound connections that complete their handshake move their address to the
//! book's *tried* table; failed dials count against theirs.
//!
//! A node in seed mode answers `GetAddrs` and then disconnects the peer (darkfi's seed
//! protocol, CometBFT's seed mode): it hands out addresses without holding slots for long.
//!
//! With every outbound slot full the node still dials one address from its book every
//! [`DiscoveryConfig::feeler_interval`] — a *feeler* (Bitcoin Core's feeler connections):
//! the handshake proves the address alive (it moves to *tried*) and the connection is
//! dropped at once, never admitted as a peer. The far end learns our address from the
//! handshake. That is what lets a group of nodes whose books know only each other — nodes
//! that restarted without their book and bootstrapped from a seed that lost its own — find
//! the rest of the network again: the rest never dials them otherwise, its slots being full,
//! and they have no address to dial it by.
//!
//! A feeler holds no outbound slot and is never reported to the application: a failed one
//! counts against its address in the book and is not retried. A dial the node is asked for
//! to the same address (the application's, a persistent peer's, a seed's) takes the
//! feeler's place and is kept. A far end whose inbound slots are full completes the
//! handshake and then refuses us (`TooManyPeers`): it has authenticated itself and passed our
//! checks, so the feeler counts as proof of life all the same — a test-before-evict does not
//! evict a busy node — though the far end, refusing us, learns nothing from it.

use alloc::collections::BTreeSet;
use alloc::string::ToString;
use alloc::vec::Vec;
use core::net::SocketAddr;
use core::time::Duration;

use bytes::Bytes;
use rand_core::CryptoRng;

use super::{ConnId, Node, Phase};
use crate::addr_book::{
    AddOutcome, AddrBook, AddrBookConfig, AddrBookDecodeError, AddressGroup, address_group,
};
use crate::channel::{ChannelConfig, message_cost};
use crate::disconnect::DisconnectReason;
use crate::identity::PeerId;
use crate::net_address::NetAddress;
use crate::peer_set::Direction;
use crate::pex::{MAX_ADDRS, MAX_MESSAGE_LEN, PEX_CHANNEL, PexConfig, PexIncoming, PexMessage};
use crate::time::Instant;

/// How a node finds peers. [`DiscoveryConfig::default`] turns it on, without seeds.
#[derive(Clone, Debug)]
pub struct DiscoveryConfig {
    /// Fill outbound slots from the address book, exchange addresses with peers (PEX, on
    /// channel [`PEX_CHANNEL`]) and dial seeds. Off, the node dials only what the
    /// application asks for. Default on.
    pub enabled: bool,
    /// Seed nodes (bootnodes), dialed while the book holds fewer than
    /// [`DiscoveryConfig::seed_threshold`] addresses or no outbound peer is connected.
    pub seeds: Vec<NetAddress>,
    /// See `seeds`. Default 16.
    pub seed_threshold: usize,
    /// Answer `GetAddrs` and disconnect; do not fill outbound slots. Default off.
    pub seed_mode: bool,
    /// In seed mode, a peer that has not asked for addresses within this is disconnected.
    /// Default 10 s.
    pub seed_peer_lifetime: Duration,
    /// How often outbound slots are topped up. Default 5 s.
    pub interval: Duration,
    /// With every outbound slot full, how often to dial one more address from the book as a
    /// *feeler* (Bitcoin Core's feeler connections): the handshake proves the address alive
    /// and the connection is dropped at once, never admitted, holding no slot, never
    /// reported. The far end learns our address from it — how nodes whose books know only
    /// each other find a network whose slots are full. Checked at each `interval`; `None`
    /// turns feelers off. Default 2 minutes, as Bitcoin Core.
    pub feeler_interval: Option<Duration>,
    /// At most one outbound peer per address group (/16 IPv4, /32 IPv6), persistent peers
    /// aside: what keeps one network from holding several of our outbound slots. Turn it
    /// off only where every peer shares a group — a cluster on one host or one LAN.
    /// Default on.
    pub one_outbound_per_group: bool,
    /// PEX pacing.
    pub pex: PexConfig,
    /// The address book's bounds.
    pub addr_book: AddrBookConfig,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        DiscoveryConfig {
            enabled: true,
            seeds: Vec::new(),
            seed_threshold: 16,
            seed_mode: false,
            seed_peer_lifetime: Duration::from_secs(10),
            interval: Duration::from_secs(5),
            feeler_interval: Some(Duration::from_secs(120)),
            one_outbound_per_group: true,
            pex: PexConfig::default(),
            addr_book: AddrBookConfig::default(),
        }
    }
}

impl DiscoveryConfig {
    /// The PEX channel's limits (the node offers it as version 1 of `switchboard/pex`): its
    /// largest message, and a window that holds four of them, counted in cost units
    /// (length + 64) so that four really fit.
    pub(super) fn pex_channel() -> ChannelConfig {
        let mut limits = ChannelConfig::new(PEX_CHANNEL);
        limits.max_message_size = u32::try_from(MAX_MESSAGE_LEN).unwrap_or(u32::MAX);
        limits.receive_window =
            u32::try_from(message_cost(MAX_MESSAGE_LEN).saturating_mul(4)).unwrap_or(u32::MAX);
        limits
    }
}

impl<R: CryptoRng> Node<R> {
    /// The address book.
    pub fn addr_book(&self) -> &AddrBook {
        &self.book
    }

    /// The address book as bytes, for the adapter to persist (see [`AddrBook::to_bytes`]).
    pub fn addr_book_bytes(&self, now: Instant) -> Vec<u8> {
        self.book.to_bytes(now)
    }

    /// Replaces the address book with one persisted by [`Node::addr_book_bytes`], its dial
    /// attempts forgotten ([`AddrBook::forget_attempts`]). On error the current book is kept.
    pub fn load_addr_book(
        &mut self,
        now: Instant,
        bytes: &[u8],
    ) -> Result<(), AddrBookDecodeError> {
        let mut book = AddrBook::from_bytes(self.config.discovery.addr_book, bytes, now)?;
        book.forget_attempts();
        self.book = book;
        Ok(())
    }

    /// Tells the book about `addr`, as if configured (no source).
    pub fn add_address(&mut self, now: Instant, addr: NetAddress) -> AddOutcome {
        self.book.add(addr, None, now)
    }

    /// Runs discovery when its interval is due: collisions, seeds, slot filling, PEX.
    pub(super) fn discovery_timeout(&mut self, now: Instant) {
        if !self.config.discovery.enabled {
            return;
        }
        self.book.handle_timeout(now);
        if now < self.next_discovery {
            return;
        }
        self.next_discovery = now.saturating_add(self.config.discovery.interval);
        if self.config.discovery.seed_mode {
            self.expire_seed_peers(now);
            return;
        }
        self.test_collisions(now);
        self.fill_outbound(now);
        self.start_feeler(now);
    }

    /// The next discovery deadline, if discovery is on.
    pub(super) fn discovery_deadline(&self) -> Option<Instant> {
        if !self.config.discovery.enabled {
            return None;
        }
        // A tried-table collision whose occupant stays silent is resolved at its deadline,
        // not at the next tick after it.
        Some(
            self.book
                .poll_timeout()
                .map_or(self.next_discovery, |collision| {
                    collision.min(self.next_discovery)
                }),
        )
    }

    /// Dials the occupants of tried-table collisions, as feelers, to see if they are still
    /// there. An occupant with a dial already queued is tested by that dial, brought
    /// forward; should it be refused for want of an outbound slot, the collision is
    /// resolved at its deadline, as for an occupant that does not answer.
    fn test_collisions(&mut self, now: Instant) {
        while let Some(occupant) = self.book.poll_collision() {
            let connected = occupant
                .peer_id()
                .is_some_and(|peer| self.peers.contains_key(&peer));
            if connected {
                let _ = self.book.mark_good(&occupant, now);
                continue;
            }
            self.queue_feeler(now, occupant);
        }
        self.start_dials(now);
    }

    /// Dials addresses from the book (or the seeds) until the outbound slots in use and in
    /// flight reach the cap, and asks a peer for more addresses while they do not.
    pub(super) fn fill_outbound(&mut self, now: Instant) {
        if !self.config.discovery.enabled || self.config.discovery.seed_mode {
            return;
        }
        let max = self.config.limits.max_outbound;
        let (_, outbound) = self.peer_set.counts();
        let mut want = max
            .saturating_sub(outbound)
            .saturating_sub(self.outbound_dials());
        if want == 0 {
            return;
        }
        if self.book.len() < self.config.discovery.seed_threshold || outbound == 0 {
            self.dial_seeds(now);
        }
        let taken = self.outbound_taken();
        let diverse = self.config.discovery.one_outbound_per_group;
        let mut groups = taken.groups;
        while want > 0 {
            let Some(addr) = self.select_dial(now, &taken.addresses, diverse.then_some(&groups))
            else {
                break;
            };
            groups.insert(address_group(addr.socket_addr().ip()));
            self.queue_dial(now, addr, false);
            want = want.saturating_sub(1);
        }
        self.start_dials(now);
        self.request_addresses(now);
    }

    /// With every outbound slot full and the feeler interval passed, dials one address from
    /// the book as a feeler (see the [module documentation](self)).
    fn start_feeler(&mut self, now: Instant) {
        let Some(interval) = self.config.discovery.feeler_interval else {
            return;
        };
        let (_, outbound) = self.peer_set.counts();
        if now < self.next_feeler || outbound < self.config.limits.max_outbound {
            return;
        }
        self.next_feeler = now.saturating_add(interval);
        let taken = self.outbound_taken();
        let Some(addr) = self.select_dial(now, &taken.addresses, None) else {
            return;
        };
        self.queue_feeler(now, addr);
        self.start_dials(now);
    }

    /// An address from the book worth dialing: not ourselves, not a peer or an address we
    /// are connected to or dialing, not banned, and — given `groups` — in none of them.
    fn select_dial(
        &mut self,
        now: Instant,
        connected: &BTreeSet<SocketAddr>,
        groups: Option<&BTreeSet<AddressGroup>>,
    ) -> Option<NetAddress> {
        let (local, listen) = (self.local_id, self.config.listen_addr);
        let (peers, dialing, dials, peer_set) =
            (&self.peers, &self.dialing, &self.dials, &self.peer_set);
        self.book.select(&mut self.rng, now, |addr| {
            let socket = addr.socket_addr();
            addr.peer_id().is_none_or(|peer| {
                peer != local
                    && !peers.contains_key(&peer)
                    && !peer_set.bans().is_peer_banned(now, &peer)
            }) && Some(socket) != listen
                && !connected.contains(&socket)
                && !dialing.contains_key(&socket)
                && !dials.contains(socket)
                && !peer_set.bans().is_ip_banned(now, socket.ip())
                && groups.is_none_or(|groups| !groups.contains(&address_group(socket.ip())))
        })
    }

    /// The address groups of outbound peers and dials in flight (persistent ones aside), and
    /// the addresses of every connected peer, for selection to avoid.
    fn outbound_taken(&self) -> Taken {
        let mut taken = Taken {
            groups: BTreeSet::new(),
            addresses: BTreeSet::new(),
        };
        for (peer, conn) in &self.peers {
            let Some(entry) = self.conns.get(*conn) else {
                continue;
            };
            match entry.direction {
                Direction::Outbound => {
                    taken.addresses.insert(entry.remote);
                    if !self.peer_set.is_persistent(peer) {
                        taken.groups.insert(address_group(entry.remote.ip()));
                    }
                }
                Direction::Inbound => {
                    if let Some(listen) = entry.info.as_ref().and_then(|info| info.listen_addr) {
                        taken.addresses.insert(listen);
                    }
                }
            }
        }
        for addr in self.dialing.keys() {
            if !self.persistent.contains_key(addr) {
                taken.groups.insert(address_group(addr.ip()));
            }
        }
        taken
    }

    /// Dials the seeds, at most once per PEX request interval.
    fn dial_seeds(&mut self, now: Instant) {
        if self.config.discovery.seeds.is_empty() || now < self.next_seed_dial {
            return;
        }
        self.next_seed_dial = now.saturating_add(self.config.discovery.pex.request_interval);
        for seed in self.config.discovery.seeds.clone() {
            let connected = seed
                .peer_id()
                .is_some_and(|peer| self.peers.contains_key(&peer));
            if !connected && self.check_dial(now, &seed).is_ok() {
                self.queue_dial(now, seed, false);
            }
        }
    }

    /// Asks one connected PEX peer that may be asked now for addresses.
    fn request_addresses(&mut self, now: Instant) {
        let candidates: Vec<(PeerId, ConnId)> = self
            .peers
            .iter()
            .filter(|(peer, _)| self.pex.can_request(now, peer))
            .map(|(peer, conn)| (*peer, *conn))
            .collect();
        let Some(count) = u32::try_from(candidates.len()).ok().filter(|n| *n > 0) else {
            return;
        };
        let pick =
            usize::try_from(self.rng.next_u32().checked_rem(count).unwrap_or(0)).unwrap_or(0);
        if let Some(&(peer, conn)) = candidates.get(pick)
            && self.pex.request(now, &peer)
        {
            self.send_pex(now, conn, &PexMessage::GetAddrs);
        }
    }

    fn send_pex(&mut self, now: Instant, conn: ConnId, message: &PexMessage) {
        if let Some(entry) = self.conns.get_mut(conn) {
            // A full PEX queue drops the message: addresses are advisory, and a peer that
            // does not read its PEX channel gets no more of them.
            let _ = entry
                .connection
                .send(PEX_CHANNEL, Bytes::from(message.encode()));
            self.after(now, conn);
        }
    }

    /// A peer connected: PEX learns of it, the book of its address.
    pub(super) fn discovery_connected(&mut self, now: Instant, conn: ConnId, peer: PeerId) {
        if !self.config.discovery.enabled {
            return;
        }
        let Some(entry) = self.conns.get(conn) else {
            return;
        };
        let pex_open = entry.connection.is_channel_open(PEX_CHANNEL);
        let direction = entry.direction;
        let remote = entry.remote;
        let listen = entry.info.as_ref().and_then(|info| info.listen_addr);
        if direction == Direction::Inbound
            && let Some(listen) = listen
        {
            // What the peer says of itself: relayed by itself, bucketed by its own group.
            let _ = self
                .book
                .add(NetAddress::new(Some(peer), listen), Some(remote.ip()), now);
        }
        if !pex_open {
            return;
        }
        self.pex.handle_connected(peer);
        let (_, outbound) = self.peer_set.counts();
        let needs_addresses = outbound < self.config.limits.max_outbound
            || self.book.len() < self.config.discovery.seed_threshold;
        if !self.config.discovery.seed_mode
            && needs_addresses
            && direction == Direction::Outbound
            && self.pex.request(now, &peer)
        {
            self.send_pex(now, conn, &PexMessage::GetAddrs);
        }
    }

    /// The handshake to an address we dialed completed: the address is alive, with this
    /// identity, whether or not the peer set admits the connection.
    pub(super) fn discovery_dial_succeeded(
        &mut self,
        now: Instant,
        addr: NetAddress,
        peer: PeerId,
    ) {
        self.feelers.remove(&addr.socket_addr());
        if self.config.discovery.enabled {
            let _ = self.book.mark_good(&addr.with_peer_id(peer), now);
        }
    }

    /// A dial failed with `reason`.
    pub(super) fn discovery_dial_failed(
        &mut self,
        now: Instant,
        addr: &NetAddress,
        reason: DisconnectReason,
    ) {
        let socket = addr.socket_addr();
        self.feelers.remove(&socket);
        match reason {
            // Not the address's fault: our own limits, or a peer we already have.
            DisconnectReason::TooManyPeers
            | DisconnectReason::AlreadyConnected
            | DisconnectReason::Banned => {}
            // Our own address, another identity than the book says, or an address our
            // allow-list will never let us dial: forget it.
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

    /// A message on the PEX channel from `peer`.
    pub(super) fn handle_pex(&mut self, now: Instant, conn: ConnId, peer: PeerId, bytes: &[u8]) {
        let remote = match self.conns.get(conn) {
            Some(entry) if entry.phase == Phase::Connected => entry.remote,
            _ => return,
        };
        match self.pex.handle_message(now, &peer, bytes) {
            Ok(PexIncoming::Request) => {
                let private = &self.config.private_peers;
                let addrs = self.book.sample(&mut self.rng, now, MAX_ADDRS, |addr| {
                    addr.peer_id()
                        .is_none_or(|id| id != peer && !private.contains(&id))
                        && addr.socket_addr() != remote
                });
                self.send_pex(now, conn, &PexMessage::Addrs(addrs));
                if self.config.discovery.seed_mode
                    && let Some(entry) = self.conns.get_mut(conn)
                {
                    // Closing now would return the answer unsent: close once the peer's
                    // node took it (its credit confirms it), or at the seed lifetime.
                    entry.close_when_answered = true;
                }
            }
            Ok(PexIncoming::Addrs(addrs)) => {
                let listen = self.config.listen_addr;
                for addr in addrs {
                    let ours =
                        addr.peer_id() == Some(self.local_id) || Some(addr.socket_addr()) == listen;
                    if !ours {
                        let _ = self.book.add(addr, Some(remote.ip()), now);
                    }
                }
                self.fill_outbound(now);
            }
            Err(violation) => {
                let detail = violation.to_string();
                self.close_connection(now, conn, DisconnectReason::ProtocolError, &detail);
            }
        }
    }

    /// Seed mode: disconnects peers connected longer than the seed peer lifetime.
    fn expire_seed_peers(&mut self, now: Instant) {
        let lifetime = self.config.discovery.seed_peer_lifetime;
        let expired: Vec<ConnId> = self
            .peers
            .values()
            .copied()
            .filter(|conn| {
                self.conns.get(*conn).is_some_and(|entry| {
                    entry
                        .connection
                        .stats()
                        .established_at
                        .is_some_and(|at| now >= at.saturating_add(lifetime))
                })
            })
            .collect();
        for conn in expired {
            self.close_connection(
                now,
                conn,
                DisconnectReason::Requested,
                "seed: lifetime over",
            );
        }
    }
}

/// Whether nothing sent on the PEX channel of `entry` awaits writing or confirmation.
pub(super) fn answer_confirmed(entry: &super::Entry) -> bool {
    entry
        .connection
        .channel_stats()
        .iter()
        .find(|stats| stats.channel == PEX_CHANNEL)
        .is_none_or(|stats| stats.queued_messages == 0 && stats.unconfirmed_messages == 0)
}

/// What outbound selection must avoid.
struct Taken {
    groups: BTreeSet<AddressGroup>,
    addresses: BTreeSet<SocketAddr>,
}
