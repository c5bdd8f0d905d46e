use super::choose::{SELECT_PROBES, SELECT_SCAN};
use super::*;
use alloc::collections::BTreeSet;
use alloc::string::ToString;
use alloc::vec;
use blake2::Blake2b;
use blake2::digest::Digest;
use blake2::digest::consts::U32;
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

use crate::identity::PeerId;

const KEY: [u8; 32] = [7; 32];

fn secs(s: u64) -> Instant {
    Instant::from_nanos(s * 1_000_000_000)
}

fn ip(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::from([a, b, c, d])
}

fn addr(a: u8, b: u8, c: u8, d: u8) -> NetAddress {
    NetAddress::new(None, SocketAddr::new(ip(a, b, c, d), 26656))
}

fn sock(a: u8, b: u8, c: u8, d: u8) -> SocketAddr {
    addr(a, b, c, d).socket_addr()
}

/// The book's defaults on a local network: most tests use private addresses.
fn local() -> AddrBookConfig {
    AddrBookConfig {
        routable_only: false,
        ..AddrBookConfig::default()
    }
}

fn book() -> AddrBook {
    AddrBook::new(KEY, local())
}

/// One slot per bucket and a single tried bucket: every tried address collides.
fn collision_book() -> AddrBook {
    AddrBook::new(
        KEY,
        AddrBookConfig {
            tried_buckets: 1,
            bucket_size: 1,
            ..local()
        },
    )
}

/// A routable IPv4 address from 32 random bits (first octet 1..=223, never 10/127/100).
fn random_public(rng: &mut ChaCha8Rng) -> NetAddress {
    let [a, b, c, d] = rng.next_u32().to_be_bytes();
    let first = match a % 223 + 1 {
        10 | 100 | 127 | 169 | 172 | 192 => 11,
        other => other,
    };
    NetAddress::new(
        None,
        SocketAddr::new(ip(first, b, c, d), 1024 + u16::from(d)),
    )
}

fn occupied_buckets(slots: &Slots) -> usize {
    slots
        .buckets
        .iter()
        .filter(|bucket| bucket.iter().any(|&id| id != EMPTY))
        .count()
}

#[test]
fn invalid_addresses_are_refused_and_a_mapped_ipv4_is_one_address() {
    let mut book = book();
    let now = secs(0);
    for text in [
        "10.0.0.1:0",
        "0.0.0.0:1",
        "[::]:1",
        "224.0.0.1:1",
        "255.255.255.255:1",
    ] {
        let socket: SocketAddr = text.parse().unwrap();
        assert_eq!(
            book.add(NetAddress::new(None, socket), None, now),
            AddOutcome::Invalid,
            "{text}"
        );
    }
    assert_eq!(book.add(addr(10, 0, 0, 1), None, now), AddOutcome::Added);
    assert_eq!(book.add(addr(127, 0, 0, 1), None, now), AddOutcome::Added);
    let mapped: SocketAddr = "[::ffff:10.0.0.1]:26656".parse().unwrap();
    assert_eq!(
        book.add(NetAddress::new(None, mapped), None, now),
        AddOutcome::AlreadyKnown
    );
    assert!(book.contains(&mapped));
    assert_eq!(
        book.get(&mapped).unwrap().address.socket_addr(),
        sock(10, 0, 0, 1)
    );
    assert_eq!(book.len(), 2);
    book.check_invariants();
}

#[test]
fn groups_are_16_and_32_bit_prefixes_and_local_addresses_stand_alone() {
    let group = |text: &str| address_group(text.parse().unwrap());
    assert_eq!(group("203.0.113.7"), AddressGroup::Ipv4([203, 0]));
    assert_eq!(group("203.0.200.1"), group("203.0.113.7"));
    assert_ne!(group("203.1.113.7"), group("203.0.113.7"));
    assert_eq!(group("::ffff:203.0.9.9"), group("203.0.113.7"));
    assert_eq!(group("2001:db8:1::1"), group("2001:db8:ffff::2"));
    assert_eq!(group("2001:db8:1::1").to_string(), "2001:db8::/32");
    assert_ne!(group("2001:db9::1"), group("2001:db8::1"));
    assert_eq!(group("100.128.0.1"), AddressGroup::Ipv4([100, 128]));
    for local in [
        "10.0.0.1",
        "127.0.0.1",
        "192.168.1.1",
        "100.64.1.1",
        "169.254.0.1",
        "::1",
        "fd00::1",
        "fe80::1",
    ] {
        assert!(!group(local).is_routable(), "{local}");
        assert_eq!(group(local), AddressGroup::Local(local.parse().unwrap()));
    }
    assert_ne!(group("10.0.0.1"), group("10.0.0.2"));
    assert!(group("8.8.8.8").is_routable());
}

#[test]
fn one_hundred_thousand_addresses_from_two_source_groups_fill_at_most_32_new_buckets() {
    let mut book = book();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let now = secs(0);
    for i in 0..100_000u32 {
        let [_, _, c, d] = i.to_be_bytes();
        let source = if i % 2 == 0 {
            ip(198, 51, c, d)
        } else {
            ip(203, 0, d, c)
        };
        let _ = book.add(random_public(&mut rng), Some(source), now);
    }
    let per_source = book.config.new_buckets_per_source_group;
    assert!(
        occupied_buckets(&book.new) <= 2 * per_source,
        "{} buckets",
        occupied_buckets(&book.new)
    );
    assert!(book.new_len() <= 2 * per_source * book.config.bucket_size);
    assert_eq!(book.tried_len(), 0);

    // An honest source in another group still gets its addresses in.
    let added = (0..100)
        .filter(|_| {
            book.add(random_public(&mut rng), Some(ip(8, 8, 8, 8)), now) == AddOutcome::Added
        })
        .count();
    assert!(added >= 60, "{added} of 100 honest addresses stored");
    book.check_invariants();
}

#[test]
fn an_attacker_with_two_groups_and_1000_connections_fills_at_most_8_tried_buckets() {
    let mut book = book();
    let now = secs(0);
    for i in 0..1000u32 {
        let [_, _, c, d] = i.to_be_bytes();
        let address = if i % 2 == 0 {
            addr(198, 51, c, d)
        } else {
            addr(203, 0, c, d)
        };
        let _ = book.mark_good(&address, now);
        // Every collision test fails: the attacker's addresses take every slot they can.
        while let Some(occupant) = book.poll_collision() {
            book.mark_failed(&occupant.socket_addr(), now);
        }
    }
    let per_group = book.config.tried_buckets_per_group;
    assert!(occupied_buckets(&book.tried) <= 2 * per_group);
    assert!(book.tried_len() <= 2 * per_group * book.config.bucket_size);
    // In new, with no source, each group is its own source: 16 buckets each.
    assert!(occupied_buckets(&book.new) <= 2 * book.config.new_buckets_per_source_group);
    book.check_invariants();
}

#[test]
fn tried_addresses_survive_any_number_of_new_ones() {
    let mut book = book();
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let now = secs(0);
    let mut tried = Vec::new();
    for _ in 0..200 {
        let address = random_public(&mut rng);
        if book.mark_good(&address, now) == GoodOutcome::Tried {
            tried.push(address);
        }
    }
    assert!(tried.len() >= 190, "{}", tried.len());
    let before: Vec<_> = tried
        .iter()
        .map(|a| book.get(&a.socket_addr()).unwrap())
        .collect();
    for _ in 0..100_000 {
        let source = random_public(&mut rng).socket_addr().ip();
        let _ = book.add(random_public(&mut rng), Some(source), secs(1));
    }
    let after: Vec<_> = tried
        .iter()
        .map(|a| book.get(&a.socket_addr()).unwrap())
        .collect();
    assert_eq!(before, after);
    assert_eq!(book.tried_len(), tried.len());
    assert!(book.new_len() <= book.config.new_capacity());
    book.check_invariants();
}

#[test]
fn test_before_evict_keeps_an_occupant_that_answers() {
    let mut book = collision_book();
    let (old, new) = (addr(1, 0, 0, 1), addr(2, 0, 0, 1));
    assert_eq!(book.mark_good(&old, secs(0)), GoodOutcome::Tried);
    assert_eq!(book.mark_good(&new, secs(10)), GoodOutcome::Collision(old));
    assert_eq!(book.get(&new.socket_addr()).unwrap().table, Table::New);
    assert_eq!(
        book.collisions().collect::<Vec<_>>(),
        vec![TriedCollision {
            candidate: new,
            occupant: old,
            deadline: secs(310),
            tested: false,
        }]
    );
    assert_eq!(book.poll_timeout(), Some(secs(310)));
    assert_eq!(book.poll_collision(), Some(old));
    assert_eq!(book.poll_collision(), None, "handed out once");
    // Asking again while the test runs changes nothing.
    assert_eq!(book.mark_good(&new, secs(11)), GoodOutcome::Collision(old));

    let id = PeerId::from_bytes([9; 32]);
    assert_eq!(
        book.mark_good(&old.with_peer_id(id), secs(20)),
        GoodOutcome::Tried
    );
    assert_eq!(book.collisions().count(), 0);
    assert_eq!(book.poll_timeout(), None);
    let old_info = book.get(&old.socket_addr()).unwrap();
    assert_eq!(old_info.table, Table::Tried);
    assert_eq!(old_info.address.peer_id(), Some(id));
    assert_eq!(old_info.last_success, Some(secs(20)));
    assert_eq!(book.get(&new.socket_addr()).unwrap().table, Table::New);
    assert_eq!(book.handle_timeout(secs(1000)), 0);
    book.check_invariants();
}

#[test]
fn test_before_evict_replaces_an_occupant_that_fails_or_stays_silent() {
    let mut book = collision_book();
    let (a, b, c) = (addr(1, 0, 0, 1), addr(2, 0, 0, 1), addr(3, 0, 0, 1));
    assert_eq!(book.mark_good(&a, secs(0)), GoodOutcome::Tried);
    assert_eq!(book.mark_good(&b, secs(1)), GoodOutcome::Collision(a));
    assert_eq!(book.poll_collision(), Some(a));
    assert!(book.mark_failed(&a.socket_addr(), secs(2)));
    assert_eq!(book.get(&b.socket_addr()).unwrap().table, Table::Tried);
    let evicted = book.get(&a.socket_addr()).unwrap();
    assert_eq!((evicted.table, evicted.failures), (Table::New, 1));
    assert_eq!(book.collisions().count(), 0);
    book.check_invariants();

    // C collides with B, and B never answers.
    assert_eq!(book.mark_good(&c, secs(100)), GoodOutcome::Collision(b));
    let deadline = secs(400);
    assert_eq!(book.poll_timeout(), Some(deadline));
    assert_eq!(book.handle_timeout(secs(399)), 0);
    assert_eq!(book.get(&b.socket_addr()).unwrap().table, Table::Tried);
    assert_eq!(book.handle_timeout(deadline), 1);
    assert_eq!(book.get(&c.socket_addr()).unwrap().table, Table::Tried);
    assert_eq!(book.get(&b.socket_addr()).unwrap().table, Table::New);
    assert_eq!(book.poll_timeout(), None);
    book.check_invariants();
}

#[test]
fn a_terrible_occupant_is_evicted_without_a_test_and_collisions_are_bounded() {
    let mut book = AddrBook::new(
        KEY,
        AddrBookConfig {
            tried_buckets: 1,
            bucket_size: 1,
            max_collisions: 2,
            ..local()
        },
    );
    let occupant = addr(1, 0, 0, 1);
    assert_eq!(book.mark_good(&occupant, secs(0)), GoodOutcome::Tried);
    // Ten failures over seven and a half days: terrible once the last is a minute old.
    for i in 0..10 {
        book.mark_failed(&occupant.socket_addr(), secs(i * 20 * 3600));
    }
    let later = secs(8 * 24 * 3600);
    let first = addr(2, 0, 0, 1);
    assert_eq!(book.mark_good(&first, later), GoodOutcome::Tried);
    assert_eq!(book.get(&occupant.socket_addr()).unwrap().table, Table::New);

    let candidates = [addr(3, 0, 0, 1), addr(4, 0, 0, 1), addr(5, 0, 0, 1)];
    for candidate in candidates {
        assert_eq!(book.add(candidate, None, later), AddOutcome::Added);
    }
    let outcomes: Vec<_> = candidates
        .iter()
        .map(|c| book.mark_good(c, later))
        .collect();
    assert_eq!(
        outcomes,
        [
            GoodOutcome::Collision(first),
            GoodOutcome::Collision(first),
            GoodOutcome::Deferred
        ]
    );
    assert_eq!(book.collisions().count(), 2);
    book.check_invariants();
    // One failure of the occupant settles both: the oldest candidate moves in.
    assert_eq!(book.poll_collision(), Some(first));
    assert_eq!(book.poll_collision(), None);
    assert!(book.mark_failed(&first.socket_addr(), later));
    assert_eq!(
        book.get(&candidates[0].socket_addr()).unwrap().table,
        Table::Tried
    );
    assert_eq!(book.collisions().count(), 0);
    book.check_invariants();
}

#[test]
fn terrible_addresses_give_way_in_new_and_others_do_not() {
    let mut book = collision_book();
    let source = Some(ip(8, 8, 8, 8));
    let first = addr(1, 0, 0, 1);
    assert_eq!(book.add(first, source, secs(0)), AddOutcome::Added);
    let slot = book.new_slot(first.socket_addr(), source);
    let rival = (2..=255u8)
        .map(|a| addr(a, 0, 0, 1))
        .find(|a| book.new_slot(a.socket_addr(), source) == slot)
        .expect("some address shares the slot");
    assert_eq!(book.add(rival, source, secs(1)), AddOutcome::BucketFull);
    for _ in 0..3 {
        book.mark_failed(&first.socket_addr(), secs(2));
    }
    // Not terrible while just attempted.
    assert_eq!(book.add(rival, source, secs(3)), AddOutcome::BucketFull);
    assert_eq!(book.add(rival, source, secs(70)), AddOutcome::Added);
    assert!(!book.contains(&first.socket_addr()));
    book.check_invariants();
}

#[test]
fn select_prefers_tried_and_never_returns_filtered_addresses() {
    let mut book = book();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    assert_eq!(book.select(&mut rng, secs(0), |_| true), None);
    for a in 1..=20u8 {
        assert_eq!(
            book.mark_good(&addr(a, 1, 0, 1), secs(0)),
            GoodOutcome::Tried
        );
    }
    while book.new_len() < 2000 {
        let source = random_public(&mut rng).socket_addr().ip();
        let _ = book.add(random_public(&mut rng), Some(source), secs(0));
    }
    let now = secs(61);
    let from_tried =
        |book: &AddrBook, rng: &mut ChaCha8Rng, filter: &dyn Fn(&NetAddress) -> bool| {
            let mut tried = 0;
            for _ in 0..10_000 {
                let picked = book.select(rng, now, filter).expect("eligible ones exist");
                assert!(filter(&picked), "{picked} was filtered");
                if book.get(&picked.socket_addr()).expect("known").table == Table::Tried {
                    tried += 1;
                }
            }
            tried
        };
    // 20 of 2,020 addresses are tried, and half the draws look there first.
    let tried = from_tried(&book, &mut rng, &|_| true);
    assert!(
        (4500..5500).contains(&tried),
        "{tried} of 10,000 from tried"
    );
    // Rejecting one tried address and the new ones on odd ports: a draw in new fails half
    // the time, so tried's share rises to 2/3.
    let banned = addr(1, 1, 0, 1);
    let filter = |a: &NetAddress| *a != banned && a.socket_addr().port().is_multiple_of(2);
    let tried = from_tried(&book, &mut rng, &filter);
    assert!(
        (6000..7300).contains(&tried),
        "{tried} of 10,000 from tried"
    );
    assert_eq!(book.select(&mut rng, now, |_| false), None);
}

#[test]
fn select_skips_recent_attempts_prefers_fewer_failures_and_bounds_its_work() {
    let mut book = book();
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let (fresh, failing) = (addr(1, 0, 0, 1), addr(2, 0, 0, 1));
    assert_eq!(book.add(fresh, None, secs(0)), AddOutcome::Added);
    assert_eq!(book.add(failing, None, secs(0)), AddOutcome::Added);
    assert!(book.mark_attempt(&fresh.socket_addr(), secs(0)));
    for _ in 0..8 {
        book.mark_failed(&failing.socket_addr(), secs(0));
    }
    assert_eq!(book.select(&mut rng, secs(59), |_| true), None);
    let mut fresh_count = 0;
    for _ in 0..1000 {
        if book.select(&mut rng, secs(60), |_| true) == Some(fresh) {
            fresh_count += 1;
        }
    }
    assert!(fresh_count > 800, "{fresh_count} of 1000");

    while book.len() < 10_000 {
        let source = random_public(&mut rng).socket_addr().ip();
        let _ = book.add(random_public(&mut rng), Some(source), secs(0));
    }
    let mut calls = 0;
    let picked = book.select(&mut rng, secs(100), |_| {
        calls += 1;
        false
    });
    assert_eq!(picked, None);
    assert!(calls <= SELECT_PROBES as usize + 2 * SELECT_SCAN, "{calls}");
    // A single eligible address among 10,000 is found when the scan reaches it or a draw
    // hits it; with few addresses the scan covers everything.
    let mut small = self::book();
    for d in 1..=50 {
        let _ = small.add(addr(10, 0, 0, d), None, secs(0));
    }
    let target = addr(10, 0, 0, 37);
    for _ in 0..100 {
        assert_eq!(
            small.select(&mut rng, secs(0), |a| *a == target),
            Some(target)
        );
    }
}

#[test]
fn sample_is_bounded_distinct_filtered_and_leaves_out_terrible_addresses() {
    let mut book = book();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let now = secs(0);
    while book.len() < 1000 {
        let source = random_public(&mut rng).socket_addr().ip();
        let _ = book.add(random_public(&mut rng), Some(source), now);
    }
    let sample = book.sample(&mut rng, now, 250, |_| true);
    assert_eq!(sample.len(), 250);
    let distinct: BTreeSet<_> = sample.iter().collect();
    assert_eq!(distinct.len(), 250);
    assert!(sample.iter().all(|a| book.contains(&a.socket_addr())));
    let odd = |a: &NetAddress| a.socket_addr().port() % 2 == 1;
    let filtered = book.sample(&mut rng, now, 250, odd);
    assert!(!filtered.is_empty() && filtered.len() <= 250);
    assert!(filtered.iter().all(odd));
    assert!(book.sample(&mut rng, now, 0, |_| true).is_empty());

    let mut small = self::book();
    for d in 1..=50 {
        let _ = small.add(addr(10, 0, 0, d), None, now);
    }
    let bad = sock(10, 0, 0, 7);
    for _ in 0..3 {
        small.mark_failed(&bad, now);
    }
    let later = secs(120);
    let all = small.sample(&mut rng, later, 250, |_| true);
    assert_eq!(all.len(), 49, "every address but the terrible one");
    assert!(all.iter().all(|a| a.socket_addr() != bad));
    // Random order: two samples of everything differ in order.
    assert_ne!(all, small.sample(&mut rng, later, 250, |_| true));
}

/// A book with every kind of field set.
fn varied_book(now: Instant) -> AddrBook {
    let mut book = book();
    let id = PeerId::from_bytes([3; 32]);
    let v6 = |text: &str| NetAddress::new(None, text.parse().unwrap());
    let _ = book.add(
        addr(203, 0, 113, 1).with_peer_id(id),
        Some(ip(8, 8, 8, 8)),
        secs(1),
    );
    let _ = book.add(
        v6("[2001:db8::1]:7000"),
        "2001:db9::2".parse().ok(),
        secs(2),
    );
    let _ = book.add(addr(198, 51, 100, 4), None, secs(3));
    let _ = book.add(addr(10, 0, 0, 9), Some(ip(10, 0, 0, 1)), secs(3));
    book.mark_attempt(&sock(198, 51, 100, 4), secs(4));
    book.mark_failed(&sock(10, 0, 0, 9), secs(5));
    let _ = book.mark_good(&addr(203, 0, 113, 1), secs(6));
    let _ = book.mark_good(&v6("[2001:db8::5]:7001").with_peer_id(id), secs(7));
    book.mark_failed(&sock(203, 0, 113, 1), now);
    assert_eq!((book.new_len(), book.tried_len()), (3, 2));
    book
}

#[test]
fn persistence_round_trips_every_field() {
    let now = secs(100);
    let book = varied_book(now);
    let bytes = book.to_bytes(now);
    let restored = AddrBook::from_bytes(local(), &bytes, now).unwrap();
    assert_eq!(restored.len(), book.len());
    for address in book.index.keys().map(|key| &key.0) {
        assert_eq!(restored.get(address), book.get(address), "{address}");
    }
    assert_eq!(restored.to_bytes(now), bytes);
    restored.check_invariants();

    // Loaded an hour later (another clock epoch, say): the same ages.
    let later = secs(3700);
    let shifted = AddrBook::from_bytes(local(), &bytes, later).unwrap();
    let info = shifted.get(&sock(203, 0, 113, 1)).unwrap();
    assert_eq!(info.last_success, Some(secs(6 + 3600)));
    assert_eq!(shifted.to_bytes(later), bytes);

    // Under a smaller configuration: slots recomputed, nothing above capacity.
    let small = AddrBookConfig {
        new_buckets: 4,
        tried_buckets: 2,
        bucket_size: 2,
        ..local()
    };
    let shrunk = AddrBook::from_bytes(small, &bytes, now).unwrap();
    assert!(shrunk.new_len() <= 8 && shrunk.tried_len() <= 4);
    shrunk.check_invariants();
}

#[test]
fn every_truncation_and_every_bit_flip_is_an_error() {
    let now = secs(100);
    let bytes = varied_book(now).to_bytes(now);
    let config = local();
    for len in 0..bytes.len() {
        let error = AddrBook::from_bytes(config, &bytes[..len], now).unwrap_err();
        assert!(!error.to_string().is_empty());
    }
    let mut flipped = bytes.clone();
    for bit in 0..bytes.len() * 8 {
        flipped[bit / 8] ^= 1 << (bit % 8);
        assert!(
            AddrBook::from_bytes(config, &flipped, now).is_err(),
            "bit {bit}"
        );
        flipped[bit / 8] ^= 1 << (bit % 8);
    }
    assert!(AddrBook::from_bytes(config, &flipped, now).is_ok());
}

/// `body` with its checksum appended.
fn sealed(body: &[u8]) -> Vec<u8> {
    let mut out = body.to_vec();
    out.extend_from_slice(&Blake2b::<U32>::digest(body));
    out
}

fn header(tried: u32, new: u32) -> Vec<u8> {
    let mut out = b"SBAB\x01".to_vec();
    out.extend_from_slice(&KEY);
    out.extend_from_slice(&tried.to_be_bytes());
    out.extend_from_slice(&new.to_be_bytes());
    out
}

/// A minimal IPv4 entry: flags 0, the address, last-seen age 0, no failures.
fn raw_entry(ip: [u8; 4], port: u16) -> Vec<u8> {
    let mut out = vec![0];
    out.extend_from_slice(&ip);
    out.extend_from_slice(&port.to_be_bytes());
    out.extend_from_slice(&[0; 12]);
    out
}

#[test]
fn malformed_books_are_typed_errors() {
    use AddrBookDecodeError::*;
    let config = AddrBookConfig {
        new_buckets: 2,
        tried_buckets: 1,
        bucket_size: 2,
        ..local()
    };
    let now = secs(0);
    let decode = |bytes: &[u8]| AddrBook::from_bytes(config, bytes, now).map(|book| book.len());
    let max = 45 + 6 * 95 + 32;
    assert_eq!(
        decode(&vec![0; max + 1]),
        Err(TooLarge { len: max + 1, max })
    );
    assert_eq!(decode(&[0; 10]), Err(TooShort { len: 10 }));
    assert_eq!(decode(&sealed(&header(0, 0))), Ok(0));
    let mut bad_magic = header(0, 0);
    bad_magic[0] = b'X';
    assert_eq!(decode(&sealed(&bad_magic)), Err(BadMagic));
    let mut version = header(0, 0);
    version[4] = 2;
    assert_eq!(decode(&sealed(&version)), Err(UnsupportedVersion(2)));
    let mut corrupt = sealed(&header(0, 0));
    corrupt[40] ^= 1;
    assert_eq!(decode(&corrupt), Err(ChecksumMismatch));
    assert_eq!(
        decode(&sealed(&header(0, 5))),
        Err(TooManyEntries {
            table: Table::New,
            count: 5,
            capacity: 4
        })
    );
    assert_eq!(decode(&sealed(&header(1, 0))), Err(Truncated));

    let entry = raw_entry([1, 2, 3, 4], 80);
    let with = |count: u32, entries: &[&[u8]]| {
        let mut body = header(0, count);
        for entry in entries {
            body.extend_from_slice(entry);
        }
        sealed(&body)
    };
    assert_eq!(decode(&with(1, &[&entry])), Ok(1));
    assert_eq!(decode(&with(2, &[&entry, &entry])), Err(DuplicateAddress));
    assert_eq!(decode(&with(1, &[&entry, &[0]])), Err(TrailingBytes));
    let mut flags = entry.clone();
    flags[0] = 0x40;
    assert_eq!(decode(&with(1, &[&flags])), Err(InvalidFlags(0x40)));
    flags[0] = FLAG_SOURCE_V6_FOR_TESTS;
    assert_eq!(
        decode(&with(1, &[&flags])),
        Err(InvalidFlags(FLAG_SOURCE_V6_FOR_TESTS))
    );
    assert_eq!(
        decode(&with(1, &[&raw_entry([1, 2, 3, 4], 0)])),
        Err(InvalidAddress)
    );
    assert_eq!(
        decode(&with(1, &[&raw_entry([0, 0, 0, 0], 80)])),
        Err(InvalidAddress)
    );
    for error in [TooShort { len: 1 }, ChecksumMismatch, InvalidFlags(0x80)] {
        assert!(!error.to_string().is_empty());
    }
}

/// The source-is-IPv6 flag without the source flag.
const FLAG_SOURCE_V6_FOR_TESTS: u8 = 1 << 3;

#[test]
fn the_same_key_and_operations_give_the_same_bytes() {
    let run = |key: [u8; 32]| {
        let mut book = AddrBook::new(key, local());
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        let mut picks = Vec::new();
        for step in 0..5000u64 {
            let now = secs(step);
            let address = random_public(&mut rng);
            let source = random_public(&mut rng).socket_addr().ip();
            match rng.next_u32() % 8 {
                0..=3 => {
                    let _ = book.add(address, Some(source), now);
                }
                4 => {
                    if let Some(picked) = book.select(&mut rng, now, |_| true) {
                        book.mark_attempt(&picked.socket_addr(), now);
                        picks.push(picked);
                        if rng.next_u32() % 2 == 0 {
                            let _ = book.mark_good(&picked, now);
                        } else {
                            book.mark_failed(&picked.socket_addr(), now);
                        }
                    }
                }
                5 => {
                    if let Some(occupant) = book.poll_collision() {
                        book.mark_failed(&occupant.socket_addr(), now);
                    }
                    book.handle_timeout(now);
                }
                6 => picks.extend(book.sample(&mut rng, now, 10, |_| true)),
                _ => {
                    if let Some(&gone) = picks.last() {
                        book.remove(&gone.socket_addr());
                    }
                }
            }
        }
        book.check_invariants();
        (book.to_bytes(secs(5000)), picks)
    };
    let first = run(KEY);
    assert!(first.1.len() > 100);
    assert_eq!(first, run(KEY));
    assert_ne!(first.1, run([8; 32]).1, "another key, another layout");
}

#[test]
fn remove_forgets_the_address_and_its_collisions() {
    let mut book = collision_book();
    let (old, new) = (addr(1, 0, 0, 1), addr(2, 0, 0, 1));
    let _ = book.mark_good(&old, secs(0));
    assert_eq!(book.mark_good(&new, secs(1)), GoodOutcome::Collision(old));
    assert!(book.remove(&old.socket_addr()));
    assert!(!book.remove(&old.socket_addr()));
    assert!(!book.contains(&old.socket_addr()));
    assert_eq!(book.collisions().count(), 0);
    assert_eq!(book.mark_good(&new, secs(2)), GoodOutcome::Tried);
    assert_eq!(book.len(), 1);
    assert!(!book.mark_attempt(&old.socket_addr(), secs(3)));
    assert!(!book.mark_failed(&old.socket_addr(), secs(3)));
    assert_eq!(book.get(&old.socket_addr()), None);
    book.check_invariants();
}

#[test]
fn the_index_hash_is_keyed_deterministic_and_spreads_sequential_addresses() {
    use core::hash::BuildHasher;
    let hashes = |key: [u8; 32]| {
        let state = index::IndexHashState::new(&key);
        (0..4096u32)
            .map(|i| {
                let [_, _, c, d] = i.to_be_bytes();
                state.hash_one(index::AddrKey(sock(10, 0, c, d)))
            })
            .collect::<Vec<u64>>()
    };
    let first = hashes(KEY);
    assert_eq!(first, hashes(KEY));
    assert_ne!(first, hashes([8; 32]));
    // 4,096 sequential addresses into 256 buckets by the low bits: about 16 each.
    let mut buckets = [0u32; 256];
    for hash in &first {
        buckets[(hash & 0xff) as usize] += 1;
    }
    let fullest = buckets.iter().max().unwrap();
    assert!(*fullest <= 40, "a bucket of {fullest}");
    let distinct: BTreeSet<_> = first.iter().collect();
    assert_eq!(distinct.len(), first.len());
}

#[test]
fn a_connected_unknown_address_goes_straight_to_tried() {
    let mut book = collision_book();
    let id = PeerId::from_bytes([4; 32]);
    let first = addr(2, 0, 0, 1).with_peer_id(id);
    assert_eq!(book.mark_good(&first, secs(1)), GoodOutcome::Tried);
    let info = book.get(&first.socket_addr()).unwrap();
    assert_eq!(
        (info.table, info.source, info.last_success, info.address),
        (Table::Tried, None, Some(secs(1)), first)
    );
    assert_eq!(book.new_len(), 0);
    // The one tried slot is taken: the next one waits in new behind a collision.
    let second = addr(3, 0, 0, 1);
    assert_eq!(
        book.mark_good(&second, secs(2)),
        GoodOutcome::Collision(first)
    );
    assert_eq!(book.get(&second.socket_addr()).unwrap().table, Table::New);
    let unspecified = NetAddress::new(None, "0.0.0.0:1".parse().unwrap());
    assert_eq!(book.mark_good(&unspecified, secs(3)), GoodOutcome::Rejected);
    book.check_invariants();
}

#[test]
fn a_routable_only_book_refuses_local_addresses_however_they_arrive() {
    let strict = AddrBookConfig::default();
    assert!(strict.routable_only, "the default");
    let mut strict_book = AddrBook::new(KEY, strict);
    let now = secs(0);
    let source = Some(ip(203, 0, 113, 9));
    for local in [
        "127.0.0.1:26656",
        "10.1.2.3:26656",
        "192.168.0.7:26656",
        "172.16.0.1:26656",
        "100.64.0.1:26656",
        "169.254.1.1:26656",
        "[::1]:26656",
        "[fd00::1]:26656",
        "[fe80::1]:26656",
        "[::ffff:10.0.0.1]:26656",
    ] {
        let socket: SocketAddr = local.parse().unwrap();
        let address = NetAddress::new(None, socket);
        assert_eq!(
            strict_book.add(address, source, now),
            AddOutcome::NotRoutable,
            "{local}"
        );
        assert_eq!(
            strict_book.mark_good(&address, now),
            GoodOutcome::Rejected,
            "{local}"
        );
    }
    assert!(strict_book.is_empty());
    assert_eq!(
        strict_book.add(addr(203, 0, 113, 7), source, now),
        AddOutcome::Added
    );
    assert_eq!(
        strict_book.add(addr(8, 8, 8, 8), source, now),
        AddOutcome::Added
    );
    strict_book.check_invariants();

    // A book saved on a local network loses its local addresses when loaded strict.
    let mut lan = book();
    for address in [addr(10, 0, 0, 1), addr(127, 0, 0, 1), addr(203, 0, 113, 7)] {
        assert_eq!(lan.add(address, source, now), AddOutcome::Added);
    }
    let loaded = AddrBook::from_bytes(strict, &lan.to_bytes(now), now).unwrap();
    assert_eq!(loaded.len(), 1);
    assert!(loaded.contains(&sock(203, 0, 113, 7)));
    loaded.check_invariants();
}
