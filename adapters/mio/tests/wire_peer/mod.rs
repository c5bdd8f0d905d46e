//! A peer written by hand against the wire protocol (`PROTOCOL.md`), as an attacker would
//! write one: a blocking TCP socket bound to a source address of its choice (any of
//! 127.0.0.0/8 on loopback), the Noise handshake driven from the core's `Handshake`, and
//! then whatever records it likes — valid frames, or not.

#![allow(dead_code)]

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

/// How long a read waits before the peer gives up on the node.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

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

/// A TCP connection from `from` (port chosen by the OS) to `to`: bound before it connects.
pub fn connect_from(from: IpAddr, to: SocketAddr) -> io::Result<TcpStream> {
    let socket = Socket::new(Domain::for_address(to), Type::STREAM, None)?;
    socket.bind(&SocketAddr::new(from, 0).into())?;
    socket.connect(&to.into())?;
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// An established connection to the node, driven by hand.
pub struct WirePeer {
    pub stream: TcpStream,
    pub peer_id: PeerId,
    /// The node's identity, from the handshake.
    pub remote: PeerId,
    cipher: TransportCipher,
    decoder: RecordDecoder,
    /// Frames decoded and not yet taken.
    frames: Vec<Frame>,
    /// Records decoded.
    records: usize,
}

impl WirePeer {
    /// Connects from `from` to `to` with a fresh key drawn from `seed`, completes the
    /// handshake and waits for the node's first record, which says it kept the connection
    /// (`PROTOCOL.md` §6.6). An error if the node closes first: it refused.
    pub fn connect(from: IpAddr, to: SocketAddr, info: NodeInfo, seed: u64) -> io::Result<Self> {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let keypair = Keypair::generate(&mut rng);
        let mut stream = connect_from(from, to)?;
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
            remote: established.peer_id,
            cipher: established.cipher,
            decoder: RecordDecoder::new(),
            frames: Vec::new(),
            records: 0,
        };
        // Bytes after message 2 already belong to the records.
        peer.decode(&input)?;
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
        Ok(peer)
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
        seal_record(&mut self.cipher, plaintext, &mut wire).map_err(io::Error::other)?;
        self.stream.write_all(&wire)
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
