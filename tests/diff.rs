//! (1.1) `nudge diff` (CLI.md): two versions of a policy set over the same
//! events. The per-profile first differences are checked against an
//! independent computation from two `nudge run --drain` outputs.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

use std::collections::BTreeMap;
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

/// A copy of the retail set (without its tests) with `edit` applied to one file.
fn proposed(name: &str, file: &str, edit: impl Fn(&str) -> String) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nudge-diff-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let retail = root().join("examples/retail");
    for sub in ["", "journeys"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
        for entry in std::fs::read_dir(retail.join(sub)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "nudge") {
                let text = std::fs::read_to_string(&path).unwrap();
                let relative = path.strip_prefix(&retail).unwrap();
                let text = if relative == Path::new(file) {
                    edit(&text)
                } else {
                    text
                };
                std::fs::write(dir.join(relative), text).unwrap();
            }
        }
    }
    dir
}

const EVENTS: &str = "examples/retail/events.ndjson";

#[test]
fn the_same_set_makes_no_difference() {
    let copy = proposed("same", "", |t| t.to_string());
    let out = nudge(&[
        "diff",
        "--policy",
        "examples/retail",
        "--against",
        copy.to_str().unwrap(),
        "--events",
        EVENTS,
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("no difference"));
    // The same from standard input.
    let mut child = Command::new(env!("CARGO_BIN_EXE_nudge"))
        .current_dir(root())
        .args([
            "diff",
            "--policy",
            "examples/retail",
            "--against",
            copy.to_str().unwrap(),
            "--events",
            "-",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let events = std::fs::read(root().join(EVENTS)).unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &events).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("no difference"));
}

/// Raising the cart threshold: fewer cart recoveries, and each differing
/// profile's first differing decision is the one two separate runs give.
#[test]
fn a_change_is_reported_profile_by_profile() {
    let copy = proposed("threshold", "journeys/cart_recovery.nudge", |t| {
        t.replace("event.cart_value >= 30", "event.cart_value >= 60")
    });
    let copy = copy.to_str().unwrap();
    let out = nudge(&[
        "diff",
        "--policy",
        "examples/retail",
        "--against",
        copy,
        "--events",
        EVENTS,
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let entered = &doc["journeys"]["cart_recovery"]["entered"];
    assert!(
        entered["before"].as_u64() > entered["after"].as_u64(),
        "{entered}"
    );
    let unchanged = &doc["journeys"]["order_receipt"]["send"];
    assert_eq!(unchanged["before"], unchanged["after"]);

    // The oracle: both runs in full, decisions grouped by profile.
    let by_profile = |policy: &str| -> BTreeMap<String, Vec<serde_json::Value>> {
        let run = nudge(&["run", "--policy", policy, "--events", EVENTS, "--drain"]);
        assert!(run.status.success());
        let mut map: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
        for line in String::from_utf8_lossy(&run.stdout).lines() {
            let d: serde_json::Value = serde_json::from_str(line).unwrap();
            map.entry(d["profile"].as_str().unwrap().to_string())
                .or_default()
                .push(d);
        }
        map
    };
    let (before, after) = (by_profile("examples/retail"), by_profile(copy));
    let mut profiles: Vec<&String> = before.keys().chain(after.keys()).collect();
    profiles.sort();
    profiles.dedup();
    let mut expected = Vec::new();
    for p in profiles {
        let (b, a) = (
            before.get(p).cloned().unwrap_or_default(),
            after.get(p).cloned().unwrap_or_default(),
        );
        if b == a {
            continue;
        }
        let i = (0..b.len().max(a.len()))
            .find(|&i| b.get(i) != a.get(i))
            .unwrap();
        let null = serde_json::Value::Null;
        expected.push(serde_json::json!({
            "profile": p,
            "before": b.get(i).unwrap_or(&null),
            "after": a.get(i).unwrap_or(&null),
        }));
    }
    assert!(!expected.is_empty());
    assert_eq!(
        doc["profiles_differing"].as_u64().unwrap() as usize,
        expected.len()
    );
    expected.truncate(20);
    assert_eq!(doc["examples"], serde_json::Value::Array(expected));
}

#[test]
fn markdown_is_a_job_summary() {
    let copy = proposed("markdown", "journeys/cart_recovery.nudge", |t| {
        t.replace("event.cart_value >= 30", "event.cart_value >= 60")
    });
    let out = nudge(&[
        "diff",
        "--policy",
        "examples/retail",
        "--against",
        copy.to_str().unwrap(),
        "--events",
        EVENTS,
        "--format",
        "markdown",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("### nudge diff: "), "{text}");
    assert!(text.contains("| journey | kind | channel | before | after | change |"));
    assert!(text.contains("| `cart_recovery` | entered |"), "{text}");
    assert!(text.contains("<details>"));
}

#[test]
fn a_broken_set_is_a_usage_error() {
    let copy = proposed("broken", "journeys/cart_recovery.nudge", |t| {
        t.replace("when cart_abandoned", "when cart_abandonned")
    });
    let out = nudge(&[
        "diff",
        "--policy",
        "examples/retail",
        "--against",
        copy.to_str().unwrap(),
        "--events",
        EVENTS,
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cart_abandonned") && err.contains("proposed (--against)"),
        "{err}"
    );
}
