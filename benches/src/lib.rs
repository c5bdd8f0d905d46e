//! Shared setup for the criterion benches (`benches/`) and the `perf-report` binary.
//!
//! Every workload is defined here exactly once, so the criterion figures and the JSON
//! figures of `perf-report` measure the same code. Each workload is a small struct holding
//! its pre-built inputs, with one method doing one unit of work (one handshake, one record);
//! the callers only decide how often to call it and how to time it.
//!
//! The workloads come in pairs of *ours* and its *floor or rival*:
//!
//! | ours | floor / rival |
//! |---|---|
//! | [`SwitchboardHandshake`] | [`DhFloor`] (6 X25519 DH + 2 key generations), [`SnowHandshake`] |
//! | [`RecordPath`] (`seal_record` + `RecordDecoder`) | [`AeadFloor`] (raw `aes-gcm` in place) |
//! | [`ConnThroughput`] (two `Connection`s: 1 MiB, 64 × 1 KiB, 64 B messages) | [`AeadFloor`]; for 1 MiB also [`OneCopyBound`] (the most an in-place AEAD allows) |
//!
//! [`ConnectionSetup`] builds established, idle `Connection` pairs: the throughput workloads
//! run on one, and `perf-report` counts the heap a thousand of them hold.
//!
//! The node workloads (module `node`) have no floor but themselves: [`NodeNet`] wires `Node`s
//! to each other in memory, and `perf-report` counts the heap a thousand idle connections
//! cost the nodes holding them; [`HubRouting`] relays messages through one `Node` with 10 or
//! 10,000 peers, and the figure is the ratio of the two.
//!
//! The machines are noisy, so only ratios between a pair measured in the same run are
//! meaningful; absolute numbers are context.
//!
//! Randomness is a seeded [`ChaCha20Rng`], so every run performs the same work (the core
//! takes its randomness from the caller). `snow` is the exception: it draws its ephemeral
//! keys from the OS, which costs it a `getrandom` call per handshake side — part of what
//! using `snow` costs, so it is left in.

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use switchboard::connection::{Connection, Event};
use switchboard::handshake::{Established, Handshake, PROLOGUE};
use switchboard::record::{HEADER, MAX_PLAINTEXT_LEN, RecordDecoder, seal_record};
use switchboard::{
    ChannelConfig, ChannelId, ChannelInfo, ConnectionConfig, Instant, Keypair, NodeInfo, SendError,
    TransportCipher,
};
use x25519_dalek::{PublicKey as DhPublic, StaticSecret};

mod aead_floor;
pub mod loopback;
mod node;

pub use aead_floor::{AeadBackend, AeadFloor, OneCopyBound};
pub use node::{
    HubRouting, NODE_CHANNEL, NODE_PORT, NetEvents, NodeNet, ROUTE_MESSAGE_LEN, node_config,
    node_ip,
};

/// Network id both benchmark nodes belong to.
pub const NETWORK: &str = "bench";

/// The Noise suite switchboard implements, spelled for `snow`.
pub const SNOW_PARAMS: &str = "Noise_XX_25519_AESGCM_BLAKE2b";

/// Plaintext bytes per record in the throughput workloads: a full record, the size bulk
/// transfers use, so per-record overheads weigh as little as they ever do.
pub const RECORD_PAYLOAD_LEN: usize = MAX_PLAINTEXT_LEN;

/// A seeded RNG: the same seed gives the same keys and the same handshakes in every run.
pub fn seeded_rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// The two benchmark nodes: their static key pairs and their `NodeInfo`s.
///
/// Both advertise the same single channel, so the handshake's checks pass and it does the
/// full verification work (identity, version, network, common channel).
pub struct Peers {
    /// The dialer's (Noise initiator's) static key pair.
    pub dialer: Keypair,
    /// The listener's (Noise responder's) static key pair.
    pub listener: Keypair,
    /// What the dialer says about itself.
    pub dialer_info: NodeInfo,
    /// What the listener says about itself.
    pub listener_info: NodeInfo,
}

impl Peers {
    /// Two fresh key pairs from `rng` and `NodeInfo`s of network [`NETWORK`] with one common
    /// channel. The two `NodeInfo`s encode to the same length, which [`SnowHandshake`] relies
    /// on to send payloads of the same size as switchboard.
    pub fn new(rng: &mut ChaCha20Rng) -> Self {
        let info = |agent: &str, port: u16| {
            let mut info = NodeInfo::new(NETWORK, agent);
            info.listen_addr = Some(SocketAddr::from(([127, 0, 0, 1], port)));
            info.channels.push(ChannelInfo {
                id: 1,
                protocol: "bench".into(),
                version: 1,
            });
            info
        };
        Peers {
            dialer: Keypair::generate(rng),
            listener: Keypair::generate(rng),
            dialer_info: info("switchboard-bench/dialer", 26656),
            listener_info: info("switchboard-bench/listen", 26657),
        }
    }

    /// Length of the encoded `NodeInfo` each side sends in its handshake payload.
    pub fn encoded_info_len(&self) -> usize {
        let dialer = encode(&self.dialer_info).len();
        let listener = encode(&self.listener_info).len();
        assert_eq!(
            dialer, listener,
            "both NodeInfos must encode to the same length"
        );
        dialer
    }
}

fn encode(info: &NodeInfo) -> Vec<u8> {
    info.encode().expect("the benchmark NodeInfo is valid")
}

/// One full switchboard handshake, both sides in one thread, in memory: Noise XX with each
/// side's `NodeInfo` inside, the peer checks, and `Split()` into transport ciphers.
///
/// This is what a real connection pays before its first record, minus the socket I/O.
pub struct SwitchboardHandshake {
    peers: Peers,
    rng: ChaCha20Rng,
    /// Reused between handshakes: the "network" between the two sides.
    wire: Vec<u8>,
}

impl SwitchboardHandshake {
    /// Fixed keys and `NodeInfo`s from `seed`; each handshake draws fresh ephemeral keys
    /// from the same seeded RNG, as a real node would from its own.
    pub fn new(seed: u64) -> Self {
        let mut rng = seeded_rng(seed);
        let peers = Peers::new(&mut rng);
        SwitchboardHandshake {
            peers,
            rng,
            wire: Vec::with_capacity(1024),
        }
    }

    /// The key pairs and `NodeInfo`s, e.g. to give `snow` the same static keys.
    pub fn peers(&self) -> &Peers {
        &self.peers
    }

    /// Runs one handshake to completion and returns (dialer's, listener's) sessions.
    ///
    /// The `NodeInfo` clones are part of the timed work: the constructors take them by value,
    /// so a real caller pays them too.
    ///
    /// # Panics
    /// If the handshake fails, which with these fixed, compatible peers is a bug.
    pub fn run(&mut self) -> (Established, Established) {
        let peers = &self.peers;
        let mut dialer = Handshake::initiator(
            &peers.dialer,
            peers.dialer_info.clone(),
            Some(peers.listener.peer_id()),
            &mut self.rng,
        )
        .expect("dialer NodeInfo is valid");
        let mut listener =
            Handshake::responder(&peers.listener, peers.listener_info.clone(), &mut self.rng)
                .expect("listener NodeInfo is valid");
        let wire = &mut self.wire;
        while !(dialer.is_established() && listener.is_established()) {
            wire.clear();
            while dialer.poll_transmit(wire) {}
            listener
                .handle_input(wire)
                .expect("listener accepts the dialer");
            wire.clear();
            while listener.poll_transmit(wire) {}
            dialer
                .handle_input(wire)
                .expect("dialer accepts the listener");
        }
        // The dialer's message 3 was delivered in the last round; nothing may be left over.
        wire.clear();
        assert!(!dialer.poll_transmit(wire) && !listener.poll_transmit(wire));
        let dialer = dialer.into_established().expect("dialer established");
        let listener = listener.into_established().expect("listener established");
        (dialer, listener)
    }

    /// Checks once, outside any timed loop, that a handshake authenticates the right peers
    /// and yields a working cipher pair.
    pub fn verify(&mut self) {
        let (mut dialer, mut listener) = self.run();
        assert_eq!(dialer.peer_id, self.peers.listener.peer_id());
        assert_eq!(listener.peer_id, self.peers.dialer.peer_id());
        assert_eq!(dialer.info, self.peers.listener_info);
        assert_eq!(listener.info, self.peers.dialer_info);
        assert_eq!(dialer.handshake_hash, listener.handshake_hash);
        let mut record = Vec::new();
        dialer
            .cipher
            .encrypt(b"ping", &mut record)
            .expect("fresh cipher");
        let len = listener
            .cipher
            .decrypt_in_place(&mut record)
            .expect("both sides derived the same keys");
        assert_eq!(&record[..len], b"ping");
    }
}

/// The same Noise XX handshake done with `snow`: same suite, prologue and static keys, and
/// payloads of the encoded `NodeInfo`'s size in messages 2 and 3 — but no `NodeInfo`
/// encoding, decoding or peer checks, which `snow` does not do.
///
/// Note what `snow`'s API makes it pay that switchboard's does not: it derives each static
/// public key from the private key on every build (one extra X25519 base-point
/// multiplication per side) and draws ephemeral keys from the OS.
pub struct SnowHandshake {
    params: snow::params::NoiseParams,
    dialer_secret: [u8; 32],
    listener_secret: [u8; 32],
    payload: Vec<u8>,
    message: Vec<u8>,
    received: Vec<u8>,
}

impl SnowHandshake {
    /// Uses `peers`' static keys and a payload as long as their encoded `NodeInfo`.
    pub fn new(peers: &Peers) -> Self {
        let payload_len = peers.encoded_info_len();
        SnowHandshake {
            params: SNOW_PARAMS.parse().expect("a valid Noise protocol name"),
            dialer_secret: peers.dialer.secret_bytes(),
            listener_secret: peers.listener.secret_bytes(),
            payload: (0..payload_len).map(|i| i as u8).collect(),
            message: vec![0; 65535],
            received: vec![0; 65535],
        }
    }

    /// Runs one handshake to completion and returns (initiator's, responder's) transport
    /// states.
    ///
    /// # Panics
    /// If `snow` refuses a step, which with these inputs is a bug.
    pub fn run(&mut self) -> (snow::TransportState, snow::TransportState) {
        let mut initiator = snow::Builder::new(self.params.clone())
            .local_private_key(&self.dialer_secret)
            .and_then(|builder| builder.prologue(PROLOGUE))
            .and_then(snow::Builder::build_initiator)
            .expect("snow initiator");
        let mut responder = snow::Builder::new(self.params.clone())
            .local_private_key(&self.listener_secret)
            .and_then(|builder| builder.prologue(PROLOGUE))
            .and_then(snow::Builder::build_responder)
            .expect("snow responder");
        // -> e
        let len = initiator
            .write_message(&[], &mut self.message)
            .expect("message 1");
        let read = responder
            .read_message(&self.message[..len], &mut self.received)
            .expect("read 1");
        debug_assert_eq!(read, 0);
        // <- e, ee, s, es, payload
        let len = responder
            .write_message(&self.payload, &mut self.message)
            .expect("message 2");
        let read = initiator
            .read_message(&self.message[..len], &mut self.received)
            .expect("read 2");
        black_box(&self.received[..read]);
        // -> s, se, payload
        let len = initiator
            .write_message(&self.payload, &mut self.message)
            .expect("message 3");
        let read = responder
            .read_message(&self.message[..len], &mut self.received)
            .expect("read 3");
        black_box(&self.received[..read]);
        (
            initiator.into_transport_mode().expect("initiator finished"),
            responder.into_transport_mode().expect("responder finished"),
        )
    }

    /// Checks once that a `snow` handshake carries the payload and yields working ciphers,
    /// so the timed runs are known to do the whole handshake.
    pub fn verify(&mut self) {
        let (mut initiator, mut responder) = self.run();
        assert_eq!(&self.received[..self.payload.len()], &self.payload[..]);
        let len = initiator
            .write_message(b"ping", &mut self.message)
            .expect("transport write");
        let read = responder
            .read_message(&self.message[..len], &mut self.received)
            .expect("transport read");
        assert_eq!(&self.received[..read], b"ping");
    }
}

/// The floor of a handshake: the public-key work Noise XX cannot avoid, and nothing else.
///
/// Each side generates one ephemeral key pair (2 base-point multiplications) and the pattern
/// needs 3 DH per side (`ee`, `es`, `se`): 6 X25519 DH. Static key pairs are long-lived and
/// their public halves precomputed, in switchboard's `Keypair` as here. Everything else a
/// handshake does — hashing, key schedules, AEAD of a few bytes, `NodeInfo`, checks — is
/// overhead measured against this.
pub struct DhFloor {
    dialer_static: StaticSecret,
    listener_static: StaticSecret,
    dialer_static_public: DhPublic,
    listener_static_public: DhPublic,
    dialer_ephemeral: StaticSecret,
    listener_ephemeral: StaticSecret,
}

impl DhFloor {
    /// Keys drawn from a seeded RNG (the same `x25519-dalek` build the core uses).
    pub fn new(seed: u64) -> Self {
        let mut rng = seeded_rng(seed);
        let mut secret = || {
            let mut bytes = [0u8; 32];
            rng.fill_bytes(&mut bytes);
            StaticSecret::from(bytes)
        };
        let (dialer_static, listener_static) = (secret(), secret());
        let (dialer_ephemeral, listener_ephemeral) = (secret(), secret());
        DhFloor {
            dialer_static_public: DhPublic::from(&dialer_static),
            listener_static_public: DhPublic::from(&listener_static),
            dialer_static,
            listener_static,
            dialer_ephemeral,
            listener_ephemeral,
        }
    }

    /// 2 ephemeral public-key derivations and the 6 DH of one XX handshake, in protocol
    /// order; returns the shared secrets as `[dialer ee, es, se, listener ee, es, se]`.
    /// Inputs go through `black_box` so nothing is computed once and hoisted.
    pub fn run(&self) -> [[u8; 32]; 6] {
        let dialer_e = black_box(&self.dialer_ephemeral);
        let listener_e = black_box(&self.listener_ephemeral);
        let dialer_s = black_box(&self.dialer_static);
        let listener_s = black_box(&self.listener_static);
        let dialer_e_public = DhPublic::from(dialer_e);
        let listener_e_public = DhPublic::from(listener_e);
        let dh = |secret: &StaticSecret, public: &DhPublic| {
            secret.diffie_hellman(black_box(public)).to_bytes()
        };
        // Listener writes message 2: ee, es.
        let listener_ee = dh(listener_e, &dialer_e_public);
        let listener_es = dh(listener_s, &dialer_e_public);
        // Dialer reads message 2: ee, es; writes message 3: se.
        let dialer_ee = dh(dialer_e, &listener_e_public);
        let dialer_es = dh(dialer_e, &self.listener_static_public);
        let dialer_se = dh(dialer_s, &listener_e_public);
        // Listener reads message 3: se.
        let listener_se = dh(listener_e, &self.dialer_static_public);
        [
            dialer_ee,
            dialer_es,
            dialer_se,
            listener_ee,
            listener_es,
            listener_se,
        ]
    }

    /// Checks once that the six DH pair up, i.e. the floor computes a real handshake's DH.
    pub fn verify(&self) {
        let [
            dialer_ee,
            dialer_es,
            dialer_se,
            listener_ee,
            listener_es,
            listener_se,
        ] = self.run();
        assert_eq!(dialer_ee, listener_ee);
        assert_eq!(dialer_es, listener_es);
        assert_eq!(dialer_se, listener_se);
    }
}

/// The payload of every throughput workload: [`RECORD_PAYLOAD_LEN`] non-constant bytes.
pub fn payload() -> Vec<u8> {
    (0..RECORD_PAYLOAD_LEN).map(|i| (i % 251) as u8).collect()
}

/// Where [`RecordPath`] puts its payload relative to its output buffer, in page offsets.
///
/// This mattered more than it should while `seal_record` copied the plaintext into the
/// record: on the AMD EPYC machine (glibc 2.36) where it was found, `memcpy` of 64 KiB ran at
/// ~55 GB/s, except when `(dst - src) mod 4096` was 1..=15, where glibc's `rep movsb` path
/// dropped to ~3.5 GB/s — and the copy went to 2 bytes past the start of a record (after its
/// header), so a payload and an output buffer sharing a page offset landed exactly there.
///
/// `seal_record` no longer copies: the cipher reads the payload and writes the ciphertext
/// 2 bytes past the record's start, so the placement now sets the distance between the
/// cipher's loads and its stores, which a CPU's store-to-load aliasing checks may also see
/// (4K aliasing). The layout is still chosen explicitly, so that the benchmark's result
/// does not change with unrelated allocations, and both placements stay measured, so that
/// a copy creeping back onto the path shows up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayloadPlacement {
    /// Payload and output buffer at unrelated page offsets (half a page apart): the usual
    /// case for two heap buffers, which are 16-byte aligned at unrelated page offsets.
    Apart,
    /// Payload and output buffer at the same page offset, so the ciphertext is written at
    /// `(dst - src) mod 4096 == 2` from the plaintext it is read from: what two buffers of
    /// 128 KiB or more get from glibc (each is mmapped at page offset 16), and what two
    /// back-to-back 64 KiB heap allocations got there.
    PageAliased,
}

impl PayloadPlacement {
    /// The `(dst - src) mod 4096` between a payload byte and its ciphertext byte in the
    /// record `seal_record` writes (formerly the distance of its plaintext copy).
    pub fn copy_distance(self) -> usize {
        match self {
            PayloadPlacement::Apart => HEADER + 2048,
            PayloadPlacement::PageAliased => HEADER,
        }
    }
}

const PAGE: usize = 4096;

/// Switchboard's record layer on a cipher pair from a real handshake: the sender's
/// [`seal_record`] into a reused output buffer, and the receiver's [`RecordDecoder`]
/// reassembling and opening it from the wire bytes.
///
/// This is the per-record work of a bulk transfer, sender and receiver in one thread;
/// compare it with [`AeadFloor`] to see what framing and buffering cost on top of AES-GCM.
/// Neither side copies the 64 KiB: the sender encrypts from the payload straight into the
/// record (after zero-filling its room, a write-only pass), and the decoder, handed the
/// whole record at once as a large read would, decrypts from the wire bytes straight into
/// its own reused buffer. What remains on top of the floor is that zero-fill, the
/// out-of-place cipher passes touching two buffers instead of one, and per-record
/// bookkeeping.
pub struct RecordPath {
    sender: TransportCipher,
    receiver: TransportCipher,
    decoder: RecordDecoder,
    /// Holds the payload at `payload_start`, placed against `wire` as asked.
    payload_storage: Vec<u8>,
    payload_start: usize,
    wire: Vec<u8>,
    /// `seal_only` advanced the sender past the receiver: they can no longer talk.
    out_of_step: bool,
}

impl RecordPath {
    /// Runs a handshake (from `seed`) for the cipher pair: dialer sends, listener receives.
    pub fn new(seed: u64, placement: PayloadPlacement) -> Self {
        let (dialer, listener) = SwitchboardHandshake::new(seed).run();
        // Room for one whole record, so `wire` never reallocates and the placement holds.
        let wire: Vec<u8> = Vec::with_capacity(HEADER + RECORD_PAYLOAD_LEN + 16);
        let mut payload_storage = vec![0; RECORD_PAYLOAD_LEN + PAGE];
        let wanted = (wire.as_ptr() as usize + HEADER + PAGE - placement.copy_distance()) % PAGE;
        let payload_start = (wanted + PAGE - payload_storage.as_ptr() as usize % PAGE) % PAGE;
        payload_storage[payload_start..][..RECORD_PAYLOAD_LEN].copy_from_slice(&payload());
        RecordPath {
            sender: dialer.cipher,
            receiver: listener.cipher,
            decoder: RecordDecoder::new(),
            payload_storage,
            payload_start,
            wire,
            out_of_step: false,
        }
    }

    fn payload(&self) -> &[u8] {
        &self.payload_storage[self.payload_start..][..RECORD_PAYLOAD_LEN]
    }

    fn seal(&mut self) {
        self.wire.clear();
        let payload = &self.payload_storage[self.payload_start..][..RECORD_PAYLOAD_LEN];
        seal_record(&mut self.sender, black_box(payload), &mut self.wire)
            .expect("a full record seals");
    }

    /// Seals the payload as one record and decodes it, handing the plaintext to `inspect`.
    fn round_trip<R>(&mut self, inspect: impl FnOnce(&[u8], &[u8]) -> R) -> R {
        assert!(!self.out_of_step, "seal_only was used on this pair");
        self.seal();
        let mut input: &[u8] = black_box(&self.wire);
        let plaintext = self
            .decoder
            .decode(&mut self.receiver, &mut input)
            .expect("the record authenticates")
            .expect("the wire holds the whole record");
        let payload = &self.payload_storage[self.payload_start..][..RECORD_PAYLOAD_LEN];
        inspect(plaintext, payload)
    }

    /// One record sealed and opened; returns the plaintext length.
    pub fn seal_open(&mut self) -> usize {
        self.round_trip(|plaintext, _| black_box(plaintext).len())
    }

    /// One record sealed into the reused buffer, not decoded: the sender's share alone.
    /// Leaves the receiver behind, so [`RecordPath::seal_open`] refuses to run afterwards.
    pub fn seal_only(&mut self) {
        self.out_of_step = true;
        self.seal();
        black_box(&self.wire);
    }

    /// Checks once that the decoded plaintext equals the payload and that the buffers are
    /// placed as asked.
    pub fn verify(&mut self, placement: PayloadPlacement) {
        self.round_trip(|plaintext, payload| assert_eq!(plaintext, payload));
        let distance = (self.wire.as_ptr() as usize + HEADER + PAGE
            - self.payload().as_ptr() as usize % PAGE)
            % PAGE;
        assert_eq!(distance, placement.copy_distance(), "wire buffer moved");
    }
}

/// Megabytes (10^6 bytes) per second of plaintext for `records` full records in `seconds`.
pub fn record_mb_per_s(records: u64, seconds: f64) -> f64 {
    records as f64 * RECORD_PAYLOAD_LEN as f64 / seconds / 1e6
}

/// Length of the messages of [`ConnThroughput::large`]: 1 MiB, as large as a channel's
/// default receive window, so each message spans 17 records.
pub const LARGE_MESSAGE_LEN: usize = 1 << 20;
/// Length of the messages of [`ConnThroughput::mux`].
pub const MUX_MESSAGE_LEN: usize = 1024;
/// Channels of [`ConnThroughput::mux`]: as many as a `NodeInfo` may list.
pub const MUX_CHANNELS: u16 = 64;
/// Length of the messages of [`ConnThroughput::small`].
pub const SMALL_MESSAGE_LEN: usize = 64;

/// Bytes of messages the throughput workloads keep sent but not yet delivered: four records'
/// worth, so every record the sender writes is full, while the queues (and what the
/// benchmark touches) stay small. Large messages are kept two deep instead.
const IN_FLIGHT_BYTES: usize = 4 * RECORD_PAYLOAD_LEN;

/// Capacity of the throughput workloads' wire buffer: one full record and the receiver's
/// CREDIT records. Below glibc's 128 KiB mmap threshold on purpose, so it does not share the
/// page offset of the mmapped 1 MiB messages (see [`PayloadPlacement`] for why that would
/// matter).
const WIRE_CAPACITY: usize = HEADER + RECORD_PAYLOAD_LEN + 16 + 4096;

/// The time of every call in the connection workloads. No timer is ever handled, so no
/// PING joins the data.
const NOW: Instant = Instant::ZERO;

/// What it takes to connect two benchmark `Connection`s: the shared `ConnectionConfig`, the
/// key pairs and `NodeInfo`s ([`Peers`]), with channels `1..=channel_count` configured and
/// listed on both ends so every one of them opens.
pub struct ConnectionSetup {
    config: Arc<ConnectionConfig>,
    peers: Peers,
    channels: Vec<ChannelId>,
}

impl ConnectionSetup {
    /// Keys from `seed`; channels `1..=channel_count` with the default [`ChannelConfig`]
    /// (1 MiB receive window, 1 MiB / 1024-message send queue).
    ///
    /// # Panics
    /// If `channel_count` is 0 or more than a `NodeInfo` may list.
    pub fn new(seed: u64, channel_count: u16) -> Self {
        assert!(
            (1..=switchboard::MAX_CHANNELS).contains(&usize::from(channel_count)),
            "1..={} channels",
            switchboard::MAX_CHANNELS
        );
        let mut rng = seeded_rng(seed);
        let mut peers = Peers::new(&mut rng);
        let channels: Vec<ChannelId> = (1..=channel_count).collect();
        for info in [&mut peers.dialer_info, &mut peers.listener_info] {
            info.channels = channels
                .iter()
                .map(|&id| ChannelInfo {
                    id,
                    protocol: "bench".into(),
                    version: 1,
                })
                .collect();
        }
        let config =
            ConnectionConfig::new(channels.iter().map(|&id| ChannelConfig::new(id)).collect());
        ConnectionSetup {
            config: Arc::new(config),
            peers,
            channels,
        }
    }

    /// The channel ids, ascending.
    pub fn channels(&self) -> &[ChannelId] {
        &self.channels
    }

    /// A new (dialer, listener) pair, connected in memory and run until neither has
    /// anything left to transmit, every event taken: the handshake, the `Connected` events
    /// and the first CREDIT records (each channel's window) are behind it. `rng` draws the
    /// ephemeral keys; `wire` is scratch for the bytes in flight (left cleared).
    ///
    /// # Panics
    /// If the pair does not end up established with every channel open, or an event other
    /// than one `Connected` per end appears.
    pub fn connect(&self, rng: &mut ChaCha20Rng, wire: &mut Vec<u8>) -> (Connection, Connection) {
        let peers = &self.peers;
        let mut dialer = Connection::dial(
            NOW,
            Arc::clone(&self.config),
            &peers.dialer,
            peers.dialer_info.clone(),
            Some(peers.listener.peer_id()),
            rng,
        )
        .expect("dialer NodeInfo is valid");
        let mut listener = Connection::accept(
            NOW,
            Arc::clone(&self.config),
            &peers.listener,
            peers.listener_info.clone(),
            rng,
        )
        .expect("listener NodeInfo is valid");
        let mut connected = [false; 2];
        loop {
            let forth = exchange(&mut dialer, &mut listener, wire);
            let back = exchange(&mut listener, &mut dialer, wire);
            for (connection, connected) in
                [&mut dialer, &mut listener].into_iter().zip(&mut connected)
            {
                while let Some(event) = connection.poll_event() {
                    match event {
                        Event::Connected { .. } if !*connected => *connected = true,
                        other => panic!("unexpected event while connecting: {other:?}"),
                    }
                }
            }
            if !(forth || back) {
                break;
            }
        }
        wire.clear();
        assert_eq!(connected, [true, true], "both ends report Connected");
        assert!(dialer.is_established() && listener.is_established());
        for &id in &self.channels {
            assert!(dialer.is_channel_open(id) && listener.is_channel_open(id));
        }
        (dialer, listener)
    }
}

/// Sends `message` on `channel` from `from` to `to`, then runs the pair until neither has
/// anything left to transmit, taking every event: the message is delivered, taken, and its
/// credit is back at the sender. `wire` is scratch (left cleared).
///
/// # Panics
/// If `send` refuses, or `to` does not receive exactly that message, or another event
/// appears.
pub fn deliver(
    from: &mut Connection,
    to: &mut Connection,
    channel: ChannelId,
    message: Bytes,
    wire: &mut Vec<u8>,
) {
    from.send(channel, message.clone())
        .expect("the channel accepts the message");
    let mut received = None;
    loop {
        let forth = exchange(from, to, wire);
        let back = exchange(to, from, wire);
        while let Some(event) = to.poll_event() {
            match event {
                Event::Message {
                    channel: on,
                    message,
                } if on == channel && received.is_none() => received = Some(message),
                other => panic!("unexpected event at the receiver: {other:?}"),
            }
        }
        if let Some(event) = from.poll_event() {
            panic!("unexpected event at the sender: {event:?}");
        }
        if !(forth || back) {
            break;
        }
    }
    wire.clear();
    assert!(received == Some(message), "the message arrived intact");
}

/// Hands everything `from` has to transmit to `to`; returns whether there was anything.
fn exchange(from: &mut Connection, to: &mut Connection, wire: &mut Vec<u8>) -> bool {
    wire.clear();
    while from.poll_transmit(NOW, wire) {}
    if wire.is_empty() {
        return false;
    }
    to.handle_input(NOW, wire);
    true
}

/// Bulk messages through two connected `Connection`s in memory, one thread: the sender's
/// `send` (a `Bytes` clone, as an application keeping its own copy would pay), framing by the
/// multiplexer, encryption; the receiver's record reassembly, decryption, frame decoding,
/// message reassembly and `poll_event`, whose taking of each message returns its credit;
/// and the CREDIT records going back, which the sender decrypts and applies.
///
/// The pipeline never drains: before each record the sender tops its queues up (message `i`
/// on channel `i mod channels`) as far as they accept, up to four records' worth of messages
/// not yet delivered (two messages, when they are larger). Each *pump* moves one record from
/// sender to receiver, takes the receiver's events, and hands back whatever the receiver
/// then transmits — as an event loop does on each read. [`ConnThroughput::step`] counts
/// messages delivered, one per call, carrying the surplus of a pump over to the next call.
pub struct ConnThroughput {
    sender: Connection,
    receiver: Connection,
    channels: Vec<ChannelId>,
    /// Distinct messages sent in turn on each channel (in the order of `channels`), so
    /// `verify` can tell them apart and check their order.
    messages: Vec<Bytes>,
    /// Where the next message goes: an index into `channels`, one into `messages`.
    next_channel: usize,
    next_variant: usize,
    /// Per channel, which of `messages` must arrive next.
    expected_variant: Vec<usize>,
    wire: Vec<u8>,
    sent: u64,
    delivered: u64,
    max_in_flight: u64,
    /// Messages delivered that `step` has not counted yet.
    banked: u64,
}

impl ConnThroughput {
    /// One channel, [`LARGE_MESSAGE_LEN`]-byte messages.
    pub fn large(seed: u64) -> Self {
        Self::new(seed, 1, LARGE_MESSAGE_LEN, 2)
    }

    /// [`MUX_CHANNELS`] channels, [`MUX_MESSAGE_LEN`]-byte messages round robin.
    pub fn mux(seed: u64) -> Self {
        Self::new(seed, MUX_CHANNELS, MUX_MESSAGE_LEN, 4)
    }

    /// One channel, [`SMALL_MESSAGE_LEN`]-byte messages.
    pub fn small(seed: u64) -> Self {
        Self::new(seed, 1, SMALL_MESSAGE_LEN, 4)
    }

    /// A connected pair with `channel_count` channels sending `message_len`-byte messages,
    /// `variants` distinct ones in turn on each channel.
    ///
    /// # Panics
    /// If `message_len` is below 8 (each variant carries its number) or `variants` is 0.
    pub fn new(seed: u64, channel_count: u16, message_len: usize, variants: usize) -> Self {
        assert!(message_len >= 8 && variants > 0);
        let setup = ConnectionSetup::new(seed, channel_count);
        let mut rng = seeded_rng(seed.wrapping_add(1));
        let mut wire = Vec::with_capacity(WIRE_CAPACITY);
        let (sender, receiver) = setup.connect(&mut rng, &mut wire);
        let messages = (0..variants)
            .map(|variant| {
                let mut message: Vec<u8> = (0..message_len)
                    .map(|i| ((i + 17 * variant) % 251) as u8)
                    .collect();
                message[..8].copy_from_slice(&(variant as u64).to_be_bytes());
                Bytes::from(message)
            })
            .collect();
        let max_in_flight = (IN_FLIGHT_BYTES / message_len).max(2) as u64;
        ConnThroughput {
            sender,
            receiver,
            expected_variant: vec![0; setup.channels().len()],
            channels: setup.channels,
            messages,
            next_channel: 0,
            next_variant: 0,
            wire,
            sent: 0,
            delivered: 0,
            max_in_flight,
            banked: 0,
        }
    }

    /// Bytes per message.
    pub fn message_len(&self) -> usize {
        self.messages[0].len()
    }

    /// Delivers one message (on average: a pump delivers a record's worth, and the surplus
    /// is counted by the next calls).
    pub fn step(&mut self) {
        while self.banked == 0 {
            self.banked = self.pump(false);
        }
        self.banked -= 1;
    }

    /// Sends as many messages as the queues accept, up to `max_in_flight` undelivered.
    fn top_up(&mut self) {
        while self.sent - self.delivered < self.max_in_flight {
            let channel = self.channels[self.next_channel];
            let message = self.messages[self.next_variant].clone();
            match self.sender.send(channel, message) {
                Ok(()) => {}
                Err(SendError::Full(_)) => break,
                Err(error) => panic!("send on channel {channel} refused: {error}"),
            }
            self.sent += 1;
            self.next_channel += 1;
            if self.next_channel == self.channels.len() {
                self.next_channel = 0;
                self.next_variant = (self.next_variant + 1) % self.messages.len();
            }
        }
    }

    /// One record from sender to receiver, the receiver's events, its answer back. Returns
    /// the messages delivered; with `check`, compares each with what was sent.
    fn pump(&mut self, check: bool) -> u64 {
        self.top_up();
        self.wire.clear();
        let wrote = self.sender.poll_transmit(NOW, &mut self.wire);
        let mut delivered = 0;
        if wrote {
            self.receiver.handle_input(NOW, black_box(&self.wire));
            while let Some(event) = self.receiver.poll_event() {
                let Event::Message { channel, message } = event else {
                    panic!("unexpected event at the receiver: {event:?}");
                };
                let index = usize::from(channel) - 1;
                let variant = self.expected_variant[index];
                if check {
                    assert_eq!(self.channels[index], channel);
                    assert!(
                        message == self.messages[variant],
                        "message on channel {channel} is not variant {variant}"
                    );
                }
                self.expected_variant[index] = (variant + 1) % self.messages.len();
                black_box(&message);
                delivered += 1;
            }
        }
        let answered = exchange(&mut self.receiver, &mut self.sender, &mut self.wire);
        if let Some(event) = self.sender.poll_event() {
            panic!("unexpected event at the sender: {event:?}");
        }
        assert!(wrote || answered, "the pair stalled");
        self.delivered += delivered;
        delivered
    }

    /// Checks, outside any timed loop, that messages arrive whole, in order, on the channel
    /// they were sent on — at least one more round of variants than there are per channel —
    /// and that the sender sees them confirmed by the receiver's credit.
    pub fn verify(&mut self) {
        let rounds = self.messages.len() as u64 + 1;
        let target = self.delivered + rounds * self.channels.len() as u64;
        while self.delivered < target {
            self.pump(true);
        }
        let stats = self.sender.channel_stats();
        assert_eq!(stats.len(), self.channels.len());
        let confirmed: u64 = stats.iter().map(|channel| channel.messages_confirmed).sum();
        assert!(
            confirmed >= target.saturating_sub(self.max_in_flight),
            "credit confirms delivery"
        );
        let received: u64 = self
            .receiver
            .channel_stats()
            .iter()
            .map(|channel| channel.bytes_received)
            .sum();
        assert_eq!(received, self.delivered * self.message_len() as u64);
    }
}

/// Megabytes (10^6 bytes) per second of message payload for `messages` of `len` bytes
/// delivered in `seconds`.
pub fn message_mb_per_s(messages: u64, len: usize, seconds: f64) -> f64 {
    messages as f64 * len as f64 / seconds / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_workload_does_real_work() {
        let mut handshake = SwitchboardHandshake::new(1);
        handshake.verify();
        SnowHandshake::new(handshake.peers()).verify();
        DhFloor::new(2).verify();
        AeadFloor::new(3).verify();
        OneCopyBound::new(3).verify();
        for placement in [PayloadPlacement::Apart, PayloadPlacement::PageAliased] {
            RecordPath::new(4, placement).verify(placement);
        }
        let setup = ConnectionSetup::new(9, 2);
        let mut wire = Vec::new();
        let (mut dialer, mut listener) = setup.connect(&mut seeded_rng(10), &mut wire);
        deliver(
            &mut dialer,
            &mut listener,
            2,
            Bytes::from_static(b"ping"),
            &mut wire,
        );
        deliver(
            &mut listener,
            &mut dialer,
            1,
            Bytes::from_static(b"pong"),
            &mut wire,
        );
        for mut workload in [
            ConnThroughput::large(6),
            ConnThroughput::mux(7),
            ConnThroughput::small(8),
        ] {
            workload.verify();
            // The timed path too (a few MiB: the core is unoptimized here), then the
            // content check again.
            for _ in 0..(4 << 20) / workload.message_len() {
                workload.step();
            }
            workload.verify();
        }
    }
}
