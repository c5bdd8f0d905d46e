//! One transport connection, from its first byte to its close: the handshake, then records
//! of frames carrying multiplexed channels, keepalive and the goodbye (`PROTOCOL.md` §6).
//!
//! ```text
//!              handshake ok                 close(), timeout, bad input
//! Handshaking ─────────────▶ Established ──────────────────────────────▶ Closing ──▶ Closed
//!      │                         │          (GOAWAY still to be written)      GOAWAY written
//!      │ failed / timed out      │ GOAWAY received, transport closed
//!      └─────────────────────────┴──────────────────────────────────────────────▶ Closed
//! ```
//!
//! The contract is sans-IO, as in quinn-proto: feed what the socket read to
//! [`Connection::handle_input`], write what [`Connection::poll_transmit`] hands out (call it
//! only while the socket can take more: that is how backpressure reaches `send`), deliver
//! [`Connection::poll_event`]s, and call [`Connection::handle_timeout`] at
//! [`Connection::poll_timeout`]. After any input, drain the `poll_*` methods.
//!
//! ```
//! use std::sync::Arc;
//! use switchboard::connection::{Connection, Event};
//! use switchboard::{Bytes, ChannelConfig, ChannelInfo, ConnectionConfig, Instant, Keypair, NodeInfo};
//! # use rand_core::{Infallible, TryCryptoRng, TryRng};
//! # struct Counter(u8);
//! # impl TryRng for Counter {
//! #     type Error = Infallible;
//! #     fn try_next_u32(&mut self) -> Result<u32, Infallible> { Ok(self.0 as u32) }
//! #     fn try_next_u64(&mut self) -> Result<u64, Infallible> { Ok(self.0 as u64) }
//! #     fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
//! #         for b in dst { self.0 = self.0.wrapping_add(1); *b = self.0; } Ok(())
//! #     }
//! # }
//! # impl TryCryptoRng for Counter {}
//! # let mut rng = Counter(0);
//!
//! let config = Arc::new(ConnectionConfig::new(vec![ChannelConfig::new(1)]));
//! let mut info = NodeInfo::new("testnet", "example");
//! info.channels.push(ChannelInfo { id: 1, protocol: "chat".into(), version: 1 });
//! let now = Instant::ZERO;
//!
//! let mut dialer = Connection::dial(now, config.clone(), &Keypair::generate(&mut rng), info.clone(), None, &mut rng)?;
//! let mut listener = Connection::accept(now, config, &Keypair::generate(&mut rng), info, &mut rng)?;
//!
//! let mut received = Vec::new();
//! let mut wire = Vec::new();
//! for _ in 0..4 {
//!     while dialer.poll_transmit(now, &mut wire) {}
//!     listener.handle_input(now, &wire);
//!     wire.clear();
//!     while listener.poll_transmit(now, &mut wire) {}
//!     dialer.handle_input(now, &wire);
//!     wire.clear();
//!     while let Some(event) = listener.poll_event() {
//!         if let Event::Message { message, .. } = event {
//!             received.push(message);
//!         }
//!     }
//!     while let Some(event) = dialer.poll_event() {
//!         if let Event::Connected { .. } = event {
//!             dialer.send(1, Bytes::from_static(b"hello")).unwrap();
//!         }
//!     }
//! }
//! assert_eq!(received, [Bytes::from_static(b"hello")]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod config;
mod copies;
mod event;
mod frame_budget;
mod landing;
mod record_input;
mod stats;

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use bytes::{Bytes, BytesMut};
use rand_core::CryptoRng;

pub use config::ConnectionConfig;
use copies::Copies;
pub use event::{Closed, ClosedBy, Event};
pub use frame_budget::FREE_FRAMES_PER_SECOND;
use frame_budget::FrameBudget;
use landing::{Landings, RecordShape};
use record_input::RecordInput;
pub use stats::ConnectionStats;

use crate::channel::ChannelId;
use crate::cipher::TransportCipher;
use crate::disconnect::DisconnectReason;
use crate::frame::{Frame, FrameReader, MAX_GOAWAY_TEXT};
use crate::handshake::{Handshake, HandshakeError};
use crate::identity::{Keypair, PeerId};
use crate::keepalive::Keepalive;
use crate::length_prefix::HEADER_LEN;
use crate::mux::{ChannelStats, Landed, Mux, MuxError, SendError, SendOutcome};
use crate::node_info::{NodeInfo, NodeInfoError};
use crate::record::{MAX_PLAINTEXT_LEN, begin_record, finish_record};
use crate::time::Instant;

/// One transport connection. See the [module documentation](self).
pub struct Connection {
    config: Arc<ConnectionConfig>,
    state: State,
    input: RecordInput,
    events: VecDeque<Event>,
    stats: ConnectionStats,
    /// This end dialed.
    dialer: bool,
    /// The latest time the connection was given (by `handle_input`, `handle_timeout`,
    /// `poll_transmit` or `close`): what a close counts its deadline from, including the
    /// closes the connection decides itself (a protocol error, a keepalive timeout).
    clock: Instant,
    /// Since when the transport takes nothing more (`handle_write_blocked`), if it does not.
    write_blocked_since: Option<Instant>,
}

enum State {
    Handshaking {
        handshake: Box<Handshake>,
        deadline: Instant,
        /// The listener's: when the dialer must have sent its first byte
        /// ([`ConnectionConfig::first_byte_timeout`]); `None` once it has, and for the dialer.
        first_byte: Option<Instant>,
    },
    Established(Box<Session>),
    /// Closed by us; the GOAWAY still has to be written, by `deadline` (else the connection
    /// ends without it).
    Closing {
        session: Box<Session>,
        goaway: Frame,
        deadline: Instant,
    },
    Closed,
}

/// An established connection's working parts.
///
/// Laid out in declaration order (`repr(C)`), what every record touches first: a relay
/// touches the sessions of connections drawn at random among thousands, and every cache
/// line a session spans is a miss.
#[repr(C)]
struct Session {
    mux: Mux,
    /// What is left to do of the opening; `None` once done, for the rest of the connection's
    /// life. Kept out of line, as it is no use after the first records.
    opening: Option<Box<Opening>>,
    /// Records of large messages placed straight into their reassembly buffer.
    landings: Landings,
    cipher: TransportCipher,
    keepalive: Keepalive,
    /// What bounds the frames that carry nothing.
    free_frames: FrameBudget,
    peer: PeerId,
    /// Where the messages of records too sparse to be held are copied (see [`may_hold`]);
    /// released when the connection is idle.
    message_copies: Copies,
    /// Where what follows a landed fragment (or a landed record that was not one) is copied
    /// before the next landing overwrites it; released when the connection is idle.
    landing_rests: Copies,
}

/// The opening steps after the handshake: our first record (it is sent even with nothing in
/// it), and for the dialer, the handshake's last message and the listener's first record.
struct Opening {
    /// The end of the handshake (the dialer's message 3), written before any record.
    handshake_tail: Vec<u8>,
    /// The dialer's peer information, held back until the listener's first record shows the
    /// listener accepted us (`PROTOCOL.md` §6.6); `None` once connected.
    awaiting_greeting: Option<Box<NodeInfo>>,
    /// Whether our first record went out.
    greeted: bool,
    /// When the handshake must have completed, the listener's first record included.
    deadline: Instant,
}

/// How processing a record ended the connection.
enum End {
    Local(DisconnectReason, String),
    Remote(DisconnectReason, String),
}

impl Connection {
    /// The dialer's end of a new transport connection. `expected_peer` is the identity
    /// dialed, when known.
    pub fn dial<R: CryptoRng + ?Sized>(
        now: Instant,
        config: Arc<ConnectionConfig>,
        keypair: &Keypair,
        local_info: NodeInfo,
        expected_peer: Option<PeerId>,
        rng: &mut R,
    ) -> Result<Self, NodeInfoError> {
        let handshake = Handshake::initiator(keypair, local_info, expected_peer, rng)?;
        Ok(Self::new(now, config, handshake, true))
    }

    /// The listener's end of an accepted transport connection.
    pub fn accept<R: CryptoRng + ?Sized>(
        now: Instant,
        config: Arc<ConnectionConfig>,
        keypair: &Keypair,
        local_info: NodeInfo,
        rng: &mut R,
    ) -> Result<Self, NodeInfoError> {
        let handshake = Handshake::responder(keypair, local_info, rng)?;
        Ok(Self::new(now, config, handshake, false))
    }

    fn new(
        now: Instant,
        config: Arc<ConnectionConfig>,
        handshake: Handshake,
        dialer: bool,
    ) -> Self {
        let deadline = now.saturating_add(config.handshake_timeout);
        let first_byte = (!dialer).then(|| now.saturating_add(config.first_byte_timeout));
        Connection {
            config,
            state: State::Handshaking {
                handshake: Box::new(handshake),
                deadline,
                first_byte,
            },
            input: RecordInput::default(),
            events: VecDeque::new(),
            stats: ConnectionStats::default(),
            dialer,
            clock: now,
            write_blocked_since: None,
        }
    }

    // ----- getters -----

    /// Whether the transport takes nothing more for now (from
    /// [`Connection::handle_write_blocked`] to [`Connection::handle_writable`]).
    pub fn is_write_blocked(&self) -> bool {
        self.write_blocked_since.is_some()
    }

    /// Whether this end dialed.
    pub fn is_dialer(&self) -> bool {
        self.dialer
    }

    /// The peer's identity, once authenticated (the dialer knows it from message 2, before
    /// [`Event::Connected`]).
    pub fn peer(&self) -> Option<PeerId> {
        match &self.state {
            State::Established(session) | State::Closing { session, .. } => Some(session.peer),
            State::Handshaking { .. } | State::Closed => None,
        }
    }

    /// Whether the connection is established (the dialer: the listener's first record
    /// arrived) and not closing: [`Event::Connected`] was emitted and `send` works.
    pub fn is_established(&self) -> bool {
        matches!(&self.state, State::Established(session) if session.is_connected())
    }

    /// Whether the connection is over and has nothing left to transmit: the transport can
    /// be closed and the `Connection` dropped once its events are drained.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// Whether channel `id` is open on this connection (offered by both ends).
    pub fn is_channel_open(&self, id: ChannelId) -> bool {
        match &self.state {
            State::Established(session) => session.is_connected() && session.mux.is_open(id),
            _ => false,
        }
    }

    /// Whether a `send` on `channel` of a `refused`-byte message that returned `Full` may be
    /// tried again: the queue is empty, or at most half full with room for that message.
    /// `false` when the channel is not open (or the connection not established): nothing
    /// can be sent there.
    pub fn has_send_room(&self, channel: ChannelId, refused: usize) -> bool {
        match &self.state {
            State::Established(session) => {
                session.is_connected() && session.mux.has_room(channel, refused)
            }
            _ => false,
        }
    }

    /// Whether every message `send` accepted was written and confirmed by the peer's
    /// application: nothing would be handed back if the connection closed now. A
    /// connection that is not established has sent nothing, and is flushed.
    pub fn is_flushed(&self) -> bool {
        match &self.state {
            State::Established(session) | State::Closing { session, .. } => {
                session.mux.is_flushed()
            }
            _ => true,
        }
    }

    /// Grants the peer no more credit: messages the application takes from now on are never
    /// confirmed, so the sender gets them back as *unconfirmed* (perhaps delivered) when the
    /// connection ends, instead of counting as taken. For an application that takes
    /// messages it will not process — one going away, whose events nobody can read any
    /// more. The peer's sends stall once its window is spent.
    pub fn withhold_credit(&mut self) {
        if let State::Established(session) | State::Closing { session, .. } = &mut self.state {
            session.mux.withhold_credit();
        }
    }

    /// The connection's counters.
    pub fn stats(&self) -> ConnectionStats {
        let rtt = match &self.state {
            State::Established(session) | State::Closing { session, .. } => session.keepalive.rtt(),
            _ => None,
        };
        ConnectionStats { rtt, ..self.stats }
    }

    /// Counters of each open channel.
    pub fn channel_stats(&self) -> Vec<ChannelStats> {
        match &self.state {
            State::Established(session) | State::Closing { session, .. } => {
                session.mux.stats().collect()
            }
            _ => Vec::new(),
        }
    }

    /// Bytes of received data held for the application: messages not yet taken, partly
    /// reassembled messages, and a partial record. Bounded by the channels'
    /// [`receive_buffer_bound`](crate::ChannelConfig::receive_buffer_bound)s plus one record.
    pub fn buffered_bytes(&self) -> u64 {
        let messages = match &self.state {
            State::Established(session) | State::Closing { session, .. } => {
                session.mux.buffered_bytes()
            }
            _ => 0,
        };
        messages.saturating_add(self.input.buffered() as u64)
    }

    // ----- handle_* -----

    /// Bytes read from the transport, in pieces of any size.
    pub fn handle_input(&mut self, now: Instant, input: &[u8]) {
        self.tick(now);
        self.stats.wire_bytes_received = self
            .stats
            .wire_bytes_received
            .saturating_add(input.len() as u64);
        let mut rest = input;
        if let State::Handshaking {
            handshake,
            first_byte,
            ..
        } = &mut self.state
        {
            if !input.is_empty() {
                *first_byte = None;
            }
            match handshake.handle_input(rest) {
                Ok(used) => rest = rest.get(used..).unwrap_or_default(),
                Err(error) => return self.fail_handshake(error),
            }
            if !handshake.is_established() {
                return;
            }
            self.establish(now);
        }
        while !rest.is_empty() {
            let State::Established(session) = &mut self.state else {
                break;
            };
            if self.input.buffered() == 0 && session.is_connected() {
                session.begin_landing(&mut rest);
            }
            let end = if session.landings.current().is_some() {
                session.continue_landing(now, &mut rest, &mut self.events, &mut self.stats)
            } else {
                match self.input.next_record(&mut rest) {
                    Ok(None) => break,
                    Ok(Some(record)) => session.open_record(
                        now,
                        record,
                        self.input.allocation(),
                        &mut self.events,
                        &mut self.stats,
                    ),
                    Err(error) => Err(protocol_error(error)),
                }
            };
            if let Err(end) = end {
                self.end(end);
            }
        }
        self.input.release_if_small_and_empty();
    }

    /// The transport closed (EOF, reset, write error). Ends the connection at once.
    pub fn handle_closed(&mut self) {
        match core::mem::replace(&mut self.state, State::Closed) {
            State::Closing { .. } | State::Closed => {}
            State::Handshaking { .. } => self.push_closed(
                DisconnectReason::NetworkError,
                ClosedBy::Remote,
                String::from("transport closed during the handshake"),
                SendOutcome::default(),
            ),
            State::Established(mut session) => self.push_closed(
                DisconnectReason::NetworkError,
                ClosedBy::Remote,
                String::from("transport closed"),
                session.mux.finish(),
            ),
        }
    }

    /// The transport takes nothing more for now (a socket that would block): from `now` on,
    /// [`ConnectionConfig::write_stall_timeout`] runs until [`Connection::handle_writable`].
    /// A later call while still blocked keeps the first instant.
    pub fn handle_write_blocked(&mut self, now: Instant) {
        self.tick(now);
        if self.write_blocked_since.is_none() {
            self.write_blocked_since = Some(now);
        }
    }

    /// The transport took everything written so far and takes more.
    pub fn handle_writable(&mut self) {
        self.write_blocked_since = None;
    }

    /// Fires the timers that expired by `now`; a call before any deadline does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.tick(now);
        if let State::Established(_) = self.state
            && self
                .write_stall_deadline()
                .is_some_and(|deadline| now >= deadline)
        {
            // The GOAWAY would wait behind what the peer does not read: end at once.
            self.close_locally(
                DisconnectReason::WriteStalled,
                String::from("peer stopped reading: output blocked past the write-stall timeout"),
            );
            self.state = State::Closed;
            return;
        }
        let end = match &mut self.state {
            State::Handshaking { deadline, .. } if now >= *deadline => Some(End::Local(
                DisconnectReason::Timeout,
                String::from("handshake timed out"),
            )),
            State::Handshaking {
                first_byte: Some(first_byte),
                ..
            } if now >= *first_byte => Some(End::Local(
                DisconnectReason::Timeout,
                String::from("no first byte within the first-byte timeout"),
            )),
            State::Established(session)
                if session
                    .greeting_deadline()
                    .is_some_and(|deadline| now >= deadline) =>
            {
                Some(End::Local(
                    DisconnectReason::Timeout,
                    String::from("handshake timed out waiting for the listener's first record"),
                ))
            }
            State::Established(session) => {
                // Rate limits: refill the buckets, release the credit they allow.
                session.mux.handle_timeout(now);
                // Timers fire rarely (every ping interval, or a rate limit's pace): a good
                // moment to let go of buffers that stayed drained, without churning them
                // under load.
                session.mux.release_idle_buffers();
                session.message_copies.release();
                session.landing_rests.release();
                self.input.release_if_empty();
                if self.events.is_empty() {
                    self.events = VecDeque::new();
                }
                session.keepalive.handle_timeout(now).err().map(|_| {
                    End::Local(
                        DisconnectReason::Timeout,
                        String::from("peer silent past the pong timeout"),
                    )
                })
            }
            // The transport never took the GOAWAY: give up on it. `Event::Closed` went out
            // when the connection closed.
            State::Closing { deadline, .. } if now >= *deadline => {
                self.state = State::Closed;
                None
            }
            _ => None,
        };
        if let Some(end) = end {
            self.end(end);
        }
    }

    // ----- mutators -----

    /// Queues `message` on `channel`. On error the message is handed back: `Full` means
    /// transmit first (the queue drains as `poll_transmit` runs).
    pub fn send(&mut self, channel: ChannelId, message: Bytes) -> Result<(), SendError> {
        match &mut self.state {
            State::Established(session) if session.is_connected() => {
                session.mux.send(channel, message)
            }
            _ => Err(SendError::NotConnected(message)),
        }
    }

    /// Closes the connection at `now`: a GOAWAY with `reason` and `detail` (at most
    /// [`MAX_GOAWAY_TEXT`] bytes reach the peer) is written by the next `poll_transmit`, and
    /// [`Event::Closed`] reports what became of every message sent. Nothing more is sent or
    /// received. A GOAWAY the transport has not taken by
    /// [`ConnectionConfig::close_timeout`] after `now` is given up (`poll_timeout` names
    /// the deadline), so a peer that stops reading cannot hold the connection open. Closing
    /// a closed connection does nothing.
    pub fn close(&mut self, now: Instant, reason: DisconnectReason, detail: &str) {
        self.tick(now);
        self.close_locally(reason, String::from(detail));
    }

    // ----- poll_* -----

    /// Appends the next bytes to write to `out` (the handshake's, or one record) and returns
    /// whether it did. Call while the transport accepts more; what is not asked for stays
    /// in the channel queues.
    #[must_use = "the bytes appended must be written to the transport"]
    pub fn poll_transmit(&mut self, now: Instant, out: &mut Vec<u8>) -> bool {
        self.tick(now);
        let start = out.len();
        let wrote = match &mut self.state {
            State::Handshaking { handshake, .. } => handshake.poll_transmit(out),
            State::Established(session) => match session.transmit(now, out) {
                Ok(wrote) => wrote,
                Err(end) => {
                    self.end(end);
                    false
                }
            },
            // The listener cannot read a GOAWAY without the end of our handshake.
            State::Closing {
                session, goaway, ..
            } => {
                if session.write_handshake_tail(out) {
                    true
                } else {
                    // Pending credit goes out with the GOAWAY: it confirms messages the peer
                    // sent us.
                    let record = begin_record(out);
                    let space = MAX_PLAINTEXT_LEN.saturating_sub(MAX_GOAWAY_FRAME);
                    session.mux.write_frames(out, space);
                    goaway.encode(out);
                    // A nonce exhausted now leaves nothing to say the goodbye with: close anyway.
                    let sealed = finish_record(&mut session.cipher, out, record).is_ok();
                    self.state = State::Closed;
                    sealed
                }
            }
            State::Closed => false,
        };
        if wrote {
            let written = out.len().saturating_sub(start) as u64;
            self.stats.wire_bytes_sent = self.stats.wire_bytes_sent.saturating_add(written);
            if !matches!(self.state, State::Handshaking { .. }) {
                self.stats.records_sent = self.stats.records_sent.saturating_add(1);
            }
        }
        wrote
    }

    /// The next event. Taking a [`Event::Message`] returns its credit to the peer.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        let event = self.events.pop_front()?;
        // Only while established: a message taken after we closed (or discarded by an owner
        // that refused the peer) is not confirmed to the sender.
        if let Event::Message { channel, message } = &event
            && let State::Established(session) = &mut self.state
        {
            session.mux.handle_taken(*channel, message.len());
        }
        Some(event)
    }

    /// The event [`Connection::poll_event`] would return next, without taking it (taking a
    /// message is what returns its credit).
    pub fn peek_event(&self) -> Option<&Event> {
        self.events.front()
    }

    /// The next deadline at which [`Connection::handle_timeout`] must be called: the
    /// handshake's, keepalive's, or when a channel's rate limit next lets data or withheld
    /// credit go (`poll_transmit` then writes it).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            State::Handshaking {
                deadline,
                first_byte,
                ..
            } => Some(first_byte.map_or(*deadline, |first| first.min(*deadline))),
            State::Established(session) => {
                let keepalive = session.keepalive.poll_timeout();
                let deadline = match session.greeting_deadline() {
                    Some(deadline) => keepalive.min(deadline),
                    None => session
                        .mux
                        .poll_timeout()
                        .map_or(keepalive, |rate| rate.min(keepalive)),
                };
                Some(
                    self.write_stall_deadline()
                        .map_or(deadline, |stall| stall.min(deadline)),
                )
            }
            State::Closing { deadline, .. } => Some(*deadline),
            State::Closed => None,
        }
    }

    // ----- internals -----

    fn establish(&mut self, now: Instant) {
        let State::Handshaking {
            mut handshake,
            deadline,
            ..
        } = core::mem::replace(&mut self.state, State::Closed)
        else {
            return;
        };
        let mut handshake_tail = Vec::new();
        while handshake.poll_transmit(&mut handshake_tail) {}
        let offered = handshake.local_info().channels.clone();
        let Some(established) = handshake.into_established() else {
            return self.push_closed(
                DisconnectReason::ProtocolError,
                ClosedBy::Local,
                String::from("handshake could not produce transport keys"),
                SendOutcome::default(),
            );
        };
        let info = Box::new(established.info);
        let mux = Mux::new(&self.config.channels, &offered, &info.channels);
        // The dialer learns that the listener accepted it from the listener's first record;
        // the listener, having checked the dialer last, is connected now.
        let awaiting_greeting = if self.dialer {
            Some(info)
        } else {
            self.stats.established_at = Some(now);
            self.events.push_back(Event::Connected {
                peer: established.peer_id,
                info,
            });
            None
        };
        let session = Session {
            cipher: established.cipher,
            peer: established.peer_id,
            mux,
            keepalive: Keepalive::new(now, self.config.ping_interval, self.config.pong_timeout),
            free_frames: FrameBudget::new(now, self.config.free_frames_per_second),
            opening: Some(Box::new(Opening {
                handshake_tail,
                awaiting_greeting,
                greeted: false,
                deadline,
            })),
            message_copies: Copies::default(),
            landing_rests: Copies::default(),
            landings: Landings::default(),
        };
        self.state = State::Established(Box::new(session));
    }

    fn fail_handshake(&mut self, error: HandshakeError) {
        let State::Handshaking { handshake, .. } =
            core::mem::replace(&mut self.state, State::Closed)
        else {
            return;
        };
        // A listener that refused after message 3 holds transport keys: it says why.
        let peer = handshake.remote_peer_id();
        if let (Some(peer), Some(cipher)) = (peer, handshake.into_rejection_transport()) {
            let session = Session {
                cipher,
                peer,
                mux: Mux::new(&[], &[], &[]),
                keepalive: Keepalive::new(
                    Instant::ZERO,
                    self.config.ping_interval,
                    self.config.pong_timeout,
                ),
                free_frames: FrameBudget::new(Instant::ZERO, 0),
                opening: None,
                message_copies: Copies::default(),
                landing_rests: Copies::default(),
                landings: Landings::default(),
            };
            self.state = State::Closing {
                session: Box::new(session),
                goaway: goaway(error.reason(), error.to_string()),
                deadline: self.close_deadline(),
            };
        }
        self.push_closed(
            error.reason(),
            ClosedBy::Local,
            error.to_string(),
            SendOutcome::default(),
        );
    }

    fn end(&mut self, end: End) {
        match end {
            End::Local(reason, detail) => self.close_locally(reason, detail),
            End::Remote(reason, detail) => {
                if let State::Established(mut session) =
                    core::mem::replace(&mut self.state, State::Closed)
                {
                    let outcome = session.mux.finish();
                    self.push_closed(reason, ClosedBy::Remote, detail, outcome);
                }
            }
        }
    }

    fn close_locally(&mut self, reason: DisconnectReason, detail: String) {
        match core::mem::replace(&mut self.state, State::Closed) {
            State::Handshaking { .. } => {
                self.push_closed(reason, ClosedBy::Local, detail, SendOutcome::default());
            }
            State::Established(mut session) => {
                let outcome = session.mux.finish();
                self.state = State::Closing {
                    session,
                    goaway: goaway(reason, detail.clone()),
                    deadline: self.close_deadline(),
                };
                self.push_closed(reason, ClosedBy::Local, detail, outcome);
            }
            closing @ State::Closing { .. } => self.state = closing,
            State::Closed => {}
        }
    }

    /// When the transport, blocked, has refused our bytes for too long.
    fn write_stall_deadline(&self) -> Option<Instant> {
        self.write_blocked_since
            .map(|since| since.saturating_add(self.config.write_stall_timeout))
    }

    /// Advances the connection's clock to `now` (never back).
    fn tick(&mut self, now: Instant) {
        self.clock = self.clock.max(now);
    }

    /// When a connection closing now must have written its GOAWAY: at least
    /// [`MIN_CLOSE_TIMEOUT`] on, so that a connection a timer closes is not given up by the
    /// same pass over the timers, before anything could write its GOAWAY.
    fn close_deadline(&self) -> Instant {
        self.clock
            .saturating_add(self.config.close_timeout.max(MIN_CLOSE_TIMEOUT))
    }

    fn push_closed(
        &mut self,
        reason: DisconnectReason,
        by: ClosedBy,
        detail: String,
        outcome: SendOutcome,
    ) {
        self.events.push_back(Event::Closed(Box::new(Closed {
            reason,
            by,
            detail,
            outcome,
        })));
    }
}

/// The shortest [`ConnectionConfig::close_timeout`] honoured.
const MIN_CLOSE_TIMEOUT: core::time::Duration = core::time::Duration::from_millis(1);

/// Room a GOAWAY frame needs: type, code, a 2-byte length and the longest text.
const MAX_GOAWAY_FRAME: usize = 4 + MAX_GOAWAY_TEXT;

/// Messages handed out as slices of their decrypted record keep alive the whole allocation
/// the record lies in: the record buffer, which holds several records of a read. Flow control
/// counts messages, not buffers, so a peer could make a tiny message hold a 64 KiB record
/// padded with PINGs, or a tiny record hold a buffer otherwise filled with PING-only records.
/// So the messages of a record stay slices only when they are at least half of the record and
/// an eighth of its buffer; otherwise they are copied out (into a [`Copies`] buffer, which
/// holds nothing but message bytes). Every buffer held by queued messages is then at most
/// eight times the message bytes it holds, all counted by flow control. Records of traffic,
/// full of messages, are never copied.
fn may_hold(sliced_bytes: usize, record_len: usize, allocation: usize) -> bool {
    sliced_bytes.saturating_mul(2) >= record_len && sliced_bytes.saturating_mul(8) >= allocation
}

/// A number that differs from one read of the connection to the next, for [`Copies`]: the
/// bytes received so far, this read included (every read brings at least one).
fn read_mark(stats: &ConnectionStats) -> u64 {
    stats.wire_bytes_received
}

/// Input that breaks the record or frame layer ends the connection as a protocol error.
fn protocol_error(error: impl fmt::Display) -> End {
    End::Local(DisconnectReason::ProtocolError, error.to_string())
}

/// The peer overdrew its budget of frames that carry nothing (`frame_budget.rs`).
fn flood() -> End {
    End::Local(
        DisconnectReason::ControlFlood,
        String::from("more frames carrying nothing than their budget allows"),
    )
}

fn mux_end(error: MuxError) -> End {
    End::Local(error.reason(), error.to_string())
}

fn goaway(reason: DisconnectReason, text: String) -> Frame {
    Frame::GoAway { reason, text }
}

impl Session {
    /// Whether the peer is known to have accepted us (for the dialer: the listener's first
    /// record arrived).
    fn is_connected(&self) -> bool {
        self.opening
            .as_ref()
            .is_none_or(|opening| opening.awaiting_greeting.is_none())
    }

    /// When the listener's first record must have arrived, while the dialer waits for it.
    fn greeting_deadline(&self) -> Option<Instant> {
        self.opening
            .as_ref()
            .filter(|opening| opening.awaiting_greeting.is_some())
            .map(|opening| opening.deadline)
    }

    /// Lets go of the opening once nothing is left of it.
    fn end_opening_if_done(&mut self) {
        if self.opening.as_ref().is_some_and(|opening| {
            opening.greeted
                && opening.awaiting_greeting.is_none()
                && opening.handshake_tail.is_empty()
        }) {
            self.opening = None;
        }
    }

    /// Writes the end of the handshake (the dialer's message 3) if it is still to be written:
    /// it goes before any record.
    fn write_handshake_tail(&mut self, out: &mut Vec<u8>) -> bool {
        match &mut self.opening {
            Some(opening) if !opening.handshake_tail.is_empty() => {
                out.append(&mut opening.handshake_tail);
                opening.handshake_tail = Vec::new();
                true
            }
            _ => false,
        }
    }

    /// Writes one record of keepalive and multiplexer frames, if there is anything to say.
    fn transmit(&mut self, now: Instant, out: &mut Vec<u8>) -> Result<bool, End> {
        if self.write_handshake_tail(out) {
            return Ok(true);
        }
        // Rate-limited channels may have come due since the last timer.
        self.mux.handle_timeout(now);
        let greeted = self.opening.as_ref().is_none_or(|opening| opening.greeted);
        if greeted && !self.keepalive.wants_to_write() && !self.mux.wants_to_write() {
            return Ok(false);
        }
        if let Some(opening) = &mut self.opening {
            opening.greeted = true;
        }
        self.end_opening_if_done();
        let record = begin_record(out);
        // Multiplexer frames first (DATA leading), PING and PONG last, in room kept for them.
        let keepalive_room = self.keepalive.frames_len();
        self.mux
            .write_frames(out, MAX_PLAINTEXT_LEN.saturating_sub(keepalive_room));
        self.keepalive.write_frames(now, out);
        finish_record(&mut self.cipher, out, record)
            .map(|()| true)
            .map_err(|error| End::Local(DisconnectReason::NetworkError, error.to_string()))
    }

    /// One whole record from the record buffer, lying in an allocation of `allocation`
    /// bytes: decrypted in place and read. The dialer's first one is the listener's greeting.
    fn open_record(
        &mut self,
        now: Instant,
        mut record: BytesMut,
        allocation: usize,
        events: &mut VecDeque<Event>,
        stats: &mut ConnectionStats,
    ) -> Result<(), End> {
        let len = self
            .cipher
            .decrypt_in_place(&mut record)
            .map_err(protocol_error)?;
        record.truncate(len);
        stats.records_received = stats.records_received.saturating_add(1);
        if len == 0 {
            // A record without frames carries nothing either (but the first, an empty
            // greeting, which the burst covers).
            self.free_frames.refill(now);
            self.free_frames.spend().map_err(|_| flood())?;
        }
        let read = read_mark(stats);
        let greeting = self
            .opening
            .as_mut()
            .and_then(|opening| opening.awaiting_greeting.take());
        self.end_opening_if_done();
        let first_event = events.len();
        let handled = self
            .handle_record(now, record.freeze(), allocation, read, events)
            .map(|shape| self.landings.after_record(shape.suggests()));
        if let Some(info) = greeting {
            // The listener's first record: connected, unless it refused us.
            if handled.is_ok() {
                let peer = self.peer;
                events.insert(first_event, Event::Connected { peer, info });
                stats.established_at = Some(now);
            } else {
                events.truncate(first_event);
            }
        }
        handled
    }

    /// Starts placing the record at the front of `input` straight into a reassembly buffer,
    /// if the records before it suggest it continues a message there (see [`Landings`]);
    /// its header is then consumed. Called only with no partial record buffered.
    fn begin_landing(&mut self, input: &mut &[u8]) {
        if self.landings.current().is_some() {
            return;
        }
        let Some(channel) = self.landings.guess() else {
            return;
        };
        let Some((header, body)) = input.split_first_chunk::<HEADER_LEN>() else {
            return;
        };
        let record_len = usize::from(u16::from_be_bytes(*header));
        if let Some(landing) = self.mux.begin_landing(channel, record_len) {
            self.landings.start(landing);
            *input = body;
        }
    }

    /// Feeds the record being placed from `input`; once it is whole, decrypts it where it
    /// lies and lets the multiplexer check the guess.
    fn continue_landing(
        &mut self,
        now: Instant,
        input: &mut &[u8],
        events: &mut VecDeque<Event>,
        stats: &mut ConnectionStats,
    ) -> Result<(), End> {
        let Some((landing, remaining)) = self.landings.current() else {
            return Ok(());
        };
        let (piece, rest) = input.split_at(usize::from(*remaining).min(input.len()));
        // `piece` is at most `remaining` long.
        *remaining = remaining.saturating_sub(u16::try_from(piece.len()).unwrap_or(u16::MAX));
        let complete = *remaining == 0;
        self.mux.extend_landing(landing, piece);
        *input = rest;
        if !complete {
            return Ok(());
        }
        let Some(landing) = self.landings.take_current() else {
            return Ok(());
        };
        let channel = landing.channel();
        let record = self.mux.landed_record(&landing).ok_or_else(|| {
            End::Local(
                DisconnectReason::ProtocolError,
                String::from("landed record lost"),
            )
        })?;
        self.cipher
            .decrypt_in_place(record)
            .map_err(protocol_error)?;
        stats.records_received = stats.records_received.saturating_add(1);
        let read = read_mark(stats);
        let rests = &mut self.landing_rests;
        let landed = self
            .mux
            .finish_landing(landing, |kept| rests.copy(kept, read))
            .map_err(mux_end)?;
        match landed {
            Landed::Fragment { message, rest } => {
                stats.records_landed = stats.records_landed.saturating_add(1);
                self.landings.confirmed();
                let completed = message.is_some();
                if let Some(message) = message {
                    events.push_back(Event::Message { channel, message });
                }
                let allocation = self.landing_rests.allocation();
                let rest = self.handle_record(now, rest, allocation, read, events)?;
                let next = (!completed && !rest.has_data()).then_some(channel);
                self.landings.after_record(next);
                Ok(())
            }
            Landed::Refuted(plaintext) => {
                stats.records_misguessed = stats.records_misguessed.saturating_add(1);
                self.landings.refuted();
                let allocation = self.landing_rests.allocation();
                let shape = self.handle_record(now, plaintext, allocation, read, events)?;
                self.landings.after_record(shape.suggests());
                Ok(())
            }
        }
    }

    /// One decrypted record, lying in an allocation of `allocation` bytes, from the read
    /// marked `read` (see [`read_mark`]): its frames, in order. Returns what they say about
    /// the next record.
    fn handle_record(
        &mut self,
        now: Instant,
        record: Bytes,
        allocation: usize,
        read: u64,
        events: &mut VecDeque<Event>,
    ) -> Result<RecordShape, End> {
        self.keepalive.handle_received();
        let record_start = record.as_ptr() as usize;
        let record_len = record.len();
        let record_end = record_start.saturating_add(record_len);
        // Messages completed from earlier records were reassembled elsewhere: only those
        // that are slices of this record hold it.
        let in_record =
            |message: &Bytes| (record_start..record_end).contains(&(message.as_ptr() as usize));
        let first_event = events.len();
        let mut sliced_bytes = 0usize;
        let mut shape = RecordShape::default();
        self.free_frames.refill(now);
        for frame in FrameReader::new(record) {
            let frame = frame.map_err(protocol_error)?;
            self.free_frames.charge(&frame).map_err(|_| flood())?;
            shape.add(&frame);
            let mux_result = match frame {
                Frame::Data {
                    channel,
                    first,
                    end,
                    payload,
                } => self
                    .mux
                    .handle_data(channel, first, end, payload)
                    .map(|message| {
                        if let Some(message) = message {
                            if in_record(&message) {
                                sliced_bytes = sliced_bytes.saturating_add(message.len());
                            }
                            events.push_back(Event::Message { channel, message });
                        }
                    }),
                Frame::Credit { channel, amount } => self.mux.handle_credit(channel, amount),
                Frame::Ping(value) => {
                    self.keepalive.handle_ping(value);
                    Ok(())
                }
                Frame::Pong(value) => {
                    self.keepalive.handle_pong(now, value);
                    Ok(())
                }
                Frame::GoAway { reason, text } => return Err(End::Remote(reason, text)),
            };
            mux_result.map_err(mux_end)?;
        }
        if !may_hold(sliced_bytes, record_len, allocation) {
            for event in events.range_mut(first_event..) {
                if let Event::Message { message, .. } = event
                    && in_record(message)
                {
                    *message = self.message_copies.copy(message, read);
                }
            }
        }
        Ok(shape)
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Handshaking { .. } => "handshaking",
            State::Established(_) => "established",
            State::Closing { .. } => "closing",
            State::Closed => "closed",
        };
        f.debug_struct("Connection")
            .field("state", &state)
            .field("peer", &self.peer())
            .finish_non_exhaustive()
    }
}
