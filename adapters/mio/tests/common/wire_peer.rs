//! A peer speaking the wire protocol by hand over a blocking socket, as an attacker would:
//! it completes a real handshake with a fresh identity, announces its windows, then writes
//! whatever records the test seals — and reads only if the test says so.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use switchboard::frame::Frame;
use switchboard::handshake::Handshake;
use switchboard::record::seal_record;
use switchboard::{Keypair, NodeInfo, PeerId, TransportCipher};

/// The window a wire peer grants on each channel: the node may send it this much unread.
pub const WINDOW: u32 = 64 << 20;

pub struct WirePeer {
    pub stream: TcpStream,
    pub peer_id: PeerId,
    cipher: TransportCipher,
}

impl WirePeer {
    /// Dials `addr` and handshakes offering `info` (the node's own, so every channel is
    /// common). Returns once the handshake is complete on this side — the node answered
    /// message 1 and took message 3 — and the first record, a CREDIT of [`WINDOW`] on each
    /// channel, is written. Fails if the node does not answer within `timeout`.
    pub fn connect(addr: SocketAddr, info: NodeInfo, timeout: Duration) -> io::Result<Self> {
        Self::connect_on(TcpStream::connect_timeout(&addr, timeout)?, info, timeout)
    }

    /// As [`WirePeer::connect`], on a socket already connected.
    pub fn connect_on(
        mut stream: TcpStream,
        info: NodeInfo,
        timeout: Duration,
    ) -> io::Result<Self> {
        let mut rng = switchboard_mio::os_seeded_rng().map_err(io::Error::other)?;
        let keypair = Keypair::generate(&mut rng);
        let channels: Vec<u16> = info.channels.iter().map(|channel| channel.id).collect();
        let mut handshake =
            Handshake::initiator(&keypair, info, None, &mut rng).map_err(io::Error::other)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(timeout))?;
        let mut out = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            while handshake.poll_transmit(&mut out) {}
            stream.write_all(&out)?;
            out.clear();
            if handshake.is_established() {
                break;
            }
            let n = stream.read(&mut buffer)?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            // What follows the handshake is the node's first records: never read.
            handshake
                .handle_input(&buffer[..n])
                .map_err(io::Error::other)?;
        }
        let established = handshake
            .into_established()
            .ok_or_else(|| io::Error::other("handshake not established"))?;
        let mut peer = WirePeer {
            stream,
            peer_id: keypair.peer_id(),
            cipher: established.cipher,
        };
        let credits: Vec<Frame> = channels
            .into_iter()
            .map(|channel| Frame::Credit {
                channel,
                amount: WINDOW,
            })
            .collect();
        peer.send(&credits)?;
        Ok(peer)
    }

    /// The frames sealed as one record, as written.
    pub fn seal(&mut self, frames: &[Frame]) -> Vec<u8> {
        let mut plaintext = Vec::new();
        for frame in frames {
            frame.encode(&mut plaintext);
        }
        self.seal_plaintext(&plaintext)
    }

    /// One record of `plaintext`, appended to `out`.
    pub fn seal_into(&mut self, plaintext: &[u8], out: &mut Vec<u8>) {
        seal_record(&mut self.cipher, plaintext, out).expect("sealable record");
    }

    /// One record of `plaintext`, as written.
    pub fn seal_plaintext(&mut self, plaintext: &[u8]) -> Vec<u8> {
        let mut wire = Vec::new();
        self.seal_into(plaintext, &mut wire);
        wire
    }

    /// Writes the frames as one record.
    pub fn send(&mut self, frames: &[Frame]) -> io::Result<()> {
        let wire = self.seal(frames);
        self.stream.write_all(&wire)
    }
}
