//! Two `Connection`s joined by an in-memory pipe, on a virtual clock: the test bench of the
//! connection suites (as quinn-proto's `Pair`).
//!
//! Nothing moves unless the test says so: `transmit` collects what one side writes,
//! `deliver` hands (part of) it to the other, `take_events` polls one side's events. That is
//! what lets a test stall a side, cut the wire at a byte, or split reads anywhere.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rand_core::SeedableRng;
use switchboard::connection::{Closed, Connection, Event};
use switchboard::{
    ChannelConfig, ChannelId, ChannelInfo, ConnectionConfig, Instant, Keypair, NodeInfo, SendError,
};

/// Which end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Dialer,
    Listener,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::Dialer => Side::Listener,
            Side::Listener => Side::Dialer,
        }
    }
}

/// A `NodeInfo` offering exactly the configured channels.
pub fn info_for(config: &ConnectionConfig, agent: &str) -> NodeInfo {
    let mut info = NodeInfo::new("switchboard-tests", agent);
    for channel in &config.channels {
        info.channels.push(ChannelInfo {
            id: channel.id,
            protocol: format!("proto-{}", channel.id),
            version: 1,
        });
    }
    info
}

/// One end's connection, the bytes it wrote that the other has not read yet, and the
/// events taken from it.
pub struct End {
    pub connection: Connection,
    pub outbox: Vec<u8>,
    pub events: Vec<Event>,
}

impl End {
    /// Messages taken so far on `channel`, in order.
    pub fn messages(&self, channel: ChannelId) -> Vec<Bytes> {
        self.events
            .iter()
            .filter_map(|event| match event {
                Event::Message {
                    channel: on,
                    message,
                } if *on == channel => Some(message.clone()),
                _ => None,
            })
            .collect()
    }

    /// The `Closed` event, if taken.
    pub fn closed(&self) -> Option<&Closed> {
        self.events.iter().find_map(|event| match event {
            Event::Closed(closed) => Some(closed.as_ref()),
            _ => None,
        })
    }
}

pub struct Pair {
    pub dialer: End,
    pub listener: End,
    pub now: Instant,
}

impl Pair {
    /// Both ends with the same channels.
    pub fn new(seed: u64, channels: Vec<ChannelConfig>) -> Self {
        let config = ConnectionConfig::new(channels);
        Self::with_configs(seed, config.clone(), config)
    }

    pub fn with_configs(seed: u64, dialer: ConnectionConfig, listener: ConnectionConfig) -> Self {
        Self::with_shared_configs(seed, Arc::new(dialer), Arc::new(listener))
    }

    /// As [`Pair::with_configs`], with configurations shared as a node shares them.
    pub fn with_shared_configs(
        seed: u64,
        dialer: Arc<ConnectionConfig>,
        listener: Arc<ConnectionConfig>,
    ) -> Self {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
        let now = Instant::from_nanos(1_000_000_000);
        let dialer_info = info_for(&dialer, "dialer");
        let listener_info = info_for(&listener, "listener");
        let listener_key = Keypair::generate(&mut rng);
        let dialer_key = Keypair::generate(&mut rng);
        let dialer = Connection::dial(
            now,
            dialer,
            &dialer_key,
            dialer_info,
            Some(listener_key.peer_id()),
            &mut rng,
        )
        .expect("valid NodeInfo");
        let listener = Connection::accept(now, listener, &listener_key, listener_info, &mut rng)
            .expect("valid NodeInfo");
        let end = |connection| End {
            connection,
            outbox: Vec::new(),
            events: Vec::new(),
        };
        Pair {
            dialer: end(dialer),
            listener: end(listener),
            now,
        }
    }

    /// A pair driven until both ends are established and idle.
    pub fn connected(seed: u64, channels: Vec<ChannelConfig>) -> Self {
        let mut pair = Self::new(seed, channels);
        pair.drive();
        assert!(
            pair.dialer.connection.is_established(),
            "dialer not established"
        );
        assert!(
            pair.listener.connection.is_established(),
            "listener not established"
        );
        pair
    }

    pub fn end(&mut self, side: Side) -> &mut End {
        match side {
            Side::Dialer => &mut self.dialer,
            Side::Listener => &mut self.listener,
        }
    }

    /// Collects everything `side` has to write into its outbox; returns the records (or
    /// handshake messages) written.
    pub fn transmit(&mut self, side: Side) -> usize {
        let now = self.now;
        let end = self.end(side);
        let mut count = 0;
        while end.connection.poll_transmit(now, &mut end.outbox) {
            count += 1;
        }
        count
    }

    /// Writes at most one record (or handshake message) from `side`.
    pub fn transmit_one(&mut self, side: Side) -> bool {
        let now = self.now;
        let end = self.end(side);
        end.connection.poll_transmit(now, &mut end.outbox)
    }

    /// Hands up to `max` bytes of `side`'s outbox to the other end in one read.
    pub fn deliver(&mut self, side: Side, max: usize) -> usize {
        let now = self.now;
        let bytes: Vec<u8> = {
            let end = self.end(side);
            let take = max.min(end.outbox.len());
            end.outbox.drain(..take).collect()
        };
        self.end(side.other()).connection.handle_input(now, &bytes);
        bytes.len()
    }

    /// Sends the messages at the front of `queue` from `side` until its connection answers
    /// `Full` (that message goes back to the front, to retry after transmitting).
    ///
    /// # Panics
    /// On any other refusal.
    pub fn send_queued(&mut self, side: Side, queue: &mut VecDeque<(ChannelId, Bytes)>) {
        while let Some((channel, message)) = queue.pop_front() {
            match self.end(side).connection.send(channel, message) {
                Ok(()) => {}
                Err(SendError::Full(back)) => {
                    queue.push_front((channel, back));
                    return;
                }
                Err(other) => panic!("send refused: {other}"),
            }
        }
    }

    /// Takes every event `side` has, returning how many.
    pub fn take_events(&mut self, side: Side) -> usize {
        let end = self.end(side);
        let mut count = 0;
        while let Some(event) = end.connection.poll_event() {
            end.events.push(event);
            count += 1;
        }
        count
    }

    /// Transmits, delivers and takes events on both sides until nothing moves.
    pub fn drive(&mut self) {
        self.drive_taking(true, true);
    }

    /// As [`Pair::drive`], taking events only on the sides asked.
    pub fn drive_taking(&mut self, dialer_takes: bool, listener_takes: bool) {
        for _ in 0..1_000_000 {
            let mut moved = self.transmit(Side::Dialer) + self.transmit(Side::Listener);
            moved +=
                self.deliver(Side::Dialer, usize::MAX) + self.deliver(Side::Listener, usize::MAX);
            if dialer_takes {
                moved += self.take_events(Side::Dialer);
            }
            if listener_takes {
                moved += self.take_events(Side::Listener);
            }
            if moved == 0 {
                return;
            }
        }
        panic!("the pair never went quiet: livelock");
    }

    /// Moves the clock to `side`'s next deadline (if before `limit`) and fires it.
    pub fn advance_to_timeout(&mut self, limit: Instant) -> bool {
        let next = [&self.dialer, &self.listener]
            .iter()
            .filter_map(|end| end.connection.poll_timeout())
            .min();
        match next {
            Some(deadline) if deadline <= limit => {
                self.now = self.now.max(deadline);
                let now = self.now;
                self.dialer.connection.handle_timeout(now);
                self.listener.connection.handle_timeout(now);
                true
            }
            _ => false,
        }
    }

    pub fn advance(&mut self, by: Duration) {
        self.now = self.now + by;
    }
}

/// A message whose bytes identify it: `len` bytes derived from `id`, so a test can check
/// content without keeping copies.
pub fn message(id: u64, len: usize) -> Bytes {
    let mut bytes = Vec::with_capacity(len);
    let seed = id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut state = seed | 1;
    while bytes.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let chunk = state.to_le_bytes();
        let take = (len - bytes.len()).min(8);
        bytes.extend_from_slice(&chunk[..take]);
    }
    Bytes::from(bytes)
}
