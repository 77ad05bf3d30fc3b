//! `nudge lsp`: the language server on stdio, in this process (the server is
//! the `nudge-lsp` library; one installed binary serves every subcommand).

use crate::cli::Outcome;

pub fn run() -> Outcome {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the language server: {e}");
            return Outcome::UsageOrIo;
        }
    };
    if runtime.block_on(nudge_lsp::server::serve_stdio()) {
        Outcome::Success
    } else {
        // LSP: `exit` without `shutdown` first (or the client went away) is 1.
        Outcome::PolicyErrors
    }
}
