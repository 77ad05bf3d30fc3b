//! Parser snapshots: every `tests/parse/ok/*.nudge` parses without a diagnostic and
//! is snapshotted as an AST outline; every `tests/parse/err/*.nudge` has at least
//! one syntax diagnostic and is snapshotted as the rendered, colour-free report.
//! These are parser tests: the checker's diagnostics are tested in `check.rs`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

use nudge::Sources;
use nudge::diagnostic::render::{HumanStyle, human, json};
use std::path::Path;

fn load(path: &Path) -> Sources {
    let text = std::fs::read_to_string(path).expect("test file is readable");
    let name = path
        .strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/");
    let mut sources = Sources::new();
    sources.add(name, text);
    sources
}

#[test]
fn valid_files_parse_cleanly() {
    insta::glob!("parse/ok/*.nudge", |path| {
        let sources = load(path);
        let parsed = nudge::syntax::parse(nudge::FileId(0), &sources.get(nudge::FileId(0)).text);
        assert!(
            parsed.diagnostics.is_empty(),
            "{}",
            human(&sources, &parsed.diagnostics, HumanStyle::Plain)
        );
        insta::assert_snapshot!(nudge::syntax::dump::module(&parsed.module));
    });
}

#[test]
fn invalid_files_are_reported() {
    insta::glob!("parse/err/*.nudge", |path| {
        let sources = load(path);
        let parsed = nudge::syntax::parse(nudge::FileId(0), &sources.get(nudge::FileId(0)).text);
        assert!(!parsed.diagnostics.is_empty(), "expected diagnostics");
        let mut report = human(&sources, &parsed.diagnostics, HumanStyle::Plain);
        report.push_str("--- json\n");
        report.push_str(&json(&sources, &parsed.diagnostics));
        report.push('\n');
        report.push_str("--- ast\n");
        report.push_str(&nudge::syntax::dump::module(&parsed.module));
        insta::assert_snapshot!(report);
    });
}
