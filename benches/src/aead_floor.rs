//! The floor of the record layer: a raw AES-256-GCM implementation sealing and opening one
//! [`RECORD_PAYLOAD_LEN`]-byte buffer in place with an incrementing nonce — no framing, no
//! copies, no buffer management, the key schedule computed once. Either backend the core
//! can be built with; [`AeadFloor::new`] picks the one it was built with, so every ratio is
//! taken against its own backend.

use std::hint::black_box;

use aes_gcm::aead::{AeadInOut, KeyInit, inout::InOutBuf};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use rand_core::Rng;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, UnboundKey};

use crate::{LARGE_MESSAGE_LEN, RECORD_PAYLOAD_LEN, payload, seeded_rng};

/// An AES-256-GCM implementation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AeadBackend {
    /// RustCrypto's `aes-gcm`, the core's portable default.
    AesGcm,
    /// `ring`, the core's `ring` feature.
    Ring,
}

impl AeadBackend {
    /// The backend the core was built with.
    pub fn compiled() -> Self {
        match switchboard::cipher::AEAD_BACKEND {
            "ring" => AeadBackend::Ring,
            _ => AeadBackend::AesGcm,
        }
    }

    /// Its name, as `perf-report` prints it.
    pub fn name(self) -> &'static str {
        match self {
            AeadBackend::AesGcm => "aes-gcm",
            AeadBackend::Ring => "ring",
        }
    }
}

enum Keys {
    AesGcm {
        sender: Box<Aes256Gcm>,
        receiver: Box<Aes256Gcm>,
    },
    Ring {
        sender: Box<LessSafeKey>,
        receiver: Box<LessSafeKey>,
    },
}

/// See the [module documentation](self).
pub struct AeadFloor {
    keys: Keys,
    nonce: u64,
    buffer: Vec<u8>,
}

/// The Noise AESGCM nonce for counter `n`: 4 zero bytes, then `n` big-endian — what the
/// core computes per record too.
fn noise_nonce(counter: u64) -> [u8; 12] {
    let mut nonce = [0u8; 12];
    nonce[4..].copy_from_slice(&counter.to_be_bytes());
    nonce
}

impl AeadFloor {
    /// The floor of the backend the core was built with.
    pub fn new(seed: u64) -> Self {
        AeadFloor::with_backend(seed, AeadBackend::compiled())
    }

    /// A sender and a receiver under one key (two instances, as two ends of a connection
    /// hold), and a payload buffer of [`RECORD_PAYLOAD_LEN`] bytes.
    pub fn with_backend(seed: u64, backend: AeadBackend) -> Self {
        let mut rng = seeded_rng(seed);
        let mut key = [0u8; 32];
        rng.fill_bytes(&mut key);
        let ring_key =
            || LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).expect("a 32-byte key"));
        let keys = match backend {
            AeadBackend::AesGcm => Keys::AesGcm {
                sender: Box::new(Aes256Gcm::new(&key.into())),
                receiver: Box::new(Aes256Gcm::new(&key.into())),
            },
            AeadBackend::Ring => Keys::Ring {
                sender: Box::new(ring_key()),
                receiver: Box::new(ring_key()),
            },
        };
        debug_assert_eq!(payload().len(), RECORD_PAYLOAD_LEN);
        AeadFloor {
            keys,
            nonce: 0,
            buffer: payload(),
        }
    }

    /// Seals `buffer` in place under the next nonce; returns the nonce and the tag.
    fn seal_in(keys: &Keys, nonce: &mut u64, buffer: &mut [u8]) -> (u64, [u8; 16]) {
        let used = *nonce;
        *nonce += 1;
        let buffer = black_box(buffer);
        let tag = match keys {
            Keys::AesGcm { sender, .. } => sender
                .encrypt_inout_detached(
                    &Nonce::from(noise_nonce(used)),
                    &[],
                    InOutBuf::from(buffer),
                )
                .expect("a record is within AES-GCM's length limit")
                .into(),
            Keys::Ring { sender, .. } => {
                let tag = sender
                    .seal_in_place_separate_tag(
                        ring::aead::Nonce::assume_unique_for_key(noise_nonce(used)),
                        Aad::empty(),
                        buffer,
                    )
                    .expect("a record is within AES-GCM's length limit");
                tag.as_ref().try_into().expect("a 16-byte tag")
            }
        };
        (used, tag)
    }

    /// Opens `buffer` in place, sealed under `nonce` with `tag`.
    fn open_in(keys: &Keys, nonce: u64, tag: [u8; 16], buffer: &mut [u8]) {
        let buffer = black_box(buffer);
        match keys {
            Keys::AesGcm { receiver, .. } => receiver
                .decrypt_inout_detached(
                    &Nonce::from(noise_nonce(nonce)),
                    &[],
                    InOutBuf::from(buffer),
                    &Tag::from(tag),
                )
                .expect("the record authenticates"),
            Keys::Ring { receiver, .. } => {
                receiver
                    .open_in_place_separate_tag(
                        ring::aead::Nonce::assume_unique_for_key(noise_nonce(nonce)),
                        Aad::empty(),
                        ring::aead::Tag::try_from(&tag[..]).expect("a 16-byte tag"),
                        buffer,
                        0..,
                    )
                    .expect("the record authenticates");
            }
        }
    }

    /// Seals `buffer` in place and opens it again in place, as [`AeadFloor::seal_open`] does
    /// with its own buffer.
    ///
    /// # Panics
    /// If opening fails, which would be a bug.
    pub fn seal_open_in(&mut self, buffer: &mut [u8]) {
        let (nonce, tag) = Self::seal_in(&self.keys, &mut self.nonce, buffer);
        Self::open_in(&self.keys, nonce, tag, buffer);
    }

    /// Seals the buffer in place and opens it again in place: one record's sender and
    /// receiver work. Returns the plaintext, which equals the original payload.
    ///
    /// # Panics
    /// If opening fails, which would be a bug.
    pub fn seal_open(&mut self) -> &[u8] {
        let (nonce, tag) = Self::seal_in(&self.keys, &mut self.nonce, &mut self.buffer);
        Self::open_in(&self.keys, nonce, tag, &mut self.buffer);
        &self.buffer
    }

    /// Seals the buffer in place and discards the tag: the sender's share alone. The buffer
    /// holds ciphertext afterwards (re-encrypted on every call, which costs the same).
    pub fn seal_only(&mut self) {
        black_box(Self::seal_in(&self.keys, &mut self.nonce, &mut self.buffer));
    }

    /// Checks once that a round trip restores the payload.
    pub fn verify(&mut self) {
        let expected = payload();
        assert_eq!(self.seal_open(), &expected[..]);
    }
}

/// The bound of [`ConnThroughput::large`](crate::ConnThroughput::large) for any record layer
/// whose AEAD works only in place, as both backends' do: each [`LARGE_MESSAGE_LEN`]-byte
/// message copied once, record by record, straight to where the receiver hands it out from,
/// sealed there and opened there — no framing, no record header, no second copy (the
/// transport's), so the sender writes into the receiver's memory.
///
/// Unlike [`AeadFloor`]'s one hot buffer, this streams the messages' bytes: two distinct
/// messages, as the connection workload sends, and two destinations used in turn, as a
/// receiver must keep when it hands one message out while the next one starts arriving.
pub struct OneCopyBound {
    floor: AeadFloor,
    messages: [Vec<u8>; 2],
    destinations: [Vec<u8>; 2],
    next: usize,
}

impl OneCopyBound {
    /// Two messages, two destinations, and the floor's keys.
    pub fn new(seed: u64) -> Self {
        let message = |variant: usize| -> Vec<u8> {
            (0..LARGE_MESSAGE_LEN)
                .map(|i| ((i + 17 * variant) % 251) as u8)
                .collect()
        };
        OneCopyBound {
            floor: AeadFloor::new(seed),
            messages: [message(0), message(1)],
            // Written once, so no first touch of a page is timed.
            destinations: [vec![1; LARGE_MESSAGE_LEN], vec![2; LARGE_MESSAGE_LEN]],
            next: 0,
        }
    }

    /// Moves one message: copy, seal and open each record's worth where it lands.
    pub fn step(&mut self) {
        let index = self.next;
        self.next = (self.next + 1) % 2;
        let chunks = self.messages[index].chunks(RECORD_PAYLOAD_LEN);
        let landed = self.destinations[index].chunks_mut(RECORD_PAYLOAD_LEN);
        for (chunk, destination) in chunks.zip(landed) {
            destination.copy_from_slice(chunk);
            self.floor.seal_open_in(destination);
        }
        black_box(&self.destinations[index]);
    }

    /// Checks once that each destination ends up holding its message.
    pub fn verify(&mut self) {
        for _ in 0..2 {
            let index = self.next;
            self.step();
            assert!(self.destinations[index] == self.messages[index]);
        }
    }
}
