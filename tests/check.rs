//! Checker tests, one small file per diagnostic code.
//!
//! `tests/check/err/CODE.nudge` is a minimal policy that triggers `CODE` (it is also
//! the example `nudge explain CODE` shows); `tests/check/ok/CODE.nudge` is a near
//! miss that must check clean. Each is checked together with
//! `tests/check/prelude.nudge`, the shared schema, unless it declares its own
//! `profile`. The rendered diagnostics of every err file are snapshotted.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

use nudge::diagnostic::render::{HumanStyle, human};
use nudge::{Code, FileId, Sources, analyze};
use std::collections::BTreeSet;
use std::path::Path;

fn dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/check"))
}

/// The policy set of one test file: the file, after the prelude when it uses it.
fn set_for(path: &Path) -> (Sources, FileId) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut sources = Sources::new();
    let standalone = text.lines().any(|l| l.starts_with("profile "));
    if !standalone {
        let prelude = std::fs::read_to_string(dir().join("prelude.nudge")).unwrap();
        sources.add("prelude.nudge", prelude);
    }
    let name = format!(
        "{}/{}",
        path.parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy(),
        path.file_name().unwrap().to_string_lossy()
    );
    let id = sources.add(name, text);
    (sources, id)
}

/// The prelude and one more file, `name`, analysed; with the rendered report
/// for assertion messages.
fn with_prelude(name: &str, text: &str) -> (nudge::Analysis, String) {
    let mut sources = Sources::new();
    sources.add(
        "prelude.nudge",
        std::fs::read_to_string(dir().join("prelude.nudge")).unwrap(),
    );
    sources.add(name, text);
    let analysis = analyze(&sources);
    let report = human(&sources, &analysis.diagnostics, HumanStyle::Plain);
    (analysis, report)
}

/// The codes of an analysis's diagnostics, in order.
fn codes(analysis: &nudge::Analysis) -> Vec<&str> {
    analysis
        .diagnostics
        .iter()
        .map(|d| d.code.as_str())
        .collect()
}

fn code_of(path: &Path) -> Code {
    let stem = path.file_stem().unwrap().to_string_lossy();
    let code = stem.split('_').next().unwrap();
    Code::parse(code).unwrap_or_else(|| panic!("{} is not named after a code", path.display()))
}

#[test]
fn err_files_trigger_their_code() {
    insta::glob!("check/err/*.nudge", |path| {
        let (sources, id) = set_for(path);
        let analysis = analyze(&sources);
        let code = code_of(path);
        assert!(
            analysis.diagnostics.iter().all(|d| d.primary.file == id),
            "the prelude has diagnostics:\n{}",
            human(&sources, &analysis.diagnostics, HumanStyle::Plain)
        );
        assert!(
            analysis.diagnostics.iter().any(|d| d.code == code),
            "{} does not report {code}:\n{}",
            path.display(),
            human(&sources, &analysis.diagnostics, HumanStyle::Plain)
        );
        insta::assert_snapshot!(human(&sources, &analysis.diagnostics, HumanStyle::Plain));
    });
}

#[test]
fn near_misses_check_clean() {
    insta::glob!("check/ok/*.nudge", |path| {
        let (sources, _) = set_for(path);
        let analysis = analyze(&sources);
        assert!(
            analysis.diagnostics.is_empty(),
            "{} should check clean:\n{}",
            path.display(),
            human(&sources, &analysis.diagnostics, HumanStyle::Plain)
        );
    });
}

#[test]
fn every_code_has_a_trigger_a_near_miss_and_an_explain_page() {
    let files = |sub: &str| -> BTreeSet<String> {
        std::fs::read_dir(dir().join(sub))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    let (err, ok) = (files("err"), files("ok"));
    for code in Code::ALL {
        let name = format!("{code}.nudge");
        assert!(err.contains(&name), "no tests/check/err/{name}");
        assert!(ok.contains(&name), "no tests/check/ok/{name}");
        let page = nudge::diagnostic::explain(*code);
        assert!(
            page.contains(code.as_str()) && page.contains("Example") && page.contains("Fix"),
            "{page}"
        );
    }
}

/// A file with three independent mistakes reports exactly three errors.
#[test]
fn three_mistakes_three_errors() {
    let text = r#"
journey j {
  owner "qa"
  when cart_abandonned
  send t via emial
  if profile.first_name == "Ana" { stop }
}
template t { email { subject: "Hi" } }
"#;
    let (analysis, report) = with_prelude("three.nudge", text);
    assert_eq!(codes(&analysis), ["N101", "N104", "T202"], "{report}");
}

/// An unknown trigger event does not make every `event.`/`trigger.` use an error.
#[test]
fn unknown_names_do_not_cascade() {
    let text = r#"
journey j {
  owner "qa"
  when cart_abandonned where event.cart_value > 10 and event.whatever == "x"
  if trigger.anything > 3 { send t via email }
}
template t { email { subject: "{{trigger.category}}" } }
"#;
    let (analysis, report) = with_prelude("cascade.nudge", text);
    assert_eq!(codes(&analysis), ["N101"], "{report}");
}

/// A declaration with a syntax error is not reported again as unknown.
#[test]
fn syntax_errors_do_not_cascade_into_unknown_names() {
    let text = r#"
event signup { plan: string source: string }
template welcome { email { subject: "Hi {{trigger.plan}}" }
journey j {
  owner "qa"
  when signup where event.plan == "pro"
  send welcome via email
}
"#;
    let (analysis, report) = with_prelude("broken.nudge", text);
    assert_eq!(codes(&analysis), ["S011", "S001"], "{report}");
}

/// A template sent by two journeys is checked against each trigger.
#[test]
fn templates_are_checked_against_every_sending_journey() {
    let text = r#"
journey a {
  owner "qa"
  when cart_abandoned
  send t via email
}
journey b {
  owner "qa"
  when purchase
  send t via email
}
template t { email { subject: "{{trigger.category}}" } }
"#;
    let (analysis, _) = with_prelude("two.nudge", text);
    let messages: Vec<&str> = analysis
        .diagnostics
        .iter()
        .map(|d| d.message.as_str())
        .collect();
    assert_eq!(
        messages,
        [
            "`purchase`, the trigger of the journey `b` that sends this template, has no property `category`"
        ]
    );
}
