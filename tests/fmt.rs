//! Formatter tests.
//!
//! - `tests/fmt/*.nudge`: inputs in every layout, each snapshotted formatted;
//! - every policy file in `tests/` and `examples/` that parses: formatting keeps
//!   the AST (without spans) and every comment, and formatting twice equals
//!   formatting once;
//! - `examples/` is committed in canonical form.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

use nudge::FileId;
use std::path::{Path, PathBuf};

fn policy_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            policy_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "nudge") {
            out.push(path);
        }
    }
}

fn all_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    policy_files(&root.join("tests"), &mut files);
    policy_files(&root.join("examples"), &mut files);
    files.sort();
    files
}

/// The AST without spans, and the comments' text, of a file.
fn shape(text: &str) -> (String, Vec<String>) {
    let parsed = nudge::syntax::parse(FileId(0), text);
    let comments = parsed
        .module
        .comments
        .iter()
        .map(|c| text[c.span.range()].trim_end().to_string())
        .collect();
    (nudge::syntax::dump::module(&parsed.module), comments)
}

#[test]
fn formatting_keeps_the_ast_and_comments_and_reaches_a_fixed_point() {
    let mut formatted_files = 0;
    for path in all_files() {
        let text = std::fs::read_to_string(&path).unwrap();
        let Ok(once) = nudge::format(&text) else {
            // Files with syntax errors are never formatted.
            assert!(
                !nudge::syntax::parse(FileId(0), &text)
                    .diagnostics
                    .is_empty()
            );
            continue;
        };
        formatted_files += 1;
        assert_eq!(
            shape(&text),
            shape(&once),
            "{} changed meaning or lost a comment:\n{once}",
            path.display()
        );
        let twice = nudge::format(&once).unwrap_or_else(|d| {
            panic!("{}: formatted output does not parse: {d:?}", path.display())
        });
        assert_eq!(once, twice, "{} is not a fixed point", path.display());
        for (n, line) in once.lines().enumerate() {
            assert!(
                !line.ends_with(' '),
                "{}:{}: trailing space",
                path.display(),
                n + 1
            );
        }
    }
    assert!(
        formatted_files > 100,
        "only {formatted_files} files formatted"
    );
}

#[test]
fn examples_are_in_canonical_form() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut files = Vec::new();
    policy_files(&root, &mut files);
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let formatted = nudge::format(&text).unwrap();
        assert!(
            text == formatted,
            "{} is not formatted; run `nudge fmt examples`",
            path.display()
        );
    }
}

#[test]
fn files_with_syntax_errors_are_refused() {
    let text = "journey j {\n  wait 30 min\n}\n";
    let diagnostics = nudge::format(text).unwrap_err();
    assert_eq!(diagnostics[0].code, nudge::Code::InvalidDuration);
}

#[test]
fn layouts() {
    insta::glob!("fmt/*.nudge", |path| {
        let text = std::fs::read_to_string(path).unwrap();
        let formatted = nudge::format(&text).unwrap();
        insta::assert_snapshot!(formatted);
    });
}
