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
    let clean = runtime.block_on(nudge_lsp::server::serve_stdio());
    // A read of stdin may still be blocked in the runtime's thread pool: it is
    // not waited for (the client may keep the pipe open after `exit`).
    runtime.shutdown_background();
    if clean {
        Outcome::Success
    } else {
        // LSP: `exit` without `shutdown` first (or the client went away) is 1.
        Outcome::PolicyErrors
    }
}
