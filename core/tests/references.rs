//! The checker records every name it resolves (`Analysis::references`), the
//! one source the language server navigates by: each use is found, with what
//! it refers to, exactly where the text has it; an unknown name has none.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use nudge::check::Symbol;
use nudge::{Sources, analyze};

const SET: &str = r#"consent email_marketing opt_in
profile { email: string?, tier: string = "standard" }
event signup { plan: string }
event order { total: number, plan: string }
channel email { address profile.email consent email_marketing }
limits { cap 3 per week }
segment paying = profile.tier != "standard" and sum(order.total within 30d) > 10
journey welcome {
  owner "crm"
  when signup where event.plan == "pro" and paying
  send greet via email
}
journey thanks {
  owner "crm"
  when order where count(order within 7d) >= 1
  send greet via email
}
template greet { email { subject: "Hi {{profile.email ?? "there"}}, {{trigger.plan}}" } }
test welcomes {
  at 2026-11-29T09:00:00Z identify "u1" { email: "a@b.c", consent: { email_marketing: true } }
  at +1m signup "u1" { plan: "pro" }
  expect send { journey: welcome, template: greet, channel: email }
}
"#;

/// The uses of `symbol`, as the text they cover.
fn uses(symbol: &Symbol) -> Vec<(usize, String)> {
    let mut sources = Sources::new();
    sources.add("set.nudge", SET.to_string());
    let analysis = analyze(&sources);
    assert!(
        !analysis.has_errors(),
        "the set checks: {:?}",
        analysis.diagnostics
    );
    analysis
        .references
        .iter()
        .filter(|r| &r.symbol == symbol)
        .map(|r| {
            let (s, e) = (r.span.start as usize, r.span.end as usize);
            (s, SET[s..e].to_string())
        })
        .collect()
}

/// The start of `word` where it ends each occurrence of `needle`.
fn starts(needle: &str, word: &str) -> Vec<usize> {
    SET.match_indices(needle)
        .map(|(i, _)| i + needle.len() - word.len())
        .collect()
}

#[test]
fn an_attribute_is_found_in_the_address_a_condition_a_template_and_a_test() {
    let got = uses(&Symbol::Attr("email".into()));
    let mut want: Vec<(usize, String)> = starts("profile.email", "email")
        .into_iter()
        .chain(starts("{ email: \"a", "email: \"a"))
        .map(|i| (i, "email".to_string()))
        .collect();
    want.sort();
    assert_eq!(got, want);
    let tier = uses(&Symbol::Attr("tier".into()));
    assert_eq!(tier.len(), 1, "{tier:?}");
}

#[test]
fn a_property_is_found_by_the_event_it_belongs_to() {
    // `event.plan` in welcome's trigger, `trigger.plan` in the template (sent
    // by welcome on signup and by thanks on order), the test's event.
    let signup = uses(&Symbol::Prop("signup".into(), "plan".into()));
    let order = uses(&Symbol::Prop("order".into(), "plan".into()));
    let at = |needle: &str| SET.find(needle).unwrap() + needle.len() - "plan".len();
    assert_eq!(
        signup.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        vec![
            at("event.plan"),
            at("trigger.plan"),
            at("signup \"u1\" { plan")
        ]
    );
    assert_eq!(order, vec![(at("trigger.plan"), "plan".to_string())]);
    let total = uses(&Symbol::Prop("order".into(), "total".into()));
    let total_at = SET.find("order.total").unwrap() + "order.".len();
    assert_eq!(total, vec![(total_at, "total".to_string())]);
}

#[test]
fn declarations_are_found_wherever_they_are_named() {
    let names = |keyword: &'static str, name: &str| -> usize {
        uses(&Symbol::Decl(keyword, name.into())).len()
    };
    // Aggregates, triggers and the test's input.
    assert_eq!(names("event", "order"), 3);
    assert_eq!(names("event", "signup"), 2);
    // Two sends and the test's expectation.
    assert_eq!(names("template", "greet"), 3);
    // Two sends, the template's block, the expectation.
    assert_eq!(names("channel", "email"), 4);
    // The channel and the test's identify.
    assert_eq!(names("consent", "email_marketing"), 2);
    assert_eq!(names("segment", "paying"), 1);
    assert_eq!(names("journey", "welcome"), 1);
    for (_, text) in uses(&Symbol::Decl("channel", "email".into())) {
        assert_eq!(text, "email");
    }
}

#[test]
fn an_unknown_name_has_no_reference_and_a_broken_declaration_keeps_its_uses() {
    let mut sources = Sources::new();
    let text = "event signup { plan: string\njourney j {\n  owner \"x\"\n  when signup where event.plan == \"pro\" and profile.nope\n  send t via email\n}\n";
    sources.add("b.nudge", text.to_string());
    let analysis = analyze(&sources);
    assert!(analysis.has_errors());
    let symbols: Vec<&Symbol> = analysis.references.iter().map(|r| &r.symbol).collect();
    // `signup` is declared, with a syntax error: its use is still known.
    assert!(
        symbols.contains(&&Symbol::Decl("event", "signup".into())),
        "{symbols:?}"
    );
    for unknown in [
        Symbol::Attr("nope".into()),
        Symbol::Decl("template", "t".into()),
        Symbol::Decl("channel", "email".into()),
    ] {
        assert!(!symbols.contains(&&unknown), "{unknown:?} in {symbols:?}");
    }
}
