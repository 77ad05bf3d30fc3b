//! Property tests: whatever the text, the parser returns, and every diagnostic it
//! returns points inside the file, on character boundaries.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

use nudge::{FileId, Sources};
use proptest::prelude::*;

/// Policy text the mutations start from: every valid parser test file.
fn seeds() -> Vec<String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/parse/ok");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("tests/parse/ok exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read_to_string(p).expect("readable"))
        .collect()
}

/// Fragments that stress the grammar's corners when spliced in anywhere.
const FRAGMENTS: &[&str] = &[
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    "\"",
    "{{",
    "}}",
    "//",
    "///",
    "\n",
    ",",
    ":",
    "=",
    "==",
    "?",
    "??",
    "%",
    "30m",
    "25:00",
    "journey",
    "when",
    "send",
    "via",
    "split",
    "if",
    "else",
    "not",
    "-",
    "é",
    "🎉",
    "\\",
    "\\u{",
    "\r\n",
    "2026-11-29T10:00:00Z",
    "1h30m",
    "template",
];

#[derive(Debug, Clone)]
enum Edit {
    Delete { at: usize, len: usize },
    Insert { at: usize, fragment: usize },
    Duplicate { at: usize, len: usize },
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 1usize..40).prop_map(|(at, len)| Edit::Delete { at, len }),
        (any::<usize>(), 0..FRAGMENTS.len())
            .prop_map(|(at, fragment)| Edit::Insert { at, fragment }),
        (any::<usize>(), 1usize..80).prop_map(|(at, len)| Edit::Duplicate { at, len }),
    ]
}

fn floor_boundary(text: &str, mut at: usize) -> usize {
    at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn apply(text: &mut String, edit: &Edit) {
    if text.is_empty() {
        text.push_str("journey");
        return;
    }
    match *edit {
        Edit::Delete { at, len } => {
            let start = floor_boundary(text, at % text.len());
            let end = floor_boundary(text, start + len);
            text.replace_range(start..end, "");
        }
        Edit::Insert { at, fragment } => {
            let at = floor_boundary(text, at % (text.len() + 1));
            text.insert_str(at, FRAGMENTS[fragment]);
        }
        Edit::Duplicate { at, len } => {
            let start = floor_boundary(text, at % text.len());
            let end = floor_boundary(text, start + len);
            let piece = text[start..end].to_string();
            text.insert_str(end, &piece);
        }
    }
}

fn assert_well_formed(text: &str) {
    let parsed = nudge::syntax::parse(FileId(0), text);
    for d in &parsed.diagnostics {
        for label in std::iter::once(&d.primary).chain(&d.secondary) {
            let (start, end) = (label.span.start as usize, label.span.end as usize);
            assert!(
                start <= end && end <= text.len(),
                "span {start}..{end} outside {} bytes: {d:?}",
                text.len()
            );
            assert!(
                text.is_char_boundary(start) && text.is_char_boundary(end),
                "span not on a char boundary: {d:?}"
            );
        }
        assert!(!d.message.is_empty());
        assert!(
            !d.message.contains("Rule::") && !d.message.contains("kw_"),
            "rule name leaked: {}",
            d.message
        );
    }
    // Rendering must not panic either. miette re-reads the file for each report,
    // so the pathological inputs with thousands of errors render only the first ones.
    let mut sources = Sources::new();
    sources.add("fuzz.nudge", text);
    let some = &parsed.diagnostics[..parsed.diagnostics.len().min(50)];
    let _ = nudge::diagnostic::render::human(
        &sources,
        some,
        nudge::diagnostic::render::HumanStyle::Plain,
    );
    let _ = nudge::diagnostic::render::json(&sources, &parsed.diagnostics);
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
    #![proptest_config(ProptestConfig { cases: fuzz_cases(512), ..ProptestConfig::default() })]

    #[test]
    fn mutated_policies_never_panic(seed in any::<prop::sample::Index>(), edits in prop::collection::vec(edit(), 1..12)) {
        let seeds = seeds();
        let mut text = seed.get(&seeds).clone();
        for e in &edits {
            apply(&mut text, e);
        }
        assert_well_formed(&text);
    }

    #[test]
    fn random_text_never_panics(text in "\\PC{0,400}") {
        assert_well_formed(&text);
    }

    #[test]
    fn random_token_soup_never_panics(tokens in prop::collection::vec(0..FRAGMENTS.len(), 0..200)) {
        let text: String = tokens.iter().map(|&i| FRAGMENTS[i]).collect::<Vec<_>>().join(" ");
        assert_well_formed(&text);
    }
}

#[test]
fn pathological_inputs_return() {
    for text in [
        "(".repeat(100_000),
        format!("segment s = {}1", "not ".repeat(10_000)),
        format!("segment s = {}1", "- ".repeat(10_000)),
        format!("segment s = 1{}", " + 1".repeat(20_000)),
        "{{".repeat(10_000),
        format!(
            "template t {{ email {{ body: \"{}\" }} }}",
            "{{ (".repeat(5_000)
        ),
        "journey j {\n".repeat(5_000),
        "\"".repeat(10_001),
    ] {
        assert_well_formed(&text);
    }
}
