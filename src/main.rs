//! The `nudge` command line (CLI.md). One module per subcommand under `cli/`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
