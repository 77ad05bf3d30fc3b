//! `nudge run` throughput against a parse-only baseline on the same input, in the
//! same process (machines here are shared and noisy: compare ratios, not raw
//! figures); and end to end, the `nudge` binary on a file against parsing the
//! same file.
//!
//! ```sh
//! cargo bench --bench throughput            # 1M events, 10k profiles
//! NUDGE_BENCH_EVENTS=200000 cargo bench --bench throughput
//! ```

#![allow(
    clippy::expect_used,
    reason = "a benchmark that cannot read its own input or run the binary should stop loudly"
)]

#[path = "support/gen.rs"]
mod gen_support;

#[path = "support/retail.rs"]
mod retail;

use nudge::io::input::Reader;
use nudge::io::output::write_decision;
use nudge::runtime::Engine;
use std::fs::File;
use std::hint::black_box;
use std::io::{BufRead, BufReader};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

fn program() -> Arc<nudge::ir::Program> {
    retail::program(&[])
}

/// Seconds taken by `f`, and its result.
fn timed(f: &mut dyn FnMut() -> usize) -> (f64, usize) {
    let start = Instant::now();
    let result = f();
    (start.elapsed().as_secs_f64(), result)
}

/// The whole pipeline of `nudge run` but the file IO: read and validate every
/// line, process it, render every decision as its output line.
fn run(program: &Arc<nudge::ir::Program>, lines: &[&str], jit: bool) -> usize {
    let reader = Reader::new(Arc::clone(program));
    let mut engine = Engine::new(Arc::clone(program));
    if jit {
        match nudge::jit::Jit::compile(Arc::clone(program)) {
            Ok(jit) => engine.use_jit(std::rc::Rc::new(jit)),
            Err(e) => panic!("the retail set does not compile: {e}"),
        }
    }
    let mut out = Vec::new();
    let mut bytes = 0usize;
    let mut text = String::new();
    for line in lines {
        if let Ok(event) = reader.read(line) {
            engine.process(event, &mut out);
        }
        for d in out.drain(..) {
            text.clear();
            write_decision(&d, &mut text);
            bytes += text.len() + 1;
        }
    }
    black_box(bytes);
    engine.counters().decisions.values().sum::<u64>() as usize
}

fn main() {
    let events: u64 = std::env::var("NUDGE_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let rounds: usize = std::env::var("NUDGE_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let mut text = String::new();
    gen_support::generate(events / 100, events, 7, &mut text);
    let lines: Vec<&str> = text.lines().collect();
    let program = program();

    let mut parse = || {
        lines
            .iter()
            .filter(|l| serde_json::from_str::<serde_json::Value>(black_box(l)).is_ok())
            .count()
    };
    let mut interp = || run(&program, &lines, false);
    let mut jit = || run(&program, &lines, true);
    // End to end, from a file: the `nudge` binary, against reading the same file
    // line by line (UTF-8 checked, as the binary does) and parsing each line.
    let file = std::env::temp_dir().join(format!("nudge-throughput-{}.ndjson", std::process::id()));
    if let Err(e) = std::fs::write(&file, &text) {
        panic!("cannot write {}: {e}", file.display());
    }
    let mut parse_file = || {
        let mut reader = BufReader::new(File::open(&file).expect("the input file"));
        let mut line = Vec::new();
        let mut parsed = 0;
        while reader.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
            if let Ok(text) = std::str::from_utf8(&line) {
                parsed += usize::from(serde_json::from_str::<serde_json::Value>(text).is_ok());
            }
            line.clear();
        }
        parsed
    };
    let mut binary = || {
        let status = Command::new(env!("CARGO_BIN_EXE_nudge"))
            .args([
                "run",
                "--policy",
                concat!(env!("CARGO_MANIFEST_DIR"), "/examples/retail"),
            ])
            .arg("--events")
            .arg(&file)
            .args(["--out", "/dev/null", "--dead-letter", "/dev/null"])
            .status()
            .expect("nudge runs");
        assert!(status.success(), "nudge run failed");
        0
    };
    // Rounds alternate between the jobs, so that a noisy moment on this shared
    // machine weighs on all of them; each keeps its best time.
    let mut jobs: [(&str, &mut dyn FnMut() -> usize, f64, usize); 5] = [
        ("parse only (serde_json)", &mut parse, f64::MAX, 0),
        ("nudge run (interp)", &mut interp, f64::MAX, 0),
        ("nudge run (jit)", &mut jit, f64::MAX, 0),
        ("file: parse only", &mut parse_file, f64::MAX, 0),
        ("file: nudge binary (jit)", &mut binary, f64::MAX, 0),
    ];
    for _ in 0..rounds {
        for (_, f, best, result) in jobs.iter_mut() {
            let (t, r) = timed(*f);
            *best = best.min(t);
            *result = r;
        }
    }
    let n = lines.len() as f64;
    println!(
        "input: {} lines ({} parsed as JSON), {} profiles; best of {rounds} rounds",
        lines.len(),
        jobs[0].3,
        events / 100
    );
    let _ = std::fs::remove_file(&file);
    println!("{:<28} {:>14} {:>10}", "", "events/s", "ratio");
    for (i, (name, _, best, _)) in jobs.iter().enumerate() {
        // In memory against parsing in memory, from a file against parsing from it.
        let baseline = if i < 3 { jobs[0].2 } else { jobs[3].2 };
        println!("{name:<28} {:>14.0} {:>10.2}", n / best, baseline / best);
    }
    assert_eq!(
        jobs[1].3, jobs[2].3,
        "both evaluators make the same decisions"
    );
    println!("decisions: {}", jobs[1].3);
}
