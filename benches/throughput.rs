//! `nudge run` throughput against a parse-only baseline on the same input, in the
//! same process (machines here are shared and noisy: compare ratios, not raw
//! figures).
//!
//! ```sh
//! cargo bench --bench throughput            # 1M events, 10k profiles
//! NUDGE_BENCH_EVENTS=200000 cargo bench --bench throughput
//! ```

#[path = "support/gen.rs"]
mod gen_support;

#[path = "support/retail.rs"]
mod retail;

use nudge::io::input::Reader;
use nudge::io::output::write_decision;
use nudge::runtime::Engine;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

fn program() -> Arc<nudge::ir::Program> {
    retail::program(&[])
}

/// Best of `rounds` timings of `f`, in seconds.
fn best(rounds: usize, mut f: impl FnMut() -> usize) -> (f64, usize) {
    let mut best = f64::MAX;
    let mut result = 0;
    for _ in 0..rounds {
        let start = Instant::now();
        result = f();
        best = best.min(start.elapsed().as_secs_f64());
    }
    (best, result)
}

fn main() {
    let events: u64 = std::env::var("NUDGE_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let mut text = String::new();
    gen_support::generate(events / 100, events, 7, &mut text);
    let lines: Vec<&str> = text.lines().collect();
    let program = program();

    let (parse, parsed) = best(3, || {
        lines
            .iter()
            .filter(|l| serde_json::from_str::<serde_json::Value>(black_box(l)).is_ok())
            .count()
    });
    let (run, decisions) = best(3, || {
        let reader = Reader::new(Arc::clone(&program));
        let mut engine = Engine::new(Arc::clone(&program));
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let mut text = String::new();
        for line in &lines {
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
    });
    let n = lines.len() as f64;
    println!(
        "input: {} lines ({} parsed as JSON), {} profiles",
        lines.len(),
        parsed,
        events / 100
    );
    println!("{:<28} {:>14} {:>10}", "", "events/s", "ratio");
    println!(
        "{:<28} {:>14.0} {:>10.2}",
        "parse only (serde_json)",
        n / parse,
        1.0
    );
    println!(
        "{:<28} {:>14.0} {:>10.2}",
        "nudge run (interp)",
        n / run,
        parse / run
    );
    println!("decisions: {decisions}");
}
