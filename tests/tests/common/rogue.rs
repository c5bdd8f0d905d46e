//! A peer speaking the record layer directly, so it can break the rules a `Connection`
//! keeps, against a real listening `Connection`.

use std::sync::Arc;

use bytes::Bytes;
use rand_core::SeedableRng;
use switchboard::connection::{Connection, Event};
use switchboard::frame::{Frame, FrameReader};
use switchboard::handshake::Handshake;
use switchboard::record::{RecordDecoder, seal_record};
use switchboard::{ChannelConfig, ConnectionConfig, Instant, Keypair, NodeInfo, TransportCipher};

use super::pair::info_for;

pub struct RogueDialer {
    pub cipher: TransportCipher,
    pub decoder: RecordDecoder,
    pub listener: Connection,
    pub now: Instant,
}

impl RogueDialer {
    pub fn connect(channel: ChannelConfig) -> Self {
        Self::connect_with(ConnectionConfig::new(vec![channel]))
    }

    /// A listener configured with `config`, both ends offering its channels.
    pub fn connect_with(config: ConnectionConfig) -> Self {
        let info = info_for(&config, "rogue");
        Self::connect_offering(config, info.clone(), info)
    }

    /// A listener configured with `config` and offering `listener_info`, dialed by a rogue
    /// offering `rogue_info`.
    pub fn connect_offering(
        config: ConnectionConfig,
        listener_info: NodeInfo,
        rogue_info: NodeInfo,
    ) -> Self {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(77);
        let now = Instant::from_nanos(5);
        let mut listener = Connection::accept(
            now,
            Arc::new(config),
            &Keypair::generate(&mut rng),
            listener_info,
            &mut rng,
        )
        .unwrap();
        let mut rogue =
            Handshake::initiator(&Keypair::generate(&mut rng), rogue_info, None, &mut rng).unwrap();
        let mut wire = Vec::new();
        while !rogue.is_established() || !listener.is_established() {
            while rogue.poll_transmit(&mut wire) {}
            listener.handle_input(now, &wire);
            wire.clear();
            while listener.poll_transmit(now, &mut wire) {}
            if !rogue.is_established() {
                let used = rogue.handle_input(&wire).unwrap();
                wire.drain(..used);
            }
        }
        while rogue.poll_transmit(&mut wire) {}
        let mut this = RogueDialer {
            cipher: rogue.into_established().unwrap().cipher,
            decoder: RecordDecoder::new(),
            listener,
            now,
        };
        // The listener's first records (its window) were written but not read yet.
        let mut input: &[u8] = &wire;
        assert!(this.decoder.decode(&mut this.cipher, &mut input).is_ok());
        this.take_events();
        this
    }

    /// The frames sealed as one record: its wire bytes, for the caller to deliver (whole,
    /// in pieces, or altered).
    pub fn seal(&mut self, frames: &[Frame]) -> Vec<u8> {
        self.seal_plaintext(&encode(frames))
    }

    /// One record of `plaintext`, as written.
    pub fn seal_plaintext(&mut self, plaintext: &[u8]) -> Vec<u8> {
        let mut wire = Vec::new();
        seal_record(&mut self.cipher, plaintext, &mut wire).unwrap();
        wire
    }

    pub fn send_frames(&mut self, frames: &[Frame]) {
        let wire = self.seal(frames);
        self.listener.handle_input(self.now, &wire);
    }

    /// Seals each frame list as one record and hands them all to the listener in one read.
    pub fn send_records(&mut self, records: &[Vec<Frame>]) {
        let wire: Vec<u8> = records
            .iter()
            .flat_map(|frames| self.seal(frames))
            .collect();
        self.listener.handle_input(self.now, &wire);
    }

    pub fn take_events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.listener.poll_event()).collect()
    }

    /// The frames the listener writes next.
    pub fn read_frames(&mut self) -> Vec<Frame> {
        let mut wire = Vec::new();
        while self.listener.poll_transmit(self.now, &mut wire) {}
        let mut input: &[u8] = &wire;
        let mut frames = Vec::new();
        while let Some(plaintext) = self.decoder.decode(&mut self.cipher, &mut input).unwrap() {
            let record = Bytes::copy_from_slice(plaintext);
            frames.extend(FrameReader::new(record).map(Result::unwrap));
        }
        frames
    }
}

/// `frames`, encoded one after the other: a record's plaintext.
pub fn encode(frames: &[Frame]) -> Vec<u8> {
    let mut plaintext = Vec::new();
    for frame in frames {
        frame.encode(&mut plaintext);
    }
    plaintext
}
