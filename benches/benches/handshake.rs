//! Criterion benches of the handshake: switchboard's, `snow`'s, and the DH floor.
//!
//! The three run in one group so their reports sit side by side; the workloads themselves
//! live in the library (`switchboard_benches`), shared with `perf-report`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use switchboard_benches::{DhFloor, SnowHandshake, SwitchboardHandshake};

fn handshake(c: &mut Criterion) {
    let mut ours = SwitchboardHandshake::new(1);
    ours.verify();
    let mut snow = SnowHandshake::new(ours.peers());
    snow.verify();
    let floor = DhFloor::new(2);
    floor.verify();

    let mut group = c.benchmark_group("handshake");
    // A handshake takes a few hundred microseconds: 3 s per bench gives thousands of
    // iterations, plenty for a CPU-bound loop, and keeps the group under half a minute.
    group
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("switchboard", |b| b.iter(|| black_box(ours.run())));
    group.bench_function("snow", |b| b.iter(|| black_box(snow.run())));
    group.bench_function("dh_floor_6dh_2keygen", |b| {
        b.iter(|| black_box(floor.run()))
    });
    group.finish();
}

criterion_group!(benches, handshake);
criterion_main!(benches);
