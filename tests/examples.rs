//! Every policy set under `examples/` is clean: the examples are what users copy.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

use nudge::diagnostic::render::{HumanStyle, human};
use nudge::{Sources, analyze};
use std::path::{Path, PathBuf};

fn nudge_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable directory") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            nudge_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "nudge") {
            out.push(path);
        }
    }
}

#[test]
fn every_example_set_checks_clean() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut sets = 0;
    for entry in std::fs::read_dir(&root).expect("examples/ exists") {
        let dir = entry.expect("entry").path();
        if !dir.is_dir() {
            continue;
        }
        let mut files = Vec::new();
        nudge_files(&dir, &mut files);
        files.sort();
        let mut sources = Sources::new();
        for f in &files {
            sources.add(
                f.display().to_string(),
                std::fs::read_to_string(f).expect("readable"),
            );
        }
        let analysis = analyze(&sources);
        assert!(
            analysis.diagnostics.is_empty(),
            "{}",
            human(&sources, &analysis.diagnostics, HumanStyle::Plain)
        );
        assert!(!files.is_empty(), "{} has no policy files", dir.display());
        sets += 1;
    }
    assert!(sets >= 1, "no example policy sets found");
}
