//! Genuine peers for the node-level fuzz targets (`node_inbound`, `router_events`): a bare
//! `Handshake` with one of four fixed identities, so their session keys are ours, takes over
//! a connection the node announced, completes a real handshake, then reads what the node
//! writes (checking that it authenticates and parses, and that DATA and CREDIT name only the
//! channels negotiated) and seals whatever the target wants written — [`PeerFrame`]s.
//!
//! Included with `#[path]` from each target: not every target uses every item.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use arbitrary::Arbitrary;
use bytes::Bytes;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use switchboard::frame::{Frame, FrameReader};
use switchboard::handshake::Handshake;
use switchboard::node::ConnId;
use switchboard::record::{RecordDecoder, seal_record};
use switchboard::{DisconnectReason, Keypair, PeerId, TransportCipher};

/// The largest message any channel of the targets accepts.
pub const MAX_MESSAGE: u32 = 8192;
/// Genuine peers' identities; a `PeerRef` beyond them names the node itself.
pub const ATTACKERS: usize = 4;

pub const IPS: [IpAddr; 8] = [
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3)),
    IpAddr::V4(Ipv4Addr::new(10, 0, 1, 1)),
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)),
    IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2)),
];

pub fn ip(index: u8) -> IpAddr {
    IPS[usize::from(index) % IPS.len()]
}

pub fn reason(code: u8) -> DisconnectReason {
    DisconnectReason::from_code(code).unwrap_or(DisconnectReason::Requested)
}

/// A frame a genuine peer writes, the fuzzer choosing its fields.
#[derive(Arbitrary, Debug)]
pub enum PeerFrame {
    /// A whole message in one DATA frame, every byte `fill`.
    Message {
        channel: u8,
        len: u16,
        fill: u8,
    },
    /// A DATA frame with arbitrary fields.
    Data {
        channel: u8,
        first: Option<u32>,
        end: bool,
        len: u16,
    },
    Credit {
        channel: u8,
        amount: u32,
    },
    Ping(u64),
    /// Answers the node's last PING when `echo`.
    Pong {
        echo: bool,
        value: u64,
    },
    GoAway {
        code: u8,
    },
}

impl PeerFrame {
    /// The frame, its channel index mapped by the target's `channel`.
    pub fn to_frame(self, session: &Session, channel: impl Fn(u8) -> u16) -> Frame {
        let data = |index: u8, first, end, len: u16, fill: u8| Frame::Data {
            channel: channel(index),
            first,
            end,
            payload: Bytes::from(vec![fill; usize::from(len)]),
        };
        match self {
            PeerFrame::Message { channel, len, fill } => {
                data(channel, Some(len.into()), true, len, fill)
            }
            PeerFrame::Data {
                channel,
                first,
                end,
                len,
            } => data(channel, first, end, len, 0xA5),
            PeerFrame::Credit {
                channel: index,
                amount,
            } => Frame::Credit {
                channel: channel(index),
                amount,
            },
            PeerFrame::Ping(value) => Frame::Ping(value),
            PeerFrame::Pong { echo, value } => {
                Frame::Pong(if echo { session.last_ping } else { value })
            }
            PeerFrame::GoAway { code } => Frame::GoAway {
                reason: reason(code),
                text: "bye".into(),
            },
        }
    }
}

pub struct Keys {
    pub node: Keypair,
    pub attackers: Vec<Keypair>,
    /// The attackers' ids, then the node's.
    pub ids: Vec<PeerId>,
}

/// The identities, made once (from a fixed seed) and shared by every execution.
pub static KEYS: LazyLock<Keys> = LazyLock::new(|| {
    let mut rng = ChaCha20Rng::seed_from_u64(0x5317_c4b0);
    let node = Keypair::generate(&mut rng);
    let attackers: Vec<Keypair> = (0..ATTACKERS)
        .map(|_| Keypair::generate(&mut rng))
        .collect();
    let ids = attackers
        .iter()
        .map(Keypair::peer_id)
        .chain([node.peer_id()])
        .collect();
    Keys {
        node,
        attackers,
        ids,
    }
});

pub fn peer(index: u8) -> PeerId {
    KEYS.ids[usize::from(index) % KEYS.ids.len()]
}

/// A genuine peer past its handshake.
pub struct Session {
    pub cipher: TransportCipher,
    pub decoder: RecordDecoder,
    pub goaway_received: bool,
    pub last_ping: u64,
    /// The channels negotiated with the node.
    pub open: Vec<u16>,
}

pub enum Peer {
    /// Nobody reads this socket's other end.
    None,
    Handshaking(Box<Handshake>),
    Established(Box<Session>),
    /// The genuine peer gave up (its view of the stream was spoiled by raw bytes).
    Dead,
}

/// What the harness knows of one connection the node announced.
pub struct Conn {
    pub id: ConnId,
    /// The remote address of an accepted socket.
    pub accepted_from: Option<IpAddr>,
    /// The address a dial's socket went to.
    pub dialed: Option<IpAddr>,
    pub outbound: bool,
    /// The socket is connected: accepted, or a dial reported connected (or read from).
    pub connected: bool,
    pub blocked: bool,
    /// The adapter reported the socket closed.
    pub transport_closed: bool,
    /// The node said `Action::Close`.
    pub closed: bool,
    /// Raw bytes reached the node before a genuine peer's session was established, or the
    /// node's output was lost: what the node writes need not make sense to a peer.
    pub tainted: bool,
    /// What the node wrote while nobody read it.
    pub unread: Vec<u8>,
    /// What the genuine peer has yet to write to the node.
    pub to_node: Vec<u8>,
    pub peer: Peer,
    /// The channels the genuine peer negotiated with the node (set when it takes over).
    pub open: Vec<u16>,
}

impl Conn {
    pub fn new(id: ConnId, accepted_from: Option<IpAddr>) -> Self {
        let outbound = accepted_from.is_none();
        Conn {
            id,
            accepted_from,
            dialed: None,
            outbound,
            connected: !outbound,
            blocked: false,
            transport_closed: false,
            closed: false,
            tainted: false,
            unread: Vec::new(),
            to_node: Vec::new(),
            peer: Peer::None,
            open: Vec::new(),
        }
    }

    /// The node wrote `wire` to this connection: its genuine peer, if any, reads it.
    pub fn read(&mut self, mut wire: &[u8]) {
        match &mut self.peer {
            Peer::None => {
                if self.unread.len() + wire.len() <= 1 << 20 {
                    self.unread.extend_from_slice(wire);
                } else {
                    self.tainted = true;
                }
            }
            Peer::Dead => {}
            Peer::Handshaking(handshake) => match handshake.handle_input(wire) {
                Err(error) => {
                    assert!(
                        self.tainted,
                        "the node's handshake fails a genuine peer: {error:?}"
                    );
                    self.peer = Peer::Dead;
                }
                Ok(used) => {
                    handshake.poll_transmit(&mut self.to_node);
                    if !handshake.is_established() {
                        assert_eq!(used, wire.len());
                        return;
                    }
                    let Peer::Handshaking(handshake) =
                        std::mem::replace(&mut self.peer, Peer::Dead)
                    else {
                        unreachable!()
                    };
                    let established = handshake.into_established().expect("established");
                    assert_eq!(established.peer_id, KEYS.node.peer_id());
                    let mut session = Session {
                        cipher: established.cipher,
                        decoder: RecordDecoder::new(),
                        goaway_received: false,
                        last_ping: 0,
                        open: self.open.clone(),
                    };
                    // Like any peer, it announces its receive windows first.
                    let mut credit = Vec::new();
                    for &channel in &self.open {
                        Frame::Credit {
                            channel,
                            amount: 1 << 16,
                        }
                        .encode(&mut credit);
                    }
                    if !credit.is_empty() {
                        seal_record(&mut session.cipher, &credit, &mut self.to_node)
                            .expect("a small record");
                    }
                    wire = &wire[used..];
                    self.peer = Peer::Established(Box::new(session));
                    self.read(wire);
                }
            },
            Peer::Established(session) => {
                if !session.receive(wire, self.tainted) {
                    self.peer = Peer::Dead;
                }
            }
        }
    }
}

impl Session {
    /// Reads the node's records; false when they stop making sense (tainted streams only).
    pub fn receive(&mut self, mut wire: &[u8], tainted: bool) -> bool {
        loop {
            let plaintext = match self.decoder.decode(&mut self.cipher, &mut wire) {
                Ok(Some(plaintext)) => Bytes::copy_from_slice(plaintext),
                Ok(None) => return true,
                Err(error) => {
                    assert!(tainted, "the node's records fail a genuine peer: {error:?}");
                    return false;
                }
            };
            for frame in FrameReader::new(plaintext) {
                let frame = match frame {
                    Ok(frame) => frame,
                    Err(error) => {
                        assert!(tainted, "the node wrote a malformed frame: {error:?}");
                        return false;
                    }
                };
                assert!(
                    tainted || !self.goaway_received,
                    "the node wrote {frame:?} after its GOAWAY"
                );
                match frame {
                    Frame::Data { channel, first, .. } => {
                        assert!(
                            tainted || self.open.contains(&channel),
                            "DATA on closed channel {channel}"
                        );
                        assert!(first.is_none_or(|total| total <= MAX_MESSAGE));
                    }
                    Frame::Credit { channel, .. } => {
                        assert!(
                            tainted || self.open.contains(&channel),
                            "CREDIT on closed channel {channel}"
                        )
                    }
                    Frame::Ping(value) => self.last_ping = value,
                    Frame::Pong(_) => {}
                    Frame::GoAway { .. } => self.goaway_received = true,
                }
            }
        }
    }
}
