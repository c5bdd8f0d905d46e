//! The invariant checker: it watches every event the nodes hand their applications and
//! every message the simulation's traffic generator sends, and records each broken promise
//! of the node (nothing lost, duplicated or reordered; limits kept) as a [`Violation`].
//!
//! Messages the generator sends are *tracked*: they start with a 24-byte [`Tag`]
//! `b"SBsm" || sender index (u32 BE) || sequence number (u64 BE) || sent at (u64 BE,
//! simulated nanoseconds)`, followed by a body that is a function of (sender, sequence
//! number) alone ([`body_byte`]); the sequence number counts per sender from 1 across all
//! its peers and its restarts, so `(sender, receiver, seq)` names one delivery. When the
//! application sends one, the checker logs its channel, length and a 64-bit FNV-1a hash of
//! all its bytes ([`content_hash`]): it knows what was sent without asking the node. Untracked
//! messages (a test's own `send`s, and the generator's when the checker is off, tagged
//! with sequence number 0 for their send time alone) are ignored; tracked and untracked
//! messages must not share a connection, since the node's `confirmed` count covers both.
//!
//! What is checked, and when:
//! - **intact**: a tracked message taken by a receiving application was accepted by a
//!   `send` to that receiver, and has the channel, length and contents hash logged when it
//!   was sent — at each `Message` ([`ViolationKind::Corrupted`]);
//! - **no duplicate**: a `(sender, receiver, seq)` delivered twice — at each `Message`;
//! - **no reordering**: order is promised within one connection only, so per (sender,
//!   receiver) the sequence numbers a receiver takes since its latest `PeerConnected` for
//!   that sender must increase — at each `Message`;
//! - **nothing silently lost**: the tracked messages a sender's `send` accepted on one
//!   connection (from its `PeerConnected` to its `PeerDisconnected`) are, in send order, the
//!   `confirmed` first ones, then the `unconfirmed` returned ones, then the `unsent` returned
//!   ones, exactly; every confirmed one was delivered; no unsent one was ever delivered
//!   (checked when it is returned, and at every later delivery) — at each
//!   `PeerDisconnected` and at the end of a run (connections still open: confirmed so far
//!   must be delivered, the rest count as *pending*, in flight);
//! - **a crashed sender**: its application gets no `PeerDisconnected`, so the checker
//!   holds its connection statistics' claims against what it saw itself — confirmed plus
//!   still held adds up to what was sent, and every confirmed message was delivered; the
//!   rest of the connection's messages are *lost with the crash* (counted, not a
//!   violation: the promise to return them dies with the application), and a receiver
//!   still taking one later is checked as any delivery (once, in order, intact);
//! - **a killed process** (the real-process harness, `switchboard-harness`): a sender
//!   SIGKILLed leaves no statistics, only its log; [`Checker::sender_killed`] counts what
//!   its open connections carried and were not seen delivered as lost with the crash, and
//!   takes the sends it logged the intent of but not the result as *unknown*: each may be
//!   delivered, once, in order, intact — or never;
//! - **liveness**: from [`Checker::watch_liveness`] on — the scenario calls it when every
//!   fault has healed, or at the start of a run without faults — every tracked message
//!   `send` accepts is delivered or returned to its sender (at a `PeerDisconnected`; or
//!   lost with its sender's crash) within a stated bound of its send; in a run without
//!   faults it is delivered, never returned — checked every sample and at the end
//!   ([`ViolationKind::Liveness`]). Messages younger than the bound at the end are pending,
//!   not late;
//! - **peer limits** and **buffered bytes per connection**: reported by the simulator
//!   through [`Checker::limit_exceeded`] and [`Checker::buffer_sample`];
//! - **admission**: no subnet holds more of a node's pending handshakes than its share, and
//!   no node evicts a peer its configuration trusts or keeps persistent — the simulator
//!   reports them through [`Checker::pending_share_exceeded`] (sampled after every wake-up
//!   of the node) and [`Checker::protected_evicted`] (at each `PeerDisconnected` with
//!   `Evicted` by the node). That evictions are the same for a seed is the simulator's
//!   determinism (`tests/sim_eviction.rs`);
//! - **reconnection** after faults heal: reported through [`Checker::not_reconnected`];
//! - **no connection kept blocked** past its write-stall timeout: reported through
//!   [`Checker::stalled`] ([`ViolationKind::Stalled`]);
//! - **no honest peer cut off as an attacker**: a `PeerDisconnected` with `ControlFlood`
//!   between simulated nodes, all honest ([`ViolationKind::Penalized`]) — at each
//!   `PeerDisconnected`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use switchboard::node::NodeEvent;
use switchboard::{ChannelId, DisconnectReason, Instant, PeerId};

use crate::NodeIndex;

/// The channel the traffic generator uses.
pub const TRAFFIC_CHANNEL: ChannelId = 1;

/// Length of the [`Tag`] at the start of a generator's message.
pub const TAG_LEN: usize = 24;

const MAGIC: [u8; 4] = *b"SBsm";

/// Most violations kept with their detail; all are counted.
const KEPT_VIOLATIONS: usize = 64;

/// What kind of promise was broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ViolationKind {
    /// A message was neither confirmed nor returned, a confirmed one was never delivered, or
    /// an unsent one was delivered.
    Lost,
    /// A message was delivered twice.
    Duplicate,
    /// A receiving application took a message that is not what was sent to it: its length
    /// or contents differ from what the sender's application sent, or no `send` to this
    /// receiver ever accepted it.
    Corrupted,
    /// A message was delivered before one sent earlier on the same connection.
    Reordered,
    /// A node had more inbound or outbound peers than its limits allow.
    PeerLimit,
    /// A connection buffered more bytes than its configuration allows.
    Buffered,
    /// A node held more bans than its `max_bans`.
    Bans,
    /// A subnet held more of a node's pending handshakes than its share
    /// (`Limits::max_pending_per_subnet`).
    PendingShare,
    /// A node evicted a trusted or persistent peer.
    ProtectedEvicted,
    /// The network was not one component within the stated time after every fault healed.
    NotReconnected,
    /// A message sent once the faults had healed was neither delivered nor returned within
    /// the stated time — or, in a run without faults, was returned at all.
    Liveness,
    /// An event that cannot happen did (a peer connected twice, a message from a stranger).
    Inconsistent,
    /// A node cut a simulated peer off as an attacker (`ControlFlood`: more frames carrying
    /// nothing than their budget allows). Every simulated node is honest, so the budget
    /// must never fire between them.
    Penalized,
    /// A connection's output stayed blocked past its write-stall timeout and the node kept
    /// it open: a peer that never reads would keep its slot.
    Stalled,
    /// A node had more query connections than its query budgets allow
    /// (`Limits::max_inbound_queries`, `Limits::max_outbound_queries`).
    QueryBudget,
    /// A node counted more peer slots taken than it has peers: a query connection (or
    /// anything else not a peer) held a slot.
    QuerySlot,
}

impl fmt::Display for ViolationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ViolationKind::Lost => "message lost",
            ViolationKind::Duplicate => "duplicate delivery",
            ViolationKind::Corrupted => "corrupted delivery",
            ViolationKind::Reordered => "reordered delivery",
            ViolationKind::PeerLimit => "peer limit exceeded",
            ViolationKind::Buffered => "connection buffer over its bound",
            ViolationKind::Bans => "ban list over its bound",
            ViolationKind::PendingShare => "pending handshakes over a subnet's share",
            ViolationKind::ProtectedEvicted => "trusted or persistent peer evicted",
            ViolationKind::NotReconnected => "network not reconnected",
            ViolationKind::Liveness => "message neither delivered nor returned in time",
            ViolationKind::Inconsistent => "inconsistent events",
            ViolationKind::Penalized => "honest peer cut off as a flooder",
            ViolationKind::Stalled => "connection kept past its write-stall timeout",
            ViolationKind::QueryBudget => "query connections over their budget",
            ViolationKind::QuerySlot => "peer slot held by something not a peer",
        })
    }
}

/// Test only: a fault the simulator injects where it hands the checker what the nodes did,
/// once (on the first event it applies to), so that each detection branch is shown to fire
/// ([`SimConfig::inject`](crate::SimConfig::inject)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckerFault {
    /// Holds back a tracked delivery and hands it over after the next one from the same
    /// peer: [`ViolationKind::Reordered`].
    Reorder,
    /// Hands a tracked delivery over twice: [`ViolationKind::Duplicate`].
    Duplicate,
    /// Flips a bit of a tracked delivery's last byte: [`ViolationKind::Corrupted`].
    CorruptByte,
    /// Drops the last byte of a tracked delivery: [`ViolationKind::Corrupted`].
    Truncate,
    /// Hides a tracked delivery, which its sender's node then confirms:
    /// [`ViolationKind::Lost`] (and, where liveness is watched, [`ViolationKind::Liveness`]).
    ConfirmWithoutDelivery,
    /// Hands over, beside a tracked delivery, a well-formed message of the same sender that
    /// was never sent: [`ViolationKind::Corrupted`].
    DeliverUnsent,
    /// Removes a returned message from a sender's `PeerDisconnected`, as if the node had
    /// dropped it silently: [`ViolationKind::Lost`].
    DropSilently,
    /// Adds a connection's bound plus one to its buffered bytes in one sample:
    /// [`ViolationKind::Buffered`].
    ExceedBuffer,
    /// Adds the inbound limit plus one to a node's inbound peers once:
    /// [`ViolationKind::PeerLimit`].
    ExceedPeerLimit,
    /// Adds `max_bans` plus one to the bans a node holds once: [`ViolationKind::Bans`].
    ExceedBans,
    /// Turns the reason of a `PeerDisconnected` into `ControlFlood`:
    /// [`ViolationKind::Penalized`].
    ReportFlood,
    /// Shows one open connection, in one sample, blocked since a write-stall timeout and
    /// a second before: [`ViolationKind::Stalled`].
    HideStall,
    /// Adds a subnet's share plus one to a node's largest pending share once:
    /// [`ViolationKind::PendingShare`].
    ExceedPendingShare,
    /// Turns the first `PeerDisconnected` into an eviction of a peer the node is made to
    /// trust: [`ViolationKind::ProtectedEvicted`].
    EvictProtected,
    /// Adds the inbound query budget plus one to a node's inbound query connections once:
    /// [`ViolationKind::QueryBudget`].
    ExceedQueryBudget,
    /// Adds one to a node's counted inbound peer slots once, as a query connection taking
    /// one would: [`ViolationKind::QuerySlot`].
    QueryTakesSlot,
}

/// One broken invariant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// What.
    pub kind: ViolationKind,
    /// The seed of the run: rerun with it to reproduce.
    pub seed: u64,
    /// Virtual time it was seen.
    pub at: Instant,
    /// Who and which message.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at {:.3} s: {} (seed {})",
            self.kind,
            self.at.as_nanos() as f64 / 1e9,
            self.detail,
            self.seed
        )
    }
}

/// The checker's tallies (the message figures of the `--json` summary).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Tracked messages accepted by `send` (a broadcast counts once per peer that took it).
    pub sent: u64,
    /// Tracked messages taken by a receiving application (each once).
    pub delivered: u64,
    /// Confirmed by the receiver (credit), on ended connections and, at the end, open ones.
    pub confirmed: u64,
    /// Returned as unsent.
    pub returned_unsent: u64,
    /// Returned as unconfirmed.
    pub returned_unconfirmed: u64,
    /// Still in flight on a connection open at the end.
    pub pending: u64,
    /// Neither confirmed nor delivered when their sender crashed (see
    /// [`Checker::connection_crashed`]).
    pub lost_with_crash: u64,
    /// Sends of a killed process whose result it never logged
    /// ([`Checker::sender_killed`]): each delivered at most once, or never.
    pub unknown_with_crash: u64,
    /// Messages violating "nothing silently lost".
    pub lost: u64,
    /// Deliveries of a message already delivered.
    pub duplicates: u64,
    /// Deliveries out of send order within one connection.
    pub reordered: u64,
    /// Deliveries whose length or contents differ from what was sent, or of a message no
    /// `send` to that receiver accepted.
    pub corrupted: u64,
    /// Peer-limit, buffer-bound, pending-share and protected-eviction violations.
    pub limit_violations: u64,
    /// Messages sent after the faults healed and neither delivered nor returned within the
    /// bound (or returned in a run without faults).
    pub liveness_violations: u64,
    /// Largest bytes buffered by one connection in any sample.
    pub max_conn_buffered_bytes: u64,
    /// All violations, of every kind.
    pub violations: u64,
}

/// What the traffic generator writes at the start of its messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tag {
    /// The sending node.
    pub sender: NodeIndex,
    /// Its sequence number among the sender's tracked messages (from 1); 0 for an
    /// untracked one.
    pub seq: u64,
    /// When the sender's application sent it: the start of its delivery latency.
    pub sent_at: Instant,
}

impl Tag {
    /// A message of `len` bytes (at least [`TAG_LEN`]) starting with this tag, its body a
    /// deterministic function of (sender, sequence number) — [`body_byte`] — so that a byte
    /// changed anywhere, not only in the tag, makes it another message.
    pub fn message(&self, len: usize) -> Bytes {
        let mut message = vec![0u8; len.max(TAG_LEN)];
        message[..4].copy_from_slice(&MAGIC);
        message[4..8].copy_from_slice(&(self.sender as u32).to_be_bytes());
        message[8..16].copy_from_slice(&self.seq.to_be_bytes());
        message[16..24].copy_from_slice(&self.sent_at.as_nanos().to_be_bytes());
        let mut state = body_seed(self.sender, self.seq);
        for byte in &mut message[TAG_LEN..] {
            *byte = body_byte(&mut state);
        }
        Bytes::from(message)
    }

    /// The tag `message` starts with, if it has one.
    pub fn read(message: &[u8]) -> Option<Tag> {
        let (magic, rest) = message.split_first_chunk::<4>()?;
        let (sender, rest) = rest.split_first_chunk::<4>()?;
        let (seq, rest) = rest.split_first_chunk::<8>()?;
        let (sent_at, _) = rest.split_first_chunk::<8>()?;
        (*magic == MAGIC).then(|| Tag {
            sender: u32::from_be_bytes(*sender) as NodeIndex,
            seq: u64::from_be_bytes(*seq),
            sent_at: Instant::from_nanos(u64::from_be_bytes(*sent_at)),
        })
    }

    /// The tag of a tracked message: `Some` only with a sequence number.
    pub fn tracked(message: &[u8]) -> Option<Tag> {
        Tag::read(message).filter(|tag| tag.seq > 0)
    }
}

/// The seed of the body of message `seq` of `sender` (a splitmix64 stream).
fn body_seed(sender: NodeIndex, seq: u64) -> u64 {
    (sender as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ seq.wrapping_mul(0xD1B5_4A32_D192_ED03)
}

/// The next byte of a message body: one splitmix64 step, its top byte.
pub fn body_byte(state: &mut u64) -> u8 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) >> 56) as u8
}

/// 64-bit FNV-1a of a whole message: what the checker remembers of its contents.
pub fn content_hash(message: &[u8]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for &byte in message {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// What the checker logs of a tracked message when its application sends it, to compare
/// with what a receiving application takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Sent {
    channel: ChannelId,
    len: u32,
    hash: u64,
}

/// Tracked sequence numbers per (sender, receiver) — those delivered, those `send`
/// accepted — each list sorted: 8 bytes a message — a long run has millions — and one
/// appended in O(1), a sender's numbers only growing (an older one, out of order, is
/// inserted in place).
#[derive(Default)]
struct PairSeqs(BTreeMap<(NodeIndex, NodeIndex), Vec<u64>>);

impl PairSeqs {
    /// Records `seq` from `sender` at `receiver`; false if it was already.
    fn insert(&mut self, sender: NodeIndex, receiver: NodeIndex, seq: u64) -> bool {
        let seqs = self.0.entry((sender, receiver)).or_default();
        if seqs.last().is_none_or(|&last| last < seq) {
            seqs.push(seq);
            return true;
        }
        match seqs.binary_search(&seq) {
            Ok(_) => false,
            Err(at) => {
                seqs.insert(at, seq);
                true
            }
        }
    }

    fn contains(&self, sender: NodeIndex, receiver: NodeIndex, seq: u64) -> bool {
        self.0
            .get(&(sender, receiver))
            .is_some_and(|seqs| seqs.binary_search(&seq).is_ok())
    }
}

/// The messages awaited since [`Checker::watch_liveness`].
struct Liveness {
    from: Instant,
    bound: Duration,
    /// Without faults a returned message is a violation too.
    no_faults: bool,
    /// In send order: (sent at, sender, receiver, seq), awaited or not any more.
    queue: VecDeque<(Instant, NodeIndex, NodeIndex, u64)>,
    awaited: BTreeSet<(NodeIndex, NodeIndex, u64)>,
}

/// See the [module documentation](self).
pub struct Checker {
    next_seq: Vec<u64>,
    /// Sender side: per (sender, receiver), the tracked sequence numbers `send` accepted on
    /// the open connection, in order. Present from `PeerConnected` to `PeerDisconnected`.
    sending: BTreeMap<(NodeIndex, NodeIndex), Vec<u64>>,
    /// Receiver side: per (sender, receiver), the last sequence number taken on the current
    /// connection.
    receiving: BTreeMap<(NodeIndex, NodeIndex), u64>,
    delivered: PairSeqs,
    /// Per (sender, receiver), every tracked sequence number `send` accepted, on any
    /// connection.
    accepted: PairSeqs,
    /// Per sender, indexed by sequence number − 1: what its application sent.
    log: Vec<Vec<Sent>>,
    unsent: BTreeSet<(NodeIndex, NodeIndex, u64)>,
    liveness: Option<Liveness>,
    seed: u64,
    counters: Counters,
    violations: Vec<Violation>,
}

impl Checker {
    /// A checker for the run of `seed` (named in every violation).
    pub fn new(seed: u64) -> Self {
        Checker {
            next_seq: Vec::new(),
            sending: Default::default(),
            receiving: Default::default(),
            delivered: PairSeqs::default(),
            accepted: PairSeqs::default(),
            log: Vec::new(),
            unsent: BTreeSet::new(),
            liveness: None,
            seed,
            counters: Counters::default(),
            violations: Vec::new(),
        }
    }

    /// The tallies so far.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The violations kept (the first 64; [`Counters::violations`] counts all).
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    fn violate(&mut self, kind: ViolationKind, at: Instant, detail: String) {
        self.counters.violations += 1;
        match kind {
            ViolationKind::Lost => self.counters.lost += 1,
            ViolationKind::Duplicate => self.counters.duplicates += 1,
            ViolationKind::Reordered => self.counters.reordered += 1,
            ViolationKind::Corrupted => self.counters.corrupted += 1,
            ViolationKind::Liveness => self.counters.liveness_violations += 1,
            ViolationKind::PeerLimit
            | ViolationKind::Buffered
            | ViolationKind::Bans
            | ViolationKind::Stalled
            | ViolationKind::PendingShare
            | ViolationKind::ProtectedEvicted
            | ViolationKind::QueryBudget
            | ViolationKind::QuerySlot => self.counters.limit_violations += 1,
            ViolationKind::NotReconnected
            | ViolationKind::Inconsistent
            | ViolationKind::Penalized => {}
        }
        if self.violations.len() < KEPT_VIOLATIONS {
            self.violations.push(Violation {
                kind,
                seed: self.seed,
                at,
                detail,
            });
        }
    }

    /// A tracked message from `sender` of `len` bytes (at least [`TAG_LEN`]), sent at
    /// `now`: its sequence number and bytes. Call [`Checker::on_sent`] for each peer that
    /// accepts it.
    pub fn tag(&mut self, now: Instant, sender: NodeIndex, len: usize) -> (u64, Bytes) {
        if self.next_seq.len() <= sender {
            self.next_seq.resize(sender + 1, 1);
        }
        let seq = self.next_seq[sender];
        self.next_seq[sender] += 1;
        let tag = Tag {
            sender,
            seq,
            sent_at: now,
        };
        let message = tag.message(len);
        let len = u32::try_from(message.len()).unwrap_or(u32::MAX);
        self.log_sent(sender, seq, TRAFFIC_CHANNEL, len, content_hash(&message));
        (seq, message)
    }

    /// A tracked message its sender's application numbered itself (a harness whose nodes
    /// are processes of their own, each logging what it sends), instead of
    /// [`Checker::tag`]: message `seq` of `sender`, `len` bytes on `channel` with
    /// [`content_hash`] `hash`. Numbers come in order from 1 per sender; one skipped is a
    /// message never sent, which no delivery matches. Call [`Checker::on_sent`] for each
    /// peer whose `send` accepted it.
    pub fn log_sent(
        &mut self,
        sender: NodeIndex,
        seq: u64,
        channel: ChannelId,
        len: u32,
        hash: u64,
    ) {
        if self.log.len() <= sender {
            self.log.resize_with(sender + 1, Vec::new);
        }
        let Some(index) = usize::try_from(seq).ok().and_then(|seq| seq.checked_sub(1)) else {
            return;
        };
        let log = &mut self.log[sender];
        if log.len() <= index {
            // Never sent: a length no tracked message has.
            let skipped = Sent {
                channel,
                len: 0,
                hash: 0,
            };
            log.resize(index + 1, skipped);
        }
        log[index] = Sent { channel, len, hash };
    }

    /// `sender`'s `send` accepted tracked message `seq` for `receiver`.
    pub fn on_sent(&mut self, now: Instant, sender: NodeIndex, receiver: NodeIndex, seq: u64) {
        self.counters.sent += 1;
        self.accepted.insert(sender, receiver, seq);
        if let Some(liveness) = &mut self.liveness
            && now >= liveness.from
        {
            liveness.queue.push_back((now, sender, receiver, seq));
            liveness.awaited.insert((sender, receiver, seq));
        }
        match self.sending.get_mut(&(sender, receiver)) {
            Some(sent) => sent.push(seq),
            None => self.violate(
                ViolationKind::Inconsistent,
                now,
                format!("node {sender} sent #{seq} to node {receiver} without a PeerConnected"),
            ),
        }
    }

    /// Node `node`'s application took `event`.
    pub fn on_event(
        &mut self,
        now: Instant,
        node: NodeIndex,
        event: &NodeEvent,
        index_of: impl Fn(&PeerId) -> Option<NodeIndex>,
    ) {
        match event {
            NodeEvent::PeerConnected { peer, .. } => {
                if let Some(peer) = index_of(peer) {
                    self.peer_connected(now, node, peer);
                }
            }
            NodeEvent::PeerDisconnected {
                peer,
                reason,
                unsent,
                unconfirmed,
                confirmed_by_channel,
                ..
            } => {
                let Some(peer) = index_of(peer) else {
                    return;
                };
                if *reason == DisconnectReason::ControlFlood {
                    self.violate(
                        ViolationKind::Penalized,
                        now,
                        format!("node {node}: cut node {peer} off for {reason}"),
                    );
                }
                // Only the traffic channel's: protocols may send on others beside it.
                let confirmed = confirmed_by_channel
                    .iter()
                    .filter(|(channel, _)| *channel == TRAFFIC_CHANNEL)
                    .map(|(_, count)| *count)
                    .sum();
                let own = |returned: &[switchboard::ReturnedMessage]| -> Vec<u64> {
                    returned
                        .iter()
                        .filter(|m| m.channel == TRAFFIC_CHANNEL)
                        .filter_map(|m| Tag::tracked(&m.message))
                        .filter(|tag| tag.sender == node)
                        .map(|tag| tag.seq)
                        .collect()
                };
                let (unconfirmed, unsent) = (own(unconfirmed), own(unsent));
                self.connection_ended(now, node, peer, confirmed, &unconfirmed, &unsent);
            }
            NodeEvent::Message {
                peer,
                channel,
                message,
            } => {
                if *channel != TRAFFIC_CHANNEL {
                    return;
                }
                let Some(Tag { sender, seq, .. }) = Tag::tracked(message) else {
                    return;
                };
                let from = index_of(peer);
                let len = u32::try_from(message.len()).unwrap_or(u32::MAX);
                let hash = content_hash(message);
                if self.intact(now, node, sender, seq, *channel, len, hash) {
                    self.delivered(now, node, from, sender, seq);
                }
            }
            // Dial failures and slow peers say nothing about delivery (and a kind of event
            // added later must be weighed here before it is let through).
            _ => {}
        }
    }

    /// Node `node`'s application took `PeerConnected` for `peer` (what
    /// [`Checker::on_event`] does with the event, for a caller that has a log of it).
    pub fn peer_connected(&mut self, now: Instant, node: NodeIndex, peer: NodeIndex) {
        self.receiving.insert((peer, node), 0);
        if self.sending.insert((node, peer), Vec::new()).is_some() {
            self.violate(
                ViolationKind::Inconsistent,
                now,
                format!("node {node}: PeerConnected for node {peer}, already connected"),
            );
        }
    }

    /// Node `receiver`'s application took, from the connection of `from`, tracked message
    /// `seq` of `sender` on `channel`: `len` bytes whose [`content_hash`] is `hash` (what
    /// [`Checker::on_event`] does with a `Message`, for a caller that logged its digest
    /// rather than kept its bytes).
    #[allow(clippy::too_many_arguments)]
    pub fn delivery_logged(
        &mut self,
        now: Instant,
        receiver: NodeIndex,
        from: Option<NodeIndex>,
        channel: ChannelId,
        sender: NodeIndex,
        seq: u64,
        len: u32,
        hash: u64,
    ) {
        if self.intact(now, receiver, sender, seq, channel, len, hash) {
            self.delivered(now, receiver, from, sender, seq);
        }
    }

    /// Whether message `seq` of `sender`, taken by `receiver`, is one `send` accepted for
    /// `receiver`; reports it if not, or if its length or contents differ from what was
    /// sent (still counting it delivered: it was, damaged). False for one never sent.
    #[allow(clippy::too_many_arguments)]
    fn intact(
        &mut self,
        now: Instant,
        receiver: NodeIndex,
        sender: NodeIndex,
        seq: u64,
        channel: ChannelId,
        len: u32,
        hash: u64,
    ) -> bool {
        let sent = usize::try_from(seq.saturating_sub(1))
            .ok()
            .and_then(|at| self.log.get(sender)?.get(at).copied());
        let Some(sent) = sent.filter(|_| self.accepted.contains(sender, receiver, seq)) else {
            self.violate(
                ViolationKind::Corrupted,
                now,
                format!("node {receiver} took #{seq} of node {sender}, never sent to it"),
            );
            return false;
        };
        if sent.channel != channel || sent.len != len || sent.hash != hash {
            self.violate(
                ViolationKind::Corrupted,
                now,
                format!(
                    "node {receiver} took #{seq} of node {sender}: {len} bytes on channel \
                     {channel}, sent {} on channel {}, contents {}",
                    sent.len,
                    sent.channel,
                    if sent.hash == hash { "equal" } else { "differ" }
                ),
            );
        }
        true
    }

    fn delivered(
        &mut self,
        now: Instant,
        receiver: NodeIndex,
        from: Option<NodeIndex>,
        sender: NodeIndex,
        seq: u64,
    ) {
        if from != Some(sender) {
            self.violate(
                ViolationKind::Inconsistent,
                now,
                format!("node {receiver} took #{seq} of node {sender} from {from:?}"),
            );
            return;
        }
        if !self.delivered.insert(sender, receiver, seq) {
            self.violate(
                ViolationKind::Duplicate,
                now,
                format!("node {receiver} took #{seq} of node {sender} twice"),
            );
            return;
        }
        self.counters.delivered += 1;
        if let Some(liveness) = &mut self.liveness {
            liveness.awaited.remove(&(sender, receiver, seq));
        }
        if self.unsent.contains(&(sender, receiver, seq)) {
            self.violate(
                ViolationKind::Lost,
                now,
                format!("node {receiver} took #{seq} of node {sender}, returned to it as unsent"),
            );
        }
        let last = self.receiving.entry((sender, receiver)).or_insert(0);
        if seq <= *last {
            let last = *last;
            self.violate(
                ViolationKind::Reordered,
                now,
                format!("node {receiver} took #{seq} of node {sender} after #{last}"),
            );
        } else {
            *last = seq;
        }
    }

    /// The connection from `sender` to `receiver` ended, as the sender's node reported it
    /// (or, for a crash, as its connection statistics tell).
    pub fn connection_ended(
        &mut self,
        now: Instant,
        sender: NodeIndex,
        receiver: NodeIndex,
        confirmed: u64,
        unconfirmed: &[u64],
        unsent: &[u64],
    ) {
        let Some(sent) = self.sending.remove(&(sender, receiver)) else {
            self.violate(
                ViolationKind::Inconsistent,
                now,
                format!("node {sender}: PeerDisconnected for node {receiver}, not connected"),
            );
            return;
        };
        if sent.is_empty() && unconfirmed.is_empty() && unsent.is_empty() {
            // No tracked traffic: the count may cover a test's own messages.
            return;
        }
        let confirmed = usize::try_from(confirmed).unwrap_or(usize::MAX);
        let returned = confirmed
            .saturating_add(unconfirmed.len())
            .saturating_add(unsent.len());
        self.counters.confirmed += confirmed as u64;
        self.counters.returned_unconfirmed += unconfirmed.len() as u64;
        self.counters.returned_unsent += unsent.len() as u64;
        let expected_unconfirmed = sent.get(confirmed..confirmed.saturating_add(unconfirmed.len()));
        let expected_unsent = sent.get(confirmed.saturating_add(unconfirmed.len())..);
        if returned != sent.len()
            || expected_unconfirmed != Some(unconfirmed)
            || expected_unsent != Some(unsent)
        {
            for _ in 0..sent.len().abs_diff(returned).max(1) {
                self.violate(
                    ViolationKind::Lost,
                    now,
                    format!(
                        "node {sender} → node {receiver}: sent {:?}, confirmed {confirmed}, \
                         returned unconfirmed {unconfirmed:?}, unsent {unsent:?}",
                        abbreviate(&sent)
                    ),
                );
            }
        }
        for &seq in sent.iter().take(confirmed) {
            if !self.delivered.contains(sender, receiver, seq) {
                self.violate(
                    ViolationKind::Lost,
                    now,
                    format!("node {sender} → node {receiver}: #{seq} confirmed, never delivered"),
                );
            }
        }
        for &seq in unconfirmed.iter().chain(unsent) {
            self.returned(now, sender, receiver, seq);
        }
        for &seq in unsent {
            self.unsent.insert((sender, receiver, seq));
            if self.delivered.contains(sender, receiver, seq) {
                self.violate(
                    ViolationKind::Lost,
                    now,
                    format!("node {sender} → node {receiver}: #{seq} returned unsent, delivered"),
                );
            }
        }
    }

    /// `sender` crashed with its connection to `receiver` open; its statistics claim
    /// `confirmed` messages confirmed and `held` more written-not-confirmed or queued. No
    /// application is left to hand messages back to, so the checker judges from what it
    /// saw itself: the claims must add up to what was sent on the connection, and the first
    /// `confirmed` sent must have been delivered (credit is granted only for messages
    /// taken, in order). Every other message of the connection is *lost with the crash*:
    /// not a violation, since the node's promise (return what was not confirmed) dies with
    /// its application, but counted ([`Counters::lost_with_crash`]); the receiver may still
    /// take one it holds, once and in order, which is checked as any delivery is.
    pub fn connection_crashed(
        &mut self,
        now: Instant,
        sender: NodeIndex,
        receiver: NodeIndex,
        confirmed: u64,
        held: usize,
    ) {
        let Some(sent) = self.sending.remove(&(sender, receiver)) else {
            return;
        };
        let claimed = usize::try_from(confirmed)
            .unwrap_or(usize::MAX)
            .saturating_add(held);
        if claimed != sent.len() {
            for _ in 0..sent.len().abs_diff(claimed) {
                self.violate(
                    ViolationKind::Lost,
                    now,
                    format!(
                        "node {sender} → node {receiver} crashed: sent {}, its node holds \
                         {confirmed} confirmed and {held} others",
                        sent.len()
                    ),
                );
            }
        }
        let confirmed = usize::try_from(confirmed)
            .unwrap_or(usize::MAX)
            .min(sent.len());
        self.counters.confirmed += confirmed as u64;
        for &seq in &sent[..confirmed] {
            if !self.delivered.contains(sender, receiver, seq) {
                self.violate(
                    ViolationKind::Lost,
                    now,
                    format!("node {sender} → node {receiver}: #{seq} confirmed, never delivered"),
                );
            }
        }
        if let Some(liveness) = &mut self.liveness {
            for &seq in &sent {
                liveness.awaited.remove(&(sender, receiver, seq));
            }
        }
        self.counters.lost_with_crash += sent[confirmed..]
            .iter()
            .filter(|&&seq| !self.delivered.contains(sender, receiver, seq))
            .count() as u64;
    }

    /// `sender`'s process was killed (SIGKILL): no statistics survive it, only what its
    /// application logged. Each connection it had open is over; what was sent on it and
    /// not seen delivered so far is *lost with the crash* (as in
    /// [`Checker::connection_crashed`], counted, not a violation), and a receiver taking
    /// one later is checked as any delivery. `unknown` are the sends — (receiver, seq) —
    /// whose intent the application logged but not `send`'s answer: accepted or not, no one
    /// knows, so each may be delivered (once, in order, intact) or never, and is not awaited
    /// ([`Counters::unknown_with_crash`]). Nothing else is loosened: deliveries are checked
    /// as ever, and a killed *receiver* is still held by its senders to every message they
    /// saw confirmed.
    pub fn sender_killed(&mut self, sender: NodeIndex, unknown: &[(NodeIndex, u64)]) {
        for receiver in self.open_connections(sender) {
            let Some(sent) = self.sending.remove(&(sender, receiver)) else {
                continue;
            };
            if let Some(liveness) = &mut self.liveness {
                for &seq in &sent {
                    liveness.awaited.remove(&(sender, receiver, seq));
                }
            }
            self.counters.lost_with_crash += sent
                .iter()
                .filter(|&&seq| !self.delivered.contains(sender, receiver, seq))
                .count() as u64;
        }
        for &(receiver, seq) in unknown {
            self.counters.unknown_with_crash += 1;
            self.accepted.insert(sender, receiver, seq);
        }
    }

    /// Message `seq` from `sender` to `receiver` came back to its application.
    fn returned(&mut self, now: Instant, sender: NodeIndex, receiver: NodeIndex, seq: u64) {
        let Some(liveness) = &mut self.liveness else {
            return;
        };
        if liveness.awaited.remove(&(sender, receiver, seq)) && liveness.no_faults {
            self.violate(
                ViolationKind::Liveness,
                now,
                format!("node {sender} → node {receiver}: #{seq} returned in a run without faults"),
            );
        }
    }

    /// From `from` on, every tracked message `send` accepts must be delivered or returned
    /// to its sender within `bound` of its send (checked by [`Checker::check_liveness`]);
    /// with `no_faults`, delivered. A second call changes nothing: the first heal counts.
    pub fn watch_liveness(&mut self, from: Instant, bound: Duration, no_faults: bool) {
        if self.liveness.is_none() {
            self.liveness = Some(Liveness {
                from,
                bound,
                no_faults,
                queue: VecDeque::new(),
                awaited: BTreeSet::new(),
            });
        }
    }

    /// Reports every awaited message sent `bound` or longer before `now` (see
    /// [`Checker::watch_liveness`]).
    pub fn check_liveness(&mut self, now: Instant) {
        let Some(liveness) = &mut self.liveness else {
            return;
        };
        let mut overdue = Vec::new();
        while let Some(&(sent_at, sender, receiver, seq)) = liveness.queue.front() {
            if now.saturating_duration_since(sent_at) < liveness.bound {
                break;
            }
            liveness.queue.pop_front();
            if liveness.awaited.remove(&(sender, receiver, seq)) {
                overdue.push((sent_at, sender, receiver, seq));
            }
        }
        let bound = liveness.bound;
        for (sent_at, sender, receiver, seq) in overdue {
            self.violate(
                ViolationKind::Liveness,
                now,
                format!(
                    "node {sender} → node {receiver}: #{seq}, sent at {:.3} s, neither \
                     delivered nor returned within {:.1} s",
                    sent_at.as_nanos() as f64 / 1e9,
                    bound.as_secs_f64()
                ),
            );
        }
    }

    /// The end of a run: the connection from `sender` to `receiver` is still open and
    /// `confirmed` of its messages were confirmed so far; the rest are pending.
    pub fn connection_open_at_end(
        &mut self,
        now: Instant,
        sender: NodeIndex,
        receiver: NodeIndex,
        confirmed: u64,
    ) {
        let Some(sent) = self.sending.remove(&(sender, receiver)) else {
            return;
        };
        let confirmed = usize::try_from(confirmed).unwrap_or(usize::MAX);
        if confirmed > sent.len() {
            self.violate(
                ViolationKind::Lost,
                now,
                format!(
                    "node {sender} → node {receiver}: {confirmed} confirmed of {} sent",
                    sent.len()
                ),
            );
        }
        self.counters.confirmed += confirmed.min(sent.len()) as u64;
        self.counters.pending += sent.len().saturating_sub(confirmed) as u64;
        for &seq in sent.iter().take(confirmed) {
            if !self.delivered.contains(sender, receiver, seq) {
                self.violate(
                    ViolationKind::Lost,
                    now,
                    format!("node {sender} → node {receiver}: #{seq} confirmed, never delivered"),
                );
            }
        }
    }

    /// The receivers `sender` has an open connection to, as its application saw it.
    pub fn open_connections(&self, sender: NodeIndex) -> Vec<NodeIndex> {
        self.sending
            .range((sender, 0)..=(sender, NodeIndex::MAX))
            .map(|(&(_, receiver), _)| receiver)
            .collect()
    }

    /// How many tracked messages are recorded as sent on the open connection.
    pub fn sent_on(&self, sender: NodeIndex, receiver: NodeIndex) -> Option<usize> {
        self.sending.get(&(sender, receiver)).map(Vec::len)
    }

    /// A node had `counts` (inbound, outbound) peers, over its `limits`.
    pub fn limit_exceeded(
        &mut self,
        now: Instant,
        node: NodeIndex,
        counts: (usize, usize),
        limits: (usize, usize),
    ) {
        self.violate(
            ViolationKind::PeerLimit,
            now,
            format!("node {node}: (inbound, outbound) = {counts:?} over {limits:?}"),
        );
    }

    /// A node had `counts` (inbound, outbound) query connections, over its `budgets`.
    pub fn query_budget_exceeded(
        &mut self,
        now: Instant,
        node: NodeIndex,
        counts: (usize, usize),
        budgets: (usize, usize),
    ) {
        self.violate(
            ViolationKind::QueryBudget,
            now,
            format!("node {node}: (inbound, outbound) queries = {counts:?} over {budgets:?}"),
        );
    }

    /// A node counted `counted` peer slots taken with only `peers` peers.
    pub fn slot_without_peer(
        &mut self,
        now: Instant,
        node: NodeIndex,
        counted: usize,
        peers: usize,
    ) {
        self.violate(
            ViolationKind::QuerySlot,
            now,
            format!("node {node}: {counted} peer slots taken by {peers} peers"),
        );
    }

    /// A node held `held` bans, over its `bound`.
    pub fn bans_exceeded(&mut self, now: Instant, node: NodeIndex, held: usize, bound: usize) {
        self.violate(
            ViolationKind::Bans,
            now,
            format!("node {node}: {held} bans held, bound {bound}"),
        );
    }

    /// A subnet held `held` of `node`'s pending handshakes, over its `share`.
    pub fn pending_share_exceeded(
        &mut self,
        now: Instant,
        node: NodeIndex,
        held: usize,
        share: usize,
    ) {
        self.violate(
            ViolationKind::PendingShare,
            now,
            format!("node {node}: {held} pending handshakes from one subnet, over {share}"),
        );
    }

    /// `node` evicted `peer`, which it trusts or keeps persistent.
    pub fn protected_evicted(&mut self, now: Instant, node: NodeIndex, peer: PeerId) {
        self.violate(
            ViolationKind::ProtectedEvicted,
            now,
            format!("node {node} evicted {peer}, trusted or persistent"),
        );
    }

    /// One connection of `node` buffered `bytes`, whose bound is `bound`.
    pub fn buffer_sample(&mut self, now: Instant, node: NodeIndex, bytes: u64, bound: u64) {
        self.counters.max_conn_buffered_bytes = self.counters.max_conn_buffered_bytes.max(bytes);
        if bytes > bound {
            self.violate(
                ViolationKind::Buffered,
                now,
                format!("node {node}: a connection buffers {bytes} bytes, bound {bound}"),
            );
        }
    }

    /// A connection of `node` still open, its output blocked for `blocked`, past the
    /// write-stall timeout `timeout`.
    pub fn stalled(&mut self, now: Instant, node: NodeIndex, blocked: Duration, timeout: Duration) {
        self.violate(
            ViolationKind::Stalled,
            now,
            format!(
                "node {node}: a connection blocked for {blocked:?} still open (timeout {timeout:?})"
            ),
        );
    }

    /// The network was in `components` components `after` the faults healed.
    pub fn not_reconnected(&mut self, now: Instant, components: usize, after: std::time::Duration) {
        self.violate(
            ViolationKind::NotReconnected,
            now,
            format!(
                "{components} components {:.1} s after every fault healed",
                after.as_secs_f64()
            ),
        );
    }
}

fn abbreviate(seqs: &[u64]) -> Vec<u64> {
    seqs.iter().take(16).copied().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_is_a_function_of_sender_and_sequence_and_any_change_shows() {
        let tag = |sender, seq, at| Tag {
            sender,
            seq,
            sent_at: Instant::from_nanos(at),
        };
        let message = tag(3, 7, 5).message(100);
        assert_eq!(message[TAG_LEN..], tag(3, 7, 9).message(100)[TAG_LEN..]);
        assert_ne!(message[TAG_LEN..], tag(3, 8, 5).message(100)[TAG_LEN..]);
        assert_ne!(message[TAG_LEN..], tag(4, 7, 5).message(100)[TAG_LEN..]);
        let hash = content_hash(&message);
        for at in [0, TAG_LEN, 99] {
            let mut changed = message.to_vec();
            changed[at] ^= 1;
            assert_ne!(content_hash(&changed), hash);
        }
        assert_ne!(content_hash(&message[..99]), hash);
    }

    #[test]
    fn a_killed_senders_unknown_sends_may_arrive_once_and_nothing_else_is_loosened() {
        let at = Instant::from_nanos;
        let message = |seq| {
            let tag = Tag {
                sender: 0,
                seq,
                sent_at: at(seq),
            };
            tag.message(100)
        };
        let deliver = |checker: &mut Checker, seq| {
            let bytes = message(seq);
            let (len, hash) = (bytes.len() as u32, content_hash(&bytes));
            checker.delivery_logged(at(9), 1, Some(0), TRAFFIC_CHANNEL, 0, seq, len, hash);
        };
        let mut checker = Checker::new(7);
        checker.peer_connected(at(0), 0, 1);
        checker.peer_connected(at(0), 1, 0);
        for seq in 1..=3 {
            let bytes = message(seq);
            checker.log_sent(0, seq, TRAFFIC_CHANNEL, 100, content_hash(&bytes));
        }
        // #1 accepted; #2's result never logged; #3 refused by `send`.
        checker.on_sent(at(1), 0, 1, 1);
        checker.sender_killed(0, &[(1, 2)]);
        assert_eq!(checker.open_connections(0), Vec::<NodeIndex>::new());
        deliver(&mut checker, 1);
        deliver(&mut checker, 2);
        let counters = checker.counters().clone();
        assert_eq!(counters.violations, 0, "{:?}", checker.violations());
        assert_eq!(
            (counters.lost_with_crash, counters.unknown_with_crash),
            (1, 1)
        );
        // An unknown one twice, and one `send` refused: still caught.
        deliver(&mut checker, 2);
        deliver(&mut checker, 3);
        let counters = checker.counters();
        assert_eq!((counters.duplicates, counters.corrupted), (1, 1));
        assert_eq!(counters.violations, 2);
    }

    #[test]
    fn delivered_numbers_are_kept_per_pair_in_any_order_and_once() {
        let mut delivered = PairSeqs::default();
        for seq in [1, 2, 5, 9] {
            assert!(delivered.insert(3, 4, seq));
        }
        // Out of order: inserted in place; again: refused.
        assert!(delivered.insert(3, 4, 3));
        assert!(!delivered.insert(3, 4, 3));
        assert!(!delivered.insert(3, 4, 9));
        assert!(!delivered.insert(3, 4, 1));
        assert_eq!(delivered.0[&(3, 4)], [1, 2, 3, 5, 9]);
        // Another pair is another list.
        assert!(delivered.insert(4, 3, 9));
        assert!(delivered.contains(3, 4, 5) && !delivered.contains(3, 4, 4));
        assert!(!delivered.contains(3, 5, 5) && delivered.contains(4, 3, 9));
    }
}
