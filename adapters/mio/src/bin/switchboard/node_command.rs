//! `switchboard node`: one node on real sockets, logging who comes and goes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use switchboard::ChannelConfig;
use switchboard::addr_book::AddrBook;
use switchboard::node::{NodeConfig, NodeEvent};
use switchboard_mio::key_file::{self, KeyOrigin};
use switchboard_mio::{DataDir, DriverConfig, NodeApi, Runtime, fd_limit, os_seeded_rng};

use crate::args::NodeOptions;

/// The channel every `switchboard node` offers, so two of them have one in common.
const CHANNEL: u16 = 1;

/// How often the address book is written to the data directory, besides at shutdown: a node
/// killed without a chance to stop (SIGKILL, a crash) loses at most this much of it.
const ADDRESS_BOOK_SAVE_INTERVAL: Duration = Duration::from_secs(30);

/// How long a stop waits for the peers to confirm what was sent to them.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(2);

/// Longest the event loop waits before looking at the stop flag again.
const STOP_CHECK_INTERVAL: Duration = Duration::from_millis(200);

pub fn run(options: NodeOptions) -> Result<(), String> {
    let started = Instant::now();
    let log = |line: String| eprintln!("[{:9.3} s] {line}", started.elapsed().as_secs_f64());
    if let Err(error) = fd_limit::raise_nofile_limit() {
        log(format!("cannot raise the open-file limit: {error}"));
    }
    let data_dir = DataDir::open(&options.data_dir)
        .map_err(|error| format!("data dir {}: {error}", options.data_dir.display()))?;
    let key_path = options.key.clone().unwrap_or_else(|| data_dir.key_path());
    let mut rng = os_seeded_rng().map_err(|error| format!("no OS randomness: {error}"))?;
    let (keypair, origin) =
        key_file::load_or_generate(&key_path, &mut rng).map_err(|error| error.to_string())?;
    let verb = match origin {
        KeyOrigin::Loaded => "loaded",
        KeyOrigin::Generated => "generated",
    };
    log(format!("{verb} key {}", key_path.display()));
    let address_book = match data_dir.load_address_book() {
        Ok(book) => book,
        Err(error) => {
            log(format!(
                "address book unreadable ({error}); starting without it"
            ));
            None
        }
    };

    let mut config = NodeConfig::new(options.network, "switchboard/0.1");
    config.add_channel("switchboard", 1, ChannelConfig::new(CHANNEL));
    config.persistent_peers = options.persistent;
    // Seeds are dialed while the address book is nearly empty; peer exchange does the rest.
    config.discovery.seeds = options.seeds;
    let mut driver = DriverConfig::new(config, keypair, options.listen, 0..1 << 20);
    driver.address_book = address_book.filter(|bytes| {
        let book_config = driver.node.discovery.addr_book;
        match AddrBook::from_bytes(book_config, bytes, switchboard::Instant::ZERO) {
            Ok(book) => {
                log(format!(
                    "address book: {} addresses from the last run",
                    book.len()
                ));
                true
            }
            Err(error) => {
                log(format!(
                    "address book corrupt ({error}); starting with an empty one"
                ));
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
    let handle = Runtime::spawn(driver).map_err(|error| error.to_string())?;
    log(format!("node {}", handle.peer_id()));
    for addr in handle.local_addrs() {
        log(format!("listening on {addr}"));
    }
    let save_book = |log: &dyn Fn(String)| {
        if let Some(book) = handle.address_book()
            && let Err(error) = data_dir.save_address_book(&book)
        {
            log(format!("cannot save the address book: {error}"));
        }
    };
    let mut last_save = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if last_save.elapsed() >= ADDRESS_BOOK_SAVE_INTERVAL {
            save_book(&log);
            last_save = Instant::now();
        }
        let event = match handle.events().recv_timeout(STOP_CHECK_INTERVAL) {
            Ok(event) => event,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        match event {
            NodeEvent::PeerConnected {
                peer,
                info,
                direction,
            } => log(format!(
                "joined: {peer} ({direction:?}, {} on {}, listening on {})",
                info.agent,
                info.network,
                info.listen_addr
                    .map_or_else(|| "nothing".to_string(), |addr| addr.to_string())
            )),
            NodeEvent::PeerDisconnected {
                peer,
                reason,
                by,
                detail,
                ..
            } => log(format!(
                "left:   {peer} ({reason:?}, by {by:?}: {detail}); {} peers",
                handle.peers().len()
            )),
            NodeEvent::DialFailed {
                addr,
                reason,
                detail,
                retry,
            } => log(format!(
                "dial to {addr} failed ({reason:?}: {detail}); {retry:?}"
            )),
            NodeEvent::SlowPeer { peer } => log(format!("slow:   {peer}, disconnecting")),
            NodeEvent::Message { .. } => {}
            other => log(format!("event:  {other:?}")),
        }
    }
    log(format!(
        "stopping: saying goodbye to {} peers",
        handle.peers().len()
    ));
    save_book(&log);
    let report = handle.shutdown(SHUTDOWN_TIMEOUT);
    log(format!(
        "stopped: {} messages confirmed, {} handed back unconfirmed or unsent",
        report.confirmed(),
        report.returned()
    ));
    Ok(())
}
