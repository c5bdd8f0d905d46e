//! The clock every log line is written in: `CLOCK_MONOTONIC`, one clock for the whole
//! machine — network namespaces do not have their own — so the lines of every node and the
//! harness's own fault times merge into one timeline.

use std::time::Duration;

/// Nanoseconds of `CLOCK_MONOTONIC` now.
#[allow(unsafe_code)]
pub fn monotonic_nanos() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    let result = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    assert_eq!(result, 0, "clock_gettime(CLOCK_MONOTONIC) failed");
    let secs = u64::try_from(now.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(now.tv_nsec).unwrap_or(0);
    secs.saturating_mul(1_000_000_000).saturating_add(nanos)
}

/// `nanos` of `CLOCK_MONOTONIC` as seconds since `base`, for messages.
pub fn seconds_since(base: u64, nanos: u64) -> f64 {
    Duration::from_nanos(nanos.saturating_sub(base)).as_secs_f64()
}
