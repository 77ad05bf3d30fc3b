//! The Nudge language server.
//!
//! Built on `tower-lsp-server`, the maintained continuation of `tower-lsp` (whose
//! last release is from 2023; biome, oxc and Cedar moved the same way). The crate
//! is split in two: [`engine`] is plain functions over the workspace's documents
//! (tested without any transport), [`server`] is the thin JSON-RPC layer. Only
//! this crate knows LSP types; [`positions`] converts between the library's byte
//! offsets and LSP's UTF-16 positions.
#![forbid(unsafe_code)]

pub mod engine;
pub mod framing;
pub mod index;
pub mod positions;
pub mod server;
