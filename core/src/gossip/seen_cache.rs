//! The ids of messages seen lately: bounded in count and in age.

use alloc::collections::{BTreeSet, VecDeque};
use core::time::Duration;

use super::MessageId;
use crate::time::Instant;

/// Message ids remembered for `ttl`, at most `capacity` of them (the oldest forgotten
/// first). A message seen again after being forgotten is treated as new: the bound is what
/// keeps a flood of distinct messages from growing memory.
#[derive(Clone, Debug)]
pub(super) struct SeenCache {
    capacity: usize,
    ttl: Duration,
    seen: BTreeSet<MessageId>,
    /// When each was first seen, oldest first.
    order: VecDeque<(Instant, MessageId)>,
}

impl SeenCache {
    pub(super) fn new(capacity: usize, ttl: Duration) -> Self {
        SeenCache {
            capacity: capacity.max(1),
            ttl,
            seen: BTreeSet::new(),
            order: VecDeque::new(),
        }
    }

    /// How many ids it holds.
    pub(super) fn len(&self) -> usize {
        self.seen.len()
    }

    /// Records `id` as seen at `now`; returns `false` if it already was (and not expired).
    pub(super) fn insert(&mut self, now: Instant, id: MessageId) -> bool {
        self.expire(now);
        if self.seen.contains(&id) {
            return false;
        }
        while self.seen.len() >= self.capacity {
            let Some((_, oldest)) = self.order.pop_front() else {
                break;
            };
            self.seen.remove(&oldest);
        }
        self.seen.insert(id);
        self.order.push_back((now, id));
        true
    }

    fn expire(&mut self, now: Instant) {
        while let Some(&(at, id)) = self.order.front() {
            if at.saturating_add(self.ttl) > now {
                break;
            }
            self.order.pop_front();
            self.seen.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: u64) -> Instant {
        Instant::from_nanos(seconds * 1_000_000_000)
    }

    #[test]
    fn an_id_is_new_once_until_it_expires() {
        let mut cache = SeenCache::new(10, Duration::from_secs(60));
        let id = MessageId([1; 32]);
        assert!(cache.insert(at(0), id));
        assert!(!cache.insert(at(59), id));
        assert!(cache.insert(at(60), id), "expired, so new again");
    }

    #[test]
    fn the_oldest_ids_go_first_when_full() {
        let mut cache = SeenCache::new(3, Duration::from_secs(60));
        for byte in 0..5u8 {
            assert!(cache.insert(at(0), MessageId([byte; 32])));
        }
        assert_eq!(cache.len(), 3);
        assert!(cache.insert(at(1), MessageId([0; 32])), "forgotten");
        assert!(!cache.insert(at(1), MessageId([4; 32])), "still remembered");
    }
}
