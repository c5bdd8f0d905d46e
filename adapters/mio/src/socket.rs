//! One connection's socket: non-blocking connect, reads of a bounded number of bytes per
//! turn, writes that keep an unwritten tail when the kernel takes only part.
//!
//! The tail is what is left of *one* write (the driver gathers a connection's records into
//! writes of up to 256 KiB): once a write would block, the driver tells the node
//! (`handle_write_blocked`) and the node hands out nothing more for this connection until
//! the socket drains, so the tail never grows past one write.

use std::io::{self, ErrorKind, Read, Write};
use std::net::Shutdown;

use mio::Token;
use mio::net::TcpStream;

/// What a read pass found.
#[derive(Debug)]
pub enum ReadOutcome {
    /// The socket has nothing more for now.
    Drained,
    /// The budget was spent before the socket ran dry: bytes may be left, and no new
    /// readiness event will announce them (mio is edge-triggered), so the caller must
    /// come back on its own.
    Budget,
    /// The peer closed its side (EOF).
    Eof,
    /// The connection failed (reset, or another error).
    Failed,
}

/// What a write found.
#[derive(Debug)]
pub enum WriteOutcome {
    /// Everything was written.
    Done,
    /// The kernel buffer is full; the rest waits in the tail.
    Blocked,
    /// The connection failed.
    Failed,
}

/// Where a TCP connect stands, checked when the socket turns writable.
#[derive(Debug)]
pub enum ConnectOutcome {
    /// Still in progress (a spurious wakeup).
    Pending,
    /// Connected.
    Connected,
    /// Refused, unreachable, timed out by the kernel…: the OS's error.
    Failed(io::Error),
}

/// A connection's socket and its unwritten bytes.
#[derive(Debug)]
pub struct Socket {
    /// The stream.
    pub stream: TcpStream,
    /// Its token in the driver's range.
    pub token: Token,
    /// Whether a non-blocking connect is still in progress.
    pub connecting: bool,
    /// Whether a read stopped at its budget and the socket waits in the driver's backlog
    /// for its next turn.
    pub unread: bool,
    /// The driver's backlog round in which this socket last had its turn.
    pub turn: u64,
    /// Unwritten bytes, from `tail_start` on.
    tail: Vec<u8>,
    tail_start: usize,
}

impl Socket {
    /// A socket registered under `token`.
    pub fn new(stream: TcpStream, token: Token, connecting: bool) -> Self {
        if !connecting {
            // Records are written whole and latency matters more than packet count.
            let _ = stream.set_nodelay(true);
        }
        Socket {
            stream,
            token,
            connecting,
            unread: false,
            turn: 0,
            tail: Vec::new(),
            tail_start: 0,
        }
    }

    /// Whether bytes wait to be written.
    pub fn has_tail(&self) -> bool {
        self.tail_start < self.tail.len()
    }

    /// Bytes waiting to be written.
    pub fn tail_len(&self) -> usize {
        self.tail.len() - self.tail_start
    }

    /// Checks a connect in progress, on a writable or error event.
    pub fn check_connect(&mut self) -> ConnectOutcome {
        match self.stream.take_error() {
            Ok(Some(error)) | Err(error) => return ConnectOutcome::Failed(error),
            Ok(None) => {}
        }
        match self.stream.peer_addr() {
            Ok(_) => {
                self.connecting = false;
                let _ = self.stream.set_nodelay(true);
                ConnectOutcome::Connected
            }
            Err(error)
                if error.kind() == ErrorKind::NotConnected
                    || error.raw_os_error() == Some(einprogress()) =>
            {
                ConnectOutcome::Pending
            }
            Err(error) => ConnectOutcome::Failed(error),
        }
    }

    /// Reads until the socket would block or `budget` bytes were read, handing each chunk
    /// to `input`. `buffer` is the driver's reused read buffer. The budget is what keeps one
    /// peer that sends faster than the node processes from holding the loop: a read until
    /// `WouldBlock` would never end.
    pub fn read_some(
        &mut self,
        buffer: &mut [u8],
        budget: usize,
        mut input: impl FnMut(&[u8]),
    ) -> ReadOutcome {
        let mut left = budget;
        loop {
            if left == 0 {
                return ReadOutcome::Budget;
            }
            let room = buffer.len().min(left);
            match self.stream.read(&mut buffer[..room]) {
                Ok(0) => return ReadOutcome::Eof,
                Ok(n) => {
                    left -= n;
                    input(&buffer[..n]);
                }
                Err(error) if error.kind() == ErrorKind::WouldBlock => {
                    return ReadOutcome::Drained;
                }
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(_) => return ReadOutcome::Failed,
            }
        }
    }

    /// Writes `bytes` after any tail; keeps what the kernel does not take.
    pub fn write(&mut self, bytes: &[u8]) -> WriteOutcome {
        if self.has_tail() {
            self.tail.extend_from_slice(bytes);
            return self.flush_tail();
        }
        let mut written = 0;
        while written < bytes.len() {
            match self.stream.write(&bytes[written..]) {
                Ok(0) => return WriteOutcome::Failed,
                Ok(n) => written += n,
                Err(error) if error.kind() == ErrorKind::WouldBlock => {
                    self.tail.clear();
                    self.tail.extend_from_slice(&bytes[written..]);
                    self.tail_start = 0;
                    return WriteOutcome::Blocked;
                }
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(_) => return WriteOutcome::Failed,
            }
        }
        WriteOutcome::Done
    }

    /// Writes as much of the tail as the kernel takes.
    pub fn flush_tail(&mut self) -> WriteOutcome {
        while self.has_tail() {
            match self.stream.write(&self.tail[self.tail_start..]) {
                Ok(0) => return WriteOutcome::Failed,
                Ok(n) => self.tail_start += n,
                Err(error) if error.kind() == ErrorKind::WouldBlock => {
                    return WriteOutcome::Blocked;
                }
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(_) => return WriteOutcome::Failed,
            }
        }
        self.tail.clear();
        self.tail_start = 0;
        // A tail of a large record keeps its capacity; give it back once drained.
        if self.tail.capacity() > 64 * 1024 {
            self.tail.shrink_to(0);
        }
        WriteOutcome::Done
    }

    /// Ends the connection politely: writes what the kernel takes of the tail, sends FIN,
    /// and discards what the peer already sent (up to `budget` bytes), so closing does not
    /// turn into a reset that could destroy our last bytes (the GOAWAY) in the peer's
    /// receive buffer. A peer still sending past the budget is not waited for: it gets the
    /// reset.
    pub fn close(mut self, buffer: &mut [u8], budget: usize) {
        let _ = self.flush_tail();
        let _ = self.stream.shutdown(Shutdown::Write);
        let _ = self.read_some(buffer, budget, |_| {});
    }
}

#[cfg(unix)]
fn einprogress() -> i32 {
    libc::EINPROGRESS
}

#[cfg(not(unix))]
fn einprogress() -> i32 {
    -1
}
