//! Nudge: a checker, compiler and event-time runtime for journey policies.
//!
//! The pipeline, one module per stage: [`syntax`] (text → AST, never fails) →
//! `check` (names, types, policy rules) → `ir` → `interp` / `jit` → `runtime`.
//! The library does no IO: callers hand it text and get values back; the `nudge`
//! binary and the language server do the reading and writing.
//!
//! Architecture invariant: the public surface is the stage modules plus the
//! façade at the end of this file; everything else is private, and no public
//! signature names a type a caller cannot name (`unnameable_types` is denied).

#![deny(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![deny(unnameable_types)]

// The stages are public namespaces: each module's `mod.rs` says what it offers
// and keeps its own parts private. The small modules below them are private and
// offer what callers need through the façade at the end of this file.
mod analysis;
pub mod check;
pub mod diagnostic;
mod fmt;
pub mod interp;
pub mod io;
pub mod ir;
#[cfg(feature = "jit")]
#[allow(
    unsafe_code,
    reason = "calling native code and reading values at fixed offsets: the only unsafe in the library, each block with its SAFETY argument"
)]
pub mod jit;
pub mod runtime;
mod source;
mod stdx;
pub mod syntax;
pub mod testing;

// The façade: what the binary, the language server and the tests use that is
// not a stage of its own.
pub use analysis::{Analysis, analyze};
pub use diagnostic::{Code, Diagnostic, Severity};
pub use fmt::format;
pub use source::{FileId, LineCol, LineIndex, MAX_FILE_BYTES, SourceFile, Sources, Span};
pub use stdx::hash::{FNV64_OFFSET, fnv64};
