//! The peers whose dials the node gave up on, remembered so that
//! [`Node::connectedness`](super::Node::connectedness) can say `CannotConnect` — and bounded,
//! because every identity a peer exchange ever named can end up here: past
//! [`MAX_GIVEN_UP`], the peer given up longest ago is forgotten (it reads `NotConnected`
//! again, which is what a dial to it would find out anyway).

use alloc::collections::BTreeMap;

use crate::identity::PeerId;

/// Peers remembered as given up, at most. 4,096 × ~100 B of two map entries: ~400 KiB.
pub const MAX_GIVEN_UP: usize = 4096;

/// Given-up peers, oldest first by the order they were given up.
#[derive(Debug, Default)]
pub(super) struct GivenUp {
    by_peer: BTreeMap<PeerId, u64>,
    by_age: BTreeMap<u64, PeerId>,
    next: u64,
}

impl GivenUp {
    /// Remembers `peer` as given up now (again, if it was), forgetting the oldest beyond the
    /// bound.
    pub(super) fn insert(&mut self, peer: PeerId) {
        self.remove(&peer);
        self.by_peer.insert(peer, self.next);
        self.by_age.insert(self.next, peer);
        self.next = self.next.wrapping_add(1);
        while self.by_peer.len() > MAX_GIVEN_UP {
            let Some((_, oldest)) = self.by_age.pop_first() else {
                break;
            };
            self.by_peer.remove(&oldest);
        }
    }

    /// Forgets `peer` (it connected after all).
    pub(super) fn remove(&mut self, peer: &PeerId) {
        if let Some(age) = self.by_peer.remove(peer) {
            self.by_age.remove(&age);
        }
    }

    pub(super) fn contains(&self, peer: &PeerId) -> bool {
        self.by_peer.contains_key(peer)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_peer.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(n: u32) -> PeerId {
        let mut bytes = [0u8; 32];
        bytes[..4].copy_from_slice(&n.to_be_bytes());
        PeerId::from_bytes(bytes)
    }

    #[test]
    fn the_oldest_is_forgotten_beyond_the_bound_and_a_repeat_counts_as_new() {
        let mut given_up = GivenUp::default();
        for n in 0..MAX_GIVEN_UP as u32 {
            given_up.insert(peer(n));
        }
        // Peer 0 given up again: now the newest, so peer 1 goes first.
        given_up.insert(peer(0));
        given_up.insert(peer(1_000_000));
        assert_eq!(given_up.len(), MAX_GIVEN_UP);
        assert!(given_up.contains(&peer(0)));
        assert!(!given_up.contains(&peer(1)));
        assert!(given_up.contains(&peer(2)) && given_up.contains(&peer(1_000_000)));
        for n in 0..3 * MAX_GIVEN_UP as u32 {
            given_up.insert(peer(2_000_000 + n));
        }
        assert_eq!(given_up.len(), MAX_GIVEN_UP);
        assert_eq!(given_up.by_age.len(), MAX_GIVEN_UP);
    }

    #[test]
    fn a_peer_that_connects_is_forgotten() {
        let mut given_up = GivenUp::default();
        given_up.insert(peer(7));
        given_up.remove(&peer(7));
        assert!(!given_up.contains(&peer(7)));
        assert_eq!((given_up.len(), given_up.by_age.len()), (0, 0));
    }
}
