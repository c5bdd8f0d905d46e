//! The ban list's memory, measured by a counting allocator: 10,000 protocol breaches from
//! 100 addresses (a fresh key each time, the address re-banned) leave the list at its
//! capacity, and the bytes it holds stop growing once it is full.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use switchboard::ban_list::{BanList, Banned, DEFAULT_MAX_BANS};
use switchboard::{Instant, PeerId};

/// Counts the bytes the current thread holds, so the test harness printing on its own
/// threads cannot disturb a count.
struct Counting;

thread_local! {
    static LIVE: Cell<i64> = const { Cell::new(0) };
}

fn add(bytes: usize, sign: i64) {
    // `try_with`: the thread's counter may already be gone while it exits.
    let _ = LIVE.try_with(|live| live.set(live.get() + sign * bytes as i64));
}

fn live() -> i64 {
    LIVE.with(Cell::get)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(layout.size(), 1);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add(layout.size(), -1);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        add(layout.size(), -1);
        add(new_size, 1);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Bytes one ban may take, the list's structure included: measured 157 B — two B-tree
/// entries (41 B by key, 48 B by deadline) in nodes about half used, as bans arrive in
/// deadline order.
const BYTES_PER_BAN: usize = 170;

fn peer(n: u32) -> PeerId {
    let mut bytes = [0; 32];
    bytes[..4].copy_from_slice(&n.to_be_bytes());
    PeerId::from_bytes(bytes)
}

#[test]
fn ten_thousand_breaches_from_a_hundred_addresses_stay_under_the_bound() {
    let ban = Duration::from_secs(600);
    let base = live();
    let mut list = BanList::new(DEFAULT_MAX_BANS);
    let mut at_capacity = None;
    let mut highest = 0;
    for breach in 0..10_000u32 {
        let now = Instant::from_nanos(u64::from(breach) * 10_000_000);
        let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 1, (breach % 100) as u8));
        list.ban(Banned::Peer(peer(breach)), now + ban);
        list.ban(Banned::Ip(ip), now + ban);
        let bytes = live() - base;
        highest = highest.max(bytes);
        if at_capacity.is_none() && list.len() == DEFAULT_MAX_BANS {
            at_capacity = Some(bytes);
        }
        assert!(list.len() <= DEFAULT_MAX_BANS);
    }
    let at_capacity = at_capacity.expect("the flood fills the list");
    let per_ban = highest as f64 / DEFAULT_MAX_BANS as f64;
    assert_eq!(list.len(), DEFAULT_MAX_BANS);
    assert!(
        highest as usize <= DEFAULT_MAX_BANS * BYTES_PER_BAN,
        "{highest} B for {DEFAULT_MAX_BANS} bans"
    );
    // Full, the list trades one entry for another: B-tree nodes split and merge, so the
    // bytes wobble, but by a few nodes, not by the 5,900 bans that came after.
    assert!(
        highest <= at_capacity + at_capacity / 10,
        "grew from {at_capacity} B to {highest} B after it was full"
    );
    let now = Instant::from_nanos(10_000 * 10_000_000);
    for n in 0..100 {
        let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 1, n));
        assert!(list.is_ip_banned(now, ip), "every address is still banned");
    }
    list.expire(now + ban);
    assert!(list.is_empty());
    drop(list);
    assert_eq!(live(), base, "everything freed");
    // Printed last: the harness captures output in memory this thread would count.
    println!(
        "{DEFAULT_MAX_BANS} bans: {highest} B at most, {at_capacity} B when first full: \
         {per_ban:.1} B a ban"
    );
}

#[test]
fn without_a_bound_the_same_flood_would_grow_past_it() {
    // The check above fails for an unbounded list: the same flood in a list with room for
    // all of it holds 2.5 times the bytes.
    let base = live();
    let mut list = BanList::new(usize::MAX);
    for breach in 0..10_000u32 {
        let now = Instant::from_nanos(u64::from(breach) * 10_000_000);
        let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 1, (breach % 100) as u8));
        list.ban(Banned::Peer(peer(breach)), now + Duration::from_secs(600));
        list.ban(Banned::Ip(ip), now + Duration::from_secs(600));
    }
    assert_eq!(list.len(), 10_100);
    let bytes = live() - base;
    assert!(
        bytes as usize > DEFAULT_MAX_BANS * BYTES_PER_BAN,
        "{bytes} B"
    );
}
