//! (1.1) Volume bounds (LANGUAGE.md §9a): `nudge check --bounds` on sets whose
//! bounds are computed by hand, and a property test that the runtime never
//! sends more than the proven bound in any 7 rolling days, for random cap sets
//! and streams.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

use nudge::io::input::Reader;
use nudge::runtime::{Decision, DecisionKind, Engine};
use proptest::prelude::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn nudge(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nudge"))
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .expect("the nudge binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const SCHEMA: &str = "tests/bounds/schema.nudge";

/// Set a: the hand computation is in tests/bounds/a/limits.nudge.
#[test]
fn bounds_of_a_set_with_an_unbounded_channel() {
    let out = nudge(&[
        "check",
        SCHEMA,
        "tests/bounds/a",
        "--bounds",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        doc["bounds"],
        json!({
            // No cap covers every channel, and the inbox is unbounded.
            "all": null,
            "per_channel": {
                // `cap 4 per 7d on email, push` covers both journeys' email.
                "email": 4,
                "inbox": null,
                // Both journeys' push: the shared cap (4) beats the sum
                // (promotions' 4 through the shared cap + winback's own 1 = 5).
                "push": 4,
                // Only transactional sends: none from marketing journeys.
                "receipts": 0,
                // `offer` has an SMS block, but `promo` never sends it there.
                "sms": 9,
            },
            "unbounded": [{"journey": "newsletter", "channel": "inbox"}],
        })
    );
    let codes: Vec<&str> = doc["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["L412"]);
    // A pull-request check: the unbounded channel fails it.
    let denied = nudge(&["check", SCHEMA, "tests/bounds/a", "--deny-warnings"]);
    assert_eq!(denied.status.code(), Some(1), "{}", stdout(&denied));
}

/// Set b: every send capped; `all` is the sum of the channels' bounds.
#[test]
fn bounds_of_a_fully_capped_set() {
    let out = nudge(&[
        "check",
        SCHEMA,
        "tests/bounds/b",
        "--bounds",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        doc["bounds"],
        json!({
            // email + inbox + push + receipts (none) + sms.
            "all": 20,
            "per_channel": {"email": 4, "inbox": 3, "push": 4, "receipts": 0, "sms": 9},
            "unbounded": [],
        })
    );
    assert_eq!(doc["warnings"], 0);
    let human = nudge(&["check", SCHEMA, "tests/bounds/b", "--bounds"]);
    insta::assert_snapshot!(stdout(&human));
    let sarif = nudge(&[
        "check",
        SCHEMA,
        "tests/bounds/b",
        "--bounds",
        "--format",
        "sarif",
    ]);
    let sarif: Value = serde_json::from_slice(&sarif.stdout).unwrap();
    assert_eq!(sarif["runs"][0]["properties"]["bounds"], doc["bounds"]);
}

/// Without `--bounds` the JSON document is the one of CLI.md; with errors the
/// bounds are not computed.
#[test]
fn bounds_only_when_asked_and_only_for_a_clean_set() {
    let out = nudge(&["check", SCHEMA, "tests/bounds/b", "--format", "json"]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc.get("bounds").is_none(), "{doc}");
    let broken = nudge(&[
        "check",
        "tests/cli/three_broken.nudge",
        "--bounds",
        "--format",
        "json",
    ]);
    assert_eq!(broken.status.code(), Some(1));
    let doc: Value = serde_json::from_slice(&broken.stdout).unwrap();
    assert_eq!(doc["bounds"], Value::Null);
    let human = nudge(&["check", "tests/cli/three_broken.nudge", "--bounds"]);
    assert!(
        stdout(&human).contains("bounds: not computed, the policy set has errors"),
        "{}",
        stdout(&human)
    );
}

// ------------------------------------------------------------ the property

const CHANNELS: [&str; 3] = ["email", "sms", "push"];
const CATEGORIES: [&str; 2] = ["promotions", "newsletters"];
const ZONES: [&str; 4] = [
    "UTC",
    "Europe/London",
    "America/New_York",
    "Australia/Lord_Howe",
];

#[derive(Debug, Clone)]
enum Scope {
    All,
    Channels(Vec<usize>),
    Category(usize),
}

#[derive(Debug, Clone)]
struct CapSpec {
    count: u32,
    /// A rolling window in hours, or `day` / `week`.
    window: String,
    scope: Scope,
}

#[derive(Debug, Clone)]
struct JourneySpec {
    category: Option<usize>,
    own_cap: Option<(u32, String)>,
    /// Channel indices of each send (a fallback list).
    sends: Vec<Vec<usize>>,
    trigger: usize,
    priority: u8,
}

fn window() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![1u32, 6, 20, 24, 36, 48, 72, 168, 240])
            .prop_map(|h| format!("{h}h")),
        Just("day".to_string()),
        Just("week".to_string()),
    ]
}

fn channel_list() -> impl Strategy<Value = Vec<usize>> {
    prop::sample::subsequence(vec![0usize, 1, 2], 1..=3).prop_shuffle()
}

fn cap() -> impl Strategy<Value = CapSpec> {
    let scope = prop_oneof![
        Just(Scope::All),
        channel_list().prop_map(Scope::Channels),
        (0usize..2).prop_map(Scope::Category),
    ];
    (1u32..=3, window(), scope).prop_map(|(count, window, scope)| CapSpec {
        count,
        window,
        scope,
    })
}

fn journey() -> impl Strategy<Value = JourneySpec> {
    (
        prop::option::of(0usize..2),
        prop::option::of((1u32..=2, window())),
        prop::collection::vec(channel_list(), 1..=2),
        0usize..2,
        0u8..=100,
    )
        .prop_map(
            |(category, own_cap, sends, trigger, priority)| JourneySpec {
                category,
                own_cap,
                sends,
                trigger,
                priority,
            },
        )
}

fn policy(caps: &[CapSpec], journeys: &[JourneySpec]) -> String {
    let mut p = String::from(
        "consent email_marketing opt_out\nconsent sms_marketing opt_out\nconsent push_marketing opt_out\n\
         profile { email: string?, phone: string?, push_token: string?, timezone: timezone = \"UTC\" }\n\
         event e0 { n: number }\nevent e1 { n: number }\n\
         category promotions\ncategory newsletters\n\
         channel email { address profile.email consent email_marketing }\n\
         channel sms { address profile.phone consent sms_marketing }\n\
         channel push { address profile.push_token consent push_marketing }\n\
         template t { email { subject: \"s\" } sms { text: \"s\" } push { title: \"s\" } }\n",
    );
    p.push_str("limits {\n");
    for c in caps {
        let on = match &c.scope {
            Scope::All => String::new(),
            Scope::Channels(list) => {
                let names: Vec<&str> = list.iter().map(|i| CHANNELS[*i]).collect();
                format!(" on {}", names.join(", "))
            }
            Scope::Category(k) => format!(" on category {}", CATEGORIES[*k]),
        };
        p.push_str(&format!("  cap {} per {}{on}\n", c.count, c.window));
    }
    p.push_str("}\n");
    for (i, j) in journeys.iter().enumerate() {
        p.push_str(&format!(
            "journey j{i} {{\n  owner \"qa\"\n  priority {}\n  when e{}\n  reenter after 1h\n",
            j.priority, j.trigger
        ));
        if let Some(k) = j.category {
            p.push_str(&format!("  category {}\n", CATEGORIES[k]));
        }
        if let Some((n, w)) = &j.own_cap {
            p.push_str(&format!("  cap {n} per {w}\n"));
        }
        for (s, channels) in j.sends.iter().enumerate() {
            if s > 0 {
                p.push_str("  wait 30m\n");
            }
            let names: Vec<&str> = channels.iter().map(|c| CHANNELS[*c]).collect();
            p.push_str(&format!("  send t via {}\n", names.join(", ")));
        }
        p.push_str("}\n");
    }
    p
}

fn rfc3339(nanos: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(nanos)
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Per profile: an identify with every address and a zone, then tracks at random
/// gaps from 10 minutes to 20 hours, from just before the spring-forward of
/// 2026 (so calendar caps meet a 23-hour day); a few arrive late.
fn stream() -> impl Strategy<Value = Vec<String>> {
    let profile = (
        0usize..ZONES.len(),
        prop::collection::vec((1i64..=120, 0usize..2, any::<bool>()), 20..90),
    );
    prop::collection::vec(profile, 1..=3).prop_map(|profiles| {
        let start = chrono::DateTime::parse_from_rfc3339("2026-03-26T00:00:00Z")
            .unwrap()
            .timestamp_nanos_opt()
            .unwrap();
        let mut lines: Vec<(i64, String)> = Vec::new();
        for (p, (zone, events)) in profiles.into_iter().enumerate() {
            let user = format!("u{p}");
            lines.push((
                start,
                json!({"type": "identify", "userId": user, "timestamp": rfc3339(start),
                       "traits": {"email": "a@example.com", "phone": "+15550100", "push_token": "tok",
                                  "timezone": ZONES[zone]}})
                .to_string(),
            ));
            let mut t = start;
            for (gap, event, late) in events {
                t += gap * 10 * 60 * 1_000_000_000;
                // A late event is stamped up to 5 hours before its place in the stream.
                let stamp = if late { t - 5 * 3600 * 1_000_000_000 } else { t };
                let stamp = stamp.max(start + 1_000_000_000);
                lines.push((
                    t,
                    json!({"type": "track", "event": format!("e{event}"), "userId": user,
                           "timestamp": rfc3339(stamp), "properties": {"n": 1}})
                    .to_string(),
                ));
            }
        }
        // Profiles interleaved by arrival order.
        lines.sort_by_key(|(t, _)| *t);
        lines.into_iter().map(|(_, l)| l).collect()
    })
}

fn sends(program: &Arc<nudge::ir::Program>, lines: &[String]) -> Vec<Decision> {
    let reader = Reader::new(Arc::clone(program));
    let mut engine = Engine::new(Arc::clone(program));
    let mut out = Vec::new();
    for line in lines {
        if let Ok(event) = reader.read(line) {
            engine.process(event, &mut out);
        }
    }
    engine.drain(&mut out);
    out.retain(|d| matches!(d.kind, DecisionKind::Send { .. }));
    out
}

/// The most of `times` (sorted) in any window `(t - 7d, t]`.
fn most_in_seven_days(times: &[i64]) -> u64 {
    const WEEK: i64 = 7 * 86_400 * 1_000_000_000;
    let mut most = 0;
    let mut start = 0;
    for end in 0..times.len() {
        while times[end] - times[start] >= WEEK {
            start += 1;
        }
        most = most.max((end - start + 1) as u64);
    }
    most
}

fn cases() -> u32 {
    std::env::var("NUDGE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn the_runtime_never_exceeds_the_proven_bound(
        caps in prop::collection::vec(cap(), 0..=4),
        journeys in prop::collection::vec(journey(), 1..=4),
        lines in stream(),
    ) {
        let text = policy(&caps, &journeys);
        let mut sources = nudge::Sources::new();
        sources.add("generated.nudge", text.clone());
        let analysis = nudge::analyze(&sources);
        prop_assert!(!analysis.has_errors(), "{text}\n{:?}", analysis.diagnostics);
        let bounds = nudge::check::bounds::bounds(&sources, &analysis.modules);
        let program = Arc::new(nudge::ir::lower(&analysis.modules).unwrap());
        let decisions = sends(&program, &lines);
        // Send times by profile, over all channels and per channel.
        let mut by_profile: BTreeMap<String, BTreeMap<String, Vec<i64>>> = BTreeMap::new();
        for d in &decisions {
            let DecisionKind::Send { channel, .. } = &d.kind else { continue };
            let per = by_profile.entry(d.profile.as_str().to_string()).or_default();
            per.entry("*".into()).or_default().push(d.at);
            per.entry(channel.to_string()).or_default().push(d.at);
        }
        for (profile, per) in &by_profile {
            for (channel, times) in per {
                let mut times = times.clone();
                times.sort_unstable();
                let bound = if channel == "*" { &bounds.all } else { bounds.channel(channel).unwrap() };
                let Some(max) = bound.max else { continue };
                let seen = most_in_seven_days(&times);
                prop_assert!(
                    seen <= max,
                    "{profile} received {seen} on {channel} in 7 days, bound {max}\n{text}"
                );
            }
        }
    }
}

/// The sliding window of the property counts `(t - 7d, t]`.
#[test]
fn the_seven_day_window_is_half_open() {
    const D: i64 = 86_400 * 1_000_000_000;
    assert_eq!(most_in_seven_days(&[0, 7 * D]), 1);
    assert_eq!(most_in_seven_days(&[0, 7 * D - 1]), 2);
    assert_eq!(most_in_seven_days(&[0, D, 2 * D, 6 * D, 6 * D, 13 * D]), 5);
    assert_eq!(most_in_seven_days(&[]), 0);
}
