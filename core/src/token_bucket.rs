//! A token bucket on integer time: the state machine behind a channel's
//! [`RateLimit`](crate::RateLimit)s.
//!
//! Tokens accrue at `bytes_per_second`, up to `burst` of them. [`TokenBucket::take`] may
//! overdraw the bucket: the level goes negative (debt) and must be paid back by time before
//! the next positive level. That is what lets a bucket smaller than one message still pass
//! that message — it starts when the level is positive and the debt delays what follows — and
//! keeps the long-run rate exact whatever the sizes taken.
//!
//! Everything is integer arithmetic on [`Instant`] nanoseconds: the fraction of a token not
//! yet whole is carried over in token-nanoseconds, so refilling often or rarely gives the same
//! level, and every operation is total (saturating, never a panic).

use core::time::Duration;

use crate::channel::RateLimit;
use crate::time::Instant;

const NANOS_PER_SECOND: u128 = 1_000_000_000;

/// A token bucket. Created full; the level is brought up to date by [`TokenBucket::refill`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TokenBucket {
    /// Tokens accrued per second.
    rate: u64,
    /// Most tokens held: the burst, at least 1.
    capacity: i64,
    /// Tokens held at `updated`; negative is debt.
    level: i64,
    /// The part of a token accrued by `updated` and not yet whole, in token-nanoseconds
    /// (below one second's worth, 10^9).
    fraction: u64,
    /// When `level` was last brought up to date.
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket for `limit`.
    pub(crate) fn new(limit: RateLimit) -> Self {
        let capacity = i64::try_from(limit.burst.max(1)).unwrap_or(i64::MAX);
        TokenBucket {
            rate: limit.bytes_per_second,
            capacity,
            level: capacity,
            fraction: 0,
            updated: Instant::ZERO,
        }
    }

    /// Tokens held as of the last refill; negative is debt.
    pub(crate) fn level(&self) -> i64 {
        self.level
    }

    /// Most tokens the bucket holds.
    pub(crate) fn capacity(&self) -> u64 {
        self.capacity.unsigned_abs()
    }

    /// Adds the tokens accrued from the last refill to `now`. An earlier `now` does nothing.
    pub(crate) fn refill(&mut self, now: Instant) {
        if now <= self.updated {
            return;
        }
        let elapsed = now.as_nanos().saturating_sub(self.updated.as_nanos());
        self.updated = now;
        if self.level >= self.capacity {
            self.level = self.capacity;
            self.fraction = 0;
            return;
        }
        let accrued = u128::from(elapsed)
            .saturating_mul(u128::from(self.rate))
            .saturating_add(u128::from(self.fraction));
        let whole = accrued.checked_div(NANOS_PER_SECOND).unwrap_or(0);
        let fraction = accrued.checked_rem(NANOS_PER_SECOND).unwrap_or(0);
        let level =
            i128::from(self.level).saturating_add(i128::try_from(whole).unwrap_or(i128::MAX));
        self.level = i64::try_from(level).unwrap_or(i64::MAX);
        if self.level >= self.capacity {
            self.level = self.capacity;
            self.fraction = 0;
        } else {
            self.fraction = u64::try_from(fraction).unwrap_or(0);
        }
    }

    /// Takes `amount` tokens, going into debt if the bucket holds fewer.
    pub(crate) fn take(&mut self, amount: u64) {
        self.level = self
            .level
            .saturating_sub(i64::try_from(amount).unwrap_or(i64::MAX));
    }

    /// The earliest instant at which the level reaches `amount`: the last refill's if it
    /// already has, `None` if it never will (more than the capacity, or a zero rate).
    pub(crate) fn time_until(&self, amount: u64) -> Option<Instant> {
        let amount = i128::from(amount);
        let missing = amount.saturating_sub(i128::from(self.level));
        if missing <= 0 {
            return Some(self.updated);
        }
        if amount > i128::from(self.capacity) || self.rate == 0 {
            return None;
        }
        // Tokens accrue as `(elapsed × rate + fraction) / 10^9`: the least elapsed time
        // making that `missing`, rounded up so the refill then really holds them.
        let needed = missing
            .unsigned_abs()
            .saturating_mul(NANOS_PER_SECOND)
            .saturating_sub(u128::from(self.fraction));
        let rate = u128::from(self.rate);
        let nanos = needed
            .saturating_add(rate.saturating_sub(1))
            .checked_div(rate)?;
        self.updated
            .checked_add(Duration::from_nanos(u64::try_from(nanos).ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::{Rng, SeedableRng};

    fn limit(bytes_per_second: u64, burst: u64) -> RateLimit {
        RateLimit {
            bytes_per_second,
            burst,
        }
    }

    fn at(nanos: u64) -> Instant {
        Instant::from_nanos(nanos)
    }

    #[test]
    fn starts_full_and_refills_at_the_rate_up_to_the_burst() {
        let mut bucket = TokenBucket::new(limit(1000, 500));
        bucket.refill(at(7_000_000_000));
        assert_eq!(bucket.level(), 500, "full, whatever the time");
        bucket.take(500);
        assert_eq!(bucket.level(), 0);
        bucket.refill(at(7_100_000_000));
        assert_eq!(bucket.level(), 100);
        bucket.refill(at(60_000_000_000));
        assert_eq!(bucket.level(), 500, "capped at the burst");
    }

    #[test]
    fn fractions_of_a_token_are_carried_over_so_refill_frequency_does_not_matter() {
        // 3 tokens per second, refilled every millisecond: each refill accrues 0.003.
        let mut often = TokenBucket::new(limit(3, 100));
        let mut once = TokenBucket::new(limit(3, 100));
        often.take(100);
        once.take(100);
        for ms in 1..=10_000 {
            often.refill(at(ms * 1_000_000));
        }
        once.refill(at(10_000_000_000));
        assert_eq!(often.level(), 30);
        assert_eq!(often, once);
    }

    #[test]
    fn debt_is_paid_back_by_time_before_the_level_is_positive_again() {
        let mut bucket = TokenBucket::new(limit(1000, 100));
        bucket.refill(at(1_000_000_000));
        // A message of 1100 bytes passes a 100-byte bucket, leaving 1000 of debt: a second.
        bucket.take(1100);
        assert_eq!(bucket.level(), -1000);
        assert_eq!(bucket.time_until(1), Some(at(2_001_000_000)));
        bucket.refill(at(2_000_999_999));
        assert_eq!(bucket.level(), 0);
        bucket.refill(at(2_001_000_000));
        assert_eq!(bucket.level(), 1);
    }

    #[test]
    fn time_until_is_now_when_held_and_never_beyond_capacity_or_at_rate_zero() {
        let mut bucket = TokenBucket::new(limit(1000, 100));
        bucket.refill(at(5));
        assert_eq!(bucket.time_until(100), Some(at(5)));
        assert_eq!(bucket.time_until(101), None);
        bucket.take(100);
        assert_eq!(bucket.time_until(0), Some(at(5)));
        let mut stuck = TokenBucket::new(limit(0, 10));
        stuck.take(10);
        assert_eq!(stuck.time_until(1), None);
        stuck.refill(Instant::MAX);
        assert_eq!(stuck.level(), 0);
    }

    #[test]
    fn extreme_values_saturate_instead_of_panicking() {
        let mut bucket = TokenBucket::new(limit(u64::MAX, u64::MAX));
        bucket.take(u64::MAX);
        bucket.take(u64::MAX);
        assert_eq!(
            bucket.level(),
            -i64::MAX,
            "takes count at most i64::MAX each"
        );
        bucket.refill(Instant::MAX);
        assert_eq!(bucket.level(), i64::MAX);
        let mut slow = TokenBucket::new(limit(1, u64::MAX));
        slow.take(u64::MAX);
        slow.refill(at(1));
        assert_eq!(slow.time_until(u64::MAX), None, "past the end of time");
        let zero_burst = TokenBucket::new(limit(10, 0));
        assert_eq!(zero_burst.capacity(), 1);
    }

    /// Random refills and takes: the level never exceeds the capacity, what was taken never
    /// exceeds the capacity plus what accrued (plus the final debt), and `time_until` names
    /// exactly the first nanosecond at which the amount is held.
    #[test]
    fn random_schedules_keep_the_bucket_invariants() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for _ in 0..200 {
            let rate = rng.next_u64() % 1_000_000 + 1;
            let burst = rng.next_u64() % 100_000 + 1;
            let mut bucket = TokenBucket::new(limit(rate, burst));
            let mut now = 0u64;
            let mut taken = 0u128;
            for _ in 0..200 {
                now += rng.next_u64() % 50_000_000;
                bucket.refill(at(now));
                assert!(bucket.level() <= burst as i64);
                if bucket.level() > 0 {
                    let amount = rng.next_u64() % (2 * burst) + 1;
                    bucket.take(amount);
                    taken += u128::from(amount);
                }
                let want = rng.next_u64() % burst + 1;
                if let Some(when) = bucket.time_until(want) {
                    let mut probe = bucket;
                    probe.refill(when);
                    assert!(probe.level() >= want as i64);
                    if when > at(now) {
                        let mut early = bucket;
                        early.refill(at(when.as_nanos() - 1));
                        assert!(
                            early.level() < want as i64,
                            "time_until is not the earliest"
                        );
                    }
                }
            }
            let accrued = u128::from(now) * u128::from(rate) / NANOS_PER_SECOND;
            let debt = u128::from(bucket.level().min(0).unsigned_abs());
            assert!(taken <= u128::from(burst) + accrued + debt);
        }
    }
}
