//! The workload's log: one JSON object a line, each written with one `write` to a file
//! opened for appending in the node's data directory. The page cache keeps what was written
//! when the process is SIGKILLed; the harness reads it back and hands it to the checker.
//!
//! Times (`t`) are `CLOCK_MONOTONIC` nanoseconds ([`crate::clock`]); peers are named by
//! their index in the cluster's roster, `None` for an identity not in it.

use serde::{Deserialize, Serialize};

/// The channel tracked messages travel on.
pub use switchboard_sim::invariants::TRAFFIC_CHANNEL;

/// File name of the log inside a node's data directory.
pub const LOG_FILE: &str = "workload.jsonl";

/// File name of the roster (every node's identity and address) the harness writes.
pub const ROSTER_FILE: &str = "roster.json";

/// One line of a workload's log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "ev", rename_all = "snake_case")]
pub enum Record {
    /// The process started: its `run` (1 for the first start), how many addresses the
    /// address book loaded from the data directory held (`book_error`: why it was not
    /// loaded), and the sequence number its tracked messages continue from.
    Start {
        t: u64,
        run: u32,
        book: usize,
        book_error: Option<String>,
        next_seq: u64,
    },
    /// `PeerConnected`.
    Joined { t: u64, peer: Option<usize> },
    /// `PeerDisconnected`: its confirmed count on the traffic channel and the sequence
    /// numbers of this node's tracked messages it handed back.
    Left {
        t: u64,
        peer: Option<usize>,
        reason: String,
        confirmed: u64,
        unconfirmed: Vec<u64>,
        unsent: Vec<u64>,
    },
    /// About to `send` tracked message `seq` (`len` bytes, FNV-1a `hash`) to `to`: written
    /// before the call, so a message a peer takes is never missing from its sender's log.
    Intent {
        t: u64,
        to: usize,
        seq: u64,
        len: u32,
        hash: u64,
    },
    /// `send`'s answer for the `Intent` of the same `to` and `seq`: `None` accepted, else
    /// why not (`full`, `not_connected`, …).
    Sent {
        t: u64,
        to: usize,
        seq: u64,
        refused: Option<String>,
    },
    /// A tracked message taken by the application, from the connection of `from`: the
    /// sender and sequence number of its tag, its channel, length and hash. Written before
    /// the driver runs again, so before the credit that confirms it leaves.
    Delivered {
        t: u64,
        from: Option<usize>,
        channel: u16,
        sender: usize,
        seq: u64,
        len: u32,
        hash: u64,
    },
    /// Test only: the broken driver dropped this delivery (see `--drop-nth-message`).
    Dropped {
        t: u64,
        from: Option<usize>,
        sender: usize,
        seq: u64,
    },
    /// Saving the address book failed (the harness lowers the open-file limit).
    BookSaveFailed { t: u64, error: String },
    /// The process stopped cleanly: after SIGTERM, its shutdown over.
    Stopped { t: u64 },
}

impl Record {
    /// When it was written.
    pub fn time(&self) -> u64 {
        match self {
            Record::Start { t, .. }
            | Record::Joined { t, .. }
            | Record::Left { t, .. }
            | Record::Intent { t, .. }
            | Record::Sent { t, .. }
            | Record::Delivered { t, .. }
            | Record::Dropped { t, .. }
            | Record::BookSaveFailed { t, .. }
            | Record::Stopped { t } => *t,
        }
    }
}

/// One node of the cluster as every workload knows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterEntry {
    /// Its identity, 64 hex digits.
    pub peer_id: String,
    /// Where it listens.
    pub addr: std::net::SocketAddr,
}
