//! Counters of one connection.

use core::time::Duration;

use crate::time::Instant;

/// Per-connection counters; per-channel ones come from
/// [`Connection::channel_stats`](super::Connection::channel_stats).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnectionStats {
    /// When the handshake completed.
    pub established_at: Option<Instant>,
    /// Records written.
    pub records_sent: u64,
    /// Records received.
    pub records_received: u64,
    /// Of those, records of large messages placed straight into their reassembly buffer and
    /// found to be the fragment guessed (one copy of their bytes fewer; see
    /// `connection/landing.rs`).
    pub records_landed: u64,
    /// Records placed so on a guess the plaintext refuted, and then read the usual way (one
    /// copy of their bytes more).
    pub records_misguessed: u64,
    /// Bytes handed out by `poll_transmit`, handshake included.
    pub wire_bytes_sent: u64,
    /// Bytes fed to `handle_input`, handshake included.
    pub wire_bytes_received: u64,
    /// Smoothed round-trip time, once measured.
    pub rtt: Option<Duration>,
}
