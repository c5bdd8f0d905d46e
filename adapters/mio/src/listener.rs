//! Listening sockets, built by hand so an IPv6 listener can be IPv6-only.
//!
//! Linux makes `[::]:port` dual-stack by default (`net.ipv6.bindv6only = 0`): it also takes
//! IPv4 connections, so `--listen 0.0.0.0:26656 --listen [::]:26656` would fail with "address
//! in use". Each IPv6 listener here sets `IPV6_V6ONLY` before `bind` — which neither std's nor
//! mio's `bind` can do — so IPv4 and IPv6 listeners on one port coexist, and a node listening
//! on `[::]` alone takes IPv6 only, the same on every platform.

use std::io;
use std::net::SocketAddr;

use mio::net::TcpListener;
use socket2::{Domain, Protocol, Socket, Type};

/// Backlog of pending connections, as mio's own `bind` uses.
const BACKLOG: i32 = 1024;

/// A non-blocking listener on `addr`: IPv6-only for an IPv6 address, `SO_REUSEADDR` on Unix
/// (as mio sets it) so a restarted node can bind while old connections linger in TIME_WAIT.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(TcpListener::from_std(socket.into()))
}
