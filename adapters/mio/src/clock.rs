//! The adapter's clock: the core's [`Instant`] is nanoseconds since an arbitrary epoch, here
//! the moment the clock was made.

use std::time::Duration;

use switchboard::Instant;

/// Converts the OS monotonic clock into the core's time.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    epoch: std::time::Instant,
}

impl Clock {
    /// A clock whose epoch is now.
    pub fn new() -> Self {
        Clock {
            epoch: std::time::Instant::now(),
        }
    }

    /// The current time as the core counts it.
    pub fn now(&self) -> Instant {
        self.to_core(std::time::Instant::now())
    }

    /// `at` as the core counts it (saturating: 584 years of uptime fit).
    pub fn to_core(&self, at: std::time::Instant) -> Instant {
        let nanos = at.saturating_duration_since(self.epoch).as_nanos();
        Instant::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// How long from `now` until `deadline`, zero when it has passed.
    pub fn until(now: Instant, deadline: Instant) -> Duration {
        deadline.saturating_duration_since(now)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}
