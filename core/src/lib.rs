//! Nudge: a checker, compiler and event-time runtime for journey policies.
//!
//! The pipeline, one module per stage: [`syntax`] (text → AST, never fails) →
//! `check` (names, types, policy rules) → `ir` → `interp` / `jit` → `runtime`.
//! The library does no IO: callers hand it text and get values back; the `nudge`
//! binary and the language server do the reading and writing.

#![deny(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod analysis;
pub mod check;
pub mod diagnostic;
pub mod fmt;
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
pub mod source;
pub mod stdx;
pub mod syntax;
pub mod testing;

pub use analysis::{Analysis, analyze};
pub use diagnostic::{Code, Diagnostic, Severity};
pub use source::{FileId, Sources, Span};
