//! `AddrBook::from_bytes` on arbitrary bytes: total and bounded, and whatever it accepts is
//! consistent (`check_invariants`: tables within their room, every entry where its hash
//! puts it), encodes to bytes that decode to the same book, and hands out only addresses
//! it knows.
//!
//! The first byte picks how the rest is used: as the whole file, as a file body sealed with
//! a valid checksum, or as a body after a valid magic and version and sealed — so the
//! parser behind the checksum is reached, not only the checksum.
#![no_main]

use blake2::Blake2b;
use blake2::digest::Digest;
use blake2::digest::consts::U32;
use libfuzzer_sys::fuzz_target;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use switchboard::Instant;
use switchboard::addr_book::{AddrBook, AddrBookConfig, Table};

fn sealed(body: Vec<u8>) -> Vec<u8> {
    let mut out = body;
    let checksum = Blake2b::<U32>::digest(&out);
    out.extend_from_slice(&checksum);
    out
}

fuzz_target!(|input: &[u8]| {
    let Some((&mode, rest)) = input.split_first() else {
        return;
    };
    let bytes = match mode % 3 {
        0 => rest.to_vec(),
        1 => sealed(rest.to_vec()),
        _ => sealed([b"SBAB\x01".as_slice(), rest].concat()),
    };
    // Small tables, so that slot conflicts between decoded entries are common.
    let config = AddrBookConfig {
        new_buckets: 8,
        tried_buckets: 4,
        bucket_size: 4,
        ..AddrBookConfig::default()
    };
    let now = Instant::from_nanos(1 << 50);
    let Ok(book) = AddrBook::from_bytes(config, &bytes, now) else {
        return;
    };
    book.check_invariants();
    let encoded = book.to_bytes(now);
    let again = AddrBook::from_bytes(config, &encoded, now).expect("a saved book loads");
    assert_eq!(again.to_bytes(now), encoded);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let all = book.sample(&mut rng, now, usize::MAX, |_| true);
    assert!(all.len() <= book.len());
    let tried = all
        .iter()
        .map(|address| {
            let info = book
                .get(&address.socket_addr())
                .expect("sampled means known");
            assert_eq!(again.get(&address.socket_addr()), Some(info));
            info.table
        })
        .filter(|&table| table == Table::Tried)
        .count();
    assert!(tried <= book.tried_len());
    if let Some(picked) = book.select(&mut rng, now, |_| true) {
        assert!(book.contains(&picked.socket_addr()));
    }
});
