//! The `examples/retail` policy set, lowered: shared by the benches and the
//! runtime's property test.

use std::path::{Path, PathBuf};
use std::sync::Arc;

fn policy_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            policy_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "nudge") {
            out.push(path);
        }
    }
}

/// `examples/retail` and `extra` files, checked (they must be clean) and lowered.
pub fn program(extra: &[&str]) -> Arc<nudge::ir::Program> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    policy_files(&root.join("examples/retail"), &mut files);
    files.extend(extra.iter().map(|f| root.join(f)));
    files.sort();
    let mut sources = nudge::Sources::new();
    for f in files {
        sources.add(
            f.display().to_string(),
            std::fs::read_to_string(&f).unwrap_or_default(),
        );
    }
    let analysis = nudge::analyze(&sources);
    assert!(
        !analysis.has_errors(),
        "the retail policy set must check clean"
    );
    Arc::new(nudge::ir::lower(&analysis.modules).unwrap_or_else(|e| panic!("{e}")))
}
