//! `nudge test` (1.1): runs the `test` declarations of a policy set
//! (LANGUAGE.md §10, CLI.md), for people (`human`), for tools (`json`) and for
//! CI dashboards (`junit`, the JUnit XML that GitHub, GitLab and Jenkins
//! test reporters read).

use crate::cli::Outcome;
use crate::cli::load::load;
use nudge::testing::{self, Case, Failure};
use nudge::{FileId, Sources};
use std::fmt::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

#[derive(clap::Args)]
pub struct TestArgs {
    /// Policy files or directories (searched recursively for `*.nudge`).
    paths: Vec<PathBuf>,
    /// Run only the tests whose name contains this text.
    #[arg(long)]
    filter: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Human,
    Json,
    Junit,
}

/// One test's result, with where it is written.
struct Ran<'a> {
    case: Case<'a>,
    outcome: testing::Outcome,
    seconds: f64,
}

pub fn run(args: TestArgs) -> Outcome {
    let sources = match load(&args.paths) {
        Ok(s) => s,
        Err(e) => return super::usage_error(e.0),
    };
    let analysis = nudge::analyze(&sources);
    if analysis.has_errors() {
        let errors = super::print_errors(&sources, &analysis, super::stderr_style());
        eprintln!("error: the policy set has {errors} error(s); no test was run");
        return Outcome::PolicyErrors;
    }
    let program = match nudge::ir::lower(&analysis.modules) {
        Ok(p) => Arc::new(p),
        Err(e) => return super::usage_error(e),
    };
    let cases = testing::cases(&analysis.modules, args.filter.as_deref());
    if cases.is_empty() {
        return super::usage_error(match &args.filter {
            Some(f) => format!("no test's name contains `{f}`"),
            None => "the policy set has no `test` declaration (LANGUAGE.md §10)".to_string(),
        });
    }
    // The engine `nudge run` uses by default: native code for the conditions.
    let jit = match nudge::jit::Jit::compile(Arc::clone(&program)) {
        Ok(jit) => std::rc::Rc::new(jit),
        Err(e) => return super::usage_error(e),
    };
    let started = Instant::now();
    let ran: Vec<Ran<'_>> = cases
        .into_iter()
        .map(|case| {
            let t = Instant::now();
            let text = &sources.get(case.file).text;
            let outcome = testing::run(&program, &case, text, |engine| {
                engine.use_jit(std::rc::Rc::clone(&jit))
            });
            Ran {
                case,
                outcome,
                seconds: t.elapsed().as_secs_f64(),
            }
        })
        .collect();
    let total = started.elapsed().as_secs_f64();
    let text = match args.format {
        Format::Human => human(&sources, &ran),
        Format::Json => json(&sources, &ran),
        Format::Junit => junit(&sources, &ran, total),
    };
    match super::print_out(&text) {
        Outcome::Success if ran.iter().all(|r| r.outcome.passed()) => Outcome::Success,
        Outcome::Success => Outcome::PolicyErrors,
        other => other,
    }
}

/// `file:line:column` of a span.
fn place(sources: &Sources, file: FileId, offset: u32) -> (String, u32, u32) {
    let f = sources.get(file);
    let at = f.lines.line_col(&f.text, offset as usize);
    (f.name.clone(), at.line, at.column)
}

fn human(sources: &Sources, ran: &[Ran<'_>]) -> String {
    let mut out = String::new();
    for r in ran {
        let status = if r.outcome.passed() { "ok" } else { "FAILED" };
        let _ = writeln!(out, "test {} ... {status}", r.case.test.name.name);
    }
    for r in ran.iter().filter(|r| !r.outcome.passed()) {
        let _ = writeln!(out, "\n---- {} ----", r.case.test.name.name);
        write_failures(&mut out, sources, r);
    }
    let passed = ran.iter().filter(|r| r.outcome.passed()).count();
    let _ = writeln!(out, "\n{passed} passed, {} failed", ran.len() - passed);
    out
}

/// Each failed expectation of a test: its place, its text as written, and
/// the decisions that came closest (the human report and JUnit's body).
fn write_failures(out: &mut String, sources: &Sources, r: &Ran<'_>) {
    let text = &sources.get(r.case.file).text;
    for f in &r.outcome.failures {
        let (file, line, column) = place(sources, r.case.file, f.span.start);
        let _ = writeln!(out, "{file}:{line}:{column}: {}", f.message);
        for l in text.get(f.span.range()).unwrap_or_default().lines() {
            let _ = writeln!(out, "    {}", l.trim_end());
        }
        closest(out, f);
    }
}

/// The decisions that came closest, each differing field side by side.
fn closest(out: &mut String, f: &Failure) {
    if f.closest.is_empty() {
        return;
    }
    // `expect no`: the decision that should not be there; else the near misses.
    let matching = f.closest.iter().all(|c| c.differences.is_empty());
    let title = if matching {
        "the decision that matches"
    } else {
        "closest decisions"
    };
    let _ = writeln!(out, "  {title}:");
    for c in &f.closest {
        let _ = writeln!(out, "    {}", c.decision);
        if c.differences.is_empty() {
            continue;
        }
        let width = c
            .differences
            .iter()
            .map(|(k, _, _)| k.len())
            .max()
            .unwrap_or(0)
            .max(5);
        let expected = c
            .differences
            .iter()
            .map(|(_, e, _)| e.chars().count())
            .max()
            .unwrap_or(0)
            .max(8);
        let _ = writeln!(
            out,
            "      {:width$}  {:expected$}  found",
            "field", "expected"
        );
        for (k, e, got) in &c.differences {
            let _ = writeln!(out, "      {k:width$}  {e:expected$}  {got}");
        }
    }
}

fn json(sources: &Sources, ran: &[Ran<'_>]) -> String {
    let tests: Vec<serde_json::Value> = ran
        .iter()
        .map(|r| {
            let (file, line, column) = place(sources, r.case.file, r.case.decl.span.start);
            let text = &sources.get(r.case.file).text;
            let failures: Vec<serde_json::Value> = r
                .outcome
                .failures
                .iter()
                .map(|f| {
                    let (_, line, column) = place(sources, r.case.file, f.span.start);
                    serde_json::json!({
                        "message": f.message,
                        "expectation": text.get(f.span.range()).unwrap_or_default(),
                        "line": line,
                        "column": column,
                        "closest": f.closest.iter().map(|c| serde_json::json!({
                            "decision": c.decision,
                            "differences": c.differences.iter().map(|(field, expected, found)| {
                                serde_json::json!({"field": field, "expected": expected, "found": found})
                            }).collect::<Vec<_>>(),
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            serde_json::json!({
                "name": r.case.test.name.name,
                "file": file,
                "line": line,
                "column": column,
                "passed": r.outcome.passed(),
                "decisions": r.outcome.decisions.len(),
                "failures": failures,
                "seconds": r.seconds,
            })
        })
        .collect();
    let passed = ran.iter().filter(|r| r.outcome.passed()).count();
    serde_json::json!({
        "tests": tests,
        "passed": passed,
        "failed": ran.len() - passed,
    })
    .to_string()
        + "\n"
}

/// JUnit XML as Jenkins, GitLab and GitHub reporters read it: one
/// `testsuite` per file, one `testcase` per test, a `failure` per failing
/// test with every failed expectation in its text.
fn junit(sources: &Sources, ran: &[Ran<'_>], total: f64) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let failures = ran.iter().filter(|r| !r.outcome.passed()).count();
    let _ = writeln!(
        out,
        "<testsuites name=\"nudge test\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" time=\"{total:.3}\">",
        ran.len()
    );
    let mut files: Vec<FileId> = ran.iter().map(|r| r.case.file).collect();
    files.dedup();
    for file in files {
        let here: Vec<&Ran<'_>> = ran.iter().filter(|r| r.case.file == file).collect();
        let name = &sources.get(file).name;
        let failed = here.iter().filter(|r| !r.outcome.passed()).count();
        let time: f64 = here.iter().map(|r| r.seconds).sum();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failed}\" errors=\"0\" skipped=\"0\" time=\"{time:.3}\">",
            xml(name),
            here.len()
        );
        for r in here {
            let (file_name, line, _) = place(sources, file, r.case.decl.span.start);
            let _ = write!(
                out,
                "    <testcase name=\"{}\" classname=\"{}\" file=\"{}\" line=\"{line}\" time=\"{:.3}\"",
                xml(&r.case.test.name.name),
                xml(&classname(&file_name)),
                xml(&file_name),
                r.seconds
            );
            if r.outcome.passed() {
                out.push_str("/>\n");
                continue;
            }
            out.push_str(">\n");
            let first = &r.outcome.failures[0];
            let mut body = String::new();
            write_failures(&mut body, sources, r);
            let _ = writeln!(
                out,
                "      <failure message=\"{}\" type=\"expectation\">{}</failure>",
                xml(&first.message),
                xml(&body)
            );
            out.push_str("    </testcase>\n");
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// A JUnit class name from a file: `tests/cart.nudge` → `tests.cart`.
fn classname(file: &str) -> String {
    file.trim_end_matches(".nudge").replace(['/', '\\'], ".")
}

/// Text escaped for XML attributes and content; characters XML 1.0 cannot
/// hold at all are dropped.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' | '\t' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}
