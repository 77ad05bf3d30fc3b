//! Argument parsing and dispatch. Exit codes (CLI.md): 0 success, 1 the policy set
//! has errors, 2 usage or IO error.

mod check;
mod compile;
mod diff;
mod explain;
mod fmt;
mod load;
mod lsp;
mod report;
mod run;
mod serve;
mod simulate;
mod stats;
mod store;
mod test;
mod why;

use clap::{Parser, Subcommand};
use nudge::diagnostic::render;
use std::io::IsTerminal;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "nudge", version, about = "Check and run journey policies")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a policy set and report problems.
    Check(check::CheckArgs),
    /// Print the native-code compiler's output for a policy set.
    Compile(compile::CompileArgs),
    /// Explain a diagnostic code: what it means, an example, the fix.
    Explain(explain::ExplainArgs),
    /// Rewrite policy files in the canonical layout.
    Fmt(fmt::FmtArgs),
    /// Run a policy set against a stream of events.
    Run(run::RunArgs),
    /// Start the language server on stdio.
    Lsp,
    /// Why did (or didn't) a customer get a message: one profile's timeline.
    Why(why::WhyArgs),
    /// Run the `test` declarations of a policy set.
    Test(test::TestArgs),
    /// What a change to a policy set would do, over the same events.
    Diff(diff::DiffArgs),
    /// A backtest: a report of what the policy set would have done.
    Simulate(simulate::SimulateArgs),
    /// Run the policies as a service over a Kafka topic (CLI.md `serve`).
    Serve(Box<serve::ServeArgs>),
}

/// How a command ended; mapped to the exit codes of CLI.md.
pub enum Outcome {
    Success,
    PolicyErrors,
    UsageOrIo,
}

/// Writes a command's output to stdout. A reader that stopped reading
/// (`nudge compile … | head -1`) ends the command quietly, as other Unix tools
/// do; any other write error is an IO error.
fn print_out(text: &str) -> Outcome {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => Outcome::Success,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Outcome::Success,
        Err(e) => usage_error(format!("cannot write to standard output: {e}")),
    }
}

/// A usage or IO error: reported on stderr, exit code 2.
fn usage_error(message: impl std::fmt::Display) -> Outcome {
    eprintln!("error: {message}");
    Outcome::UsageOrIo
}

/// Colours for reports on stderr: when it is a terminal and `NO_COLOR` is unset.
fn stderr_style() -> render::HumanStyle {
    if std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none() {
        render::HumanStyle::Color
    } else {
        render::HumanStyle::Plain
    }
}

/// The lowered program of a policy set that is to run (`run`, `why`): its
/// errors printed and exit 1 if it has any, exit 2 if it cannot be read.
fn program(paths: &[std::path::PathBuf]) -> Result<std::sync::Arc<nudge::ir::Program>, Outcome> {
    program_and_bounds(paths).map(|(p, _)| p)
}

/// [`program`] and (1.1) the set's proven volume bounds (LANGUAGE.md §9a).
fn program_and_bounds(
    paths: &[std::path::PathBuf],
) -> Result<
    (
        std::sync::Arc<nudge::ir::Program>,
        nudge::check::bounds::Bounds,
    ),
    Outcome,
> {
    let sources = load::load(paths).map_err(|e| usage_error(e.0))?;
    let analysis = nudge::analyze(&sources);
    if analysis.has_errors() {
        let errors = print_errors(&sources, &analysis, stderr_style());
        eprintln!("error: the policy set has {errors} error(s); nothing was run");
        return Err(Outcome::PolicyErrors);
    }
    let program = nudge::ir::lower(&analysis.modules)
        .map(std::sync::Arc::new)
        .map_err(usage_error)?;
    Ok((
        program,
        nudge::check::bounds::bounds(&sources, &analysis.modules),
    ))
}

/// Prints the errors of an analysis (not its warnings) to stderr; how many.
fn print_errors(
    sources: &nudge::Sources,
    analysis: &nudge::Analysis,
    style: render::HumanStyle,
) -> usize {
    let errors: Vec<_> = analysis
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .cloned()
        .collect();
    eprint!("{}", render::human(sources, &errors, style));
    errors.len()
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // clap prints help and version to stdout with status 0, usage errors to
        // stderr with status 2.
        Err(e) => e.exit(),
    };
    let outcome = match cli.command {
        Command::Check(args) => check::run(args),
        Command::Explain(args) => explain::run(args),
        Command::Compile(args) => compile::run(args),
        Command::Fmt(args) => fmt::run(args),
        Command::Run(args) => run::run(args),
        Command::Serve(args) => serve::run(*args),
        Command::Lsp => lsp::run(),
        Command::Why(args) => why::run(args),
        Command::Test(args) => test::run(args),
        Command::Diff(args) => diff::run(args),
        Command::Simulate(args) => simulate::run(args),
    };
    match outcome {
        Outcome::Success => ExitCode::SUCCESS,
        Outcome::PolicyErrors => ExitCode::from(1),
        Outcome::UsageOrIo => ExitCode::from(2),
    }
}
