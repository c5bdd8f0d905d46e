//! The dial queue: which addresses to dial, when, and how many at once.
//!
//! Requests are ordered by due time and deduplicated by socket address. A failed dial is
//! retried after an exponential backoff (`base × 2^failures`, capped, with ±50% jitter from
//! the caller's seeded RNG so a fleet of nodes does not redial in lockstep), up to
//! `max_attempts`, or forever for persistent peers. At most `max_in_flight` dials run at
//! once, and a dial that neither succeeds nor fails within `dial_timeout` counts as failed.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;
use core::net::SocketAddr;
use core::time::Duration;

use rand_core::Rng;

use crate::net_address::NetAddress;
use crate::time::Instant;

/// How the dial queue paces its dials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DialConfig {
    /// Most dials in flight at once. Default 16.
    pub max_in_flight: usize,
    /// A dial not completed (TCP connect and handshake) within this fails. Default 5 s.
    pub dial_timeout: Duration,
    /// Backoff after the first failure. Default 1 s.
    pub backoff_base: Duration,
    /// Longest backoff. Default 5 min.
    pub backoff_cap: Duration,
    /// Attempts before a non-persistent address is given up. Default 5.
    pub max_attempts: u32,
}

impl Default for DialConfig {
    fn default() -> Self {
        DialConfig {
            max_in_flight: 16,
            dial_timeout: Duration::from_secs(5),
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(300),
            max_attempts: 5,
        }
    }
}

/// What became of a failed dial.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// Dialed again at this instant.
    At(Instant),
    /// Given up: attempts exhausted.
    GivenUp,
}

struct Entry {
    address: NetAddress,
    /// Consecutive failures.
    failures: u32,
    /// `Some(deadline)` while in flight; otherwise waiting for `due`.
    in_flight: Option<Instant>,
    due: Instant,
}

/// Pending and running dials. See the [module documentation](self).
pub struct DialQueue {
    config: DialConfig,
    entries: BTreeMap<SocketAddr, Entry>,
    /// Waiting entries by due time (ties broken by address, so the order is deterministic).
    waiting: BTreeSet<(Instant, SocketAddr)>,
    /// Running entries by deadline.
    running: BTreeSet<(Instant, SocketAddr)>,
}

impl DialQueue {
    /// An empty queue.
    pub fn new(config: DialConfig) -> Self {
        DialQueue {
            config,
            entries: BTreeMap::new(),
            waiting: BTreeSet::new(),
            running: BTreeSet::new(),
        }
    }

    /// Asks for `address` to be dialed at `due` (now, or later). A request for an address
    /// already queued or in flight brings a waiting one forward (and names its peer, if it
    /// does); it never duplicates it. Returns whether the address is new.
    pub fn push(&mut self, due: Instant, address: NetAddress) -> bool {
        let key = address.socket_addr();
        if let Some(entry) = self.entries.get_mut(&key) {
            if address.peer_id().is_some() {
                entry.address = address;
            }
            if entry.in_flight.is_none() && due < entry.due {
                self.waiting.remove(&(entry.due, key));
                entry.due = due;
                self.waiting.insert((due, key));
            }
            return false;
        }
        self.entries.insert(
            key,
            Entry {
                address,
                failures: 0,
                in_flight: None,
                due,
            },
        );
        self.waiting.insert((due, key));
        true
    }

    /// The next address to dial now, if one is due and a dial slot is free. It is in flight
    /// from now until [`DialQueue::handle_success`], [`DialQueue::handle_failure`] or its
    /// deadline.
    pub fn poll_dial(&mut self, now: Instant) -> Option<NetAddress> {
        if self.running.len() >= self.config.max_in_flight {
            return None;
        }
        let &(due, key) = self.waiting.first()?;
        if due > now {
            return None;
        }
        self.waiting.pop_first();
        let entry = self.entries.get_mut(&key)?;
        let deadline = now.saturating_add(self.config.dial_timeout);
        entry.in_flight = Some(deadline);
        self.running.insert((deadline, key));
        Some(entry.address)
    }

    /// The dial to `address` connected and completed its handshake: forget it. A persistent
    /// address is pushed again by its owner when the connection ends.
    pub fn handle_success(&mut self, address: SocketAddr) {
        if let Some(entry) = self.entries.remove(&address) {
            self.unlink(address, &entry);
        }
    }

    /// Forgets `address` whatever its state (the peer connected another way, or was banned).
    pub fn remove(&mut self, address: SocketAddr) {
        self.handle_success(address);
    }

    /// The dial to `address` failed: schedules the retry, or gives up — never, for a
    /// `persistent` address (the caller knows which are: the queue keeps no copy of that
    /// fact).
    pub fn handle_failure<R: Rng + ?Sized>(
        &mut self,
        now: Instant,
        address: SocketAddr,
        persistent: bool,
        rng: &mut R,
    ) -> Retry {
        let Some(mut entry) = self.entries.remove(&address) else {
            return Retry::GivenUp;
        };
        self.unlink(address, &entry);
        entry.failures = entry.failures.saturating_add(1);
        if !persistent && entry.failures >= self.config.max_attempts {
            return Retry::GivenUp;
        }
        let due = now.saturating_add(self.backoff(entry.failures, rng));
        entry.in_flight = None;
        entry.due = due;
        self.waiting.insert((due, address));
        self.entries.insert(address, entry);
        Retry::At(due)
    }

    /// `base × 2^(failures − 1)`, capped, times a jitter factor in [0.5, 1.5).
    fn backoff<R: Rng + ?Sized>(&self, failures: u32, rng: &mut R) -> Duration {
        let exponent = failures.saturating_sub(1).min(32);
        let nominal = self
            .config
            .backoff_base
            .saturating_mul(1u32.checked_shl(exponent).unwrap_or(u32::MAX))
            .min(self.config.backoff_cap);
        // Jitter in 1/1024 steps: 512..1536 / 1024.
        let factor = 512u32.saturating_add(rng.next_u32() % 1024);
        nominal
            .saturating_mul(factor)
            .checked_div(1024)
            .unwrap_or(nominal)
    }

    /// Dials whose deadline passed by `now`; each is failed (and maybe rescheduled, as
    /// [`DialQueue::handle_failure`], `persistent` telling which addresses are) here.
    pub fn handle_timeout<R: Rng + ?Sized>(
        &mut self,
        now: Instant,
        rng: &mut R,
        persistent: impl Fn(&NetAddress) -> bool,
    ) -> Vec<(NetAddress, Retry)> {
        let mut expired = Vec::new();
        while let Some(&(deadline, key)) = self.running.first() {
            if deadline > now {
                break;
            }
            let Some(address) = self.entries.get(&key).map(|entry| entry.address) else {
                self.running.pop_first();
                continue;
            };
            let retry = self.handle_failure(now, key, persistent(&address), rng);
            expired.push((address, retry));
        }
        expired
    }

    /// The next instant something is due: a dial deadline, or a waiting dial when a slot is
    /// free.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let deadline = self.running.first().map(|&(deadline, _)| deadline);
        let due = if self.running.len() < self.config.max_in_flight {
            self.waiting.first().map(|&(due, _)| due)
        } else {
            None
        };
        match (deadline, due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether `address` is queued or in flight.
    pub fn contains(&self, address: SocketAddr) -> bool {
        self.entries.contains_key(&address)
    }

    /// Every address queued or in flight, in address order.
    pub fn addresses(&self) -> impl Iterator<Item = &NetAddress> + '_ {
        self.entries.values().map(|entry| &entry.address)
    }

    /// Dials in flight.
    pub fn in_flight(&self) -> usize {
        self.running.len()
    }

    /// Addresses queued or in flight.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is queued or in flight.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Takes out every dial not in flight, in due order: what a node shutting down will
    /// never start.
    pub fn take_waiting(&mut self) -> Vec<NetAddress> {
        let waiting = core::mem::take(&mut self.waiting);
        waiting
            .into_iter()
            .filter_map(|(_, key)| self.entries.remove(&key))
            .map(|entry| entry.address)
            .collect()
    }

    fn unlink(&mut self, key: SocketAddr, entry: &Entry) {
        match entry.in_flight {
            Some(deadline) => self.running.remove(&(deadline, key)),
            None => self.waiting.remove(&(entry.due, key)),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha8Rng;
    use rand_core::SeedableRng;

    fn at(ms: u64) -> Instant {
        Instant::from_nanos(ms * 1_000_000)
    }

    fn addr(last: u8) -> NetAddress {
        NetAddress::new(None, SocketAddr::from(([10, 0, 0, last], 26656)))
    }

    #[test]
    fn take_waiting_takes_the_waiting_dials_in_due_order_and_leaves_those_in_flight() {
        let mut queue = DialQueue::new(DialConfig {
            max_in_flight: 1,
            ..DialConfig::default()
        });
        queue.push(at(0), addr(1));
        queue.push(at(30), addr(3));
        queue.push(at(20), addr(2));
        assert_eq!(queue.poll_dial(at(0)), Some(addr(1)));
        assert_eq!(
            queue.addresses().copied().collect::<Vec<_>>(),
            [addr(1), addr(2), addr(3)]
        );
        assert_eq!(queue.take_waiting(), [addr(2), addr(3)]);
        assert_eq!(queue.len(), 1);
        assert_eq!(queue.addresses().copied().collect::<Vec<_>>(), [addr(1)]);
        assert!(queue.contains(addr(1).socket_addr()));
        assert!(!queue.contains(addr(3).socket_addr()));
        assert_eq!(queue.poll_dial(at(100)), None, "nothing left waiting");
        assert!(queue.take_waiting().is_empty());
    }

    #[test]
    fn dials_are_deduplicated_ordered_and_bounded_in_flight() {
        let mut queue = DialQueue::new(DialConfig {
            max_in_flight: 2,
            ..DialConfig::default()
        });
        assert!(queue.push(at(30), addr(3)));
        assert!(queue.push(at(10), addr(1)));
        assert!(queue.push(at(20), addr(2)));
        assert!(
            !queue.push(at(5), addr(2)),
            "a duplicate is not queued twice"
        );
        assert_eq!(queue.len(), 3);
        assert_eq!(queue.poll_dial(at(4)), None, "nothing due yet");
        assert_eq!(queue.poll_timeout(), Some(at(5)));
        assert_eq!(
            queue.poll_dial(at(100)),
            Some(addr(2)),
            "brought forward to 5 ms"
        );
        assert_eq!(queue.poll_dial(at(100)), Some(addr(1)));
        assert_eq!(queue.poll_dial(at(100)), None, "two in flight at most");
        queue.handle_success(addr(1).socket_addr());
        assert_eq!(queue.poll_dial(at(100)), Some(addr(3)));
    }

    #[test]
    fn backoff_doubles_with_jitter_is_capped_and_gives_up() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let config = DialConfig {
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(16),
            max_attempts: 8,
            ..DialConfig::default()
        };
        let mut queue = DialQueue::new(config);
        let key = addr(1).socket_addr();
        queue.push(at(0), addr(1));
        let mut now = at(0);
        for failure in 1..8u32 {
            assert_eq!(queue.poll_dial(now), Some(addr(1)));
            let Retry::At(due) = queue.handle_failure(now, key, false, &mut rng) else {
                panic!("gave up after {failure}")
            };
            let waited = due - now;
            let nominal = Duration::from_secs(1 << (failure - 1).min(4));
            assert!(
                waited >= nominal / 2 && waited < nominal * 3 / 2,
                "failure {failure}: {waited:?}"
            );
            now = due;
        }
        assert_eq!(queue.poll_dial(now), Some(addr(1)));
        assert_eq!(
            queue.handle_failure(now, key, false, &mut rng),
            Retry::GivenUp
        );
        assert!(queue.is_empty());
    }

    #[test]
    fn persistent_addresses_are_retried_forever_and_silent_dials_time_out() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let mut queue = DialQueue::new(DialConfig {
            max_attempts: 1,
            ..DialConfig::default()
        });
        queue.push(at(0), addr(7));
        let mut now = at(0);
        for _ in 0..50 {
            assert_eq!(queue.poll_dial(now), Some(addr(7)));
            let deadline = queue.poll_timeout().unwrap();
            assert_eq!(deadline, now + Duration::from_secs(5));
            assert!(
                queue
                    .handle_timeout(
                        Instant::from_nanos(deadline.as_nanos() - 1),
                        &mut rng,
                        |_| true
                    )
                    .is_empty()
            );
            let expired = queue.handle_timeout(deadline, &mut rng, |_| true);
            let [(address, Retry::At(due))] = expired.as_slice() else {
                panic!("{expired:?}")
            };
            assert_eq!(*address, addr(7));
            assert!(
                *due - deadline <= Duration::from_secs(450),
                "capped at 300 s ± 50%"
            );
            now = *due;
        }
    }
}
