//! The HTML report of `nudge simulate`: one self-contained file (styles
//! inline, charts as inline SVG drawn by plotters, no script, no external
//! font or image), so it opens offline and can be attached to a review.

use crate::cli::simulate::Summary;
use nudge::ir::Program;
use plotters::prelude::*;
use std::fmt::Write as _;
use std::path::PathBuf;

const FONT: &str = "sans-serif";
/// Series colours (Okabe–Ito, readable by colour-blind readers).
const PALETTE: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(213, 94, 0),
    RGBColor(240, 228, 66),
];

/// plotters measures text with a font of its own (ab_glyph): DejaVu Sans,
/// compiled in. The SVG names the generic `sans-serif`, which the browser
/// draws with its own.
fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font(
            FONT,
            FontStyle::Normal,
            include_bytes!("../../assets/fonts/DejaVuSans.ttf"),
        );
    });
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A chart, or a sentence saying why there is none.
fn chart(draw: impl FnOnce(&mut String) -> Result<(), String>) -> String {
    let mut svg = String::new();
    match draw(&mut svg) {
        Ok(()) => format!("<div class=\"chart\">{svg}</div>"),
        Err(e) => format!(
            "<p class=\"empty\">This chart could not be drawn: {}</p>",
            escape(&e)
        ),
    }
}

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

/// Vertical bars, one per label.
/// `marker`: a text over one bar; `limit`: a red line at the left edge of one
/// segment, with its text (the proven bound of the weekly chart).
fn bars(
    title: &str,
    labels: &[String],
    values: &[u64],
    color: RGBColor,
    marker: Option<(usize, String)>,
    limit: Option<(usize, String)>,
) -> String {
    if values.iter().all(|v| *v == 0) {
        return format!("<p class=\"empty\">{}: nothing to show.</p>", escape(title));
    }
    chart(|svg| {
        let width = (labels.len() as u32 * 40 + 120).clamp(480, 1000);
        let root = SVGBackend::with_string(svg, (width, 320)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let top = values.iter().copied().max().unwrap_or(1).max(1);
        let n = labels.len() as i32;
        let mut c = ChartBuilder::on(&root)
            .caption(title, (FONT, 18))
            .margin(12)
            .x_label_area_size(48)
            .y_label_area_size(56)
            .build_cartesian_2d((0..n).into_segmented(), 0u64..top + top / 10 + 1)
            .map_err(err)?;
        c.configure_mesh()
            .disable_x_mesh()
            .x_labels(labels.len().min(40))
            .x_label_formatter(&|x| match x {
                SegmentValue::CenterOf(i) => labels.get(*i as usize).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .label_style((FONT, 12))
            .draw()
            .map_err(err)?;
        c.draw_series(values.iter().enumerate().map(|(i, v)| {
            let i = i as i32;
            let mut bar = Rectangle::new(
                [
                    (SegmentValue::Exact(i), 0),
                    (SegmentValue::Exact(i + 1), *v),
                ],
                color.filled(),
            );
            bar.set_margin(0, 0, 3, 3);
            bar
        }))
        .map_err(err)?;
        if let Some((i, text)) = marker {
            let i = i as i32;
            let at = values.get(i as usize).copied().unwrap_or(0);
            c.draw_series(std::iter::once(Text::new(
                text,
                (SegmentValue::Exact(i), at + top / 20 + 1),
                (FONT, 13).into_font().color(&BLACK),
            )))
            .map_err(err)?;
        }
        if let Some((i, text)) = limit {
            // After the bar of the bound itself: the line is what no count passes.
            let x = SegmentValue::Exact(i as i32 + 1);
            let y_top = top + top / 10;
            c.draw_series(std::iter::once(PathElement::new(
                vec![(x.clone(), 0), (x.clone(), y_top)],
                RED.stroke_width(2),
            )))
            .map_err(err)?;
            c.draw_series(std::iter::once(Text::new(
                text,
                (x, y_top),
                (FONT, 13).into_font().color(&RED),
            )))
            .map_err(err)?;
        }
        root.present().map_err(err)
    })
}

/// One line per series over the labels.
fn lines(title: &str, labels: &[String], series: &[(String, Vec<u64>)]) -> String {
    if series.iter().all(|(_, v)| v.iter().all(|x| *x == 0)) {
        return format!("<p class=\"empty\">{}: nothing to show.</p>", escape(title));
    }
    chart(|svg| {
        let root = SVGBackend::with_string(svg, (1000, 340)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let top = series
            .iter()
            .flat_map(|(_, v)| v.iter().copied())
            .max()
            .unwrap_or(1)
            .max(1);
        let n = labels.len().max(2) as i32;
        let mut c = ChartBuilder::on(&root)
            .caption(title, (FONT, 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(0..n - 1, 0u64..top + top / 10 + 1)
            .map_err(err)?;
        c.configure_mesh()
            .x_labels(labels.len().min(12))
            .x_label_formatter(&|x| labels.get(*x as usize).cloned().unwrap_or_default())
            .label_style((FONT, 12))
            .draw()
            .map_err(err)?;
        for (k, (name, values)) in series.iter().enumerate() {
            let color = PALETTE[k % PALETTE.len()];
            c.draw_series(LineSeries::new(
                values.iter().enumerate().map(|(i, v)| (i as i32, *v)),
                color.stroke_width(2),
            ))
            .map_err(err)?
            .label(name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
            });
        }
        c.configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font((FONT, 12))
            .draw()
            .map_err(err)?;
        root.present().map_err(err)
    })
}

/// Groups of bars side by side: per journey, entered → sent → converted.
fn grouped(title: &str, groups: &[String], series: &[(&str, Vec<u64>)]) -> String {
    if series.iter().all(|(_, v)| v.iter().all(|x| *x == 0)) {
        return format!("<p class=\"empty\">{}: nothing to show.</p>", escape(title));
    }
    chart(|svg| {
        let width = (groups.len() as u32 * 110 + 120).clamp(480, 1200);
        let root = SVGBackend::with_string(svg, (width, 340)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let top = series
            .iter()
            .flat_map(|(_, v)| v.iter().copied())
            .max()
            .unwrap_or(1)
            .max(1);
        let k = series.len().max(1) as f64;
        let mut c = ChartBuilder::on(&root)
            .caption(title, (FONT, 18))
            .margin(12)
            .x_label_area_size(48)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..groups.len() as f64, 0u64..top + top / 10 + 1)
            .map_err(err)?;
        c.configure_mesh()
            .disable_x_mesh()
            .x_labels(groups.len() * 2 + 1)
            .x_label_formatter(&|x| {
                let i = x.floor();
                if (x - i - 0.5).abs() < 0.01 {
                    groups.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .label_style((FONT, 11))
            .draw()
            .map_err(err)?;
        for (s, (name, values)) in series.iter().enumerate() {
            let color = PALETTE[s % PALETTE.len()];
            let left = 0.1 + 0.8 * s as f64 / k;
            let right = 0.1 + 0.8 * (s as f64 + 1.0) / k;
            c.draw_series(values.iter().enumerate().map(|(g, v)| {
                Rectangle::new(
                    [(g as f64 + left, 0), (g as f64 + right, *v)],
                    color.filled(),
                )
            }))
            .map_err(err)?
            .label(*name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
        }
        c.configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font((FONT, 12))
            .draw()
            .map_err(err)?;
        root.present().map_err(err)
    })
}

/// A weekly histogram as bars: one per count of sends from 1 to `upto`.
fn week_bars(h: &crate::cli::simulate::Histogram, upto: u32) -> (Vec<String>, Vec<u64>) {
    (1..=upto)
        .map(|n| (n.to_string(), h.counts.get(&n).copied().unwrap_or(0)))
        .unzip()
}

fn percent(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

pub fn html(
    s: &Summary,
    program: &Program,
    bounds: &nudge::check::bounds::Bounds,
    policy: &[PathBuf],
) -> String {
    register_font();
    let mut out = String::new();
    header(&mut out, s, policy);
    totals(&mut out, s);
    per_channel_day(&mut out, s);
    journeys(&mut out, s, program);
    per_customer_week(&mut out, s, bounds);
    suppressions(&mut out, s);
    deferrals(&mut out, s);
    experiments(&mut out, s);
    out.push_str("</body></html>\n");
    out
}

/// The document's head, and what was simulated.
fn header(out: &mut String, s: &Summary, policy: &[PathBuf]) {
    let set: Vec<String> = policy.iter().map(|p| p.display().to_string()).collect();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>nudge simulate: {}</title><style>{STYLE}</style></head><body>\n",
        escape(&set.join(", "))
    );
    let _ = writeln!(
        out,
        "<h1>Simulation of <code>{}</code></h1><p>{} input lines, {} dead letters, {} duplicates; days and weeks in {}.</p>",
        escape(&set.join(" ")),
        s.lines,
        s.dead_letters,
        s.duplicates,
        s.tz.name()
    );
}

/// Decisions by kind.
fn totals(out: &mut String, s: &Summary) {
    out.push_str("<h2>Decisions</h2><table><tr>");
    for k in s.totals.keys() {
        let _ = write!(out, "<th>{k}</th>");
    }
    out.push_str("</tr><tr>");
    for v in s.totals.values() {
        let _ = write!(out, "<td>{v}</td>");
    }
    out.push_str("</tr></table>\n");
}

/// Messages per channel per day: every day from the first send to the last,
/// quiet days included.
fn per_channel_day(out: &mut String, s: &Summary) {
    let days: Vec<String> = {
        let parse = |d: &String| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok();
        let first = s.per_channel_day.keys().next().and_then(|(d, _)| parse(d));
        let last = s
            .per_channel_day
            .keys()
            .next_back()
            .and_then(|(d, _)| parse(d));
        match (first, last) {
            (Some(first), Some(last)) => first
                .iter_days()
                .take_while(|d| *d <= last)
                .take(3660)
                .map(|d| d.format("%Y-%m-%d").to_string())
                .collect(),
            _ => Vec::new(),
        }
    };
    let series: Vec<(String, Vec<u64>)> = s
        .channels()
        .into_iter()
        .map(|c| {
            let v = days
                .iter()
                .map(|d| {
                    s.per_channel_day
                        .get(&(d.clone(), c.clone()))
                        .copied()
                        .unwrap_or(0)
                })
                .collect();
            (c, v)
        })
        .collect();
    out.push_str("<h2>Messages per channel per day</h2>");
    out.push_str(&lines("Sends per day", &days, &series));
}

/// Per journey: entered, sent, converted, and every kind of decision.
fn journeys(out: &mut String, s: &Summary, program: &Program) {
    let names: Vec<String> = program.journeys.iter().map(|j| j.name.clone()).collect();
    let kind = |k: &str| -> Vec<u64> {
        names
            .iter()
            .map(|n| {
                s.journeys
                    .get(n)
                    .and_then(|f| f.all.kinds.get(k))
                    .copied()
                    .unwrap_or(0)
            })
            .collect()
    };
    out.push_str("<h2>Journeys</h2>");
    out.push_str(&grouped(
        "Per journey: entered, sent, converted",
        &names,
        &[
            ("entered", kind("entered")),
            ("sent", kind("send")),
            ("converted", kind("converted")),
        ],
    ));
    out.push_str("<table><tr><th>journey</th>");
    for k in s.totals.keys() {
        let _ = write!(out, "<th>{k}</th>");
    }
    out.push_str("<th>suppressed by reason</th></tr>");
    for n in &names {
        let Some(f) = s.journeys.get(n) else { continue };
        let _ = write!(out, "<tr><td><code>{}</code></td>", escape(n));
        for k in s.totals.keys() {
            let _ = write!(out, "<td>{}</td>", f.all.kinds.get(k).copied().unwrap_or(0));
        }
        let reasons: Vec<String> = f
            .all
            .suppressed_reasons
            .iter()
            .map(|(r, c)| format!("{r} {c}"))
            .collect();
        let _ = writeln!(out, "<td>{}</td></tr>", escape(&reasons.join(", ")));
    }
    out.push_str("</table>\n");
}

/// Sends per customer per week, every send and marketing sends beside the
/// proven bound (LANGUAGE.md §9a), and per channel.
fn per_customer_week(out: &mut String, s: &Summary, bounds: &nudge::check::bounds::Bounds) {
    let h = s.per_profile_week(None);
    let (labels, values) = week_bars(&h, h.max);
    out.push_str("<h2>Messages per customer per week</h2><p>How many sends a customer received in a week (Monday to Sunday), over all channels: the number of customer-weeks with each count, and the most any customer got.</p>");
    let marker = (h.max > 0).then(|| ((h.max - 1) as usize, format!("max {}", h.max)));
    out.push_str(&bars(
        "Customer-weeks by sends received",
        &labels,
        &values,
        PALETTE[0],
        marker,
        None,
    ));

    // (1.1) Marketing sends per profile per week, beside the proven bound
    // (LANGUAGE.md §9a): transactional sends are counted by no cap.
    let m = s.marketing_per_profile_week(None);
    let proven = bounds.all.max;
    // The axis reaches the bound when it is near enough to be drawn usefully.
    let shown = match proven {
        Some(b) if b <= u64::from(m.max) + 12 => b.max(u64::from(m.max)) as u32,
        _ => m.max,
    };
    let (labels, values) = week_bars(&m, shown);
    out.push_str("<p>Marketing sends only (journeys that are not transactional), beside the most the caps allow in any 7 days (<code>nudge check --bounds</code>; a week with a daylight-saving change is an hour longer or shorter).</p>");
    let bound_text = match (proven, &bounds.all.basis) {
        (None, _) => "No proven bound: some marketing sends are limited by no cap.".to_string(),
        (Some(b), nudge::check::bounds::Basis::Cap(cap)) => format!(
            "Proven bound: at most {b} in any 7 days (<code>{}</code>).",
            escape(&cap.written)
        ),
        (Some(b), _) => format!("Proven bound: at most {b} in any 7 days."),
    };
    let _ = write!(
        out,
        "<p class=\"bound\">Observed maximum of marketing sends: {}. {bound_text}</p>",
        m.max
    );
    let marker = (m.max > 0).then(|| ((m.max - 1) as usize, format!("max {}", m.max)));
    let limit = proven
        .filter(|b| *b >= 1 && *b <= u64::from(shown))
        .map(|b| ((b - 1) as usize, format!("bound {b}")));
    out.push_str(&bars(
        "Customer-weeks by marketing sends received",
        &labels,
        &values,
        PALETTE[3],
        marker,
        limit,
    ));
    out.push_str("<table><tr><th>channel</th><th>most sends to one customer in a week</th><th>most marketing sends to one customer in a week</th><th>proven bound in any 7 days</th></tr>");
    for c in s.channels() {
        let bound = bounds
            .channel(&c)
            .map(|b| b.max.map_or("none".to_string(), |n| n.to_string()))
            .unwrap_or_default();
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{bound}</td></tr>",
            escape(&c),
            s.per_profile_week(Some(&c)).max,
            s.marketing_per_profile_week(Some(&c)).max
        );
    }
    out.push_str("</table>\n");
}

/// Channels suppressed by reason, sends by the cap that stopped them.
fn suppressions(out: &mut String, s: &Summary) {
    out.push_str("<h2>Suppressions</h2>");
    let mut reasons: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    for f in s.journeys.values() {
        for (r, c) in &f.all.suppressed_reasons {
            *reasons.entry(r.clone()).or_insert(0) += c;
        }
    }
    let (labels, values): (Vec<String>, Vec<u64>) = reasons.into_iter().unzip();
    out.push_str(&bars(
        "Channels suppressed, by reason",
        &labels,
        &values,
        PALETTE[5],
        None,
        None,
    ));
    let (labels, values): (Vec<String>, Vec<u64>) =
        s.caps.iter().map(|(c, n)| (c.clone(), *n)).unzip();
    out.push_str(&bars(
        "Sends suppressed, by the cap that stopped them",
        &labels,
        &values,
        PALETTE[1],
        None,
        None,
    ));
}

/// Deferred sends by the customer's local hour.
fn deferrals(out: &mut String, s: &Summary) {
    out.push_str("<h2>Deferrals by local hour</h2>");
    let labels: Vec<String> = (0..24).map(|h| format!("{h:02}")).collect();
    out.push_str(&bars(
        "Deferred sends by the customer's local hour",
        &labels,
        &s.deferrals_by_hour,
        PALETTE[2],
        None,
        None,
    ));
}

/// Each split's arms with their conversion rates and comparisons.
fn experiments(out: &mut String, s: &Summary) {
    out.push_str("<h2>Experiments</h2>");
    if s.experiments.is_empty() {
        out.push_str("<p class=\"empty\">No journey has a split.</p>");
    }
    for e in &s.experiments {
        let comparisons: std::collections::BTreeMap<String, crate::cli::stats::Comparison> =
            e.comparisons().into_iter().collect();
        let _ = write!(
            out,
            "<h3><code>{}</code> (against <code>{}</code>)</h3><table><tr><th>arm</th><th>entries</th><th>conversions</th><th>rate</th><th>95% interval</th><th>difference</th><th>95% interval</th><th>p-value</th></tr>",
            escape(&e.journey),
            escape(&e.control)
        );
        for (arm, r) in &e.arms {
            let _ = write!(
                out,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{} – {}</td>",
                escape(arm),
                r.n,
                r.k,
                percent(r.rate),
                percent(r.low),
                percent(r.high)
            );
            match comparisons.get(arm) {
                Some(c) => {
                    let _ = write!(
                        out,
                        "<td>{:+.1} pts</td><td>{:+.1} – {:+.1}</td><td>{}</td></tr>",
                        c.difference * 100.0,
                        c.low * 100.0,
                        c.high * 100.0,
                        c.p_value.map_or("–".to_string(), |p| format!("{p:.4}"))
                    );
                }
                None => out.push_str("<td>control</td><td></td><td></td></tr>"),
            }
        }
        out.push_str("</table>");
    }
    out.push_str("<p class=\"note\">Rates with 95% Wilson intervals; differences against the control with Newcombe's score interval; p-values of the two-sided pooled two-proportion z-test. Entries are instances that reached the split.</p>\n");
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em auto;max-width:1100px;color:#222}\
h1{font-size:1.5em}h2{margin-top:2em;border-bottom:1px solid #ddd}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}\
th{background:#f4f4f4}td:first-child{text-align:left}.chart svg{max-width:100%;height:auto}\
.empty,.note{color:#666}code{font-size:.95em}";
