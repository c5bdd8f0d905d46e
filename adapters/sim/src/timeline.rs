//! What a scenario run looked like over simulated time, for [`crate::report`]'s plots: the
//! network's connectivity and the bytes its links carried, sampled at a fixed interval, and
//! at the end the traffic's latency histogram.
//!
//! Sampling is asked for ([`ScenarioConfig::record_timeline`]): a run without it schedules
//! no sample and pays nothing. A sample walks every node once (the largest component is a
//! union-find over the peer graph), so it is taken every simulated second — every 100 ms
//! for runs of a minute or less, where a second would leave too few points to see a
//! partition heal. Memory is bounded whatever the run's length or size: past
//! [`MAX_SAMPLES`] samples every other one is dropped and the interval doubles, so a long
//! run keeps an even spread of at most that many.
//!
//! [`ScenarioConfig::record_timeline`]: crate::ScenarioConfig::record_timeline

use std::time::Duration;

use crate::latency::LatencyHistogram;
use crate::sim::Sim;

/// The most samples a timeline keeps (see the [module documentation](self)): a few hundred
/// points are all a plot 1,000 pixels wide can show.
pub const MAX_SAMPLES: usize = 1_024;

/// One look at the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimelineSample {
    /// Simulated time since the run began.
    pub at: Duration,
    /// Nodes not crashed.
    pub live: usize,
    /// Nodes in the largest connected component of the peer graph (seed-mode seeds, which
    /// let their peers go, are not counted; see [`Sim::components`]).
    pub largest_component: usize,
    /// Nodes whose outbound slots are full (see [`Sim::outbound_full_after`]).
    pub outbound_full: usize,
    /// Bytes the links delivered since the run began: a counter, so that the rate between
    /// two kept samples stays right when samples between them are dropped.
    pub bytes_delivered: u64,
}

/// See the [module documentation](self).
#[derive(Clone, Debug, PartialEq)]
pub struct Timeline {
    /// The spacing of the samples kept, doubled at each thinning.
    interval: Duration,
    samples: Vec<TimelineSample>,
    /// When faults stopped being drawn; `None` for a run without faults.
    faults_until: Option<Duration>,
    latency: LatencyHistogram,
    /// Lookups by the number of hops they took (index = hops).
    lookup_hops: Vec<u64>,
}

impl Timeline {
    /// An empty timeline for a run of `duration` (which sets the interval) whose faults
    /// stop at `faults_until`.
    pub(crate) fn new(duration: Duration, faults_until: Option<Duration>) -> Self {
        let interval = if duration <= Duration::from_secs(60) {
            Duration::from_millis(100)
        } else {
            Duration::from_secs(1)
        };
        Timeline {
            interval,
            samples: Vec::new(),
            faults_until,
            latency: LatencyHistogram::default(),
            lookup_hops: Vec::new(),
        }
    }

    /// How long until the next sample is due.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Takes a sample of `sim` now, thinning the samples kept if there are too many.
    pub(crate) fn sample(&mut self, sim: &Sim) {
        self.samples.push(TimelineSample {
            at: sim.elapsed(),
            live: sim.live_nodes(),
            largest_component: sim.largest_component(),
            outbound_full: sim.outbound_full_nodes(),
            bytes_delivered: sim.bytes_delivered(),
        });
        if self.samples.len() > MAX_SAMPLES {
            let mut index = 0;
            self.samples.retain(|_| {
                index += 1;
                index % 2 == 1
            });
            self.interval = self.interval.saturating_mul(2);
        }
    }

    /// The last sample, at the end of the run, and the run's latency histogram.
    pub(crate) fn finish(&mut self, sim: &Sim) {
        if self
            .samples
            .last()
            .is_none_or(|last| last.at < sim.elapsed())
        {
            self.sample(sim);
        }
        self.latency = sim.delivery_latency().clone();
    }

    /// The samples, in time order.
    pub fn samples(&self) -> &[TimelineSample] {
        &self.samples
    }

    /// When faults stopped being drawn, as time since the run began; `None` without
    /// faults.
    pub fn faults_until(&self) -> Option<Duration> {
        self.faults_until
    }

    /// The bytes the links delivered per simulated second between consecutive samples,
    /// each at the end of its span.
    pub fn bytes_per_sim_s(&self) -> impl Iterator<Item = (Duration, f64)> + '_ {
        self.samples.windows(2).filter_map(|pair| {
            let span = pair[1].at.saturating_sub(pair[0].at).as_secs_f64();
            let bytes = pair[1].bytes_delivered - pair[0].bytes_delivered;
            (span > 0.0).then(|| (pair[1].at, bytes as f64 / span))
        })
    }

    /// The traffic's delivery latency over the whole run.
    pub fn latency(&self) -> &LatencyHistogram {
        &self.latency
    }

    /// Counts a lookup that took `hops` hops. No protocol of the simulator's runs looks
    /// anything up yet: a lookup protocol's test records its lookups here (on the
    /// [`Summary::timeline`](crate::Summary::timeline) a run returns) and the report
    /// plots them.
    pub fn record_lookup(&mut self, hops: usize) {
        if self.lookup_hops.len() <= hops {
            self.lookup_hops.resize(hops + 1, 0);
        }
        self.lookup_hops[hops] += 1;
    }

    /// Lookups by hops taken (index = hops); empty if the run looked nothing up.
    pub fn lookup_hops(&self) -> &[u64] {
        &self.lookup_hops
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SimConfig, test_node_config};

    #[test]
    fn a_long_run_keeps_at_most_max_samples_evenly_spread() {
        let mut sim = Sim::new(SimConfig::with_seed(1));
        sim.add_node(test_node_config());
        let mut timeline = Timeline::new(Duration::from_secs(3_600), None);
        assert_eq!(timeline.interval(), Duration::from_secs(1));
        for _ in 0..10 * MAX_SAMPLES {
            sim.run_for(timeline.interval());
            timeline.sample(&sim);
        }
        let samples = timeline.samples();
        assert!(samples.len() <= MAX_SAMPLES && samples.len() > MAX_SAMPLES / 4);
        let spacing = samples[1].at - samples[0].at;
        assert!(
            samples
                .windows(2)
                .all(|pair| pair[1].at - pair[0].at == spacing)
        );
        assert_eq!(spacing, timeline.interval());
    }

    #[test]
    fn lookups_are_counted_by_hops() {
        let mut timeline = Timeline::new(Duration::from_secs(10), None);
        assert!(timeline.lookup_hops().is_empty());
        for hops in [3, 1, 3] {
            timeline.record_lookup(hops);
        }
        assert_eq!(timeline.lookup_hops(), [0, 1, 0, 2]);
        assert_eq!(timeline.interval(), Duration::from_millis(100));
    }
}
