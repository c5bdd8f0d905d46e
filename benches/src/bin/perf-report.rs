//! `perf-report`: the headline performance figures of `shared/PERF.md` as one JSON object on
//! stdout (progress on stderr).
//!
//! ```text
//! cargo run --release -p switchboard-benches --bin perf-report
//! ```
//!
//! # Method
//!
//! The machines are shared and noisy, so every figure is judged as a ratio to its floor or
//! rival *measured in the same run*, and the measurement is built to keep that ratio honest:
//!
//! - **Interleaved rounds.** Each round times one batch (~[`BATCH_SECONDS`]) of every
//!   workload back to back, and there are [`ROUNDS`] rounds. Drift in the machine's speed
//!   (a neighbour's job, frequency changes) then hits ours and its floor alike instead of
//!   whichever happened to run during the disturbance. The order within a round alternates
//!   (forward, then backward) so no workload always runs right after the same one.
//! - **Warm-up first**, which also sizes each workload's batch from its measured speed.
//! - **Best of the rounds** is reported for each figure, and ratios are ratios of the bests.
//!   For a CPU-bound, deterministic loop, noise only ever *adds* time (preemption, cache
//!   pollution, a slower clock), never removes it, so the fastest round is the closest
//!   estimate of the code's own cost; the best also settles much faster than the mean or
//!   median when the disturbance is large. The median of each figure and the median of the
//!   per-round paired ratios are printed too (under `details`), as a cross-check: when the
//!   best-based and median-based ratios disagree, the run was too noisy to trust.
//!
//! Throughput counts plaintext payload: 65519 bytes per record, once per record for seal +
//! open, the same way for switchboard and the floor. "MB" is 10^6 bytes.

use std::hint::black_box;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard_benches::{
    AeadFloor, DhFloor, PayloadPlacement, RECORD_PAYLOAD_LEN, RecordPath, SnowHandshake,
    SwitchboardHandshake, record_mb_per_s,
};

/// Timed rounds. With 6 workloads of [`BATCH_SECONDS`] each, ~24 s in all.
const ROUNDS: usize = 40;
/// Target wall time of one workload's batch in one round: long enough that timer
/// resolution and loop overhead vanish (hundreds of handshakes, about a thousand records),
/// short enough that a disturbance spoils only some rounds.
const BATCH_SECONDS: f64 = 0.1;
/// Warm-up per workload, before batches are sized: caches, branch predictors, page faults
/// of the buffers and the CPU's clock settle.
const WARM_UP: Duration = Duration::from_millis(300);

/// The targets the ratios are judged against (the project's performance goals).
const TARGET_HANDSHAKE_VS_DH_FLOOR: f64 = 0.90;
const TARGET_HANDSHAKE_VS_SNOW: f64 = 1.0;
const TARGET_RECORD_VS_AEAD_FLOOR: f64 = 0.95;

/// One timed workload: `step` does one unit of work (a handshake, a record), and `scale`
/// turns units per second into the reported rate.
struct Workload<'a> {
    name: &'static str,
    step: Box<dyn FnMut() + 'a>,
    scale: fn(u64, f64) -> f64,
    batch: u64,
    rates: Vec<f64>,
}

impl<'a> Workload<'a> {
    fn new(name: &'static str, scale: fn(u64, f64) -> f64, step: impl FnMut() + 'a) -> Self {
        Workload {
            name,
            step: Box::new(step),
            scale,
            batch: 1,
            rates: Vec::with_capacity(ROUNDS),
        }
    }

    /// Runs for `WARM_UP`, then sizes the batch to take about `BATCH_SECONDS`.
    fn warm_up(&mut self) {
        let start = Instant::now();
        let mut units = 0u64;
        while start.elapsed() < WARM_UP {
            (self.step)();
            units += 1;
        }
        let per_unit = start.elapsed().as_secs_f64() / units as f64;
        self.batch = ((BATCH_SECONDS / per_unit).ceil() as u64).max(1);
    }

    /// Times one batch and records its rate.
    fn round(&mut self) -> f64 {
        let start = Instant::now();
        for _ in 0..self.batch {
            (self.step)();
        }
        let rate = (self.scale)(self.batch, start.elapsed().as_secs_f64());
        self.rates.push(rate);
        rate
    }

    fn best(&self) -> f64 {
        self.rates.iter().copied().fold(f64::MIN, f64::max)
    }

    fn median(&self) -> f64 {
        median(self.rates.clone())
    }

    fn details(&self, unit: &str) -> Value {
        json!({
            "best": round(self.best(), 1),
            "median": round(self.median(), 1),
            "worst": round(self.rates.iter().copied().fold(f64::MAX, f64::min), 1),
            "unit": unit,
            "iterations_per_round": self.batch,
            "rounds": self.rates.len(),
        })
    }
}

fn per_second(units: u64, seconds: f64) -> f64 {
    units as f64 / seconds
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 0 {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    }
}

/// Median over rounds of `ours / floor` within the same round: the drift-cancelling view.
fn paired_ratio_median(ours: &Workload, floor: &Workload) -> f64 {
    median(
        ours.rates
            .iter()
            .zip(&floor.rates)
            .map(|(ours, floor)| ours / floor)
            .collect(),
    )
}

fn round(value: f64, digits: i32) -> f64 {
    let factor = 10f64.powi(digits);
    (value * factor).round() / factor
}

fn main() {
    let started = Instant::now();
    if cfg!(debug_assertions) {
        eprintln!("perf-report: this is a debug build; run it with --release");
    }

    // Setup, and a check of each workload outside the timed loops.
    let mut switchboard_handshake = SwitchboardHandshake::new(1);
    switchboard_handshake.verify();
    let mut snow_handshake = SnowHandshake::new(switchboard_handshake.peers());
    snow_handshake.verify();
    let dh_floor = DhFloor::new(2);
    dh_floor.verify();
    let mut record_path = RecordPath::new(3, PayloadPlacement::Apart);
    record_path.verify(PayloadPlacement::Apart);
    let mut aliased_record_path = RecordPath::new(5, PayloadPlacement::PageAliased);
    aliased_record_path.verify(PayloadPlacement::PageAliased);
    let mut aead_floor = AeadFloor::new(4);
    aead_floor.verify();

    // Pairs are adjacent, so in every round each figure runs next to its floor.
    let mut workloads = [
        Workload::new("handshake", per_second, || {
            black_box(switchboard_handshake.run());
        }),
        Workload::new("dh_floor_handshake", per_second, || {
            black_box(dh_floor.run());
        }),
        Workload::new("snow_handshake", per_second, || {
            black_box(snow_handshake.run());
        }),
        Workload::new("record_seal_open", record_mb_per_s, || {
            black_box(record_path.seal_open());
        }),
        Workload::new("aead_floor", record_mb_per_s, || {
            black_box(aead_floor.seal_open().len());
        }),
        // Context, not a headline: the same records with the payload at the output
        // buffer's page offset, which trips a slow `memcpy` path (see PayloadPlacement).
        Workload::new("record_page_aliased", record_mb_per_s, || {
            black_box(aliased_record_path.seal_open());
        }),
    ];

    eprintln!("perf-report: warming up");
    for workload in &mut workloads {
        workload.warm_up();
        eprintln!(
            "  {:<20} batch of {} per round",
            workload.name, workload.batch
        );
    }

    for index in 0..ROUNDS {
        let mut line = format!("round {:>2}/{ROUNDS}:", index + 1);
        let order: Vec<usize> = if index % 2 == 0 {
            (0..workloads.len()).collect()
        } else {
            (0..workloads.len()).rev().collect()
        };
        let mut rates = vec![0.0; workloads.len()];
        for position in order {
            rates[position] = workloads[position].round();
        }
        for (workload, rate) in workloads.iter().zip(rates) {
            line.push_str(&format!(" {}={:.0}", workload.name, rate));
        }
        eprintln!("{line}");
    }

    let [handshake, dh_floor, snow, record, aead, aliased] = &workloads;
    let report = report(
        [handshake, dh_floor, snow],
        [record, aead, aliased],
        started.elapsed(),
    );
    println!("{report}");
}

/// The JSON report from the handshake workloads (ours, DH floor, snow) and the record
/// workloads (ours, AEAD floor, ours with page-aliased buffers).
fn report(
    [handshake, dh_floor, snow]: [&Workload; 3],
    [record, aead, aliased]: [&Workload; 3],
    elapsed: Duration,
) -> Value {
    let handshake_vs_dh_floor = handshake.best() / dh_floor.best();
    let handshake_vs_snow = handshake.best() / snow.best();
    let record_vs_aead_floor = record.best() / aead.best();
    let mut report = json!({
        "handshake_per_s": round(handshake.best(), 1),
        "dh_floor_handshake_per_s": round(dh_floor.best(), 1),
        "snow_handshake_per_s": round(snow.best(), 1),
        "handshake_vs_dh_floor": round(handshake_vs_dh_floor, 3),
        "handshake_vs_snow": round(handshake_vs_snow, 3),
        "record_seal_open_mb_s": round(record.best(), 1),
        "aead_floor_mb_s": round(aead.best(), 1),
        "record_vs_aead_floor": round(record_vs_aead_floor, 3),
        "aead_backend": "aes-gcm",
        "targets": {
            "handshake_vs_dh_floor": TARGET_HANDSHAKE_VS_DH_FLOOR,
            "handshake_vs_snow": TARGET_HANDSHAKE_VS_SNOW,
            "record_vs_aead_floor": TARGET_RECORD_VS_AEAD_FLOOR,
        },
        "targets_met": {
            "handshake_vs_dh_floor": handshake_vs_dh_floor >= TARGET_HANDSHAKE_VS_DH_FLOOR,
            "handshake_vs_snow": handshake_vs_snow >= TARGET_HANDSHAKE_VS_SNOW,
            "record_vs_aead_floor": record_vs_aead_floor >= TARGET_RECORD_VS_AEAD_FLOOR,
        },
        "units": {
            "_per_s": "completed operations (full handshakes, both sides) per wall-clock second",
            "_mb_s": format!(
                "MB = 10^6 bytes of plaintext payload per second; a record carries \
                 {RECORD_PAYLOAD_LEN} bytes, counted once for seal + open"
            ),
            "_vs_": "ratio of the best rate of the figure to the best rate of its floor or \
                     rival, both from this run; higher is better",
        },
        "method": format!(
            "{ROUNDS} interleaved rounds after a {} ms warm-up per workload; each round times \
             a ~{BATCH_SECONDS} s batch of every workload back to back, alternating order; \
             figures are the best round (noise only slows a CPU-bound loop), medians under \
             details",
            WARM_UP.as_millis()
        ),
        "details": {
            "handshake": handshake.details("handshakes/s"),
            "dh_floor_handshake": dh_floor.details("handshakes/s"),
            "snow_handshake": snow.details("handshakes/s"),
            "record_seal_open": record.details("MB/s"),
            "aead_floor": aead.details("MB/s"),
            "record_seal_open_page_aliased": aliased.details("MB/s"),
            "record_placement": format!(
                "record_seal_open: payload and output buffer at unrelated page offsets \
                 ((dst - src) mod 4096 = {}); record_seal_open_page_aliased: at the same page \
                 offset ((dst - src) mod 4096 = {}), where glibc's memcpy is ~16x slower on \
                 AMD (see PayloadPlacement in benches/src/lib.rs)",
                PayloadPlacement::Apart.copy_distance(),
                PayloadPlacement::PageAliased.copy_distance()
            ),
            "median_paired_ratios": {
                "handshake_vs_dh_floor": round(paired_ratio_median(handshake, dh_floor), 3),
                "handshake_vs_snow": round(paired_ratio_median(handshake, snow), 3),
                "record_vs_aead_floor": round(paired_ratio_median(record, aead), 3),
                "record_page_aliased_vs_aead_floor":
                    round(paired_ratio_median(aliased, aead), 3),
            },
            "record_page_aliased_vs_aead_floor": round(aliased.best() / aead.best(), 3),
            "dh_floor_work": "6 x25519-dalek StaticSecret::diffie_hellman + 2 PublicKey::from",
            "snow_suite": "snow 0.10 Noise_XX_25519_AESGCM_BLAKE2b, default resolver",
            "record_bytes": RECORD_PAYLOAD_LEN,
            "debug_assertions": cfg!(debug_assertions),
            "elapsed_s": round(elapsed.as_secs_f64(), 1),
        },
    });
    let fields = report.as_object_mut().expect("a JSON object");
    for (key, reason) in NOT_YET_MEASURABLE {
        fields.insert(key.into(), Value::Null);
        fields.insert(format!("{key}_reason"), reason.into());
    }
    report
}

const CONNECTION: &str =
    "needs the Connection state machine (SPEC §3.6), which arrives with issue 3";
const MUX: &str =
    "needs the multiplexer and Connection (SPEC §3.4, §3.6); Connection arrives with issue 3";
const LOOPBACK: &str =
    "needs the mio adapter's event-loop driver, which arrives with the adapter issue";
const LOOPBACK_FLOOR: &str = "a floor is only reported beside the figure it bounds, measured in the \
     same run: loopback through the mio adapter, which arrives with the adapter issue";
const SIM: &str = "needs the simulator (switchboard-sim), which arrives with the Node issue";

/// The `PERF.md` keys this version cannot measure yet, each printed as `null` beside a
/// `<key>_reason` — never a made-up number.
const NOT_YET_MEASURABLE: [(&str, &str); 15] = [
    ("conn_throughput_mb_s", CONNECTION),
    ("conn_throughput_vs_aead", CONNECTION),
    ("mux_64ch_throughput_mb_s", MUX),
    ("mux_64ch_throughput_vs_aead", MUX),
    ("small_msg_per_s", CONNECTION),
    ("loopback_throughput_mb_s", LOOPBACK),
    ("raw_tcp_mb_s", LOOPBACK_FLOOR),
    ("aead_seal_mb_s", LOOPBACK_FLOOR),
    ("loopback_vs_raw_tcp", LOOPBACK),
    ("loopback_rtt_us", LOOPBACK),
    ("raw_tcp_rtt_us", LOOPBACK_FLOOR),
    ("idle_conn_heap_bytes", CONNECTION),
    ("idle_conn_rss_kib", LOOPBACK),
    ("sim_events_per_s", SIM),
    ("sim_10k_converge_s", SIM),
];
