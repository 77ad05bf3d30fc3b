//! pest errors in the user's words.
//!
//! pest reports the rules it tried at the furthest position it reached. This module
//! turns them into one diagnostic that never mentions a rule name: what was
//! expected, in words ("a duration like `30m`"), what was found, and help for the
//! mistakes people actually make (`30 min`, `=` for `==`, a reserved word as a name,
//! a missing comma, a misspelt keyword).

use crate::diagnostic::{Code, Diagnostic, Label, did_you_mean};
use crate::source::{FileId, Span};
use crate::syntax::Rule;
use crate::syntax::keywords;
use crate::syntax::lexical::{code_part, suggest_unit, unit_seconds};
use pest::error::{Error, ErrorVariant, InputLocation};
use std::collections::BTreeSet;

/// What the parser was ready to accept, in the order messages list them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Expect {
    Declaration,
    ClauseOrStep,
    Step,
    Phrase(&'static str),
    Expression,
    Keyword(&'static str),
    Punct(&'static str),
    Operator,
    End,
}

impl Expect {
    fn describe(self) -> String {
        match self {
            Expect::Declaration => "a declaration (`journey`, `event`, `template` …)".into(),
            Expect::ClauseOrStep => "a journey clause or step".into(),
            Expect::Step => "a step (`wait`, `send`, `if`, `split`, `stop`)".into(),
            Expect::Phrase(p) => p.into(),
            Expect::Expression => "an expression".into(),
            Expect::Keyword(k) | Expect::Punct(k) => format!("`{k}`"),
            Expect::Operator => "an operator".into(),
            Expect::End => "the end of the declaration".into(),
        }
    }
}

fn classify(rule: Rule) -> Option<Expect> {
    use Rule::*;
    let expect = match rule {
        ident | member | field_name => Expect::Phrase("a name"),
        field_source => Expect::Keyword("from"),
        duration => Expect::Phrase("a duration like `30m`"),
        number => Expect::Phrase("a number"),
        int_literal => Expect::Phrase("a whole number"),
        percent => Expect::Phrase("a percentage like `50%`"),
        time_of_day => Expect::Phrase("a time of day like `09:00`"),
        string => Expect::Phrase("a string"),
        type_expr | type_name => Expect::Phrase("a type such as `string` or `number?`"),
        consent_mode => Expect::Phrase("`opt_in` or `opt_out`"),
        calendar_window => Expect::Phrase("`day` or `week`"),
        attr_decl => Expect::Phrase("an attribute like `email: string?`"),
        prop_decl => Expect::Phrase("a property like `amount: number`"),
        template_block => Expect::Phrase("a channel block like `email { … }`"),
        template_field => Expect::Phrase("a field like `subject: \"…\"`"),
        split_arm => Expect::Phrase("an arm like `50% control { … }`"),
        expr | timestamp | list | kw_true | kw_false | kw_none | call | path | paren | op_not
        | op_neg | kw_profile | kw_event | kw_trigger | kw_now => Expect::Expression,
        op_or | op_and | op_eq | op_ne | op_le | op_ge | op_lt | op_gt | op_in | op_coalesce
        | op_add | op_sub | op_mul | op_div => Expect::Operator,
        consent_decl | profile_decl | event_decl | channel_decl | limits_decl | segment_decl
        | template_decl | journey_decl | category_decl | kw_limits | kw_segment | kw_template
        | kw_journey | kw_channel => Expect::Declaration,
        owner_clause | priority_clause | when_clause | exit_clause | reenter_clause
        | require_clause | transactional_clause | category_clause | journey_cap | goal_clause
        | when_no => Expect::ClauseOrStep,
        wait_step | send_step | if_step | split_step | stop_step => Expect::Step,
        address_clause => Expect::Keyword("address"),
        channel_consent => Expect::Keyword("consent"),
        quiet_clause => Expect::Keyword("quiet"),
        cap_clause => Expect::Keyword("cap"),
        block | event_props => Expect::Punct("{"),
        optional_mark => Expect::Punct("?"),
        call_where => Expect::Keyword("where"),
        call_within => Expect::Keyword("within"),
        EOI => Expect::End,
        kw_owner | kw_priority | kw_when | kw_exit | kw_reenter | kw_require | kw_transactional
        | kw_goal => Expect::ClauseOrStep,
        kw_category => Expect::Keyword("category"),
        kw_for => Expect::Keyword("for"),
        kw_previous => Expect::Expression,
        kw_wait | kw_send | kw_if | kw_split | kw_stop => Expect::Step,
        kw_address => Expect::Keyword("address"),
        kw_after => Expect::Keyword("after"),
        kw_cap => Expect::Keyword("cap"),
        kw_consent => Expect::Keyword("consent"),
        kw_else => Expect::Keyword("else"),
        kw_from => Expect::Keyword("from"),
        kw_never => Expect::Keyword("never"),
        kw_on => Expect::Keyword("on"),
        kw_per => Expect::Keyword("per"),
        kw_quiet => Expect::Keyword("quiet"),
        kw_to => Expect::Keyword("to"),
        kw_until => Expect::Keyword("until"),
        kw_via => Expect::Keyword("via"),
        kw_where => Expect::Keyword("where"),
        kw_within => Expect::Keyword("within"),
        _ => return None,
    };
    Some(expect)
}

/// A more precise expectation from the rule that was being parsed: a name inside a
/// `profile` is an attribute, inside a template a channel block, and so on.
fn classify_in(rule: Rule, parent: Rule) -> Option<Expect> {
    use Rule::*;
    Some(match (rule, parent) {
        (ident, profile_decl) => Expect::Phrase("an attribute like `email: string?`"),
        (ident, event_props | event_decl) => Expect::Phrase("a property like `amount: number`"),
        (ident, template_decl) => Expect::Phrase("a channel block like `email { … }`"),
        (ident, template_block) => Expect::Phrase("a field like `subject: \"…\"`"),
        (percent, split_step) => Expect::Phrase("an arm like `50% control { … }`"),
        (kw_cap, journey_cap | journey_decl) | (kw_category, category_clause | journey_decl) => {
            Expect::ClauseOrStep
        }
        (kw_category, category_decl) => Expect::Declaration,
        _ => return None,
    })
}

fn punct(token: &str) -> Option<&'static str> {
    Some(match token {
        "{" => "{",
        "}" => "}",
        "(" => "(",
        ")" => ")",
        "[" => "[",
        "]" => "]",
        "," => ",",
        ":" => ":",
        "=" => "=",
        ";" => ";",
        "}}" => "}}",
        "\"" => "\"",
        "<" => "<",
        ">" => ">",
        _ => return None,
    })
}

/// Drops what is already said by something broader that is also expected.
fn prune(expected: &mut BTreeSet<Expect>) {
    // Operators and `<`/`>` from a `list<…>` type are noise next to each other.
    if expected.contains(&Expect::Operator) {
        expected.remove(&Expect::Punct("<"));
        expected.remove(&Expect::Punct(">"));
    }
    // A trigger's event may be quoted only so that the checker can explain the
    // mistake: a name is what to write.
    if expected.contains(&Expect::Phrase("a name")) {
        expected.remove(&Expect::Phrase("a string"));
        expected.remove(&Expect::Punct("\""));
    }
    // "an expression" already says a name, a number, a string, `(` or `[`.
    if expected.contains(&Expect::Expression) {
        for starter in [
            Expect::Phrase("a duration like `30m`"),
            Expect::Phrase("a time of day like `09:00`"),
            Expect::Phrase("a name"),
            Expect::Phrase("a number"),
            Expect::Phrase("a string"),
            Expect::Punct("\""),
            Expect::Punct("("),
            Expect::Punct("["),
        ] {
            expected.remove(&starter);
        }
    }
}

/// Converts a pest error for the piece of `text` at `piece` into a diagnostic.
///
/// `end_noun` names what follows the piece ("the next declaration"), for errors at
/// its very end.
pub(crate) fn convert(
    file: FileId,
    text: &str,
    piece: Span,
    error: &Error<Rule>,
    end_noun: &str,
) -> Diagnostic {
    let base = piece.start as usize;
    let pos = base
        + match error.location {
            InputLocation::Pos(p) => p,
            InputLocation::Span((s, _)) => s,
        };
    let mut expected: BTreeSet<Expect> = BTreeSet::new();
    let attempts = error
        .parse_attempts()
        .filter(|a| a.max_position + base == pos);
    match &error.variant {
        ErrorVariant::ParsingError { positives, .. } => {
            let declaration_context = positives.contains(&Rule::kw_journey);
            for &rule in positives {
                let in_context = attempts.as_ref().and_then(|a| {
                    a.call_stacks().iter().find_map(|stack| {
                        match (stack.deepest.get_rule(), stack.parent) {
                            (Some(r), Some(parent)) if *r == rule => classify_in(rule, parent),
                            _ => None,
                        }
                    })
                });
                let expect = match rule {
                    // Declarations start with these too.
                    Rule::kw_consent | Rule::kw_profile | Rule::kw_event if declaration_context => {
                        Some(Expect::Declaration)
                    }
                    _ => in_context.or_else(|| classify(rule)),
                };
                expected.extend(expect);
            }
        }
        ErrorVariant::CustomError { message } => {
            // The call or stack limit: pathological input.
            let span = Span::new(base, last_code_end(text, piece));
            return Diagnostic::new(
                Code::TooDeep,
                format!("this declaration is too complex to parse ({message})"),
                Label::new(
                    file,
                    Span::new(span.start as usize, span.start as usize + 1),
                    "in this declaration",
                ),
            )
            .with_help("split it into smaller declarations or segments");
        }
    }
    if let Some(attempts) = &attempts {
        for token in attempts.expected_tokens() {
            if let Some(p) = punct(&token.to_string()) {
                expected.insert(Expect::Punct(p));
            }
        }
    }
    prune(&mut expected);
    let found = Found::at(text, piece, pos, end_noun);
    if let Some(d) = special_case(file, text, &expected, &found) {
        return d;
    }
    generic(file, text, &expected, &found)
}

/// The token the parser stopped at.
struct Found {
    span: Span,
    text: String,
    /// Nothing but whitespace and comments until the end of the piece.
    at_end: bool,
    /// What follows the piece when it does not end the file.
    end_noun: String,
}

impl Found {
    fn at(text: &str, piece: Span, pos: usize, end_noun: &str) -> Found {
        let end = last_code_end(text, piece);
        if pos >= end {
            let end_of_file = text[piece.end as usize..].trim().is_empty();
            return Found {
                span: Span::new(end, end),
                text: String::new(),
                at_end: true,
                end_noun: if end_of_file {
                    "the end of the file".into()
                } else {
                    end_noun.into()
                },
            };
        }
        let rest = &text[pos..end];
        let first = rest.chars().next().unwrap_or(' ');
        let len = if first.is_ascii_alphabetic() || first == '_' {
            rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len())
        } else if first.is_ascii_digit() {
            rest.find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '%')))
                .unwrap_or(rest.len())
        } else if first == '"' {
            rest[1..].find('"').map_or(rest.len(), |i| i + 2)
        } else {
            let two = rest.get(..2).unwrap_or("");
            if ["==", "!=", "<=", ">=", "??", "{{", "}}"].contains(&two) {
                2
            } else {
                first.len_utf8()
            }
        };
        Found {
            span: Span::new(pos, pos + len),
            text: rest[..len].to_string(),
            at_end: false,
            end_noun: String::new(),
        }
    }

    fn describe(&self) -> String {
        if self.at_end {
            self.end_noun.clone()
        } else if self.text.starts_with('"') {
            "a string".into()
        } else {
            format!("`{}`", self.text)
        }
    }

    fn is_word(&self) -> bool {
        self.text
            .starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
    }
}

/// A parse error as the heuristics see it: the file, its text, what the
/// parser expected and what it found there.
struct Mistake<'a> {
    file: FileId,
    text: &'a str,
    expected: &'a BTreeSet<Expect>,
    found: &'a Found,
    /// Where the found token starts, and the text from there.
    at: usize,
    rest: &'a str,
}

impl Mistake<'_> {
    fn label(&self, message: &str) -> Label {
        Label::new(self.file, self.found.span, message)
    }

    fn expects(&self, e: &Expect) -> bool {
        self.expected.contains(e)
    }
}

/// The common mistakes, each recognised by one function, tried in this
/// order: the first that knows the error explains it (a specific message
/// before the generic "expected …").
const HEURISTICS: &[fn(&Mistake<'_>) -> Option<Diagnostic>] = &[
    unclosed_split_arm,
    foreign_operator,
    single_quotes,
    assign_for_equals,
    bad_escape,
    spaced_duration_unit,
    duration_without_unit,
    clause_inside_block,
    reserved_word_as_name,
    missing_comma_between_words,
    misspelt_keyword,
    missing_comma_before_literal,
    past_the_declaration,
];

fn special_case(
    file: FileId,
    text: &str,
    expected: &BTreeSet<Expect>,
    found: &Found,
) -> Option<Diagnostic> {
    let at = found.span.start as usize;
    let mistake = Mistake {
        file,
        text,
        expected,
        found,
        at,
        rest: &text[at..],
    };
    HEURISTICS.iter().find_map(|heuristic| heuristic(&mistake))
}

/// The next split arm where a step or `}` was expected: the arm before it
/// was not closed.
fn unclosed_split_arm(m: &Mistake<'_>) -> Option<Diagnostic> {
    if !(is_percent(&m.found.text) && (m.expects(&Expect::Step) || m.expects(&Expect::Punct("}"))))
    {
        return None;
    }
    let (arm, name) = open_arm_before(m.text, m.at)?;
    Some(
        Diagnostic::new(
            Code::UnexpectedToken,
            format!("the split arm `{name}` is not closed: its `}}` is missing"),
            Label::new(m.file, arm, "this arm's `{` is never closed"),
        )
        .with_help(format!(
            "end the arm `{name}` with `}}` before the next arm"
        )),
    )
}

/// Operators from other languages: `&&`, `||`, `!`.
fn foreign_operator(m: &Mistake<'_>) -> Option<Diagnostic> {
    let at = m.at;
    for (theirs, ours, what) in [
        ("&&", "and", "both must hold"),
        ("||", "or", "either may hold"),
    ] {
        if m.rest.starts_with(theirs) {
            return Some(
                Diagnostic::new(
                    Code::UnexpectedToken,
                    format!("`{theirs}` is not an operator in Nudge: write `{ours}`"),
                    Label::new(
                        m.file,
                        Span::new(at, at + 2),
                        format!("write `{ours}` here"),
                    ),
                )
                .with_help(format!(
                    "conditions are joined with words: `a {ours} b` ({what})"
                )),
            );
        }
    }
    if m.rest.starts_with('!') && !m.rest.starts_with("!=") {
        return Some(
            Diagnostic::new(
                Code::UnexpectedToken,
                "`!` is not an operator in Nudge: write `not`",
                Label::new(m.file, Span::new(at, at + 1), "write `not` here"),
            )
            .with_help("negate a condition with `not`: `not browsing_not_buying`"),
        );
    }
    None
}

/// 'single quotes'.
fn single_quotes(m: &Mistake<'_>) -> Option<Diagnostic> {
    let (rest, at) = (m.rest, m.at);
    if !rest.starts_with('\'') {
        return None;
    }
    let line_end = rest.find('\n').unwrap_or(rest.len());
    let quoted = rest[1..line_end].find('\'').map(|end| &rest[1..1 + end]);
    let (span, help) = match quoted {
        Some(inner) => (
            Span::new(at, at + inner.len() + 2),
            format!("write `\"{inner}\"`"),
        ),
        None => (
            Span::new(at, at + 1),
            "write the string between `\"` and `\"`".to_string(),
        ),
    };
    Some(
        Diagnostic::new(
            Code::UnexpectedToken,
            "strings use double quotes",
            Label::new(m.file, span, "single quotes"),
        )
        .with_help(help),
    )
}

/// `=` where a comparison is meant.
fn assign_for_equals(m: &Mistake<'_>) -> Option<Diagnostic> {
    if !(m.expects(&Expect::Operator) && m.rest.starts_with('=') && !m.rest.starts_with("==")) {
        return None;
    }
    Some(
        Diagnostic::new(
            Code::AssignInsteadOfEquals,
            "`=` is not a comparison: use `==`",
            Label::new(m.file, Span::new(m.at, m.at + 1), "write `==` here"),
        )
        .with_help(
            "`==` compares two values; `=` only names a segment (`segment s = …`) or a default",
        ),
    )
}

/// A bad escape inside a string.
fn bad_escape(m: &Mistake<'_>) -> Option<Diagnostic> {
    if !m.rest.starts_with('\\') {
        return None;
    }
    let esc: String = m.rest.chars().take(2).collect();
    let span = Span::new(m.at, m.at + esc.len());
    Some(
        Diagnostic::new(Code::InvalidEscape, format!("`{esc}` is not an escape sequence"), Label::new(m.file, span, "unknown escape"))
            .with_help("the escapes are `\\\"`, `\\\\`, `\\n`, `\\t` and `\\u{…}`; write a backslash as `\\\\`"),
    )
}

/// A number where a duration was expected.
fn wants_duration(m: &Mistake<'_>) -> bool {
    m.expects(&Expect::Phrase("a duration like `30m`"))
        && m.found.text.starts_with(|c: char| c.is_ascii_digit())
}

/// `30 min`: a number, a space, a unit.
fn spaced_duration_unit(m: &Mistake<'_>) -> Option<Diagnostic> {
    if !wants_duration(m) {
        return None;
    }
    let (found, text) = (m.found, m.text);
    let after = &text[found.span.end as usize..];
    let gap = after.len() - after.trim_start_matches([' ', '\t']).len();
    let word: String = after[gap..]
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect();
    let is_unit =
        !word.is_empty() && (unit_seconds(&word).is_some() || suggest_unit(&word).is_some());
    if !(gap > 0 && is_unit) {
        return None;
    }
    let unit = suggest_unit(&word).unwrap_or("m");
    let span = Span::new(m.at, found.span.end as usize + gap + word.len());
    let message = if unit_seconds(&word).is_some() {
        format!(
            "`{}` is not a duration: write the unit right after the number",
            &text[span.range()]
        )
    } else {
        format!("`{word}` is not a duration unit: use `{unit}`")
    };
    Some(
        Diagnostic::new(
            Code::InvalidDuration,
            message,
            Label::new(m.file, span, "not a duration"),
        )
        .with_help(format!("write `{}{unit}`", found.text)),
    )
}

/// `30`: a number without a unit.
fn duration_without_unit(m: &Mistake<'_>) -> Option<Diagnostic> {
    let text = &m.found.text;
    if !(wants_duration(m) && text.bytes().all(|b| b.is_ascii_digit() || b == b'.')) {
        return None;
    }
    Some(
        Diagnostic::new(
            Code::InvalidDuration,
            format!("`{text}` has no unit"),
            m.label("a duration needs a unit"),
        )
        .with_help(format!(
            "write e.g. `{text}m`; the units are `s`, `m`, `h`, `d` and `w`"
        )),
    )
}

/// The found word, when it is one.
fn word<'a>(m: &Mistake<'a>) -> Option<&'a str> {
    m.found.is_word().then_some(m.found.text.as_str())
}

/// A header clause inside an `if` or `split` block.
fn clause_inside_block(m: &Mistake<'_>) -> Option<Diagnostic> {
    let word = word(m)?;
    if !(keywords::CLAUSES.contains(&word)
        && m.expects(&Expect::Step)
        && !m.expects(&Expect::ClauseOrStep))
    {
        return None;
    }
    Some(
        Diagnostic::new(
            Code::MisplacedClause,
            format!("`{word}` is a journey clause and cannot appear inside a block"),
            m.label("clause inside a block"),
        )
        .with_help("move it to the top of the journey, above the steps"),
    )
}

/// A reserved word where a name is expected.
fn reserved_word_as_name(m: &Mistake<'_>) -> Option<Diagnostic> {
    let word = word(m)?;
    if !(m.expects(&Expect::Phrase("a name")) && keywords::is_reserved(word)) {
        return None;
    }
    Some(
        Diagnostic::new(
            Code::KeywordAsName,
            format!("`{word}` is a reserved word and cannot be used as a name"),
            m.label("reserved word"),
        )
        .with_help(format!(
            "choose another name, such as `{word}_event` or `my_{word}`"
        )),
    )
}

/// Two items without a comma: `via push email`.
fn missing_comma_between_words(m: &Mistake<'_>) -> Option<Diagnostic> {
    let word = word(m)?;
    (m.expects(&Expect::Punct(","))
        && !is_keyword_expected(m.expected, word)
        && same_line_as_previous(m.text, m.found))
    .then(|| missing_comma(m.file, m.text, m.found))
}

/// A misspelt keyword.
fn misspelt_keyword(m: &Mistake<'_>) -> Option<Diagnostic> {
    let word = word(m)?;
    let candidates = keyword_candidates(m.expected);
    let help = did_you_mean(word, candidates.iter().copied())?;
    let mut d = generic(m.file, m.text, m.expected, m.found);
    d.help = Some(help);
    Some(d)
}

/// Two literals without a comma: `["a" "b"]`, `[1 2]`.
fn missing_comma_before_literal(m: &Mistake<'_>) -> Option<Diagnostic> {
    let text = &m.found.text;
    ((text.starts_with('"') || text.starts_with(|c: char| c.is_ascii_digit()))
        && m.expects(&Expect::Punct(","))
        && same_line_as_previous(m.text, m.found))
    .then(|| missing_comma(m.file, m.text, m.found))
}

/// An optional `from "…"` may end a consent topic or a field; past it, the
/// declaration is over.
fn past_the_declaration(m: &Mistake<'_>) -> Option<Diagnostic> {
    let optional_tail = |e: &Expect| matches!(e, Expect::End | Expect::Keyword("from"));
    if !(m.expects(&Expect::End) && m.expected.iter().all(optional_tail)) {
        return None;
    }
    Some(
        Diagnostic::new(
            Code::UnexpectedToken,
            format!("unexpected {} after the end of the declaration", m.found.describe()),
            m.label("unexpected"),
        )
        .with_help("a declaration starts with `consent`, `profile`, `event`, `channel`, `limits`, `segment`, `template` or `journey`"),
    )
}

fn missing_comma(file: FileId, text: &str, found: &Found) -> Diagnostic {
    let prev_end = previous_code_end(text, found.span.start as usize);
    Diagnostic::new(
        Code::MissingComma,
        format!("missing `,` before {}", found.describe()),
        Label::new(file, Span::new(prev_end, prev_end), "expected `,` here"),
    )
    .with_secondary(Label::new(file, found.span, "next item"))
    .with_help("separate the items of a list with commas")
}

fn is_keyword_expected(expected: &BTreeSet<Expect>, word: &str) -> bool {
    keyword_candidates(expected).contains(&word)
}

fn keyword_candidates(expected: &BTreeSet<Expect>) -> Vec<&'static str> {
    let mut out = Vec::new();
    for e in expected {
        match e {
            Expect::Declaration => out.extend_from_slice(keywords::DECLARATIONS),
            Expect::ClauseOrStep => {
                out.extend_from_slice(keywords::CLAUSES);
                out.extend_from_slice(keywords::STEPS);
            }
            Expect::Step => out.extend_from_slice(keywords::STEPS),
            Expect::Keyword(k) => out.push(k),
            Expect::Operator => out.extend_from_slice(&["and", "or", "in"]),
            Expect::Phrase("`opt_in` or `opt_out`") => {
                out.extend_from_slice(&["opt_in", "opt_out"])
            }
            Expect::Phrase("`day` or `week`") => out.extend_from_slice(&["day", "week"]),
            _ => {}
        }
    }
    out
}

fn generic(file: FileId, _text: &str, expected: &BTreeSet<Expect>, found: &Found) -> Diagnostic {
    let mut items: Vec<Expect> = expected.iter().copied().collect();
    // A clause-or-step already covers steps; the end is implied by `}`.
    if items.contains(&Expect::ClauseOrStep) {
        items.retain(|e| {
            !matches!(
                e,
                Expect::Step | Expect::Keyword("cap" | "category" | "goal")
            )
        });
    }
    if items.contains(&Expect::Declaration) {
        items.retain(|e| *e != Expect::Keyword("category"));
    }
    if items.len() > 1 {
        items.retain(|e| *e != Expect::End);
    }
    let mut words: Vec<String> = items.iter().map(|e| e.describe()).collect();
    if words.len() > 5 {
        words.truncate(5);
        words.push("…".into());
    }
    let list = join_or(&words);
    let found_text = found.describe();
    let message = if list.is_empty() {
        format!("unexpected {found_text}")
    } else {
        format!("expected {list}, found {found_text}")
    };
    let label = if list.is_empty() {
        "unexpected".to_string()
    } else {
        format!("expected {list}")
    };
    let mut d = Diagnostic::new(
        Code::UnexpectedToken,
        message,
        Label::new(file, found.span, label),
    );
    if found.at_end && expected.contains(&Expect::Punct("}")) {
        d.help = Some("a `{` above is not closed; add the missing `}`".into());
    }
    d
}

fn join_or(words: &[String]) -> String {
    match words {
        [] => String::new(),
        [one] => one.clone(),
        // "a journey clause or step, or `}`": a comma keeps the two `or`s apart.
        [init @ .., last] if init.iter().any(|w| w.contains(" or ")) => {
            format!("{}, or {}", init.join(", "), last)
        }
        [init @ .., last] => format!("{} or {}", init.join(", "), last),
    }
}

/// End of the last token of `piece`: trailing whitespace and comments are not
/// part of a declaration.
pub(crate) fn last_code_end(text: &str, piece: Span) -> usize {
    let slice = &text[piece.range()];
    let mut end = 0;
    for line in slice.split_inclusive('\n') {
        let line_start = end_offset_of(slice, line);
        let code = code_part(line);
        if !code.trim().is_empty() {
            end = line_start + code.trim_end().len();
        }
    }
    piece.start as usize + end
}

fn end_offset_of(whole: &str, part: &str) -> usize {
    part.as_ptr() as usize - whole.as_ptr() as usize
}

/// End of the code before `pos`, skipping whitespace and comments backwards.
fn previous_code_end(text: &str, pos: usize) -> usize {
    let mut end = pos;
    loop {
        let line_start = text[..end].rfind('\n').map_or(0, |i| i + 1);
        let code = code_part(&text[line_start..end]).trim_end();
        if !code.trim_start().is_empty() {
            return line_start + code.len();
        }
        if line_start == 0 {
            return 0;
        }
        end = line_start - 1;
    }
}

fn same_line_as_previous(text: &str, found: &Found) -> bool {
    let prev = previous_code_end(text, found.span.start as usize);
    !text[prev..found.span.start as usize].contains('\n')
}

/// `50%`: the start of a split arm.
fn is_percent(token: &str) -> bool {
    token
        .strip_suffix('%')
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The split arm (`P% NAME {`) that opens last before `at`, its span and name.
fn open_arm_before(text: &str, at: usize) -> Option<(Span, String)> {
    let before = &text[..at];
    let mut search = before.len();
    while let Some(brace) = before[..search].rfind('{') {
        let head = before[..brace].trim_end();
        let name_start = head
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        let name = &head[name_start..];
        let percent = head[..name_start].trim_end();
        let percent_start = percent
            .rfind(|c: char| !(c.is_ascii_digit() || c == '%'))
            .map_or(0, |i| i + 1);
        if !name.is_empty() && is_percent(&percent[percent_start..]) {
            return Some((Span::new(percent_start, brace + 1), name.to_string()));
        }
        search = brace;
    }
    None
}
