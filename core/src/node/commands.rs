//! What the application asks of its peers: sending, broadcasting, disconnecting, banning.

use alloc::vec::Vec;
use core::net::IpAddr;
use core::time::Duration;

use bytes::Bytes;
use rand_core::CryptoRng;

use super::{ConnId, Node, query};

use crate::ban_list::Banned;
use crate::channel::ChannelId;
use crate::disconnect::DisconnectReason;
use crate::identity::PeerId;
use crate::mux::SendError;
use crate::time::Instant;

#[cfg(doc)]
use super::NodeEvent;

impl<R: CryptoRng> Node<R> {
    /// Queues `message` for `peer` on `channel`, over its peer connection or else its query
    /// connection ([`Node::open_query`]); hands it back on error.
    pub fn send(
        &mut self,
        now: Instant,
        peer: &PeerId,
        channel: ChannelId,
        message: Bytes,
    ) -> Result<(), SendError> {
        let Some(conn) = query::conn_of(&self.peers, &self.queries, peer) else {
            return Err(SendError::NotConnected(message));
        };
        let Some(entry) = self.conns.get_mut(conn) else {
            return Err(SendError::NotConnected(message));
        };
        let sent = entry.connection.send(channel, message);
        if let Err(SendError::Full(refused)) = &sent {
            match entry
                .full_channels
                .iter_mut()
                .find(|(id, _)| *id == channel)
            {
                Some((_, largest)) => *largest = (*largest).max(refused.len()),
                None => entry.full_channels.push((channel, refused.len())),
            }
        }
        self.after(now, conn);
        sent
    }

    /// Queues `message` on `channel` for every connected peer that has the channel open,
    /// without ever blocking: a peer whose queue is full is skipped (and reported slow if it
    /// stays full past the slow-peer timeout). Returns how many peers took it.
    pub fn broadcast(&mut self, now: Instant, channel: ChannelId, message: Bytes) -> usize {
        let conns: Vec<ConnId> = self.peers.values().copied().collect();
        let mut taken = 0usize;
        for conn in conns {
            let Some(entry) = self.conns.get_mut(conn) else {
                continue;
            };
            if !entry.connection.is_channel_open(channel) {
                continue;
            }
            match entry.connection.send(channel, message.clone()) {
                Ok(()) => {
                    taken = taken.saturating_add(1);
                    if let Some(since) = entry.full_since.take() {
                        self.slow.remove(&(since, conn));
                    }
                }
                Err(SendError::Full(_)) => {
                    if entry.full_since.is_none() {
                        entry.full_since = Some(now);
                        self.slow.insert((now, conn));
                    }
                }
                Err(_) => {}
            }
            self.after(now, conn);
        }
        taken
    }

    /// Disconnects `peer` with `reason`; its [`NodeEvent::PeerDisconnected`] follows (or
    /// [`NodeEvent::QueryDisconnected`], for a query connection).
    pub fn disconnect(&mut self, now: Instant, peer: &PeerId, reason: DisconnectReason) {
        self.disconnect_because(now, peer, reason, "disconnect requested");
    }

    /// As [`Node::disconnect`], telling the peer why in `detail` (its GOAWAY's text).
    pub fn disconnect_because(
        &mut self,
        now: Instant,
        peer: &PeerId,
        reason: DisconnectReason,
        detail: &str,
    ) {
        if let Some(conn) = query::conn_of(&self.peers, &self.queries, peer) {
            self.close_connection(now, conn, reason, detail);
        }
    }

    /// Bans `peer` for `duration`, disconnecting it if connected.
    pub fn ban_peer(&mut self, now: Instant, peer: &PeerId, duration: Duration) {
        self.peer_set
            .bans_mut()
            .ban(Banned::Peer(*peer), now.saturating_add(duration));
        self.disconnect(now, peer, DisconnectReason::Banned);
    }

    /// Bans `ip` for `duration`, disconnecting its peers.
    pub fn ban_ip(&mut self, now: Instant, ip: IpAddr, duration: Duration) {
        self.peer_set
            .bans_mut()
            .ban(Banned::Ip(ip), now.saturating_add(duration));
        let banned: Vec<PeerId> = self
            .peers
            .iter()
            .chain(self.queries.peers())
            .filter(|(_, conn)| {
                self.conns
                    .get(**conn)
                    .is_some_and(|entry| entry.remote.ip() == ip)
            })
            .map(|(peer, _)| *peer)
            .collect();
        for peer in banned {
            self.disconnect(now, &peer, DisconnectReason::Banned);
        }
    }
}
