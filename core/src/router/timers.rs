//! A protocol's timers: several, each under a key of the protocol's choosing, bounded.

use alloc::collections::{BTreeMap, BTreeSet};
use core::fmt;

use crate::time::Instant;

/// How many timers one protocol may hold at once. A bound, so that a protocol keying its
/// timers by something peers choose (a request id) cannot grow the router without limit;
/// enough for a timer per purpose and a few per outstanding request.
pub const MAX_TIMERS: usize = 64;

/// Which of a protocol's timers: [`Context::set_timer`](super::Context::set_timer) sets
/// one, [`Protocol::timer`](super::Protocol::timer) is told which fired.
///
/// A number, not a name: a protocol may compute keys (one per outstanding request, from a
/// slot it allocates) as well as name fixed ones with constants, and numbers order and
/// compare cheaply for the deterministic firing order (same deadline: protocols in
/// registration order, then keys in ascending order).
///
/// ```
/// use switchboard::router::TimerKey;
///
/// const RETRY: TimerKey = TimerKey(0);
/// /// One timer per request slot, from 1 on.
/// fn request_timeout(slot: u16) -> TimerKey {
///     TimerKey(1 + u32::from(slot))
/// }
/// assert!(RETRY < request_timeout(0));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerKey(pub u32);

impl fmt::Display for TimerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "timer {}", self.0)
    }
}

/// A protocol asked for a timer beyond [`MAX_TIMERS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooManyTimers;

impl fmt::Display for TooManyTimers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a protocol holds at most {MAX_TIMERS} timers")
    }
}

impl core::error::Error for TooManyTimers {}

/// One protocol's timers, by key and by deadline.
#[derive(Default)]
pub(crate) struct Timers {
    by_key: BTreeMap<TimerKey, Instant>,
    /// The same timers, earliest first (ties by key).
    by_deadline: BTreeSet<(Instant, TimerKey)>,
}

impl Timers {
    pub(crate) fn set(&mut self, key: TimerKey, at: Instant) -> Result<(), TooManyTimers> {
        if !self.by_key.contains_key(&key) && self.by_key.len() >= MAX_TIMERS {
            return Err(TooManyTimers);
        }
        if let Some(old) = self.by_key.insert(key, at) {
            self.by_deadline.remove(&(old, key));
        }
        self.by_deadline.insert((at, key));
        Ok(())
    }

    pub(crate) fn cancel(&mut self, key: TimerKey) {
        if let Some(at) = self.by_key.remove(&key) {
            self.by_deadline.remove(&(at, key));
        }
    }

    pub(crate) fn get(&self, key: TimerKey) -> Option<Instant> {
        self.by_key.get(&key).copied()
    }

    /// The earliest deadline.
    pub(crate) fn earliest(&self) -> Option<Instant> {
        self.by_deadline.first().map(|&(at, _)| at)
    }

    /// The timers due by `now`, earliest first.
    pub(crate) fn due(&self, now: Instant) -> impl Iterator<Item = (Instant, TimerKey)> + '_ {
        self.by_deadline
            .iter()
            .copied()
            .take_while(move |&(at, _)| at <= now)
    }

    /// Removes timer `key` if it is still set for `at`: whether it was.
    pub(crate) fn take(&mut self, key: TimerKey, at: Instant) -> bool {
        if self.by_key.get(&key) != Some(&at) {
            return false;
        }
        self.by_key.remove(&key);
        self.by_deadline.remove(&(at, key));
        true
    }
}
