//! An established, idle `Connection` holds at most 3 KiB of heap, its cipher states and the
//! `Connection` itself included: buffers are allocated on demand, the input buffer is
//! released when drained, and queue buffers at the first timer after they drained.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};

use common::pair::{Pair, message};
use switchboard::{ChannelConfig, Connection, ConnectionConfig};

/// Live heap bytes of the whole test binary.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::SeqCst);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::SeqCst);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::SeqCst);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const BUDGET: usize = 3 * 1024;

#[test]
fn an_idle_established_connection_holds_at_most_3_kib() {
    const PAIRS: usize = 200;
    let mut kept: Vec<Connection> = Vec::with_capacity(2 * PAIRS);
    // One configuration for every connection, as a node has.
    let config = Arc::new(ConnectionConfig::new(vec![
        ChannelConfig::new(1),
        ChannelConfig::new(2),
    ]));
    let before = LIVE.load(Ordering::SeqCst);
    for seed in 0..PAIRS as u64 {
        let mut pair = Pair::with_shared_configs(seed, config.clone(), config.clone());
        pair.drive();
        // Traffic first, so buffers were used and had to be released.
        pair.dialer
            .connection
            .send(1, message(seed, 100_000))
            .unwrap();
        pair.listener
            .connection
            .send(2, message(seed, 300))
            .unwrap();
        pair.drive();
        assert_eq!(pair.listener.messages(1).len(), 1);
        // Idle: the next timer (the first PING) lets go of drained buffers.
        let deadline = pair.now + std::time::Duration::from_secs(60);
        assert!(pair.advance_to_timeout(deadline));
        pair.drive();
        let Pair {
            dialer, listener, ..
        } = pair;
        kept.push(dialer.connection);
        kept.push(listener.connection);
    }
    let held = (LIVE.load(Ordering::SeqCst) - before) as usize;
    // The Vec's slots were allocated before the baseline: add each Connection's own size.
    let per_connection = held / kept.len() + size_of::<Connection>();
    eprintln!(
        "idle connection: {per_connection} bytes ({} inline + {} heap), budget {BUDGET}",
        size_of::<Connection>(),
        held / kept.len()
    );
    assert!(
        per_connection <= BUDGET,
        "{per_connection} bytes per idle connection"
    );
    assert!(kept.iter().all(Connection::is_established));
}
