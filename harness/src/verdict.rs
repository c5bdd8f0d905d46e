//! From the nodes' logs to a verdict: every record on one timeline (`CLOCK_MONOTONIC`),
//! handed to the simulator's [`Checker`], plus what only the harness can judge — when the
//! network was one component again, whether restarted nodes reloaded their address books,
//! whether enough traffic got through.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use switchboard::Instant;
use switchboard_sim::invariants::{Checker, Counters, TRAFFIC_CHANNEL, Violation};

use crate::record::Record;

/// What the harness promises, and checks.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    /// Every tracked message sent once the faults healed is delivered or returned within
    /// this (delivered, in a run without faults).
    pub liveness: Duration,
    /// The nodes are one connected component (each edge a connection both ends hold)
    /// within this of the heal.
    pub component: Duration,
}

/// When the run's phases were, in `CLOCK_MONOTONIC` nanoseconds.
#[derive(Clone, Copy, Debug)]
pub struct Phases {
    /// The cluster started: the checker's time zero.
    pub base: u64,
    /// The last fault healed (the start, without faults).
    pub healed: u64,
    /// The nodes were told to stop sending (SIGUSR1), before the stop.
    pub quiet: u64,
    /// Whether the run had faults.
    pub faults: bool,
}

/// The outcome.
#[derive(Debug)]
pub struct Verdict {
    /// The checker's tallies.
    pub counters: Counters,
    /// The checker's violations (the first 64).
    pub violations: Vec<Violation>,
    /// Every check that failed, in words; empty: the run passed.
    pub failures: Vec<String>,
    /// How long after the heal the nodes were one component, if they were before the stop.
    pub connected_after: Option<Duration>,
    /// Restarts: (node, run, addresses its address book loaded).
    pub restarts: Vec<(usize, u32, usize)>,
    /// Tracked messages delivered between the heal and the quiet phase.
    pub delivered_after_heal: u64,
    /// Deliveries the broken driver dropped: (sender, receiver, seq).
    pub dropped: Vec<(usize, usize, u64)>,
    /// Log lines that were no record (torn by a kill).
    pub torn_lines: usize,
}

/// One record, ready for the timeline.
enum Step {
    Start {
        run: u32,
        book: usize,
    },
    Joined(usize),
    Left {
        peer: usize,
        confirmed: u64,
        unconfirmed: Vec<u64>,
        unsent: Vec<u64>,
    },
    /// An intent and, when it was logged, whether `send` accepted it.
    Send {
        to: usize,
        seq: u64,
        len: u32,
        hash: u64,
        accepted: Option<bool>,
    },
    Delivered {
        from: Option<usize>,
        channel: u16,
        sender: usize,
        seq: u64,
        len: u32,
        hash: u64,
    },
    Dropped {
        sender: usize,
        seq: u64,
    },
    /// The process died without a `Stopped`: the sends whose result it never logged.
    Killed {
        unknown: Vec<(usize, u64)>,
    },
    Stopped,
}

/// Node `node`'s records as steps, each with its time; the failures they show alone.
fn steps(node: usize, records: &[Record], failures: &mut Vec<String>) -> Vec<(u64, Step)> {
    let mut steps: Vec<(u64, Step)> = Vec::new();
    // The current run's intents without a result yet: their step.
    let mut open: BTreeMap<(usize, u64), usize> = BTreeMap::new();
    let mut running = false;
    let mut last = 0;
    let killed = |open: &mut BTreeMap<(usize, u64), usize>| Step::Killed {
        unknown: std::mem::take(open).into_keys().collect(),
    };
    for record in records {
        let t = record.time();
        match record {
            Record::Start { run, book, .. } => {
                if running {
                    steps.push((last, killed(&mut open)));
                }
                running = true;
                steps.push((
                    t,
                    Step::Start {
                        run: *run,
                        book: *book,
                    },
                ));
            }
            Record::Joined {
                peer: Some(peer), ..
            } => steps.push((t, Step::Joined(*peer))),
            Record::Left {
                peer: Some(peer),
                confirmed,
                unconfirmed,
                unsent,
                ..
            } => steps.push((
                t,
                Step::Left {
                    peer: *peer,
                    confirmed: *confirmed,
                    unconfirmed: unconfirmed.clone(),
                    unsent: unsent.clone(),
                },
            )),
            Record::Joined { peer: None, .. } | Record::Left { peer: None, .. } => {
                failures.push(format!("node {node}: a peer not in the roster"));
            }
            Record::Intent {
                to, seq, len, hash, ..
            } => {
                open.insert((*to, *seq), steps.len());
                steps.push((
                    t,
                    Step::Send {
                        to: *to,
                        seq: *seq,
                        len: *len,
                        hash: *hash,
                        accepted: None,
                    },
                ));
            }
            Record::Sent {
                to, seq, refused, ..
            } => {
                if let Some(at) = open.remove(&(*to, *seq))
                    && let Some((_, Step::Send { accepted, .. })) = steps.get_mut(at)
                {
                    *accepted = Some(refused.is_none());
                }
            }
            Record::Delivered {
                from,
                channel,
                sender,
                seq,
                len,
                hash,
                ..
            } => steps.push((
                t,
                Step::Delivered {
                    from: *from,
                    channel: *channel,
                    sender: *sender,
                    seq: *seq,
                    len: *len,
                    hash: *hash,
                },
            )),
            Record::Dropped { sender, seq, .. } => steps.push((
                t,
                Step::Dropped {
                    sender: *sender,
                    seq: *seq,
                },
            )),
            Record::BookSaveFailed { .. } => {}
            Record::Stopped { .. } => {
                running = false;
                steps.push((t, Step::Stopped));
            }
        }
        last = t;
    }
    if running {
        failures.push(format!("node {node}: its log ends without a clean stop"));
        steps.push((last, killed(&mut open)));
    }
    steps
}

/// Whether every node is in one component, an edge being a connection both ends hold.
fn one_component(views: &[BTreeSet<usize>]) -> bool {
    let mut seen = vec![false; views.len()];
    let mut stack = vec![0];
    while let Some(node) = stack.pop() {
        if std::mem::replace(&mut seen[node], true) {
            continue;
        }
        for &peer in &views[node] {
            if peer < views.len() && !seen[peer] && views[peer].contains(&node) {
                stack.push(peer);
            }
        }
    }
    seen.iter().all(|&seen| seen)
}

/// Judges a run from every node's log (records and torn lines, in roster order).
pub fn judge(
    logs: &[(Vec<Record>, usize)],
    phases: Phases,
    bounds: Bounds,
    kills: usize,
    seed: u64,
) -> Verdict {
    let mut failures = Vec::new();
    let mut timeline: Vec<(u64, usize, usize, Step)> = Vec::new();
    for (node, (records, _)) in logs.iter().enumerate() {
        for (order, (t, step)) in steps(node, records, &mut failures).into_iter().enumerate() {
            timeline.push((t, node, order, step));
        }
    }
    timeline.sort_by_key(|&(t, node, order, _)| (t, node, order));
    let at = |t: u64| Instant::from_nanos(t.saturating_sub(phases.base));
    let mut checker = Checker::new(seed);
    checker.watch_liveness(at(phases.healed), bounds.liveness, !phases.faults);
    let mut views = vec![BTreeSet::new(); logs.len()];
    let mut verdict = Verdict {
        counters: Counters::default(),
        violations: Vec::new(),
        failures: Vec::new(),
        connected_after: None,
        restarts: Vec::new(),
        delivered_after_heal: 0,
        dropped: Vec::new(),
        torn_lines: logs.iter().map(|(_, torn)| torn).sum(),
    };
    let mut end = phases.base;
    for (t, node, _, step) in timeline {
        if verdict.connected_after.is_none()
            && t >= phases.healed
            && phases.healed < phases.quiet
            && one_component(&views)
        {
            let connected = phases.healed.max(end);
            verdict.connected_after = Some(Duration::from_nanos(connected - phases.healed));
        }
        let now = at(t);
        end = end.max(t);
        match step {
            Step::Start { run, book } => {
                if run > 1 {
                    verdict.restarts.push((node, run, book));
                }
                views[node].clear();
            }
            Step::Joined(peer) => {
                checker.peer_connected(now, node, peer);
                views[node].insert(peer);
            }
            Step::Left {
                peer,
                confirmed,
                unconfirmed,
                unsent,
            } => {
                checker.connection_ended(now, node, peer, confirmed, &unconfirmed, &unsent);
                views[node].remove(&peer);
            }
            Step::Send {
                to,
                seq,
                len,
                hash,
                accepted,
            } => {
                checker.log_sent(node, seq, TRAFFIC_CHANNEL, len, hash);
                if accepted == Some(true) {
                    checker.on_sent(now, node, to, seq);
                }
            }
            Step::Delivered {
                from,
                channel,
                sender,
                seq,
                len,
                hash,
            } => {
                checker.delivery_logged(now, node, from, channel, sender, seq, len, hash);
                if (phases.healed..phases.quiet).contains(&t) {
                    verdict.delivered_after_heal += 1;
                }
            }
            Step::Dropped { sender, seq } => verdict.dropped.push((sender, node, seq)),
            Step::Killed { unknown } => {
                checker.sender_killed(node, &unknown);
                views[node].clear();
            }
            Step::Stopped => views[node].clear(),
        }
        checker.check_liveness(now);
    }
    for node in 0..logs.len() {
        for peer in checker.open_connections(node) {
            checker.connection_open_at_end(at(end), node, peer, 0);
        }
    }
    checker.check_liveness(at(end));
    let counters = checker.counters().clone();
    if counters.violations > 0 {
        failures.push(format!(
            "the checker found {} violations (seed {seed}):\n  {}",
            counters.violations,
            checker
                .violations()
                .iter()
                .take(20)
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n  ")
        ));
    }
    if counters.pending > 0 {
        failures.push(format!(
            "{} messages on connections never reported closed, though every node stopped",
            counters.pending
        ));
    }
    match verdict.connected_after {
        Some(after) if after <= bounds.component => {}
        Some(after) => failures.push(format!(
            "one component only {:.1} s after the heal, bound {:.0} s",
            after.as_secs_f64(),
            bounds.component.as_secs_f64()
        )),
        None => failures.push("never one component after the heal".to_string()),
    }
    for &(node, run, book) in &verdict.restarts {
        if book == 0 {
            failures.push(format!(
                "node {node}, run {run}: its address book was empty"
            ));
        }
    }
    if verdict.torn_lines > kills {
        failures.push(format!(
            "{} log lines unreadable, more than the {kills} kills could tear",
            verdict.torn_lines
        ));
    }
    verdict.counters = counters;
    verdict.violations = checker.violations().to_vec();
    verdict.failures = failures;
    verdict
}

#[cfg(test)]
mod tests {
    use switchboard_sim::invariants::{Tag, content_hash};

    use super::*;

    const S: u64 = 1_000_000_000;

    fn intent(t: u64, to: usize, seq: u64) -> Record {
        let (len, hash) = digest(0, seq);
        Record::Intent {
            t,
            to,
            seq,
            len,
            hash,
        }
    }

    fn digest(sender: usize, seq: u64) -> (u32, u64) {
        let tag = Tag {
            sender,
            seq,
            sent_at: Instant::from_nanos(seq),
        };
        let message = tag.message(64);
        (message.len() as u32, content_hash(&message))
    }

    fn delivered(t: u64, sender: usize, seq: u64) -> Record {
        let (len, hash) = digest(sender, seq);
        Record::Delivered {
            t,
            from: Some(sender),
            channel: TRAFFIC_CHANNEL,
            sender,
            seq,
            len,
            hash,
        }
    }

    fn start(t: u64, run: u32, book: usize) -> Record {
        Record::Start {
            t,
            run,
            book,
            book_error: None,
            next_seq: 1,
        }
    }

    /// Asserts that one of the verdict's failures says `text`.
    fn assert_fails_with(verdict: &Verdict, text: &str) {
        assert!(
            verdict.failures.iter().any(|f| f.contains(text)),
            "no failure says {text:?}: {:?}",
            verdict.failures
        );
    }

    fn judge_two(sender: Vec<Record>, receiver: Vec<Record>) -> Verdict {
        let phases = Phases {
            base: 0,
            healed: 4 * S,
            quiet: 20 * S,
            faults: true,
        };
        let bounds = Bounds {
            liveness: Duration::from_secs(15),
            component: Duration::from_secs(15),
        };
        judge(&[(sender, 0), (receiver, 0)], phases, bounds, 1, 9)
    }

    /// Node 0 sends #1 (accepted), logs the intent of #2 and is killed; it restarts with
    /// its book and both stop cleanly. Node 1 takes #1 and #2.
    fn killed_sender(book: usize, deliver_twice: bool) -> Verdict {
        let sender = vec![
            start(S, 1, 0),
            Record::Joined {
                t: S + 1,
                peer: Some(1),
            },
            intent(2 * S, 1, 1),
            Record::Sent {
                t: 2 * S + 1,
                to: 1,
                seq: 1,
                refused: None,
            },
            intent(3 * S, 1, 2),
            start(4 * S, 2, book),
            Record::Joined {
                t: 5 * S,
                peer: Some(1),
            },
            Record::Left {
                t: 30 * S,
                peer: Some(1),
                reason: "quitting".into(),
                confirmed: 0,
                unconfirmed: vec![],
                unsent: vec![],
            },
            Record::Stopped { t: 31 * S },
        ];
        let mut receiver = vec![
            start(S, 1, 0),
            Record::Joined {
                t: S + 2,
                peer: Some(0),
            },
            delivered(2 * S + 5, 0, 1),
            delivered(3 * S + 5, 0, 2),
        ];
        if deliver_twice {
            receiver.push(delivered(3 * S + 6, 0, 2));
        }
        receiver.extend([
            Record::Left {
                t: 4 * S + 1,
                peer: Some(0),
                reason: "connection reset".into(),
                confirmed: 0,
                unconfirmed: vec![],
                unsent: vec![],
            },
            Record::Joined {
                t: 5 * S + 1,
                peer: Some(0),
            },
            Record::Left {
                t: 30 * S + 1,
                peer: Some(0),
                reason: "quitting".into(),
                confirmed: 0,
                unconfirmed: vec![],
                unsent: vec![],
            },
            Record::Stopped { t: 31 * S },
        ]);
        judge_two(sender, receiver)
    }

    #[test]
    fn a_killed_sender_is_judged_from_its_log() {
        let verdict = killed_sender(1, false);
        assert!(verdict.failures.is_empty(), "{:?}", verdict.failures);
        assert_eq!(verdict.counters.unknown_with_crash, 1);
        assert_eq!(verdict.restarts, [(0, 2, 1)]);
        // Reconnected 1 s and a little after the restart, which is the heal here.
        let after = verdict.connected_after.expect("connected");
        assert!(
            after > Duration::from_secs(1) && after < Duration::from_millis(1001),
            "{after:?}"
        );
    }

    #[test]
    fn an_unknown_send_delivered_twice_and_an_empty_book_fail() {
        let verdict = killed_sender(0, true);
        assert_eq!(verdict.counters.duplicates, 1);
        assert_fails_with(&verdict, "duplicate delivery");
        assert_fails_with(&verdict, "address book was empty");
    }

    #[test]
    fn a_log_without_a_clean_stop_fails() {
        let sender = vec![start(S, 1, 0), Record::Stopped { t: 2 * S }];
        let receiver = vec![start(S, 1, 0)];
        let verdict = judge_two(sender, receiver);
        assert_fails_with(&verdict, "node 1: its log ends");
        assert_fails_with(&verdict, "never one component");
    }
}
