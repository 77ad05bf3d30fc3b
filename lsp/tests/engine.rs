//! Engine tests: a policy with a cursor marker `↑` (the character after it is the
//! position), the request's answer snapshotted next to the source drawn with a
//! caret under the position.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

use nudge_lsp::engine::Workspace;
use tower_lsp_server::ls_types::Position;

const SCHEMA: &str = r#"consent email_marketing opt_out
profile { email: string?, tier: string = "standard" }
/// A shopper left a cart.
event cart_abandoned from "Cart Abandoned" { cart_value: number, category: string }
channel email { address profile.email consent email_marketing }
segment big = profile.tier == "gold"
"#;

/// The workspace (schema + the marked file) and the cursor position.
fn at(marked: &str) -> (Workspace, Position, String) {
    at_with(SCHEMA, marked)
}

/// [`at`] with another schema beside the marked file.
fn at_with(schema: &str, marked: &str) -> (Workspace, Position, String) {
    let offset = marked.find('↑').expect("a ↑ marker");
    let text = marked.replace('↑', "");
    let before = &text[..offset];
    let line = before.matches('\n').count() as u32;
    let col = before.rsplit('\n').next().unwrap().encode_utf16().count() as u32;
    let mut ws = Workspace::default();
    ws.documents
        .insert("file:///ws/schema.nudge".into(), schema.into());
    ws.documents
        .insert("file:///ws/main.nudge".into(), text.clone());
    (ws, Position::new(line, col), text)
}

/// The source with a caret under the position.
fn draw(text: &str, pos: Position) -> String {
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        out.push_str(line);
        out.push('\n');
        if i as u32 == pos.line {
            out.push_str(&" ".repeat(pos.character as usize));
            out.push_str("↑\n");
        }
    }
    out
}

const JOURNEY: &str = r#"journey j {
  owner "x"
  when cart_abandoned where event.cart_value > 30 and big
  send t via email
}
template t { email { subject: "{{trigger.category}}" } }
"#;

/// The markdown of the hover at `pos` in `main.nudge`.
fn hover_text(ws: &Workspace, pos: Position) -> String {
    let hover = ws
        .analyze()
        .hover("file:///ws/main.nudge", pos)
        .expect("a hover");
    let tower_lsp_server::ls_types::HoverContents::Markup(m) = hover.contents else {
        panic!("hover text is markdown")
    };
    m.value
}

fn marked(needle: &str) -> String {
    let i = JOURNEY.find(needle).expect("needle");
    format!("{}↑{}", &JOURNEY[..i], &JOURNEY[i..])
}

#[test]
fn hover_shows_the_declaration_and_its_doc_comment() {
    let (ws, pos, text) = at(&marked("cart_abandoned where"));
    let m = hover_text(&ws, pos);
    insta::assert_snapshot!(format!("{}\n{}", draw(&text, pos), m));
}

#[test]
fn hover_on_a_property_and_a_keyword() {
    let (ws, pos, _) = at(&marked("cart_value >"));
    let m = hover_text(&ws, pos);
    assert!(m.contains("cart_value: number"), "{}", m);
    let (ws, pos, _) = at(&marked("owner"));
    let m = hover_text(&ws, pos);
    assert!(m.contains("responsible"), "{}", m);
}

#[test]
fn definition_and_references_cross_files() {
    let (ws, pos, _) = at(&marked("big\n"));
    let snap = ws.analyze();
    let def = snap
        .definition("file:///ws/main.nudge", pos)
        .expect("a definition");
    assert_eq!(def.uri.as_str(), "file:///ws/schema.nudge");
    assert_eq!(def.range.start, Position::new(5, 8));
    let refs = snap.references("file:///ws/main.nudge", pos, true);
    assert_eq!(refs.len(), 2);
    // `trigger.category` in the template resolves through the sending journey.
    let (ws, pos, _) = at(&marked("category}}"));
    let def = ws
        .analyze()
        .definition("file:///ws/main.nudge", pos)
        .expect("a definition");
    assert_eq!(def.range.start, Position::new(3, 65));
}

#[test]
fn rename_edits_every_occurrence() {
    let (ws, pos, _) = at(&marked("email\n}"));
    let edit = ws
        .analyze()
        .rename("file:///ws/main.nudge", pos, "mail")
        .expect("a valid name")
        .expect("an edit");
    let changes = edit.changes.expect("changes");
    let total: usize = changes.values().map(Vec::len).sum();
    // The declaration, the `send … via` and the template block.
    assert_eq!(total, 3);
}

#[test]
fn completion_by_context() {
    let labels = |marked: &str| -> Vec<String> {
        let (ws, pos, _) = at(marked);
        ws.analyze()
            .completion("file:///ws/main.nudge", pos)
            .into_iter()
            .map(|c| c.label)
            .collect()
    };
    assert_eq!(
        labels("journey j { when cart_abandoned where event.↑ }"),
        ["cart_value", "category"]
    );
    assert_eq!(labels("segment s = profile.↑"), ["email", "tier"]);
    assert_eq!(
        labels("journey j { owner \"x\" when cart_abandoned send t via ↑ }"),
        ["email"]
    );
    assert_eq!(
        labels("journey j { owner \"x\" when ↑ }"),
        ["cart_abandoned"]
    );
    // Keywords valid at the cursor: declarations at the top level, clauses and
    // steps at the start of a journey line, expression words inside a condition.
    let top = labels("↑");
    assert!(
        top.contains(&"journey".to_string()) && !top.contains(&"send".to_string()),
        "{top:?}"
    );
    let step = labels("journey j {\n  owner \"x\"\n  ↑\n}");
    assert!(
        step.contains(&"send".to_string())
            && step.contains(&"when".to_string())
            && !step.contains(&"journey".to_string()),
        "{step:?}"
    );
    let cond = labels("journey j {\n  when cart_abandoned where event.cart_value > 3 ↑\n}");
    assert!(
        cond.contains(&"and".to_string()) && !cond.contains(&"send".to_string()),
        "{cond:?}"
    );
}

#[test]
fn diagnostics_match_check_and_use_utf16_columns() {
    let (ws, _, _) = at("segment s = \"🎉\" == profile.tierr↑");
    let diagnostics = ws.analyze().diagnostics();
    let main = &diagnostics["file:///ws/main.nudge"];
    let unknown = main
        .iter()
        .find(|d| {
            d.code
                == Some(tower_lsp_server::ls_types::NumberOrString::String(
                    "N103".into(),
                ))
        })
        .expect("the unknown attribute is reported");
    // `tierr` starts after 27 characters, 28 UTF-16 units (🎉 takes two).
    assert_eq!(unknown.range.start, Position::new(0, 28));
    assert!(
        unknown.message.contains("did you mean `tier`?"),
        "{}",
        unknown.message
    );
    // Every document is listed, so that fixed problems are cleared; the schema's
    // only finding is that its segment `big` is unused here.
    let schema: Vec<_> = diagnostics["file:///ws/schema.nudge"]
        .iter()
        .map(|d| d.code.clone())
        .collect();
    assert_eq!(
        schema,
        [Some(tower_lsp_server::ls_types::NumberOrString::String(
            "L404".into()
        ))]
    );
}

#[test]
fn symbols_and_formatting() {
    let (ws, _, _) = at(
        "journey   j {owner \"x\" when cart_abandoned send t via email}\ntemplate t { email { subject: \"x\" } }↑",
    );
    let snap = ws.analyze();
    let names: Vec<String> = snap
        .document_symbols("file:///ws/main.nudge")
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["j", "t"]);
    let edits = snap
        .formatting("file:///ws/main.nudge")
        .expect("formattable");
    assert_eq!(edits.len(), 1);
    assert!(
        edits[0]
            .new_text
            .starts_with("journey j {\n  owner \"x\"\n"),
        "{}",
        edits[0].new_text
    );
}

#[test]
fn did_you_mean_diagnostics_have_quick_fixes() {
    let (ws, pos, _) = at(
        "journey j {\n  owner \"x\"\n  when cart_abandonned\n  send t via emial↑\n}\ntemplate t { email { subject: \"Hi\" } }\n",
    );
    let snap = ws.analyze();
    let whole = tower_lsp_server::ls_types::Range::new(Position::new(0, 0), pos);
    let titles: Vec<String> = snap
        .code_actions("file:///ws/main.nudge", whole)
        .into_iter()
        .map(|a| match a {
            tower_lsp_server::ls_types::CodeActionOrCommand::CodeAction(a) => {
                let edit = a.edit.unwrap().changes.unwrap();
                let new_text = edit.values().next().unwrap()[0].new_text.clone();
                format!("{} -> {new_text}", a.title)
            }
            tower_lsp_server::ls_types::CodeActionOrCommand::Command(c) => c.title,
        })
        .collect();
    assert_eq!(
        titles,
        [
            "Replace with `cart_abandoned` -> cart_abandoned",
            "Replace with `email` -> email"
        ]
    );
}

#[test]
fn a_broken_declaration_keeps_answering_from_the_last_good_text() {
    let good = "event signup { plan: string }\njourney j {\n  owner \"x\"\n  when signup where event.plan == \"pro\"\n}\n";
    let mut ws = Workspace::default();
    ws.documents
        .insert("file:///ws/a.nudge".into(), good.into());
    ws.remember_good();
    // Half-typed: the event's declaration is broken now.
    let broken = good.replace("{ plan: string }", "{ plan: string");
    ws.documents
        .insert("file:///ws/a.nudge".into(), broken.clone());
    ws.remember_good();
    let snap = ws.analyze();
    let at = broken.find("signup where").unwrap();
    let pos = Position::new(3, (at - broken.find("  when").unwrap()) as u32 + 2);
    let def = snap
        .definition("file:///ws/a.nudge", pos)
        .expect("still found");
    assert_eq!(def.range.start, Position::new(0, 6));
    let hover = snap.hover("file:///ws/a.nudge", pos).expect("still hovers");
    let tower_lsp_server::ls_types::HoverContents::Markup(m) = hover.contents else {
        panic!()
    };
    assert!(m.value.contains("event signup"), "{}", m.value);
    // Diagnostics come from the current text only.
    assert!(!snap.diagnostics()["file:///ws/a.nudge"].is_empty());
}

/// 1.1: attributes and properties named by keywords (`priority`, `channel`,
/// `from`) are completed, hovered and resolved like any other, with `from`
/// mappings shown on hover.
#[test]
fn keyword_named_fields_complete_hover_and_resolve() {
    let schema = r#"consent email_marketing opt_out from "Marketing Email"
profile { email: string?, channel: string = "web" from "Preferred Channel" }
event ticket from "Ticket Created" { priority: string, from: string? from "/context/traits/from" }
channel email { address profile.email consent email_marketing }
limits { cap 3 per week }
"#;
    let journey = "journey j {\n  owner \"x\"\n  when ticket where event.priority == \"urgent\" and profile.channel == \"web\"\n  send t via email\n}\ntemplate t { email { subject: \"{{trigger.from ?? \"?\"}}\" } }\n";
    let ws_with = |marked: &str| -> (Workspace, Position) {
        let (ws, pos, _) = at_with(schema, marked);
        (ws, pos)
    };
    let mark = |needle: &str| {
        let i = journey.find(needle).expect("needle");
        format!("{}↑{}", &journey[..i], &journey[i..])
    };
    // No diagnostics: keywords are fine as field names.
    let (ws, _) = ws_with(&mark("owner"));
    let snap = ws.analyze();
    let diagnostics = snap.diagnostics();
    assert!(diagnostics.values().all(Vec::is_empty), "{diagnostics:?}");
    // Completion after `event.` and `profile.` lists them.
    let (ws, pos) = ws_with(&mark("priority =="));
    let labels: Vec<String> = ws
        .analyze()
        .completion("file:///ws/main.nudge", pos)
        .into_iter()
        .map(|c| c.label)
        .collect();
    assert!(
        labels.contains(&"from".to_string()) && labels.contains(&"priority".to_string()),
        "{labels:?}"
    );
    // Hover on a keyword-named property shows its type, not the keyword's page.
    let (ws, pos) = ws_with(&mark("channel =="));
    let m = hover_text(&ws, pos);
    assert!(m.contains("channel: string"), "{m}");
    // Go to definition lands on the declaration in the schema.
    let (ws, pos) = ws_with(&mark("from ??"));
    let def = ws
        .analyze()
        .definition("file:///ws/main.nudge", pos)
        .expect("a definition");
    assert_eq!(def.uri.as_str(), "file:///ws/schema.nudge");
    assert_eq!(def.range.start.line, 2);
}

/// (1.1) A schema with categories, a second event and engagement.
const SCHEMA_1_1: &str = r#"consent email_marketing opt_out
profile { email: string?, tier: string = "standard" }
event cart_abandoned { cart_value: number }
event app_opened { screen: string }
channel email { address profile.email consent email_marketing engagement app_opened }
channel inbox { address profile.email consent email_marketing }
category promotions
category newsletters
"#;

/// (1.1) In a `test`: steps, inputs, properties of the event fed, traits and
/// consent topics, decision kinds and their fields, and the names values take.
#[test]
fn completion_in_tests() {
    let labels = |marked: &str| -> Vec<String> {
        let (ws, pos, _) = at_with(SCHEMA_1_1, marked);
        ws.analyze()
            .completion("file:///ws/main.nudge", pos)
            .into_iter()
            .map(|c| c.label)
            .collect()
    };
    let journey = "journey j {\n  owner \"qa\"\n  when app_opened\n  send t via email\n}\ntemplate t { email { subject: \"s\" } }\n";
    let test = |body: &str| format!("{journey}test t1 {{\n{body}\n}}\n");
    assert_eq!(labels(&test("  ↑")), ["at", "expect"]);
    assert_eq!(
        labels(&test("  at 2026-11-29T09:00:00Z ↑")),
        ["app_opened", "cart_abandoned", "identify"]
    );
    assert_eq!(
        labels(&test(
            "  at 2026-11-29T09:00:00Z cart_abandoned \"u1\" { ↑ }"
        )),
        ["cart_value"]
    );
    assert_eq!(
        labels(&test(
            "  at 2026-11-29T09:00:00Z identify \"u1\" { email: \"a\", ↑ }"
        )),
        ["consent", "email", "tier"]
    );
    assert_eq!(
        labels(&test(
            "  at 2026-11-29T09:00:00Z identify \"u1\" { consent { ↑ } }"
        )),
        ["email_marketing"]
    );
    let kinds = labels(&test("  expect ↑"));
    assert!(
        kinds.contains(&"send".to_string()) && kinds.contains(&"no".to_string()),
        "{kinds:?}"
    );
    assert!(labels(&test("  expect no ↑")).contains(&"converted".to_string()));
    assert_eq!(
        labels(&test("  expect send { ↑ }")),
        [
            "arm",
            "at",
            "channel",
            "content",
            "journey",
            "message_id",
            "profile",
            "template"
        ]
    );
    assert_eq!(labels(&test("  expect entered { journey: ↑ }")), ["j"]);
    assert_eq!(labels(&test("  expect send { template: ↑ }")), ["t"]);
    assert_eq!(
        labels(&test("  expect send { journey: j, channel: ↑ }")),
        ["email", "inbox"]
    );
    assert_eq!(
        labels(&test("  expect suppressed { reasons: { ↑ } }")),
        ["email", "inbox"]
    );
    assert!(
        labels(&test("  expect suppressed { reasons: { email: ↑ } }"))
            .contains(&"no_consent".to_string())
    );
}

/// (1.1) Names in a test are the declarations': hover shows them, and a
/// journey renamed is renamed in the tests that expect it.
#[test]
fn hover_and_rename_in_tests() {
    let text = "/// Sends a thank-you.\njourney j {\n  owner \"qa\"\n  when app_opened\n  send t via email\n}\ntemplate t { email { subject: \"s\" } }\ntest t1 {\n  at 2026-11-29T09:00:00Z app_opened \"u1\" { screen: \"home\" }\n  expect send { journey: j, template: t }\n}\n";
    for (needle, expected) in [
        ("j, template", "Sends a thank-you."),
        ("t }", "template t"),
        ("app_opened \"u1\"", "event app_opened"),
        ("screen: \"home", "A property of the event `app_opened`"),
    ] {
        let i = text.find(needle).unwrap();
        let marked = format!("{}↑{}", &text[..i], &text[i..]);
        let (ws, pos, _) = at_with(SCHEMA_1_1, &marked);
        let m = hover_text(&ws, pos);
        assert!(m.contains(expected), "{needle}: {m}");
    }
    let i = text.find("j {").unwrap();
    let (ws, pos, _) = at_with(SCHEMA_1_1, &format!("{}↑{}", &text[..i], &text[i..]));
    let edit = ws
        .analyze()
        .rename("file:///ws/main.nudge", pos, "thanks")
        .expect("a valid name")
        .expect("an edit");
    let total: usize = edit.changes.expect("changes").values().map(Vec::len).sum();
    // The declaration and the test's `journey: j`.
    assert_eq!(total, 2);
}

#[test]
fn completion_in_1_1_constructs() {
    let labels = |marked: &str| -> Vec<String> {
        let (ws, pos, _) = at_with(SCHEMA_1_1, marked);
        ws.analyze()
            .completion("file:///ws/main.nudge", pos)
            .into_iter()
            .map(|c| c.label)
            .collect()
    };
    let events = ["app_opened", "cart_abandoned"];
    assert_eq!(labels("journey j {\n  when no ↑\n}"), events);
    assert_eq!(labels("journey j {\n  when no app_opened, ↑\n}"), events);
    assert_eq!(labels("journey j {\n  goal ↑\n}"), events);
    assert_eq!(
        labels("journey j {\n  wait up to 3d for ↑\n}"),
        events,
        "the event a `wait up to` waits for"
    );
    assert_eq!(
        labels("journey j {\n  when every ↑\n}"),
        ["day", "fri", "mon", "sat", "sun", "thu", "tue", "wed"]
    );
    assert_eq!(
        labels("journey j {\n  when every mon, ↑\n}"),
        ["day", "fri", "mon", "sat", "sun", "thu", "tue", "wed"]
    );
    assert_eq!(
        labels("journey j {\n  when app_opened\n  send t via best of ↑\n}"),
        ["email", "inbox"]
    );
    assert_eq!(
        labels("journey j {\n  category ↑\n}"),
        ["newsletters", "promotions"]
    );
    assert_eq!(
        labels("limits { cap 2 per week on category ↑ }"),
        ["newsletters", "promotions"]
    );
}

#[test]
fn hover_on_sent_previous_and_best_time() {
    let text = "journey j {\n  owner \"x\"\n  when app_opened where count(sent within 1d) == 0 and since(previous app_opened) ?? 0s > 1d\n  wait until best_time(app_opened within 90d) ?? 10:00\n}\n";
    for (needle, expected) in [
        ("sent within", "built-in event of every send"),
        ("previous app", "before the one being processed"),
        ("best_time(", "the start of the local hour"),
    ] {
        let i = text.find(needle).unwrap();
        let marked = format!("{}↑{}", &text[..i], &text[i..]);
        let (ws, pos, _) = at_with(SCHEMA_1_1, &marked);
        let m = hover_text(&ws, pos);
        assert!(m.contains(expected), "{needle}: {m}");
    }
}

/// (1.1) §9a: hover on `limits` shows the proven bounds of the set, hover on a
/// channel its own; `private` and `sensitive` complete where they may be
/// written, and hover says what they mean.
#[test]
fn guardrails_in_the_editor() {
    let schema = r#"consent email_marketing opt_out
profile { email: string?, phone: string?, ssn_last4: string? sensitive }
event cart_abandoned { cart_value: number }
channel email { address profile.email consent email_marketing private }
channel sms { address profile.phone consent email_marketing }
"#;
    let policy = "limits {\n  cap 2 per week on email\n}\njourney j {\n  owner \"x\"\n  when cart_abandoned\n  send t via email, sms\n}\ntemplate t { email { subject: \"{{profile.ssn_last4 ?? \"\"}}\" } sms { text: \"hi\" } }\n";
    let at_needle = |needle: &str, nth: usize| {
        let i = policy.match_indices(needle).nth(nth).expect("needle").0;
        let (ws, pos, _) = at_with(schema, &format!("{}↑{}", &policy[..i], &policy[i..]));
        (ws, pos)
    };
    let (ws, pos) = at_needle("limits", 0);
    let limits = hover_text(&ws, pos);
    assert!(limits.contains("| all | unbounded"), "{limits}");
    assert!(
        limits.contains("| `email` | at most 6 in any 7 days (`cap 2 per week on email`) |"),
        "{limits}"
    );
    assert!(
        limits.contains("`sms` sends of `j` are not limited by any cap"),
        "{limits}"
    );
    let (ws, pos) = at_needle("email, sms", 0);
    let email = hover_text(&ws, pos);
    assert!(email.contains("channel email private"), "{email}");
    assert!(
        email.contains("on `email` in any 7 days: at most 6"),
        "{email}"
    );
    let (ws, pos) = at_needle("sms {", 0);
    let sms = hover_text(&ws, pos);
    assert!(sms.contains("on `sms` in any 7 days: unbounded"), "{sms}");
    let (ws, pos) = at_needle("ssn_last4", 0);
    let attr = hover_text(&ws, pos);
    assert!(attr.contains("ssn_last4: string? sensitive"), "{attr}");
    // Completion: `private` in a channel, `sensitive` after a type.
    let labels = |marked: &str| -> Vec<String> {
        let (ws, pos, _) = at_with(schema, marked);
        ws.analyze()
            .completion("file:///ws/main.nudge", pos)
            .into_iter()
            .map(|c| c.label)
            .collect()
    };
    assert!(labels("channel inbox { address profile.email ↑ }").contains(&"private".to_string()));
    assert!(labels("profile {\n  card: string? ↑\n}").contains(&"sensitive".to_string()));
    // Errors: no bounds, and the hover says why.
    let (ws, pos, _) = at_with(schema, "↑limits { cap 2 per week on emial }\n");
    assert!(
        hover_text(&ws, pos).contains("once the policy set has no errors"),
        "{}",
        hover_text(&ws, pos)
    );
}

/// Document symbols: a journey is a class of clauses and steps (not a
/// function), and the profile, events and templates list their members.
#[test]
fn symbols_have_kinds_and_members() {
    use tower_lsp_server::ls_types::SymbolKind;
    let (ws, _, _) = at_with(
        "channel email { address profile.email consent email_marketing }\nconsent email_marketing opt_out\n",
        "profile { email: string?, tier: string = \"x\" }\nevent cart { value: number }\njourney j { owner \"x\" when cart send t via email }\ntemplate t { email { subject: \"x\" } }\ntest t1 { at 2026-01-01T00:00:00Z identify \"u\" }↑",
    );
    let symbols = ws.analyze().document_symbols("file:///ws/main.nudge");
    let summary: Vec<(String, SymbolKind, Vec<String>)> = symbols
        .into_iter()
        .map(|s| {
            let children = s
                .children
                .unwrap_or_default()
                .into_iter()
                .map(|c| format!("{}: {}", c.name, c.detail.unwrap_or_default()))
                .collect();
            (s.name, s.kind, children)
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "profile".to_string(),
                SymbolKind::STRUCT,
                vec!["email: string?".to_string(), "tier: string".to_string()]
            ),
            (
                "cart".into(),
                SymbolKind::EVENT,
                vec!["value: number".into()]
            ),
            ("j".into(), SymbolKind::CLASS, vec![]),
            (
                "t".into(),
                SymbolKind::STRING,
                vec!["email: channel block".into()]
            ),
            ("t1".into(), SymbolKind::METHOD, vec![]),
        ]
    );
}

/// Completion offers what the checker accepts there: no header clauses inside
/// an `else` (or any nested block), and no `event.` properties outside a
/// `where` (T204), while a `where` of a trigger, an aggregate or a
/// `wait up to` still gets them.
#[test]
fn completion_follows_the_checker() {
    let labels = |marked: &str| -> Vec<String> {
        let (ws, pos, _) = at(marked);
        ws.analyze()
            .completion("file:///ws/main.nudge", pos)
            .into_iter()
            .map(|c| c.label)
            .collect()
    };
    let head = "journey j {\n  owner \"x\"\n  when cart_abandoned\n";
    let top = labels(&format!("{head}  ↑\n}}\n"));
    assert!(
        top.contains(&"priority".to_string()) && top.contains(&"send".to_string()),
        "{top:?}"
    );
    let nested = labels(&format!(
        "{head}  if profile.tier == \"gold\" {{ stop }} else {{\n    ↑\n  }}\n}}\n"
    ));
    assert!(nested.contains(&"send".to_string()), "{nested:?}");
    assert!(!nested.contains(&"priority".to_string()), "{nested:?}");
    assert!(!nested.contains(&"when".to_string()), "{nested:?}");
    // `event.` in a step's condition is T204: nothing offered.
    assert_eq!(
        labels(&format!("{head}  if event.↑\n}}\n")),
        Vec::<String>::new()
    );
    // In a `where`: the event's properties.
    let in_where = labels("journey j {\n  owner \"x\"\n  when cart_abandoned where event.↑\n}\n");
    assert!(in_where.contains(&"cart_value".to_string()), "{in_where:?}");
    let in_aggregate = labels(&format!(
        "{head}  if count(cart_abandoned where event.↑ within 7d) > 1 {{ stop }}\n}}\n"
    ));
    assert!(
        in_aggregate.contains(&"category".to_string()),
        "{in_aggregate:?}"
    );
}
