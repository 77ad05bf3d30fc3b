//! `nudge lsp`: starts the language server on stdio.
//!
//! The server is the `nudge-lsp` binary of the `lsp/` crate (a crate of its own,
//! so that editor dependencies stay out of the CLI and the library). `nudge lsp`
//! runs the `nudge-lsp` next to this executable, or the one on `PATH`, with
//! stdin and stdout handed over.

use crate::cli::Outcome;
use std::process::Command;

pub fn run() -> Outcome {
    let sibling = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("nudge-lsp")))
        .filter(|p| p.exists());
    let program = sibling.unwrap_or_else(|| "nudge-lsp".into());
    match Command::new(&program).status() {
        Ok(status) if status.success() => Outcome::Success,
        // The server's own status: 1 when the client exited without `shutdown`.
        Ok(status) if status.code() == Some(1) => Outcome::PolicyErrors,
        Ok(_) => Outcome::UsageOrIo,
        Err(e) => {
            eprintln!(
                "error: cannot start the language server `{}`: {e}\nhelp: install it with `cargo install --path lsp`",
                program.display()
            );
            Outcome::UsageOrIo
        }
    }
}
