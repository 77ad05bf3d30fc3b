//! The engine survives arbitrary half-typed text: every request, at every kind of
//! position, on random edits of real policy files, returns without panicking.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

use nudge_lsp::engine::Workspace;
use proptest::prelude::*;
use tower_lsp_server::ls_types::{Position, Range};

fn seed() -> String {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/retail");
    let mut text = String::new();
    for f in [
        "schema.nudge",
        "channels.nudge",
        "segments.nudge",
        "templates.nudge",
        "journeys/cart_recovery.nudge",
        "journeys/welcome.nudge",
    ] {
        text.push_str(&std::fs::read_to_string(format!("{root}/{f}")).unwrap());
        text.push('\n');
    }
    text
}

fn cut(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// Cases per property: the short run of CI by default; `NUDGE_FUZZ_CASES=N`
/// for a long run (README, "Development").
fn fuzz_cases(default: u32) -> u32 {
    std::env::var("NUDGE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: fuzz_cases(64), ..ProptestConfig::default() })]

    #[test]
    fn every_request_survives_half_typed_text(
        cut_at in any::<prop::sample::Index>(),
        cut_len in 0usize..40,
        insert in prop::sample::select(vec!["", "{", "}", "\"", "event.", "trigger.", "profile.", "send x via ", "when ", "é🎉", "(", "//"]),
        lines in prop::collection::vec((0u32..140, 0u32..90), 8),
    ) {
        let mut text = seed();
        let start = cut(&text, cut_at.index(text.len()));
        let end = cut(&text, start + cut_len);
        text.replace_range(start..end, insert);
        let mut ws = Workspace::default();
        let uri = "file:///ws/all.nudge";
        ws.documents.insert(uri.into(), text);
        let snap = ws.analyze();
        let _ = snap.diagnostics();
        let _ = snap.document_symbols(uri);
        let _ = snap.formatting(uri);
        for (line, character) in lines {
            let pos = Position::new(line, character);
            let _ = snap.hover(uri, pos);
            let _ = snap.completion(uri, pos);
            let _ = snap.definition(uri, pos);
            let _ = snap.references(uri, pos, true);
            let _ = snap.rename(uri, pos, "renamed");
            let _ = snap.code_actions(uri, Range::new(Position::new(0, 0), pos));
        }
    }
}
