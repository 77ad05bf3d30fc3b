//! (1.1) A new version of the policy set while serving, the same in both
//! modes: when to read it again (SIGHUP, or its files changed, looked at once a
//! second), reading it (a set with errors is logged and not taken), and what a
//! store that kept its running version would change.

use nudge::ir::Program;
use nudge::ir::versions::Summary;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// Every `*.nudge` file under the `--policy` paths, with its length and
/// modification time.
type Stamp = Vec<(PathBuf, u64, Option<SystemTime>)>;

/// Watches for a reason to read the policy set again.
pub(super) struct PolicyWatch {
    paths: Vec<PathBuf>,
    stamp: Stamp,
    last_look: Instant,
}

impl PolicyWatch {
    pub(super) fn new(paths: &[PathBuf]) -> PolicyWatch {
        PolicyWatch {
            paths: paths.to_vec(),
            stamp: stamp(paths),
            last_look: Instant::now(),
        }
    }

    /// Whether to read the set again: SIGHUP arrived since the last call
    /// (`sighup` is cleared), or its files changed since the last look, taken
    /// at most once a second.
    pub(super) fn asked(&mut self, sighup: &AtomicBool) -> bool {
        let mut asked = sighup.swap(false, Ordering::Relaxed);
        if self.last_look.elapsed() >= Duration::from_secs(1) {
            self.last_look = Instant::now();
            let now = stamp(&self.paths);
            if now != self.stamp {
                self.stamp = now;
                asked = true;
            }
        }
        asked
    }

    /// The set as its files are now; `None` (logged, the errors printed) when
    /// it does not check.
    pub(super) fn read(&self) -> Option<Arc<Program>> {
        let read = crate::cli::program(&self.paths).ok();
        if read.is_none() {
            tracing::warn!(
                "the policy set has errors (printed above); the running version is kept"
            );
        }
        read
    }
}

/// Logs what a changed set would change in a store that keeps its running
/// version (started without `--upgrade`); `whose` names the partition.
pub(super) fn kept(whose: Option<i32>, summary: &Summary) {
    let whose = whose
        .map(|p| format!("partition {p}: "))
        .unwrap_or_default();
    tracing::warn!(
        "{whose}the policy set changed; started without --upgrade, the service keeps the running version. Applying it would change:\n{summary}"
    );
}

/// What the `--policy` files are now: a change asks for a reload.
fn stamp(paths: &[PathBuf]) -> Stamp {
    fn walk(path: &std::path::Path, out: &mut Stamp) {
        let Ok(meta) = std::fs::metadata(path) else {
            return;
        };
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(path) {
                for entry in entries.flatten() {
                    walk(&entry.path(), out);
                }
            }
        } else if path.extension().is_some_and(|e| e == "nudge") {
            out.push((path.to_path_buf(), meta.len(), meta.modified().ok()));
        }
    }
    let mut out = Vec::new();
    for path in paths {
        walk(path, &mut out);
    }
    out.sort();
    out
}
