//! Criterion benches of two connected `Connection`s in memory, one thread (see
//! `ConnThroughput`): one channel of 1 MiB messages and 64 channels of 1 KiB messages in
//! bytes of message payload per second, 64-byte messages in messages per second; beside
//! them the AEAD floor, raw `aes-gcm` seal + open of full records, in plaintext bytes.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use switchboard_benches::{AeadFloor, ConnThroughput, RECORD_PAYLOAD_LEN};

fn connection(c: &mut Criterion) {
    let mut group = c.benchmark_group("connection");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));

    let mut large = ConnThroughput::large(1);
    large.verify();
    group.throughput(Throughput::Bytes(large.message_len() as u64));
    group.bench_function("switchboard_1ch_1mib", |b| b.iter(|| large.step()));

    let mut mux = ConnThroughput::mux(2);
    mux.verify();
    group.throughput(Throughput::Bytes(mux.message_len() as u64));
    group.bench_function("switchboard_64ch_1kib", |b| b.iter(|| mux.step()));

    let mut floor = AeadFloor::new(3);
    floor.verify();
    group.throughput(Throughput::Bytes(RECORD_PAYLOAD_LEN as u64));
    group.bench_function("aes_gcm_floor_seal_open", |b| {
        b.iter(|| black_box(floor.seal_open().len()))
    });

    let mut small = ConnThroughput::small(4);
    small.verify();
    group.throughput(Throughput::Elements(1));
    group.bench_function("switchboard_1ch_64b", |b| b.iter(|| small.step()));
    group.finish();
}

criterion_group!(benches, connection);
criterion_main!(benches);
