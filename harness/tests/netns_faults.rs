//! The real-process harness in CI: nodes as processes in network namespaces, faults made by
//! the kernel and the OS, every message checked end to end (see `docs/testing.md`).
//!
//! Needs root, `ip` and `nft`; without them the tests fail and say so — never pass silently —
//! unless `SWITCHBOARD_NETNS=skip` asks to skip them. The long soak is the same run with
//! `SWITCHBOARD_SOAK_SECS` (fault phase), `SWITCHBOARD_SOAK_NODES` and `SWITCHBOARD_SOAK_SEED`.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use switchboard_harness::{Scenario, run};

/// One cluster at a time: two would share the machine's two cores.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn workload() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_switchboard-workload"))
}

/// Whether the harness is skipped on purpose (`SWITCHBOARD_NETNS=skip`).
fn skipped() -> bool {
    let skip = std::env::var("SWITCHBOARD_NETNS").is_ok_and(|value| value == "skip");
    if skip {
        eprintln!("SWITCHBOARD_NETNS=skip: the real-process harness is skipped");
    }
    skip
}

fn env_number(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .parse()
            .unwrap_or_else(|error| panic!("{name}={value}: {error}")),
    )
}

/// 12 nodes (by default), 70 s of faults — every kind at least once — then 25 s to heal:
/// the checker clean, one component within 15 s, restarted nodes reloaded their books.
#[test]
fn nodes_survive_kernel_made_faults() {
    if skipped() {
        return;
    }
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poison| poison.into_inner());
    let seed = env_number("SWITCHBOARD_SOAK_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |since| since.as_secs())
    });
    let nodes = env_number("SWITCHBOARD_SOAK_NODES").unwrap_or(12) as usize;
    let phase = Duration::from_secs(env_number("SWITCHBOARD_SOAK_SECS").unwrap_or(70));
    eprintln!("seed {seed} (rerun with SWITCHBOARD_SOAK_SEED={seed})");
    let report = run(Scenario::new(workload(), nodes, seed, Some(phase)))
        .unwrap_or_else(|error| panic!("the harness could not run: {error}"));
    eprintln!("{report}");
    for kind in switchboard_harness::faults::FaultKind::ALL {
        assert!(
            report.faults.iter().any(|fault| fault.kind == kind),
            "no {kind} fault in the schedule of seed {seed}"
        );
    }
    assert!(
        report.failures().is_empty(),
        "seed {seed}: {}",
        report.failures().join("\n")
    );
}

/// The broken build: node 2's driver drops the 20th message it takes, its credit still
/// granted. The harness must fail, naming that message — (sender, receiver, seq) as the
/// broken node logged it — and nothing else.
#[test]
fn a_dropped_delivery_fails_the_run_and_is_named() {
    if skipped() {
        return;
    }
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poison| poison.into_inner());
    let mut scenario = Scenario::new(workload(), 4, 1, None);
    scenario.warmup = Duration::from_secs(2);
    scenario.settle = Duration::from_secs(16);
    scenario.bounds.liveness = Duration::from_secs(5);
    scenario.drop_nth_message = Some((2, 20));
    let report = run(scenario).unwrap_or_else(|error| panic!("the harness could not run: {error}"));
    eprintln!("{report}");
    let &[(sender, receiver, seq)] = report.verdict.dropped.as_slice() else {
        panic!(
            "the broken driver dropped {:?}, not one message",
            report.verdict.dropped
        );
    };
    assert_eq!(receiver, 2);
    assert!(
        !report.failures().is_empty(),
        "the dropped message went unnoticed"
    );
    let named = format!("node {sender} → node {receiver}: #{seq}");
    let lost = format!("{named} confirmed, never delivered");
    assert!(
        report
            .verdict
            .violations
            .iter()
            .any(|v| v.detail.contains(&lost)),
        "no violation names the dropped message ({named}): {:#?}",
        report.verdict.violations
    );
    for violation in &report.verdict.violations {
        let about = |after: &str| violation.detail.contains(&format!("{named}{after}"));
        assert!(
            about(" ") || about(","),
            "a violation about another message: {violation}"
        );
    }
    assert_eq!(report.verdict.counters.lost, 1, "{report}");
    report.remove_logs();
}
