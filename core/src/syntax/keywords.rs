//! Reserved words and keyword groups, shared by the scanner, the error messages and
//! (later) the language server's completion. `grammar/nudge.pest` lists the same
//! reserved words in its `keyword` rule; a test keeps the two in step.

/// Words that may not name a declaration, attribute, property, field or arm.
pub const RESERVED: &[&str] = &[
    "address",
    "after",
    "and",
    "cap",
    "category",
    "channel",
    "consent",
    "else",
    "event",
    "exit",
    "false",
    "from",
    "goal",
    "if",
    "in",
    "journey",
    "limits",
    "never",
    "none",
    "not",
    "now",
    "on",
    "opt_in",
    "opt_out",
    "or",
    "owner",
    "per",
    "priority",
    "profile",
    "quiet",
    "reenter",
    "require",
    "segment",
    "send",
    "split",
    "stop",
    "template",
    "to",
    "transactional",
    "trigger",
    "true",
    "until",
    "via",
    "wait",
    "when",
    "where",
    "within",
];

/// Words that start a top-level declaration.
pub const DECLARATIONS: &[&str] = &[
    "consent", "profile", "event", "channel", "limits", "segment", "template", "journey",
    "category", "test",
];

/// Words that start a journey header clause.
pub const CLAUSES: &[&str] = &[
    "owner",
    "priority",
    "when",
    "exit",
    "reenter",
    "require",
    "transactional",
    "category",
    "cap",
    "goal",
];

/// Words that start a journey step.
pub const STEPS: &[&str] = &["wait", "send", "if", "split", "stop"];

/// The library functions of LANGUAGE.md §5.
pub const FUNCTIONS: &[&str] = &[
    "count",
    "sum",
    "since",
    "lower",
    "len",
    "starts_with",
    "contains",
    "local_hour",
    "weekday",
    "local_time",
    "best_time",
];

/// The type names of LANGUAGE.md §5.
pub const TYPES: &[&str] = &[
    "number",
    "string",
    "bool",
    "time",
    "duration",
    "timezone",
    "time_of_day",
    "list",
];

pub fn is_reserved(word: &str) -> bool {
    RESERVED.contains(&word)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammar_reserves_the_same_words() {
        let grammar = include_str!("../../../grammar/nudge.pest");
        let start = grammar.find("keyword = @{").expect("keyword rule");
        let end = start + grammar[start..].find("!ident_char").expect("rule end");
        let mut in_grammar: Vec<&str> = grammar[start..end].split('"').skip(1).step_by(2).collect();
        in_grammar.sort_unstable();
        let mut here = RESERVED.to_vec();
        here.sort_unstable();
        assert_eq!(in_grammar, here);
    }
}
