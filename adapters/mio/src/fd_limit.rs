//! The process's open-file limit (`RLIMIT_NOFILE`) and keeping a node's connection caps
//! below it.
//!
//! Every connection costs a file descriptor. A node whose caps exceed the limit would hit
//! `EMFILE` in normal operation, refuse work it promised, and (worse) fail to open the files
//! it needs. So the driver reads the soft limit at start and lowers the caps to fit, keeping
//! a reserve for listeners, the poll instance and files.
//!
//! Reading and setting the limit needs `getrlimit`/`setrlimit`, which std does not wrap:
//! they are called through `libc`, the crate's only `unsafe` (two FFI calls with a valid
//! pointer to a local `rlimit`).

use switchboard::peer_set::Limits;

/// Descriptors kept free for listeners, the poll instance, its waker, stdio and files.
pub const RESERVED_FDS: u64 = 64;

/// The soft and hard open-file limits, or `None` where they cannot be read.
#[cfg(unix)]
#[allow(unsafe_code)]
pub fn nofile_limit() -> Option<(u64, u64)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable `rlimit` for the duration of the call.
    let result = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    (result == 0).then(|| (clamp_rlim(limit.rlim_cur), clamp_rlim(limit.rlim_max)))
}

/// The soft and hard open-file limits, or `None` where they cannot be read.
#[cfg(not(unix))]
pub fn nofile_limit() -> Option<(u64, u64)> {
    None
}

/// Sets the soft open-file limit to `soft` (at most the hard limit) and returns the soft
/// limit now in force.
#[cfg(unix)]
#[allow(unsafe_code)]
// `rlim_t` is `u64` on Linux but not on every unix.
#[allow(clippy::useless_conversion)]
pub fn set_soft_nofile_limit(soft: u64) -> std::io::Result<u64> {
    let (_, hard) = nofile_limit().ok_or_else(std::io::Error::last_os_error)?;
    let wanted = soft.min(hard);
    let limit = libc::rlimit {
        rlim_cur: libc::rlim_t::try_from(wanted).unwrap_or(libc::RLIM_INFINITY),
        rlim_max: libc::rlim_t::try_from(hard).unwrap_or(libc::RLIM_INFINITY),
    };
    // SAFETY: `limit` is a valid `rlimit` for the duration of the call.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(wanted)
}

/// Sets the soft open-file limit (unsupported on this platform).
#[cfg(not(unix))]
pub fn set_soft_nofile_limit(_soft: u64) -> std::io::Result<u64> {
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
}

/// Raises the soft open-file limit as far as the hard limit allows (capped at 1 Mi, as
/// some systems report an "infinite" hard limit they do not honour) and returns it.
pub fn raise_nofile_limit() -> std::io::Result<u64> {
    let (soft, hard) =
        nofile_limit().ok_or_else(|| std::io::Error::from(std::io::ErrorKind::Unsupported))?;
    let target = hard.min(1 << 20);
    if target <= soft {
        return Ok(soft);
    }
    set_soft_nofile_limit(target)
}

#[cfg(unix)]
// `rlim_t` is `u64` on Linux but not on every unix.
#[allow(clippy::useless_conversion)]
fn clamp_rlim(value: libc::rlim_t) -> u64 {
    if value == libc::RLIM_INFINITY {
        u64::MAX
    } else {
        u64::try_from(value).unwrap_or(u64::MAX)
    }
}

/// Lowers `limits` so that every connection the node may hold at once (established in
/// both directions, handshakes and dials in flight, query connections both ways) fits under
/// `soft_limit` less [`RESERVED_FDS`]. Inbound query connections go first (strangers'
/// lookups), then handshake slots, then inbound slots, then our own query connections:
/// outbound peers are the ones the node chose. Returns whether anything changed.
pub fn clamp_limits(limits: &mut Limits, dials_in_flight: usize, soft_limit: u64) -> bool {
    let budget = usize::try_from(soft_limit.saturating_sub(RESERVED_FDS)).unwrap_or(usize::MAX);
    let total = |limits: &Limits| {
        limits
            .max_inbound
            .saturating_add(limits.max_outbound)
            .saturating_add(limits.max_pending_handshakes)
            .saturating_add(limits.max_inbound_queries)
            .saturating_add(limits.max_outbound_queries)
            .saturating_add(dials_in_flight)
    };
    let before = *limits;
    let mut excess = total(limits).saturating_sub(budget);
    for cap in [
        &mut limits.max_inbound_queries,
        &mut limits.max_pending_handshakes,
        &mut limits.max_inbound,
        &mut limits.max_outbound_queries,
        &mut limits.max_outbound,
    ] {
        // Each cap keeps at least one slot, so a tiny limit still yields a working node.
        let cut = excess.min(cap.saturating_sub(1));
        *cap -= cut;
        excess -= cut;
    }
    *limits != before
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_fit_under_the_soft_limit() {
        let mut limits = Limits {
            max_inbound: 1000,
            max_outbound: 10,
            max_pending_handshakes: 1000,
            ..Limits::default()
        };
        assert!(clamp_limits(&mut limits, 16, 1024));
        let total = limits.max_inbound
            + limits.max_outbound
            + limits.max_pending_handshakes
            + limits.max_inbound_queries
            + limits.max_outbound_queries
            + 16;
        assert_eq!(total as u64, 1024 - RESERVED_FDS);
        assert_eq!(limits.max_outbound, 10);
        assert_eq!(limits.max_outbound_queries, 16, "our own lookups kept");
        assert_eq!(limits.max_inbound_queries, 1, "strangers' first");
        assert_eq!(limits.max_pending_handshakes, 1);
    }

    #[test]
    fn generous_limit_changes_nothing() {
        let mut limits = Limits::default();
        assert!(!clamp_limits(&mut limits, 16, 1 << 20));
        assert_eq!(limits, Limits::default());
    }

    #[test]
    fn the_limit_can_be_read() {
        let (soft, hard) = nofile_limit().expect("getrlimit works on unix");
        assert!(soft <= hard);
    }
}
