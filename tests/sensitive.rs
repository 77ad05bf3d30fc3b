//! (1.1) Sensitive attributes (LANGUAGE.md §9a): their values are never written
//! outside decisions' `content`. One test per path a value could leak through:
//! dead letters (JSON lines, lines that are not JSON, JSON Pointers,
//! `context.traits`), their reasons, `run --explain`, `--stats`, `nudge why`,
//! and the checker's JSON and SARIF reports of a default value.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every sensitive value in tests/sensitive/events.ndjson (addresses, the
/// last four digits, accounts read by pointer, zones, a wrongly typed value).
const SECRETS: &[&str] = &[
    "+15550199",
    "+15550123",
    "+15550777",
    "4821",
    "1111",
    "9876",
    "5555",
    "7777",
    "ACCT-31337",
    "ACCT-42424",
    "America/Chicago",
    "Chicago",
    "Olympus_SECRET",
];

fn assert_no_secret(what: &str, output: &str) {
    for secret in SECRETS {
        assert!(
            !output.contains(secret),
            "{what} shows the sensitive value {secret}:\n{output}"
        );
    }
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nudge-sensitive-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

const POLICY: &str = "tests/sensitive";
const EVENTS: &str = "tests/sensitive/events.ndjson";

/// Decisions without their `content`: what may not hold a sensitive value.
fn without_content(decisions: &str) -> String {
    decisions
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("content");
            v.to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn dead_letters_mask_sensitive_values_and_keep_the_rest() {
    let dead = tmp("dead.ndjson");
    let out = nudge(&[
        "run",
        "--policy",
        POLICY,
        "--events",
        EVENTS,
        "--dead-letter",
        dead.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let letters = std::fs::read_to_string(&dead).unwrap();
    assert_no_secret("a dead letter", &letters);
    let letters: Vec<Value> = letters
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        letters
            .iter()
            .map(|l| l["line"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [4, 5, 6, 7]
    );
    // A JSON line is still JSON, with everything but the sensitive values.
    let raw: Value = serde_json::from_str(letters[0]["raw"].as_str().unwrap()).unwrap();
    assert_eq!(raw["userId"], "u2");
    assert_eq!(raw["traits"]["Home Zone"], "***");
    assert_eq!(raw["traits"]["ssn_last4"], "***");
    // The reason names the attribute, not the zone it was given.
    assert_eq!(
        letters[0]["reason"],
        "trait `timezone` names an unknown time zone (the value is sensitive)"
    );
    // A wrongly typed value is masked too.
    let raw: Value = serde_json::from_str(letters[1]["raw"].as_str().unwrap()).unwrap();
    assert_eq!(raw["traits"]["ssn_last4"], "***");
    assert_eq!(raw["traits"]["phone"], "***");
    // A line that is not JSON is masked after each sensitive member's name.
    let cut = letters[2]["raw"].as_str().unwrap();
    assert!(
        cut.starts_with("{\"type\":\"identify\",\"userId\":\"u4\""),
        "{cut}"
    );
    assert!(cut.contains("\"ssn_last4\":\"***\""), "{cut}");
    // `context.traits`, and the attribute read through a JSON Pointer.
    let raw: Value = serde_json::from_str(letters[3]["raw"].as_str().unwrap()).unwrap();
    assert_eq!(raw["context"]["traits"]["account"], "***");
    assert_eq!(raw["context"]["traits"]["ssn_last4"], "***");
    assert_eq!(raw["properties"]["days_left"], 8);
}

#[test]
fn reasons_on_stderr_explanations_and_stats_name_attributes_only() {
    let out = nudge(&[
        "run",
        "--policy",
        POLICY,
        "--events",
        EVENTS,
        "--explain",
        "--stats",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // Without --dead-letter, rejected lines are reported on stderr.
    let stderr = text(&out.stderr);
    assert!(stderr.contains("rejected line 4"), "{stderr}");
    assert!(stderr.contains("dead letters       4"), "{stderr}");
    assert_no_secret("stderr", &stderr);
    let decisions = text(&out.stdout);
    // The content of a private channel may show the value: that is its point.
    assert!(decisions.contains("Your card ending 4821"), "{decisions}");
    let rest = without_content(&decisions);
    assert!(
        rest.contains("in the profile's time zone (`timezone`, sensitive)"),
        "{rest}"
    );
    assert_no_secret("a decision outside its content", &rest);
}

#[test]
fn why_names_attributes_and_hides_a_sensitive_zone() {
    let out = nudge(&[
        "why",
        "--policy",
        POLICY,
        "--events",
        EVENTS,
        "--profile",
        "u1",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let story = text(&out.stdout);
    assert!(
        story.contains("identify sets email, phone, ssn_last4"),
        "{story}"
    );
    assert_no_secret("nudge why", &story);
    // Rejected lines of the profile are told with their (masked) reasons.
    let u2 = nudge(&[
        "why",
        "--policy",
        POLICY,
        "--events",
        EVENTS,
        "--profile",
        "u2",
    ]);
    let story = text(&u2.stdout);
    assert!(story.contains("line 4 rejected"), "{story}");
    assert_no_secret("nudge why", &story);
}

#[test]
fn diagnostics_of_a_sensitive_default_do_not_repeat_it() {
    let policy = tmp("default.nudge");
    std::fs::write(
        &policy,
        "profile { timezone: timezone sensitive = \"America/Chicago_Olympus_SECRET\" }\n",
    )
    .unwrap();
    let path = policy.to_str().unwrap();
    for format in ["json", "sarif", "github"] {
        let out = nudge(&["check", path, "--format", format]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
        let report = text(&out.stdout);
        assert!(report.contains("T209"), "{report}");
        assert!(
            report.contains(
                "the default of the sensitive attribute `timezone` is not an IANA time zone"
            ),
            "{report}"
        );
        assert_no_secret(format, &report);
    }
}
