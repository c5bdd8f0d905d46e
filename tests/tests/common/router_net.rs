//! [`Router`]s wired to each other in memory: one thread, a virtual clock, bytes delivered
//! at once. Enough to run application protocols over hundreds of nodes deterministically.

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use switchboard::node::{Action, ConnId, Node, NodeConfig, NodeEvent};
use switchboard::router::Router;
use switchboard::{Instant, Keypair, NetAddress};

pub const PORT: u16 = 26656;

/// Node `index`'s IP: a /16 of its own.
pub fn ip(index: usize) -> IpAddr {
    let [high, low] = u16::try_from(index).unwrap().to_be_bytes();
    IpAddr::V4(Ipv4Addr::new(10 + high, low, 0, 1))
}

pub struct RouterNet {
    pub routers: Vec<Router<ChaCha20Rng>>,
    /// The events each node's router handed to its application.
    pub logs: Vec<Vec<NodeEvent>>,
    pub now: Instant,
    seed: u64,
    links: BTreeMap<(usize, ConnId), (usize, ConnId)>,
    work: VecDeque<usize>,
    queued: Vec<bool>,
    wire: Vec<u8>,
}

impl RouterNet {
    pub fn new(seed: u64) -> Self {
        RouterNet {
            routers: Vec::new(),
            logs: Vec::new(),
            now: Instant::from_nanos(1_000_000_000),
            seed,
            links: BTreeMap::new(),
            work: VecDeque::new(),
            queued: Vec::new(),
            wire: Vec::new(),
        }
    }

    /// Adds a node; `register` registers its protocols (the router is started after).
    pub fn add(
        &mut self,
        mut config: NodeConfig,
        register: impl FnOnce(&mut Router<ChaCha20Rng>),
    ) -> usize {
        let index = self.routers.len();
        let mut rng = ChaCha20Rng::seed_from_u64(self.seed ^ ((index as u64 + 1) * 0x9E37_79B9));
        let keypair = Keypair::generate(&mut rng);
        config.listen_addr = Some(SocketAddr::new(ip(index), PORT));
        let node = Node::new(self.now, config, keypair, rng).unwrap();
        let mut router = Router::new(node);
        register(&mut router);
        router.start(self.now);
        self.routers.push(router);
        self.logs.push(Vec::new());
        self.queued.push(false);
        self.mark(index);
        index
    }

    pub fn address(&self, index: usize) -> NetAddress {
        NetAddress::new(
            Some(self.routers[index].node().peer_id()),
            SocketAddr::new(ip(index), PORT),
        )
    }

    pub fn dial(&mut self, from: usize, to: usize) {
        let addr = self.address(to);
        let now = self.now;
        self.routers[from].node_mut().dial(now, addr).unwrap();
        self.mark(from);
    }

    pub fn mark(&mut self, index: usize) {
        if !self.queued[index] {
            self.queued[index] = true;
            self.work.push_back(index);
        }
    }

    /// Runs until nothing moves at the current instant.
    pub fn run(&mut self) {
        loop {
            while let Some(index) = self.work.pop_front() {
                self.queued[index] = false;
                self.drain(index);
            }
            let now = self.now;
            let mut fired = false;
            for index in 0..self.routers.len() {
                if self.routers[index]
                    .poll_timeout()
                    .is_some_and(|deadline| deadline <= now)
                {
                    self.routers[index].handle_timeout(now);
                    self.mark(index);
                    fired = true;
                }
            }
            if !fired {
                return;
            }
        }
    }

    /// Advances virtual time in steps of `tick`, running the network after each.
    pub fn advance(&mut self, duration: Duration, tick: Duration) {
        let end = self.now.saturating_add(duration);
        self.run();
        while self.now < end {
            self.now = self.now.saturating_add(tick).min(end);
            self.run();
        }
    }

    fn drain(&mut self, index: usize) {
        let now = self.now;
        loop {
            let mut moved = false;
            while let Some(action) = self.routers[index].node_mut().poll_action() {
                moved = true;
                self.act(index, action);
            }
            self.wire.clear();
            while let Some(conn) = self.routers[index]
                .node_mut()
                .poll_transmit(now, &mut self.wire)
            {
                moved = true;
                if let Some(&(other, their)) = self.links.get(&(index, conn)) {
                    self.routers[other]
                        .node_mut()
                        .handle_input(now, their, &self.wire);
                    self.mark(other);
                }
                self.wire.clear();
            }
            while let Some(event) = self.routers[index].poll_event(now) {
                moved = true;
                self.logs[index].push(event);
            }
            if !moved {
                return;
            }
        }
    }

    fn act(&mut self, index: usize, action: Action) {
        let now = self.now;
        match action {
            Action::Dial { conn, addr } => {
                let target = (0..self.routers.len()).find(|&i| ip(i) == addr.ip());
                let remote = SocketAddr::new(ip(index), 40_000 + (conn.0 % 20_000) as u16);
                let accepted = target.and_then(|target| {
                    self.routers[target]
                        .node_mut()
                        .handle_accepted(now, remote)
                        .ok()
                        .map(|their| (target, their))
                });
                match accepted {
                    Some((target, their)) => {
                        self.links.insert((index, conn), (target, their));
                        self.links.insert((target, their), (index, conn));
                        self.routers[index].node_mut().handle_connected(now, conn);
                        self.mark(target);
                    }
                    None => self.routers[index].node_mut().handle_closed(now, conn),
                }
            }
            Action::Close { conn } => {
                if let Some((other, their)) = self.links.remove(&(index, conn)) {
                    self.links.remove(&(other, their));
                    self.routers[other].node_mut().handle_closed(now, their);
                    self.mark(other);
                }
            }
        }
    }
}
