//! `switchboard node`: one node on real sockets, logging who comes and goes.

use std::time::Instant;

use switchboard::node::{NodeConfig, NodeEvent};
use switchboard::{ChannelConfig, ChannelInfo};
use switchboard_mio::key_file::{self, KeyOrigin};
use switchboard_mio::{DataDir, DriverConfig, Runtime, fd_limit, os_seeded_rng};

use crate::args::NodeOptions;

/// The channel every `switchboard node` offers, so two of them have one in common.
const CHANNEL: u16 = 1;

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
    if let Ok(Some(book)) = data_dir.load_address_book() {
        log(format!(
            "address book: {} bytes from the last run",
            book.len()
        ));
    }

    let mut config = NodeConfig::new(options.network, "switchboard/0.1");
    config.add_channel(
        ChannelInfo {
            id: CHANNEL,
            protocol: "switchboard".into(),
            version: 1,
        },
        ChannelConfig::new(CHANNEL),
    );
    config.persistent_peers = options.persistent;
    let driver = DriverConfig::new(config, keypair, options.listen, 0..1 << 20);
    let handle = Runtime::spawn(driver).map_err(|error| error.to_string())?;
    log(format!("node {}", handle.peer_id()));
    for addr in handle.local_addrs() {
        log(format!("listening on {addr}"));
    }
    for seed in options.seeds {
        match handle.dial(seed) {
            Ok(()) => log(format!("dialing seed {seed}")),
            Err(error) => log(format!("not dialing seed {seed}: {error}")),
        }
    }
    while let Ok(event) = handle.events().recv() {
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
        }
    }
    Ok(())
}
