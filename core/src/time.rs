//! The core's notion of time.
//!
//! The core never reads a clock: every input that depends on time carries the current
//! [`Instant`], supplied by the adapter. That is what makes a simulation replayable bit for
//! bit — the simulated network decides what "now" is.

use core::fmt;
use core::ops::{Add, Sub};
use core::time::Duration;

/// A point in monotonic time: nanoseconds since an epoch the adapter chooses.
///
/// Arithmetic saturates instead of overflowing: a deadline pushed past the end of time is
/// simply "never", and a duration between an earlier and a later instant is zero rather than
/// a panic.
///
/// ```
/// use core::time::Duration;
/// use switchboard::Instant;
///
/// let start = Instant::from_nanos(1_000);
/// let later = start + Duration::from_micros(3);
/// assert_eq!(later.as_nanos(), 4_000);
/// assert_eq!(later - start, Duration::from_micros(3));
/// assert_eq!(start - later, Duration::ZERO);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(u64);

impl Instant {
    /// The epoch: the earliest representable instant.
    pub const ZERO: Instant = Instant(0);
    /// The latest representable instant; useful as "never".
    pub const MAX: Instant = Instant(u64::MAX);

    /// An instant `nanos` nanoseconds after the epoch.
    pub const fn from_nanos(nanos: u64) -> Self {
        Instant(nanos)
    }

    /// Nanoseconds since the epoch.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// The time elapsed from `earlier` to `self`, or zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// `self + duration`, or [`Instant::MAX`] ("never") if that lies past it.
    pub fn saturating_add(self, duration: Duration) -> Instant {
        self.checked_add(duration).unwrap_or(Instant::MAX)
    }

    /// `self + duration`, or `None` if that lies past [`Instant::MAX`].
    pub fn checked_add(self, duration: Duration) -> Option<Instant> {
        let nanos = u64::try_from(duration.as_nanos()).ok()?;
        self.0.checked_add(nanos).map(Instant)
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;

    fn add(self, rhs: Duration) -> Instant {
        self.saturating_add(rhs)
    }
}

impl Sub for Instant {
    type Output = Duration;

    fn sub(self, rhs: Instant) -> Duration {
        self.saturating_duration_since(rhs)
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Instant({:?})", Duration::from_nanos(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addition_saturates_at_max() {
        assert_eq!(Instant::MAX + Duration::from_secs(1), Instant::MAX);
        assert_eq!(Instant::from_nanos(5).checked_add(Duration::MAX), None);
    }

    #[test]
    fn subtraction_never_goes_negative() {
        let a = Instant::from_nanos(10);
        let b = Instant::from_nanos(25);
        assert_eq!(b - a, Duration::from_nanos(15));
        assert_eq!(a - b, Duration::ZERO);
    }
}
