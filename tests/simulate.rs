//! (1.1) `nudge simulate` (CLI.md): the JSON summary's figures against an
//! independent count of `nudge run --drain`'s output; the HTML report is one
//! self-contained file; and it renders in a real headless browser.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

#[path = "../benches/support/retail.rs"]
mod retail;

use chrono::Datelike;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn nudge(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nudge"))
        .current_dir(root())
        .args(args)
        .output()
        .unwrap()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nudge-simulate-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const EVENTS: &str = "examples/retail/events.ndjson";

/// The summary and the decisions `nudge run --drain` writes for the retail set.
fn simulate_and_run(dir: &Path, tz: &str) -> (serde_json::Value, Vec<serde_json::Value>) {
    let json = dir.join("summary.json");
    let out = nudge(&[
        "simulate",
        "--policy",
        "examples/retail",
        "--events",
        EVENTS,
        "--json",
        json.to_str().unwrap(),
        "--tz",
        tz,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let run = nudge(&[
        "run",
        "--policy",
        "examples/retail",
        "--events",
        EVENTS,
        "--drain",
    ]);
    assert!(run.status.success());
    let decisions = String::from_utf8_lossy(&run.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (summary, decisions)
}

#[test]
fn the_summary_counts_what_run_decides() {
    let dir = scratch("counts");
    let (s, decisions) = simulate_and_run(&dir, "Europe/Paris");
    // Totals: every kind present, each equal to run's count.
    let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
    for d in &decisions {
        *kinds.entry(d["kind"].as_str().unwrap().into()).or_insert(0) += 1;
    }
    for kind in [
        "entered",
        "send",
        "deferred",
        "suppressed",
        "holdout",
        "exited",
        "completed",
        "converted",
        "not_entered",
    ] {
        assert_eq!(
            s["totals"][kind].as_u64(),
            Some(kinds.get(kind).copied().unwrap_or(0)),
            "{kind}"
        );
    }
    // Per journey and per arm.
    let cart: Vec<&serde_json::Value> = decisions
        .iter()
        .filter(|d| d["journey"] == "cart_recovery")
        .collect();
    let count =
        |f: &dyn Fn(&serde_json::Value) -> bool| cart.iter().filter(|d| f(d)).count() as u64;
    assert_eq!(
        s["journeys"]["cart_recovery"]["send"].as_u64(),
        Some(count(&|d| d["kind"] == "send"))
    );
    assert_eq!(
        s["journeys"]["cart_recovery"]["arms"]["fixed_order"]["converted"].as_u64(),
        Some(count(
            &|d| d["kind"] == "converted" && d["arm"] == "fixed_order"
        ))
    );
    // Suppressed channels by reason.
    let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
    for d in cart.iter().filter(|d| d["kind"] == "suppressed") {
        for r in d["reasons"].as_object().unwrap().values() {
            *reasons.entry(r.as_str().unwrap().into()).or_insert(0) += 1;
        }
    }
    assert_eq!(
        s["journeys"]["cart_recovery"]["suppressed_by_reason"],
        serde_json::json!(reasons)
    );
    // Sends per channel and day, days in the zone asked for.
    let paris: chrono_tz::Tz = "Europe/Paris".parse().unwrap();
    let at = |d: &serde_json::Value| {
        chrono::DateTime::parse_from_rfc3339(d["at"].as_str().unwrap())
            .unwrap()
            .with_timezone(&paris)
    };
    let mut per_day: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut weeks: HashMap<(String, i32), u32> = HashMap::new();
    // (1.1) Marketing sends (not of transactional journeys): the bound is
    // about them.
    let mut marketing: HashMap<(String, i32), u32> = HashMap::new();
    let transactional = transactional_journeys();
    for d in decisions.iter().filter(|d| d["kind"] == "send") {
        let local = at(d);
        *per_day
            .entry((
                local.format("%Y-%m-%d").to_string(),
                d["channel"].as_str().unwrap().into(),
            ))
            .or_insert(0) += 1;
        let monday =
            local.date_naive().num_days_from_ce() - local.weekday().num_days_from_monday() as i32;
        let key: (String, i32) = (d["profile"].as_str().unwrap().into(), monday);
        if !transactional.contains(d["journey"].as_str().unwrap()) {
            *marketing.entry(key.clone()).or_insert(0) += 1;
        }
        *weeks.entry(key).or_insert(0) += 1;
    }
    let got: BTreeMap<(String, String), u64> = s["per_channel_day"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                (
                    r["day"].as_str().unwrap().into(),
                    r["channel"].as_str().unwrap().into(),
                ),
                r["sends"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, per_day);
    let max = weeks.values().copied().max().unwrap();
    assert_eq!(s["per_profile_week"]["max"].as_u64(), Some(u64::from(max)));
    let histogram: u64 = s["per_profile_week"]["histogram"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["profile_weeks"].as_u64().unwrap())
        .sum();
    assert_eq!(histogram, weeks.len() as u64);
    // (1.1) The proven bound beside the marketing maximum (LANGUAGE.md §9a),
    // never passed; receipts make what a customer receives more than it.
    let marketing_max = marketing.values().copied().max().unwrap();
    assert_eq!(
        s["per_profile_week"]["marketing_max"].as_u64(),
        Some(u64::from(marketing_max))
    );
    assert_eq!(s["bounds"]["all"], 5);
    assert_eq!(s["per_profile_week"]["bound"], 5);
    assert!(marketing_max <= 5, "{marketing_max}");
    assert!(max > marketing_max, "{max} {marketing_max}");
    assert_eq!(s["per_profile_week"]["per_channel"]["sms"]["bound"], 5);
    // Caps as written, and deferrals by local hour adding up.
    assert!(
        s["caps"]
            .as_object()
            .unwrap()
            .keys()
            .any(|c| c.starts_with("cap ")),
        "{}",
        s["caps"]
    );
    let hours: u64 = s["deferrals_by_local_hour"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_u64().unwrap())
        .sum();
    assert_eq!(hours, kinds.get("deferred").copied().unwrap_or(0));
    // The experiment: arms with entries, the holdout as control, figures in range.
    let e = s["experiments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["journey"] == "cart_recovery")
        .unwrap();
    assert_eq!(e["control"], "holdout");
    for arm in e["arms"].as_array().unwrap() {
        let (entries, conversions) = (
            arm["entries"].as_u64().unwrap(),
            arm["conversions"].as_u64().unwrap(),
        );
        assert!(conversions <= entries && entries > 0, "{arm}");
        let [low, high] = [
            arm["interval"][0].as_f64().unwrap(),
            arm["interval"][1].as_f64().unwrap(),
        ];
        assert!(low <= arm["rate"].as_f64().unwrap() && arm["rate"].as_f64().unwrap() <= high);
        if arm["arm"] != "holdout" {
            let p = arm["against_control"]["p_value"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&p));
        }
    }
}

#[test]
fn the_report_is_one_self_contained_file() {
    let dir = scratch("report");
    let report = dir.join("report.html");
    let out = nudge(&[
        "simulate",
        "--policy",
        "examples/retail",
        "--events",
        EVENTS,
        "--report",
        report.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // stderr is not a terminal here: no progress bar, only the closing line.
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("simulated ") && !err.contains('\r'),
        "{err}"
    );
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    for banned in ["<script", "<link", "@import", "url(", " src=", "href="] {
        assert!(!html.contains(banned), "the report uses `{banned}`");
    }
    // Every chart is an inline SVG with a size.
    let charts = html.matches("<svg width=\"").count();
    assert!(charts >= 6, "{charts} charts");
    for svg in html.split("<svg width=\"").skip(1) {
        let width: u32 = svg.split('"').next().unwrap().parse().unwrap();
        let height: u32 = svg
            .split("height=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(width > 0 && height > 0);
    }
    for section in [
        "Messages per channel per day",
        "Journeys",
        "Messages per customer per week",
        "Suppressions",
        "Deferrals by local hour",
        "Experiments",
        "95% interval",
        "p-value",
    ] {
        assert!(html.contains(section), "no {section}");
    }
}

#[test]
fn usage_errors() {
    let out = nudge(&[
        "simulate",
        "--policy",
        "examples/retail",
        "--events",
        EVENTS,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--report"));
    let out = nudge(&[
        "simulate",
        "--policy",
        "examples/retail",
        "--events",
        EVENTS,
        "--json",
        "-",
        "--tz",
        "Europe/Pariss",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Europe/Paris"));
    // An output that cannot be written is refused before the run.
    let out = nudge(&[
        "simulate",
        "--policy",
        "examples/retail",
        "--events",
        EVENTS,
        "--report",
        "/nonexistent/dir/report.html",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot write") && !err.contains("simulated"),
        "{err}"
    );
    let out = nudge(&[
        "simulate",
        "--policy",
        "examples/retail",
        "--events",
        EVENTS,
        "--json",
        "x.json",
        "--report",
        "x.json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let out = nudge(&[
        "simulate",
        "--policy",
        "examples/retail",
        "--events",
        EVENTS,
        "--json",
        EVENTS,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        std::fs::metadata(root().join(EVENTS)).unwrap().len() > 0,
        "the events were overwritten"
    );
}

/// Opens the report in Debian's headless Chromium (scripts/report-screenshot.sh):
/// nothing on the console, and the charts drawn (coloured pixels in the
/// screenshot, which tables and text do not have).
#[test]
fn the_report_renders_in_a_headless_browser() {
    if Command::new("chromium").arg("--version").output().is_err() {
        eprintln!(
            "\n*** SKIPPED the_report_renders_in_a_headless_browser: no `chromium` on PATH (Debian: apt-get install chromium; .ci/run installs it) ***\n"
        );
        return;
    }
    let dir = scratch("browser");
    let report = dir.join("report.html");
    let shot = dir.join("report.png");
    let out = nudge(&[
        "simulate",
        "--policy",
        "examples/retail",
        "--events",
        EVENTS,
        "--report",
        report.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let script = root().join("scripts/report-screenshot.sh");
    let run = Command::new(&script)
        .arg(&report)
        .arg(&shot)
        .output()
        .unwrap();
    if run.status.code() == Some(3) {
        eprintln!(
            "\n*** SKIPPED the_report_renders_in_a_headless_browser: chromium cannot run here:\n{} ***\n",
            String::from_utf8_lossy(&run.stderr)
        );
        return;
    }
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let decoder = png::Decoder::new(std::fs::File::open(&shot).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let pixels = &buf[..info.buffer_size()];
    let coloured = pixels
        .chunks(channels)
        .filter(|p| {
            let (max, min) = (p[..3].iter().max().unwrap(), p[..3].iter().min().unwrap());
            max - min > 80
        })
        .count();
    let total = pixels.len() / channels;
    assert!(info.width >= 1000 && info.height >= 2000);
    assert!(
        coloured * 200 > total,
        "only {coloured} of {total} pixels are coloured: were the charts drawn?"
    );
}

/// The retail set's transactional journeys, from the lowered program.
fn transactional_journeys() -> std::collections::HashSet<String> {
    let names: std::collections::HashSet<String> = retail::program(&[])
        .journeys
        .iter()
        .filter(|j| j.transactional)
        .map(|j| j.name.clone())
        .collect();
    assert!(!names.is_empty(), "the retail set has receipts");
    names
}
