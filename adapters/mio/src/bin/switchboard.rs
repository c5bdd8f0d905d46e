//! The `switchboard` command.
//!
//! `switchboard demo [--mib N]` starts a listener and a dialer on 127.0.0.1, runs the Noise XX
//! handshake between them over real TCP, then streams N MiB of encrypted records from dialer
//! to listener and checks every byte. The state machines are the sans-IO core; this file
//! only moves their bytes through blocking std sockets.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use switchboard::handshake::{Established, Handshake};
use switchboard::record::{MAX_PLAINTEXT_LEN, RecordDecoder, seal_record};
use switchboard::{ChannelInfo, Keypair, NodeInfo, PeerId};
use switchboard_mio::os_seeded_rng;

const USAGE: &str = "usage: switchboard demo [--mib N]\n\n  demo    two endpoints on 127.0.0.1: handshake, then N MiB (default 256) of encrypted records";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("demo") => parse_mib(&args[1..]).and_then(demo),
        Some("-h" | "--help") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => Err(USAGE.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

fn parse_mib(args: &[String]) -> Result<u64, String> {
    match args {
        [] => Ok(256),
        [flag, value] if flag == "--mib" => value
            .parse()
            .ok()
            .filter(|mib| (1..=65536).contains(mib))
            .ok_or_else(|| format!("--mib takes a number of MiB in 1..=65536, not {value:?}")),
        _ => Err(USAGE.to_string()),
    }
}

fn node_info(agent: &str) -> NodeInfo {
    let mut info = NodeInfo::new("switchboard-demo", agent);
    info.channels.push(ChannelInfo {
        id: 1,
        protocol: "demo".into(),
        version: 1,
    });
    info
}

fn demo(mib: u64) -> Result<(), String> {
    let mut rng = os_seeded_rng().map_err(|e| format!("no OS randomness: {e}"))?;
    let listener_key = Keypair::generate(&mut rng);
    let dialer_key = Keypair::generate(&mut rng);
    let listener_id = listener_key.peer_id();
    let socket = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    let address = socket.local_addr().map_err(|e| e.to_string())?;
    eprintln!("listener {listener_id} on {address}");

    let total = mib * 1024 * 1024;
    let receiver = thread::spawn(move || -> Result<(PeerId, u64, Duration), String> {
        let (mut stream, _) = socket.accept().map_err(|e| format!("accept: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let mut rng = os_seeded_rng().map_err(|e| e.to_string())?;
        let handshake = Handshake::responder(&listener_key, node_info("listener"), &mut rng)
            .map_err(|e| e.to_string())?;
        let (mut session, leftover) = run_handshake(handshake, &mut stream)?;
        let started = Instant::now();
        let received = receive_records(&mut session, &mut stream, leftover, total)?;
        Ok((session.peer_id, received, started.elapsed()))
    });

    let started = Instant::now();
    let mut stream = TcpStream::connect(address).map_err(|e| format!("connect: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let handshake = Handshake::initiator(
        &dialer_key,
        node_info("dialer"),
        Some(listener_id),
        &mut rng,
    )
    .map_err(|e| e.to_string())?;
    let (mut session, _) = run_handshake(handshake, &mut stream)?;
    let handshake_time = started.elapsed();
    println!(
        "handshake: dialer {} authenticated listener {} ({}) in {:.2} ms",
        dialer_key.peer_id(),
        session.peer_id,
        session.info.agent,
        handshake_time.as_secs_f64() * 1e3
    );
    send_records(&mut session, &mut stream, total)?;
    let (seen_dialer, received, elapsed) = receiver
        .join()
        .map_err(|_| "listener thread panicked".to_string())??;
    if seen_dialer != dialer_key.peer_id() {
        return Err("listener saw the wrong dialer identity".into());
    }
    let rate = received as f64 / elapsed.as_secs_f64() / 1e6;
    println!(
        "transfer: {mib} MiB in {} records, every byte checked, {:.2} s, {rate:.0} MB/s",
        received.div_ceil(MAX_PLAINTEXT_LEN as u64),
        elapsed.as_secs_f64()
    );
    Ok(())
}

/// Pumps the handshake over a blocking socket. Returns the session and any bytes that
/// arrived after the last handshake message (the first records).
fn run_handshake(
    mut handshake: Handshake,
    stream: &mut TcpStream,
) -> Result<(Established, Vec<u8>), String> {
    let mut outgoing = Vec::new();
    let mut buffer = vec![0u8; 8192];
    loop {
        if handshake.poll_transmit(&mut outgoing) {
            stream
                .write_all(&outgoing)
                .map_err(|e| format!("handshake write: {e}"))?;
            outgoing.clear();
        }
        if handshake.is_established() {
            let session = handshake
                .into_established()
                .ok_or("handshake lost its session")?;
            return Ok((session, Vec::new()));
        }
        let read = stream
            .read(&mut buffer)
            .map_err(|e| format!("handshake read: {e}"))?;
        if read == 0 {
            return Err("peer closed during the handshake".into());
        }
        let input = &buffer[..read];
        let used = handshake
            .handle_input(input)
            .map_err(|e| format!("handshake failed: {e} (reason: {})", e.reason()))?;
        if handshake.is_established() {
            handshake.poll_transmit(&mut outgoing);
            stream
                .write_all(&outgoing)
                .map_err(|e| format!("handshake write: {e}"))?;
            let session = handshake
                .into_established()
                .ok_or("handshake lost its session")?;
            return Ok((session, input[used..].to_vec()));
        }
    }
}

/// The byte at `offset` of the demo stream: a pattern the receiver can check.
fn pattern(offset: u64) -> u8 {
    (offset % 251) as u8
}

fn send_records(
    session: &mut Established,
    stream: &mut TcpStream,
    total: u64,
) -> Result<(), String> {
    let mut payload = vec![0u8; MAX_PLAINTEXT_LEN];
    let mut wire = Vec::with_capacity(16 * (MAX_PLAINTEXT_LEN + 18));
    let mut sent = 0u64;
    let mut next_report = Instant::now() + Duration::from_secs(1);
    while sent < total {
        let len = (total - sent).min(MAX_PLAINTEXT_LEN as u64) as usize;
        for (i, byte) in payload[..len].iter_mut().enumerate() {
            *byte = pattern(sent + i as u64);
        }
        seal_record(&mut session.cipher, &payload[..len], &mut wire).map_err(|e| e.to_string())?;
        sent += len as u64;
        if wire.len() >= 15 * (MAX_PLAINTEXT_LEN + 18) || sent == total {
            stream.write_all(&wire).map_err(|e| format!("write: {e}"))?;
            wire.clear();
        }
        if Instant::now() >= next_report {
            eprintln!("  sent {} of {} MiB", sent >> 20, total >> 20);
            next_report += Duration::from_secs(1);
        }
    }
    Ok(())
}

fn receive_records(
    session: &mut Established,
    stream: &mut TcpStream,
    leftover: Vec<u8>,
    total: u64,
) -> Result<u64, String> {
    let mut decoder = RecordDecoder::new();
    let mut received = 0u64;
    let mut buffer = vec![0u8; 256 * 1024];
    let mut check = |input: &[u8], received: &mut u64| -> Result<(), String> {
        let mut rest = input;
        while let Some(plaintext) = decoder
            .decode(&mut session.cipher, &mut rest)
            .map_err(|e| e.to_string())?
        {
            for (i, byte) in plaintext.iter().enumerate() {
                if *byte != pattern(*received + i as u64) {
                    return Err(format!("corrupted byte at offset {}", *received + i as u64));
                }
            }
            *received += plaintext.len() as u64;
        }
        Ok(())
    };
    check(&leftover, &mut received)?;
    while received < total {
        let read = match stream.read(&mut buffer) {
            Ok(0) => return Err(format!("dialer closed after {received} of {total} bytes")),
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("read: {e}")),
        };
        check(&buffer[..read], &mut received)?;
    }
    Ok(received)
}
