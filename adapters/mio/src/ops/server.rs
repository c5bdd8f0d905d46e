//! The HTTP server of the ops endpoints, on a thread of its own.

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

use serde::Serialize;
use tiny_http::{Header, Method, Request, Response, Server};

use super::OpsState;
use super::metrics::CONTENT_TYPE;

/// Serves `GET /metrics`, `GET /status` and `GET /net_info` from an [`OpsState`]; other
/// paths are 404, other methods 405. The state is read, never refreshed, here: whoever drives the node refreshes
/// it ([`Ops::refresh`](super::Ops::refresh)), so a scrape never waits on the node's
/// thread and a busy node is never interrupted by one.
///
/// `/metrics` answers in the Prometheus text format ([`Metrics::encode`](super::Metrics::encode)),
/// `/status` and `/net_info` in JSON, 503 until the state's first refresh.
///
/// Stops on [`OpsServer::stop`] or when dropped.
pub struct OpsServer {
    server: Arc<Server>,
    local_addr: SocketAddr,
    thread: Option<JoinHandle<()>>,
}

impl OpsServer {
    /// Listens on `addr` (port 0 picks one: see [`OpsServer::local_addr`]) and serves
    /// `state` until stopped.
    pub fn start(addr: SocketAddr, state: Arc<Mutex<OpsState>>) -> io::Result<OpsServer> {
        let listener = TcpListener::bind(addr)?;
        let local_addr = listener.local_addr()?;
        let server = Server::from_listener(listener, None).map_err(io::Error::other)?;
        let server = Arc::new(server);
        let thread = thread::Builder::new()
            .name("switchboard-ops".into())
            .spawn({
                let server = Arc::clone(&server);
                move || serve(&server, &state)
            })?;
        Ok(OpsServer {
            server,
            local_addr,
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops serving: answers the requests already read, then ends the thread. The
    /// listening socket closes a moment later, when tiny_http's accept thread notices.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.server.unblock();
            let _ = thread.join();
        }
    }
}

impl fmt::Debug for OpsServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpsServer")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl Drop for OpsServer {
    fn drop(&mut self) {
        self.shut_down();
    }
}

fn serve(server: &Server, state: &Mutex<OpsState>) {
    // `recv` fails once `unblock` is called (after the requests already queued), or once
    // tiny_http's accept thread has given up on an accept error: nothing more comes either
    // way.
    while let Ok(request) = server.recv() {
        // A client that hung up before its answer is its own problem, not the server's.
        let _ = respond(request, state);
    }
}

type Body = Response<io::Cursor<Vec<u8>>>;

fn respond(request: Request, state: &Mutex<OpsState>) -> io::Result<()> {
    let path = request.url().split('?').next().unwrap_or_default();
    let response = if *request.method() == Method::Get {
        answer(path, state)
    } else {
        text(405, "only GET is served\n")
    };
    request.respond(response)
}

fn answer(path: &str, state: &Mutex<OpsState>) -> Body {
    let state = super::lock(state);
    match path {
        "/metrics" => typed(text(200, state.metrics.encode()), CONTENT_TYPE),
        "/status" => json(state.status.as_ref()),
        "/net_info" => json(state.net_info.as_ref()),
        _ => text(404, "not found\n"),
    }
}

/// The snapshot as JSON, or 503 before the first refresh.
fn json<T: Serialize>(snapshot: Option<&T>) -> Body {
    let Some(snapshot) = snapshot else {
        return text(503, "not sampled yet\n");
    };
    match serde_json::to_string_pretty(snapshot) {
        Ok(body) => typed(text(200, body), "application/json"),
        Err(error) => text(500, format!("cannot encode: {error}\n")),
    }
}

fn text(code: u16, body: impl Into<String>) -> Body {
    Response::from_string(body).with_status_code(code)
}

fn typed(mut response: Body, content_type: &str) -> Body {
    // Every content type given here is an ASCII constant, which always makes a header.
    if let Ok(header) = Header::from_bytes("Content-Type", content_type) {
        response.add_header(header);
    }
    response
}
