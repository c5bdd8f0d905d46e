//! Simulated TCP links: what one end of a connection knows, and the model that decides when
//! bytes written now arrive (latency, heavy tail, bandwidth, in-order delivery).

use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::Rng;
use switchboard::Instant;
use switchboard::node::ConnId;

use crate::NodeIndex;

/// One end of a simulated TCP connection: a node and its handle for the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct End {
    pub(crate) node: NodeIndex,
    pub(crate) conn: ConnId,
}

/// Names one connection for its whole life. Events carry it, so a delivery meant for a
/// connection that was reset (or for a crashed node's old handle, since a restarted node
/// hands out the same `ConnId`s again) is recognized as stale and dropped.
pub(crate) type LinkId = u64;

/// A delay distribution with a heavy tail, without floating point (so every platform draws
/// the same delays): with probability `probability`, a write is delayed by an extra
/// `base × 2^k`, where each further doubling happens with probability ½ (a Pareto tail of
/// index 1), capped at `max`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HeavyTail {
    /// Chance that a write takes the tail.
    pub probability: f64,
    /// Longest extra delay.
    pub max: Duration,
}

/// How links behave: drawn per link when it is made, per write where said.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct LinkModel {
    /// One-way latency of a link, drawn uniformly from this range when the link is made.
    pub(crate) latency: (Duration, Duration),
    /// Extra delay of single writes (bytes still arrive in order: a delayed write holds back
    /// the ones behind it, as a lost segment does in TCP).
    pub(crate) heavy_tail: Option<HeavyTail>,
    /// Bytes per second of each direction of a link, drawn uniformly from this range when
    /// the link is made; `None` is unlimited. A write is transmitted after the bytes queued
    /// before it, so its arrival accounts for them.
    pub(crate) bandwidth: Option<(u64, u64)>,
    /// Bytes a socket's send buffer holds: beyond it the node is told its socket would
    /// block (`handle_write_blocked`) until the backlog drains to half.
    pub(crate) socket_buffer: u64,
}

impl Default for LinkModel {
    fn default() -> Self {
        LinkModel {
            latency: (Duration::from_millis(1), Duration::from_millis(20)),
            heavy_tail: None,
            bandwidth: None,
            socket_buffer: 256 * 1024,
        }
    }
}

/// The sending side of one direction of a link, held by the end that writes.
#[derive(Clone, Debug)]
pub(crate) struct EndState {
    pub(crate) link: LinkId,
    /// The far end, once the TCP connection exists (`None` for a dial not yet answered).
    pub(crate) peer: Option<End>,
    /// One-way latency of this direction.
    pub(crate) latency: Duration,
    /// Bytes per second of this direction, `None` for unlimited.
    pub(crate) bandwidth: Option<u64>,
    /// When the last byte written so far has left (bandwidth queue).
    pub(crate) busy_until: Instant,
    /// When the last bytes written so far arrive: later writes never arrive earlier.
    pub(crate) last_arrival: Instant,
    /// Bytes held by a black hole, counted against the socket buffer.
    pub(crate) held_bytes: u64,
    /// Whether the node was told its socket would block.
    pub(crate) blocked: bool,
    /// Since when, while it is.
    pub(crate) blocked_since: Option<Instant>,
    /// Reset: nothing more is delivered on it; its `Closed` is on the way.
    pub(crate) reset: bool,
}

impl EndState {
    pub(crate) fn new(link: LinkId, peer: Option<End>, latency: Duration, now: Instant) -> Self {
        EndState {
            link,
            peer,
            latency,
            bandwidth: None,
            busy_until: now,
            last_arrival: now,
            held_bytes: 0,
            blocked: false,
            blocked_since: None,
            reset: false,
        }
    }

    /// When `len` bytes written now arrive, updating the queue and order bookkeeping.
    pub(crate) fn arrival(&mut self, now: Instant, len: usize, extra: Duration) -> Instant {
        let start = self.busy_until.max(now);
        let sent = match self.bandwidth {
            Some(rate) if rate > 0 => start.saturating_add(transmit_time(len as u64, rate)),
            _ => start,
        };
        self.busy_until = sent;
        let at = sent
            .saturating_add(self.latency)
            .saturating_add(extra)
            .max(self.last_arrival);
        self.last_arrival = at;
        at
    }

    /// Bytes written and not yet transmitted (waiting for bandwidth) or held by a black hole.
    pub(crate) fn backlog(&self, now: Instant) -> u64 {
        let queued = match self.bandwidth {
            Some(rate) if rate > 0 => {
                let waiting = self.busy_until.saturating_duration_since(now);
                (waiting.as_nanos() * u128::from(rate) / 1_000_000_000) as u64
            }
            _ => 0,
        };
        queued.saturating_add(self.held_bytes)
    }

    /// When the bandwidth backlog will have drained to `bytes`.
    pub(crate) fn drained_to(&self, bytes: u64) -> Instant {
        match self.bandwidth {
            Some(rate) if rate > 0 => {
                let nanos = self.busy_until.as_nanos();
                Instant::from_nanos(
                    nanos.saturating_sub(transmit_time(bytes, rate).as_nanos() as u64),
                )
            }
            _ => self.busy_until,
        }
    }
}

fn transmit_time(bytes: u64, rate: u64) -> Duration {
    Duration::from_nanos((u128::from(bytes) * 1_000_000_000 / u128::from(rate)) as u64)
}

impl LinkModel {
    /// A latency for a new link.
    pub(crate) fn draw_latency(&self, rng: &mut ChaCha8Rng) -> Duration {
        let (low, high) = self.latency;
        let span = high.saturating_sub(low).as_nanos() as u64;
        low + Duration::from_nanos(below(rng, span))
    }

    /// A bandwidth for a new link direction.
    pub(crate) fn draw_bandwidth(&self, rng: &mut ChaCha8Rng) -> Option<u64> {
        self.bandwidth.map(|(low, high)| {
            let low = low.max(1);
            low + below(rng, high.saturating_sub(low))
        })
    }

    /// The extra delay of one write (zero unless it takes the heavy tail).
    pub(crate) fn draw_extra(&self, rng: &mut ChaCha8Rng, base: Duration) -> Duration {
        let Some(tail) = self.heavy_tail else {
            return Duration::ZERO;
        };
        if !chance(rng, tail.probability) {
            return Duration::ZERO;
        }
        let mut extra = base.max(Duration::from_millis(1));
        while extra < tail.max && rng.next_u32() & 1 == 0 {
            extra = extra.saturating_mul(2);
        }
        extra.min(tail.max)
    }
}

/// A uniform draw in `0..span` (0 when `span` is 0).
pub(crate) fn below(rng: &mut ChaCha8Rng, span: u64) -> u64 {
    if span == 0 { 0 } else { rng.next_u64() % span }
}

/// True with probability `p` (exact: compares 53 random bits, no platform-dependent math).
pub(crate) fn chance(rng: &mut ChaCha8Rng, p: f64) -> bool {
    const SCALE: f64 = (1u64 << 53) as f64;
    ((rng.next_u64() >> 11) as f64) < p * SCALE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bandwidth_queues_writes_behind_each_other() {
        let now = Instant::from_nanos(0);
        let mut end = EndState::new(1, None, Duration::from_millis(10), now);
        end.bandwidth = Some(1000);
        // 500 bytes at 1000 B/s: leave at 0.5 s, arrive at 0.51 s; the next 500 after them.
        assert_eq!(
            end.arrival(now, 500, Duration::ZERO),
            Instant::from_nanos(510_000_000)
        );
        assert_eq!(
            end.arrival(now, 500, Duration::ZERO),
            Instant::from_nanos(1_010_000_000)
        );
        assert_eq!(end.backlog(now), 1000);
        assert_eq!(end.drained_to(500), Instant::from_nanos(500_000_000));
    }

    #[test]
    fn later_writes_never_overtake() {
        let now = Instant::from_nanos(0);
        let mut end = EndState::new(1, None, Duration::from_millis(10), now);
        let slow = end.arrival(now, 1, Duration::from_secs(1));
        let fast = end.arrival(now, 1, Duration::ZERO);
        assert!(fast >= slow);
    }
}
