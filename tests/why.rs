//! `nudge why --profile ID` (CLI.md 1.1): the timeline people read, as a
//! snapshot, and its refusals.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

use std::path::Path;
use std::process::{Command, Output};

fn why(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nudge"))
        .arg("why")
        .args([
            "--policy",
            "tests/run/explain_every_rule",
            "--events",
            "tests/run/explain_every_rule/events.ndjson",
        ])
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")))
        .env("NO_COLOR", "1")
        .output()
        .expect("nudge runs")
}

#[test]
fn a_profiles_timeline() {
    let out = why(&["--profile", "u1"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    // Not a terminal: no colour codes.
    assert!(!text.contains('\x1b'));
    insta::assert_snapshot!(text);
}

#[test]
fn one_journey_in_another_zone() {
    let out = why(&[
        "--profile",
        "u1",
        "--journey",
        "browse_promo",
        "--tz",
        "America/New_York",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("America/New_York"));
    assert!(text.contains("browse_promo: suppressed"));
    assert!(!text.contains("cart_recovery"), "{text}");
    // 21:40 UTC is 16:40 in New York.
    assert!(text.contains("(Mon 2026-11-02 16:40)"), "{text}");
}

#[test]
fn an_id_the_stream_never_mentions_gets_the_closest_ones() {
    let out = why(&["--profile", "u9"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("never mentions the profile `u9`"), "{err}");
    assert!(err.contains("`u1`"), "{err}");
}

#[test]
fn an_unknown_journey_is_a_usage_error() {
    let out = why(&["--profile", "u1", "--journey", "cart_recovry"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("did you mean `cart_recovery`?"), "{err}");
}
