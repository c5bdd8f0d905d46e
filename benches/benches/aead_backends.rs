//! Criterion benches of the two AES-256-GCM backends the core can be built with, raw
//! (`aes-gcm`, the portable default; `ring`, the `ring` feature), beside the record layer
//! built with whichever backend this build of the core uses (its name is in the bench id):
//! seal + open of one 65,519-byte record, plaintext bytes per second.
//!
//! `cargo bench -p switchboard-benches --bench aead_backends` compares the raw backends and
//! the default record layer; add `--features ring` for the record layer on `ring`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use switchboard_benches::{
    AeadBackend, AeadFloor, PayloadPlacement, RECORD_PAYLOAD_LEN, RecordPath,
};

fn aead_backends(c: &mut Criterion) {
    let mut group = c.benchmark_group("aead_backends");
    group.throughput(Throughput::Bytes(RECORD_PAYLOAD_LEN as u64));
    group
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for backend in [AeadBackend::AesGcm, AeadBackend::Ring] {
        let mut floor = AeadFloor::with_backend(7, backend);
        floor.verify();
        group.bench_function(format!("raw_{}_seal_open", backend.name()), |b| {
            b.iter(|| black_box(floor.seal_open().len()))
        });
    }
    let mut ours = RecordPath::new(1, PayloadPlacement::Apart);
    ours.verify(PayloadPlacement::Apart);
    let name = format!(
        "switchboard_record_on_{}_seal_open",
        AeadBackend::compiled().name()
    );
    group.bench_function(name, |b| b.iter(|| black_box(ours.seal_open())));
    group.finish();
}

criterion_group!(benches, aead_backends);
criterion_main!(benches);
