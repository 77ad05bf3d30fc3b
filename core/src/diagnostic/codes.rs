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

            /// The code's name for people and tools (SARIF's rule `name`, which
            /// must differ from its `id`): `UnboundedSends` for `L412`.
            pub fn name(self) -> &'static str {
                match self { $( Code::$variant => stringify!($variant), )* }
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
    InvalidSchedule = "S017", Error, "a schedule's day is not `day` or `mon`…`sun`, or its date does not exist";
    UnknownEvent = "N101", Error, "an event name is not declared";
    UnknownProperty = "N102", Error, "an event has no property of this name";
    UnknownAttribute = "N103", Error, "the profile has no attribute of this name";
    UnknownChannel = "N104", Error, "a channel name is not declared";
    UnknownTemplate = "N105", Error, "a template name is not declared";
    UnknownTopic = "N106", Error, "a consent topic is not declared";
    UnknownName = "N107", Error, "a name is not a declared segment";
    UnknownFunction = "N108", Error, "a function does not exist";
    DuplicateDeclaration = "N110", Error, "two declarations of the same kind share a name";
    DuplicateMember = "N111", Error, "an attribute, property, field, channel block or arm is declared twice";
    UnknownCategory = "N112", Error, "a message category is not declared";
    UnknownJourney = "N113", Error, "a test names a journey that is not declared";
    UnknownTestName = "N114", Error, "a test names a decision kind, decision field, template field, split arm or reason that does not exist";
    TypeMismatch = "T201", Error, "a value has the wrong type for where it is used";
    UnguardedOptional = "T202", Error, "a value that may be missing is used without `?? default` or a `none` test";
    TriggerOutsideSteps = "T203", Error, "`trigger.` is used outside a journey's steps and templates";
    EventOutsideCondition = "T204", Error, "`event.` is used outside a `where` condition";
    BadCall = "T205", Error, "a function is called with the wrong arguments";
    BadInterpolation = "T206", Error, "an interpolated value is neither a string nor a number";
    DivisionByZero = "T207", Error, "a constant is divided by the constant zero";
    InvalidDefault = "T208", Error, "an attribute's default is not a constant of its type";
    UnknownTimeZone = "T209", Error, "a time zone is not an IANA zone name";
    FilterNotEventOnly = "T210", Error, "an aggregate filter uses more than `event.` paths and literals";
    TriggerPropertyNotShared = "T211", Error, "a property of a trigger on several events is not declared with one type on each";
    TestNotLiteral = "T212", Error, "a test gives a value that is not a literal";
    TestMissingProperty = "T213", Error, "a test's event lacks a property its event declares as required";
    MissingWhen = "P301", Error, "a journey has no `when` trigger";
    MissingOwner = "P302", Error, "a journey has no `owner`";
    RepeatedClause = "P303", Error, "a clause that may appear once appears twice";
    SendWithoutConsent = "P304", Error, "a journey that is not transactional sends through a channel without a consent topic";
    SplitNotHundred = "P305", Error, "the arms of a split do not add up to 100%";
    ZeroCap = "P306", Error, "a frequency cap allows zero sends, or a cap, aggregate, inactivity period or goal window is empty";
    RequiredWithoutDefault = "P307", Error, "a profile attribute is neither optional nor defaulted";
    BadChannelAddress = "P308", Error, "a channel has no address, or it is not a string attribute of the profile";
    SegmentCycle = "P309", Error, "segments refer to each other in a cycle";
    BadTimezoneAttribute = "P310", Error, "the profile's `timezone` attribute is not of type `timezone`";
    InvalidPointer = "P311", Error, "a `from` JSON Pointer is not valid RFC 6901";
    SharedInputField = "P312", Error, "two declarations read the same input field";
    SendNeverPossible = "P313", Error, "a send's template has content for none of its channels";
    SensitiveOnPublicChannel = "P315", Error, "a sensitive attribute is interpolated into content for a channel that is not private";
    TestOutOfOrder = "P314", Error, "a test's steps are not in time order, or its first step has no timestamp";
    MissingChannelBlock = "L401", Warning, "a send names a channel its template has no content for";
    StepAfterStop = "L402", Warning, "steps follow a `stop` and never run";
    SmsTooLong = "L403", Warning, "an SMS text is longer than one message";
    UnusedSegment = "L404", Warning, "a segment is never used";
    UnusedTemplate = "L405", Warning, "a template is never sent";
    WaitAfterLastSend = "L406", Warning, "a `wait` delays nothing: no send follows it";
    ConstantCondition = "L407", Warning, "a condition is always true or always false";
    NeverMissing = "L408", Warning, "`?? default` or a `none` test on a value that is never missing";
    TransactionalNeverLimited = "L409", Warning, "a `cap` or `category` on a transactional journey limits nothing";
    UnusedCategory = "L410", Warning, "a message category is used by no journey";
    BestOfWithoutEngagement = "L411", Warning, "`via best of` lists a channel without an `engagement` clause";
    UnboundedSends = "L412", Warning, "a marketing journey's sends on a channel are limited by no cap";
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
