//! The checker can fail, by every branch: each test-only fault of `CheckerFault`, injected
//! once where the simulator hands the checker what the nodes did, must be reported with its
//! kind and the seed that reproduces it; and without a fault the same runs pass, every
//! message delivered in time.

use std::time::Duration;

use switchboard_sim::{
    CheckerFault, FaultConfig, Scenario, ScenarioConfig, Summary, ViolationKind,
};

/// 8 nodes for 10 s, seed 77, with `inject`; with `faults`, every fault for the first 5 s
/// and a message per node every 20 ms.
fn run(inject: Option<CheckerFault>, faults: bool) -> Summary {
    let mut config = ScenarioConfig::new(8, 77);
    config.duration = Duration::from_secs(10);
    config.quiet = Duration::from_secs(5);
    if faults {
        // Enough in flight, often enough, that resets and crashes return messages.
        config.faults = FaultConfig::all();
        config.traffic_interval = Some(Duration::from_millis(20));
    }
    config.inject = inject;
    Scenario::new(config).unwrap().run(|_| {})
}

/// `fault` is reported, as `kind`, first, with the seed; `others` are the other kinds it
/// may cause.
fn caught(fault: CheckerFault, faults: bool, kind: ViolationKind, others: &[ViolationKind]) {
    let summary = run(Some(fault), faults);
    assert!(!summary.passed(), "{fault:?} not caught");
    let kinds: Vec<ViolationKind> = summary.violations.iter().map(|v| v.kind).collect();
    assert!(kinds.contains(&kind), "{fault:?}: {summary}");
    assert!(
        kinds.iter().all(|k| *k == kind || others.contains(k)),
        "{fault:?}: {summary}"
    );
    let violation = summary.violations.iter().find(|v| v.kind == kind).unwrap();
    assert_eq!(violation.seed, 77);
    assert!(violation.to_string().contains("(seed 77)"), "{violation}");
    assert!(summary.to_string().contains("--seed 77"), "{summary}");
}

#[test]
fn a_reordered_delivery_is_reported() {
    caught(CheckerFault::Reorder, false, ViolationKind::Reordered, &[]);
}

#[test]
fn a_duplicated_delivery_is_reported() {
    caught(
        CheckerFault::Duplicate,
        false,
        ViolationKind::Duplicate,
        &[],
    );
}

#[test]
fn a_corrupted_byte_is_reported() {
    caught(
        CheckerFault::CorruptByte,
        false,
        ViolationKind::Corrupted,
        &[],
    );
    assert_eq!(
        run(Some(CheckerFault::CorruptByte), false)
            .counters
            .corrupted,
        1
    );
}

#[test]
fn a_truncated_message_is_reported() {
    caught(CheckerFault::Truncate, false, ViolationKind::Corrupted, &[]);
}

#[test]
fn a_message_never_sent_is_reported() {
    caught(
        CheckerFault::DeliverUnsent,
        false,
        ViolationKind::Corrupted,
        &[],
    );
}

#[test]
fn a_message_dropped_silently_is_reported() {
    caught(
        CheckerFault::DropSilently,
        true,
        ViolationKind::Lost,
        &[ViolationKind::Liveness],
    );
}

#[test]
fn a_buffer_over_its_bound_is_reported() {
    caught(
        CheckerFault::ExceedBuffer,
        false,
        ViolationKind::Buffered,
        &[],
    );
}

#[test]
fn a_peer_limit_exceeded_is_reported() {
    caught(
        CheckerFault::ExceedPeerLimit,
        false,
        ViolationKind::PeerLimit,
        &[],
    );
}

#[test]
fn a_ban_list_over_its_bound_is_reported() {
    caught(CheckerFault::ExceedBans, false, ViolationKind::Bans, &[]);
}

#[test]
fn a_subnet_over_its_pending_share_is_reported() {
    caught(
        CheckerFault::ExceedPendingShare,
        false,
        ViolationKind::PendingShare,
        &[],
    );
}

#[test]
fn an_evicted_trusted_peer_is_reported() {
    // Faults make peers disconnect; the first disconnection is turned into the eviction.
    caught(
        CheckerFault::EvictProtected,
        true,
        ViolationKind::ProtectedEvicted,
        &[],
    );
}

#[test]
fn a_message_neither_delivered_nor_returned_is_a_liveness_violation() {
    // Without faults liveness is watched from the start: the hidden delivery is late 10 s
    // after its send, before the end of a 20 s run reports its confirmation.
    let mut config = ScenarioConfig::new(8, 77);
    config.duration = Duration::from_secs(20);
    config.quiet = Duration::from_secs(5);
    config.inject = Some(CheckerFault::ConfirmWithoutDelivery);
    let summary = Scenario::new(config).unwrap().run(|_| {});
    assert_eq!(summary.counters.liveness_violations, 1, "{summary}");
    assert_eq!(summary.violations[0].kind, ViolationKind::Liveness);
    assert!(summary.to_json().contains("\"liveness_violations\":1"));
}

#[test]
fn a_confirmation_without_delivery_is_reported_as_lost_with_its_seed() {
    let summary = run(Some(CheckerFault::ConfirmWithoutDelivery), false);
    assert!(!summary.passed());
    assert_eq!(summary.counters.lost, 1, "{summary}");
    assert_eq!(summary.counters.duplicates + summary.counters.reordered, 0);
    assert_eq!(summary.violations[0].kind, ViolationKind::Lost);
    assert!(
        summary.violations[0]
            .detail
            .contains("confirmed, never delivered"),
        "{}",
        summary.violations[0]
    );
    assert!(
        summary.command_line.contains("--seed 77"),
        "{}",
        summary.command_line
    );
    let text = summary.to_string();
    assert!(
        text.contains("VIOLATIONS") && text.contains("--seed 77"),
        "{text}"
    );
    assert!(summary.to_json().contains("\"messages_lost\":1"));
}

#[test]
fn without_the_fault_the_same_run_passes() {
    for faults in [false, true] {
        let summary = run(None, faults);
        assert!(summary.passed(), "{summary}");
        assert!(summary.counters.delivered > 50, "{summary}");
        if faults {
            let c = &summary.counters;
            assert!(c.returned_unconfirmed + c.returned_unsent > 0, "{summary}");
        }
    }
}

#[test]
fn without_faults_every_message_is_delivered_in_time() {
    let mut config = ScenarioConfig::new(8, 78);
    config.duration = Duration::from_secs(20);
    config.quiet = Duration::from_secs(5);
    let summary = Scenario::new(config).unwrap().run(|_| {});
    assert!(summary.passed(), "{summary}");
    let c = &summary.counters;
    // Liveness judged the first 10 s of sends: nothing returned, nothing late.
    assert_eq!(c.returned_unconfirmed + c.returned_unsent, 0, "{summary}");
    assert_eq!(c.sent, c.delivered + c.pending, "{summary}");
    assert!(c.delivered > 100, "{summary}");
    assert!(summary.to_json().contains("\"liveness_violations\":0"));
}

#[test]
fn an_honest_peer_cut_off_as_a_flooder_is_reported() {
    caught(
        CheckerFault::ReportFlood,
        true,
        ViolationKind::Penalized,
        &[],
    );
}

#[test]
fn a_connection_kept_past_its_write_stall_timeout_is_reported() {
    caught(CheckerFault::HideStall, false, ViolationKind::Stalled, &[]);
}

#[test]
fn query_connections_over_their_budget_are_reported() {
    caught(
        CheckerFault::ExceedQueryBudget,
        false,
        ViolationKind::QueryBudget,
        &[],
    );
}

#[test]
fn a_peer_slot_held_by_a_non_peer_is_reported() {
    caught(
        CheckerFault::QueryTakesSlot,
        false,
        ViolationKind::QuerySlot,
        &[],
    );
}
