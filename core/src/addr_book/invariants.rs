//! The book's internal consistency, checked by the unit tests and the fuzz targets.

use super::group::{canonical, is_dialable};
use super::index::AddrKey;
use super::{AddrBook, Table};

impl AddrBook {
    /// Panics unless the index, the entries, both tables' slots and lists, and the pending
    /// collisions agree, and every entry sits where its hash puts it. Only exists in test
    /// and fuzzing builds.
    #[doc(hidden)]
    pub fn check_invariants(&self) {
        assert_eq!(self.len(), self.new_len() + self.tried_len());
        assert_eq!(self.entries.iter().flatten().count(), self.len());
        assert_eq!(self.entries.len(), self.len() + self.free.len());
        for (&AddrKey(address), &id) in &self.index {
            let entry = self.entry(id).expect("an indexed entry exists");
            assert_eq!(entry.address.socket_addr(), address);
            assert!(is_dialable(address) && canonical(address) == address);
            assert!(
                self.accepts(address),
                "{address} passes the routability policy"
            );
            let slots = self.table(entry.table);
            assert_eq!(slots.get(entry.slot), Some(id), "{address} is in its slot");
            assert_eq!(slots.ids.get(entry.list_pos as usize), Some(&id));
            let expected = match entry.table {
                Table::New => self.new_slot(address, entry.source),
                Table::Tried => self.tried_slot(address),
            };
            assert_eq!(entry.slot, expected, "{address} is where its hash puts it");
        }
        assert_eq!(self.new.occupied().count(), self.new_len());
        assert_eq!(self.tried.occupied().count(), self.tried_len());
        assert!(self.new_len() <= self.config.new_capacity());
        assert!(self.tried_len() <= self.config.tried_capacity());
        assert!(self.collisions.len() <= self.config.max_collisions);
        for collision in &self.collisions {
            let candidate = self.get(&collision.candidate).expect("candidate known");
            let occupant = self.get(&collision.occupant).expect("occupant known");
            assert_eq!(candidate.table, Table::New);
            assert_eq!(occupant.table, Table::Tried);
            let slot = self.tried_slot(collision.candidate);
            assert_eq!(self.tried.get(slot), self.id_of(collision.occupant));
        }
    }
}
