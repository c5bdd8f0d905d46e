//! The `switchboard node` binary stops cleanly on SIGTERM (and SIGINT, the same handler): it
//! says GOAWAY(Quitting) to its peers, which log the reason, saves its address book and
//! exits with success. Two real processes on 127.0.0.1.

#![cfg(unix)]

mod binary;

use binary::{Home, NodeProcess};
use switchboard_mio::DataDir;

#[test]
fn sigterm_says_goodbye_to_peers_saves_the_book_and_exits_cleanly() {
    let (first_home, second_home) = (Home::init("stop-first"), Home::init("stop-second"));
    let mut first = NodeProcess::start(&first_home.path, &[]);
    let addr = first.dial_address();
    let mut second = NodeProcess::start(&second_home.path, &["--seed", &addr]);
    second.wait_for(&["peer joined"]);
    first.wait_for(&["peer joined"]);

    let status = first.stop_with("TERM");
    assert!(status.success(), "exit status {status}");
    first.wait_for(&["stopped"]);
    second.wait_for(&["peer left", "reason=\"node quitting\"", "by=peer"]);
    let book = DataDir::open(&first_home.path)
        .expect("data dir")
        .load_address_book()
        .expect("readable");
    assert!(book.is_some(), "the address book was not saved at shutdown");

    let status = second.stop_with("INT");
    assert!(status.success(), "exit status {status}");
    second.wait_for(&["stopped"]);
}
