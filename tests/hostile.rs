//! Hostile inputs and environments (the reliability issue): each test is a
//! defect found by an adversary, and fails on the version that had it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn nudge(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nudge"))
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .expect("nudge runs")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nudge-hostile-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn no_panic(out: &Output) {
    let err = text(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_diagnostic_past_column_65535_is_reported_without_a_snippet() {
    let dir = scratch("wide");
    let file = dir.join("wide.nudge");
    std::fs::write(&file, format!("{}journey\n", " ".repeat(70_000))).unwrap();
    for format in ["human", "json", "github"] {
        let out = nudge(&["check", "--format", format, file.to_str().unwrap()]);
        no_panic(&out);
        assert_eq!(out.status.code(), Some(1), "{format}");
    }
    let out = nudge(&["check", file.to_str().unwrap()]);
    assert!(
        text(&out.stdout).contains(":1:70008"),
        "{}",
        text(&out.stdout)
    );
    let out = nudge(&["fmt", "--check", file.to_str().unwrap()]);
    no_panic(&out);
}

#[test]
fn a_huge_time_zone_name_gets_no_suggestion_and_no_quadratic_search() {
    // Did-you-mean looks at names of at most 64 characters, and skips
    // candidates whose length is too far off: this returns at once.
    let long = "A".repeat(100_000);
    assert_eq!(
        nudge::diagnostic::did_you_mean(&long, ["Europe/Paris", "UTC"]),
        None
    );
    assert_eq!(
        nudge::diagnostic::did_you_mean("Europe/Pariss", ["Europe/Paris", "UTC"]).as_deref(),
        Some("did you mean `Europe/Paris`?")
    );
    let dir = scratch("zone");
    let file = dir.join("zone.nudge");
    std::fs::write(
        &file,
        format!("profile {{ timezone: timezone = \"{long}\" }}\n"),
    )
    .unwrap();
    let out = nudge(&["check", "--format", "json", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["diagnostics"][0]["code"], "T209");
}

#[test]
fn durations_run_cannot_hold_are_refused_by_check() {
    let dir = scratch("durations");
    for (name, text) in [
        (
            "wait.nudge",
            "journey j {\n  owner \"x\"\n  when e\n  wait 15251w\n}\nevent e\n",
        ),
        (
            "reenter.nudge",
            "journey j {\n  owner \"x\"\n  when e\n  reenter after 9223372036854775807s\n  stop\n}\nevent e\n",
        ),
    ] {
        let file = dir.join(name);
        std::fs::write(&file, text).unwrap();
        let out = nudge(&["check", "--format", "json", file.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{name}: {}", text_of(&out));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["diagnostics"][0]["code"], "S004", "{name}");
    }
    // Just under the ceiling is fine for both `check` and `run`.
    let file = dir.join("ok.nudge");
    std::fs::write(
        &file,
        "journey j {\n  owner \"x\"\n  when e\n  wait 5200w\n}\nevent e\n",
    )
    .unwrap();
    let out = nudge(&["check", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text_of(&out));
    let events = dir.join("events.ndjson");
    std::fs::write(
        &events,
        "{\"type\":\"track\",\"event\":\"e\",\"userId\":\"u\",\"timestamp\":\"2026-01-01T00:00:00Z\"}\n",
    )
    .unwrap();
    let out = nudge(&[
        "run",
        "--policy",
        file.to_str().unwrap(),
        "--events",
        events.to_str().unwrap(),
        "--drain",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text_of(&out));
    assert!(text(&out.stdout).contains("2125-"), "{}", text(&out.stdout));
}

fn text_of(out: &Output) -> String {
    format!("{}{}", text(&out.stdout), text(&out.stderr))
}

/// Runs the bundled policy over `lines`, dead letters to stdout's neighbour.
fn dead_letters_of(lines: &str) -> Vec<serde_json::Value> {
    let dir = scratch(&format!("dl-{}", lines.len()));
    let events = dir.join("events.ndjson");
    std::fs::write(&events, lines).unwrap();
    let dead = dir.join("dead.ndjson");
    let out = nudge(&[
        "run",
        "--policy",
        "examples/retail",
        "--events",
        events.to_str().unwrap(),
        "--dead-letter",
        dead.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text_of(&out));
    std::fs::read_to_string(&dead)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn input_lines_get_the_right_reason() {
    let letters = dead_letters_of(concat!(
        "\u{feff}{\"type\":\"identify\",\"userId\":\"u1\",\"timestamp\":\"2026-11-02T08:00:00Z\",\"traits\":{}}\n",
        "{\"type\":\"identify\",\"userId\":{\"id\":1},\"timestamp\":\"2026-11-02T08:00:00Z\"}\n",
        "{\"type\":\"identify\",\"userId\":\"u1\",\"timestamp\":\"2300-01-01T00:00:00Z\"}\n",
        "{\"type\":\"identify\",\"userId\":\"u1\",\"timestamp\":\"yesterday\"}\n",
        "{\"userId\":\"zz\",\"timestamp\":\"2030-01-01T00:00:00Z\"}\n",
    ));
    let reasons: Vec<(u64, &str)> = letters
        .iter()
        .map(|l| (l["line"].as_u64().unwrap(), l["reason"].as_str().unwrap()))
        .collect();
    // Line 1 (with a byte-order mark) is read, not rejected.
    assert_eq!(reasons.len(), 4, "{reasons:?}");
    assert_eq!(reasons[0].0, 2);
    assert!(
        reasons[0]
            .1
            .contains("`userId` is not a string or a number"),
        "{reasons:?}"
    );
    assert!(
        reasons[1].1.contains("outside the years 1678 to 2261"),
        "{reasons:?}"
    );
    assert!(reasons[2].1.contains("not RFC 3339"), "{reasons:?}");
    assert!(reasons[3].1.contains("no `type`"), "{reasons:?}");
}

#[test]
fn a_journey_cut_after_when_is_reported_once() {
    let dir = scratch("cut");
    let file = dir.join("cut.nudge");
    std::fs::write(&file, "journey j {\n  owner \"x\"\n  when\n}\n").unwrap();
    let out = nudge(&["check", "--format", "json", file.to_str().unwrap()]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["errors"], 1, "{json}");
    assert_eq!(
        json["diagnostics"][0]["message"],
        "expected a name, found `}`"
    );
}

fn run_with_state(state: &Path, out: &Path, events: &str) -> Output {
    nudge(&[
        "run",
        "--policy",
        "examples/retail",
        "--events",
        events,
        "--state",
        state.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--drain",
    ])
}

#[test]
fn a_new_store_with_a_non_empty_output_is_refused() {
    let dir = scratch("fresh");
    let (state, out) = (dir.join("state"), dir.join("out.ndjson"));
    let events = "examples/retail/events.ndjson";
    let first = run_with_state(&state, &out, events);
    assert!(first.status.success(), "{}", text_of(&first));
    let written = std::fs::read(&out).unwrap();
    assert!(!written.is_empty());
    // The state directory is lost; the output is still there.
    std::fs::remove_dir_all(&state).unwrap();
    let again = run_with_state(&state, &out, events);
    assert_eq!(again.status.code(), Some(2), "{}", text_of(&again));
    assert!(
        text(&again.stderr).contains("the state store is new"),
        "{}",
        text_of(&again)
    );
    assert_eq!(
        std::fs::read(&out).unwrap(),
        written,
        "nothing was appended"
    );
}

#[test]
fn a_store_in_use_is_refused_as_in_use() {
    let dir = scratch("locked");
    let (state, out) = (dir.join("state"), dir.join("out.ndjson"));
    let first = run_with_state(&state, &out, "examples/retail/events.ndjson");
    assert!(first.status.success(), "{}", text_of(&first));
    // Another process holds the store open (as a running `nudge run` would).
    let _held = redb::Database::open(state.join("state.redb")).unwrap();
    let second = run_with_state(
        &state,
        &dir.join("other.ndjson"),
        "examples/retail/events.ndjson",
    );
    let err = text(&second.stderr);
    no_panic(&second);
    assert_eq!(second.status.code(), Some(2), "{err}");
    assert!(err.contains("in use by another nudge run"), "{err}");
}

#[test]
fn a_store_removed_under_a_running_process_stops_it() {
    let dir = scratch("removed");
    let (state, out) = (dir.join("state"), dir.join("out.ndjson"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_nudge"))
        .args(["run", "--policy", "examples/retail", "--events", "-"])
        .arg("--state")
        .arg(&state)
        .arg("--out")
        .arg(&out)
        .args(["--commit-every", "1"])
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let events = std::fs::read_to_string(root().join("examples/retail/events.ndjson")).unwrap();
    let lines: Vec<&str> = events.lines().collect();
    let mut stdin = child.stdin.take().unwrap();
    for line in &lines[..50] {
        writeln!(stdin, "{line}").unwrap();
    }
    stdin.flush().unwrap();
    // Wait (bounded) until the run has committed, then pull the store away.
    let store = state.join("state.redb");
    for _ in 0..200 {
        if std::fs::metadata(&store).is_ok_and(|m| m.len() > 0) && out.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    std::fs::remove_dir_all(&state).unwrap();
    for line in &lines[50..] {
        if writeln!(stdin, "{line}").is_err() {
            break;
        }
    }
    drop(stdin);
    let result = child.wait_with_output().unwrap();
    assert_eq!(result.status.code(), Some(2), "{}", text_of(&result));
    assert!(
        text(&result.stderr).contains("removed or replaced"),
        "{}",
        text_of(&result)
    );
}

/// A store with a damaged page is refused (exit 2), or, where the damage is
/// somewhere the run does not depend on (a free page), the run gives exactly
/// what the undamaged store gives: never a panic, never a silently different
/// stream. (This is why there is no digest of each batch beside redb's own
/// checksums: no damaged page here got past them into the decisions.)
#[test]
fn damaged_pages_are_refused_never_a_panic() {
    let dir = scratch("damaged");
    let (state, out) = (dir.join("state"), dir.join("out.ndjson"));
    let events = "examples/retail/events.ndjson";
    let first = run_with_state(&state, &out, events);
    assert!(first.status.success(), "{}", text_of(&first));
    let pristine = std::fs::read(state.join("state.redb")).unwrap();
    let written = std::fs::read(&out).unwrap();
    let pages = pristine.len() / 4096;
    assert!(pages > 2);
    let more = dir.join("more.ndjson");
    std::fs::write(&more, events_tail()).unwrap();
    // What the undamaged store gives for the same continuation.
    let reference = {
        let copy = dir.join("reference");
        std::fs::create_dir_all(&copy).unwrap();
        std::fs::write(copy.join("state.redb"), &pristine).unwrap();
        let out = dir.join("reference.ndjson");
        std::fs::write(&out, &written).unwrap();
        let result = run_with_state(&copy, &out, more.to_str().unwrap());
        assert!(result.status.success(), "{}", text_of(&result));
        std::fs::read(&out).unwrap()
    };
    assert!(
        reference.len() > written.len(),
        "the continuation decides something"
    );
    // A simple deterministic generator: no dependency, the same pages every run.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let (mut refused, mut unharmed) = (0, 0);
    for round in 0..24 {
        let mut damaged = pristine.clone();
        let page = 1 + (next() as usize % (pages - 1));
        for b in &mut damaged[page * 4096..(page + 1) * 4096] {
            *b = next() as u8;
        }
        let copy = dir.join(format!("state{round}"));
        std::fs::create_dir_all(&copy).unwrap();
        std::fs::write(copy.join("state.redb"), &damaged).unwrap();
        let out = dir.join(format!("out{round}.ndjson"));
        std::fs::write(&out, &written).unwrap();
        let result = run_with_state(&copy, &out, more.to_str().unwrap());
        no_panic(&result);
        match result.status.code() {
            Some(2) => refused += 1,
            Some(0) => {
                assert!(
                    std::fs::read(&out).unwrap() == reference,
                    "round {round} (page {page}): a damaged store gave other decisions"
                );
                unharmed += 1;
            }
            _ => panic!("round {round}: {}", text_of(&result)),
        }
    }
    assert!(refused > 0 && unharmed + refused == 24, "{refused} refused");
}

fn events_tail() -> String {
    concat!(
        "{\"type\":\"track\",\"event\":\"Application Opened\",\"userId\":\"cust-001\",\"timestamp\":\"2026-12-30T10:00:00Z\",\"messageId\":\"tail-1\"}\n",
        "{\"type\":\"track\",\"event\":\"Cart Abandoned\",\"userId\":\"cust-005\",\"timestamp\":\"2026-12-30T11:00:00Z\",\"messageId\":\"tail-2\",",
        "\"properties\":{\"cart_id\":\"c9\",\"cart_value\":80,\"category\":\"shoes\",\"item_count\":2}}\n",
    )
    .to_string()
}

#[test]
fn a_policy_file_that_is_not_utf8_still_gives_machine_readable_output() {
    let dir = scratch("utf8");
    let file = dir.join("bad.nudge");
    std::fs::write(&file, b"journey j {\n owner \"\xff\xfe\"\n}\n").unwrap();
    let out = nudge(&["check", "--format", "json", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        json["error"].as_str().unwrap().contains("not UTF-8"),
        "{json}"
    );
    assert_eq!(json["errors"], 0);
    let out = nudge(&["check", "--format", "sarif", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let log: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/sarif-schema-2.1.0.json")).unwrap();
    let validator = jsonschema::draft7::new(&schema).unwrap();
    assert!(validator.is_valid(&log), "{log}");
    let invocation = &log["runs"][0]["invocations"][0];
    assert_eq!(invocation["executionSuccessful"], false);
    let out = nudge(&["check", "--format", "github", file.to_str().unwrap()]);
    assert!(text(&out.stdout).starts_with("::error::"));
}
