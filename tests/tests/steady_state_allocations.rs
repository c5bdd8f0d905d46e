//! Allocations on the steady-state data path, counted per thread by a counting allocator.
//! Once a connection has warmed up, 100,000 messages of up to 16 KiB (and 10,000 of 64 to
//! 160 KiB, reassembled from several records) allocate nothing per message, record or data
//! read: the receiving side at most once per 10,000 messages (a buffer reaching a new
//! high-water mark), the sending side at most twice per read of the receiver's CREDIT
//! records (buffers of at most 4 KiB are let go when drained, because at 10,000
//! connections a kept one is colder than a fresh one: see `RecordInput`). Before the data
//! path reused its buffers these loops allocated 1.5 times per message.
//!
//! The loop is what an adapter does: the sender's records go into one reused output buffer,
//! the receiver reads them in 64 KiB pieces, takes each message and drops it, and its
//! CREDIT records flow back the same way. A last loop sends large messages both ways, a
//! record at a time, so records carry DATA and then CREDIT: they land in their reassembly
//! buffers, and what follows each fragment is copied into a reused buffer (a fresh one per
//! record was 6,726 allocations over those 20,000 messages).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::Bytes;
use common::pair::{Pair, message};
use switchboard::connection::{Connection, ConnectionStats, Event};
use switchboard::{ChannelConfig, Instant, SendError};

/// Counts allocation calls (`alloc` and `realloc`) made by the current thread, so the test
/// harness printing on its own threads cannot disturb a count.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count_allocation() {
    // `try_with`: the thread's counter may already be gone while it exits.
    let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
}

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_allocation();
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_allocation();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The largest message sent.
const LARGEST: usize = 160 * 1024;

/// How much the receiving side reads at once.
const READ: usize = 64 * 1024;
/// Messages measured (after a warm-up of half as many).
const MEASURED: u64 = 100_000;
/// For messages of 64 KiB and more: about 1 GiB.
const MEASURED_LARGE: u64 = 10_000;
/// Allocations the receiving side may make over `MEASURED` messages: a buffer growing to a
/// new high-water mark (seen: the copy buffer the first time a record too sparse to be held
/// arrives). One per 10,000 messages, where a per-message cost would be 100,000.
const RARELY: u64 = MEASURED / 10_000;

/// The sender and receiver of one established connection, and the buffers an adapter reuses.
struct Loop {
    sender: Connection,
    receiver: Connection,
    now: Instant,
    wire: Vec<u8>,
    sent: u64,
    received: u64,
    received_bytes: u64,
    /// Allocations made while the receiver read and its messages were taken.
    receive_allocations: u64,
    /// Reads of the receiver's CREDIT records by the sender.
    credit_reads: u64,
}

impl Loop {
    fn new(seed: u64) -> Self {
        let channel = ChannelConfig {
            max_message_size: LARGEST as u32,
            receive_window: 4 * LARGEST as u32,
            ..ChannelConfig::new(1)
        };
        let pair = Pair::connected(seed, vec![channel]);
        Loop {
            sender: pair.dialer.connection,
            receiver: pair.listener.connection,
            now: pair.now,
            wire: Vec::with_capacity(1 << 20),
            sent: 0,
            received: 0,
            received_bytes: 0,
            receive_allocations: 0,
            credit_reads: 0,
        }
    }

    /// Sends until `total` messages have been received, each a slice of `payload` of the
    /// length `len` gives for its number.
    fn run(&mut self, payload: &Bytes, total: u64, len: impl Fn(u64) -> usize) {
        while self.received < total {
            while self.sent < total {
                let message = payload.slice(..len(self.sent));
                match self.sender.send(1, message) {
                    Ok(()) => self.sent += 1,
                    Err(SendError::Full(_)) => break,
                    Err(error) => panic!("send: {error}"),
                }
            }
            let before = self.received;
            self.wire.clear();
            while self.sender.poll_transmit(self.now, &mut self.wire) {}
            let receive_start = allocations();
            for piece in self.wire.chunks(READ) {
                self.receiver.handle_input(self.now, piece);
                while let Some(event) = self.receiver.poll_event() {
                    match event {
                        Event::Message { message, .. } => {
                            self.received += 1;
                            self.received_bytes += message.len() as u64;
                        }
                        other => panic!("unexpected event {other:?}"),
                    }
                }
            }
            self.receive_allocations += allocations() - receive_start;
            self.wire.clear();
            while self.receiver.poll_transmit(self.now, &mut self.wire) {}
            for piece in self.wire.chunks(READ) {
                self.sender.handle_input(self.now, piece);
                self.credit_reads += 1;
            }
            if let Some(event) = self.sender.poll_event() {
                panic!("unexpected sender event {event:?}");
            }
            assert!(
                self.received > before || self.sent > before,
                "no progress at message {}",
                self.received
            );
        }
    }
}

/// What `measured` messages cost after a warm-up of half as many of the same mix.
struct Cost {
    allocations: u64,
    receiving: u64,
    credit_reads: u64,
    bytes: u64,
}

fn cost(seed: u64, measured: u64, len: impl Fn(u64) -> usize + Copy) -> Cost {
    let payload = message(seed, LARGEST);
    let mut pipe = Loop::new(seed);
    let warm_up = measured / 2;
    pipe.run(&payload, warm_up, len);
    let before = allocations();
    let (receiving, credit_reads, bytes) = (
        pipe.receive_allocations,
        pipe.credit_reads,
        pipe.received_bytes,
    );
    pipe.run(&payload, warm_up + measured, len);
    let allocations = allocations() - before;
    assert_eq!(pipe.received, warm_up + measured);
    Cost {
        allocations,
        receiving: pipe.receive_allocations - receiving,
        credit_reads: pipe.credit_reads - credit_reads,
        bytes: pipe.received_bytes - bytes,
    }
}

/// Checks that the receiving side allocates at most `receiving_at_most` times, and the
/// sending side at most twice per read of CREDIT records (its small input buffer and the
/// `bytes` handle sharing it): nothing per message or record.
fn assert_no_allocation_per_message(
    name: &str,
    measured: u64,
    receiving_at_most: u64,
    len: impl Fn(u64) -> usize + Copy,
) {
    let cost = cost(7, measured, len);
    let sending = cost.allocations - cost.receiving;
    eprintln!(
        "{name}: {measured} messages ({} MiB): receiving {} allocations, sending {sending} \
         over {} credit reads",
        cost.bytes >> 20,
        cost.receiving,
        cost.credit_reads
    );
    assert!(
        cost.receiving <= receiving_at_most,
        "{name}: the receiving side allocated {} times",
        cost.receiving
    );
    assert!(
        sending <= 2 * cost.credit_reads,
        "{name}: the sending side allocated {sending} times for {} credit reads",
        cost.credit_reads
    );
}

#[test]
fn full_size_messages_of_16_kib_allocate_nothing_per_message() {
    assert_no_allocation_per_message("16 KiB", MEASURED, RARELY, |_| 16 * 1024);
}

#[test]
fn small_messages_allocate_nothing_per_message() {
    assert_no_allocation_per_message("100 B", MEASURED, RARELY, |_| 100);
}

#[test]
fn mixed_sizes_up_to_16_kib_allocate_nothing_per_message() {
    // A spread of sizes from empty to 16 KiB, so records split messages everywhere.
    assert_no_allocation_per_message("mixed", MEASURED, RARELY, |n| {
        (n.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as usize % (16 * 1024 + 1)
    });
}

#[test]
fn messages_spanning_records_allocate_nothing_per_message_on_either_side() {
    // 64 to 160 KiB: each message is reassembled from several records, in two buffers that
    // alternate and are reused once the application dropped what they held (a third is
    // needed, rarely, when one read completes a message and starts two more).
    assert_no_allocation_per_message("64-160 KiB", MEASURED_LARGE, MEASURED_LARGE / 1000, |n| {
        64 * 1024 + (n.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as usize % (96 * 1024 + 1)
    });
}

/// Both ends of a connection sending each other `measured` messages of `len` bytes, taking
/// turns a record at a time, so that each record carries a CREDIT for what its sender just
/// took after its DATA. Returns the allocations made after a warm-up of half as many, and
/// both ends' counters.
fn two_way_cost(
    seed: u64,
    measured: u64,
    len: impl Fn(u64) -> usize,
) -> (u64, [ConnectionStats; 2]) {
    let payload = message(seed, LARGEST);
    let channel = ChannelConfig {
        max_message_size: LARGEST as u32,
        receive_window: 4 * LARGEST as u32,
        ..ChannelConfig::new(1)
    };
    let pair = Pair::connected(seed, vec![channel]);
    let mut ends = [pair.dialer.connection, pair.listener.connection];
    let now = pair.now;
    let mut wire = Vec::with_capacity(1 << 20);
    let (mut sent, mut received) = ([0u64; 2], [0u64; 2]);
    let warm_up = measured / 2;
    let mut before = None;
    while received.iter().any(|&count| count < warm_up + measured) {
        if before.is_none() && received.iter().all(|&count| count >= warm_up) {
            before = Some(allocations());
        }
        for from in 0..2 {
            let [a, b] = &mut ends;
            let (sender, receiver) = if from == 0 { (a, b) } else { (b, a) };
            while sent[from] < warm_up + measured {
                let message = payload.slice(..len(sent[from]));
                match sender.send(1, message) {
                    Ok(()) => sent[from] += 1,
                    Err(SendError::Full(_)) => break,
                    Err(error) => panic!("send: {error}"),
                }
            }
            wire.clear();
            let _ = sender.poll_transmit(now, &mut wire);
            for piece in wire.chunks(READ) {
                receiver.handle_input(now, piece);
                while let Some(event) = receiver.poll_event() {
                    match event {
                        Event::Message { .. } => received[1 - from] += 1,
                        other => panic!("unexpected event {other:?}"),
                    }
                }
            }
        }
    }
    let allocations = allocations() - before.expect("warmed up");
    (allocations, ends.each_ref().map(Connection::stats))
}

#[test]
fn messages_spanning_records_both_ways_allocate_nothing_per_message() {
    // Records of two-way traffic lead with DATA and end with the CREDIT for the other
    // direction: they land, and the frames after their fragment are copied into a reused
    // buffer, not a fresh one per record.
    let (allocations, stats) = two_way_cost(11, MEASURED_LARGE, |n| {
        64 * 1024 + (n.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as usize % (96 * 1024 + 1)
    });
    let total = |count: fn(&ConnectionStats) -> u64| stats.iter().map(count).sum::<u64>();
    let (received, landed, misguessed) = (
        total(|end| end.records_received),
        total(|end| end.records_landed),
        total(|end| end.records_misguessed),
    );
    eprintln!(
        "64-160 KiB both ways: {MEASURED_LARGE} messages each way, {allocations} allocations; \
         {received} records, {landed} landed, {misguessed} misguessed"
    );
    // A message spans 1.75 records on average: more than one record a message continues one
    // (many records carry only CREDIT).
    assert!(
        landed > 2 * MEASURED_LARGE && misguessed * 100 < received,
        "records of large messages land: {landed} of {received}, {misguessed} misguessed"
    );
    assert!(
        allocations <= 2 * MEASURED_LARGE / 1000,
        "{allocations} allocations for {MEASURED_LARGE} messages each way"
    );
}
