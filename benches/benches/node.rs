//! Criterion benches of one `Node` routing messages between its peers (see `HubRouting`):
//! a random peer sends a 64-byte message to the hub, whose application forwards it to
//! another random peer, credit returning both ways — with 10 and with 10,000 established
//! peers. The target: the 10,000-peer time within 2× of the 10-peer time.
//!
//! Beside them, the 10,000-peer hub routing between 10 of its peers only: the node's tables
//! are as large, but the connections touched stay in the CPU caches, which separates what
//! the tables' size costs from cache misses on the connections' own state.

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use switchboard_benches::HubRouting;

fn node_routing(c: &mut Criterion) {
    let mut group = c.benchmark_group("node_routing");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(1));

    for peers in [10, 10_000] {
        let mut hub = HubRouting::new(peers as u64, peers);
        hub.verify();
        group.bench_with_input(BenchmarkId::new("relay", peers), &peers, |b, _| {
            b.iter(|| hub.relay())
        });
        if peers > 10 {
            hub.set_active_peers(10);
            group.bench_with_input(
                BenchmarkId::new("relay_10_active_of", peers),
                &peers,
                |b, _| b.iter(|| hub.relay()),
            );
        }
    }
    group.finish();
}

criterion_group!(benches, node_routing);
criterion_main!(benches);
