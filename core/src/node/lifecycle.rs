//! A connection's life in the node's tables: inserted, brought up to date after every
//! input (`after`, `settle`), closed, and removed once drained.

use alloc::vec::Vec;
use core::net::{IpAddr, SocketAddr};

use rand_core::CryptoRng;

use super::{Action, ConnId, DialReport, Entry, Node, NodeEvent, PeerReport, Phase, query};

use crate::ban_list::Banned;
use crate::channel::{ChannelId, RESERVED_CHANNELS_START};
use crate::connection::{Closed, ClosedBy, Connection, Event};
use crate::disconnect::DisconnectReason;
use crate::mux::ReturnedMessage;
use crate::net_address::NetAddress;
use crate::node_info::NodeInfo;
use crate::peer_set::Direction;
use crate::time::Instant;

impl<R: CryptoRng> Node<R> {
    pub(super) fn insert(
        &mut self,
        connection: Connection,
        direction: Direction,
        remote: SocketAddr,
        dialed: Option<NetAddress>,
        phase: Phase,
    ) -> Option<ConnId> {
        self.conns.insert(Entry {
            connection,
            direction,
            remote,
            dialed,
            phase,
            peer: None,
            info: None,
            timer: None,
            full_since: None,
            slot: None,
            last_useful: None,
            in_transmit_queue: false,
            in_read_queue: false,
            close_when_confirmed: None,
            full_channels: Vec::new(),
            query: None,
        })
    }

    /// A new outbound connection to `addr`, in its `Connecting` phase, telling the peer
    /// `info`; `dialed` is the dial queue's address it serves, if any. `None` only on a bug
    /// (our own `NodeInfo` no longer encodes, or every connection id is taken).
    pub(super) fn insert_dial(
        &mut self,
        now: Instant,
        info: NodeInfo,
        addr: NetAddress,
        dialed: Option<NetAddress>,
    ) -> Option<ConnId> {
        let connection = Connection::dial(
            now,
            self.connection_config.clone(),
            &self.keypair,
            info,
            addr.peer_id(),
            &mut self.rng,
        )
        .ok()?;
        self.insert(
            connection,
            Direction::Outbound,
            addr.socket_addr(),
            dialed,
            Phase::Connecting,
        )
    }

    /// Brings the node up to date with connection `conn` after anything touched it: as
    /// [`Node::settle`], and queues it to transmit.
    pub(super) fn after(&mut self, now: Instant, conn: ConnId) {
        self.settle(now, conn);
        if let Some(entry) = self.conns.get_mut(conn)
            && !entry.in_transmit_queue
            && entry.phase != Phase::Connecting
        {
            entry.in_transmit_queue = true;
            self.transmit_queue.push_back(conn);
        }
    }

    /// Takes `conn`'s non-message events, queues it for reading, re-arms its timer, and
    /// forgets it once it is closed and drained.
    pub(super) fn settle(&mut self, now: Instant, conn: ConnId) {
        loop {
            let Some(entry) = self.conns.get_mut(conn) else {
                return;
            };
            if entry.peer.is_none()
                && let Some(peer) = entry.connection.peer()
            {
                entry.peer = Some(peer);
                self.candidates.entry(peer).or_default().insert(conn);
            }
            match entry.connection.peek_event() {
                None => break,
                Some(Event::Message { .. }) => {
                    if entry.phase == Phase::Connected {
                        if !entry.in_read_queue {
                            entry.in_read_queue = true;
                            self.read_queue.push_back(conn);
                        }
                        break;
                    }
                    // A message on a connection the application never saw: discarded, and
                    // (the connection being closed) never confirmed to its sender.
                    let _ = entry.connection.poll_event();
                }
                Some(_) => match entry.connection.poll_event() {
                    Some(Event::Connected { peer, info }) => {
                        self.on_connected(now, conn, peer, info)
                    }
                    Some(Event::Closed(closed)) => self.on_closed(now, conn, *closed),
                    _ => {}
                },
            }
        }
        let Some(entry) = self.conns.get_mut(conn) else {
            return;
        };
        if !entry.full_channels.is_empty()
            && let Some(peer) = entry.peer.filter(|_| entry.phase == Phase::Connected)
        {
            let (connection, events) = (&entry.connection, &mut self.events);
            entry.full_channels.retain(|&(channel, refused)| {
                let room = connection.has_send_room(channel, refused);
                if room {
                    events.push_back(NodeEvent::Writable { peer, channel });
                }
                !room
            });
        }
        if self.flush_deadline.is_some()
            && entry.phase == Phase::Connected
            && entry.connection.is_established()
            && entry.connection.is_flushed()
        {
            entry
                .connection
                .close(now, DisconnectReason::Quitting, "shutting down");
            self.after(now, conn);
            return;
        }
        if let Some(channel) = entry.close_when_confirmed
            && channel_confirmed(entry, channel)
        {
            entry.close_when_confirmed = None;
            entry.connection.close(
                now,
                DisconnectReason::Requested,
                "disconnect requested: what was sent is confirmed",
            );
            self.after(now, conn);
            return;
        }
        if entry.connection.is_closed() && entry.connection.peek_event().is_none() {
            self.remove(conn);
            return;
        }
        let query_deadline =
            match query::deadline(entry, now, self.config.limits.query_idle_timeout) {
                Ok(deadline) => deadline,
                Err((reason, detail)) => {
                    entry.connection.close(now, reason, detail);
                    self.after(now, conn);
                    return;
                }
            };
        let deadline = [entry.connection.poll_timeout(), query_deadline]
            .into_iter()
            .flatten()
            .min();
        if entry.timer != deadline {
            if let Some(old) = entry.timer {
                self.timers.remove(&(old, conn));
            }
            if let Some(new) = deadline {
                self.timers.insert((new, conn));
            }
            entry.timer = deadline;
        }
    }

    /// Closes `conn` (if it is still there) with `reason`, and lets the node see to it.
    pub(super) fn close_connection(
        &mut self,
        now: Instant,
        conn: ConnId,
        reason: DisconnectReason,
        detail: &str,
    ) {
        if let Some(entry) = self.conns.get_mut(conn) {
            entry.connection.close(now, reason, detail);
            self.after(now, conn);
        }
    }

    pub(super) fn remove(&mut self, conn: ConnId) {
        self.handshakes.remove(conn);
        let Some(entry) = self.conns.remove(conn) else {
            return;
        };
        if let Some(deadline) = entry.timer {
            self.timers.remove(&(deadline, conn));
        }
        if let Some(since) = entry.full_since {
            self.slow.remove(&(since, conn));
        }
        self.actions.push_back(Action::Close { conn });
    }

    /// A connection ended.
    pub(super) fn on_closed(&mut self, now: Instant, conn: ConnId, closed: Closed) {
        self.handshakes.remove(conn);
        let Some(entry) = self.conns.get_mut(conn) else {
            return;
        };
        let phase = entry.phase;
        entry.phase = Phase::Dropped;
        let peer = entry.peer;
        let direction = entry.direction;
        let ip = inbound_ip(entry);
        let remote = entry.remote;
        let slot = entry.slot;
        let dialed = entry.dialed.take();
        let is_query = entry.query.is_some();
        if let Some(peer) = peer
            && let Some(set) = self.candidates.get_mut(&peer)
        {
            set.remove(&conn);
            if set.is_empty() {
                self.candidates.remove(&peer);
            }
        }
        if closed.by == ClosedBy::Local
            && matches!(
                closed.reason,
                DisconnectReason::ProtocolError
                    | DisconnectReason::FlowControl
                    | DisconnectReason::MessageTooLarge
            )
            && let Some(peer) = peer
        {
            let until = now.saturating_add(self.config.violation_ban);
            let bans = self.peer_set.bans_mut();
            bans.ban(Banned::Peer(peer), until);
            if self.config.violation_ban_ip {
                bans.ban(Banned::Ip(remote.ip()), until);
            }
        }
        if is_query {
            return self.on_query_closed(conn, phase, peer, closed);
        }
        match phase {
            Phase::Connected => {
                self.peer_set.release(direction, slot, ip);
                if let Some(peer) = peer {
                    self.peers.remove(&peer);
                    let (confirmed_by_channel, confirmed) =
                        own_confirmed(closed.outcome.confirmed_by_channel);
                    let unsent = own_messages(closed.outcome.unsent);
                    let unconfirmed = own_messages(closed.outcome.unconfirmed);
                    let event = NodeEvent::PeerDisconnected {
                        peer,
                        reason: closed.reason,
                        by: closed.by,
                        detail: closed.detail,
                        unsent,
                        unconfirmed,
                        confirmed,
                        confirmed_by_channel,
                    };
                    if let Some(report) = self.shutdown_report.as_mut() {
                        report
                            .peers
                            .extend(PeerReport::from_disconnected(event.clone()));
                    }
                    self.events.push_back(event);
                }
                if let Some(addr) = self.peer_set.persistent_address(peer, remote) {
                    let due = now.saturating_add(self.config.dial.backoff_base);
                    self.queue_dial(due, addr);
                }
            }
            Phase::Connecting | Phase::Handshaking => {
                self.peer_set.release(direction, None, ip);
                if direction == Direction::Inbound && !self.shutting_down {
                    let remote = self.conns.get(conn).map(|entry| entry.remote);
                    if let Some(remote) = remote {
                        self.events.push_back(NodeEvent::InboundRefused {
                            remote,
                            peer,
                            reason: closed.reason,
                            by: closed.by,
                            detail: closed.detail.clone(),
                        });
                    }
                }
                if let Some(addr) = dialed {
                    self.dialing.remove(&addr.socket_addr());
                    let probe = self.probes.contains(&addr.socket_addr());
                    let refused_when_full = closed.by == ClosedBy::Remote
                        && closed.reason == DisconnectReason::TooManyPeers;
                    if probe
                        && refused_when_full
                        && let Some(peer) = peer
                    {
                        // A far end with its inbound slots full refuses us only once the
                        // handshake has authenticated it and passed our checks: the probe
                        // proved the address alive, as if it had been admitted.
                        self.record_dial(DialReport::Reached {
                            addr,
                            peer,
                            probe: true,
                        });
                        self.forget_dial(addr.socket_addr());
                    } else if self.shutting_down {
                        // Our doing, not the address's: no retry, nothing held against it.
                        self.dials.remove(addr.socket_addr());
                        self.report_dial_cancelled(addr);
                    } else {
                        let persistent = self.peer_set.is_persistent_socket(&addr.socket_addr());
                        let retry = self.dials.handle_failure(
                            now,
                            addr.socket_addr(),
                            persistent,
                            &mut self.rng,
                        );
                        self.report_dial_failure(addr, closed.reason, closed.detail, retry);
                    }
                }
            }
            Phase::Dropped => {}
        }
        self.start_dials(now);
    }
}

/// The application's confirmations among a closed connection's, per channel and in all:
/// the node's own protocols' (reserved channels) are not the application's to count.
pub(super) fn own_confirmed(mut by_channel: Vec<(ChannelId, u64)>) -> (Vec<(ChannelId, u64)>, u64) {
    by_channel.retain(|(channel, _)| *channel < RESERVED_CHANNELS_START);
    let total = by_channel
        .iter()
        .map(|(_, count)| *count)
        .fold(0, u64::saturating_add);
    (by_channel, total)
}

/// The application's messages among those returned: the node's own built-in protocols
/// (reserved channels, e.g. PEX) send messages the application never sent, so they are not
/// its to count or retry.
pub(super) fn own_messages(mut returned: Vec<ReturnedMessage>) -> Vec<ReturnedMessage> {
    returned.retain(|message| message.channel < RESERVED_CHANNELS_START);
    returned
}

pub(super) fn inbound_ip(entry: &Entry) -> Option<IpAddr> {
    (entry.direction == Direction::Inbound).then(|| entry.remote.ip())
}

/// Whether nothing sent on `channel` of `entry` awaits writing or confirmation.
fn channel_confirmed(entry: &Entry, channel: ChannelId) -> bool {
    entry
        .connection
        .channel_stats()
        .iter()
        .find(|stats| stats.channel == channel)
        .is_none_or(|stats| stats.queued_messages == 0 && stats.unconfirmed_messages == 0)
}
