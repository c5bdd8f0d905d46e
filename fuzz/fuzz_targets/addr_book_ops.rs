//! An `AddrBook` with tiny tables driven by an arbitrary sequence of what a node does with
//! it: addresses relayed by a few sources, dials, successes, failures, removals, collision
//! tests answered or left to time out, clock steps, selections, PEX samples, and save/load.
//!
//! After every step the book's internal invariants hold (`check_invariants`: index, slots,
//! lists and collisions agree, every entry where its hash puts it, tables within their
//! room); `select` returns only known addresses its filter accepts; `sample` returns at
//! most `max` distinct, known, accepted addresses; and a saved book loads to a book that
//! saves to the same bytes.
#![no_main]

use std::net::{IpAddr, SocketAddr};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use switchboard::addr_book::{AddrBook, AddrBookConfig};
use switchboard::{Instant, NetAddress, PeerId};

/// One of a few hundred addresses in a handful of groups, IPv4 (some mapped) and IPv6.
#[derive(Arbitrary, Debug, Clone, Copy)]
struct Addr {
    group: u8,
    host: u8,
    port: u8,
}

impl Addr {
    fn socket(self) -> SocketAddr {
        let ip: IpAddr = match self.group % 6 {
            0 => [203, 0, 113, self.host % 8].into(),
            1 => [198, 51, self.host % 4, 1].into(),
            2 => [10, 0, 0, self.host % 8].into(),
            3 => IpAddr::from([0, 0, 0, 0, 0, 0xffff, 0xcb00, u16::from(self.host % 8)]),
            4 => IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(self.host % 8)]),
            _ => [self.host, 1, 2, 3].into(),
        };
        SocketAddr::new(ip, u16::from(self.port % 4))
    }

    fn net(self, id: Option<u8>) -> NetAddress {
        NetAddress::new(id.map(|b| PeerId::from_bytes([b; 32])), self.socket())
    }
}

#[derive(Arbitrary, Debug)]
enum Op {
    Add {
        addr: Addr,
        source: Option<Addr>,
        id: Option<u8>,
    },
    Attempt(Addr),
    Good {
        addr: Addr,
        id: Option<u8>,
    },
    Failed(Addr),
    Remove(Addr),
    /// Test a collision's occupant: it answers, fails, or stays silent.
    PollCollision(Option<bool>),
    Tick(u16),
    Timeout,
    Select(u8),
    Sample {
        max: u8,
        reject: u8,
    },
    SaveLoad,
}

/// Accepts an address unless its port and host hash to `reject`'s residue.
fn accepts(reject: u8, address: &NetAddress) -> bool {
    reject == 0 || (address.socket_addr().port() as u8 ^ reject) % 3 != 0
}

fuzz_target!(|ops: Vec<Op>| {
    let config = AddrBookConfig {
        new_buckets: 4,
        tried_buckets: 2,
        bucket_size: 2,
        new_buckets_per_source_group: 2,
        tried_buckets_per_group: 1,
        max_collisions: 2,
        ..AddrBookConfig::default()
    };
    let mut book = AddrBook::new([5; 32], config);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut now = Instant::from_nanos(0);
    for op in ops.into_iter().take(512) {
        match op {
            Op::Add { addr, source, id } => {
                let _ = book.add(addr.net(id), source.map(|s| s.socket().ip()), now);
            }
            Op::Attempt(addr) => {
                book.mark_attempt(&addr.socket(), now);
            }
            Op::Good { addr, id } => {
                let _ = book.mark_good(&addr.net(id), now);
            }
            Op::Failed(addr) => {
                book.mark_failed(&addr.socket(), now);
            }
            Op::Remove(addr) => {
                let known = book.contains(&addr.socket());
                assert_eq!(book.remove(&addr.socket()), known);
                assert!(!book.contains(&addr.socket()));
            }
            Op::PollCollision(answer) => {
                if let Some(occupant) = book.poll_collision() {
                    match answer {
                        Some(true) => {
                            let _ = book.mark_good(&occupant, now);
                        }
                        Some(false) => {
                            book.mark_failed(&occupant.socket_addr(), now);
                        }
                        None => {}
                    }
                }
            }
            Op::Tick(seconds) => {
                now = now + std::time::Duration::from_secs(u64::from(seconds) * 60);
            }
            Op::Timeout => {
                book.handle_timeout(now);
                assert!(book.poll_timeout().is_none_or(|deadline| deadline > now));
            }
            Op::Select(reject) => {
                if let Some(picked) = book.select(&mut rng, now, |a| accepts(reject, a)) {
                    assert!(accepts(reject, &picked));
                    assert_eq!(
                        book.get(&picked.socket_addr()).map(|info| info.address),
                        Some(picked)
                    );
                }
            }
            Op::Sample { max, reject } => {
                let max = usize::from(max % 16);
                let sample = book.sample(&mut rng, now, max, |a| accepts(reject, a));
                assert!(sample.len() <= max);
                let distinct: std::collections::BTreeSet<_> = sample.iter().collect();
                assert_eq!(distinct.len(), sample.len());
                for address in &sample {
                    assert!(accepts(reject, address));
                    assert!(book.contains(&address.socket_addr()));
                }
            }
            Op::SaveLoad => {
                let bytes = book.to_bytes(now);
                let loaded = AddrBook::from_bytes(config, &bytes, now).expect("a saved book loads");
                assert_eq!(loaded.len(), book.len());
                assert_eq!(loaded.to_bytes(now), bytes);
                book = loaded;
            }
        }
        book.check_invariants();
    }
});
