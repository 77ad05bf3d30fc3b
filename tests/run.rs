//! Runtime cases: `tests/run/CASE/` holds a policy set (`*.nudge`), `events.ndjson`
//! and, optionally, `args` (extra `nudge run` flags; `--drain` by default). Each
//! case runs through the real binary; its decisions and dead letters are
//! snapshotted, a second run must produce byte-identical output, the JIT
//! engine must produce exactly the interpreter's output, and two runs on one
//! `--state` store over the input cut in half must produce one run's output.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

use std::path::Path;
use std::process::Command;

struct RunOutput {
    decisions: String,
    dead_letters: String,
}

fn run_case(dir: &Path, engine: &str) -> RunOutput {
    let args = std::fs::read_to_string(dir.join("args")).unwrap_or_default();
    let scratch = std::env::temp_dir().join(format!(
        "nudge-run-{}-{}-{engine}",
        std::process::id(),
        dir.file_name().unwrap().to_string_lossy()
    ));
    let out = Command::new(env!("CARGO_BIN_EXE_nudge"))
        .arg("run")
        .arg("--policy")
        .arg(dir)
        .arg("--events")
        .arg(dir.join("events.ndjson"))
        .arg("--dead-letter")
        .arg(&scratch)
        .arg("--engine")
        .arg(engine)
        .args(args.split_whitespace())
        .output()
        .expect("nudge runs");
    assert!(
        out.status.success(),
        "{}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let dead_letters = std::fs::read_to_string(&scratch).unwrap_or_default();
    let _ = std::fs::remove_file(&scratch);
    RunOutput {
        decisions: String::from_utf8(out.stdout).unwrap(),
        dead_letters,
    }
}

/// The case in two runs on one `--state` directory, the input cut in half: the
/// first run ends without draining, the second continues it with the case's
/// flags. Their decisions, concatenated, are the decisions of one run.
fn run_split_with_state(dir: &Path) -> String {
    let args = std::fs::read_to_string(dir.join("args")).unwrap_or_default();
    let events = std::fs::read_to_string(dir.join("events.ndjson")).unwrap();
    let lines: Vec<&str> = events.split_inclusive('\n').collect();
    let (first, second) = lines.split_at(lines.len() / 2);
    let scratch = std::env::temp_dir().join(format!(
        "nudge-split-{}-{}",
        std::process::id(),
        dir.file_name().unwrap().to_string_lossy()
    ));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).unwrap();
    let mut first_args: Vec<&str> = Vec::new();
    let mut words = args.split_whitespace();
    while let Some(w) = words.next() {
        match w {
            "--drain" => {}
            "--until" => {
                words.next();
            }
            other => first_args.push(other),
        }
    }
    let mut output = String::new();
    for (part, (lines, args)) in [
        (first, first_args),
        (second, args.split_whitespace().collect()),
    ]
    .into_iter()
    .enumerate()
    {
        let input = scratch.join(format!("part{part}.ndjson"));
        std::fs::write(&input, lines.concat()).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_nudge"))
            .arg("run")
            .arg("--policy")
            .arg(dir)
            .arg("--events")
            .arg(&input)
            .arg("--state")
            .arg(scratch.join("state"))
            .arg("--dead-letter")
            .arg(scratch.join(format!("dead{part}")))
            .args(args)
            .output()
            .expect("nudge runs");
        assert!(
            out.status.success(),
            "{} (split run {part}): {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        output.push_str(&String::from_utf8(out.stdout).unwrap());
    }
    let _ = std::fs::remove_dir_all(&scratch);
    output
}

#[test]
fn runtime_cases() {
    insta::glob!("run/*/events.ndjson", |path| {
        let dir = path.parent().unwrap();
        let about = std::fs::read_to_string(dir.join("case.nudge"))
            .unwrap()
            .lines()
            .next()
            .unwrap_or_default()
            .trim_start_matches("// ")
            .to_string();
        let first = run_case(dir, "interp");
        let again = run_case(dir, "interp");
        assert_eq!(
            first.decisions, again.decisions,
            "output differs between runs"
        );
        let native = run_case(dir, "jit");
        assert_eq!(
            first.decisions, native.decisions,
            "the JIT and the interpreter disagree"
        );
        assert_eq!(first.dead_letters, native.dead_letters);
        assert_eq!(
            first.decisions,
            run_split_with_state(dir),
            "a split run on a state store differs from one run"
        );
        let args = std::fs::read_to_string(dir.join("args")).unwrap_or_default();
        let report = format!(
            "{about}\n--- args\n{}\n--- decisions\n{}--- dead letters\n{}",
            if args.trim().is_empty() {
                "(none)"
            } else {
                args.trim()
            },
            first.decisions,
            first.dead_letters
        );
        insta::assert_snapshot!(report);
    });
}
