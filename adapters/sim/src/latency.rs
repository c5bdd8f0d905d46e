//! Delivery latency: how long a traffic message took from its sender's `send` to the
//! receiving application taking it, in simulated time, gathered into percentiles.
//!
//! A run delivers millions of messages, so latencies are counted in a log-linear histogram
//! (as HdrHistogram does) rather than kept: exact below [`EXACT_BELOW_US`] microseconds,
//! above that [`SUB_BUCKETS`] buckets per power of two, so a percentile is reported within
//! 1/64 (1.6 %) of the true value, in at most ~3,800 counters whatever the run's length.

use std::time::Duration;

/// Latencies below this many microseconds each have their own bucket.
const EXACT_BELOW_US: u64 = 2 * SUB_BUCKETS;

/// Buckets per power of two above [`EXACT_BELOW_US`].
const SUB_BUCKETS: u64 = 64;

/// `log2(SUB_BUCKETS)`.
const SUB_BUCKET_BITS: u32 = SUB_BUCKETS.trailing_zeros();

/// See the [module documentation](self).
///
/// ```
/// use std::time::Duration;
/// use switchboard_sim::LatencyHistogram;
///
/// let mut latency = LatencyHistogram::default();
/// for ms in 1..=100 {
///     latency.record(Duration::from_millis(ms));
/// }
/// let p50 = latency.percentile(0.5).unwrap();
/// assert!(p50 <= Duration::from_millis(50) && p50 > Duration::from_micros(49_200));
/// assert_eq!(latency.max(), Some(Duration::from_millis(100)));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LatencyHistogram {
    /// Deliveries per bucket (see [`bucket_of`]); grown to the highest bucket used.
    counts: Vec<u64>,
    total: u64,
    /// The largest latency recorded, exactly (microseconds).
    max_us: u64,
}

/// The p50, p90, p99 and largest delivery latency of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LatencyPercentiles {
    /// Deliveries measured.
    pub deliveries: u64,
    /// Half the deliveries took at most this long.
    pub p50: Duration,
    /// 90 % took at most this long.
    pub p90: Duration,
    /// 99 % took at most this long.
    pub p99: Duration,
    /// The slowest.
    pub max: Duration,
}

impl LatencyHistogram {
    /// Counts one delivery that took `latency` (to the microsecond below).
    pub fn record(&mut self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let bucket = bucket_of(us);
        if self.counts.len() <= bucket {
            self.counts.resize(bucket + 1, 0);
        }
        self.counts[bucket] += 1;
        self.total += 1;
        self.max_us = self.max_us.max(us);
    }

    /// Deliveries recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The slowest delivery; `None` before any.
    pub fn max(&self) -> Option<Duration> {
        (self.total > 0).then(|| Duration::from_micros(self.max_us))
    }

    /// The latency at most `quantile` (0 to 1) of the deliveries exceeded: the lower edge
    /// of the bucket holding that delivery, at most 1.6 % below it, never above the
    /// largest recorded. `None` before any delivery.
    pub fn percentile(&self, quantile: f64) -> Option<Duration> {
        if self.total == 0 {
            return None;
        }
        // The rank of the delivery sought, from 1; `as` saturates a rank past the end.
        let rank = ((quantile.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (bucket, &count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(Duration::from_micros(lower_edge(bucket).min(self.max_us)));
            }
        }
        self.max()
    }

    /// The cumulative distribution, one point per bucket holding a delivery, in order: the
    /// bucket's largest latency (capped at the largest recorded) and the share of the
    /// deliveries that took at most that long. Empty before any delivery; the last share is
    /// 1. Drawn by [`crate::report`], at most ~3,800 points whatever the run's length.
    pub fn cdf(&self) -> impl Iterator<Item = (Duration, f64)> + '_ {
        let mut seen = 0;
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, count)| **count > 0)
            .map(move |(bucket, &count)| {
                seen += count;
                let upper = (lower_edge(bucket + 1) - 1).min(self.max_us);
                (
                    Duration::from_micros(upper),
                    seen as f64 / self.total as f64,
                )
            })
    }

    /// p50, p90, p99 and max; `None` before any delivery.
    pub fn percentiles(&self) -> Option<LatencyPercentiles> {
        Some(LatencyPercentiles {
            deliveries: self.total,
            p50: self.percentile(0.50)?,
            p90: self.percentile(0.90)?,
            p99: self.percentile(0.99)?,
            max: self.max()?,
        })
    }
}

/// The bucket counting a latency of `us` microseconds.
fn bucket_of(us: u64) -> usize {
    if us < EXACT_BELOW_US {
        return us as usize;
    }
    // `us` has its top bit at `power` (at least 7); the next SUB_BUCKET_BITS bits pick the
    // sub-bucket.
    let power = u64::from(63 - us.leading_zeros());
    let shift = power - u64::from(SUB_BUCKET_BITS);
    let sub = (us >> shift) - SUB_BUCKETS;
    (EXACT_BELOW_US + (power - u64::from(SUB_BUCKET_BITS) - 1) * SUB_BUCKETS + sub) as usize
}

/// The smallest latency (microseconds) that [`bucket_of`] puts in `bucket`.
fn lower_edge(bucket: usize) -> u64 {
    let bucket = bucket as u64;
    if bucket < EXACT_BELOW_US {
        return bucket;
    }
    let above = bucket - EXACT_BELOW_US;
    let shift = above / SUB_BUCKETS + 1;
    (SUB_BUCKETS + above % SUB_BUCKETS) << shift
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_each_lower_edge_is_its_own() {
        let mut previous = 0;
        for us in (0..1_000_000).chain([u64::MAX / 3, u64::MAX - 1, u64::MAX]) {
            let bucket = bucket_of(us);
            assert!(bucket == previous || bucket == previous + 1 || us > 1_000_000);
            assert!(lower_edge(bucket) <= us, "{us} in bucket {bucket}");
            assert_eq!(bucket_of(lower_edge(bucket)), bucket);
            // Within 1/64 of the value: the bucket is narrow.
            assert!(us - lower_edge(bucket) <= us / SUB_BUCKETS, "{us}");
            previous = bucket;
        }
        assert!(bucket_of(u64::MAX) < 4_000);
    }

    #[test]
    fn small_latencies_are_exact() {
        let mut latency = LatencyHistogram::default();
        for us in [5, 1, 3, 2, 4] {
            latency.record(Duration::from_micros(us));
        }
        assert_eq!(latency.percentile(0.0), Some(Duration::from_micros(1)));
        assert_eq!(latency.percentile(0.5), Some(Duration::from_micros(3)));
        assert_eq!(latency.percentile(0.55), Some(Duration::from_micros(3)));
        assert_eq!(latency.percentile(0.61), Some(Duration::from_micros(4)));
        assert_eq!(latency.percentile(1.0), Some(Duration::from_micros(5)));
        assert_eq!(latency.count(), 5);
    }

    #[test]
    fn percentiles_of_a_uniform_spread_are_within_the_bucket_width() {
        let mut latency = LatencyHistogram::default();
        // 1 ms to 100 ms in 10 µs steps, shuffled by a stride coprime with the count.
        let n = 9_901_u64;
        for i in 0..n {
            let step = (i * 7_919) % n;
            latency.record(Duration::from_micros(1_000 + step * 10));
        }
        let percentiles = latency.percentiles().unwrap();
        for (got, exact_us) in [
            (percentiles.p50, 50_500.0),
            (percentiles.p90, 90_100.0),
            (percentiles.p99, 99_010.0),
        ] {
            let got = got.as_micros() as f64;
            assert!(
                got <= exact_us && got >= exact_us * (1.0 - 1.0 / 64.0),
                "{got} vs {exact_us}"
            );
        }
        assert_eq!(percentiles.max, Duration::from_millis(100));
        assert_eq!(percentiles.deliveries, n);
    }

    #[test]
    fn the_cdf_climbs_to_one_through_each_bucket_holding_a_delivery() {
        let mut latency = LatencyHistogram::default();
        for us in [3, 3, 10, 1_000, 1_005] {
            latency.record(Duration::from_micros(us));
        }
        let cdf: Vec<(Duration, f64)> = latency.cdf().collect();
        let us = |(at, share): (Duration, f64)| (at.as_micros() as u64, share);
        // 1,000 and 1,005 share the bucket [1000, 1008): its upper edge is capped at the max.
        assert_eq!(
            cdf.into_iter().map(us).collect::<Vec<_>>(),
            [(3, 0.4), (10, 0.6), (1_005, 1.0)]
        );
        assert_eq!(LatencyHistogram::default().cdf().count(), 0);
    }

    #[test]
    fn nothing_recorded_reports_nothing() {
        let latency = LatencyHistogram::default();
        assert_eq!(latency.percentile(0.5), None);
        assert_eq!(latency.max(), None);
        assert_eq!(latency.percentiles(), None);
    }

    #[test]
    fn a_percentile_never_exceeds_the_largest_latency() {
        let mut latency = LatencyHistogram::default();
        latency.record(Duration::from_micros(1_000_003));
        latency.record(Duration::from_micros(1_000_001));
        assert!(latency.percentile(1.0).unwrap() <= Duration::from_micros(1_000_003));
        assert_eq!(latency.max(), Some(Duration::from_micros(1_000_003)));
    }
}
