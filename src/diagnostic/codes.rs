//! Stable diagnostic codes.
//!
//! A code never changes meaning once released; retired codes are not reused.
//! The letter says the stage that reports it: `S` syntax, `N` names, `T` types,
//! `P` policy rules, `L` lints.

use crate::diagnostic::Severity;
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    Syntax,
    Names,
    Types,
    Policy,
    Lint,
}

macro_rules! codes {
    ($( $variant:ident = $code:literal, $severity:ident, $summary:literal; )*) => {
        /// A diagnostic code; see [`Code::ALL`] for the list.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code {
            $( $variant, )*
        }

        impl Code {
            pub const ALL: &'static [Code] = &[ $( Code::$variant, )* ];

            /// The code as users see and search it, e.g. `S003`.
            pub fn as_str(self) -> &'static str {
                match self { $( Code::$variant => $code, )* }
            }

            pub fn default_severity(self) -> Severity {
                match self { $( Code::$variant => Severity::$severity, )* }
            }

            /// One line saying what the code is about.
            pub fn summary(self) -> &'static str {
                match self { $( Code::$variant => $summary, )* }
            }
        }
    };
}

codes! {
    UnexpectedToken = "S001", Error, "the text does not follow the grammar";
    UnterminatedString = "S002", Error, "a string is not closed on its line";
    InvalidEscape = "S003", Error, "a string contains an unknown escape sequence";
    InvalidDuration = "S004", Error, "a duration has an unknown unit or is out of range";
    InvalidTimeOfDay = "S005", Error, "a time of day is not a valid `HH:MM`";
    InvalidPercent = "S006", Error, "a percentage is not a whole number from 0 to 100";
    InvalidNumber = "S007", Error, "a number is out of range or not a whole number where one is needed";
    InvalidTimestamp = "S008", Error, "a timestamp is not valid RFC 3339";
    KeywordAsName = "S009", Error, "a reserved word is used as a name";
    AssignInsteadOfEquals = "S010", Error, "`=` is used where the comparison `==` is meant";
    MissingComma = "S011", Error, "two items on one line are not separated by a comma";
    UnknownType = "S012", Error, "a type name is not one of Nudge's types";
    MisplacedClause = "S013", Error, "a clause is repeated or in the wrong place";
    InterpolationOutsideTemplate = "S014", Error, "`{{ … }}` is used outside a template field";
    ChainedComparison = "S015", Error, "comparisons are chained without parentheses";
    TooDeep = "S016", Error, "brackets or operators are nested too deeply";
}

impl Code {
    pub fn stage(self) -> Stage {
        match self.as_str().as_bytes().first() {
            Some(b'S') => Stage::Syntax,
            Some(b'N') => Stage::Names,
            Some(b'T') => Stage::Types,
            Some(b'P') => Stage::Policy,
            _ => Stage::Lint,
        }
    }

    pub fn parse(code: &str) -> Option<Code> {
        Code::ALL
            .iter()
            .copied()
            .find(|c| c.as_str().eq_ignore_ascii_case(code))
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_well_formed() {
        let mut seen = std::collections::HashSet::new();
        for code in Code::ALL {
            let s = code.as_str();
            assert!(seen.insert(s), "duplicate code {s}");
            assert_eq!(s.len(), 4, "{s}");
            assert!(s[1..].bytes().all(|b| b.is_ascii_digit()), "{s}");
            assert_eq!(Code::parse(s), Some(*code));
        }
    }
}
