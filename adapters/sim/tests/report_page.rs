//! `switchboard-sim --report`'s page: a faulted 20-node run drawn as HTML stands alone (no
//! script, no URL), has a non-empty series in every plot and a network that reconnects;
//! lookups recorded on the timeline get their plot; and headless Chromium renders the page
//! without a console error or any load but the page's own.
//!
//! The Chromium test needs Debian's `chromium` package (`apt-get install -y chromium`), or
//! the browser's path in `SWITCHBOARD_CHROMIUM`; without it the test fails and says so.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use switchboard_sim::{FaultConfig, Scenario, ScenarioConfig, Summary, report};

const NODES: usize = 20;

/// 20 nodes for 10 simulated s, every fault drawn in the first 5.
fn run_recording(record_timeline: bool) -> Summary {
    let mut config = ScenarioConfig::new(NODES, 3);
    config.duration = Duration::from_secs(10);
    config.quiet = Duration::from_secs(5);
    config.faults = FaultConfig::all();
    config.record_timeline = record_timeline;
    Scenario::new(config).unwrap().run(|_| {})
}

/// The part of `page` in `<section id="id">`.
fn section<'a>(page: &'a str, id: &str) -> &'a str {
    let start = page
        .find(&format!("<section id=\"{id}\">"))
        .unwrap_or_else(|| panic!("no section {id}"));
    let end = start + page[start..].find("</section>").unwrap();
    &page[start..end]
}

/// How many points each `<polyline>` in `html` has, in order.
fn polylines(html: &str) -> Vec<usize> {
    html.split("<polyline")
        .skip(1)
        .map(|line| {
            let points = &line[line.find("points=\"").unwrap() + 8..];
            points[..points.find('"').unwrap()]
                .split_whitespace()
                .count()
        })
        .collect()
}

/// Series drawn in `html` with at least `points` points (a legend's sample line has two).
fn series_of_at_least(html: &str, points: usize) -> usize {
    polylines(html).into_iter().filter(|&n| n >= points).count()
}

#[test]
fn the_page_stands_alone_and_plots_every_series() {
    let summary = run_recording(true);
    assert!(summary.passed(), "{summary}");
    let page = report::html(&summary).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.trim_end().ends_with("</html>"));
    for external in [
        "<script", "src=", "href=", "url(", "@import", "http:", "https:", "<link",
    ] {
        assert!(!page.contains(external), "the page holds {external:?}");
    }
    // A plot per section: connectivity, latency, bytes; no lookups.
    assert_eq!(page.matches("<svg").count(), 3);
    assert_eq!(series_of_at_least(section(&page, "connectivity"), 20), 3);
    assert_eq!(series_of_at_least(section(&page, "latency"), 20), 1);
    assert_eq!(series_of_at_least(section(&page, "bytes"), 20), 1);
    let lookups = section(&page, "lookups");
    assert!(lookups.contains("No lookups in this run.") && !lookups.contains("<svg"));
    assert!(page.contains(&summary.command_line));

    // What the connectivity plot draws: every node in one component once faults heal.
    let timeline = summary.timeline.as_ref().unwrap();
    let samples = timeline.samples();
    assert!(samples.len() >= 90, "{} samples", samples.len());
    let healed = timeline.faults_until().unwrap();
    let last = samples.last().unwrap();
    assert_eq!(last.at, Duration::from_secs(10));
    assert_eq!((last.live, last.largest_component), (NODES, NODES));
    assert!(
        samples
            .iter()
            .any(|s| s.at < healed && s.largest_component == NODES),
        "the network converged before the faults' end"
    );
    assert!(samples.iter().any(|s| s.outbound_full > 0));
    // 100 ms spans: a quiet one now and then (the first dials, a black hole).
    let rates: Vec<f64> = timeline.bytes_per_sim_s().map(|(_, rate)| rate).collect();
    let busy = rates.iter().filter(|&&rate| rate > 0.0).count();
    assert!(busy * 10 >= rates.len() * 9, "{rates:?}");
    assert_eq!(
        timeline.latency().count(),
        summary.latency.unwrap().deliveries
    );

    // Sampling is not an input to any node: the run is the one without a report.
    let plain = run_recording(false);
    assert_eq!(
        (plain.trace_hash, plain.events),
        (summary.trace_hash, summary.events)
    );
    assert!(plain.timeline.is_none());
}

#[test]
fn recorded_lookups_get_a_plot() {
    let mut summary = run_recording(true);
    let timeline = summary.timeline.as_mut().unwrap();
    for hops in [1, 2, 2, 3, 2, 4] {
        timeline.record_lookup(hops);
    }
    let page = report::html(&summary).unwrap();
    let lookups = section(&page, "lookups");
    assert!(lookups.contains("<svg") && !lookups.contains("No lookups"));
    // A bar per hop count, 0 included (drawn empty).
    assert_eq!(lookups.matches("<rect").count() - 1, 5);
}

#[test]
fn chromium_renders_the_page_without_errors() {
    let chromium = chromium();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report_page");
    let profile = dir.join("profile");
    // A fresh profile each run; the page and screenshot are rewritten.
    let _absent = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&profile).unwrap();
    let page = dir.join("report.html");
    std::fs::write(&page, report::html(&run_recording(true)).unwrap()).unwrap();
    let screenshot = dir.join("report.png");
    let url = format!("file://{}", page.display());

    let mut child = Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            // Nothing resolves: the browser's own background fetches cannot leave the
            // machine either.
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--window-size=1200,1600",
            "--enable-logging=stderr",
            "--v=0",
            // Logs every file the browser loads: the page must load nothing but itself.
            "--vmodule=file_url_loader_factory=1",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", screenshot.display()))
        .arg(&url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start {}: {error}", chromium.display()));
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(120) {
            child.kill().unwrap();
            panic!("chromium did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let log = reader.join().unwrap();

    assert!(status.success(), "chromium exited with {status}:\n{log}");
    let png = std::fs::read(&screenshot).unwrap_or_else(|error| {
        panic!("no screenshot at {}: {error}\n{log}", screenshot.display())
    });
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{log}");
    for line in log.lines() {
        let console = line.contains(":CONSOLE") || line.contains("Uncaught");
        let failed_load = line.contains("Failed to load resource") || line.contains("net::ERR_");
        assert!(!console && !failed_load, "chromium reports: {line}");
        if let Some(at) = line.find("FileURLLoader::Start: ") {
            let loaded = &line[at + "FileURLLoader::Start: ".len()..];
            assert_eq!(loaded.trim(), url, "the page loads another file");
        }
    }
    assert!(
        log.contains("FileURLLoader::Start"),
        "chromium's log no longer names the files it loads: check the --vmodule flag\n{log}"
    );
}

/// Debian's Chromium, or the browser `SWITCHBOARD_CHROMIUM` names.
fn chromium() -> PathBuf {
    let path = std::env::var_os("SWITCHBOARD_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(
        Path::new(&path).is_file(),
        "headless Chromium is needed to check the report page and {} is missing: install \
         Debian's package with `apt-get install -y chromium`, or set SWITCHBOARD_CHROMIUM to \
         a Chromium binary",
        path.display()
    );
    path
}
