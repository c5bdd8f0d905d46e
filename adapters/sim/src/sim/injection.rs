//! Fault injection: the calls that break the network (partitions, refusals, swallowed
//! dials, resets, crashes, slow applications, clock jumps) and heal it.

use std::net::SocketAddr;
use std::time::Duration;

use switchboard::node::ConnId;

use super::*;

impl Sim {
    /// Stops or resumes polling node `index`'s events (a slow application).
    ///
    /// # Panics
    /// If there is no node `index`.
    pub fn set_polling(&mut self, index: NodeIndex, polling: bool) {
        self.nodes[index].polling = polling;
        self.mark(index);
    }

    /// Whether node `index`'s application polls its events.
    pub fn is_polling(&self, index: NodeIndex) -> bool {
        self.nodes.get(index).is_some_and(|slot| slot.polling)
    }

    /// Cuts (or heals) the network between `a` and `b` in [`PartitionMode::Reset`] mode: new
    /// dials fail, and existing links between them are reset.
    pub fn set_partitioned(&mut self, a: NodeIndex, b: NodeIndex, partitioned: bool) {
        if partitioned {
            self.partition_pair(a, b, PartitionMode::Reset);
        } else {
            self.heal_pair(a, b);
        }
    }

    /// Cuts the network between `a` and `b` in `mode`.
    pub fn partition_pair(&mut self, a: NodeIndex, b: NodeIndex, mode: PartitionMode) {
        let key = (a.min(b), a.max(b));
        self.pairs.insert(key, mode);
        if mode == PartitionMode::Reset {
            self.reset_crossing();
        }
    }

    /// Heals the cut between `a` and `b`.
    pub fn heal_pair(&mut self, a: NodeIndex, b: NodeIndex) {
        self.pairs.remove(&(a.min(b), a.max(b)));
        self.release_held();
    }

    /// Splits the network in two: the nodes in `side` and the rest, in `mode`, replacing any
    /// earlier split.
    pub fn partition(&mut self, side: &[NodeIndex], mode: PartitionMode) {
        let mut sides = vec![false; self.nodes.len()];
        for &index in side {
            if let Some(flag) = sides.get_mut(index) {
                *flag = true;
            }
        }
        self.split = Some((sides, mode));
        if mode == PartitionMode::Reset {
            self.reset_crossing();
        }
        self.release_held();
    }

    /// Heals the split of [`Sim::partition`]; black-holed bytes then arrive.
    pub fn heal_partition(&mut self) {
        self.split = None;
        self.release_held();
    }

    /// Whether any partition (pair or split) is in place.
    pub fn is_partitioned(&self) -> bool {
        self.split.is_some() || !self.pairs.is_empty()
    }

    /// Makes node `index` refuse (or accept again) incoming connections.
    pub fn set_refusing(&mut self, index: NodeIndex, refusing: bool) {
        if refusing {
            self.refusing.insert(index);
        } else {
            self.refusing.remove(&index);
        }
    }

    /// Makes node `index`'s listener swallow dials (or answer again): a dial to it never
    /// completes, so the dialer's dial timeout must fire.
    pub fn set_swallowing_dials(&mut self, index: NodeIndex, swallowing: bool) {
        if swallowing {
            self.swallowing.insert(index);
        } else {
            self.swallowing.remove(&index);
        }
    }

    /// Resets every link of node `index` (both ends see the connection close).
    pub fn reset_links(&mut self, index: NodeIndex) {
        for conn in self.connections(index) {
            self.reset_end(End { node: index, conn });
        }
    }

    /// The connections of node `index` the network knows (open or opening).
    pub fn connections(&self, index: NodeIndex) -> Vec<ConnId> {
        self.ends_of(index).map(|end| end.conn).collect()
    }

    /// Resets one connection of node `index`; both ends see it close at once, bytes in
    /// flight are lost.
    pub fn reset_connection(&mut self, index: NodeIndex, conn: ConnId) {
        self.reset_end(End { node: index, conn });
    }

    /// Advances virtual time by `by` at once, as a paused VM resuming: every timer and
    /// delivery that fell due meanwhile happens late, at the new time, in its order.
    pub fn jump_clock(&mut self, by: Duration) {
        self.now = self.now.saturating_add(by);
    }

    /// Sets how a crashed node's state is saved and a restarted node's restored: `save`
    /// runs at [`Sim::crash`] on the node's router, its bytes go in [`Crashed::persisted`],
    /// and `restore` gets them at [`Sim::restart`], on the rebuilt router. Nodes without a
    /// router ([`SimRouter`]) persist nothing. With discovery's address book:
    ///
    /// ```
    /// # use switchboard_sim::{Sim, SimConfig};
    /// use switchboard::discovery::Discovery;
    ///
    /// # let mut sim = Sim::new(SimConfig::with_seed(1));
    /// sim.set_persistence(
    ///     Box::new(|router, now| {
    ///         let discovery = router.id_of::<Discovery>().and_then(|id| router.protocol(id));
    ///         discovery.map_or_else(Vec::new, |discovery| discovery.addr_book_bytes(now))
    ///     }),
    ///     Box::new(|router, now, bytes| {
    ///         if let Some(id) = router.id_of::<Discovery>() {
    ///             let _ = router.with_protocol(now, id, |discovery, _| {
    ///                 discovery.load_addr_book(now, bytes)
    ///             });
    ///         }
    ///     }),
    /// );
    /// ```
    ///
    /// (A real process persists periodically; saving at the crash is its best case —
    /// replace `persisted` to model a lost write.)
    pub fn set_persistence(&mut self, save: SaveHook, restore: RestoreHook) {
        self.save = Some(save);
        self.restore = Some(restore);
    }

    /// Crashes node `index`: it stops at once, its far ends see their links reset one
    /// latency later, and nothing is delivered to it until [`Sim::restart`].
    pub fn crash(&mut self, index: NodeIndex) -> Result<Crashed, SimError> {
        let slot = self.nodes.get(index).ok_or(SimError::NoSuchNode(index))?;
        if !slot.alive {
            return Err(SimError::NotAlive(index));
        }
        self.settle();
        self.account_crash(index);
        let now = self.now;
        let router = self.nodes[index].host.as_any().downcast_ref::<SimRouter>();
        let persisted = self
            .save
            .as_mut()
            .zip(router)
            .map(|(save, router)| save(router, now));
        let ends: Vec<End> = self.ends_of(index).collect();
        for end in ends {
            let Some(state) = self.ends.remove(&end) else {
                continue;
            };
            if state.reset {
                continue;
            }
            if let Some(peer) = state.peer
                && let Some(far) = self.ends.get_mut(&peer)
                && far.link == state.link
                && !far.reset
            {
                far.reset = true;
                let at = self.now.saturating_add(state.latency);
                self.queue.push(
                    at,
                    Event::Deliver {
                        to: peer,
                        link: state.link,
                        what: Delivery::Closed,
                    },
                );
            }
        }
        let slot = &mut self.nodes[index];
        slot.alive = false;
        slot.armed = None;
        if slot.full {
            slot.full = false;
            self.full -= 1;
        }
        self.alive -= 1;
        self.update_outbound_full();
        Ok(Crashed { index, persisted })
    }

    /// Restarts a crashed node with the same key, address and config; if persistence is
    /// set and `crashed.persisted` holds bytes, the restore hook loads them first.
    pub fn restart(&mut self, crashed: Crashed) -> Result<NodeIndex, SimError> {
        let config = self
            .nodes
            .get(crashed.index)
            .ok_or(SimError::NoSuchNode(crashed.index))?
            .config
            .clone();
        self.restart_with(crashed, config)
    }

    /// Restarts a crashed node with the same key and address and a new config.
    pub fn restart_with(
        &mut self,
        crashed: Crashed,
        mut config: NodeConfig,
    ) -> Result<NodeIndex, SimError> {
        let index = crashed.index;
        let slot = self.nodes.get(index).ok_or(SimError::NoSuchNode(index))?;
        if slot.alive {
            return Err(SimError::NotAlive(index));
        }
        let restarts = slot.restarts + 1;
        config.listen_addr = Some(SocketAddr::new(slot.ip, PORT));
        let rng = self.node_rng(index, restarts);
        let node = Node::new(self.now, config.clone(), slot.keypair.clone(), rng)
            .map_err(SimError::Config)?;
        let now = self.now;
        let slot = &mut self.nodes[index];
        slot.host = host(node, now, slot.build.as_mut());
        let router = slot.host.as_any_mut().downcast_mut::<SimRouter>();
        if let (Some(restore), Some(router), Some(bytes)) =
            (self.restore.as_mut(), router, crashed.persisted.as_ref())
        {
            restore(router, now, bytes);
        }
        slot.seed_mode = runs_seed_mode(&slot.host);
        slot.config = config;
        slot.alive = true;
        slot.polling = true;
        slot.restarts = restarts;
        self.alive += 1;
        self.mark(index);
        self.update_outbound_full();
        Ok(index)
    }
}
