//! A scenario run as one self-contained HTML page (`switchboard-sim --report DIR`): plots
//! to compare runs by looking at them, not by reading JSON.
//!
//! The page stands alone — the plots are inline SVG drawn by `plotters`, the style sheet
//! is inline, there is no script and nothing to fetch — so it can be mailed, attached to
//! an issue or opened from a CI artifact. It shows the run's [`Summary`] as a table, the
//! command line that reproduces the run, and from its [`Timeline`]:
//!
//! - connectivity: live nodes, nodes in the largest component, nodes whose outbound slots
//!   are full, over simulated time, the span in which faults were drawn shaded;
//! - the traffic's delivery latency as a cumulative distribution (from the run's
//!   [`LatencyHistogram`](crate::LatencyHistogram), send to the receiving application);
//! - bytes the links delivered per simulated second;
//! - lookups by hops taken, when the run recorded any ([`Timeline::record_lookup`]);
//!   otherwise the page says there were none.

use std::fmt::{self, Write as _};
use std::ops::Range;
use std::time::Duration;

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::summary::Summary;
use crate::timeline::{Timeline, TimelineSample};

/// Width and height of every plot, in CSS pixels.
const PLOT_SIZE: (u32, u32) = (1000, 300);

// The series' colours: matplotlib's first ones, which readers of plots know.
const SERIES_BLUE: RGBColor = RGBColor(31, 119, 180);
const SERIES_ORANGE: RGBColor = RGBColor(255, 127, 14);
const SERIES_GREY: RGBColor = RGBColor(150, 150, 150);
const SERIES_GREEN: RGBColor = RGBColor(44, 160, 44);
/// The shade of the span in which faults were drawn.
const FAULT_SHADE: RGBColor = RGBColor(253, 226, 222);

/// Why a report could not be drawn.
#[derive(Debug)]
pub enum ReportError {
    /// The summary holds no timeline: the run was not asked to record one
    /// ([`ScenarioConfig::record_timeline`](crate::ScenarioConfig::record_timeline)).
    NoTimeline,
    /// `plotters` failed to draw a plot.
    Plot {
        /// Which plot.
        plot: &'static str,
        /// What `plotters` said.
        message: String,
    },
}

impl fmt::Display for ReportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReportError::NoTimeline => {
                f.write_str("the run recorded no timeline (set ScenarioConfig::record_timeline)")
            }
            ReportError::Plot { plot, message } => {
                write!(f, "cannot draw the {plot} plot: {message}")
            }
        }
    }
}

impl std::error::Error for ReportError {}

/// What drawing on the SVG backend fails with.
type DrawError = DrawingAreaErrorKind<std::io::Error>;

/// The page for one run (see the [module documentation](self)); `summary` must hold the
/// run's [`Timeline`].
pub fn html(summary: &Summary) -> Result<String, ReportError> {
    let timeline = summary.timeline.as_ref().ok_or(ReportError::NoTimeline)?;
    let mut page = String::new();
    let title = format!(
        "switchboard-sim: {} nodes, seed {}, faults {}",
        summary.nodes, summary.seed, summary.faults
    );
    // Writing to a String cannot fail.
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{title}</h1>\n",
        title = escape(&title)
    );
    summary_section(&mut page, summary);

    page.push_str(
        "<section id=\"connectivity\">\n<h2>Connectivity</h2>\n<p>Live (not crashed) nodes, \
         nodes in the largest connected component of the peer graph, and nodes whose \
         outbound slots are full, sampled over simulated time. Faults are drawn in the \
         shaded span; then everything heals and the network must be one component by the \
         end.</p>\n",
    );
    page.push_str(&plot("connectivity", |area| {
        connectivity(area, summary.nodes, timeline)
    })?);
    page.push_str("</section>\n");

    page.push_str(
        "<section id=\"latency\">\n<h2>Delivery latency</h2>\n<p>Share of the traffic's \
         messages delivered within a given time, from the sender's <code>send</code> to the \
         receiving application taking the message, in simulated time (log scale; buckets \
         within 1.6&nbsp;%).</p>\n",
    );
    if timeline.latency().count() == 0 {
        page.push_str("<p class=\"none\">No message delivered in this run.</p>\n");
    } else {
        page.push_str(&plot("latency", |area| latency(area, timeline))?);
    }
    page.push_str("</section>\n");

    page.push_str(
        "<section id=\"bytes\">\n<h2>Bytes delivered</h2>\n<p>Bytes the links delivered to \
         the nodes per simulated second (every read, handshakes and keepalives \
         included), between consecutive samples.</p>\n",
    );
    page.push_str(&plot("bytes", |area| bytes(area, timeline))?);
    page.push_str("</section>\n");

    page.push_str("<section id=\"lookups\">\n<h2>Lookup hops</h2>\n");
    if timeline.lookup_hops().is_empty() {
        page.push_str("<p class=\"none\">No lookups in this run.</p>\n");
    } else {
        page.push_str("<p>Lookups by the number of hops they took.</p>\n");
        page.push_str(&plot("lookups", |area| lookups(area, timeline))?);
    }
    page.push_str("</section>\n</body>\n</html>\n");
    Ok(page)
}

/// The page's style: readable without any external font or sheet.
const STYLE: &str = "body{font-family:sans-serif;max-width:1040px;margin:1em auto;\
color:#222}h1{font-size:1.4em}h2{font-size:1.15em;margin:1.2em 0 .2em}\
p{margin:.3em 0}table{border-collapse:collapse;font-size:.9em}\
td{padding:.15em .8em .15em 0;vertical-align:top}td.key{color:#666}\
pre{background:#f4f4f4;padding:.5em;white-space:pre-wrap;font-size:.85em}\
.pass{color:#1a7f37;font-weight:bold}.fail{color:#c62828;font-weight:bold}\
.none{color:#666;font-style:italic}svg{display:block}";

/// The run's figures as a table, the verdict and the command line that reproduces the run.
fn summary_section(page: &mut String, summary: &Summary) {
    let c = &summary.counters;
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1e3);
    let latency = summary.latency.map_or_else(
        || "no message delivered".to_string(),
        |l| {
            format!(
                "p50 {}, p90 {}, p99 {}, max {} ({} deliveries)",
                ms(l.p50),
                ms(l.p90),
                ms(l.p99),
                ms(l.max),
                l.deliveries
            )
        },
    );
    let rows = [
        ("seed", summary.seed.to_string()),
        ("nodes", summary.nodes.to_string()),
        ("faults", summary.faults.clone()),
        (
            "time",
            format!(
                "{:.1} simulated s in {:.2} wall s",
                summary.sim_seconds, summary.wall_seconds
            ),
        ),
        (
            "events",
            format!(
                "{} ({:.0} per wall s)",
                summary.events, summary.events_per_s
            ),
        ),
        (
            "connections",
            format!("{} established", summary.connections),
        ),
        (
            "outbound slots",
            summary.outbound_full_s.map_or_else(
                || "never all full".to_string(),
                |s| format!("all full after {s:.3} simulated s"),
            ),
        ),
        ("components at the end", summary.components.to_string()),
        (
            "bytes delivered",
            format!(
                "{:.1} MB ({:.1} kB per simulated s)",
                summary.bytes_delivered as f64 / 1e6,
                summary.bytes_per_sim_s() / 1e3
            ),
        ),
        ("delivery latency", latency),
        (
            "messages",
            format!(
                "sent {}, delivered {}, confirmed {}, returned unsent {}, returned \
                 unconfirmed {}, pending at the end {}",
                c.sent,
                c.delivered,
                c.confirmed,
                c.returned_unsent,
                c.returned_unconfirmed,
                c.pending
            ),
        ),
        (
            "invariants",
            format!(
                "lost {}, duplicates {}, reordered {}, limit violations {}, max buffered per \
                 connection {} B",
                c.lost, c.duplicates, c.reordered, c.limit_violations, c.max_conn_buffered_bytes
            ),
        ),
        ("trace hash", format!("{:016x}", summary.trace_hash)),
    ];
    if summary.passed() {
        page.push_str("<p class=\"pass\">All invariants held.</p>\n");
    } else {
        let _ = writeln!(
            page,
            "<p class=\"fail\">{} invariant violations; the first ones:</p>\n<pre>",
            c.violations
        );
        for violation in summary.violations.iter().take(10) {
            let _ = writeln!(page, "{}", escape(&violation.to_string()));
        }
        page.push_str("</pre>\n");
    }
    page.push_str("<table>\n");
    for (key, value) in rows {
        let _ = writeln!(
            page,
            "<tr><td class=\"key\">{key}</td><td>{}</td></tr>",
            escape(&value)
        );
    }
    let _ = write!(
        page,
        "</table>\n<p>Reproduce this run (add <code>--report DIR</code> for this page):</p>\n\
         <pre>{}</pre>\n",
        escape(&summary.command_line)
    );
}

/// One plot as an inline `<svg>` element.
fn plot(
    name: &'static str,
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Result<(), DrawError>,
) -> Result<String, ReportError> {
    let mut svg = String::new();
    {
        let area = SVGBackend::with_string(&mut svg, PLOT_SIZE).into_drawing_area();
        area.fill(&WHITE)
            .and_then(|()| draw(&area))
            .and_then(|()| area.present())
            .map_err(|error| ReportError::Plot {
                plot: name,
                message: error.to_string(),
            })?;
    }
    // Inside HTML an `<svg>` is in the SVG namespace already; without the attribute the
    // page names no URL at all.
    Ok(svg.replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1))
}

/// The x axis of the plots over time: the whole run, in simulated seconds.
fn time_axis(timeline: &Timeline) -> Range<f64> {
    let end = timeline
        .samples()
        .last()
        .map_or(0.0, |sample| sample.at.as_secs_f64());
    0.0..end.max(1e-3)
}

fn connectivity(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    nodes: usize,
    timeline: &Timeline,
) -> Result<(), DrawError> {
    let top = (nodes as f64 * 1.08).max(1.0);
    let mut chart = time_chart(area, timeline, top, "nodes", &|nodes| format!("{nodes:.0}"))?;
    let samples = timeline.samples();
    /// A series: its label, colour and value in a sample.
    type Series = (&'static str, RGBColor, fn(&TimelineSample) -> usize);
    let series: [Series; 3] = [
        ("live", SERIES_GREY, |s| s.live),
        ("in the largest component", SERIES_BLUE, |s| {
            s.largest_component
        }),
        ("outbound slots full", SERIES_ORANGE, |s| s.outbound_full),
    ];
    for (label, color, pick) in series {
        let points = samples.iter().map(|s| (s.at.as_secs_f64(), pick(s) as f64));
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))?
            .label(label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    // Connectivity climbs to the top and stays there.
    legend(&mut chart, SeriesLabelPosition::LowerRight)
}

fn latency(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    timeline: &Timeline,
) -> Result<(), DrawError> {
    let histogram = timeline.latency();
    let ms = |d: Duration| (d.as_secs_f64() * 1e3).max(1e-3);
    let points: Vec<(f64, f64)> = histogram
        .cdf()
        .map(|(at, share)| (ms(at), share * 100.0))
        .collect();
    let low = points.first().map_or(1e-3, |p| p.0);
    let high = points.last().map_or(1.0, |p| p.0);
    // A decade's margin on a log axis is too much; a fifth of one either side.
    let range = (low / 1.6)..(high * 1.6).max(low * 2.0);
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(range.log_scale(), 0.0..100.0)?;
    chart
        .configure_mesh()
        .x_desc("simulated ms, send to the receiving application")
        .y_desc("% of deliveries within")
        .x_label_formatter(&|ms| number(*ms))
        .y_label_formatter(&|share| format!("{share:.0}"))
        .light_line_style(WHITE)
        .draw()?;
    chart
        .draw_series(LineSeries::new(points, SERIES_BLUE.stroke_width(2)))?
        .label(format!("{} deliveries", histogram.count()))
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], SERIES_BLUE.stroke_width(2)));
    let marks = [0.5, 0.9, 0.99]
        .into_iter()
        .filter_map(|quantile| Some((quantile, histogram.percentile(quantile)?)));
    chart.draw_series(marks.map(|(quantile, at)| {
        let label = format!("p{:.0} {:.1} ms", quantile * 100.0, at.as_secs_f64() * 1e3);
        EmptyElement::at((ms(at), quantile * 100.0))
            + Circle::new((0, 0), 4, SERIES_ORANGE.filled())
            + Text::new(label, (8, 2), ("sans-serif", 13))
    }))?;
    // The distribution's right tail is flat and high.
    legend(&mut chart, SeriesLabelPosition::LowerRight)
}

fn bytes(area: &DrawingArea<SVGBackend<'_>, Shift>, timeline: &Timeline) -> Result<(), DrawError> {
    let rates: Vec<(f64, f64)> = timeline
        .bytes_per_sim_s()
        .map(|(at, rate)| (at.as_secs_f64(), rate))
        .collect();
    let peak = rates.iter().map(|p| p.1).fold(0.0, f64::max);
    let (scale, unit) = if peak >= 1e6 {
        (1e6, "MB per simulated s")
    } else {
        (1e3, "kB per simulated s")
    };
    let top = (peak / scale * 1.1).max(1e-3);
    let mut chart = time_chart(area, timeline, top, unit, &|rate| number(*rate))?;
    chart
        .draw_series(LineSeries::new(
            rates.into_iter().map(|(at, rate)| (at, rate / scale)),
            SERIES_GREEN.stroke_width(2),
        ))?
        .label("delivered by the links")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], SERIES_GREEN.stroke_width(2)));
    // The rate hugs the bottom; only bursts (a healed black hole) reach the top.
    legend(&mut chart, SeriesLabelPosition::UpperRight)
}

fn lookups(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    timeline: &Timeline,
) -> Result<(), DrawError> {
    let hops = timeline.lookup_hops();
    let most = hops.iter().copied().max().unwrap_or(0);
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(
            -0.5..hops.len() as f64 - 0.5,
            0.0..(most as f64 * 1.1).max(1.0),
        )?;
    chart
        .configure_mesh()
        .x_desc("hops")
        .y_desc("lookups")
        // Only whole hops: the axis runs half a bar either side.
        .x_label_formatter(&|hops| {
            if hops.fract() == 0.0 && *hops >= 0.0 {
                format!("{hops:.0}")
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|count| format!("{count:.0}"))
        .light_line_style(WHITE)
        .draw()?;
    chart.draw_series(hops.iter().enumerate().map(|(hops, &count)| {
        let x = hops as f64;
        Rectangle::new(
            [(x - 0.35, 0.0), (x + 0.35, count as f64)],
            SERIES_BLUE.filled(),
        )
    }))?;
    Ok(())
}

/// The span in which faults were drawn, shaded and named in the legend.
/// A chart over the run's simulated time, `0..top` high, its mesh drawn and the faults'
/// span shaded: what the plots over time share.
fn time_chart<'a, 'b>(
    area: &'a DrawingArea<SVGBackend<'b>, Shift>,
    timeline: &Timeline,
    top: f64,
    y_desc: &str,
    y_label: &dyn Fn(&f64) -> String,
) -> Result<ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>, DrawError>
{
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(time_axis(timeline), 0.0..top)?;
    chart
        .configure_mesh()
        .x_desc("simulated s")
        .x_label_formatter(&|at| number(*at))
        .y_desc(y_desc)
        .y_label_formatter(y_label)
        .light_line_style(WHITE)
        .draw()?;
    shade_faults(&mut chart, timeline, top)?;
    Ok(chart)
}

fn shade_faults(
    chart: &mut ChartContext<'_, SVGBackend<'_>, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    timeline: &Timeline,
    top: f64,
) -> Result<(), DrawError> {
    if let Some(until) = timeline.faults_until() {
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(0.0, 0.0), (until.as_secs_f64(), top)],
                FAULT_SHADE.filled(),
            )))?
            .label("faults drawn")
            .legend(|(x, y)| Rectangle::new([(x, y - 6), (x + 20, y + 6)], FAULT_SHADE.filled()));
    }
    Ok(())
}

/// The legend, at `position`: where the series seldom go.
fn legend<'a, 'svg: 'a, X: Ranged, Y: Ranged>(
    chart: &mut ChartContext<'a, SVGBackend<'svg>, Cartesian2d<X, Y>>,
    position: SeriesLabelPosition,
) -> Result<(), DrawError> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(SERIES_GREY)
        .label_font(("sans-serif", 14))
        .draw()
}

/// An axis label: whole above 10, else at most two decimals, without trailing zeros.
fn number(value: f64) -> String {
    if value.abs() >= 10.0 {
        return format!("{value:.0}");
    }
    let label = format!("{value:.2}");
    label
        .trim_end_matches('0')
        .trim_end_matches('.')
        .to_string()
}

/// `text` with HTML's special characters escaped.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            c => escaped.push(c),
        }
    }
    escaped
}
