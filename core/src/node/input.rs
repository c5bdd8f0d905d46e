//! What the adapter feeds the node: socket events and time (`handle_*`).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::net::SocketAddr;

use rand_core::CryptoRng;

use super::{BAN_SWEEP_INTERVAL, ConnId, Node, NodeEvent, Phase};

use crate::connection::Connection;
use crate::disconnect::DisconnectReason;
use crate::peer_set::{Direction, Refused, subnet};
use crate::time::Instant;

impl<R: CryptoRng> Node<R> {
    /// The adapter accepted a socket from `remote`. Refused at once (close the socket) when
    /// the address is filtered or banned, or a per-address or pending limit is hit — or, a
    /// bug, when the connection cannot be created ([`Refused::Internal`]). With the pending
    /// handshakes at their limit, the oldest handshake of the subnet holding the most is
    /// dropped for it instead, if that subnet holds more than its own
    /// ([`Limits::max_pending_handshakes`](crate::peer_set::Limits::max_pending_handshakes)).
    pub fn handle_accepted(&mut self, now: Instant, remote: SocketAddr) -> Result<ConnId, Refused> {
        if self.shutting_down {
            return Err(Refused::ShuttingDown);
        }
        let group = subnet(remote.ip());
        let admitted = self.peer_set.admit_inbound_socket(now, remote.ip());
        let over_share =
            self.handshakes.count(group) >= self.peer_set.limits().max_pending_per_subnet;
        match admitted {
            Ok(()) if over_share => {
                self.peer_set
                    .release(Direction::Inbound, None, Some(remote.ip()));
                return Err(Refused::PendingPerSubnet);
            }
            Ok(()) => {}
            Err(Refused::PendingHandshakes) if over_share => {
                return Err(Refused::PendingPerSubnet);
            }
            Err(Refused::PendingHandshakes) => {
                let victim = self
                    .handshakes
                    .victim(group)
                    .ok_or(Refused::PendingHandshakes)?;
                self.close_connection(
                    now,
                    victim,
                    DisconnectReason::TooManyPeers,
                    "pending handshakes full: dropped, its subnet holding the most",
                );
                self.peer_set.admit_inbound_socket(now, remote.ip())?;
            }
            Err(refused) => return Err(refused),
        }
        let connection = Connection::accept(
            now,
            self.connection_config.clone(),
            &self.keypair,
            self.info.clone(),
            &mut self.rng,
        )
        .ok();
        let conn = connection.and_then(|connection| {
            self.insert(
                connection,
                Direction::Inbound,
                remote,
                None,
                Phase::Handshaking,
            )
        });
        let Some(conn) = conn else {
            // Unreachable in practice (our own NodeInfo was checked when the node was built,
            // and 2^32 connection slots are not open at once), but never leak the slot, nor
            // blame a limit that was not reached.
            self.peer_set
                .release(Direction::Inbound, None, Some(remote.ip()));
            return Err(Refused::Internal);
        };
        self.handshakes.insert(conn, group, now);
        self.after(now, conn);
        Ok(conn)
    }

    /// The TCP connect of an outbound `conn` completed.
    pub fn handle_connected(&mut self, now: Instant, conn: ConnId) {
        if let Some(entry) = self.conns.get_mut(conn)
            && entry.phase == Phase::Connecting
        {
            entry.phase = Phase::Handshaking;
        }
        self.after(now, conn);
    }

    /// The TCP connect of an outbound `conn` failed; `error` is what the OS said (an
    /// `io::Error`'s text, such as `Connection refused (os error 111)`). Its dial fails with
    /// `NetworkError` and the detail `connect failed: {error}`, which tells a refused or
    /// unreachable address from a peer that hung up mid-handshake, as
    /// [`Node::handle_closed`] cannot. For a connection past its connect it is
    /// `handle_closed`.
    pub fn handle_connect_failed(&mut self, now: Instant, conn: ConnId, error: &str) {
        let Some(entry) = self.conns.get_mut(conn) else {
            return;
        };
        if entry.phase != Phase::Connecting {
            return self.handle_closed(now, conn);
        }
        let detail = format!("connect failed: {error}");
        entry
            .connection
            .close(now, DisconnectReason::NetworkError, &detail);
        self.after(now, conn);
    }

    /// Bytes read from `conn`'s socket.
    pub fn handle_input(&mut self, now: Instant, conn: ConnId, input: &[u8]) {
        let Some(entry) = self.conns.get_mut(conn) else {
            return;
        };
        if entry.phase == Phase::Connecting {
            entry.phase = Phase::Handshaking;
        }
        entry.connection.handle_input(now, input);
        self.after(now, conn);
    }

    /// `conn`'s socket closed or failed (EOF, reset, write error). A connect that failed is
    /// better reported by [`Node::handle_connect_failed`], which says why.
    pub fn handle_closed(&mut self, now: Instant, conn: ConnId) {
        if let Some(entry) = self.conns.get_mut(conn) {
            entry.connection.handle_closed();
        }
        self.after(now, conn);
    }

    /// `conn`'s socket would block: stop handing out its bytes until
    /// [`Node::handle_writable`]. A connection left blocked past
    /// [`ConnectionConfig::write_stall_timeout`] ends with `WriteStalled`.
    pub fn handle_write_blocked(&mut self, now: Instant, conn: ConnId) {
        if let Some(entry) = self.conns.get_mut(conn) {
            entry.connection.handle_write_blocked(now);
        }
        // Re-arms the connection's timer for the write-stall deadline.
        self.settle(now, conn);
    }

    /// `conn`'s socket can take bytes again.
    pub fn handle_writable(&mut self, now: Instant, conn: ConnId) {
        if let Some(entry) = self.conns.get_mut(conn) {
            entry.connection.handle_writable();
        }
        self.after(now, conn);
    }

    /// Fires every timer due by `now`; a call before any deadline does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(deadline, conn)) = self.timers.first() {
            if deadline > now {
                break;
            }
            self.timers.pop_first();
            if let Some(entry) = self.conns.get_mut(conn) {
                entry.timer = None;
                entry.connection.handle_timeout(now);
            }
            self.after(now, conn);
        }
        while let Some(&(since, conn)) = self.slow.first() {
            if since.saturating_add(self.config.slow_peer_timeout) > now {
                break;
            }
            self.slow.pop_first();
            let Some(entry) = self.conns.get_mut(conn) else {
                continue;
            };
            if entry.full_since != Some(since) || entry.phase != Phase::Connected {
                continue;
            }
            entry.full_since = None;
            if let Some(peer) = entry.peer {
                self.events.push_back(NodeEvent::SlowPeer { peer });
            }
            entry.connection.close(
                now,
                DisconnectReason::Timeout,
                "too slow: send queue full past the slow-peer timeout",
            );
            self.after(now, conn);
        }
        let peer_set = &self.peer_set;
        let expired = self.dials.handle_timeout(now, &mut self.rng, |addr| {
            peer_set.is_persistent_socket(&addr.socket_addr())
        });
        for (addr, retry) in expired {
            // A dial that outlived its timeout: report the failure (a probe's cancels the
            // retry just queued, before closing can start it), then close its socket.
            let conn = self.dialing.remove(&addr.socket_addr());
            self.report_dial_failure(
                addr,
                DisconnectReason::Timeout,
                String::from("dial timed out"),
                retry,
            );
            if let Some(conn) = conn
                && let Some(entry) = self.conns.get_mut(conn)
            {
                entry.dialed = None;
                entry
                    .connection
                    .close(now, DisconnectReason::Timeout, "dial timed out");
                self.after(now, conn);
            }
        }
        if self.flush_deadline.is_some_and(|deadline| deadline <= now) {
            self.flush_deadline = None;
            let conns: Vec<ConnId> = self.conns.ids().collect();
            for conn in conns {
                self.close_connection(now, conn, DisconnectReason::Quitting, "shutting down");
            }
        }
        // Bans are checked against their expiry whenever consulted; forgetting expired ones
        // only frees memory, so a sweep a minute keeps timers O(log n) with many bans.
        if now >= self.next_ban_sweep {
            self.peer_set.bans_mut().expire(now);
            self.next_ban_sweep = now.saturating_add(BAN_SWEEP_INTERVAL);
        }
        self.start_dials(now);
    }
}
