//! `nudge-lsp`: the language server on stdio (also started by `nudge lsp`).
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the language server: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let clean = runtime.block_on(nudge_lsp::server::serve_stdio());
    // A read of stdin may still be blocked in the runtime's thread pool: it is
    // not waited for (the client may keep the pipe open after `exit`).
    runtime.shutdown_background();
    if clean {
        std::process::ExitCode::SUCCESS
    } else {
        // LSP: `exit` without `shutdown` first (or the client went away).
        std::process::ExitCode::from(1)
    }
}
