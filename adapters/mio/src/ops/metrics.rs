//! The node's Prometheus metrics: counters fed by its events, gauges and traffic counters
//! sampled from its getters.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use rand_core::CryptoRng;
use switchboard::addr_book::AddrBook;
use switchboard::connection::ClosedBy;
use switchboard::node::{Node, NodeEvent, PeerInfo};
use switchboard::peer_set::Direction;
use switchboard::{ChannelId, DisconnectReason, Instant, PeerId};

use super::direction_name;

/// The `Content-Type` of [`Metrics::encode`]: the Prometheus text format, version 0.0.4.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabel {
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    direction: &'static str,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DisconnectLabels {
    reason: String,
    side: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChannelLabel {
    channel: ChannelId,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TableLabel {
    table: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// One connection's monotone totals at the last [`Metrics::sample`].
#[derive(Clone, Debug, Default)]
struct Totals {
    wire_sent: u64,
    wire_received: u64,
    channels: BTreeMap<ChannelId, ChannelTotals>,
}

#[derive(Clone, Copy, Debug, Default)]
struct ChannelTotals {
    messages_sent: u64,
    bytes_sent: u64,
    messages_received: u64,
    bytes_received: u64,
}

impl Totals {
    fn of(info: &PeerInfo) -> Totals {
        let channels = info.channels.iter().map(|stats| {
            let totals = ChannelTotals {
                messages_sent: stats.messages_sent,
                bytes_sent: stats.bytes_sent,
                messages_received: stats.messages_received,
                bytes_received: stats.bytes_received,
            };
            (stats.channel, totals)
        });
        Totals {
            wire_sent: info.stats.wire_bytes_sent,
            wire_received: info.stats.wire_bytes_received,
            channels: channels.collect(),
        }
    }
}

/// A connection, told apart from a later one to the same peer by when its handshake
/// completed: a reconnection's totals start again from zero.
type ConnKey = (PeerId, Option<Instant>);

/// The node's metrics, registered under the prefix `switchboard_`. Traffic is labelled by
/// channel id, the node's own reserved channels (PEX on 65280) included.
///
/// Two sources feed them, each from the side that knows:
///
/// - [`Metrics::observe`] counts what the node's events tell once: peers admitted,
///   handshakes and dials failed, disconnections, messages handed to the application,
///   slow peers, failed query connections, `Writable`s. Call it with every event the application reads.
/// - [`Metrics::sample`] reads the node's getters on the node's thread: peers, query
///   connections, send queues, RTT, the address book, bans and their bound — gauges of
///   "now" — and the per-connection traffic totals.
///
/// Traffic is exposed as **counters** (`…_total`), not as gauges of the sum over connected
/// peers: that sum drops whenever a peer leaves, which `rate()` would read as a counter
/// reset and turn into a spike. Each sample adds what every connection's totals grew since
/// the last one, so the counters only rise; the price is that what a peer sends or
/// receives between the last sample and its disconnection is not counted (at most one
/// sampling interval of that peer's traffic).
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    handshakes: Family<DirectionLabel, Counter>,
    handshake_failures: Family<FailureLabels, Counter>,
    dials: Family<OutcomeLabel, Counter>,
    disconnects: Family<DisconnectLabels, Counter>,
    messages_delivered: Family<ChannelLabel, Counter>,
    slow_peers: Counter,
    query_failures: Family<ReasonLabel, Counter>,
    writable: Family<ChannelLabel, Counter>,
    peers: Family<DirectionLabel, Gauge>,
    connections: Gauge,
    query_connections: Family<DirectionLabel, Gauge>,
    sent_messages: Family<ChannelLabel, Counter>,
    sent_bytes: Family<ChannelLabel, Counter>,
    received_messages: Family<ChannelLabel, Counter>,
    received_bytes: Family<ChannelLabel, Counter>,
    wire_sent_bytes: Counter,
    wire_received_bytes: Counter,
    queued_messages: Family<ChannelLabel, Gauge>,
    queued_bytes: Family<ChannelLabel, Gauge>,
    rtt_mean: FloatGauge,
    rtt_max: FloatGauge,
    addr_book: Family<TableLabel, Gauge>,
    bans: Family<KindLabel, Gauge>,
    bans_held: Gauge,
    bans_max: Gauge,
    /// Each connected peer's totals at the last sample.
    seen: HashMap<ConnKey, Totals>,
    /// Every channel a queue gauge was set for: set to zero when no peer has it any more,
    /// rather than left showing the last peer's queue.
    queue_channels: BTreeSet<ChannelId>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Every metric registered, at zero.
    pub fn new() -> Metrics {
        let mut metrics = Metrics {
            registry: Registry::with_prefix("switchboard"),
            handshakes: Family::default(),
            handshake_failures: Family::default(),
            dials: Family::default(),
            disconnects: Family::default(),
            messages_delivered: Family::default(),
            slow_peers: Counter::default(),
            query_failures: Family::default(),
            writable: Family::default(),
            peers: Family::default(),
            connections: Gauge::default(),
            query_connections: Family::default(),
            sent_messages: Family::default(),
            sent_bytes: Family::default(),
            received_messages: Family::default(),
            received_bytes: Family::default(),
            wire_sent_bytes: Counter::default(),
            wire_received_bytes: Counter::default(),
            queued_messages: Family::default(),
            queued_bytes: Family::default(),
            rtt_mean: FloatGauge::default(),
            rtt_max: FloatGauge::default(),
            addr_book: Family::default(),
            bans: Family::default(),
            bans_held: Gauge::default(),
            bans_max: Gauge::default(),
            seen: HashMap::new(),
            queue_channels: BTreeSet::new(),
        };
        metrics.register();
        // Series known in advance exist from the start, so that a query sees 0, not
        // "no data", before the first event.
        for direction in [Direction::Inbound, Direction::Outbound] {
            let label = DirectionLabel {
                direction: direction_name(direction),
            };
            metrics.handshakes.get_or_create(&label).inc_by(0);
            metrics.peers.get_or_create(&label).set(0);
            metrics.query_connections.get_or_create(&label).set(0);
        }
        for outcome in ["connected", "failed"] {
            metrics
                .dials
                .get_or_create(&OutcomeLabel { outcome })
                .inc_by(0);
        }
        metrics.rtt_mean.set(f64::NAN);
        metrics.rtt_max.set(f64::NAN);
        metrics
    }

    fn register(&mut self) {
        let r = &mut self.registry;
        r.register(
            "handshakes",
            "Peers admitted after a completed handshake, by which side dialed",
            self.handshakes.clone(),
        );
        r.register(
            "handshake_failures",
            "Connections that ended before their peer was admitted, by direction and reason: \
             inbound ones refused or failed in the handshake, outbound ones failed dials \
             (the TCP connect included)",
            self.handshake_failures.clone(),
        );
        r.register(
            "dials",
            "Dials that ended, by outcome (connected: the peer was admitted)",
            self.dials.clone(),
        );
        r.register(
            "disconnects",
            "Connected peers disconnected, by reason and by the side that ended it",
            self.disconnects.clone(),
        );
        r.register(
            "messages_delivered",
            "Messages handed to the application, by channel",
            self.messages_delivered.clone(),
        );
        r.register(
            "slow_peers",
            "Peers disconnected for refusing broadcasts longer than the slow-peer timeout",
            self.slow_peers.clone(),
        );
        r.register(
            "query_failures",
            "Query connections we opened that failed before they connected, by reason",
            self.query_failures.clone(),
        );
        r.register(
            "writable",
            "Send queues that had room again after a full send, by channel",
            self.writable.clone(),
        );
        r.register(
            "peers",
            "Connected peers, by which side dialed",
            self.peers.clone(),
        );
        r.register(
            "connections",
            "Connections open or opening, handshakes included",
            self.connections.clone(),
        );
        r.register(
            "query_connections",
            "Query connections (outside the peer slots, one protocol's requests) open, by \
             which side dialed; outbound includes our dials in flight",
            self.query_connections.clone(),
        );
        r.register(
            "channel_sent_messages",
            "Messages completely written to connected peers, by channel",
            self.sent_messages.clone(),
        );
        r.register_with_unit(
            "channel_sent",
            "Bytes of messages completely written to connected peers, by channel",
            Unit::Bytes,
            self.sent_bytes.clone(),
        );
        r.register(
            "channel_received_messages",
            "Complete messages received from connected peers, by channel",
            self.received_messages.clone(),
        );
        r.register_with_unit(
            "channel_received",
            "Bytes of complete messages received from connected peers, by channel",
            Unit::Bytes,
            self.received_bytes.clone(),
        );
        r.register_with_unit(
            "wire_sent",
            "Bytes written to connected peers' sockets, framing and encryption included",
            Unit::Bytes,
            self.wire_sent_bytes.clone(),
        );
        r.register_with_unit(
            "wire_received",
            "Bytes read from connected peers' sockets, framing and encryption included",
            Unit::Bytes,
            self.wire_received_bytes.clone(),
        );
        r.register(
            "channel_queued_messages",
            "Messages waiting in connected peers' send queues, by channel",
            self.queued_messages.clone(),
        );
        r.register_with_unit(
            "channel_queued",
            "Bytes waiting in connected peers' send queues, by channel",
            Unit::Bytes,
            self.queued_bytes.clone(),
        );
        r.register_with_unit(
            "peer_rtt_mean",
            "Mean of connected peers' smoothed round-trip times (NaN when none is measured)",
            Unit::Seconds,
            self.rtt_mean.clone(),
        );
        r.register_with_unit(
            "peer_rtt_max",
            "Largest of connected peers' smoothed round-trip times (NaN when none is measured)",
            Unit::Seconds,
            self.rtt_max.clone(),
        );
        r.register(
            "addr_book_addresses",
            "Addresses in the Discovery protocol's address book, by table (new: heard of; tried: connected once); absent without discovery",
            self.addr_book.clone(),
        );
        r.register(
            "bans",
            "Bans in force, by kind (peer identity or IP address)",
            self.bans.clone(),
        );
        r.register(
            "bans_held",
            "Bans held, peers and IP addresses together, expired ones not yet swept included: \
             what bans_max bounds",
            self.bans_held.clone(),
        );
        r.register(
            "bans_max",
            "Bans held at most (max_bans); a full list drops the ban with the least time left",
            self.bans_max.clone(),
        );
    }

    /// Counts what `event` tells; events that carry nothing countable are ignored.
    pub fn observe(&mut self, event: &NodeEvent) {
        match event {
            NodeEvent::PeerConnected { direction, .. } => {
                let direction = direction_name(*direction);
                self.handshakes
                    .get_or_create(&DirectionLabel { direction })
                    .inc();
                if direction == "outbound" {
                    self.dials
                        .get_or_create(&OutcomeLabel {
                            outcome: "connected",
                        })
                        .inc();
                }
            }
            NodeEvent::InboundRefused { reason, .. } => {
                self.count_failure("inbound", *reason);
            }
            NodeEvent::DialFailed { reason, .. } => {
                self.count_failure("outbound", *reason);
                self.dials
                    .get_or_create(&OutcomeLabel { outcome: "failed" })
                    .inc();
            }
            NodeEvent::PeerDisconnected { reason, by, .. } => {
                let labels = DisconnectLabels {
                    reason: reason_label(*reason),
                    side: side_label(*by),
                };
                self.disconnects.get_or_create(&labels).inc();
            }
            NodeEvent::Message { channel, .. } => {
                let label = ChannelLabel { channel: *channel };
                self.messages_delivered.get_or_create(&label).inc();
            }
            NodeEvent::SlowPeer { .. } => {
                self.slow_peers.inc();
            }
            NodeEvent::QueryFailed { reason, .. } => {
                let label = ReasonLabel {
                    reason: reason_label(*reason),
                };
                self.query_failures.get_or_create(&label).inc();
            }
            NodeEvent::Writable { channel, .. } => {
                let label = ChannelLabel { channel: *channel };
                self.writable.get_or_create(&label).inc();
            }
            _ => {}
        }
    }

    fn count_failure(&self, direction: &'static str, reason: DisconnectReason) {
        let labels = FailureLabels {
            direction,
            reason: reason_label(reason),
        };
        self.handshake_failures.get_or_create(&labels).inc();
    }

    /// Sets the gauges from `node`'s getters and `book`'s — the
    /// [`Discovery`](switchboard::discovery::Discovery) protocol's address book, `None`
    /// without discovery (its gauges then stay absent) — and adds the traffic its
    /// connections had since the last sample. Call it where the node runs
    /// ([`NodeApi::inspect`](crate::NodeApi::inspect)), about once a second: every call
    /// reads each peer's counters.
    pub fn sample<R: CryptoRng>(&mut self, node: &Node<R>, book: Option<&AddrBook>, now: Instant) {
        set_by_direction(&self.peers, node.peer_counts());
        set_by_direction(&self.query_connections, node.query_counts());
        self.connections.set(gauge_value(node.connection_count()));
        if let Some(book) = book {
            for (table, len) in [("new", book.new_len()), ("tried", book.tried_len())] {
                self.addr_book
                    .get_or_create(&TableLabel { table })
                    .set(gauge_value(len));
            }
        }
        let (peer_bans, ip_bans) = node.ban_counts(now);
        for (kind, count) in [("peer", peer_bans), ("ip", ip_bans)] {
            self.bans
                .get_or_create(&KindLabel { kind })
                .set(gauge_value(count));
        }
        self.bans_held.set(gauge_value(node.bans().len()));
        self.bans_max.set(gauge_value(node.bans().capacity()));

        let mut seen = HashMap::with_capacity(self.seen.len());
        let mut queued: BTreeMap<ChannelId, (usize, usize)> = BTreeMap::new();
        let mut rtts = Vec::new();
        for peer in node.peers() {
            let Some(info) = node.peer_info(&peer) else {
                continue;
            };
            let key = (peer, info.stats.established_at);
            let before = self.seen.remove(&key).unwrap_or_default();
            let totals = Totals::of(&info);
            self.add_growth(&before, &totals);
            seen.insert(key, totals);
            for stats in &info.channels {
                let entry = queued.entry(stats.channel).or_default();
                entry.0 = entry.0.saturating_add(stats.queued_messages);
                entry.1 = entry.1.saturating_add(stats.queued_bytes);
            }
            rtts.extend(info.rtt);
        }
        self.seen = seen;

        self.queue_channels.extend(queued.keys().copied());
        for channel in &self.queue_channels {
            let (messages, bytes) = queued.get(channel).copied().unwrap_or_default();
            let label = ChannelLabel { channel: *channel };
            self.queued_messages
                .get_or_create(&label)
                .set(gauge_value(messages));
            self.queued_bytes
                .get_or_create(&label)
                .set(gauge_value(bytes));
        }

        let (mean, max) = match rtts.iter().max() {
            Some(max) => {
                let sum: Duration = rtts.iter().sum();
                // At most as many peers as fit in memory: the count fits an f64 exactly.
                let count = rtts.len() as f64;
                (sum.as_secs_f64() / count, max.as_secs_f64())
            }
            None => (f64::NAN, f64::NAN),
        };
        self.rtt_mean.set(mean);
        self.rtt_max.set(max);
    }

    /// Adds to the traffic counters what one connection's totals grew from `before`.
    fn add_growth(&self, before: &Totals, after: &Totals) {
        self.wire_sent_bytes
            .inc_by(after.wire_sent.saturating_sub(before.wire_sent));
        self.wire_received_bytes
            .inc_by(after.wire_received.saturating_sub(before.wire_received));
        for (channel, now) in &after.channels {
            let was = before.channels.get(channel).copied().unwrap_or_default();
            let label = ChannelLabel { channel: *channel };
            let grow = |family: &Family<ChannelLabel, Counter>, now: u64, was: u64| {
                let growth = now.saturating_sub(was);
                // A series appears with the channel's first sample, even at zero.
                family.get_or_create(&label).inc_by(growth);
            };
            grow(&self.sent_messages, now.messages_sent, was.messages_sent);
            grow(&self.sent_bytes, now.bytes_sent, was.bytes_sent);
            grow(
                &self.received_messages,
                now.messages_received,
                was.messages_received,
            );
            grow(&self.received_bytes, now.bytes_received, was.bytes_received);
        }
    }

    /// The metrics in the Prometheus text format, version 0.0.4 ([`CONTENT_TYPE`]).
    ///
    /// Not OpenMetrics, though `prometheus-client` writes that too: every Prometheus
    /// server scrapes this format, and `promtool check metrics` validates only this one (it
    /// reads OpenMetrics' `_total` samples as families without help), so what is served is
    /// what CI checks.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a `String` cannot fail.
        let _ = prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

/// Sets `family`'s two series from an (inbound, outbound) count, as the node's getters
/// return them.
fn set_by_direction(family: &Family<DirectionLabel, Gauge>, (inbound, outbound): (usize, usize)) {
    for (direction, count) in [
        (Direction::Inbound, inbound),
        (Direction::Outbound, outbound),
    ] {
        let label = DirectionLabel {
            direction: direction_name(direction),
        };
        family.get_or_create(&label).set(gauge_value(count));
    }
}

/// Gauges are `i64`; a count beyond that is pinned rather than wrapped negative.
fn gauge_value(count: usize) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

fn side_label(by: ClosedBy) -> &'static str {
    match by {
        ClosedBy::Local => "local",
        ClosedBy::Remote => "remote",
    }
}

/// The reason's variant name in snake case (`NetworkError` → `network_error`): stable, and
/// derived rather than listed, so a reason added to the core gets its own label at once.
fn reason_label(reason: DisconnectReason) -> String {
    let mut label = String::new();
    for (index, c) in format!("{reason:?}").chars().enumerate() {
        if c.is_ascii_uppercase() && index > 0 {
            label.push('_');
        }
        label.push(c.to_ascii_lowercase());
    }
    label
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use switchboard::NetAddress;

    use super::*;

    fn sample_line<'a>(exposition: &'a str, series: &str) -> Option<&'a str> {
        exposition
            .lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
    }

    #[test]
    fn observe_counts_refusals_slow_peers_failed_queries_and_writables_by_their_labels() {
        let mut metrics = Metrics::new();
        let peer = PeerId::from_bytes([1; 32]);
        let refused = NodeEvent::InboundRefused {
            remote: SocketAddr::from(([127, 0, 0, 1], 4000)),
            peer: None,
            reason: DisconnectReason::NetworkMismatch,
            by: ClosedBy::Local,
            detail: String::new(),
        };
        metrics.observe(&refused);
        metrics.observe(&refused);
        metrics.observe(&NodeEvent::SlowPeer { peer });
        metrics.observe(&NodeEvent::Writable { peer, channel: 3 });
        metrics.observe(&NodeEvent::QueryFailed {
            addr: NetAddress::new(None, SocketAddr::from(([127, 0, 0, 1], 4001))),
            protocol: "lookup".into(),
            reason: DisconnectReason::TooManyPeers,
            detail: String::new(),
        });
        let exposition = metrics.encode();
        let expect = [
            (
                r#"switchboard_handshake_failures_total{direction="inbound",reason="network_mismatch"}"#,
                "2",
            ),
            ("switchboard_slow_peers_total", "1"),
            (r#"switchboard_writable_total{channel="3"}"#, "1"),
            (
                r#"switchboard_query_failures_total{reason="too_many_peers"}"#,
                "1",
            ),
            (r#"switchboard_handshakes_total{direction="inbound"}"#, "0"),
            ("switchboard_peer_rtt_max_seconds", "NaN"),
        ];
        for (series, value) in expect {
            assert_eq!(
                sample_line(&exposition, series),
                Some(value),
                "{series} in:\n{exposition}"
            );
        }
    }

    #[test]
    fn reason_labels_are_snake_case_variant_names() {
        assert_eq!(
            reason_label(DisconnectReason::NetworkError),
            "network_error"
        );
        assert_eq!(reason_label(DisconnectReason::Timeout), "timeout");
        assert_eq!(
            reason_label(DisconnectReason::IncompatibleVersion),
            "incompatible_version"
        );
    }
}
