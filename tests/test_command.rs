//! (1.1) `nudge test` (CLI.md, LANGUAGE.md §10): the retail tests pass; a
//! failing test says what it expected, where, and what came closest; the JSON
//! and JUnit reports have the shapes tools read; `--filter` and exit codes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly on broken fixtures"
)]

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

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn the_retail_tests_pass() {
    let out = nudge(&["test", "examples/retail"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let passed: usize = text
        .lines()
        .find_map(|l| l.strip_suffix(" passed, 0 failed"))
        .expect("a summary line")
        .parse()
        .unwrap();
    assert!(passed >= 15, "only {passed} retail tests");
    // Every journey of the shop has a test that names it.
    let policy =
        std::fs::read_to_string(root().join("examples/retail/journeys/cart_recovery.nudge"))
            .unwrap();
    assert!(policy.contains("journey cart_recovery"));
    let mut tests = String::new();
    for entry in std::fs::read_dir(root().join("examples/retail/tests")).unwrap() {
        tests.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    for entry in std::fs::read_dir(root().join("examples/retail/journeys")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for journey in text.lines().filter_map(|l| l.strip_prefix("journey ")) {
            let name = journey.trim_end_matches(" {");
            assert!(
                tests.contains(&format!("journey: {name}")),
                "no retail test names the journey `{name}`"
            );
        }
    }
}

/// A failing test: each failed expectation with its place and text, the
/// closest decisions with the differing fields side by side; exit 1.
#[test]
fn a_failing_test_shows_the_closest_decisions() {
    let out = nudge(&["test", "tests/test_cmd"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("test thanks_an_hour_later ... ok"), "{text}");
    assert!(
        text.contains("test wrong_subject_fails ... FAILED"),
        "{text}"
    );
    assert!(text.ends_with("2 passed, 1 failed\n"), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn filter_runs_the_tests_whose_name_contains_it() {
    let out = nudge(&["test", "tests/test_cmd", "--filter", "thank"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.contains("thanks_an_hour_later") && text.contains("small_purchases_are_not_thanked")
    );
    assert!(!text.contains("wrong_subject_fails"), "{text}");
    let none = nudge(&["test", "tests/test_cmd", "--filter", "no such test"]);
    assert_eq!(none.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&none.stderr).contains("no test's name contains"));
}

#[test]
fn a_set_without_tests_or_with_errors_is_refused() {
    let dir = std::env::temp_dir().join(format!("nudge-test-cmd-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.nudge"), "event purchase { amount: number }\n").unwrap();
    let out = nudge(&["test", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no `test` declaration"));
    // A test naming an unknown journey is a policy error: nothing runs.
    std::fs::write(
        dir.join("b.nudge"),
        "test t {\n  at 2026-11-02T15:00:00Z purchase \"u\" { amount: 1 }\n  expect entered { journey: nope }\n}\n",
    )
    .unwrap();
    let out = nudge(&["test", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown journey `nope`"));
}

#[test]
fn json_gives_every_result() {
    let out = nudge(&["test", "tests/test_cmd", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["passed"], 2);
    assert_eq!(doc["failed"], 1);
    let tests = doc["tests"].as_array().unwrap();
    assert_eq!(tests.len(), 3);
    let failing = tests
        .iter()
        .find(|t| t["name"] == "wrong_subject_fails")
        .unwrap();
    assert_eq!(failing["passed"], false);
    assert_eq!(failing["file"], "tests/test_cmd/shop.nudge");
    let failures = failing["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 2);
    assert_eq!(failures[0]["line"], 41);
    let difference = &failures[0]["closest"][0]["differences"][0];
    assert_eq!(difference["field"], "content");
    assert_eq!(difference["expected"], "{ subject: Thanks for 20 }");
    assert_eq!(difference["found"], "{ subject: Thanks for 30 }");
    assert_eq!(failures[0]["closest"][0]["decision"]["kind"], "send");
}

/// JUnit XML as Jenkins, GitLab and GitHub reporters read it: a
/// `testsuites` root, a `testsuite` per file with consistent counts, a
/// `testcase` per test with `name`, `classname` and `time`, and a `failure`
/// with a `message` for each failing one.
#[test]
fn junit_has_the_shape_ci_reporters_read() {
    let out = nudge(&["test", "tests/test_cmd", "--format", "junit"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let doc = roxmltree::Document::parse(&text).expect("well-formed XML");
    let suites = doc.root_element();
    assert_eq!(suites.tag_name().name(), "testsuites");
    let count = |n: roxmltree::Node<'_, '_>, a: &str| -> usize {
        n.attribute(a)
            .unwrap_or_else(|| panic!("no {a}"))
            .parse()
            .unwrap()
    };
    let mut cases = 0;
    let mut failed = 0;
    for suite in suites.children().filter(|n| n.is_element()) {
        assert_eq!(suite.tag_name().name(), "testsuite");
        assert!(
            suite
                .attribute("name")
                .is_some_and(|n| n.ends_with(".nudge"))
        );
        let here: Vec<_> = suite.children().filter(|n| n.is_element()).collect();
        assert_eq!(count(suite, "tests"), here.len());
        let failing = here
            .iter()
            .filter(|c| c.children().any(|f| f.has_tag_name("failure")))
            .count();
        assert_eq!(count(suite, "failures"), failing);
        for case in &here {
            assert_eq!(case.tag_name().name(), "testcase");
            for a in ["name", "classname", "time", "file", "line"] {
                assert!(case.attribute(a).is_some(), "testcase without {a}");
            }
            assert!(case.attribute("time").unwrap().parse::<f64>().is_ok());
            if let Some(f) = case.children().find(|f| f.has_tag_name("failure")) {
                assert!(!f.attribute("message").unwrap_or_default().is_empty());
                assert!(f.text().unwrap_or_default().contains("closest decisions"));
            }
        }
        cases += here.len();
        failed += failing;
    }
    assert_eq!(count(suites, "tests"), cases);
    assert_eq!(count(suites, "failures"), failed);
    assert_eq!((cases, failed), (3, 1));
}

/// `nudge run` ignores tests: the retail set decides the same with and
/// without its `tests/` directory.
#[test]
fn run_ignores_tests() {
    let dir: PathBuf =
        std::env::temp_dir().join(format!("nudge-run-no-tests-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("journeys")).unwrap();
    let retail = root().join("examples/retail");
    for sub in ["", "journeys"] {
        for entry in std::fs::read_dir(retail.join(sub)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "nudge") {
                std::fs::copy(&path, dir.join(sub).join(path.file_name().unwrap())).unwrap();
            }
        }
    }
    let events = retail.join("events.ndjson");
    let events = events.to_str().unwrap();
    let with = nudge(&[
        "run",
        "--policy",
        "examples/retail",
        "--events",
        events,
        "--drain",
    ]);
    let without = nudge(&[
        "run",
        "--policy",
        dir.to_str().unwrap(),
        "--events",
        events,
        "--drain",
    ]);
    assert!(with.status.success() && without.status.success());
    assert!(
        with.stdout == without.stdout,
        "tests changed what `run` decides"
    );
}
