//! Differential testing of the JIT against the interpreter: random well-typed
//! conditions (every operator, optionals with `??` and `== none`, lists and `in`,
//! durations, times and (1.1) times of day in several zones, string functions,
//! aggregates with and without (1.1) `previous`, `best_time` and the built-in
//! `sent`) over random profile values and event histories; the two evaluators
//! must agree on every one.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

use nudge::interp::{self, Env};
use nudge::ir::Value;
use nudge::jit::Jit;
use nudge::runtime::Profile;
use proptest::prelude::*;
use std::cell::Cell;
use std::sync::Arc;

const SCHEMA: &str = r#"
profile {
  n: number = 0
  m: number?
  s: string = ""
  o: string?
  b: bool = false
  d: duration = 0s
  t: time = 2026-01-01T00:00:00Z
  tags: list<string> = []
  w: time_of_day = 09:00
  wo: time_of_day?
}
event e { x: number }
"#;

fn leaf<T: Clone + std::fmt::Debug + 'static>(items: Vec<T>) -> impl Strategy<Value = T> + Clone {
    prop::sample::select(items)
}

fn number() -> impl Strategy<Value = String> {
    let base = prop_oneof![
        leaf(vec!["0", "1", "2.5", "-3", "100", "0.1"]).prop_map(str::to_string),
        leaf(vec![
            "profile.n",
            "(profile.m ?? 7)",
            "len(profile.s)",
            "event.x",
            "count(e within 1h)",
            "count(previous e within 1d)",
            "sum(previous e.x within 7d)",
            "count(sent where event.channel == \"c\" within 2d)"
        ])
        .prop_map(str::to_string),
    ];
    base.prop_recursive(3, 16, 2, |inner| {
        prop_oneof![
            (inner.clone(), leaf(vec!["+", "-", "*", "/"]), inner.clone())
                .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
            inner.prop_map(|a| format!("-({a})")),
        ]
    })
}

fn duration() -> impl Strategy<Value = String> {
    let base = leaf(vec![
        "1h",
        "30m",
        "profile.d",
        "2d",
        "(since(previous e) ?? 1h)",
        "(since(e where event.x > 0) ?? 0s)",
    ])
    .prop_map(str::to_string);
    base.prop_recursive(2, 8, 2, |inner| {
        prop_oneof![
            (inner.clone(), leaf(vec!["+", "-"]), inner.clone())
                .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
            (number(), inner.clone()).prop_map(|(n, d)| format!("({n} * {d})")),
            (inner, number()).prop_map(|(d, n)| format!("({d} / {n})")),
        ]
    })
}

fn time() -> impl Strategy<Value = String> {
    prop_oneof![
        leaf(vec!["now", "profile.t", "2026-06-01T12:00:00Z"]).prop_map(str::to_string),
        (
            leaf(vec!["now", "profile.t"]),
            leaf(vec!["+", "-"]),
            duration()
        )
            .prop_map(|(t, op, d)| format!("({t} {op} {d})")),
    ]
}

fn string() -> impl Strategy<Value = String> {
    leaf(vec![
        "\"a\"",
        "\"\"",
        "profile.s",
        "(profile.o ?? \"x\")",
        "lower(profile.s)",
        "\"Ab\"",
    ])
    .prop_map(str::to_string)
}

/// (1.1) Times of day: literals, attributes, and the local time of `now`.
fn time_of_day() -> impl Strategy<Value = String> {
    leaf(vec![
        "09:00",
        "00:00",
        "23:59",
        "12:30",
        "profile.w",
        "(profile.wo ?? 18:45)",
        "local_time(now)",
        "(best_time(e within 30d) ?? 10:00)",
    ])
    .prop_map(str::to_string)
}

fn condition() -> impl Strategy<Value = String> {
    let cmp = leaf(vec!["==", "!=", "<", "<=", ">", ">="]);
    let base = prop_oneof![
        leaf(vec![
            "true",
            "false",
            "profile.b",
            "profile.m == none",
            "profile.o != none"
        ])
        .prop_map(str::to_string),
        (number(), cmp.clone(), number()).prop_map(|(a, op, b)| format!("{a} {op} {b}")),
        (duration(), cmp.clone(), duration()).prop_map(|(a, op, b)| format!("{a} {op} {b}")),
        (time(), cmp.clone(), time()).prop_map(|(a, op, b)| format!("{a} {op} {b}")),
        (string(), cmp.clone(), string()).prop_map(|(a, op, b)| format!("{a} {op} {b}")),
        (time_of_day(), cmp, time_of_day()).prop_map(|(a, op, b)| format!("{a} {op} {b}")),
        leaf(vec!["profile.wo == none", "profile.wo != none"]).prop_map(str::to_string),
        string().prop_map(|s| format!("{s} in [\"a\", \"b\", \"\"]")),
        string().prop_map(|s| format!("{s} in profile.tags")),
        number().prop_map(|n| format!("{n} in [0, 1, 2.5]")),
        (string(), string()).prop_map(|(a, b)| format!("starts_with({a}, {b})")),
        (string(), string()).prop_map(|(a, b)| format!("contains({a}, {b})")),
        leaf(vec!["local_hour(now) >= 9", "weekday(now) == \"mon\""]).prop_map(str::to_string),
    ];
    base.prop_recursive(3, 24, 2, |inner| {
        prop_oneof![
            (inner.clone(), leaf(vec!["and", "or"]), inner.clone())
                .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
            inner.prop_map(|a| format!("not ({a})")),
        ]
    })
}

fn profile_values() -> impl Strategy<Value = Vec<Value>> {
    (
        prop_oneof![Just(0.0), Just(1.0), Just(-2.5), 0.0f64..1000.0],
        prop::option::of(prop_oneof![Just(0.0), -50.0f64..50.0]),
        leaf(vec!["", "a", "Ab", "abc"]),
        prop::option::of(leaf(vec!["a", "x", ""])),
        any::<bool>(),
        prop_oneof![Just(0i64), 0i64..(3 * 86_400)],
        -86_400i64 * 400..86_400 * 400,
        prop::collection::vec(leaf(vec!["a", "b", "Ab"]), 0..3),
        (0i64..1440, prop::option::of(0i64..1440)),
    )
        .prop_map(|(n, m, s, o, b, d, t, tags, (w, wo))| {
            vec![
                Value::Number(n),
                m.map_or(Value::None, Value::Number),
                Value::Str(s.into()),
                o.map_or(Value::None, |o| Value::Str(o.into())),
                Value::Bool(b),
                Value::Duration(d * 1_000_000_000),
                Value::Time(1_767_225_600_000_000_000 + t * 1_000_000_000),
                Value::List(
                    tags.into_iter()
                        .map(|t| Value::Str(t.into()))
                        .collect::<Vec<_>>()
                        .into(),
                ),
                Value::Duration(w * nudge::ir::NANOS_PER_MINUTE),
                wo.map_or(Value::None, |m| {
                    Value::Duration(m * nudge::ir::NANOS_PER_MINUTE)
                }),
            ]
        })
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
    #![proptest_config(ProptestConfig { cases: fuzz_cases(2_000), ..ProptestConfig::default() })]

    #[test]
    fn jit_agrees_with_the_interpreter(cond in condition(), attrs in profile_values(), x in prop_oneof![Just(0.0), -10.0f64..10.0], now in 0i64..(86_400 * 365), zone in leaf(vec![chrono_tz::Tz::UTC, chrono_tz::Tz::Europe__Paris, chrono_tz::Tz::America__New_York, chrono_tz::Tz::Asia__Kolkata]), history in prop::collection::vec((0i64..(86_400 * 40), -5.0f64..5.0), 0..8)) {
        let text = format!("{SCHEMA}\nsegment s = {cond}\njourney j {{\n  owner \"qa\"\n  when e where s\n}}\n");
        let mut sources = nudge::Sources::new();
        sources.add("diff.nudge", text);
        let analysis = nudge::analyze(&sources);
        // Constant division by zero is a checker error: such inputs are not programs.
        prop_assume!(!analysis.has_errors());
        let program = Arc::new(nudge::ir::lower(&analysis.modules).unwrap());
        let jit = Jit::compile(Arc::clone(&program)).unwrap();
        let mut profile = Profile::new(&program);
        profile.attrs = attrs;
        profile.tz = zone;
        let now_nanos = 1_767_225_600_000_000_000 + now * 1_000_000_000;
        // Earlier events in every aggregate, at most 40 days back.
        for (state, def) in profile.aggregates.iter_mut().zip(&program.aggregates) {
            for &(ago, value) in &history {
                let value = match def.kind {
                    nudge::ir::AggregateKind::Sum(_) => value,
                    _ => 1.0,
                };
                state.record(now_nanos - ago * 1_000_000_000, value);
            }
        }
        let event = [Value::Number(x)];
        let (c1, c2) = (Cell::new(0), Cell::new(0));
        let condition = program.journeys[0].condition.as_ref().unwrap();
        prop_assert!(jit.is_compiled(condition));
        let env = |div0| Env {
            program: &program,
            attrs: &profile.attrs,
            event: &event,
            trigger: &[],
            now: now_nanos,
            tz: zone,
            aggregates: &profile,
            divisions_by_zero: div0,
        };
        let expected = interp::holds(condition, &env(&c1));
        let got = jit.holds(condition, &env(&c2));
        prop_assert_eq!(expected, got, "{}", cond);
        prop_assert_eq!(c1.get(), c2.get(), "division-by-zero counts differ for {}", cond);
    }
}
