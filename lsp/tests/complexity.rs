//! The language server's work grows linearly with the policy set (the
//! reliability issue): analysing a document twice as large takes about twice
//! as long, never four times. Ratios in one test, never absolute times.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

use nudge_lsp::engine::Workspace;
use std::time::Instant;
use tower_lsp_server::ls_types::Position;

fn document(templates: usize) -> String {
    let mut text = String::from(
        "consent email_marketing opt_out\nprofile { email: string? }\nevent e { x: number }\nchannel email { address profile.email consent email_marketing }\n",
    );
    for i in 0..templates {
        text.push_str(&format!(
            "template t{i} {{ email {{ subject: \"Hello {i}\" }} }}\njourney j{i} {{\n  owner \"x\"\n  when e where event.x > {i}\n  send t{i} via email\n}}\ntemplate unused{i} {{ email {{ subject: \"x\" }} }}\n"
        ));
    }
    text
}

/// The best of three: analysis, diagnostics, a hover and a completion.
fn cost(templates: usize) -> f64 {
    let text = document(templates);
    let mut best = f64::MAX;
    for _ in 0..3 {
        let mut ws = Workspace::default();
        ws.documents
            .insert("file:///ws/big.nudge".into(), text.clone());
        let start = Instant::now();
        let snap = ws.analyze();
        let _ = snap.diagnostics();
        let _ = snap.hover("file:///ws/big.nudge", Position::new(6, 10));
        let _ = snap.completion("file:///ws/big.nudge", Position::new(7, 16));
        best = best.min(start.elapsed().as_secs_f64());
    }
    best
}

#[test]
fn analysis_is_linear_in_the_document() {
    let small = cost(1_500);
    let large = cost(3_000);
    let ratio = large / small;
    assert!(
        ratio < 3.2,
        "doubling the document multiplied the work by {ratio:.2} ({small:.3}s → {large:.3}s)"
    );
}
