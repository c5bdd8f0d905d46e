//! Allocations on the steady-state data path, counted by a counting allocator: once a
//! connection has warmed up, sending and receiving 100,000 messages of up to 16 KiB
//! allocates nothing per message, per record or per data read. What is left is one small
//! buffer per read of control records only (the sender reading the receiver's CREDIT
//! records): buffers of at most 4 KiB are let go when drained, because at 10,000
//! connections a kept one is colder than a fresh one (see `RecordInput`). Before the data
//! path reused its buffers these loops allocated 1.5 times per message.
//!
//! The loop is what an adapter does: the sender's records go into one reused output buffer,
//! the receiver reads them in 64 KiB pieces, takes each message and drops it, and its
//! CREDIT records flow back the same way.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::Bytes;
use common::pair::{Pair, message};
use switchboard::connection::{Connection, Event};
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

/// How much the receiving side reads at once.
const READ: usize = 64 * 1024;
const WARM_UP: u64 = 10_000;
const MEASURED: u64 = 100_000;

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
}

impl Loop {
    fn new(seed: u64) -> Self {
        let channel = ChannelConfig {
            max_message_size: 16 * 1024,
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

/// Allocation calls while `total` more messages go through, after a warm-up of the same mix.
/// Allocations in all, and on the receiving side alone, while `MEASURED` more messages go
/// through after a warm-up of the same mix; and the bytes they carried.
fn allocations_for(seed: u64, len: impl Fn(u64) -> usize + Copy) -> (u64, u64, u64) {
    let payload = message(seed, 16 * 1024);
    let mut pipe = Loop::new(seed);
    pipe.run(&payload, WARM_UP, len);
    let before = allocations();
    let receive_before = pipe.receive_allocations;
    let bytes_before = pipe.received_bytes;
    pipe.run(&payload, WARM_UP + MEASURED, len);
    let allocations = allocations() - before;
    assert_eq!(pipe.received, WARM_UP + MEASURED);
    (
        allocations,
        pipe.receive_allocations - receive_before,
        pipe.received_bytes - bytes_before,
    )
}

/// At most one allocation per this many messages: the control reads between batches.
const MESSAGES_PER_ALLOCATION: u64 = 20;

fn assert_no_allocation_per_message(name: &str, len: impl Fn(u64) -> usize + Copy) {
    let (allocations, receiving, bytes) = allocations_for(7, len);
    eprintln!(
        "{name}: {allocations} allocations for {MEASURED} messages ({} MiB), {receiving} of \
         them receiving",
        bytes >> 20
    );
    assert_eq!(receiving, 0, "{name}: the receiving side allocated");
    assert!(
        allocations * MESSAGES_PER_ALLOCATION <= MEASURED,
        "{name}: {allocations} allocations for {MEASURED} messages"
    );
}

#[test]
fn full_size_messages_of_16_kib_allocate_nothing_per_message() {
    assert_no_allocation_per_message("16 KiB", |_| 16 * 1024);
}

#[test]
fn small_messages_allocate_nothing_per_message() {
    assert_no_allocation_per_message("100 B", |_| 100);
}

#[test]
fn mixed_sizes_up_to_16_kib_allocate_nothing_per_message() {
    // A spread of sizes from empty to 16 KiB, so records split messages everywhere.
    assert_no_allocation_per_message("mixed", |n| {
        (n.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as usize % (16 * 1024 + 1)
    });
}
