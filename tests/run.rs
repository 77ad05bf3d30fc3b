//! Runtime cases: `tests/run/CASE/` holds a policy set (`*.nudge`), `events.ndjson`
//! and, optionally, `args` (extra `nudge run` flags; `--drain` by default). Each
//! case runs through the real binary; its decisions and dead letters are
//! snapshotted, a second run must produce byte-identical output, and the JIT
//! engine must produce exactly the interpreter's output.

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
