//! `switchboard node`: one node on real sockets, logging who comes and goes, one line per
//! event with its fields.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use switchboard::NetAddress;
use switchboard::addr_book::AddrBook;
use switchboard::connection::ClosedBy;
use switchboard::dial_queue::Retry;
use switchboard::discovery::Discovery;
use switchboard::node::NodeEvent;
use switchboard::peer_set::Direction;
use switchboard::router::Router;
use switchboard_mio::ops::Ops;
use switchboard_mio::{ChaCha20Rng, DriverConfig, Handle, NodeApi, Runtime, fd_limit};
use tracing::{debug, info, warn};

use crate::config::NodeOptions;
use crate::home;

/// How often the address book is written to the data directory, besides at shutdown: a node
/// killed without a chance to stop (SIGKILL, a crash) loses at most this much of it.
const ADDRESS_BOOK_SAVE_INTERVAL: Duration = Duration::from_secs(30);

/// How long a stop waits for the peers to confirm what was sent to them.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(2);

/// How often the metrics and the status API are brought up to date with the node.
const OPS_REFRESH_INTERVAL: Duration = Duration::from_secs(1);

/// Longest the event loop waits before looking at the stop flag again.
const STOP_CHECK_INTERVAL: Duration = Duration::from_millis(200);

pub fn run(options: NodeOptions) -> Result<(), String> {
    if let Err(error) = fd_limit::raise_nofile_limit() {
        warn!(%error, "cannot raise the open-file limit");
    }
    let (data_dir, keypair) = home::open(&options.home)?;
    // Without discovery there is no book to load (nor to save: the file is left as it is).
    let address_book = match data_dir.load_address_book() {
        Ok(book) => book.filter(|_| options.pex),
        Err(error) => {
            warn!(%error, "address book unreadable; starting without it");
            None
        }
    };
    let external = options.node.listen_addr;
    let mut driver = DriverConfig::new(options.node, keypair, options.listen, 0..1 << 20);
    let discovery = options.pex.then_some(options.discovery);
    driver.address_book = address_book.filter(|bytes| {
        let book_config = discovery.as_ref().map(|d| d.addr_book).unwrap_or_default();
        match AddrBook::from_bytes(book_config, bytes, switchboard::Instant::ZERO) {
            Ok(book) => {
                info!(
                    addresses = book.len(),
                    "address book loaded from the last run"
                );
                true
            }
            Err(error) => {
                warn!(%error, "address book corrupt; starting with an empty one");
                false
            }
        }
    });
    // SIGINT (Ctrl-C) and SIGTERM stop the node cleanly: peers get GOAWAY(Quitting) and the
    // address book is saved.
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .map_err(|error| format!("cannot handle signal {signal}: {error}"))?;
    }
    let (handle, _discovery) = Runtime::default()
        .start_with_router(driver, move |router| {
            discovery
                .map(|config| {
                    let discovery = Discovery::new(config, router.node_mut().rng());
                    router.register(discovery)
                })
                .transpose()
        })
        .map_err(|error| error.to_string())?;
    let node_id = handle.peer_id();
    info!(%node_id, "node started");
    for &listen in handle.local_addrs() {
        let dial = |addr| NetAddress::new(Some(node_id), addr);
        match external {
            _ if !listen.ip().is_unspecified() => {
                info!(%listen, dial = %dial(listen), "listening");
            }
            Some(external) => info!(
                %listen,
                dial = %dial(external),
                "listening on all interfaces; peers dial the external_address"
            ),
            None => info!(
                %listen,
                "listening on all interfaces; set external_address to tell peers where to dial"
            ),
        }
    }
    let save_book = || {
        if let Some(book) = handle.address_book()
            && let Err(error) = data_dir.save_address_book(&book)
        {
            warn!(%error, "cannot save the address book");
        }
    };
    // The ops endpoints, when asked for: metrics counted from every event, the rest
    // sampled from the node once a second; the server reads only that snapshot.
    let ops = Ops::new(handle.local_addrs());
    let server = match options.metrics {
        Some(addr) => {
            ops.refresh(&handle);
            let server = ops
                .serve(addr)
                .map_err(|error| format!("cannot serve metrics on {addr}: {error}"))?;
            info!(addr = %server.local_addr(), "serving /metrics, /status and /net_info");
            Some(server)
        }
        None => None,
    };
    let mut last_save = Instant::now();
    let mut last_refresh = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if last_save.elapsed() >= ADDRESS_BOOK_SAVE_INTERVAL {
            save_book();
            last_save = Instant::now();
        }
        if server.is_some() && last_refresh.elapsed() >= OPS_REFRESH_INTERVAL {
            ops.refresh(&handle);
            last_refresh = Instant::now();
        }
        match handle.events().recv_timeout(STOP_CHECK_INTERVAL) {
            Ok(event) => {
                ops.observe(&event);
                log_event(&handle, event);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    info!(
        peers = handle.peers().len(),
        "stopping: saying goodbye to the peers"
    );
    save_book();
    let report = handle.shutdown(SHUTDOWN_TIMEOUT);
    info!(
        confirmed = report.confirmed(),
        returned = report.returned(),
        "stopped"
    );
    Ok(())
}

/// One line for `event`, its fields named (free text quoted, so a line splits on spaces);
/// messages, the application's business, none.
///
/// Query connections come and go at debug: they are short-lived by design (closed after
/// `query_idle_timeout` idle), a lookup opens several, and strangers open them at will —
/// up to `max_inbound_queries` at once, again and again — so at info they would drown the
/// peers' comings and goings. A query of ours that failed is at info, as a failed dial is:
/// it is this node's own attempt, and rarer.
fn log_event(handle: &Handle<Router<ChaCha20Rng>>, event: NodeEvent) {
    match event {
        NodeEvent::PeerConnected {
            peer,
            info,
            direction,
        } => {
            let addr = handle
                .peer_info(&peer)
                .map(|peer_info| peer_info.remote_addr.to_string());
            info!(
                %peer,
                direction = %direction_name(direction),
                addr = %addr.as_deref().unwrap_or("gone"),
                agent = %info.agent,
                peers = handle.peers().len(),
                "peer joined"
            );
        }
        NodeEvent::PeerDisconnected {
            peer,
            reason,
            by,
            detail,
            unsent,
            unconfirmed,
            ..
        } => info!(
            %peer,
            reason = ?reason.as_str(),
            by = %closed_by_name(by),
            ?detail,
            unsent = unsent.len(),
            unconfirmed = unconfirmed.len(),
            peers = handle.peers().len(),
            "peer left"
        ),
        NodeEvent::InboundRefused {
            remote,
            peer,
            reason,
            by,
            detail,
        } => info!(
            %remote,
            peer = %peer.map_or_else(|| "unknown".to_string(), |peer| peer.to_string()),
            reason = ?reason.as_str(),
            by = %closed_by_name(by),
            ?detail,
            "inbound handshake refused"
        ),
        NodeEvent::DialFailed {
            addr,
            reason,
            detail,
            retry,
        } => {
            let retry = match retry {
                Retry::At(at) => handle
                    .with_node(move |_, now| at.saturating_duration_since(now))
                    .map_or_else(|| "never".to_string(), |wait| format!("in {wait:.1?}")),
                Retry::GivenUp => "given up".to_string(),
            };
            info!(%addr, reason = ?reason.as_str(), ?detail, ?retry, "dial failed");
        }
        NodeEvent::QueryConnected {
            peer,
            info,
            direction,
        } => {
            let mut offers: Vec<&str> = info
                .channels
                .iter()
                .map(|channel| channel.protocol.as_str())
                .collect();
            offers.dedup();
            debug!(
                %peer,
                direction = %direction_name(direction),
                listen = %info.listen_addr.map_or_else(|| "none".to_string(), |addr| addr.to_string()),
                agent = %info.agent,
                offers = %offers.join(","),
                "query connection opened"
            );
        }
        NodeEvent::QueryDisconnected {
            peer,
            reason,
            by,
            detail,
            unsent,
            unconfirmed,
        } => debug!(
            %peer,
            reason = ?reason.as_str(),
            by = %closed_by_name(by),
            ?detail,
            unsent = unsent.len(),
            unconfirmed = unconfirmed.len(),
            "query connection closed"
        ),
        NodeEvent::QueryFailed {
            addr,
            protocol,
            reason,
            detail,
        } => info!(%addr, %protocol, reason = ?reason.as_str(), ?detail, "query failed"),
        NodeEvent::SlowPeer { peer } => {
            warn!(%peer, "slow peer: refused broadcasts too long, disconnecting");
        }
        NodeEvent::Message { .. } | NodeEvent::Writable { .. } => {}
        other => debug!(event = ?other, "node event"),
    }
}

fn direction_name(direction: Direction) -> &'static str {
    match direction {
        Direction::Inbound => "inbound",
        Direction::Outbound => "outbound",
    }
}

fn closed_by_name(by: ClosedBy) -> &'static str {
    match by {
        ClosedBy::Local => "us",
        ClosedBy::Remote => "peer",
    }
}
