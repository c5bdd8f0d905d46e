//! Criterion benches of the address book with 1,000 and with 100,000 addresses (a tenth of
//! them tried), under one configuration large enough for both (2,048 new and 512 tried
//! buckets of 64): what the node pays per address learnt (`add_known`: a relayed address
//! already known; `add_remove`: a fresh one stored or refused, then forgotten), per
//! connection (`mark_good_tried`: a peer we knew reconnects; `good_cycle`: a fresh address
//! added, connected to — moved to tried, or a collision — and forgotten), per dial
//! (`select`) and per PEX reply (`sample_250`). Slots are computed and the index is a hash
//! map, so the 100,000-address times should stay within a small factor (cache misses) of
//! the 1,000-address ones.

use std::hint::black_box;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use switchboard::addr_book::{AddOutcome, AddrBook, AddrBookConfig, GoodOutcome, Table};
use switchboard::{Instant, NetAddress};

fn config() -> AddrBookConfig {
    AddrBookConfig {
        new_buckets: 2048,
        tried_buckets: 512,
        bucket_size: 64,
        ..AddrBookConfig::default()
    }
}

fn random_ip(rng: &mut ChaCha8Rng) -> IpAddr {
    let [a, b, c, d] = rng.next_u32().to_be_bytes();
    IpAddr::from([a % 223 + 1, b, c, d])
}

fn random_address(rng: &mut ChaCha8Rng) -> NetAddress {
    let port = 1024 + (rng.next_u32() % 60_000) as u16;
    NetAddress::new(None, SocketAddr::new(random_ip(rng), port))
}

/// A book of `size` addresses, a tenth of them tried, and the addresses it holds.
fn filled(size: usize, rng: &mut ChaCha8Rng) -> (AddrBook, Vec<NetAddress>) {
    let now = Instant::from_nanos(0);
    let mut book = AddrBook::new([1; 32], config());
    let mut known = Vec::with_capacity(size);
    while book.len() < size {
        let address = random_address(rng);
        let source = random_ip(rng);
        if book.add(address, Some(source), now) == AddOutcome::Added {
            known.push(address);
        }
    }
    let mut promoted = 0;
    for address in &known {
        if promoted >= size / 10 {
            break;
        }
        if book.mark_good(address, now) == GoodOutcome::Tried {
            promoted += 1;
        }
    }
    assert_eq!(book.len(), size);
    assert_eq!(book.tried_len(), size / 10);
    (book, known)
}

fn addr_book(c: &mut Criterion) {
    let mut group = c.benchmark_group("addr_book");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    let later = Instant::from_nanos(3_600_000_000_000);

    for size in [1_000usize, 100_000] {
        let mut rng = ChaCha8Rng::seed_from_u64(size as u64);
        let (mut book, known) = filled(size, &mut rng);
        let pick = |rng: &mut ChaCha8Rng| known[(rng.next_u64() % known.len() as u64) as usize];

        group.bench_with_input(BenchmarkId::new("add_known", size), &size, |b, _| {
            b.iter(|| {
                let address = pick(&mut rng);
                black_box(book.add(address, Some(random_ip(&mut rng)), later))
            })
        });
        group.bench_with_input(BenchmarkId::new("add_remove", size), &size, |b, _| {
            b.iter(|| {
                let address = random_address(&mut rng);
                let outcome = book.add(address, Some(random_ip(&mut rng)), later);
                book.remove(&address.socket_addr());
                black_box(outcome)
            })
        });
        group.bench_with_input(BenchmarkId::new("select", size), &size, |b, _| {
            b.iter(|| black_box(book.select(&mut rng, later, |_| true)))
        });
        group.bench_with_input(BenchmarkId::new("sample_250", size), &size, |b, _| {
            b.iter(|| black_box(book.sample(&mut rng, later, 250, |_| true).len()))
        });
        let tried: Vec<NetAddress> = known
            .iter()
            .copied()
            .filter(|a| {
                book.get(&a.socket_addr())
                    .is_some_and(|info| info.table == Table::Tried)
            })
            .collect();
        group.bench_with_input(BenchmarkId::new("mark_good_tried", size), &size, |b, _| {
            b.iter(|| {
                let address = tried[(rng.next_u64() % tried.len() as u64) as usize];
                black_box(book.mark_good(&address, later))
            })
        });
        group.bench_with_input(BenchmarkId::new("good_cycle", size), &size, |b, _| {
            b.iter(|| {
                let address = random_address(&mut rng);
                let _ = book.add(address, Some(random_ip(&mut rng)), later);
                let outcome = book.mark_good(&address, later);
                book.remove(&address.socket_addr());
                black_box(outcome)
            })
        });
        assert_eq!(book.len(), size, "the benches keep the book's size");
    }
    group.finish();
}

criterion_group!(benches, addr_book);
criterion_main!(benches);
