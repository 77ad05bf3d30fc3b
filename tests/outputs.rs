//! Where `nudge run` writes (CLI.md 1.1): pipes, FIFOs, `/dev/stdout` and
//! `/dev/stderr` are appended to, never seeked; `--dead-letter -` is stderr; an
//! unseekable output with `--state` is refused; the input and the outputs must
//! be different files; and no command panics when its reader goes away.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn nudge() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_nudge"));
    c.current_dir(root()).env("NO_COLOR", "1");
    c
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nudge-outputs-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const EVENTS: &str = "examples/retail/events.ndjson";

fn run(args: &[&str]) -> Output {
    nudge()
        .args([
            "run",
            "--policy",
            "examples/retail",
            "--events",
            EVENTS,
            "--drain",
        ])
        .args(args)
        .output()
        .expect("nudge runs")
}

/// The decisions of a plain run to stdout, for comparison.
fn reference() -> String {
    let out = run(&[]);
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn out_to_dev_stdout_and_dev_stderr() {
    let expected = reference();
    let out = run(&["--out", "/dev/stdout"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), expected);
    let out = run(&["--out", "/dev/stderr"]);
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
    // Rejected lines are reported on stderr too, as they are met.
    let decisions: String = String::from_utf8(out.stderr)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("{\"at\""))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(decisions, expected);
}

#[test]
fn out_to_a_fifo() {
    let dir = scratch("fifo");
    let fifo = dir.join("decisions");
    let made = Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("SKIPPED: mkfifo is not available here");
        return;
    }
    let reader_path = fifo.clone();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        std::fs::File::open(&reader_path)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        text
    });
    let out = run(&["--out", fifo.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(reader.join().unwrap(), reference());
}

#[test]
fn dead_letters_to_stderr_with_a_dash() {
    let out = run(&["--dead-letter", "-"]);
    assert!(out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    let letters: Vec<serde_json::Value> = stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(letters.len(), 2, "{stderr}");
    assert!(
        letters
            .iter()
            .all(|l| l["line"].is_u64() && l["raw"].is_string())
    );
    assert!(!stderr.contains("use --dead-letter FILE"));
}

#[test]
fn an_unseekable_output_with_state_is_refused() {
    let dir = scratch("state-fifo");
    let state = dir.join("state");
    let out = run(&["--out", "/dev/stdout", "--state", state.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("is not a regular file"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn outputs_equal_to_the_input_or_each_other_are_refused() {
    let dir = scratch("same");
    let input = dir.join("events.ndjson");
    std::fs::copy(root().join(EVENTS), &input).unwrap();
    let before = std::fs::read(&input).unwrap();
    let out = nudge()
        .args(["run", "--policy", "examples/retail", "--events"])
        .arg(&input)
        .arg("--out")
        .arg(&input)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        std::fs::read(&input).unwrap(),
        before,
        "the input was touched"
    );
    let same = dir.join("out.ndjson");
    let out = run(&[
        "--out",
        same.to_str().unwrap(),
        "--dead-letter",
        same.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr).unwrap().contains("same file"));
    assert!(
        !same.exists(),
        "nothing is opened for writing before the check"
    );
    // Not the state store either.
    let state = dir.join("state");
    let out = run(&[
        "--out",
        same.to_str().unwrap(),
        "--dead-letter",
        same.to_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!state.exists(), "the store was created before the refusal");
}

/// `nudge … | head -1`: the command ends quietly when its reader goes away.
fn survives_a_closed_pipe(args: &[&str]) {
    let mut child = nudge()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read one byte, then hang up, as `head -c1` would.
    let mut stdout = child.stdout.take().unwrap();
    let mut one = [0u8; 1];
    let _ = stdout.read(&mut one);
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    assert!(
        out.status.code().is_some_and(|c| c == 0),
        "{args:?}: {:?} {stderr}",
        out.status
    );
}

#[test]
fn closed_pipes_end_commands_quietly() {
    // Long outputs, so that the pipe is closed before they are written whole.
    survives_a_closed_pipe(&["compile", "--emit", "clif", "examples/retail"]);
    survives_a_closed_pipe(&["explain"]);
    survives_a_closed_pipe(&[
        "run",
        "--policy",
        "examples/retail",
        "--events",
        EVENTS,
        "--drain",
    ]);
    survives_a_closed_pipe(&["check", "--format", "sarif", "examples/retail"]);
}

/// `--stats` names what it ignored, so that a misspelt event name in the stream
/// or a consent category no topic reads is visible.
#[test]
fn stats_break_ignored_calls_down_by_name() {
    let dir = scratch("stats");
    let events = dir.join("events.ndjson");
    let mut text = std::fs::read_to_string(root().join(EVENTS)).unwrap();
    text.push_str("{\"type\":\"track\",\"event\":\"Cart Abandonded\",\"userId\":\"cust-001\",\"timestamp\":\"2026-12-30T10:00:00Z\",\"messageId\":\"typo-1\"}\n");
    std::fs::write(&events, text).unwrap();
    let out = nudge()
        .args(["run", "--policy", "examples/retail", "--events"])
        .arg(&events)
        .args(["--stats", "--dead-letter", "-"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    let line_of = |needle: &str| {
        stderr
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no `{needle}` in:\n{stderr}"))
            .to_string()
    };
    assert!(
        line_of("\"Cart Abandonded\"")
            .trim_start()
            .starts_with("ignored        1")
    );
    assert!(line_of("\"(page)\"").contains("ignored"));
    assert!(stderr.contains("unknown consent categories"));
    assert!(line_of("\"Advertising\"").trim_start().starts_with('1'));
}
