//! Criterion benches of the record layer against its raw AEAD backend, in bytes of plaintext per
//! second: seal + open (one record's sender and receiver work, payload counted once) and
//! seal alone (the sender's share).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use switchboard_benches::{AeadFloor, PayloadPlacement, RECORD_PAYLOAD_LEN, RecordPath};

fn record(c: &mut Criterion) {
    let mut group = c.benchmark_group("record");
    group.throughput(Throughput::Bytes(RECORD_PAYLOAD_LEN as u64));
    // A record takes about a hundred microseconds: 3 s per bench is tens of thousands of
    // records, and the whole group stays around half a minute.
    group
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));

    // seal_only desynchronises a pair, so each bench gets its own.
    let mut ours = RecordPath::new(1, PayloadPlacement::Apart);
    ours.verify(PayloadPlacement::Apart);
    group.bench_function("switchboard_seal_open", |b| {
        b.iter(|| black_box(ours.seal_open()))
    });
    // The same with the payload at the output buffer's page offset: see PayloadPlacement.
    let mut aliased = RecordPath::new(5, PayloadPlacement::PageAliased);
    aliased.verify(PayloadPlacement::PageAliased);
    group.bench_function("switchboard_seal_open_page_aliased", |b| {
        b.iter(|| black_box(aliased.seal_open()))
    });
    let mut floor = AeadFloor::new(2);
    floor.verify();
    group.bench_function("aead_floor_seal_open", |b| {
        b.iter(|| black_box(floor.seal_open().len()))
    });
    let mut ours = RecordPath::new(3, PayloadPlacement::Apart);
    group.bench_function("switchboard_seal", |b| b.iter(|| ours.seal_only()));
    let mut floor = AeadFloor::new(4);
    group.bench_function("aead_floor_seal", |b| b.iter(|| floor.seal_only()));
    group.finish();
}

criterion_group!(benches, record);
criterion_main!(benches);
