//! `nudge check --format sarif` validated by a tool nobody here wrote: the
//! Microsoft SARIF Multitool, with its SARIF rules and the GitHub code-scanning
//! ingestion rules (`--rule-kind "Sarif;Gh"`). `.ci/run` installs it with
//! `npm ci --prefix tests/sarif`; without it the test says so loudly and passes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

use std::path::Path;
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn sarif_passes_the_multitool_with_the_github_rules() {
    let tool = root().join("tests/sarif/node_modules/.bin/sarif-multitool");
    if !tool.exists() {
        eprintln!(
            "!! SKIPPED the SARIF Multitool check: run `npm ci --prefix tests/sarif` (.ci/run does)"
        );
        return;
    }
    let dir = std::env::temp_dir().join(format!("nudge-sarif-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Errors and warnings, in a file with a space and a non-ASCII letter in its name.
    let report = dir.join("check.sarif");
    let out = Command::new(env!("CARGO_BIN_EXE_nudge"))
        .args(["check", "tests/sarif/policies", "--format", "sarif"])
        .current_dir(root())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let sarif: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let levels: Vec<&str> = sarif["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["level"].as_str().unwrap())
        .collect();
    assert!(
        levels.contains(&"error") && levels.contains(&"warning"),
        "{levels:?}"
    );
    std::fs::write(&report, &out.stdout).unwrap();
    let findings = dir.join("findings.sarif");
    let _ = std::fs::remove_file(&findings);
    // The npm wrapper hands its arguments to a shell: the list is quoted twice.
    let run = Command::new(&tool)
        .arg("validate")
        .arg(&report)
        .args(["--rule-kind", "\"Sarif;Gh\"", "-o"])
        .arg(&findings)
        .output()
        .unwrap();
    let console = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(run.status.success(), "{console}");
    let findings: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&findings).unwrap()).unwrap();
    // The validator's own log: every result it has is a problem in ours, but
    // notes (its advice on optional properties) are reported, not failed on.
    let problems: Vec<String> = findings["runs"][0]["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| matches!(r["level"].as_str(), Some("error") | Some("warning") | None))
        .map(|r| format!("{}: {}", r["ruleId"], r["message"]["text"]))
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let _ = std::fs::remove_dir_all(&dir);
}
