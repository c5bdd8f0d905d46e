//! The budget of frames that carry nothing: what bounds the work a peer can cause with
//! frames that cost it three bytes each (`PROTOCOL.md` §8).
//!
//! Every frame the node handles costs it tens of nanoseconds whatever its size, and most
//! frames pay for themselves: a DATA fragment carries message bytes under flow control, a
//! CREDIT of n > 0 can only return credit for messages we sent (`CreditOverflow`
//! otherwise), a GOAWAY ends the connection. The others — a PING, a PONG, a `CREDIT(0)`,
//! an empty DATA fragment that ends no message, and a record with no frame at all — are
//! free to send and unbounded by anything else: a 64 KiB record of `CREDIT(0)` frames
//! costs its sender one encryption and the node 21,800 frame dispatches. So they draw on a
//! per-connection token bucket, and a peer that overdraws it is disconnected with
//! `ControlFlood`.

use core::time::Duration;

use crate::frame::Frame;
use crate::time::Instant;

/// The default of [`ConnectionConfig::free_frames_per_second`](super::ConnectionConfig):
/// frames that carry nothing a peer may send per second, and the burst it may send at
/// once. An honest peer sends one PING per ping interval and one PONG per PING of ours,
/// nothing else of the kind (it never sends `CREDIT(0)`, empty fragments or empty records
/// beyond its first record): 10,000 a second is a hundred times what a peer pinging every
/// 20 ms sends. An attacker spending all of it costs the node about 0.4 ms a second
/// (~36 ns a frame, measured in release).
pub const FREE_FRAMES_PER_SECOND: u32 = 10_000;

const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// The peer sent more frames that carry nothing than its budget allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Overdrawn;

/// A token bucket of frames that carry nothing, holding a second's worth at most.
pub(super) struct FrameBudget {
    level: u32,
    /// Tokens a second, and most held.
    capacity: u32,
    /// Nanoseconds one token takes to accrue (0: none accrue, the first second's worth
    /// lasts for ever — a rate of billions).
    period: u64,
    /// When `level` was last brought up to date (a whole number of token periods ago,
    /// unless it was full then).
    updated: Instant,
}

impl FrameBudget {
    /// A full bucket of `per_second` tokens (at least 1).
    pub(super) fn new(now: Instant, per_second: u32) -> Self {
        let capacity = per_second.max(1);
        FrameBudget {
            level: capacity,
            capacity,
            period: NANOS_PER_SECOND
                .checked_div(u64::from(capacity))
                .unwrap_or(0),
            updated: now,
        }
    }

    /// Adds the tokens accrued by `now`.
    pub(super) fn refill(&mut self, now: Instant) {
        let elapsed = now.as_nanos().saturating_sub(self.updated.as_nanos());
        let whole = elapsed.checked_div(self.period).unwrap_or(0);
        if whole == 0 {
            return;
        }
        let added = u32::try_from(whole).unwrap_or(u32::MAX);
        self.level = self.level.saturating_add(added).min(self.capacity);
        self.updated = if self.level == self.capacity {
            now
        } else {
            // Keep the part of a token not yet whole: `whole` periods fit in `elapsed`.
            let accrued = whole.saturating_mul(self.period);
            self.updated.saturating_add(Duration::from_nanos(accrued))
        };
    }

    /// Charges `frame` if it carries nothing.
    pub(super) fn charge(&mut self, frame: &Frame) -> Result<(), Overdrawn> {
        if carries_nothing(frame) {
            self.spend()
        } else {
            Ok(())
        }
    }

    /// Takes one token: a frame that carries nothing, or a record without frames.
    pub(super) fn spend(&mut self) -> Result<(), Overdrawn> {
        self.level = self.level.checked_sub(1).ok_or(Overdrawn)?;
        Ok(())
    }
}

/// Whether `frame` is one of those the budget charges: nothing else bounds how many of
/// them a peer sends.
fn carries_nothing(frame: &Frame) -> bool {
    match frame {
        Frame::Data { payload, end, .. } => payload.is_empty() && !*end,
        Frame::Credit { amount, .. } => *amount == 0,
        Frame::Ping(_) | Frame::Pong(_) => true,
        Frame::GoAway { .. } => false,
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn at(micros: u64) -> Instant {
        Instant::from_nanos(micros * 1000)
    }

    #[test]
    fn a_burst_then_the_rate() {
        let mut budget = FrameBudget::new(at(0), FREE_FRAMES_PER_SECOND);
        for _ in 0..FREE_FRAMES_PER_SECOND {
            budget.spend().unwrap();
        }
        assert_eq!(budget.spend(), Err(Overdrawn));
        // 250 µs: two whole tokens, the half one carried over.
        budget.refill(at(250));
        budget.spend().unwrap();
        budget.spend().unwrap();
        assert_eq!(budget.spend(), Err(Overdrawn));
        budget.refill(at(300));
        budget.spend().unwrap();
        assert_eq!(budget.spend(), Err(Overdrawn));
        // A long pause refills to the burst, not beyond.
        budget.refill(at(10_000_000));
        for _ in 0..FREE_FRAMES_PER_SECOND {
            budget.spend().unwrap();
        }
        assert_eq!(budget.spend(), Err(Overdrawn));
    }

    #[test]
    fn only_frames_that_carry_nothing_are_charged() {
        let free = [
            Frame::Ping(1),
            Frame::Pong(1),
            Frame::Credit {
                channel: 1,
                amount: 0,
            },
            Frame::Data {
                channel: 1,
                first: None,
                end: false,
                payload: Bytes::new(),
            },
        ];
        let paid = [
            Frame::Credit {
                channel: 1,
                amount: 1,
            },
            Frame::Data {
                channel: 1,
                first: Some(0),
                end: true,
                payload: Bytes::new(),
            },
            Frame::Data {
                channel: 1,
                first: None,
                end: false,
                payload: Bytes::from_static(b"x"),
            },
        ];
        for frame in &free {
            assert!(carries_nothing(frame), "{frame:?}");
        }
        for frame in &paid {
            assert!(!carries_nothing(frame), "{frame:?}");
        }
    }
}
