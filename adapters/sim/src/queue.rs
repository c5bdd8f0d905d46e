//! The event queue: every future input to a node, ordered by (time, sequence number).
//!
//! The simulator's cost is per event, not per node: nothing visits idle nodes. Ties at the
//! same instant are broken by the order events were scheduled, so a seed gives one order.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use switchboard::Instant;

/// One scheduled entry; only `(at, seq)` orders it. The item waits in a slab, so the heap
/// moves 24-byte entries, not the items (a delivery carries its bytes).
struct Entry {
    at: Instant,
    seq: u64,
    slot: u32,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    // Reversed: `BinaryHeap` is a max-heap and the earliest entry must come out first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// A min-queue of items by time, first-scheduled first among equal times.
pub(crate) struct EventQueue<T> {
    heap: BinaryHeap<Entry>,
    items: Vec<Option<T>>,
    free: Vec<u32>,
    seq: u64,
}

impl<T> EventQueue<T> {
    pub(crate) fn new() -> Self {
        EventQueue {
            heap: BinaryHeap::new(),
            items: Vec::new(),
            free: Vec::new(),
            seq: 0,
        }
    }

    pub(crate) fn push(&mut self, at: Instant, item: T) {
        self.seq += 1;
        let slot = match self.free.pop() {
            Some(slot) => {
                self.items[slot as usize] = Some(item);
                slot
            }
            None => {
                self.items.push(Some(item));
                // More than 2^32 items queued at once would not fit in memory anyway.
                u32::try_from(self.items.len() - 1).unwrap_or(u32::MAX)
            }
        };
        self.heap.push(Entry {
            at,
            seq: self.seq,
            slot,
        });
    }

    /// When the earliest item falls due.
    pub(crate) fn peek_time(&self) -> Option<Instant> {
        self.heap.peek().map(|entry| entry.at)
    }

    pub(crate) fn pop(&mut self) -> Option<(Instant, T)> {
        let entry = self.heap.pop()?;
        self.free.push(entry.slot);
        let item = self.items.get_mut(entry.slot as usize)?.take()?;
        Some((entry.at, item))
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_first_then_scheduling_order() {
        let mut queue = EventQueue::new();
        queue.push(Instant::from_nanos(5), 'c');
        queue.push(Instant::from_nanos(1), 'a');
        queue.push(Instant::from_nanos(5), 'd');
        queue.push(Instant::from_nanos(1), 'b');
        let order: Vec<char> = std::iter::from_fn(|| queue.pop().map(|(_, item)| item)).collect();
        assert_eq!(order, ['a', 'b', 'c', 'd']);
    }
}
