//! The node's connections, indexed by [`ConnId`] in O(1).
//!
//! A node with 10,000 peers looks up a connection several times for every message it
//! routes. In an ordered map each lookup walks a tree whose leaves are cold, and the walk
//! costs more cache misses than the connection's own work; here a `ConnId` carries the index
//! of its slot, so a lookup touches the slot and nothing else.
//!
//! A `ConnId` is `generation << 32 | index`. A slot freed by a closed connection is reused
//! with its generation bumped, so an old id never finds the new connection: ids are never
//! reused within a node, as [`ConnId`] promises. A slot whose generation is exhausted is
//! retired rather than wrapped.

use alloc::vec::Vec;

use super::event::ConnId;

struct Slot<T> {
    generation: u32,
    value: Option<T>,
}

/// Values keyed by [`ConnId`]s it hands out.
pub(super) struct ConnTable<T> {
    slots: Vec<Slot<T>>,
    /// Indices of empty slots, reused last-freed first.
    free: Vec<u32>,
    len: usize,
}

impl<T> ConnTable<T> {
    pub(super) fn new() -> Self {
        ConnTable {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }

    /// How many values it holds.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Stores `value` under a new id; `None` only when all 2^32 slots are taken or retired.
    pub(super) fn insert(&mut self, value: T) -> Option<ConnId> {
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                let index = u32::try_from(self.slots.len()).ok()?;
                self.slots.push(Slot {
                    generation: 0,
                    value: None,
                });
                index
            }
        };
        let slot = self.slots.get_mut(usize::try_from(index).ok()?)?;
        slot.value = Some(value);
        self.len = self.len.saturating_add(1);
        Some(conn_id(slot.generation, index))
    }

    pub(super) fn get(&self, conn: ConnId) -> Option<&T> {
        let (generation, index) = split(conn);
        let slot = self.slots.get(index)?;
        if slot.generation != generation {
            return None;
        }
        slot.value.as_ref()
    }

    pub(super) fn get_mut(&mut self, conn: ConnId) -> Option<&mut T> {
        let (generation, index) = split(conn);
        let slot = self.slots.get_mut(index)?;
        if slot.generation != generation {
            return None;
        }
        slot.value.as_mut()
    }

    /// The ids of the values held, in slot order.
    pub(super) fn ids(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.slots.iter().zip(0u32..).filter_map(|(slot, index)| {
            slot.value.as_ref().map(|_| conn_id(slot.generation, index))
        })
    }

    /// Takes the value out; its id will never find anything again.
    pub(super) fn remove(&mut self, conn: ConnId) -> Option<T> {
        let (generation, index) = split(conn);
        let slot = self.slots.get_mut(index)?;
        if slot.generation != generation {
            return None;
        }
        let value = slot.value.take()?;
        self.len = self.len.saturating_sub(1);
        if let Some(next) = slot.generation.checked_add(1) {
            slot.generation = next;
            if let Ok(index) = u32::try_from(index) {
                self.free.push(index);
            }
        }
        Some(value)
    }
}

fn conn_id(generation: u32, index: u32) -> ConnId {
    ConnId(u64::from(generation) << 32 | u64::from(index))
}

fn split(conn: ConnId) -> (u32, usize) {
    let generation = (conn.0 >> 32) as u32;
    let index = (conn.0 & u64::from(u32::MAX)) as usize;
    (generation, index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_never_reused_and_stale_ids_find_nothing() {
        let mut table = ConnTable::new();
        let first = table.insert("a").unwrap();
        let second = table.insert("b").unwrap();
        assert_ne!(first, second);
        assert_eq!(table.remove(first), Some("a"));
        assert_eq!(table.get(first), None);
        let third = table.insert("c").unwrap();
        assert_ne!(third, first, "the slot is reused under a new id");
        assert_eq!(table.get(first), None);
        assert_eq!(table.remove(first), None);
        assert_eq!(table.get(third), Some(&"c"));
        assert_eq!(table.get(second), Some(&"b"));
        assert_eq!(table.len(), 2);
    }

    #[test]
    fn ids_lists_exactly_the_values_held_under_their_current_ids() {
        let mut table = ConnTable::new();
        let first = table.insert('a').unwrap();
        let second = table.insert('b').unwrap();
        table.remove(first);
        let third = table.insert('c').unwrap();
        let ids: Vec<ConnId> = table.ids().collect();
        assert_eq!(ids, [third, second], "slot order; the reused slot's new id");
        assert!(ids.iter().all(|&id| table.get(id).is_some()));
    }

    #[test]
    fn a_slot_whose_generation_is_exhausted_is_retired() {
        let mut table = ConnTable::new();
        let conn = table.insert(1).unwrap();
        table.slots[0].generation = u32::MAX;
        let old = conn_id(u32::MAX, 0);
        assert_ne!(conn, old);
        assert_eq!(table.remove(old), Some(1));
        let next = table.insert(2).unwrap();
        assert_eq!(split(next).1, 1, "a fresh slot, not the exhausted one");
        assert_eq!(table.get(old), None);
    }

    #[test]
    fn ids_that_were_never_handed_out_find_nothing() {
        let mut table: ConnTable<u8> = ConnTable::new();
        assert_eq!(table.get(ConnId(u64::MAX)), None);
        assert_eq!(table.get_mut(ConnId(7)), None);
        assert_eq!(table.remove(ConnId(0)), None);
    }
}
