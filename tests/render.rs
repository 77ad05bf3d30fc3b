//! The machine-readable outputs of `nudge check` for one multi-file, multi-error
//! policy set, snapshotted; and the SARIF log validated against the SARIF 2.1.0
//! JSON schema (`tests/fixtures/sarif-schema-2.1.0.json`, the OASIS schema as
//! shipped in the `serde-sarif` crate).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

use nudge::diagnostic::render;
use nudge::{Sources, analyze};

fn multi() -> Sources {
    let mut sources = Sources::new();
    for name in ["schema.nudge", "journeys.nudge"] {
        let path = format!("{}/tests/cli/multi/{name}", env!("CARGO_MANIFEST_DIR"));
        sources.add(
            format!("policies/{name}"),
            std::fs::read_to_string(path).unwrap(),
        );
    }
    sources
}

#[test]
fn json_output() {
    let sources = multi();
    let analysis = analyze(&sources);
    let value: serde_json::Value =
        serde_json::from_str(&render::json(&sources, &analysis.diagnostics)).unwrap();
    insta::assert_snapshot!(serde_json::to_string_pretty(&value).unwrap());
}

#[test]
fn github_output() {
    let sources = multi();
    let analysis = analyze(&sources);
    insta::assert_snapshot!(render::github(&sources, &analysis.diagnostics));
}

#[test]
fn sarif_output() {
    let sources = multi();
    let analysis = analyze(&sources);
    insta::assert_snapshot!(render::sarif(&sources, &analysis.diagnostics));
}

#[test]
fn human_output_shows_labels_in_other_files() {
    let sources = multi();
    let analysis = analyze(&sources);
    insta::assert_snapshot!(render::human(
        &sources,
        &analysis.diagnostics,
        render::HumanStyle::Plain
    ));
}

#[test]
fn sarif_output_is_valid_sarif_2_1_0() {
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/sarif-schema-2.1.0.json")).unwrap();
    let validator = jsonschema::draft7::new(&schema).expect("the SARIF schema compiles");
    for sources in [multi(), Sources::new()] {
        let analysis = analyze(&sources);
        let log: serde_json::Value =
            serde_json::from_str(&render::sarif(&sources, &analysis.diagnostics)).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&log)
            .map(|e| format!("{e} at {}", e.instance_path))
            .collect();
        assert!(errors.is_empty(), "{errors:#?}");
    }
    // The validator does reject what is not SARIF.
    let bad = serde_json::json!({ "version": "2.1.0", "runs": [{ "tool": {} }] });
    assert!(!validator.is_valid(&bad));
}
