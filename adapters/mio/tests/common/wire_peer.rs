//! A peer written by hand against the wire protocol (`PROTOCOL.md`), as an attacker would
//! write one: a blocking TCP socket, bound to a source address of its choice if it likes
//! (any of 127.0.0.0/8 on loopback, so each attacker picks its address and /24), the Noise
//! handshake driven from the core's `Handshake`, and then whatever records it likes — valid
//! frames, or not. It reads only when the test asks, so it can also be the peer that never
//! reads. The one such peer of the mio tests: each attack test states what it does
//! differently through [`Dial`], not through a copy of its own.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use socket2::{Domain, Socket, Type};
use switchboard::frame::{Frame, FrameReader};
use switchboard::handshake::Handshake;
use switchboard::pex::{PEX_CHANNEL, PEX_PROTOCOL};
use switchboard::record::{RecordDecoder, seal_record};
use switchboard::{Bytes, ChannelInfo, Keypair, NodeInfo, PeerId, TransportCipher};

/// A window large enough that the node never waits on it in a test: the node may send
/// this much unread on each channel.
pub const WINDOW: u32 = 64 << 20;

/// What a hand-driven peer says of itself: `network`, channel 1 (`test/1`, the mio tests'
/// channel), and the PEX channel when `pex`.
pub fn info(network: &str, pex: bool) -> NodeInfo {
    let mut info = NodeInfo::new(network, "wire-peer");
    info.channels.push(ChannelInfo {
        id: 1,
        protocol: "test".into(),
        version: 1,
    });
    if pex {
        info.channels.push(ChannelInfo {
            id: PEX_CHANNEL,
            protocol: PEX_PROTOCOL.into(),
            version: 1,
        });
    }
    info
}

/// How a [`WirePeer`] dials: everything an attack chooses, each with a default that
/// chooses nothing — the OS picks the source address, the key comes from OS randomness,
/// no window is announced, and the peer does not wait for the node to keep it.
pub struct Dial {
    to: SocketAddr,
    from: Option<IpAddr>,
    seed: Option<u64>,
    receive_buffer: Option<usize>,
    timeout: Duration,
    window: Option<u32>,
    wait_admitted: bool,
}

impl Dial {
    /// Binds the socket to `from` (port chosen by the OS) before it connects.
    pub fn from(mut self, from: IpAddr) -> Self {
        self.from = Some(from);
        self
    }

    /// Draws the key from `seed`, so a test can come back with the same identity or a
    /// deliberately fresh one.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Sets the socket's receive buffer before it connects: a small one makes the node's
    /// writes block after little.
    pub fn receive_buffer(mut self, bytes: usize) -> Self {
        self.receive_buffer = Some(bytes);
        self
    }

    /// How long connecting, and each read, may wait for the node (10 s unless set).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Once connected, writes one record granting `amount` on each channel of the peer's
    /// `NodeInfo`, so the node may send on all of them.
    pub fn window(mut self, amount: u32) -> Self {
        self.window = Some(amount);
        self
    }

    /// Makes [`Dial::connect`] wait for the node's first record, which says it kept the
    /// connection (`PROTOCOL.md` §6.6), and fail if that record holds a GOAWAY or the node
    /// closes first: it refused.
    pub fn wait_admitted(mut self) -> Self {
        self.wait_admitted = true;
        self
    }

    /// The socket alone, connected (blocking, no Nagle, reads bounded by the timeout):
    /// for an attacker that writes its bytes without any handshake.
    pub fn socket(&self) -> io::Result<TcpStream> {
        let socket = Socket::new(Domain::for_address(self.to), Type::STREAM, None)?;
        if let Some(from) = self.from {
            socket.bind(&SocketAddr::new(from, 0).into())?;
        }
        if let Some(bytes) = self.receive_buffer {
            socket.set_recv_buffer_size(bytes)?;
        }
        socket.connect_timeout(&self.to.into(), self.timeout)?;
        let stream: TcpStream = socket.into();
        stream.set_read_timeout(Some(self.timeout))?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    /// Connects and completes the handshake offering `info`; then waits to be admitted
    /// and announces the window, if asked to.
    pub fn connect(&self, info: NodeInfo) -> io::Result<WirePeer> {
        let mut rng = match self.seed {
            Some(seed) => ChaCha20Rng::seed_from_u64(seed),
            None => switchboard_mio::os_seeded_rng().map_err(io::Error::other)?,
        };
        let keypair = Keypair::generate(&mut rng);
        let channels: Vec<u16> = info.channels.iter().map(|channel| channel.id).collect();
        let mut stream = self.socket()?;
        let mut handshake =
            Handshake::initiator(&keypair, info, None, &mut rng).map_err(io::Error::other)?;
        let mut wire = Vec::new();
        let mut buffer = vec![0; 64 * 1024];
        let mut input = Vec::new();
        while !handshake.is_established() {
            while handshake.poll_transmit(&mut wire) {}
            stream.write_all(&wire)?;
            wire.clear();
            if handshake.is_established() {
                break;
            }
            let read = read_some(&mut stream, &mut buffer)?;
            input.extend_from_slice(&buffer[..read]);
            let used = handshake.handle_input(&input).map_err(io::Error::other)?;
            input.drain(..used);
        }
        while handshake.poll_transmit(&mut wire) {}
        stream.write_all(&wire)?;
        let established = handshake
            .into_established()
            .ok_or_else(|| io::Error::other("handshake failed"))?;
        let mut peer = WirePeer {
            stream,
            peer_id: keypair.peer_id(),
            cipher: established.cipher,
            decoder: RecordDecoder::new(),
            frames: Vec::new(),
            records: 0,
        };
        // Bytes after message 2 already belong to the records.
        peer.decode(&input)?;
        if self.wait_admitted {
            while peer.records == 0 {
                peer.read_records()?;
            }
            if let Some(Frame::GoAway { reason, text }) = peer
                .frames
                .iter()
                .find(|f| matches!(f, Frame::GoAway { .. }))
            {
                return Err(io::Error::other(format!("refused: {reason:?} {text}")));
            }
        }
        if let Some(amount) = self.window {
            let credits: Vec<Frame> = channels
                .into_iter()
                .map(|channel| Frame::Credit { channel, amount })
                .collect();
            peer.send(&credits)?;
        }
        Ok(peer)
    }
}

/// An established connection to the node, driven by hand.
pub struct WirePeer {
    pub stream: TcpStream,
    pub peer_id: PeerId,
    cipher: TransportCipher,
    decoder: RecordDecoder,
    /// Frames decoded and not yet taken.
    frames: Vec<Frame>,
    /// Records decoded.
    records: usize,
}

impl WirePeer {
    /// How to dial `to`: set what the attack chooses, then [`Dial::connect`].
    pub fn dial(to: SocketAddr) -> Dial {
        Dial {
            to,
            from: None,
            seed: None,
            receive_buffer: None,
            timeout: Duration::from_secs(10),
            window: None,
            wait_admitted: false,
        }
    }

    /// Seals `frames` as one record and writes it.
    pub fn send(&mut self, frames: &[Frame]) -> io::Result<()> {
        let mut plaintext = Vec::new();
        for frame in frames {
            frame.encode(&mut plaintext);
        }
        self.send_plaintext(&plaintext)
    }

    /// Seals `plaintext` as one record, whatever it holds, and writes it.
    pub fn send_plaintext(&mut self, plaintext: &[u8]) -> io::Result<()> {
        let mut wire = Vec::new();
        self.seal_into(plaintext, &mut wire);
        self.stream.write_all(&wire)
    }

    /// Seals `plaintext` as one record appended to `out`, unwritten: for an attacker that
    /// batches records and writes them its own way (from another thread, say).
    pub fn seal_into(&mut self, plaintext: &[u8], out: &mut Vec<u8>) {
        seal_record(&mut self.cipher, plaintext, out).expect("sealable record");
    }

    /// The next frame `pick` accepts, reading records until one comes; an error if the
    /// node closes or `timeout` passes first.
    pub fn wait_frame<T>(
        &mut self,
        timeout: Duration,
        mut pick: impl FnMut(&Frame) -> Option<T>,
    ) -> io::Result<T> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(found) = self.frames.iter().find_map(&mut pick) {
                self.frames.clear();
                return Ok(found);
            }
            self.frames.clear();
            if Instant::now() >= deadline {
                return Err(io::ErrorKind::TimedOut.into());
            }
            self.read_records()?;
        }
    }

    /// Reads until the node closes the connection; the frames it sent meanwhile (its
    /// GOAWAY among them).
    pub fn wait_closed(&mut self) -> Vec<Frame> {
        while self.read_records().is_ok() {}
        std::mem::take(&mut self.frames)
    }

    fn read_records(&mut self) -> io::Result<()> {
        let mut buffer = [0; 16 * 1024];
        let read = read_some(&mut self.stream, &mut buffer)?;
        self.decode(&buffer[..read])
    }

    fn decode(&mut self, mut input: &[u8]) -> io::Result<()> {
        while let Some(plaintext) = self
            .decoder
            .decode(&mut self.cipher, &mut input)
            .map_err(io::Error::other)?
        {
            self.records += 1;
            let record = Bytes::copy_from_slice(plaintext);
            for frame in FrameReader::new(record) {
                self.frames.push(frame.map_err(io::Error::other)?);
            }
        }
        Ok(())
    }
}

/// One read; end of stream is an error.
fn read_some(stream: &mut TcpStream, buffer: &mut [u8]) -> io::Result<usize> {
    match stream.read(buffer)? {
        0 => Err(io::ErrorKind::UnexpectedEof.into()),
        read => Ok(read),
    }
}
