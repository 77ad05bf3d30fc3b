//! `nudge run`: the policies against a stream of events (CLI.md `run`).

use crate::cli::Outcome;
use crate::cli::load::load;
use nudge::diagnostic::render;
use nudge::io::input::Reader;
use nudge::io::output::{dead_letter_json, decision_json};
use nudge::runtime::{Engine, time};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

#[derive(clap::Args)]
pub struct RunArgs {
    /// Policy files or directories (searched recursively for `*.nudge`).
    #[arg(long, num_args = 1.., required = true)]
    policy: Vec<PathBuf>,
    /// Segment-spec JSON lines to read; `-` is stdin (the default).
    #[arg(long, default_value = "-")]
    events: String,
    /// Where to write decisions; `-` is stdout (the default).
    #[arg(long, default_value = "-")]
    out: String,
    /// Where to write rejected lines; without it they are reported on stderr.
    #[arg(long)]
    dead_letter: Option<PathBuf>,
    /// At end of input, fire every pending timer in time order.
    #[arg(long, conflicts_with = "until")]
    drain: bool,
    /// At end of input, fire the timers due up to this RFC 3339 time.
    #[arg(long, value_parser = parse_time)]
    until: Option<i64>,
    /// A durable state directory (not available yet).
    #[arg(long)]
    state: Option<PathBuf>,
    /// The evaluator: the reference interpreter, or the Cranelift JIT.
    #[arg(long, value_enum, default_value_t = EngineKind::Interp)]
    engine: EngineKind,
    /// Print counters to stderr on exit.
    #[arg(long)]
    stats: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum EngineKind {
    Jit,
    Interp,
}

fn parse_time(s: &str) -> Result<i64, String> {
    time::parse_rfc3339(s)
        .ok_or_else(|| format!("`{s}` is not an RFC 3339 time such as 2026-11-29T10:00:00Z"))
}

fn fail(message: impl std::fmt::Display) -> Outcome {
    eprintln!("error: {message}");
    Outcome::UsageOrIo
}

pub fn run(args: RunArgs) -> Outcome {
    if args.engine == EngineKind::Jit {
        return fail("the Cranelift engine is not built yet; run with `--engine interp`");
    }
    if args.state.is_some() {
        return fail("durable state (`--state`) is not available yet; run without it");
    }
    let sources = match load(&args.policy) {
        Ok(s) => s,
        Err(e) => return fail(e.0),
    };
    let analysis = nudge::analyze(&sources);
    if analysis.has_errors() {
        let style = if std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none() {
            render::HumanStyle::Color
        } else {
            render::HumanStyle::Plain
        };
        let errors: Vec<_> = analysis
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .cloned()
            .collect();
        eprint!("{}", render::human(&sources, &errors, style));
        eprintln!(
            "error: the policy set has {} error(s); nothing was run",
            errors.len()
        );
        return Outcome::PolicyErrors;
    }
    let program = match nudge::ir::lower(&analysis.modules) {
        Ok(p) => Arc::new(p),
        Err(e) => return fail(e),
    };
    let input: Box<dyn BufRead> = if args.events == "-" {
        Box::new(BufReader::new(std::io::stdin().lock()))
    } else {
        match File::open(&args.events) {
            Ok(f) => Box::new(BufReader::with_capacity(1 << 16, f)),
            Err(e) => return fail(format!("cannot read `{}`: {e}", args.events)),
        }
    };
    let mut out: Box<dyn Write> = if args.out == "-" {
        Box::new(BufWriter::with_capacity(1 << 16, std::io::stdout().lock()))
    } else {
        match File::create(&args.out) {
            Ok(f) => Box::new(BufWriter::with_capacity(1 << 16, f)),
            Err(e) => return fail(format!("cannot write `{}`: {e}", args.out)),
        }
    };
    let mut dead_out: Option<BufWriter<File>> = match &args.dead_letter {
        Some(path) => match File::create(path) {
            Ok(f) => Some(BufWriter::new(f)),
            Err(e) => return fail(format!("cannot write `{}`: {e}", path.display())),
        },
        None => None,
    };
    let reader = Reader::new(Arc::clone(&program));
    let mut engine = Engine::new(program);
    let started = Instant::now();
    let mut decisions = Vec::new();
    let mut lines_read: u64 = 0;
    let mut dead_letters: u64 = 0;
    let mut buf = Vec::new();
    let mut input = input;
    loop {
        buf.clear();
        match input.read_until(b'\n', &mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => return fail(format!("cannot read events: {e}")),
        }
        lines_read += 1;
        let (raw, utf8) = match std::str::from_utf8(&buf) {
            Ok(s) => (std::borrow::Cow::Borrowed(s), true),
            Err(_) => (String::from_utf8_lossy(&buf), false),
        };
        let line = raw.trim_end_matches(['\n', '\r']);
        if line.trim().is_empty() {
            continue;
        }
        let parsed = if utf8 {
            reader.read(line)
        } else {
            Err(nudge::io::input::DeadLetter("not UTF-8 text".into()))
        };
        match parsed {
            Ok(event) => {
                engine.process(event, &mut decisions);
            }
            Err(dead) => {
                dead_letters += 1;
                match dead_out.as_mut() {
                    Some(w) => {
                        if writeln!(w, "{}", dead_letter_json(lines_read, &dead.0, line)).is_err() {
                            return fail("cannot write the dead-letter file");
                        }
                    }
                    None => eprintln!("rejected line {lines_read}: {}", dead.0),
                }
            }
        }
        if let Err(e) = write_all(&mut out, &mut decisions) {
            return write_failed(&e);
        }
    }
    if args.drain {
        engine.drain(&mut decisions);
    } else if let Some(until) = args.until {
        engine.advance_to(until, &mut decisions);
    }
    if let Err(e) = write_all(&mut out, &mut decisions).and_then(|()| out.flush()) {
        return write_failed(&e);
    }
    if let Some(w) = dead_out.as_mut()
        && w.flush().is_err()
    {
        return fail("cannot write the dead-letter file");
    }
    if args.stats {
        let elapsed = started.elapsed().as_secs_f64().max(1e-9);
        let c = engine.counters();
        eprintln!("events read        {lines_read}");
        eprintln!("events per second  {:.0}", lines_read as f64 / elapsed);
        eprintln!("dead letters       {dead_letters}");
        eprintln!("duplicates         {}", c.duplicates);
        eprintln!("ignored            {}", c.ignored);
        eprintln!("late events        {}", c.late);
        for kind in [
            "entered",
            "send",
            "deferred",
            "suppressed",
            "holdout",
            "exited",
            "completed",
        ] {
            eprintln!(
                "decisions {kind:<11}{}",
                c.decisions.get(kind).copied().unwrap_or(0)
            );
        }
        eprintln!("divisions by zero  {}", c.divisions_by_zero);
        eprintln!("pending timers     {}", engine.pending_timers());
        eprintln!("peak profiles held {}", c.peak_profiles);
    } else if dead_letters > 0 && dead_out.is_none() {
        eprintln!("{dead_letters} line(s) rejected; use --dead-letter FILE to keep them");
    }
    Outcome::Success
}

/// A reader that stopped reading (`nudge run … | head`) ends the run quietly.
fn write_failed(e: &std::io::Error) -> Outcome {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        Outcome::Success
    } else {
        fail(format!("cannot write decisions: {e}"))
    }
}

fn write_all(
    out: &mut dyn Write,
    decisions: &mut Vec<nudge::runtime::Decision>,
) -> std::io::Result<()> {
    for d in decisions.drain(..) {
        out.write_all(decision_json(&d).as_bytes())?;
        out.write_all(b"\n")?;
    }
    Ok(())
}
