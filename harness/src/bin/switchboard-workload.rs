//! One node of the real-process harness: a `switchboard` node on the embedded `Driver` in
//! its own loop, sending tracked messages to every peer and logging every send, delivery
//! and account it gets ([`switchboard_harness::record`]).
//!
//! `switchboard-workload --data-dir DIR --index I --roster FILE [--persistent J,K]
//! [--period-ms MS] [--drop-nth-message N]`
//!
//! The data directory holds the node's key (written by the harness), its address book
//! (loaded at start, saved every few seconds: a SIGKILL loses at most that much) and its
//! log, appended to across restarts; the sequence numbers of its messages continue from
//! the log. SIGUSR1 stops its sends (what is in flight lands); SIGTERM stops it cleanly: no new sends, peers flushed, every message confirmed
//! or handed back, then `Stopped`.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, ErrorKind, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mio::{Events, Poll};
use switchboard::dial_queue::DialConfig;
use switchboard::discovery::{Discovery, DiscoveryConfig};
use switchboard::node::{NodeConfig, NodeEvent};
use switchboard::router::Router;
use switchboard::{ChannelConfig, Instant, NetAddress, PeerId, ReturnedMessage, SendError};
use switchboard_harness::clock::monotonic_nanos;
use switchboard_harness::record::{LOG_FILE, Record, RosterEntry, TRAFFIC_CHANNEL};
use switchboard_mio::{ChaCha20Rng, DataDir, Driver, DriverConfig, NodeApi, key_file};
use switchboard_sim::invariants::{Tag, content_hash};

/// How often the address book is written to the data directory.
const BOOK_SAVE_INTERVAL: Duration = Duration::from_secs(2);

/// How long the stop after SIGTERM waits for peers to confirm what was sent to them.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(2);

/// Longest the loop sleeps: how soon a tick or SIGTERM is noticed.
const LOOP_SLEEP: Duration = Duration::from_millis(20);

struct Options {
    data_dir: PathBuf,
    index: usize,
    roster: Vec<RosterEntry>,
    persistent: Vec<usize>,
    period: Duration,
    drop_nth_message: Option<u64>,
}

fn main() -> ExitCode {
    die_with_parent();
    match parse_options().and_then(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("switchboard-workload: {error}");
            ExitCode::FAILURE
        }
    }
}

/// A harness killed before its cleanup runs takes its nodes with it: SIGKILL when the
/// thread that started this process ends (`ip netns exec` execs this program, so that
/// thread is the harness's).
fn die_with_parent() {
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes integers and touches no memory of ours.
    #[allow(unsafe_code)]
    let result = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    if result != 0 {
        eprintln!(
            "switchboard-workload: PR_SET_PDEATHSIG: {}",
            io::Error::last_os_error()
        );
    }
}

fn parse_options() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let (mut data_dir, mut index, mut roster, mut persistent) = (None, None, None, Vec::new());
    let (mut period, mut drop_nth_message) = (Duration::from_millis(250), None);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let number = |value: &str| {
            value
                .parse::<u64>()
                .map_err(|error| format!("{flag} {value}: {error}"))
        };
        match flag.as_str() {
            "--data-dir" => data_dir = Some(PathBuf::from(value)),
            "--index" => index = Some(number(&value)? as usize),
            "--roster" => {
                let text = fs::read_to_string(&value).map_err(|e| format!("{value}: {e}"))?;
                roster = Some(serde_json::from_str(&text).map_err(|e| format!("{value}: {e}"))?);
            }
            "--persistent" => {
                for peer in value.split(',').filter(|peer| !peer.is_empty()) {
                    persistent.push(number(peer)? as usize);
                }
            }
            "--period-ms" => period = Duration::from_millis(number(&value)?),
            "--drop-nth-message" => drop_nth_message = Some(number(&value)?),
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(Options {
        data_dir: data_dir.ok_or("--data-dir missing")?,
        index: index.ok_or("--index missing")?,
        roster: roster.ok_or("--roster missing")?,
        persistent,
        period,
        drop_nth_message,
    })
}

/// The log, one `write` a line.
struct Log(File);

impl Log {
    fn write(&mut self, record: &Record) {
        let mut line = serde_json::to_string(record).unwrap_or_default();
        line.push('\n');
        if let Err(error) = self.0.write_all(line.as_bytes()) {
            eprintln!("switchboard-workload: cannot write the log: {error}");
        }
    }
}

/// The previous runs' log: how many runs, and the highest sequence number used.
fn read_history(path: &Path) -> io::Result<(u32, u64)> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok((0, 0)),
        Err(error) => return Err(error),
    };
    let (mut runs, mut last_seq) = (0, 0);
    for line in BufReader::new(file).lines() {
        // A line torn by a SIGKILL is no record; the one after it starts a new run.
        match serde_json::from_str::<Record>(&line?) {
            Ok(Record::Start { .. }) => runs += 1,
            Ok(Record::Intent { seq, .. }) => last_seq = last_seq.max(seq),
            _ => {}
        }
    }
    Ok((runs, last_seq))
}

fn node_config(options: &Options) -> Result<NodeConfig, String> {
    let mut node = NodeConfig::new("switchboard-harness", "switchboard-workload/1.0");
    node.add_channel("traffic", 1, ChannelConfig::new(TRAFFIC_CHANNEL));
    // Every node shares 10.77.0.0/24, a private network: the per-subnet caps would refuse
    // most of them, and a book of routable addresses only would keep none.
    node.limits.max_inbound_per_subnet = node.limits.max_inbound;
    node.limits.max_pending_per_subnet = node.limits.max_pending_handshakes;
    // Faults are seconds long: find a dead connection within seconds, and redial a
    // persistent peer at least every 4 s, so the network heals within the harness's bound.
    node.connection.ping_interval = Duration::from_secs(2);
    node.connection.pong_timeout = Duration::from_secs(5);
    node.dial = DialConfig {
        backoff_cap: Duration::from_secs(4),
        ..DialConfig::default()
    };
    for &peer in &options.persistent {
        let entry = options
            .roster
            .get(peer)
            .ok_or(format!("persistent peer {peer} not in the roster"))?;
        let id: PeerId = entry
            .peer_id
            .parse()
            .map_err(|error| format!("roster entry {peer}: {error:?}"))?;
        node.persistent_peers
            .push(NetAddress::new(Some(id), entry.addr));
    }
    Ok(node)
}

/// Discovery for the harness's private network: every node shares one address group, and
/// its addresses are not publicly routable.
fn discovery_config() -> DiscoveryConfig {
    let mut discovery = DiscoveryConfig {
        one_outbound_per_group: false,
        ..DiscoveryConfig::default()
    };
    discovery.addr_book.routable_only = false;
    discovery
}

fn run(options: Options) -> Result<(), String> {
    let data_dir = DataDir::open(&options.data_dir).map_err(|e| e.to_string())?;
    let log_path = data_dir.path().join(LOG_FILE);
    let (runs, last_seq) = read_history(&log_path).map_err(|e| format!("log: {e}"))?;
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| format!("log: {e}"))?;
    let mut log = Log(file);
    let keypair = key_file::load(&data_dir.key_path()).map_err(|e| e.to_string())?;
    let roster_ids: Vec<Option<PeerId>> = options
        .roster
        .iter()
        .map(|entry| entry.peer_id.parse().ok())
        .collect();
    let index_of = |peer: &PeerId| roster_ids.iter().position(|id| id.as_ref() == Some(peer));
    let listen: SocketAddr = options
        .roster
        .get(options.index)
        .ok_or("--index not in the roster")?
        .addr;

    let node = node_config(&options)?;
    let mut config = DriverConfig::new(node, keypair, vec![listen], 0..4096);
    // Loaded into `Discovery` as the driver starts; a corrupt one is set aside.
    config.address_book = data_dir.load_address_book().map_err(|e| e.to_string())?;
    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGTERM, Arc::clone(&stop))
        .map_err(|e| e.to_string())?;
    let quiet = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGUSR1, Arc::clone(&quiet))
        .map_err(|e| e.to_string())?;
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let mut driver = Driver::with_router(poll.registry(), config, |router| {
        let discovery = Discovery::new(discovery_config(), router.node_mut().rng());
        router.register(discovery).map(drop)
    })
    .map_err(|e| e.to_string())?;
    if let Some(nth) = options.drop_nth_message {
        driver.drop_nth_message(nth);
    }
    let mut next_seq = last_seq + 1;
    log.write(&Record::Start {
        t: monotonic_nanos(),
        run: runs + 1,
        book: driver
            .discovery()
            .map_or(0, |discovery| discovery.addr_book().len()),
        book_error: driver.address_book_error().map(|e| e.to_string()),
        next_seq,
    });

    let me = options.index;
    let mut peers: BTreeSet<usize> = BTreeSet::new();
    let mut events = Events::with_capacity(1024);
    let mut next_tick = std::time::Instant::now() + options.period;
    let mut next_save = std::time::Instant::now() + BOOK_SAVE_INTERVAL;
    let mut stopping = false;
    let mut drop_logged = false;
    loop {
        let timeout = driver
            .poll_timeout()
            .map_or(LOOP_SLEEP, |timeout| timeout.min(LOOP_SLEEP));
        match poll.poll(&mut events, Some(timeout)) {
            Ok(()) => {}
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(error) => return Err(format!("poll: {error}")),
        }
        for event in events.iter() {
            if driver.owns(event.token()) {
                driver.handle_event(event);
            }
        }
        // Each event is logged before the next `poll_event` runs the driver again (the
        // round that sends a delivery's credit).
        while let Some(event) = driver.poll_event() {
            let t = monotonic_nanos();
            match event {
                NodeEvent::PeerConnected { peer, .. } => {
                    let peer = index_of(&peer);
                    peers.extend(peer);
                    log.write(&Record::Joined { t, peer });
                }
                NodeEvent::PeerDisconnected {
                    peer,
                    reason,
                    unsent,
                    unconfirmed,
                    confirmed_by_channel,
                    ..
                } => {
                    let peer = index_of(&peer);
                    if let Some(peer) = peer {
                        peers.remove(&peer);
                    }
                    let confirmed = confirmed_by_channel
                        .iter()
                        .filter(|(channel, _)| *channel == TRAFFIC_CHANNEL)
                        .map(|(_, count)| count)
                        .sum();
                    log.write(&Record::Left {
                        t,
                        peer,
                        reason: reason.as_str().to_string(),
                        confirmed,
                        unconfirmed: own_seqs(me, &unconfirmed),
                        unsent: own_seqs(me, &unsent),
                    });
                }
                NodeEvent::Message {
                    peer,
                    channel,
                    message,
                } => {
                    if let Some(tag) = Tag::tracked(&message) {
                        log.write(&Record::Delivered {
                            t,
                            from: index_of(&peer),
                            channel,
                            sender: tag.sender,
                            seq: tag.seq,
                            len: u32::try_from(message.len()).unwrap_or(u32::MAX),
                            hash: content_hash(&message),
                        });
                    }
                }
                _ => {}
            }
        }
        if !drop_logged
            && let Some(NodeEvent::Message { peer, message, .. }) = driver.dropped_message()
            && let Some(tag) = Tag::tracked(message)
        {
            drop_logged = true;
            log.write(&Record::Dropped {
                t: monotonic_nanos(),
                from: index_of(peer),
                sender: tag.sender,
                seq: tag.seq,
            });
        }
        if stopping {
            if driver.is_idle() {
                break;
            }
            continue;
        }
        if stop.load(Ordering::Relaxed) {
            stopping = true;
            save_book(&data_dir, &driver, &mut log);
            driver.shutdown(SHUTDOWN_TIMEOUT);
            continue;
        }
        let now = std::time::Instant::now();
        if now >= next_save {
            save_book(&data_dir, &driver, &mut log);
            next_save = now + BOOK_SAVE_INTERVAL;
        }
        if now >= next_tick && !quiet.load(Ordering::Relaxed) {
            next_tick = now + options.period;
            for &peer in &peers {
                let Some(id) = roster_ids.get(peer).copied().flatten() else {
                    continue;
                };
                let seq = next_seq;
                next_seq += 1;
                let t = monotonic_nanos();
                let tag = Tag {
                    sender: me,
                    seq,
                    sent_at: Instant::from_nanos(t),
                };
                let message = tag.message(message_len(me, seq));
                let len = u32::try_from(message.len()).unwrap_or(u32::MAX);
                let hash = content_hash(&message);
                log.write(&Record::Intent {
                    t,
                    to: peer,
                    seq,
                    len,
                    hash,
                });
                let refused = driver
                    .send(&id, TRAFFIC_CHANNEL, message)
                    .err()
                    .map(|error| refusal(&error).to_string());
                log.write(&Record::Sent {
                    t: monotonic_nanos(),
                    to: peer,
                    seq,
                    refused,
                });
            }
        }
    }
    log.write(&Record::Stopped {
        t: monotonic_nanos(),
    });
    Ok(())
}

/// Lengths from 24 to about 4 KiB, a function of sender and sequence number.
fn message_len(sender: usize, seq: u64) -> usize {
    let mix = (seq ^ (sender as u64).wrapping_mul(0x9E37_79B9)).wrapping_mul(2_654_435_761);
    24 + (mix % 4000) as usize
}

/// The sequence numbers of this node's tracked messages among `returned`.
fn own_seqs(me: usize, returned: &[ReturnedMessage]) -> Vec<u64> {
    returned
        .iter()
        .filter(|returned| returned.channel == TRAFFIC_CHANNEL)
        .filter_map(|returned| Tag::tracked(&returned.message))
        .filter(|tag| tag.sender == me)
        .map(|tag| tag.seq)
        .collect()
}

fn refusal(error: &SendError) -> &'static str {
    match error {
        SendError::Full(_) => "full",
        SendError::TooLarge(_) => "too_large",
        SendError::ChannelNotOpen(_) => "channel_not_open",
        SendError::NotConnected(_) => "not_connected",
        _ => "other",
    }
}

fn save_book(data_dir: &DataDir, driver: &Driver<Router<ChaCha20Rng>>, log: &mut Log) {
    let Some(book) = driver.address_book() else {
        return;
    };
    if let Err(error) = data_dir.save_address_book(&book) {
        log.write(&Record::BookSaveFailed {
            t: monotonic_nanos(),
            error: error.to_string(),
        });
    }
}
