//! Test before evict: a good address whose *tried* slot is taken waits in *new* while the
//! occupant is tested, and takes the slot only if the occupant fails or stays silent.

use core::net::SocketAddr;

use super::{AddrBook, Table};
use crate::net_address::NetAddress;
use crate::time::Instant;

/// A pending tried-table collision ([`AddrBook::collisions`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TriedCollision {
    /// The address that connected and wants the slot.
    pub candidate: NetAddress,
    /// The address in the slot, to be tested.
    pub occupant: NetAddress,
    /// When the occupant is evicted unless it answered.
    pub deadline: Instant,
    /// Whether [`AddrBook::poll_collision`] handed the occupant out for testing.
    pub tested: bool,
}

/// A pending collision, by address (entry ids are reused).
#[derive(Clone, Copy)]
pub(super) struct Collision {
    pub(super) candidate: SocketAddr,
    pub(super) occupant: SocketAddr,
    pub(super) deadline: Instant,
    pub(super) tested: bool,
}

impl AddrBook {
    /// The occupant of a pending tried-table collision, to be tested by dialing it; each is
    /// handed out once. Report the outcome with [`AddrBook::mark_good`] (it stays) or
    /// [`AddrBook::mark_failed`] (it is evicted); silence until the collision's deadline
    /// evicts it too ([`AddrBook::handle_timeout`]). An occupant that is connected right now
    /// has passed: call [`AddrBook::mark_good`] at once.
    #[must_use]
    pub fn poll_collision(&mut self) -> Option<NetAddress> {
        let occupant = self.collisions.iter().find(|c| !c.tested)?.occupant;
        for collision in &mut self.collisions {
            if collision.occupant == occupant {
                collision.tested = true;
            }
        }
        self.entry_by_addr(&occupant).map(|entry| entry.address)
    }

    /// The pending tried-table collisions, oldest first (at most `max_collisions` of
    /// [`AddrBookConfig`](super::AddrBookConfig); they are not persisted).
    pub fn collisions(&self) -> impl Iterator<Item = TriedCollision> + '_ {
        self.collisions.iter().filter_map(|c| {
            Some(TriedCollision {
                candidate: self.entry_by_addr(&c.candidate)?.address,
                occupant: self.entry_by_addr(&c.occupant)?.address,
                deadline: c.deadline,
                tested: c.tested,
            })
        })
    }

    /// Resolves the collisions whose deadline passed by `now` by evicting their occupants.
    /// Returns how many were resolved.
    pub fn handle_timeout(&mut self, now: Instant) -> usize {
        let mut resolved = 0usize;
        for _ in 0..self.collisions.len() {
            let Some(occupant) = self
                .collisions
                .iter()
                .find(|c| c.deadline <= now)
                .map(|c| c.occupant)
            else {
                break;
            };
            self.evict_occupant(occupant);
            resolved = resolved.saturating_add(1);
        }
        resolved
    }

    /// The earliest collision deadline.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.collisions.iter().map(|c| c.deadline).min()
    }

    /// Resolves the oldest collision `occupant` is in by evicting it.
    pub(super) fn evict_occupant(&mut self, occupant: SocketAddr) {
        let Some(collision) = self.collisions.iter().find(|c| c.occupant == occupant) else {
            return;
        };
        let ids = (self.id_of(collision.candidate), self.id_of(occupant));
        match ids {
            (Some(candidate), Some(occupant_id)) => self.promote(candidate, occupant_id),
            _ => self.collisions.retain(|c| c.occupant != occupant),
        }
    }

    /// Moves `candidate` from *new* into the *tried* slot of `occupant`, and `occupant` back
    /// to its slot in *new* (replacing whatever is there: a proven address is worth more
    /// than a rumoured one).
    pub(super) fn promote(&mut self, candidate: u32, occupant: u32) {
        let Some(entry) = self.entry(occupant) else {
            return;
        };
        let (slot, occupant_address, source) =
            (entry.slot, entry.address.socket_addr(), entry.source);
        let candidate_address = self
            .entry(candidate)
            .map(|entry| entry.address.socket_addr());
        self.collisions
            .retain(|c| c.occupant != occupant_address && Some(c.candidate) != candidate_address);
        self.unplace(occupant);
        self.unplace(candidate);
        self.place(candidate, Table::Tried, slot);
        let new_slot = self.new_slot(occupant_address, source);
        if let Some(other) = self.new.get(new_slot) {
            self.delete(other);
        }
        self.place(occupant, Table::New, new_slot);
    }
}
