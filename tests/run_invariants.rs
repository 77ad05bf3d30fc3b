//! Random event streams for `examples/retail`, checked by an invariant checker
//! written independently of the runtime: it replays the input to know each
//! profile's consent and addresses, and checks every decision against them.
//!
//! Invariants: no send without consent at its time; no cap exceeded; no send in
//! quiet hours; no send to an unreachable channel; no send after the instance's
//! exit; at most one active instance per profile and journey; (1.1) caps of
//! every scope (channels, category, journey); a conversion only inside its
//! entry's goal window, and at most one per entry.
//!
//! To make "at its time" exact, generated identify calls happen at odd seconds and
//! everything else (tracks, and so every timer) at even ones.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

#[path = "../benches/support/retail.rs"]
mod retail;

use chrono::{Datelike, NaiveTime, TimeZone, Timelike};
use chrono_tz::Tz;
use nudge::io::input::Reader;
use nudge::ir::{CapScope, CapWindow, Program, Quiet};
use nudge::runtime::{Decision, DecisionKind, Engine};
use proptest::prelude::*;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

const S: i64 = 1_000_000_000;

fn program() -> Arc<Program> {
    retail::program(&[])
}

/// Runs lines through the engine (with the JIT when `jit`); returns the decisions.
fn run_with(program: &Arc<Program>, lines: &[String], jit: bool) -> Vec<Decision> {
    let reader = Reader::new(Arc::clone(program));
    let mut engine = Engine::new(Arc::clone(program));
    if jit {
        engine.use_jit(std::rc::Rc::new(
            nudge::jit::Jit::compile(Arc::clone(program)).unwrap(),
        ));
    }
    let mut out = Vec::new();
    for line in lines {
        if let Ok(event) = reader.read(line) {
            engine.process(event, &mut out);
        }
    }
    engine.drain(&mut out);
    out
}

fn run(program: &Arc<Program>, lines: &[String]) -> Vec<Decision> {
    run_with(program, lines, false)
}

/// What the checker knows of a profile at some time, rebuilt from the input.
#[derive(Clone, Default)]
struct Known {
    traits: HashMap<String, Value>,
    consent: HashMap<String, bool>,
}

/// Identify calls by profile, in time order: (time, traits).
type History = HashMap<String, Vec<(i64, serde_json::Map<String, Value>)>>;

fn history(lines: &[String]) -> History {
    let mut h: History = HashMap::new();
    for line in lines {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if v["type"] != "identify" {
            continue;
        }
        let Some(user) = v["userId"].as_str() else {
            continue;
        };
        let Some(t) = v["timestamp"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        else {
            continue;
        };
        let traits = v["traits"].as_object().cloned().unwrap_or_default();
        h.entry(user.to_string())
            .or_default()
            .push((t.timestamp_nanos_opt().unwrap(), traits));
    }
    h
}

fn known_at(history: &History, profile: &str, t: i64) -> Known {
    let mut k = Known::default();
    for (at, traits) in history.get(profile).map(|v| v.as_slice()).unwrap_or(&[]) {
        if *at >= t {
            break;
        }
        for (key, value) in traits {
            if key == "consent" {
                for (topic, granted) in value.as_object().unwrap() {
                    k.consent.insert(topic.clone(), granted.as_bool().unwrap());
                }
            } else {
                k.traits.insert(key.clone(), value.clone());
            }
        }
    }
    k
}

fn tz_of(k: &Known) -> Tz {
    k.traits
        .get("timezone")
        .and_then(Value::as_str)
        .and_then(|z| z.parse().ok())
        .unwrap_or(chrono_tz::America::New_York)
}

fn quiet_at(tz: Tz, t: i64, q: Quiet) -> bool {
    let local = tz.timestamp_nanos(t);
    let m = local.hour() * 60 + local.minute();
    let (a, b) = (u32::from(q.from), u32::from(q.to));
    if a < b {
        a <= m && m < b
    } else if a > b {
        m >= a || m < b
    } else {
        false
    }
}

fn local_midnight(tz: Tz, t: i64, days_back: i64) -> i64 {
    let date = tz.timestamp_nanos(t).date_naive() - chrono::Duration::days(days_back);
    tz.from_local_datetime(&date.and_time(NaiveTime::MIN))
        .earliest()
        .unwrap()
        .timestamp_nanos_opt()
        .unwrap()
}

fn check(program: &Program, lines: &[String], decisions: &[Decision]) -> Result<(), String> {
    let history = history(lines);
    let by_name = |name: &str| program.journeys.iter().find(|j| j.name == name).unwrap();
    let mut sends: HashMap<String, Vec<(i64, usize, usize)>> = HashMap::new();
    let mut active: BTreeMap<(String, String), bool> = BTreeMap::new();
    // (1.1) Entries by (profile, journey), and the entries that converted.
    let mut entries: BTreeMap<(String, String), Vec<i64>> = BTreeMap::new();
    let mut converted: std::collections::BTreeSet<(String, String, i64)> = Default::default();
    for d in decisions {
        let key = (d.profile.to_string(), d.journey.to_string());
        if matches!(d.kind, DecisionKind::Entered) {
            entries.entry(key.clone()).or_default().push(d.at);
        }
        match &d.kind {
            DecisionKind::Converted { entered_at, .. } => {
                let journey = by_name(&d.journey);
                let window = journey.goals.iter().map(|g| g.within).max();
                let Some(window) = window else {
                    return Err(format!("{key:?} converted without a goal at {}", d.at));
                };
                if !entries.get(&key).is_some_and(|e| e.contains(entered_at)) {
                    return Err(format!(
                        "{key:?} converted for an entry at {entered_at} that never happened"
                    ));
                }
                if d.at < *entered_at || d.at - entered_at > window {
                    return Err(format!(
                        "{key:?} converted at {} outside the window of its entry at {entered_at}",
                        d.at
                    ));
                }
                if !converted.insert((key.0.clone(), key.1.clone(), *entered_at)) {
                    return Err(format!(
                        "{key:?} converted twice for its entry at {entered_at}"
                    ));
                }
            }
            DecisionKind::Entered if active.insert(key.clone(), true) == Some(true) => {
                return Err(format!("two active instances of {key:?} at {}", d.at));
            }
            DecisionKind::Exited { .. } | DecisionKind::Completed
                if active.insert(key.clone(), false) != Some(true) =>
            {
                return Err(format!("{key:?} ended without being active at {}", d.at));
            }
            DecisionKind::Send { channel, .. } => {
                if active.get(&key) != Some(&true) {
                    return Err(format!(
                        "send for {key:?} outside an active instance (after its exit?) at {}",
                        d.at
                    ));
                }
                let journey = by_name(&d.journey);
                let c = program
                    .channels
                    .iter()
                    .position(|c| *c.name == **channel)
                    .unwrap();
                let ch = &program.channels[c];
                let k = known_at(&history, &d.profile, d.at);
                let address = &program.attrs[ch.address_attr].name;
                if k.traits
                    .get(address)
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    return Err(format!(
                        "send to unreachable {channel} for {} at {}",
                        d.profile, d.at
                    ));
                }
                let granted = |topic: usize| {
                    let t = &program.consents[topic];
                    k.consent
                        .get(&t.name)
                        .copied()
                        .unwrap_or(t.granted_by_default)
                };
                if !ch.consent.is_none_or(granted)
                    || !journey.required_consents.iter().all(|t| granted(*t))
                {
                    return Err(format!(
                        "send on {channel} without consent for {} at {}",
                        d.profile, d.at
                    ));
                }
                let history = sends.entry(d.profile.to_string()).or_default();
                if !journey.transactional {
                    let tz = tz_of(&k);
                    for q in program.global_quiet.iter().chain(ch.quiet.iter()) {
                        if quiet_at(tz, d.at, *q) {
                            return Err(format!(
                                "send on {channel} in quiet hours for {} at {}",
                                d.profile, d.at
                            ));
                        }
                    }
                    let j = program
                        .journeys
                        .iter()
                        .position(|x| *x.name == *d.journey)
                        .unwrap();
                    for cap in program.caps.iter().chain(&journey.caps) {
                        // Which earlier sends this cap counts, if it covers this one.
                        let counted = |ch: usize, other: usize| match &cap.scope {
                            CapScope::All => true,
                            CapScope::Channels(list) => list.contains(&ch),
                            CapScope::Category(k) => program.journeys[other].category == Some(*k),
                            CapScope::Journey => other == j,
                        };
                        let covers = match &cap.scope {
                            CapScope::Channels(list) => list.contains(&c),
                            CapScope::Category(k) => journey.category == Some(*k),
                            CapScope::All | CapScope::Journey => true,
                        };
                        if !covers {
                            continue;
                        }
                        let since = |t: i64| match cap.window {
                            CapWindow::Rolling(w) => t > d.at - w,
                            CapWindow::Day => t >= local_midnight(tz, d.at, 0),
                            CapWindow::Week => {
                                let back = i64::from(
                                    tz.timestamp_nanos(d.at).weekday().num_days_from_monday(),
                                );
                                t >= local_midnight(tz, d.at, back)
                            }
                        };
                        let before = history
                            .iter()
                            .filter(|(t, ch, other)| since(*t) && counted(*ch, *other))
                            .count();
                        if before >= cap.count as usize {
                            return Err(format!(
                                "cap {cap:?} exceeded for {} at {}",
                                d.profile, d.at
                            ));
                        }
                    }
                    // Transactional sends are counted by no cap (LANGUAGE.md 1.1).
                    history.push((d.at, c, j));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

#[derive(Debug, Clone)]
enum Step {
    Identify { traits: Value },
    Track { event: &'static str, props: Value },
}

fn step() -> impl Strategy<Value = Step> {
    let zones = prop::sample::select(vec![
        "America/New_York",
        "Europe/Paris",
        "Asia/Tokyo",
        "Australia/Sydney",
        "UTC",
    ]);
    let categories = prop::sample::select(vec!["shoes", "knitwear", "denim"]);
    prop_oneof![
        (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>(), zones, any::<bool>()).prop_map(
            |(email, phone, push, sms_ok, email_ok, tz, gold)| Step::Identify {
                traits: json!({
                    "email": if email { json!("a@example.com") } else { Value::Null },
                    "phone": if phone { json!("+15550100") } else { Value::Null },
                    "push_token": if push { json!("tok") } else { Value::Null },
                    "timezone": tz,
                    "tier": if gold { "gold" } else { "standard" },
                    "consent": { "sms_marketing": sms_ok, "email_marketing": email_ok, "push_marketing": push },
                })
            }
        ),
        Just(Step::Track { event: "Signed Up", props: json!({ "method": "email" }) }),
        (1.0f64..400.0, categories.clone(), 1u32..6).prop_map(|(v, c, n)| Step::Track {
            event: "Cart Abandoned",
            props: json!({ "cart_id": "c", "cart_value": (v * 100.0).round() / 100.0, "category": c, "item_count": n }),
        }),
        (1.0f64..300.0, categories.clone()).prop_map(|(p, c)| Step::Track {
            event: "Product Viewed",
            props: json!({ "sku": "s", "category": c, "price": (p * 100.0).round() / 100.0 }),
        }),
        (1.0f64..500.0, categories).prop_map(|(t, c)| Step::Track {
            event: "Order Completed",
            props: json!({ "order_id": "o", "total": (t * 100.0).round() / 100.0, "category": c }),
        }),
        Just(Step::Track { event: "Application Opened", props: json!({}) }),
    ]
}

fn lines(steps: &[(u8, u32, Step)]) -> Vec<String> {
    let mut t: i64 = chrono::DateTime::parse_from_rfc3339("2026-11-02T00:00:00Z")
        .unwrap()
        .timestamp();
    let mut out = Vec::new();
    for (i, (profile, gap_minutes, step)) in steps.iter().enumerate() {
        t += i64::from(*gap_minutes) * 60 + 2;
        let stamp = |odd: bool| {
            let secs = if odd { t + 1 } else { t };
            chrono::DateTime::from_timestamp(secs, 0)
                .unwrap()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        };
        let user = format!("p{profile}");
        let line = match step {
            Step::Identify { traits } => {
                json!({ "type": "identify", "userId": user, "timestamp": stamp(true), "messageId": format!("m{i}"), "traits": traits })
            }
            Step::Track { event, props } => {
                json!({ "type": "track", "event": event, "userId": user, "timestamp": stamp(false), "messageId": format!("m{i}"), "properties": props })
            }
        };
        out.push(line.to_string());
    }
    out
}

/// Cases per property: the short run of CI by default; `NUDGE_FUZZ_CASES=N`
/// for a long run (README, "Development").
fn fuzz_cases(default: u32) -> u32 {
    std::env::var("NUDGE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: fuzz_cases(96), ..ProptestConfig::default() })]

    #[test]
    fn random_streams_keep_the_invariants(steps in prop::collection::vec((0u8..6, 0u32..600, step()), 1..160)) {
        let program = program();
        let input = lines(&steps);
        let decisions = run(&program, &input);
        if let Err(e) = check(&program, &input, &decisions) {
            prop_assert!(false, "{e}");
        }
        // The same input gives the same decisions, with either engine.
        prop_assert_eq!(&decisions, &run(&program, &input));
        prop_assert_eq!(&decisions, &run_with(&program, &input, true));
    }
}

#[test]
fn the_bundled_stream_keeps_the_invariants() {
    let program = program();
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/retail/events.ndjson"
    ))
    .unwrap();
    let input: Vec<String> = text.lines().map(str::to_string).collect();
    let decisions = run(&program, &input);
    assert!(
        decisions
            .iter()
            .any(|d| matches!(d.kind, DecisionKind::Send { .. }))
    );
    // The bundled stream has identify calls at the same second as tracks only
    // for new profiles, before any journey can send; the check is exact.
    check(&program, &input, &decisions).unwrap();
}

/// The checker does catch a violation.
#[test]
fn the_checker_catches_a_send_without_consent() {
    let program = program();
    let input = vec![
        json!({"type":"identify","userId":"p1","timestamp":"2026-11-02T10:00:01Z","messageId":"a","traits":{"phone":"+1","consent":{"sms_marketing":false}}}).to_string(),
    ];
    let forged = vec![
        Decision {
            at: 1_793_620_000 * S,
            profile: "p1".into(),
            journey: "cart_recovery".into(),
            kind: DecisionKind::Entered,
        },
        Decision {
            at: 1_793_620_060 * S,
            profile: "p1".into(),
            journey: "cart_recovery".into(),
            kind: DecisionKind::Send {
                template: "cart_last_chance".into(),
                channel: "sms".into(),
                message_id: "x".into(),
                content: vec![],
                arm: None,
                why: None,
            },
        },
    ];
    let err = check(&program, &input, &forged).unwrap_err();
    assert!(err.contains("without consent"), "{err}");
}

/// (1.1) The checker catches a conversion outside its window, and a second
/// conversion of one entry.
#[test]
fn the_checker_catches_bad_conversions() {
    let program = program();
    let entered = 1_793_620_000 * S;
    let decision = |at: i64, kind: DecisionKind| Decision {
        at,
        profile: "p1".into(),
        journey: "cart_recovery".into(),
        kind,
    };
    let converted = |at: i64| {
        decision(
            at,
            DecisionKind::Converted {
                event: "order_completed".into(),
                entered_at: entered,
                arm: None,
            },
        )
    };
    let week = 7 * 24 * 3600 * S;
    let late = vec![
        decision(entered, DecisionKind::Entered),
        converted(entered + week + 1),
    ];
    let err = check(&program, &[], &late).unwrap_err();
    assert!(err.contains("outside the window"), "{err}");
    let on_time = vec![
        decision(entered, DecisionKind::Entered),
        converted(entered + week),
    ];
    check(&program, &[], &on_time).unwrap();
    let twice = vec![
        decision(entered, DecisionKind::Entered),
        converted(entered + S),
        converted(entered + 2 * S),
    ];
    let err = check(&program, &[], &twice).unwrap_err();
    assert!(err.contains("converted twice"), "{err}");
}
