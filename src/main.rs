//! The `nudge` command line (CLI.md). One module per subcommand under `cli/`.
#![forbid(unsafe_code)]

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
